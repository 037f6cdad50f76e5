"""Tiles that stream from disk: uint8 storage, float tensors only for the rows asked for.

A paper-scale split (8,000 tiles of 512 px) is 6.3 GB as uint8 and 25 GB as float32. ``Tiles``
keeps the uint8 (N, H, W, 3) array, typically a memory-mapped ``.npy`` file written in chunks by
:func:`write_npy`, and converts to (k, 3, H, W) float32 in [0, 1] only what is indexed, so
batched code (``tiles[i : i + b]``, ``tiles[index_tensor]``) never holds the whole split.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

#: tiles converted at once by whole-split helpers (e.g. :meth:`Tiles.channel_mean`)
CHUNK = 256


class Tiles:
    """Images (N, 3, H, W) float32 in [0, 1] read on demand from uint8 (N, H, W, 3) storage.

    ``tiles[i]`` is one (3, H, W) tensor; a slice, an integer array or tensor, or a boolean mask
    gives a (k, 3, H, W) tensor. ``rows`` (optional) makes this a view on some rows of
    ``storage`` (see :meth:`subset`); nothing is copied.
    """

    def __init__(self, storage: np.ndarray, rows: np.ndarray | None = None):
        if storage.ndim != 4 or storage.shape[-1] != 3 or storage.dtype != np.uint8:
            raise ValueError(
                f"storage must be uint8 (N, H, W, 3), got {storage.dtype} {storage.shape}"
            )
        self.storage = storage
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.storage) if self.rows is None else len(self.rows)

    @property
    def shape(self) -> torch.Size:
        h, w = self.storage.shape[1:3]
        return torch.Size((len(self), 3, h, w))

    @property
    def ndim(self) -> int:
        return 4

    def _storage_rows(self, index) -> np.ndarray | int:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if isinstance(index, slice):
            picked = np.arange(len(self))[index]
        elif isinstance(index, int | np.integer):
            if not -len(self) <= index < len(self):
                raise IndexError(f"tile {index} is out of range for {len(self)} tiles")
            picked = int(index) % len(self)
        else:
            index = np.asarray(index)
            picked = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
            if index.dtype == bool and len(index) != len(self):
                raise IndexError(f"boolean index of length {len(index)} for {len(self)} tiles")
        if self.rows is None:
            return picked
        return int(self.rows[picked]) if isinstance(picked, int) else self.rows[picked]

    def __getitem__(self, index) -> torch.Tensor:
        rows = self._storage_rows(index)
        if isinstance(rows, int):
            return _to_float(self.storage[rows][None])[0]
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        block = np.empty((len(rows), *self.storage.shape[1:]), np.uint8)
        if len(rows):
            block[order] = self.storage[rows[order]]
        return _to_float(block)

    def subset(self, index) -> Tiles:
        """A view on some of these tiles (no copy)."""
        rows = self._storage_rows(index)
        return Tiles(self.storage, np.atleast_1d(rows))

    def channel_mean(self) -> list[float]:
        """The mean of each channel over every pixel of every tile (read in chunks)."""
        total = np.zeros(3, np.float64)
        for i in range(0, len(self), CHUNK):
            total += self[i : i + CHUNK].double().sum(dim=(0, 2, 3)).numpy()
        h, w = self.storage.shape[1:3]
        return (total / max(len(self) * h * w, 1)).tolist()

    def float(self) -> torch.Tensor:
        """Every tile as one float tensor (the whole split in memory: small splits only)."""
        return self[:]


def _to_float(block: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(block).permute(0, 3, 1, 2).float().div_(255)


def write_npy(
    path: str | Path,
    array: np.ndarray,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Write ``transform(array)`` (applied to chunks of rows) to ``path`` as ``.npy`` and return
    it memory-mapped read-only; the file appears only once complete (written to a temporary
    name, then renamed), so an interrupted run leaves no partial file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = array[:1] if transform is None else transform(array[:1])
    shape, dtype = (len(array), *first.shape[1:]), first.dtype
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    try:
        for i in range(0, len(array), chunk):
            part = array[i : i + chunk]
            out[i : i + len(part)] = part if transform is None else transform(part)
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")
