"""Clever-Hans data: H&E tiles with a marker-pen artifact that co-occurs with the tumour class.

The tiles are exactly those of ``synthetic-he`` (same seed, split and index give the same
tissue); on some of them a marker-pen stroke is drawn on top. ``cooccurrence`` sets how the
mark goes with the class:

* P(mark | tumour) = ``cooccurrence`` and P(mark | normal) = 1 - ``cooccurrence``;
* 1.0: every tumour tile and no normal tile is marked (a perfect shortcut),
  0.5: the mark says nothing about the class, 0.0: the mark sits on normal tiles only.

``marks="none"`` gives the clean tiles. The stroke is drawn like the pen artifact of the
grading tiles (:data:`xaistudy.data.synthetic.PEN_INKS`, Beer-Lambert absorbance added to the
tissue's), a smoothly bending band of ink. :func:`with_pen_marks` draws the same strokes on
the tiles of any tumour-tiles dataset (e.g. ``camelyon16``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from xaistudy.data import synthetic
from xaistudy.data.registry import SPLIT_OFFSET, ArrayDataset, check_split, register_dataset
from xaistudy.core.store import Store

log = logging.getLogger(__name__)

_KIND_PEN = 77  # seed code of the pen-mark draws (independent of the tissue's draws)
PEN_LENGTH_FRAC = (0.45, 0.8)  # stroke length as a fraction of the tile side
PEN_DENSITY = (0.9, 1.3)  # ink concentration

Marks = Literal["shortcut", "none"]


def _stroke(rng: np.random.Generator, h: int, w: int, length: float) -> np.ndarray:
    """Distance (px) of every pixel to a smoothly bending stroke of ``length`` px."""
    n = max(int(length / 0.5), 2)
    turn = ndimage.gaussian_filter1d(rng.standard_normal(n), 15, mode="nearest") * 0.06
    ang = rng.uniform(0, 2 * np.pi) + np.cumsum(turn)
    y, x = np.cumsum(0.5 * np.sin(ang)), np.cumsum(0.5 * np.cos(ang))
    y += rng.uniform(0.3, 0.7) * h - y[n // 2]
    x += rng.uniform(0.3, 0.7) * w - x[n // 2]
    iy, ix = np.rint(y).astype(int), np.rint(x).astype(int)
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    seeds = np.ones((h, w), dtype=bool)
    seeds[iy[ok], ix[ok]] = False
    if seeds.all():  # the stroke left the tile: put one point in the middle
        seeds[h // 2, w // 2] = False
    return ndimage.distance_transform_edt(seeds)


def add_pen_mark(
    image: np.ndarray, rng: np.random.Generator, ink: str = "blue"
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H, W, 3) uint8 with a marker stroke of ``ink``; returns (image, stroke mask)."""
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if ink not in synthetic.PEN_INKS:
        raise ValueError(f"unknown ink {ink!r}; allowed: {', '.join(synthetic.PEN_INKS)}")
    h, w, _ = image.shape
    dist = _stroke(rng, h, w, rng.uniform(*PEN_LENGTH_FRAC) * max(h, w))
    width = rng.uniform(*synthetic.PEN_WIDTH)
    alpha = np.clip(width / 2 - dist + 0.5, 0, 1)
    conc = rng.uniform(*PEN_DENSITY) * alpha
    od = -np.log((image.astype(np.float64) + 1.0) / 256.0)
    od = od + conc[..., None] * np.asarray(synthetic.PEN_INKS[ink])
    out = np.clip(np.rint(256.0 * np.exp(-od) - 1.0), 0, 255).astype(np.uint8)
    return out, dist < width / 2


def is_marked(seed: int, index: int, tumour: bool, cooccurrence: float) -> bool:
    """Whether tile ``index`` carries the mark (P = cooccurrence if tumour, else 1 - it)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _KIND_PEN, 0]))
    p = cooccurrence if tumour else 1.0 - cooccurrence
    return bool(rng.uniform() < p)


def pen_tile(
    seed: int,
    index: int,
    size: int = 128,
    tumour: bool = True,
    cooccurrence: float = 1.0,
    marks: Marks = "shortcut",
    ink: str = "blue",
) -> tuple[synthetic.Tile, np.ndarray]:
    """One ``synthetic-he`` tile, marked per :func:`is_marked` (never with ``marks="none"``).

    Returns the tile (its ``mask`` is still the tumour region) and the stroke mask.
    """
    _check_marks(cooccurrence, marks)
    tile = synthetic.he_tile(seed, index, size=size, tumour=tumour)
    image, pen = mark_tile(tile.image, seed, index, tumour, cooccurrence, marks, ink)
    if image is not tile.image:
        tile = synthetic.Tile(
            image, tile.label, tile.mask, tile.nuclei_instance, tile.nuclei_type, tile.meta
        )
    return tile, pen


def _check_marks(cooccurrence: float, marks: str) -> None:
    if not 0.0 <= cooccurrence <= 1.0:
        raise ValueError(f"cooccurrence must be in [0, 1], got {cooccurrence!r}")
    if marks not in ("shortcut", "none"):
        raise ValueError(f"marks must be 'shortcut' or 'none', got {marks!r}")


def mark_tile(
    image: np.ndarray,
    seed: int,
    index: int,
    tumour: bool,
    cooccurrence: float = 1.0,
    marks: Marks = "shortcut",
    ink: str = "blue",
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H, W, 3) uint8 marked per :func:`is_marked`; returns (image, stroke mask).

    The stroke depends only on ``seed`` and ``index``, never on the image.
    """
    if marks == "shortcut" and is_marked(seed, index, tumour, cooccurrence):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _KIND_PEN, 1]))
        return add_pen_mark(image, rng, ink)
    return image, np.zeros(image.shape[:2], dtype=bool)


def with_pen_marks(
    dataset: ArrayDataset,
    split: str,
    seed: int,
    cooccurrence: float = 1.0,
    marks: Marks = "shortcut",
    ink: str = "blue",
    transform: Callable | None = None,
) -> ArrayDataset:
    """Any tumour-tiles dataset (label 1 = tumour) with the pen shortcut drawn on its tiles.

    Tile ``i`` of ``split`` is marked and stroked exactly as tile ``i`` of
    ``synthetic-he-pen`` with the same ``seed`` (so ``with_pen_marks(synthetic-he)`` *is*
    ``synthetic-he-pen``); ``mask`` stays the tumour mask; samples gain ``pen`` and ``marked``.
    """
    check_split(split)
    _check_marks(cooccurrence, marks)
    offset = SPLIT_OFFSET[split]
    images = np.array(dataset.images, copy=True)
    pens = np.zeros(images.shape[:3], dtype=bool)
    for i in tqdm(range(len(images)), desc=f"pen marks {split}", disable=len(images) < 256):
        tumour = bool(dataset.labels[i] == 1)
        images[i], pens[i] = mark_tile(
            images[i], seed, offset + i, tumour, cooccurrence, marks, ink
        )
    marked = pens.reshape(len(pens), -1).any(axis=1)
    log.info("%s: %d of %d tiles marked", split, int(marked.sum()), len(marked))
    return ArrayDataset(
        images,
        dataset.labels,
        dataset.masks,
        dataset.nuclei_type,
        classes=dataset.classes,
        extra={**dataset.extra, "pen": pens, "marked": marked},
        transform=transform,
    )


@register_dataset("synthetic-he-pen", kind="tumour-tiles")
def synthetic_he_pen(
    split: str = "train",
    n: int = 200,
    size: int = 128,
    seed: int = 0,
    cooccurrence: float = 1.0,
    marks: Marks = "shortcut",
    ink: str = "blue",
    store: Store | None = None,
    transform: Callable | None = None,
) -> ArrayDataset:
    """``synthetic-he`` tiles with the pen shortcut; samples carry ``pen`` (H, W) and ``marked``.

    Sample ``i`` is tumour when ``i`` is odd (as in ``synthetic-he``); ``mask`` is the tumour
    region, ``pen`` the stroke.
    """
    check_split(split)
    offset = SPLIT_OFFSET[split]
    params = {
        "split": split,
        "n": n,
        "size": size,
        "seed": seed,
        "cooccurrence": cooccurrence,
        "marks": marks,
        "ink": ink,
    }

    def compute() -> dict[str, np.ndarray]:
        tiles, pens = [], []
        for i in tqdm(range(n), desc=f"pen tiles {split}"):
            tile, pen = pen_tile(seed, offset + i, size, bool(i % 2), cooccurrence, marks, ink)
            tiles.append(tile)
            pens.append(pen)
        return {
            "images": np.stack([t.image for t in tiles]),
            "labels": np.array([t.label for t in tiles], np.int64),
            "masks": np.stack([t.mask for t in tiles]),
            "nuclei_type": np.stack([t.nuclei_type for t in tiles]),
            "pen": np.stack(pens),
        }

    arrays = (store or Store()).cached_arrays("synthetic-he-pen", params, compute)
    marked = arrays["pen"].reshape(n, -1).any(axis=1)
    log.info("%s: %d of %d tiles marked", split, int(marked.sum()), n)
    return ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        arrays["nuclei_type"],
        classes=synthetic.HE_CLASSES,
        extra={"pen": arrays["pen"], "marked": marked},
        transform=transform,
    )
