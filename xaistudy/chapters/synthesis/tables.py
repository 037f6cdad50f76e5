"""The synthesis tables: claims per chapter and verdict, the scorecard and the metrics against
known truth, each by the name it is saved under (``tables/<name>.csv``)."""

from __future__ import annotations

import pandas as pd

from xaistudy.chapters.synthesis.scorecard import Scorecard
from xaistudy.stats import claims as claims_mod

#: the scorecard's columns, in reading order
SCORECARD_COLUMNS = [
    "chapter",
    "kind",
    "paper",
    "source",
    "statement",
    "paper_value",
    "quantity",
    "expected",
    "book_value",
    "ci_low",
    "ci_high",
    "verdict",
    "magnitude_verdict",
    "p_adjusted",
    "controls",
    "control_value",
    "control_verdict",
    "seeds",
    "seeds_agree",
    "data",
    "profile",
    "note",
]

#: each table's caption, by its saved name
CAPTIONS = {
    "verdict_counts": "Claims per chapter and verdict",
    "scorecard": "Scorecard: the papers' claims, judged",
    "metric_agreement": "The papers' metrics against known truth",
}


def scorecard_view(table: pd.DataFrame) -> pd.DataFrame:
    """The scorecard as the book shows it (claim id folded into the statement's source)."""
    view = table.copy()
    view["source"] = view["source"].astype(str) + " (" + view["claim_id"].astype(str) + ")"
    return view[SCORECARD_COLUMNS]


def multiplicity_text(table: pd.DataFrame) -> str:
    """How many claims were judged, in how many families, and the error each verdict carries
    (Holm within a chapter; across the book at most the sum of the chapters' 5 %)."""
    if table.empty:
        return "No chapter has been run yet: no claim was judged."
    judged = table[table["verdict"] != claims_mod.NOT_TESTABLE]
    families = judged["chapter"].nunique()
    counts = judged["verdict"].value_counts()
    parts = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in claims_mod.VERDICTS[:4])
    kinds = judged["kind"].value_counts() if "kind" in judged else pd.Series(dtype=int)
    findings = int(kinds.get("finding", 0))
    others = ", ".join(
        f"{int(n)} {k}{'s' if n > 1 else ''}" for k, n in kinds.items() if k != "finding"
    )
    return (
        f"{len(judged)} claims were judged in {families} chapters ({parts}; "
        f"{len(table) - len(judged)} not testable here); {findings} of them are the papers' "
        f"findings{f', the others {others}' if others else ''}. Each chapter is one family: Holm's "
        "adjustment keeps the chance of any false *reproduced* or *contradicted* verdict within "
        f"a chapter at or below 5 %; over the {families} chapters together that chance is at "
        f"most {min(1.0, 0.05 * families):.0%} (the sum of the families' 5 %). A claim that "
        "its null control also reaches is *uninformative*, whatever its own interval says."
    )


def all_tables(card: Scorecard) -> dict[str, pd.DataFrame]:
    """Every table of ``card`` by its saved name (``metric_agreement`` only when the
    meta-evaluation has run)."""
    out = {
        "verdict_counts": claims_mod.verdict_counts(card.table),
        "scorecard": scorecard_view(card.table),
    }
    if card.agreement is not None:
        out["metric_agreement"] = card.agreement
    return out
