"""The ``data`` chapter's exercises (``xaistudy exercises data``) and their answer keys."""

from __future__ import annotations

from xaistudy.chapters.spec import Exercise, Outcome

HISTOGRAM = "colour histogram"


def _cnn() -> str:
    """The small CNN's name in the shortcut-check table (imported when an answer is computed:
    listing the exercises imports no torch)."""
    from xaistudy.evaluate.shortcut_check import CNN

    return CNN


def _accuracy(o: Outcome, dataset: str, method: str, baseline: bool = False) -> float:
    t = o.table("shortcut_check", baseline)
    return float(t[(t["dataset"] == dataset) & (t["method"] == method)]["accuracy"].iloc[0])


def _pairs(o: Outcome, method: str) -> str:
    sets = o.table("shortcut_check")["dataset"].unique()
    return "; ".join(
        f"{d}: {_accuracy(o, d, method):.2f} (default {_accuracy(o, d, method, True):.2f})"
        for d in sets
    )


def _answer_train_size(o: Outcome) -> str:
    he, cnn = "synthetic-he", _cnn()
    return (
        f"With 100 H&E training tiles the small CNN scores {_accuracy(o, he, cnn):.2f} "
        f"(default {_accuracy(o, he, cnn, True):.2f}); the colour histogram "
        f"{_accuracy(o, he, HISTOGRAM):.2f} (default {_accuracy(o, he, HISTOGRAM, True):.2f})."
    )


def _answer_epochs(o: Outcome) -> str:
    return f"Small-CNN test accuracy with 3 epochs per set — {_pairs(o, _cnn())}."


def _answer_tile_size(o: Outcome) -> str:
    return f"Colour-histogram accuracy on 128-px tiles per set — {_pairs(o, HISTOGRAM)}."


EXERCISES = (
    Exercise(
        "train-size",
        "How many training tiles does a small CNN need to beat the colour shortcuts on H&E?",
        params={"check_he_train": 100},
        look_at="table:shortcut_check",
        answer=_answer_train_size,
    ),
    Exercise(
        "epochs",
        "Is the CNN's lead over the colour baselines a matter of training longer?",
        params={"cnn_epochs": 3},
        look_at="table:shortcut_check",
        answer=_answer_epochs,
    ),
    Exercise(
        "tile-size",
        "Does the colour histogram become a stronger shortcut on larger tiles?",
        params={"check_size": 128},
        look_at="table:shortcut_check",
        answer=_answer_tile_size,
    ),
)
