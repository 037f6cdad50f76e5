"""The thesis's conclusions (Sec. 6) as claims: 1 (cancer maps fit the tumour mask), 2 (Grad-CAM
best, one claim per other method), 3 and 4 (where Grad-CAM and LIME put their maps: off or on
the nuclei) and 6 (the best maps for grades R1 and R5), each judged over all seeds against the
same measurement on the run's null controls."""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.thesis_metrics.paper import PAPER, thesis_means, thesis_table6
from xaistudy.chapters.thesis_metrics.text import data_text
from xaistudy.stats.claims import Claim, judge

#: the thesis's conclusions that the claims quote (Sec. 6): key phrases and locators
CONCLUSIONS = {
    1: '"yielded higher metrics results" against "the tumor mask than the non-tumor mask" '
    "(Sec. 6, conclusion 1, L739)",
    2: '"based on almost all quality assessment methods" Grad-CAM had "the best '
    'interpretation maps" (Sec. 6, conclusion 2, L740)',
    3: '"the GradCAM method tended to highlight regions outside nuclei" (Sec. 6, conclusion 3, '
    "L741)",
    4: 'LIME: "highlight features in the nuclei rather than focusing on the surrounding areas" '
    "(Sec. 6, conclusion 4, L742)",
    6: '"the best interpretation maps" for "(R1 class)" and "(R5 class)" (Sec. 6, '
    "conclusion 6, L744)",
}
#: the control of conclusions 3 and 4: the maps' pixels shuffled (where a map lies, not how
#: much it covers); another tile's mask would not move the exact masks these claims read
LOCATION_CONTROL = "coverage-matched maps"


def conclusion_rows(res: Any, profile: str = "") -> list[dict]:
    """The thesis's conclusions 1, 2 (one claim per pair) and 6 on ``params.tendency_metric``,
    and 3 and 4 (where the maps lie: on or off the nuclei), each against the same measurement
    on the run's null controls."""
    from xaistudy.studies import thesis_metrics as study

    scores, params = res.scores, res.params
    metric = params.tendency_metric
    base = dict(data_name=data_text(params), profile=profile, n_boot=params.n_boot)
    null = {c: res.controls[res.controls["control"] == c] for c in study.CONTROLS}
    t6 = thesis_table6()
    t6 = t6[(t6["metric"] == metric) & t6["class"].isin(study.CANCER)]

    def controlled(fn, *args):
        if not len(res.controls):
            return None
        return {c: fn(v, params, *args) for c, v in null.items()}

    def claim(cid, number, statement, quantity, estimate, **kw):
        return Claim(
            cid,
            PAPER.citation,
            f"Sec. 6, conclusion {number}",
            statement,
            "see the quote",
            quantity,
            quote=CONCLUSIONS[number],
            paper_estimate=estimate,
            **kw,
        )

    by_mask = t6.groupby("mask_type")["value"].mean()
    rows = [
        judge(
            claim(
                "conclusion1.cancer_maps_fit_the_tumour_mask",
                1,
                "Maps of cancer tiles score higher against the tumour mask than the non-tumour",
                f"{metric} against the tumour mask − against the non-tumour mask, mean over the "
                "methods, per cancer tile (R1-R5)",
                float(by_mask["tumour"] - by_mask["non-tumour"]),
            ),
            study.mask_type_difference(scores, params, metric),
            controls=controlled(study.mask_type_difference, metric),
            **base,
        )
    ]
    means = thesis_means("tumour").loc[metric]
    for other in [m for m in study.METHODS if m != "gradcam"]:
        rows.append(
            judge(
                claim(
                    f"conclusion2.gradcam_beats_{other}",
                    2,
                    f"Grad-CAM's maps are better than {study.METHODS[other]}'s",
                    f"{metric} of Grad-CAM − {metric} of {study.METHODS[other]} per tile "
                    "(tumour mask)",
                    float(means["gradcam"] - means[other]),
                ),
                study.method_difference(scores, params, metric, "gradcam", other),
                controls=controlled(study.method_difference, metric, "gradcam", other),
                **base,
            )
        )
    for number, method, inside, cid, statement in (
        (3, "gradcam", False, "conclusion3.gradcam_outside_nuclei",
         "Grad-CAM highlights more pixels off the nuclei than the other methods"),
        (4, "lime", True, "conclusion4.lime_inside_nuclei",
         "LIME highlights more pixels on the nuclei than the other methods"),
    ):  # fmt: skip
        where = "on" if inside else "off"
        truth = "exact" if (scores["ground_truth"] == "exact").any() else "U-Net"
        rows.append(
            judge(
                claim(
                    cid,
                    number,
                    statement,
                    f"share of {study.METHODS[method]}'s highlighted pixels {where} the nuclei "
                    f"− the other methods' mean share, per tile (binary reading, {truth} masks)",
                    None,
                ),
                study.nuclei_share_difference(scores, params, method, inside),
                controls=None
                if not len(res.controls)
                else {
                    LOCATION_CONTROL: study.nuclei_share_difference(
                        null[LOCATION_CONTROL], params, method, inside
                    )
                },
                **base,
            )
        )
    best = ("R1", "R5")
    tumour = t6[t6["mask_type"] == "tumour"].groupby("class")["value"].mean()
    rows.append(
        judge(
            claim(
                "conclusion6.best_maps_for_r1_and_r5",
                6,
                "Cancer tiles of grades R1 and R5 get better maps than R2-R4",
                f"mean {metric} (over the methods, tumour mask) of R1 and R5 tiles − of R2-R4 "
                "tiles",
                float(tumour[list(best)].mean() - tumour.drop(list(best)).mean()),
                statistic=study.group_gap,
            ),
            study.grade_rows(scores, params, metric, best),
            controls=controlled(study.grade_rows, metric, best),
            **base,
        )
    )
    return rows
