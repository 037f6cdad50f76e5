"""The ``xrelevancecam`` chapter's tables: the paper's Tables 1-4 from the study's long tables,
the sanity check, Eq. 1's diagnostic, the profiles and the paper beside this run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xaistudy.chapters.xrelevancecam.paper import PAPER
from xaistudy.chapters.xrelevancecam.params import XRelevanceCamParams
from xaistudy.core.params import PROFILES
from xaistudy.explain.relevance import LABELS
from xaistudy.studies import xrelevancecam as study

LAYERS, VIEWS = study.LAYERS, study.VIEWS


def _label(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["method"] = pd.Categorical(out["method"], list(study.METHODS), ordered=True)
    out = out.sort_values([c for c in ("start", "model", "method") if c in out]).copy()
    out["method"] = out["method"].map(LABELS).astype(str)
    return out.reset_index(drop=True)


def miou_table(result: study.Result, model: str, views: Sequence[str]) -> pd.DataFrame:
    """Mean IoU (%) per start and method over every scored frame of every seed."""
    t = result.iou[result.iou["model"] == model] if len(result.iou) else result.iou
    if len(t) == 0:  # no frame scored for this model at any seed
        return pd.DataFrame(columns=["start", "method", *views, "frames (all seeds)"])
    wide = t.pivot_table(index=["start", "method"], columns="view", values="iou", aggfunc="mean")[
        list(views)
    ].reset_index()
    if set(LAYERS) <= set(views):
        wide["average"] = wide[list(LAYERS)].mean(axis=1)
    n = t.groupby("start").apply(
        lambda g: g[["seed", "unit", "frame"]].drop_duplicates().shape[0], include_groups=False
    )
    wide["frames (all seeds)"] = wide["start"].map(n)
    return _label(wide)


def false_positive_table(result: study.Result) -> pd.DataFrame:
    """Per start, method and quantity, the mean per stage over every scored frame of every seed
    (SK backbone): the false-positive rate (% of the non-annotated pixels marked) and the
    marked area (% of the frame), which lowers the rate by itself."""
    names = {"fpr": "false-positive rate (%)", "marked": "marked area (%)"}
    t = result.iou[result.iou["model"] == "sk"] if len(result.iou) else result.iou
    if len(t) == 0 or "fpr" not in t:
        return pd.DataFrame(columns=["start", "method", "quantity", *LAYERS])
    t = t[t["view"].isin(LAYERS)].melt(
        id_vars=["start", "method", "view"], value_vars=list(names), var_name="quantity"
    )
    wide = t.pivot_table(
        index=["start", "method", "quantity"], columns="view", values="value", aggfunc="mean"
    )[list(LAYERS)].reset_index()
    wide["quantity"] = wide["quantity"].map(names)
    return _label(wide)


def axioms_table(result: study.Result) -> pd.DataFrame:
    """Table 4: mean over patients and seeds, per start, method, axiom and stage."""
    if len(result.axioms) == 0:
        return pd.DataFrame(columns=["start", "method", "axiom", *LAYERS, "average"])
    wide = result.axioms.pivot_table(
        index=["start", "method", "axiom"], columns="layer", values="value", aggfunc="mean"
    )[list(LAYERS)]
    wide["average"] = wide.mean(axis=1)
    return _label(wide.reset_index())


def sanity_table(result: study.Result) -> pd.DataFrame:
    """Mean similarity to the trained map per start and number of randomised units, and the
    Spearman similarity of the same cascade on the untrained ResNet (Fig. 5's control)."""
    sa = result.sanity
    if len(sa) == 0:
        return pd.DataFrame(columns=["start", "stages", "randomised", "spearman", "ssim"])
    t = sa.groupby(["start", "stages", "randomised"], sort=True)[["spearman", "ssim"]]
    out = t.mean().reset_index()
    out["frames (all seeds)"] = sa.groupby(["start", "stages"]).size().to_numpy()
    blank = result.sanity_untrained
    if len(blank):
        null = blank.groupby(["start", "stages"])["spearman"].mean()
        out["spearman, untrained network"] = [
            null.get((a, k), np.nan) for a, k in zip(out["start"], out["stages"], strict=True)
        ]
    return out


def diagnostic_table(result: study.Result) -> pd.DataFrame:
    """Eq. 1's diagnostic per start, model and stage (means over frames and seeds)."""
    if len(result.diagnostic) == 0:
        return pd.DataFrame(columns=["start", "model", "layer", "activation_cv", "rc_xrc_pearson"])
    return (
        result.diagnostic.groupby(["start", "model", "layer"])[["activation_cv", "rc_xrc_pearson"]]
        .mean()
        .reset_index()
    )


def _book_value(tables: dict, key: str, start: str) -> float:
    """This run's mean for the paper's number ``key`` (NaN when the run has none)."""
    parts = key.split(".")
    try:
        if parts[0] == "table1":
            g, col, method = tables["t1"][start], parts[2], parts[1]
        elif parts[0] == "table2":
            g, method = tables["t2"][(start, parts[1])], parts[2]
            col = "layer4" if parts[3] == "4" else parts[3]
        elif parts[0] == "table3":
            g, method, col = tables["t3"][start], parts[2], parts[3]
        else:
            g = tables["t4"][start]
            g, method, col = g[g["axiom"] == parts[2]], parts[1], "average"
        return float(g.loc[g["method"] == LABELS[method], col].iloc[0])
    except (KeyError, IndexError):
        return np.nan


def paper_vs_book(result: study.Result, profile: str = "") -> pd.DataFrame:
    """The paper's Tables 1-4 numbers beside this run's means (each start), from ``PAPER``."""
    params = result.params
    tables = {
        "t1": {s: g for s, g in miou_table(result, "sk", LAYERS).groupby("start")},
        "t2": {
            (s, m): g
            for m in ("sk", "resnet")
            for s, g in miou_table(result, m, VIEWS).groupby("start")
        },
        "t3": {s: g for s, g in miou_table(result, "sk_dropout:on", VIEWS).groupby("start")},
        "t4": {s: g for s, g in axioms_table(result).groupby("start")}
        if len(result.axioms)
        else {},
    }
    data_name = "synthetic pCLE" if study.is_synthetic(params) else params.dataset
    rows = []
    for key, paper_value in PAPER.numbers.items():
        table = key.split(".")[0]
        if table not in ("table1", "table2", "table3", "table4"):
            continue
        row = {"table": table.replace("table", "Table "), "quantity": key}
        row["paper"] = float(paper_value)
        for start in study.starts(params):
            row[f"this book ({start})"] = _book_value(tables, key, start)
        row["data + profile"] = f"{data_name}, {profile}, {params.backbone} / {params.resnet}"
        rows.append(row)
    return pd.DataFrame(rows)


def profiles_table() -> pd.DataFrame:
    """What each profile trains and scores."""
    from xaistudy.data.synthetic import PCLE_FOV_FRAC
    from xaistudy.models.pcle import fov_crop_size

    rows = []
    fields = XRelevanceCamParams.model_fields
    for prof in PROFILES:
        p = XRelevanceCamParams.model_construct(
            **{
                **{k: f.get_default(call_default_factory=True) for k, f in fields.items()},
                **XRelevanceCamParams.profile_defaults(prof),
            }
        )
        side = fov_crop_size(p.frame_size, PCLE_FOV_FRAC) if p.centre_crop else p.frame_size
        rows.append(
            {
                "profile": prof,
                "dataset": p.dataset,
                "seeds": len(p.seeds),
                "backbones": f"{p.backbone} / {p.resnet}",
                "frame / input (px)": f"{p.frame_size} / {side}",
                "train patients x frames": f"{p.n_patients or 'all'} x "
                f"{p.frames_per_patient or 'all'}",
                "max epochs": p.epochs,
                "pretrained start": "ImageNet" if p.pretrained else f"stand-in: {p.standin}",
            }
        )
    return pd.DataFrame(rows)


#: every table of the chapter: name -> caption (``{backbone}``, ``{resnet}``: the run's)
CAPTIONS = {
    "settings": "The paper's settings and this run's",
    "profiles": "What each profile trains (paper: meant for a GPU)",
    "splits": "Patients and frames per split and seed",
    "models": "Models per seed and start; frames scored: correctly classified meningioma test "
    "frames with an annotated region",
    "miou_per_layer": "Table 1: mIoU (%) per stage, {backbone}",
    "miou_aggregation_sk": "Table 2: mIoU (%) by aggregation, {backbone}",
    "miou_aggregation_resnet": "Table 2: mIoU (%) by aggregation, {resnet}",
    "dropout_on": "Table 3: mIoU (%) with dropout on, {backbone} + dropout",
    "dropout_off": "Table 3: mIoU (%) with dropout off, {backbone} + dropout",
    "false_positives": "False positives per stage, {backbone}: % of the non-annotated pixels "
    "the binarised map marks, and the % of the frame it marks",
    "axioms": "Table 4: axioms, {backbone}, mean over patients and seeds (lower is better)",
    "sanity": "Similarity to the trained map, mean per step",
    "eq1_diagnostic": "Channel activation-total spread and RelevanceCAM-XRelevanceCAM correlation",
    "paper_vs_book": "Paper vs this book",
}


def caption(name: str, params) -> str:
    """The caption of table ``name`` for the run of ``params``."""
    return CAPTIONS[name].format(backbone=params.backbone, resnet=params.resnet)


def tables(result: study.Result, profile: str = "") -> dict[str, pd.DataFrame]:
    """Every table of the chapter by name (the names of :data:`CAPTIONS`)."""
    aggregation = ["layer4", "4+3", "4+3+2", "4+3+2+1"]
    return {
        "settings": PAPER.settings_table(result.params),
        "profiles": profiles_table(),
        "splits": result.counts,
        "models": result.models,
        "miou_per_layer": miou_table(result, "sk", LAYERS),
        "miou_aggregation_sk": miou_table(result, "sk", aggregation),
        "miou_aggregation_resnet": miou_table(result, "resnet", aggregation),
        "dropout_on": miou_table(result, "sk_dropout:on", VIEWS),
        "dropout_off": miou_table(result, "sk_dropout:off", VIEWS),
        "false_positives": false_positive_table(result),
        "axioms": axioms_table(result),
        "sanity": sanity_table(result),
        "eq1_diagnostic": diagnostic_table(result),
        "paper_vs_book": paper_vs_book(result, profile),
    }
