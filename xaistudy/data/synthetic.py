"""Procedural synthetic tissue with exact ground truth: the book's default data.

Three kinds of images are generated:

* H&E lymph-node tiles (normal vs. metastatic tumour) with tumour masks and PanNuke-style
  nucleus instance / type maps,
* prostate-like grading tiles (classes A, N, R1-R5 of DiagSet),
* grey pCLE endomicroscopy frames (meningioma with psammoma bodies vs. glioblastoma).

Every tile draws from its own generator seeded by ``(seed, index, kind, ...)``, so tile *i*
never depends on other tiles and the same arguments always give the same bytes. All lengths
are in pixels at one fixed magnification: a larger tile is a larger field of view, not a zoom
(only the tumour / sheet blobs scale with the tile, and pCLE frames, whose field is the fixed
probe field, scale as a whole). H&E and grading images are composed with the
Beer-Lambert law from haematoxylin and eosin concentration maps; the stain vectors and
concentration scales vary per tile and are recorded in ``Tile.meta``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft, ndimage

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- public names
HE_CLASSES = ("normal", "tumour")
GRADES = ("A", "N", "R1", "R2", "R3", "R4", "R5")
PCLE_CLASSES = ("glioblastoma", "meningioma")
NUCLEUS_TYPES = ("background", "neoplastic", "non-neoplastic")
MIN_SIZE, MAX_SIZE = 64, 512

NEOPLASTIC, NON_NEOPLASTIC = 1, 2
_KIND_HE, _KIND_GRADING, _KIND_PCLE, _KIND_PATIENT, _KIND_SET = 1, 2, 3, 4, 5

# ----------------------------------------------------------------------------- stain / optics
H_REF = (0.65, 0.70, 0.29)  # haematoxylin optical-density direction (R, G, B), normalised below
E_REF = (0.07, 0.99, 0.11)  # eosin
RESIDUAL_OD = (0.02, 0.045, 0.09)  # glass + mounting medium: background is not pure white
STAIN_MAX_ROTATION_DEG = 7.0  # per-tile random rotation of each stain vector
CONC_SCALE = (0.7, 1.3)  # per-tile scale of each stain's target density (class-independent)
DENSITY_REF_HE = (0.6, 0.25)  # effective mean (haematoxylin, eosin) density of every region
DENSITY_REF_GRADING = (0.25, 0.36)  # the same for the grading tiles
CALIBRATION_CLIP = (0.25, 3.0)  # allowed range of a region's calibration factor
CALIBRATION_STEPS = 4  # fixed-point steps of the calibration
CALIBRATION_PIXELS = 4096  # pixels of a region the calibration looks at
FINAL_BLUR_SIGMA = 0.5  # optical blur (px)
SENSOR_NOISE_STD = 1.5  # grey levels, additive Gaussian

# ----------------------------------------------------------------------------- noise fields
NOISE_COARSE_SIGMA = 3.0  # smooth noise is drawn on a grid coarser by sigma / this
NOISE_PAD_SIGMA = 6.0  # noise smoother than this is padded so it does not wrap around

# ----------------------------------------------------------------------------- stroma
FIBRE_LENGTH = 11.0  # sigma (px) of the fibre noise along the fibre direction
FIBRE_WIDTH = 0.9  # sigma (px) across it
FIBRE_WAVE = ((5.0, 1.6), (20.0, 6.0))  # (scale sigma px, amplitude px) of the wavy warps
BUNDLE_SIGMA = 8.0  # px, smoothness of collagen bundles and of the lymphoid-density field
STROMA_EOSIN = 0.6  # eosin concentration of dense collagen
FIBROBLASTS_PER_KPX = 1.6  # spindle nuclei per 1000 px^2 of stroma

# ----------------------------------------------------------------------------- lymph node (H&E)
LYMPH_PITCH = 6.0  # px between lymphocyte centres (jittered hexagonal lattice)
LYMPH_KEEP = (0.3, 1.0)  # lattice sites kept: sparse (sinus / stroma) ... dense (cortex)
TUMOUR_PITCH = 12.0  # px between tumour-cell centres
TUMOUR_EDGE_FIT = 0.5  # tumour nuclei centres lie this many radii inside the mask; cut at it
TUMOUR_BLOB_SIGMA_FRAC = 1 / 7  # tumour blob smoothness as a fraction of the tile size
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
JITTER = 0.3  # lattice jitter as a fraction of the pitch


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


LYMPHOCYTE = _NucleusStyle((2.2, 3.0), (0.85, 1.0), 0.03, (1.55, 1.95), 0.12, 0.15, 0.0, (0, 0))
TUMOUR_NUCLEUS = _NucleusStyle((4.5, 7.0), (0.65, 0.95), 0.12, (1.1, 1.5), 0.35, 0.25, 0.4, (1, 2))
FIBROBLAST = _NucleusStyle((3.5, 5.5), (0.25, 0.38), 0.04, (0.9, 1.2), 0.15, 0.1, 0.0, (0, 0))
NUCLEOLUS_RADIUS = 0.9  # px
NUCLEUS_E_SUPPRESS = 0.4  # fraction of the surrounding eosin removed inside a nucleus
NUCLEOLUS_H = 1.3  # extra haematoxylin in a nucleolus (plus half of it in eosin)

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

ARTIFACTS = ("blur", "fold", "pen", "bubble")
ARTIFACT_COUNT = (1, 2)
BLUR_ARTIFACT_SIGMA = (2.0, 3.5)
BLUR_ARTIFACT_AREA = (0.25, 0.6)
FOLD_WIDTH = (8.0, 20.0)
PEN_WIDTH = (5.0, 12.0)
PEN_INKS = {"blue": (0.85, 0.45, 0.05), "green": (0.9, 0.15, 0.55), "black": (0.75, 0.75, 0.7)}
BUBBLE_RADIUS = (16.0, 40.0)

# ----------------------------------------------------------------------------- pCLE
# pCLE lengths are for a 128 px frame and scale with the frame: the probe's field is fixed.
PCLE_REF_SIZE = 128
PCLE_FOV_FRAC = 0.48  # radius of the circular field of view as a fraction of the size
PCLE_FIBRE = (6.0, 1.2)  # px along / across of the fibrous texture
PCLE_WARP = (12.0, 4.0)  # (scale, amplitude) px of its wavy warp
PCLE_HAZE_SIGMA = 10.0
PCLE_CELLS_PER_KPX = 14.0  # bright cell dots per 1000 px^2 (times a per-patient factor)
PCLE_CELL_SIGMA = (0.7, 1.4)
PCLE_CELL_BRIGHTNESS = 0.4
PSAMMOMA_RADIUS = (6.0, 13.0)
PSAMMOMA_COUNT = (1, 4)
PSAMMOMA_LAMELLA = 2.6  # px between lamellae
PSAMMOMA_BRIGHTNESS = (0.8, 1.0)  # peak intensity of a body's lamellae
PSAMMOMA_COMPENSATION = 0.5  # share of the bodies' added light removed from the whole frame
STREAK_PROB = 0.5  # bright vessel-like streaks, same odds for both classes (distractors)
STREAK_WIDTH = (2.0, 4.0)
PCLE_VIGNETTE = 0.45
PCLE_PHOTONS = (25.0, 60.0)  # Poisson counts at full brightness (per patient)
PCLE_BRIGHTNESS = (0.6, 1.5)  # per-patient gain
PCLE_TEXTURE_SCALE = (0.75, 1.35)  # per-patient texture scale
PCLE_GREY_SCALE = 230.0  # grey level of intensity 1
PCLE_BACKGROUND = 0.34  # mean intensity of the tissue background


@dataclass
class Tile:
    """One synthetic image with its ground truth."""

    image: np.ndarray  # uint8 (H, W, 3) RGB (pCLE: grey replicated)
    label: int
    mask: np.ndarray  # bool (H, W): where the class evidence lives
    nuclei_instance: np.ndarray  # int32 (H, W): 0 = none, 1..K one id per nucleus
    nuclei_type: np.ndarray  # uint8 (H, W): index into NUCLEUS_TYPES
    meta: dict[str, Any]


# ============================================================================= small helpers


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} px, got {size!r}")
    return int(size)


def _tile_rng(seed: int, index: int, *codes: int) -> np.random.Generator:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), *codes]))


def _unit(v: Any) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _lerp_matrix(n_out: int, n_in: int, factor: int) -> np.ndarray:
    """Linear-interpolation matrix that upsamples ``n_in`` samples by ``factor`` to ``n_out``."""
    pos = np.arange(n_out) / factor + 0.5
    i0 = np.floor(pos).astype(int)
    t = pos - i0
    mat = np.zeros((n_out, n_in))
    mat[np.arange(n_out), i0] = 1 - t
    mat[np.arange(n_out), i0 + 1] = t
    return mat


def _filtered_noise(
    rng: np.random.Generator,
    h: int,
    w: int,
    sigma: float,
    sigma_across: float | None = None,
    theta: float = 0.0,
    n: int = 1,
) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered noise; anisotropic when ``sigma_across`` is set.

    ``sigma`` is the spatial sigma along direction ``theta`` (radians, x towards y). Smooth
    fields are drawn on a coarser grid and upsampled linearly; large scales are filtered on a
    padded canvas so they do not wrap around. With ``n > 1`` the fields are stacked on axis 0.
    """
    s_across = sigma if sigma_across is None else sigma_across
    f = max(1, int(min(sigma, s_across) / NOISE_COARSE_SIGMA))
    hs, ws = -(-h // f) + 2, -(-w // f) + 2
    sig, sig_a = sigma / f, s_across / f
    big = max(sig, sig_a)
    pad = int(min(3 * big, 2 * max(hs, ws))) if big > NOISE_PAD_SIGMA else 0
    hh, ww = fft.next_fast_len(hs + pad, real=True), fft.next_fast_len(ws + pad, real=True)
    fy = np.fft.fftfreq(hh)[:, None]
    fx = np.fft.rfftfreq(ww)[None, :]
    fu = fx * np.cos(theta) + fy * np.sin(theta)
    fv = -fx * np.sin(theta) + fy * np.cos(theta)
    filt = np.exp(-2 * np.pi**2 * ((sig * fu) ** 2 + (sig_a * fv) ** 2))
    white = rng.standard_normal((n, hh, ww))
    out = fft.irfft2(fft.rfft2(white) * filt, s=(hh, ww))[:, :hs, :ws]
    if f > 1:
        out = _lerp_matrix(h, hs, f) @ out @ _lerp_matrix(w, ws, f).T
    else:
        out = out[:, :h, :w]
    out = out - out.mean(axis=(1, 2), keepdims=True)
    out = out / (out.std(axis=(1, 2), keepdims=True) + 1e-12)
    return out[0] if n == 1 else out


def _threshold_area(
    noise: np.ndarray, area: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """The pixels of ``noise`` above the quantile that leaves a fraction drawn from ``area``."""
    n = noise.size
    lo, hi = int(np.ceil(area[0] * n)), int(np.floor(area[1] * n))
    k = int(np.clip(round(rng.uniform(*area) * n), lo, hi))
    if k == 0:
        return np.zeros(noise.shape, dtype=bool)
    return noise >= np.partition(noise.ravel(), n - k)[n - k]


def _blob_region(rng: np.random.Generator, size: int, area: tuple[float, float]) -> np.ndarray:
    """Smooth random blobs covering a fraction of the tile drawn uniformly from ``area``."""
    noise = _filtered_noise(rng, size, size, size * TUMOUR_BLOB_SIGMA_FRAC)
    return _threshold_area(noise, area, rng)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hex_lattice(
    rng: np.random.Generator, h: int, w: int, pitch: float, jitter: float = JITTER
) -> tuple[np.ndarray, np.ndarray]:
    """Centres of a randomly shifted, jittered hexagonal lattice covering the tile."""
    dy = pitch * np.sqrt(3) / 2
    ys = np.arange(-1, h / dy + 1) * dy + rng.uniform(0, dy)
    xs = np.arange(-1, w / pitch + 1) * pitch + rng.uniform(0, pitch)
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    cx = cx + (np.arange(len(ys))[:, None] % 2) * pitch / 2
    cy, cx = cy.ravel(), cx.ravel()
    cy = cy + rng.uniform(-jitter, jitter, cy.size) * pitch
    cx = cx + rng.uniform(-jitter, jitter, cx.size) * pitch
    keep = (cy > -pitch / 2) & (cy < h + pitch / 2) & (cx > -pitch / 2) & (cx < w + pitch / 2)
    return cy[keep], cx[keep]


def _sample_at(field: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
    """Nearest-pixel lookup of ``field`` at (clipped) centres."""
    h, w = field.shape
    iy = np.clip(np.rint(cy).astype(int), 0, h - 1)
    ix = np.clip(np.rint(cx).astype(int), 0, w - 1)
    return field[iy, ix]


def _inside(region: np.ndarray) -> np.ndarray:
    """Distance (px) from each pixel of ``region`` to the nearest pixel outside it (0 outside)."""
    if region.all():
        return np.full(region.shape, np.inf)
    return ndimage.distance_transform_edt(region)


def _shape_radius(
    cos: np.ndarray, sin: np.ndarray, a: Any, b: Any, amp: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    """Outline radius of a perturbed ellipse in direction (cos, sin) of its own frame.

    ``amp``/``phase`` have one column (last axis) per harmonic k = 2, 3, ...; they broadcast
    against ``cos``. The harmonics use the Chebyshev recursion, so no trigonometry per pixel.
    """
    r = a * b / np.sqrt((b * cos) ** 2 + (a * sin) ** 2)
    mod = 1.0
    ck, sk = cos, sin
    for j in range(amp.shape[-1]):
        ck, sk = ck * cos - sk * sin, sk * cos + ck * sin  # cos, sin of (j + 2) * phi
        mod = mod + amp[..., j] * (ck * np.cos(phase[..., j]) - sk * np.sin(phase[..., j]))
    return r * mod


def _polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rho = np.hypot(u, v)
    inv = 1.0 / np.maximum(rho, 1e-9)
    return rho, np.where(rho > 0, u * inv, 1.0), v * inv


@dataclass
class _Shape:
    """A perturbed ellipse: centre, semi-axes ``a >= b``, orientation and outline harmonics."""

    cy: float
    cx: float
    a: float
    b: float
    theta: float
    amp: np.ndarray  # amplitude of harmonics k = 2, 3, ...
    phase: np.ndarray

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        cy: float,
        cx: float,
        a: float,
        aspect: tuple[float, float],
        pleo: float,
    ) -> _Shape:
        """A randomly oriented shape with three harmonics of amplitude up to ``pleo``."""
        b = a * rng.uniform(*aspect)
        theta = rng.uniform(0, np.pi)
        return cls(cy, cx, a, b, theta, rng.uniform(0, pleo, 3), rng.uniform(0, 2 * np.pi, 3))

    def radius(self, phi: np.ndarray) -> np.ndarray:
        """Outline radius at polar angle ``phi`` of the shape's own frame."""
        return _shape_radius(np.cos(phi), np.sin(phi), self.a, self.b, self.amp, self.phase)

    def to_image(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image (y, x) of shape-frame coordinates (u along ``theta``)."""
        c, s = np.cos(self.theta), np.sin(self.theta)
        return self.cy + u * s + v * c, self.cx + u * c - v * s


def _stamp_shape(h: int, w: int, shape: _Shape) -> tuple[tuple[slice, slice], np.ndarray]:
    """Signed depth (px inside the outline) of one shape in its bounding patch of the tile."""
    ext = shape.a * (1 + np.abs(shape.amp).sum()) + 2
    y0, x0 = min(max(int(shape.cy - ext), 0), h), min(max(int(shape.cx - ext), 0), w)
    y1 = max(min(int(shape.cy + ext) + 2, h), y0)
    x1 = max(min(int(shape.cx + ext) + 2, w), x0)
    yy = np.arange(y0, y1)[:, None] - shape.cy
    xx = np.arange(x0, x1)[None, :] - shape.cx
    c, s = np.cos(shape.theta), np.sin(shape.theta)
    u, v = xx * c + yy * s, -xx * s + yy * c
    rho, cos, sin = _polar(u, v)
    depth = _shape_radius(cos, sin, shape.a, shape.b, shape.amp, shape.phase) - rho
    return (slice(y0, y1), slice(x0, x1)), depth


def _stamp_max(depth: np.ndarray, shape: _Shape) -> None:
    """Merge one shape into a depth map (union of shapes = pointwise maximum)."""
    sl, d = _stamp_shape(*depth.shape, shape)
    depth[sl] = np.maximum(depth[sl], d)


def _smooth_curve(
    rng: np.random.Generator, h: int, w: int, length: float, bend: float = 0.04
) -> tuple[np.ndarray, np.ndarray]:
    """A smoothly bending random curve (points every 0.5 px) whose midpoint lies in the tile."""
    n = max(int(length / 0.5), 2)
    turn = ndimage.gaussian_filter1d(rng.standard_normal(n), 25, mode="nearest") * bend * 5
    ang = rng.uniform(0, 2 * np.pi) + np.cumsum(turn)
    y, x = np.cumsum(0.5 * np.sin(ang)), np.cumsum(0.5 * np.cos(ang))
    y += rng.uniform(0.25, 0.75) * h - y[n // 2]
    x += rng.uniform(0.25, 0.75) * w - x[n // 2]
    return y, x


def _curve_distance(h: int, w: int, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel to a sampled curve (points outside the tile ignored)."""
    iy, ix = np.rint(y).astype(int), np.rint(x).astype(int)
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    seeds = np.ones((h, w), dtype=bool)
    seeds[iy[ok], ix[ok]] = False
    if seeds.all():
        return np.full((h, w), np.inf)
    return ndimage.distance_transform_edt(seeds)


# ============================================================================= stain model


def _rotate(v: np.ndarray, rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """Rotate ``v`` about a random axis by a random angle up to ``max_deg`` (Rodrigues)."""
    k = _unit(rng.standard_normal(3))
    t = np.deg2rad(rng.uniform(-max_deg, max_deg))
    out = v * np.cos(t) + np.cross(k, v) * np.sin(t) + k * (k @ v) * (1 - np.cos(t))
    return _unit(np.clip(out, 0.01, None))


@dataclass
class _Stain:
    h_vec: np.ndarray
    e_vec: np.ndarray
    h_scale: float
    e_scale: float

    def meta(self) -> dict[str, Any]:
        return {
            "stain_h": [round(float(x), 6) for x in self.h_vec],
            "stain_e": [round(float(x), 6) for x in self.e_vec],
            "conc_scale_h": round(self.h_scale, 6),
            "conc_scale_e": round(self.e_scale, 6),
        }


def _draw_stain(rng: np.random.Generator) -> _Stain:
    return _Stain(
        _rotate(_unit(H_REF), rng, STAIN_MAX_ROTATION_DEG),
        _rotate(_unit(E_REF), rng, STAIN_MAX_ROTATION_DEG),
        float(rng.uniform(*CONC_SCALE)),
        float(rng.uniform(*CONC_SCALE)),
    )


def _optical_density(c_h: np.ndarray, c_e: np.ndarray, stain: _Stain) -> np.ndarray:
    """Beer-Lambert mixing: OD = cH * h + cE * e + residual, shape (H, W, 3)."""
    od_h = (c_h * stain.h_scale)[..., None] * stain.h_vec
    od_e = (c_e * stain.e_scale)[..., None] * stain.e_vec
    return od_h + od_e + np.asarray(RESIDUAL_OD)


def _effective_density(c_h: np.ndarray, c_e: np.ndarray, stain: _Stain) -> np.ndarray:
    """(H, E) optical densities whose mixture has the mean transmission of the given pixels.

    The mean RGB transmission of the pixels is turned back into an optical density and split
    into haematoxylin and eosin along the tile's stain vectors (least squares).
    """
    od = _optical_density(c_h, c_e, stain)
    mean_od = -np.log(np.exp(-od).mean(axis=0)) - np.asarray(RESIDUAL_OD)
    basis = np.stack([stain.h_vec, stain.e_vec], axis=1)
    return np.linalg.lstsq(basis, mean_od, rcond=None)[0]


def _calibrate(
    c_h: np.ndarray,
    c_e: np.ndarray,
    stain: _Stain,
    regions: list[np.ndarray],
    ref: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the concentrations of each region so its mean colour has the tile's target density.

    Every (non-empty) region, e.g. the evidence region and the rest of the tissue, ends with
    the same effective mean densities ``ref * conc_scale`` (a few fixed-point steps on
    a pixel subsample), so neither the tile's mean colour nor the colour outside the evidence
    region depends on the class. Factors are clipped to ``CALIBRATION_CLIP``.
    """
    c_h, c_e = c_h.copy(), c_e.copy()
    target = np.asarray(ref) * (stain.h_scale, stain.e_scale)
    for region in regions:
        idx = np.flatnonzero(region)
        if idx.size == 0:
            continue
        sub = idx[:: max(1, idx.size // CALIBRATION_PIXELS)]
        h0, e0 = c_h.ravel()[sub], c_e.ravel()[sub]
        factor = np.ones(2)
        for _ in range(CALIBRATION_STEPS):
            dens = _effective_density(factor[0] * h0, factor[1] * e0, stain)
            factor = np.clip(factor * target / np.maximum(dens, 1e-3), *CALIBRATION_CLIP)
        c_h.ravel()[idx] *= factor[0]
        c_e.ravel()[idx] *= factor[1]
    return c_h, c_e


def _to_uint8(od: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB = 255 exp(-OD), then optical blur and sensor noise, quantised to uint8."""
    return _finish(255.0 * np.exp(-od), rng)


def _finish(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Optical blur and sensor noise on float RGB, quantised to uint8."""
    rgb = ndimage.gaussian_filter(rgb, sigma=(FINAL_BLUR_SIGMA, FINAL_BLUR_SIGMA, 0), truncate=3.0)
    rgb = rgb + rng.normal(0.0, SENSOR_NOISE_STD, rgb.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# ============================================================================= nuclei


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


# ============================================================================= H&E lymph node


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


# ============================================================================= grading


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


# ----------------------------------------------------------------------------- artifacts


def _apply_artifacts(
    rng: np.random.Generator, od: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Add 1-2 acquisition artifacts; returns the uint8 image, their union mask and their names."""
    h, w, _ = od.shape
    n = int(rng.integers(ARTIFACT_COUNT[0], ARTIFACT_COUNT[1] + 1))
    kinds = sorted(rng.choice(len(ARTIFACTS), size=n, replace=False).tolist())
    names = [ARTIFACTS[k] for k in kinds]
    mask = np.zeros((h, w), dtype=bool)
    blur_region = None
    for name in names:  # physical artifacts act on absorbance, in a fixed order
        if name == "fold":
            od, m = _fold(rng, od)
        elif name == "pen":
            od, m = _pen(rng, od)
        elif name == "bubble":
            od, m = _bubble(rng, od)
        else:
            blur_region = _blob_region(rng, h, BLUR_ARTIFACT_AREA)
            m = blur_region
        mask |= m
    rgb = 255.0 * np.exp(-od)
    if blur_region is not None:  # optical defocus acts on intensities
        sigma = rng.uniform(*BLUR_ARTIFACT_SIGMA)
        blurred = ndimage.gaussian_filter(rgb, sigma=(sigma, sigma, 0))
        weight = ndimage.gaussian_filter(blur_region.astype(float), 1.5)[..., None]
        rgb = rgb * (1 - weight) + blurred * weight
    return _finish(rgb, rng), mask, names


def _fold(rng: np.random.Generator, od: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tissue fold: a wavy band where a shifted copy of the tissue lies on top (darker)."""
    h, w, _ = od.shape
    ang = rng.uniform(0, np.pi)
    nrm = np.array([np.sin(ang), np.cos(ang)])
    yy, xx = np.indices((h, w), dtype=float)
    s = (yy - rng.uniform(0.3, 0.7) * h) * nrm[0] + (xx - rng.uniform(0.3, 0.7) * w) * nrm[1]
    along = -yy * nrm[1] + xx * nrm[0]
    wave = 2.5 * np.sin(along / rng.uniform(8, 16) + rng.uniform(0, 6))
    width = rng.uniform(*FOLD_WIDTH)
    band = np.abs(s + wave) < width / 2
    shift = int(round(width)) + 2
    copy = np.roll(od, (int(round(shift * nrm[0])), int(round(shift * nrm[1]))), axis=(0, 1))
    soft = ndimage.gaussian_filter(band.astype(float), 0.8)[..., None]
    return od + soft * (0.9 * copy + 0.08), band


def _pen(rng: np.random.Generator, od: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marker pen stroke: a bending band of blue, green or black ink with streaky density."""
    h, w, _ = od.shape
    y, x = _smooth_curve(rng, h, w, length=2.0 * max(h, w), bend=0.012)
    dist = _curve_distance(h, w, y, x)
    width = rng.uniform(*PEN_WIDTH)
    ink_name = str(rng.choice(list(PEN_INKS)))
    ink = np.asarray(PEN_INKS[ink_name])
    alpha = np.clip(width / 2 - dist + 0.5, 0, 1)
    streak = 1 + 0.2 * _filtered_noise(rng, h, w, 1.5)
    conc = rng.uniform(0.8, 1.4) * alpha * streak
    return od + conc[..., None] * ink, dist < width / 2


def _bubble(rng: np.random.Generator, od: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Air bubble: washed-out clear interior, bright inner ring and a dark refractive edge."""
    h, w, _ = od.shape
    r = rng.uniform(*BUBBLE_RADIUS)
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    yy, xx = np.indices((h, w), dtype=float)
    rho = np.hypot(yy - cy, xx - cx)
    inside = np.clip(r - rho + 0.5, 0, 1)[..., None]
    bright = np.exp(-((rho - (r - 3.0)) ** 2) / 2.0)[..., None]
    dark = np.exp(-((rho - r) ** 2) / 1.2)[..., None]
    od = od * (1 - 0.75 * inside) * (1 - 0.8 * bright) + 0.5 * dark
    return od, rho <= r


# ============================================================================= pCLE


def _pcle_patient(seed: int, patient_id: int) -> dict[str, float]:
    prng = _tile_rng(seed, patient_id, _KIND_PATIENT)
    return {
        "brightness": float(prng.uniform(*PCLE_BRIGHTNESS)),
        "texture_scale": float(prng.uniform(*PCLE_TEXTURE_SCALE)),
        "cell_density": float(prng.uniform(0.7, 1.3)),
        "photons": float(prng.uniform(*PCLE_PHOTONS)),
        "fibre_contrast": float(prng.uniform(0.6, 1.2)),
    }


def _splat(h: int, w: int, y: np.ndarray, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    img = np.zeros((h, w))
    iy, ix = np.rint(y).astype(int), np.rint(x).astype(int)
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    np.add.at(img, (iy[ok], ix[ok]), weight[ok])
    return img


def _psammoma(
    rng: np.random.Generator,
    img: np.ndarray,
    cy: float,
    cx: float,
    radius: float,
    lamella: float,
) -> np.ndarray:
    """Draw one lamellated calcified body in place; returns its disc mask."""
    h, w = img.shape
    sl, depth = _stamp_shape(h, w, _Shape.random(rng, cy, cx, radius, (0.85, 1.0), 0.03))
    lam = lamella * rng.uniform(0.85, 1.15)
    rings = 0.45 + 0.55 * np.cos(np.pi * np.clip(depth, 0, None) / lam) ** 4  # lamellae
    body = (
        rng.uniform(*PSAMMOMA_BRIGHTNESS) * rings * (1 + 0.3 * np.exp(-((depth - 1.0) ** 2) / 1.5))
    )
    alpha = np.clip(depth + 0.5, 0, 1)
    img[sl] = img[sl] * (1 - alpha) + body * alpha
    mask = np.zeros((h, w), dtype=bool)
    mask[sl] = depth > 0
    return mask


def _pcle_background(
    rng: np.random.Generator, size: int, k: float, patient: dict[str, float]
) -> np.ndarray:
    """Fibrous grey tissue with bright cell dots and an optional vessel-like streak."""
    h = w = size
    ts = patient["texture_scale"] * k
    theta = float(rng.uniform(0, np.pi))
    fib = _filtered_noise(rng, h, w, PCLE_FIBRE[0] * ts, PCLE_FIBRE[1] * ts, theta)
    yy, xx = np.indices((h, w), dtype=float)
    dy, dx = PCLE_WARP[1] * ts * _filtered_noise(rng, h, w, PCLE_WARP[0] * ts, n=2)
    fib = ndimage.map_coordinates(fib, (yy + dy, xx + dx), order=1, mode="mirror")
    haze = _filtered_noise(rng, h, w, PCLE_HAZE_SIGMA * ts)
    img = PCLE_BACKGROUND + 0.07 * patient["fibre_contrast"] * fib + 0.05 * haze

    n_cells = rng.poisson(PCLE_CELLS_PER_KPX * patient["cell_density"] * h * w / 1000.0 / k**2)
    cy, cx = rng.uniform(0, h, n_cells), rng.uniform(0, w, n_cells)
    sig = rng.uniform(*PCLE_CELL_SIGMA) * k
    cells = _splat(h, w, cy, cx, rng.uniform(0.5, 1.0, n_cells))
    img += 2 * np.pi * sig**2 * PCLE_CELL_BRIGHTNESS * ndimage.gaussian_filter(cells, sig)

    if rng.uniform() < STREAK_PROB:  # vessel-like distractor, same odds in both classes
        y, x = _smooth_curve(rng, h, w, length=rng.uniform(0.6, 1.5) * h, bend=0.015 / k)
        width = rng.uniform(*STREAK_WIDTH) * k
        dist = _curve_distance(h, w, y, x)
        img += rng.uniform(0.35, 0.55) * np.exp(-(dist**2) / (2 * (width / 2) ** 2))
    return img


def _place_psammoma(
    rng: np.random.Generator, img: np.ndarray, k: float, fov_r: float
) -> tuple[np.ndarray, int]:
    """Draw 1-4 non-overlapping psammoma bodies inside the field of view; returns mask, count."""
    h, w = img.shape
    c = (h - 1) / 2
    mask = np.zeros((h, w), dtype=bool)
    n_target = int(rng.integers(PSAMMOMA_COUNT[0], PSAMMOMA_COUNT[1] + 1))
    placed: list[tuple[float, float, float]] = []
    for _ in range(40 * n_target):
        if len(placed) == n_target:
            break
        r = rng.uniform(*PSAMMOMA_RADIUS) * k
        ang, dist0 = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform()) * (fov_r - r - 2 * k)
        py, px = c + dist0 * np.sin(ang), c + dist0 * np.cos(ang)
        if all(np.hypot(py - qy, px - qx) > r + qr + 2 * k for qy, qx, qr in placed):
            placed.append((py, px, r))
            mask |= _psammoma(rng, img, py, px, r, PSAMMOMA_LAMELLA * k)
    return mask, len(placed)


def pcle_frame(
    seed: int, index: int = 0, size: int = 128, meningioma: bool = True, patient_id: int = 0
) -> Tile:
    """One grey pCLE frame; meningioma frames carry 1-4 psammoma bodies (the mask).

    The probe's field of view is fixed, so lengths scale with ``size / PCLE_REF_SIZE``.
    """
    size = _check_size(size)
    patient = _pcle_patient(seed, patient_id)
    rng = _tile_rng(seed, index, _KIND_PCLE, int(patient_id), int(bool(meningioma)))
    h = w = size
    k = size / PCLE_REF_SIZE
    img = _pcle_background(rng, size, k, patient)
    fov_r = PCLE_FOV_FRAC * size
    mask, n_bodies = np.zeros((h, w), dtype=bool), 0
    yy, xx = np.indices((h, w), dtype=float)
    c = (size - 1) / 2
    rr = np.hypot(yy - c, xx - c)
    if meningioma:
        before = img[rr <= fov_r].mean()
        mask, n_bodies = _place_psammoma(rng, img, k, fov_r)
        after = img[rr <= fov_r].mean()
        img *= (before + (1 - PSAMMOMA_COMPENSATION) * (after - before)) / after
    vignette = 1 - PCLE_VIGNETTE * (rr / fov_r) ** 2
    img = np.clip(img * vignette * patient["brightness"], 0, None)
    img = rng.poisson(img * patient["photons"]) / patient["photons"]
    img = ndimage.gaussian_filter(img, 0.5 * k)
    fov = rr <= fov_r
    grey = np.where(fov, np.clip(np.rint(img * PCLE_GREY_SCALE), 0, 255), 0).astype(np.uint8)
    mask &= fov
    meta = {
        "kind": "pcle",
        "class": PCLE_CLASSES[int(meningioma)],
        "patient_id": int(patient_id),
        "n_psammoma": n_bodies,
        "fov_radius": float(fov_r),
        **patient,
    }
    return Tile(
        np.repeat(grey[..., None], 3, axis=2),
        int(meningioma),
        mask,
        np.zeros((h, w), dtype=np.int32),
        np.zeros((h, w), dtype=np.uint8),
        meta,
    )


# ============================================================================= sets


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


def grading_set(n_per_class: int, size: int = 128, seed: int = 0) -> list[Tile]:
    """``n_per_class`` tiles of every grade, interleaved A, N, R1, ..., R5, A, N, ..."""
    _check_size(size)
    return [
        grading_tile(seed, i * len(GRADES) + g, size, grade)
        for i in range(n_per_class)
        for g, grade in enumerate(GRADES)
    ]


def pcle_set(
    n_patients: int, frames_per_patient: int, size: int = 128, seed: int = 0
) -> list[Tile]:
    """Frames of ``n_patients`` patients; half the patients (seeded shuffle) are meningioma."""
    _check_size(size)
    order = np.random.default_rng(np.random.SeedSequence([seed, _KIND_SET, _KIND_PCLE]))
    labels = np.arange(n_patients) % 2 == 0
    labels = labels[order.permutation(n_patients)]
    return [
        pcle_frame(seed, p * frames_per_patient + f, size, meningioma=bool(labels[p]), patient_id=p)
        for p in range(n_patients)
        for f in range(frames_per_patient)
    ]


# ============================================================================= rules


def _rng_text(r: tuple[float, float], unit: str = " px") -> str:
    return f"{r[0]:g}-{r[1]:g}{unit}"


def _grade_rule(grade: str) -> str:
    s = GRADE_SPECS[grade]
    if s.pattern == "glands":
        arch = (
            f"separate round glands of radius {_rng_text(s.gland_radius)} covering about "
            f"{s.gland_fill:g} of the tile, epithelium {s.epithelium:g} px thick around a "
            "clear lumen"
        )
    elif s.pattern == "cribriform":
        arch = (
            f"fused cribriform nests (thresholded noise of smoothness {NEST_SIGMA:g} px) "
            f"covering {_rng_text(s.sheet_area, '')} of the tile, pierced by punched-out "
            f"lumens of radius {_rng_text(s.lumen_radius)} every {s.lumen_pitch:g} px"
        )
    else:
        lum = (
            f", a few small lumens of radius {_rng_text(s.lumen_radius)} every {s.lumen_pitch:g} px"
            if s.lumen_pitch
            else ", no lumens"
        )
        arch = f"a solid sheet covering {_rng_text(s.sheet_area, '')} of the tile{lum}"
    return (
        f"{grade}: {arch}; nuclei of mean semi-axis {s.nucleus_radius:g} px, pleomorphism "
        f"{s.pleomorphism:g}, spaced {s.pitch:g} px."
    )


def _build_rules() -> dict[str, list[str]]:
    he = [
        f"All lengths are pixels at one magnification; tiles are {MIN_SIZE}-{MAX_SIZE} px and a "
        "larger tile shows a larger field, not a zoom.",
        "Colour follows Beer-Lambert: OD = cH * h + cE * e + residual, RGB = 255 exp(-OD), with "
        f"reference stain vectors h = {H_REF} and e = {E_REF}.",
        f"Each tile rotates both stain vectors by up to {STAIN_MAX_ROTATION_DEG:g} degrees and "
        f"draws a density scale per stain from {_rng_text(CONC_SCALE, '')} (recorded in meta), "
        "the same ranges for every class.",
        "The mean colour does not tell the class: the evidence region and the rest of the "
        "tissue are "
        "each scaled (haematoxylin and eosin separately, factors "
        f"{_rng_text(CALIBRATION_CLIP, '')}) until their mean colour has the tile's target "
        f"densities, reference (H, E) = {DENSITY_REF_HE} times the tile's scales; what differs "
        "between the classes is how the stain is laid out: nuclei, cells and spaces.",
        f"Stroma is wavy collagen: anisotropic noise ({FIBRE_LENGTH:g} px along, "
        f"{FIBRE_WIDTH:g} px across a random direction) warped by smooth displacements, "
        f"with up to {FIBROBLASTS_PER_KPX:g} faint spindle fibroblast nuclei per 1000 px^2 "
        "oriented along the fibres.",
        f"Normal lymph node: lymphocyte nuclei are round (axis ratio "
        f"{_rng_text(LYMPHOCYTE.aspect, '')}), radius {_rng_text(LYMPHOCYTE.radius)}, dark, on a "
        f"jittered hexagonal lattice of pitch {LYMPH_PITCH:g} px, each site kept with probability "
        f"{_rng_text(LYMPH_KEEP, '')} following a smooth lymphoid-density field.",
        f"Lymph-node architecture: with probability {FOLLICLE_PROB:g} a follicle (radius "
        f"{_rng_text(FOLLICLE_RADIUS)}, a dense mantle {_rng_text(MANTLE_WIDTH)} wide around a "
        f"paler germinal centre of lymphoid density {GERMINAL_CENTRE_DENSITY:g}); with "
        f"probability {SINUS_PROB:g} a winding sinus {_rng_text(SINUS_WIDTH)} wide (pale, "
        f"{SINUS_CELLULARITY:g} of the lymphocytes); with probability {CAPSULE_PROB:g} a "
        f"capsule of dense collagen without lymphocytes, {_rng_text(CAPSULE_WIDTH)} thick, "
        "along one tile edge (meta['structures'] names them). They are drawn the same way in "
        "both classes.",
        f"With probability {FAT_PROB:g} a tile has {FAT_COUNT[0]}-{FAT_COUNT[1]} clear fat "
        f"vacuoles of radius {_rng_text(FAT_RADIUS)} with thin eosin membranes.",
        "A tumour tile has smooth random tumour blobs (thresholded low-frequency noise, "
        f"smoothness tile size / {1 / TUMOUR_BLOB_SIGMA_FRAC:g}) covering a fraction of the tile "
        f"drawn uniformly from tumour_area (default {_rng_text(TUMOUR_AREA_DEFAULT, '')}); mask "
        "is exactly this region and a normal tile has an empty mask.",
        f"Tumour nuclei (type neoplastic) have semi-major axis {_rng_text(TUMOUR_NUCLEUS.radius)}, "
        f"axis ratio {_rng_text(TUMOUR_NUCLEUS.aspect, '')}, irregular outlines (harmonics 2-4 "
        f"up to {TUMOUR_NUCLEUS.pleomorphism:g}), vesicular chromatin with a dark rim and "
        f"{TUMOUR_NUCLEUS.nucleoli[0]}-{TUMOUR_NUCLEUS.nucleoli[1]} nucleoli of radius "
        f"{NUCLEOLUS_RADIUS:g} px, crowded on a {TUMOUR_PITCH:g} px lattice with centres at "
        f"least {TUMOUR_EDGE_FIT:g} outline radii inside the mask and pixels cut at its edge, "
        "in eosinophilic cytoplasm with cell borders and a pale perinuclear halo.",
        f"With probability {TUMOUR_LUMEN_PROB:g} the tumour has small clear lumens of radius "
        f"{_rng_text(TUMOUR_LUMEN_RADIUS)} (1 plus one per {TUMOUR_LUMEN_AREA:g} px^2 of tumour "
        "on average).",
        "Nuclei outside the mask are non-neoplastic (lymphocytes, fibroblasts) and lie wholly "
        "outside it; the class evidence is only the tumour region.",
        f"Finally the image is blurred (sigma {FINAL_BLUR_SIGMA:g} px) and sensor noise "
        f"(sigma {SENSOR_NOISE_STD:g} grey levels) is added.",
    ]
    grading = [
        "Prostate-like tiles on the H&E stain model of the lymph-node tiles, with wavy "
        f"fibromuscular stroma (faint haematoxylin {GRADING_STROMA_H:g}) and spindle nuclei.",
        "As in the H&E tiles, the evidence region (R1-R5) and the rest of the tile are each "
        "scaled to the tile's target mean densities, reference (H, E) = "
        f"{DENSITY_REF_GRADING} times per-tile scales from {_rng_text(CONC_SCALE, '')}: no "
        "grade is darker or more purple on average; the grades differ in nuclear size, shape, "
        "density, nucleoli and gland architecture. Artifacts of class A are drawn afterwards.",
        "N: "
        + _grade_rule("N")
        .split(": ", 1)[1]
        .replace("nuclei of", "a basal layer of flat nuclei plus a luminal layer of nuclei of"),
        *(_grade_rule(g) for g in GRADES[2:]),
        "Nuclear size, pleomorphism and the number of nuclei per tile increase monotonically "
        "from R1 to R5 while gland structure is lost (cytoplasm basophilia too, before the "
        "region's mean colour is scaled to the tile's target).",
        "For R1-R5 the mask is the malignant epithelium (glands, nests or sheet including their "
        "lumens), its nuclei are neoplastic and cut at its edge; N has an empty mask. The R4-R5 "
        f"sheet is thresholded noise of smoothness tile size / {1 / SHEET_BLOB_SIGMA_FRAC:g}.",
        f"A: benign (N) tissue with {ARTIFACT_COUNT[0]}-{ARTIFACT_COUNT[1]} of "
        f"{', '.join(ARTIFACTS)}: out-of-focus blur (sigma {_rng_text(BLUR_ARTIFACT_SIGMA)} over "
        f"{_rng_text(BLUR_ARTIFACT_AREA, '')} of the tile), tissue fold (darker doubled band "
        f"{_rng_text(FOLD_WIDTH)} wide), pen mark ({', '.join(PEN_INKS)} stroke "
        f"{_rng_text(PEN_WIDTH)} wide), air bubble (radius {_rng_text(BUBBLE_RADIUS)}, bright "
        "ring, clear interior, dark edge); mask is the artifact region, meta['artifact'] names "
        "them.",
    ]
    pcle = [
        f"Grey frames with a circular field of view of radius {PCLE_FOV_FRAC:g} x size; pixels "
        "outside it are 0. The probe's field is fixed, so the lengths below are for a "
        f"{PCLE_REF_SIZE} px frame and scale with the frame size.",
        "Background: fibrous grey texture (warped anisotropic noise) with "
        f"{PCLE_CELLS_PER_KPX:g} bright cell dots per 1000 px^2 (sigma "
        f"{_rng_text(PCLE_CELL_SIGMA)}), vignetting {PCLE_VIGNETTE:g} and Poisson noise "
        f"({_rng_text(PCLE_PHOTONS, '')} photons at full brightness).",
        f"The tissue background has mean intensity {PCLE_BACKGROUND:g} (grey level "
        f"{PCLE_BACKGROUND * PCLE_GREY_SCALE:.0f} before vignetting and the patient's gain).",
        f"Each patient has its own brightness ({_rng_text(PCLE_BRIGHTNESS, '')}), texture scale "
        f"({_rng_text(PCLE_TEXTURE_SCALE, '')}), cell density and noise level.",
        f"Meningioma frames contain {PSAMMOMA_COUNT[0]}-{PSAMMOMA_COUNT[1]} psammoma bodies: "
        f"bright concentric lamellated discs of radius {_rng_text(PSAMMOMA_RADIUS)} with "
        f"lamellae every {PSAMMOMA_LAMELLA:g} px (peak intensity "
        f"{_rng_text(PSAMMOMA_BRIGHTNESS, '')}); the mask is their discs. The frame is then "
        f"dimmed so that the bodies add only {1 - PSAMMOMA_COMPENSATION:g} of their extra light "
        "to the frame's mean: the mean brightness says little about the class.",
        f"With probability {STREAK_PROB:g} a frame of either class has a bright vessel-like "
        f"streak {_rng_text(STREAK_WIDTH)} wide: a distractor, not evidence.",
        "Glioblastoma frames have no psammoma bodies and an empty mask; the mask is the only "
        "class evidence.",
    ]
    return {"he": he, "grading": grading, "pcle": pcle}


RULES: dict[str, list[str]] = _build_rules()
