"""H&E lymph-node tiles: normal lymph node (lymphocytes, follicles, sinus, capsule, fat) vs
metastatic tumour regions (smooth random blobs of large pleomorphic nuclei), and their sets."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from xaistudy.data.synthetic.common import (
    _KIND_HE,
    _KIND_SET,
    HE_CLASSES,
    NEOPLASTIC,
    NON_NEOPLASTIC,
    Tile,
    _blob_region,
    _check_size,
    _curve_distance,
    _filtered_noise,
    _hex_lattice,
    _inside,
    _sample_at,
    _Shape,
    _sigmoid,
    _smooth_curve,
    _stamp_max,
    _tile_rng,
)
from xaistudy.data.synthetic.optics import (
    DENSITY_REF_HE,
    _calibrate,
    _draw_stain,
    _optical_density,
    _to_uint8,
)
from xaistudy.data.synthetic.tissue import (
    NUCLEUS_E_SUPPRESS,
    STROMA_EOSIN,
    TUMOUR_EDGE_FIT,
    _cell_field,
    _chromatin_field,
    _fibre_texture,
    _fibroblasts,
    _fit_inside,
    _make_nuclei,
    _Nuclei,
    _nuclei_meta,
    _NucleusStyle,
    _render_nuclei,
    _select,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- lymph node (H&E)
LYMPH_PITCH = 6.0  # px between lymphocyte centres (jittered hexagonal lattice)
LYMPH_KEEP = (0.3, 1.0)  # lattice sites kept: sparse (sinus / stroma) ... dense (cortex)
TUMOUR_PITCH = 12.0  # px between tumour-cell centres
TUMOUR_AREA_DEFAULT = (0.15, 0.6)
TUMOUR_CYTO_E, TUMOUR_CYTO_H = 0.6, 0.1  # eosinophilic tumour cytoplasm
TUMOUR_LUMEN_RADIUS = (3.0, 8.0)  # small glandular lumens inside tumour (px)
TUMOUR_LUMEN_PROB = 0.4
TUMOUR_LUMEN_AREA = 3000.0  # px^2 of tumour per lumen
FOLLICLE_PROB = 0.4  # a lymphoid follicle: dense mantle around a paler germinal centre
FOLLICLE_RADIUS = (22.0, 40.0)
MANTLE_WIDTH = (6.0, 10.0)
GERMINAL_CENTRE_DENSITY = 0.45  # lymphoid density of the germinal centre
SINUS_PROB = 0.4  # a sinus: a winding pale channel with few cells
SINUS_WIDTH = (6.0, 14.0)
SINUS_CELLULARITY = 0.3  # lymphocytes kept in a sinus, relative to the tissue around it
CAPSULE_PROB = 0.25  # a capsule: dense collagen without lymphocytes along one tile edge
CAPSULE_WIDTH = (6.0, 14.0)
FAT_PROB = 0.5  # probability of a cluster of fat vacuoles in the normal tissue
FAT_RADIUS = (6.0, 15.0)
FAT_COUNT = (1, 5)
LYMPHOCYTE = _NucleusStyle((2.2, 3.0), (0.85, 1.0), 0.03, (1.55, 1.95), 0.12, 0.15, 0.0, (0, 0))
TUMOUR_NUCLEUS = _NucleusStyle((4.5, 7.0), (0.65, 0.95), 0.12, (1.1, 1.5), 0.35, 0.25, 0.4, (1, 2))


def _check_area(area: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(area[0]), float(area[1])
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"tumour_area must satisfy 0 < low <= high < 1, got {area!r}")
    return lo, hi


def _vacuoles(
    rng: np.random.Generator,
    h: int,
    w: int,
    n: int,
    radius: tuple[float, float],
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Depth map (px inside, <= 0 outside) of up to ``n`` clear vacuoles / lumens."""
    depth = np.full((h, w), -np.inf)
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        if allowed is not None and not _sample_at(allowed, np.array([cy]), np.array([cx]))[0]:
            continue
        _stamp_max(depth, _Shape.random(rng, cy, cx, rng.uniform(*radius), (0.7, 1.0), 0.08))
    return depth


@dataclass
class _NodeStructure:
    """Lymph-node architecture drawn on the lymphoid-density field of one tile."""

    lymph: np.ndarray  # lymphoid density in [0, 1]
    cellularity: np.ndarray  # multiplier of the lymphocyte keep probability
    eosin: np.ndarray  # multiplier of the stroma eosin
    names: list[str]


def _node_structure(rng: np.random.Generator, lymph: np.ndarray) -> _NodeStructure:
    """Follicle, sinus and capsule (each with its own probability) on the density ``lymph``."""
    h, w = lymph.shape
    cell, eosin, names = np.ones((h, w)), np.ones((h, w)), []
    if rng.uniform() < FOLLICLE_PROB:
        depth = np.full((h, w), -np.inf)
        r = rng.uniform(*FOLLICLE_RADIUS)
        shape = _Shape.random(rng, rng.uniform(0, h), rng.uniform(0, w), r, (0.75, 1.0), 0.05)
        _stamp_max(depth, shape)
        follicle = _sigmoid(depth)
        centre = _sigmoid(depth - rng.uniform(*MANTLE_WIDTH))
        lymph = np.maximum(lymph, follicle)
        lymph = lymph * (1 - centre) + GERMINAL_CENTRE_DENSITY * centre
        names.append("follicle")
    if rng.uniform() < SINUS_PROB:
        y, x = _smooth_curve(rng, h, w, length=1.5 * max(h, w), bend=0.02)
        sinus = np.clip(rng.uniform(*SINUS_WIDTH) / 2 - _curve_distance(h, w, y, x) + 0.5, 0, 1)
        cell *= 1 - (1 - SINUS_CELLULARITY) * sinus
        eosin *= 1 - 0.5 * sinus
        lymph = lymph * (1 - sinus)
        names.append("sinus")
    if rng.uniform() < CAPSULE_PROB:
        yy, xx = np.indices((h, w), dtype=float)
        side = int(rng.integers(4))
        across = (yy, h - 1 - yy, xx, w - 1 - xx)[side]
        along = (xx, xx, yy, yy)[side]
        edge = rng.uniform(*CAPSULE_WIDTH) + 2.0 * np.sin(
            along / rng.uniform(10, 20) + rng.uniform(0, 2 * np.pi)
        )
        capsule = np.clip(edge - across + 0.5, 0, 1)
        cell *= 1 - capsule
        eosin *= 1 + 0.6 * capsule
        lymph = lymph * (1 - capsule)
        names.append("capsule")
    return _NodeStructure(lymph, cell, eosin, names)


def he_tile(
    seed: int,
    index: int = 0,
    size: int = 128,
    tumour: bool = True,
    tumour_area: tuple[float, float] = TUMOUR_AREA_DEFAULT,
) -> Tile:
    """One H&E lymph-node tile; with ``tumour`` a metastasis covers a ``tumour_area`` fraction."""
    size = _check_size(size)
    area = _check_area(tumour_area)
    rng = _tile_rng(seed, index, _KIND_HE, int(bool(tumour)))
    h = w = size
    stain = _draw_stain(rng)
    mask = _blob_region(rng, size, area) if tumour else np.zeros((h, w), dtype=bool)
    normal = ~mask
    theta = float(rng.uniform(0, np.pi))

    fibres, spare = _fibre_texture(rng, h, w, theta)
    node = _node_structure(rng, _sigmoid(2.2 * spare + rng.uniform(-0.5, 1.5)))
    lymph = node.lymph
    fat = np.full((h, w), -np.inf)
    if rng.uniform() < FAT_PROB:
        fat = _vacuoles(
            rng, h, w, int(rng.integers(*FAT_COUNT, endpoint=True)), FAT_RADIUS, allowed=normal
        )
    lumen = np.full((h, w), -np.inf)
    if tumour and rng.uniform() < TUMOUR_LUMEN_PROB:
        n_lumen = int(rng.poisson(mask.sum() / TUMOUR_LUMEN_AREA)) + 1
        lumen = _vacuoles(rng, h, w, n_lumen, TUMOUR_LUMEN_RADIUS, allowed=mask)
    lumen = np.where(mask, lumen, -np.inf)
    fat = np.where(normal, fat, -np.inf)
    clear = np.clip(np.maximum(fat, lumen) + 0.5, 0, 1)  # soft white space
    fat_rim = np.exp(-((fat + 0.8) ** 2) / 0.5) * normal  # thin membranes of fat cells

    # --- nuclei
    solid = clear <= 0
    normal_depth = _inside(normal & solid)
    ly, lx = _hex_lattice(rng, h, w, LYMPH_PITCH)
    keep_p = LYMPH_KEEP[0] + (LYMPH_KEEP[1] - LYMPH_KEEP[0]) * _sample_at(lymph, ly, lx)
    keep = rng.uniform(0, 1, len(ly)) < keep_p * _sample_at(node.cellularity, ly, lx)
    lymphocytes = _fit_inside(
        _make_nuclei(rng, ly[keep], lx[keep], LYMPHOCYTE, NON_NEOPLASTIC), normal_depth, margin=0.0
    )
    groups = [lymphocytes, _fibroblasts(rng, normal_depth, normal * (1 - lymph) ** 2, theta)]
    tumour_nuc = None
    if tumour:
        ty, tx = _hex_lattice(rng, h, w, TUMOUR_PITCH)
        tumour_nuc = _make_nuclei(rng, ty, tx, TUMOUR_NUCLEUS, NEOPLASTIC)
        depth = _sample_at(_inside(mask & solid), tumour_nuc.cy, tumour_nuc.cx)
        tumour_nuc = _select(tumour_nuc, depth >= TUMOUR_EDGE_FIT * tumour_nuc.extent())
        groups.append(tumour_nuc)
    chromatin = _chromatin_field(rng, h, w)
    nuc = _render_nuclei(groups, h, w, chromatin, clips=[normal, normal, mask][: len(groups)])

    # --- background concentrations
    c_e = STROMA_EOSIN * (0.25 + 0.75 * fibres) * (1 - 0.55 * lymph) * node.eosin
    c_e = c_e + 0.55 * fat_rim
    c_h = 0.05 + 0.22 * lymph * (0.8 + 0.2 * chromatin)
    if tumour_nuc is not None:
        cyto_e, cyto_h = _tumour_cytoplasm(rng, mask, tumour_nuc, chromatin)
        c_e = np.where(mask, cyto_e, c_e)
        c_h = np.where(mask, cyto_h, c_h)
    c_e = c_e * (1 - clear)
    c_h = c_h * (1 - clear)
    c_h = c_h * (1 - nuc.alpha) + nuc.c_h * nuc.alpha
    c_e = c_e * (1 - NUCLEUS_E_SUPPRESS * nuc.alpha) + nuc.c_e * nuc.alpha
    c_h, c_e = _calibrate(c_h, c_e, stain, [mask, normal], DENSITY_REF_HE)
    image = _to_uint8(_optical_density(c_h, c_e, stain), rng)

    meta = {
        "kind": "he",
        "class": HE_CLASSES[int(tumour)],
        "tumour_fraction": float(mask.mean()),
        "structures": node.names,
        "fibre_orientation": theta,
        **stain.meta(),
        **_nuclei_meta(nuc),
    }
    return Tile(image, int(tumour), mask, nuc.instance, nuc.ntype, meta)


def _tumour_cytoplasm(
    rng: np.random.Generator, mask: np.ndarray, nuc: _Nuclei, chromatin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Amphophilic tumour cytoplasm with faint cell borders and a pale perinuclear halo."""
    border, gap = _cell_field(mask, nuc)
    mottle = _filtered_noise(rng, *mask.shape, 2.0)
    c_e = TUMOUR_CYTO_E * (1 + 0.12 * mottle + 0.05 * chromatin) + 0.2 * border
    halo = np.exp(-((np.clip(gap, 0, None) / 1.8) ** 2))
    c_e = c_e * (1 - 0.45 * halo)
    c_h = TUMOUR_CYTO_H * (1 + 0.1 * mottle) + 0.08 * border
    return c_e, c_h


def he_set(n: int, size: int = 128, seed: int = 0, tumour_share: float = 0.5) -> list[Tile]:
    """``n`` H&E tiles; exactly ``round(n * tumour_share)`` are tumour (seeded shuffle)."""
    if not 0.0 <= tumour_share <= 1.0:
        raise ValueError(f"tumour_share must be in [0, 1], got {tumour_share!r}")
    _check_size(size)
    order = np.random.default_rng(np.random.SeedSequence([seed, _KIND_SET, _KIND_HE])).permutation(
        n
    )
    tumour = np.zeros(n, dtype=bool)
    tumour[order[: int(round(n * tumour_share))]] = True
    log.debug("H&E set: %d tiles of %d px, %d tumour, seed %d", n, size, tumour.sum(), seed)
    return [he_tile(seed, i, size, tumour=bool(tumour[i])) for i in range(n)]
