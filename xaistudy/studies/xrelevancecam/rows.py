"""The paired rows the xrelevancecam claims are judged on (columns ``seed``, ``unit``, ``value``;
the bootstrap resamples seeds, then test patients with all their frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaistudy.stats.claims import best_margin, paired_difference, worst_margin  # noqa: F401
from xaistudy.stats.ranking import kendall_tau

from .measure import LAYERS, METHODS

_FRAME_COLUMNS = ["seed", "unit", "frame", "value"]
_UNIT_COLUMNS = ["seed", "unit", "value"]


def of_start(table: pd.DataFrame, start: str) -> pd.DataFrame:
    """The rows of ``table`` measured with backbone start ``start``."""
    return table[table["start"] == start] if len(table) else table


def iou_difference(
    iou: pd.DataFrame, model: str, a: tuple[str, str], b: tuple[str, str], value: str = "iou"
) -> pd.DataFrame:
    """Per frame: IoU of (method, view) ``a`` minus that of ``b`` of ``model``; columns seed,
    unit, frame, value. ``value="iou_other_mask"``: the same against another frame's mask."""
    if len(iou) == 0:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    t = iou[iou["model"] == model]
    keys = ["seed", "unit", "frame"]
    va = t[(t["method"] == a[0]) & (t["view"] == a[1])].set_index(keys)[value]
    vb = t[(t["method"] == b[0]) & (t["view"] == b[1])].set_index(keys)[value]
    return (va - vb).dropna().rename("value").reset_index()


def cell_difference(
    iou: pd.DataFrame, a: tuple[str, str, str], b: tuple[str, str, str], value: str = "iou"
) -> pd.DataFrame:
    """Per frame: IoU of cell ``a`` = (model, method, view) minus that of cell ``b`` (e.g. the
    dropout model evaluated with dropout on against off, on the same frames)."""
    if len(iou) == 0:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    keys = ["seed", "unit", "frame"]

    def cell(c):
        t = iou[(iou["model"] == c[0]) & (iou["method"] == c[1]) & (iou["view"] == c[2])]
        return t.set_index(keys)[value]

    return (cell(a) - cell(b)).dropna().rename("value").reset_index()


def spread_difference(
    iou: pd.DataFrame, model: str, methods: list[str], a: str, b: str, value: str = "iou"
) -> pd.DataFrame:
    """Per frame: the spread (max - min) of IoU over ``methods`` at view ``a`` minus the spread
    at view ``b`` (> 0: the methods differ more at ``a``)."""
    if len(iou) == 0:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    t = iou[(iou["model"] == model) & iou["method"].isin(methods)]
    w = t.pivot_table(index=["seed", "unit", "frame"], columns=["view", "method"], values=value)
    if a not in w.columns.get_level_values(0) or b not in w.columns.get_level_values(0):
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    spread = {v: w[v].max(axis=1) - w[v].min(axis=1) for v in (a, b)}
    return (spread[a] - spread[b]).dropna().rename("value").reset_index()


def margin_rows(
    iou: pd.DataFrame,
    model: str,
    pairs: list[tuple[tuple[str, str], tuple[str, str]]],
    value: str = "iou",
) -> pd.DataFrame:
    """Per frame and pair ``k``: IoU of (method, view) ``a`` minus that of ``b``, ``pairs[k] =
    (a, b)``; columns seed, unit, frame, code (= k), value. Judged with :data:`worst_margin`
    ("a beats b for every pair") or :data:`best_margin` ("a is below b for every pair")."""
    parts = []
    for k, (a, b) in enumerate(pairs):
        d = iou_difference(iou, model, a, b, value)
        parts.append(d.assign(code=k))
    if not parts:
        return pd.DataFrame(columns=[*_FRAME_COLUMNS, "code"])
    return pd.concat(parts, ignore_index=True)


def false_positive_margin(
    iou: pd.DataFrame, model: str, views: tuple[str, ...], value: str = "fpr"
) -> pd.DataFrame:
    """:func:`margin_rows` of every other CAM's false-positive rate minus XRelevanceCAM's at
    each of ``views``, one ``code`` per (view, other CAM): > 0 everywhere, by
    :data:`worst_margin`, when XRelevanceCAM marks the least non-annotated tissue.
    ``value="fpr_other_mask"``: the same against another frame's mask; empty rows when the
    table has no such column (a run from before the rate was measured)."""
    if len(iou) == 0 or value not in iou:
        return pd.DataFrame(columns=[*_FRAME_COLUMNS, "code"])
    xrc = "xrelevancecam"
    pairs = [((m, v), (xrc, v)) for v in views for m in METHODS if m != xrc]
    return margin_rows(iou, model, pairs, value)


def layer_mean_difference(
    iou: pd.DataFrame, model: str, a: str, b: str, value: str = "iou"
) -> pd.DataFrame:
    """Per frame: the mean over the four stages of IoU(``a``) - IoU(``b``) of ``model``
    (``value`` as in :func:`iou_difference`)."""
    if len(iou) == 0:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    t = iou[(iou["model"] == model) & iou["view"].isin(LAYERS)]
    w = t.pivot_table(index=["seed", "unit", "frame"], columns="method", values=value)
    if a not in w or b not in w:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    return (w[a] - w[b]).dropna().rename("value").reset_index()


def axiom_difference(axioms: pd.DataFrame, axiom: str, worse: str, better: str) -> pd.DataFrame:
    """Per patient: ``axiom`` of ``worse`` minus that of ``better``, each the mean over stages
    (positive: ``better`` has the smaller error)."""
    if len(axioms) == 0 or "axiom" not in axioms:
        return pd.DataFrame(columns=_UNIT_COLUMNS)
    rows = axioms[axioms["axiom"] == axiom]
    return paired_difference(rows, worse, better, value="value")


def sanity_margin(sanity: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per frame: ``threshold`` minus the Spearman similarity with every unit randomised."""
    if len(sanity) == 0:
        return pd.DataFrame(columns=_UNIT_COLUMNS)
    full = sanity[sanity["stages"] == sanity["stages"].max()]
    return full.assign(value=threshold - full["spearman"])[_UNIT_COLUMNS]


def deterioration_tau(similarity) -> float:
    """Kendall's tau-b between the step (1, 2, ... units randomised) and the similarity to the
    unrandomised map: -1 when every step lowers it, 0 when the similarity is flat (no step
    changes it: no deterioration); NaN with fewer than two finite values."""
    y = np.asarray(similarity, dtype=np.float64)
    finite = y[np.isfinite(y)]
    if finite.size >= 2 and np.ptp(finite) == 0:
        return 0.0
    return kendall_tau(np.arange(1, y.size + 1), y)


def deterioration_rows(sanity: pd.DataFrame, similarity: str = "spearman") -> pd.DataFrame:
    """Per frame: :func:`deterioration_tau` of its similarity over the randomised steps (the
    trained step, similarity 1 by definition, left out: an abrupt fall at the first step and a
    flat tail give about 0, only a gradual fall gives < 0)."""
    if len(sanity) == 0:
        return pd.DataFrame(columns=_FRAME_COLUMNS)
    steps = sanity[sanity["stages"] >= 1].sort_values("stages")
    taus = steps.groupby(["seed", "unit", "frame"], sort=True)[similarity].apply(deterioration_tau)
    return taus.dropna().rename("value").reset_index()[_FRAME_COLUMNS]


def pretraining_spread(diagnostic: pd.DataFrame) -> pd.DataFrame | None:
    """Per test patient: the CV of the channel activation totals (mean over stages and
    frames, selective-kernel model) of the pretrained start minus the from-scratch one; None
    when the run lacks either start."""
    d = diagnostic[diagnostic["model"] == "sk"] if len(diagnostic) else None
    if d is None or not {"scratch", "pretrained"} <= set(d["start"]):
        return None
    return paired_difference(d, "pretrained", "scratch", by="start", value="activation_cv")
