"""The paired rows the xrelevancecam claims are judged on (columns ``seed``, ``unit``, ``value``;
the bootstrap resamples seeds, then test patients with all their frames)."""

from __future__ import annotations

import pandas as pd

from xaistudy.stats.claims import paired_difference

from .measure import LAYERS

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


def pretraining_spread(diagnostic: pd.DataFrame) -> pd.DataFrame | None:
    """Per test patient: the CV of the channel activation totals (mean over stages and
    frames, selective-kernel model) of the pretrained start minus the from-scratch one; None
    when the run lacks either start."""
    d = diagnostic[diagnostic["model"] == "sk"] if len(diagnostic) else None
    if d is None or not {"scratch", "pretrained"} <= set(d["start"]):
        return None
    return paired_difference(d, "pretrained", "scratch", by="start", value="activation_cv")
