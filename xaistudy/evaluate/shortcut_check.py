"""Shortcut check: how far shape-blind baselines get on a dataset, next to a small CNN.

A dataset whose classes a colour statistic separates lets a model be right for the wrong
reason. For one dataset and seed, :func:`check` draws a training, a validation and a test set,
fits a logistic regression (scikit-learn) on each trivial feature set of :data:`BASELINES` and
trains the package's small CNN (:func:`xaistudy.models.build_classifier`,
:func:`xaistudy.models.fit`), and returns one row per test tile and method saying whether the
prediction was right. :func:`accuracy_table` turns those rows into accuracies with bootstrap
intervals over tiles (or patients) and seeds.

The diagnostics ``histogram without nuclei``, ``haematoxylin fraction`` and ``nuclear pixel
share`` say where a colour histogram's accuracy comes from: the colours of the nuclei, the amount
of haematoxylin, or simply how much of the tile is nucleus (ground truth, a shape quantity).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from skimage.color import rgb2hed
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, Dataset, TensorDataset

from xaistudy.core.store import Store
from xaistudy.data import synthetic
from xaistudy.data.datasets import get_dataset
from xaistudy.models import build_classifier, fit, make_loader, predict
from xaistudy.models.transforms import standardise_channels
from xaistudy.stats.claims import bootstrap_interval

log = logging.getLogger(__name__)

DATASETS = ("synthetic-he", "synthetic-grading", "synthetic-pcle")
CLASSES = {
    "synthetic-he": synthetic.HE_CLASSES,
    "synthetic-grading": synthetic.GRADES,
    "synthetic-pcle": synthetic.PCLE_CLASSES,
}
HIST_BINS = 16
H_QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # of the training pixels: haematoxylin thresholds
_PCLE_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}

#: the trivial baselines (features -> logistic regression), what they see, and the CNN
BASELINES: dict[str, str] = {
    "mean intensity": "mean grey level of the tile (1 feature)",
    "mean RGB": "mean of each colour channel (3 features)",
    "intensity statistics": "mean, standard deviation and 5/25/50/75/95th percentiles of the "
    "grey levels (7 features)",
    "outside-mask colour": "mean RGB of the pixels outside the evidence mask (3 features)",
    "colour histogram": f"{HIST_BINS}-bin histogram of each colour channel (48 features)",
    "histogram without nuclei": "the colour histogram of the pixels outside all nuclei "
    "(48 features)",
    "haematoxylin fraction": "share of pixels whose haematoxylin density (colour deconvolution) "
    f"exceeds the training pixels' {', '.join(f'{q:g}' for q in H_QUANTILES)} quantiles",
    "nuclear pixel share": "share of the tile covered by nuclei, from the ground truth: a shape "
    "quantity, not a colour (1 feature)",
}
CNN = "small CNN"
#: baselines that need a nuclei map (not measured on the pCLE frames)
NEEDS_NUCLEI = ("histogram without nuclei", "haematoxylin fraction", "nuclear pixel share")


@dataclass
class TileArrays:
    """A drawn set: uint8 images (N, H, W, 3), labels, evidence masks, nuclei maps and units."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    nuclei: np.ndarray  # bool (N, H, W): pixel belongs to a nucleus
    units: np.ndarray  # the bootstrap unit of each tile (tile index, or patient id for pCLE)

    def __len__(self) -> int:
        return len(self.labels)


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset '{dataset}'; allowed: {', '.join(DATASETS)}")


def draw(
    dataset: str, split: str, n: int, size: int, seed: int, store: Store | None = None
) -> TileArrays:
    """``n`` tiles of ``split`` (H&E: tiles; grading: tiles per class; pCLE: patients of 4
    frames), cached in ``store``."""
    _check_dataset(dataset)
    if dataset == "synthetic-pcle":
        return _draw_pcle(split, n, size, seed, store)
    if dataset == "synthetic-he":
        ds = get_dataset(dataset, split, n=n, size=size, seed=seed, store=store)
    else:
        ds = get_dataset(dataset, split, n_per_class=n, size=size, seed=seed, store=store)
    return TileArrays(ds.images, ds.labels, ds.masks, ds.nuclei_type > 0, np.arange(len(ds)))


PCLE_FRAMES = 4  # frames per patient in the shortcut check


def _draw_pcle(split: str, n: int, size: int, seed: int, store: Store | None) -> TileArrays:
    """pCLE frames of ``n`` patients drawn for this split alone (patients never shared)."""
    if split not in _PCLE_SEED_OFFSET:
        raise ValueError(f"unknown split '{split}'; allowed: {', '.join(_PCLE_SEED_OFFSET)}")

    def compute() -> dict[str, np.ndarray]:
        tiles = synthetic.pcle_set(n, PCLE_FRAMES, size, seed=seed + _PCLE_SEED_OFFSET[split])
        return {
            "images": np.stack([t.image for t in tiles]),
            "labels": np.array([t.label for t in tiles], np.int64),
            "masks": np.stack([t.mask for t in tiles]),
            "patient": np.array([t.meta["patient_id"] for t in tiles], np.int64),
        }

    params = {"split": split, "n_patients": n, "frames": PCLE_FRAMES, "size": size, "seed": seed}
    a = (store or Store()).cached_arrays("shortcut-pcle", params, compute)
    nuclei = np.zeros(a["masks"].shape, dtype=bool)
    return TileArrays(a["images"], a["labels"], a["masks"], nuclei, a["patient"])


# -- features ---------------------------------------------------------------------------------
def _histograms(images: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Per tile, the share of (kept) pixels in each of ``HIST_BINS`` bins of each channel."""
    n = len(images)
    bins = images.astype(np.int64) * HIST_BINS // 256  # (N, H, W, 3)
    codes = bins + HIST_BINS * np.arange(3)  # channel c uses bins c*B .. c*B + B-1
    weight = np.ones(images.shape[:3]) if keep is None else keep.astype(float)
    out = np.zeros((n, 3 * HIST_BINS))
    for i in range(n):
        for c in range(3):
            out[i] += np.bincount(codes[i, ..., c].ravel(), weight[i].ravel(), 3 * HIST_BINS)
    return out / np.maximum(weight.reshape(n, -1).sum(1), 1)[:, None]


def _outside_colour(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    keep = ~masks
    total = np.maximum(keep.reshape(len(keep), -1).sum(1), 1)
    return np.einsum("nhwc,nhw->nc", images.astype(float), keep.astype(float)) / total[:, None]


def _haematoxylin(images: np.ndarray) -> np.ndarray:
    """Per-pixel haematoxylin density (N, H, W) from colour deconvolution (scikit-image)."""
    return np.stack([rgb2hed(im)[..., 0] for im in images])


def _intensity_statistics(grey: np.ndarray) -> np.ndarray:
    flat = grey.reshape(len(grey), -1)
    pct = np.percentile(flat, [5, 25, 50, 75, 95], axis=1).T
    return np.column_stack([flat.mean(1), flat.std(1), pct])


def features(
    baseline: str, tiles: TileArrays, h_thresholds: np.ndarray | None = None
) -> np.ndarray:
    """The feature matrix (N, F) of ``baseline`` (a key of :data:`BASELINES`) for ``tiles``.

    ``haematoxylin fraction`` needs ``h_thresholds`` (see :func:`haematoxylin_thresholds`).
    """
    images = tiles.images
    grey = images.astype(float).mean(-1)
    if baseline == "mean intensity":
        return grey.reshape(len(grey), -1).mean(1)[:, None]
    if baseline == "mean RGB":
        return images.reshape(len(images), -1, 3).astype(float).mean(1)
    if baseline == "intensity statistics":
        return _intensity_statistics(grey)
    if baseline == "outside-mask colour":
        return _outside_colour(images, tiles.masks)
    if baseline == "colour histogram":
        return _histograms(images)
    if baseline == "histogram without nuclei":
        return _histograms(images, ~tiles.nuclei)
    if baseline == "haematoxylin fraction":
        if h_thresholds is None:
            raise ValueError("haematoxylin fraction needs h_thresholds")
        dens = _haematoxylin(images).reshape(len(images), -1)
        return np.stack([(dens > t).mean(1) for t in h_thresholds], axis=1)
    if baseline == "nuclear pixel share":
        return tiles.nuclei.reshape(len(tiles), -1).mean(1)[:, None]
    raise ValueError(f"unknown baseline '{baseline}'; allowed: {', '.join(BASELINES)}")


def haematoxylin_thresholds(tiles: TileArrays) -> np.ndarray:
    """The :data:`H_QUANTILES` of the haematoxylin density over all pixels of ``tiles``."""
    return np.quantile(_haematoxylin(tiles.images), H_QUANTILES)


def baseline_predictions(baseline: str, train: TileArrays, test: TileArrays) -> np.ndarray:
    """Labels a standardised logistic regression on ``baseline``'s features predicts for test."""
    thresholds = haematoxylin_thresholds(train) if baseline == "haematoxylin fraction" else None
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(features(baseline, train, thresholds), train.labels)
    return clf.predict(features(baseline, test, thresholds))


# -- the small CNN ------------------------------------------------------------------------------
class _Dihedral(Dataset):
    """Training tiles under a random rotation by 90° steps and a random flip (torch RNG)."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[i]
        x = torch.rot90(x, int(torch.randint(0, 4, ())), (1, 2))
        return (x.flip(2) if bool(torch.rand(()) < 0.5) else x), y


def _tensors(tiles: TileArrays, standardise: bool = True) -> TensorDataset:
    """Images as float tensors in [0, 1]; with ``standardise`` each tile's channels are shifted
    and scaled to mean 0 and standard deviation 1 (the tile's stain strength is removed)."""
    x = torch.from_numpy(np.ascontiguousarray(tiles.images)).permute(0, 3, 1, 2).float() / 255
    if standardise:
        x = standardise_channels(x)
    return TensorDataset(x, torch.from_numpy(tiles.labels.astype(np.int64)))


@dataclass(frozen=True)
class CNNSettings:
    """How the small CNN is trained (part of its cache key)."""

    epochs: int = 12
    lr: float = 1e-3
    batch_size: int = 32
    widths: tuple[int, ...] = (8, 16, 32, 64)
    standardise: bool = True  # per-tile channel standardisation of the input


def cnn_predictions(
    train: TileArrays,
    val: TileArrays,
    test: TileArrays,
    n_classes: int,
    seed: int,
    settings: CNNSettings,
    key: dict[str, object],
    store: Store | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Test labels predicted by the small CNN trained on ``train`` (best validation loss).

    ``key`` identifies the data (dataset, sizes, seed); the training settings are added to it.
    """
    torch.manual_seed(seed)
    model = build_classifier("small_cnn", n_classes, widths=settings.widths)
    params = {**key, **settings.__dict__, "widths": list(settings.widths), "augment": "dihedral"}
    result = fit(
        model,
        make_loader(
            _Dihedral(_tensors(train, settings.standardise)),
            settings.batch_size,
            shuffle=True,
            seed=seed,
        ),
        DataLoader(_tensors(val, settings.standardise), batch_size=64),
        epochs=settings.epochs,
        lr=settings.lr,
        patience=None,
        seed=seed,
        device=device,
        store=store or Store(),
        kind="shortcut-cnn",
        params=params,
        desc=f"small CNN {key.get('dataset', '')} seed {seed}",
    )
    test_loader = DataLoader(_tensors(test, settings.standardise), batch_size=64)
    probs, _ = predict(result.model, test_loader, device, None)
    return probs.argmax(1)


# -- one dataset, one seed ----------------------------------------------------------------------
@dataclass(frozen=True)
class CheckSizes:
    """Set sizes of one dataset's check (H&E: tiles; grading: tiles per class; pCLE: patients)."""

    n_train: int
    n_val: int
    n_test: int
    size: int = 64


def check(
    dataset: str,
    seed: int,
    sizes: CheckSizes,
    settings: CNNSettings = CNNSettings(),
    store: Store | None = None,
    device: str = "auto",
    with_cnn: bool = True,
) -> pd.DataFrame:
    """One row per test tile and method: ``dataset, seed, unit, tile, method, label, value``
    (``value`` = 1 when the method's prediction is right)."""
    _check_dataset(dataset)
    store = store or Store()
    sets = {
        split: draw(dataset, split, n, sizes.size, seed, store)
        for split, n in (("train", sizes.n_train), ("val", sizes.n_val), ("test", sizes.n_test))
    }
    train, val, test = sets["train"], sets["val"], sets["test"]
    methods = [b for b in BASELINES if dataset != "synthetic-pcle" or b not in NEEDS_NUCLEI]
    predictions: dict[str, np.ndarray] = {b: baseline_predictions(b, train, test) for b in methods}
    if with_cnn:
        key = {"dataset": dataset, **sizes.__dict__, "seed": seed}
        n_classes = len(CLASSES[dataset])
        predictions[CNN] = cnn_predictions(
            train, val, test, n_classes, seed, settings, key, store, device
        )
    rows = [
        pd.DataFrame(
            {
                "dataset": dataset,
                "seed": seed,
                "unit": test.units,
                "tile": np.arange(len(test)),
                "method": method,
                "label": test.labels,
                "value": (pred == test.labels).astype(float),
            }
        )
        for method, pred in predictions.items()
    ]
    return pd.concat(rows, ignore_index=True)


# -- summary ------------------------------------------------------------------------------------
def chance(dataset: str) -> float:
    """Accuracy of a guess on the balanced test sets: 1 / number of classes."""
    _check_dataset(dataset)
    return 1.0 / len(CLASSES[dataset])


def accuracy_table(results: pd.DataFrame, n_boot: int = 1000) -> pd.DataFrame:
    """Accuracy of every dataset and method with a 95 % bootstrap interval over units and seeds,
    next to chance."""
    rows = []
    order: Callable[[str], int] = lambda m: [*BASELINES, CNN].index(m)  # noqa: E731
    for (dataset, method), g in results.groupby(["dataset", "method"], sort=False):
        est, low, high = bootstrap_interval(g, n_boot=n_boot)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "accuracy": est,
                "ci_low": low,
                "ci_high": high,
                "chance": chance(dataset),
                "above_chance": est - chance(dataset),
                "test_tiles": int(g.groupby("seed").size().iloc[0]),
                "seeds": " ".join(str(s) for s in sorted(g["seed"].unique())),
            }
        )
    table = pd.DataFrame(rows)
    table["_order"] = table["method"].map(order)
    table["_ds"] = table["dataset"].map(DATASETS.index)
    return (
        table.sort_values(["_ds", "_order"]).drop(columns=["_order", "_ds"]).reset_index(drop=True)
    )
