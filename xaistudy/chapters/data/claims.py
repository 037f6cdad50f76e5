"""The ``data`` chapter's claims: the generators' promises (their design, not a paper's finding)
and the shortcut bounds, judged over the seeds like every other claim of the book."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from xaistudy.evaluate import shortcut_check
from xaistudy.stats.claims import Claim, judge
from xaistudy.studies import data as study

DESIGN = "the book's generators (their rules, shown in this chapter)"


def _design(*args, **kw) -> Claim:
    """A promise of the book's generators: an implementation check, judged against the bound
    the design states (no paper's mechanism, so no null control)."""
    return Claim(
        *args,
        kind="implementation check",
        no_control="a promise of the generator's design, judged against its stated bound",
        **kw,
    )


#: the bounds the generators promise on the shortcut check (|accuracy - chance| below them)
GLOBAL_COLOUR_BOUND = 0.15
OUTSIDE_MASK_BOUND = 0.10
CNN_TARGET = 0.90


def claim_rows(result: study.Result) -> list[dict[str, object]]:
    """Every claim of the chapter: the promises, then the shortcut bounds."""
    return promise_claims(result) + shortcut_claims(result)


def promise_claims(result: study.Result) -> list[dict[str, object]]:
    """The generator's promises, judged from the measured sets over the seeds."""
    tests = [
        (
            _design(
                "he.tumour_nuclei_larger",
                DESIGN,
                "H&E rules",
                "Tumour nuclei are larger than the lymphocytes of normal tissue",
                "tumour nuclei 4.5-7 px radius vs lymphocytes 2.2-3 px",
                "mean neoplastic nucleus area of a tumour tile − mean non-neoplastic nucleus "
                "area of the normal tiles (px)",
            ),
            study.class_difference(study.he_nucleus_area(result.he), "area", "tumour", "normal"),
        ),
        (
            _design(
                "grading.nuclei_grow_with_grade",
                DESIGN,
                "grading rules",
                "Neoplastic nuclei grow with the grade (R1 → R5)",
                "monotone in the grade spec",
                "covariance of grade index and mean neoplastic nucleus area over R1–R5 tiles",
            ),
            study.grade_trend(result.grading, "area_neoplastic_px"),
        ),
        (
            _design(
                "grading.density_grows_with_grade",
                DESIGN,
                "grading rules",
                "Nuclear density grows with the grade (R1 → R5)",
                "monotone in the grade spec",
                "covariance of grade index and nuclei per 10,000 px over R1–R5 tiles",
            ),
            study.grade_trend(result.grading, "nuclei_per_10k_px"),
        ),
        (
            _design(
                "pcle.meningioma_has_evidence",
                DESIGN,
                "pCLE rules",
                "Meningioma frames carry psammoma-like bodies; glioblastoma frames none",
                "1-4 bodies per meningioma frame, 0 per glioblastoma frame",
                "evidence-mask share of a meningioma frame − mean share of glioblastoma frames",
            ),
            study.class_difference(result.pcle, "mask_share", "meningioma", "glioblastoma"),
        ),
    ]
    return [judge(c, d, data_name="synthetic", profile=result.profile) for c, d in tests]


def _near_chance(chance: float) -> Callable[[pd.DataFrame], float]:
    def statistic(rows: pd.DataFrame) -> float:
        return abs(float(rows["value"].mean()) - chance)

    return statistic


def shortcut_claims(result: study.Result) -> list[dict[str, object]]:
    """The shortcut bounds as claims: trivial colour baselines near chance, the CNN well above."""
    short = {"synthetic-he": "he", "synthetic-grading": "grading", "synthetic-pcle": "pcle"}
    bounds = [
        ("mean intensity", GLOBAL_COLOUR_BOUND, "mean_intensity_near_chance"),
        ("mean RGB", GLOBAL_COLOUR_BOUND, "mean_rgb_near_chance"),
        ("outside-mask colour", OUTSIDE_MASK_BOUND, "outside_mask_near_chance"),
    ]
    results, profile = result.shortcuts, result.profile
    rows = []
    for dataset in shortcut_check.DATASETS:
        res = results[results["dataset"] == dataset]
        chance = shortcut_check.chance(dataset)
        for method, bound, name in bounds:
            claim = _design(
                f"{short[dataset]}.{name}",
                DESIGN,
                "shortcut check",
                f"A logistic regression on the {method} of a tile is within {bound:g} of chance",
                f"|accuracy - chance| < {bound:g}",
                f"|test accuracy of the {method} baseline - {chance:.3f} (chance)|",
                expect="<",
                null=bound,
                statistic=_near_chance(chance),
            )
            data = res[res["method"] == method]
            rows.append(judge(claim, data, data_name=dataset, profile=profile, n_boot=1000))
        if dataset == "synthetic-pcle":
            continue
        claim = _design(
            f"{short[dataset]}.small_cnn_learns_the_morphology",
            DESIGN,
            "shortcut check",
            f"A small CNN classifies the tiles with accuracy of at least {CNN_TARGET:g}",
            f"accuracy >= {CNN_TARGET:g}",
            "test accuracy of the small CNN",
            expect=">",
            null=CNN_TARGET,
        )
        data = res[res["method"] == shortcut_check.CNN]
        rows.append(judge(claim, data, data_name=dataset, profile=profile, n_boot=1000))
    return rows
