"""Chapter ``synthesis``: every chapter's claims in one scorecard.

Reads ``tables/claims.csv`` of each executed chapter (the folder the book renders, by default)
and shows the papers' findings next to this book's verdicts, with the meta-evaluation's table of
the papers' metrics against known truth beside them (:mod:`.scorecard`). It runs last, computes
nothing new, and says which chapters have not been run. The notebook is
``notebooks/synthesis.md``.

The chapter interface: :func:`run` (the scorecard read), :func:`claims` (none of its own),
:func:`tables` and :func:`figures` of its result. These names stay the functions even after the
page modules ``tables.py`` and ``figures.py`` are imported; reach the modules with
``from xaistudy.chapters.synthesis.tables import ...``.
"""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.spec import ALL, Chapter
from xaistudy.chapters.synthesis import figures as _figures_page  # noqa: F401

# the page modules, imported first: the interface functions defined below then keep
# their names (a later import of a page module does not rebind the package attribute)
from xaistudy.chapters.synthesis import tables as _tables_page  # noqa: F401
from xaistudy.chapters.synthesis.params import SynthesisParams

__all__ = ["CHAPTER", "SynthesisParams", "claims", "figures", "run", "tables"]

CHAPTER = Chapter(
    name="synthesis",
    title="Synthesis: what reproduced, what did not",
    params_ref=SynthesisParams,
    order=10,
    part="Synthesis",
    after=ALL,  # it reads every other chapter's claims
)


def run(params: SynthesisParams) -> Any:
    """The scorecard of the executed chapters (:class:`.scorecard.Scorecard`)."""
    from xaistudy.chapters.synthesis.scorecard import read

    return read(params)


def claims(result: Any) -> list[dict[str, object]]:
    """The synthesis judges no claims of its own: the scorecard holds the chapters' claims."""
    return []


def tables(result: Any) -> dict[str, Any]:
    """Every table of ``result`` by its saved name (pandas DataFrames)."""
    from xaistudy.chapters.synthesis.tables import all_tables

    return all_tables(result)


def figures(result: Any) -> dict[str, Any]:
    """Every figure of ``result`` by its saved name (matplotlib Figures)."""
    from xaistudy.chapters.synthesis.figures import all_figures

    return all_figures(result)
