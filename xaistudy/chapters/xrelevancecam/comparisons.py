"""The building blocks of the ``xrelevancecam`` claims (a claim quoting the paper's numbers,
the another-frame's-mask control) and Table 2 compared as the paper compares: against the best
single layer and every other CAM."""

from __future__ import annotations

from xaistudy.chapters.xrelevancecam.paper import PAPER
from xaistudy.stats.claims import Claim
from xaistudy.studies import xrelevancecam as study


def claim(id_: str, source: str, statement: str, paper_value, quantity: str, sign=1, **kw):
    """A claim of the paper; ``paper_value`` a string, or two keys of :data:`PAPER`'s numbers
    ``(a, b)``: the claim then quotes "a vs b" and its paper estimate is ``sign × (a − b)``,
    in the quantity's own units (the magnitude verdict compares it with the interval). Its
    ``quote``, unless given, is :data:`QUOTES` of its id without the start (``.scratch``)."""
    kw.setdefault("quote", QUOTES.get(id_.rsplit(".", 1)[0], ""))
    if isinstance(paper_value, tuple):
        a, b = (PAPER.number(k) for k in paper_value)
        kw["paper_estimate"] = sign * (float(a) - float(b))
        paper_value = f"{a} vs {b}"
    return Claim(id_, PAPER.citation, source, statement, paper_value, quantity, **kw)


def cell(where: str, *cells: tuple[str, str], unit: str = "mIoU") -> str:
    """A quote of table cells: ``where``, then each ``(label, key of PAPER's numbers)`` with
    the paper's value, e.g. "Table 1, layer 1: XRelevanceCAM 28.07 vs RelevanceCAM 18.0 mIoU"."""
    values = " vs ".join(f"{label} {PAPER.number(key)}" for label, key in cells)
    return f"{where}: {values}{f' {unit}' if unit else ''}"


XRC, RC, GC = "XRelevanceCAM", "RelevanceCAM", "Grad-CAM"
UPPER = '; the text: "similar performance for the upper layers" (L158)'
CONSERVES = '; "our method has the best performance compared to the others" (L216)'


def _axiom(axiom: str, other: str, name: str) -> str:
    where = f"Table 4, {axiom}, average (lower is better)"
    return cell(
        where, (XRC, f"table4.xrelevancecam.{axiom}"), (name, f"table4.{other}.{axiom}"), unit=""
    )


#: the quotes of the claims of ``page_claims`` (ids without the start): the paper's table
#: cells, read from :data:`PAPER`, and its key phrases with their line in the paper's text
QUOTES = {
    **{
        f"table1.xrc_beats_rc.{layer}": cell(
            f"Table 1, layer {layer[-1]}",
            (XRC, f"table1.xrelevancecam.{layer}"),
            (RC, f"table1.relevancecam.{layer}"),
        )
        + words
        for layer, words in (
            ("layer1", '; "a 56% improvement" (L162)'),
            ("layer2", '; "outperforms the current state-of-the-art" "in all layers" (L72)'),
            ("layer3", UPPER),
            ("layer4", UPPER),
        )
    },
    "table1.xrc_beats_gradcam.average": cell(
        "Table 1, average per-layer",
        (XRC, "table1.xrelevancecam.average"),
        (GC, "table1.gradcam.average"),
    )
    + '; "much more noticeable compared to the widely used GradCAM" (L162)',
    "table1.shallow_beats_deep": '"shallow layers" "are not class discriminative" ([13], L134); '
    + cell(
        "Table 1, XRelevanceCAM",
        ("layer 3", "table1.xrelevancecam.layer3"),
        ("layer 1", "table1.xrelevancecam.layer1"),
    ),
    "table2.aggregation_beats_layer4": cell(
        "Table 2, SK-ResNeXt, XRelevanceCAM",
        ("4+3+2+1", "table2.sk.xrelevancecam.4+3+2+1"),
        ("layer 4", "table2.sk.xrelevancecam.4"),
    )
    + '; "much greater improvement in mIoU performance" (L170)',
    "table2.xrc_beats_rc.aggregate": cell(
        "Table 2, SK-ResNeXt, 4+3+2+1",
        (XRC, "table2.sk.xrelevancecam.4+3+2+1"),
        (RC, "table2.sk.relevancecam.4+3+2+1"),
    ),
    "table2.resnet.xrc_beats_gradcam.aggregate": cell(
        "Table 2, ResNet50, 4+3+2+1",
        (XRC, "table2.resnet.xrelevancecam.4+3+2+1"),
        (GC, "table2.resnet.gradcam.4+3+2+1"),
    )
    + '; "still outperform other state-of-the-art CAM variants" (L172)',
    "table3.xrc_beats_rc.dropout_on.layer1": cell(
        "Table 3, dropout on, layer 1",
        (XRC, "table3.on.xrelevancecam.layer1"),
        (RC, "table3.on.relevancecam.layer1"),
    )
    + '; "the average mIoU for layer one" "exceeds" the others\' (L178)',
    "table3.xrc_beats_gradcam.dropout_on.aggregate": cell(
        "Table 3, dropout on, 4+3+2+1",
        (XRC, "table3.on.xrelevancecam.4+3+2+1"),
        (GC, "table3.on.gradcam.4+3+2+1"),
    )
    + '; "XRelevanceCAM outperforms the other methods" (L178)',
    "table4.xrc_conserves_better_than_rc": _axiom("conservation", "relevancecam", RC) + CONSERVES,
    "table4.xrc_conserves_better_than_gradcam": _axiom("conservation", "gradcam", GC) + CONSERVES,
    "table4.xrc_sensitivity_better_than_rc": _axiom("sensitivity", "relevancecam", RC)
    + '; "XRelevanceCAM outperforms RelevanceCAM" (L216)',
    "fig5.sanity_passes": '"the quality of the saliency map gradually deteriorates" (Fig. 5, '
    "ResNet50 layer 3, L210)",
}
#: the paper's words on adding layer 1 to the aggregation (SK-ResNeXt, Table 2's text)
LAYER_ONE = (
    '"inferior performance when layer one is taken into account, except our XRelevanceCAM" (L170)'
)
OTHER_MASK = "another tile's mask"


def with_other_mask(fn, iou, *args):
    """``fn``'s rows, and the same difference scored against another frame's mask (a patient
    apart) as the null control: a difference that a map's fit to *any* annotated tissue gives
    too."""
    return fn(iou, *args), {OTHER_MASK: fn(iou, *args, value="iou_other_mask")}


def against_the_best(iou, s: str) -> list:
    """Table 2 as the paper compares: XRelevanceCAM's all-layer map against its best single
    layer and against every other CAM, and what adding layer 1 does (SK backbone)."""
    agg, three = "4+3+2+1", "4+3+2"
    others = [m for m in study.METHODS if m != "xrelevancecam"]
    xrc = "xrelevancecam"
    n = PAPER.number

    def margins(pairs, statistic):
        rows = study.margin_rows(iou, "sk", pairs)
        null = study.margin_rows(iou, "sk", pairs, value="iou_other_mask")
        return rows, {OTHER_MASK: null}, statistic

    best_layer = max(float(n(f"table1.xrelevancecam.{layer}")) for layer in study.LAYERS)
    tests = []
    for cid, statement, quote, estimate, pairs, worst, expect, quantity in (
        (
            "table2.aggregation_beats_every_layer",
            "XRelevanceCAM's all-layer map localises better than any of its single layers",
            f'"the best ({n("table2.sk.xrelevancecam.4+3+2+1")}%) when saliency maps of all '
            'layers are aggregated" (L170)',
            float(n("table2.sk.xrelevancecam.4+3+2+1")) - best_layer,
            [((xrc, agg), (xrc, layer)) for layer in study.LAYERS],
            True,
            ">",
            "smallest, over the four stages, mean IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRC, stage)",
        ),
        (
            "table2.xrc_beats_every_cam.aggregate",
            "XRelevanceCAM's all-layer map beats every other CAM's all-layer map",
            cell(
                "Table 2, SK-ResNeXt, 4+3+2+1 (bold: best of all CAMs)",
                ("XRelevanceCAM", "table2.sk.xrelevancecam.4+3+2+1"),
                ("RelevanceCAM, the next", "table2.sk.relevancecam.4+3+2+1"),
            ),
            float(n("table2.sk.xrelevancecam.4+3+2+1"))
            - float(n("table2.sk.relevancecam.4+3+2+1")),
            [((xrc, agg), (m, agg)) for m in others],
            True,
            ">",
            "smallest, over the other CAMs, mean IoU(XRelevanceCAM) - IoU(other), 4+3+2+1",
        ),
        (
            "table2.layer1_helps_xrc",
            "Adding layer 1 to the aggregation helps XRelevanceCAM",
            LAYER_ONE,
            float(n("table2.sk.xrelevancecam.4+3+2+1")) - float(n("table2.sk.xrelevancecam.4+3+2")),
            [((xrc, agg), (xrc, three))],
            True,
            ">",
            "mean IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRelevanceCAM, 4+3+2)",
        ),
        (
            "table2.layer1_hurts_the_others",
            "Adding layer 1 to the aggregation hurts every other CAM",
            LAYER_ONE,
            max(
                float(n(f"table2.sk.{m}.4+3+2+1")) - float(n(f"table2.sk.{m}.4+3+2"))
                for m in ("gradcam", "relevancecam")
            ),
            [((m, agg), (m, three)) for m in others],
            False,
            "<",
            "largest, over the other CAMs, mean IoU(4+3+2+1) - IoU(4+3+2)",
        ),
    ):
        rows, controls, statistic = margins(
            pairs, study.worst_margin if worst else study.best_margin
        )
        judged = claim(
            f"{cid}{s}",
            "Table 2 (SK backbone)",
            statement,
            "see the quote",
            quantity,
            expect=expect,
            statistic=statistic,
            quote=quote,
            paper_estimate=estimate,
        )
        tests.append((judged, rows, controls))
    return tests


def more_findings(iou, s: str) -> list:
    """The text's other findings: the methods differ most in the shallow layers (Table 1), the
    ResNet's XRelevanceCAM deteriorates with layers 2 and 1 (Table 2) and dropout at evaluation
    lowers the mIoU (Table 3); each with its another-frame's-mask control."""
    n = PAPER.number
    xrc, three = "xrelevancecam", ("gradcam", "relevancecam", "xrelevancecam")

    def spread(layer):
        values = [float(n(f"table1.{m}.{layer}")) for m in three]
        return max(values) - min(values)

    def both(fn, *args):
        return fn(iou, *args), {OTHER_MASK: fn(iou, *args, value="iou_other_mask")}

    resnet = [((xrc, "4+3+2"), (xrc, "4+3")), ((xrc, "4+3+2+1"), (xrc, "4+3"))]
    rn = {a: float(n(f"table2.resnet.xrelevancecam.{a}")) for a in ("4+3", "4+3+2", "4+3+2+1")}
    rows, null = both(study.margin_rows, "resnet", resnet)
    return [
        (
            claim(
                f"table1.methods_differ_in_shallow_layers{s}",
                "Table 1 and text",
                "The methods differ most in the shallow layers",
                "see the quote",
                "spread (max - min) over Grad-CAM, RelevanceCAM and XRelevanceCAM of the IoU at "
                "layer1 - the spread at layer4, per frame",
                quote='"similar performance for the upper layers"; "what differentiates the '
                'methods the most" is "the shallow layers" (L158)',
                paper_estimate=spread("layer1") - spread("layer4"),
            ),
            *both(study.spread_difference, "sk", list(three), "layer1", "layer4"),
        ),
        (
            claim(
                f"table2.resnet_deteriorates_with_layers_2_and_1{s}",
                "Table 2 (ResNet) and text",
                "With the ResNet, XRelevanceCAM's aggregation worsens when layer 2 or 1 is added",
                "see the quote",
                "largest of mean IoU(4+3+2) - IoU(4+3) and IoU(4+3+2+1) - IoU(4+3), ResNet",
                expect="<",
                statistic=study.best_margin,
                quote='with "the ResNet50 backbone", XRelevanceCAM "deteriorates if layer 2 or '
                'layer 1 is included" (L170-172)',
                paper_estimate=max(rn["4+3+2"], rn["4+3+2+1"]) - rn["4+3"],
            ),
            rows,
            null,
        ),
        (
            claim(
                f"table3.dropout_on_lowers_miou{s}",
                "Table 3 and text",
                "Dropout at evaluation lowers XRelevanceCAM's all-layer mIoU",
                ("table3.on.xrelevancecam.4+3+2+1", "table3.off.xrelevancecam.4+3+2+1"),
                "IoU with dropout on - off, XRelevanceCAM 4+3+2+1, same model and frames",
                expect="<",
                quote='with dropout at evaluation "the metric performances shown in Table 3 gets '
                'worse than usual" (L178)',
            ),
            *both(
                study.cell_difference,
                ("sk_dropout:on", xrc, "4+3+2+1"),
                ("sk_dropout:off", xrc, "4+3+2+1"),
            ),
        ),
    ]
