"""Chapter ``thesis_metrics``: interpretation-quality metrics for tissue grading.

Valatkaitė (2024) grades prostate tissue with a small CNN, explains each test prediction with
Integrated Gradients, NoiseTunnel, LIME and Grad-CAM, and scores the binarised maps against
nuclei masks predicted by a U-Net with six metrics. This module repeats the procedure once per
seed (data draw, CNN, U-Net, maps), scores every map under the thesis's own computation
(:func:`xaistudy.evaluate.quality.thesis_scores`) and under plain readings, and judges the
thesis's findings (Table 6 orderings, the four tendencies) and its premise (a U-Net mask can
stand in for the true one) as claims over the seeds. The notebook is
``notebooks/thesis_metrics.md``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy.stats import kendalltau

from xaistudy import plots
from xaistudy.chapters import Chapter, PaperRecord, Setting
from xaistudy.claims import Claim, bootstrap_interval, judge
from xaistudy.data import synthetic
from xaistudy.data.datasets import get_dataset
from xaistudy.evaluate import quality as q
from xaistudy.evaluate import tendencies as tend
from xaistudy.exercises import Exercise, Outcome
from xaistudy.models.classifiers import resolve_device
from xaistudy.models.thesis_cnn import (
    RotatedSubset,
    ThesisCNN,
    rotated_dataset,
    rotation_balanced_indices,
)
from xaistudy.models.train import fit, make_loader, predict
from xaistudy.models.transforms import RandomDihedral
from xaistudy.models.unet import build_unet, nuclei_targets, segmentation_objective
from xaistudy.params import (
    DATA_OPTIONS_HELP,
    DATA_ROOT_HELP,
    DatasetSeedsParams,
    dataset_field,
)
from xaistudy.store import Store

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = tuple(synthetic.GRADES)
METHODS: dict[str, str] = {
    "integrated_gradients": "IG",
    "ig_noise_tunnel": "NT",
    "lime": "LIME",
    "gradcam": "Grad-CAM",
}
MASK_TYPES: tuple[str, ...] = ("tumour", "non-tumour")
THESIS_NAMES = {
    "IG": "integrated_gradients",
    "NT": "ig_noise_tunnel",
    "LIME": "lime",
    "GC": "gradcam",
}

# -- the thesis's numbers ---------------------------------------------------------------------
#: Table 6 of the thesis: metric, method, mask type, then the class means (A, N, R1-R5),
#: DiagSet test patches against the U-Net's masks.
_TABLE6 = """
iou IG tumour 0.0083 0.0558 0.0991 0.0856 0.0797 0.0864 0.1012
iou IG non-tumour 0.0218 0.0062 0.004 0.0056 0.006 0.005 0.0036
iou NT tumour 0.0083 0.0558 0.0992 0.0857 0.0798 0.0864 0.1013
iou NT non-tumour 0.0216 0.0062 0.00397 0.0056 0.006 0.005 0.0036
iou LIME tumour 0.0084 0.0561 0.0993 0.0856 0.0799 0.0865 0.1011
iou LIME non-tumour 0.0217 0.0062 0.004 0.0056 0.005973 0.005 0.0035
iou GC tumour 0.0085 0.0576 0.1028 0.088 0.0816 0.0882 0.1028
iou GC non-tumour 0.022 0.0062 0.004 0.0056 0.006 0.005 0.0036
precision IG tumour 0.0017 0.0123 0.0273 0.022 0.0218 0.0193 0.0255
precision IG non-tumour 0.0003 0.0008 0.0004 0.0006 0.0011 0.0007 0.0003
precision NT tumour 0.0004 0.0029 0.0066 0.0052 0.0048 0.0044 0.0059
precision NT non-tumour 0.00005 0.0001 0.00007 0.0001 0.0002 0.00009 0.00004
precision LIME tumour 0.0061 0.0375 0.055 0.0433 0.0441 0.0475 0.0479
precision LIME non-tumour 0.0009 0.0025 0.0014 0.0019 0.0025 0.0019 0.001
precision GC tumour 0.008 0.0602 0.1106 0.0891 0.0767 0.0813 0.0921
precision GC non-tumour 0.0012 0.0044 0.0028 0.004 0.0048 0.004 0.0023
recall IG tumour 0.0003 0.0013 0.0021 0.0019 0.0022 0.0018 0.002
recall IG non-tumour 0.0001 0.0003 0.0002 0.0003 0.0005 0.0003 0.0001
recall NT tumour 0.00004 0.0002 0.0003 0.0002 0.0002 0.0002 0.0002
recall NT non-tumour 0.00001 0.00003 0.00002 0.00002 0.00004 0.00002 0.00001
recall LIME tumour 0.0051 0.0215 0.0225 0.0202 0.022 0.0219 0.0197
recall LIME non-tumour 0.0014 0.0045 0.0024 0.0031 0.0041 0.003 0.0018
recall GC tumour 0.0308 0.153 0.2298 0.2047 0.1906 0.1736 0.1754
recall GC non-tumour 0.0131 0.0474 0.0363 0.0449 0.0493 0.0401 0.0271
f1 IG tumour 0.0004 0.002 0.0035 0.0031 0.0035 0.0028 0.0032
f1 IG non-tumour 0.00013 0.0003 0.0002 0.0003 0.0005 0.0003 0.0001
f1 NT tumour 0.0001 0.0003 0.0005 0.0004 0.0004 0.0004 0.0004
f1 NT non-tumour 0.00002 0.00004 0.00003 0.00003 0.00006 0.00003 0.00001
f1 LIME tumour 0.0041 0.0203 0.0244 0.0208 0.0225 0.0228 0.0213
f1 LIME non-tumour 0.0008 0.0024 0.0013 0.0017 0.0023 0.0018 0.001
f1 GC tumour 0.0096 0.0649 0.1134 0.0927 0.0818 0.0819 0.0875
f1 GC non-tumour 0.0018 0.0065 0.0044 0.0059 0.0072 0.0061 0.0036
spearman IG tumour -0.0016 -0.0079 -0.0111 -0.0101 -0.0101 -0.0101 -0.0093
spearman IG non-tumour -0.0007 -0.003 -0.0024 -0.0032 -0.0032 -0.0026 -0.0021
spearman NT tumour -0.0005 -0.0028 -0.0036 -0.0033 -0.0037 -0.0037 -0.0036
spearman NT non-tumour -0.0003 -0.0011 -0.0009 -0.0012 -0.0012 -0.001 -0.0008
spearman LIME tumour 0.003 0.0062 -0.0061 -0.0105 -0.0049 -0.0051 -0.0185
spearman LIME non-tumour -0.0003 -0.0033 -0.0033 -0.0053 -0.0039 -0.0034 -0.0039
spearman GC tumour -0.0012 0.0105 0.0186 0.0124 0.0081 0.0007 -0.0089
spearman GC non-tumour -0.0023 -0.0042 -0.0027 -0.0016 0.0004 0.0009 -0.0015
pixel_accuracy IG tumour 0.9827 0.9336 0.8824 0.8998 0.9057 0.898 0.8808
pixel_accuracy IG non-tumour 0.9899 0.9894 0.9911 0.9896 0.9884 0.9905 0.9925
pixel_accuracy NT tumour 0.9899 0.9379 0.8866 0.9039 0.9104 0.9019 0.8841
pixel_accuracy NT non-tumour 0.9972 0.994 0.9958 0.9941 0.9937 0.9948 0.9964
pixel_accuracy LIME tumour 0.9255 0.9024 0.8588 0.8732 0.8799 0.8727 0.8527
pixel_accuracy LIME non-tumour 0.9319 0.954 0.9616 0.9585 0.9578 0.9599 0.9594
pixel_accuracy GC tumour 0.4687 0.6171 0.6523 0.6512 0.6467 0.6677 0.6669
pixel_accuracy GC non-tumour 0.4716 0.6397 0.6967 0.6899 0.6841 0.7168 0.731
"""
_TABLE4 = dict(
    zip(
        (*CLASSES, "average"),
        ("82.4", "66.27", "60.98", "47.17", "52.45", "54.99", "72.46", "62.39"),
        strict=True,
    )
)


def _table6_numbers() -> dict[str, str]:
    out = {}
    for line in _TABLE6.strip().splitlines():
        metric, method, mask, *vals = line.split()
        for cls, v in zip(CLASSES, vals, strict=True):
            out[f"table6.{metric}.{THESIS_NAMES[method]}.{mask}.{cls}"] = v
    return out


PAPER = PaperRecord(
    key="valatkaite2024interpretable",
    citation="Valatkaitė 2024",
    file="001_ca56ba36b15215b1.txt",
    settings=(
        Setting("grading data", "DiagSet-A, 20x, 256 x 256 patches (Table 1)", "dataset"),
        Setting("tile side (px)", "256", "tile_size"),
        Setting("patches per class: training", "8776", "n_train_per_class"),
        Setting("patches per class: validation", "3510", "n_val_per_class"),
        Setting("patches per class: testing", "5266", "n_test_per_class"),
        Setting("rotated classes (90/180/270 degrees)", "R1, R2, R5", "augment_classes"),
        Setting("seeds", "one training run", "seeds"),
        Setting("CNN epochs / patience / lr", "50 / 5 / 1e-3", "cnn_epochs"),
        Setting("CNN early-stopping patience (epochs)", "5", "cnn_patience"),
        Setting(
            "input standardisation (CNN and U-Net)",
            "none (raw RGB)",
            "input_standardise",
            "true = every tile's channels shifted and scaled to mean 0, standard deviation 1 "
            "inside the model (explainers still see the raw image)",
        ),
        Setting(
            "random rotations/flips of the CNN's training tiles",
            "none (only the fixed rotations of Table 1)",
            "train_dihedral",
            "true = a random 90-degree rotation and flip per tile and epoch (CNN only)",
        ),
        Setting("CNN first linear width", "2048", "fc_width"),
        Setting("nuclei data for the U-Net", "PanNuke folds 1+2 / 3", "nuclei_dataset"),
        Setting("U-Net training tiles", "5179", "he_n_train"),
        Setting(
            "U-Net architecture",
            "appendix UNET (7x7 first convolution, ~537 k parameters)",
            "unet_arch",
            "quick uses the textbook U-Net: the appendix's UNET ends in two ReLU channels and, "
            "at this budget, can fail to learn the tumour-nucleus mask; the exercise "
            "thesis-unet runs it and shows its IoU beside the textbook one's",
        ),
        Setting("U-Net channels at the top level", "32", "unet_base"),
        Setting("U-Net epochs / lr / batch", "124 / 1e-4 / 1", "unet_epochs"),
        Setting("IG steps", "100", "ig_steps"),
        Setting("NoiseTunnel IG steps / samples", "50 / 5", "nt_steps"),
        Setting("LIME samples / superpixels kept", "500 / 3", "lime_samples"),
        Setting("LIME switched-off superpixels", "mean colour (lime's default)", "lime_hide"),
        Setting("map / mask thresholds", "0.3 / 0.5", "map_threshold"),
        Setting(
            "reading of the metrics",
            "the appendix code",
            "average",
            "'thesis' = the code as it ran (rows, min-max, NaN cases)",
        ),
        Setting("tendency probability threshold", "0.6", "prob_threshold"),
    ),
    numbers={
        **_table6_numbers(),
        **{f"table4.{k}": v for k, v in _TABLE4.items()},
        "fig11.unet_val_iou": "about 0.48",
        "table1.test_per_class": "5266",
        "conclusion7": "similar quality for correctly and incorrectly classified images "
        "with low and high probability",
    },
)


def thesis_table6() -> pd.DataFrame:
    """Table 6 of the thesis, long: metric, method, mask_type, class, value (from ``PAPER``)."""
    rows = []
    for key, v in PAPER.numbers.items():
        if key.startswith("table6."):
            _, metric, method, mask, cls = key.split(".")
            rows.append(
                {
                    "metric": metric,
                    "method": method,
                    "mask_type": mask,
                    "class": cls,
                    "value": float(v),
                }
            )
    return pd.DataFrame(rows)


def thesis_means(mask_type: str = "tumour") -> pd.DataFrame:
    """The thesis's class-averaged Table 6 values: metric x method."""
    t = thesis_table6()
    t = t[t["mask_type"] == mask_type]
    return t.pivot_table(index="metric", columns="method", values="value").loc[
        list(q.METRICS), list(METHODS)
    ]


def thesis_order(metric: str, mask_type: str = "tumour") -> list[str]:
    """The thesis's ordering of the methods (best first) by class-averaged Table 6 value."""
    return list(thesis_means(mask_type).loc[metric].sort_values(ascending=False).index)


def order_text(values: dict[str, float]) -> str:
    """``Grad-CAM 0.083 > LIME 0.041 > ...`` from method -> value."""
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    return " > ".join(f"{METHODS[m]} {v:.3g}" for m, v in ranked)


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
            "tile_size": 256,
            "n_train_per_class": 8776,
            "n_val_per_class": 3510,
            "n_test_per_class": 5266,
            "fc_width": 2048,
            "cnn_epochs": 50,
            "cnn_patience": 5,
            "he_n_train": 5179,
            "he_n_val": 2722,
            "unet_epochs": 124,
            "unet_patience": 50,
            "unet_lr": 1e-4,
            "unet_batch_size": 1,
            "unet_base": 32,
            "unet_arch": "thesis",
            "ig_steps": 100,
            "nt_steps": 50,
            "lime_samples": 500,
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


# -- one seed: data, CNN, U-Net, maps ---------------------------------------------------------
@dataclass
class SeedRun:
    """Everything one seed produced: Table 1, trained models' histories, predictions, masks
    and post-processed maps of the test tiles."""

    seed: int
    table1: pd.DataFrame
    cnn_history: pd.DataFrame
    cnn_best_epoch: int
    cnn_parameters: int
    unet_history: pd.DataFrame
    unet_best_epoch: int
    unet_parameters: int
    probs: np.ndarray  # (N, 7) softmax of the test tiles
    labels: np.ndarray  # (N,)
    images: np.ndarray  # (N, H, W, 3) uint8
    unet_prob: np.ndarray  # (N, 2, H, W) U-Net probabilities (tumour, non-tumour)
    exact: np.ndarray | None  # (N, H, W) nuclei types, synthetic tiles only
    maps: dict[str, np.ndarray]  # method -> (N, H, W) post-processed maps
    he_val: dict[str, np.ndarray] = field(default_factory=dict)  # prob, types
    seconds: float = 0.0

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(1)

    def masks(self, ground_truth: str, mask_threshold: float) -> dict[str, np.ndarray]:
        """Binary masks per mask type from the U-Net or the exact nuclei types."""
        if ground_truth == "U-Net":
            return {mt: self.unet_prob[:, k] > mask_threshold for k, mt in enumerate(MASK_TYPES)}
        if self.exact is None:
            raise ValueError("this run has no exact nuclei masks (real grading data)")
        codes = (synthetic.NEOPLASTIC, synthetic.NON_NEOPLASTIC)
        return {mt: self.exact == c for mt, c in zip(MASK_TYPES, codes, strict=True)}


def real_grading(params: ThesisMetricsParams) -> bool:
    return params.dataset != "synthetic-grading"


def ground_truths(params: ThesisMetricsParams) -> tuple[str, ...]:
    """``U-Net`` always; ``exact`` when the grading tiles carry nuclei types (synthetic)."""
    return ("U-Net",) if real_grading(params) else ("U-Net", "exact")


def data_text(params: ThesisMetricsParams) -> str:
    """One line naming the data of this run."""
    opts = params.data_options
    grading = (
        f"DiagSet-A patches{f' (options {opts})' if opts else ''}"
        if real_grading(params)
        else "synthetic grading tiles"
    )
    nuclei = "PanNuke" if params.nuclei_dataset == "pannuke" else "synthetic H&E tiles"
    return f"{grading}; U-Net trained on {nuclei}"


def _grading_sets(params: ThesisMetricsParams, seed: int, store: Store):
    """Training (rotation-balanced), validation and test sets and Table 1 for one seed."""
    aug = [CLASSES.index(c) for c in params.augment_classes.split(",") if c]
    per_class = {
        "train": params.n_train_per_class,
        "val": params.n_val_per_class,
        "test": params.n_test_per_class,
    }
    if not real_grading(params):
        originals = math.ceil(params.n_train_per_class / 4)
        sets = {
            s: get_dataset("synthetic-grading", s, n_per_class=n, size=params.tile_size, seed=seed)
            for s, n in per_class.items()
        }
        pairs = rotation_balanced_indices(
            sets["train"].labels,
            params.n_train_per_class,
            augment=aug,
            seed=seed,
            originals=originals,
        )
        table1 = pd.DataFrame(
            {
                "class": CLASSES,
                "original tiles": [originals if k in aug else per_class["train"] for k in range(7)],
                "after rotation": [
                    4 * originals if k in aug else per_class["train"] for k in range(7)
                ],
                "training": [sum(sets["train"].labels[i] == k for i, _ in pairs) for k in range(7)],
                "validation": [per_class["val"]] * 7,
                "testing": [per_class["test"]] * 7,
                "rotated": ["yes" if k in aug else "no" for k in range(7)],
            }
        )
        return RotatedSubset(sets["train"], pairs), sets["val"], sets["test"], table1
    loaded = {
        s: get_dataset(
            params.dataset,
            s,
            data_root=params.data_root or None,
            n_per_class=n,
            size=params.tile_size,
            seed=seed,
            store=store,
            **{"too_few": "all", **params.data_options},
        )
        for s, n in per_class.items()
    }
    balanced = {}
    for k, (s, n) in enumerate(per_class.items()):
        try:
            balanced[s] = rotation_balanced_indices(
                loaded[s].labels, n, augment=aug, seed=seed + k, class_names=CLASSES
            )
        except ValueError as err:
            raise ValueError(
                f"{params.dataset} split '{s}': {err}; lower n_{s}_per_class or "
                "rotate the class (augment_classes)"
            ) from None
    test = rotated_dataset(loaded["test"], balanced["test"])
    avail = {s: loaded[s].class_counts for s in per_class}
    table1 = pd.DataFrame(
        {
            "class": CLASSES,
            "original patches": [sum(avail[s][c] for s in per_class) for c in CLASSES],
            "after rotation": [
                sum(avail[s][c] for s in per_class) * (4 if k in aug else 1)
                for k, c in enumerate(CLASSES)
            ],
            "training": [
                sum(loaded["train"].labels[i] == k for i, _ in balanced["train"]) for k in range(7)
            ],
            "validation": [
                sum(loaded["val"].labels[i] == k for i, _ in balanced["val"]) for k in range(7)
            ],
            "testing": [int((test.labels == k).sum()) for k in range(7)],
            "patches in the train / val / test splits": [
                " / ".join(str(avail[s][c]) for s in per_class) for c in CLASSES
            ],
            "rotated": ["yes" if k in aug else "no" for k in range(7)],
        }
    )
    train = RotatedSubset(loaded["train"], balanced["train"])
    val = RotatedSubset(loaded["val"], balanced["val"])
    fingerprints = [loaded[s].fingerprint for s in per_class]
    return train, val, test, table1.assign(_files=[fingerprints] * 7)


def _cnn_key(params: ThesisMetricsParams, seed: int, files: Any = None) -> dict[str, Any]:
    key = {
        "model": "thesis_cnn",
        "tile_size": params.tile_size,
        "fc_width": params.fc_width,
        "seed": seed,
        "n_train": params.n_train_per_class,
        "n_val": params.n_val_per_class,
        "augment": params.augment_classes,
        "epochs": params.cnn_epochs,
        "patience": params.cnn_patience,
        "lr": params.cnn_lr,
        "batch_size": params.batch_size,
        "standardise": params.input_standardise,
        "dihedral": params.train_dihedral,
    }
    if real_grading(params):
        key |= {"data": params.dataset, "data_options": params.data_options, "files": files}
    return key


def _unet_key(params: ThesisMetricsParams, seed: int, he: dict) -> dict[str, Any]:
    key = {
        "model": "thesis_unet",
        "arch": params.unet_arch,
        "tile_size": params.tile_size,
        "base": params.unet_base,
        "depth": params.unet_depth,
        "n_train": params.he_n_train,
        "n_val": params.he_n_val,
        "epochs": params.unet_epochs,
        "lr": params.unet_lr,
        "batch_size": params.unet_batch_size,
        "seed": seed,
        "patience": params.unet_patience,
        "standardise": params.input_standardise,
    }
    if params.nuclei_dataset != "synthetic-he":
        key |= {
            "data": params.nuclei_dataset,
            "data_options": params.nuclei_data_options,
            "files": [he[s].fingerprint for s in he],
        }
    return key


def explanation_options(params: ThesisMetricsParams, seed: int) -> dict[str, dict[str, Any]]:
    """The options of each of the thesis's four methods (Grad-CAM: the last convolution)."""
    return {
        "integrated_gradients": {"n_steps": params.ig_steps},
        "ig_noise_tunnel": {
            "n_steps": params.nt_steps,
            "nt_samples": params.nt_samples,
            "stdevs": params.nt_stdevs,
            "seed": seed,
        },
        "lime": {
            "num_samples": params.lime_samples,
            "num_features": params.lime_features,
            "positive_only": params.lime_positive_only,
            "seed": seed,
            "hide_color": None if params.lime_hide == "mean" else 0,
        },
        "gradcam": {},
    }


def _augmented(dataset: Any, params: ThesisMetricsParams) -> Any:
    """``dataset`` (CNN training) under random rotations/flips when ``params.train_dihedral``."""
    return RandomDihedral(dataset) if params.train_dihedral else dataset


def run_seed(params: ThesisMetricsParams, seed: int, store: Store | None = None) -> SeedRun:
    """Draw the data, train the CNN and the U-Net, predict, segment and explain (one seed).

    Every trained model and every map is cached per seed in ``store``.
    """
    store = store or Store()
    started = time.time()
    dev = resolve_device(params.device)
    train, val, test, table1 = _grading_sets(params, seed, store)
    files = table1.pop("_files").iloc[0] if "_files" in table1 else None
    cnn_key = _cnn_key(params, seed, files)
    torch.manual_seed(seed)
    cnn = ThesisCNN(
        num_classes=len(CLASSES),
        input_size=params.tile_size,
        fc_width=params.fc_width,
        standardise=params.input_standardise,
    )
    cnn_run = fit(
        cnn,
        make_loader(_augmented(train, params), params.batch_size, shuffle=True, seed=seed),
        make_loader(val, params.batch_size),
        epochs=params.cnn_epochs,
        lr=params.cnn_lr,
        patience=params.cnn_patience,
        seed=seed,
        device=params.device,
        store=store,
        kind="thesis_cnn",
        params=cnn_key,
        desc=f"grading CNN, seed {seed}",
    )
    cnn = cnn_run.model.to(dev).eval()
    he = {
        s: get_dataset(
            params.nuclei_dataset,
            s,
            data_root=params.nuclei_data_root or None,
            n=n,
            size=params.tile_size,
            seed=seed,
            store=store,
            **params.nuclei_data_options,
        )
        for s, n in (("train", params.he_n_train), ("val", params.he_n_val))
    }
    torch.manual_seed(seed)
    unet = build_unet(
        params.unet_arch,
        3,
        2,
        base=params.unet_base,
        depth=params.unet_depth,
        standardise=params.input_standardise,
    )
    unet_run = fit(
        unet,
        make_loader(he["train"], params.unet_batch_size, shuffle=True, seed=seed),
        make_loader(he["val"], params.unet_batch_size),
        epochs=params.unet_epochs,
        lr=params.unet_lr,
        patience=params.unet_patience,
        seed=seed,
        device=params.device,
        store=store,
        kind="thesis_unet",
        params=_unet_key(params, seed, he),
        desc=f"nuclei U-Net, seed {seed}",
        objective=segmentation_objective(nuclei_targets),
    )
    unet = unet_run.model.to(dev).eval()
    probs, labels = predict(cnn, make_loader(test, params.batch_size), device=params.device)
    x = torch.stack([test[i]["image"] for i in range(len(test))])
    with torch.no_grad():
        seg = torch.cat(
            [torch.sigmoid(unet(x[i : i + 32].to(dev))).cpu() for i in range(0, len(x), 32)]
        ).numpy()
        hx = torch.stack([he["val"][i]["image"] for i in range(len(he["val"]))])
        he_prob = torch.sigmoid(unet(hx.to(dev))).cpu().numpy()
    pred = probs.argmax(1)
    maps = {}
    for method, opts in explanation_options(params, seed).items():
        key = {"cnn": cnn_key, "method": method, **opts, "n_test": params.n_test_per_class}
        items = store.cached_items(
            "thesis_maps",
            key,
            range(len(x)),
            lambda i, m=method, o=opts: {
                "map": q.interpretation_maps(
                    m, cnn, x[i : i + 1], [int(pred[i])], layer=cnn.last_conv, **o
                )[0]
            },
            desc=f"{METHODS[method]}, seed {seed}",
        )
        maps[method] = np.stack([it["map"] for it in items])
    return SeedRun(
        seed=seed,
        table1=table1,
        cnn_history=cnn_run.history,
        cnn_best_epoch=cnn_run.best_epoch,
        cnn_parameters=sum(p.numel() for p in cnn.parameters()),
        unet_history=unet_run.history,
        unet_best_epoch=unet_run.best_epoch,
        unet_parameters=sum(p.numel() for p in unet.parameters()),
        probs=probs,
        labels=labels,
        images=np.asarray(test.images),
        unet_prob=seg,
        exact=None if real_grading(params) else np.asarray(test.nuclei_type),
        maps=maps,
        he_val={"prob": he_prob, "types": np.asarray(he["val"].nuclei_type)},
        seconds=time.time() - started,
    )


def run_all(params: ThesisMetricsParams, store: Store | None = None) -> list[SeedRun]:
    """:func:`run_seed` for every seed of ``params``."""
    return [run_seed(params, s, store) for s in params.seeds]


# -- scores -----------------------------------------------------------------------------------
def score(
    runs: list[SeedRun], params: ThesisMetricsParams, readings: tuple[str, ...] = q.READINGS
) -> pd.DataFrame:
    """Per-tile scores: seed, unit (test tile), class, tendency, method, ground_truth,
    mask_type, reading, empty (mask without pixels), degenerate and the six metrics."""
    frames = []
    for run in runs:
        tt = tend.tendency_table(run.probs, run.labels, CLASSES, params.prob_threshold)
        for gt in ground_truths(params):
            binary = run.masks(gt, params.mask_threshold)
            for reading in readings:
                masks = binary
                if reading == "thesis" and gt == "U-Net":
                    masks = {mt: run.unet_prob[:, k] for k, mt in enumerate(MASK_TYPES)}
                for method in METHODS:
                    rows = pd.DataFrame(
                        q.score_maps(
                            run.maps[method],
                            masks,
                            average=reading,
                            threshold=params.map_threshold,
                            spearman_on=params.spearman_on,
                            method=method,
                            mask_threshold=params.mask_threshold,
                        )
                    )
                    rows = rows.rename(columns={"image": "unit"})
                    rows["class"] = [CLASSES[run.labels[i]] for i in rows["unit"]]
                    rows["tendency"] = tt["tendency"].to_numpy()[rows["unit"]]
                    frames.append(
                        rows.assign(seed=run.seed, method=method, ground_truth=gt, reading=reading)
                    )
    cols = [
        "seed",
        "unit",
        "class",
        "tendency",
        "method",
        "ground_truth",
        "mask_type",
        "reading",
        "empty",
        "degenerate",
        *q.METRICS,
    ]
    return pd.concat(frames, ignore_index=True)[cols]


def kept(scores: pd.DataFrame, params: ThesisMetricsParams) -> pd.DataFrame:
    """The rows the means and claims use: without empty-mask tiles when ``empty_masks`` is
    ``exclude``."""
    return scores[~scores["empty"]] if params.empty_masks == "exclude" else scores


def empty_mask_counts(scores: pd.DataFrame) -> pd.DataFrame:
    """Test tiles per class whose mask is empty, per ground truth and mask type (all seeds)."""
    one = scores[
        (scores["reading"] == scores["reading"].iloc[0])
        & (scores["method"] == scores["method"].iloc[0])
    ]
    table = one.pivot_table(
        index=["ground_truth", "mask_type"],
        columns="class",
        values="empty",
        aggfunc="sum",
        observed=True,
    )
    table = table.reindex(columns=list(CLASSES)).fillna(0).astype(int)
    table["all classes"] = table.sum(axis=1)
    table["of tiles"] = one.groupby(["ground_truth", "mask_type"]).size()
    return table.reset_index()


def table1(runs: list[SeedRun]) -> pd.DataFrame:
    """Table 1 of this run (the first seed's draw)."""
    return runs[0].table1


def training_figure(history: pd.DataFrame, best: int, loss: str, score: str, title: str):
    """Training and validation curves (cf. thesis Figs. 10 and 11)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, col, name in [(axes[0], "loss", loss), (axes[1], "acc", score)]:
        ax.plot(history["epoch"], history[f"train_{col}"], marker="o", label="training")
        ax.plot(history["epoch"], history[f"val_{col}"], marker="s", label="validation")
        ax.axvline(best, color="0.5", linestyle=":", label="kept weights")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cnn_figure(runs: list[SeedRun]):
    r = runs[0]
    return training_figure(
        r.cnn_history,
        r.cnn_best_epoch,
        "cross-entropy loss",
        "accuracy",
        f"Grading CNN training, seed {r.seed} (cf. thesis Fig. 10)",
    )


def unet_figure(runs: list[SeedRun]):
    r = runs[0]
    return training_figure(
        r.unet_history,
        r.unet_best_epoch,
        "BCE + Dice loss",
        "IoU (mask > 0.5)",
        f"Nuclei U-Net training, seed {r.seed} (cf. thesis Fig. 11)",
    )


def classification(runs: list[SeedRun]) -> pd.DataFrame:
    """Per-class test accuracy (%) per seed, their mean, and the thesis's Table 4."""
    rows = []
    for r in runs:
        acc = [float((r.pred[r.labels == k] == k).mean() * 100) for k in range(len(CLASSES))]
        rows.append(
            {
                "seed": str(r.seed),
                **dict(zip(CLASSES, acc, strict=True)),
                "average": float(np.mean(acc)),
                "n_test": len(r.labels),
            }
        )
    table = pd.DataFrame(rows)
    mean = {"seed": "mean over seeds", **table.drop(columns="seed").mean().to_dict()}
    paper = {
        "seed": "thesis (Table 4, DiagSet)",
        **{c: float(PAPER.number(f"table4.{c}")) for c in (*CLASSES, "average")},
        "n_test": int(PAPER.number("table1.test_per_class")) * len(CLASSES),
    }
    return pd.concat([table, pd.DataFrame([mean, paper])], ignore_index=True)


def models_table(runs: list[SeedRun]) -> pd.DataFrame:
    """Parameters, best epochs and seconds of each seed's models."""
    return pd.DataFrame(
        [
            {
                "seed": r.seed,
                "CNN parameters": r.cnn_parameters,
                "CNN best epoch": r.cnn_best_epoch,
                "U-Net parameters": r.unet_parameters,
                "U-Net best epoch": r.unet_best_epoch,
                "U-Net best validation IoU": float(r.unet_history["val_acc"].max()),
                "seconds (0 when cached)": round(r.seconds, 1),
            }
            for r in runs
        ]
    )


def _pixel_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "iou": q.iou(pred.ravel(), truth.ravel(), "binary"),
        "dice": q.f1(pred.ravel(), truth.ravel(), "binary"),
    }


def segmentation(runs: list[SeedRun], params: ThesisMetricsParams) -> pd.DataFrame:
    """The U-Net's own quality: on its validation tiles, and per class of the grading test
    tiles against the exact masks (synthetic only), pooled pixels, mean over seeds."""
    rows = []
    codes = (synthetic.NEOPLASTIC, synthetic.NON_NEOPLASTIC)
    for r in runs:
        for k, (mt, code) in enumerate(zip(MASK_TYPES, codes, strict=True)):
            pred, truth = r.he_val["prob"][:, k] > params.mask_threshold, r.he_val["types"] == code
            rows.append(
                {
                    "seed": r.seed,
                    "data": f"{params.nuclei_dataset} validation tiles",
                    "class": "all",
                    "mask_type": mt,
                    **_pixel_scores(pred, truth),
                    "share_unet": float(pred.mean()),
                    "share_exact": float(truth.mean()),
                }
            )
            if r.exact is None:
                continue
            for c, name in enumerate(CLASSES):
                sel = r.labels == c
                pred = r.unet_prob[sel, k] > params.mask_threshold
                truth = r.exact[sel] == code
                rows.append(
                    {
                        "seed": r.seed,
                        "data": "grading test tiles",
                        "class": name,
                        "mask_type": mt,
                        **_pixel_scores(pred, truth),
                        "share_unet": float(pred.mean()),
                        "share_exact": float(truth.mean()),
                    }
                )
    table = pd.DataFrame(rows)
    return (
        table.groupby(["data", "mask_type", "class"], sort=False)[
            ["iou", "dice", "share_unet", "share_exact"]
        ]
        .mean()
        .reset_index()
    )


def mask_gallery(runs: list[SeedRun], params: ThesisMetricsParams):
    """One test tile per class: the tile, the U-Net's masks and the exact masks."""
    r = runs[0]
    masks = r.masks("U-Net", params.mask_threshold)
    first = [
        int(np.flatnonzero(r.labels == k)[0]) for k in range(len(CLASSES)) if (r.labels == k).any()
    ]
    panels = []
    for i in first:
        types = np.where(masks["tumour"][i], 1, np.where(masks["non-tumour"][i], 2, 0))
        panels += [r.images[i], plots.nuclei_overlay(r.images[i], types)]
        if r.exact is not None:
            panels.append(plots.nuclei_overlay(r.images[i], r.exact[i]))
    columns = ["tile", "U-Net masks", "exact masks"][: 1 + len(ground_truths(params))]
    fig = plots.image_grid(
        panels,
        ncols=len(columns),
        titles=columns * len(first),
        row_labels=[CLASSES[r.labels[i]] for i in first],
        panel=1.9,
    )
    fig.suptitle(
        f"U-Net nuclei masks on grading test tiles, seed {r.seed} (red: tumour, blue: non-tumour)",
        y=1.01,
    )
    return fig


def coverage(runs: list[SeedRun], params: ThesisMetricsParams) -> pd.DataFrame:
    """Share of pixels above the map threshold per method (mean over seeds and tiles)."""
    return pd.DataFrame(
        [
            {
                "method": METHODS[m],
                "share of pixels above the threshold": float(
                    np.mean([(r.maps[m] > params.map_threshold).mean() for r in runs])
                ),
            }
            for m in METHODS
        ]
    )


def table6(scores: pd.DataFrame, params: ThesisMetricsParams) -> pd.DataFrame:
    """Table 6 of this book (reading ``params.average``): mean, 95 % CI, n, n_nan, empties
    per metric, method, class, mask type and ground truth, all seeds pooled."""
    sel = kept(scores[scores["reading"] == params.average], params)
    by = ["ground_truth", "mask_type", "method", "class"]
    if sel.empty:
        cols = ["metric", "mean", "ci_low", "ci_high", "n", "n_nan", "n_degenerate"]
        return pd.DataFrame(columns=[*by, *cols])
    return q.summarise(
        sel,
        by,
        n_boot=params.n_boot,
        seed=params.seeds[0],
        skip_nan=True,
    )


def table6_wide(long: pd.DataFrame, ground_truth: str) -> pd.DataFrame:
    """Table 6 in the thesis's layout: metric x method rows, mask type x class columns."""
    if long.empty:
        return pd.DataFrame(columns=["metric", "method"])
    sel = long[long["ground_truth"] == ground_truth].copy()
    sel["metric"] = pd.Categorical(sel["metric"], list(q.METRICS))
    sel["method"] = pd.Categorical(sel["method"].map(METHODS), list(METHODS.values()))
    sel["mask_type"] = pd.Categorical(sel["mask_type"], MASK_TYPES)
    sel["class"] = pd.Categorical(sel["class"], CLASSES)
    wide = sel.pivot_table(
        index=["metric", "method"], columns=["mask_type", "class"], values="mean", observed=True
    )
    wide.columns = [f"{mt} {c}" for mt, c in wide.columns]
    return wide.reset_index()


def paper_vs_book(scores: pd.DataFrame, params: ThesisMetricsParams) -> pd.DataFrame:
    """Per metric: the thesis's class-averaged tumour-mask ordering (Table 6) beside this
    run's (reading ``average``, each ground truth), with the data and profile."""
    paper = thesis_means("tumour")
    sel = kept(
        scores[(scores["reading"] == params.average) & (scores["mask_type"] == "tumour")], params
    )
    rows = []
    for metric in q.METRICS:
        row = {
            "metric": q.METRIC_LABELS[metric],
            "thesis (DiagSet, U-Net masks, Table 6 class means)": order_text(
                paper.loc[metric].to_dict()
            ),
        }
        for gt, g in sel.groupby("ground_truth", sort=False):
            row[f"this book, {gt} masks ({params.average})"] = order_text(
                g.groupby("method")[metric].mean().to_dict()
            )
        row["data"] = data_text(params)
        rows.append(row)
    return pd.DataFrame(rows)


def _tau(order: list[str], means: pd.Series) -> float:
    names = [m for m in order if m in means.index and np.isfinite(means[m])]
    if len(names) < 2:
        return float("nan")
    return float(kendalltau([-order.index(m) for m in names], [means[m] for m in names]).statistic)


def readings(scores: pd.DataFrame, params: ThesisMetricsParams) -> pd.DataFrame:
    """The lesson on averaging: per reading and metric (tumour mask, U-Net masks), this run's
    method ordering and its Kendall tau with the thesis's ordering, pooled and per seed."""
    sel = kept(
        scores[(scores["mask_type"] == "tumour") & (scores["ground_truth"] == "U-Net")], params
    )
    rows = []
    for reading in q.READINGS:
        r = sel[sel["reading"] == reading]
        for metric in q.METRICS:
            order = thesis_order(metric)
            means = r.groupby("method")[metric].mean()
            per_seed = [
                _tau(order, g.groupby("method")[metric].mean()) for _, g in r.groupby("seed")
            ]
            rows.append(
                {
                    "reading": reading,
                    "metric": q.METRIC_LABELS[metric],
                    "this run's ordering": order_text(means.to_dict()),
                    "tau with the thesis's ordering": _tau(order, means),
                    "tau per seed": ", ".join(f"{t:.2f}" for t in per_seed),
                }
            )
    return pd.DataFrame(rows)


def ground_truth_effect(scores: pd.DataFrame, params: ThesisMetricsParams) -> pd.DataFrame:
    """Per metric and method (reading ``average``, tumour mask): the score against the U-Net
    mask minus against the exact mask, paired per tile, with a bootstrap over seeds and
    tiles. Empty when the run has no exact masks."""
    if "exact" not in ground_truths(params):
        return pd.DataFrame()
    sel = scores[(scores["reading"] == params.average) & (scores["mask_type"] == "tumour")]
    rows = []
    for metric in q.METRICS:
        wide = sel.pivot_table(
            index=["seed", "unit", "method"], columns="ground_truth", values=metric, aggfunc="mean"
        )
        wide = wide.reindex(columns=["U-Net", "exact"])
        diff = (wide["U-Net"] - wide["exact"]).dropna().rename("value").reset_index()
        for method, d in diff.groupby("method", sort=False):
            est, lo, hi = bootstrap_interval(d, n_boot=params.n_boot)
            rows.append(
                {
                    "metric": q.METRIC_LABELS[metric],
                    "method": METHODS[method],
                    "U-Net - exact": est,
                    "ci_low": lo,
                    "ci_high": hi,
                    "tiles": len(d),
                }
            )
    return pd.DataFrame(rows)


def violin(scores: pd.DataFrame, params: ThesisMetricsParams, metric: str):
    """Figs. 20-25: violins per method and mask (reading ``average``), tendency means marked."""
    sel = kept(scores[scores["reading"] == params.average], params)
    keys = [(gt, mt) for gt in ground_truths(params) for mt in MASK_TYPES]
    if sel.empty:
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no test tile has a non-empty mask", ha="center", va="center")
        return fig
    return tend.violin_figure(
        sel,
        metric,
        q.METRIC_LABELS[metric],
        METHODS,
        keys,
        [f"{mt} mask ({gt})" for gt, mt in keys],
    )


def tendency_counts(runs: list[SeedRun], params: ThesisMetricsParams) -> pd.DataFrame:
    """Test tiles per tendency (Table 5) and class, all seeds."""
    tt = pd.concat(
        [tend.tendency_table(r.probs, r.labels, CLASSES, params.prob_threshold) for r in runs]
    )
    table = pd.crosstab(
        pd.Categorical(tt["tendency"], tend.TENDENCIES),
        pd.Categorical(tt["true"], CLASSES),
        dropna=False,
    )
    table.index.name, table.columns.name = "tendency", None
    return table.reset_index()


def tendency_figures(runs: list[SeedRun], params: ThesisMetricsParams):
    """Figs. 16-19 for the first seed: per tendency, the best-fitting tile of each class."""
    r = runs[0]
    tt = tend.tendency_table(r.probs, r.labels, CLASSES, params.prob_threshold)
    examples = tend.pick_examples(tt)
    masks = r.masks("U-Net", params.mask_threshold)
    labelled = {METHODS[m]: r.maps[m] for m in METHODS}
    return [
        tend.tendency_figure(
            examples,
            r.images,
            labelled,
            masks["tumour"],
            masks["non-tumour"],
            case,
            threshold=params.map_threshold,
        )
        for case in tend.TENDENCIES
    ]


# -- claims -----------------------------------------------------------------------------------
def _long(sel: pd.DataFrame, metric: str, order: list[str]) -> pd.DataFrame:
    """seed, unit, method, ``code`` (position in ``order``), ``exact`` and ``value``."""
    out = sel[["seed", "unit", "method", "ground_truth"]].copy()
    out["code"] = out["method"].map({m: i for i, m in enumerate(order)}).astype(int)
    out["exact"] = (out["ground_truth"] == "exact").astype(int)
    out["value"] = sel[metric].to_numpy(dtype=np.float64)
    return out.reset_index(drop=True)


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two short vectors (NaN entries dropped; NaN if undefined)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    den = np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
    return float(np.sum(sx * sy) / den) if den > 0 else float("nan")


def _means_by_code(code: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``value`` per integer ``code`` 0..n-1, NaN values skipped (NaN if none)."""
    ok = np.isfinite(value)
    sums = np.bincount(code[ok], value[ok], minlength=n)
    counts = np.bincount(code[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _method_means(rows: pd.DataFrame, n: int) -> np.ndarray:
    """Mean ``value`` per method code (column ``code``, 0..n-1) of the rows; NaN values and
    methods without rows give NaN."""
    return _means_by_code(rows["code"].to_numpy(), rows["value"].to_numpy(np.float64), n)


def _order_statistic(order: list[str]):
    """Kendall tau between ``order`` (best first) and the rows' method means (``code`` =
    position in ``order``); the same statistic as :func:`xaistudy.claims.order_agreement`."""
    ranks = -np.arange(len(order), dtype=np.float64)

    def statistic(rows: pd.DataFrame) -> float:
        return _tau_b(ranks, _method_means(rows, len(order)))

    return statistic


def _same_order(rows: pd.DataFrame) -> float:
    """Kendall tau between the method means against the U-Net and against the exact masks
    (``code``: method code 0..3; ``exact``: 1 for the exact masks)."""
    n = len(METHODS)
    code = rows["code"].to_numpy() + n * rows["exact"].to_numpy()
    means = _means_by_code(code, rows["value"].to_numpy(np.float64), 2 * n)
    return _tau_b(means[:n], means[n:])


def _abs_mean(rows: pd.DataFrame) -> float:
    return abs(float(rows["value"].mean()))


def tendency_differences(
    scores: pd.DataFrame, params: ThesisMetricsParams, case: str
) -> pd.DataFrame:
    """Per tile of tendency ``case``: its score minus the mean of the other tiles of the same
    class (same seed and method), in standard deviations of the metric (per seed and method),
    averaged over the methods. Controls the class mix: each tile is compared within its class.
    Tumour mask, U-Net masks, reading ``average``, empty masks per ``empty_masks``."""
    metric = params.tendency_metric
    sel = kept(
        scores[
            (scores["reading"] == params.average)
            & (scores["mask_type"] == "tumour")
            & (scores["ground_truth"] == "U-Net")
        ],
        params,
    ).dropna(subset=[metric])
    out = []
    for (seed, method), g in sel.groupby(["seed", "method"]):
        sd = g[metric].std()
        if not np.isfinite(sd) or sd == 0:
            continue
        for _, c in g.groupby("class"):
            inside, other = c[c["tendency"] == case], c[c["tendency"] != case]
            if inside.empty or other.empty:
                continue
            out.append(
                pd.DataFrame(
                    {
                        "seed": seed,
                        "unit": inside["unit"],
                        "method": method,
                        "value": (inside[metric] - other[metric].mean()) / sd,
                    }
                )
            )
    if not out:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    diffs = pd.concat(out, ignore_index=True)
    return diffs.groupby(["seed", "unit"], as_index=False)["value"].mean()


def claims(scores: pd.DataFrame, params: ThesisMetricsParams, profile: str) -> list[dict]:
    """Table 6's ordering per metric, the four tendencies and the ground-truth premise, judged
    over the seeds (bootstrap over seeds and test tiles)."""
    base = dict(data_name=data_text(params), profile=profile)
    n_boot = params.n_boot
    sel = kept(
        scores[(scores["reading"] == params.average) & (scores["mask_type"] == "tumour")], params
    )
    unet = sel[sel["ground_truth"] == "U-Net"]
    paper = thesis_means("tumour")
    rows = []
    for metric in q.METRICS:
        order = thesis_order(metric)
        claim = Claim(
            f"table6.order.{metric}",
            PAPER.citation,
            "Table 6 (tumour mask, class means)",
            f"The methods rank by {q.METRIC_LABELS[metric]} as in Table 6",
            order_text(paper.loc[metric].to_dict()),
            f"Kendall tau between the thesis's ordering and the mean {metric} per method "
            f"(reading {params.average}, U-Net tumour masks)",
            statistic=_order_statistic(order),
        )
        rows.append(judge(claim, _long(unet, metric, order), n_boot=n_boot, **base))
    margin = params.equivalence_margin
    for k, case in enumerate(tend.TENDENCIES, start=1):
        data = tendency_differences(scores, params, case)
        claim = Claim(
            f"tendency.{k}.similar_quality",
            PAPER.citation,
            "Sec. 4 and conclusion 7",
            f"Maps of '{case}' tiles score like the other tiles of their class",
            PAPER.number("conclusion7"),
            f"|mean within-class difference| of {params.tendency_metric} (tile of the case "
            f"minus the other tiles of its class, in SDs, mean over methods); similar when "
            f"below {margin:g}",
            expect="<",
            null=margin,
            statistic=_abs_mean,
        )
        rows.append(judge(claim, data, n_boot=n_boot, **base))
    exact = "exact" in ground_truths(params)
    for metric in q.METRICS:
        claim = Claim(
            f"ground_truth.same_order.{metric}",
            PAPER.citation,
            "Sec. 3 (method)",
            f"U-Net masks rank the methods by {q.METRIC_LABELS[metric]} as the true nuclei "
            "masks do",
            "assumed: the U-Net's masks serve as the ground truth",
            "Kendall tau between the method means against the U-Net and the exact tumour "
            f"masks (reading {params.average})",
            statistic=_same_order,
            not_testable="" if exact else "the grading data have no exact nuclei masks",
        )
        data = _long(sel, metric, list(METHODS)) if exact else None
        rows.append(judge(claim, data, n_boot=n_boot, **base))
    return rows



# --- exercises (xaistudy exercises thesis_metrics)


def _answer_averaging(o: Outcome) -> str:
    return "Under average=macro, " + o.changed_verdicts("table6.order") + "."


def _tumour_iou(o: Outcome, baseline: bool = False) -> float:
    t = o.table("segmentation", baseline)
    row = t[(t["class"] == "all") & (t["mask_type"] == "tumour")]
    return float(row["iou"].mean())


def _answer_unet(o: Outcome) -> str:
    return (
        f"Tumour-nucleus IoU of the U-Net on its validation tiles: {_tumour_iou(o):.2f} with the "
        f"appendix's UNET, {_tumour_iou(o, True):.2f} with the default textbook U-Net; "
        + o.changed_verdicts("ground_truth")
        + " among the ground-truth claims."
    )


def _answer_empty(o: Outcome) -> str:
    ours, base = o.table("table6"), o.table("table6", baseline=True)
    return (
        f"Table 6 has {len(ours)} rows with the empty-mask tiles kept and {len(base)} without; "
        + o.changed_verdicts()
        + "."
    )


def _answer_tendency(o: Outcome) -> str:
    return "Reading the tendencies from IoU instead of F1: " + o.changed_verdicts("tendency") + "."


EXERCISES = (
    Exercise(
        "averaging",
        "Does the ranking of methods survive another averaging rule?",
        params={"average": "macro"},
        look_at="claim:table6.order.iou",
        answer=_answer_averaging,
        hint="The readings table shows every rule side by side; here macro becomes the headline.",
    ),
    Exercise(
        "thesis-unet",
        "Does the thesis's own U-Net find the tumour nuclei the metrics are scored against?",
        params={"unet_arch": "thesis"},
        look_at="table:segmentation",
        answer=_answer_unet,
    ),
    Exercise(
        "empty-masks",
        "What happens to Table 6 when tiles with an empty mask stay in the means?",
        params={"empty_masks": "keep"},
        look_at="table:empty_masks",
        answer=_answer_empty,
    ),
    Exercise(
        "tendency-metric",
        "Do the thesis's four tendencies depend on the metric they are read from?",
        params={"tendency_metric": "iou"},
        look_at="claim:tendency.1.similar_quality",
        answer=_answer_tendency,
    ),
)


CHAPTER = Chapter(
    name="thesis_metrics",
    title="Interpretation-quality metrics for tissue grading",
    params=ThesisMetricsParams,
    order=30,
    paper=PAPER,
    exercises=EXERCISES,
    compute=run_all,
)
