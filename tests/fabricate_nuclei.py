"""Small PanNuke and DiagSet-A folders in the real file formats, written by the tests.

PanNuke: per fold ``images.npy`` (N, S, S, 3) float64 0-255, ``masks.npy`` (N, S, S, 6) float64
with nucleus instance ids in channels 0-4 and 1 = background in channel 5, ``types.npy``
tissue names; in the official zip layout (``Fold k/images/foldk/...``) or flat (``foldk/``).
Every tile has a known set of drawn nuclei (:class:`Disc`) and a background red value that
identifies it (:func:`tile_code`).

DiagSet-A: ``blobs/S/<mag>/<scan>/<label>/<scan>.blob.<i>.npy`` (k, S, S, 3) uint8 blobs, the
per-scan ``distributions`` JSON files and ``partitions/DiagSet-A.2/*.csv``; or a plain
``<split>/<class>/*.png`` tree. Every patch is one flat colour that encodes its class, scan
and serial number (:func:`patch_colour`, :func:`decode_patch`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.draw import disk

GRADES = ("A", "N", "R1", "R2", "R3", "R4", "R5")


# -- PanNuke --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Disc:
    """A drawn nucleus: masks.npy channel, centre and radius (pixels)."""

    channel: int
    cy: int
    cx: int
    r: int


def tile_code(fold: int, index: int) -> int:
    """The background red value of tile ``index`` of ``fold`` (unique per tile)."""
    return 100 + 20 * fold + index


def tile_discs(fold: int, index: int, side: int) -> list[Disc]:
    """The nuclei of a tile: one per non-neoplastic channel, a neoplastic one on even tiles."""
    q = side // 4
    discs = [
        Disc(1, q, 3 * q, side // 16),  # inflammatory
        Disc(2, 3 * q, q, side // 12),  # connective
        Disc(4, 3 * q, 3 * q, side // 14),  # epithelial
    ]
    if index % 2 == 0:
        discs.append(Disc(0, q + fold, q + index, side // 10))  # neoplastic
    return discs


def disc_map(discs: Sequence[Disc], side: int, channels: Sequence[int]) -> np.ndarray:
    """Boolean (side, side) union of the discs whose channel is in ``channels``."""
    out = np.zeros((side, side), bool)
    for d in discs:
        if d.channel in channels:
            rr, cc = disk((d.cy, d.cx), d.r, shape=(side, side))
            out[rr, cc] = True
    return out


def expected_types(discs: Sequence[Disc], side: int, non_neoplastic: Sequence[int]) -> np.ndarray:
    """The nuclei type map a correct loader derives: 1 neoplastic, 2 chosen others, 0 else."""
    neo = disc_map(discs, side, [0])
    other = disc_map(discs, side, non_neoplastic)
    return np.where(neo, 1, np.where(other, 2, 0)).astype(np.uint8)


TISSUES = ("Breast", "Colon", "Prostate")


def write_pannuke(
    root: Path, fold_sizes: Sequence[int] = (4, 3, 3), side: int = 64, layout: str = "official"
) -> dict[int, list[list[Disc]]]:
    """Write three PanNuke folds under ``root``; return the drawn discs of every tile."""
    drawn: dict[int, list[list[Disc]]] = {}
    for fold, n in zip((1, 2, 3), fold_sizes, strict=True):
        images = np.empty((n, side, side, 3), np.float64)
        masks = np.zeros((n, side, side, 6), np.float64)
        drawn[fold] = []
        instance = 1
        for i in range(n):
            discs = tile_discs(fold, i, side)
            drawn[fold].append(discs)
            images[i] = (tile_code(fold, i), 180.0, 210.0)  # pink-ish, red identifies the tile
            for d in discs:
                rr, cc = disk((d.cy, d.cx), d.r, shape=(side, side))
                masks[i, rr, cc, d.channel] = instance
                images[i, rr, cc] = (40.0, 20.0, 90.0)  # dark hematoxylin nucleus
                instance += 1
            masks[i, ..., 5] = (masks[i, ..., :5].max(-1) == 0).astype(np.float64)
        types = np.array([TISSUES[(fold + i) % len(TISSUES)] for i in range(n)])
        if layout == "official":
            img_dir = root / f"Fold {fold}" / "images" / f"fold{fold}"
            mask_dir = root / f"Fold {fold}" / "masks" / f"fold{fold}"
        else:
            img_dir = mask_dir = root / f"fold{fold}"
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        np.save(img_dir / "images.npy", images)
        np.save(img_dir / "types.npy", types)
        np.save(mask_dir / "masks.npy", masks)
    return drawn


# -- DiagSet-A ------------------------------------------------------------------------------
def patch_colour(grade: int, scan: int, serial: int) -> tuple[int, int, int]:
    """The flat colour of a fabricated patch: class, scan and serial number."""
    return 10 + 30 * grade, 10 + 15 * scan, serial % 256


def decode_patch(image: np.ndarray) -> tuple[int, int, int]:
    """``(class, scan, serial)`` of a fabricated patch (H, W, 3) uint8 or (3, H, W) float."""
    arr = np.asarray(image)
    if arr.shape[0] == 3 and arr.ndim == 3:
        arr = np.round(arr.transpose(1, 2, 0) * 255)
    r, g, b = (int(v) for v in arr[arr.shape[0] // 2, arr.shape[1] // 2])
    return (r - 10) // 30, (g - 10) // 15, b


def write_diagset_blobs(
    root: Path,
    counts: Mapping[str, Mapping[str, int]],
    partitions: Mapping[str, Sequence[str]] | None = None,
    magnification: str = "20x",
    side: int = 256,
    blob_size: int = 3,
) -> None:
    """DiagSet-A blobs: ``counts[scan][label]`` patches (labels may include BG and T)."""
    mag = root / "blobs" / "S" / magnification
    dist = root / "distributions" / "S" / magnification
    dist.mkdir(parents=True, exist_ok=True)
    for s, scan in enumerate(sorted(counts)):
        serial = 0
        for label, k in counts[scan].items():
            folder = mag / scan / label
            folder.mkdir(parents=True, exist_ok=True)
            grade = GRADES.index(label) if label in GRADES else 7
            for b, start in enumerate(range(0, k, blob_size)):
                m = min(blob_size, k - start)
                blob = np.empty((m, side, side, 3), np.uint8)
                for j in range(m):
                    blob[j] = patch_colour(grade, s, serial)
                    serial += 1
                np.save(folder / f"{scan}.blob.{b}.npy", blob)
        (dist / f"{scan}.json").write_text(json.dumps(dict(counts[scan])))
    if partitions is not None:
        folder = root / "partitions" / "DiagSet-A.2"
        folder.mkdir(parents=True, exist_ok=True)
        for name, scans in partitions.items():
            with (folder / f"{name}.csv").open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["scan_id", "source"])
                writer.writerows([[scan, "fabricated"] for scan in scans])


def write_diagset_tree(
    root: Path,
    counts: Mapping[str, Mapping[str, int]],
    side: int = 64,
    ext: str = "png",
) -> None:
    """A plain ``<split>/<class>/*.<ext>`` tree with ``counts[split][class]`` images."""
    for s, split in enumerate(counts):
        for label, k in counts[split].items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(k):
                image = np.full((side, side, 3), patch_colour(GRADES.index(label), s, i), np.uint8)
                Image.fromarray(image).save(folder / f"patch_{i:03d}.{ext}")


def balanced_counts(k: int, grades: Sequence[str] = GRADES) -> dict[str, int]:
    """``k`` patches of every grade."""
    return {g: k for g in grades}
