"""DiagSet-A prostate patches (classes A, N, R1-R5) from the dataset's blobs or image folders.

DiagSet (Koziarski et al., 2024) distributes DiagSet-A as NumPy *blobs*: every blob holds up to
128 RGB patches of 256 x 256 pixels (uint8, (k, 256, 256, 3)) of one scan and one class::

    <root>/blobs/S/<magnification>/<scan>/<label>/<scan>.blob.<i>.npy
    <root>/distributions/S/<magnification>/<scan>.json     (patches per label; not needed)
    <root>/partitions/DiagSet-A.2/{train,validation,test}.csv   (column ``scan_id``)

with labels BG, T, N, A, R1-R5 (background and tissue-other patches, BG and T, are not used
here). The splits follow the partition files when ``<root>/partitions/<partition>`` exists
(``validation`` is this book's ``val``); otherwise the scans are split 80/10/10 at random
(``split_seed``), so no scan has patches in two splits. A plain image tree works too::

    <root>/{train,val,test}/<A|N|R1|...|R5>/**/*.png|jpg|jpeg|tif|tiff

(``validation`` is accepted for ``val``; a sub-folder under a class folder is read as the
scan). Classes come out in :data:`xaistudy.data.synthetic.GRADES` order (labels 0-6) and
interleaved: sample ``i`` has class ``i % 7`` while every class has patches left. A class with
fewer than ``n_per_class`` patches in the split is an error (``too_few="error"``) or is taken
whole (``too_few="all"``; ``dataset.class_counts`` holds what the split has). Patches are
resized to ``size`` by antialiased bilinear interpolation. DiagSet has no pixel annotations:
``mask`` and ``nuclei_type`` are zeros. Samples carry ``scan``, an index into
``dataset.scans``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from xaistudy.data import synthetic
from xaistudy.data.pannuke import resize_images
from xaistudy.data.registry import (
    README_HINT,
    SPLITS,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    patient_split,
    register_dataset,
    relative_paths_key,
    resolve_data_root,
)
from xaistudy.core.store import Store

log = logging.getLogger(__name__)

NAME = "diagset"
CLASSES = synthetic.GRADES  # ("A", "N", "R1", "R2", "R3", "R4", "R5")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: this book's split -> the names of its folder or partition file
SPLIT_NAMES = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}
TOO_FEW = ("error", "all")
LAYOUT = (
    "<root>/blobs/S/20x/<scan>/<A|N|R1..R5>/*.npy (DiagSet-A; splits from "
    "<root>/partitions/DiagSet-A.2/{train,validation,test}.csv, else by scan) or "
    "<root>/{train,val,test}/<A|N|R1..R5>/*.png|jpg|tif"
)
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


@dataclass
class Listing:
    """The patches of one split: per class, ``(file, row)`` items; the files and scans."""

    files: list[Path]
    scans: list[str]
    file_scan: list[int]
    items: dict[int, list[tuple[int, int]]]  # class index -> (file index, row in the file)
    kind: str  # "blobs" or "images"


# -- layout checks --------------------------------------------------------------------------
def _split_dir(root: Path, split: str) -> Path | None:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _has_tree(root: Path) -> bool:
    return any(_split_dir(root, s) is not None for s in SPLITS)


def check_root(root: Path) -> None:
    """Raise :class:`DataRootError` naming the first missing folder of either layout."""
    if (root / "blobs").is_dir():
        base = root / "blobs" / "S"
        if not base.is_dir() or not any(p.is_dir() for p in base.glob("*x")):
            raise DataRootError(
                f"dataset '{NAME}': no magnification folder <mag>x in {base}; expected "
                f"{LAYOUT} ({README_HINT})"
            )
        return
    if _has_tree(root):
        for split in SPLITS:
            folder = _split_dir(root, split)
            if folder is None:
                raise DataRootError(
                    f"dataset '{NAME}': missing split folder {root / split}; expected {LAYOUT} "
                    f"({README_HINT})"
                )
            for name in CLASSES:
                if not (folder / name).is_dir():
                    raise DataRootError(
                        f"dataset '{NAME}': missing class folder {folder / name}; expected "
                        f"{LAYOUT} ({README_HINT})"
                    )
        return
    raise DataRootError(
        f"dataset '{NAME}': {root} has neither blobs/S/<mag>x (DiagSet-A) nor "
        f"train/val/test folders; expected {LAYOUT} ({README_HINT})"
    )


# -- listing --------------------------------------------------------------------------------
def _partition_scans(root: Path, partition: str, split: str) -> set[str] | None:
    """Scan ids of ``split`` from the partition files, or None when there are none."""
    folder = root / "partitions" / partition
    if not partition or not folder.is_dir():
        return None
    for name in SPLIT_NAMES[split]:
        path = folder / f"{name}.csv"
        if path.is_file():
            with path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                if "scan_id" not in (reader.fieldnames or []):
                    raise DataRootError(f"dataset '{NAME}': {path} has no column 'scan_id'")
                return {row["scan_id"].strip() for row in reader}
    raise DataRootError(
        f"dataset '{NAME}': missing partition file {folder / (SPLIT_NAMES[split][-1] + '.csv')} "
        f"({README_HINT})"
    )


def split_scans(
    scans: Sequence[str], root: Path, split: str, partition: str, split_seed: int
) -> list[str]:
    """The scans of ``split``: from the partition files, else an 80/10/10 split by scan."""
    chosen = _partition_scans(root, partition, split)
    if chosen is not None:
        return [s for s in scans if s in chosen]
    ids = patient_split(len(scans), split_seed)[split]
    return [scans[i] for i in ids]


def _blob_rows(path: Path) -> int:
    """Patches in a blob (header only), its shape checked."""
    blob = np.load(path, mmap_mode="r")
    if blob.ndim != 4 or blob.shape[-1] != 3:
        raise DataRootError(
            f"dataset '{NAME}': {path} has shape {blob.shape}, expected (k, H, W, 3) patches"
        )
    return int(blob.shape[0])


def list_blobs(
    root: Path, split: str, magnification: str, partition: str, split_seed: int
) -> Listing:
    """The DiagSet-A blobs of ``split`` at ``magnification``."""
    mag_dir = root / "blobs" / "S" / magnification
    if not mag_dir.is_dir():
        have = sorted(p.name for p in (root / "blobs" / "S").glob("*x") if p.is_dir())
        raise DataRootError(
            f"dataset '{NAME}': missing magnification folder {mag_dir} (found: "
            f"{', '.join(have) or 'none'}; option magnification) ({README_HINT})"
        )
    all_scans = sorted(p.name for p in mag_dir.iterdir() if p.is_dir())
    scans = split_scans(all_scans, root, split, partition, split_seed)
    listing = Listing([], scans, [], {c: [] for c in range(len(CLASSES))}, "blobs")
    for s, scan in enumerate(tqdm(scans, desc=f"DiagSet {split} scans", leave=False)):
        for c, name in enumerate(CLASSES):
            for path in sorted((mag_dir / scan / name).glob("*.npy")):
                listing.files.append(path)
                listing.file_scan.append(s)
                f = len(listing.files) - 1
                listing.items[c] += [(f, r) for r in range(_blob_rows(path))]
    return listing


def list_images(root: Path, split: str) -> Listing:
    """The image files of ``split`` in a ``<split>/<class>/`` tree."""
    folder = _split_dir(root, split)
    if folder is None:
        raise DataRootError(
            f"dataset '{NAME}': missing split folder {root / split} ({README_HINT})"
        )
    listing = Listing([], [], [], {c: [] for c in range(len(CLASSES))}, "images")
    scan_index: dict[str, int] = {}
    for c, name in enumerate(CLASSES):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise DataRootError(
                f"dataset '{NAME}': missing class folder {class_dir} ({README_HINT})"
            )
        paths = sorted(
            p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        for path in paths:
            rel = path.parent.relative_to(class_dir)
            scan = str(rel) if str(rel) != "." else ""
            listing.file_scan.append(scan_index.setdefault(scan, len(scan_index)))
            listing.files.append(path)
            listing.items[c].append((len(listing.files) - 1, 0))
    listing.scans = list(scan_index)
    return listing


# -- sampling and reading -------------------------------------------------------------------
def select(
    listing: Listing, n_per_class: int, seed: int, split: str, too_few: str
) -> list[tuple[int, int, int]]:
    """``(class, file, row)`` of the chosen patches, classes interleaved (seeded choice)."""
    counts = {c: len(v) for c, v in listing.items.items()}
    short = {c: k for c, k in counts.items() if k < n_per_class}
    if short and too_few == "error":
        have = ", ".join(f"{CLASSES[c]} {k}" for c, k in counts.items())
        lacking = ", ".join(CLASSES[c] for c in short)
        raise ValueError(
            f"dataset '{NAME}' split '{split}': fewer than n_per_class={n_per_class} patches "
            f"in {lacking} (patches per class: {have}); lower n_per_class or pass data_options "
            '{"too_few": "all"}'
        )
    chosen: dict[int, list[tuple[int, int]]] = {}
    for c, items in listing.items.items():
        m = min(n_per_class, len(items))
        rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], c]))
        pick = np.sort(rng.choice(len(items), size=m, replace=False))
        chosen[c] = [items[k] for k in pick]
    if short:
        log.warning(
            "DiagSet %s: taking all patches of %s (fewer than %d)",
            split,
            ", ".join(f"{CLASSES[c]} ({k})" for c, k in short.items()),
            n_per_class,
        )
    order = []
    for r in range(max((len(v) for v in chosen.values()), default=0)):
        order += [(c, *chosen[c][r]) for c in chosen if r < len(chosen[c])]
    return order


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_patches(listing: Listing, order: Sequence[tuple[int, int, int]], size: int) -> np.ndarray:
    """The chosen patches as (N, size, size, 3) uint8, in ``order``."""
    out = np.empty((len(order), size, size, 3), np.uint8)
    by_file: dict[int, list[tuple[int, int]]] = {}
    for k, (_, f, r) in enumerate(order):
        by_file.setdefault(f, []).append((k, r))
    for f, wanted in tqdm(by_file.items(), desc=f"DiagSet patches ({listing.kind})"):
        path = listing.files[f]
        if listing.kind == "blobs":
            blob = np.load(path, mmap_mode="r")
            rows = np.array([r for _, r in wanted])
            patches = np.asarray(blob[np.sort(rows)])[np.argsort(np.argsort(rows))]
        else:
            patches = _read_image(path)[None]
        if patches.dtype != np.uint8:
            patches = np.clip(np.rint(patches), 0, 255).astype(np.uint8)
        out[[k for k, _ in wanted]] = resize_images(patches, size)
    return out


# -- the dataset ----------------------------------------------------------------------------
@register_dataset(NAME, kind="grading", layout=LAYOUT, check_root=check_root)
def diagset(
    split: str = "train",
    n_per_class: int = 20,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path | None = None,
    magnification: str = "20x",
    partition: str = "DiagSet-A.2",
    split_seed: int = 0,
    too_few: str = "error",
) -> ArrayDataset:
    """``n_per_class`` DiagSet-A patches of every class (A, N, R1-R5) in ``split``.

    ``magnification``: blob folder (``5x``, ``10x``, ``20x`` as in the thesis, ``40x``).
    ``partition``: partition folder under ``<root>/partitions`` (``DiagSet-A.2``, the
    DiagSet paper's; ``DiagSet-A.1``; empty to ignore); without one, scans are split 80/10/10
    with ``split_seed``. ``too_few``: ``error`` (one line naming the counts) or ``all`` (take
    every patch of a class that has fewer). Image-folder trees are cached in ``store``; blobs
    are read directly (they are already uncompressed arrays).
    """
    check_split(split)
    if too_few not in TOO_FEW:
        raise ValueError(f"too_few must be one of {', '.join(TOO_FEW)}, got {too_few!r}")
    if n_per_class < 1 or size < 8:
        raise ValueError(
            f"dataset '{NAME}' needs n_per_class >= 1 and size >= 8, got {n_per_class}, {size}"
        )
    root = Path(data_root) if data_root not in (None, "") else resolve_data_root(NAME)
    check_root(root)
    if (root / "blobs").is_dir():
        listing = list_blobs(root, split, magnification, partition, split_seed)
    else:
        listing = list_images(root, split)
    order = select(listing, n_per_class, seed, split, too_few)
    if not order:
        raise DataRootError(f"dataset '{NAME}': split '{split}' has no patches ({README_HINT})")
    fingerprint = files_fingerprint(listing.files)
    if listing.kind == "images":
        params = {
            "split": split,
            "n_per_class": n_per_class,
            "size": size,
            "seed": seed,
            "too_few": too_few,
            "files": fingerprint,
            "listing": relative_paths_key(root, listing.files),
        }
        images = (store or Store()).cached_arrays(
            NAME, params, lambda: {"images": read_patches(listing, order, size)}
        )["images"]
    else:
        images = read_patches(listing, order, size)
    labels = np.array([c for c, _, _ in order], np.int64)
    scans = np.array([listing.file_scan[f] for _, f, _ in order], np.int64)
    zeros = np.zeros((1, size, size), np.uint8)
    dataset = ArrayDataset(
        images,
        labels,
        np.broadcast_to(zeros.astype(bool), (len(order), size, size)),
        np.broadcast_to(zeros, (len(order), size, size)),
        classes=CLASSES,
        extra={"scan": scans},
        transform=transform,
    )
    dataset.scans = tuple(listing.scans)
    dataset.class_counts = {CLASSES[c]: len(v) for c, v in listing.items.items()}
    dataset.layout = listing.kind
    dataset.fingerprint = fingerprint
    return dataset
