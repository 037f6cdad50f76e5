"""The chapter's verdicts: every Table B1 statement this run can measure, the settings
warning and the Clever-Hans warning, judged over all seeds; the statements it cannot measure,
with the reason. Each claim quotes the review by its id (:data:`.paper.QUOTES`)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from xaistudy.chapters.saliency_tour.claims_b1 import RANDOMISED, b1_tests
from xaistudy.chapters.saliency_tour.paper import B1, CONCLUSION, PAPER, TEXT, quote
from xaistudy.chapters.saliency_tour.text import label
from xaistudy.stats.claims import Claim, judge
from xaistudy.studies import saliency_tour as study
from xaistudy.studies.saliency_tour import rows

#: Table B1 statements about methods this chapter runs that no measurement here can test:
#: (claim id, paper number, statement, why not, kind); a property of the algorithm is an
#: implementation check
NOT_MEASURED = (
    (
        "occlusion.model_agnostic",
        "b1.occlusion.strength",
        "Occlusion needs no access to model internals",
        "a property of the algorithm (it only calls the model), not a measurement",
        "implementation check",
    ),
    (
        "gradcam.intuitive",
        "b1.gradcam.strength",
        "Grad-CAM is intuitive",
        "needs readers' judgements",
        "finding",
    ),
    (
        "cam.architectural_dependence",
        "b1.cam.weakness",
        "CAM depends on the architecture",
        "by construction: CAM needs global average pooling and one linear layer (a unit test "
        "checks that other models are refused)",
        "implementation check",
    ),
    (
        "saliency.straightforward",
        "b1.saliency.strength",
        "Vanilla gradient: straightforward computation",
        "not a measurable quantity",
        "finding",
    ),
    (
        "guided_backprop.architectures",
        "b1.guided_backprop.strength",
        "Guided Backpropagation applies to several architectures",
        "one architecture per run (`-p model`)",
        "finding",
    ),
    (
        "deconvolution.approximate_inverse",
        "b1.deconvolution.weakness",
        "DeconvNet uses only an approximate inverse",
        "a property of the algorithm, not a measurement",
        "implementation check",
    ),
    (
        "input_x_gradient.simple",
        "b1.input_x_gradient.strength",
        "Input × gradient: simple process",
        "not a measurable quantity",
        "finding",
    ),
)


#: how much a minor change of a setting must move a map to count (1 - Spearman ρ with the
#: default map): below it, the maps are the same for a reader
PARAMETER_FLOOR = 0.1


def sweep_tests(result: study.Result) -> list[tuple]:
    """Per swept method the review warns about: how far one minor change of a setting moves its
    map (1 - ρ with the default map, above :data:`PARAMETER_FLOOR`), against the method's own
    sampling (another explanation seed, the same settings) as the null control: a stochastic
    method whose re-seeded map moves as far says nothing about its parameters."""
    sweep, tests = result.tables["sweep"], []
    for name, (what, change) in study.SWEEP.items():
        method = study.swept_method(name)
        if f"parameters.{method}" not in PAPER.numbers:  # the review says nothing about it
            continue
        setting = what if name != method else "parameters"  # a second setting of one method
        claim = Claim(
            f"{method}.relies_on_{setting}",
            PAPER.citation,
            B1,
            f"{label(method)}: results depend on its {setting}",
            PAPER.number(f"parameters.{method}"),
            f"1 - ρ(default map, map after {change}), per tile: how far a minor change of a "
            f"setting moves the map (it counts above {PARAMETER_FLOOR:g})",
            null=PARAMETER_FLOOR,
            no_control=""
            if method in study.STOCHASTIC
            else "deterministic: another explanation seed gives the same map, so its own "
            "sampling moves nothing",
        )
        mine = sweep[sweep["method"] == name]
        null = mine.assign(value=1 - mine["rho_reseeded"])
        tests.append(
            (
                claim,
                mine.assign(value=1 - mine["rho_altered"])[["seed", "unit", "value"]],
                {"re-seeded explanation": null} if method in study.STOCHASTIC else None,
            )
        )
    return tests


#: below this variation (SD / mean magnitude) on the median tile a map is flat: every
#: perturbed copy of the tile scored alike, and the map shows the masks, not the model
FLAT = 0.01


def rise_status(result: study.Result) -> str:
    """One line on whether this run's RISE works: its claims' not-testable reason
    (:func:`rise_degenerate`), or its maps' median variation when they are not flat."""
    flat = rise_degenerate(result)
    if flat or "rise" not in set(result.tables["scores"]["method"]):
        return flat or "RISE did not run."
    scores = result.tables["scores"]
    median = scores.loc[scores["method"] == "rise", "variation"].median()
    return f"RISE's maps are not flat (median variation {median:.3f} ≥ {FLAT}): claims judged"


def rise_degenerate(result: study.Result) -> str:
    """Why RISE's claims are not testable in this run ("" when they are): its maps are flat
    because the classifier scores every masked copy of a tile alike."""
    scores, ood = result.tables["scores"], result.tables["ood"]
    rise = scores.loc[scores["method"] == "rise", "variation"]
    if rise.empty or rise.median() >= FLAT:
        return ""
    masked = ood.loc[ood["perturbation"] == study.PERTURBATIONS[0], "p_tumour_perturbed"]
    return (
        f"RISE's maps are flat (median variation {rise.median():.4f} < {FLAT}): the classifier "
        f"scores every masked copy of a tile alike (a correctly classified normal tile under "
        f"RISE's masks: P(tumour) {masked.mean():.2f}, fill '{result.params.rise_fill}'), so "
        "the maps show the masks, not the model"
    )


def coverage_tests(result: study.Result) -> list[tuple]:
    """Grad-CAM's partial coverage of several objects: on the tiles whose tumour lies in two or
    more separate regions, how unevenly its map covers them, against the other grid methods;
    the null control is the same from the randomised network's maps."""
    t, what = result.tables, "coverage_spread"
    claim = Claim(
        "gradcam.partial_coverage",
        PAPER.citation,
        B1,
        "Grad-CAM covers several objects of one class only partly",
        PAPER.number("b1.gradcam.weakness"),
        "spread of Grad-CAM's coverage of a tile's separate tumour regions (largest − smallest "
        "share of a region's pixels among its salient pixels; regions of ≥ 1 % of the tile) − "
        "the median spread of the other grid methods, per tile with ≥ 2 regions",
        expect=">",
    )
    control = {RANDOMISED: rows.vs_others(t["scores_randomised"], "gradcam", what)}
    detail = Claim(
        "gradcam.misses_fine_details",
        PAPER.citation,
        TEXT + ".2",
        "Grad-CAM's resolution is that of the last feature map: it can miss fine details",
        "qualitative",
        "share of the smallest separate tumour region among the salient pixels: Grad-CAM − "
        "occlusion, per tile with ≥ 2 regions of ≥ 1 % of the tile",
        expect="<",
    )
    small = ("smallest_region_coverage", "method", "gradcam", "occlusion")
    return [
        (claim, rows.vs_others(t["scores"], "gradcam", what), control),
        (
            detail,
            rows.minus(t["scores"], *small),
            {RANDOMISED: rows.minus(t["scores_randomised"], *small)},
        ),
    ]


def hans_tests(result: study.Result) -> list[tuple[Claim, pd.DataFrame]]:
    """The Clever-Hans warning: the shortcut is learned, Grad-CAM shows it, and a plausible map
    does not show that the model uses the right evidence."""
    cite, shortcut, clean = PAPER.citation, study.SHORTCUT, study.NO_SHORTCUT
    hans = result.tables["hans"]
    gradcam_hans = hans[hans["method"] == "gradcam"]
    return [
        (
            Claim(
                "clever_hans.shortcut_learned",
                cite,
                TEXT + ".2",
                "Markers in the image can become a shortcut (Clever Hans)",
                "qualitative (Hosch et al.)",
                "tumour probability of a marked normal tile: shortcut model − clean model",
                # the book plants a mark that predicts the label: whether the model learns it
                # tests the book's setting (the other two claims need it), not the review
                kind="demonstration",
                no_control="the clean model (trained without the mark) is the comparator",
            ),
            result.tables["hans_normal"].assign(value=lambda d: d[shortcut] - d[clean]),
        ),
        (
            Claim(
                "clever_hans.gradcam_reveals_mark",
                cite,
                TEXT + ".2",
                "Grad-CAM exposes the markers a shortcut model uses",
                "qualitative (Hosch et al.)",
                "Grad-CAM's "
                "positive mass on the mark of a marked tumour tile: shortcut − clean model",
                no_control="the clean model (trained without the mark) is the comparator",
            ),
            rows.minus(gradcam_hans, "mass_on_mark", "model", shortcut, clean),
        ),
        (
            Claim(
                "clever_hans.plausible_not_faithful",
                cite,
                CONCLUSION,
                "A plausible-looking map does not show that the model uses the right evidence",
                "qualitative",
                "shortcut model's Grad-CAM maximum on the tumour (0/1) − the tumour's share of "
                "the tile, per marked tumour tile (> 0: the map looks plausible although the "
                "model learned the mark)",
                no_control="the tumour's share of the tile is the chance level of "
                "pointing at it",
            ),
            rows.column(
                gradcam_hans[gradcam_hans["model"] == shortcut].assign(
                    plausible=lambda d: d["pointing_at_tumour"] - d["tumour_share"]
                ),
                "plausible",
            ),
        ),
    ]


def judged(result: study.Result, profile: str = "") -> list[dict[str, object]]:
    """Every Table B1 strength and weakness this run can measure, the text's Grad-CAM vs
    occlusion cost and the Clever-Hans warning, judged over all seeds (rows of a claims
    table); ``profile`` is recorded with each verdict."""
    tests: list[tuple] = [
        *b1_tests(result),
        *coverage_tests(result),
        *sweep_tests(result),
        *hans_tests(result),
    ]
    tests += [
        (
            Claim(
                cid,
                PAPER.citation,
                B1,
                statement,
                PAPER.number(key),
                "—",
                not_testable=why,
                kind=kind,
            ),
            None,
        )
        for cid, key, statement, why, kind in NOT_MEASURED
    ]
    flat = rise_degenerate(result)
    if flat:  # a degenerate explainer: its claims would measure the masks
        tests = [
            (replace(c, not_testable=flat), None) if c.id.startswith("rise.") else (c, *rest)
            for c, *rest in tests
        ]
    params = result.params
    data = f"{params.dataset} {params.tile_size} px, {params.model}"
    return [
        judge(
            replace(c, quote=quote(c.id)),
            d,
            controls=ctrl[0] if ctrl else None,
            data_name=data,
            profile=profile,
        )
        for c, d, *ctrl in tests
    ]
