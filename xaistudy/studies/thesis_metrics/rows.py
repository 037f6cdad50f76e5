"""The row tables of the ``thesis_metrics`` study: per-tile scores under every reading, Table 6
with the book's bootstrap, the U-Net's own quality, the tendencies, and the measurements and
statistics the claims are judged on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xaistudy.data import synthetic
from xaistudy.evaluate import controls
from xaistudy.evaluate import quality as q
from xaistudy.evaluate import tendencies as tend
from xaistudy.stats.claims import ArrayStatistic, bootstrap_interval
from xaistudy.stats.ranking import kendall_tau
from xaistudy.studies.thesis_metrics.seed import (
    CLASSES,
    MASK_TYPES,
    METHODS,
    SeedRun,
    ground_truths,
)

#: the null controls of the Table-6 order and ground-truth claims
#: (:mod:`xaistudy.evaluate.controls`)
CONTROLS: tuple[str, ...] = ("coverage-matched maps", "another tile's mask")

SCORE_COLUMNS: tuple[str, ...] = (
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
)


# -- scores -----------------------------------------------------------------------------------
def score(
    runs: tuple[SeedRun, ...] | list[SeedRun],
    params: Any,
    readings: tuple[str, ...] = q.READINGS,
    *,
    control: str | None = None,
    mask_types: tuple[str, ...] = MASK_TYPES,
) -> pd.DataFrame:
    """Per-tile scores: seed, unit (test tile), class, tendency, method, ground_truth,
    mask_type, reading, empty (mask without pixels), degenerate and the six metrics.

    ``control`` scores a null control instead (:data:`CONTROLS`): every map's pixels shuffled
    (``coverage-matched maps``), or each tile's U-Net masks replaced by those of another tile of
    its class (``another tile's mask``; the exact masks stay the tile's own)."""
    if control not in (None, *CONTROLS):
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}, got {control!r}")
    frames = []
    for run in runs:
        tt = tend.tendency_table(run.probs, run.labels, CLASSES, params.prob_threshold)
        maps, partner = run.maps, np.arange(len(run.labels))
        if control == "coverage-matched maps":
            maps = {
                m: controls.coverage_matched(v, (run.seed, k))
                for k, (m, v) in enumerate(maps.items())
            }
        elif control == "another tile's mask":
            partner = controls.partner_index(len(run.labels), (run.seed, 1), same=run.labels)
        for gt in ground_truths(params):
            index = partner if gt == "U-Net" else np.arange(len(run.labels))
            binary = run.masks(gt, params.mask_threshold)
            for reading in readings:
                masks = {mt: binary[mt][index] for mt in mask_types}
                if reading == "thesis" and gt == "U-Net":
                    masks = {
                        mt: run.unet_prob[index, k]
                        for k, mt in enumerate(MASK_TYPES)
                        if mt in mask_types
                    }
                for method in METHODS:
                    rows = pd.DataFrame(
                        q.score_maps(
                            maps[method],
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
    return pd.concat(frames, ignore_index=True)[list(SCORE_COLUMNS)]


def control_scores(runs: tuple[SeedRun, ...] | list[SeedRun], params: Any) -> pd.DataFrame:
    """The scores of every control of :data:`CONTROLS` (readings ``params.average`` and
    ``binary``, which the nuclei-share claims read; both mask types), with a ``control`` column:
    the claims' null measurements, on the same tiles and from the same maps and masks as the
    run's own scores."""
    readings = tuple(dict.fromkeys((params.average, "binary")))
    return pd.concat(
        [score(runs, params, readings, control=c).assign(control=c) for c in CONTROLS],
        ignore_index=True,
    )


def kept(scores: pd.DataFrame, params: Any) -> pd.DataFrame:
    """The rows the means and claims use: without empty-mask tiles when ``empty_masks`` is
    ``exclude``."""
    return scores[~scores["empty"]] if params.empty_masks == "exclude" else scores


def headline(scores: pd.DataFrame, params: Any, **where: str) -> pd.DataFrame:
    """The kept rows of reading ``params.average`` (and ``column == value`` for ``where``)."""
    sel = scores["reading"] == params.average
    for column, value in where.items():
        sel &= scores[column] == value
    return kept(scores[sel], params)


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


def table6(scores: pd.DataFrame, params: Any) -> pd.DataFrame:
    """Table 6 of this book (reading ``params.average``): mean, 95 % interval, n, n_nan and
    degenerate pairs per ground truth, mask type, method, class and metric, all seeds. The
    interval is the book's bootstrap: seeds, then test tiles within each drawn seed."""
    sel = headline(scores, params)
    by = ["ground_truth", "mask_type", "method", "class"]
    if sel.empty:
        cols = ["metric", "mean", "ci_low", "ci_high", "n", "n_nan", "n_degenerate"]
        return pd.DataFrame(columns=[*by, *cols])
    return q.summarise(sel, by, n_boot=params.n_boot, seed=params.seeds[0], skip_nan=True)


def coverage(runs: tuple[SeedRun, ...], params: Any) -> pd.DataFrame:
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


def class_accuracy(runs: tuple[SeedRun, ...]) -> pd.DataFrame:
    """Per-class test accuracy (%) per seed, their average and the number of test tiles."""
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
    return pd.DataFrame(rows)


def _pixel_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "iou": q.iou(pred.ravel(), truth.ravel(), "binary"),
        "dice": q.f1(pred.ravel(), truth.ravel(), "binary"),
    }


def segmentation(runs: tuple[SeedRun, ...], params: Any) -> pd.DataFrame:
    """The U-Net's own quality: on its validation tiles, and per class of the grading test
    tiles against the exact masks (synthetic only), pooled pixels, mean over seeds."""
    rows = []
    codes = (synthetic.NEOPLASTIC, synthetic.NON_NEOPLASTIC)
    for r in runs:
        for k, (mt, code) in enumerate(zip(MASK_TYPES, codes, strict=True)):
            pred, truth = r.he_val["prob"][:, k] > params.mask_threshold, r.he_val["types"] == code
            data = f"{params.nuclei_dataset} validation tiles"
            rows.append(_segmentation_row(r.seed, data, "all", mt, pred, truth))
            if r.exact is None:
                continue
            for c, name in enumerate(CLASSES):
                sel = r.labels == c
                pred = r.unet_prob[sel, k] > params.mask_threshold
                truth = r.exact[sel] == code
                rows.append(_segmentation_row(r.seed, "grading test tiles", name, mt, pred, truth))
    table = pd.DataFrame(rows)
    return (
        table.groupby(["data", "mask_type", "class"], sort=False)[
            ["iou", "dice", "share_unet", "share_exact"]
        ]
        .mean()
        .reset_index()
    )


def _segmentation_row(seed, data, cls, mask_type, pred, truth) -> dict[str, Any]:
    return {
        "seed": seed,
        "data": data,
        "class": cls,
        "mask_type": mask_type,
        **_pixel_scores(pred, truth),
        "share_unet": float(pred.mean()),
        "share_exact": float(truth.mean()),
    }


def ground_truth_effect(scores: pd.DataFrame, params: Any) -> pd.DataFrame:
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


# -- the tendencies (Table 5) -----------------------------------------------------------------
def tendency_counts(runs: tuple[SeedRun, ...], params: Any) -> pd.DataFrame:
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


def tendency_differences(scores: pd.DataFrame, params: Any, case: str) -> pd.DataFrame:
    """Per tile of tendency ``case``: its score minus the mean of the other tiles of the same
    class (same seed and method), in standard deviations of the metric (per seed and method),
    averaged over the methods. Controls the class mix: each tile is compared within its class.
    Tumour mask, U-Net masks, reading ``average``, empty masks per ``empty_masks``."""
    metric = params.tendency_metric
    sel = headline(scores, params, mask_type="tumour", ground_truth="U-Net")
    sel = sel.dropna(subset=[metric])
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


def with_case_shuffled(
    scores: pd.DataFrame, control_table: pd.DataFrame, case: str
) -> pd.DataFrame:
    """``scores`` with tendency ``case``'s rows replaced by the same tiles scored from their
    coverage-matched maps (``control_table``: :func:`control_scores`): a case known to differ
    when the maps say where the nuclei are. :func:`tendency_differences` of it is the positive
    control of a "similar quality" claim."""
    shuffled = control_table[
        (control_table["control"] == "coverage-matched maps") & (control_table["tendency"] == case)
    ]
    kept_rows = scores[scores["tendency"] != case]
    return pd.concat([kept_rows, shuffled[scores.columns]], ignore_index=True)


def _spread(code: np.ndarray, value: np.ndarray, n: int) -> float:
    means = means_by_code(code, value, n)
    return float(np.nanmax(means) - np.nanmin(means))


def spread_statistic(n_methods: int) -> ArrayStatistic:
    """The largest difference between two methods' mean ``value`` (rows of
    :func:`method_rows`): an equivalence claim's statistic ("no method stands out")."""
    return ArrayStatistic(("code", "value"), lambda code, v: _spread(code, v, n_methods))


# -- what the claims measure ------------------------------------------------------------------
def method_rows(sel: pd.DataFrame, metric: str, order: list[str]) -> pd.DataFrame:
    """seed, unit, method, ``code`` (position in ``order``), ``exact`` (1 for the exact
    masks) and ``value`` (the ``metric``) of the score rows ``sel``."""
    out = sel[["seed", "unit", "method", "ground_truth"]].copy()
    out["code"] = out["method"].map({m: i for i, m in enumerate(order)}).astype(int)
    out["exact"] = (out["ground_truth"] == "exact").astype(int)
    out["value"] = sel[metric].to_numpy(dtype=np.float64)
    return out.reset_index(drop=True)


def means_by_code(code: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``value`` per integer ``code`` 0..n-1, NaN values skipped (NaN if none)."""
    value = np.asarray(value, dtype=np.float64)
    ok = np.isfinite(value)
    sums = np.bincount(code[ok], value[ok], minlength=n)
    counts = np.bincount(code[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def order_tau(order: list[str], means: pd.Series) -> float:
    """Kendall's tau between ``order`` (best first) and the per-method ``means`` (methods
    absent from ``means`` or NaN are left out)."""
    return kendall_tau(-np.arange(len(order)), means.reindex(order).to_numpy(np.float64))


def order_statistic(order: list[str]) -> ArrayStatistic:
    """Kendall's tau between ``order`` (best first) and the mean ``value`` per method code
    (rows of :func:`method_rows`); the statistic of
    :func:`xaistudy.stats.claims.order_agreement`, on arrays."""
    ranks = -np.arange(len(order), dtype=np.float64)

    def tau(code: np.ndarray, value: np.ndarray) -> float:
        return kendall_tau(ranks, means_by_code(code, value, len(order)))

    return ArrayStatistic(("code", "value"), tau)


def _same_order(code: np.ndarray, exact: np.ndarray, value: np.ndarray) -> float:
    n = len(METHODS)
    means = means_by_code(code + n * exact, value, 2 * n)
    return kendall_tau(means[:n], means[n:])


#: Kendall's tau between the method means against the U-Net and against the exact masks
#: (rows of :func:`method_rows` over both ground truths)
same_order = ArrayStatistic(("code", "exact", "value"), _same_order)


#: the thesis's cancer grades (its conclusions 1 and 6 speak of "images with cancer labels")
CANCER: tuple[str, ...] = tuple(c for c in CLASSES if c.startswith("R"))


def mask_type_difference(scores: pd.DataFrame, params: Any, metric: str) -> pd.DataFrame:
    """Per tile of a cancer grade (U-Net masks, reading ``average``): ``metric`` against the
    tumour mask minus against the non-tumour mask, mean over the methods (conclusion 1)."""
    sel = headline(scores, params, ground_truth="U-Net")
    sel = sel[sel["class"].isin(CANCER)]
    wide = sel.pivot_table(
        index=["seed", "unit", "method"], columns="mask_type", values=metric, aggfunc="mean"
    ).reindex(columns=list(MASK_TYPES))
    diff = (wide["tumour"] - wide["non-tumour"]).dropna().rename("value").reset_index()
    return diff.groupby(["seed", "unit"], as_index=False)["value"].mean()


def nuclei_share_difference(
    scores: pd.DataFrame, params: Any, method: str, inside: bool = True
) -> pd.DataFrame:
    """Per tile: the share of ``method``'s highlighted pixels that lie on nuclei (tumour or
    non-tumour; ``inside=False``: off the nuclei) minus the mean share of the other methods
    (conclusions 3 and 4). The share on a mask is the binary reading's precision against it
    (the two nuclei masks are disjoint); the exact masks when the data have them, else the
    U-Net's. A map with no pixel above the threshold (or every pixel) has no share and is left
    out, not scored 0 (a degenerate row whose mask is not empty)."""
    truth = "exact" if (scores["ground_truth"] == "exact").any() else "U-Net"
    sel = scores[(scores["reading"] == "binary") & (scores["ground_truth"] == truth)]
    sel = kept(sel[~(sel["degenerate"] & ~sel["empty"])], params)
    on = sel.pivot_table(
        index=["seed", "unit", "method"], columns="mask_type", values="precision", aggfunc="mean"
    ).reindex(columns=list(MASK_TYPES))
    share = on.sum(axis=1, min_count=len(MASK_TYPES))  # NaN when a map has no pixel
    wide = (share if inside else 1 - share).unstack("method")
    if method not in wide:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    others = wide.drop(columns=method)
    value = (wide[method] - others.mean(axis=1, skipna=False)).dropna()
    return value.rename("value").reset_index()


def method_difference(
    scores: pd.DataFrame, params: Any, metric: str, a: str, b: str
) -> pd.DataFrame:
    """Per tile (tumour mask, U-Net, reading ``average``): ``metric`` of method ``a`` minus
    that of ``b`` (conclusion 2, one pair at a time)."""
    sel = headline(scores, params, mask_type="tumour", ground_truth="U-Net")
    wide = sel.pivot_table(index=["seed", "unit"], columns="method", values=metric, aggfunc="mean")
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    return (wide[a] - wide[b]).dropna().rename("value").reset_index()


def grade_rows(
    scores: pd.DataFrame, params: Any, metric: str, best: tuple[str, ...]
) -> pd.DataFrame:
    """Per tile of a cancer grade (tumour mask, U-Net, reading ``average``): ``metric``, mean
    over the methods, and ``group`` 1 for the grades ``best``, 0 for the other cancer grades
    (conclusion 6, judged with :data:`group_gap`)."""
    sel = headline(scores, params, mask_type="tumour", ground_truth="U-Net")
    sel = sel[sel["class"].isin(CANCER)]
    rows = sel.groupby(["seed", "unit", "class"], as_index=False)[metric].mean()
    rows = rows.rename(columns={metric: "value"}).dropna(subset=["value"])
    return rows.assign(group=rows["class"].isin(best).astype(int))[
        ["seed", "unit", "group", "value"]
    ]


def _group_gap(group: np.ndarray, value: np.ndarray) -> float:
    a, b = value[group == 1], value[group == 0]
    return float(a.mean() - b.mean()) if a.size and b.size else float("nan")


#: mean ``value`` of the rows of group 1 minus that of group 0 (rows of :func:`grade_rows`)
group_gap = ArrayStatistic(("group", "value"), _group_gap)


def abs_mean(rows: pd.DataFrame) -> float:
    """|mean of ``value``|."""
    return abs(float(rows["value"].mean()))
