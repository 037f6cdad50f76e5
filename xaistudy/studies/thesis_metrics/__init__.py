"""Study ``thesis_metrics``: interpretation-quality metrics for tissue grading (Valatkaitė 2024).

Per seed (:mod:`.seed`): draw the grading tiles (rotation-balanced, Table 1), train the
thesis's CNN and a nuclei U-Net, predict the test tiles, segment them into tumour and
non-tumour nuclei masks and explain every prediction with IG, IG + NoiseTunnel, LIME and
Grad-CAM (post-processed as in the thesis's appendix). Then (:mod:`.rows`) every map is scored
against the U-Net's masks (and the exact masks of synthetic tiles) with the six metrics under
every reading, and the row tables the chapter shows and judges are derived: Table 6 with the
book's bootstrap (seeds, then tiles), the U-Net's own quality, the tendencies and the claims'
measurements. :func:`run` is the entry point; every trained model and map is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from xaistudy.core.store import Store
from xaistudy.studies.thesis_metrics.rows import (
    CANCER,
    CONTROLS,
    SCORE_COLUMNS,
    abs_mean,
    class_accuracy,
    control_scores,
    coverage,
    empty_mask_counts,
    grade_rows,
    ground_truth_effect,
    group_gap,
    headline,
    kept,
    mask_type_difference,
    means_by_code,
    method_difference,
    method_rows,
    nuclei_share_difference,
    order_statistic,
    order_tau,
    same_order,
    score,
    segmentation,
    spread_statistic,
    table6,
    tendency_counts,
    tendency_differences,
    with_case_shuffled,
)
from xaistudy.studies.thesis_metrics.seed import (
    CLASSES,
    MASK_TYPES,
    METHODS,
    SeedRun,
    cnn_key,
    explanation_options,
    grading_sets,
    ground_truths,
    real_grading,
    run_seed,
    unet_key,
)

__all__ = [
    "CANCER",
    "CLASSES",
    "MASK_TYPES",
    "METHODS",
    "CONTROLS",
    "SCORE_COLUMNS",
    "Result",
    "SeedRun",
    "abs_mean",
    "class_accuracy",
    "cnn_key",
    "control_scores",
    "coverage",
    "empty_mask_counts",
    "explanation_options",
    "grading_sets",
    "grade_rows",
    "ground_truth_effect",
    "group_gap",
    "ground_truths",
    "headline",
    "kept",
    "mask_type_difference",
    "means_by_code",
    "method_difference",
    "method_rows",
    "nuclei_share_difference",
    "order_statistic",
    "order_tau",
    "real_grading",
    "run",
    "run_seed",
    "same_order",
    "spread_statistic",
    "score",
    "segmentation",
    "table6",
    "tendency_counts",
    "tendency_differences",
    "with_case_shuffled",
    "unet_key",
]


@dataclass(frozen=True, eq=False)
class Result:
    """Every seed of a run and its scores.

    ``runs``: one :class:`SeedRun` per seed (models, predictions, masks, maps); ``scores``:
    one row per seed, test tile, method, ground truth, mask type and reading with the six
    metrics (:data:`SCORE_COLUMNS`); ``controls``: the same scores of the null controls
    (:func:`control_scores`, column ``control``).
    """

    params: Any
    runs: tuple[SeedRun, ...]
    scores: pd.DataFrame
    controls: pd.DataFrame


def run(params: Any, store: Store | None = None) -> Result:
    """Every seed of ``params`` (:func:`run_seed`, cached in ``store``), scored."""
    store = store or Store()
    runs = tuple(run_seed(params, s, store) for s in params.seeds)
    return Result(
        params=params,
        runs=runs,
        scores=score(runs, params),
        controls=control_scores(runs, params),
    )
