"""Confidence intervals for the book's tables."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _clean(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval ``(mean, low, high)`` of the finite values.

    One value gives a zero-width interval; none gives NaNs.
    """
    arr = _clean(values)
    if arr.size == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return (mean, mean, mean)
    half = stats.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size)
    return (mean, float(mean - half), float(mean + half))
