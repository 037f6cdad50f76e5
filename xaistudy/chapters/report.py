"""What a chapter's notebook shows and saves: tables, figures, claims and the run record.

A notebook starts with ``run = report.start(params, out_dir, profile)``, which fixes threads
and seeds and records them, then shows each result with one call::

    run.table(df, "table6", "Table 6: interpretation quality per method")
    run.figure(fig, "violins")
    run.claims(rows)          # claims.csv, the verdict tables and the claims figure

Tables are saved as CSV next to the figures and rendered whole (wrapped, never cut off; a
missing value shows as "—").
"""

from __future__ import annotations

import html
import logging
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xaistudy.chapters.spec import LANES_VARIABLE
from xaistudy.core.params import BaseParams
from xaistudy.core.runtime import fix_threads
from xaistudy.stats import claims as claims_mod
from xaistudy.viz import claims as claims_view
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
        """Save the claims table (``tables/claims.csv``); show it grouped by the paper's table
        or figure (claim, paper's number, ours with its interval, verdict and control first),
        the controls in words, and one small panel per tested claim."""
        table = rows if isinstance(rows, pd.DataFrame) else claims_mod.claims_table(rows)
        claims_mod.save_claims(table, self.out_dir)
        show_markdown(
            f"**{title or 'Claims and verdicts'}** (95 % intervals calibrated over seeds; "
            "p-values Holm-adjusted over the chapter's claims)"
        )
        view = claims_view.reading_table(table)
        for group, part in view.groupby("group", sort=False):
            n = len(part)
            show_table(part.drop(columns="group"), f"{group}: {n} claim{'s' * (n != 1)}")
        text = controls_text(table)
        if text:
            show_markdown(text)
        fig = claims_view.plot_claims(table, title)
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
    terminal the run was started from (live progress bars and warnings), or a quiet log."""

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


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: a progress bar as tqdm draws it: "maps:  33%|███▎      | 1/3 [00:00<00:00, 15.2it/s]"
_BAR = re.compile(r"[^\r]*?\d+%\|[^|]*\|[^\[\r]*\[[^\]\r]*\]")


class StageLog:
    """A quiet log of a run off a terminal: one line per finished stage ("maps: 8/8 in
    00:12", written by :func:`_log_finished_bars`) and every line of text written to stderr
    (warnings), without the progress bars' redrawing."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            shown = self.text_of(line)
            if shown:
                self.stream.write(shown + "\n")
        return len(text)

    @staticmethod
    def text_of(line: str) -> str:
        """A line of stderr without progress bars and terminal codes (often nothing)."""
        return _BAR.sub("", _ANSI.sub("", line)).split("\r")[-1].strip()

    def stage(self, bar) -> None:
        """Log a finished progress bar: its description, count and time."""
        elapsed = bar.format_interval(bar.format_dict["elapsed"])
        count = f"{bar.n}/{bar.total}" if bar.total else f"{bar.n}"
        self.stream.write(f"{bar.desc or 'progress'}: {count} in {elapsed}\n")

    def flush(self) -> None:
        self.stream.flush()


def _log_finished_bars(log: StageLog) -> None:
    """Make every kept progress bar (``leave``: a stage, not an inner loop) write one line to
    ``log`` when it closes."""
    from tqdm import tqdm

    close = tqdm.close

    def close_and_log(bar) -> None:
        if not bar.disable and bar.leave:
            log.stage(bar)
        close(bar)

    tqdm.close = close_and_log


def show_progress() -> None:
    """In a kernel started by ``xaistudy run``, show its progress where the run was started:
    on the terminal (``$XAISTUDY_TERMINAL``) stderr is copied there, so the bars move live;
    off a terminal (``$XAISTUDY_LOG``, a file the runner relays to its own stderr) a quiet
    :class:`StageLog`. The notebook keeps its stderr as before."""
    terminal, log_file = os.environ.get("XAISTUDY_TERMINAL"), os.environ.get("XAISTUDY_LOG")
    if not (terminal or log_file) or isinstance(sys.stderr, _Tee):
        return
    try:  # open for the kernel's life
        shown = open(terminal or log_file, "w" if terminal else "a", buffering=1)  # noqa: SIM115
    except OSError:  # the terminal is gone: the run goes on without live bars
        return
    if terminal:
        sys.stderr = _Tee(sys.stderr, shown)
        return
    log = StageLog(shown)
    _log_finished_bars(log)
    sys.stderr = _Tee(sys.stderr, log)


def start(params: BaseParams, out_dir: str | Path = ".", profile: str = "quick") -> Run:
    """Fix threads and deterministic kernels, set display options; return the chapter's
    :class:`Run`, whose record names what the numbers depend on."""
    threads = fix_threads(params.threads)
    show_progress()
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
    lanes = os.environ.get(LANES_VARIABLE, "")
    if lanes.isdigit() and int(lanes) > 1:  # `make book` ran this chapter beside others
        record["chapters at once"] = (
            f"up to {lanes} (make book): its wall-clock timings may include another "
            "chapter's load; `xaistudy run` alone times it unshared"
        )
    record["python"] = platform.python_version()
    record.update(library_versions())
    return Run(params=params, out_dir=Path(out_dir), profile=profile, record=record)
