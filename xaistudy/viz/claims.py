"""The claims table as a reader sees it: each estimate with its interval as text, the claims
grouped by the paper's table or figure, and the claims figure (each claim on its own scale,
the verdict as a colour and a word). The verdicts themselves are :mod:`xaistudy.stats.claims`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from xaistudy.stats.claims import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    REPRODUCED,
    UNINFORMATIVE,
    self_checks,
)

VERDICT_COLOURS = {
    REPRODUCED: "#2a7d2e",
    CONTRADICTED: "#b2182b",
    INCONCLUSIVE: "#8c8c8c",
    UNINFORMATIVE: "#e08214",
    NOT_TESTABLE: "#d9d9d9",
}

#: how a claim's ``paper`` names the book itself (a check of its own code or generators)
def fmt(value: object) -> str:
    """A number in three significant digits; "—" when missing."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return f"{x:.3g}" if np.isfinite(x) else "—"


def estimate_text(row: Mapping[str, object]) -> str:
    """The run's estimate and 95 % interval as one text, "0.41 [0.32, 0.5]" ("—": none)."""
    if fmt(row["book_value"]) == "—":
        return "—"
    return f"{fmt(row['book_value'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"


def paper_number(row: Mapping[str, object]) -> float | None:
    """The paper's number on the claim's own scale: ``paper_estimate``, else ``paper_value``
    when it is a plain number; None when the paper gives none."""
    for key in ("paper_estimate", "paper_value"):
        try:
            x = float(row.get(key, ""))  # type: ignore[arg-type, union-attr]
        except (TypeError, ValueError):
            continue
        if np.isfinite(x):
            return x
    return None


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return str(value).strip()


def control_text(row: Mapping[str, object]) -> str:
    """The claim's controls in one text: "name 0.12 (inconclusive); …", or why none applies."""
    names = [n.strip() for n in _cell(row["controls"]).split(";") if n.strip()]
    values = [v.strip() for v in _cell(row["control_value"]).split(";")]
    verdicts = [v.split(": ")[-1].strip() for v in _cell(row["control_verdict"]).split(";")]
    if not _cell(row["control_value"]):
        return "; ".join(names)
    return "; ".join(
        f"{n} {fmt(v)} ({c})" for n, v, c in zip(names, values, verdicts, strict=False)
    )


def claim_group(claim_id: str, source: str) -> str:
    """The paper's table or figure a claim belongs to: from the claim id's prefix
    (``table6.*`` → "Table 6", ``fig5.*`` → "Fig. 5"), else the first table, figure or section
    its ``source`` cites, else the source itself."""
    import re

    prefix = re.match(r"(table|fig|figure|eq)(\w+?)\.", str(claim_id) + ".", re.I)
    if prefix:
        kind = {"table": "Table", "eq": "Eq."}.get(prefix[1].lower(), "Fig.")
        return f"{kind} {prefix[2]}"
    cited = re.search(r"\b(Table|Fig\.|Figure|Sect\.|Sec\.|Eq\.)\s*[A-Z]?\d+(\.\d+)*", source)
    if cited:
        return cited[0].replace("Figure", "Fig.")
    return source.strip() or "other"


def reading_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` in reading order: a ``group`` (the paper's table or figure,
    :func:`claim_group`), then claim, the paper's number, ours with its interval, verdict and
    control, then the rest; rows grouped in the order the groups first appear."""
    if table.empty:
        return pd.DataFrame(columns=["group", "claim", "paper's number", "ours [95 % interval]"])
    rows = table.reset_index(drop=True)
    own = self_checks(rows).all()
    pairs = zip(rows["claim_id"], rows["source"], strict=True)
    group = [claim_group(c, _cell(s)) for c, s in pairs]
    view = pd.DataFrame(
        {
            "group": group,
            "claim": rows["claim_id"],
            "the design's value" if own else "paper's number": rows["paper_value"],
            "ours [95 % interval]": [estimate_text(r) for _, r in rows.iterrows()],
            "verdict": rows["verdict"],
            "control": [control_text(r) for _, r in rows.iterrows()],
        }
    )
    rest = [
        "statement", "quantity", "expected", "magnitude_verdict", "p_adjusted",
        "seed_verdicts", "kind", "source", "note",
    ]  # fmt: skip
    view = pd.concat([view, rows[[c for c in rest if c in rows]]], axis=1)
    order = {g: i for i, g in enumerate(dict.fromkeys(group))}
    rank = view["group"].map(order)
    return view.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)


def _null_of(expected: object) -> tuple[str, float]:
    side, _, value = str(expected).partition(" ")
    try:
        return side, float(value)
    except ValueError:
        return side, 0.0


def plot_claims(table: pd.DataFrame, title: str = ""):
    """Small multiples: one row per tested claim, each on its own scale (its interval, its null
    value and the paper's number when numeric). A dot and bar (the estimate and its 95 %
    interval, coloured by verdict), the null value as a line, the side of it the claim expects
    shaded, the paper's number as a diamond; the estimate, interval and verdict printed at the
    right. A chapter of self-checks only (:func:`self_checks`) gets no "paper" wording.
    Returns the figure (None when nothing was tested)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import blended_transform_factory

    tested = table[table["verdict"] != NOT_TESTABLE].reset_index(drop=True)
    if tested.empty:
        return None
    own = self_checks(tested).to_numpy()
    whose = "expected" if own.all() else "paper's"
    n, row, top, bottom = len(tested), 0.55, 0.75 + (0.3 if title else 0), 0.8
    height = n * row + top + bottom
    fig, axes = plt.subplots(n, 1, figsize=(11, height), squeeze=False)
    fig.subplots_adjust(
        left=0.37, right=0.65, top=1 - top / height, bottom=bottom / height, hspace=1.1
    )
    shade, drawn_paper = "#e8eef7", False
    for i, (ax, (_, r)) in enumerate(zip(axes[:, 0], tested.iterrows(), strict=True)):
        side, null = _null_of(r["expected"])
        colour = VERDICT_COLOURS.get(r["verdict"], "black")
        paper = None if own[i] else paper_number(r)
        est, low, high = (float(r[c]) for c in ("book_value", "ci_low", "ci_high"))
        points = [x for x in (est, low, high, null, paper) if x is not None and np.isfinite(x)]
        lo, hi = min(points), max(points)
        pad = 0.08 * (hi - lo) if hi > lo else max(0.1 * abs(hi), 0.05)
        ax.set_xlim(lo - pad, hi + pad)
        x0, x1 = ax.get_xlim()
        ax.axvspan(*((null, x1) if side == ">" else (x0, null)), color=shade, lw=0)
        ax.axvline(null, color="black", lw=1)
        if np.isfinite(low) and np.isfinite(high):
            ax.plot([low, high], [0, 0], color=colour, lw=4, solid_capstyle="butt")
        if np.isfinite(est):
            ax.plot(est, 0, "o", color=colour, ms=6, zorder=3)
        else:
            ax.text(0.5, 0.5, "no estimate", transform=ax.transAxes, ha="center", fontsize=7)
        if paper is not None:
            ax.plot(paper, 0, "D", mfc="white", mec="black", mew=1.2, ms=6, zorder=4)
            drawn_paper = True
        ax.set_xlim(x0, x1)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        for spine in ("left", "right", "top"):
            ax.spines[spine].set_visible(False)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
        name = str(r["claim_id"])
        name = name if len(name) <= 56 else name[:55] + "…"
        at = blended_transform_factory(fig.transFigure, ax.transAxes)
        ax.text(0.355, 0.5, name, transform=at, ha="right", va="center", fontsize=8)
        ax.text(0.665, 0.5, estimate_text(r), transform=at, va="center", fontsize=8)
        ax.text(0.85, 0.5, str(r["verdict"]), transform=at, va="center", fontsize=8,
                color=colour, fontweight="bold")  # fmt: skip
    head = 1 - (top - 0.2) / height
    fig.text(0.355, head, "claim", ha="right", fontsize=8, fontweight="bold")
    fig.text(0.51, head, "each claim on its own scale", ha="center", fontsize=8,
             fontweight="bold")  # fmt: skip
    fig.text(0.665, head, "ours [95 % interval]", fontsize=8, fontweight="bold")
    fig.text(0.85, head, "verdict", fontsize=8, fontweight="bold")
    handles = [
        Line2D([], [], color="black", marker="o", lw=3, label="ours and 95 % interval"),
        Line2D([], [], color="black", lw=1, label="null value"),
        Patch(color=shade, label=f"{whose} side of the null value"),
    ]
    if drawn_paper:
        handles.append(Line2D([], [], ls="", marker="D", mfc="white", mec="black", label="paper"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.02 / height * 10))  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.15 / height)
    return fig
