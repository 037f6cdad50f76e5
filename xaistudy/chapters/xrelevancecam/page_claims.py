"""The ``xrelevancecam`` chapter's claims: the paper's findings (Tables 1-4, Fig. 5; the text's
false positives and gradual deterioration in :mod:`.page_findings`) per backbone start, judged
on the study's paired rows, and the book's Eq. 1 hypothesis."""

from __future__ import annotations

from xaistudy.chapters.xrelevancecam.comparisons import (
    against_the_best,
    more_findings,
    with_other_mask,
)
from xaistudy.chapters.xrelevancecam.comparisons import claim as _claim
from xaistudy.chapters.xrelevancecam.page_findings import (
    UNTRAINED,
    deterioration_claim,
    false_positive_claim,
)
from xaistudy.chapters.xrelevancecam.paper import PAPER
from xaistudy.stats.claims import Claim, judge
from xaistudy.studies import xrelevancecam as study

EQ1_HYPOTHESIS = (
    "Eq. 1 changes RelevanceCAM's map only where the channel activation totals differ "
    "(see the diagnostic)"
)


def _iou_claims(iou, s: str) -> list:
    """Tables 1-3: paired per-frame IoU differences of one start's models (``s``: its suffix),
    each with its another-frame's-mask control."""

    def diff(*args):
        return with_other_mask(study.iou_difference, iou, *args)

    tests = [
        (
            _claim(
                f"table1.xrc_beats_rc.{layer}{s}",
                "Table 1",
                f"XRelevanceCAM segments better than RelevanceCAM at {layer}"
                if layer in ("layer1", "layer2")
                else f"XRelevanceCAM's mIoU is above RelevanceCAM's at {layer} (Table 1; the "
                "text calls the upper layers similar)",
                (f"table1.xrelevancecam.{layer}", f"table1.relevancecam.{layer}"),
                f"IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, {layer}, %",
                hypothesis=EQ1_HYPOTHESIS if i == 0 else "",
            ),
            *diff("sk", ("xrelevancecam", layer), ("relevancecam", layer)),
        )
        for i, layer in enumerate(study.LAYERS)
    ]
    on, agg = "sk_dropout:on", "4+3+2+1"
    tests += against_the_best(iou, s) + more_findings(iou, s) + [false_positive_claim(iou, s)]
    return tests + [
        (
            _claim(
                f"table1.xrc_beats_gradcam.average{s}",
                "Table 1",
                "XRelevanceCAM's average per-layer mIoU exceeds Grad-CAM's",
                ("table1.xrelevancecam.average", "table1.gradcam.average"),
                "mean over the stages of IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, %",
            ),
            *with_other_mask(study.layer_mean_difference, iou, "sk", "xrelevancecam", "gradcam"),
        ),
        (
            _claim(
                f"table1.shallow_beats_deep{s}",
                "Table 1",
                "XRelevanceCAM's layer-3 map scores a higher IoU than its layer-1 map",
                ("table1.xrelevancecam.layer3", "table1.xrelevancecam.layer1"),
                "IoU(XRelevanceCAM, layer3) - IoU(XRelevanceCAM, layer1) per frame, %",
                kind="premise",
            ),
            *diff("sk", ("xrelevancecam", "layer3"), ("xrelevancecam", "layer1")),
        ),
        (
            _claim(
                f"table2.aggregation_beats_layer4{s}",
                "Table 2",
                "Aggregating all four stages beats layer 4 alone (XRelevanceCAM, SK)",
                ("table2.sk.xrelevancecam.4+3+2+1", "table2.sk.xrelevancecam.4"),
                "IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRelevanceCAM, 4) per frame, %",
            ),
            *diff("sk", ("xrelevancecam", agg), ("xrelevancecam", "layer4")),
        ),
        (
            _claim(
                f"table2.xrc_beats_rc.aggregate{s}",
                "Table 2",
                "XRelevanceCAM wins the 4+3+2+1 aggregation over RelevanceCAM (SK)",
                ("table2.sk.xrelevancecam.4+3+2+1", "table2.sk.relevancecam.4+3+2+1"),
                "IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, 4+3+2+1, %",
            ),
            *diff("sk", ("xrelevancecam", agg), ("relevancecam", agg)),
        ),
        (
            _claim(
                f"table2.resnet.xrc_beats_gradcam.aggregate{s}",
                "Table 2",
                "With the ResNet, XRelevanceCAM beats Grad-CAM at 4+3+2+1",
                ("table2.resnet.xrelevancecam.4+3+2+1", "table2.resnet.gradcam.4+3+2+1"),
                "IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, ResNet, 4+3+2+1, %",
            ),
            *diff("resnet", ("xrelevancecam", agg), ("gradcam", agg)),
        ),
        (
            _claim(
                f"table3.xrc_beats_rc.dropout_on.layer1{s}",
                "Table 3",
                "With dropout on, XRelevanceCAM beats RelevanceCAM at layer 1",
                ("table3.on.xrelevancecam.layer1", "table3.on.relevancecam.layer1"),
                "IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, dropout on, layer1, %",
            ),
            *diff(on, ("xrelevancecam", "layer1"), ("relevancecam", "layer1")),
        ),
        (
            _claim(
                f"table3.xrc_beats_gradcam.dropout_on.aggregate{s}",
                "Table 3",
                "With dropout on, XRelevanceCAM beats Grad-CAM at 4+3+2+1",
                ("table3.on.xrelevancecam.4+3+2+1", "table3.on.gradcam.4+3+2+1"),
                "IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, dropout on, 4+3+2+1, %",
            ),
            *diff(on, ("xrelevancecam", agg), ("gradcam", agg)),
        ),
    ]


def _axiom_and_sanity_claims(ax, ax_untrained, sa, sa_untrained, s: str, threshold: float):
    """Table 4 per patient (each against the untrained network's same difference, its null
    control) and Fig. 5 per frame (the end point; the gradual fall, against the untrained
    network's cascade), for one start."""
    n = PAPER.number

    def diff(axioms, axiom, worse, better):
        rows = study.axiom_difference(axioms, axiom, worse, better)
        null = study.axiom_difference(ax_untrained, axiom, worse, better)
        return rows, {UNTRAINED: null}

    return [
        (
            _claim(
                f"table4.xrc_conserves_better_than_rc{s}",
                "Table 4",
                "XRelevanceCAM's conservation error is below RelevanceCAM's",
                ("table4.xrelevancecam.conservation", "table4.relevancecam.conservation"),
                "conservation(RelevanceCAM) - conservation(XRelevanceCAM), mean over "
                "stages, per patient",
                sign=-1,
                kind="implementation check",
            ),
            *diff(ax, "conservation", "relevancecam", "xrelevancecam"),
        ),
        (
            _claim(
                f"table4.xrc_conserves_better_than_gradcam{s}",
                "Table 4",
                "XRelevanceCAM's conservation error is below Grad-CAM's",
                ("table4.xrelevancecam.conservation", "table4.gradcam.conservation"),
                "conservation(Grad-CAM) - conservation(XRelevanceCAM), per patient",
                sign=-1,
                kind="implementation check",
            ),
            *diff(ax, "conservation", "gradcam", "xrelevancecam"),
        ),
        (
            _claim(
                f"table4.xrc_sensitivity_better_than_rc{s}",
                "Table 4",
                "XRelevanceCAM's sensitivity error is below RelevanceCAM's",
                ("table4.xrelevancecam.sensitivity", "table4.relevancecam.sensitivity"),
                "sensitivity(RelevanceCAM) - sensitivity(XRelevanceCAM), per patient",
                sign=-1,
            ),
            *diff(ax, "sensitivity", "relevancecam", "xrelevancecam"),
        ),
        (
            _claim(
                f"fig5.sanity_passes{s}",
                "Fig. 5",
                f"With every unit randomised (head, stages, stem) the XRelevanceCAM map no "
                f"longer resembles the trained one (stated rule: Spearman < {threshold:g})",
                n("fig5"),
                "threshold - Spearman(trained map, fully randomised map) per frame",
                no_control="a randomisation test is itself a comparison with a network that "
                "learned nothing (the cascade's last step)",
            ),
            study.sanity_margin(sa, threshold),
        ),
        deterioration_claim(sa, sa_untrained, s),
    ]


def claims(result: study.Result, profile: str = "") -> list[dict[str, object]]:
    """The paper's findings (Tables 1-4, Fig. 5) per backbone start, and the Eq. 1 diagnostic."""
    params = result.params
    data_name = study.data_name(params)
    shared = "" if params.pretrained else "stand-in pretraining (seed 0, shared by the seeds)"
    rows = []
    for start in study.starts(params):
        s = f".{start}"
        tests = _iou_claims(study.of_start(result.iou, start), s)
        tests += _axiom_and_sanity_claims(
            study.of_start(result.axioms, start),
            study.of_start(result.axioms_untrained, start),
            study.of_start(result.sanity, start),
            study.of_start(result.sanity_untrained, start),
            s,
            params.sanity_spearman,
        )
        note = f"start: {study.start_label(params, start)}; unit: test patient"
        rows += [
            judge(
                c,
                d,
                controls=controls[0] if controls else None,
                note=note,
                shared_stages=shared if start != "scratch" else "",
                data_name=data_name,
                profile=profile,
            )
            for c, d, *controls in tests
        ]
    hypothesis = Claim(
        "eq1.pretraining_spreads_channels",
        "the book's hypothesis",
        "diagnostic",
        "A pretrained start spreads the channel activation totals more than training from "
        "scratch, so Eq. 1 has something to reweight",
        "— (not the paper's)",
        "CV of the channel activation totals (mean over stages and frames), pretrained - "
        "scratch start, SK backbone, per test patient",
        no_control="a property of the activations compared between two starts, not a map "
        "scored against a mask",
        kind="demonstration",
        quote="Eq. 1 divides each channel's relevance total by its activation total (L89); "
        '"we use pre-trained weights to initialize the classification model" (L154)',
    )
    rows.append(
        judge(
            hypothesis,
            study.pretraining_spread(result.diagnostic),
            data_name=data_name,
            profile=profile,
            note="paired by seed and patient; the scored frames may differ between starts",
        )
    )
    return rows
