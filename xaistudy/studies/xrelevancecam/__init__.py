"""Study ``xrelevancecam``: XRelevanceCAM, relevance-weighted CAMs layer by layer (You et al.).

Per seed: pCLE data split by patient (synthetic frames score on a generated cohort of unseen
test patients) -> for each backbone start (from scratch; pretrained, with ImageNet weights when
given, else a stand-in pretraining on a synthetic task) the selective-kernel backbone, the
ResNet and the selective-kernel backbone with stage dropout are trained -> CAMs of every method
at every stage of the correctly classified meningioma frames -> per-frame IoU and false-positive
rate (Tables 1-3), axioms per patient (Table 4), cascading randomisation down to the stem
(Fig. 5) and the diagnostic of Eq. 1 (channel activation-total spread, RelevanceCAM-vs-
XRelevanceCAM map correlation).

:func:`run` returns a frozen :class:`Result`; :mod:`.rows` derives the paired rows the claims
are judged on. The chapter ``xaistudy.chapters.xrelevancecam`` presents it.
"""

from .data import (
    Data,
    data_name,
    eval_frames,
    is_synthetic,
    load_data,
    spread,
    start_label,
    starts,
    train_models,
)
from .measure import (
    CASCADE,
    LAYERS,
    METHODS,
    MODELS,
    VIEWS,
    SanityMaps,
    axiom_rows,
    cached_layer_cams,
    eq1_diagnostic,
    false_positive_rate,
    frame_ious,
    randomise_cascade,
    sanity_rows,
)
from .result import Example, Result, StartResult, measure_start, run
from .rows import (
    axiom_difference,
    best_margin,
    cell_difference,
    deterioration_rows,
    deterioration_tau,
    false_positive_margin,
    iou_difference,
    layer_mean_difference,
    margin_rows,
    of_start,
    pretraining_spread,
    sanity_margin,
    spread_difference,
    worst_margin,
)

__all__ = [
    "CASCADE",
    "LAYERS",
    "METHODS",
    "MODELS",
    "VIEWS",
    "Data",
    "Example",
    "Result",
    "SanityMaps",
    "StartResult",
    "axiom_difference",
    "best_margin",
    "cell_difference",
    "axiom_rows",
    "cached_layer_cams",
    "data_name",
    "deterioration_rows",
    "deterioration_tau",
    "eq1_diagnostic",
    "eval_frames",
    "false_positive_margin",
    "false_positive_rate",
    "frame_ious",
    "iou_difference",
    "is_synthetic",
    "layer_mean_difference",
    "margin_rows",
    "load_data",
    "measure_start",
    "of_start",
    "pretraining_spread",
    "randomise_cascade",
    "run",
    "sanity_margin",
    "spread_difference",
    "worst_margin",
    "sanity_rows",
    "spread",
    "start_label",
    "starts",
    "train_models",
]
