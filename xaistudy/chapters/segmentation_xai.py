"""Chapter ``segmentation_xai``: Explaining segmentation models.

Parameters, profiles and registration; the notebook is ``notebooks/segmentation_xai.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from xaistudy.chapters import Chapter
from xaistudy.params import (
    DatasetChapterParams,
    ParamError,
    WeightsFile,
    dataset_field,
)


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


CHAPTER = Chapter(
    name="segmentation_xai",
    title="Explaining segmentation models",
    params=SegmentationXaiParams,
    order=60,
)
