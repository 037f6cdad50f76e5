"""Verdicts that can fail: calibrated intervals over trained models, null controls, Holm.

The calibration grid is the acceptance grid of the verdict rule (``benchmarks/
verdict_calibration.py`` runs it with more replicates and writes the numbers): separately
trained models whose effects differ by 0-2 within-unit sd, 3 and 5 seeds, 12 and 36 units.
"""

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xaistudy.stats import claims as cl
from xaistudy.stats import verdicts as vd
from xaistudy.viz import claims as claims_view

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import verdict_calibration as calibration  # noqa: E402

REPS, N_BOOT = 1000, 100


@pytest.mark.parametrize(
    "seeds,units", list(itertools.product(calibration.SEEDS, calibration.UNITS))
)
def test_the_interval_keeps_its_coverage_when_models_differ(seeds, units):
    """Truth 0 (the rule is location-free, so this is any truth): the nominal 95 % interval
    covers ≥ 0.93 in every cell of between-model spread (1,000 replicates each), and pure noise
    gets at most 5 % definite verdicts over the cells together (4,000 replicates), up to two
    Monte-Carlo standard errors (the t-interval over seeds is exact, so its rate *is* 5 %)."""
    definite_all = 0
    for ratio in calibration.RATIOS:
        rng = np.random.default_rng(int(10 * ratio) + 100 * seeds + units)
        definite = 0
        for r in range(REPS):
            rows = calibration.claim_rows(rng, seeds, units, ratio, 0.0)
            iv = vd.interval(rows, vd.mean_value, n_boot=N_BOOT, rng_seed=r)
            definite += bool(iv.side(0.0))
        assert 1 - definite / REPS >= 0.93, (seeds, units, ratio, definite / REPS)
        definite_all += definite
    n = REPS * len(calibration.RATIOS)
    assert definite_all / n <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n)


def test_the_bootstrap_alone_undercovers_when_models_differ():
    """The reason for the t-interval over seeds: units-only resampling is overconfident."""
    rng = np.random.default_rng(7)
    misses = 0
    for r in range(200):
        rows = calibration.claim_rows(rng, 3, 36, 1.0, 0.0)
        draws = vd.bootstrap_distribution(rows, vd.mean_value, n_boot=N_BOOT, rng_seed=r)
        low, high = vd.percentile_interval(draws)
        misses += not low <= 0 <= high
    assert misses / 200 > 0.1


@pytest.mark.parametrize("seeds,ratio", [(3, 0.0), (3, 2.0), (5, 1.0)])
def test_a_control_with_the_same_effect_makes_the_claim_uninformative(seeds, ratio):
    rng = np.random.default_rng(seeds)
    found = []
    for r in range(400):
        effect = calibration.STRONG * np.hypot(1.0, ratio)
        claim = calibration.claim_rows(rng, seeds, 12, ratio, effect)
        control = calibration.claim_rows(rng, seeds, 12, ratio, effect)
        iv = vd.interval(claim, vd.mean_value, n_boot=N_BOOT, rng_seed=r)
        alone = vd.interval(control, vd.mean_value, n_boot=N_BOOT, rng_seed=r)
        diff = vd.contrast(claim, control, vd.mean_value, n_boot=N_BOOT, rng_seed=r)
        found.append(vd.verdict_with_controls(iv, ">", 0.0, {"c": (alone, diff)})[0])
    assert found.count(vd.UNINFORMATIVE) / len(found) >= 0.95


def rows(values_by_seed):
    return pd.DataFrame(
        [
            {"seed": s, "unit": i, "value": v}
            for s, vs in values_by_seed.items()
            for i, v in enumerate(vs)
        ]
    )


def claim():
    return cl.Claim(
        "a.b",
        "Paper 2024",
        "Table 1",
        "A beats B",
        "0.61 vs 0.52",
        "score(A) - score(B) per tile",
        expect=">",
    )


def test_judge_names_the_control_that_reaches_the_verdict():
    measured = rows({0: [1.0, 1.2, 0.9, 1.1], 1: [1.0, 1.1, 1.2, 0.9], 2: [1.1, 1.0, 0.95, 1.2]})
    same = measured.assign(value=measured["value"] + 0.01)
    null = measured.assign(value=measured["value"] - 1.05)
    row = cl.judge(claim(), measured, controls={"random maps": same}, n_boot=300)
    assert row["verdict"] == vd.UNINFORMATIVE and "random maps" in row["note"]
    assert row["controls"] == "random maps" and row["control_verdict"] == "random maps: reproduced"
    row = cl.judge(claim(), measured, controls={"random maps": null}, n_boot=300)
    assert row["verdict"] == vd.REPRODUCED and row["p_value"] < 0.05
    none = cl.judge(claim(), measured, n_boot=300)
    assert none["controls"] == "none: none given"


def test_a_claim_not_separated_from_its_control_is_inconclusive():
    measured = rows({0: [1.0, 1.2, 0.9, 1.1], 1: [1.0, 1.1, 1.2, 0.9], 2: [1.1, 1.0, 0.95, 1.2]})
    weaker = measured.assign(value=measured["value"] - 0.9)  # alone: not on the paper's side…
    weaker.loc[weaker.index % 2 == 0, "value"] -= 0.5  # …and spread across the null
    iv = vd.interval(measured, vd.mean_value, n_boot=300)
    alone = vd.interval(weaker, vd.mean_value, n_boot=300)
    same = vd.contrast(measured, measured, vd.mean_value, n_boot=300)
    verdict, note = vd.verdict_with_controls(iv, ">", 0.0, {"w": (alone, same)})
    assert verdict == vd.INCONCLUSIVE and "not separated from the control w" in note


def test_holm_over_the_chapters_claims():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # hand-computed Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1, then running maximum
    np.testing.assert_allclose(vd.holm(p)[:3], [0.03, 0.06, 0.06])
    assert np.isnan(vd.holm(p)[3])
    table = pd.DataFrame(
        {
            "verdict": [vd.REPRODUCED, vd.REPRODUCED, vd.CONTRADICTED, vd.NOT_TESTABLE],
            "p_value": p,
            "note": ["", "", "x", ""],
        }
    )
    out = vd.adjust_family(table)
    assert out["verdict"].tolist() == [
        vd.REPRODUCED,
        vd.INCONCLUSIVE,
        vd.INCONCLUSIVE,
        vd.NOT_TESTABLE,
    ]
    assert "Holm" in out.at[1, "note"] and out.at[2, "note"].endswith("; x")
    table = cl.claims_table([cl.judge(claim(), rows({0: [1.0, 1.1, 0.9]}), n_boot=200)])
    assert list(table.columns) == list(cl.COLUMNS) and np.isfinite(table.at[0, "p_adjusted"])


def test_the_t_interval_over_seeds_by_hand():
    mean, low, high, p = vd.seed_t_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729749464 * 1.0 / np.sqrt(3)  # t(0.975, 2) · sd / √n
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert p == pytest.approx(0.07417990022744862)  # scipy's one-sample t-test, by hand


def test_an_uninformative_claim_is_drawn_and_counted():
    measured = rows({0: [1.0, 1.2, 0.9, 1.1], 1: [1.0, 1.1, 1.2, 0.9], 2: [1.1, 1.0, 0.95, 1.2]})
    row = cl.judge(claim(), measured, controls={"same": measured}, n_boot=200)
    table = cl.claims_table([row])
    assert table.at[0, "verdict"] == vd.UNINFORMATIVE
    assert claims_view.plot_claims(table) is not None
    counts = cl.verdict_counts(table.assign(chapter="x"))
    assert counts.at[0, vd.UNINFORMATIVE] == 1


def test_kind_quote_and_the_papers_magnitude_against_the_interval():
    measured = rows({0: [1.0, 1.2, 0.9, 1.1], 1: [1.0, 1.1, 1.2, 0.9], 2: [1.1, 1.0, 0.95, 1.2]})
    base = claim()
    for estimate, where in ((1.05, "inside"), (10.0, "above"), (-3.0, "below")):
        c = cl.Claim(**{**base.__dict__, "paper_estimate": estimate, "quote": '"A beats B"'})
        row = cl.judge(c, measured, n_boot=300)
        assert row["magnitude_verdict"] == where and row["paper_estimate"] == estimate
        assert row["quote"] == '"A beats B"' and row["kind"] == "finding"
    assert cl.judge(base, measured, n_boot=300)["magnitude_verdict"] == ""  # no paper number
    assert cl.magnitude_verdict(1.0, float("nan"), 2.0) == ""
    with pytest.raises(ValueError, match="kind must be one of finding, premise"):
        cl.Claim(**{**base.__dict__, "kind": "result"})


def test_xrelevancecams_claims_carry_the_papers_difference():
    from xaistudy.chapters.xrelevancecam.comparisons import claim as _claim

    c = _claim(
        "x", "Table 1", "s", ("table1.xrelevancecam.layer1", "table1.relevancecam.layer1"), "q"
    )
    assert c.paper_value == "28.07 vs 18.0" and c.paper_estimate == pytest.approx(10.07)
    keys = ("table4.xrelevancecam.conservation", "table4.relevancecam.conservation")
    flipped = _claim("y", "Table 4", "s", keys, "q", sign=-1)
    assert flipped.paper_estimate == pytest.approx(0.528 - 0.0097)
