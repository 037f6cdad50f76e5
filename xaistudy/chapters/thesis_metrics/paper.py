"""The thesis (Valatkaitė 2024): its settings, Table 4 and Table 6, in one place.

:data:`PAPER` holds every number the chapter quotes; :func:`thesis_table6` is Table 6 as a
frame and :func:`thesis_order` its ordering of the methods; :func:`paper_setting` reads a
setting's value, so the ``paper`` profile never types a number twice.
"""

from __future__ import annotations

import pandas as pd

from xaistudy.chapters.spec import PaperRecord, Setting
from xaistudy.data.synthetic import GRADES

#: the grading classes of Table 1 (DiagSet-A): A, N, R1-R5
CLASSES: tuple[str, ...] = tuple(GRADES)
#: the thesis's abbreviations of the methods -> the methods' names in :mod:`xaistudy.explain`
THESIS_NAMES = {
    "IG": "integrated_gradients",
    "NT": "ig_noise_tunnel",
    "LIME": "lime",
    "GC": "gradcam",
}

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


def paper_setting(parameter: str, part: int = 0) -> str:
    """The thesis's value of the setting that ``parameter`` carries; ``part``: which of the
    values of a setting written ``a / b / c``."""
    (setting,) = [s for s in PAPER.settings if s.parameter == parameter]
    return setting.paper.split(" / ")[part]


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
    from xaistudy.evaluate.quality import METRICS

    t = thesis_table6()
    t = t[t["mask_type"] == mask_type]
    return t.pivot_table(index="metric", columns="method", values="value").loc[
        list(METRICS), list(THESIS_NAMES.values())
    ]


def thesis_order(metric: str, mask_type: str = "tumour") -> list[str]:
    """The thesis's ordering of the methods (best first) by class-averaged Table 6 value."""
    return list(thesis_means(mask_type).loc[metric].sort_values(ascending=False).index)
