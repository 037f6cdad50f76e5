"""Exercises of the ``segmentation_xai`` chapter (``xaistudy exercises segmentation_xai``) and
the functions computing their answer keys from the runs' tables."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome


def _answer_rise(o: Outcome) -> str:
    t = o.table("rise_convergence")
    estimator = "coverage" if (t["estimator"] == "coverage").any() else t["estimator"].iloc[0]
    t = t[t["estimator"] == estimator]
    curve = ", ".join(f"{int(n)}: {m:.2f}" for n, m in zip(t["n_masks"], t["mean"], strict=True))
    return (
        f"Pearson correlation with the reference RISE map by number of masks "
        f"({estimator} estimator): {curve}."
    )


def _best(o: Outcome, baseline: bool = False) -> str:
    """The CAM (RISE left out: it has no layer and its own thresholds) with the highest mean
    Dice Explained."""
    from xaistudy.studies.segmentation_xai import RISE_LAYER

    t = o.table("table1", baseline).dropna(subset=["dice_explained"])
    t = t[t["layer"] != RISE_LAYER]
    r = t.sort_values("dice_explained", ascending=False).iloc[0]
    return f"{r['method']} at {r['layer']} ({r['dice_explained']:.2f})"


def _answer_thresholds(o: Outcome) -> str:
    return (
        f"Highest Dice Explained of a CAM with thresholds 0.3/0.5: {_best(o)}; with the survey's "
        f"0.05/0.1: {_best(o, True)}; " + o.changed_verdicts() + "."
    )


def _answer_layer(o: Outcome) -> str:
    return (
        f"Explaining the first decoder block only, the CAM with the highest Dice Explained is "
        f"{_best(o)}; "
        f"with both layers: {_best(o, True)}."
    )


EXERCISES = (
    Exercise(
        "rise-masks",
        "How many RISE masks until the map stops changing?",
        params={"rise_masks": [5, 10, 40, 80]},
        look_at="table:rise_convergence",
        answer=_answer_rise,
    ),
    Exercise(
        "thresholds",
        "Does the winner of Table 1 depend on the binarisation threshold?",
        params={"cam_thresholds": [0.3, 0.5]},
        look_at="table:table1",
        answer=_answer_thresholds,
    ),
    Exercise(
        "decoder-layer",
        "Where in a U-Net should a CAM look: the bottleneck or the decoder?",
        params={"layers": ["up_conv.0"]},
        look_at="table:table1",
        answer=_answer_layer,
    ),
)
