"""The paper the ``ibo`` chapter reproduces (Afshar et al. 2024), its settings and numbers."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from xaistudy.chapters.spec import PaperRecord, Setting

#: Table 1 (LPIPS, AlexNet) per strategy, Mask_1..Mask_4
_PAPER_LPIPS = {
    "blackening": ("0.1106", "0.2280", "0.3693", "0.5567"),
    "histogram": ("0.0841", "0.1844", "0.3082", "0.4621"),
    "mean": ("0.0796", "0.1776", "0.2997", "0.4520"),
    "nli": ("0.0781", "0.1769", "0.2999", "0.4537"),
    "blurring": ("0.0701", "0.1593", "0.2670", "0.3895"),
    "ibo": ("0.0381", "0.0826", "0.1407", "0.2180"),
}
_PAPER_MARD = {
    "mean": "1.1428",
    "blackening": "0.8571",
    "histogram": "0.8571",
    "nli": "0.8571",
    "blurring": "0.8571",
    "ibo": "0.2857",
}
PAPER = PaperRecord(
    key="afshar2024ibo",
    citation="Afshar et al. 2024",
    file="000_18df878e59d1e9fa.txt",
    settings=(
        Setting("data", "CAMELYON16, annotated slides split into train / val / test", "dataset"),
        Setting("patch side (px)", "512", "tile_size"),
        Setting("stain normalisation", "Modified Reinhard", "stain_norm"),
        Setting("classifier", "ResNet50", "classifier"),
        Setting("classifier epochs", "20", "epochs"),
        Setting("classifier train patches", "not stated", "n_train"),
        Setting("DDPM epochs (normal patches only)", "140", "ddpm_epochs"),
        Setting(
            "DDPM input scaling", "not stated", "ddpm_centre", "Ho et al.'s DDPM: [0, 1] to [-1, 1]"
        ),
        Setting("DDPM training windows", "whole patches (implied)", "ddpm_crop", "0: whole tiles"),
        Setting("DDPM loss weighting", "not stated", "ddpm_snr_gamma", "Ho et al.: none (0)"),
        Setting("RePaint steps T", "not stated", "repaint_steps", "RePaint's own default is 250"),
        Setting("RePaint jump length j", "10", "jump_length"),
        Setting("RePaint resamplings r", "10", "resamplings"),
        Setting("tumour samples explained", "100", "n_samples"),
        Setting("inpainting-noise replicates", "1 (not stated)", "replicates"),
        Setting("k-means levels", "5", "kmeans_k"),
        Setting("perceptual metric", "LPIPS (AlexNet)", "alexnet_weights", "empty: substitutes"),
    ),
    numbers={
        "classifier.accuracy": "0.9862",
        "classifier.f1": "0.986",
        **{
            f"table1.{s}.mask{i + 1}": v
            for s, vals in _PAPER_LPIPS.items()
            for i, v in enumerate(vals)
        },
        **{f"table9.mard.{s}": v for s, v in _PAPER_MARD.items()},
        "rank_accuracy.ibo": "5/7 (71 %)",
        "rank_accuracy.best_other": "3/7 (42 %)",
    },
)
#: the paper's Table 1 order at Mask_4, closest to the original first
PAPER_TABLE1_ORDER = ("ibo", "blurring", "mean", "nli", "histogram", "blackening")
#: the part of that order Table 1 holds at every mask, closest first: Mean and NLI share a tier
#: (NLI is the closer at Mask_1-2, Mean at Mask_3-4, by at most 0.0017)
PAPER_TABLE1_TIERS = (("ibo",), ("blurring",), ("mean", "nli"), ("histogram",), ("blackening",))
#: the masks of Table 1 (Mask_1..Mask_4)
PAPER_TABLE1_MASKS = len(_PAPER_LPIPS["ibo"])


#: the occlusion Table 1's "improvement" is counted from: plain blackening (Eq. 1), the farthest
#: from the original at every mask
IMPROVEMENT_BASELINE = "blackening"
#: the strategies as the paper's tables name them
_LABELS = {"blackening": "Blackening", "histogram": "Histogram", "mean": "Mean", "nli": "NLI"}
_LABELS |= {"blurring": "Blurring", "ibo": "IBO"}

#: the paper's words each claim stands for (short phrases, verbatim, with the line of the
#: paper's text file; never a whole sentence), by claim id or, for a family, a shared name
QUOTES = {
    "premise.ddpm_samples_normal": '"generate realistic normal tissue samples" (Sect. 4.1, L152)',
    "premise.ddpm_samples_in_distribution": '"learned the underlying distribution of '
    'non-tumorous tissues" (Sect. 4.1, L154)',
    "premise.ibo_lowers_p_tumour": '"replacing tumoric areas with features typical of normal '
    'tissues" (Sect. 3, L86)',
    "premise.heatmap_region_matters": '"replacing tumoric areas with features typical of '
    'normal tissues" (Sect. 3, L86): the areas the heatmap marks, not any area',
    "table2.gt_ranking_stable": '"create a ground-truth ranking" from the mean IoU (Sect. 4.3, '
    "L202); its stability is not tested there",
    "table1.improvement_ratio": '"nearly twice the improvement in LPIPS scores" (abstract, L9)',
    "table9.rank_accuracy.ibo_vs": '"71% accuracy" vs "42% with the best-performing '
    'alternative" (Sect. 4.3, L229; per-strategy values not given)',
    "table9.rank_accuracy.ibo_level": '"five out of the seven" methods in the IoU order, '
    '"a 71% accuracy" (Sect. 4.3, L229)',
    "table9.rank_accuracy.ibo_vs_best_other": '"from 42% to 71%" (abstract, L9)',
}


def lpips(s: str, mask: int) -> str:
    """Table 1's LPIPS of strategy ``s`` at Mask_``mask``, as the paper prints it."""
    return PAPER.number(f"table1.{s}.mask{mask}")


def table1_quote(order: bool = False) -> str:
    """Table 1's cells: IBO and Blurring at Mask_1 and Mask_4, or (``order``) the Mask_4
    column in the paper's order."""
    if order:
        cells = " < ".join(f"{_LABELS[s]} {lpips(s, 4)}" for s in PAPER_TABLE1_ORDER)
        return f"Table 1 (L191-196), LPIPS Mask_4: {cells}"
    ibo, blur = (f"{lpips(s, 1)} / {lpips(s, 4)}" for s in ("ibo", "blurring"))
    return f"Table 1 (L191-196), LPIPS Mask_1 / Mask_4: IBO {ibo} vs Blurring {blur}"


def table1_tiers_text() -> str:
    """:data:`PAPER_TABLE1_TIERS` as the claims show it: "IBO < Blurring < Mean, NLI < ..."."""
    return " < ".join(", ".join(_LABELS[s] for s in tier) for tier in PAPER_TABLE1_TIERS)


def mard_quote(s: str) -> str:
    """Table 9's MARD cells of IBO and strategy ``s``."""
    ibo, other = PAPER.number("table9.mard.ibo"), PAPER.number(f"table9.mard.{s}")
    return f"Table 9 (L239-244), MARD: IBO {ibo} vs {_LABELS[s]} {other}"


def paper_value(key: str) -> float:
    """The paper's number ``key`` as a float: "0.2180" gives 0.218, "5/7 (71 %)" gives 5/7."""
    return float(Fraction(PAPER.number(key).split()[0]))


def improvement_ratio(means: np.ndarray, ibo: int, baseline: int) -> float:
    """IBO's improvement over the baseline (its distance minus IBO's) / that of the best other
    strategy (the largest improvement among the rest); NaN when no other improves."""
    gain = means[baseline] - means
    others = np.delete(gain, [ibo, baseline])
    best = np.nanmax(others) if np.isfinite(others).any() else np.nan
    return float(gain[ibo] / best) if best > 0 else float("nan")


def improvement_text() -> str:
    """The paper's improvement ratio as the claim shows it, with the Mask_4 cells it rests on."""
    cells = ", ".join(f"{_LABELS[s]} {lpips(s, 4)}" for s in ("ibo", "blurring", "blackening"))
    return f"{paper_improvement_ratio():.2f} from Table 1 (Mask_1-4 pooled; Mask_4: {cells})"


def paper_improvement_ratio() -> float:
    """The paper's ratio from its Table 1: LPIPS averaged over Mask_1..Mask_4 per strategy,
    then :func:`improvement_ratio` (2.07: "nearly twice the improvement")."""
    order = list(PAPER_TABLE1_ORDER)
    masks = range(1, PAPER_TABLE1_MASKS + 1)
    means = np.array([np.mean([paper_value(f"table1.{s}.mask{i}") for i in masks]) for s in order])
    return improvement_ratio(means, order.index("ibo"), order.index(IMPROVEMENT_BASELINE))


def paper_setting(parameter: str) -> str:
    """The paper's value of the setting carried by ``parameter``, as the paper states it."""
    for s in PAPER.settings:
        if s.parameter == parameter:
            return s.paper
    raise KeyError(f"{PAPER.citation} has no setting for parameter '{parameter}'")


#: why a comparison of occlusion strategies needs no null control of its own
COMPARATORS = (
    "the occlusion strategies compared on the same tiles, heatmaps and masks: the other "
    "strategies are the comparators (one without signal makes the claim not testable)"
)
