"""The ``data`` chapter's tables: per-class statistics, class balance, speed and the shortcut
check, each by the name it is saved under (``tables/<name>.csv``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xaistudy.data import describe, synthetic
from xaistudy.evaluate import shortcut_check
from xaistudy.studies import data as study

#: each table's caption, by its saved name
CAPTIONS = {
    "class_balance": "Class balance per seed",
    "he_statistics": "H&E tiles: per-class mean and standard deviation over all seeds",
    "grading_statistics": "Grading tiles: per-class mean and standard deviation over all seeds",
    "pcle_statistics": "pCLE frames: per-class mean and standard deviation",
    "generation_speed": "Generation speed (median over seeds)",
    "shortcut_baselines": "The methods of the shortcut check",
    "shortcut_check": "Shortcut check: test accuracy per method and dataset",
    "histogram_sources": "Colour histogram vs narrower features: accuracy and share of its gain "
    "over chance",
}


def summary(stats: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of every per-tile statistic per class (all seeds)."""
    return describe.summarise(stats.drop(columns=["seed", "unit"]), classes)


def pcle_summary(stats: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary` of the pCLE frames without the nuclei columns (frames have no nuclei)."""
    table = summary(stats, synthetic.PCLE_CLASSES)
    return table[[c for c in table.columns if "nucle" not in c and "neoplastic" not in c]]


def baselines() -> pd.DataFrame:
    """The methods of the shortcut check and what each one sees."""
    rows = [{"method": k, "sees": v} for k, v in shortcut_check.BASELINES.items()]
    rows.append(
        {
            "method": shortcut_check.CNN,
            "sees": "the pixels: conv blocks of "
            f"{'/'.join(map(str, shortcut_check.CNNSettings().widths))} channels on each "
            "tile's channels standardised to mean 0 and standard deviation 1, trained with "
            "random 90° rotations and flips, weights of the best validation loss",
        }
    )
    return pd.DataFrame(rows)


def all_tables(result: study.Result) -> dict[str, pd.DataFrame]:
    """Every table of ``result`` by its saved name."""
    return {
        "class_balance": result.balance,
        "he_statistics": summary(result.he, synthetic.HE_CLASSES),
        "grading_statistics": summary(result.grading, synthetic.GRADES),
        "pcle_statistics": pcle_summary(result.pcle),
        "generation_speed": result.speed,
        "shortcut_baselines": baselines(),
        "shortcut_check": result.accuracy,
        "histogram_sources": study.histogram_sources(result.accuracy),
    }
