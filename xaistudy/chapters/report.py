"""What a chapter's notebook shows and saves: tables, figures, claims and the run record.

A notebook starts with ``run = report.start(params, out_dir, profile)``, which fixes threads
and seeds and records them, then shows each result with one call::

    run.table(df, "table6", "Table 6: interpretation quality per method")
    run.figure(fig, "violins")
    run.claims(rows)          # claims.csv, the verdict table and a forest plot

Tables are saved as CSV next to the figures and rendered whole (wrapped, never cut off; a
missing value shows as "—").
"""

from __future__ import annotations

import html
import logging
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xaistudy.core.params import BaseParams
from xaistudy.core.runtime import fix_threads
from xaistudy.stats import claims as claims_mod
from xaistudy.viz.plots import save_figure, save_table

log = logging.getLogger(__name__)

MISSING = "—"


def format_table(table: pd.DataFrame, precision: int = 3) -> pd.DataFrame:
    """``table`` as strings for display: floats rounded, missing values as an em dash."""
    out = table.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_float_dtype(values):
            out[col] = [MISSING if pd.isna(v) else f"{v:.{precision}f}" for v in values]
        else:
            out[col] = [
                MISSING
                if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                else str(v)
                for v in values
            ]
    return out


def table_html(table: pd.DataFrame, caption: str = "", precision: int = 3) -> str:
    """An HTML table that wraps long cells instead of cutting them."""
    body = format_table(table, precision).to_html(
        index=False, escape=True, border=0, classes="xaistudy-table"
    )
    style = (
        "<style>.xaistudy-table td,.xaistudy-table th{white-space:normal;word-break:normal;"
        "overflow-wrap:anywhere;max-width:28em;text-align:left;vertical-align:top;"
        "padding:2px 8px}</style>"
    )
    cap = f"<p><b>{html.escape(caption)}</b></p>" if caption else ""
    return style + cap + body


def show_table(table: pd.DataFrame, caption: str = "", precision: int = 3) -> None:
    """Display ``table`` whole in the notebook (HTML when IPython is there, else text)."""
    try:
        from IPython.display import HTML, display

        display(HTML(table_html(table, caption, precision)))
    except ImportError:  # pragma: no cover - outside a notebook
        print(caption)
        print(format_table(table, precision).to_string(index=False))


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown in the notebook (printed outside one)."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover - outside a notebook
        print(text)


def controls_text(table: pd.DataFrame) -> str:
    """In words, for every *uninformative* claim of ``table``, what its controls measured and
    what they gave (Markdown; empty when no claim is uninformative)."""
    from xaistudy.evaluate.controls import CONTROLS

    rows = table[table["verdict"] == claims_mod.UNINFORMATIVE]
    if rows.empty:
        return ""
    lines = [
        f"**{len(rows)} claim{'s are' if len(rows) > 1 else ' is'} uninformative here**: a "
        "control reaches the same verdict (a null control: the same measurement without the "
        "paper's mechanism; a positive control: a case known to differ, for a claim of "
        "similarity), so the run's number says nothing about the mechanism."
    ]
    for _, r in rows.iterrows():
        names = [n.strip() for n in str(r["controls"]).split(";")]
        values = [v.strip() for v in str(r["control_value"]).split(";")]
        verdicts = [v.strip() for v in str(r["control_verdict"]).split(";")]
        said = "; ".join(
            f"*{n}* ({CONTROLS.get(n, 'see the chapter')}) gives {v} ({c.split(': ')[-1]})"
            for n, v, c in zip(names, values, verdicts, strict=False)
        )
        lines.append(f"- `{r['claim_id']}` ({r['book_value']:.3g} in the run): {said}.")
    return "\n".join(lines)


@dataclass
class Run:
    """One execution of a chapter: its parameters, output folder and run record."""

    params: BaseParams
    out_dir: Path
    profile: str
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return list(getattr(self.params, "seeds", [getattr(self.params, "seed", 0)]))

    def table(
        self,
        table: pd.DataFrame,
        name: str,
        caption: str = "",
        precision: int = 3,
        show: bool = True,
    ) -> pd.DataFrame:
        """Save ``table`` as ``tables/<name>.csv`` and show it whole."""
        save_table(table, name, self.out_dir)
        if show:
            show_table(table, caption, precision)
        return table

    def figure(self, fig, name: str) -> None:
        """Save ``fig`` as ``figures/<name>.png`` and show it (returns nothing, so a notebook
        cell ending with this call prints no path)."""
        import matplotlib.pyplot as plt

        save_figure(fig, name, self.out_dir)
        plt.show()

    def claims(self, rows, title: str = "") -> pd.DataFrame:
        """Save the claims table (``tables/claims.csv``), show the verdicts and a forest plot."""
        table = rows if isinstance(rows, pd.DataFrame) else claims_mod.claims_table(rows)
        claims_mod.save_claims(table, self.out_dir)
        cols = [
            "claim_id",
            "kind",
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
            "seed_verdicts",
            "note",
        ]
        show_table(
            table[cols],
            title or "Claims and verdicts (95 % intervals calibrated over seeds; Holm-adjusted p)",
        )
        text = controls_text(table)
        if text:
            show_markdown(text)
        fig = claims_mod.plot_claims(table, title)
        if fig is not None:
            self.figure(fig, "claims")
        return table

    def record_table(self) -> pd.DataFrame:
        """The run record: profile, seeds, threads, device and library versions."""
        return pd.DataFrame(
            {"setting": list(self.record), "value": [str(v) for v in self.record.values()]}
        )


def library_versions() -> dict[str, str]:
    """Versions of the libraries that compute the book's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    from xaistudy.core.store import KEY_LIBRARIES

    out = {}
    for name in KEY_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


class _Tee:
    """A text stream writing to two: the kernel's stderr (kept with the notebook) and the
    terminal the run was started from (live progress bars and warnings)."""

    def __init__(self, kept, shown):
        self.kept, self.shown = kept, shown

    def write(self, text: str) -> int:
        self.shown.write(text)
        self.shown.flush()
        return self.kept.write(text)

    def flush(self) -> None:
        self.kept.flush()

    def __getattr__(self, name: str):
        return getattr(self.kept, name)


def show_progress_on_terminal() -> None:
    """In a kernel started by ``xaistudy run`` on a terminal (``$XAISTUDY_TERMINAL``), copy
    stderr there: the progress bars move live on the terminal, and the notebook keeps its
    stderr as before."""
    import os

    terminal = os.environ.get("XAISTUDY_TERMINAL")
    if not terminal or isinstance(sys.stderr, _Tee):
        return
    try:
        shown = open(terminal, "w", buffering=1)  # noqa: SIM115 (open for the kernel's life)
    except OSError:  # the terminal is gone: the run goes on without live bars
        return
    sys.stderr = _Tee(sys.stderr, shown)


def start(params: BaseParams, out_dir: str | Path = ".", profile: str = "quick") -> Run:
    """Fix threads and deterministic kernels, set display options; return the chapter's
    :class:`Run`, whose record names what the numbers depend on."""
    threads = fix_threads(params.threads)
    show_progress_on_terminal()
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", 500)
    pd.set_option("display.width", 200)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    record: dict[str, Any] = {"profile": profile}
    if "seeds" in type(params).model_fields:
        record["seeds"] = " ".join(str(s) for s in params.seeds)
    elif "seed" in type(params).model_fields:
        record["seed"] = params.seed
    record.update(threads)
    from xaistudy.models.classifiers import resolve_device

    used = str(resolve_device(params.device))  # the device the run uses, not "auto"
    record["device"] = used if params.device == used else f"{used} (asked: {params.device})"
    record["python"] = platform.python_version()
    record.update(library_versions())
    return Run(params=params, out_dir=Path(out_dir), profile=profile, record=record)
