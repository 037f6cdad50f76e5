"""The IBO study's stages and its entry point :func:`run`.

data -> classifier (per seed) -> DDPM of normal tissue (trained once on the first seed's normal
tiles, shared by the seeds) and its gate samples -> CAM heatmaps of tumour test tiles ->
k-means levels -> every occlusion strategy, cumulative over Mask_1..Mask_n, with common random
numbers and replicates over the noise. Every stage is cached under a key naming everything
that made it; each seed's result is built once, complete (:class:`SeedResult`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from xaistudy.core.runtime import deterministic_kernels
from xaistudy.core.store import Store
from xaistudy.evaluate import controls, faithfulness, localisation, occlusion, perceptual
from xaistudy.models import ddpm
from xaistudy.models.classifiers import resolve_device
from xaistudy.models.classify import predict_proba, train_classifier
from xaistudy.studies.ibo.data import (
    LabelledTiles,
    Split,
    data_identity,
    seed_splits,
    tumour_order,
)
from xaistudy.studies.ibo.occlude import (
    CAMS,
    SAMPLE_CHUNK,
    STOCHASTIC,
    STRATEGY_ORDER,
    evaluate_strategy,
    heatmaps,
    noise_seeds,
    numerics_key,
    random_regions,
    strategy_options,
)


def parse_list(value: str, allowed: Sequence[str]) -> list[str]:
    """``"all"`` -> ``allowed``; else the comma-separated names, in ``allowed``'s order."""
    if value == "all":
        return list(allowed)
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown name '{bad[0]}'; allowed: {', '.join(allowed)}")
    return [a for a in allowed if a in names]


def methods_of(params: Any) -> list[str]:
    return parse_list(params.methods, CAMS)


def strategies_of(params: Any) -> list[str]:
    return parse_list(params.strategies, STRATEGY_ORDER)


# -- results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedModel:
    """One seed's data and classifier: splits, stain reference, model, test metrics, the OoD
    detector fitted on the training features, and the cache keys of its stages."""

    seed: int
    splits: Mapping[str, Split]
    reference: np.ndarray
    model: nn.Module
    metrics: Mapping[str, float]
    ood: perceptual.Mahalanobis
    keys: Mapping[str, dict]


@dataclass(frozen=True)
class Explained:
    """One seed's heatmaps: ``maps`` (G, M, H, W) and ``ious`` (G, M) of the ground-truth
    tiles ``gt_ids``; ``ious_shuffled`` (G, M): the same of the coverage-matched maps (the
    IoU ranking's null control); ``levels`` (S, M, H, W) and ``masks`` (S, M, n_masks, H, W)
    of the occluded tiles, the first S of them."""

    gt_ids: np.ndarray
    maps: np.ndarray
    ious: np.ndarray
    ious_shuffled: np.ndarray
    levels: np.ndarray
    masks: np.ndarray

    @property
    def sample_ids(self) -> np.ndarray:
        """The occluded test tiles (the first of the ground-truth tiles)."""
        return self.gt_ids[: self.levels.shape[0]]


@dataclass(frozen=True)
class SeedResult(Explained, SeedModel):
    """Everything one seed computes. ``results[strategy]``: :func:`evaluate_strategy`'s arrays
    with a replicate axis (S, R, M, ...); ``aucs[strategy]``: deletion AUC (S, R, M);
    ``premise_control``: :func:`premise_control`'s arrays (empty without IBO)."""

    results: Mapping[str, Mapping[str, np.ndarray]]
    aucs: Mapping[str, np.ndarray]
    premise_control: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Result:
    """The whole study: parameters, the shared DDPM and its gate samples, one
    :class:`SeedResult` per seed, and the wall-clock seconds per stage."""

    params: Any
    profile: str
    methods: tuple[str, ...]
    strategies: tuple[str, ...]
    ddpm: ddpm.DDPMResult
    ddpm_key: Mapping[str, Any]
    runs: tuple[SeedResult, ...]
    gate_images: torch.Tensor
    timings: Mapping[str, float]

    @property
    def n_masks(self) -> int:
        return self.params.kmeans_k - 1

    @property
    def data_name(self) -> str:
        p = self.params
        return f"{p.dataset} {p.tile_size}px, {p.classifier}"

    @property
    def have_alex(self) -> bool:
        return perceptual.alexnet_weights_path(self.params.alexnet_weights) is not None


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


# -- cache keys (every parameter a stage depends on) ----------------------------------------------
def _pretrained_key(pretrained: bool | str) -> bool | str:
    from xaistudy.data.datasets import files_fingerprint

    if isinstance(pretrained, str):
        return f"{pretrained}:{files_fingerprint([pretrained])}"
    return pretrained


def stage_keys(params: Any, seed: int, data_id: Mapping[str, Any]) -> dict[str, dict]:
    """Cache keys of one seed's stages: data, classifier, heatmaps."""
    p = params
    data = {
        "dataset": p.dataset,
        "tile_size": p.tile_size,
        "stain_norm": p.stain_norm,
        "n_train": p.n_train,
        "n_val": p.n_val,
        "n_test": p.n_test,
        "ddpm_tiles": p.ddpm_tiles,
        "seed": seed,
        **data_id,
    }
    if p.stain_norm and seed != p.seeds[0]:
        data["stain_reference_seed"] = p.seeds[0]
    clf = dict(
        data,
        classifier=p.classifier,
        pretrained=_pretrained_key(p.pretrained),
        epochs=p.epochs,
        lr=p.lr,
        batch_size=p.batch_size,
    )
    return {"data": data, "classifier": clf, "heatmaps": dict(clf, methods=methods_of(p))}


def ddpm_stage_key(params: Any, seed: int, data_id: Mapping[str, Any]) -> dict[str, Any]:
    """Cache key of the DDPM trained on ``seed``'s normal tiles."""
    p = params
    key = {
        "tile_size": p.tile_size,
        "stain_norm": p.stain_norm,
        "ddpm_tiles": p.ddpm_tiles,
        "seed": seed,
        "channels": list(p.ddpm_channels),
        "layers": p.ddpm_layers,
        "attention": p.ddpm_attention,
        "epochs": p.ddpm_epochs,
        "batch_size": p.ddpm_batch_size,
        "lr": p.ddpm_lr,
        "train_timesteps": p.train_timesteps,
        **data_id,
    }
    if p.precision != "fp32":
        key["precision"] = p.precision
    if p.ddpm_ema:
        key["ema"] = p.ddpm_ema
    if p.ddpm_centre:
        key["centre"] = True
    if p.ddpm_crop and p.ddpm_crop < p.tile_size:
        key["crop"] = p.ddpm_crop
    if p.ddpm_snr_gamma:
        key["snr_gamma"] = p.ddpm_snr_gamma
    return key


# -- the stages -----------------------------------------------------------------------------------
def classifier_metrics(model: nn.Module, split: Split, chunk: int = 256) -> dict[str, float]:
    """Accuracy and tumour F1 on a split (its tiles read ``chunk`` at a time)."""
    from sklearn.metrics import accuracy_score, f1_score

    images = split.images
    parts = range(0, len(images), chunk)
    prob = np.concatenate([predict_proba(model, images[i : i + chunk], target=1) for i in parts])
    pred = (prob >= 0.5).astype(int)
    y = split.labels.numpy()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_tumour": float(f1_score(y, pred, pos_label=1, zero_division=0)),
        "n": int(len(y)),
    }


def prepare_seed(params: Any, seed: int, store: Store) -> SeedModel:
    """Data splits and the trained classifier of one seed (both cached)."""
    p = params
    splits, reference = seed_splits(p, seed, store)
    keys = stage_keys(p, seed, data_identity(p.dataset, p.data_options, splits))
    trained, _ = train_classifier(
        p.classifier,
        LabelledTiles(splits["train"].images, splits["train"].labels),
        LabelledTiles(splits["val"].images, splits["val"].labels),
        data=keys["data"],
        epochs=p.epochs,
        lr=p.lr,
        batch_size=p.batch_size,
        seed=seed,
        device=p.device,
        pretrained=p.pretrained,
        store=store,
        desc=f"{p.classifier} (tumour vs normal)",
        kind="ibo-classifier",
        val_batch_size=p.batch_size,
        recalibrate_bn=False,
        precision=p.precision,
    )
    model = trained.model.to(resolve_device(p.device)).eval()
    ood = perceptual.Mahalanobis().fit(
        perceptual.penultimate_features(model, splits["train"].images)
    )
    metrics = classifier_metrics(model, splits["test"])
    return SeedModel(seed, splits, reference, model, metrics, ood, keys)


def train_ddpm(
    params: Any, seed: int, splits: Mapping[str, Split], store: Store
) -> tuple[ddpm.DDPMResult, dict[str, Any]]:
    """(the DDPM of ``splits``' normal tiles, its cache key), cached."""
    p = params
    key = ddpm_stage_key(p, seed, data_identity(p.dataset, p.data_options, splits))
    dm = ddpm.train_ddpm(
        splits["ddpm"].images,
        channels=p.ddpm_channels,
        layers_per_block=p.ddpm_layers,
        attention=p.ddpm_attention,
        num_train_timesteps=p.train_timesteps,
        epochs=p.ddpm_epochs,
        batch_size=p.ddpm_batch_size,
        lr=p.ddpm_lr,
        seed=seed,
        device=p.device,
        store=store,
        kind="ibo-ddpm",
        params=key,
        ema_decay=p.ddpm_ema,
        centre=p.ddpm_centre,
        crop=p.ddpm_crop,
        snr_gamma=p.ddpm_snr_gamma,
        precision=p.precision,
    )
    return dm, key


def shared_ddpm(params: Any, store: Store | None = None) -> tuple[ddpm.DDPMResult, dict]:
    """(the DDPM, its cache key): the study's DDPM of normal tissue for ``params`` (any object
    with the ``ibo`` parameters' fields), without the classifiers; what another chapter's IBO
    occlusion uses (cached: a run of this study with the same parameters trains it once)."""
    store = store or Store()
    seed = params.seeds[0]
    splits, _ = seed_splits(params, seed, store)
    return train_ddpm(params, seed, splits, store)


def gate_samples(params: Any, dm: ddpm.DDPMResult, key: Mapping, store: Store) -> torch.Tensor:
    """The gate's DDPM samples (cached with the DDPM's key)."""
    n, steps = params.gate_samples, min(params.gate_steps, params.train_timesteps)
    arrays = store.cached_arrays(
        "ibo-ddpm-samples",
        dict(key, n=n, steps=steps, **numerics_key(params)),
        lambda: {
            "x": ddpm.sample(
                dm.unet,
                dm.scheduler,
                [900_000 + i for i in range(n)],
                num_inference_steps=steps,
                device=params.device,
                scaling=dm.scaling,
                batch_size=params.repaint_batch,
                precision=params.precision,
                compile=params.compile,
            ).numpy()
        },
    )
    return torch.from_numpy(arrays["x"])


def explain_seed(params: Any, sm: SeedModel, store: Store) -> Explained:
    """Heatmaps and IoU of the ground-truth tiles; levels and masks of the occluded tiles."""
    p, methods = params, methods_of(params)
    test = sm.splits["test"]
    gt_ids = tumour_order(test.labels, sm.seed)[: max(p.n_gt_samples, p.n_samples)]
    maps = store.cached_arrays(
        "ibo-heatmaps",
        dict(sm.keys["heatmaps"], samples=gt_ids.tolist()),
        lambda: {"maps": heatmaps(sm.model, test.images[gt_ids], methods)},
    )["maps"]
    def iou(maps: np.ndarray, levels: np.ndarray) -> np.ndarray:
        region = faithfulness.binarise(
            maps, p.iou_rule, p.iou_threshold, levels=levels, n_levels=p.iou_levels
        )
        return localisation.iou(region, test.masks[gt_ids][:, None])

    gt_levels = occlusion.levels_batch(maps, k=p.kmeans_k, seed=sm.seed)
    # the null control of the IoU ranking: every map's values moved to random CAM-like blobs
    # (coverage and histogram kept, so the same levels; no information about the tumour)
    g, m, h, w = maps.shape
    shuffled = controls.coverage_matched(
        maps.reshape(g * m, h, w), (sm.seed, 5), smooth=h / 16
    ).reshape(maps.shape)
    shuffled_levels = occlusion.levels_batch(shuffled, k=p.kmeans_k, seed=sm.seed)
    levels = gt_levels[: min(p.n_samples, len(gt_ids))]
    return Explained(
        gt_ids, maps, iou(maps, gt_levels), iou(shuffled, shuffled_levels), levels,
        occlusion.nested_masks(levels, p.kmeans_k - 1),
    )  # fmt: skip


def occlude_seed(
    params: Any, sm: SeedModel, ex: Explained, dm: Any, ddpm_key: Mapping, store: Store
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Every strategy on every (tile, method), replicated over the noise; common random
    numbers: the methods of a tile share its noise. One cache entry per strategy and replicate.
    Returns (results, deletion AUCs) per strategy."""
    p, methods, ids = params, methods_of(params), ex.sample_ids
    x = sm.splits["test"].images[ids]
    alex = perceptual.alexnet_weights_path(p.alexnet_weights)
    options = strategy_options(p, sm.splits["train"].images.channel_mean(), dm, dict(ddpm_key))
    base = dict(
        sm.keys["heatmaps"],
        samples=ids.tolist(),
        kmeans_k=p.kmeans_k,
        alexnet=str(alex) if alex else False,
        noise="common",
        sample_chunk=SAMPLE_CHUNK,
    )
    xs = faithfulness.occluded_fractions(ex.masks, relative=p.auc_x == "relative")
    results, aucs = {}, {}

    def measure(strategy: str, seeds: np.ndarray, run_opts: dict) -> dict[str, np.ndarray]:
        return evaluate_strategy(
            strategy, sm.model, x, ex.levels, seeds, p.kmeans_k - 1, sm.ood,
            alexnet_weights=p.alexnet_weights, **run_opts,
        )  # fmt: skip

    for strategy in strategies_of(p):
        key_opts, run_opts = options[strategy]
        reps = []
        for r in range(p.replicates if strategy in STOCHASTIC else 1):
            seeds = noise_seeds(sm.seed, ids, len(methods), r)
            reps.append(
                store.cached_arrays(
                    "ibo-occlusion",
                    dict(base, strategy=strategy, options=key_opts, replicate=r),
                    lambda s=strategy, seeds=seeds, o=run_opts: measure(s, seeds, o),
                )
            )
        stacked = {
            k: np.stack([r[k] for r in reps], axis=1)
            for k in reps[0]
            if k not in ("examples", "seconds", "unet_calls")
        }
        stacked = {k: np.repeat(v, p.replicates // v.shape[1], axis=1) for k, v in stacked.items()}
        stacked.update(
            examples=reps[0]["examples"],
            seconds=np.sum([r["seconds"] for r in reps]),
            unet_calls=np.sum([r["unet_calls"] for r in reps]),
        )
        results[strategy] = stacked
        aucs[strategy] = faithfulness.trapezoid_auc(
            np.broadcast_to(xs[:, None], stacked["prob"].shape), stacked["prob"]
        )
    return results, aucs


#: the premise's null control: IBO where the heatmap did not look
PREMISE_CONTROL = "IBO on a random region of the same area"


def premise_control(
    params: Any, sm: SeedModel, ex: Explained, dm: Any, ddpm_key: Mapping, store: Store
) -> dict[str, np.ndarray]:
    """IBO's premise without the heatmap (cached): per occluded tile, the last mask of the
    method whose last mask has the median area among the tile's methods, moved to random blobs
    of the same area (:func:`random_regions`), is filled by RePaint with IBO's settings and the
    tile's replicate-0 noise in one pass (IBO fills the mask level by level). Returns
    ``p_before`` and ``p_after`` (P(tumour) of the tile and of the filled tile), ``method``
    (the index of the method whose area it took) and ``area`` (pixels), each (S,)."""
    p, ids = params, ex.sample_ids
    last = ex.masks[:, :, -1]  # (S, M, H, W)
    area = last.sum(axis=(2, 3))
    method = np.argsort(area, axis=1, kind="stable")[:, (area.shape[1] - 1) // 2]
    mean = sm.splits["train"].images.channel_mean()
    key_opts, run_opts = strategy_options(p, mean, dm, dict(ddpm_key))["ibo"]

    def compute() -> dict[str, np.ndarray]:
        x = sm.splits["test"].images[ids]
        region = random_regions(last[np.arange(len(ids)), method], sm.seed, ids)
        levels = np.where(region, 1, 2).astype(np.int64)
        seeds = noise_seeds(sm.seed, ids, 1)[:, 0]
        filled = occlusion.occlude_levels("ibo", x, levels, seeds, 1, **run_opts)[:, 0]
        return {
            "p_before": predict_proba(sm.model, x, target=1),
            "p_after": predict_proba(sm.model, filled, target=1),
            "method": method,
            "area": region.sum(axis=(1, 2)),
        }

    key = dict(
        sm.keys["heatmaps"],
        samples=ids.tolist(),
        kmeans_k=p.kmeans_k,
        options=key_opts,
        control=PREMISE_CONTROL,
        noise="common",
        smooth="tile side / 16",
    )
    return store.cached_arrays("ibo-premise-control", key, compute)


def run(params: Any, store: Store | None = None, *, profile: str = "quick") -> Result:
    """The whole experiment over ``params.seeds`` (every stage cached); ``profile`` only names
    the profile the parameters came from in the result."""
    store = store or Store()
    with deterministic_kernels(params.deterministic):
        return _run(params, store, profile)


def _run(params: Any, store: Store, profile: str) -> Result:
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        return out

    prepared = [
        timed("data + classifier", lambda s=s: prepare_seed(params, s, store))
        for s in tqdm(params.seeds, desc="ibo: data and classifiers")
    ]
    first = prepared[0]
    dm, key = timed("DDPM (shared)", lambda: train_ddpm(params, first.seed, first.splits, store))
    gate = timed("DDPM gate samples", lambda: gate_samples(params, dm, key, store))
    runs = []
    for sm in tqdm(prepared, desc="ibo: seeds"):
        ex = timed("heatmaps", lambda sm=sm: explain_seed(params, sm, store))
        results, aucs = timed(
            "occlusion", lambda sm=sm, ex=ex: occlude_seed(params, sm, ex, dm, key, store)
        )
        control = {}
        if "ibo" in results:
            control = timed(
                "premise control",
                lambda sm=sm, ex=ex: premise_control(params, sm, ex, dm, key, store),
            )
        runs.append(
            SeedResult(
                **_fields(sm), **_fields(ex), results=results, aucs=aucs, premise_control=control
            )
        )
    methods, strategies = tuple(methods_of(params)), tuple(strategies_of(params))
    return Result(params, profile, methods, strategies, dm, key, tuple(runs), gate, timings)
