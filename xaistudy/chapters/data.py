"""Chapter ``data``: the synthetic data every chapter runs on by default.

Galleries of each generator next to its rules, and the properties the rules promise, measured
from the ground-truth arrays of fresh sets, once per seed. The promises are the chapter's
claims (the generator's design, not a paper's finding), judged over the seeds like every other
claim of the book. The notebook is ``notebooks/data.md``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import Field

from xaistudy import plots
from xaistudy.chapters import Chapter
from xaistudy.claims import Claim, judge
from xaistudy.data import describe, synthetic
from xaistudy.params import SeedsParams

DESIGN = "the book's generators (DESIGN.md)"


class DataParams(SeedsParams):
    """The ``data`` chapter: galleries and measured properties of the synthetic datasets."""

    tile_size: int = Field(128, ge=64, le=512, description="tile side in pixels (64-512)")
    gallery_size: int = Field(256, ge=64, le=512, description="side of the gallery tiles")
    n_gallery: int = Field(4, ge=1, le=12, description="tiles per class in the galleries")
    n_stats: int = Field(
        200, ge=4, le=20000, description="H&E tiles measured for statistics, per seed"
    )
    n_stats_per_grade: int = Field(
        20, ge=2, le=5000, description="grading tiles per class measured for statistics, per seed"
    )
    n_patients: int = Field(10, ge=2, le=1000, description="pCLE patients, per seed")
    frames_per_patient: int = Field(4, ge=1, le=200, description="pCLE frames per patient")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
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


# -- galleries ----------------------------------------------------------------------------------
def show_rules(kind: str) -> None:
    """The generator's rules for ``kind`` (``he``, ``grading``, ``pcle``) as a bullet list."""
    from IPython.display import Markdown, display

    display(Markdown("\n".join(f"- {rule}" for rule in synthetic.RULES[kind])))


def he_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` normal and ``n`` tumour tiles: image, evidence region, nuclei types."""
    images, titles = [], []
    for tumour in (False, True):
        for i in range(n):
            t = synthetic.he_tile(seed, i, size=size, tumour=tumour)
            name = synthetic.HE_CLASSES[t.label]
            images += [
                t.image,
                plots.outline(t.image, t.mask),
                plots.nuclei_overlay(t.image, t.nuclei_type),
            ]
            titles += [name, f"{name}: tumour region", f"{name}: nuclei types"]
    fig = plots.image_grid(images, ncols=6, titles=titles)
    fig.suptitle(
        "Synthetic H&E tiles. Yellow: tumour region (evidence mask); "
        "red: neoplastic nuclei; blue: non-neoplastic nuclei",
        y=1.01,
    )
    return fig


def stain_variation(seed: int, size: int, n: int = 6) -> plt.Figure:
    """The first tumour tile of ``n`` consecutive seeds: per-tile stain and tissue draws."""
    tiles = [synthetic.he_tile(seed + k, 0, size=size, tumour=True) for k in range(n)]
    fig = plots.image_grid(
        [t.image for t in tiles], ncols=n, titles=[f"seed {seed + k}" for k in range(n)]
    )
    fig.suptitle("Per-tile stain and tissue variation across seeds", y=1.02)
    return fig


def grading_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` tiles per grade with the evidence mask outlined."""
    tiles = [
        synthetic.grading_tile(seed, i, size=size, grade=g)
        for i in range(n)
        for g in synthetic.GRADES
    ]
    titles = [
        synthetic.GRADES[t.label]
        + (f" ({', '.join(t.meta['artifact'])})" if t.meta.get("artifact") else "")
        for t in tiles
    ]
    images = [plots.outline(t.image, t.mask) for t in tiles]
    fig = plots.image_grid(images, ncols=len(synthetic.GRADES), titles=titles)
    fig.suptitle("Synthetic grading tiles, evidence mask outlined in yellow", y=1.02)
    return fig


def pcle_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` frames per class, each with its psammoma-body mask."""
    images, titles = [], []
    for meningioma in (False, True):
        for i in range(n):
            t = synthetic.pcle_frame(seed, i, size=size, meningioma=meningioma, patient_id=i)
            name = synthetic.PCLE_CLASSES[t.label]
            images += [t.image, plots.outline(t.image, t.mask)]
            titles += [name, f"{name}: mask"]
    fig = plots.image_grid(images, ncols=4, titles=titles)
    fig.suptitle("Synthetic pCLE frames, psammoma-like bodies outlined in yellow", y=1.01)
    return fig


# -- measured properties ------------------------------------------------------------------------
def measure(params: DataParams) -> dict[str, pd.DataFrame]:
    """Generate each set once per seed and measure it from its ground-truth arrays.

    Returns per-tile statistics (``he``, ``grading``, ``pcle``; a ``seed`` and a ``unit``
    column each), the class balance and the generation speed.
    """
    from tqdm.auto import tqdm

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


def summary(stats: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Mean and standard deviation of every per-tile statistic per class (all seeds)."""
    return describe.summarise(stats.drop(columns=["seed", "unit"]), classes)


def grading_properties(grading: pd.DataFrame) -> plt.Figure:
    """Box plots of what changes with the grade: nucleus size, density, evidence share."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, col, label in zip(
        axes,
        ["area_neoplastic_px", "nuclei_per_10k_px", "mask_share"],
        ["mean neoplastic nucleus area (px)", "nuclei per 10,000 px", "evidence-mask share"],
        strict=True,
    ):
        data = [grading.loc[grading["class"] == g, col].dropna() for g in synthetic.GRADES]
        ax.boxplot(data, tick_labels=list(synthetic.GRADES))
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("class")
    fig.suptitle("Grading tiles: what changes with the grade", y=1.03)
    fig.tight_layout()
    return fig


# -- claims: the generator's promises -------------------------------------------------------------
def _class_difference(stats: pd.DataFrame, column: str, high: str, low: str) -> pd.DataFrame:
    """Per seed, one unit per tile of class ``high``: its ``column`` minus the mean of class
    ``low`` in the same seed (so the bootstrap resamples ``high`` tiles)."""
    rows = []
    for seed, g in stats.groupby("seed"):
        base = g.loc[g["class"] == low, column].mean()
        sel = g.loc[g["class"] == high, ["unit", column]].dropna()
        rows.append(pd.DataFrame({"seed": seed, "unit": sel["unit"], "value": sel[column] - base}))
    return pd.concat(rows, ignore_index=True)


def _grade_trend(stats: pd.DataFrame, column: str) -> pd.DataFrame:
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


def claims(stats: dict[str, pd.DataFrame], profile: str) -> list[dict[str, object]]:
    """The generator's promises, judged from the measured sets over the seeds."""
    tests = [
        (
            Claim(
                "he.tumour_nuclei_larger",
                DESIGN,
                "H&E rules",
                "Tumour nuclei are larger than the lymphocytes of normal tissue",
                "tumour nuclei 4.5-7 px radius vs lymphocytes 2.2-3 px",
                "mean neoplastic nucleus area of a tumour tile − mean non-neoplastic nucleus "
                "area of the normal tiles (px)",
            ),
            _class_difference(
                stats["he"].assign(
                    area=stats["he"]["area_neoplastic_px"].fillna(
                        stats["he"]["area_non_neoplastic_px"]
                    )
                ),
                "area",
                "tumour",
                "normal",
            ),
        ),
        (
            Claim(
                "grading.nuclei_grow_with_grade",
                DESIGN,
                "grading rules",
                "Neoplastic nuclei grow with the grade (R1 → R5)",
                "monotone in the grade spec",
                "covariance of grade index and mean neoplastic nucleus area over R1–R5 tiles",
            ),
            _grade_trend(stats["grading"], "area_neoplastic_px"),
        ),
        (
            Claim(
                "grading.density_grows_with_grade",
                DESIGN,
                "grading rules",
                "Nuclear density grows with the grade (R1 → R5)",
                "monotone in the grade spec",
                "covariance of grade index and nuclei per 10,000 px over R1–R5 tiles",
            ),
            _grade_trend(stats["grading"], "nuclei_per_10k_px"),
        ),
        (
            Claim(
                "pcle.meningioma_has_evidence",
                DESIGN,
                "pCLE rules",
                "Meningioma frames carry psammoma-like bodies; glioblastoma frames none",
                "1-4 bodies per meningioma frame, 0 per glioblastoma frame",
                "evidence-mask share of a meningioma frame − mean share of glioblastoma frames",
            ),
            _class_difference(stats["pcle"], "mask_share", "meningioma", "glioblastoma"),
        ),
    ]
    return [judge(c, d, data_name="synthetic", profile=profile) for c, d in tests]


CHAPTER = Chapter(
    name="data",
    title="The synthetic data: tissue with exact ground truth",
    params=DataParams,
    order=10,
)
