"""The maps: every method on every model's tiles, for class 1, cached per method."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from xaistudy.core.store import Store
from xaistudy.evaluate import quality
from xaistudy.explain import explain, relevance
from xaistudy.explain.taxonomy import method_options
from xaistudy.models.classifiers import target_layer
from xaistudy.models.train import weights_hash

from .data import SeedRun
from .design import methods_of


def layer_name(model: nn.Module) -> str:
    """The name of ``model``'s CAM layer (:func:`target_layer`) among its modules."""
    layer = target_layer(model)
    return next(n for n, m in model.named_modules() if m is layer)


def compute_maps(
    params: Any, model: nn.Module, images: torch.Tensor, method: str, seed: int
) -> np.ndarray:
    """Maps (n, H, W) of ``method`` for class 1 of ``model``: the registry's methods through
    :func:`xaistudy.explain.explain`, the relevance CAMs through
    :func:`xaistudy.explain.relevance.relevance_cams` at the same layer as the CAMs."""
    layer = target_layer(model)
    if method in relevance.RELEVANCE_METHODS:
        cams = relevance.relevance_cams(model, images, 1, {"cam": layer}, methods=(method,))
        return cams[method]["cam"].astype(np.float32)
    p = params
    options = method_options(
        method,
        occlusion_window=p.occlusion_window,
        lime_samples=p.lime_samples,
        shap_samples=p.shap_samples,
        rise_masks=p.rise_masks,
        ig_steps=p.ig_steps,
        smoothgrad_samples=p.smoothgrad_samples,
        seed=seed,
    )
    parts = [
        explain(method, model, images[i : i + 16], 1, layer=layer, **options)
        for i in range(0, len(images), 16)
    ]
    return np.concatenate(parts).astype(np.float32)


def data_key(params: Any, seed: int, name: str) -> dict[str, Any]:
    """What identifies the tiles model ``name`` explains (part of the cache keys)."""
    return {"size": params.tile_size, "n_test": params.n_test, "seed": seed, "model": name}


def map_options(params: Any) -> dict[str, Any]:
    """The methods' options (part of the cache keys)."""
    p = params
    return {
        "window": p.occlusion_window,
        "ig": p.ig_steps,
        "rise": p.rise_masks,
        "lime": p.lime_samples,
        "shap": p.shap_samples,
        "sg": p.smoothgrad_samples,
    }


def maps_of(params: Any, run: SeedRun, name: str, store: Store) -> np.ndarray:
    """Maps (n, M, H, W) of every method for model ``name``'s tiles (cached per method)."""
    model = run.models[name]
    tiles = run.tiles_of(name)
    out = []
    for method in tqdm(methods_of(params), desc=f"maps, {name}", leave=False):
        key = {
            "model": weights_hash(model),
            "tiles": tiles.index.tolist(),
            "seed": run.seed,
            "method": method,
            "data": data_key(params, run.seed, name),
            **map_options(params),
        }
        arrays = store.cached_arrays(
            "meta-maps",
            key,
            lambda method=method: {
                "maps": compute_maps(params, model, tiles.images, method, run.seed)
            },
        )
        out.append(arrays["maps"])
    return np.stack(out, axis=1)


def positive_unit(maps: np.ndarray) -> np.ndarray:
    """Each map's positive part scaled to [0, 1] (a map without positive values: all 0)."""
    flat = np.clip(np.asarray(maps, np.float64), 0, None).reshape(-1, *maps.shape[-2:])
    return np.stack([quality.minmax(m) for m in flat]).reshape(maps.shape)
