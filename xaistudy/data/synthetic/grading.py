"""Prostate-like grading tiles of DiagSet's classes A, N, R1-R5: gland architecture and nuclei
by grade (artifacts of class A in :mod:`.artifacts`), and their sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xaistudy.data.synthetic.artifacts import _apply_artifacts
from xaistudy.data.synthetic.common import (
    _KIND_GRADING,
    GRADES,
    NEOPLASTIC,
    NON_NEOPLASTIC,
    Tile,
    _check_size,
    _filtered_noise,
    _hex_lattice,
    _inside,
    _sample_at,
    _Shape,
    _stamp_max,
    _threshold_area,
    _tile_rng,
)
from xaistudy.data.synthetic.optics import (
    DENSITY_REF_GRADING,
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
    _make_nuclei,
    _Nuclei,
    _nuclei_meta,
    _NucleusStyle,
    _render_nuclei,
    _select,
)

# ----------------------------------------------------------------------------- grading (prostate)


@dataclass(frozen=True)
class _GradeSpec:
    """Architecture and nuclear parameters of one grade (lengths in px)."""

    pattern: str  # "glands", "cribriform" or "sheet"
    nucleus_radius: float  # mean semi-major axis of the epithelial nuclei
    pleomorphism: float  # max amplitude of each nuclear outline harmonic
    pitch: float  # px between epithelial nuclei
    gland_radius: tuple[float, float] = (0.0, 0.0)  # outer radius of glands / nests
    gland_fill: float = 0.0  # tile fraction the glands / nests aim to cover
    epithelium: float = 0.0  # epithelium thickness in glands (px)
    sheet_area: tuple[float, float] = (0.0, 0.0)  # tile fraction of nests / sheet
    lumen_radius: tuple[float, float] = (0.0, 0.0)  # lumens inside nests / sheets
    lumen_pitch: float = 0.0  # px between lumens inside nests / sheets (0 = none)


GRADE_SPECS = {
    "N": _GradeSpec(
        "glands", 2.6, 0.02, 5.6, gland_radius=(22.0, 34.0), gland_fill=0.5, epithelium=11.0
    ),
    "R1": _GradeSpec(
        "glands", 2.9, 0.05, 6.6, gland_radius=(11.0, 16.0), gland_fill=0.3, epithelium=6.0
    ),
    "R2": _GradeSpec(
        "glands", 3.2, 0.08, 6.8, gland_radius=(8.0, 11.5), gland_fill=0.44, epithelium=5.5
    ),
    "R3": _GradeSpec(
        "cribriform",
        3.5,
        0.11,
        6.8,
        sheet_area=(0.5, 0.65),
        lumen_radius=(2.0, 3.5),
        lumen_pitch=11.0,
    ),
    "R4": _GradeSpec(
        "sheet", 3.8, 0.15, 7.0, sheet_area=(0.6, 0.8), lumen_radius=(1.5, 2.5), lumen_pitch=16.0
    ),
    "R5": _GradeSpec("sheet", 4.2, 0.2, 7.3, sheet_area=(0.75, 0.95)),
}
GRADE_SPECS["A"] = GRADE_SPECS["N"]  # artifacts are drawn on benign tissue
BENIGN_CYTO = (0.32, 0.07)  # (eosin, haematoxylin) of pale benign cytoplasm
MALIGNANT_CYTO_E = (0.34, 0.02)  # eosin of malignant cytoplasm: value at R1, increase per grade
MALIGNANT_CYTO_H = (0.1, 0.03)  # haematoxylin (basophilia): value at R1, increase per grade
GLAND_GAP = 3.0  # px of stroma at least between two glands / nests
SHEET_BLOB_SIGMA_FRAC = 1 / 6  # smoothness of the R4-R5 sheet as a fraction of the tile
GRADING_STROMA_H = 0.1  # faint haematoxylin of the fibromuscular stroma
NEST_SIGMA = 9.0  # px, smoothness of the noise whose threshold gives the R3 cribriform nests


def _gland_nuclei(
    rng: np.random.Generator,
    gland: _Shape,
    style: _NucleusStyle,
    pitch: float,
    ntype: int,
    inset: float,
    flat: bool,
) -> _Nuclei:
    """One ring of nuclei ``inset`` px inside a gland outline, spaced ``pitch`` px apart.

    Nuclei point their long axis at the lumen, or lie along the outline when ``flat``.
    """
    ring_r = 0.5 * (gland.a + gland.b) - inset
    n = max(int(2 * np.pi * ring_r / pitch), 3)
    phi = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n + rng.normal(0, 0.05, n)
    r = gland.radius(phi) - inset + rng.normal(0, 0.4, n)
    ny, nx = gland.to_image(r * np.cos(phi), r * np.sin(phi))
    orient = gland.theta + phi + (np.pi / 2 if flat else 0.0) + rng.normal(0, 0.15, n)
    return _make_nuclei(rng, ny, nx, style, ntype, theta=orient)


def _grade_style(spec: _GradeSpec, malignant: bool) -> _NucleusStyle:
    r = spec.nucleus_radius
    if not malignant:
        return _NucleusStyle(
            (r - 0.3, r + 0.3), (0.7, 0.95), spec.pleomorphism, (1.1, 1.4), 0.2, 0.25, 0.1, (0, 0)
        )
    return _NucleusStyle(
        (r * 0.85, r * 1.15), (0.7, 0.95), spec.pleomorphism, (0.95, 1.3), 0.35, 0.45, 0.3, (1, 2)
    )


BASAL_STYLE = _NucleusStyle((2.4, 3.2), (0.35, 0.5), 0.03, (1.2, 1.5), 0.15, 0.1, 0.0, (0, 0))


@dataclass
class _Architecture:
    footprint: np.ndarray  # bool: glands / nests / sheet (incl. lumens)
    lumen: np.ndarray  # float 0..1 clear space inside the footprint
    apical: np.ndarray  # float 0..1 luminal cell border around the lumens
    nuclei: list[_Nuclei]


def _place_discs(
    rng: np.random.Generator, h: int, w: int, radius: tuple[float, float], fill: float
) -> list[tuple[float, float, float]]:
    """Random non-overlapping discs (dart throwing) covering about ``fill`` of the tile."""
    n_target = int(round(fill * h * w / (np.pi * np.mean(radius) ** 2)))
    ys, xs, rs = np.zeros(n_target), np.zeros(n_target), np.zeros(n_target)
    n = 0
    for _ in range(40 * n_target):
        if n == n_target:
            break
        r = rng.uniform(*radius)
        y, x = rng.uniform(-0.3 * r, h + 0.3 * r), rng.uniform(-0.3 * r, w + 0.3 * r)
        if n and (np.hypot(ys[:n] - y, xs[:n] - x) < rs[:n] + r + GLAND_GAP).any():
            continue
        ys[n], xs[n], rs[n] = y, x, r
        n += 1
    return list(zip(ys[:n].tolist(), xs[:n].tolist(), rs[:n].tolist(), strict=True))


def _concat(groups: list[_Nuclei]) -> _Nuclei:
    fields = _Nuclei.__dataclass_fields__
    if not groups:
        return _Nuclei(**{f: np.zeros((0, 3) if f in ("amp", "phase") else 0) for f in fields})
    return _Nuclei(**{f: np.concatenate([getattr(g, f) for g in groups]) for f in fields})


def _glands(
    rng: np.random.Generator, size: int, spec: _GradeSpec, malignant: bool
) -> _Architecture:
    """Round glands with a lumen, lined by one (malignant) or two (benign) layers of nuclei."""
    h = w = size
    depth = np.full((h, w), -np.inf)
    groups: list[_Nuclei] = []
    ntype = NEOPLASTIC if malignant else NON_NEOPLASTIC
    style = _grade_style(spec, malignant)
    for cy, cx, a in _place_discs(rng, h, w, spec.gland_radius, spec.gland_fill):
        gland = _Shape.random(rng, cy, cx, a, (0.7, 1.0), 0.05)
        if not malignant:  # papillary infoldings of benign glands: one harmonic k = 4..6
            fold = np.zeros(5)
            fold[rng.integers(2, 5)] = rng.uniform(0.04, 0.08)
            gland.amp = np.append(gland.amp, fold)
            gland.phase = np.append(gland.phase, rng.uniform(0, 2 * np.pi, 5))
        _stamp_max(depth, gland)
        if malignant:
            inset = style.radius[1] + 0.8
            groups.append(_gland_nuclei(rng, gland, style, spec.pitch, ntype, inset, False))
        else:
            groups.append(_gland_nuclei(rng, gland, BASAL_STYLE, spec.pitch, ntype, 1.6, True))
            groups.append(_gland_nuclei(rng, gland, style, 1.3 * spec.pitch, ntype, 5.4, False))
    footprint = depth > 0
    lumen = np.clip(depth - spec.epithelium + 0.5, 0, 1)
    apical = np.exp(-((depth - spec.epithelium) ** 2))
    nuclei = _concat(groups)
    nuclei = _select(nuclei, _sample_at(depth, nuclei.cy, nuclei.cx) > 0)
    return _Architecture(footprint, lumen, apical, [nuclei])


def _filled(rng: np.random.Generator, footprint: np.ndarray, spec: _GradeSpec) -> _Architecture:
    """Nests or sheets of malignant cells with optional punched-out lumens."""
    h, w = footprint.shape
    lumen_depth = np.full((h, w), -np.inf)
    if spec.lumen_pitch > 0:
        ly, lx = _hex_lattice(rng, h, w, spec.lumen_pitch, jitter=0.25)
        inner = _inside(footprint)
        ok = _sample_at(inner, ly, lx) > spec.lumen_radius[1] + 3.5
        for cy, cx in zip(ly[ok], lx[ok], strict=True):
            r = rng.uniform(*spec.lumen_radius)
            _stamp_max(lumen_depth, _Shape.random(rng, cy, cx, r, (0.8, 1.0), 0.05))
    lumen = np.clip(lumen_depth + 0.5, 0, 1)
    apical = np.exp(-((lumen_depth + 0.8) ** 2))
    style = _grade_style(spec, True)
    cy, cx = _hex_lattice(rng, h, w, spec.pitch, jitter=0.25)
    nuc = _make_nuclei(rng, cy, cx, style, NEOPLASTIC)
    depth = _sample_at(_inside(footprint & (lumen_depth < -0.5)), nuc.cy, nuc.cx)
    nuc = _select(nuc, depth >= TUMOUR_EDGE_FIT * nuc.extent())
    return _Architecture(footprint, lumen, apical, [nuc])


def _architecture(rng: np.random.Generator, size: int, grade: str) -> _Architecture:
    spec = GRADE_SPECS[grade]
    if spec.pattern == "glands":
        return _glands(rng, size, spec, malignant=grade.startswith("R"))
    sigma = NEST_SIGMA if spec.pattern == "cribriform" else size * SHEET_BLOB_SIGMA_FRAC
    region = _threshold_area(_filtered_noise(rng, size, size, sigma), spec.sheet_area, rng)
    return _filled(rng, region, spec)


def grading_tile(seed: int, index: int = 0, size: int = 128, grade: str = "N") -> Tile:
    """One prostate-like grading tile of class ``grade`` (one of GRADES)."""
    size = _check_size(size)
    if grade not in GRADES:
        raise ValueError(f"grade must be one of {', '.join(GRADES)}, got {grade!r}")
    g = GRADES.index(grade)
    rng = _tile_rng(seed, index, _KIND_GRADING, g)
    h = w = size
    stain = _draw_stain(rng)
    theta = float(rng.uniform(0, np.pi))
    arch = _architecture(rng, size, grade)
    malignant = grade.startswith("R")
    fibres, mottle = _fibre_texture(rng, h, w, theta)
    stroma = ~arch.footprint
    stroma_depth = _inside(stroma)
    groups = [*arch.nuclei, _fibroblasts(rng, stroma_depth, stroma.astype(float), theta)]
    chromatin = _chromatin_field(rng, h, w)
    clips = [arch.footprint] * len(arch.nuclei) + [stroma]
    nuc = _render_nuclei(groups, h, w, chromatin, clips=clips)

    epi = arch.footprint.astype(float)
    level = GRADES.index(grade) - 2 if malignant else 0  # 0 .. 4 for R1 .. R5
    cyto_e = MALIGNANT_CYTO_E[0] + MALIGNANT_CYTO_E[1] * level if malignant else BENIGN_CYTO[0]
    cyto_h = MALIGNANT_CYTO_H[0] + MALIGNANT_CYTO_H[1] * level if malignant else BENIGN_CYTO[1]
    c_e = np.where(
        arch.footprint, cyto_e * (1 + 0.15 * mottle), STROMA_EOSIN * (0.3 + 0.7 * fibres)
    )
    c_h = np.where(arch.footprint, cyto_h * (1 + 0.15 * mottle), GRADING_STROMA_H)
    if malignant and GRADE_SPECS[grade].pattern != "glands":  # cell borders in nests / sheets
        border, _ = _cell_field(arch.footprint, arch.nuclei[0])
        c_e = c_e + 0.12 * border
    c_e = c_e + 0.25 * arch.apical * epi
    c_e = c_e * (1 - arch.lumen * epi) + 0.04 * arch.lumen * epi
    c_h = c_h * (1 - arch.lumen * epi)
    c_h = c_h * (1 - nuc.alpha) + nuc.c_h * nuc.alpha
    c_e = c_e * (1 - NUCLEUS_E_SUPPRESS * nuc.alpha) + nuc.c_e * nuc.alpha
    mask = arch.footprint.copy() if malignant else np.zeros((h, w), dtype=bool)
    c_h, c_e = _calibrate(c_h, c_e, stain, [mask, ~mask], DENSITY_REF_GRADING)
    od = _optical_density(c_h, c_e, stain)

    meta: dict[str, Any] = {
        "kind": "grading",
        "class": grade,
        "pattern": GRADE_SPECS[grade].pattern,
        "fibre_orientation": theta,
        **stain.meta(),
        **_nuclei_meta(nuc),
    }
    if grade == "A":
        image, mask, kinds = _apply_artifacts(rng, od)
        meta["artifact"] = kinds
    else:
        image = _to_uint8(od, rng)
        meta["artifact"] = []
    meta["malignant_fraction"] = float(arch.footprint.mean()) if malignant else 0.0
    return Tile(image, g, mask, nuc.instance, nuc.ntype, meta)


def grading_set(n_per_class: int, size: int = 128, seed: int = 0) -> list[Tile]:
    """``n_per_class`` tiles of every grade, interleaved A, N, R1, ..., R5, A, N, ..."""
    _check_size(size)
    return [
        grading_tile(seed, i * len(GRADES) + g, size, grade)
        for i in range(n_per_class)
        for g, grade in enumerate(GRADES)
    ]
