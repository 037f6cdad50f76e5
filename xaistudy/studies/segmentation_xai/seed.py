"""One seed of the segmentation-explanation study: the model, its tiles and every map.

A seed trains (or loads) the segmenter, picks the test tiles it predicts the explained class
on, and computes, each stage cached: the four CAMs at every layer of ``params.layers`` with the
warm time of each, RISE in one pass over the largest mask count (coverage and N·p maps at every
count) with an independent reference map, and the region-of-interest maps. The result is one
frozen :class:`SeedResult`, built once, complete.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store
from xaistudy.explain.rise import rise_masks
from xaistudy.explain.segmentation import explain_segmentation, rise_curve, roi_window
from xaistudy.models.segmenters import (
    Segmenter,
    explanation_tiles,
    load_segmenter,
    segmentation_quality,
)

#: the four class-activation maps, in the survey's Table 1 order
CAMS: tuple[str, ...] = ("seg-grad-cam", "seg-xres-cam", "seg-eigen-cam", "seg-ablation-cam")
#: RISE perturbs the input; its rows carry this in the layer column
RISE_LAYER = "input"
#: the methods of the region-of-interest study (Seg-Eigen-CAM does not depend on the region)
ROI_METHODS: tuple[str, ...] = ("seg-grad-cam", "seg-xres-cam", "seg-ablation-cam")


def source(params: Any) -> dict[str, Any]:
    """The data source of a run: dataset, data root and options (COCO: the explained class)."""
    opts = dict(params.data_options)
    if params.dataset == "coco":  # the COCO loader reads the explained class's images
        opts = {"classes": params.target_class, **opts}
    return {"dataset": params.dataset, "data_root": params.data_root or None, "data_options": opts}


def unet_settings(params: Any, seed: int) -> dict[str, Any]:
    """The U-Net's training settings for ``seed`` (its data source when not synthetic)."""
    settings = {
        "size": params.tile_size,
        "n_train": params.n_train,
        "n_val": params.n_val,
        "base": params.unet_base,
        "depth": params.unet_depth,
        "epochs": params.epochs,
        "lr": params.lr,
        "batch_size": params.batch_size,
        "seed": seed,
    }
    if params.dataset != "synthetic-he":
        settings.update(source(params))
    return settings


def model_key(params: Any, seed: int) -> dict[str, Any]:
    """What identifies the model of ``seed`` in the cache keys of its maps."""
    if params.model != "unet":
        return {"model": params.model, "weights": params.weights}
    return {"model": "unet", **unet_settings(params, seed)}


def cam_options(params: Any, layer: str) -> dict[str, Any]:
    """The options of :func:`explain_segmentation` for the CAMs at ``layer``."""
    return {
        "layer": layer,
        "pool": params.xres_pool,
        "pool_mode": params.xres_pool_mode,
        "ablation_batch": params.ablation_batch,
        "ablation_ratio": params.ablation_ratio,
    }


def largest_rise(params: Any) -> str:
    """The map name of RISE at the largest mask count (``rise-<n>``)."""
    return f"rise-{max(params.rise_masks)}"


def warm_seconds(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def forward_passes(method: str, channels: int = 0, n_masks: int = 0) -> float:
    """Forward passes of one explanation of one image: Seg-Grad-CAM and Seg-XRes-CAM one
    forward and one backward (counted as 2), Seg-Eigen-CAM one, Seg-Ablation-CAM one per
    ablated channel (``channels``) plus two (pytorch-grad-cam's own and the score's), RISE one
    per mask."""
    return {
        "seg-grad-cam": 2.0,
        "seg-xres-cam": 2.0,
        "seg-eigen-cam": 1.0,
        "seg-ablation-cam": float(channels + 2),
        "rise": float(n_masks),
    }[method]


def layer_channels(model: Segmenter, layer: str, x: torch.Tensor) -> tuple[int, int]:
    """(channels, side) of layer ``layer``'s output for input ``x``."""
    shape = {}
    hook = model.layer(layer).register_forward_hook(lambda m, i, o: shape.update(s=o.shape))
    with torch.no_grad():
        model(x)
    hook.remove()
    return int(shape["s"][1]), int(shape["s"][-1])


@dataclass(frozen=True, eq=False)
class SeedResult:
    """What one seed produced: the model, its tiles, every map with its warm seconds, RISE's
    N·p maps per mask count, and the region-of-interest maps with their windows."""

    seed: int
    model: Segmenter
    tiles: dict[str, Any]
    quality: pd.DataFrame
    maps: dict[tuple[str, str], np.ndarray]
    seconds: dict[tuple[str, str], np.ndarray]
    rise_petsiuk: dict[int, np.ndarray]
    roi_maps: dict[tuple[str, str], np.ndarray]
    roi_windows: np.ndarray


def load_model(params: Any, seed: int, store: Store | None = None, device: str = "auto"):
    """(model, training result or None): the U-Net of ``seed`` trained on the tiles (or loaded
    from ``store``, by default the book's cache), or DeepLabv3 with its COCO weights from a local
    file. The global generators are seeded with ``seed`` first, so the U-Net's initial weights,
    and the trained model, do not depend on what ran before."""
    seed_everything(seed)
    unet = unet_settings(params, seed) if params.model == "unet" else {}
    return load_segmenter(params.model, params.weights or None, store=store, device=device, **unet)


def explained_tiles(
    params: Any, model: Segmenter, seed: int, store: Store | None = None, device: str = "auto"
) -> dict[str, Any]:
    """The test tiles of ``seed`` that show the class and on which ``model`` predicts it
    (``images``, ``index`` and the other fields of :func:`explanation_tiles`)."""
    n = max(params.n_images, params.n_roi_images, params.n_show)
    pool = 8 if params.dataset == "synthetic-he" else 4
    tiles = explanation_tiles(
        model, params.target_class, n, size=params.tile_size, seed=seed, store=store,
        device=device, pool=pool, **source(params),
    )
    keep = tiles["predicted"]
    if not keep.any():
        raise ValueError(
            f"seed {seed}: the model predicts no '{params.target_class}' pixel on any test "
            f"{'image' if params.dataset == 'coco' else 'tile'} showing it; nothing to explain "
            "(a model without predictions has no explanation to score)"
        )
    idx = np.flatnonzero(keep)
    return {k: v[torch.as_tensor(idx, device=v.device)] if k == "images" else v[idx]
            for k, v in tiles.items()}


def _cached_maps(store, kind, key, n, compute_one, desc) -> dict[str, np.ndarray]:
    items = store.cached_items(kind, key, range(n), compute_one, desc=desc)
    return {k: np.stack([np.asarray(r[k]) for r in items]) for k in items[0]}


def cam_maps(params: Any, model: Segmenter, images, base: dict, store: Store, seed: int):
    """Every CAM at every layer on ``images``, one cached item per tile: (maps, seconds) keyed
    by (layer, method); the first call of a method pays its start-up cost untimed."""
    maps, seconds = {}, {}
    for layer in params.layers:
        for method in CAMS:
            opts = cam_options(params, layer)
            warm = {"done": False}

            def one(i, method=method, opts=opts, warm=warm) -> dict[str, np.ndarray]:
                def call(j=i):
                    return explain_segmentation(method, model, images[j : j + 1],
                                                params.target_class, **opts)

                if not warm["done"]:
                    call(0)
                    warm["done"] = True
                start = time.perf_counter()
                sal = call()
                return {"saliency": sal[0], "seconds": np.float64(time.perf_counter() - start)}

            got = _cached_maps(store, "seg-xai-cam", {**base, "method": method, "options": opts},
                               len(images), one, f"seed {seed} {layer} {method}")
            maps[(layer, method)] = got["saliency"]
            seconds[(layer, method)] = got["seconds"]
    return maps, seconds


def rise_maps(params: Any, model: Segmenter, images, base: dict, store: Store, seed: int):
    """RISE on the same tiles as the CAMs: one pass of the largest mask count, masks drawn once
    per seed. Returns (maps, seconds, petsiuk): the coverage maps at every count and the
    reference map of ``rise_reference`` other masks (``(RISE_LAYER, "reference")``), their
    seconds, and the N·p maps per count."""
    counts = params.rise_masks
    size = tuple(images.shape[-2:])
    masks = rise_masks(max(counts), size, params.rise_cells, params.rise_p, seed)
    masks = masks.to(images.device)
    pred = model.predict(images, params.target_class).cpu().numpy()
    opts = {"cells": params.rise_cells, "p": params.rise_p, "fill": params.fill,
            "batch": params.rise_batch, "counts": counts, "seed": seed}
    warm = {"done": False}

    def one(i: int) -> dict[str, np.ndarray]:
        def call(j=i, m=masks, c=counts):
            return rise_curve(model, images[j], params.target_class, pred[j], m, c,
                              params.rise_batch, params.fill, params.rise_p)

        if not warm["done"]:
            call(0, masks[: min(20, len(masks))], [min(20, len(masks))])
            warm["done"] = True
        return call()

    got = _cached_maps(store, "seg-xai-rise", {**base, "options": opts}, len(images), one,
                       f"seed {seed} RISE")
    maps = {(RISE_LAYER, f"rise-{n}"): got["coverage"][:, k] for k, n in enumerate(counts)}
    seconds = {(RISE_LAYER, f"rise-{n}"): got["seconds"][:, k] for k, n in enumerate(counts)}
    petsiuk = {n: got["p"][:, k] for k, n in enumerate(counts)}
    n_ref = min(params.n_convergence, len(images))
    ref_masks = rise_masks(params.rise_reference, size, params.rise_cells, params.rise_p,
                           seed + 7919).to(images.device)

    def reference(i: int) -> dict[str, np.ndarray]:
        return {"map": rise_curve(model, images[i], params.target_class, pred[i], ref_masks,
                                  [params.rise_reference], params.rise_batch, params.fill,
                                  params.rise_p)["coverage"][0]}

    ref = _cached_maps(store, "seg-xai-rise-ref",
                       {**base, "options": {**opts, "reference": params.rise_reference}},
                       n_ref, reference, f"seed {seed} RISE reference")
    maps[(RISE_LAYER, "reference")] = ref["map"]
    return maps, seconds, petsiuk


def roi_maps(params: Any, model: Segmenter, tiles: dict[str, Any], base: dict, store: Store):
    """Explain only M = the prediction inside the ``roi_size`` window where it is densest.
    Returns (maps keyed by (layer, method), the windows)."""
    images = tiles["images"][: params.n_roi_images]
    size = min(params.roi_size, params.tile_size)
    pred = model.predict(images, params.target_class).cpu().numpy()
    windows = np.stack([roi_window(p, size) for p in pred])
    maps = {}
    for layer in params.layers:
        opts = cam_options(params, layer)
        for method in ROI_METHODS:

            def compute(method=method, opts=opts) -> dict[str, np.ndarray]:
                return {"map": explain_segmentation(method, model, images, params.target_class,
                                                    windows & pred, **opts)}

            key = {**base, "method": method, "options": opts, "roi_size": size,
                   "n": len(images)}
            maps[(layer, method)] = store.cached_arrays("seg-xai-roi", key, compute)["map"]
    return maps, windows


def run_seed(params: Any, seed: int, store: Store, device: str) -> SeedResult:
    """Train (or load) the model of ``seed``, pick its tiles, compute every map (cached)."""
    model, trained = load_model(params, seed, store, device)  # seeds the global generators
    quality = pd.DataFrame(
        segmentation_quality(model, n=params.n_val, size=params.tile_size, seed=seed,
                             store=store, **source(params))
    )
    quality.insert(0, "seed", seed)
    if trained is not None:  # the training objective's validation score is a mean IoU
        quality["final_val_iou"] = float(trained.history["val_acc"].iloc[-1])
    tiles = explained_tiles(params, model, seed, store, device)
    images = tiles["images"][: min(params.n_images, len(tiles["images"]))]
    base = {
        **model_key(params, seed),
        "source": source(params),
        "tiles": tiles["index"].tolist(),
        "size": params.tile_size,
        "target": params.target_class,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    maps, seconds = cam_maps(params, model, images, base, store, seed)
    rise, rise_seconds, petsiuk = rise_maps(params, model, images, base, store, seed)
    roi, windows = roi_maps(params, model, tiles, base, store)
    return SeedResult(
        seed=seed, model=model, tiles=tiles, quality=quality, maps={**maps, **rise},
        seconds={**seconds, **rise_seconds}, rise_petsiuk=petsiuk, roi_maps=roi,
        roi_windows=windows,
    )
