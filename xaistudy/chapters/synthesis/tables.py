"""The synthesis tables: claims per chapter and verdict, the scorecard and the metrics against
known truth, each by the name it is saved under (``tables/<name>.csv``)."""

from __future__ import annotations

import pandas as pd

from xaistudy.chapters.synthesis.scorecard import Scorecard
from xaistudy.stats import claims as claims_mod

#: the scorecard's columns, in reading order
SCORECARD_COLUMNS = [
    "chapter",
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
