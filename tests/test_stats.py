"""The statistics layer against hand-computed values and scipy: rankings and the bootstrap."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from xaistudy.stats import bootstrap, ranking


def test_mard_rank_accuracy_and_tau_hand_computed():
    gt = np.array([1, 2, 3, 4, 5, 6, 7])
    oc = np.array([2, 1, 3, 4, 5, 7, 6])
    assert ranking.mard(gt, oc) == pytest.approx(4 / 7)  # the IBO paper's 0.5714 pattern
    assert ranking.rank_accuracy(gt, oc) == pytest.approx(3 / 7)
    assert ranking.kendall_tau(gt, gt[::-1]) == pytest.approx(-1.0)
    assert ranking.kendall_tau(gt, oc) == pytest.approx(1 - 2 * 2 / 21)  # 2 of 21 discordant
    with pytest.raises(ValueError, match="differ in length"):
        ranking.mard(gt, oc[:3])


def test_rank_directions_and_ties():
    assert ranking.rank([0.2, 0.9, 0.5], higher_is_better=True).tolist() == [3, 1, 2]
    assert ranking.rank([0.2, 0.9, 0.5], higher_is_better=False).tolist() == [1, 3, 2]
    assert ranking.rank([0.5, 0.5, 0.1], higher_is_better=True).tolist() == [1, 1, 3]
    assert ranking.rank([0.5, 0.5, 0.1], True, method="average").tolist() == [1.5, 1.5, 3]


def test_kendall_tau_is_scipys_tau_b_with_nan_pairs_dropped():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.integers(0, 4, 9).astype(float)  # ties in both
        y = rng.integers(0, 4, 9).astype(float)
        ref = sps.kendalltau(x, y).statistic
        got = ranking.kendall_tau(x, y)
        assert (np.isnan(ref) and np.isnan(got)) or got == pytest.approx(ref)
    x, y = np.array([1.0, 2, np.nan, 4]), np.array([1.0, np.nan, 3, 2])
    assert ranking.kendall_tau(x, y) == pytest.approx(sps.kendalltau([1, 4], [1, 2]).statistic)
    assert np.isnan(ranking.kendall_tau([1, 1, 1], [1, 2, 3]))  # a constant ranks nothing
    with pytest.raises(ValueError, match="one length"):
        ranking.kendall_tau([1, 2], [1, 2, 3])


def test_the_bootstrap_resamples_seeds_then_whole_units():
    data = pd.DataFrame(
        {"seed": [0, 0, 0, 0, 1, 1], "unit": [0, 0, 1, 1, 0, 0], "value": [1, 1, 2, 2, 5, 5.0]}
    )
    for index in bootstrap.resamples(data, n_boot=50, rng_seed=1):
        rows = data.iloc[index]
        # a unit's two rows are drawn together: every drawn (seed, unit) appears in pairs
        assert (rows.groupby(["seed", "unit"]).size() % 2 == 0).all()
    a = bootstrap.bootstrap_draws(data, [lambda r: r["value"].mean()], n_boot=30, rng_seed=2)
    b = bootstrap.bootstrap_draws(data, [lambda r: r["value"].mean()], n_boot=30, rng_seed=2)
    assert np.array_equal(a, b) and a.shape == (30, 1)
    assert bootstrap.percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
