"""Acquisition artifacts of the grading class A: out-of-focus blur, tissue fold, pen mark and
air bubble, each with its region as the evidence mask."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xaistudy.data.synthetic.common import (
    _blob_region,
    _curve_distance,
    _filtered_noise,
    _smooth_curve,
)
from xaistudy.data.synthetic.optics import _finish

ARTIFACTS = ("blur", "fold", "pen", "bubble")
ARTIFACT_COUNT = (1, 2)
BLUR_ARTIFACT_SIGMA = (2.0, 3.5)
BLUR_ARTIFACT_AREA = (0.25, 0.6)
FOLD_WIDTH = (8.0, 20.0)
PEN_WIDTH = (5.0, 12.0)
PEN_INKS = {"blue": (0.85, 0.45, 0.05), "green": (0.9, 0.15, 0.55), "black": (0.75, 0.75, 0.7)}
BUBBLE_RADIUS = (16.0, 40.0)


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
