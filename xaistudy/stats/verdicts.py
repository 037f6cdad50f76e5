"""Verdicts that can fail: intervals calibrated over trained models, null controls, Holm.

A claim's interval must keep its coverage when the seeds are separately trained models that
differ from each other, not only when the units (tiles) are noisy. Two intervals answer two
questions, and the verdict uses the wider of the two (their union), with the larger p-value:

- over **models**: the claim's statistic on each seed's rows, then a Student-t interval and a
  one-sample t-test over these per-seed estimates (:func:`seed_t_interval`; needs ≥ 2 seeds
  with a finite estimate). Exact under normal per-seed estimates whatever the between-seed
  spread, and conservative with few seeds, as it should be;
- over **units**: the book's hierarchical bootstrap (seeds, then units within a seed;
  :mod:`xaistudy.stats.bootstrap`) with its percentile interval and a two-sided bootstrap
  p-value (:func:`bootstrap_p`). It covers the case of many units and few, nearly identical
  seeds, and it is the only interval of a one-seed run (then it speaks for that model only).

A **null control** is the same measurement where the paper's mechanism is absent (random maps
of the same coverage, another tile's mask, an untrained model…), computed in the same run on
the same units. Each control is judged alone and against the claim (the contrast claim −
control, paired by unit where the units match). The rule (:func:`verdict_with_controls`):

- *reproduced* / *contradicted* only when the claim's interval lies on one side of the null and
  its contrast with every control lies on that same side;
- *uninformative* when a control alone reaches the claim's verdict: the measurement gives that
  answer without the paper's mechanism, so it says nothing about it;
- *inconclusive* otherwise (including a claim that passes but is not separated from a control).

A chapter's claims are one family: :func:`holm` adjusts their p-values (statsmodels'
``multipletests``), and a definite verdict whose adjusted p-value is not below ``alpha``
becomes *inconclusive* (:func:`adjust_family`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from xaistudy.stats.bootstrap import mean_draws, percentile_interval, resamples

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
UNINFORMATIVE = "uninformative"
NOT_TESTABLE = "not testable here"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, UNINFORMATIVE, NOT_TESTABLE)
ALPHA = 0.05

Statistic = Callable[[pd.DataFrame], float]


def mean_value(rows: pd.DataFrame) -> float:
    """The default statistic: the mean of column ``value``."""
    return float(rows["value"].mean())


@dataclass(frozen=True)
class ArrayStatistic:
    """A statistic of a few columns, computed on their numpy arrays: ``fn(*arrays)``.

    It is called like any statistic (on rows); the bootstrap hands it the resampled arrays
    directly, which is much faster than resampling the table.
    """

    columns: tuple[str, ...]
    fn: Callable[..., float]

    def __call__(self, rows: pd.DataFrame) -> float:
        return float(self.fn(*(rows[c].to_numpy() for c in self.columns)))


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval and two-sided p-value against ``null``."""

    estimate: float
    low: float
    high: float
    p_value: float
    n_seeds: int
    n_units: int
    method: str

    def side(self, null: float) -> str:
        """``">"`` or ``"<"`` when the interval lies wholly on one side of ``null``, else ``""``."""
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.n_units < 2:
            return ""
        if self.low > null:
            return ">"
        if self.high < null:
            return "<"
        return ""


def seed_estimates(
    data: pd.DataFrame, statistic: Statistic, seed_column: str = "seed"
) -> np.ndarray:
    """The statistic on each seed's rows, in seed order."""
    if statistic is mean_value:  # the default statistic, without a groupby
        codes, _ = pd.factorize(data[seed_column], sort=True)
        values = data["value"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(codes, values) / np.bincount(codes)
    return np.array(
        [float(statistic(rows)) for _, rows in data.groupby(seed_column, sort=True)], dtype=float
    )


def seed_t_interval(
    estimates: np.ndarray, null: float = 0.0, level: float = 0.95
) -> tuple[float, float, float, float]:
    """(mean, low, high, p): Student-t interval and one-sample t-test of per-seed estimates.

    Identical estimates (no spread between models) give a zero-width interval and p 0 or 1.
    """
    x = np.asarray(estimates, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    if sd == 0:
        return mean, mean, mean, float(mean == null)
    se = sd / np.sqrt(x.size)
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * se
    p = float(2 * stats.t.sf(abs(mean - null) / se, x.size - 1))  # the one-sample t-test
    return mean, float(mean - half), float(mean + half), p


def bootstrap_p(draws: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of ``null``: twice the smaller tail share of the draws at
    or beyond it, counted as (k + 1) / (n + 1) so it is never 0."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float("nan")
    below = (np.count_nonzero(draws <= null) + 1) / (draws.size + 1)
    above = (np.count_nonzero(draws >= null) + 1) / (draws.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def bootstrap_distribution(
    data: pd.DataFrame,
    statistic: Statistic,
    *,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    rng_seed: int = 0,
) -> np.ndarray:
    """The statistic on ``n_boot`` hierarchical resamples of ``data`` (fast for the mean of
    ``value`` and for array statistics, which read numpy arrays instead of the table)."""
    data = data.reset_index(drop=True)
    if statistic is mean_value:
        return mean_draws(
            data, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=rng_seed
        )
    fast = _fast_path(data, statistic)
    out = np.empty(n_boot)
    draws = resamples(data, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=rng_seed)
    for b, index in enumerate(draws):
        out[b] = fast(index) if fast is not None else statistic(data.iloc[index])
    return out


def _fast_path(data: pd.DataFrame, statistic: Statistic) -> Callable[[np.ndarray], float] | None:
    if isinstance(statistic, ArrayStatistic):
        arrays = [data[c].to_numpy() for c in statistic.columns]
        return lambda index: statistic.fn(*(a[index] for a in arrays))
    if statistic is mean_value:
        values = data["value"].to_numpy(float)
        return lambda index: values[index].mean()
    return None


def count_units(data: pd.DataFrame, unit: str = "unit", seed_column: str = "seed") -> int:
    """The number of distinct (seed, unit) pairs of ``data``."""
    if len(data) == 0:
        return 0
    seeds, _ = pd.factorize(data[seed_column])
    units, _ = pd.factorize(data[unit])
    return int(np.unique(seeds.astype(np.int64) * (units.max() + 1) + units).size)


def interval(
    data: pd.DataFrame,
    statistic: Statistic,
    *,
    null: float = 0.0,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    level: float = 0.95,
    rng_seed: int = 0,
) -> Interval:
    """The claim's estimate, its calibrated interval and p-value (module docstring)."""
    data = data.reset_index(drop=True)
    n_units = count_units(data, unit, seed_column)
    if n_units == 0:
        nan = float("nan")
        return Interval(nan, nan, nan, nan, 0, 0, "no data")
    draws = bootstrap_distribution(
        data, statistic, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=rng_seed
    )
    b_low, b_high = percentile_interval(draws, level)
    b_p = bootstrap_p(draws, null)
    per_seed = seed_estimates(data, statistic, seed_column)
    finite = per_seed[np.isfinite(per_seed)]
    if finite.size >= 2:
        mean, t_low, t_high, t_p = seed_t_interval(finite, null, level)
        low, high = np.nanmin([b_low, t_low]), np.nanmax([b_high, t_high])
        p = float(np.nanmax([b_p, t_p]))
        method = "t over seeds ∪ bootstrap over units"
        return Interval(mean, float(low), float(high), p, int(finite.size), n_units, method)
    estimate = float(statistic(data))
    method = "bootstrap over units (one model)"
    return Interval(estimate, b_low, b_high, b_p, int(finite.size), n_units, method)


def contrast(
    data: pd.DataFrame,
    control: pd.DataFrame,
    statistic: Statistic,
    *,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    level: float = 0.95,
    rng_seed: int = 0,
) -> Interval:
    """statistic(claim rows) − statistic(control rows), with the calibrated interval.

    The two tables are resampled together, so units with the same (seed, unit) key stay
    paired; seeds present in only one of them are dropped."""
    seeds = set(data[seed_column]) & set(control[seed_column])
    both = pd.concat([data.assign(_side=0), control.assign(_side=1)], ignore_index=True)
    both = both[both[seed_column].isin(seeds)].reset_index(drop=True)
    if both.empty:
        nan = float("nan")
        return Interval(nan, nan, nan, nan, 0, 0, "no common seed")
    side = both["_side"].to_numpy()
    fast = _fast_path(both, statistic)

    def difference(rows: np.ndarray) -> float:
        a, b = rows[side[rows] == 0], rows[side[rows] == 1]
        if a.size == 0 or b.size == 0:
            return float("nan")
        if fast is not None:
            return float(fast(a) - fast(b))
        cols = both.columns.drop("_side")
        return float(statistic(both.iloc[a][cols]) - statistic(both.iloc[b][cols]))

    both = both.assign(_row=np.arange(len(both)))
    return interval(
        both,
        ArrayStatistic(("_row",), difference),
        unit=unit,
        seed_column=seed_column,
        n_boot=n_boot,
        level=level,
        rng_seed=rng_seed,
    )


def verdict_of_side(side: str, expect: str) -> str:
    if not side:
        return INCONCLUSIVE
    return REPRODUCED if side == expect else CONTRADICTED


def verdict_with_controls(
    claim: Interval,
    expect: str,
    null: float,
    controls: Mapping[str, tuple[Interval, Interval]],
) -> tuple[str, str]:
    """(verdict, note) of a claim whose interval is ``claim`` and whose controls are
    ``{name: (control judged alone, contrast claim − control)}`` (module docstring)."""
    side = claim.side(null)
    verdict = verdict_of_side(side, expect)
    if verdict == INCONCLUSIVE or not controls:
        return verdict, ""
    alone = [name for name, (c, _) in controls.items() if c.side(null) == side]
    if alone:
        return UNINFORMATIVE, (
            f"uninformative: the control{'s' if len(alone) > 1 else ''} "
            f"{', '.join(alone)} alone {'reach' if len(alone) > 1 else 'reaches'} "
            f"the same verdict ({verdict})"
        )
    apart = [name for name, (_, d) in controls.items() if d.side(0.0) != side]
    if apart:
        return INCONCLUSIVE, (
            f"not separated from the control{'s' if len(apart) > 1 else ''} {', '.join(apart)}"
        )
    return verdict, ""


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels' ``multipletests``); NaNs stay NaN and are not
    counted in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out


def adjust_family(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """``table`` (a chapter's claims, columns ``p_value``, ``verdict``, ``note``) with
    ``p_adjusted`` (Holm over the rows with a p-value) and every definite verdict whose adjusted
    p-value is not below ``alpha`` turned *inconclusive*, saying why in the note."""
    out = table.copy()
    out["p_adjusted"] = holm(out["p_value"].to_numpy(dtype=float))
    family = int(np.isfinite(out["p_value"].to_numpy(dtype=float)).sum())
    weak = out["verdict"].isin([REPRODUCED, CONTRADICTED]) & ~(out["p_adjusted"] < alpha)
    for i in out.index[weak]:
        reason = (
            f"{out.at[i, 'verdict']} at 95 % alone, but not after Holm's adjustment over "
            f"{family} claims (p {out.at[i, 'p_value']:.3g} → {out.at[i, 'p_adjusted']:.3g})"
        )
        note = str(out.at[i, "note"]) if pd.notna(out.at[i, "note"]) else ""
        out.at[i, "note"] = "; ".join(n for n in (reason, note) if n)
        out.at[i, "verdict"] = INCONCLUSIVE
    return out
