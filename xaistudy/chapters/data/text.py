"""The ``data`` chapter's words: the generators' rules and sentences computed from the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaistudy.data import synthetic


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown (computed sentences in the notebook)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def rules(kind: str) -> str:
    """The generator's rules for ``kind`` (``he``, ``grading``, ``pcle``) as a Markdown list."""
    return "\n".join(f"- {rule}" for rule in synthetic.RULES[kind])


def show_rules(kind: str) -> None:
    """Display :func:`rules` of ``kind``."""
    show_markdown(rules(kind))


def histogram_reading(sources: pd.DataFrame, high: float = 0.8, low: float = 0.3) -> str:
    """One computed sentence per dataset on where the histogram's gain over chance comes from.

    ``sources`` is :func:`xaistudy.studies.data.histogram_sources`. A diagnostic whose share of
    the gain is at least ``high`` accounts for it; below ``low`` it accounts for little of it.
    """
    lines = []
    for _, row in sources.iterrows():
        no_nuc = row.get("histogram without nuclei: share of the histogram's gain", np.nan)
        h_frac = row.get("haematoxylin fraction: share of the histogram's gain", np.nan)
        share = row.get("nuclear pixel share: share of the histogram's gain", np.nan)
        if not np.isfinite(no_nuc):
            continue
        parts = [
            f"without the nucleus pixels the histogram keeps {no_nuc:.0%} of its gain over "
            f"chance; the haematoxylin fraction reaches {h_frac:.0%} of it and the nuclear "
            f"pixel share {share:.0%}"
        ]
        if no_nuc >= high:
            parts.append("so the gain lies mostly in the pixels between the nuclei")
        elif max(h_frac, share) >= high:
            parts.append("so the gain lies mostly in how much of the tile is nuclear stain")
        elif no_nuc < low:
            parts.append("so the gain needs the nucleus pixels")
        else:
            parts.append("so no single one of these accounts for the gain")
        lines.append(f"- {row['dataset']}: " + ", ".join(parts) + ".")
    return "\n".join(lines)
