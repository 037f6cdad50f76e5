"""Figures and tables of the book: overlays, galleries, and saving them beside the notebook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from skimage.segmentation import find_boundaries

from xaistudy.core.store import atomic_write

#: Colours used throughout the book for masks and nuclei types.
COLORS = {
    "mask": (1.0, 0.85, 0.0),  # class-evidence region outline (yellow)
    "neoplastic": (0.95, 0.15, 0.15),
    "non-neoplastic": (0.15, 0.45, 0.95),
}


def save_figure(fig: plt.Figure, name: str, out_dir: str | Path = ".", dpi: int = 150) -> Path:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (atomically) and return the path."""
    path = Path(out_dir) / "figures" / f"{name}.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png"))
    return path


def save_table(table: pd.DataFrame, name: str, out_dir: str | Path = ".") -> pd.DataFrame:
    """Save ``table`` as ``<out_dir>/tables/<name>.csv`` (atomically) and return it for display."""
    path = Path(out_dir) / "tables" / f"{name}.csv"
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return table


def outline(
    image: np.ndarray, mask: np.ndarray, color=COLORS["mask"], width: int = 2
) -> np.ndarray:
    """``image`` (H, W, 3 uint8) with the boundary of ``mask`` drawn in ``color``."""
    out = image.copy()
    edge = find_boundaries(mask.astype(bool), mode="inner")
    for _ in range(width - 1):
        edge |= find_boundaries(edge, mode="outer")
    out[edge] = (np.asarray(color) * 255).astype(np.uint8)
    return out


def nuclei_overlay(image: np.ndarray, nuclei_type: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` with neoplastic nuclei tinted red and non-neoplastic nuclei blue."""
    out = image.astype(np.float32) / 255
    for value, name in [(1, "neoplastic"), (2, "non-neoplastic")]:
        sel = nuclei_type == value
        out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(COLORS[name])
    return (out * 255).round().astype(np.uint8)


def image_grid(
    images: Sequence[np.ndarray],
    ncols: int,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    panel: float = 2.2,
) -> plt.Figure:
    """A grid of RGB/grey images with optional titles and row labels, axes hidden."""
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols, panel * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if k < len(images):
            ax.imshow(images[k], cmap="gray" if images[k].ndim == 2 else None)
            if titles is not None and k < len(titles):
                ax.set_title(titles[k], fontsize=9)
    if row_labels is not None:
        for r, label in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(label, fontsize=10)
    fig.tight_layout()
    return fig
