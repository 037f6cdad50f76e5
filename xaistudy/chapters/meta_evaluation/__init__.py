"""Chapter ``meta_evaluation``: which evaluation metric tells the truth?

The five papers each score explanations their own way and validate the score on their own
data. Here every score meets data where the truth is known: a clean, a Clever-Hans and a
randomised model whose evidence use is verified by intervention, every paper's metric ranked
against the truth. The computation is the study :mod:`xaistudy.studies.meta_evaluation`; this
package presents it: the parameters (:mod:`.params`), the five papers' records (:mod:`.paper`),
the claims, tables, figures and sentences of a result. The notebook is
``notebooks/meta_evaluation.md``.

The chapter interface: :func:`run` (the study), :func:`claims`, :func:`tables` and
:func:`figures` of its result; the page modules of the
same names are reached as ``xaistudy.chapters.meta_evaluation.tables``.
"""

from __future__ import annotations

from typing import Any

# the page modules, imported first: the interface functions defined below then keep
# their names (a later import of a page module does not rebind the package attribute)
from xaistudy.chapters.meta_evaluation import claims as _claims_page  # noqa: F401
from xaistudy.chapters.meta_evaluation import figures as _figures_page  # noqa: F401
from xaistudy.chapters.meta_evaluation import tables as _tables_page  # noqa: F401
from xaistudy.chapters.meta_evaluation.params import MetaEvaluationParams
from xaistudy.chapters.spec import Chapter

__all__ = ["CHAPTER", "MetaEvaluationParams", "claims", "figures", "run", "tables"]

CHAPTER = Chapter(
    name="meta_evaluation",
    title="Meta-evaluation: which metric tells the truth?",
    params_ref=MetaEvaluationParams,
    order=5,
    part="Synthesis",
    compute_ref="xaistudy.chapters.meta_evaluation:run",
    after=("ibo",),  # the ibo chapter's DDPM is this chapter's (one cached stage)
)


def run(params: MetaEvaluationParams, profile: str = "quick") -> Any:
    """The study's result for ``params`` (every stage cached), with the ibo chapter's
    parameters of ``params.ibo_profile`` for IBO; ``profile`` names where the parameters came
    from (the claims record it)."""
    from xaistudy.chapters.meta_evaluation.params import ibo_params
    from xaistudy.studies import meta_evaluation as study

    return study.run(params, ibo_params(params), profile=profile)


def claims(result: Any) -> list[dict[str, object]]:
    """Each paper's claim about its own metric, judged on ``result`` (one row per claim)."""
    from xaistudy.chapters.meta_evaluation.claims import claim_rows

    return claim_rows(result)


def tables(result: Any) -> dict[str, Any]:
    """Every table of ``result`` by its saved name (pandas DataFrames)."""
    from xaistudy.chapters.meta_evaluation.tables import all_tables

    return all_tables(result)


def figures(result: Any, agreement: Any = None) -> dict[str, Any]:
    """Every figure of ``result`` by its saved name (matplotlib Figures); ``agreement``: the
    ``metric_agreement_numbers`` table of :func:`tables` when already computed."""
    from xaistudy.chapters.meta_evaluation.figures import all_figures

    return all_figures(result, agreement)
