"""The measurements a claim is judged on, as rows (``seed``, ``unit``, ``value``) derived from a
run's tidy tables: a column, a paired difference, a cost ratio, a method against the others."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xaistudy.stats.claims import paired_difference

EMPTY = ("seed", "unit", "value")


def column(table: pd.DataFrame, name: str, **where: Any) -> pd.DataFrame:
    """``name`` as ``value`` of the rows of ``table`` whose columns equal ``where``."""
    for k, v in where.items():
        table = table[table[k] == v]
    return table[["seed", "unit", name]].rename(columns={name: "value"}).dropna()


def minus(table: pd.DataFrame, name: str, by: str, a: str, b: str) -> pd.DataFrame:
    """Per seed and unit: ``name`` where ``by == a`` minus ``name`` where ``by == b``."""
    return paired_difference(table, a, b, by=by, value=name)


def log_ratio(timing: pd.DataFrame, method: str, other: str | None) -> pd.DataFrame:
    """Per seed and timed tile: log10(seconds of ``method`` / seconds of ``other``), or / the
    median over the other grid methods on that tile (``other`` None)."""
    wide = timing.pivot_table(index=["seed", "unit"], columns="method", values="seconds")
    if method not in wide or (other is not None and other not in wide):
        return pd.DataFrame(columns=list(EMPTY))
    ref = wide.drop(columns=[method]).median(axis=1) if other is None else wide[other]
    return np.log10(wide[method] / ref).rename("value").reset_index()


def vs_others(scores: pd.DataFrame, method: str, name: str) -> pd.DataFrame:
    """Per seed and tile: ``name`` of ``method`` minus its median over the other grid methods
    (``rise_np``, another normalisation of RISE, is not one of them); tiles where ``name`` is
    undefined (NaN) drop out."""
    grid = scores[scores["method"] != "rise_np"]
    wide = grid.pivot_table(index=["seed", "unit"], columns="method", values=name)
    if method not in wide:
        return pd.DataFrame(columns=list(EMPTY))
    others = wide.drop(columns=[method]).median(axis=1)
    return (wide[method] - others).rename("value").dropna().reset_index()
