"""The statistics the ``ibo`` chapter's claims compute from the study's rows (means per
integer code: :func:`xaistudy.studies.ibo.code_means`), each a function of the rows the
bootstrap resamples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from xaistudy.chapters.ibo import paper
from xaistudy.chapters.ibo.paper import IMPROVEMENT_BASELINE, PAPER_TABLE1_TIERS
from xaistudy.stats import ranking
from xaistudy.stats.verdicts import ArrayStatistic
from xaistudy.studies import ibo as study


def table1_closest(metric: str, strategies: Sequence[str], n_masks: int) -> Callable:
    """min over the other strategies and the masks of (their mean distance - IBO's); for SSIM
    (a similarity) IBO's minus theirs. > 0: IBO is the closest to the original everywhere."""
    code = {s: i for i, s in enumerate(strategies)}
    sign = -1.0 if metric == "ssim" else 1.0
    ibo = code["ibo"]

    def statistic(rows: pd.DataFrame) -> float:
        cell = rows["strategy"].map(code).to_numpy() * n_masks + rows["mask"].to_numpy() - 1
        means = study.code_means(cell, rows["value"].to_numpy(), len(strategies) * n_masks)
        means = means.reshape(len(strategies), n_masks)
        diff = sign * (np.delete(means, ibo, axis=0) - means[ibo])
        return float(np.nanmin(diff))

    return statistic


def table1_adjacent_pairs(
    strategies: Sequence[str], tiers: Sequence[Sequence[str]] = PAPER_TABLE1_TIERS
) -> list[tuple[str, str]]:
    """The adjacent steps of the paper's order among ``strategies``: (a, b) for every a of one
    tier and b of the next non-empty tier (closest first; absent strategies left out)."""
    present = [t for t in ([s for s in tier if s in strategies] for tier in tiers) if t]
    return [
        (a, b) for near, far in zip(present, present[1:], strict=False) for a in near for b in far
    ]


def table1_order_margin(
    metric: str, strategies: Sequence[str], tiers: Sequence[Sequence[str]] = PAPER_TABLE1_TIERS
) -> Callable:
    """The smallest margin over the adjacent pairs (a, b) of the paper's order
    (:func:`table1_adjacent_pairs`): mean distance of b minus mean distance of a (for SSIM, a
    similarity, a's minus b's), over rows of one mask (``strategy``, ``value``). > 0: every
    adjacent step of the paper's order holds; one inverted step makes it negative."""
    code = {s: i for i, s in enumerate(strategies)}
    pairs = table1_adjacent_pairs(strategies, tiers)
    near, far = (np.array([code[p[i]] for p in pairs], dtype=int) for i in (0, 1))
    sign = -1.0 if metric == "ssim" else 1.0

    def statistic(rows: pd.DataFrame) -> float:
        cell = rows["strategy"].map(code).to_numpy()
        means = study.code_means(cell, rows["value"].to_numpy(), len(strategies))
        return float(np.nanmin(sign * (means[far] - means[near])))

    return statistic


def improvement_statistic(strategies: Sequence[str]) -> ArrayStatistic:
    """:func:`.paper.improvement_ratio` of the mean distance per strategy (rows: ``code``, the
    strategy's index, and ``value``; tiles and masks pooled)."""
    ibo, base, n = strategies.index("ibo"), strategies.index(IMPROVEMENT_BASELINE), len(strategies)
    return ArrayStatistic(
        ("code", "value"),
        lambda code, v: paper.improvement_ratio(
            study.code_means(code.astype(int), v, n), ibo, base
        ),
    )


def split_half_tau(n_methods: int) -> Callable:
    """Kendall tau between the IoU rankings of the even- and the odd-numbered tiles."""

    def statistic(rows: pd.DataFrame) -> float:
        units = rows["unit"].to_numpy().astype(np.uint64)
        half = ((units * np.uint64(0x9E3779B1)) >> np.uint64(11)) & np.uint64(1)  # a fixed hash
        m, v = rows["m"].to_numpy(), rows["value"].to_numpy()
        a, b = (study.code_means(m[half == h], v[half == h], n_methods) for h in (0, 1))
        if np.isnan(a).any() or np.isnan(b).any():
            return float("nan")
        return ranking.kendall_tau(ranking.rank(a, True), ranking.rank(b, True))

    return statistic
