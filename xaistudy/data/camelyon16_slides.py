"""CAMELYON16 slide files and tumour annotations.

Where the slides and their annotations lie under ``data_root`` (training slides, the official
testing set named by ``testing/reference.csv``), and the tumour annotation of a slide: ASAP XML
polygons ("Tumor", "_0", "_1" are tumour; "_2" and "Exclusion" are holes cut out of it)
rasterised at a patch's resolution, or a binary whole-slide mask TIFF. A pixel is tumour when
its centre lies inside; level-0 pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``. The
dataset itself is :mod:`xaistudy.data.camelyon16`.
"""

from __future__ import annotations

import csv
import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from skimage.draw import polygon as draw_polygon
from skimage.transform import resize

from xaistudy.data.registry import README_HINT, DataRootError

log = logging.getLogger(__name__)

NAME = "camelyon16"
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
