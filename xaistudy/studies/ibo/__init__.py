"""The IBO experiment (Afshar et al.): inpainting-based occlusion against five classical
occlusion strategies, as pure functions of the ``ibo`` parameters returning frozen results.

data (synthetic-he tiles or CAMELYON16 patches) -> classifier (per seed) -> DDPM of normal tiles
(once, shared by the seeds) -> CAM heatmaps of tumour test tiles -> k-means levels -> six
occlusion strategies, each cumulative over Mask_1..Mask_4, with common random numbers and
replicates over the noise -> P(tumour) and distances after every mask -> tidy rows for Table 1
(distances), Table 2 (IoU ranking), Tables 3-8 (deletion AUC) and Table 9 (MARD).

Modules: :mod:`.data` (splits), :mod:`.occlude` (heatmaps, strategies, measurements),
:mod:`.pipeline` (the stages, :func:`run`, :class:`Result`), :mod:`.rows` (rows, statistics);
imported on their own: :mod:`.schedules` (cheaper RePaint schedules judged against the paper's)
and :mod:`.schedule_noise` (that check's noise floors).
``params`` is any object with the ``ibo`` chapter's parameter fields.
"""

from xaistudy.studies.ibo.data import (
    LabelledTiles,
    Split,
    data_identity,
    load_splits,
    seed_splits,
    tumour_order,
)
from xaistudy.studies.ibo.occlude import (
    CAMS,
    METRICS,
    SAMPLE_CHUNK,
    STOCHASTIC,
    STRATEGY_ORDER,
    evaluate_strategy,
    heatmaps,
    method_label,
    noise_seeds,
    occlude_all,
    random_regions,
    strategy_options,
)
from xaistudy.studies.ibo.pipeline import (
    PREMISE_CONTROL,
    Explained,
    Result,
    SeedModel,
    SeedResult,
    classifier_metrics,
    ddpm_stage_key,
    explain_seed,
    gate_samples,
    methods_of,
    occlude_seed,
    parse_list,
    premise_control,
    prepare_seed,
    run,
    shared_ddpm,
    stage_keys,
    strategies_of,
    train_ddpm,
)
from xaistudy.studies.ibo.rows import (
    AGREEMENTS,
    FLAT,
    agreement_statistic,
    auc_rows,
    code_means,
    difference_statistic,
    distance_rows,
    gate_rows,
    gate_scores,
    iou_rows,
    premise_control_rows,
    ranking_rows,
    source_ranks,
)

__all__ = [
    "AGREEMENTS",
    "FLAT",
    "CAMS",
    "METRICS",
    "PREMISE_CONTROL",
    "SAMPLE_CHUNK",
    "STOCHASTIC",
    "STRATEGY_ORDER",
    "Explained",
    "LabelledTiles",
    "Result",
    "SeedModel",
    "SeedResult",
    "Split",
    "agreement_statistic",
    "auc_rows",
    "classifier_metrics",
    "code_means",
    "data_identity",
    "ddpm_stage_key",
    "difference_statistic",
    "distance_rows",
    "evaluate_strategy",
    "explain_seed",
    "gate_rows",
    "gate_samples",
    "gate_scores",
    "heatmaps",
    "iou_rows",
    "load_splits",
    "method_label",
    "methods_of",
    "noise_seeds",
    "occlude_all",
    "occlude_seed",
    "parse_list",
    "premise_control",
    "premise_control_rows",
    "prepare_seed",
    "random_regions",
    "ranking_rows",
    "run",
    "seed_splits",
    "shared_ddpm",
    "source_ranks",
    "stage_keys",
    "strategies_of",
    "strategy_options",
    "train_ddpm",
    "tumour_order",
]
