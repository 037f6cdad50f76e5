"""The thesis's findings as claims, judged over all seeds of a run.

Table 6's ordering of the methods per metric, the four tendencies' "similar quality" and the
premise that the U-Net's masks rank the methods as the true nuclei masks do; every number the
claims quote comes from :data:`.paper.PAPER`. The order and premise claims face two null
controls scored in the same run (:data:`xaistudy.studies.thesis_metrics.CONTROLS`): the maps'
pixels shuffled (coverage only) and each tile's U-Net mask swapped for another tile's of its
class. An ordering these controls also give is decided by how much each method marks, not by
where: the claim is *uninformative*.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from xaistudy.chapters.thesis_metrics.paper import (
    PAPER,
    thesis_means,
    thesis_order,
)
from xaistudy.chapters.thesis_metrics.text import data_text, order_text
from xaistudy.stats.claims import Claim, judge


def claim_rows(res: Any, profile: str = "") -> list[dict]:
    """Table 6's ordering per metric, the four tendencies and the ground-truth premise, judged
    over the seeds (bootstrap over seeds and test tiles); reads ``res.scores`` and
    ``res.params``, and records ``profile`` in each row."""
    from xaistudy.evaluate.quality import METRIC_LABELS, METRICS
    from xaistudy.evaluate.tendencies import TENDENCIES
    from xaistudy.studies import thesis_metrics as study

    scores, params = res.scores, res.params
    base = dict(data_name=data_text(params), profile=profile)
    n_boot = params.n_boot
    sel = study.headline(scores, params, mask_type="tumour")
    unet = sel[sel["ground_truth"] == "U-Net"]
    null = (
        {
            c: study.headline(
                res.controls[res.controls["control"] == c], params, mask_type="tumour"
            )
            for c in study.CONTROLS
        }
        if len(res.controls)
        else {}
    )
    paper = thesis_means("tumour")
    rows = []
    for metric in METRICS:
        order = thesis_order(metric)
        if metric in EQUIVALENT:  # the thesis names no best method: an equivalence claim
            rows.append(_no_superior_method(res, metric, unet, base))
            continue
        claim = Claim(
            f"table6.order.{metric}",
            PAPER.citation,
            "Table 6 (tumour mask, class means)",
            f"The methods rank by {METRIC_LABELS[metric]} as in Table 6"
            + ORDER_CAVEATS.get(metric, ""),
            order_text(paper.loc[metric].to_dict()),
            f"Kendall tau between the thesis's ordering and the mean {metric} per method "
            f"(reading {params.average}, U-Net tumour masks)",
            statistic=study.order_statistic(order),
            quote=ORDER_QUOTES[metric],
        )
        controls = {
            c: study.method_rows(v[v["ground_truth"] == "U-Net"], metric, order)
            for c, v in null.items()
        }
        data = study.method_rows(unet, metric, order)
        rows.append(judge(claim, data, controls=controls, n_boot=n_boot, **base))
    margin = params.equivalence_margin
    for k, case in enumerate(TENDENCIES, start=1):
        claim = Claim(
            f"tendency.{k}.similar_quality",
            PAPER.citation,
            "Sec. 4 and conclusion 7",
            f"Maps of '{case}' tiles score like the other tiles of their class",
            PAPER.number("conclusion7"),
            f"|mean within-class difference| of {params.tendency_metric} (tile of the case "
            f"minus the other tiles of its class, in SDs, mean over methods); similar when "
            f"below {margin:g}",
            expect="<",
            null=margin,
            statistic=study.abs_mean,
            quote='"similar quality interpretation maps for correctly and incorrectly '
            'classified images" (Sec. 6, conclusion 7, L745); "no remarkable pattern was '
            'observed" (Sec. 5, L731)',
        )
        data = study.tendency_differences(scores, params, case)
        # the positive control: the case's tiles scored from their shuffled maps differ from
        # the rest of their class when the maps say where the nuclei are; when they read
        # "similar" too, the measurement cannot see a difference and the claim is uninformative
        positive = (
            {POSITIVE: study.tendency_differences(
                study.with_case_shuffled(scores, res.controls, case), params, case
            )}  # fmt: skip
            if len(res.controls)
            else None
        )
        rows.append(judge(claim, data, controls=positive, n_boot=n_boot, **base))
    exact = "exact" in study.ground_truths(params)
    for metric in METRICS:
        claim = Claim(
            f"ground_truth.same_order.{metric}",
            PAPER.citation,
            "Sec. 3 (method)",
            f"U-Net masks rank the methods by {METRIC_LABELS[metric]} as the true nuclei masks do",
            "assumed: the U-Net's masks serve as the ground truth",
            "Kendall tau between the method means against the U-Net and the exact tumour "
            f"masks (reading {params.average})",
            statistic=study.same_order,
            not_testable="" if exact else "the grading data have no exact nuclei masks",
            kind="premise",
            quote='"ground truth masks are obtained from segmentation model" (Sec. 3, L240)',
        )
        methods = list(study.METHODS)
        data = study.method_rows(sel, metric, methods) if exact else None
        # the premise is about the masks: its control swaps the U-Net's mask only
        controls = {c: study.method_rows(v, metric, methods) for c, v in null.items()}
        controls = {c: v for c, v in controls.items() if c == "another tile's mask"}
        rows.append(judge(claim, data, controls=controls if exact else None, n_boot=n_boot, **base))
    return rows


#: the positive control of the equivalence claims (a case known to differ)
POSITIVE = "shuffled maps of the case"
#: metrics where the thesis names no best method: "no method stands out" within this margin
#: (on the metric's scale; the thesis's own spread of Table 6's means is 0.014)
EQUIVALENT = {"spearman": 0.05}


def _no_superior_method(res: Any, metric: str, unet, base: dict) -> dict:
    """Table 6's "no particularly superior method" on ``metric``: the largest difference
    between two methods' means is below :data:`EQUIVALENT`'s margin. Its positive control
    replaces Grad-CAM's maps by their shuffled copies (coverage kept, location lost)."""
    from xaistudy.evaluate.quality import METRIC_LABELS
    from xaistudy.studies import thesis_metrics as study

    params, margin, methods = res.params, EQUIVALENT[metric], list(study.METHODS)
    means = thesis_means("tumour").loc[metric]
    claim = Claim(
        f"table6.no_superior_method.{metric}",
        PAPER.citation,
        "Table 6 (tumour mask, class means) and Sec. 4.4.7",
        f"No method stands out by {METRIC_LABELS[metric]}",
        order_text(means.to_dict()),
        f"largest difference between two methods' mean {metric} (reading {params.average}, "
        f"U-Net tumour masks); no method stands out when below {margin:g}",
        expect="<",
        null=margin,
        statistic=study.spread_statistic(len(methods)),
        quote=ORDER_QUOTES[metric],
        paper_estimate=float(means.max() - means.min()),
    )
    positive = None
    if len(res.controls):
        shuffled = study.headline(
            res.controls[res.controls["control"] == "coverage-matched maps"],
            params, mask_type="tumour", ground_truth="U-Net",
        )  # fmt: skip
        swapped = pd.concat(
            [unet[unet["method"] != "gradcam"], shuffled[shuffled["method"] == "gradcam"]],
            ignore_index=True,
        )
        positive = {"Grad-CAM's maps shuffled": study.method_rows(swapped, metric, methods)}
    data = study.method_rows(unet, metric, methods)
    return judge(claim, data, controls=positive, n_boot=params.n_boot, **base)


#: the thesis's words for Table 6's ordering per metric (Sec. 4.4.7): key phrases and locators
ORDER_QUOTES = {
    "iou": '"GradCAM method had a better overlay" (Sec. 4.4.7, L669), yet "all four '
    'different interpretation maps had similar IoU scores" (Sec. 4.4.1, L602)',
    "precision": '"GradCAM method demonstrated better results"; "The second best method is '
    'the LIME technique" (Sec. 4.4.7, L671)',
    "recall": '"The GradCAM method distinguished itself from other techniques" (Sec. 4.4.7, L673)',
    "f1": '"The GradCAM method exhibited the best performance"; "Very low results" for '
    "NoiseTunnel (Sec. 4.4.7, L675)",
    "spearman": '"did not identify one particularly superior interpretation method"; '
    '"average results were concentrated near 0" (Sec. 4.4.7, L713)',
    "pixel_accuracy": '"GradCAM method had lower results than other methods"; "the best '
    'results were obtained from the NoiseTunnel method" (Sec. 4.4.7, L715)',
}
#: what the thesis's text says beside Table 6's full ordering, where it says less
ORDER_CAVEATS = {
    "iou": " (the thesis: Grad-CAM slightly ahead, the other three similar)",
}
