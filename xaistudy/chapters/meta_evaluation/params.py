"""The parameters of the ``meta_evaluation`` chapter and its profiles."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from xaistudy.core.params import BaseParams, ParamError, SeedsParams, build_params, choices_field
from xaistudy.evaluate import quality
from xaistudy.studies.meta_evaluation.design import DEFAULT_METHODS, METHOD_CHOICES


class MetaEvaluationParams(SeedsParams):
    """The ``meta_evaluation`` chapter: every paper's metric against known truth."""

    tile_size: int = Field(64, ge=64, le=512, description="H&E tile side in pixels (64-512)")
    arch: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="classifier of both trained models: small_cnn (fast on a CPU), resnet18, "
        "resnet50",
    )
    n_train: int = Field(400, ge=8, le=100000, description="training tiles per model")
    n_val: int = Field(80, ge=4, le=20000, description="validation tiles")
    n_test: int = Field(200, ge=8, le=20000, description="test tiles the explained ones come from")
    epochs: int = Field(6, ge=1, le=300, description="training epochs (best validation loss kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    methods: str = choices_field(
        METHOD_CHOICES, ",".join(DEFAULT_METHODS), "methods", "comma-separated methods or all"
    )
    n_tiles: int = Field(
        12, ge=2, le=5000, description="tiles explained per model and seed (each one a unit)"
    )
    randomised_layers: int = Field(
        3, ge=1, le=200, description="weight layers re-initialised from the top (randomised model)"
    )
    truth: str = Field(
        "auc",
        pattern=r"^(auc|mass)$",
        description="the ground-truth quality of a map: auc (evidence pixels ranked above the "
        "rest) or mass (positive mass inside the evidence)",
    )
    occlusion_window: int = Field(8, ge=2, le=64, description="Occlusion patch side (px)")
    ig_steps: int = Field(32, ge=2, le=1000, description="Integrated Gradients steps")
    rise_masks: int = Field(400, ge=10, le=20000, description="RISE random masks")
    lime_samples: int = Field(200, ge=10, le=10000, description="LIME perturbed samples")
    shap_samples: int = Field(150, ge=10, le=10000, description="KernelSHAP perturbed samples")
    smoothgrad_samples: int = Field(16, ge=1, le=500, description="SmoothGrad noisy samples")
    thesis_threshold: float = Field(
        quality.MAP_THRESHOLD, ge=0, lt=1, description="map threshold of the thesis's six metrics"
    )
    seg_threshold: float = Field(
        0.1, ge=0, lt=1, description="binarisation threshold of Dice Explained / Saliency Ratio"
    )
    axiom_channels: int = Field(
        32, ge=0, le=4096, description="channels ablated for the sensitivity axiom (0: all)"
    )
    kmeans_k: int = Field(5, ge=2, le=10, description="k-means levels of the deletion curves")
    ibo_tiles: int = Field(
        2,
        ge=0,
        le=5000,
        description="tiles per model and seed also occluded with IBO (RePaint is slow on a CPU; "
        "0: IBO not measured)",
    )
    ibo_profile: str = Field(
        "quick",
        pattern=r"^(smoke|quick|gpu)$",
        description="profile of the ibo chapter whose DDPM of normal tissue and RePaint "
        "schedule IBO uses (shared with that chapter's cache)",
    )
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples of intervals")

    @model_validator(mode="after")
    def _sizes_fit(self) -> MetaEvaluationParams:
        if self.n_tiles > self.n_test:
            raise ValueError(f"n_tiles ({self.n_tiles}) exceeds n_test ({self.n_test})")
        return self

    def check_inputs(self) -> None:
        """Also refuse an IBO whose DDPM was made for another tile size."""
        super().check_inputs()
        if self.ibo_tiles:
            size = ibo_params(self).tile_size
            if size != self.tile_size:
                raise ParamError(
                    f"bad value for parameter 'ibo_profile': its DDPM makes {size}-px tiles, "
                    f"tile_size is {self.tile_size}; match them or set -p ibo_tiles 0"
                )

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "n_train": 48,
            "n_val": 16,
            "n_test": 48,
            "epochs": 1,
            "n_tiles": 3,
            "ig_steps": 4,
            "axiom_channels": 4,
            "ibo_tiles": 1,
            "ibo_profile": "smoke",
            "n_boot": 50,
        },
        "quick": {},
        "paper": {
            "seeds": [0, 1, 2, 3, 4],
            "n_train": 2000,
            "n_val": 200,
            "n_test": 800,
            "epochs": 20,
            "n_tiles": 100,
            "ibo_tiles": 100,
            "ibo_profile": "gpu",
            "tile_size": 512,
            "arch": "resnet50",
            "axiom_channels": 0,
        },
    }
    #: no paper has this experiment: ``paper`` and ``gpu`` are the same larger synthetic run
    PROFILES["gpu"] = dict(PROFILES["paper"])


def ibo_params(params: MetaEvaluationParams) -> BaseParams:
    """The ibo chapter's parameters IBO uses: its profile ``params.ibo_profile`` with this run's
    device (the class read through the chapter registry)."""
    from xaistudy.chapters import get_chapter

    return build_params(get_chapter("ibo").params, params.ibo_profile, {"device": params.device})
