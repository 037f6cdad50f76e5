"""CAMELYON16 whole-slide images -> tumour and normal patches with masks.

The dataset (Bejnordi et al. 2017; CC0) holds H&E whole-slide images of sentinel lymph nodes as
pyramidal tiled TIFFs, with the metastases outlined as polygons in ASAP XML files and, in some
releases, as binary whole-slide mask TIFFs. Expected under ``data_root``::

    training/tumor/tumor_NNN.tif
    training/normal/normal_NNN.tif
    training/lesion_annotations/tumor_NNN.xml      (or training/masks/tumor_NNN_mask.tif)
    testing/images/test_NNN.tif                    (optional, test_source="testing")
    testing/lesion_annotations/test_NNN.xml        (optional)
    testing/reference.csv                          (optional: test_NNN,Tumor|Normal,...)

From slides to patches:

1. **Tissue** is found on a low-resolution level (the coarsest whose downsample does not
   exceed ``tissue_downsample``) by Otsu's threshold on the HSV saturation, the usual CAMELYON
   preprocessing.
2. A grid of ``size`` x ``size`` patches at ``level`` covers each slide; a patch is a
   candidate when at least ``min_tissue`` of it is tissue. Its tumour fraction is exact
   (the patch's own tumour mask) wherever the annotation comes near it, else 0.
3. A patch is **tumour** when its tumour fraction is at least ``min_tumour`` (and at most
   ``max_tumour``: below 1 it keeps only patches that also show normal tissue), **normal** when
   it is 0 and it lies on a normal slide (or, with ``normals_from_tumour_slides``, anywhere);
   anything in between is skipped.
4. ``n`` patches are drawn per split, deterministically from ``seed``: sample ``i`` is tumour
   when ``i`` is odd (as in ``synthetic-he``), and a smaller ``n`` gives a prefix of a larger.

**Splits never share a slide.** Tumour and normal training slides are shuffled by ``seed``
separately and split by slide into train / val / test (``val_share`` and ``test_share`` of
each class, at least one slide each when there are three or more): the paper's protocol, which
divides the annotated slides. With ``test_source="testing"`` the test split is the official
testing set instead (tumour slides with annotations, normal slides named by
``testing/reference.csv``) and the training slides are split into train / val only.

Tumour masks come from the XML polygons ("Tumor", "_0", "_1" are tumour; "_2" and "Exclusion"
are holes cut out of it) rasterised at the patch's resolution, or from the binary mask TIFFs
(``annotations``: ``auto`` prefers a mask TIFF when the slide has one). A pixel is tumour when
its centre lies inside; level-0 pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.

Extraction is cached in the artifact store: one file per slide with its candidate patches (an
interrupted extraction resumes at the next slide), then the drawn patches of each split, keyed
by the sizes and a fingerprint of the slide and annotation files.
"""

from __future__ import annotations

import csv
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from skimage.color import rgb2hsv
from skimage.draw import polygon as draw_polygon
from skimage.filters import threshold_otsu
from skimage.transform import resize
from tqdm.auto import tqdm

from xaistudy.data.registry import (
    README_HINT,
    SPLITS,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    register_dataset,
)
from xaistudy.data.synthetic import HE_CLASSES
from xaistudy.store import STREAM_BYTES, Allocate, Store

log = logging.getLogger(__name__)

NAME = "camelyon16"
LAYOUT = (
    "training/tumor/tumor_NNN.tif, training/normal/normal_NNN.tif, "
    "training/lesion_annotations/tumor_NNN.xml (ASAP XML) or training/masks/tumor_NNN_mask.tif; "
    "optional testing/images/test_NNN.tif, testing/lesion_annotations/test_NNN.xml, "
    "testing/reference.csv"
)
#: ASAP annotation groups whose polygons are tumour; the hole groups are cut out of them
TUMOUR_GROUPS = ("Tumor", "_0", "_1", "metastases")
HOLE_GROUPS = ("_2", "Exclusion")
#: slide id offsets of the extra ``slide_id`` key: tumour NNN, normal 1000 + NNN, test 2000 + NNN
SLIDE_ID_OFFSET = {"tumor": 0, "normal": 1000, "test": 2000}

Annotations = Literal["auto", "masks", "xml"]
TestSource = Literal["training", "testing"]


# -- files ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slide:
    """One whole-slide image and where its tumour annotation lives (none for normal slides)."""

    path: Path
    tumour: bool
    xml: Path | None = None
    mask: Path | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def slide_id(self) -> int:
        """``tumor_012`` -> 12, ``normal_012`` -> 1012, ``test_012`` -> 2012."""
        prefix, _, number = self.name.lower().rpartition("_")
        return SLIDE_ID_OFFSET.get(prefix, 3000) + (int(number) if number.isdigit() else 0)

    def files(self) -> list[Path]:
        return [p for p in (self.path, self.xml, self.mask) if p is not None]


def _annotation_paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / "lesion_annotations" / f"{name}.xml", folder / "masks" / f"{name}_mask.tif"


def _choose_annotation(
    xml: Path, mask: Path, annotations: Annotations
) -> tuple[Path | None, Path | None]:
    """The annotation files used for a tumour slide under ``annotations`` (None where unused)."""
    has_xml, has_mask = xml.is_file(), mask.is_file()
    if annotations == "xml":
        return (xml if has_xml else None), None
    if annotations == "masks":
        return None, (mask if has_mask else None)
    if has_mask:
        return None, mask
    return (xml if has_xml else None), None


def _missing_annotation(slide: str, xml: Path, mask: Path, annotations: Annotations) -> str:
    wanted = {"xml": f"{xml}", "masks": f"{mask}"}.get(annotations, f"{xml} (or {mask})")
    zipped = xml.parent.with_suffix(".zip")
    hint = ""
    if zipped.is_file() and annotations != "masks":
        hint = f"; found {zipped.name}: extract it"
    return (
        f"dataset '{NAME}': tumour slide {slide} has no annotation {wanted}{hint} ({README_HINT})"
    )


def training_slides(
    root: Path, annotations: Annotations = "auto"
) -> tuple[list[Slide], list[Slide]]:
    """Tumour and normal training slides (sorted); a one-line error for what is missing."""
    tumour_dir, normal_dir = root / "training" / "tumor", root / "training" / "normal"
    tumour = _tifs(tumour_dir, "tumor_*.tif", "tumour slides")
    normal = _tifs(normal_dir, "normal_*.tif", "normal slides")
    slides = []
    for path in tumour:
        xml, mask = _annotation_paths(root / "training", path.stem)
        got_xml, got_mask = _choose_annotation(xml, mask, annotations)
        if got_xml is None and got_mask is None:
            raise DataRootError(_missing_annotation(path.stem, xml, mask, annotations))
        slides.append(Slide(path, True, got_xml, got_mask))
    return slides, [Slide(p, False) for p in normal]


def testing_slides(
    root: Path, annotations: Annotations = "auto"
) -> tuple[list[Slide], list[Slide]]:
    """Tumour and normal slides of the official testing set (needs ``testing/reference.csv``).

    Tumour slides without an annotation are left out (with a warning): they can give neither
    tumour masks nor tumour-free patches.
    """
    folder = root / "testing"
    images = _tifs(folder / "images", "*.tif", "testing slides")
    reference = folder / "reference.csv"
    if not reference.is_file():
        raise DataRootError(
            f"dataset '{NAME}': test_source 'testing' needs {reference} (test_NNN,Tumor|Normal) "
            f"to tell normal from tumour testing slides ({README_HINT})"
        )
    labels = read_reference(reference)
    tumour, normal = [], []
    for path in images:
        label = labels.get(path.stem.lower())
        if label is None:
            log.warning("%s is not in %s: left out", path.name, reference.name)
        elif label == "normal":
            normal.append(Slide(path, False))
        else:
            xml, mask = _annotation_paths(folder, path.stem)
            got_xml, got_mask = _choose_annotation(xml, mask, annotations)
            if got_xml is None and got_mask is None:
                log.warning("tumour test slide %s has no annotation: left out", path.name)
                continue
            tumour.append(Slide(path, True, got_xml, got_mask))
    return tumour, normal


def read_reference(path: Path) -> dict[str, str]:
    """``testing/reference.csv`` as {slide name (lower case): "tumor" | "normal"}."""
    out = {}
    with open(path, newline="") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[1].strip().lower() in ("tumor", "tumour", "normal"):
                label = row[1].strip().lower().replace("tumour", "tumor")
                out[Path(row[0].strip()).stem.lower()] = label
    return out


def _tifs(folder: Path, pattern: str, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataRootError(
            f"dataset '{NAME}': missing folder {folder} of {what} ({pattern}; {README_HINT})"
        )
    found = sorted(folder.glob(pattern))
    if not found:
        raise DataRootError(f"dataset '{NAME}': no {what} {pattern} in {folder} ({README_HINT})")
    return found


def check_root(root: Path) -> None:
    """Fast layout check: slides present, an annotation for every tumour slide (one line)."""
    tumour_dir = root / "training" / "tumor"
    tumour = _tifs(tumour_dir, "tumor_*.tif", "tumour slides")
    _tifs(root / "training" / "normal", "normal_*.tif", "normal slides")
    for path in tumour:
        xml, mask = _annotation_paths(root / "training", path.stem)
        if not (xml.is_file() or mask.is_file()):
            raise DataRootError(_missing_annotation(path.stem, xml, mask, "auto"))


# -- annotations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Polygon:
    """A closed polygon in level-0 pixel coordinates: ``xy`` (K, 2) as (x, y); holes cut out."""

    xy: np.ndarray
    hole: bool
    group: str = ""


def _coordinate(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float(value.replace(",", "."))


def read_asap_xml(path: str | Path) -> list[Polygon]:
    """The polygons of an ASAP annotation file (points and lines with < 3 vertices are skipped).

    Groups ``_2`` and ``Exclusion`` are holes; every other group is tumour.
    """
    path = Path(path)
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        raise DataRootError(f"dataset '{NAME}': {path} is not valid XML ({err})") from None
    polygons = []
    for ann in tree.getroot().iter("Annotation"):
        coords = sorted(ann.iter("Coordinate"), key=lambda c: int(float(c.get("Order", "0") or 0)))
        xy = np.array([[_coordinate(c.get("X")), _coordinate(c.get("Y"))] for c in coords])
        if len(xy) < 3:
            continue
        group = ann.get("PartOfGroup", "")
        if group not in TUMOUR_GROUPS + HOLE_GROUPS:
            log.warning("%s: annotation group %r read as tumour", path.name, group)
        polygons.append(Polygon(xy, group in HOLE_GROUPS, group))
    return polygons


def rasterise(
    polygons: Sequence[Polygon],
    x0: float,
    y0: float,
    shape: tuple[int, int],
    scale: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Tumour mask (H, W) of the region whose top-left level-0 corner is ``(x0, y0)``.

    Pixel ``(i, j)`` covers level-0 ``[x0 + j sx, x0 + (j + 1) sx)`` by ``[y0 + i sy, ...)``
    (``scale = (sx, sy)``, the level's downsample) and is tumour when its centre lies inside a
    tumour polygon and outside every hole.
    """
    sx, sy = scale
    h, w = shape
    tumour, holes = np.zeros(shape, bool), np.zeros(shape, bool)
    for poly in polygons:
        cols = (poly.xy[:, 0] - x0) / sx - 0.5
        rows = (poly.xy[:, 1] - y0) / sy - 0.5
        if cols.max() < -1 or rows.max() < -1 or cols.min() > w or rows.min() > h:
            continue
        rr, cc = draw_polygon(rows, cols, shape=shape)
        (holes if poly.hole else tumour)[rr, cc] = True
    return tumour & ~holes


def _bbox(polygons: Sequence[Polygon]) -> np.ndarray:
    """Level-0 bounding boxes (P, 4) ``x_min, y_min, x_max, y_max`` of ``polygons``."""
    boxes = [np.r_[p.xy.min(0), p.xy.max(0)] for p in polygons]
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


class TumourSource:
    """A slide's tumour annotation: XML polygons or a binary mask TIFF (values > 0 = tumour)."""

    def __init__(self, slide: Slide, slide_dims: tuple[int, int]):
        self.slide = slide
        self.polygons: list[Polygon] = []
        self._mask = None
        if slide.mask is not None:
            import tiffslide

            self._mask = tiffslide.TiffSlide(slide.mask)
            mw, mh = self._mask.level_dimensions[0]
            # mask level 0 may be coarser than the slide's level 0
            self._mask_scale = (mw / slide_dims[0], mh / slide_dims[1])
        elif slide.xml is not None:
            self.polygons = read_asap_xml(slide.xml)
        self._boxes = _bbox(self.polygons)

    def close(self) -> None:
        if self._mask is not None:
            self._mask.close()

    def patch(self, x0: int, y0: int, size: int, scale: tuple[float, float]) -> np.ndarray:
        """Tumour mask (size, size) of the patch at level-0 ``(x0, y0)``, downsample ``scale``."""
        if self._mask is None:
            box = (x0, y0, x0 + size * scale[0], y0 + size * scale[1])
            near = [self.polygons[k] for k in np.flatnonzero(self._overlaps(box))]
            return rasterise(near, x0, y0, (size, size), scale)
        return self._read_mask(x0, y0, size * scale[0], size * scale[1], (size, size))

    def _read_mask(self, x0: float, y0: float, w0: float, h0: float, shape) -> np.ndarray:
        """Mask of the level-0 box ``(x0, y0, w0, h0)`` resampled (nearest) to ``shape``."""
        mx, my = self._mask_scale
        level = self._mask.get_best_level_for_downsample(max(w0 * mx / shape[1], 1.0) * 1.0001)
        ds_x = self._mask.level_dimensions[0][0] / self._mask.level_dimensions[level][0]
        ds_y = self._mask.level_dimensions[0][1] / self._mask.level_dimensions[level][1]
        w = max(int(np.ceil(w0 * mx / ds_x)), 1)
        h = max(int(np.ceil(h0 * my / ds_y)), 1)
        region = self._mask.read_region(
            (int(round(x0 * mx)), int(round(y0 * my))), level, (w, h), as_array=True
        )
        region = np.asarray(region)
        region = region[..., 0] if region.ndim == 3 else region
        if region.shape != tuple(shape):
            region = resize(region, shape, order=0, preserve_range=True, anti_aliasing=False)
        return region > 0

    def overview(self, shape: tuple[int, int], dims0: tuple[int, int]) -> np.ndarray | None:
        """The whole-slide tumour mask at ``shape`` (mask TIFFs only; None for polygons)."""
        if self._mask is None:
            return None
        return self._read_mask(0, 0, dims0[0], dims0[1], shape)

    def _overlaps(self, box: Sequence[float]) -> np.ndarray:
        """Which polygons' bounding boxes overlap the level-0 ``box`` (x0, y0, x1, y1)."""
        b = self._boxes
        return (b[:, 0] <= box[2]) & (b[:, 2] >= box[0]) & (b[:, 1] <= box[3]) & (b[:, 3] >= box[1])

    def touching(self, boxes: np.ndarray) -> np.ndarray:
        """Which level-0 boxes (N, 4) may hold tumour (polygons: bounding-box overlap)."""
        hit = np.zeros(len(boxes), bool)
        tumour_boxes = self._boxes[np.array([not p.hole for p in self.polygons], bool)]
        for x_min, y_min, x_max, y_max in tumour_boxes:
            hit |= (
                (boxes[:, 0] <= x_max)
                & (boxes[:, 2] >= x_min)
                & (boxes[:, 1] <= y_max)
                & (boxes[:, 3] >= y_min)
            )
        return hit


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


# -- the dataset ----------------------------------------------------------------------------
def _candidates(
    slides: Sequence[Slide],
    store: Store,
    level: int,
    size: int,
    min_tissue: float,
    tissue_downsample: float,
    desc: str,
) -> list[dict[str, np.ndarray]]:
    """Candidates of every slide, one stored item per slide (resumable)."""
    params = {
        "level": level,
        "size": size,
        "min_tissue": min_tissue,
        "tissue_downsample": tissue_downsample,
    }
    items = [_ItemKey(s) for s in slides]

    def compute_one(item: _ItemKey) -> dict[str, np.ndarray]:
        return slide_candidates(item.slide, level, size, min_tissue, tissue_downsample)

    return store.cached_items(f"{NAME}-candidates", params, items, compute_one, desc=desc)


class _ItemKey:
    """A slide as a store item: named by the slide and a fingerprint of its files."""

    def __init__(self, slide: Slide):
        self.slide = slide
        annotation = "xml" if slide.xml else "mask" if slide.mask else "none"
        self._key = f"{slide.name}-{annotation}-{files_fingerprint(slide.files())}"

    def __str__(self) -> str:
        return self._key


def _draw(pool: np.ndarray, k: int, seed: int, split: str, label: int) -> np.ndarray:
    code = SPLITS.index(split)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17, code, label]))
    return pool[rng.permutation(len(pool))[:k]]


def _read_patches(
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


@register_dataset(NAME, kind="tumour-tiles", layout=LAYOUT, check_root=check_root)
def camelyon16(
    split: str = "train",
    n: int = 200,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path = "data/camelyon16",
    level: int = 0,
    min_tissue: float = 0.5,
    min_tumour: float = 0.5,
    max_tumour: float = 1.0,
    annotations: Annotations = "auto",
    normals_from_tumour_slides: bool = False,
    test_source: TestSource = "training",
    val_share: float = 0.15,
    test_share: float = 0.15,
    tissue_downsample: float = 32.0,
    exclude: Sequence[str] = (),
) -> ArrayDataset:
    """CAMELYON16 patches, normal (0) vs tumour (1), balanced; sample ``i`` is tumour when odd.

    ``size`` px patches read at ``level``; ``mask`` is the patch's tumour mask; extra keys
    ``slide_id`` (tumour NNN, normal 1000 + NNN, test 2000 + NNN) and the level-0 corner
    ``x``, ``y``. Options: see the module docstring; ``exclude`` names slides to leave out
    (e.g. mislabelled ones).
    """
    check_split(split)
    _check_options(
        n=n,
        size=size,
        level=level,
        min_tissue=min_tissue,
        min_tumour=min_tumour,
        max_tumour=max_tumour,
        annotations=annotations,
        test_source=test_source,
        val_share=val_share,
        test_share=test_share,
        tissue_downsample=tissue_downsample,
    )
    root = Path(data_root)
    store = store or Store()
    tumour, normal = training_slides(root, annotations)
    drop = {str(e) for e in exclude}
    tumour = [s for s in tumour if s.name not in drop]
    normal = [s for s in normal if s.name not in drop]
    testing = None
    if test_source == "testing":
        t_tumour, t_normal = testing_slides(root, annotations)
        testing = (
            [s for s in t_tumour if s.name not in drop],
            [s for s in t_normal if s.name not in drop],
        )
    slides = split_assignment(tumour, normal, seed, val_share, test_share, testing)[split]
    n_tumour_slides = sum(s.tumour for s in slides)
    if n_tumour_slides == 0 or (len(slides) == n_tumour_slides and not normals_from_tumour_slides):
        raise DataRootError(
            f"dataset '{NAME}': split '{split}' has {n_tumour_slides} tumour and "
            f"{len(slides) - n_tumour_slides} normal slides; each split needs both (split by "
            f"slide: at least 3 tumour and 3 normal slides, {README_HINT})"
        )
    fingerprint = files_fingerprint(p for s in slides for p in s.files())
    params = {
        "split": split,
        "n": n,
        "size": size,
        "seed": seed,
        "level": level,
        "min_tissue": min_tissue,
        "min_tumour": min_tumour,
        "max_tumour": max_tumour,
        "annotations": annotations,
        "normals": normals_from_tumour_slides,
        "test_source": test_source,
        "val_share": val_share,
        "test_share": test_share,
        "tissue_downsample": tissue_downsample,
        "slides": [s.name for s in slides],
        "files": fingerprint,
    }

    def compute(allocate: Allocate | None = None) -> dict[str, np.ndarray]:
        cands = _candidates(
            slides,
            store,
            level,
            size,
            min_tissue,
            tissue_downsample,
            desc=f"{NAME} {split}: slides",
        )
        which, xs, ys, labels = [], [], [], []
        for k, (info, cand) in enumerate(zip(slides, cands, strict=True)):
            lab = labels_of(cand, info.tumour, min_tumour, normals_from_tumour_slides, max_tumour)
            ok = lab >= 0
            which.append(np.full(ok.sum(), k))
            xs.append(cand["x"][ok])
            ys.append(cand["y"][ok])
            labels.append(lab[ok])
        which, xs, ys, labels = (np.concatenate(a) for a in (which, xs, ys, labels))
        need = {1: n // 2, 0: n - n // 2}
        found = {c: int((labels == c).sum()) for c in (0, 1)}
        if found[1] < need[1] or found[0] < need[0]:
            raise DataRootError(
                f"dataset '{NAME}': split '{split}' has {found[1]} tumour and {found[0]} normal "
                f"patches ({n_tumour_slides} tumour / {len(slides) - n_tumour_slides} normal "
                f"slides, {size} px at level {level}); n={n} needs {need[1]} and {need[0]}: "
                f"lower n or change size, level, min_tissue, min_tumour, max_tumour"
            )
        picks = {c: _draw(np.flatnonzero(labels == c), need[c], seed, split, c) for c in (0, 1)}
        order = np.empty(n, np.int64)
        order[1::2], order[0::2] = picks[1], picks[0]
        images, masks = _read_patches(
            slides, which[order], xs[order], ys[order], level, size,
            desc=f"{NAME} {split}: patches", allocate=allocate,
        )  # fmt: skip
        slide_ids = np.array([s.slide_id for s in slides])[which[order]]
        return {
            "images": images,
            "labels": labels[order],
            "masks": masks,
            "slide_id": slide_ids,
            "x": xs[order],
            "y": ys[order],
        }

    big = n * size * size * 3 > STREAM_BYTES  # patches written to memory-mapped files
    arrays = store.cached_arrays(NAME, params, compute, stream=big)
    dataset = ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        classes=HE_CLASSES,
        extra={k: arrays[k] for k in ("slide_id", "x", "y")},
        transform=transform,
    )
    dataset.fingerprint = fingerprint
    dataset.slides = [s.name for s in slides]
    return dataset


def _check_options(**o: Any) -> None:
    """One-line :class:`ValueError` for the first option out of its range."""
    checks: Iterable[tuple[bool, str]] = [
        (o["n"] >= 2, "n must be >= 2"),
        (o["size"] >= 8, "size must be >= 8"),
        (o["level"] >= 0, "level must be >= 0"),
        (0 < o["min_tissue"] <= 1, "min_tissue must be in (0, 1]"),
        (0 < o["min_tumour"] <= o["max_tumour"] <= 1, "need 0 < min_tumour <= max_tumour <= 1"),
        (o["annotations"] in ("auto", "masks", "xml"), "annotations must be auto, masks or xml"),
        (o["test_source"] in ("training", "testing"), "test_source must be training or testing"),
        (0 < o["val_share"] < 1, "val_share must be in (0, 1)"),
        (
            0 <= o["test_share"] and o["val_share"] + o["test_share"] < 1,
            "test_share must be >= 0 with val_share + test_share < 1",
        ),
        (o["tissue_downsample"] >= 1, "tissue_downsample must be >= 1"),
    ]
    given = ", ".join(f"{k}={v!r}" for k, v in o.items())
    for ok, message in checks:
        if not ok:
            raise ValueError(f"dataset '{NAME}': {message} (got {given})")
