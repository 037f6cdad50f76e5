"""What every generator shares: class names, the :class:`Tile`, seeded per-tile generators,
smooth noise fields, random blobs, lattices and perturbed-ellipse shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft, ndimage

# ----------------------------------------------------------------------------- public names
HE_CLASSES = ("normal", "tumour")
GRADES = ("A", "N", "R1", "R2", "R3", "R4", "R5")
PCLE_CLASSES = ("glioblastoma", "meningioma")
NUCLEUS_TYPES = ("background", "neoplastic", "non-neoplastic")
MIN_SIZE, MAX_SIZE = 64, 512

NEOPLASTIC, NON_NEOPLASTIC = 1, 2
_KIND_HE, _KIND_GRADING, _KIND_PCLE, _KIND_PATIENT, _KIND_SET = 1, 2, 3, 4, 5

# ----------------------------------------------------------------------------- noise fields
NOISE_COARSE_SIGMA = 3.0  # smooth noise is drawn on a grid coarser by sigma / this
NOISE_PAD_SIGMA = 6.0  # noise smoother than this is padded so it does not wrap around
JITTER = 0.3  # lattice jitter as a fraction of the pitch
TUMOUR_BLOB_SIGMA_FRAC = 1 / 7  # tumour blob smoothness as a fraction of the tile size


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
