"""The meta-evaluation study: which of the papers' metrics tells the truth, on models whose
evidence use is known.

Per seed: synthetic H&E tiles -> three models whose evidence use is known: a **clean** model
(tumour vs normal; the generator puts the class evidence only inside the tumour mask), a
**Clever-Hans** model (its label is a pen mark drawn independently of the tissue, so the mark is
its only usable cue) and each trained model with its top weight layers **randomised** (no
evidence use) -> the evidence each model uses, verified by intervention (P(target) after
replacing the evidence with normal tissue vs after replacing everything else) -> maps of every
method -> the **truth**: how well a map localises the verified evidence -> every metric of the
five papers, computed with the functions their chapters use. :mod:`.rows` reads the scores:
per metric, Kendall's tau and MARD between its ranking of the methods and the truth's, and how
often it scores a trained model's map above the randomised model's map of the same tile.

:func:`run` (``params``: the chapter's parameters; ``ibo_params``: the ibo chapter's, for IBO's
DDPM and the strategies' options) returns a frozen :class:`Result`.
"""

from .data import (
    SeedRun,
    Tiles,
    intervene,
    intervention_probs,
    intervention_rows,
    marked_set,
    prepare_seed,
)
from .design import (
    DEFAULT_METHODS,
    EVIDENCE,
    MARK_COOCCURRENCE,
    METHOD_CHOICES,
    METRICS,
    MODELS,
    TRAINED,
    TRUTH_LABEL,
    TRUTHS,
    TWIN,
    Metric,
    explained_by,
    methods_of,
)
from .maps import compute_maps, layer_name, maps_of, positive_unit
from .rows import (
    MARD_GAP,
    agreement,
    agreement_numbers,
    both_models_rows,
    ibo_vs,
    intervention_summary,
    mean_scores,
    method_means,
    metric_names,
    paired_rows,
    ranking_statistic,
    tau_gap,
    truth_summary,
    unverified,
    win_rows,
)
from .scores import (
    WholeTilePrediction,
    annotation_scores,
    deletion_scores,
    evidence_auc,
    output_scores,
    score_model,
    truth_scores,
)
from .study import Result, ibo_ddpm, run

__all__ = [
    "DEFAULT_METHODS",
    "EVIDENCE",
    "MARD_GAP",
    "MARK_COOCCURRENCE",
    "METHOD_CHOICES",
    "METRICS",
    "MODELS",
    "TRAINED",
    "TRUTHS",
    "TRUTH_LABEL",
    "TWIN",
    "Metric",
    "Result",
    "SeedRun",
    "Tiles",
    "WholeTilePrediction",
    "agreement",
    "agreement_numbers",
    "annotation_scores",
    "both_models_rows",
    "compute_maps",
    "deletion_scores",
    "evidence_auc",
    "explained_by",
    "ibo_ddpm",
    "ibo_vs",
    "intervene",
    "intervention_probs",
    "intervention_rows",
    "intervention_summary",
    "layer_name",
    "maps_of",
    "marked_set",
    "mean_scores",
    "method_means",
    "methods_of",
    "metric_names",
    "output_scores",
    "paired_rows",
    "positive_unit",
    "prepare_seed",
    "ranking_statistic",
    "run",
    "score_model",
    "tau_gap",
    "truth_scores",
    "truth_summary",
    "unverified",
    "win_rows",
]
