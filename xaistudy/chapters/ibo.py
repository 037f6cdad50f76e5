"""Chapter ``ibo``: IBO: inpainting-based occlusion.

Parameters, profiles and registration; the notebook is ``notebooks/ibo.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from xaistudy.chapters import Chapter
from xaistudy.params import (
    DatasetChapterParams,
    Pretrained,
    WeightsFile,
    dataset_field,
)

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


CHAPTER = Chapter(
    name="ibo",
    title="IBO: inpainting-based occlusion",
    params=IboParams,
    order=50,
)
