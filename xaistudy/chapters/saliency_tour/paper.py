"""Borys et al. (2023), the saliency review: its Fig. 7 setting and its Table B1 statements."""

from __future__ import annotations

from xaistudy.chapters.spec import PaperRecord, Setting
from xaistudy.explain import taxonomy as tx

B1 = "Table B1"
TEXT = "Sect. 2"
#: the review's conclusion (its warning about plausible-looking maps)
CONCLUSION = "Sect. 3"

#: per claim id, the review's words it stands for: a short phrase of the review, verbatim, with
#: its place (L: line of the review's text file); never a whole sentence
QUOTES: dict[str, str] = {
    # costs (Table B1 and Sect. 2.2)
    "occlusion.high_cost": '"High computational cost" (Table B1, Occlusion, L186)',
    "lime.high_cost": '"High computational expense" (Table B1, LIME, L188)',
    "gradcam.misses_fine_details": '"Grad-CAM maps usually have a lower spatial resolution '
    'than occlusion maps. Therefore, they can miss fine details" (Sect. 2.2, L144)',
    "gradcam.faster_than_occlusion": '"Grad-CAM maps can be computed faster than the occlusion '
    'map" (Sect. 2.2, L144)',
    "deconvolution.fast": '"Fast computation" (Table B1, DeconvNet, L197)',
    "lrp.fast": '"Fast and scalable computation" (Table B1, LRP, L205)',
    # signs, localisation, perturbations, noise, sanity, summation
    "kernel_shap.positive_and_negative": '"Denotes positive and negative contributions" '
    "(Table B1, SHAP, L187)",
    "lime.positive_and_negative": '"Denotes positive and negative contributions" '
    "(Table B1, LIME, L188)",
    "cam.inaccurate_localisation": '"Inaccurate localization of heatmap" (Table B1, CAM, L199)',
    "kernel_shap.approximate_morphology": '"Approximate results of object morphology" '
    "(Table B1, SHAP, L187)",
    "rise.approximate_morphology": '"Approximate results of object morphology" '
    "(Table B1, RISE, L192)",
    "occlusion.approximate_morphology": "RISE and Occlusion \"do not consider objects' "
    'morphology and produce only approximate results" (Sect. 2.1, L130)',
    "rise.realistic_perturbations": '"Realistic perturbations" (Table B1, RISE, L192)',
    "smoothgrad.reduces_noise": '"Reduces visual noise" (Table B1, SmoothGrad, L206)',
    "guided_backprop.invariant_to_model": '"In some cases, invariant to data and model" '
    "(Table B1, GBP, L203)",
    "integrated_gradients.completeness": 'IG: "completeness [56], is satisfied" (Sect. 2.2, '
    'L140); Table B1 (L202): "satisfies mathematical axioms"',
    "input_x_gradient.saturating_gradients": '"Saturating gradients" (Table B1, '
    "Input * Gradient, L207)",
    "deeplift.counters_saturation": '"Counters the saturation during Input*Gradient" '
    "(Table B1, Deep LiFT, L204)",
    "deeplift.not_implementation_invariant": 'DeepLIFT "is not *implementation invariant*" '
    '(Sect. 2.2, L138); "Does not satisfy implementation invariance" (Table B1, Deep LiFT, '
    "L204)",
    # the settings warning
    "lime.relies_on_parameters": '"Relies on pre-defined parameters" (Table B1, LIME, L189); '
    '"minor alterations can lead to significant differences in results" (Sect. 2.1, L128)',
    "rise.relies_on_parameters": '"Relies on pre-defined parameters" (Table B1, RISE, L193)',
    "smoothgrad.relies_on_parameters": '"Results depend on hyper-parameters" '
    "(Table B1, SmoothGrad, L206)",
    "integrated_gradients.relies_on_parameters": '"depending on selected baseline and number '
    'of iterations" (Table B1, Integrated Gradients, L202)',
    "integrated_gradients.relies_on_baseline": '"Results may differ, depending on selected '
    'baseline" (Table B1, Integrated Gradients, L202)',
    "lrp.relies_on_parameters": '"Results are sensitive to specific parameters" '
    "(Table B1, LRP, L205)",
    # the Clever-Hans warning (Hosch et al., as the review reports it)
    "clever_hans.shortcut_learned": 'a "*Clever Hans phenomenon* [64] or *shortcut learning*" '
    "(Sect. 2.2, L144)",
    "clever_hans.gradcam_reveals_mark": '"GradCAMs identified" that a model "incorrectly used '
    'image markings" (Sect. 2.2, L142)',
    "clever_hans.plausible_not_faithful": '"only relying on the plausibility of explanations '
    'can be misleading" (Sect. 3, L162)',
    # what no measurement here tests
    "occlusion.model_agnostic": '"No access to mode internals required, so model-agnostic" '
    "(Table B1, Occlusion, L186)",
    "gradcam.intuitive": '"Intuitive, no explicit labeling of data needed" '
    "(Table B1, Grad-CAM, L196)",
    "gradcam.partial_coverage": '"Multiple occurrences of same class objects result in partial '
    'coverage" (Table B1, Grad-CAM, L196)',
    "cam.architectural_dependence": '"Architectural dependence" (Table B1, CAM, L198)',
    "saliency.straightforward": '"Straightforward and direct computation of gradients" '
    "(Table B1, Vanilla Gradient, L201)",
    "guided_backprop.architectures": '"Applicable to several network architectures" '
    "(Table B1, GBP, L203)",
    "deconvolution.approximate_inverse": '"Uses only an approximate inverse of the convolution '
    'features" (Table B1, DeconvNet, L197)',
    "input_x_gradient.simple": '"Simple process" (Table B1, Input * Gradient, L207)',
}


def quote(claim_id: str) -> str:
    """The review's words claim ``claim_id`` stands for (:data:`QUOTES`)."""
    try:
        return QUOTES[claim_id]
    except KeyError:
        raise KeyError(f"no quote of {PAPER.citation} for claim '{claim_id}'") from None


def _review_numbers() -> dict[str, str]:
    numbers = {"fig7.score": "0.98 ('Hand', DenseNet121 on MedNIST)"}
    for entry in tx.REVIEW:
        if entry.method and entry.strength:
            numbers[f"b1.{entry.method}.strength"] = entry.strength
            numbers[f"b1.{entry.method}.weakness"] = entry.weakness
    numbers.update(
        {  # single statements of multi-line Table B1 cells, and the text's
            "b1.lime.expense": "High computational expense",
            "b1.cam.localisation": "Inaccurate localization of heatmap",
            "b1.rise.morphology": "Approximate results of object morphology",
            "parameters.lime": "Relies on pre-defined parameters (Table B1); 'minor alterations "
            "can lead to significant differences in results' (Sect. 2.1)",
            "parameters.rise": "Relies on pre-defined parameters",
            "parameters.smoothgrad": numbers["b1.smoothgrad.weakness"],
            "parameters.integrated_gradients": numbers["b1.integrated_gradients.weakness"],
            "parameters.lrp": numbers["b1.lrp.weakness"],
        }
    )
    return numbers


PAPER = PaperRecord(
    key="borys2023saliency",
    citation="Borys et al. 2023",
    file="004_6fbc4ed098113fe3.txt",
    settings=(
        Setting("data (Fig. 7)", "MedNIST, six classes", "dataset", "tumour vs normal H&E tiles"),
        Setting("model (Fig. 7)", "DenseNet121", "model", "no DenseNet in this chapter"),
        Setting("methods", "Table B1 (18 listed)", "methods", "run where a library exists"),
        Setting("library (Fig. 7)", "captum", "", "captum, lime, zennit, pytorch-grad-cam"),
    ),
    numbers=_review_numbers(),
)
