"""Statistics of a set of tiles, measured from their ground-truth arrays (not from metadata)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xaistudy.data.synthetic import Tile


def nucleus_areas(instance: np.ndarray, types: np.ndarray, type_value: int) -> np.ndarray:
    """Pixel areas of the nuclei of one type in an instance map."""
    ids = np.unique(instance[(types == type_value) & (instance > 0)])
    if ids.size == 0:
        return np.zeros(0)
    counts = np.bincount(instance.ravel())
    return counts[ids].astype(float)


def tile_statistics(tiles: Sequence[Tile], classes: Sequence[str]) -> pd.DataFrame:
    """One row per tile: class, evidence-mask share, nuclei count, density and mean areas."""
    rows = []
    for t in tiles:
        h, w = t.mask.shape
        neo = nucleus_areas(t.nuclei_instance, t.nuclei_type, 1)
        non = nucleus_areas(t.nuclei_instance, t.nuclei_type, 2)
        n_nuclei = neo.size + non.size
        rows.append(
            {
                "class": classes[t.label],
                "mask_share": float(t.mask.mean()),
                "n_nuclei": n_nuclei,
                "nuclei_per_10k_px": 1e4 * n_nuclei / (h * w),
                "area_neoplastic_px": float(neo.mean()) if neo.size else np.nan,
                "area_non_neoplastic_px": float(non.mean()) if non.size else np.nan,
                "mean_intensity": float(t.image.mean()),
            }
        )
    return pd.DataFrame(rows)


def summarise(stats: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation of every column per class, classes in their given order."""
    numeric = stats.drop(columns="class").columns
    grouped = stats.groupby("class", sort=False)[list(numeric)]
    table = grouped.agg(["mean", "std"]).round(3)
    table.columns = [f"{col}_{stat}" for col, stat in table.columns]
    table.insert(0, "n_tiles", grouped.size())
    return table.reindex([c for c in classes if c in table.index]).reset_index()


def class_balance(labels: np.ndarray, classes: Sequence[str], dataset: str) -> pd.DataFrame:
    """Count and share of each class."""
    counts = np.bincount(np.asarray(labels), minlength=len(classes))
    return pd.DataFrame(
        {
            "dataset": dataset,
            "class": list(classes),
            "n": counts,
            "share": np.round(counts / max(counts.sum(), 1), 4),
        }
    )
