"""Chapter ``ibo``: IBO, inpainting-based occlusion (Afshar et al.).

The computation is the study :mod:`xaistudy.studies.ibo`; this package presents it: the
parameters (:mod:`.params`), the paper (:mod:`.paper`), the claims, tables, figures and
records of a result, and the exercises. The notebook is ``notebooks/ibo.md``.

The chapter interface: :func:`run` (the study), :func:`claims`, :func:`tables` and
:func:`figures` of its result; the page modules of the
same names are reached as ``xaistudy.chapters.ibo.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# the page modules, imported first: the interface functions defined below then keep
# their names (a later import of a page module does not rebind the package attribute)
from xaistudy.chapters.ibo import claims as _claims_page  # noqa: F401
from xaistudy.chapters.ibo import figures as _figures_page  # noqa: F401
from xaistudy.chapters.ibo import tables as _tables_page  # noqa: F401
from xaistudy.chapters.ibo.exercises import EXERCISES
from xaistudy.chapters.ibo.paper import PAPER
from xaistudy.chapters.ibo.params import IboParams
from xaistudy.chapters.spec import Chapter

__all__ = ["CHAPTER", "EXERCISES", "PAPER", "IboParams", "claims", "figures", "run", "tables"]

CHAPTER = Chapter(
    name="ibo",
    title="IBO: inpainting-based occlusion",
    params_ref=IboParams,
    order=50,
    paper=PAPER,
    exercises=EXERCISES,
    compute_ref="xaistudy.studies.ibo:run",
)


def run(params: IboParams, profile: str = "quick") -> Any:
    """The study's result for ``params`` (every stage cached); ``profile`` names where the
    parameters came from (the claims record it)."""
    from xaistudy.studies import ibo as study

    return study.run(params, profile=profile)


def claims(result: Any) -> list[dict[str, object]]:
    """The paper's findings judged on ``result`` (one row per claim)."""
    from xaistudy.chapters.ibo.claims import claim_rows

    return claim_rows(result)


def tables(result: Any) -> dict[str, Any]:
    """Every table of ``result`` by its saved name (pandas DataFrames)."""
    from xaistudy.chapters.ibo.tables import all_tables

    return all_tables(result)


def figures(
    result: Any, tables: dict[str, Any] | None = None, only: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every figure of ``result`` (or those named in ``only``) by its saved name (matplotlib
    Figures); ``tables``: the result's :func:`tables` when already computed."""
    from xaistudy.chapters.ibo.figures import all_figures

    return all_figures(result, tables, only)
