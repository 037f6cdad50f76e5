"""The chapter's tables: means with bootstrap intervals over seeds and tiles, Table B1 beside
this run's numbers, and the review's checkable numbers beside this run's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaistudy.chapters.saliency_tour.paper import PAPER
from xaistudy.chapters.saliency_tour.text import family, label
from xaistudy.explain import taxonomy as tx
from xaistudy.models.classifiers import resolve_device
from xaistudy.stats.claims import bootstrap_interval
from xaistudy.studies import saliency_tour as study

#: the columns of the scores table averaged per method
SCORE_COLUMNS = [
    "pointing_game",
    "iou",
    "positive_share",
    "sanity_spearman",
    "deletion_auc",
    "insertion_auc",
    "roughness",
    "variation",
    "negative_share",
]


def _interval(rows: pd.DataFrame, column: str) -> tuple[float, float, float]:
    data = rows[["seed", "unit", column]].rename(columns={column: "value"}).dropna()
    return bootstrap_interval(data, n_boot=500) if len(data) else (np.nan, np.nan, np.nan)


def summary(table: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and 95 % bootstrap interval (seeds and units resampled) of ``columns`` per ``by``."""
    rows = []
    for keys, g in table.groupby(by, sort=False):
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        for c in columns:
            est, lo, hi = _interval(g, c)
            row.update({c: est, f"{c} 95% CI": f"[{lo:.2f}, {hi:.2f}]"})
        row["n"] = int(g.groupby(["seed", "unit"]).ngroups)
        rows.append(row)
    return pd.DataFrame(rows)


def methods_table(result: study.Result) -> pd.DataFrame:
    """Per method: cost (median warm seconds, passes) and the means over seeds and tiles."""
    scores, timing = result.tables["scores"], result.tables["timing"]
    means = scores.groupby("method", sort=False)[SCORE_COLUMNS].mean()
    cost = timing.groupby("method", sort=False).agg(
        seconds=("seconds", "median"), forward=("forward", "first"), backward=("backward", "first")
    )
    cost.loc["rise_np"] = cost.loc["rise"] if "rise" in cost.index else np.nan
    table = means.join(cost).reset_index()
    table.insert(1, "label", [label(k) for k in table["method"]])
    table.insert(2, "family", [family(k) for k in table["method"]])
    table["passes"] = table["forward"] + table["backward"]
    table["rank_by_seconds"] = table["seconds"].rank(ascending=False, method="min").astype("Int64")
    table["tiles"] = scores.groupby("method", sort=False)["unit"].count().to_numpy()
    return table


def timing_table(result: study.Result) -> pd.DataFrame:
    """Seconds per image, what was timed, and the pass counts."""
    t = result.tables["timing"]
    device, threads = resolve_device(result.params.device), result.params.threads
    out = (
        t.groupby("method", sort=False)
        .agg(
            median_seconds=("seconds", "median"),
            min_seconds=("seconds", "min"),
            max_seconds=("seconds", "max"),
            calls=("seconds", "size"),
            forward=("forward", "first"),
            backward=("backward", "first"),
        )
        .reset_index()
    )
    out.insert(1, "label", [label(study.swept_method(k)) for k in out["method"]])
    warm = "the first tile's call (a warm-up) left out" if t["unit"].min() > 0 else "cold"
    out["timed"] = (
        f"each scored tile's map alone, one method at a time, {warm}; median over "
        f"{t['unit'].nunique()} tiles × {t['seed'].nunique()} seeds; "
        f"{threads} thread(s), device {device}"
    )
    return out.sort_values("median_seconds", ascending=False, ignore_index=True)


def table_b1(methods: pd.DataFrame) -> pd.DataFrame:
    """The review's strength and weakness of each method next to this run's numbers."""
    rows = []
    for r in methods.itertuples():
        entry = tx.review_entry(r.method) if r.method != "rise_np" else None
        rows.append(
            {
                "method": r.label,
                "review strength (B1)": entry.strength if entry and entry.strength else "—",
                "review weakness (B1)": entry.weakness if entry and entry.weakness else "—",
                "s / image (warm)": r.seconds,
                "passes / image": f"{r.forward:.0f} fwd + {r.backward:.0f} bwd",
                "pointing game": r.pointing_game,
                "IoU": r.iou,
                "deletion AUC ↓": r.deletion_auc,
                "insertion AUC ↑": r.insertion_auc,
                "roughness": r.roughness,
                "sanity ρ": r.sanity_spearman,
            }
        )
    return pd.DataFrame(rows)


def ood_table(result: study.Result) -> pd.DataFrame:
    """Per perturbation: the tumour probability of correctly classified normal tiles before
    and after, and the share of perturbed copies called tumour."""
    return summary(
        result.tables["ood"],
        ["perturbation"],
        ["p_tumour_clean", "p_tumour_perturbed", "called_tumour"],
    )


def sweep_table(result: study.Result) -> pd.DataFrame:
    """Per method: ρ with the map after a minor change vs after a new explanation seed."""
    t = result.tables["sweep"]
    if t.empty:
        return t
    out = summary(t, ["method", "change"], ["rho_altered", "rho_reseeded", "sensitivity"])
    out.insert(1, "label", [label(study.swept_method(k)) for k in out["method"]])
    return out


def completeness_table(result: study.Result) -> pd.DataFrame:
    """Mean relative summation gap per method (0: the map sums exactly as its rule says)."""
    return summary(result.tables["completeness"], ["method"], ["relative_gap"])


def implementation_table(result: study.Result) -> pd.DataFrame:
    """Per method (DeepLIFT, Integrated Gradients): mean relative L1 distance between its maps
    of the model and of the model's functionally identical twin, and the largest difference of
    the two networks' outputs."""
    t = result.tables["implementation"]
    out = summary(t, ["method"], ["relative_l1"])
    out.insert(1, "label", [label(k) for k in out["method"]])
    out["max_output_gap"] = t.groupby("method", sort=False)["output_gap"].max().to_numpy()
    return out


def hans_table(result: study.Result) -> pd.DataFrame:
    """Per model and method: pointing at mark / tumour and positive mass on the mark."""
    out = summary(
        result.tables["hans"],
        ["model", "method"],
        ["pointing_at_mark", "pointing_at_tumour", "mass_on_mark", "mark_share"],
    )
    out["method"] = [label(k) for k in out["method"]]
    return out


def clever_hans_table(result: study.Result) -> pd.DataFrame:
    """Accuracy, sensitivity and specificity of both models per test set (mean over seeds)."""
    table = (
        result.tables["accuracy"]
        .groupby(["model", "test_data"], sort=False)[["accuracy", "sensitivity", "specificity"]]
        .agg(["mean", "min", "max"])
    )
    table.columns = [c if s == "mean" else f"{c} {s}" for c, s in table.columns]
    return table.reset_index()


def rise_versions(result: study.Result) -> pd.DataFrame:
    """The two RISE normalisations side by side (pointing, IoU, deletion, insertion)."""
    s = result.tables["scores"]
    return summary(
        s[s["method"].isin(["rise", "rise_np"])].assign(method=lambda d: d["method"].map(label)),
        ["method"],
        ["pointing_game", "iou", "deletion_auc", "insertion_auc"],
    )


def paper_vs_book(result: study.Result) -> pd.DataFrame:
    """The review's checkable numbers (from :data:`PAPER`) next to this run's."""
    params, shown = result.params, result.shown
    setting = f"{params.dataset} {params.tile_size} px, {params.model}"
    return pd.DataFrame(
        [
            {
                "statement": "Fig. 7: prediction score of the explained image",
                "paper": PAPER.number("fig7.score"),
                "this book": f"{shown.p:.2f} (tumour, first "
                f"scored tile of seed {params.seeds[0]})",
                "data": setting,
            },
            {
                "statement": "Grad-CAM's resolution is that of the last convolutional feature map",
                "paper": "qualitative (Sect. 2.2)",
                "this book": f"{shown.feature_map} feature map "
                f"for a {params.tile_size}×{params.tile_size} tile",
                "data": setting,
            },
        ]
    )


def all_tables(result: study.Result) -> dict[str, pd.DataFrame]:
    """Every table of the chapter, by the name of its CSV, in the order of the page."""
    params = result.params
    methods = methods_table(result)
    return {
        "settings": PAPER.settings_table(params),
        "classifier": result.tables["classifier"],
        "taxonomy": tx.taxonomy_table(study.grid_methods(params)),
        "methods": methods,
        "table_b1": table_b1(methods),
        "timing": timing_table(result),
        "in_distribution": ood_table(result),
        "rise_versions": rise_versions(result),
        "parameter_sensitivity": sweep_table(result),
        "summation": completeness_table(result),
        "implementation_invariance": implementation_table(result),
        "sanity_cascade": result.shown.cascade,
        "clever_hans": clever_hans_table(result),
        "clever_hans_maps": hans_table(result),
        "paper_vs_book": paper_vs_book(result),
    }
