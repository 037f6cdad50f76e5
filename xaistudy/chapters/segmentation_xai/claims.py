"""The survey's findings as claims, judged over all seeds of a run.

Table 1's orderings at every layer, the pairwise findings of the survey's text, the
region-of-interest argument and the RISE mask-count trend; every number the claims quote comes
from :data:`.paper.PAPER`. The Dice Explained and Saliency Ratio claims face a null control
scored in the same run: every map's values moved to random smooth places (the same area above
the threshold, no location). The Saliency Ratio is the map's area by construction, so its
control equals it: those claims can only be *uninformative*.
"""

from __future__ import annotations

import pandas as pd

from xaistudy.chapters.segmentation_xai.paper import (
    PAPER,
    paper_table1,
    survey_mask_counts,
    survey_number,
    survey_thresholds,
)
from xaistudy.chapters.segmentation_xai.text import describe_run
from xaistudy.stats.claims import Claim, judge, order_agreement, paired_difference, worst_margin


def _lowest_rows(n_masks: int) -> pd.DataFrame:
    """Table 1's row of each method at its lowest threshold (RISE at ``n_masks`` masks)."""
    paper = paper_table1()
    low = paper.groupby("method")["threshold"].transform("min")
    return paper[(paper["threshold"] == low)
                 & (paper["n_masks"].isna() | (paper["n_masks"] == n_masks))]


def paper_order(column: str, n_masks: int, best: str) -> list[str]:
    """The survey's order of the methods by ``column`` at each method's lowest threshold
    (RISE at ``n_masks`` masks), best first (``best``: "max" or "min")."""
    rows = _lowest_rows(n_masks)
    return list(rows.sort_values(column, ascending=best == "min")["method"])


def table1_cells(column: str, order: list[str], n_masks: int) -> str:
    """Table 1's cells of ``column`` for the methods of ``order`` as :func:`paper_order` reads
    them (each method's lowest threshold, RISE at ``n_masks`` masks), e.g. "Table 1, Dice
    Explained: RISE 0.948, Seg-Ablation-CAM 0.843, …"."""
    value = _lowest_rows(n_masks).set_index("method")[column]
    label = {"dice_explained": "Dice Explained", "saliency_ratio": "Saliency Ratio",
             "seconds": "time (s)"}[column]
    return f"Table 1, {label}: " + ", ".join(f"{m} {value[m]:g}" for m in order)


def paper_rise_count(params) -> int:
    """The survey's mask count to compare with: the run's largest when the survey used it,
    else the survey's largest."""
    counts = survey_mask_counts()
    return max(params.rise_masks) if max(params.rise_masks) in counts else max(counts)


#: the mask count at which the survey's RISE explains best (Table 1, its lowest threshold)
PEAK = 500


def peak_untestable(params) -> str:
    """Why this run cannot test RISE's peak at :data:`PEAK` masks ("" when it can): the peak
    needs :data:`PEAK` masks and another count of the survey's, read at the survey's lowest
    RISE threshold, where Table 1 has it."""
    counts = [n for n in survey_mask_counts() if n != PEAK]
    lowest = survey_thresholds(rise=True)[0]
    others = [n for n in counts if n in params.rise_masks]
    why = []
    if PEAK not in params.rise_masks or not others:
        run = ", ".join(map(str, params.rise_masks))
        want = sorted({*params.rise_masks, PEAK, *(others or [min(counts)])})
        why.append(f"this run runs RISE at {run} masks; the survey's {PEAK}-mask peak needs "
                   f"{PEAK} and another of its counts ({', '.join(map(str, counts))}): -p "
                   f"rise_masks '{want}'")
    if params.rise_thresholds[0] != lowest:
        above = [t for t in params.rise_thresholds if t > lowest]
        why.append(f"the lowest RISE threshold is {params.rise_thresholds[0]:g}, and Table 1 "
                   f"has the peak at {lowest:g}: -p rise_thresholds '{[lowest, *above]}'")
    return "; ".join(why)


def _pair(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return paired_difference(rows, a, b, by="method", value="value")


def _layer_tests(res, layer: str, n_p: int) -> list[tuple]:
    """The claims judged at one CAM layer (RISE's rows join every layer)."""
    from xaistudy.studies.segmentation_xai import CONTROL, background_rows, per_unit_rows

    p, cite = res.params, PAPER.citation
    lo_cam, lo_rise = p.cam_thresholds[0], p.rise_thresholds[0]
    rise_note = f"RISE at {max(p.rise_masks)} masks"
    orders = {
        "dice": paper_order("dice_explained", n_p, "max"),
        "ratio": paper_order("saliency_ratio", n_p, "min"),
        "time": paper_order("seconds", n_p, "min"),
    }
    data = {
        "dice": per_unit_rows(res, layer, "dice_explained"),
        "ratio": per_unit_rows(res, layer, "saliency_ratio", -1.0),
        "time": per_unit_rows(res, layer, "seconds", -1.0),
    }
    null = {
        "dice": per_unit_rows(res, layer, "dice_explained", control=True),
        "ratio": per_unit_rows(res, layer, "saliency_ratio", -1.0, control=True),
    }
    words = {"dice": ("Dice Explained", "higher"), "ratio": ("Saliency Ratio", "lower"),
             "time": ("time per image", "lower")}
    # the survey's CAMs ran at the bottleneck only: a claim at another layer carries it there
    at = "" if layer == "bottleneck" else f"; CAMs {BOTTLENECK}"
    tests = []
    for what, order in orders.items():
        label, better = words[what]
        tests.append((Claim(
            f"{what}_order.{layer}", cite, "Table 1",
            f"Methods ordered by {label} ({better} is better) as in Table 1, layer {layer}",
            " > ".join(order) + f" (thresholds {lo_cam:g}/{lo_rise:g}, RISE {n_p} masks)",
            f"Kendall tau between the survey's order and the order of the mean {label} per "
            f"method ({rise_note})",
            statistic=order_agreement(order, by="method", value="value"),
            no_control=NO_TIME_CONTROL if what == "time" else "",
            kind="implementation check" if what == "time" else "finding",
            quote=table1_cells(COLUMNS[what], order, n_p) + ORDER_WORDS[what] + at,
        ), data[what], 400, {CONTROL: null[what]} if what in null else None))
    dice, ratio = data["dice"], data["ratio"]
    c_dice, c_ratio = null["dice"], null["ratio"]
    tests += [
        (Claim(f"dice.ablation_vs_xres.{layer}", cite, "Table 1 and text",
               f"Seg-Ablation-CAM leads the feature-space methods in Dice Explained "
               f"(runner-up Seg-XRes-CAM), layer {layer}",
               f"{survey_number('seg-ablation-cam', lo_cam, None, 'dice')} vs "
               f"{survey_number('seg-xres-cam', lo_cam, None, 'dice')}",
               "Dice Explained of Seg-Ablation-CAM − Seg-XRes-CAM per tile",
               quote='"for intermediate feature space methods, Seg-AblationCAM leads" (L149); '
               "Seg-XRes-CAM second in Table 1" + at),
         _pair(dice, "Seg-Ablation-CAM", "Seg-XRes-CAM"), 2000,
         {CONTROL: _pair(c_dice, "Seg-Ablation-CAM", "Seg-XRes-CAM")}),
        (Claim(f"dice.rise_vs_ablation.{layer}", cite, "Table 1 and text",
               f"RISE explains better than the best feature-space method, layer {layer}",
               f"{survey_number('rise', lo_rise, n_p, 'dice')} ({n_p} masks) vs "
               f"{survey_number('seg-ablation-cam', lo_cam, None, 'dice')}",
               f"Dice Explained of RISE − Seg-Ablation-CAM per tile ({rise_note})",
               quote=f'{RISE_BEST}; "Seg-AblationCAM leads" the feature-space methods (L149)'
               + at),
         _pair(dice, "RISE", "Seg-Ablation-CAM"), 2000,
         {CONTROL: _pair(c_dice, "RISE", "Seg-Ablation-CAM")}),
        (Claim(f"ratio.xres_vs_grad.{layer}", cite, "Table 1",
               f"Seg-XRes-CAM selects fewer pixels than Seg-Grad-CAM, layer {layer}",
               f"{survey_number('seg-xres-cam', lo_cam, None, 'ratio')} vs "
               f"{survey_number('seg-grad-cam', lo_cam, None, 'ratio')}",
               "Saliency Ratio of Seg-XRes-CAM − Seg-Grad-CAM per tile (empty maps: all "
               "pixels)", expect="<",
               quote=f"Table 1, Saliency Ratio at threshold {lo_cam:g}: Seg-XRes-CAM "
               f"{survey_number('seg-xres-cam', lo_cam, None, 'ratio')} vs Seg-Grad-CAM "
               f"{survey_number('seg-grad-cam', lo_cam, None, 'ratio')}" + at),
         _pair(ratio.assign(value=-ratio["value"]), "Seg-XRes-CAM", "Seg-Grad-CAM"), 2000,
         {CONTROL: _pair(c_ratio.assign(value=-c_ratio["value"]), "Seg-XRes-CAM",
                         "Seg-Grad-CAM")}),
    ]
    cams = res.controls[res.controls["layer"] == layer]
    tests.append((Claim(
        f"fig2.eigen_marks_background.{layer}", cite, "Fig. 2 and text",
        f"Seg-Eigen-CAM marks the background where the other CAMs mark the object, layer {layer}",
        "qualitative (Fig. 2: 3 of its examples)",
        "(prediction's share of the tile − share of the map's mass inside the prediction) of "
        "Seg-Eigen-CAM − the median of the same over the other CAMs, per tile",
        quote='Seg-Eigen-CAM maps "highlight the background instead of the object itself" '
        f"(Fig. 2, L137){at}"),
        background_rows(res.diagnostics, layer), 2000,
        {CONTROL: background_rows(cams, layer)}))
    roi = res.roi[res.roi["layer"] == layer].rename(columns={"share_inside": "value"})
    tests += [
        (Claim(f"roi.xres_vs_grad.{layer}", cite, "Sec. 3 (GAP argument)",
               "Explaining a region M, Seg-XRes-CAM keeps the saliency nearer M than "
               f"Seg-Grad-CAM, whose GAP spreads it, layer {layer}", "argued, no number",
               "share of saliency inside M's window: Seg-XRes-CAM − Seg-Grad-CAM",
               quote='for "a region of interest" Seg-Grad-CAM "is best avoided": "spatial '
               'information collapsing" under GAP (Sec. 3, L101)', no_control=ROI_PAIR),
         _pair(roi, "Seg-XRes-CAM", "Seg-Grad-CAM"), 2000),
        (Claim(f"roi.xres_vs_ablation.{layer}", cite, "footnote 5",
               f"Seg-Ablation-CAM spreads a region's saliency too, layer {layer}",
               "argued, no number",
               "share of saliency inside M's window: Seg-XRes-CAM − Seg-Ablation-CAM",
               quote='"Non-gradient-based algorithms such as Seg-Ablation-CAM fail too" '
               "(footnote 5, L105)", no_control=ROI_PAIR),
         _pair(roi, "Seg-XRes-CAM", "Seg-Ablation-CAM"), 2000),
    ]
    return tests


#: why the region-of-interest claims have no null control
ROI_PAIR = "two CAMs on the same region windows: the other CAM is the comparator"


def _rise_tests(res) -> list[tuple]:
    """The RISE mask-count claims: the metrics' trend, the estimator and convergence."""
    from xaistudy.studies.segmentation_xai import CONTROL, rise_count_rows, rise_trend_rows

    p, cite = res.params, PAPER.citation
    hi, n_lo, n_hi = p.rise_thresholds[-1], min(p.rise_masks), max(p.rise_masks)
    paper_n = survey_mask_counts()
    worst = survey_number("rise", max(survey_thresholds(rise=True)), paper_n[-1], "dice")
    falls = {
        "ratio": '"more concentrated around the object of interest" (Fig. 3, L140)',
        "dice": f'"The worst dice explained with RISE is {worst} ({paper_n[-1]} masks)" '
        "(L149)",
    }
    tests = []
    for col, what, w in (("saliency_ratio", "ratio", "Saliency Ratio"),
                         ("dice_explained", "dice", "Dice Explained")):
        t, null = rise_trend_rows(res.scores, p, col), rise_trend_rows(res.controls, p, col)
        tests.append((Claim(
            f"rise.{what}_falls_with_masks", cite, "Table 1 and Fig. 3",
            f"With more RISE masks the {w} falls (maps concentrate on the object)",
            f"{survey_number('rise', hi, paper_n[0], what)} ({paper_n[0]} masks) → "
            f"{survey_number('rise', hi, paper_n[-1], what)} ({paper_n[-1]}) at threshold "
            f"{hi:g}",
            f"{w} at {n_hi} − at {n_lo} masks per tile (threshold {hi:g})", expect="<",
            quote=falls[what]),
            _pair(t, str(n_hi), str(n_lo)), 2000,
            {CONTROL: _pair(null, str(n_hi), str(n_lo))}))
    peak, others = PEAK, [n for n in paper_n if n != PEAK and n in p.rise_masks]
    why_not = peak_untestable(p)
    survey = {n: survey_number("rise", p.rise_thresholds[0], n, "dice") for n in paper_n}
    tests.append((Claim(
        "rise.dice_peaks_at_500", cite, "Table 1",
        f"RISE's Dice Explained is highest at 500 masks (threshold {p.rise_thresholds[0]:g})",
        " / ".join(f"{survey[n]} ({n})" for n in paper_n),
        "smallest, over the other mask counts the survey used and this run has, mean Dice "
        "Explained at 500 − at that count, per tile",
        statistic=worst_margin, quote=RISE_BEST,
        paper_estimate=None if why_not
        else min(float(survey[peak]) - float(survey[n]) for n in others),
        not_testable=why_not),
        rise_count_rows(res.scores, p, peak, others), 2000,
        {CONTROL: rise_count_rows(res.controls, p, peak, others)}))
    conv = res.convergence.rename(columns={"correlation": "value"})
    at_lo = conv[conv["n_masks"] == n_lo].rename(columns={"estimator": "method"})
    tests.append((Claim(
        "rise.coverage_beats_petsiuk", "this book", "RISE estimator",
        "Dividing by each pixel's mask coverage estimates the RISE map better than dividing "
        "by N·p (Petsiuk et al.)", "— (the survey does not say which it used)",
        f"correlation with a {p.rise_reference}-mask reference: coverage − N·p at {n_lo} masks",
        kind="demonstration", no_control="the two estimators on the same masks and tiles: "
        "N·p is the comparator",
        quote='"the number of masks play an important role" (Fig. 3, L140); the survey names '
        "no RISE normalisation"),
        _pair(at_lo, "coverage", "N·p (Petsiuk)"), 2000))
    cov = conv[conv["estimator"] == "coverage"].assign(method=conv["n_masks"].astype(str))
    tests.append((Claim(
        "rise.maps_converge", cite, "Fig. 3",
        "With more masks the RISE map lies nearer an independent reference map (the "
        "Monte-Carlo estimate converging)",
        "qualitative (Fig. 3)",
        f"correlation with a {p.rise_reference}-mask reference: {n_hi} − {n_lo} masks "
        "(coverage estimator)",
        kind="implementation check",
        no_control="Monte-Carlo convergence of the estimator: it holds for any network, an "
        "untrained one too, so it checks the implementation, not the survey",
        quote='"Unsurprisingly, the number of masks play an important role" (Fig. 3, L140)'),
        _pair(cov, str(n_hi), str(n_lo)), 2000))
    return tests


NO_TIME_CONTROL = "a runtime: it counts forward passes, no map is scored"
#: Table 1's columns the order claims read, and the survey's words beside each order
COLUMNS = {"dice": "dice_explained", "ratio": "saliency_ratio", "time": "seconds"}
RISE_BEST = '"RISE with 500 masks reports the best dice explained" (L149)'
ORDER_WORDS = {
    "dice": f"; {RISE_BEST}",
    "ratio": "",
    "time": '; Seg-Grad-CAM and Seg-XRes-CAM "only require a single forward and backward pass" '
    "(L149)",
}
BOTTLENECK = '"applied to the bottleneck layer" (L135)'


def claim_rows(res, profile: str = "") -> list[dict[str, object]]:
    """Every claim of the chapter judged on ``res`` (one row each, see
    :func:`xaistudy.stats.claims.judge`); ``profile`` is recorded in each row."""
    n_p = paper_rise_count(res.params)
    data_name = describe_run(res.params, res.device).split(";")[0].removeprefix("data: ")
    tests = [t for layer in res.params.layers for t in _layer_tests(res, layer, n_p)]
    tests += _rise_tests(res)
    return [judge(c, d, controls=ctrl[0] if ctrl else None, n_boot=nb, data_name=data_name,
                  profile=profile, note="" if len(d) else "no tile measured")
            for c, d, nb, *ctrl in tests]
