"""The ``xrelevancecam`` chapter's exercises (``xaistudy exercises xrelevancecam``) and the
functions computing their answer keys from the runs' tables."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome


def _xrc_layers(o: Outcome, baseline: bool = False) -> str:
    t = o.table("miou_per_layer", baseline)
    row = t[(t["start"] == "scratch") & (t["method"] == "XRelevanceCAM")]
    if row.empty:
        return "—"
    row = row.iloc[0]
    return ", ".join(f"{c} {row[c]:.1f}" for c in ("layer1", "layer2", "layer3", "layer4"))


def _answer_rule(o: Outcome) -> str:
    return (
        f"XRelevanceCAM mIoU per layer (from scratch) with the paper's logit rule: "
        f"{_xrc_layers(o)}; with the reference code's unit rule: {_xrc_layers(o, True)}."
    )


def _answer_binarise(o: Outcome) -> str:
    return "With Otsu's threshold, " + o.changed_verdicts("table1") + " of Table 1."


def _answer_standin(o: Outcome) -> str:
    t = o.table("eq1_diagnostic")
    means = t.groupby("start")[["activation_cv", "rc_xrc_pearson"]].mean()
    rows = "; ".join(
        f"{start}: channel-weight CV {r.activation_cv:.2f}, RC-XRC Pearson {r.rc_xrc_pearson:.3f}"
        for start, r in means.iterrows()
    )
    return f"Without the stand-in pretraining only the scratch start remains ({rows})."


EXERCISES = (
    Exercise(
        "clrp-rule",
        "Does the initial CLRP relevance (the paper's text vs the authors' code) change the "
        "layer-wise mIoU?",
        params={"clrp_rule": "logit"},
        look_at="table:miou_per_layer",
        answer=_answer_rule,
    ),
    Exercise(
        "binarisation",
        "Do the Table 1 verdicts depend on how the maps are binarised?",
        params={"binarise": "otsu"},
        look_at="claim:table1.xrc_beats_rc.layer1.scratch",
        answer=_answer_binarise,
    ),
    Exercise(
        "no-pretraining",
        "What does Eq. 1's channel weighting have to act on when nothing was pretrained?",
        params={"standin": "none"},
        look_at="table:eq1_diagnostic",
        answer=_answer_standin,
    ),
)
