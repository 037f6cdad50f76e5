"""The book's one bootstrap: resample the seeds (trained models), then the units within each drawn
seed, all rows of a unit together.

:func:`resamples` draws the row indices; :func:`bootstrap_draws` evaluates statistics on them,
every statistic on the same resamples (so differences between statistics are paired).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd


def unit_groups(
    data: pd.DataFrame, unit: str = "unit", seed_column: str = "seed"
) -> tuple[list, dict]:
    """The seeds in order, and per seed the row positions of each of its units."""
    data = data.reset_index(drop=True)
    groups = {}
    for s, g in data.groupby(seed_column, sort=True):
        offsets = g.index.to_numpy()
        groups[s] = [offsets[np.asarray(ix)] for ix in g.groupby(unit, sort=True).indices.values()]
    return list(groups), groups


def resamples(
    data: pd.DataFrame,
    *,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    rng_seed: int = 0,
) -> Iterator[np.ndarray]:
    """``n_boot`` arrays of row positions of ``data``: seeds drawn with replacement (when there
    are several), then each drawn seed's units with replacement."""
    seeds, groups = unit_groups(data, unit, seed_column)
    # one row per unit: draw positions from one flat array per seed (the same draws, faster)
    single = all(len(ix) == 1 for units in groups.values() for ix in units)
    flat = {s: np.concatenate(units) for s, units in groups.items()} if single else {}
    rng = np.random.default_rng(rng_seed)
    for _ in range(n_boot):
        drawn = rng.choice(len(seeds), size=len(seeds)) if len(seeds) > 1 else [0]
        parts = []
        for k in drawn:
            units = groups[seeds[k]]
            pick = rng.integers(0, len(units), size=len(units))
            parts.extend([flat[seeds[k]][pick]] if single else [units[i] for i in pick])
        yield np.concatenate(parts)


def bootstrap_draws(
    data: pd.DataFrame,
    statistics: Sequence[Callable[[pd.DataFrame], float]],
    *,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    rng_seed: int = 0,
) -> np.ndarray:
    """(n_boot, len(statistics)): every statistic on the same :func:`resamples` of ``data``."""
    data = data.reset_index(drop=True)
    out = np.empty((n_boot, len(statistics)))
    draws = resamples(data, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=rng_seed)
    for b, index in enumerate(draws):
        sample = data.iloc[index]
        out[b] = [statistic(sample) for statistic in statistics]
    return out


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite ``draws`` (NaNs when none is finite)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high)
