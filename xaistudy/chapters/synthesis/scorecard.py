"""The synthesis reads what the executed chapters wrote: every chapter's ``tables/claims.csv``
and the meta-evaluation's table of metrics against known truth. It computes nothing new."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xaistudy.chapters import discover
from xaistudy.chapters.synthesis.params import SynthesisParams
from xaistudy.stats import claims as claims_mod


@dataclass(frozen=True, eq=False)
class Scorecard:
    """What the synthesis read: every chapter's claims in one table (a ``chapter`` column),
    the chapters without a claims table yet, and the meta-evaluation's metric agreement (None
    when that chapter has not run)."""

    table: pd.DataFrame
    not_run: tuple[str, ...]
    agreement: pd.DataFrame | None


def chapters_folder(params: SynthesisParams) -> Path:
    """The folder of executed chapters this synthesis reads: ``chapters_dir`` when given, else
    the folder the synthesis itself is written into (``$XAISTUDY_OUT``, set by the runner:
    ``book/chapters`` for the book, the chapters beside it for a book built elsewhere)."""
    import os

    from xaistudy.core.store import OUT_VARIABLE, default_out

    if params.chapters_dir:
        return Path(params.chapters_dir)
    out = os.environ.get(OUT_VARIABLE)
    return Path(out).parent if out else default_out("x").parent


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


def read(params: SynthesisParams) -> Scorecard:
    """The scorecard of the chapters under ``params.chapters_dir``."""
    table, missing = collect(params)
    return Scorecard(table, tuple(missing), metric_agreement(params))
