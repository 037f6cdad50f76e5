"""The synthesis figure: claims per chapter by verdict, the book's self-checks apart."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from xaistudy.chapters.synthesis.scorecard import Scorecard
from xaistudy.chapters.synthesis.tables import PAPERS, counts_table
from xaistudy.viz import claims as claims_view


def verdict_figure(counts: pd.DataFrame) -> plt.Figure | None:
    """Stacked bars: claims per chapter by verdict (``counts`` from
    :func:`~xaistudy.chapters.synthesis.tables.counts_table`; its total rows left out), the
    papers' claims first, the self-checks below a line; the legend, every verdict, under the
    axes. None when no chapter has claims."""
    rows = counts[counts["chapter"] != "all chapters"].reset_index(drop=True)
    if rows.empty:
        return None
    labels = [
        c if part == PAPERS else f"{c} (self-checks)"
        for c, part in zip(rows["chapter"], rows["claims"], strict=True)
    ]
    height = 0.45 * len(rows) + 1.9
    fig, ax = plt.subplots(figsize=(8, height))
    left = pd.Series(0.0, index=rows.index)
    for verdict, colour in claims_view.VERDICT_COLOURS.items():
        ax.barh(labels, rows[verdict], left=left, color=colour, label=verdict)
        left += rows[verdict]
    papers = int((rows["claims"] == PAPERS).sum())
    if 0 < papers < len(rows):  # a line between the papers' claims and the self-checks
        ax.axhline(papers - 0.5, color="black", lw=0.8, ls="--")
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.set_title("Verdicts per chapter", fontsize=10)
    n = len(claims_view.VERDICT_COLOURS)
    fig.legend(loc="lower center", ncol=n, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    return fig


def all_figures(card: Scorecard) -> dict[str, plt.Figure]:
    """Every figure of ``card`` by its saved name (none when no chapter has claims)."""
    fig = verdict_figure(counts_table(card.table))
    return {} if fig is None else {"verdict_counts": fig}
