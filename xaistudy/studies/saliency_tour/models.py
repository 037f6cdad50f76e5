"""One seed's tiles and its two classifiers: the tumour classifier and its Clever-Hans twin,
trained on the same tiles with a marker-pen stroke that co-occurs with the tumour class."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from xaistudy.core.store import Store
from xaistudy.data import shortcuts
from xaistudy.data.datasets import get_dataset, get_spec
from xaistudy.models.classifiers import target_layer
from xaistudy.models.classify import train_classifier
from xaistudy.models.train import make_loader, predict

log = logging.getLogger(__name__)

#: the names of the three Clever-Hans test sets
MARKED, CLEAN, MARKED_NORMAL = (
    "marked as in training",
    "clean (no marks)",
    "marks on normal tiles only",
)


@dataclass(frozen=True)
class Models:
    """One seed's data, its classifier and its Clever-Hans twin."""

    seed: int
    train: Dataset
    test: Dataset
    net: nn.Module
    hans: nn.Module
    start: str
    best_epoch: int
    test_sets: Mapping[str, Dataset]


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


def _pen_set(params: Any, seed: int, split: str, base: Dataset, co: float) -> Dataset:
    if get_spec(params.dataset).needs_root:
        return shortcuts.with_pen_marks(base, split, seed, cooccurrence=co, ink=params.shortcut_ink)
    return get_dataset(
        "synthetic-he-pen",
        split,
        n=len(base),
        cooccurrence=co,
        size=params.tile_size,
        seed=seed,
        ink=params.shortcut_ink,
    )


def train_models(
    params: Any, seed: int, device: torch.device, store: Store | None = None
) -> Models:
    """The run's tiles for ``seed`` and both classifiers (trained, or loaded from ``store``)."""
    store = store or Store()
    real = get_spec(params.dataset).needs_root
    kw = {"size": params.tile_size, "seed": seed}
    load = {**kw, "data_root": params.data_root or None, **params.data_options}
    train = get_dataset(params.dataset, "train", n=params.n_train, **load)
    val = get_dataset(params.dataset, "val", n=params.n_val, **load)
    test = get_dataset(params.dataset, "test", n=params.n_test, **load)
    data_id: dict[str, Any] = {
        "dataset": params.dataset,
        "n_train": params.n_train,
        "n_val": params.n_val,
        **kw,
    }
    if real:
        data_id.update(
            data_options=params.data_options,
            files=[getattr(d, "fingerprint", "") for d in (train, val)],
        )
    fit_kw = dict(
        epochs=params.epochs,
        lr=params.lr,
        batch_size=params.batch_size,
        seed=seed,
        device=device,
        pretrained=params.pretrained,
        store=store,
    )
    clean, start = train_classifier(
        params.model, train, val, data=data_id, desc=f"classifier, seed {seed}", **fit_kw
    )
    co, ink = params.shortcut_cooccurrence, params.shortcut_ink
    pen_id = {
        **data_id,
        "pen": "synthetic-he-pen" if not real else "with_pen_marks",
        "cooccurrence": co,
        "ink": ink,
    }
    shortcut, _ = train_classifier(
        params.model,
        _pen_set(params, seed, "train", train, co),
        _pen_set(params, seed, "val", val, co),
        data=pen_id,
        desc=f"shortcut classifier, seed {seed}",
        **fit_kw,
    )
    test_sets = {
        MARKED: _pen_set(params, seed, "test", test, co),
        CLEAN: test,
        MARKED_NORMAL: _pen_set(params, seed, "test", test, 0.0),
    }
    return Models(
        seed,
        train,
        test,
        clean.model.to(device).eval(),
        shortcut.model.to(device).eval(),
        start,
        clean.best_epoch,
        test_sets,
    )


def classifier_row(params: Any, m: Models, probs: np.ndarray, labels: np.ndarray) -> dict:
    """One row of the classifier table."""
    return {
        "data": params.dataset,
        "model": params.model,
        "start": m.start,
        "epochs": params.epochs,
        "best_epoch": m.best_epoch,
        "train_tiles": params.n_train,
        "test_tiles": len(labels),
        "test_accuracy": float((probs.argmax(1) == labels).mean()),
        "cam_layer": type(target_layer(m.net)).__name__,
    }
