"""Chapter ``thesis_metrics``: Interpretation-quality metrics for tissue grading.

Parameters, profiles and registration; the notebook is ``notebooks/thesis_metrics.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from xaistudy.chapters import Chapter
from xaistudy.params import (
    DATA_OPTIONS_HELP,
    DATA_ROOT_HELP,
    DatasetChapterParams,
    dataset_field,
)


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


CHAPTER = Chapter(
    name="thesis_metrics",
    title="Interpretation-quality metrics for tissue grading",
    params=ThesisMetricsParams,
    order=30,
)
