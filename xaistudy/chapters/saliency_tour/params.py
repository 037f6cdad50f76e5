"""The parameters of the ``saliency_tour`` chapter, with its profiles."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from xaistudy.core.params import DatasetSeedsParams, Pretrained, choices_field, dataset_field
from xaistudy.evaluate import localisation
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.rise import RISE_FILLS


class SaliencyTourParams(DatasetSeedsParams):
    """The ``saliency_tour`` chapter: the review's methods on one tumour classifier."""

    dataset: str = dataset_field(
        "synthetic-he", ["synthetic-he", "camelyon16"], "tumour vs normal tiles"
    )
    PRETRAINED_FOR: ClassVar[str] = "model"

    model: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="classifier: small_cnn (fast on a CPU), resnet18 or resnet50",
    )
    pretrained: Pretrained = Field(
        False,
        description="start from ImageNet weights (resnets only): false, true (the standard "
        "local cache file) or a weights file path; never downloaded",
    )
    tile_size: int = Field(64, ge=64, le=256, description="H&E tile side in pixels (64-256)")
    n_train: int = Field(400, ge=8, le=100000, description="training tiles per model (balanced)")
    n_val: int = Field(80, ge=4, le=20000, description="validation tiles")
    n_test: int = Field(200, ge=4, le=20000, description="test tiles (accuracy, Clever Hans)")
    epochs: int = Field(6, ge=1, le=300, description="training epochs (best validation loss kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    methods: str = choices_field(
        tx.TOUR_METHODS, "all", "methods", "comma-separated methods of the grid and table, or all"
    )
    n_eval: int = Field(
        12, ge=1, le=5000, description="correctly classified tumour test tiles scored per method"
    )
    occlusion_window: int = Field(8, ge=2, le=64, description="occlusion patch side (px)")
    lime_samples: int = Field(200, ge=10, le=10000, description="LIME perturbed samples")
    shap_samples: int = Field(150, ge=10, le=10000, description="KernelSHAP perturbed samples")
    rise_masks: int = Field(400, ge=10, le=20000, description="RISE random masks")
    rise_fill: str = choices_field(
        list(RISE_FILLS),
        "black",
        "rise_fill",
        "what the pixels RISE's masks hide show: black (Petsiuk et al.), mean (the tile's "
        "mean colour) or blur (the tile blurred)",
        many=False,
        noun="fill",
    )
    ig_steps: int = Field(32, ge=2, le=1000, description="Integrated Gradients steps")
    smoothgrad_samples: int = Field(16, ge=1, le=500, description="SmoothGrad noisy samples")
    binarise: str = choices_field(
        [rule for rule in localisation.BINARISE_RULES if rule != "threshold"],
        "mask_area",
        "binarise",
        "how maps are binarised for the IoU: mask_area (top pixels as many as the "
        "mask has), top_fraction (top `top_fraction` of pixels) or otsu",
        many=False,
        noun="rule",
    )
    top_fraction: float = Field(0.2, gt=0, le=1, description="share kept by top_fraction")
    pointing_tolerance: int = Field(
        0, ge=0, le=32, description="pointing-game tolerance (px the mask is dilated by)"
    )
    sanity_top_k: int = Field(
        2, ge=1, le=200, description="top weight layers re-initialised for the sanity check"
    )
    cascade_layers: int = Field(
        8, ge=0, le=200, description="layers of the cascading randomisation plot (0: skip it)"
    )
    shortcut_cooccurrence: float = Field(
        0.95,
        ge=0,
        le=1,
        description="P(pen mark | tumour) = 1 - P(pen mark | normal) in the Clever-Hans "
        "training data (0.5: the mark carries no class information)",
    )
    shortcut_ink: str = Field(
        "green",
        pattern=r"^(blue|green|black)$",
        description="pen ink: green, blue (close to haematoxylin, a subtler shortcut) or black",
    )
    n_shortcut_maps: int = Field(4, ge=1, le=16, description="marked tiles shown with maps")
    hans_methods: str = choices_field(
        tx.TOUR_METHODS,
        "gradcam,occlusion,integrated_gradients,lrp,rise",
        "hans_methods",
        "comma-separated methods whose maps of both Clever-Hans models are scored "
        "(attribution mass on the pen mark), or all",
    )
    explain_seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="seed of the explanations' own sampling only (LIME, KernelSHAP, RISE, "
        "SmoothGrad); data and models follow `seeds`",
    )
    n_sweep: int = Field(
        6, ge=1, le=500, description="tiles of the parameter-sensitivity sweep, per seed"
    )
    n_ood: int = Field(
        20, ge=1, le=5000, description="normal tiles of the in-distribution check, per seed"
    )
    faithfulness_steps: int = Field(
        16, ge=2, le=256, description="steps of the deletion and insertion curves"
    )

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_train": 64,
            "n_val": 16,
            "n_test": 40,
            "epochs": 2,
            "batch_size": 8,
            "cascade_layers": 1,
            "n_eval": 1,
            "lime_samples": 20,
            "shap_samples": 20,
            "rise_masks": 32,
            "ig_steps": 4,
            "smoothgrad_samples": 2,
            "occlusion_window": 16,
            "shortcut_cooccurrence": 1.0,
            "n_shortcut_maps": 2,
            "seeds": [0],
            "n_sweep": 1,
            "n_ood": 2,
            "faithfulness_steps": 4,
        },
        "quick": {},
        "paper": {
            "dataset": "camelyon16",
            "model": "resnet50",
            "tile_size": 224,
            "n_train": 4000,
            "n_val": 500,
            "n_test": 1000,
            "epochs": 30,
            "batch_size": 32,
            "n_eval": 100,
            "occlusion_window": 16,
            "lime_samples": 1000,
            "shap_samples": 1000,
            "rise_masks": 4000,
            "ig_steps": 50,
            "smoothgrad_samples": 50,
            "pointing_tolerance": 15,
        },
    }
    #: the paper profile's model, sizes and sample counts on the synthetic tiles
    PROFILES["gpu"] = {**PROFILES["paper"], "dataset": "synthetic-he"}

