"""Chapter ``data``: the synthetic data every chapter runs on by default.

Galleries of each generator next to its rules, the properties the rules promise, measured
from the ground-truth arrays of fresh sets, once per seed, and the shortcut check: how far
shape-blind colour baselines get next to a small CNN (:mod:`xaistudy.data.shortcut_check`).
The promises are the chapter's claims (the generator's design, not a paper's finding), judged
over the seeds like every other claim of the book. The notebook is ``notebooks/data.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import Field

from xaistudy import plots
from xaistudy.chapters import Chapter
from xaistudy.claims import Claim, judge
from xaistudy.data import describe, shortcut_check, synthetic
from xaistudy.exercises import Exercise, Outcome
from xaistudy.params import SeedsParams
from xaistudy.store import Store

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
    check_size: int = Field(
        64, ge=64, le=256, description="tile side of the shortcut check (64-256 px)"
    )
    check_he_train: int = Field(
        400, ge=8, le=20000, description="shortcut check: H&E training tiles, per seed"
    )
    check_he_test: int = Field(
        200, ge=4, le=20000, description="shortcut check: H&E test tiles, per seed"
    )
    check_grading_train: int = Field(
        100, ge=2, le=5000, description="shortcut check: grading training tiles per class"
    )
    check_grading_test: int = Field(
        30, ge=1, le=5000, description="shortcut check: grading test tiles per class"
    )
    check_pcle_train: int = Field(
        40, ge=2, le=1000, description="shortcut check: pCLE training patients (4 frames each)"
    )
    check_pcle_test: int = Field(
        60, ge=2, le=1000, description="shortcut check: pCLE test patients (4 frames each)"
    )
    cnn_epochs: int = Field(12, ge=1, le=200, description="shortcut check: small-CNN epochs")

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
            "check_he_train": 24,
            "check_he_test": 12,
            "check_grading_train": 4,
            "check_grading_test": 2,
            "check_pcle_train": 4,
            "check_pcle_test": 2,
            "cnn_epochs": 1,
        },
        "quick": {},
        "paper": {"n_stats": 2000, "n_stats_per_grade": 200, "n_patients": 40},
    }
    PROFILES["gpu"] = dict(PROFILES["paper"])  # synthetic data either way


# -- galleries ----------------------------------------------------------------------------------
def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown (computed sentences in the notebook)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


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


# -- shortcut check -----------------------------------------------------------------------------
#: the bounds the generators promise on the shortcut check (|accuracy - chance| below them)
GLOBAL_COLOUR_BOUND = 0.15
OUTSIDE_MASK_BOUND = 0.10
CNN_TARGET = 0.90


def check_sizes(params: DataParams) -> dict[str, shortcut_check.CheckSizes]:
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


def shortcut_results(params: DataParams, store: Store | None = None) -> pd.DataFrame:
    """Per dataset and seed, whether each baseline and the small CNN got each test tile right
    (cached per dataset and seed)."""
    from tqdm.auto import tqdm

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


def shortcut_table(results: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of every baseline and the small CNN per dataset, 95 % interval, chance."""
    return shortcut_check.accuracy_table(results)


def histogram_sources(table: pd.DataFrame) -> pd.DataFrame:
    """Where the colour histogram's accuracy comes from: per dataset, the share of its accuracy
    above chance that each diagnostic feature set reaches on its own."""
    diagnostics = ["histogram without nuclei", "haematoxylin fraction", "nuclear pixel share"]
    rows = []
    for dataset, g in table.groupby("dataset", sort=False):
        acc = g.set_index("method")["accuracy"]
        above = acc.get("colour histogram", np.nan) - g["chance"].iloc[0]
        row: dict[str, object] = {
            "dataset": dataset,
            "colour histogram": acc.get("colour histogram", np.nan),
        }
        for name in diagnostics:
            if name in acc:
                row[name] = acc[name]
                row[f"{name}: share of the histogram's gain"] = (
                    (acc[name] - g["chance"].iloc[0]) / above if above > 0 else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)


def histogram_reading(sources: pd.DataFrame, high: float = 0.8, low: float = 0.3) -> str:
    """One computed sentence per dataset on where the histogram's gain over chance comes from.

    A diagnostic whose share of the gain is at least ``high`` accounts for it; below ``low`` it
    accounts for little of it.
    """
    lines = []
    for _, row in sources.iterrows():
        no_nuc = row.get("histogram without nuclei: share of the histogram's gain", np.nan)
        h_frac = row.get("haematoxylin fraction: share of the histogram's gain", np.nan)
        share = row.get("nuclear pixel share: share of the histogram's gain", np.nan)
        if not np.isfinite(no_nuc):
            continue
        parts = [
            f"without the nucleus pixels the histogram keeps {no_nuc:.0%} of its gain over "
            f"chance; the haematoxylin fraction reaches {h_frac:.0%} of it and the nuclear "
            f"pixel share {share:.0%}"
        ]
        if no_nuc >= high:
            parts.append("so the gain lies mostly in the pixels between the nuclei")
        elif max(h_frac, share) >= high:
            parts.append("so the gain lies mostly in how much of the tile is nuclear stain")
        elif no_nuc < low:
            parts.append("so the gain needs the nucleus pixels")
        else:
            parts.append("so no single one of these accounts for the gain")
        lines.append(f"- {row['dataset']}: " + ", ".join(parts) + ".")
    return "\n".join(lines)


def shortcut_figure(table: pd.DataFrame) -> plt.Figure:
    """Accuracy with 95 % intervals of every method, one panel per dataset; chance dashed."""
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.2), sharex=True)
    for ax, dataset in zip(np.atleast_1d(axes), datasets, strict=True):
        g = table[table["dataset"] == dataset].iloc[::-1]
        y = np.arange(len(g))
        err = [g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]]
        colours = ["tab:red" if m == shortcut_check.CNN else "tab:blue" for m in g["method"]]
        ax.barh(y, g["accuracy"], xerr=err, color=colours, alpha=0.8)
        ax.axvline(g["chance"].iloc[0], color="k", ls="--", lw=1)
        ax.set_yticks(y, g["method"])
        ax.set_xlim(0, 1)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("test accuracy (dashed: chance)")
    fig.tight_layout()
    return fig


def _near_chance(chance: float) -> Callable[[pd.DataFrame], float]:
    def statistic(rows: pd.DataFrame) -> float:
        return abs(float(rows["value"].mean()) - chance)

    return statistic


def shortcut_claims(results: pd.DataFrame, profile: str) -> list[dict[str, object]]:
    """The shortcut bounds as claims: trivial colour baselines near chance, the CNN well above."""
    short = {"synthetic-he": "he", "synthetic-grading": "grading", "synthetic-pcle": "pcle"}
    bounds = [
        ("mean intensity", GLOBAL_COLOUR_BOUND, "mean_intensity_near_chance"),
        ("mean RGB", GLOBAL_COLOUR_BOUND, "mean_rgb_near_chance"),
        ("outside-mask colour", OUTSIDE_MASK_BOUND, "outside_mask_near_chance"),
    ]
    rows = []
    for dataset in shortcut_check.DATASETS:
        res = results[results["dataset"] == dataset]
        chance = shortcut_check.chance(dataset)
        for method, bound, name in bounds:
            claim = Claim(
                f"{short[dataset]}.{name}",
                DESIGN,
                "shortcut check",
                f"A logistic regression on the {method} of a tile is within {bound:g} of chance",
                f"|accuracy - chance| < {bound:g}",
                f"|test accuracy of the {method} baseline - {chance:.3f} (chance)|",
                expect="<",
                null=bound,
                statistic=_near_chance(chance),
            )
            data = res[res["method"] == method]
            rows.append(judge(claim, data, data_name=dataset, profile=profile, n_boot=1000))
        if dataset == "synthetic-pcle":
            continue
        claim = Claim(
            f"{short[dataset]}.small_cnn_learns_the_morphology",
            DESIGN,
            "shortcut check",
            f"A small CNN classifies the tiles with accuracy of at least {CNN_TARGET:g}",
            f"accuracy >= {CNN_TARGET:g}",
            "test accuracy of the small CNN",
            expect=">",
            null=CNN_TARGET,
        )
        data = res[res["method"] == shortcut_check.CNN]
        rows.append(judge(claim, data, data_name=dataset, profile=profile, n_boot=1000))
    return rows


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



# --- exercises (xaistudy exercises data)


def _accuracy(o: Outcome, dataset: str, method: str, baseline: bool = False) -> float:
    t = o.table("shortcut_check", baseline)
    return float(t[(t["dataset"] == dataset) & (t["method"] == method)]["accuracy"].iloc[0])


def _pairs(o: Outcome, method: str) -> str:
    sets = o.table("shortcut_check")["dataset"].unique()
    return "; ".join(
        f"{d}: {_accuracy(o, d, method):.2f} (default {_accuracy(o, d, method, True):.2f})"
        for d in sets
    )


def _answer_train_size(o: Outcome) -> str:
    he, cnn, hist = "synthetic-he", shortcut_check.CNN, "colour histogram"
    return (
        f"With 100 H&E training tiles the small CNN scores {_accuracy(o, he, cnn):.2f} "
        f"(default {_accuracy(o, he, cnn, True):.2f}); the colour histogram "
        f"{_accuracy(o, he, hist):.2f} (default {_accuracy(o, he, hist, True):.2f})."
    )


def _answer_epochs(o: Outcome) -> str:
    return f"Small-CNN test accuracy with 3 epochs per set — {_pairs(o, shortcut_check.CNN)}."


def _answer_tile_size(o: Outcome) -> str:
    return f"Colour-histogram accuracy on 128-px tiles per set — {_pairs(o, 'colour histogram')}."


EXERCISES = (
    Exercise(
        "train-size",
        "How many training tiles does a small CNN need to beat the colour shortcuts on H&E?",
        params={"check_he_train": 100},
        look_at="table:shortcut_check",
        answer=_answer_train_size,
    ),
    Exercise(
        "epochs",
        "Is the CNN's lead over the colour baselines a matter of training longer?",
        params={"cnn_epochs": 3},
        look_at="table:shortcut_check",
        answer=_answer_epochs,
    ),
    Exercise(
        "tile-size",
        "Does the colour histogram become a stronger shortcut on larger tiles?",
        params={"check_size": 128},
        look_at="table:shortcut_check",
        answer=_answer_tile_size,
    ),
)


CHAPTER = Chapter(
    name="data",
    title="The synthetic data: tissue with exact ground truth",
    params=DataParams,
    order=10,
    exercises=EXERCISES,
)
