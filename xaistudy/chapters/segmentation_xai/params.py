"""Parameters of the ``segmentation_xai`` chapter: a pydantic model with its profiles.

The ``paper`` profile's thresholds and RISE mask counts are read off the survey's Table 1
(:mod:`.paper`); the ``gpu`` profile runs them on the synthetic tiles with the U-Net.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from xaistudy.chapters.segmentation_xai.paper import survey_mask_counts, survey_thresholds
from xaistudy.core.params import (
    DatasetSeedsParams,
    ParamError,
    WeightsFile,
    dataset_field,
)


class SegmentationXaiParams(DatasetSeedsParams):
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
        64,
        ge=64,
        le=512,
        multiple_of=16,
        description="tile (or COCO image) side in px (64-512, multiple of 16)",
    )
    n_train: int = Field(128, ge=8, le=100000, description="U-Net training tiles")
    n_val: int = Field(16, ge=4, le=20000, description="U-Net validation tiles")
    epochs: int = Field(12, ge=1, le=300, description="U-Net training epochs")
    lr: float = Field(2e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    unet_base: int = Field(16, ge=4, le=128, description="U-Net channels at the top level")
    unet_depth: int = Field(3, ge=1, le=5, description="U-Net down/up stages (1-5)")
    layers: list[str] = Field(
        ["bottleneck", "up_conv.0"],
        min_length=1,
        description="layers of the CAMs: bottleneck (end of the encoder, the survey's choice) "
        "and module names such as up_conv.0 (first U-Net decoder block) or backbone.layer3",
    )
    n_images: int = Field(12, ge=1, le=5000, description="test tiles explained, per seed")
    cam_thresholds: list[float] = Field(
        [0.05, 0.1], min_length=1, description="binarisation thresholds of the CAMs, in [0, 1)"
    )
    rise_thresholds: list[float] = Field(
        [0.2, 0.4], min_length=1, description="binarisation thresholds of RISE, in [0, 1)"
    )
    rise_masks: list[int] = Field(
        [100, 250, 500, 1000],
        min_length=1,
        description="RISE mask counts (each >= 1): one pass over the largest count, maps read "
        "off at each count",
    )
    rise_batch: int = Field(10, ge=1, le=10000, description="masked images per forward pass")
    rise_cells: int = Field(8, ge=2, le=64, description="RISE grid cells per side")
    rise_p: float = Field(0.5, gt=0, lt=1, description="RISE probability of keeping a cell")
    rise_reference: int = Field(
        500,
        ge=1,
        le=100000,
        description="masks of the independent RISE reference map (any independent reference "
        "ranks the mask counts and estimators alike; fewer masks scale the correlations down)",
    )
    n_convergence: int = Field(
        12, ge=1, le=5000, description="tiles per seed of the RISE convergence curve"
    )
    xres_pool: int = Field(2, ge=1, le=16, description="Seg-XRes-CAM gradient pooling window")
    xres_pool_mode: str = Field(
        "max", pattern=r"^(max|avg)$", description="Seg-XRes-CAM pooling: max or avg"
    )
    ablation_batch: int = Field(
        64, ge=1, le=4096, description="ablated copies per forward pass (Seg-Ablation-CAM)"
    )
    ablation_ratio: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Seg-Ablation-CAM: 1 ablates every channel (the survey); r <= 0.5 only the "
        "2 floor(r K) channels pytorch-grad-cam picks by objectness (ratio_channels_to_ablate)",
    )
    fill: float = Field(
        1.0,
        ge=0,
        le=1,
        description="value of masked-out pixels (metrics and RISE): 1 white glass, 0 black",
    )
    border_px: int = Field(
        6, ge=0, le=128, description="width of the border band of the empty/border-map check"
    )
    timing_repeats: int = Field(
        3, ge=1, le=50, description="repeats of each warm timing (the median is reported)"
    )
    timing_batches: list[int] = Field(
        [1, 10, 100], min_length=1, description="RISE batch sizes compared in the batching table"
    )
    roi_size: int = Field(24, ge=4, le=512, description="side of the region-of-interest window")
    n_roi_images: int = Field(
        12, ge=1, le=5000, description="tiles of the region-of-interest study, per seed"
    )
    n_show: int = Field(3, ge=1, le=8, description="tiles shown in the figures")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "tile_size": 64,
            "n_train": 64,
            "n_val": 8,
            "epochs": 6,
            "lr": 0.005,
            "batch_size": 8,
            "unet_base": 8,
            "unet_depth": 2,
            "layers": ["bottleneck", "up_conv.0"],
            "n_images": 2,
            "rise_masks": [10, 20],
            "rise_reference": 20,
            "n_convergence": 1,
            "ablation_batch": 32,
            "border_px": 4,
            "timing_repeats": 1,
            "timing_batches": [1, 10],
            "roi_size": 24,
            "n_roi_images": 2,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "model": "deeplabv3_resnet101",
            "dataset": "coco",
            "target_class": "cat",
            "layers": ["bottleneck", "classifier.0"],
            "tile_size": 320,
            "n_images": 100,
            "cam_thresholds": survey_thresholds(rise=False),
            "rise_thresholds": survey_thresholds(rise=True),
            "rise_masks": survey_mask_counts(),
            "rise_batch": 10,
            "rise_reference": 4000,
            "n_convergence": 10,
            "fill": 0.0,
            "border_px": 27,
            "roi_size": 96,
            "n_roi_images": 100,
            "n_show": 4,
        },
    }
    #: the survey's image size, sample count, RISE mask counts and thresholds on the synthetic
    #: tiles, with the U-Net trained here (DeepLabv3's COCO weights need -p weights)
    PROFILES["gpu"] = {
        **PROFILES["paper"],
        "model": "unet",
        "dataset": "synthetic-he",
        "target_class": "neoplastic",
        "layers": ["bottleneck", "up_conv.0"],
        "fill": 1.0,
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
        if self.model == "unet":  # layer names checked on the untrained network, before the run
            from xaistudy.models.segmenters import unet_segmenter

            net = unet_segmenter(self.unet_base, self.unet_depth)
            for layer in self.layers:
                try:
                    net.layer(layer)
                except ValueError as err:
                    raise ParamError(f"bad value for parameter 'layers': {err}") from None

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
        if 2 * self.border_px >= self.tile_size:
            raise ValueError(f"border_px must be below tile_size / 2 = {self.tile_size // 2}")
        return self

    @field_validator("ablation_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        from xaistudy.explain.segmentation import check_ablation_ratio

        return check_ablation_ratio(value)

    @field_validator("cam_thresholds", "rise_thresholds")
    @classmethod
    def _thresholds(cls, values: list[float]) -> list[float]:
        if any(not 0 <= v < 1 for v in values):
            raise ValueError("every threshold must be in [0, 1)")
        return sorted(values)

    @field_validator("rise_masks", "timing_batches")
    @classmethod
    def _counts(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError("every count must be >= 1")
        return sorted(set(values))

    @field_validator("layers")
    @classmethod
    def _layers(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not re.fullmatch(r"[A-Za-z_][\w.]*", v)]
        if bad:
            raise ValueError(f"layer {bad[0]!r} is not a module name")
        if len(set(values)) != len(values):
            raise ValueError("layers must be distinct")
        return values
