"""What the meta-evaluation measures: its methods, its three models, its truths and the
papers' metrics (where each comes from, which way is better, what it compares a map with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xaistudy.evaluate import occlusion, quality
from xaistudy.explain import METHODS, relevance

#: every method the study can explain with: the registry's and the two relevance CAMs
METHOD_CHOICES: tuple[str, ...] = (*METHODS, *relevance.RELEVANCE_METHODS)
#: the default methods: two of each family (gradient, CAM, relevance, perturbation)
DEFAULT_METHODS = (
    "saliency",
    "integrated_gradients",
    "gradcam",
    "gradcam++",
    "lrp",
    "relevancecam",
    "xrelevancecam",
    "occlusion",
)
#: the models, what they learn and which tiles they explain
MODELS: dict[str, str] = {
    "clean": "tumour vs normal; the class evidence lies only inside the tumour mask",
    "clever_hans": "marked vs unmarked: a pen mark drawn independently of the tissue",
    "randomised": "the clean model with its top weight layers re-initialised",
}
#: the evidence each model uses
EVIDENCE: dict[str, str] = {
    "clean": "the tumour mask",
    "clever_hans": "the pen stroke",
    "randomised": "none (no evidence use)",
}
TRAINED = ("clean", "clever_hans")
#: the randomised twin of each trained model (its maps feed the randomisation metric)
TWIN = {"clean": "randomised", "clever_hans": "randomised_clever_hans"}
#: P(mark | tumour) = P(mark | normal) in the Clever-Hans data: the mark says nothing of the tissue
MARK_COOCCURRENCE = 0.5
TRUTHS = {
    "auc": "ROC AUC of the map's values for evidence vs non-evidence pixels (0.5: chance)",
    "mass": "share of the map's positive mass inside the evidence",
}
TRUTH_LABEL = "truth"


def methods_of(params: Any) -> list[str]:
    """The methods of a run (``params.methods``: comma-separated names or ``all``)."""
    return list(METHOD_CHOICES) if params.methods == "all" else params.methods.split(",")


def explained_by(name: str) -> str:
    """The trained model whose tiles model ``name`` explains (a randomised twin: its model's)."""
    if name in TRAINED:
        return name
    return next(k for k, v in TWIN.items() if v == name)


@dataclass(frozen=True)
class Metric:
    """One way a paper scores a map: where it comes from and which way is better."""

    key: str
    label: str
    chapter: str  # the chapters that use it
    function: str  # what computes it (the function the chapter uses)
    higher_is_better: bool
    reads: str  # what the map is compared with
    cites: str = ""  # the chapter whose paper it is (default: ``chapter``)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    @property
    def paper_chapter(self) -> str:
        return self.cites or self.chapter


_ANNOTATION = "the annotation (tumour mask)"
_OUTPUT = "the model's output"

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "pointing_game",
            "pointing game",
            "saliency_tour",
            "localisation.pointing_game",
            True,
            _ANNOTATION,
        ),
        Metric(
            "tour_iou",
            "IoU (top pixels, mask area)",
            "saliency_tour",
            "localisation.saliency_iou",
            True,
            _ANNOTATION,
        ),
        Metric(
            "positive_share",
            "positive share in the mask",
            "saliency_tour",
            "localisation.positive_share",
            True,
            _ANNOTATION,
        ),
        Metric(
            "randomisation",
            "similarity to the randomised model's map",
            "saliency_tour, xrelevancecam",
            "sanity.rank_correlation",
            False,
            "the randomised model's map",
            cites="saliency_tour",
        ),
        *(
            Metric(
                f"thesis_{m}",
                f"{quality.METRIC_LABELS[m]} (thesis)",
                "thesis_metrics",
                f"quality.all_metrics ({m})",
                True,
                _ANNOTATION,
            )
            for m in quality.METRICS
        ),
        Metric(
            "miou",
            "IoU (mean + std binarisation)",
            "xrelevancecam",
            "wsss.binarise + localisation.iou",
            True,
            _ANNOTATION,
        ),
        Metric(
            "conservation",
            "conservation axiom error",
            "xrelevancecam",
            "axioms.evaluate_axioms",
            False,
            _OUTPUT,
        ),
        Metric(
            "sensitivity",
            "sensitivity axiom error",
            "xrelevancecam",
            "axioms.evaluate_axioms",
            False,
            _OUTPUT,
        ),
        Metric(
            "dice_explained",
            "Dice Explained",
            "segmentation_xai",
            "segmentation_metrics.metric_steps",
            True,
            _OUTPUT,
        ),
        Metric(
            "saliency_ratio",
            "Saliency Ratio",
            "segmentation_xai",
            "segmentation_metrics.metric_steps",
            False,
            _OUTPUT,
        ),
        *(
            Metric(
                f"deletion_{s}",
                f"deletion AUC, {label}",
                "ibo",
                "ibo.occlude_all + faithfulness.trapezoid_auc",
                False,
                _OUTPUT,
            )
            for s, label in occlusion.STRATEGIES.items()
        ),
    )
}
