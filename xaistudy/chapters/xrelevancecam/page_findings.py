"""Two findings of the ``xrelevancecam`` text that no table prints, as claims that can fail:
fewer false positives in the shallow layers (L162, Fig. 3) and the gradual deterioration of the
map in the cascading randomisation (L210, Fig. 5), each with a null control."""

from __future__ import annotations

from xaistudy.chapters.xrelevancecam.comparisons import OTHER_MASK, claim
from xaistudy.studies import xrelevancecam as study

#: the shallow stages the paper's sentence is about ("most of the methods are less robust in
#: the shallow layers", L162)
SHALLOW: tuple[str, ...] = ("layer1", "layer2")
#: the Fig. 5 claims' null control: the same cascade on the untrained ResNet
UNTRAINED = "untrained network"

FPR_HYPOTHESIS = (
    "a map that marks less area has fewer false positives trivially, and the chapter's "
    "binarisation (`binarise`: a threshold per map, mean + std by default) does not fix the "
    "marked area, so the comparison is not area-matched (the table 'false_positives' gives the "
    "area); against another tile's mask only a smaller area lowers XRelevanceCAM's rate, so "
    "the control reaches the verdict alone when area is all there is"
)


def false_positive_claim(iou, s: str) -> tuple:
    """``table1.fewer_false_positives.shallow``: at layer1 and layer2 XRelevanceCAM's
    false-positive rate (:func:`xaistudy.studies.xrelevancecam.false_positive_rate`) is below
    every other CAM's, judged by the worst margin over (stage, other CAM), with the same margin
    against another frame's annotation as the control."""
    return (
        claim(
            f"table1.fewer_false_positives.shallow{s}",
            "Fig. 3 and text (Table 1's paragraph)",
            "In the shallow stages XRelevanceCAM marks less non-annotated tissue than every "
            "other CAM",
            "— (a visual finding, Figs. 2-3)",
            "smallest, over layer1, layer2 and the other CAMs, mean FPR(other) - "
            "FPR(XRelevanceCAM) per frame; FPR: % of the non-annotated pixels the binarised "
            "map marks (SK backbone)",
            statistic=study.worst_margin,
            quote='"most of the methods are less robust in the shallow layers while '
            "XRelevanceCAM demonstrates a propensity for highlighting significantly fewer false "
            'positive tissue compared to the alternatives" (L162)',
            hypothesis=FPR_HYPOTHESIS,
        ),
        study.false_positive_margin(iou, "sk", SHALLOW),
        {OTHER_MASK: study.false_positive_margin(iou, "sk", SHALLOW, value="fpr_other_mask")},
    )


def deterioration_claim(sanity, sanity_untrained, s: str) -> tuple:
    """``fig5.gradual_deterioration``: per frame, Kendall's tau between the number of units
    randomised (fc, layer4 .. layer1, stem; the trained step left out) and the Spearman
    similarity to the trained map is below 0 on average. An abrupt fall at the first step with
    a flat tail gives about 0 and fails it; the same statistic for the cascade of the untrained
    ResNet is the control (a fall that re-drawing any weights gives is not about learning)."""
    return (
        claim(
            f"fig5.gradual_deterioration{s}",
            "Fig. 5",
            "The XRelevanceCAM map departs further from the trained one with every unit "
            "randomised from the top (gradually, not at once)",
            "— (a visual finding, Fig. 5)",
            "Kendall's tau between the step (1 = fc ... 6 = stem randomised) and the Spearman "
            "similarity to the trained map, per frame (ResNet, sanity_layer)",
            expect="<",
            quote='"the quality of the saliency map gradually deteriorates" (Fig. 5, ResNet50 '
            "layer 3, L210)",
        ),
        study.deterioration_rows(sanity),
        {UNTRAINED: study.deterioration_rows(sanity_untrained)},
    )
