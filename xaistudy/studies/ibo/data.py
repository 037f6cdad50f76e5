"""The IBO study's data: train / val / test / DDPM splits of a tumour-tiles dataset, stain
normalised to one reference tile and streamed from memory-mapped files; what identifies them
in cache keys; the test tiles that are explained, in a seeded order."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from xaistudy.core.store import Store
from xaistudy.data import stain
from xaistudy.data.datasets import get_dataset, get_spec
from xaistudy.data.tiles import Tiles, write_npy


@dataclass(frozen=True)
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


def seed_splits(params: Any, seed: int, store: Store) -> tuple[dict[str, Split], np.ndarray]:
    """:func:`load_splits` of one seed with ``params``' sizes (cached). Every seed is
    normalised to the first seed's reference tile: one colour space for all seeds'
    classifiers and the DDPM shared between them."""
    p = params
    return load_splits(
        p.tile_size,
        p.n_train,
        p.n_val,
        p.n_test,
        p.ddpm_tiles,
        p.stain_norm,
        seed,
        store=store,
        dataset=p.dataset,
        data_root=p.data_root,
        data_options=p.data_options,
        stain_reference_seed=p.seeds[0],
    )


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
    study's own parameters already fix (so their cache keys stay as they were)."""
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


def tumour_order(labels: torch.Tensor, seed: int) -> np.ndarray:
    """The tumour tiles of a split in a seeded random order: any first n of them is a sample
    set (the paper's random test samples), so smaller sets are nested in larger ones."""
    tumour = np.flatnonzero(labels.numpy() == 1)
    if len(tumour) == 0:
        raise ValueError("the test split has no tumour tiles")
    return np.random.default_rng(np.random.SeedSequence([seed, 5])).permutation(tumour)
