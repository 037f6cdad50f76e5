"""The review's Table B1 statements that this run measures: cost, sign, localisation,
realistic perturbations, noise, sanity, summation and implementation invariance, each a claim
with its measurements.

Kinds: the cost claims that follow from the passes each method makes (occlusion and LIME run
one forward pass per window or sample, Grad-CAM one forward and one backward pass; the timing
table counts them) and the summation claims of Integrated Gradients and DeepLIFT (their maps
sum to f(x) - f(0) by construction, up to the integration error) are implementation checks:
their verdicts test this code and these settings, not the review. Implementation invariance
is measured on a functionally identical twin (:func:`.axioms.implementation_twin`)."""

from __future__ import annotations

from xaistudy.chapters.saliency_tour.paper import B1, PAPER, TEXT
from xaistudy.stats.claims import Claim
from xaistudy.studies import saliency_tour as study
from xaistudy.studies.saliency_tour import rows


def _b1(method: str, side: str) -> str:
    return PAPER.number(f"b1.{method}.{side}")


#: the null control of the map claims (sign, localisation, noise)
RANDOMISED = "randomised network"
#: the comparator of the realism claim: the whole tile black
ALL_BLACK = "all-black tile"
#: the kind of the claims that hold by the methods' construction (module docstring)
CHECK = "implementation check"
#: why a runtime claim has no null control, and why a summation claim has none
RUNTIME = (
    "a runtime on the same tiles: it counts passes, no map is scored; the other methods are "
    "the comparators"
)
BY_CONSTRUCTION = "the rule sums to f(x) − f(0) by construction: an implementation check"
#: how far (relative L1) a map must move on the twin to count: rounding moves it far less
TWIN_FLOOR = 0.01
#: the control of the implementation-invariance claim: Integrated Gradients on the same twin
INVARIANT = "implementation-invariant method"


def b1_tests(result: study.Result) -> list[tuple]:
    """Each measured Table B1 statement (and the text's Grad-CAM vs occlusion cost) with the
    rows (``seed``, ``unit``, ``value``) it is judged on and, for the claims about the maps,
    the same rows from the maps of the randomised network (its null control)."""
    t = result.tables
    scores, timing = t["scores"], t["timing"]
    null = t["scores_randomised"] if "scores_randomised" in t else None

    def on_maps(fn, *args):
        """``fn(scores, *args)`` and, as the control, ``fn`` of the randomised network's."""
        return fn(scores, *args), ({RANDOMISED: fn(null, *args)} if null is not None else None)

    comp, ood, twin = t["completeness"], t["ood"], t["implementation"]
    cite = PAPER.citation
    return [
        (
            Claim(
                "occlusion.high_cost",
                cite,
                B1,
                "Occlusion has a high computational cost",
                _b1("occlusion", "weakness"),
                "log10(occlusion's warm seconds per image / the "
                "median over the other grid methods), per timed tile",
                kind=CHECK,
                no_control=RUNTIME,
            ),
            rows.log_ratio(timing, "occlusion", None),
        ),
        (
            Claim(
                "lime.high_cost",
                cite,
                B1,
                "LIME has a high computational expense",
                PAPER.number("b1.lime.expense"),
                "log10(LIME's seconds / median over the other grid methods)",
                kind=CHECK,
                no_control=RUNTIME,
            ),
            rows.log_ratio(timing, "lime", None),
        ),
        (
            Claim(
                "gradcam.faster_than_occlusion",
                cite,
                TEXT + ".2",
                "Grad-CAM maps can be computed faster than the occlusion map",
                "qualitative",
                "log10(occlusion's seconds / Grad-CAM's seconds)",
                kind=CHECK,
                no_control=RUNTIME,
            ),
            rows.log_ratio(timing, "occlusion", "gradcam"),
        ),
        (
            Claim(
                "deconvolution.fast",
                cite,
                B1,
                "DeconvNet: fast computation",
                _b1("deconvolution", "strength"),
                "log10(Deconvolution's seconds / median over the other grid methods)",
                expect="<",
                no_control=RUNTIME,
            ),
            rows.log_ratio(timing, "deconvolution", None),
        ),
        (
            Claim(
                "lrp.fast",
                cite,
                B1,
                "LRP: fast and scalable computation",
                _b1("lrp", "strength"),
                "log10(LRP's seconds / median over the other grid methods)",
                expect="<",
                no_control=RUNTIME,
            ),
            rows.log_ratio(timing, "lrp", None),
        ),
        (
            Claim(
                "kernel_shap.positive_and_negative",
                cite,
                B1,
                "SHAP denotes positive and negative contributions",
                _b1("kernel_shap", "strength"),
                "share of the map's absolute mass that is negative, per tile (null: 5 %)",
                null=0.05,
            ),
            *on_maps(lambda d: rows.column(d, "negative_share", method="kernel_shap")),
        ),
        (
            Claim(
                "lime.positive_and_negative",
                cite,
                B1,
                "LIME denotes positive and negative contributions",
                _b1("lime", "strength"),
                "negative share of the map's absolute mass, per tile (null: 5 %)",
                null=0.05,
            ),
            *on_maps(lambda d: rows.column(d, "negative_share", method="lime")),
        ),
        (
            Claim(
                "cam.inaccurate_localisation",
                cite,
                B1,
                "CAM: inaccurate localisation of the heatmap",
                PAPER.number("b1.cam.localisation"),
                "IoU of CAM − median IoU of the other grid methods, per tile",
                expect="<",
            ),
            *on_maps(rows.vs_others, "cam", "iou"),
        ),
        (
            Claim(
                "kernel_shap.approximate_morphology",
                cite,
                B1,
                "SHAP: approximate results of object morphology",
                _b1("kernel_shap", "weakness"),
                "IoU of KernelSHAP − median IoU of the other grid methods",
                expect="<",
            ),
            *on_maps(rows.vs_others, "kernel_shap", "iou"),
        ),
        (
            Claim(
                "rise.approximate_morphology",
                cite,
                B1,
                "RISE: approximate results of object morphology",
                PAPER.number("b1.rise.morphology"),
                "IoU of RISE − median IoU of the other grid methods",
                expect="<",
            ),
            *on_maps(rows.vs_others, "rise", "iou"),
        ),
        (
            Claim(
                "occlusion.approximate_morphology",
                cite,
                TEXT + ".1",
                "RISE and Occlusion produce only approximate results of objects' morphology",
                "qualitative",
                "IoU of Occlusion − median IoU of the other grid methods",
                expect="<",
            ),
            *on_maps(rows.vs_others, "occlusion", "iou"),
        ),
        (
            Claim(
                "rise.realistic_perturbations",
                cite,
                B1,
                "RISE: realistic perturbations",
                _b1("rise", "strength"),
                "tumour probability of a correctly classified normal "
                "tile under RISE's masks − without them (null: 0.1; realistic perturbations "
                "should not move it more)",
                expect="<",
                null=0.1,
            ),
            rows.column(ood, "shift", perturbation=study.PERTURBATIONS[0]),
            # the comparator: a whole tile blacked out is no realistic perturbation; when the
            # classifier reads it as normal tissue too, the bound says nothing about RISE
            {ALL_BLACK: rows.column(ood, "shift", perturbation=study.PERTURBATIONS[-1])},
        ),
        (
            Claim(
                "smoothgrad.reduces_noise",
                cite,
                B1,
                "SmoothGrad reduces visual noise",
                _b1("smoothgrad", "strength"),
                "roughness of SmoothGrad's map − that of the vanilla gradient, per tile",
                expect="<",
            ),
            *on_maps(rows.minus, "roughness", "method", "smoothgrad", "saliency"),
        ),
        (
            Claim(
                "guided_backprop.invariant_to_model",
                cite,
                B1,
                "Guided Backpropagation is in some cases invariant to data and model",
                _b1("guided_backprop", "weakness"),
                "sanity ρ of Guided Backpropagation − that of the vanilla gradient, per tile",
                no_control="the measurement is itself a randomisation test (the sanity check's "
                "randomised network), with the vanilla gradient as the comparator",
            ),
            rows.minus(scores, "sanity_spearman", "method", "guided_backprop", "saliency"),
        ),
        (
            Claim(
                "integrated_gradients.completeness",
                cite,
                f"{TEXT}.2 / {B1}",  # completeness is the text's; Table B1 names axioms
                "Integrated Gradients satisfies the completeness axiom",
                _b1("integrated_gradients", "strength"),
                "relative gap |Σ map − (f(x) − f(0))| / |f(x) − f(0)| (null: 5 %)",
                expect="<",
                null=0.05,
                kind=CHECK,
                no_control=BY_CONSTRUCTION,
            ),
            rows.column(comp, "relative_gap", method="integrated_gradients"),
        ),
        (
            Claim(
                "input_x_gradient.saturating_gradients",
                cite,
                B1,
                "Vanilla gradient and Input × gradient: saturating gradients",
                _b1("input_x_gradient", "weakness"),
                "summation gap of Input × gradient − that of Integrated Gradients, per tile "
                "(a saturated gradient misses part of f(x) − f(0))",
                no_control="Integrated Gradients on the same tiles is the comparator: it sums to "
                "f(x) − f(0) by construction, a saturated gradient does not",
            ),
            rows.minus(comp, "relative_gap", "method", "input_x_gradient", "integrated_gradients"),
        ),
        (
            Claim(
                "deeplift.counters_saturation",
                cite,
                B1,
                "DeepLIFT counters the saturation of Input × gradient",
                _b1("deeplift", "strength"),
                "summation gap of DeepLIFT − that of Input × gradient, per tile",
                expect="<",
                # DeepLIFT's rescale rule sums to f(x) - f(0) by construction (summation to
                # delta), so its gap is ~0 whatever the saturation of the network
                kind=CHECK,
                no_control=BY_CONSTRUCTION,
            ),
            rows.minus(comp, "relative_gap", "method", "deeplift", "input_x_gradient"),
        ),
        (
            Claim(
                "deeplift.not_implementation_invariant",
                cite,
                B1,
                "DeepLIFT does not satisfy implementation invariance",
                _b1("deeplift", "weakness"),
                "‖a − b‖₁ / ‖a‖₁ of DeepLIFT's maps of the model (a) and of its functionally "
                f"identical twin (b, every ReLU rewritten), per tile (it counts above "
                f"{TWIN_FLOOR:g})",
                null=TWIN_FLOOR,
            ),
            rows.column(twin, "relative_l1", method="deeplift"),
            # Integrated Gradients depends only on the function: if its maps of the twin move as
            # far, the twin computes another function and the claim says nothing
            {INVARIANT: rows.column(twin, "relative_l1", method="integrated_gradients")},
        ),
    ]
