"""Parameters of every chapter: one pydantic model each, with profiles.

A profile (``smoke``, ``quick``, ``paper``) is a set of defaults on top of the model's own
field defaults (which are the ``quick`` values); any field can still be overridden. Values given
on the command line arrive as strings and are parsed as JSON when they are valid JSON
(``1e-3``, ``true``, ``[1, 2]``), else kept as strings, then validated by the model, so a bad
value is refused before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"


class ParamError(ValueError):
    """A parameter problem, described in one line."""


def _existing_file(value: str) -> str:
    if value and not Path(value).expanduser().is_file():
        raise ValueError(f"file {value} does not exist")
    return value


def _weights_choice(value: bool | str) -> bool | str:
    if isinstance(value, str):
        if value.strip().lower() in ("", "false", "no", "0"):
            return False
        if value.strip().lower() in ("true", "yes", "1"):
            return True
        _existing_file(value)
    return value


#: a weights file path, or "" for the standard cache location
WeightsFile = Annotated[str, AfterValidator(_existing_file)]
#: ``false``, ``true`` (the standard local cache file) or the path of a weights file
Pretrained = Annotated[bool | str, AfterValidator(_weights_choice)]

DATA_ROOT_HELP = (
    "folder of the real dataset's files; empty: $XAISTUDY_DATA/<dataset>, else data/<dataset> "
    "(layouts in data/README.md); unused by the synthetic datasets"
)
DATA_OPTIONS_HELP = (
    "extra keyword arguments of the dataset's loader as JSON, e.g. {\"level\": 1}; "
    "checked against the loader before the run"
)


def dataset_field(default: str, names: Sequence[str], what: str) -> Any:
    """A ``dataset`` parameter that accepts the registered names ``names``."""
    pattern = "^(" + "|".join(n.replace("-", "\\-") for n in names) + ")$"
    return Field(default, pattern=pattern, description=f"{what}: {', '.join(names)}")


class ChapterParams(BaseModel):
    """Parameters shared by every chapter."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = Field(0, ge=0, description="seed of every random draw (data, init, sampling)")
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
        description="auto, cpu, mps, cuda or cuda:N",
    )

    #: per-profile overrides of the field defaults (``quick`` = the field defaults)
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}
    #: dataset parameter -> (its data_root parameter, its data_options parameter)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {}

    #: the parameter naming the model whose standard weights ``pretrained=true`` needs
    PRETRAINED_FOR: ClassVar[str] = ""

    def check_inputs(self) -> None:
        """Check the files the parameters name (datasets, weights) before anything runs.

        Raises :class:`ParamError` in one line naming what is missing and where.
        """
        if self.DATASET_FIELDS:
            from xaistudy.data.datasets import DataRootError, check_data_root, check_options

            for name_field, (root_field, options_field) in self.DATASET_FIELDS.items():
                name = getattr(self, name_field)
                try:
                    check_options(name, getattr(self, options_field))
                    check_data_root(name, getattr(self, root_field))
                except (DataRootError, ValueError) as err:
                    raise ParamError(str(err)) from None
        if self.PRETRAINED_FOR and getattr(self, "pretrained", False) is True:
            from xaistudy.models.classifiers import WeightsNotFoundError, find_pretrained_weights

            try:
                find_pretrained_weights(getattr(self, self.PRETRAINED_FOR))
            except WeightsNotFoundError as err:
                raise ParamError(str(err)) from None

    @classmethod
    def profile_defaults(cls, profile: str) -> dict[str, Any]:
        """The values ``profile`` sets on top of the field defaults."""
        if profile not in PROFILES:
            raise ParamError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
        return dict(cls.PROFILES.get(profile, {}))


class DatasetChapterParams(ChapterParams):
    """A chapter that reads one dataset (synthetic or real): its name, folder and options.

    Subclasses redefine ``dataset`` with :func:`dataset_field` to list the names they accept.
    """

    dataset: str = Field("synthetic-he", description="dataset name")
    data_root: str = Field("", description=DATA_ROOT_HELP)
    data_options: dict[str, Any] = Field(default_factory=dict, description=DATA_OPTIONS_HELP)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        "dataset": ("data_root", "data_options")
    }


class DataParams(ChapterParams):
    """The ``data`` chapter: gallery and statistics of the synthetic datasets."""

    tile_size: int = Field(128, ge=64, le=512, description="tile side in pixels (64-512)")
    gallery_size: int = Field(256, ge=64, le=512, description="side of the gallery tiles")
    n_gallery: int = Field(4, ge=1, le=12, description="tiles per class in the galleries")
    n_stats: int = Field(200, ge=4, le=20000, description="H&E tiles measured for statistics")
    n_stats_per_grade: int = Field(
        20, ge=1, le=5000, description="grading tiles per class measured for statistics"
    )
    n_patients: int = Field(10, ge=2, le=1000, description="pCLE patients")
    frames_per_patient: int = Field(4, ge=1, le=200, description="pCLE frames per patient")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "tile_size": 64,
            "gallery_size": 96,
            "n_gallery": 2,
            "n_stats": 16,
            "n_stats_per_grade": 2,
            "n_patients": 2,
            "frames_per_patient": 2,
        },
        "quick": {},
        "paper": {"n_stats": 2000, "n_stats_per_grade": 200, "n_patients": 40},
    }


class ThesisMetricsParams(DatasetChapterParams):
    """The ``thesis_metrics`` chapter: interpretation-quality metrics for tissue grading."""

    dataset: str = dataset_field(
        "synthetic-grading", ["synthetic-grading", "diagset"], "7-class grading tiles (A, N, R1-R5)"
    )
    nuclei_dataset: str = dataset_field(
        "synthetic-he", ["synthetic-he", "pannuke"], "tiles with nuclei masks for the U-Net"
    )
    nuclei_data_root: str = Field("", description=DATA_ROOT_HELP)
    nuclei_data_options: dict[str, Any] = Field(default_factory=dict, description=DATA_OPTIONS_HELP)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        "dataset": ("data_root", "data_options"),
        "nuclei_dataset": ("nuclei_data_root", "nuclei_data_options"),
    }

    tile_size: int = Field(
        96, ge=64, le=256, description="grading and H&E tile side in pixels (64-256)"
    )
    n_train_per_class: int = Field(
        40, ge=4, le=10000, description="CNN training tiles per class after balancing"
    )
    n_val_per_class: int = Field(10, ge=1, le=5000, description="CNN validation tiles per class")
    n_test_per_class: int = Field(
        5, ge=1, le=6000, description="test tiles per class (each is explained and scored)"
    )
    augment_classes: str = Field(
        "R1,R2,R5",
        pattern=r"^((A|N|R[1-5])(,(A|N|R[1-5]))*)?$",
        description="comma-separated classes that have only a quarter of the tiles and get "
        "90/180/270 degree rotations (Table 1); empty for none",
    )
    fc_width: int = Field(
        512, ge=32, le=4096, description="width of the first linear layer (thesis: 2048)"
    )
    cnn_epochs: int = Field(25, ge=1, le=500, description="CNN epochs (early stopping)")
    cnn_patience: int = Field(5, ge=1, le=100, description="CNN early-stopping patience")
    cnn_lr: float = Field(1e-3, gt=0, le=1, description="CNN Adam learning rate")
    batch_size: int = Field(64, ge=1, le=1024, description="batch size (CNN and U-Net)")
    he_n_train: int = Field(
        120,
        ge=2,
        le=20000,
        description="nuclei tiles for U-Net training (nuclei_dataset; thesis: 5179, PanNuke "
        "folds 1 and 2)",
    )
    he_n_val: int = Field(
        30,
        ge=2,
        le=10000,
        description="nuclei tiles for U-Net validation (thesis: 2722, PanNuke fold 3)",
    )
    unet_epochs: int = Field(12, ge=1, le=500, description="U-Net epochs (early stopping)")
    unet_patience: int = Field(
        5, ge=1, le=500, description="U-Net early-stopping patience (thesis: 50)"
    )
    unet_lr: float = Field(1e-3, gt=0, le=1, description="U-Net Adam learning rate (thesis: 1e-4)")
    unet_batch_size: int = Field(8, ge=1, le=512, description="U-Net batch size (thesis: 1)")
    unet_base: int = Field(16, ge=4, le=64, description="U-Net channels at the top level")
    unet_depth: int = Field(3, ge=1, le=5, description="U-Net down/up stages")
    mask_threshold: float = Field(
        0.5, gt=0, lt=1, description="U-Net probability threshold for the masks"
    )
    map_threshold: float = Field(
        0.3, ge=0, lt=1, description="threshold of the post-processed interpretation maps"
    )
    average: str = Field(
        "macro",
        pattern=r"^(binary|macro|columns)$",
        description="binary (foreground only), macro (mean of foreground and background; the "
        "thesis's sklearn average='macro') or columns (the thesis's code literally: 2-D arrays "
        "read as multilabel, one label per image column)",
    )
    spearman_on: str = Field(
        "binary",
        pattern=r"^(binary|continuous)$",
        description="correlate the binarised map (thesis) or the continuous map with the mask",
    )
    ig_steps: int = Field(50, ge=2, le=1000, description="Integrated Gradients steps (thesis: 100)")
    nt_steps: int = Field(
        20,
        ge=2,
        le=1000,
        description="IG steps inside NoiseTunnel (thesis: 50, captum's default, as its code "
        "passed no n_steps to the NoiseTunnel)",
    )
    nt_samples: int = Field(5, ge=1, le=100, description="NoiseTunnel samples (smoothgrad_sq)")
    nt_stdevs: float = Field(
        1.0, gt=0, le=10, description="NoiseTunnel noise std (captum's default, as in the thesis)"
    )
    lime_samples: int = Field(
        200, ge=10, le=10000, description="LIME perturbed samples (thesis: 500)"
    )
    lime_features: int = Field(3, ge=1, le=50, description="LIME superpixels kept")
    lime_positive_only: bool = Field(
        False, description="keep only positive LIME superpixels (thesis: false)"
    )
    prob_threshold: float = Field(
        0.6, gt=0, lt=1, description="probability splitting high/low tendencies"
    )
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples for the CIs")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "tile_size": 64,
            "n_train_per_class": 4,
            "n_val_per_class": 2,
            "n_test_per_class": 1,
            "fc_width": 64,
            "cnn_epochs": 1,
            "he_n_train": 4,
            "he_n_val": 2,
            "unet_epochs": 1,
            "unet_base": 4,
            "unet_depth": 2,
            "ig_steps": 4,
            "nt_steps": 2,
            "nt_samples": 2,
            "lime_samples": 10,
            "n_boot": 50,
        },
        "quick": {},
        "paper": {
            "dataset": "diagset",
            "nuclei_dataset": "pannuke",
            "nuclei_data_options": {"folds": "1,2/3/3"},
            "tile_size": 256,
            "n_train_per_class": 8776,
            "n_val_per_class": 3510,
            "n_test_per_class": 5266,
            "fc_width": 2048,
            "cnn_epochs": 50,
            "he_n_train": 5179,
            "he_n_val": 2722,
            "unet_epochs": 124,
            "unet_patience": 50,
            "unet_lr": 1e-4,
            "unet_batch_size": 1,
            "unet_base": 32,
            "ig_steps": 100,
            "nt_steps": 50,
            "lime_samples": 500,
        },
    }


_TOUR_METHODS = (
    "occlusion|lime|kernel_shap|rise|saliency|input_x_gradient|integrated_gradients|smoothgrad|"
    "guided_backprop|deconvolution|deeplift|lrp|cam|gradcam|gradcam\\+\\+|scorecam|guided_gradcam"
)


class SaliencyTourParams(DatasetChapterParams):
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
    methods: str = Field(
        "all",
        pattern=rf"^(all|({_TOUR_METHODS})(,({_TOUR_METHODS}))*)$",
        description="comma-separated methods of the grid and table, or all: occlusion, lime, "
        "kernel_shap, rise, saliency, input_x_gradient, integrated_gradients, smoothgrad, "
        "guided_backprop, deconvolution, deeplift, lrp, cam, gradcam, gradcam++, scorecam, "
        "guided_gradcam",
    )
    n_eval: int = Field(
        16, ge=1, le=5000, description="correctly classified tumour test tiles scored per method"
    )
    occlusion_window: int = Field(8, ge=2, le=64, description="occlusion patch side (px)")
    lime_samples: int = Field(300, ge=10, le=10000, description="LIME perturbed samples")
    shap_samples: int = Field(200, ge=10, le=10000, description="KernelSHAP perturbed samples")
    rise_masks: int = Field(500, ge=10, le=20000, description="RISE random masks")
    ig_steps: int = Field(32, ge=2, le=1000, description="Integrated Gradients steps")
    smoothgrad_samples: int = Field(16, ge=1, le=500, description="SmoothGrad noisy samples")
    binarise: str = Field(
        "mask_area",
        pattern=r"^(mask_area|top_fraction|otsu)$",
        description="how maps are binarised for the IoU: mask_area (top pixels as many as the "
        "mask has), top_fraction (top `top_fraction` of pixels) or otsu",
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


class SegmentationXaiParams(DatasetChapterParams):
    """The ``segmentation_xai`` chapter: explaining a segmentation model (Hasany et al.)."""

    dataset: str = dataset_field(
        "synthetic-he",
        ["synthetic-he", "camelyon16", "pannuke", "coco"],
        "tiles segmented by the U-Net (synthetic-he, camelyon16, pannuke) or COCO-2017 images "
        "(deeplabv3)",
    )

    model: str = Field(
        "unet",
        pattern=r"^(unet|deeplabv3_resnet50|deeplabv3_resnet101)$",
        description="unet (trained here on the tile dataset), deeplabv3_resnet50 or "
        "deeplabv3_resnet101 (COCO weights from a local file only)",
    )
    weights: WeightsFile = Field(
        "",
        description="DeepLabv3 weights file (a state dict of torchvision's architecture with "
        "21 VOC classes and the auxiliary head); empty: torchvision's cache file "
        "$TORCH_HOME/hub/checkpoints/deeplabv3_<backbone>_coco-*.pth",
    )
    target_class: str = Field(
        "neoplastic",
        pattern=r"^(tumour|neoplastic|non-neoplastic|aeroplane|bicycle|bird|boat|bottle|bus|car"
        r"|cat|chair|cow|diningtable|dog|horse|motorbike|person|pottedplant|sheep|sofa|train"
        r"|tvmonitor)$",
        description="class explained: tumour, neoplastic or non-neoplastic (unet); a VOC class "
        "such as cat or person (deeplabv3)",
    )
    tile_size: int = Field(
        96,
        ge=64,
        le=512,
        multiple_of=16,
        description="tile (or COCO image) side in px (64-512, multiple of 16)",
    )
    n_train: int = Field(160, ge=8, le=100000, description="U-Net training tiles")
    n_val: int = Field(32, ge=4, le=20000, description="U-Net validation tiles")
    epochs: int = Field(15, ge=1, le=300, description="U-Net training epochs")
    lr: float = Field(2e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    unet_base: int = Field(16, ge=4, le=128, description="U-Net channels at the top level")
    unet_depth: int = Field(3, ge=1, le=5, description="U-Net down/up stages (1-5)")
    layer: str = Field(
        "bottleneck",
        pattern=r"^[A-Za-z_][\w.]*$",
        description="layer of the CAMs: bottleneck (end of the encoder) or a module name such "
        "as up_conv.0 or down.2 (unet), backbone.layer3 (deeplabv3)",
    )
    n_images: int = Field(12, ge=1, le=5000, description="test tiles explained by the CAMs")
    n_images_rise: int = Field(4, ge=1, le=5000, description="test tiles explained by RISE")
    cam_thresholds: list[float] = Field(
        [0.05, 0.1], min_length=1, description="binarisation thresholds of the CAMs, in [0, 1)"
    )
    rise_thresholds: list[float] = Field(
        [0.2, 0.4], min_length=1, description="binarisation thresholds of RISE, in [0, 1)"
    )
    rise_masks: list[int] = Field(
        [100, 500, 1000, 2000], min_length=1, description="RISE mask counts (each >= 1)"
    )
    rise_batch: int = Field(100, ge=1, le=10000, description="masked images per forward pass")
    rise_cells: int = Field(8, ge=2, le=64, description="RISE grid cells per side")
    rise_p: float = Field(0.5, gt=0, lt=1, description="RISE probability of keeping a cell")
    xres_pool: int = Field(2, ge=1, le=16, description="Seg-XRes-CAM gradient pooling window")
    xres_pool_mode: str = Field(
        "max", pattern=r"^(max|avg)$", description="Seg-XRes-CAM pooling: max or avg"
    )
    ablation_batch: int = Field(
        64, ge=1, le=4096, description="ablated copies per forward pass (Seg-Ablation-CAM)"
    )
    fill: float = Field(
        1.0,
        ge=0,
        le=1,
        description="value of masked-out pixels (metrics and RISE): 1 white glass, 0 black",
    )
    roi_size: int = Field(32, ge=4, le=512, description="side of the region-of-interest window")
    n_roi_images: int = Field(8, ge=1, le=5000, description="tiles of the region-of-interest study")
    n_show: int = Field(3, ge=1, le=8, description="tiles shown in the figures")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "tile_size": 64,
            "n_train": 24,
            "n_val": 8,
            "epochs": 2,
            "batch_size": 8,
            "unet_base": 8,
            "unet_depth": 2,
            "n_images": 2,
            "n_images_rise": 1,
            "rise_masks": [10, 20],
            "rise_batch": 10,
            "ablation_batch": 32,
            "roi_size": 24,
            "n_roi_images": 2,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "model": "deeplabv3_resnet101",
            "dataset": "coco",
            "target_class": "cat",
            "layer": "bottleneck",
            "tile_size": 320,
            "n_train": 2000,
            "n_val": 200,
            "epochs": 40,
            "unet_base": 32,
            "unet_depth": 4,
            "n_images": 100,
            "n_images_rise": 100,
            "cam_thresholds": [0.05, 0.1],
            "rise_thresholds": [0.2, 0.4],
            "rise_masks": [100, 500, 1000, 2000],
            "fill": 0.0,
            "roi_size": 96,
            "n_roi_images": 100,
            "n_show": 4,
        },
    }

    def check_inputs(self) -> None:
        """The dataset's files, then DeepLabv3's weights file (one line naming what is missing)."""
        super().check_inputs()
        if self.model.startswith("deeplabv3") and not self.weights:
            from xaistudy.models.segmenters import deeplab_weights_file

            path = deeplab_weights_file(self.model)
            if not path.is_file():
                raise ParamError(
                    f"DeepLabv3 weights not found: {path} (put torchvision's {path.name} there "
                    "or pass -p weights FILE)"
                )

    #: the classes each U-Net dataset annotates (tumour: ``mask``; nuclei: ``nuclei_type``)
    UNET_TARGETS: ClassVar[dict[str, tuple[str, ...]]] = {
        "synthetic-he": ("tumour", "neoplastic", "non-neoplastic"),
        "camelyon16": ("tumour",),
        "pannuke": ("neoplastic", "non-neoplastic"),
    }

    @model_validator(mode="after")
    def _model_fits_dataset(self) -> SegmentationXaiParams:
        coco = self.dataset == "coco"
        if coco != self.model.startswith("deeplabv3"):
            raise ValueError(
                f"model {self.model} does not segment dataset {self.dataset}: use deeplabv3_* "
                "with coco, and unet with synthetic-he, camelyon16 or pannuke"
            )
        tissue = ("tumour", "neoplastic", "non-neoplastic")
        allowed = self.UNET_TARGETS.get(self.dataset)
        if allowed is not None and self.target_class not in allowed:
            raise ValueError(
                f"target_class {self.target_class} is not annotated in dataset {self.dataset}: "
                f"use {' or '.join(allowed)}"
            )
        if coco and self.target_class in tissue:
            raise ValueError(
                f"target_class {self.target_class} is not a COCO class: use a VOC class such "
                "as cat, dog or person"
            )
        return self

    @field_validator("cam_thresholds", "rise_thresholds")
    @classmethod
    def _thresholds(cls, values: list[float]) -> list[float]:
        if any(not 0 <= v < 1 for v in values):
            raise ValueError("every threshold must be in [0, 1)")
        return values

    @field_validator("rise_masks")
    @classmethod
    def _masks(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError("every mask count must be >= 1")
        return values


class XRelevanceCamParams(DatasetChapterParams):
    """The ``xrelevancecam`` chapter: relevance-weighted CAMs layer by layer (You et al.)."""

    dataset: str = dataset_field(
        "synthetic-pcle",
        ["synthetic-pcle", "pcle-folder"],
        "pCLE frames by patient: synthetic-pcle or pcle-folder (frames/<class>/<patient>/)",
    )

    backbone: str = Field(
        "skresnet18",
        pattern=r"^(skresnet18|skresnet34|skresnext50_32x4d)$",
        description="selective-kernel backbone of Tables 1, 3, 4: skresnet18, skresnet34 or "
        "skresnext50_32x4d (the paper's)",
    )
    resnet: str = Field(
        "resnet18",
        pattern=r"^(resnet18|resnet50)$",
        description="ResNet of Table 2 and the sanity check: resnet18 or resnet50 (the paper's)",
    )
    pretrained: Pretrained = Field(
        True,
        description="fine-tune ImageNet weights: true (the standard local cache file, when "
        "present), false, or a weights file path; never downloaded",
    )
    n_patients: int = Field(
        20,
        ge=0,
        le=1000,
        description="pCLE patients, split 80/10/10 by patient (synthetic-pcle: generated, >= "
        "10; pcle-folder: at most this many of the folder's, 0 = all)",
    )
    frames_per_patient: int = Field(
        16,
        ge=0,
        le=2000,
        description="frames per patient (synthetic-pcle: generated, >= 1; pcle-folder: at "
        "most this many per patient after frame_step, evenly spaced, 0 = all)",
    )
    frame_size: int = Field(
        96,
        ge=64,
        le=512,
        description="frame side in px (generated, or the folder's frames resized to it)",
    )
    centre_crop: bool = Field(
        True, description="crop to the largest square inside the circular field of view"
    )
    epochs: int = Field(12, ge=1, le=500, description="maximum training epochs")
    patience: int = Field(10, ge=1, le=100, description="early stopping: epochs w/o improvement")
    lr: float = Field(1e-3, gt=0, le=1, description="AdaMax learning rate")
    batch_size: int = Field(16, ge=2, le=512, description="training and CAM batch size")
    clrp_rule: str = Field(
        "unit",
        pattern=r"^(paper|unit|scaled)$",
        description="initial CLRP relevance: paper (L_t, -L_t/(N-1)), unit (1, -1/N) or scaled "
        "(L_t, -L_t/N, the paper's Sect. 3.2)",
    )
    binarise: str = Field(
        "mean_std",
        pattern=r"^(mean_std|mean|otsu|fixed)$",
        description="map binarisation for the IoU: mean_std (mean + std), mean, otsu or fixed",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="threshold of binarise=fixed")
    n_eval: int = Field(
        64, ge=1, le=100000, description="most correctly classified meningioma test frames scored"
    )
    dropout: float = Field(0.1, ge=0.01, lt=1, description="dropout after each stage (Table 3)")
    dropout_passes: int = Field(10, ge=1, le=100, description="passes averaged with dropout on")
    axiom_images: int = Field(8, ge=1, le=10000, description="test frames of the axiom table")
    axiom_channels: int = Field(
        64, ge=0, le=4096, description="channels ablated per layer for sensitivity (0: all)"
    )
    sanity_layer: str = Field(
        "layer3",
        pattern=r"^layer[1-4]$",
        description="layer whose XRelevanceCAM the sanity check follows (layer1..layer4)",
    )
    sanity_images: int = Field(8, ge=1, le=1000, description="test frames of the sanity check")
    n_show: int = Field(3, ge=1, le=8, description="frames shown in the figures")

    @model_validator(mode="after")
    def _counts_fit_dataset(self) -> XRelevanceCamParams:
        too_few = self.n_patients < 10 or self.frames_per_patient < 1
        if self.dataset == "synthetic-pcle" and too_few:
            raise ValueError(
                f"synthetic-pcle generates its frames: n_patients must be >= 10 (got "
                f"{self.n_patients}) and frames_per_patient >= 1 (got {self.frames_per_patient}); "
                "0 (all) is for pcle-folder"
            )
        return self

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_patients": 16,
            "frames_per_patient": 2,
            "frame_size": 64,
            "epochs": 1,
            "pretrained": False,
            "n_eval": 2,
            "dropout_passes": 2,
            "axiom_images": 1,
            "axiom_channels": 4,
            "sanity_images": 1,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "dataset": "pcle-folder",
            "backbone": "skresnext50_32x4d",
            "resnet": "resnet50",
            "n_patients": 0,
            "frames_per_patient": 0,
            "frame_size": 339,
            "epochs": 100,
            "batch_size": 32,
            "n_eval": 100000,
            "axiom_images": 200,
            "axiom_channels": 0,
            "sanity_images": 50,
        },
    }


_IBO_METHODS = "gradcam|gradcam\\+\\+|xgradcam|ablationcam|eigencam|scorecam|fullgrad"
_IBO_STRATEGIES = "blackening|mean|histogram|blurring|nli|ibo"


class IboParams(DatasetChapterParams):
    """The ``ibo`` chapter: inpainting-based occlusion (Afshar et al.) with batched RePaint."""

    dataset: str = dataset_field(
        "synthetic-he", ["synthetic-he", "camelyon16"], "tumour vs normal tiles"
    )
    PRETRAINED_FOR: ClassVar[str] = "classifier"
    tile_size: int = Field(64, ge=64, le=512, description="tile side in pixels (64-512)")
    stain_norm: bool = Field(
        True, description="Modified Reinhard stain normalisation to a reference tile (torchstain)"
    )
    classifier: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="tumour classifier: small_cnn, resnet18 or resnet50 (paper)",
    )
    pretrained: Pretrained = Field(
        False,
        description="start from ImageNet weights (resnets only): false, true (the standard "
        "local cache file) or a weights file path; never downloaded",
    )
    n_train: int = Field(400, ge=8, le=200000, description="classifier training tiles (balanced)")
    n_val: int = Field(80, ge=4, le=50000, description="classifier validation tiles")
    n_test: int = Field(200, ge=4, le=50000, description="test tiles (accuracy, F1, samples)")
    epochs: int = Field(8, ge=1, le=300, description="classifier epochs (best validation kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="classifier Adam learning rate")
    batch_size: int = Field(32, ge=2, le=1024, description="classifier batch size")
    ddpm_tiles: int = Field(
        256, ge=4, le=200000, description="normal training tiles the DDPM learns from"
    )
    ddpm_channels: list[int] = Field(
        [16, 32, 64],
        min_length=2,
        max_length=6,
        description="UNet2DModel widths per resolution level, e.g. [16, 32, 64]",
    )
    ddpm_layers: int = Field(1, ge=1, le=4, description="ResNet blocks per UNet level")
    ddpm_attention: bool = Field(False, description="self-attention at the lowest resolution")
    ddpm_epochs: int = Field(40, ge=1, le=2000, description="DDPM training epochs")
    ddpm_batch_size: int = Field(32, ge=2, le=1024, description="DDPM batch size")
    ddpm_lr: float = Field(5e-4, gt=0, le=1, description="DDPM AdamW learning rate")
    train_timesteps: int = Field(1000, ge=10, le=4000, description="DDPM training noise steps")
    repaint_steps: int = Field(
        25, ge=2, le=4000, description="RePaint steps T (must divide train_timesteps; paper: 250)"
    )
    jump_length: int = Field(5, ge=1, le=100, description="RePaint jump length j (paper: 10)")
    resamplings: int = Field(
        2, ge=1, le=100, description="RePaint resamplings r (jump_n_sample; paper: 10)"
    )
    eta: float = Field(1.0, ge=0, le=1, description="RePaint eta: 1 = DDPM sampling (original)")
    repaint_batch: int = Field(
        64, ge=1, le=4096, description="images per batched RePaint pass (memory only)"
    )
    methods: str = Field(
        "all",
        pattern=rf"^(all|({_IBO_METHODS})(,({_IBO_METHODS}))*)$",
        description="comma-separated CAMs or all: gradcam, gradcam++, xgradcam, ablationcam, "
        "eigencam, scorecam, fullgrad",
    )
    strategies: str = Field(
        "all",
        pattern=rf"^(all|({_IBO_STRATEGIES})(,({_IBO_STRATEGIES}))*)$",
        description="comma-separated occlusion strategies or all: blackening, mean, histogram, "
        "blurring, nli, ibo",
    )
    n_samples: int = Field(
        8, ge=1, le=5000, description="random tumour test tiles explained and occluded (paper: 100)"
    )
    kmeans_k: int = Field(
        5, ge=3, le=10, description="k-means levels per heatmap; levels 1..k-1 are the masks"
    )
    iou_rule: str = Field(
        "threshold",
        pattern=r"^(threshold|kmeans|otsu)$",
        description="heatmap region for the IoU: threshold (map >= iou_threshold), kmeans "
        "(levels 1..iou_levels) or otsu",
    )
    iou_threshold: float = Field(0.5, gt=0, lt=1, description="map threshold of iou_rule=threshold")
    iou_levels: int = Field(2, ge=1, le=9, description="k-means levels of iou_rule=kmeans")
    auc_x: str = Field(
        "relative",
        pattern=r"^(relative|absolute)$",
        description="deletion-curve x: relative (share of Mask_last, paper) or absolute "
        "(share of all pixels)",
    )
    blur_sigma: float = Field(4.0, gt=0, le=64, description="Gaussian sigma (px) of Blurring")
    nli_noise: float = Field(0.01, ge=0, le=1, description="noise std of Noisy Linear Imputation")
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples for the CIs")
    alexnet_weights: WeightsFile = Field(
        "",
        description="torchvision AlexNet ImageNet file for LPIPS(alex); empty: "
        "$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth when present",
    )

    @field_validator("ddpm_channels")
    @classmethod
    def _channels_fit_tile(cls, value: list[int], info) -> list[int]:
        size = info.data.get("tile_size")
        if any(c < 4 or c > 1024 for c in value):
            raise ValueError("every width must be 4-1024")
        if size is not None and size % 2 ** (len(value) - 1):
            raise ValueError(f"tile_size {size} must be divisible by 2**{len(value) - 1}")
        return value

    @field_validator("repaint_steps")
    @classmethod
    def _steps_divide(cls, value: int, info) -> int:
        total = info.data.get("train_timesteps")
        if total is not None and (value > total or total % value):
            raise ValueError(f"must divide train_timesteps ({total})")
        return value

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_train": 48,
            "n_val": 16,
            "n_test": 16,
            "epochs": 1,
            "batch_size": 16,
            "ddpm_tiles": 16,
            "ddpm_channels": [8, 16],
            "ddpm_epochs": 1,
            "ddpm_batch_size": 16,
            "repaint_steps": 4,
            "jump_length": 2,
            "resamplings": 2,
            "n_samples": 2,
            "n_boot": 50,
        },
        "quick": {},
        "paper": {
            "dataset": "camelyon16",
            "tile_size": 512,
            "classifier": "resnet50",
            # the paper does not give its patch counts; the splits are held in memory as
            # float32 (3 MB per 512 px tile), so these fit a 128 GB machine
            "n_train": 8000,
            "n_val": 1000,
            "n_test": 1000,
            "epochs": 20,
            "ddpm_tiles": 4000,
            "ddpm_channels": [128, 128, 256, 256, 512, 512],
            "ddpm_layers": 2,
            "ddpm_attention": True,
            "ddpm_epochs": 140,
            "ddpm_batch_size": 16,
            "ddpm_lr": 1e-4,
            "repaint_steps": 250,
            "jump_length": 10,
            "resamplings": 10,
            "repaint_batch": 32,
            "n_samples": 100,
            "blur_sigma": 16.0,
        },
    }


def parse_cli_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def _describe(model: type[ChapterParams], name: str) -> str:
    field = model.model_fields[name]
    return field.description or str(field.annotation)


def format_validation_error(model: type[ChapterParams], err: ValidationError) -> str:
    """One line naming the first bad parameter, what was given and what is allowed."""
    first = err.errors()[0]
    if not first["loc"]:  # a check across several parameters
        return f"bad parameters: {first['msg'].removeprefix('Value error, ')}"
    name = ".".join(str(p) for p in first["loc"])
    given = first.get("input")
    allowed = _describe(model, name) if name in model.model_fields else ""
    msg = f"bad value for parameter '{name}': {given!r} ({first['msg']})"
    return f"{msg}; allowed: {allowed}" if allowed else msg


def build_params(
    model: type[ChapterParams],
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
) -> ChapterParams:
    """Validate ``profile`` defaults plus ``overrides``; raise :class:`ParamError` in one line."""
    values = model.profile_defaults(profile)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(model.model_fields))
    if unknown:
        raise ParamError(
            f"unknown parameter '{unknown[0]}'; allowed: {', '.join(model.model_fields)}"
        )
    values.update(overrides)
    try:
        params = model(**values)
    except ValidationError as err:
        raise ParamError(format_validation_error(model, err)) from None
    params.check_inputs()
    return params


def describe_params(model: type[ChapterParams]) -> list[dict[str, Any]]:
    """One row per parameter: name, type, description and the value under each profile."""
    rows = []
    for name, field in model.model_fields.items():
        row = {
            "name": name,
            "type": getattr(field.annotation, "__name__", str(field.annotation)),
            "description": field.description or "",
        }
        for profile in PROFILES:
            row[profile] = model.profile_defaults(profile).get(name, field.default)
        rows.append(row)
    return rows
