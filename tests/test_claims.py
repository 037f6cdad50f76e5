"""The verdict rule: a claim's verdict follows the run's numbers and their bootstrap interval."""

import numpy as np
import pandas as pd
import pytest

from xaistudy.stats import claims
from xaistudy.stats.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    REPRODUCED,
    Claim,
    judge,
    verdict_of,
)


def claim(expect=">", null=0.0, **kw):
    return Claim("a.b", "Paper 2024", "Table 1", "A beats B", "0.61 vs 0.52",
                 "score(A) - score(B) per tile", expect=expect, null=null, **kw)


def diffs(values_by_seed):
    """Rows seed, unit, value from {seed: values}."""
    return pd.DataFrame(
        [{"seed": s, "unit": i, "value": v} for s, vs in values_by_seed.items()
         for i, v in enumerate(vs)]
    )


RNG = np.random.default_rng(0)
POSITIVE = {s: 0.3 + 0.1 * RNG.standard_normal(40) for s in range(3)}
NEGATIVE = {s: -0.3 + 0.1 * RNG.standard_normal(40) for s in range(3)}
CENTRED = {s: v - v.mean() for s, v in ((s, RNG.standard_normal(40)) for s in range(3))}


def test_interval_on_the_papers_side_is_reproduced():
    row = judge(claim(">"), diffs(POSITIVE))
    assert row["verdict"] == REPRODUCED
    assert row["ci_low"] > 0 and row["seeds"] == "0 1 2" and row["seeds_agree"]


def test_interval_on_the_other_side_is_contradicted():
    assert judge(claim(">"), diffs(NEGATIVE))["verdict"] == CONTRADICTED
    assert judge(claim("<"), diffs(POSITIVE))["verdict"] == CONTRADICTED
    assert judge(claim("<"), diffs(NEGATIVE))["verdict"] == REPRODUCED


def test_interval_across_the_null_is_inconclusive():
    row = judge(claim(">"), diffs(CENTRED))
    assert row["verdict"] == INCONCLUSIVE
    assert row["ci_low"] < 0 < row["ci_high"]


def test_the_verdict_changes_when_the_numbers_change():
    data = diffs(POSITIVE)
    assert judge(claim(">"), data)["verdict"] == REPRODUCED
    data["value"] -= 0.6  # same spread, shifted to the other side
    assert judge(claim(">"), data)["verdict"] == CONTRADICTED


def test_null_value_is_the_threshold():
    data = diffs(POSITIVE)  # mean about 0.3
    assert judge(claim(">", null=0.1), data)["verdict"] == REPRODUCED
    assert judge(claim(">", null=0.5), data)["verdict"] == CONTRADICTED


def test_interval_matches_the_normal_approximation():
    values = 1.0 + RNG.standard_normal(2000)
    row = judge(claim(), diffs({0: values}), n_boot=2000)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert row["book_value"] == pytest.approx(values.mean())
    assert row["ci_low"] == pytest.approx(values.mean() - half, abs=0.01)
    assert row["ci_high"] == pytest.approx(values.mean() + half, abs=0.01)


def test_per_seed_verdicts_show_disagreement():
    row = judge(claim(), diffs({0: POSITIVE[0], 1: CENTRED[1]}))
    assert row["seed_verdicts"] == f"0: {REPRODUCED}; 1: {INCONCLUSIVE}"
    assert row["seeds_agree"] is False or row["seeds_agree"] == False  # noqa: E712


def test_not_testable_needs_no_data_and_gives_the_reason():
    row = judge(claim(not_testable="needs CAMELYON16"), None)
    assert row["verdict"] == NOT_TESTABLE and "CAMELYON16" in row["note"]
    assert judge(claim(), diffs({}))["verdict"] == NOT_TESTABLE


def test_a_hypothesis_is_labelled_as_the_books():
    row = judge(claim(hypothesis="weights are near uniform"), diffs(POSITIVE))
    assert row["note"] == "hypothesis (the book's): weights are near uniform"


def test_missing_columns_and_bad_claims_raise():
    with pytest.raises(ValueError, match="lack column"):
        judge(claim(), pd.DataFrame({"value": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="expect"):
        claim(expect=">=")
    with pytest.raises(ValueError, match="word"):
        Claim("a b", "p", "s", "st", "v", "q")


def test_units_are_resampled_whole():
    # two rows per unit, perfectly anti-correlated within a unit: every resample has mean 0
    data = pd.DataFrame({"seed": 0, "unit": np.repeat(np.arange(30), 2),
                         "value": np.tile([1.0, -1.0], 30)})
    est, low, high = claims.bootstrap_interval(data)
    assert est == low == high == 0.0


def test_paired_difference_by_hand():
    scores = pd.DataFrame({
        "seed": [0, 0, 0, 0, 1, 1],
        "unit": [0, 0, 1, 1, 0, 0],
        "method": ["a", "b", "a", "b", "a", "b"],
        "score": [0.9, 0.5, 0.4, 0.6, 1.0, 0.0],
    })
    out = claims.paired_difference(scores, "a", "b")
    assert out["value"].round(6).tolist() == [0.4, -0.2, 1.0]
    assert out[["seed", "unit"]].values.tolist() == [[0, 0], [0, 1], [1, 0]]


def test_order_agreement_is_kendall_tau_against_the_papers_order():
    rows = pd.DataFrame({"method": ["x", "y", "z"], "score": [3.0, 2.0, 1.0]})
    assert claims.order_agreement(["x", "y", "z"])(rows) == pytest.approx(1.0)
    assert claims.order_agreement(["z", "y", "x"])(rows) == pytest.approx(-1.0)


def test_claims_table_and_scorecard_round_trip(tmp_path):
    table = claims.claims_table([judge(claim(), diffs(POSITIVE)), judge(claim(), None)])
    assert list(table.columns)[:8] == ["claim_id", "kind", "paper_value", "book_value",
                                      "ci_low", "ci_high", "seeds", "verdict"]
    claims.save_claims(table, tmp_path / "ch1")
    card = claims.scorecard(tmp_path, ["ch1", "ch2"])
    assert card["chapter"].tolist() == ["ch1", "ch1"]
    assert card["verdict"].tolist() == [REPRODUCED, NOT_TESTABLE]
    counts = claims.verdict_counts(card)
    assert counts.loc[0, REPRODUCED] == 1 and counts.loc[0, "total"] == 2


def test_verdict_of_non_finite_interval_is_inconclusive():
    assert verdict_of(float("nan"), 1.0, ">") == INCONCLUSIVE


def test_a_single_unit_gives_no_verdict():
    row = judge(claim(">"), diffs({0: np.array([0.7])}))
    assert row["verdict"] == INCONCLUSIVE and row["n_units"] == 1
    assert row["note"].startswith("one unit only")
    two = judge(claim(">"), diffs({0: np.array([0.7]), 1: POSITIVE[1]}))
    assert two["seed_verdicts"] == f"0: {INCONCLUSIVE}; 1: {REPRODUCED}"


def test_an_array_statistic_gives_the_same_interval_as_the_table_statistic():
    from xaistudy.stats.claims import ArrayStatistic, bootstrap_interval

    data = diffs(POSITIVE)
    data["w"] = np.linspace(1, 2, len(data))
    weighted = ArrayStatistic(("value", "w"), lambda v, w: float((v * w).sum() / w.sum()))
    table = lambda rows: float((rows["value"] * rows["w"]).sum() / rows["w"].sum())  # noqa: E731
    assert bootstrap_interval(data, weighted, n_boot=300) == bootstrap_interval(
        data, table, n_boot=300
    )
