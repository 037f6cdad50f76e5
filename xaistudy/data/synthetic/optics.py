"""The stain model of the H&E and grading tiles: per-tile stain vectors, Beer-Lambert mixing,
the class-blind calibration of each region's mean colour, blur and sensor noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from xaistudy.data.synthetic.common import _unit

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
