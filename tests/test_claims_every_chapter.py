"""Every chapter's claims over two seeds at smoke size: the claims table's columns, only the
five verdicts, the verdict calibrated over the two seeds, and no definite verdict that one of
the claim's null controls reaches alone; a paper chapter's claims each quote the paper and name
a control or the reason none applies."""

import pytest

from xaistudy.chapters import discover, get_chapter
from xaistudy.core.params import build_params
from xaistudy.stats import claims as claims_mod

PAPER_CHAPTERS = [name for name in discover() if name != "synthesis"]


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_CHAPTERS)
def test_claims_over_two_seeds_can_fail(name):
    chapter = get_chapter(name)
    params = build_params(chapter.params, "smoke", {"seeds": [0, 1]})
    table = claims_mod.claims_table(chapter.claims(chapter.run(params)))
    assert list(table.columns) == list(claims_mod.COLUMNS)
    assert set(table["verdict"]) <= set(claims_mod.VERDICTS)
    assert set(table["kind"]) <= set(claims_mod.KINDS)
    tested = table[table["verdict"] != claims_mod.NOT_TESTABLE]
    assert len(tested), f"{name}: no claim could be judged at smoke size"
    # the run's two seeds are the top-level units of every judged claim measured on both
    over_seeds, one_model = (
        "t over seeds ∪ bootstrap over units",
        "bootstrap over units (one model)",
    )
    assert set(tested["interval"]) <= {over_seeds, one_model}
    # where the run measured a claim on both seeds, its interval is calibrated over them (a
    # smoke model too weak to give any finite estimate leaves the rows without an estimate)
    two = tested[(tested["seeds"] == "0 1") & tested["book_value"].notna()]
    if len(two):
        assert (two["interval"] == over_seeds).any(), name
    for _, row in table.iterrows():
        assert row["controls"], (name, row["claim_id"])  # a control, or why none applies
        if get_chapter(name).paper is not None:  # a paper's claim: its words, a control's reason
            assert row["quote"], (name, row["claim_id"])
            assert "none given" not in row["controls"], (name, row["claim_id"])
    for _, row in tested.iterrows():
        if row["verdict"] not in (claims_mod.REPRODUCED, claims_mod.CONTRADICTED):
            continue
        alone = [v.split(": ")[-1] for v in str(row["control_verdict"]).split("; ") if v]
        assert row["verdict"] not in alone, (name, row["claim_id"], row["control_verdict"])
