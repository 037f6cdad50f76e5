"""Nuclei and stroma shared by the H&E and grading tiles: nucleus styles, their random draw and
anti-aliased rasterisation into instance / type maps, wavy collagen and spindle fibroblasts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from xaistudy.data.synthetic.common import (
    NEOPLASTIC,
    NON_NEOPLASTIC,
    NUCLEUS_TYPES,
    _filtered_noise,
    _polar,
    _sample_at,
    _shape_radius,
    _sigmoid,
)

# ----------------------------------------------------------------------------- stroma
FIBRE_LENGTH = 11.0  # sigma (px) of the fibre noise along the fibre direction
FIBRE_WIDTH = 0.9  # sigma (px) across it
FIBRE_WAVE = ((5.0, 1.6), (20.0, 6.0))  # (scale sigma px, amplitude px) of the wavy warps
BUNDLE_SIGMA = 8.0  # px, smoothness of collagen bundles and of the lymphoid-density field
STROMA_EOSIN = 0.6  # eosin concentration of dense collagen
FIBROBLASTS_PER_KPX = 1.6  # spindle nuclei per 1000 px^2 of stroma
TUMOUR_EDGE_FIT = 0.5  # tumour nuclei centres lie this many radii inside the mask; cut at it


@dataclass(frozen=True)
class _NucleusStyle:
    """Ranges from which one kind of nucleus draws its geometry and staining (lengths in px)."""

    radius: tuple[float, float]  # semi-major axis
    aspect: tuple[float, float]  # minor / major axis ratio
    pleomorphism: float  # max amplitude of each outline harmonic (k = 2, 3, 4)
    haematoxylin: tuple[float, float]  # concentration
    chromatin: float  # amplitude of the chromatin speckle
    rim: float  # extra haematoxylin at the nuclear membrane
    vesicular: float  # paleness of the nuclear centre (0 = solid)
    nucleoli: tuple[int, int]  # min, max number of nucleoli


FIBROBLAST = _NucleusStyle((3.5, 5.5), (0.25, 0.38), 0.04, (0.9, 1.2), 0.15, 0.1, 0.0, (0, 0))
NUCLEOLUS_RADIUS = 0.9  # px
NUCLEUS_E_SUPPRESS = 0.4  # fraction of the surrounding eosin removed inside a nucleus
NUCLEOLUS_H = 1.3  # extra haematoxylin in a nucleolus (plus half of it in eosin)


@dataclass
class _Nuclei:
    """A group of nuclei (struct of arrays, one entry per nucleus)."""

    cy: np.ndarray
    cx: np.ndarray
    a: np.ndarray
    b: np.ndarray
    theta: np.ndarray
    amp: np.ndarray  # (K, 3)
    phase: np.ndarray  # (K, 3)
    dens: np.ndarray
    chromatin: np.ndarray
    rim: np.ndarray
    vesicular: np.ndarray
    nucleolus_uv: np.ndarray  # (K, 2, 2): offsets of up to 2 nucleoli in units of (a, b)
    nucleolus_amp: np.ndarray  # (K, 2)
    ntype: np.ndarray  # (K,) uint8

    def __len__(self) -> int:
        return len(self.cy)

    def extent(self) -> np.ndarray:
        return self.a * (1 + np.abs(self.amp).sum(axis=1))


def _make_nuclei(
    rng: np.random.Generator,
    cy: np.ndarray,
    cx: np.ndarray,
    style: _NucleusStyle,
    ntype: int,
    theta: np.ndarray | None = None,
) -> _Nuclei:
    """Draw ``len(cy)`` nuclei of one style at the given centres."""
    k = len(cy)
    a = rng.uniform(*style.radius, k)
    b = a * rng.uniform(*style.aspect, k)
    if theta is None:
        theta = rng.uniform(0, np.pi, k)
    n_nucleoli = rng.integers(style.nucleoli[0], style.nucleoli[1] + 1, k)
    r = 0.45 * np.sqrt(rng.uniform(0, 1, (k, 2)))
    t = rng.uniform(0, 2 * np.pi, (k, 2))
    uv = np.stack([r * np.cos(t), r * np.sin(t)], axis=-1)
    amp_nucleoli = (np.arange(2)[None, :] < n_nucleoli[:, None]) * rng.uniform(0.7, 1.0, (k, 2))
    return _Nuclei(
        cy=np.asarray(cy, float),
        cx=np.asarray(cx, float),
        a=a,
        b=b,
        theta=np.asarray(theta, float),
        amp=rng.uniform(0, style.pleomorphism, (k, 3)),
        phase=rng.uniform(0, 2 * np.pi, (k, 3)),
        dens=rng.uniform(*style.haematoxylin, k),
        chromatin=np.full(k, style.chromatin),
        rim=np.full(k, style.rim),
        vesicular=np.full(k, style.vesicular) * rng.uniform(0.6, 1.0, k),
        nucleolus_uv=uv,
        nucleolus_amp=amp_nucleoli * NUCLEOLUS_H,
        ntype=np.full(k, ntype, dtype=np.uint8),
    )


def _select(nuc: _Nuclei, keep: np.ndarray) -> _Nuclei:
    return _Nuclei(**{f: getattr(nuc, f)[keep] for f in nuc.__dataclass_fields__})


def _fit_inside(nuc: _Nuclei, depth: np.ndarray, margin: float = 0.5) -> _Nuclei:
    """Keep nuclei whose whole outline lies inside the region with distance map ``depth``."""
    return _select(nuc, _sample_at(depth, nuc.cy, nuc.cx) >= nuc.extent() + margin)


@dataclass
class _NucleiRender:
    instance: np.ndarray  # int32 (H, W)
    ntype: np.ndarray  # uint8 (H, W)
    alpha: np.ndarray  # float coverage (anti-aliased)
    c_h: np.ndarray  # haematoxylin inside nuclei
    c_e: np.ndarray  # eosin inside nuclei (nucleoli)
    types: np.ndarray  # type of instance id i at index i - 1


def _nucleus_entries(nuc: _Nuclei, h: int, w: int, chromatin: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-pixel values of all nuclei of one group, each computed in a small local patch."""
    ext = nuc.extent()
    rad = int(np.ceil(ext.max() + 1.0))
    off = np.arange(-rad, rad + 1)
    iy = np.rint(nuc.cy).astype(np.int64)[:, None, None] + off[None, :, None]
    ix = np.rint(nuc.cx).astype(np.int64)[:, None, None] + off[None, None, :]
    col = (slice(None), None, None)
    dy, dx = iy - nuc.cy[col], ix - nuc.cx[col]
    ok = (dy**2 + dx**2 <= (ext[col] + 0.5) ** 2) & (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    kk = np.nonzero(ok)[0]
    iy, ix = np.broadcast_to(iy, ok.shape)[ok], np.broadcast_to(ix, ok.shape)[ok]
    dy, dx = np.broadcast_to(dy, ok.shape)[ok], np.broadcast_to(dx, ok.shape)[ok]
    c, s = np.cos(nuc.theta)[kk], np.sin(nuc.theta)[kk]
    u, v = dx * c + dy * s, -dx * s + dy * c
    rho, cos, sin = _polar(u, v)
    a = nuc.a[kk]
    r = _shape_radius(cos, sin, a, nuc.b[kk], nuc.amp[kk], nuc.phase[kk])
    depth = r - rho
    ok = depth > -0.5
    kk, iy, ix, depth, u, v, a = kk[ok], iy[ok], ix[ok], depth[ok], u[ok], v[ok], a[ok]
    rn = 1 - depth / r[ok]
    dens = nuc.dens[kk]
    c_h = dens * (1 + nuc.chromatin[kk] * chromatin[iy, ix])
    c_h *= 1 - nuc.vesicular[kk] * np.clip(1 - rn**2, 0, 1)
    c_h += nuc.rim[kk] * dens * np.exp(-(np.clip(depth, 0, None) ** 2))
    c_e = np.zeros_like(c_h)
    for j in range(2):
        amp = nuc.nucleolus_amp[kk, j]
        if not amp.any():
            continue
        du = u - nuc.nucleolus_uv[kk, j, 0] * a
        dv = v - nuc.nucleolus_uv[kk, j, 1] * nuc.b[kk]
        spot = amp * np.exp(-(du**2 + dv**2) / NUCLEOLUS_RADIUS**2)
        c_h += spot
        c_e += 0.5 * spot
    alpha = np.clip(depth + 0.5, 0, 1)
    return iy * w + ix, kk, depth, alpha, np.clip(c_h, 0, None), c_e


def _render_nuclei(
    groups: list[_Nuclei],
    h: int,
    w: int,
    chromatin: np.ndarray,
    clips: list[np.ndarray | None] | None = None,
) -> _NucleiRender:
    """Rasterise nucleus groups; where nuclei overlap the pixel goes to the deepest one.

    ``clips`` optionally gives, per group, a boolean region outside which its pixels are cut.
    """
    parts, types, base = [], [], 0
    clips = clips or [None] * len(groups)
    for nuc, clip in zip(groups, clips, strict=True):
        if len(nuc) == 0:
            continue
        entries = _nucleus_entries(nuc, h, w, chromatin)
        if clip is not None:
            keep = clip.ravel()[entries[0]]
            entries = tuple(e[keep] for e in entries)
        flat, kk, depth, alpha, c_h, c_e = entries
        parts.append((flat, kk + base, depth, alpha, c_h, c_e))
        types.append(nuc.ntype)
        base += len(nuc)
    instance = np.zeros(h * w, dtype=np.int32)
    ntype = np.zeros(h * w, dtype=np.uint8)
    alpha_map, ch_map, ce_map = np.zeros(h * w), np.zeros(h * w), np.zeros(h * w)
    if not parts:
        shape = (h, w)
        return _NucleiRender(
            instance.reshape(shape),
            ntype.reshape(shape),
            alpha_map.reshape(shape),
            ch_map.reshape(shape),
            ce_map.reshape(shape),
            np.zeros(0, np.uint8),
        )
    flat, kk, depth, alpha, c_h, c_e = (np.concatenate(p) for p in zip(*parts, strict=True))
    all_types = np.concatenate(types)
    # the deepest nucleus wins a contested pixel; the id breaks exact ties deterministically
    key = np.rint((64.0 - depth) * 256).astype(np.int64) * (1 << 22) + kk
    best = np.full(h * w, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, flat, key)
    win = key == best[flat]
    flat, kk, depth = flat[win], kk[win], depth[win]
    alpha_map[flat], ch_map[flat], ce_map[flat] = alpha[win], c_h[win], c_e[win]
    body = depth > 0
    raw = np.zeros(h * w, dtype=np.int64)
    raw[flat[body]] = kk[body] + 1
    present = np.unique(raw[raw > 0])
    lut = np.zeros(base + 1, dtype=np.int32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    type_lut = np.zeros(base + 1, dtype=np.uint8)
    type_lut[1:] = all_types
    instance = lut[raw].reshape(h, w)
    ntype = type_lut[raw].reshape(h, w)
    return _NucleiRender(
        instance,
        ntype,
        alpha_map.reshape(h, w),
        ch_map.reshape(h, w),
        ce_map.reshape(h, w),
        all_types[present - 1],
    )


def _nuclei_meta(render: _NucleiRender) -> dict[str, Any]:
    areas = np.bincount(render.instance.ravel())[1:]
    meta: dict[str, Any] = {"n_nuclei": int(len(areas))}
    for t in (NEOPLASTIC, NON_NEOPLASTIC):
        sel = render.types == t
        meta[f"n_{NUCLEUS_TYPES[t]}"] = int(sel.sum())
        meta[f"mean_area_{NUCLEUS_TYPES[t]}"] = float(areas[sel].mean()) if sel.any() else 0.0
    return meta


def _chromatin_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), 0.7)
    return noise / (noise.std() + 1e-12)


# ============================================================================= stroma


def _fibre_texture(
    rng: np.random.Generator, h: int, w: int, theta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Wavy collagen fibre density in [0, 1] (anisotropic noise warped by smooth displacements).

    Also returns a spare independent smooth noise field of scale ``BUNDLE_SIGMA``.
    """
    base = _filtered_noise(rng, h, w, FIBRE_LENGTH, FIBRE_WIDTH, theta)
    yy, xx = np.indices((h, w), dtype=float)
    for scale, amp in FIBRE_WAVE:
        dy, dx = amp * _filtered_noise(rng, h, w, scale, n=2)
        yy += dy
        xx += dx
    warped = ndimage.map_coordinates(base, (yy, xx), order=1, mode="mirror")
    bundles, spare = _filtered_noise(rng, h, w, BUNDLE_SIGMA, n=2)
    return _sigmoid(2.4 * warped + 0.8 * bundles + 0.8), spare


def _fibroblasts(
    rng: np.random.Generator, allowed_depth: np.ndarray, weight: np.ndarray, theta: float
) -> _Nuclei:
    """Faint spindle nuclei in the stroma, oriented along the fibres."""
    h, w = allowed_depth.shape
    n = rng.poisson(FIBROBLASTS_PER_KPX * h * w / 1000.0)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    keep = rng.uniform(0, 1, n) < _sample_at(weight, cy, cx)  # thinning by the stroma weight
    cy, cx = cy[keep], cx[keep]
    orient = theta + rng.normal(0, 0.25, len(cy))
    nuc = _make_nuclei(rng, cy, cx, FIBROBLAST, NON_NEOPLASTIC, theta=orient)
    return _fit_inside(nuc, allowed_depth)


def _cell_field(region: np.ndarray, nuc: _Nuclei) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi cell borders and the distance to the own nucleus outline inside ``region``."""
    h, w = region.shape
    seeds = np.ones((h, w), dtype=bool)
    iy = np.clip(np.rint(nuc.cy).astype(int), 0, h - 1)
    ix = np.clip(np.rint(nuc.cx).astype(int), 0, w - 1)
    if len(iy) == 0:
        return np.zeros((h, w), dtype=bool), np.full((h, w), np.inf)
    seeds[iy, ix] = False
    owner = np.full((h, w), -1, dtype=np.int64)
    owner[iy, ix] = np.arange(len(iy))
    dist, (ny, nx) = ndimage.distance_transform_edt(seeds, return_indices=True)
    cell = owner[ny, nx]
    border = np.zeros((h, w), dtype=bool)
    border[:-1] |= cell[:-1] != cell[1:]
    border[:, :-1] |= cell[:, :-1] != cell[:, 1:]
    gap = dist - nuc.a[cell]
    return border & region, gap
