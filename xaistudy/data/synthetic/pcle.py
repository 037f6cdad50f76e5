"""Grey pCLE endomicroscopy frames: meningioma with psammoma-like bodies vs glioblastoma,
per-patient optics, and their sets."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xaistudy.data.synthetic.common import (
    _KIND_PATIENT,
    _KIND_PCLE,
    _KIND_SET,
    PCLE_CLASSES,
    Tile,
    _check_size,
    _curve_distance,
    _filtered_noise,
    _Shape,
    _smooth_curve,
    _stamp_shape,
    _tile_rng,
)

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
