"""Parameters of the ``thesis_metrics`` chapter: a pydantic model with its profiles.

The ``paper`` profile's sizes and schedules are read off the thesis's settings
(:func:`.paper.paper_setting`); the ``gpu`` profile runs the thesis's models on the synthetic
tiles.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from xaistudy.chapters.thesis_metrics.paper import paper_setting
from xaistudy.core.params import (
    DATA_OPTIONS_HELP,
    DATA_ROOT_HELP,
    DatasetSeedsParams,
    dataset_field,
)

#: parameters whose ``paper`` value is the thesis's setting, a whole number
_PAPER_INTEGERS = (
    "tile_size",
    "n_train_per_class",
    "n_val_per_class",
    "n_test_per_class",
    "fc_width",
    "cnn_epochs",
    "he_n_train",
    "unet_base",
    "ig_steps",
)


class ThesisMetricsParams(DatasetSeedsParams):
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
        100, ge=4, le=10000, description="CNN training tiles per class after balancing"
    )
    n_val_per_class: int = Field(10, ge=1, le=5000, description="CNN validation tiles per class")
    n_test_per_class: int = Field(
        5, ge=1, le=6000, description="test tiles per class and seed (each is explained and scored)"
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
    input_standardise: bool = Field(
        True,
        description="standardise each tile's channels (mean 0, sd 1) as the models' first "
        "layer, CNN and U-Net (thesis: no)",
    )
    train_dihedral: bool = Field(
        True,
        description="random 90-degree rotation and flip of every CNN training tile per epoch "
        "(thesis: no)",
    )
    cnn_epochs: int = Field(25, ge=1, le=500, description="CNN epochs (early stopping)")
    cnn_patience: int = Field(
        25, ge=1, le=100, description="CNN early-stopping patience (thesis: 5)"
    )
    cnn_lr: float = Field(1e-3, gt=0, le=1, description="CNN Adam learning rate")
    batch_size: int = Field(64, ge=1, le=1024, description="CNN batch size")
    he_n_train: int = Field(
        96,
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
    unet_arch: str = Field(
        "textbook",
        pattern=r"^(thesis|textbook)$",
        description="thesis (the appendix's UNET: 7x7 first convolution, 3/2 pooling, "
        "transposed-convolution output) or textbook (Ronneberger-style, unet_depth stages)",
    )
    unet_epochs: int = Field(20, ge=1, le=500, description="U-Net epochs (early stopping)")
    unet_patience: int = Field(
        10, ge=1, le=500, description="U-Net early-stopping patience (thesis: 50)"
    )
    unet_lr: float = Field(1e-3, gt=0, le=1, description="U-Net Adam learning rate (thesis: 1e-4)")
    unet_batch_size: int = Field(8, ge=1, le=512, description="U-Net batch size (thesis: 1)")
    unet_base: int = Field(
        16, ge=4, le=64, description="U-Net channels at the top level (thesis: 32)"
    )
    unet_depth: int = Field(3, ge=1, le=5, description="textbook U-Net down/up stages")
    mask_threshold: float = Field(
        0.5, gt=0, lt=1, description="U-Net probability threshold for the masks"
    )
    map_threshold: float = Field(
        0.3, ge=0, lt=1, description="threshold of the post-processed interpretation maps"
    )
    average: str = Field(
        "thesis",
        pattern=r"^(thesis|binary|macro|columns|rows)$",
        description="reading of the headline Table 6 and the claims: thesis (the appendix code "
        "as it ran: rows, min-maxed U-Net map for IoU, NaN cases), binary (foreground only), "
        "macro (mean of foreground and background), columns or rows (per image column/row)",
    )
    spearman_on: str = Field(
        "binary",
        pattern=r"^(binary|continuous)$",
        description="non-thesis readings: correlate the binarised map (thesis) or the "
        "continuous map with the mask",
    )
    empty_masks: str = Field(
        "exclude",
        pattern=r"^(exclude|keep)$",
        description="tiles whose mask (after the threshold) is empty: exclude them from that "
        "mask's means and claims (counted in a table) or keep their fixed scores",
    )
    ig_steps: int = Field(50, ge=2, le=1000, description="Integrated Gradients steps (thesis: 100)")
    nt_steps: int = Field(
        10,
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
    lime_hide: str = Field(
        "mean",
        pattern=r"^(mean|black)$",
        description="a switched-off LIME superpixel takes its mean colour (lime's default, as "
        "in the thesis) or black",
    )
    prob_threshold: float = Field(
        0.6, gt=0, lt=1, description="probability splitting high/low tendencies"
    )
    tendency_metric: str = Field(
        "f1",
        pattern=r"^(iou|precision|recall|f1|spearman|pixel_accuracy)$",
        description="metric of the tendency claims (tumour mask, U-Net, the chosen reading)",
    )
    equivalence_margin: float = Field(
        0.5,
        gt=0,
        le=5,
        description="tendency claims: 'similar quality' = the within-class difference is "
        "smaller than this many standard deviations of the metric",
    )
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples for the CIs")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
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
            **{p: int(paper_setting(p)) for p in _PAPER_INTEGERS},
            "cnn_patience": int(paper_setting("cnn_patience")),
            "he_n_val": 2722,
            "unet_epochs": int(paper_setting("unet_epochs", 0)),
            "unet_patience": 50,
            "unet_lr": float(paper_setting("unet_epochs", 1)),
            "unet_batch_size": int(paper_setting("unet_epochs", 2)),
            "unet_arch": "thesis",
            "nt_steps": int(paper_setting("nt_steps", 0)),
            "lime_samples": int(paper_setting("lime_samples", 0)),
        },
    }
    #: the thesis's models, tile size and schedules on the synthetic tiles; fewer tiles than
    #: DiagSet-A's (123,000 generated 256 px tiles would take hours on the CPU that draws them)
    PROFILES["gpu"] = {
        **PROFILES["paper"],
        "dataset": "synthetic-grading",
        "nuclei_dataset": "synthetic-he",
        "nuclei_data_options": {},
        "n_train_per_class": 2000,
        "n_val_per_class": 500,
        "n_test_per_class": 100,
    }
