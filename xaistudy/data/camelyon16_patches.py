"""CAMELYON16 patches from slides: tissue, candidate patches, splits by slide, patch reading.

Tissue is Otsu's threshold on the HSV saturation of a low-resolution level; a grid of patches
covers each slide and a patch is a candidate when enough of it is tissue, with its exact tumour
fraction where the annotation comes near it. Slides are split into train / val / test by slide
and class; the drawn patches are read with their tumour masks (into memory-mapped arrays when the
store streams a large extraction). The dataset itself is :mod:`xaistudy.data.camelyon16`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu
from tqdm import tqdm

from xaistudy.core.store import Allocate
from xaistudy.data.camelyon16_slides import NAME, Slide, TumourSource
from xaistudy.data.registry import DataRootError


# -- tissue and candidate patches -----------------------------------------------------------
def tissue_mask(rgb: np.ndarray, min_saturation: float = 0.05) -> np.ndarray:
    """Tissue pixels of an RGB image: HSV saturation above its Otsu threshold.

    The threshold is at least ``min_saturation`` (a blank image has no tissue) and near-black
    pixels (scanner borders) are not tissue.
    """
    hsv = rgb2hsv(np.asarray(rgb)[..., :3])
    sat, val = hsv[..., 1], hsv[..., 2]
    threshold = threshold_otsu(sat) if np.ptp(sat) > 0 else 1.0
    return (sat > max(threshold, min_saturation)) & (val > 0.1)


def box_fractions(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of ``True`` pixels of ``mask`` in each box (N, 4) ``x0, y0, x1, y1`` (mask pixels).

    Box edges are rounded to whole pixels; a box always covers at least one pixel.
    """
    h, w = mask.shape
    ii = np.zeros((h + 1, w + 1), np.int64)
    ii[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    x0 = np.clip(np.floor(boxes[:, 0] + 0.5).astype(int), 0, w - 1)
    y0 = np.clip(np.floor(boxes[:, 1] + 0.5).astype(int), 0, h - 1)
    x1 = np.clip(np.maximum(np.floor(boxes[:, 2] + 0.5).astype(int), x0 + 1), 1, w)
    y1 = np.clip(np.maximum(np.floor(boxes[:, 3] + 0.5).astype(int), y0 + 1), 1, h)
    total = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
    return total / ((x1 - x0) * (y1 - y0))


def level_scale(slide: Any, level: int) -> tuple[float, float]:
    """Per-axis downsample of ``level`` from level-0 dimensions (x, y)."""
    (w0, h0), (w, h) = slide.level_dimensions[0], slide.level_dimensions[level]
    return w0 / w, h0 / h


def patch_grid(slide: Any, level: int, size: int) -> np.ndarray:
    """Level-0 boxes (N, 4) ``x0, y0, x1, y1`` of the non-overlapping ``size`` patches at
    ``level``, row by row."""
    w, h = slide.level_dimensions[level]
    sx, sy = level_scale(slide, level)
    rows, cols = np.meshgrid(np.arange(h // size), np.arange(w // size), indexing="ij")
    x0 = np.round(cols.ravel() * size * sx)
    y0 = np.round(rows.ravel() * size * sy)
    return np.stack([x0, y0, x0 + size * sx, y0 + size * sy], axis=1)


def _open_slide(path: Path, level: int):
    import tiffslide

    try:
        slide = tiffslide.TiffSlide(path)
    except Exception as err:  # a truncated or foreign file: name it in one line
        raise DataRootError(f"dataset '{NAME}': cannot read slide {path} ({err})") from None
    if not 0 <= level < slide.level_count:
        slide.close()
        raise DataRootError(
            f"dataset '{NAME}': slide {path.name} has levels 0-{slide.level_count - 1}; "
            f"level {level} was asked for"
        )
    return slide


def slide_candidates(
    slide_info: Slide,
    level: int,
    size: int,
    min_tissue: float,
    tissue_downsample: float,
) -> dict[str, np.ndarray]:
    """Candidate patches of one slide: level-0 ``x``, ``y`` and ``tissue``, ``tumour`` fractions.

    Tissue is measured on the level nearest ``tissue_downsample``; the tumour fraction is the
    exact share of the patch's mask for patches near the annotation, 0 elsewhere.
    """
    slide = _open_slide(slide_info.path, level)
    source = TumourSource(slide_info, slide.level_dimensions[0]) if slide_info.tumour else None
    try:
        low = slide.get_best_level_for_downsample(tissue_downsample * 1.0001)
        thumb = np.asarray(
            slide.read_region((0, 0), low, slide.level_dimensions[low], as_array=True)
        )
        tissue = tissue_mask(thumb)
        tx, ty = level_scale(slide, low)
        boxes = patch_grid(slide, level, size)
        thumb_boxes = boxes / np.array([tx, ty, tx, ty])
        tissue_frac = box_fractions(tissue, thumb_boxes)
        keep = tissue_frac >= min_tissue
        boxes, tissue_frac = boxes[keep], tissue_frac[keep]
        tumour_frac = np.zeros(len(boxes))
        if source is not None:
            near = _near_tumour(source, boxes, thumb_boxes[keep], tissue.shape, slide)
            scale = level_scale(slide, level)
            for k in np.flatnonzero(near):
                mask = source.patch(int(boxes[k, 0]), int(boxes[k, 1]), size, scale)
                tumour_frac[k] = mask.mean()
    finally:
        if source is not None:
            source.close()
        slide.close()
    return {
        "x": boxes[:, 0].astype(np.int64),
        "y": boxes[:, 1].astype(np.int64),
        "tissue": tissue_frac.astype(np.float32),
        "tumour": tumour_frac.astype(np.float32),
    }


def _near_tumour(
    source: TumourSource, boxes: np.ndarray, thumb_boxes: np.ndarray, shape, slide
) -> np.ndarray:
    """Patches that may hold tumour: polygon bounding boxes, or the mask TIFF's overview
    (at least four mask pixels per patch side, grown by one pixel)."""
    if source.polygons or source._mask is None:
        return source.touching(boxes)
    patch_w = boxes[0, 2] - boxes[0, 0] if len(boxes) else 1.0
    dims0 = slide.level_dimensions[0]
    step = max(min(patch_w / 4, dims0[0] / shape[1]), 1.0)
    over_shape = (max(int(dims0[1] / step), 1), max(int(dims0[0] / step), 1))
    overview = source.overview(over_shape, dims0)
    from scipy.ndimage import binary_dilation

    overview = binary_dilation(overview, iterations=1)
    sx, sy = dims0[0] / over_shape[1], dims0[1] / over_shape[0]
    return box_fractions(overview, boxes / np.array([sx, sy, sx, sy])) > 0


# -- splits and sampling --------------------------------------------------------------------
def split_slides(
    names: Sequence[str], seed: int, shares: Sequence[float], code: int
) -> list[list[str]]:
    """``names`` shuffled by ``seed`` and cut into ``len(shares) + 1`` parts.

    The last ``len(shares)`` parts get ``max(1, round(share * n))`` slides each when there
    are enough slides for every part to get one, else none; the first part gets the rest.
    """
    order = np.random.default_rng(np.random.SeedSequence([seed, 16, code])).permutation(len(names))
    shuffled = [names[i] for i in order]
    enough = len(names) > len(shares)
    counts = [max(1, round(s * len(names))) if enough else 0 for s in shares]
    first = len(names) - sum(counts)
    parts, start = [shuffled[:first]], first
    for c in counts:
        parts.append(sorted(shuffled[start : start + c]))
        start += c
    parts[0] = sorted(parts[0])
    return parts


def split_assignment(
    tumour: Sequence[Slide],
    normal: Sequence[Slide],
    seed: int,
    val_share: float,
    test_share: float,
    testing: tuple[Sequence[Slide], Sequence[Slide]] | None = None,
) -> dict[str, list[Slide]]:
    """Slides of each split (train, val, test), by slide and class.

    ``testing`` (tumour, normal slides) replaces the test split when given.
    """
    shares = [val_share] if testing is not None else [val_share, test_share]
    out: dict[str, list[Slide]] = {"train": [], "val": [], "test": []}
    for code, slides in enumerate((tumour, normal)):
        by_name = {s.name: s for s in slides}
        parts = split_slides(sorted(by_name), seed, shares, code)
        for split, names in zip(("train", "val", "test"), parts, strict=False):
            out[split] += [by_name[n] for n in names]
    if testing is not None:
        out["test"] = list(testing[0]) + list(testing[1])
    return out


def labels_of(
    cand: dict[str, np.ndarray],
    tumour_slide: bool,
    min_tumour: float,
    normals: bool,
    max_tumour: float = 1.0,
) -> np.ndarray:
    """Per candidate: 1 tumour, 0 normal, -1 skipped (ambiguous or not allowed)."""
    label = np.full(len(cand["x"]), -1, np.int64)
    label[(cand["tumour"] >= min_tumour) & (cand["tumour"] <= max_tumour)] = 1
    if not tumour_slide or normals:
        label[cand["tumour"] == 0] = 0
    return label


def read_patches(
    slides: Sequence[Slide],
    which: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    level: int,
    size: int,
    desc: str,
    allocate: Allocate | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, size, size, 3) uint8 and tumour masks (N, size, size) of the drawn patches
    (in arrays from ``allocate(name, shape, dtype)`` when given, e.g. memory-mapped files)."""
    n = len(which)
    new = allocate or (lambda _name, shape, dtype: np.zeros(shape, dtype))
    images = new("images", (n, size, size, 3), np.uint8)
    masks = new("masks", (n, size, size), bool)
    bar = tqdm(total=n, desc=desc)
    for s in np.unique(which):
        info = slides[s]
        slide = _open_slide(info.path, level)
        source = TumourSource(info, slide.level_dimensions[0]) if info.tumour else None
        scale = level_scale(slide, level)
        try:
            for k in np.flatnonzero(which == s):
                corner = (int(xs[k]), int(ys[k]))
                region = slide.read_region(corner, level, (size, size), as_array=True)
                images[k] = np.asarray(region)[..., :3]
                if source is not None:
                    masks[k] = source.patch(int(xs[k]), int(ys[k]), size, scale)
                bar.update(1)
        finally:
            if source is not None:
                source.close()
            slide.close()
    bar.close()
    return images, masks
