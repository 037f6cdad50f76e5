"""The truth and every paper's metric, per tile and method: each metric is computed by the
function its chapter uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaistudy.core.store import Store
from xaistudy.evaluate import (
    axioms,
    faithfulness,
    localisation,
    occlusion,
    quality,
    sanity,
    segmentation_metrics,
    wsss,
)
from xaistudy.explain import METHODS
from xaistudy.models.classify import predict_proba
from xaistudy.models.train import weights_hash
from xaistudy.stats import ranking
from xaistudy.studies import ibo as ibo_study

from .data import SeedRun, Tiles
from .design import TRAINED, TRUTH_LABEL, TRUTHS, methods_of
from .maps import data_key, layer_name, map_options, positive_unit


# -- the truth ----------------------------------------------------------------------------------
def evidence_auc(saliency: np.ndarray, evidence: np.ndarray) -> float:
    """ROC AUC of the map's values for evidence vs other pixels, from the Mann-Whitney rank
    sum (ties count half: a constant map gives 0.5)."""
    ranks = ranking.rank(np.asarray(saliency, np.float64).ravel(), False, method="average")
    e = np.asarray(evidence, bool).ravel()
    n_pos, n_neg = int(e.sum()), int((~e).sum())
    return float((ranks[e].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def truth_scores(maps: np.ndarray, evidence: np.ndarray, kind: str = "auc") -> np.ndarray:
    """The ground-truth quality (n, M) of maps (n, M, H, W) against the evidence (n, H, W).

    ``auc``: ROC AUC of the map's values separating evidence from other pixels (ties count
    half; a constant map 0.5); ``mass``: share of the positive mass inside the evidence (a map
    without positive mass localises nothing: 0).
    """
    if kind not in TRUTHS:
        raise ValueError(f"unknown truth '{kind}'; allowed: {', '.join(TRUTHS)}")
    n, m = maps.shape[:2]
    out = np.zeros((n, m))
    for i in range(n):
        e = np.asarray(evidence[i], bool)
        if not e.any() or e.all():
            raise ValueError(f"tile {i}: the evidence must cover some but not all pixels")
        for j in range(m):
            a = np.asarray(maps[i, j], np.float64)
            if kind == "auc":
                out[i, j] = evidence_auc(a, e)
            else:
                share = localisation.positive_share(a, e)
                out[i, j] = 0.0 if np.isnan(share) else share
    return out


# -- the metrics that read the annotation ------------------------------------------------------
def annotation_scores(
    maps: np.ndarray, annotation: np.ndarray, thesis_threshold: float
) -> dict[str, np.ndarray]:
    """The metrics that compare a map with the annotation, (n, M) each."""
    n, m = maps.shape[:2]
    out = {
        k: np.full((n, m), np.nan)
        for k in (
            "pointing_game",
            "tour_iou",
            "positive_share",
            "miou",
            *(f"thesis_{q}" for q in quality.METRICS),
        )
    }
    post = quality.postprocess_batch(maps.reshape(-1, *maps.shape[2:])).reshape(maps.shape)
    unit = positive_unit(maps)
    for i in range(n):
        for j in range(m):
            loc = localisation.localisation_scores(maps[i, j], annotation[i])
            out["pointing_game"][i, j] = loc["pointing_game"]
            out["tour_iou"][i, j] = loc["iou"]
            out["positive_share"][i, j] = loc["positive_share"]
            pred = quality.binarize(post[i, j], thesis_threshold)
            for q, v in quality.all_metrics(pred, annotation[i], "binary").items():
                out[f"thesis_{q}"][i, j] = v
    binary = wsss.binarise(unit.reshape(-1, *maps.shape[2:]), "mean_std")
    truth = np.repeat(np.asarray(annotation, bool), m, axis=0)
    out["miou"] = np.nan_to_num(localisation.iou(binary, truth)).reshape(n, m)
    return out


# -- the metrics that read the model's output -----------------------------------------------------
class WholeTilePrediction:
    """A tile classifier read as a segmenter: its segment of a class is the whole tile when
    it predicts that class, else nothing. With it, Dice Explained is 1 when the salient pixels
    alone keep the prediction and 0 when not, and the Saliency Ratio is the salient share of
    the tile."""

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def predict(self, images: torch.Tensor, target: int) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        hit = self.model(images.to(dev)).argmax(1).cpu() == int(target)
        return hit[:, None, None].expand(-1, *images.shape[-2:])


def output_scores(
    params: Any,
    model: nn.Module,
    tiles: Tiles,
    maps: np.ndarray,
    methods: Sequence[str],
    seed: int,
) -> dict[str, np.ndarray]:
    """Dice Explained, Saliency Ratio and the two axioms, (n, M) each (axioms: NaN for
    methods without channel weights)."""
    n, m = maps.shape[:2]
    unit = positive_unit(maps).reshape(-1, *maps.shape[2:])
    x = tiles.images.repeat_interleave(m, dim=0)
    steps = segmentation_metrics.metric_steps(
        WholeTilePrediction(model), x, 1, unit, params.seg_threshold, fill=0.0
    )
    out = {
        "dice_explained": steps["dice_explained"].reshape(n, m).astype(float),
        "saliency_ratio": steps["saliency_ratio"].reshape(n, m).astype(float),
    }
    cams = [k for k in methods if k in axioms.AXIOM_METHODS]
    for axiom in ("conservation", "sensitivity"):
        out[axiom] = np.full((n, m), np.nan)
    if not cams:
        return out
    layer = layer_name(model)
    for i in range(n):
        table = axioms.evaluate_axioms(
            model,
            tiles.images[i : i + 1],
            [1],
            layers=[layer],
            methods=cams,
            rule="logit",
            max_channels=params.axiom_channels or None,
            seed=seed,
        )
        for r in table.itertuples():
            out[r.axiom][i, list(methods).index(r.method)] = r.value
    return out


def deletion_scores(
    params: Any,
    run: SeedRun,
    name: str,
    maps: np.ndarray,
    ibo_params: Any,
    ddpm: tuple | None,
    store: Store,
) -> dict[str, np.ndarray]:
    """Deletion AUC (n, M) of every occlusion strategy, as the IBO chapter computes it: k-means
    levels of each map, Mask_1..Mask_(k-1) occluded cumulatively, P(target) after each, the
    trapezoid AUC. Common random numbers: the methods of a tile share its noise. IBO runs on
    the first ``ibo_tiles`` tiles of the trained models (NaN on the rest and on the randomised
    models: RePaint is the slow part) and only with a DDPM. ``ibo_params`` (the ibo chapter's
    parameters) set the strategies' options."""
    p, model = params, run.models[name]
    tiles = run.tiles_of(name)
    n, m = maps.shape[:2]
    levels = occlusion.levels_batch(positive_unit(maps), p.kmeans_k, run.seed)
    k = p.kmeans_k - 1
    xs = faithfulness.occluded_fractions(occlusion.nested_masks(levels, k))
    options = ibo_study.strategy_options(ibo_params, run.mean, *(ddpm or (None, {})))
    out = {}
    for strategy in occlusion.STRATEGIES:
        rows = n if strategy != "ibo" else min(n, p.ibo_tiles) if name in TRAINED else 0
        auc = np.full((n, m), np.nan)
        if strategy not in options or rows == 0:
            out[f"deletion_{strategy}"] = auc
            continue
        key_opts, run_opts = options[strategy]
        key = {
            "model": weights_hash(model),
            "tiles": tiles.index[:rows].tolist(),
            "seed": run.seed,
            "strategy": strategy,
            "options": key_opts,
            "k": p.kmeans_k,
            "data": data_key(p, run.seed, name),
            "maps": map_options(p),
            "methods": methods_of(p),
        }

        def compute(strategy=strategy, rows=rows, run_opts=run_opts) -> dict[str, np.ndarray]:
            seeds = ibo_study.noise_seeds(run.seed, tiles.index[:rows], m)
            probs = []
            for i in range(0, rows, ibo_study.SAMPLE_CHUNK):
                j = min(i + ibo_study.SAMPLE_CHUNK, rows)
                occluded = ibo_study.occlude_all(
                    strategy, tiles.images[i:j], levels[i:j], seeds[i:j], k, **run_opts
                )
                pk = predict_proba(model, occluded.reshape(-1, *occluded.shape[3:]), target=1)
                p0 = predict_proba(model, tiles.images[i:j], target=1)
                probs.append(
                    np.concatenate(
                        [np.repeat(p0[:, None, None], m, 1), pk.reshape(j - i, m, k)], axis=2
                    )
                )
            return {"auc": faithfulness.trapezoid_auc(xs[:rows], np.concatenate(probs))}

        auc[:rows] = store.cached_arrays("meta-deletion", key, compute)["auc"]
        out[f"deletion_{strategy}"] = auc
    return out


def randomisation_scores(
    maps: np.ndarray, twin_maps: np.ndarray, methods: Sequence[str]
) -> np.ndarray:
    """Rank correlation (n, M) of each map with the randomised twin's map of the same tile and
    method (absolute values for signed methods)."""
    signed = [METHODS[k].signed if k in METHODS else False for k in methods]
    return np.array(
        [
            [
                sanity.rank_correlation(maps[i, j], twin_maps[i, j], absolute=signed[j])
                for j in range(len(methods))
            ]
            for i in range(len(maps))
        ]
    )


def score_model(
    params: Any,
    run: SeedRun,
    name: str,
    maps: np.ndarray,
    twin_maps: np.ndarray | None,
    ibo_params: Any,
    ddpm: tuple | None,
    store: Store,
) -> pd.DataFrame:
    """Long table ``seed, model, unit, method, metric, value``: the truth and every metric."""
    methods = methods_of(params)
    tiles = run.tiles_of(name)
    scores = {TRUTH_LABEL: truth_scores(maps, tiles.evidence, params.truth)}
    scores |= annotation_scores(maps, tiles.annotation, params.thesis_threshold)
    scores |= output_scores(params, run.models[name], tiles, maps, methods, run.seed)
    scores |= deletion_scores(params, run, name, maps, ibo_params, ddpm, store)
    if twin_maps is not None:
        scores["randomisation"] = randomisation_scores(maps, twin_maps, methods)
    n, m = maps.shape[:2]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "seed": run.seed,
                    "model": name,
                    "unit": np.repeat(tiles.index, m),
                    "method": np.tile(methods, n),
                    "metric": metric,
                    "value": values.reshape(-1),
                }
            )
            for metric, values in scores.items()
        ],
        ignore_index=True,
    )
