"""Chapter ``xrelevancecam``: XRelevanceCAM, relevance-weighted CAMs layer by layer (You et al.).

The computation is the study :mod:`xaistudy.studies.xrelevancecam`; this package presents it:
:mod:`.params`, :mod:`.paper`, the page modules :mod:`.page_claims` (with :mod:`.comparisons`
and :mod:`.page_findings`), :mod:`.page_tables` and :mod:`.page_figures`, and :mod:`.exercises`.
The notebook is ``notebooks/xrelevancecam.md``.

The page modules are not called ``claims``/``tables``/``figures``: importing a submodule binds
it as an attribute of this package, which would replace the interface function of that name.
"""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.spec import Chapter
from xaistudy.chapters.xrelevancecam.exercises import EXERCISES
from xaistudy.chapters.xrelevancecam.paper import PAPER
from xaistudy.chapters.xrelevancecam.params import XRelevanceCamParams

__all__ = ["CHAPTER", "PAPER", "XRelevanceCamParams", "claims", "figures", "run", "tables"]


def run(params: XRelevanceCamParams) -> Any:
    """The study's result for ``params`` (every stage stored)."""
    from xaistudy.studies import xrelevancecam as study

    return study.run(params)


def claims(result: Any, profile: str = "") -> list[dict[str, object]]:
    """The paper's findings and the book's hypothesis, judged (rows of a claims table)."""
    from xaistudy.chapters.xrelevancecam.page_claims import claims as judged

    return judged(result, profile)


def tables(result: Any, profile: str = "") -> dict[str, Any]:
    """Every table of the chapter by name (pandas DataFrames)."""
    from xaistudy.chapters.xrelevancecam.page_tables import tables as all_tables

    return all_tables(result, profile)


def figures(result: Any) -> dict[str, Any]:
    """Every figure of the chapter by name (matplotlib Figures)."""
    from xaistudy.chapters.xrelevancecam.page_figures import figures as all_figures

    return all_figures(result)


CHAPTER = Chapter(
    name="xrelevancecam",
    title="XRelevanceCAM: relevance-weighted CAMs",
    params_ref=XRelevanceCamParams,
    order=40,
    paper=PAPER,
    exercises=EXERCISES,
    compute_ref="xaistudy.studies.xrelevancecam:run",
)
