"""Chapter ``saliency_tour``: the review's saliency methods on one tumour classifier.

Borys et al. (2023) list each method's strength and weakness (Table B1). The study
(:mod:`xaistudy.studies.saliency_tour`) trains a tumour-vs-normal classifier and its Clever-Hans
twin per seed and measures what Table B1 asserts; this package judges and shows it. The
interface: :func:`run`, :func:`claims`, :func:`tables`, :func:`figures`; the notebook is
``notebooks/saliency_tour.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the page modules, imported first: the interface functions defined below then keep
# their names (a later import of a page module does not rebind the package attribute)
from xaistudy.chapters.saliency_tour import claims as _claims_page  # noqa: F401
from xaistudy.chapters.saliency_tour import figures as _figures_page  # noqa: F401
from xaistudy.chapters.saliency_tour import tables as _tables_page  # noqa: F401
from xaistudy.chapters.saliency_tour.exercises import EXERCISES
from xaistudy.chapters.saliency_tour.paper import PAPER
from xaistudy.chapters.saliency_tour.params import SaliencyTourParams
from xaistudy.chapters.spec import Chapter

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

    from xaistudy.studies.saliency_tour import Result

CHAPTER = Chapter(
    name="saliency_tour",
    title="A tour of saliency methods",
    params_ref=SaliencyTourParams,
    order=20,
    paper=PAPER,
    exercises=EXERCISES,
    compute_ref="xaistudy.studies.saliency_tour:run",
)


def run(params: SaliencyTourParams) -> Result:
    """Every seed's classifiers and measurements (:func:`xaistudy.studies.saliency_tour.run`)."""
    from xaistudy.studies import saliency_tour as study

    return study.run(params)


def claims(result: Result, profile: str = "") -> list[dict[str, Any]]:
    """The claims table's rows: every statement of the review, judged on ``result``."""
    from xaistudy.chapters.saliency_tour.claims import judged

    return judged(result, profile)


def tables(result: Result) -> dict[str, pd.DataFrame]:
    """Every table of the chapter, by the name of its CSV."""
    from xaistudy.chapters.saliency_tour.tables import all_tables

    return all_tables(result)


def figures(result: Result, *names: str) -> dict[str, plt.Figure]:
    """The chapter's figures by name (every one when no name is given)."""
    from xaistudy.chapters.saliency_tour.figures import all_figures

    return all_figures(result, *names)
