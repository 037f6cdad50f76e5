"""Rankings and their agreement: the book's one rank, Kendall's tau, MARD and rank accuracy."""

from __future__ import annotations

import numpy as np
from scipy import stats


def rank(scores, higher_is_better: bool = True, method: str = "min") -> np.ndarray:
    """Ranks 1..n of ``scores`` (1 = best); ``method`` is scipy's tie rule ("min": ties share
    the best rank, "average": mid-ranks)."""
    scores = np.asarray(scores, dtype=np.float64)
    ranks = stats.rankdata(-scores if higher_is_better else scores, method=method)
    return ranks.astype(int) if method in ("min", "max", "dense", "ordinal") else ranks


def kendall_tau(x, y) -> float:
    """Kendall's tau-b of two score vectors (scipy's definition; 1 = same order, -1 = reversed).

    Pairs with a NaN in either vector are dropped; NaN when fewer than two pairs remain or either
    vector is constant. Written with numpy so the bootstrap's thousands of calls on a handful of
    methods stay cheap; equal to ``scipy.stats.kendalltau`` (tested).
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"kendall_tau needs vectors of one length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        return float("nan")
    dx = np.sign(np.subtract.outer(x, x))
    dy = np.sign(np.subtract.outer(y, y))
    pairs = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / pairs) if pairs else float("nan")


def mard(rank_a, rank_b) -> float:
    """Mean absolute rank difference (Afshar et al., Eq. 10)."""
    rank_a, rank_b = np.asarray(rank_a), np.asarray(rank_b)
    if rank_a.shape != rank_b.shape:
        raise ValueError(f"rankings differ in length: {rank_a.shape} vs {rank_b.shape}")
    return float(np.mean(np.abs(rank_a - rank_b)))


def rank_accuracy(rank_a, rank_b) -> float:
    """Share of items placed at the same rank by both rankings."""
    return float(np.mean(np.asarray(rank_a) == np.asarray(rank_b)))
