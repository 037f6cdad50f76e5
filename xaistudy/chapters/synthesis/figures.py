"""The synthesis figure: claims per chapter by verdict."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from xaistudy.chapters.synthesis.scorecard import Scorecard
from xaistudy.stats import claims as claims_mod


def verdict_figure(counts: pd.DataFrame) -> plt.Figure | None:
    """Stacked bars: claims per chapter by verdict (None when no chapter has claims)."""
    if counts.empty:
        return None
    colours = {
        claims_mod.REPRODUCED: "#2a7d2e",
        claims_mod.CONTRADICTED: "#b2182b",
        claims_mod.INCONCLUSIVE: "#9e9e9e",
        claims_mod.UNINFORMATIVE: "#e08214",
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


def all_figures(card: Scorecard) -> dict[str, plt.Figure]:
    """Every figure of ``card`` by its saved name (none when no chapter has claims)."""
    fig = verdict_figure(claims_mod.verdict_counts(card.table))
    return {} if fig is None else {"verdict_counts": fig}
