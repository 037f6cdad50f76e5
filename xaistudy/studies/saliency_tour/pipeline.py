"""The saliency tour's entry point: :func:`run` trains (or loads) both classifiers of every seed
and measures everything the chapter reports; :func:`run_seed` does one seed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from xaistudy.core.store import Store
from xaistudy.models.classifiers import resolve_device, target_layer
from xaistudy.models.train import make_loader, predict
from xaistudy.studies.saliency_tour.maps import (
    completeness,
    control_scores,
    grid_maps,
    implementation_invariance,
    rise_np_maps,
    tile_scores,
    timing_rows,
)
from xaistudy.studies.saliency_tour.models import (
    classifier_row,
    correct_tumour_tiles,
    stack,
    train_models,
)
from xaistudy.studies.saliency_tour.probes import (
    HansShown,
    cascade,
    clever_hans,
    in_distribution,
    sweep,
)

#: the tidy tables of a run, each with ``seed`` and (mostly) ``unit`` columns
TABLES = (
    "classifier",  # one row per seed
    "scores",  # per method and scored tile
    "scores_randomised",  # the same map scores for the randomised network (the null control)
    "timing",  # per method and timed tile
    "completeness",  # per summation rule and tile
    "implementation",  # per method (DeepLIFT, IG) and tile: the map of the network's twin
    "ood",  # per perturbation and normal tile
    "sweep",  # per swept method and tile
    "accuracy",  # per Clever-Hans model and test set
    "hans",  # per Clever-Hans model, method and marked tumour tile
    "hans_normal",  # per marked normal tile: each Clever-Hans model's tumour probability
)


@dataclass(frozen=True)
class Shown:
    """What the figures show, from the first seed: its first scored tile, every method's map of
    it (and the re-initialised model's), the Clever-Hans tiles and the cascading check."""

    image: np.ndarray  # (C, H, W)
    mask: np.ndarray  # (H, W) bool, the tumour
    p: float  # the tumour probability of the tile
    maps: Mapping[str, np.ndarray]  # per method, ``rise_np`` included when RISE ran
    random_maps: Mapping[str, np.ndarray]
    feature_map: tuple[int, int]  # the CAM layer's spatial size
    hans: HansShown
    cascade: pd.DataFrame


@dataclass(frozen=True)
class SeedResult:
    """One seed's tidy tables (:data:`TABLES`, each with a ``seed`` column) and, when asked
    for, what the figures show."""

    seed: int
    tables: Mapping[str, pd.DataFrame]
    shown: Shown | None = None


@dataclass(frozen=True)
class Result:
    """Every seed's tables stacked, the first seed's figures' material and the parameters."""

    params: Any
    tables: Mapping[str, pd.DataFrame]
    shown: Shown


def _feature_map(net: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    feats = []
    hook = target_layer(net).register_forward_hook(
        lambda _m, _i, out: feats.append(tuple(out.shape[-2:]))
    )
    with torch.no_grad():
        net(x[:1])
    hook.remove()
    return feats[-1]


def run_seed(params: Any, seed: int, store: Store | None = None, show: bool = False) -> SeedResult:
    """Train (or load) both models of ``seed`` and measure everything the chapter reports."""
    store = store or Store()
    device = resolve_device(params.device)
    m = train_models(params, seed, device, store)
    probs, labels = predict(m.net, make_loader(m.test, 64), device=device, desc=None)
    idx = correct_tumour_tiles(probs, labels, params.n_eval)
    if len(idx) == 0:
        raise RuntimeError(
            f"seed {seed}: the classifier got no tumour test tile right; train longer (-p epochs)"
        )
    x = stack(m.test, idx).to(device)
    masks = stack(m.test, idx, "mask")[:, 0].numpy() > 0.5
    maps = grid_maps(params, m, idx, x, store)
    hans = clever_hans(params, m, device, store)
    tables = {
        "classifier": pd.DataFrame([classifier_row(params, m, probs, labels)]),
        "scores": tile_scores(params, m, x, masks, maps),
        "scores_randomised": control_scores(params, masks, maps),
        "timing": timing_rows(maps),
        "completeness": completeness(params, m, x, maps),
        "implementation": implementation_invariance(params, m, idx, x, maps, store),
        "ood": in_distribution(params, m, probs, labels),
        "sweep": sweep(params, m, x, maps, store),
        "accuracy": hans.accuracy,
        "hans": hans.maps,
        "hans_normal": hans.normal,
    }
    tables = {name: t.assign(seed=seed)[["seed", *t.columns]] for name, t in tables.items()}
    if not show:
        return SeedResult(seed, tables)
    first = {k: v["maps"][0] for k, v in maps.items()}
    if "rise" in maps:
        first["rise_np"] = rise_np_maps(maps["rise"]["maps"][:1], params)[0]
    shown = Shown(
        image=x[0].cpu().numpy(),
        mask=masks[0],
        p=float(probs[idx[0], 1]),
        maps=first,
        random_maps={k: v["random_maps"][0] for k, v in maps.items()},
        feature_map=_feature_map(m.net, x),
        hans=hans.shown,
        cascade=cascade(params, m, x, maps, store),
    )
    return SeedResult(seed, tables, shown)


def run(params: Any, store: Store | None = None) -> Result:
    """:func:`run_seed` for every seed of ``params``; the tables of all seeds stacked."""
    store = store or Store()
    runs = [run_seed(params, s, store, show=(k == 0)) for k, s in enumerate(params.seeds)]
    tables = {name: pd.concat([r.tables[name] for r in runs], ignore_index=True) for name in TABLES}
    return Result(params, tables, runs[0].shown)
