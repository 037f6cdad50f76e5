"""Chapter ``synthesis``: every chapter's claims in one scorecard.

Reads ``tables/claims.csv`` of each executed chapter (the folder the book renders, by default)
and shows the papers' findings next to this book's verdicts, with the meta-evaluation's table of
the papers' metrics against known truth beside them. It runs last, computes nothing
new, and says which chapters have not been run. The notebook is ``notebooks/synthesis.md``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from pydantic import Field

from xaistudy import claims as claims_mod
from xaistudy.chapters import Chapter, discover
from xaistudy.params import BaseParams

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


class SynthesisParams(BaseParams):
    """The ``synthesis`` chapter: where the executed chapters are."""

    chapters_dir: str = Field(
        "", description="folder holding the executed chapters; empty: the book's book/chapters"
    )


def chapters_folder(params: SynthesisParams) -> Path:
    """The folder of executed chapters this synthesis reads."""
    from xaistudy.runner import default_out

    return Path(params.chapters_dir) if params.chapters_dir else default_out("x").parent


def paper_chapters() -> list[str]:
    """Every chapter that judges claims, in book order: all but this one."""
    return [name for name in discover() if name != "synthesis"]


def metric_agreement(params: SynthesisParams) -> pd.DataFrame | None:
    """The meta-evaluation's table of metrics against known truth, when that chapter ran."""
    path = chapters_folder(params) / "meta_evaluation" / "tables" / "metric_agreement.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.exists() else None


def collect(params: SynthesisParams) -> tuple[pd.DataFrame, list[str]]:
    """(the scorecard, the chapters that have no claims table yet)."""
    names = paper_chapters()
    table = claims_mod.scorecard(chapters_folder(params), names)
    missing = [n for n in names if n not in set(table["chapter"])]
    return table, missing


def scorecard_view(table: pd.DataFrame) -> pd.DataFrame:
    """The scorecard as the book shows it (claim id folded into the statement's source)."""
    view = table.copy()
    view["source"] = view["source"].astype(str) + " (" + view["claim_id"].astype(str) + ")"
    return view[SCORECARD_COLUMNS]


def verdict_figure(counts: pd.DataFrame) -> plt.Figure | None:
    """Stacked bars: claims per chapter by verdict."""
    if counts.empty:
        return None
    colours = {
        claims_mod.REPRODUCED: "#2a7d2e",
        claims_mod.CONTRADICTED: "#b2182b",
        claims_mod.INCONCLUSIVE: "#9e9e9e",
        claims_mod.NOT_TESTABLE: "#d9d9d9",
    }
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(counts) + 1.3))
    left = pd.Series(0, index=counts.index, dtype=float)
    for verdict, colour in colours.items():
        ax.barh(counts["chapter"], counts[verdict], left=left, color=colour, label=verdict)
        left += counts[verdict]
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Verdicts per chapter", fontsize=10)
    fig.tight_layout()
    return fig


CHAPTER = Chapter(
    name="synthesis",
    title="Synthesis: what reproduced, what did not",
    params=SynthesisParams,
    order=10,
    part="Synthesis",
)
