"""Folders of frames (pCLE by patient) and generic image folders, with optional masks.

``pcle-folder`` (kind ``pcle``), the layout of You et al.'s pCLE data::

    frames/<class>/<patient>/<frame>.png|jpg|tif     class: glioblastoma or meningioma
    masks/<class>/<patient>/<frame>.png              optional, same relative path

A patient is one folder (``<class>/<patient>``; the same folder name under both classes is two
patients). Frames may also lie one video per sub-folder of a patient. Frames are sorted in
natural order (``frame2`` before ``frame10``) and ``frame_step`` keeps every n-th of each
folder starting with the first (the paper: every other frame, since neighbours look alike).
A mask is binary (any non-zero pixel is foreground: psammoma bodies, or any clinically
relevant structure); a frame without a mask file has an empty mask.

``image-folder`` (kind ``images``)::

    images/<class>/<name>.png|jpg|tif     masks/<class>/<name>.png (optional)

Both cut each image to its centred square (side = the shorter side) and resize it to ``size``
(bilinear, antialiased; masks nearest). Grey frames stay grey (one channel, repeated to RGB by
the dataset). 16-bit or float images are scaled to 0-255 by their own minimum and maximum.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from xaistudy.data import synthetic
from xaistudy.data.registry import (
    README_HINT,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    patient_split,
    register_dataset,
    require,
)
from xaistudy.core.store import Store

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PCLE = "pcle-folder"
IMAGES = "image-folder"
PCLE_LAYOUT = (
    "frames/<class>/<patient>/<frame>.png|jpg|tif with class glioblastoma and meningioma; "
    "optional masks/<class>/<patient>/<frame>.png"
)
IMAGES_LAYOUT = "images/<class>/<name>.png|jpg|tif; optional masks/<class>/<name>.png"


# -- files -------------------------------------------------------------------------------------
def natural_key(path: Path | str) -> list[int | str]:
    """Sort key that orders embedded numbers by value: ``f2`` < ``f10``."""
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (and its sub-folders when ``recursive``), natural order."""
    found = folder.rglob("*") if recursive else folder.glob("*")
    files = [p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.relative_to(folder)))


def first_image(folder: Path) -> Path | None:
    """Any image file under ``folder`` (fast: stops at the first)."""
    for p in folder.rglob("*"):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            return p
    return None


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """``arr`` as uint8; other dtypes scaled by their own minimum and maximum."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    arr = arr.astype(np.float64)
    low, high = float(arr.min()), float(arr.max())
    scaled = (arr - low) / (high - low) if high > low else np.zeros_like(arr)
    return (scaled * 255).round().astype(np.uint8)


def read_image(path: Path, dataset: str) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB uint8; grey when the file has one channel."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            with Image.open(path) as im:
                if im.mode in ("LA", "La"):
                    im = im.convert("L")
                elif im.mode in ("P", "PA", "CMYK", "YCbCr", "RGBA", "RGBa", "HSV", "LAB"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line
        raise DataRootError(
            f"dataset '{dataset}': cannot read {path} ({type(err).__name__}: {err})"
        ) from None
    arr = np.squeeze(arr)
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first TIFF
    if arr.ndim == 3:
        arr = arr[..., :3]  # drop alpha
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise DataRootError(
            f"dataset '{dataset}': {path} has shape {arr.shape}, expected a 2-D grey or RGB image"
        )
    return to_uint8(arr)


def read_mask(path: Path, shape: tuple[int, int], dataset: str) -> np.ndarray:
    """A binary mask (any non-zero pixel) of the frame's ``shape``; one line otherwise."""
    mask = read_image(path, dataset)
    mask = mask.max(axis=-1) if mask.ndim == 3 else mask
    if mask.shape != shape:
        raise DataRootError(
            f"dataset '{dataset}': mask {path} is {mask.shape[1]}x{mask.shape[0]} px but its "
            f"image is {shape[1]}x{shape[0]} px"
        )
    return mask > 0


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (uint8, grey or RGB) resized bilinearly (antialiased when shrinking)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A bool ``mask`` resized with nearest neighbours."""
    if mask.shape == (height, width):
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((width, height), Image.Resampling.NEAREST)) > 127


def square_resize(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The centred square (side = shorter side) of image and mask, resized to ``size``."""
    h, w = mask.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    mask = mask[top : top + side, left : left + side]
    return resize_image(image, size, size), resize_mask(mask, size, size)


def load_items(
    items: Sequence[tuple[Path, Path | None]], size: int, dataset: str, desc: str
) -> dict[str, np.ndarray]:
    """Images (N, size, size[, 3]) and masks (N, size, size) of (image, mask or None) pairs.

    All grey: images stay one-channel; otherwise grey ones are repeated to RGB.
    """
    images, masks = [], []
    for path, mask_path in tqdm(items, desc=desc):
        image = read_image(path, dataset)
        shape = image.shape[:2]
        mask = read_mask(mask_path, shape, dataset) if mask_path else np.zeros(shape, bool)
        image, mask = square_resize(image, mask, size)
        images.append(image)
        masks.append(mask)
    if any(im.ndim == 3 for im in images):
        images = [im if im.ndim == 3 else np.repeat(im[..., None], 3, -1) for im in images]
    return {"images": np.stack(images), "masks": np.stack(masks)}


def _check_size(size: int, dataset: str) -> None:
    if size < 8:
        raise ValueError(f"dataset '{dataset}': size must be >= 8, got {size}")


# -- pCLE frames by patient ----------------------------------------------------------------------
@dataclass(frozen=True)
class Patient:
    """One patient folder: its class index, name (``<class>/<folder>``) and frame files."""

    label: int
    name: str
    folder: Path


def check_pcle_root(root: Path) -> None:
    """``frames/<class>/`` of both classes must hold at least one frame (first missing named)."""
    frames = require(root / "frames", "frame folder", PCLE)
    for cls in synthetic.PCLE_CLASSES:
        folder = require(frames / cls, f"{cls} frame folder", PCLE)
        if first_image(folder) is None:
            raise DataRootError(
                f"dataset '{PCLE}': no frame in {folder} (expected "
                f"{cls}/<patient>/<frame>.png|jpg|tif; {README_HINT})"
            )


def list_patients(root: Path) -> list[Patient]:
    """Every patient folder with frames, class by class (PCLE_CLASSES order), natural order."""
    patients = []
    for label, cls in enumerate(synthetic.PCLE_CLASSES):
        folder = require(root / "frames" / cls, f"{cls} frame folder", PCLE)
        subs = sorted((p for p in folder.iterdir() if p.is_dir()), key=natural_key)
        loose = image_files(folder)
        if loose:
            raise DataRootError(
                f"dataset '{PCLE}': frame {loose[0]} lies directly in {folder}; put each "
                f"patient's frames in a folder {cls}/<patient>/ ({README_HINT})"
            )
        patients += [Patient(label, f"{cls}/{p.name}", p) for p in subs if first_image(p)]
    return patients


def cap_patients(patients: Sequence[Patient], n_patients: int | None) -> list[Patient]:
    """At most ``n_patients`` (0 or None: all), shared between the classes in proportion to
    their counts (each class keeps at least min(3, its count), so every split can have both
    classes); the first ones in natural order."""
    if not n_patients or n_patients >= len(patients):
        return list(patients)
    kept = []
    for label in sorted({p.label for p in patients}):
        own = [p for p in patients if p.label == label]
        k = max(min(3, len(own)), round(n_patients * len(own) / len(patients)))
        kept += own[:k]
    return kept


def split_patients(patients: Sequence[Patient], split: str, seed: int) -> list[Patient]:
    """The patients of ``split``: :func:`patient_split` (80/10/10) within each class."""
    out = []
    for label in sorted({p.label for p in patients}):
        own = [p for p in patients if p.label == label]
        out += [own[i] for i in patient_split(len(own), seed)[split]]
    return out


def patient_frames(patient: Patient, frame_step: int, cap: int | None) -> list[Path]:
    """Every ``frame_step``-th frame of each video folder of a patient (from the first), then
    at most ``cap`` of them (0 or None: all), evenly spaced."""
    frames = image_files(patient.folder, recursive=True)
    by_folder: dict[Path, list[Path]] = {}
    for f in frames:
        by_folder.setdefault(f.parent, []).append(f)
    kept = [f for folder in by_folder.values() for f in folder[::frame_step]]
    if cap and len(kept) > cap:
        kept = [kept[i] for i in np.unique(np.linspace(0, len(kept) - 1, cap).round().astype(int))]
    return kept


def mask_path(root: Path, frame: Path, top: str = "frames") -> Path | None:
    """``masks/<same relative path>.png`` when that file exists, else None."""
    rel = frame.relative_to(root / top)
    path = (root / "masks" / rel).with_suffix(".png")
    return path if path.is_file() else None


@register_dataset(PCLE, kind="pcle", layout=PCLE_LAYOUT, check_root=check_pcle_root)
def pcle_folder(
    split: str = "train",
    n_patients: int | None = None,
    frames_per_patient: int | None = None,
    size: int = 339,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path = "data/pcle-folder",
    frame_step: int = 2,
    fov_fraction: float = synthetic.PCLE_FOV_FRAC,
) -> ArrayDataset:
    """pCLE frames from a folder, glioblastoma (0) vs meningioma (1), split by patient.

    ``n_patients``: at most this many patients (:func:`cap_patients`; 0 or None: all);
    ``frames_per_patient``: at most this many frames per patient after ``frame_step``, evenly
    spaced (0 or None: all); ``size``: frames resized to ``size`` x ``size``. Each class's
    patients are split 80/10/10 on their own (:func:`patient_split`), so every split has both
    classes when each class has at least 3 patients. Samples carry ``patient_id`` (index into
    the dataset's ``patients``, the ``<class>/<folder>`` names). ``fov_fraction``: radius of
    the circular field of view as a share of the frame side, read by the centre crop.
    """
    check_split(split)
    _check_size(size, PCLE)
    if frame_step < 1:
        raise ValueError(f"dataset '{PCLE}': frame_step must be >= 1, got {frame_step}")
    if not 0 < fov_fraction <= 0.5 * 2**0.5:
        raise ValueError(
            f"dataset '{PCLE}': fov_fraction must be in (0, 0.707], got {fov_fraction}"
        )
    root = Path(data_root)
    patients = cap_patients(list_patients(root), n_patients)
    chosen = split_patients(patients, split, seed)
    if not chosen:
        raise ValueError(
            f"dataset '{PCLE}': split '{split}' has no patients; each class needs at least 3 "
            f"patient folders (found {len(patients)} in all)"
        )
    items, labels, pids = [], [], []
    for patient in chosen:
        for frame in patient_frames(patient, frame_step, frames_per_patient):
            items.append((frame, mask_path(root, frame)))
            labels.append(patient.label)
            pids.append(patients.index(patient))
    files = [p for item in items for p in item if p is not None]
    params = {
        "split": split,
        "patients": [p.name for p in chosen],
        "frames_per_patient": frames_per_patient,
        "frame_step": frame_step,
        "size": size,
        "seed": seed,
        "files": files_fingerprint(files),
        "n_files": len(files),
    }
    arrays = (store or Store()).cached_arrays(
        PCLE, params, lambda: load_items(items, size, PCLE, f"pcle frames {split}")
    )
    ds = ArrayDataset(
        arrays["images"],
        np.array(labels, np.int64),
        arrays["masks"],
        classes=synthetic.PCLE_CLASSES,
        extra={"patient_id": np.array(pids, np.int64)},
        transform=transform,
    )
    ds.patients = tuple(p.name for p in patients)
    ds.fov_fraction = fov_fraction
    ds.files = tuple(str(f.relative_to(root)) for f, _ in items)
    return ds


# -- generic image folders -------------------------------------------------------------------------
def check_images_root(root: Path) -> None:
    """``images/`` must hold at least one class folder with an image."""
    images = require(root / "images", "image folder", IMAGES)
    classes = [p for p in sorted(images.iterdir()) if p.is_dir()]
    if not classes:
        raise DataRootError(
            f"dataset '{IMAGES}': no class folder in {images} (expected images/<class>/; "
            f"{README_HINT})"
        )
    empty = next((c for c in classes if first_image(c) is None), None)
    if empty is not None:
        raise DataRootError(f"dataset '{IMAGES}': no image in class folder {empty}")


def folder_classes(root: Path, classes: str | Sequence[str] | None) -> tuple[str, ...]:
    """The class order: ``classes`` ("a,b" or a list; each folder must exist) or the sorted
    class folders."""
    found = sorted(p.name for p in (root / "images").iterdir() if p.is_dir())
    if classes in (None, "", []):
        return tuple(found)
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in found:
            raise DataRootError(
                f"dataset '{IMAGES}': no class folder images/{name}; found: {', '.join(found)}"
            )
    return tuple(names)


def interleave(per_class: Sequence[Sequence[Path]]) -> list[tuple[int, Path]]:
    """(label, file) pairs taking one file of each class in turn: any prefix is balanced."""
    out = []
    for k in range(max((len(f) for f in per_class), default=0)):
        out += [(c, files[k]) for c, files in enumerate(per_class) if k < len(files)]
    return out


@register_dataset(IMAGES, kind="images", layout=IMAGES_LAYOUT, check_root=check_images_root)
def image_folder(
    split: str = "train",
    n: int | None = None,
    n_per_class: int | None = None,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path = "data/image-folder",
    classes: str | Sequence[str] | None = None,
) -> ArrayDataset:
    """Images of class folders, split 80/10/10 within each class by a seeded permutation.

    ``classes``: the class order ("normal,tumour"; default: the sorted folder names), labels
    are positions in it. Samples alternate between classes (any prefix is balanced);
    ``n_per_class`` caps each class, ``n`` the total (None: all).
    """
    check_split(split)
    _check_size(size, IMAGES)
    root = Path(data_root)
    names = folder_classes(root, classes)
    per_class = []
    for c, name in enumerate(names):
        files = image_files(root / "images" / name)
        own = [files[i] for i in patient_split(len(files), seed)[split]]
        order = np.random.default_rng(np.random.SeedSequence([seed, 13, c])).permutation(len(own))
        per_class.append([own[i] for i in order][:n_per_class])
    pairs = interleave(per_class)[:n]
    if not pairs:
        raise ValueError(
            f"dataset '{IMAGES}': split '{split}' has no images; each class needs at least 3"
        )
    items = [(f, mask_path(root, f, "images")) for _, f in pairs]
    files = [p for item in items for p in item if p is not None]
    params = {
        "split": split,
        "classes": list(names),
        "n": n,
        "n_per_class": n_per_class,
        "size": size,
        "seed": seed,
        "files": files_fingerprint(files),
        "n_files": len(files),
    }
    arrays = (store or Store()).cached_arrays(
        IMAGES, params, lambda: load_items(items, size, IMAGES, f"images {split}")
    )
    ds = ArrayDataset(
        arrays["images"],
        np.array([c for c, _ in pairs], np.int64),
        arrays["masks"],
        classes=names,
        transform=transform,
    )
    ds.files = tuple(str(f.relative_to(root)) for f, _ in items)
    return ds
