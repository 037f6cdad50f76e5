"""Study ``segmentation_xai``: explaining a segmentation model (Hasany et al.'s survey).

Five methods (Seg-Grad-CAM, Seg-XRes-CAM, Seg-Eigen-CAM, Seg-Ablation-CAM, RISE) explain one
class of a segmentation model; Dice Explained, the Saliency Ratio and time score them (the
survey's Table 1). The CAMs run at every layer of ``params.layers``, RISE on the same tiles;
every stochastic stage (data, model, masks) repeats per seed (:mod:`.seed`), and the row
tables the chapter judges and shows are built from the seeds (:mod:`.rows`). :func:`run` is
the entry point; every stage is cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from xaistudy.core.store import Store
from xaistudy.models.classifiers import resolve_device
from xaistudy.studies.segmentation_xai.rows import (
    BORDER_LIMIT,
    CONTROL,
    background_rows,
    batching,
    control_seed,
    convergence_seed,
    diagnose_seed,
    label,
    per_unit_rows,
    rise_count_rows,
    rise_trend_rows,
    roi_seed,
    score_seed,
)
from xaistudy.studies.segmentation_xai.seed import (
    CAMS,
    RISE_LAYER,
    ROI_METHODS,
    SeedResult,
    explained_tiles,
    forward_passes,
    largest_rise,
    layer_channels,
    load_model,
    run_seed,
    warm_seconds,
)

__all__ = [
    "BORDER_LIMIT",
    "CAMS",
    "CONTROL",
    "RISE_LAYER",
    "ROI_METHODS",
    "background_rows",
    "Result",
    "SeedResult",
    "explained_tiles",
    "forward_passes",
    "label",
    "largest_rise",
    "layer_channels",
    "load_model",
    "per_unit_rows",
    "rise_count_rows",
    "rise_trend_rows",
    "run",
    "run_seed",
    "warm_seconds",
]


@dataclass(frozen=True, eq=False)
class Result:
    """All seeds of a run and the tidy tables the chapter judges and shows.

    ``scores``: one row per (seed, tile, layer, method, threshold, mask count) with Dice
    Explained, Saliency Ratio, ``empty`` and warm ``seconds``; ``controls``: the same scores
    of the claims' null control (:func:`control_seed`); ``diagnostics``: map checks per
    (seed, tile, layer, method); ``convergence``: RISE's correlation with its reference map;
    ``roi``: share of region-of-interest saliency inside the window; ``batching``: warm
    timings of the first seed's first tile; ``channels``: output channels of each layer.
    """

    params: Any
    device: str
    threads: int
    seeds: tuple[SeedResult, ...]
    scores: pd.DataFrame
    controls: pd.DataFrame
    diagnostics: pd.DataFrame
    convergence: pd.DataFrame
    roi: pd.DataFrame
    batching: pd.DataFrame
    channels: dict[str, int]
    seconds: float


def run(params: Any, store: Store | None = None) -> Result:
    """Every seed of the study (cached), scored; the batching timings on the first seed."""
    start = time.perf_counter()
    device = str(resolve_device(params.device))
    store = store if store is not None else Store()
    seeds = tuple(run_seed(params, s, store, device) for s in tqdm(params.seeds, desc="seeds"))
    x = seeds[0].tiles["images"][:1]
    channels = {layer: layer_channels(seeds[0].model, layer, x)[0] for layer in params.layers}
    return Result(
        params=params,
        device=device,
        threads=torch.get_num_threads(),
        seeds=seeds,
        scores=pd.concat([score_seed(params, r) for r in seeds], ignore_index=True),
        controls=pd.concat([control_seed(params, r) for r in seeds], ignore_index=True),
        diagnostics=pd.concat([diagnose_seed(params, r) for r in seeds], ignore_index=True),
        convergence=pd.concat([convergence_seed(params, r) for r in seeds], ignore_index=True),
        roi=pd.concat([roi_seed(params, r) for r in seeds], ignore_index=True),
        batching=batching(params, seeds[0]),
        channels=channels,
        seconds=time.perf_counter() - start,
    )
