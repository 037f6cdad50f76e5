"""COCO-2017 subsets through pycocotools, for the segmentation chapter.

Expected files under ``data_root`` (the official archives unpacked side by side)::

    annotations/instances_val2017.json      val2017/<file_name>.jpg
    annotations/instances_train2017.json    train2017/<file_name>.jpg   (only for split "train")

A sample is one image that contains the requested class(es): ``image`` resized to ``size`` x
``size`` (``fit="crop"``: shorter side to ``size``, centre square; ``fit="pad"``: longer side
to ``size``, black borders), ``mask`` the union of every instance of the sample's class
(polygons, RLE and crowd regions alike, via ``COCO.annToMask``; resized with nearest
neighbours), ``label`` the index of that class in ``classes`` (the class covering the largest
area when an image holds several) and ``image_id`` the COCO id. ``nuclei_type`` is all zeros.

Splits: ``train`` reads train2017; ``val`` and ``test`` both read val2017 and divide it by
image id, odd ids to ``val`` and even ids to ``test``, so they never share an image whatever
the classes, sizes or seeds. Within a split the images are drawn in a seeded random order.

Class names are COCO category names (``cat``, ``dining table``...) or the Pascal VOC names
that torchvision's DeepLabv3 COCO weights predict (``aeroplane``, ``diningtable``,
``motorbike``, ``pottedplant``, ``sofa``, ``tvmonitor``), mapped to their COCO categories.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from xaistudy.data.folders import resize_image, resize_mask
from xaistudy.data.registry import (
    README_HINT,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    register_dataset,
    require,
)
from xaistudy.core.store import Store

log = logging.getLogger(__name__)

NAME = "coco"
LAYOUT = (
    "annotations/instances_{train2017,val2017}.json and the images in {train2017,val2017}/ "
    "(train2017 only for split 'train')"
)
#: Pascal VOC names (DeepLabv3's COCO weights) whose COCO category is spelt differently.
VOC_TO_COCO: dict[str, str] = {
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "motorbike": "motorcycle",
    "pottedplant": "potted plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}
FITS = ("crop", "pad")


def split_folder(split: str) -> str:
    """The COCO-2017 part a split reads: train2017 for ``train``, val2017 otherwise."""
    check_split(split)
    return "train2017" if split == "train" else "val2017"


def annotation_file(root: Path, folder: str) -> Path:
    return root / "annotations" / f"instances_{folder}.json"


def check_root(root: Path) -> None:
    """val2017's annotations and images must exist (train2017 is checked when it is read)."""
    require(annotation_file(root, "val2017"), "annotation file", NAME)
    require(root / "val2017", "image folder", NAME)


def parse_classes(classes: str | Sequence[str]) -> tuple[str, ...]:
    """``"cat,dog"`` or ``["cat", "dog"]`` -> ``("cat", "dog")``; a one-line error when empty."""
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    names = tuple(n.strip() for n in names if n.strip())
    if not names:
        raise ValueError(f"dataset '{NAME}': classes is empty; give e.g. 'cat' or 'cat,dog'")
    return names


def load_coco(path: Path) -> Any:
    """``pycocotools.coco.COCO`` of ``path`` (its messages silenced); one-line errors."""
    from pycocotools.coco import COCO

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as err:
        raise DataRootError(
            f"dataset '{NAME}': {path} is not a COCO instances file ({type(err).__name__}: "
            f"{err}; {README_HINT})"
        ) from None


def category_ids(coco: Any, classes: Sequence[str]) -> list[int]:
    """COCO category id of each class name (VOC names mapped); one line for unknown names."""
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    ids = []
    for name in classes:
        coco_name = VOC_TO_COCO.get(name, name)
        if coco_name not in by_name:
            raise ValueError(
                f"dataset '{NAME}': unknown class '{name}'; allowed: {', '.join(sorted(by_name))}"
            )
        ids.append(by_name[coco_name])
    return ids


def in_split(image_id: int, split: str) -> bool:
    """Train2017 images all belong to ``train``; val2017 ids: odd -> val, even -> test."""
    if split == "train":
        return True
    return (image_id % 2 == 1) == (split == "val")


def class_areas(coco: Any, image_id: int, cat_ids: Sequence[int]) -> np.ndarray:
    """Annotated area (px, crowd regions included) of each category in one image."""
    areas = np.zeros(len(cat_ids))
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=list(cat_ids))):
        areas[list(cat_ids).index(ann["category_id"])] += float(ann["area"])
    return areas


def select_images(
    coco: Any, cat_ids: Sequence[int], split: str, n: int, seed: int, min_area: float
) -> list[tuple[int, int]]:
    """Up to ``n`` (image id, label) pairs of ``split`` in a seeded random order.

    An image qualifies when the classes' summed annotated area is at least ``min_area`` of
    the image; its label is the class with the largest area.
    """
    candidates = sorted({i for c in cat_ids for i in coco.getImgIds(catIds=[c])})
    chosen = []
    for image_id in candidates:
        if not in_split(image_id, split):
            continue
        info = coco.imgs[image_id]
        areas = class_areas(coco, image_id, cat_ids)
        if areas.sum() >= min_area * info["width"] * info["height"] and areas.max() > 0:
            chosen.append((image_id, int(np.argmax(areas))))
    order = np.random.default_rng(np.random.SeedSequence([seed, 11])).permutation(len(chosen))
    return [chosen[i] for i in order[:n]]


def class_mask(coco: Any, image_id: int, cat_id: int) -> np.ndarray:
    """Union (H, W) bool of every instance of ``cat_id`` (polygons, RLE, crowd) in an image."""
    info = coco.imgs[image_id]
    mask = np.zeros((info["height"], info["width"]), bool)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=[cat_id], iscrowd=None)):
        mask |= coco.annToMask(ann).astype(bool)
    return mask


def fit_square(
    image: np.ndarray, mask: np.ndarray, size: int, fit: str = "crop"
) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 and mask (H, W) bool resized to ``size`` x ``size``.

    ``crop``: shorter side to ``size`` (bilinear; mask nearest), then the centred square.
    ``pad``: longer side to ``size``, centred on a black square (mask False outside).
    """
    if fit not in FITS:
        raise ValueError(f"dataset '{NAME}': unknown fit '{fit}'; allowed: {', '.join(FITS)}")
    h, w = mask.shape
    scale = size / (min(h, w) if fit == "crop" else max(h, w))
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    img, msk = resize_image(image, new_w, new_h), resize_mask(mask, new_w, new_h)
    if fit == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return img[top : top + size, left : left + size], msk[top : top + size, left : left + size]
    out_img = np.zeros((size, size, 3), np.uint8)
    out_msk = np.zeros((size, size), bool)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out_img[top : top + new_h, left : left + new_w] = img
    out_msk[top : top + new_h, left : left + new_w] = msk
    return out_img, out_msk


def read_image(root: Path, folder: str, info: dict[str, Any]) -> np.ndarray:
    """The RGB image of an annotation record; one-line errors for a missing or odd file."""
    path = require(root / folder / info["file_name"], "image", NAME)
    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"))
    if image.shape[:2] != (info["height"], info["width"]):
        raise DataRootError(
            f"dataset '{NAME}': {path} is {image.shape[1]}x{image.shape[0]} px but its "
            f"annotation says {info['width']}x{info['height']} ({README_HINT})"
        )
    return image


def load_subset(
    root: Path,
    split: str,
    n: int,
    size: int,
    seed: int,
    classes: Sequence[str],
    min_area: float,
    fit: str,
) -> dict[str, np.ndarray]:
    """Read the sampled images and masks of a split (see :func:`select_images`)."""
    folder = split_folder(split)
    coco = load_coco(annotation_file(root, folder))
    cat_ids = category_ids(coco, classes)
    picked = select_images(coco, cat_ids, split, n, seed, min_area)
    if not picked:
        raise ValueError(
            f"dataset '{NAME}': no {split} image in {folder} shows {', '.join(classes)} over at "
            f"least min_area={min_area:g} of the image"
        )
    if len(picked) < n:
        log.warning("coco %s: only %d of %d images qualify", split, len(picked), n)
    images, masks = [], []
    for image_id, label in tqdm(picked, desc=f"coco {split}"):
        info = coco.imgs[image_id]
        image = read_image(root, folder, info)
        img, msk = fit_square(image, class_mask(coco, image_id, cat_ids[label]), size, fit)
        images.append(img)
        masks.append(msk)
    return {
        "images": np.stack(images),
        "labels": np.array([label for _, label in picked], np.int64),
        "masks": np.stack(masks),
        "image_id": np.array([image_id for image_id, _ in picked], np.int64),
    }


@register_dataset(NAME, kind="coco", layout=LAYOUT, check_root=check_root)
def coco(
    split: str = "train",
    n: int = 200,
    size: int = 256,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path = "data/coco",
    classes: str | Sequence[str] = "cat",
    min_area: float = 0.05,
    fit: str = "crop",
) -> ArrayDataset:
    """COCO-2017 images showing ``classes`` (see the module docstring), ``n`` at most.

    ``min_area``: the least share of the image the classes' annotations must cover (COCO
    ``area`` fields, crowd regions included). ``fit``: ``crop`` or ``pad`` (to ``size``).
    Sampled arrays are cached in the store, keyed by the annotation file's fingerprint.
    """
    check_split(split)
    names = parse_classes(classes)
    if fit not in FITS:
        raise ValueError(f"dataset '{NAME}': unknown fit '{fit}'; allowed: {', '.join(FITS)}")
    if not 0 <= min_area < 1:
        raise ValueError(f"dataset '{NAME}': min_area must be in [0, 1), got {min_area}")
    root = Path(data_root)
    folder = split_folder(split)
    ann = require(annotation_file(root, folder), "annotation file", NAME)
    require(root / folder, "image folder", NAME)
    params = {
        "split": split,
        "n": n,
        "size": size,
        "seed": seed,
        "classes": list(names),
        "min_area": min_area,
        "fit": fit,
        "files": files_fingerprint([ann]),
    }
    arrays = (store or Store()).cached_arrays(
        NAME, params, lambda: load_subset(root, split, n, size, seed, names, min_area, fit)
    )
    return ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        classes=names,
        extra={"image_id": arrays["image_id"]},
        transform=transform,
    )
