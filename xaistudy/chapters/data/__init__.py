"""Chapter ``data``: the synthetic data every chapter runs on by default.

Galleries of each generator next to its rules, the properties the rules promise, measured
from the ground-truth arrays of fresh sets, once per seed, and the shortcut check: how far
shape-blind colour baselines get next to a small CNN (:mod:`xaistudy.evaluate.shortcut_check`).
The computation is the study :mod:`xaistudy.studies.data`; this package presents it: the
parameters (:mod:`.params`), the claims (the generators' promises, not a paper's findings),
tables, figures and sentences (:mod:`.text`) of a result, and the exercises. The notebook is
``notebooks/data.md``.

The chapter interface: :func:`run` (the study), :func:`claims`, :func:`tables` and
:func:`figures` of its result; the page modules of the
same names are reached as ``xaistudy.chapters.data.tables``.
"""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.data.exercises import EXERCISES
from xaistudy.chapters.data.params import DataParams
from xaistudy.chapters.spec import Chapter

# the page modules, imported first: the interface functions defined below then keep
# their names (a later import of a page module does not rebind the package attribute)
from xaistudy.chapters.data import claims as _claims_page  # noqa: F401
from xaistudy.chapters.data import tables as _tables_page  # noqa: F401
from xaistudy.chapters.data import figures as _figures_page  # noqa: F401

__all__ = ["CHAPTER", "EXERCISES", "DataParams", "claims", "figures", "run", "tables"]

CHAPTER = Chapter(
    name="data",
    title="The synthetic data: tissue with exact ground truth",
    params_ref=DataParams,
    order=10,
    exercises=EXERCISES,
)


def run(params: DataParams, profile: str = "quick") -> Any:
    """The study's result for ``params`` (the shortcut check cached); ``profile`` names where
    the parameters came from (the claims record it)."""
    from xaistudy.studies import data as study

    return study.run(params, profile=profile)


def claims(result: Any) -> list[dict[str, object]]:
    """The generators' promises and the shortcut bounds judged on ``result``."""
    from xaistudy.chapters.data.claims import claim_rows

    return claim_rows(result)


def tables(result: Any) -> dict[str, Any]:
    """Every table of ``result`` by its saved name (pandas DataFrames)."""
    from xaistudy.chapters.data.tables import all_tables

    return all_tables(result)


def figures(result: Any) -> dict[str, Any]:
    """Every figure of ``result`` by its saved name (matplotlib Figures)."""
    from xaistudy.chapters.data.figures import all_figures

    return all_figures(result)
