"""The IBO experiment (Afshar et al.) as plain steps the chapter calls in order.

data (synthetic-he tiles or CAMELYON16 patches) -> classifier -> DDPM on normal tiles -> CAM
heatmaps of tumour test tiles -> k-means levels -> six occlusion strategies, each cumulative
over Mask_1..Mask_4 -> tumour probability after every step -> tables: perceptual / OoD
(Table 1), IoU ground-truth ranking (Table 2), deletion AUC and rankings (Tables 3-8), ranking
agreement (Table 9). Expensive results (models, heatmaps, occluded images) are cached in the
artifact store under keys that name everything that made them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from xaistudy.data import stain
from xaistudy.data.datasets import get_dataset
from xaistudy.data.tiles import Tiles, write_npy
from xaistudy.evaluate import faithfulness, occlusion, perceptual
from xaistudy.evaluate.stats import bootstrap_ci
from xaistudy.explain import METHODS, explain
from xaistudy.models.classifiers import build_classifier, target_layer
from xaistudy.models.train import fit, make_loader
from xaistudy.store import Store

log = logging.getLogger(__name__)

#: the paper's seven CAMs, in its order
CAMS = ("gradcam", "gradcam++", "xgradcam", "ablationcam", "eigencam", "scorecam", "fullgrad")
STRATEGY_ORDER = ("blackening", "histogram", "mean", "nli", "blurring", "ibo")


def parse_list(value: str, allowed: Sequence[str]) -> list[str]:
    """``"all"`` -> ``allowed``; else the comma-separated names, in ``allowed``'s order."""
    if value == "all":
        return list(allowed)
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown name '{bad[0]}'; allowed: {', '.join(allowed)}")
    return [a for a in allowed if a in names]


# -- data -----------------------------------------------------------------------------------
@dataclass
class Split:
    """Images (N, 3, H, W) in [0, 1] (:class:`~xaistudy.data.tiles.Tiles`, read from a
    memory-mapped file), labels (N,), tumour masks (N, H, W) bool (memory-mapped); for real
    datasets the fingerprint of the files the tiles were read from and the slides' names."""

    images: Tiles
    labels: torch.Tensor
    masks: np.ndarray
    fingerprint: str = ""
    slides: tuple[str, ...] = ()


def load_splits(
    tile_size: int,
    n_train: int,
    n_val: int,
    n_test: int,
    ddpm_tiles: int,
    stain_norm: bool,
    seed: int,
    store: Store | None = None,
    dataset: str = "synthetic-he",
    data_root: str | None = None,
    data_options: Mapping[str, Any] | None = None,
    stain_reference_seed: int | None = None,
) -> tuple[dict[str, Split], np.ndarray]:
    """train / val / test / ddpm splits of a tumour-tiles dataset, optionally stain-normalised.

    ``dataset`` is a registered tumour-tiles dataset (``synthetic-he``, ``camelyon16``) read
    from ``data_root`` with the loader options ``data_options``. The DDPM split is the normal
    tiles among the first ``2 * ddpm_tiles`` training tiles (the training split is loaded once
    at the larger of both sizes). The (normalised) tiles and masks are written in chunks to
    memory-mapped files in the store, so a split is never held in memory as floats. Returns
    the splits and the reference tile the stain normaliser was fitted on: the first normal
    training tile of the draw with ``stain_reference_seed`` (default ``seed``). Seeds that
    share a reference share one colour space, so a model of one seed's tiles (the shared
    DDPM) fits the others'.
    """
    store = store or Store()
    sizes = {"train": max(n_train, 2 * ddpm_tiles), "val": n_val, "test": n_test}
    ref_seed = seed if stain_reference_seed is None else stain_reference_seed

    def draw(name: str, n: int, draw_seed: int):
        return get_dataset(dataset, name, data_root=data_root or None, n=n, size=tile_size,
                           seed=draw_seed, store=store, **dict(data_options or {}))  # fmt: skip

    def first_normal(ds) -> np.ndarray:
        labels = np.asarray(ds.labels)
        if not (labels == 0).any():
            raise ValueError(f"{dataset} training draw (seed {ref_seed}) has no normal tile")
        return np.array(ds.images[int(np.flatnonzero(labels == 0)[0])])

    reference = None if ref_seed == seed else first_normal(draw("train", sizes["train"], ref_seed))
    splits: dict[str, Split] = {}
    normalise = None
    for name, n in sizes.items():  # one split's raw arrays in memory at a time
        ds = draw(name, n, seed)
        images, labels = ds.images, np.asarray(ds.labels)
        if reference is None:
            reference = first_normal(ds)
        if stain_norm and normalise is None:
            normalizer = stain.fit_normalizer(reference)
            normalise = functools.partial(stain.normalize, normalizer=normalizer)
        fingerprint = getattr(ds, "fingerprint", "")
        key = {"dataset": dataset, "data_options": dict(data_options or {}), "split": name,
               "n": n, "size": tile_size, "seed": seed, "stain_norm": stain_norm,
               "files": fingerprint}  # fmt: skip
        if stain_norm and ref_seed != seed:
            key["stain_reference_seed"] = ref_seed
        tiles = _stored_npy(store, "ibo-tiles", key, images, normalise)
        masks = _stored_npy(store, "ibo-masks", key, ds.masks, lambda m: m.astype(bool))
        splits[name] = Split(Tiles(tiles), torch.from_numpy(labels.astype(np.int64)), masks,
                             fingerprint, tuple(getattr(ds, "slides", ())))  # fmt: skip
        del ds, images
    train = splits["train"]
    normal = np.flatnonzero(train.labels.numpy()[: 2 * ddpm_tiles] == 0)
    splits["ddpm"] = _rows(train, normal)
    splits["train"] = _rows(train, np.arange(n_train))
    return splits, reference


def _stored_npy(
    store: Store, kind: str, key: Mapping[str, Any], array: np.ndarray, transform=None
) -> np.ndarray:
    """``transform(array)`` as a read-only memory-mapped file of the store (written once)."""
    path = store.path(kind, key, ".npy")
    if path.is_file():
        try:
            return np.load(path, mmap_mode="r")
        except ValueError:  # a corrupt file: computed again
            path.unlink()
    return write_npy(path, array, transform)


def _rows(split: Split, rows: np.ndarray) -> Split:
    return Split(split.images.subset(rows), split.labels[torch.as_tensor(rows)],
                 split.masks[rows], split.fingerprint, split.slides)  # fmt: skip


def data_identity(
    dataset: str, data_options: Mapping[str, Any] | None, splits: Mapping[str, Split]
) -> dict[str, Any]:
    """What identifies a real dataset's tiles in cache keys: its options and the fingerprint
    of the files each split was read from. Empty for generated datasets, whose tiles the
    chapter's own parameters already fix (so their cache keys stay as they were)."""
    from xaistudy.data.datasets import get_spec

    if not get_spec(dataset).needs_root:
        return {}
    return {
        "dataset": dataset,
        "data_options": dict(data_options or {}),
        "files": {k: splits[k].fingerprint for k in ("train", "val", "test")},
    }


class LabelledTiles(Dataset):
    """(image, label) pairs of a split, each image read when the loader asks for it."""

    def __init__(self, images: Tiles | torch.Tensor, labels: torch.Tensor):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


# -- classifier -----------------------------------------------------------------------------
def train_classifier(
    splits: Mapping[str, Split],
    name: str,
    pretrained: bool | str,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str,
    store: Store | None,
    key: Mapping[str, Any],
) -> tuple[nn.Module, pd.DataFrame]:
    """Tumour-vs-normal classifier trained on the train split (best validation loss kept).

    ``pretrained``: False, True (the standard local ImageNet file) or a weights file path.
    """
    torch.manual_seed(seed)
    model = build_classifier(name, 2, pretrained=pretrained)
    train = LabelledTiles(splits["train"].images, splits["train"].labels)
    val = LabelledTiles(splits["val"].images, splits["val"].labels)
    result = fit(
        model,
        make_loader(train, batch_size, shuffle=True, seed=seed),
        make_loader(val, batch_size),
        epochs=epochs,
        lr=lr,
        patience=None,
        seed=seed,
        device=device,
        store=store,
        kind="ibo-classifier",
        params=dict(key),
        desc=f"{name} (tumour vs normal)",
    )
    return result.model.eval(), result.history


@torch.no_grad()
def tumour_probability(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> np.ndarray:
    """P(tumour) for each image (N, 3, H, W)."""
    model.eval()
    dev = next(model.parameters()).device
    out = [
        torch.softmax(model(images[i : i + batch_size].to(dev)), dim=1)[:, 1].cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def test_metrics(model: nn.Module, split: Split) -> dict[str, float]:
    """Accuracy and tumour F1 on a split."""
    prob = tumour_probability(model, split.images)
    pred = (prob >= 0.5).astype(int)
    y = split.labels.numpy()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_tumour": float(f1_score(y, pred, pos_label=1, zero_division=0)),
        "n": int(len(y)),
    }


def select_samples(labels: torch.Tensor, n: int, seed: int) -> np.ndarray:
    """``n`` random tumour tiles of a split (sorted indices), as the paper's 100 test samples."""
    tumour = np.flatnonzero(labels.numpy() == 1)
    if len(tumour) == 0:
        raise ValueError("the test split has no tumour tiles")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 5]))
    return np.sort(rng.choice(tumour, size=min(n, len(tumour)), replace=False))


# -- heatmaps and levels --------------------------------------------------------------------
def heatmaps(
    model: nn.Module, images: torch.Tensor, methods: Sequence[str], batch_size: int = 32
) -> np.ndarray:
    """CAM maps (S, M, H, W) in [0, 1] for the tumour class, one per image and method."""
    layer = target_layer(model)
    out = []
    for method in tqdm(methods, desc="heatmaps", leave=False):
        maps = [
            explain(method, model, images[i : i + batch_size], 1, layer=layer)
            for i in range(0, len(images), batch_size)
        ]
        out.append(np.concatenate(maps))
    return np.stack(out, axis=1).astype(np.float32)


def method_label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


# -- occlusion ------------------------------------------------------------------------------
def image_seeds(seed: int, sample_ids: Sequence[int], n_methods: int) -> np.ndarray:
    """One seed per (sample, method) image, fixed by the sample's index, not by the batch."""
    return np.array(
        [[(seed * 1_000_003 + int(s)) * 16 + m for m in range(n_methods)] for s in sample_ids],
        dtype=np.int64,
    )


def noise_seeds(
    seed: int, sample_ids: Sequence[int], n_methods: int, replicate: int = 0
) -> np.ndarray:
    """Common random numbers: one noise seed per (sample, replicate), the same for every
    method of the sample (S, M). Two methods with the same heatmap get the same occlusion;
    different replicates draw independent noise."""
    base = [
        int(np.random.SeedSequence([seed, int(s), replicate, 17]).generate_state(1)[0] >> 4)
        for s in sample_ids
    ]
    return np.repeat(np.array(base, dtype=np.int64)[:, None], n_methods, axis=1)


def occlude_all(
    strategy: str,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    **options: Any,
) -> torch.Tensor:
    """Occluded images (S, M, n_masks, 3, H, W) of one strategy.

    Every (sample, method) image goes through one batched call per level (RePaint included).
    """
    s, m = levels.shape[:2]
    flat_levels = levels.reshape(s * m, *levels.shape[2:])
    flat_seeds = np.asarray(seeds).reshape(-1)
    first, inverse = _unique_jobs(flat_levels, flat_seeds, n_masks, m)
    picked = torch.as_tensor(first // m)
    out = occlusion.occlude_levels(
        strategy,
        images[picked],
        flat_levels[first],
        flat_seeds[first].tolist(),
        n_masks=n_masks,
        **options,
    )
    return out[torch.as_tensor(inverse)].reshape(s, m, n_masks, *images.shape[1:])


def _unique_jobs(
    levels: np.ndarray, seeds: np.ndarray, n_masks: int, n_methods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the distinct (sample, seed, occluded levels) jobs among the flat (S * M)
    images, and for every image the job that gives its result (identical heatmaps with the
    same noise give identical occlusions, so they are computed once)."""
    seen: dict[tuple, int] = {}
    first, inverse = [], []
    for i in range(len(levels)):
        clipped = np.where(levels[i] <= n_masks, levels[i], 0).astype(np.int8)
        key = (i // n_methods, int(seeds[i]), clipped.tobytes())
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse.append(seen[key])
    return np.array(first, dtype=np.int64), np.array(inverse, dtype=np.int64)


#: samples occluded and measured together: bounds the memory of a strategy's evaluation
#: (at 512 px, 8 samples x 7 methods x 4 masks are 0.7 GB of float32 images) whatever n_samples
SAMPLE_CHUNK = 8


def evaluate_strategy(
    strategy: str,
    model: nn.Module,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    ood: perceptual.Mahalanobis,
    n_examples: int = 2,
    alexnet_weights: str = "",
    sample_chunk: int = SAMPLE_CHUNK,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Occlude with ``strategy`` and measure everything the tables need, per (sample, method).

    Returns ``prob`` (S, M, n_masks + 1): P(tumour) of the original then after every mask;
    ``ssim``, ``feature_lpips``, ``mahalanobis`` and, with an AlexNet weights file
    (``alexnet_weights``, or the standard local file when empty), ``lpips_alex``
    (S, M, n_masks); ``examples`` (n_examples, M, n_masks, H, W, 3) uint8; ``seconds`` and
    ``unet_calls`` (UNet forward calls, IBO only). The samples are processed ``sample_chunk``
    at a time (each sample's occlusion depends on its own seeds only).
    """
    parts = []
    for i in tqdm(range(0, len(images), sample_chunk), desc=strategy, leave=False,
                  disable=len(images) <= sample_chunk):  # fmt: skip
        j = i + sample_chunk
        parts.append(_evaluate_samples(strategy, model, images[i:j], levels[i:j], seeds[i:j],
                                       n_masks, ood, alexnet_weights, max(n_examples - i, 0),
                                       **options))  # fmt: skip
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in _TOTALS}
    out.update({k: np.sum([p[k] for p in parts]) for k in _TOTALS})
    return out


_TOTALS = ("seconds", "unet_calls")


def _evaluate_samples(
    strategy: str,
    model: nn.Module,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    ood: perceptual.Mahalanobis,
    alexnet_weights: str,
    n_examples: int,
    **options: Any,
) -> dict[str, np.ndarray]:
    import time

    from xaistudy.evaluate.inpaint import count_unet_calls

    unet = options.get("unet")
    start = time.perf_counter()
    if unet is not None:
        with count_unet_calls(unet) as counter:
            occluded = occlude_all(strategy, images, levels, seeds, n_masks, **options)
        calls = counter.calls
    else:
        occluded = occlude_all(strategy, images, levels, seeds, n_masks, **options)
        calls = 0
    seconds = time.perf_counter() - start
    s, m, k = occluded.shape[:3]
    flat = occluded.reshape(-1, *images.shape[1:]).float()
    x = images[:, None, None].expand(s, m, k, *images.shape[1:]).reshape(-1, *images.shape[1:])
    p0 = tumour_probability(model, images)
    pk = tumour_probability(model, flat).reshape(s, m, k)
    out = {
        "prob": np.concatenate([np.broadcast_to(p0[:, None, None], (s, m, 1)), pk], axis=2),
        "ssim": perceptual.ssim(x, flat).reshape(s, m, k),
        "feature_lpips": perceptual.feature_distance(model, x, flat).reshape(s, m, k),
        "mahalanobis": ood.score(perceptual.penultimate_features(model, flat)).reshape(s, m, k),
        "examples": (occluded[:n_examples].permute(0, 1, 2, 4, 5, 3).clamp(0, 1) * 255)
        .round()
        .to(torch.uint8)
        .numpy(),
        "seconds": np.array(seconds),
        "unet_calls": np.array(calls),
    }
    if perceptual.alexnet_weights_path(alexnet_weights) is not None:
        lpips = perceptual.lpips_alex(x, flat, weights=alexnet_weights)
        out["lpips_alex"] = lpips.reshape(s, m, k)
    return out


METRIC_LABELS = {
    "lpips_alex": "LPIPS (AlexNet)",
    "ssim": "SSIM (substitute; 1 = identical)",
    "feature_lpips": "LPIPS-form distance on the classifier's features (substitute)",
    "mahalanobis": "Mahalanobis OoD score (penultimate features)",
}


def perceptual_table(
    results: Mapping[str, Mapping[str, np.ndarray]], reference_scores: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Table 1: per strategy and metric, the mean over (sample, method) after each mask.

    ``reference_scores`` adds Mahalanobis rows for unoccluded images (same value in every
    column), the scale the occluded images' scores are read against.
    """
    rows = []
    for strategy, res in results.items():
        for metric in METRIC_LABELS:
            if metric not in res:
                continue
            values = np.asarray(res[metric])
            means = values.reshape(-1, values.shape[-1]).mean(axis=0)
            rows.append(
                {
                    "strategy": strategy,
                    "metric": metric,
                    **{f"Mask_{i + 1}": float(v) for i, v in enumerate(means)},
                }
            )
    table = pd.DataFrame(rows)
    masks = [c for c in table.columns if c.startswith("Mask_")]
    for name, scores in reference_scores.items():
        row = {"strategy": name, "metric": "mahalanobis"}
        row.update({c: float(np.mean(scores)) for c in masks})
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return table


def iou_table(ious: np.ndarray, methods: Sequence[str], n_boot: int, seed: int) -> pd.DataFrame:
    """Table 2: mean IoU per method (S, M input) with a bootstrap CI and the ground-truth rank."""
    means = np.nanmean(ious, axis=0)
    ranks = faithfulness.rank(means, higher_is_better=True)
    rows = []
    for j, method in enumerate(methods):
        low, high = bootstrap_ci(ious[:, j], n_boot=n_boot, seed=seed)
        rows.append(
            {
                "method": method,
                "label": method_label(method),
                "iou_mean": float(means[j]),
                "ci_low": low,
                "ci_high": high,
                "gt_rank": int(ranks[j]),
            }
        )
    return pd.DataFrame(rows).sort_values("gt_rank", kind="stable").reset_index(drop=True)


def auc_table(
    aucs: Mapping[str, np.ndarray],
    ious: np.ndarray,
    methods: Sequence[str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Tables 3-8: per strategy and method the mean AUC, its bootstrap CI and its rank."""
    gt_rank = faithfulness.rank(np.nanmean(ious, axis=0), higher_is_better=True)
    rows = []
    for strategy, auc in aucs.items():
        means = auc.mean(axis=0)
        ranks = faithfulness.rank(means, higher_is_better=False)
        for j, method in enumerate(methods):
            low, high = bootstrap_ci(auc[:, j], n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "strategy": strategy,
                    "method": method,
                    "label": method_label(method),
                    "auc_mean": float(means[j]),
                    "ci_low": low,
                    "ci_high": high,
                    "rank": int(ranks[j]),
                    "gt_rank": int(gt_rank[j]),
                }
            )
    return pd.DataFrame(rows)


def mard_table(
    aucs: Mapping[str, np.ndarray], ious: np.ndarray, n_boot: int, seed: int
) -> pd.DataFrame:
    """Table 9 plus: MARD, rank accuracy and Kendall's tau per strategy, with bootstrap CIs."""
    rows = []
    for strategy, auc in aucs.items():
        point = faithfulness.agreement(ious, auc)
        ci = faithfulness.agreement_ci(ious, auc, n_boot=n_boot, seed=seed)
        row: dict[str, Any] = {"strategy": strategy}
        for key in ("mard", "rank_accuracy", "kendall_tau"):
            row[key] = point[key]
            row[f"{key}_ci_low"], row[f"{key}_ci_high"] = ci[key]
        rows.append(row)
    return pd.DataFrame(rows)
