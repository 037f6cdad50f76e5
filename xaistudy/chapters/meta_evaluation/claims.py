"""Each paper's claim about its own metric, judged on the known truth."""

from __future__ import annotations

from xaistudy.evaluate import occlusion
from xaistudy.stats.claims import Claim, judge
from xaistudy.studies import meta_evaluation as study

from .paper import citation, record


def _hasany_best(what: str) -> str:
    """Table 1's Dice Explained (``dice``) or Saliency Ratio (``ratio``) of the two methods
    the survey names best, from its paper record."""
    number = record("segmentation_xai").number
    return (
        f"RISE-500 {number(f't1.rise.0.2.500.{what}')}, "
        f"Seg-Ablation-CAM {number(f't1.seg-ablation-cam.0.05.{what}')}"
    )


def claim_rows(result: study.Result) -> list[dict[str, object]]:
    """Each paper's claim about its own metric, judged on ``result`` (one row per claim)."""
    p, out = result.params, []
    names = study.metric_names(result)
    common = dict(n_boot=p.n_boot, data_name="synthetic-he", profile=result.profile)
    failed = study.unverified(result)
    note = f"the intervention did not verify the evidence of: {', '.join(failed)}" if failed else ""
    borys, thesis, you = (
        citation("saliency_tour"),
        citation("thesis_metrics"),
        citation("xrelevancecam"),
    )
    hasany, afshar = citation("segmentation_xai"), record("ibo")

    def tau_claim(cid, paper, source, statement, quote, key, model):
        m = study.METRICS[key]
        claim = Claim(
            cid,
            paper,
            source,
            statement,
            quote,
            f"Kendall's tau between the {m.label} ranking of the methods and the "
            f"truth's, {model} model",
            ">",
            0.0,
            study.ranking_statistic(m.higher_is_better),
        )
        data = study.paired_rows(result, model, key) if key in names else None
        out.append(judge(claim, data, note=note, **common))

    # Afshar et al.: IBO's rankings are the closest to the ground truth (Table 9)
    for other in [s for s in occlusion.STRATEGIES if s != "ibo"]:
        claim = Claim(
            f"ibo_closer_than_{other}",
            afshar.citation,
            "Table 9",
            f"IBO's deletion-AUC ranking of the methods is closer to the ground truth than "
            f"{occlusion.STRATEGIES[other]}'s",
            f"MARD {afshar.number('table9.mard.ibo')} vs {afshar.number(f'table9.mard.{other}')}",
            f"MARD({occlusion.STRATEGIES[other]}) − MARD(IBO) against the truth's ranking, "
            "clean model, tiles occluded with both",
            ">",
            0.0,
            study.MARD_GAP,
            not_testable=""
            if "deletion_ibo" in names and p.ibo_tiles
            else "IBO was not measured (ibo_tiles = 0)",
        )
        data = study.ibo_vs(result, other) if not claim.not_testable else None
        out.append(judge(claim, data, note=note, **common))
    # Valatkaitė: a high IoU with the ground truth indicates an accurate interpretation
    quote = (
        '"A high IoU between predicted and ground truth output indicates accurate interpretation"'
    )
    for model in study.TRAINED:
        tau_claim(
            f"thesis_iou_ranks_truth_{model}",
            thesis,
            "Sect. 3.5.1, Eq. 9",
            "the IoU with the annotation ranks interpretation methods by their quality",
            quote,
            "thesis_iou",
            model,
        )
    # You et al.: the axioms limit the non-explainable factors of a CAM
    for axiom in ("conservation", "sensitivity"):
        for model in study.TRAINED:
            tau_claim(
                f"{axiom}_ranks_truth_{model}",
                you,
                "Methods (the axioms), Table 4",
                f"a lower {axiom} axiom error means a more faithful CAM",
                f"the {axiom} axiom limits the non-explainable factors",
                axiom,
                model,
            )
    tau_claim(
        "miou_ranks_truth_clean",
        you,
        "Tables 1-3",
        "a higher IoU with the annotated structures means a better CAM",
        "mIoU as the measure of localisation",
        "miou",
        "clean",
    )
    # Hasany et al.: Dice Explained up, Saliency Ratio down
    for key, quote in (
        ("dice_explained", _hasany_best("dice")),
        ("saliency_ratio", _hasany_best("ratio")),
    ):
        m = study.METRICS[key]
        for model in study.TRAINED:
            tau_claim(
                f"{key}_ranks_truth_{model}",
                hasany,
                "Table 1, Fig. 4",
                f"{m.label} ({m.direction}) ranks saliency methods",
                quote,
                key,
                model,
            )
    # Borys et al.: a match with the clinicians' ground truth does not show similar reasoning
    for key in ("pointing_game", "tour_iou"):
        m = study.METRICS[key]
        claim = Claim(
            f"{key}_fails_on_clever_hans",
            borys,
            "Sect. 3 (Conclusion)",
            "agreement with the annotation does not show that the model reasons like the "
            f"annotator: the {m.label} ranks methods worse on a Clever-Hans model",
            'validation "concluding that a match indicates similar reasoning" is questioned',
            f"tau(Clever Hans) − tau(clean) of the {m.label} ranking against the truth's",
            "<",
            0.0,
            study.tau_gap(m.higher_is_better),
        )
        data = study.both_models_rows(result, key) if key in names else None
        out.append(judge(claim, data, note=note, **common))
    # the sanity check (Adebayo et al., in Borys et al. and You et al.)
    for model in study.TRAINED:
        tau_claim(
            f"randomisation_ranks_truth_{model}",
            borys,
            "Sect. 2.2 (GBP, ref. 48)",
            "a map that changes when the model is randomised is more faithful",
            'GBP "could be invariant to data and models"',
            "randomisation",
            model,
        )
    return out
