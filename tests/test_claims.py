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
from xaistudy.viz import claims as claims_view


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


def _row(cid, est, low, high, verdict, expected="> 0", **kw):
    """One claims-table row by hand (every column of :data:`claims.COLUMNS`)."""
    row = dict.fromkeys(claims.COLUMNS, "")
    row.update(claim_id=cid, kind="finding", paper="Paper 2024", source="Table 1",
               statement="s", paper_value="qualitative", quantity="q", expected=expected,
               book_value=est, ci_low=low, ci_high=high, verdict=verdict,
               paper_estimate=np.nan, controls="another tile's mask", control_value="0.01234",
               control_verdict="another tile's mask: inconclusive")
    row.update(kw)
    return row


def _texts(fig):
    """Every text the figure shows: titles, labels, tick labels and legend entries."""
    import matplotlib.text

    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def test_the_claims_figure_has_one_panel_per_claim_on_its_own_scale():
    import matplotlib.pyplot as plt

    table = pd.DataFrame([
        _row("table6.big", 50.0, 48.0, 52.0, REPRODUCED, paper_estimate=60.0),
        _row("fig5.small", 0.02, -0.01, 0.05, INCONCLUSIVE, expected="< 0.15"),
        _row("table6.gone", np.nan, np.nan, np.nan, NOT_TESTABLE),
        _row("sect.neg", -3.0, -4.0, -2.0, CONTRADICTED),
    ])
    fig = claims_view.plot_claims(table)
    assert len(fig.axes) == 3  # the not testable claim has no panel
    limits = [ax.get_xlim() for ax in fig.axes]
    # each panel covers its own interval, its null value and the paper's number, nothing more
    for (x0, x1), low, high, null in zip(limits, (48, -0.01, -4), (60, 0.15, 0), (0, 0.15, 0),
                                         strict=True):
        assert x0 <= min(low, null) and max(high, null) <= x1
        assert x1 - x0 < 1.3 * (max(high, null) - min(low, null))  # fitted to it
    assert limits[0][1] > 60 and limits[1][1] < 1  # different scales: 60 vs 0.15
    # the paper's number drawn as a diamond where numeric (first row only)
    diamonds = [[ln.get_xdata()[0] for ln in ax.lines if ln.get_marker() == "D"]
                for ax in fig.axes]
    assert diamonds == [[60.0], [], []]
    texts = _texts(fig)
    assert "50 [48, 52]" in texts and "0.02 [-0.01, 0.05]" in texts and "-3 [-4, -2]" in texts
    assert [t for t in texts if t in claims.VERDICTS] == [REPRODUCED, INCONCLUSIVE, CONTRADICTED]
    assert "paper" in texts and "paper's side of the null value" in texts
    plt.close(fig)
    # 25 claims: the figure grows with them, the panels do not shrink
    many = pd.DataFrame([_row(f"c{i}", i, i - 1, i + 1, REPRODUCED) for i in range(1, 26)])
    tall = claims_view.plot_claims(many)
    assert len(tall.axes) == 25 and tall.get_size_inches()[1] > 25 * 0.5
    plt.close(tall)


def test_a_chapter_without_a_paper_gets_no_paper_wording():
    import matplotlib.pyplot as plt

    own = dict(kind="implementation check", paper="the book's generators (their rules)",
               paper_estimate=0.5)
    table = pd.DataFrame([_row("he.a", 0.1, 0.05, 0.12, REPRODUCED, **own),
                          _row("he.b", 0.9, 0.8, 1.0, INCONCLUSIVE, expected="> 0.9", **own)])
    assert claims.self_checks(table).tolist() == [True, True]
    fig = claims_view.plot_claims(table)
    texts = _texts(fig)
    assert not [t for t in texts if "paper" in t.lower()], texts
    assert all(ln.get_marker() != "D" for ax in fig.axes for ln in ax.lines)
    assert "expected side of the null value" in texts
    plt.close(fig)
    # the same rows as a paper's implementation checks are not self-checks
    assert not claims.self_checks(table.assign(paper="Borys et al. 2023")).any()


def test_the_reading_table_groups_by_the_papers_table_or_figure():
    table = pd.DataFrame([
        _row("table6.a", 0.41, 0.32, 0.5, REPRODUCED),
        _row("fig5.b", 1.0, 0.5, 1.5, INCONCLUSIVE, source="Fig. 5"),
        _row("table6.c", np.nan, np.nan, np.nan, NOT_TESTABLE, controls="none: not testable here",
             control_value="", control_verdict=""),
        _row("tendency.d", 2.0, 1.0, 3.0, REPRODUCED, source="Sect. 2.1 / Table B1"),
    ])
    view = claims_view.reading_table(table)
    assert list(view.columns[:6]) == ["group", "claim", "paper's number", "ours [95 % interval]",
                                      "verdict", "control"]
    assert view["group"].tolist() == ["Table 6", "Table 6", "Fig. 5", "Sect. 2.1"]
    assert view["claim"].tolist() == ["table6.a", "table6.c", "fig5.b", "tendency.d"]
    assert view["ours [95 % interval]"].tolist() == ["0.41 [0.32, 0.5]", "—", "1 [0.5, 1.5]",
                                                     "2 [1, 3]"]
    assert view.loc[0, "control"] == "another tile's mask 0.0123 (inconclusive)"
    assert view.loc[1, "control"] == "none: not testable here"
    assert claims_view.claim_group("premise.x", "Sec. 3 (DDPM)") == "Sec. 3"
    assert claims_view.claim_group("he.x", "H&E rules") == "H&E rules"
