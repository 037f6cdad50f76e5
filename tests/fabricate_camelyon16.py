"""Small CAMELYON16-format files for the tests: pyramidal tiled TIFF slides, ASAP XML, masks.

A fabricated slide is pink "tissue" (a blob of stroma with small dark nuclei) on a near-white
background; a tumour slide has a purple "tumour" polygon inside the tissue, optionally with a
hole (ASAP group ``_2``) of normal tissue. Slides are written like the CAMELYON16 files: a
tiled RGB TIFF whose pyramid levels are successive pages of half the size (what OpenSlide
calls a generic tiled TIFF); masks are single-channel pyramids with 255 = tumour.

Ground truth here is the fabricator's own: the level-0 tumour raster marks a pixel ``(i, j)``
as tumour when its centre ``(j + 0.5, i + 0.5)`` lies inside the polygon (and outside holes),
computed with matplotlib's point-in-polygon test, not with the loader's rasteriser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from matplotlib.path import Path as MplPath
from scipy import ndimage

BACKGROUND = (242, 240, 244)
TISSUE = (226, 150, 196)  # eosin pink
TUMOUR = (128, 64, 160)  # haematoxylin-rich purple
NUCLEUS = (90, 50, 130)
MPP = 0.243  # CAMELYON16 level-0 microns per pixel


@dataclass
class FabricatedSlide:
    """What was drawn: the level images, the tissue and tumour rasters, the polygons."""

    name: str
    levels: list[np.ndarray]
    tissue: np.ndarray
    tumour: np.ndarray
    polygons: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (group, xy)


def inside(polygons: list[tuple[str, np.ndarray]], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Whether points (x, y) in level-0 coordinates are tumour: inside a polygon, not a hole."""
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    tumour = np.zeros(len(pts), bool)
    hole = np.zeros(len(pts), bool)
    for group, xy in polygons:
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        near = np.flatnonzero(np.all((pts >= lo) & (pts <= hi), axis=1))  # bounding box first
        hit = np.zeros(len(pts), bool)
        hit[near] = MplPath(xy).contains_points(pts[near])
        if group in ("_2", "Exclusion"):
            hole |= hit
        else:
            tumour |= hit
    return (tumour & ~hole).reshape(xs.shape)


def centre_raster(
    polygons: list[tuple[str, np.ndarray]],
    x0: float,
    y0: float,
    shape: tuple[int, int],
    ds: float = 1.0,
) -> np.ndarray:
    """Tumour raster of a region: pixel (i, j) centre at level-0 ``x0 + (j + 0.5) ds``."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return inside(polygons, x0 + (cols + 0.5) * ds, y0 + (rows + 0.5) * ds)


def star_polygon(
    rng: np.random.Generator, cx: float, cy: float, radius: float, k: int = 14
) -> np.ndarray:
    """A closed irregular polygon (k vertices, float coordinates) around ``(cx, cy)``."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = radius * rng.uniform(0.7, 1.0, k)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def draw_slide(
    name: str,
    side: int = 1024,
    tumour: bool = True,
    hole: bool = True,
    n_levels: int = 3,
    seed: int = 0,
) -> FabricatedSlide:
    """Render a slide of ``side`` px: tissue blob, nuclei, a tumour polygon (and hole)."""
    rng = np.random.default_rng(seed)
    c = side / 2
    tissue_poly = star_polygon(rng, c, c, 0.46 * side, k=24)
    tissue = centre_raster([("tissue", tissue_poly)], 0, 0, (side, side))
    image = np.empty((side, side, 3), np.float32)
    image[:] = BACKGROUND
    image[tissue] = TISSUE
    polygons: list[tuple[str, np.ndarray]] = []
    if tumour:
        polygons.append(("_0", star_polygon(rng, c * 0.9, c * 1.05, 0.28 * side)))
        if hole:
            polygons.append(("_2", star_polygon(rng, c * 0.9, c * 1.05, 0.07 * side, k=8)))
    tumour_mask = centre_raster(polygons, 0, 0, (side, side)) if polygons else tissue & False
    image[tumour_mask] = TUMOUR
    noise = ndimage.gaussian_filter(rng.random((side, side)), 1.5)
    dense, sparse = np.quantile(noise, [0.8, 0.94])  # tumour nuclei are crowded
    nuclei = np.where(tumour_mask, noise > dense, noise > sparse) & tissue
    image[nuclei] = NUCLEUS
    image += rng.normal(0, 4, image.shape)
    level0 = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return FabricatedSlide(name, pyramid(level0, n_levels), tissue, tumour_mask, polygons)


def pyramid(level0: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """``level0`` and its 2x block-mean reductions."""
    levels = [level0]
    for _ in range(n_levels - 1):
        prev = levels[-1].astype(np.float32)
        h, w = prev.shape[0] // 2 * 2, prev.shape[1] // 2 * 2
        prev = prev[:h, :w]
        half = (prev[0::2, 0::2] + prev[1::2, 0::2] + prev[0::2, 1::2] + prev[1::2, 1::2]) / 4
        levels.append(np.clip(np.rint(half), 0, 255).astype(levels[0].dtype))
    return levels


def write_pyramid_tiff(path: Path, levels: list[np.ndarray], tile: int = 256) -> Path:
    """A tiled TIFF with one page per level (reduced-resolution pages after the first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    res = 1e4 / MPP  # pixels per centimetre
    with tifffile.TiffWriter(path) as tw:
        for k, img in enumerate(levels):
            t = min(tile, 16 * (min(img.shape[:2]) // 16))
            tw.write(
                img,
                tile=(t, t),
                photometric="rgb" if img.ndim == 3 else "minisblack",
                subfiletype=1 if k else 0,
                resolution=(res / 2**k, res / 2**k),
                resolutionunit="CENTIMETER",
            )
    return path


def write_asap_xml(path: Path, polygons: list[tuple[str, np.ndarray]]) -> Path:
    """An ASAP annotation file with one polygon per (group, xy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['<?xml version="1.0"?>', "<ASAP_Annotations>", "\t<Annotations>"]
    for k, (group, xy) in enumerate(polygons):
        lines.append(
            f'\t\t<Annotation Name="Annotation {k}" Type="Polygon" PartOfGroup="{group}" '
            'Color="#F4FA58">'
        )
        lines.append("\t\t\t<Coordinates>")
        for order, (x, y) in enumerate(xy):
            lines.append(f'\t\t\t\t<Coordinate Order="{order}" X="{x:.4f}" Y="{y:.4f}" />')
        lines += ["\t\t\t</Coordinates>", "\t\t</Annotation>"]
    lines += ["\t</Annotations>", "\t<AnnotationGroups>"]
    for group in sorted({g for g, _ in polygons}):
        lines.append(f'\t\t<Group Name="{group}" PartOfGroup="None" Color="#64FE2E">')
        lines.append("\t\t\t<Attributes />\n\t\t</Group>")
    lines += ["\t</AnnotationGroups>", "</ASAP_Annotations>"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_mask_tiff(path: Path, tumour: np.ndarray, n_levels: int = 3) -> Path:
    """A binary whole-slide mask pyramid (uint8, 255 = tumour)."""
    levels = [tumour.astype(np.uint8) * 255]
    for _ in range(n_levels - 1):
        prev = levels[-1]
        half = pyramid(prev[..., None], 2)[1][..., 0]
        levels.append(np.where(half >= 128, 255, 0).astype(np.uint8))
    return write_pyramid_tiff(path, levels)


def make_mini_camelyon(
    root: str | Path,
    n_tumour: int = 3,
    n_normal: int = 3,
    side: int = 1024,
    masks: bool = False,
    xml: bool = True,
    testing: bool = False,
    seed: int = 0,
) -> dict[str, FabricatedSlide]:
    """A mini CAMELYON16 folder under ``root``; returns what was drawn, by slide name.

    ``training/tumor`` + ``training/lesion_annotations`` (``xml``) and/or ``training/masks``
    (``masks``), ``training/normal``; with ``testing``, ``testing/images`` (one tumour and one
    normal slide), their annotations and ``testing/reference.csv``. The defaults (3 + 3 slides
    of 1024 px) hold enough 64 px patches for the ibo smoke profile in every split.
    """
    root = Path(root)
    drawn: dict[str, FabricatedSlide] = {}
    specs = [("training", "tumor", f"tumor_{i + 1:03d}", True) for i in range(n_tumour)]
    specs += [("training", "normal", f"normal_{i + 1:03d}", False) for i in range(n_normal)]
    if testing:
        specs += [("testing", "images", "test_001", True), ("testing", "images", "test_002", False)]
    for k, (part, folder, name, tumour) in enumerate(specs):
        slide = draw_slide(name, side, tumour=tumour, seed=seed * 1000 + k)
        write_pyramid_tiff(root / part / folder / f"{name}.tif", slide.levels)
        if tumour and xml:
            write_asap_xml(root / part / "lesion_annotations" / f"{name}.xml", slide.polygons)
        if tumour and masks:
            write_mask_tiff(root / part / "masks" / f"{name}_mask.tif", slide.tumour)
        drawn[name] = slide
    if testing:
        (root / "testing" / "reference.csv").write_text(
            "Test_001,Tumor,Macro,Primary\nTest_002,Normal\n"
        )
    return drawn
