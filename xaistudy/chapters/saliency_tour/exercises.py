"""The chapter's exercises: one lever each, where to look, and the answer key computed from
the exercise's run and a run with the defaults."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome


def _occlusion(o: Outcome, baseline: bool = False) -> tuple[float, float, float]:
    t = o.table("methods", baseline).set_index("method").loc["occlusion"]
    return float(t["seconds"]), float(t["forward"]), float(t["iou"])


def _answer_window(o: Outcome) -> str:
    (_, f, iou), (_, bf, biou) = _occlusion(o), _occlusion(o, True)
    return (  # the cost as forward passes: the seconds (column `seconds`) vary by machine
        f"Occlusion with 4-px patches: {f:.0f} forward passes per tile ({f / bf:.0f}× the "
        f"default window's {bf:.0f}), IoU {iou:.2f} against {biou:.2f}; the `seconds` column "
        "shows what the passes cost on your machine."
    )


def _answer_binarise(o: Outcome) -> str:
    return "With Otsu's threshold instead of the mask's area, " + o.changed_verdicts() + "."


def _clean_accuracy(o: Outcome, baseline: bool = False) -> float:
    t = o.table("clever_hans", baseline)
    return float(t.loc[t["test_data"] == "clean (no marks)", "accuracy"].iloc[0])


def _answer_shortcut(o: Outcome) -> str:
    return (
        f"With marks that carry no class information (co-occurrence 0.5) the model scores "
        f"{_clean_accuracy(o):.2f} on clean tiles, against {_clean_accuracy(o, True):.2f} "
        "when the mark predicts the class."
    )


def _answer_sanity(o: Outcome) -> str:
    t = o.table("methods").set_index("label")["sanity_spearman"].dropna()
    kept = ", ".join(t[t > 0.5].index) or "none"
    return (
        f"Re-initialising only the linear head, the maps that stay similar (Spearman > 0.5) "
        f"are: {kept}."
    )


EXERCISES = (
    Exercise(
        "occlusion-window",
        "Resolution vs cost: how do the occlusion map, its cost and its IoU change with the "
        "patch size?",
        params={"occlusion_window": 4},
        look_at="table:methods",
        answer=_answer_window,
    ),
    Exercise(
        "binarisation",
        "Which verdicts depend on how a map is binarised?",
        params={"binarise": "otsu"},
        look_at="claim:cam.inaccurate_localisation",
        answer=_answer_binarise,
    ),
    Exercise(
        "shortcut-strength",
        "How strong must a shortcut be before the model stops generalising to clean tiles?",
        params={"shortcut_cooccurrence": 0.5},
        look_at="table:clever_hans",
        answer=_answer_shortcut,
    ),
    Exercise(
        "sanity-head",
        "Which methods still pass the sanity check when only the last layer is randomised?",
        params={"sanity_top_k": 1},
        look_at="table:methods",
        answer=_answer_sanity,
    ),
)
