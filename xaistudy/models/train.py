"""Training and prediction for classifiers: deterministic, cached, resumable.

:func:`fit` trains with cross-entropy and early stopping on the validation loss. Given a
:class:`~xaistudy.core.store.Store` it returns a finished result without training, checkpoints
as it trains (weights, optimizer, history and every random-number state; at most every
:data:`~xaistudy.models.checkpoints.INTERVAL_S` seconds) and resumes an interrupted run
so that it ends with exactly the weights of an uninterrupted one.

Determinism needs a seeded shuffle: build training loaders with :func:`make_loader`, or pass
``generator=torch.Generator().manual_seed(seed)`` to ``DataLoader`` yourself.

A trained model is keyed by its weights: :func:`weights_hash` (also
:attr:`TrainResult.weights_hash`) is the cache key of everything computed from it (maps,
scores), so results follow the weights, however they were made or loaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store, atomic_write_bytes
from xaistudy.models import precision as numerics
from xaistudy.models import random_states
from xaistudy.models.checkpoints import CheckpointClock
from xaistudy.models.classifiers import resolve_device

log = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamax", "sgd")
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
CHECKPOINT_SUFFIX = ".ckpt.pt"

Batch = tuple[torch.Tensor, torch.Tensor]


# -- seeding and loaders --------------------------------------------------------------------
def _seed_worker(worker_id: int) -> None:
    """Seed ``random`` and NumPy in a loader worker from its torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    **kwargs: Any,
) -> DataLoader:
    """A ``DataLoader`` whose shuffling (and worker seeding) is fixed by ``seed``."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        **kwargs,
    )


def split_batch(batch: Any) -> Batch:
    """``(x, y)`` from a ``(x, y, ...)`` tuple/list or a dict with ``image`` and ``label``."""
    if isinstance(batch, Mapping):
        return batch["image"], batch["label"]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise TypeError(
        f"expected (image, label) tuples or dicts with 'image' and 'label', got {type(batch)}"
    )


# -- one epoch ------------------------------------------------------------------------------
def make_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam, Adamax or SGD (momentum 0.9) over the trainable parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamax":
        return torch.optim.Adamax(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def _cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output, target.long())


def _accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    return float((output.argmax(1) == target).float().mean())


@dataclass(frozen=True)
class Objective:
    """What training minimises and reports, and where input and target sit in a batch.

    ``loss(output, target)`` is a batch mean; ``score(output, target)`` a batch-mean float
    (accuracy for classification, e.g. Dice for segmentation), reported as ``*_acc``.
    """

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _cross_entropy
    score: Callable[[torch.Tensor, torch.Tensor], float] = _accuracy
    batch: Callable[[Any], Batch] = split_batch


CLASSIFICATION = Objective()


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    objective: Objective = CLASSIFICATION,
    *,
    precision: str = "fp32",
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, float]:
    """One training pass; returns (mean loss, mean score). ``precision``: the forward pass
    under autocast (the loss in float32); ``scaler``: a gradient scaler (fp16)."""
    model.train()
    scaler = scaler or numerics.grad_scaler(device, precision)
    total_loss, total_score, count = 0.0, 0.0, 0
    for batch in loader:
        x, y = objective.batch(batch)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        with numerics.autocast(device, precision):
            output = model(x)
        output = output.float()
        loss = objective.loss(output, y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # optimizer.step() unless fp16 (then skipped on overflow)
        scaler.update()
        total_loss += loss.item() * len(y)
        total_score += objective.score(output.detach(), y) * len(y)
        count += len(y)
    return total_loss / max(count, 1), total_score / max(count, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    objective: Objective = CLASSIFICATION,
    *,
    precision: str = "fp32",
) -> tuple[float, float]:
    """Mean loss and mean score of ``model`` on ``loader`` (eval mode; forward passes in
    ``precision``, the loss in float32)."""
    model.eval()
    total_loss, total_score, count = 0.0, 0.0, 0
    for batch in loader:
        x, y = objective.batch(batch)
        x, y = x.to(device), y.to(device)
        with numerics.autocast(device, precision):
            output = model(x)
        output = output.float()
        total_loss += objective.loss(output, y).item() * len(y)
        total_score += objective.score(output, y) * len(y)
        count += len(y)
    return total_loss / max(count, 1), total_score / max(count, 1)


# -- training state and checkpoints ---------------------------------------------------------
def weights_hash(model: nn.Module) -> str:
    """A short hash of ``model``'s parameters and buffers (names, dtypes, shapes, values): the
    one cache key of a trained model and of everything computed from it."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class TrainResult:
    """What :func:`fit` returns."""

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    stopped_early: bool
    from_cache: bool = False

    @property
    def weights_hash(self) -> str:
        """:func:`weights_hash` of the trained model: the key of what is computed from it."""
        return weights_hash(self.model)


@dataclass
class _Progress:
    """Training progress carried across epochs (and checkpoints)."""

    epoch: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def record(self, row: dict[str, float], model: nn.Module) -> None:
        """Add an epoch's metrics; keep the weights when the validation loss improved."""
        self.epoch = int(row["epoch"])
        self.rows.append(row)
        if row["val_loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = row["val_loss"], self.epoch, 0
            self.best_state = _cpu_state(model)
        else:
            self.bad_epochs += 1

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS)).astype({"epoch": int})


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _history_dict(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    return {col: [float(r[col]) for r in rows] for col in HISTORY_COLUMNS}


def _history_rows(history: Mapping[str, list[float]]) -> list[dict[str, float]]:
    n = len(history["epoch"])
    return [{col: history[col][i] for col in HISTORY_COLUMNS} for i in range(n)]


def _save_checkpoint(
    store: Store,
    kind: str,
    params: Mapping[str, Any],
    settings: dict[str, Any],
    progress: _Progress,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    scaler: torch.amp.GradScaler,
) -> None:
    state = {
        "settings": settings,
        "epoch": progress.epoch,
        "history": _history_dict(progress.rows),
        "best_state": progress.best_state,
        "best_loss": progress.best_loss,
        "best_epoch": progress.best_epoch,
        "bad_epochs": progress.bad_epochs,
        "model": _cpu_state(model),
        "optimizer": optimizer.state_dict(),
        "rng": random_states.capture(loader),
    }
    if scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(store.path(kind, params, CHECKPOINT_SUFFIX), buf.getvalue())


def _resume(
    store: Store,
    kind: str,
    params: Mapping[str, Any],
    settings: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    scaler: torch.amp.GradScaler,
) -> _Progress:
    """Restore a checkpoint of this run if there is one, else a fresh start."""
    path = store.path(kind, params, CHECKPOINT_SUFFIX)
    if not path.exists():
        return _Progress()
    ckpt = store.load_state(kind, params, CHECKPOINT_SUFFIX)  # None when corrupt
    if ckpt is None:
        return _Progress()
    if ckpt["settings"] != settings:
        log.warning("checkpoint %s was made with other settings; starting afresh", path.name)
        return _Progress()
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    random_states.restore(ckpt["rng"], loader)
    if "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    log.info("resuming %s from epoch %d (%s)", kind, ckpt["epoch"], path.name)
    return _Progress(
        epoch=ckpt["epoch"],
        rows=_history_rows(ckpt["history"]),
        best_state=ckpt["best_state"],
        best_loss=ckpt["best_loss"],
        best_epoch=ckpt["best_epoch"],
        bad_epochs=ckpt["bad_epochs"],
    )


def _from_cache(
    cached: Mapping[str, Any], model: nn.Module, settings: dict[str, Any], device: torch.device
) -> TrainResult:
    if cached.get("settings") != settings:
        log.warning(
            "cached result was trained with %s, not %s; params should include the training "
            "settings",
            cached.get("settings"),
            settings,
        )
    model.load_state_dict(cached["model"])
    model.to(device).eval()
    return TrainResult(
        model=model,
        history=_Progress(rows=_history_rows(cached["history"])).history(),
        best_epoch=int(cached["best_epoch"]),
        stopped_early=bool(cached["stopped_early"]),
        from_cache=True,
    )


# -- fit / predict --------------------------------------------------------------------------
def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader,
    *,
    epochs: int,
    lr: float = 1e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    patience: int | None = 10,
    seed: int = 0,
    device: str | torch.device = "auto",
    store: Store | None = None,
    kind: str = "classifier",
    params: Mapping[str, Any] | None = None,
    desc: str | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    objective: Objective = CLASSIFICATION,
    precision: str = "fp32",
) -> TrainResult:
    """Train ``model`` (cross-entropy by default); keep the weights of the best validation loss.

    Stops early after ``patience`` epochs without a lower validation loss (None: never).
    With ``store`` (then ``params`` is required and must identify the model, data and
    training settings): a stored result of ``(kind, params)`` is returned without training;
    otherwise a checkpoint (written after an epoch, at most every
    :data:`~xaistudy.models.checkpoints.INTERVAL_S` seconds) lets an interrupted run resume
    exactly.
    ``on_epoch_end(epoch, metrics)`` is called after each epoch's checkpoint. ``objective``
    sets the loss, the reported score and how a batch splits into input and target (default:
    classification with accuracy); put what it is into ``params`` when caching. ``precision``:
    the forward passes under autocast (:mod:`xaistudy.models.precision`; fp16 with a gradient
    scaler); the weights stay float32.
    Shuffle with a seeded generator (see :func:`make_loader`) for reproducible runs.
    """
    if store is not None and params is None:
        raise ValueError("fit: pass params (what identifies this model) together with store")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    dev = resolve_device(device)
    settings = {
        "epochs": epochs,
        "lr": lr,
        "optimizer": optimizer,
        "weight_decay": weight_decay,
        "patience": patience,
        "seed": seed,
    }
    if numerics.check_precision(precision) != "fp32":
        settings["precision"] = precision
    if store is not None:
        cached = store.load_state(kind, params)
        if cached is not None:
            log.info("loaded trained %s from %s", kind, store.path(kind, params, ".pt"))
            return _from_cache(cached, model, settings, dev)

    seed_everything(seed)
    model.to(dev)
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    scaler = numerics.grad_scaler(dev, precision)
    progress = _Progress()
    if store is not None:
        progress = _resume(store, kind, params, settings, model, opt, train_loader, scaler)

    def done() -> bool:
        return patience is not None and progress.bad_epochs >= patience

    bar = tqdm(total=epochs, initial=progress.epoch, desc=desc or kind, unit="epoch")
    clock = CheckpointClock()
    for epoch in range(progress.epoch + 1, epochs + 1):
        if done():
            break
        train_loss, train_acc = train_one_epoch(
            model, train_loader, opt, dev, objective, precision=precision, scaler=scaler
        )
        val_loss, val_acc = evaluate(model, val_loader, dev, objective, precision=precision)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
        }
        progress.record(row, model)
        if store is not None and clock.due():
            _save_checkpoint(
                store, kind, params, settings, progress, model, opt, train_loader, scaler
            )
        bar.update(1)
        bar.set_postfix(
            loss=f"{train_loss:.3f}",
            acc=f"{train_acc:.2f}",
            val_loss=f"{val_loss:.3f}",
            val_acc=f"{val_acc:.2f}",
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    bar.close()

    stopped_early = progress.epoch < epochs
    if progress.best_state is not None:
        model.load_state_dict(progress.best_state)
    model.eval()
    if stopped_early:
        log.info(
            "%s stopped early after epoch %d (best %d)", kind, progress.epoch, progress.best_epoch
        )
    if store is not None:
        store.save_state(
            kind,
            params,
            {
                "model": _cpu_state(model),
                "history": _history_dict(progress.rows),
                "best_epoch": progress.best_epoch,
                "stopped_early": stopped_early,
                "settings": settings,
            },
        )
        store.path(kind, params, CHECKPOINT_SUFFIX).unlink(missing_ok=True)
    return TrainResult(model, progress.history(), progress.best_epoch, stopped_early)


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    device: str | torch.device = "auto",
    desc: str | None = "predict",
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(N, C)`` and labels ``(N,)`` of ``model`` over ``loader``."""
    dev = resolve_device(device)
    model.to(dev).eval()
    probs, labels = [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        x, y = split_batch(batch)
        probs.append(torch.softmax(model(x.to(dev)), dim=1).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    if not probs:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()
