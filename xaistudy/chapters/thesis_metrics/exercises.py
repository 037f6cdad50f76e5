"""The exercises of the ``thesis_metrics`` chapter (``xaistudy exercises thesis_metrics``) and
the functions computing their answer keys from the runs."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome


def _answer_averaging(o: Outcome) -> str:
    return "Under average=macro, " + o.changed_verdicts("table6.order") + "."


def _tumour_iou(o: Outcome, baseline: bool = False) -> float:
    t = o.table("segmentation", baseline)
    row = t[(t["class"] == "all") & (t["mask_type"] == "tumour")]
    return float(row["iou"].mean())


def _answer_unet(o: Outcome) -> str:
    return (
        f"Tumour-nucleus IoU of the U-Net on its validation tiles: {_tumour_iou(o):.2f} with the "
        f"appendix's UNET, {_tumour_iou(o, True):.2f} with the default textbook U-Net; "
        + o.changed_verdicts("ground_truth")
        + " among the ground-truth claims."
    )


def _answer_empty(o: Outcome) -> str:
    ours, base = o.table("table6"), o.table("table6", baseline=True)
    return (
        f"Table 6 has {len(ours)} rows with the empty-mask tiles kept and {len(base)} without; "
        + o.changed_verdicts()
        + "."
    )


def _answer_tendency(o: Outcome) -> str:
    return "Reading the tendencies from IoU instead of F1: " + o.changed_verdicts("tendency") + "."


EXERCISES = (
    Exercise(
        "averaging",
        "Does the ranking of methods survive another averaging rule?",
        params={"average": "macro"},
        look_at="claim:table6.order.iou",
        answer=_answer_averaging,
        hint="The readings table shows every rule side by side; here macro becomes the headline.",
    ),
    Exercise(
        "thesis-unet",
        "Does the thesis's own U-Net find the tumour nuclei the metrics are scored against?",
        params={"unet_arch": "thesis"},
        look_at="table:segmentation",
        answer=_answer_unet,
    ),
    Exercise(
        "empty-masks",
        "What happens to Table 6 when tiles with an empty mask stay in the means?",
        params={"empty_masks": "keep"},
        look_at="table:empty_masks",
        answer=_answer_empty,
    ),
    Exercise(
        "tendency-metric",
        "Do the thesis's four tendencies depend on the metric they are read from?",
        params={"tendency_metric": "iou"},
        look_at="claim:tendency.1.similar_quality",
        answer=_answer_tendency,
    ),
)
