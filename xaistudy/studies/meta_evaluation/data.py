"""The data and the models of one seed: a clean and a Clever-Hans classifier (trained, or loaded
from the cache), their randomised twins, the tiles each explains with the evidence it uses, and
the interventions that verify that evidence."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaistudy.core.store import Store
from xaistudy.data import shortcuts
from xaistudy.data.datasets import get_dataset
from xaistudy.data.registry import ArrayDataset
from xaistudy.evaluate import sanity
from xaistudy.models.classifiers import resolve_device
from xaistudy.models.classify import predict_proba, train_classifier
from xaistudy.models.train import make_loader, predict

from .design import MARK_COOCCURRENCE, TRAINED, TWIN, explained_by

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tiles:
    """The tiles one model explains, with what it uses and what an annotator would draw."""

    images: torch.Tensor  # (n, 3, H, W) in [0, 1]
    evidence: np.ndarray  # (n, H, W) bool: the evidence the model uses
    annotation: np.ndarray  # (n, H, W) bool: the tumour mask
    donors: torch.Tensor  # (n, 3, H, W): unmarked normal tiles, the interventions' fill
    index: np.ndarray  # positions in the test split
    correct: int  # how many of them the model assigns to the target class


@dataclass(frozen=True)
class SeedRun:
    """One seed: the models, the tiles each explains, the test accuracy of each."""

    seed: int
    models: dict[str, nn.Module]
    tiles: dict[str, Tiles]
    accuracy: dict[str, float]
    mean: list[float]  # channel mean of the training tiles (the Mean occlusion's fill)

    def tiles_of(self, name: str) -> Tiles:
        """The tiles model ``name`` explains (a randomised model: its trained model's)."""
        return self.tiles[explained_by(name)]


def marked_set(dataset: ArrayDataset, split: str, seed: int) -> ArrayDataset:
    """``dataset`` with the pen mark on half its tiles, independently of the tissue, labelled
    by the mark (1 = marked); ``mask`` stays the tumour mask, ``pen`` holds the stroke."""
    marked = shortcuts.with_pen_marks(dataset, split, seed, cooccurrence=MARK_COOCCURRENCE)
    return ArrayDataset(
        marked.images,
        marked.extra["marked"].astype(np.int64),
        marked.masks,
        marked.nuclei_type,
        classes=("unmarked", "marked"),
        extra={**marked.extra, "tumour": dataset.labels},
    )


def _stack_images(dataset: ArrayDataset, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(dataset.images[rows])).permute(0, 3, 1, 2).float() / 255


def _pick(probs: np.ndarray, candidates: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """The first ``n`` candidates the model assigns to class 1; when there are fewer, the rest
    with the highest P(1) (so a weak model still has tiles; ``correct`` says how many)."""
    correct = candidates[probs[candidates, 1] > 0.5]
    if len(correct) >= n:
        return np.sort(correct[:n]), n
    others = candidates[probs[candidates, 1] <= 0.5]
    extra = others[np.argsort(-probs[others, 1], kind="stable")][: n - len(correct)]
    log.warning("only %d tiles classified as the target; %d more added", len(correct), len(extra))
    return np.sort(np.concatenate([correct, extra])), len(correct)


def _tiles(
    base: ArrayDataset,
    data: ArrayDataset,
    rows: np.ndarray,
    evidence: np.ndarray,
    donors: np.ndarray,
    correct: int,
) -> Tiles:
    return Tiles(
        _stack_images(data, rows),
        evidence,
        np.asarray(base.masks[rows], bool),
        _stack_images(base, donors[np.arange(len(rows)) % len(donors)]),
        rows,
        correct,
    )


def data_identity(params: Any, seed: int) -> dict[str, Any]:
    """The saliency tour's data key: the same settings share its clean model in the cache."""
    p = params
    return {
        "dataset": "synthetic-he",
        "n_train": p.n_train,
        "n_val": p.n_val,
        "size": p.tile_size,
        "seed": seed,
    }


def prepare_seed(params: Any, seed: int, store: Store) -> SeedRun:
    """Data, the clean and the Clever-Hans model (trained, or loaded from the cache), their
    randomised twins and the tiles each explains."""
    p = params
    device = resolve_device(p.device)
    kw = {"size": p.tile_size, "seed": seed}
    train, val, test = (
        get_dataset("synthetic-he", split, n=n, **kw)
        for split, n in (("train", p.n_train), ("val", p.n_val), ("test", p.n_test))
    )
    data_id = data_identity(p, seed)
    fit = dict(
        epochs=p.epochs, lr=p.lr, batch_size=p.batch_size, seed=seed, device=device, store=store
    )
    clean, _ = train_classifier(
        p.arch, train, val, data=data_id, desc=f"clean model, seed {seed}", **fit
    )
    marks = {"marks": "pen, independent of the tissue", "cooccurrence": MARK_COOCCURRENCE}
    hans, _ = train_classifier(
        p.arch,
        marked_set(train, "train", seed),
        marked_set(val, "val", seed),
        data={**data_id, **marks, "label": "marked"},
        desc=f"Clever-Hans model, seed {seed}",
        **fit,
    )
    models = {"clean": clean.model.to(device).eval(), "clever_hans": hans.model.to(device).eval()}
    for name in TRAINED:
        models[TWIN[name]] = sanity.randomise_top_layers(models[name], p.randomised_layers, seed)
    marked_test = marked_set(test, "test", seed)
    tumour = test.labels == 1
    is_marked = marked_test.labels == 1
    donors = np.flatnonzero(~tumour & ~is_marked)
    probs = {
        name: predict(models[name], make_loader(data, 64), device, desc=None)[0]
        for name, data in (("clean", test), ("clever_hans", marked_test))
    }
    rows, correct = _pick(probs["clean"], np.flatnonzero(tumour), p.n_tiles)
    tiles = {"clean": _tiles(test, test, rows, test.masks[rows].astype(bool), donors, correct)}
    rows, correct = _pick(probs["clever_hans"], np.flatnonzero(tumour & is_marked), p.n_tiles)
    pen = np.asarray(marked_test.extra["pen"][rows], bool)
    tiles["clever_hans"] = _tiles(test, marked_test, rows, pen, donors, correct)
    accuracy = {
        "clean": float((probs["clean"].argmax(1) == test.labels).mean()),
        "clever_hans": float((probs["clever_hans"].argmax(1) == marked_test.labels).mean()),
    }
    return SeedRun(seed, models, tiles, accuracy, train.images.reshape(-1, 3).mean(0) / 255)


# -- interventions: the evidence each model uses ------------------------------------------------
def intervene(
    images: torch.Tensor, evidence: np.ndarray, donors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(without the evidence, without the rest): the evidence pixels, then all other pixels,
    replaced by the donor tiles' pixels."""
    e = torch.as_tensor(np.asarray(evidence, bool))[:, None]
    return torch.where(e, donors, images), torch.where(e, images, donors)


def intervention_probs(model: nn.Module, tiles: Tiles) -> dict[str, np.ndarray]:
    """P(target) of the tiles, without their evidence and without the rest."""
    without_evidence, without_rest = intervene(tiles.images, tiles.evidence, tiles.donors)
    return {
        k: predict_proba(model, x, target=1)
        for k, x in (
            ("original", tiles.images),
            ("without evidence", without_evidence),
            ("without the rest", without_rest),
        )
    }


def intervention_rows(run: SeedRun) -> pd.DataFrame:
    """Per model and tile: P(target) of the tile, without its evidence, without the rest."""
    parts = []
    for name in (*TRAINED, "randomised"):
        t = run.tiles_of(name)
        prob = intervention_probs(run.models[name], t)
        parts.append(pd.DataFrame({"seed": run.seed, "model": name, "unit": t.index, **prob}))
    return pd.concat(parts, ignore_index=True)
