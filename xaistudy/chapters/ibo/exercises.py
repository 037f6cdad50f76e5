"""The ``ibo`` chapter's exercises (``xaistudy exercises ibo``) and their answer keys."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome


def _answer_replicates(o: Outcome) -> str:
    return "With one inpainting-noise replicate per tile, " + o.changed_verdicts("table9") + "."


def _evals(o: Outcome, baseline: bool = False) -> int:
    return int(o.table("repaint_cost", baseline)["unet_evals_per_image_per_level"].iloc[0])


def _answer_resamplings(o: Outcome) -> str:
    return (
        f"RePaint with r = 1 calls the UNet {_evals(o)} times per image and level, against "
        f"{_evals(o, True)} with the default r; " + o.changed_verdicts("table1") + " of Table 1."
    )


def _ranking(o: Outcome, baseline: bool = False) -> str:
    t = o.table("iou_ranking", baseline).sort_values("gt_rank")
    return " > ".join(t["label"])


def _answer_iou_rule(o: Outcome) -> str:
    return (
        f"Ground-truth ranking with k-means regions: {_ranking(o)}; with the threshold rule: "
        f"{_ranking(o, True)}."
    )


EXERCISES = (
    Exercise(
        "one-replicate",
        "Does IBO still win Table 9 when each tile is inpainted once?",
        params={"replicates": 1},
        look_at="table:mard",
        answer=_answer_replicates,
    ),
    Exercise(
        "resamplings",
        "What do RePaint's resamplings buy: cost against closeness to the data?",
        params={"resamplings": 1},
        look_at="table:repaint_cost",
        answer=_answer_resamplings,
    ),
    Exercise(
        "iou-rule",
        "Is the ground-truth ranking of the methods a property of the maps or of the rule "
        "that cuts them into regions?",
        params={"iou_rule": "kmeans"},
        look_at="table:iou_ranking",
        answer=_answer_iou_rule,
    ),
)
