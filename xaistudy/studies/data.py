"""Study ``data``: the synthetic data every chapter runs on, measured.

Each generator's set is drawn fresh once per seed and measured from its ground-truth arrays
(:func:`measure`: per-tile statistics, class balance, generation speed), and the shortcut check
(:mod:`xaistudy.evaluate.shortcut_check`) asks per dataset and seed how far shape-blind colour
baselines get next to a small CNN (:func:`shortcut_results`, cached per dataset and seed).
:func:`run` is the entry point. The row tables the chapter judges are built here too:
:func:`class_difference` and :func:`grade_trend` (the generators' promises) and
:func:`histogram_sources` (where the colour histogram's accuracy comes from).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xaistudy.core.store import Store
from xaistudy.data import describe, synthetic
from xaistudy.evaluate import shortcut_check

#: the diagnostic feature sets that say where the colour histogram's accuracy comes from
DIAGNOSTICS = ("histogram without nuclei", "haematoxylin fraction", "nuclear pixel share")


@dataclass(frozen=True, eq=False)
class Result:
    """One run of the data chapter.

    ``he``, ``grading``, ``pcle``: one row per generated tile and seed (``seed``, ``unit``,
    ``class`` and the statistics of :func:`xaistudy.data.describe.tile_statistics`);
    ``balance``: class counts per dataset and seed; ``speed``: tiles per second (median over
    seeds); ``shortcuts``: one row per dataset, seed, test tile and method of the shortcut check
    (``value`` 1 when right); ``accuracy``: its accuracy table with 95 % intervals. ``profile``
    names the profile the parameters came from (the claims record it).
    """

    params: Any
    profile: str
    he: pd.DataFrame
    grading: pd.DataFrame
    pcle: pd.DataFrame
    balance: pd.DataFrame
    speed: pd.DataFrame
    shortcuts: pd.DataFrame
    accuracy: pd.DataFrame


def run(params: Any, store: Store | None = None, *, profile: str = "quick") -> Result:
    """Measure the generated sets and run the shortcut check (cached) for ``params``;
    ``profile`` only names the profile the parameters came from in the result."""
    stats = measure(params)
    shortcuts = shortcut_results(params, store)
    return Result(
        params=params,
        profile=profile,
        he=stats["he"],
        grading=stats["grading"],
        pcle=stats["pcle"],
        balance=stats["balance"],
        speed=stats["speed"],
        shortcuts=shortcuts,
        accuracy=shortcut_check.accuracy_table(shortcuts),
    )


# -- measured properties ------------------------------------------------------------------------
def measure(params: Any) -> dict[str, pd.DataFrame]:
    """Generate each set once per seed and measure it from its ground-truth arrays.

    Returns per-tile statistics (``he``, ``grading``, ``pcle``; a ``seed`` and a ``unit``
    column each), the class balance and the generation speed.
    """
    from tqdm import tqdm

    stats: dict[str, list[pd.DataFrame]] = {"he": [], "grading": [], "pcle": []}
    balance, speed = [], []
    for seed in tqdm(params.seeds, desc="data: seeds"):
        sets = {
            "he": (
                lambda s=seed: synthetic.he_set(params.n_stats, size=params.tile_size, seed=s),
                synthetic.HE_CLASSES,
            ),
            "grading": (
                lambda s=seed: synthetic.grading_set(
                    params.n_stats_per_grade, size=params.tile_size, seed=s
                ),
                synthetic.GRADES,
            ),
            "pcle": (
                lambda s=seed: synthetic.pcle_set(
                    params.n_patients, params.frames_per_patient, size=params.tile_size, seed=s
                ),
                synthetic.PCLE_CLASSES,
            ),
        }
        for kind, (make, classes) in sets.items():
            start = time.perf_counter()
            tiles = make()
            seconds = time.perf_counter() - start
            speed.append(
                {
                    "dataset": f"synthetic-{kind}",
                    "seed": seed,
                    "tiles": len(tiles),
                    "seconds": seconds,
                }
            )
            table = describe.tile_statistics(tiles, classes)
            table.insert(0, "unit", np.arange(len(table)))
            table.insert(0, "seed", seed)
            stats[kind].append(table)
            b = describe.class_balance([t.label for t in tiles], classes, f"synthetic-{kind}")
            b.insert(1, "seed", seed)
            balance.append(b)
    out = {kind: pd.concat(frames, ignore_index=True) for kind, frames in stats.items()}
    out["balance"] = pd.concat(balance, ignore_index=True)
    sp = pd.DataFrame(speed)
    sp["tiles_per_second"] = sp["tiles"] / sp["seconds"]
    sp["tile_size"] = params.tile_size
    out["speed"] = (
        sp.groupby("dataset", sort=False)[["tiles", "tiles_per_second", "tile_size"]]
        .median()
        .reset_index()
    )
    return out


# -- shortcut check -----------------------------------------------------------------------------
def check_sizes(params: Any) -> dict[str, shortcut_check.CheckSizes]:
    """Training, validation and test sizes of each dataset's shortcut check."""
    c = shortcut_check.CheckSizes
    return {
        "synthetic-he": c(
            params.check_he_train,
            max(4, params.check_he_test // 3),
            params.check_he_test,
            params.check_size,
        ),
        "synthetic-grading": c(
            params.check_grading_train,
            max(1, params.check_grading_test // 2),
            params.check_grading_test,
            params.check_size,
        ),
        "synthetic-pcle": c(
            params.check_pcle_train,
            max(2, params.check_pcle_test // 2),
            params.check_pcle_test,
            params.check_size,
        ),
    }


def shortcut_results(params: Any, store: Store | None = None) -> pd.DataFrame:
    """Per dataset and seed, whether each baseline and the small CNN got each test tile right
    (cached per dataset and seed)."""
    from tqdm import tqdm

    store = store or Store()
    settings = shortcut_check.CNNSettings(epochs=params.cnn_epochs)
    frames = []
    jobs = [(d, s) for d in shortcut_check.DATASETS for s in params.seeds]
    for dataset, seed in tqdm(jobs, desc="shortcut check"):
        sizes = check_sizes(params)[dataset]
        key = {"dataset": dataset, "seed": seed, **sizes.__dict__, **settings.__dict__}
        key["widths"] = list(settings.widths)
        frames.append(
            store.cached_table(
                "shortcut-check",
                key,
                lambda d=dataset, s=seed, z=sizes: shortcut_check.check(
                    d, s, z, settings, store, params.device
                ),
            )
        )
    return pd.concat(frames, ignore_index=True)


def histogram_sources(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Where the colour histogram's accuracy comes from: per dataset, the share of its accuracy
    above chance that each diagnostic feature set reaches on its own."""
    rows = []
    for dataset, g in accuracy.groupby("dataset", sort=False):
        acc = g.set_index("method")["accuracy"]
        above = acc.get("colour histogram", np.nan) - g["chance"].iloc[0]
        row: dict[str, object] = {
            "dataset": dataset,
            "colour histogram": acc.get("colour histogram", np.nan),
        }
        for name in DIAGNOSTICS:
            if name in acc:
                row[name] = acc[name]
                row[f"{name}: share of the histogram's gain"] = (
                    (acc[name] - g["chance"].iloc[0]) / above if above > 0 else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)


# -- row tables of the generators' promises -----------------------------------------------------
def class_difference(stats: pd.DataFrame, column: str, high: str, low: str) -> pd.DataFrame:
    """Per seed, one unit per tile of class ``high``: its ``column`` minus the mean of class
    ``low`` in the same seed (so the bootstrap resamples ``high`` tiles)."""
    rows = []
    for seed, g in stats.groupby("seed"):
        base = g.loc[g["class"] == low, column].mean()
        sel = g.loc[g["class"] == high, ["unit", column]].dropna()
        rows.append(pd.DataFrame({"seed": seed, "unit": sel["unit"], "value": sel[column] - base}))
    return pd.concat(rows, ignore_index=True)


def grade_trend(stats: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per seed and malignant tile, (grade index − mean grade index) × (value − mean value):
    the covariance of grade and ``column`` over R1–R5 is its mean."""
    malignant = [g for g in synthetic.GRADES if g.startswith("R")]
    rows = []
    for seed, g in stats.groupby("seed"):
        g = g[g["class"].isin(malignant)].dropna(subset=[column])
        grade = g["class"].map({name: i for i, name in enumerate(malignant)}).astype(float)
        value = g[column].astype(float)
        rows.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "unit": g["unit"],
                    "value": (grade - grade.mean()) * (value - value.mean()),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def he_nucleus_area(he: pd.DataFrame) -> pd.DataFrame:
    """The H&E statistics with ``area``: the mean neoplastic nucleus area of a tile, or its mean
    non-neoplastic area where it has no neoplastic nuclei."""
    return he.assign(area=he["area_neoplastic_px"].fillna(he["area_non_neoplastic_px"]))
