"""Helpers of the saliency-tour chapter: one classifier, its test tiles, and map figures.

Plain functions the chapter (and its tests) share: :func:`train_classifier` trains and caches a
tumour-vs-normal classifier, :func:`correct_tumour_tiles` picks correctly classified tumour
tiles, :func:`accuracy_table` scores models on several test sets, and :func:`display_map` /
:func:`map_grid` draw maps as in the review's Fig. 7 (signed maps: blue negative, white zero,
red positive; non-negative maps: white to red; the ground-truth region outlined).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import Normalize
from torch import nn
from torch.utils.data import Dataset

from xaistudy.models.classifiers import WeightsNotFoundError, build_classifier
from xaistudy.models.train import (
    TrainResult,
    fit,
    make_loader,
    predict,
    seed_everything,
    weights_hash,
)
from xaistudy.store import Store

log = logging.getLogger(__name__)

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "Reds"


def train_classifier(
    arch: str,
    train: Dataset,
    val: Dataset,
    *,
    data: Mapping[str, Any],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str | torch.device = "auto",
    pretrained: bool | str | Path = False,
    store: Store | None = None,
    desc: str | None = None,
) -> tuple[TrainResult, str]:
    """Train (or load from ``store``) a two-class ``arch``; returns the result and how it started.

    ``data`` must identify the training data (it is part of the cache key). ``pretrained``:
    False; True, the standard local ImageNet file when one exists (otherwise the model is
    trained from scratch and the second return value says so); or a weights file path, which
    must load.
    """
    seed_everything(seed)
    start = "trained from scratch"
    net: nn.Module | None = None
    weights: dict[str, str] = {}
    if pretrained is True:
        try:
            net = build_classifier(arch, 2, pretrained=True)
            start = "fine-tuned from local ImageNet weights"
            weights = {"weights": weights_hash(net)}
        except WeightsNotFoundError:
            start = "trained from scratch: no local ImageNet weights"
            log.warning("%s: %s", arch, start)
    elif pretrained:
        path = Path(pretrained).expanduser()
        net = build_classifier(arch, 2, pretrained=path)
        start = f"fine-tuned from {path.name}"
        weights = {"weights": weights_hash(net)}  # the starting weights, by their hash
    if net is None:
        seed_everything(seed)
        net = build_classifier(arch, 2)
    key = {
        "arch": arch,
        "start": start,
        "data": dict(data),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        **weights,
    }
    result = fit(
        net,
        make_loader(train, batch_size, shuffle=True, seed=seed),
        make_loader(val, 64),
        epochs=epochs,
        lr=lr,
        patience=None,
        seed=seed,
        device=device,
        store=store,
        kind="saliency_tour-classifier",
        params=key,
        desc=desc,
    )
    recalibrate_batchnorm(result.model, train, batch_size, device)
    return result, start


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, dataset: Dataset, batch_size: int = 32, device: str | torch.device = "auto"
) -> nn.Module:
    """Recompute batch-norm running statistics as exact averages over ``dataset``.

    A short training run (few optimiser steps) leaves the running statistics trailing the
    weights, and the model then fails in eval mode while it did well in training mode; one
    pass over the training tiles (no gradients, weights unchanged) fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for batch in make_loader(dataset, batch_size):
        model(batch["image"].to(next(model.parameters()).device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


#: the cache key of what a model explains: :func:`xaistudy.models.train.weights_hash`
weights_key = weights_hash


def stack(dataset: Dataset, indices: Sequence[int], key: str = "image") -> torch.Tensor:
    """``dataset[i][key]`` for ``indices``, stacked."""
    return torch.stack([torch.as_tensor(dataset[int(i)][key]) for i in indices])


def correct_tumour_tiles(
    probs: np.ndarray, labels: np.ndarray, n: int, tumour: int = 1
) -> np.ndarray:
    """Indices of the first ``n`` tumour tiles the model classifies correctly."""
    ok = np.flatnonzero((labels == tumour) & (probs.argmax(1) == tumour))
    if len(ok) < n:
        log.warning("only %d correctly classified tumour tiles (asked for %d)", len(ok), n)
    return ok[:n]


def accuracy_table(
    models: Mapping[str, nn.Module],
    test_sets: Mapping[str, Dataset],
    device: str | torch.device = "auto",
) -> pd.DataFrame:
    """Accuracy, sensitivity (tumour) and specificity (normal) of every model on every set."""
    rows = []
    for model_name, net in models.items():
        for set_name, dataset in test_sets.items():
            probs, labels = predict(net, make_loader(dataset, 64), device=device, desc=None)
            pred = probs.argmax(1)
            rows.append(
                {
                    "model": model_name,
                    "test_data": set_name,
                    "n": len(labels),
                    "accuracy": float((pred == labels).mean()),
                    "sensitivity": float((pred[labels == 1] == 1).mean()),
                    "specificity": float((pred[labels == 0] == 0).mean()),
                }
            )
    return pd.DataFrame(rows)


def display_map(saliency: np.ndarray, signed: bool, percentile: float = 99.5) -> np.ndarray:
    """A map scaled for display.

    Signed maps: divided by a high percentile of |map| and clipped to [-1, 1], so zero stays
    white. Non-negative maps: min-max scaled to [0, 1] (RISE maps sit on a large offset, the
    mean class score, which would otherwise hide their variation).
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    if signed:
        scale = np.percentile(np.abs(saliency), percentile)
        return np.clip(saliency / scale, -1, 1) if scale > 0 else np.zeros_like(saliency)
    shifted = saliency - saliency.min()
    scale = np.percentile(shifted, percentile)
    return np.clip(shifted / scale, 0, 1) if scale > 0 else np.zeros_like(saliency)


def show_map(
    ax: plt.Axes,
    saliency: np.ndarray,
    signed: bool,
    outlines: Sequence[tuple[np.ndarray, str]] = (),
    title: str | None = None,
) -> Any:
    """Draw one map on ``ax`` with each ``(mask, colour)`` outlined; returns the image."""
    norm = Normalize(-1, 1) if signed else Normalize(0, 1)
    cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
    im = ax.imshow(display_map(saliency, signed), cmap=cmap, norm=norm, interpolation="nearest")
    for mask, colour in outlines:
        if np.any(mask) and not np.all(mask):
            ax.contour(np.asarray(mask, float), levels=[0.5], colors=[colour], linewidths=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def add_colorbars(fig: plt.Figure, axes: Any, which: Sequence[bool] = (True, False)) -> None:
    """Colour bars of the signed (right, vertical) and non-negative (below) scales of ``axes``."""
    for signed in which:
        norm = Normalize(-1, 1) if signed else Normalize(0, 1)
        cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        if signed:
            bar = fig.colorbar(sm, ax=axes, location="right", fraction=0.025, pad=0.02)
            bar.set_label(
                "signed maps: against (blue) / for (red) the class, scaled to ±1", fontsize=8
            )
        else:
            bar = fig.colorbar(
                sm, ax=axes, location="bottom", fraction=0.03, pad=0.03, shrink=0.5, aspect=40
            )
            bar.set_label("non-negative maps (CAMs, RISE): scaled to [0, 1]", fontsize=8)
