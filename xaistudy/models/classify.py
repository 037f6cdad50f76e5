"""Classifiers trained and applied the one way the book does it: :func:`train_classifier` (two
classes, from scratch or from local weights, cached) and :func:`predict_proba` (the one
"probability of the target")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store
from xaistudy.models.classifiers import WeightsNotFoundError, build_classifier
from xaistudy.models.train import TrainResult, fit, make_loader, split_batch, weights_hash

log = logging.getLogger(__name__)


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
    kind: str = "classifier",
    val_batch_size: int = 64,
    recalibrate_bn: bool = True,
    precision: str = "fp32",
) -> tuple[TrainResult, str]:
    """Train (or load from ``store``) a two-class ``arch``; returns the result and how it started.

    ``data`` must identify the training data (it is part of the cache key). ``pretrained``:
    False; True, the standard local ImageNet file when one exists (otherwise the model is
    trained from scratch and the second return value says so); or a weights file path, which
    must load. ``kind`` names the cached stage; with ``recalibrate_bn`` the batch-norm running
    statistics are recomputed over ``train`` after training (:func:`recalibrate_batchnorm`).
    ``precision``: the training's forward passes (:func:`~xaistudy.models.train.fit`).
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
        **({"precision": precision} if precision != "fp32" else {}),
    }
    result = fit(
        net,
        make_loader(train, batch_size, shuffle=True, seed=seed),
        make_loader(val, val_batch_size),
        epochs=epochs,
        lr=lr,
        patience=None,
        seed=seed,
        device=device,
        store=store,
        kind=kind,
        params=key,
        desc=desc,
        precision=precision,
    )
    if recalibrate_bn:
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
        model(split_batch(batch)[0].to(next(model.parameters()).device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return model.eval()


#: the cache key of what a model explains: :func:`xaistudy.models.train.weights_hash`
weights_key = weights_hash


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    *,
    target: int | None = None,
    batch_size: int = 128,
) -> np.ndarray:
    """Softmax probabilities of ``model`` for ``images`` (N, C, H, W), on the model's device, in
    batches: (N, classes), or (N,) of class ``target``; float64 (of float32 softmax values).

    The book's one "probability of the target": classifiers, deletion curves, gates and RISE
    scorers call this (``model`` is put in eval mode).
    """
    model.eval()
    dev = next(model.parameters()).device
    x = torch.as_tensor(images, dtype=torch.float32)
    out = []
    for i in range(0, len(x), batch_size):
        p = torch.softmax(model(x[i : i + batch_size].to(dev)), dim=1)
        out.append((p if target is None else p[:, target]).float().cpu())
    if not out:
        return np.zeros((0,) if target is not None else (0, 0))
    return torch.cat(out).double().numpy()
