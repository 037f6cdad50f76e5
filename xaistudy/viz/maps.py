"""Attribution maps drawn as the saliency review's Fig. 7 draws them: signed maps blue (against)
- white (zero) - red (for the class) on a symmetric scale, non-negative maps white to red, the
ground-truth region outlined, with colour bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "Reds"
#: CAMs and heatmaps drawn alone or over a tile: perceptually uniform, dark (0) to bright (1)
HEAT_CMAP = "inferno"


def display_map(saliency: np.ndarray, signed: bool, percentile: float = 99.5) -> np.ndarray:
    """A map scaled for display.

    Signed maps: divided by a high percentile of |map| and clipped to [-1, 1], so zero stays
    white. Non-negative maps: min-max scaled to [0, 1] (RISE maps sit on a large offset, the
    mean class score, which would otherwise hide their variation).
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    if signed:
        scale = np.percentile(np.abs(saliency), percentile)
        return np.clip(saliency / scale, -1, 1) if scale > 0 else np.zeros_like(saliency)
    shifted = saliency - saliency.min()
    scale = np.percentile(shifted, percentile)
    return np.clip(shifted / scale, 0, 1) if scale > 0 else np.zeros_like(saliency)


def show_map(
    ax: plt.Axes,
    saliency: np.ndarray,
    signed: bool,
    outlines: Sequence[tuple[np.ndarray, str]] = (),
    title: str | None = None,
) -> Any:
    """Draw one map on ``ax`` with each ``(mask, colour)`` outlined; returns the image."""
    norm = Normalize(-1, 1) if signed else Normalize(0, 1)
    cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
    im = ax.imshow(display_map(saliency, signed), cmap=cmap, norm=norm, interpolation="nearest")
    for mask, colour in outlines:
        if np.any(mask) and not np.all(mask):
            ax.contour(np.asarray(mask, float), levels=[0.5], colors=[colour], linewidths=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def add_colorbars(fig: plt.Figure, axes: Any, which: Sequence[bool] = (True, False)) -> None:
    """Colour bars of the signed (right, vertical) and non-negative (below) scales of ``axes``."""
    for signed in which:
        norm = Normalize(-1, 1) if signed else Normalize(0, 1)
        cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        if signed:
            bar = fig.colorbar(sm, ax=axes, location="right", fraction=0.025, pad=0.02)
            bar.set_label(
                "signed maps: against (blue) / for (red) the class, scaled to ±1", fontsize=8
            )
        else:
            bar = fig.colorbar(
                sm, ax=axes, location="bottom", fraction=0.03, pad=0.03, shrink=0.5, aspect=40
            )
            bar.set_label("non-negative maps (CAMs, RISE): scaled to [0, 1]", fontsize=8)
