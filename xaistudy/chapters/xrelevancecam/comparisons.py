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
    in the quantity's own units (the magnitude verdict compares it with the interval)."""
    if isinstance(paper_value, tuple):
        a, b = (PAPER.number(k) for k in paper_value)
        kw["paper_estimate"] = sign * (float(a) - float(b))
        paper_value = f"{a} vs {b}"
    return Claim(id_, PAPER.citation, source, statement, paper_value, quantity, **kw)


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
            "the localisation performance of discriminative clinical structure is the best "
            "(38.20%) when saliency maps of all layers are aggregated compared to other from a "
            "single layer",
            float(n("table2.sk.xrelevancecam.4+3+2+1")) - best_layer,
            [((xrc, agg), (xrc, layer)) for layer in study.LAYERS],
            True,
            ">",
            "smallest, over the four stages, mean IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRC, stage)",
        ),
        (
            "table2.xrc_beats_every_cam.aggregate",
            "XRelevanceCAM's all-layer map beats every other CAM's all-layer map",
            "the partially/fully aggregated saliency maps using XRelevanceCAM still outperform "
            "other state-of-the-art CAM variants",
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
            "All compared methods exhibit inferior performance when layer one is taken into "
            "account, except our XRelevanceCAM",
            float(n("table2.sk.xrelevancecam.4+3+2+1")) - float(n("table2.sk.xrelevancecam.4+3+2")),
            [((xrc, agg), (xrc, three))],
            True,
            ">",
            "mean IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRelevanceCAM, 4+3+2)",
        ),
        (
            "table2.layer1_hurts_the_others",
            "Adding layer 1 to the aggregation hurts every other CAM",
            "All compared methods exhibit inferior performance when layer one is taken into "
            "account, except our XRelevanceCAM",
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
