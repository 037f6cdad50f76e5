"""The paper the ``ibo`` chapter reproduces (Afshar et al. 2024), its settings and numbers."""

from __future__ import annotations

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


def paper_setting(parameter: str) -> str:
    """The paper's value of the setting carried by ``parameter``, as the paper states it."""
    for s in PAPER.settings:
        if s.parameter == parameter:
            return s.paper
    raise KeyError(f"{PAPER.citation} has no setting for parameter '{parameter}'")
