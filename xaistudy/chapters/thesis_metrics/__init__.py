"""Chapter ``thesis_metrics``: interpretation-quality metrics for tissue grading (Valatkaitė).

The thesis grades prostate tissue with a small CNN, explains each test prediction with
Integrated Gradients, NoiseTunnel, LIME and Grad-CAM, and scores the binarised maps against
nuclei masks predicted by a U-Net with six metrics. The computation is the study
:mod:`xaistudy.studies.thesis_metrics`; this package presents it: the parameters
(:mod:`.params`), the thesis (:mod:`.paper`), the claims, tables and figures of a result, and
the exercises. The notebook is ``notebooks/thesis_metrics.md``.

The page modules ``claims``, ``tables`` and ``figures`` are imported here, before the interface
functions of the same names are defined (a submodule imported later would be bound over the
function); they import only light libraries at module level. Reach a page module's own names
with ``from xaistudy.chapters.thesis_metrics.tables import readings``.
"""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.spec import Chapter
from xaistudy.chapters.thesis_metrics import claims as _claims_page
from xaistudy.chapters.thesis_metrics import conclusions as _conclusions_page
from xaistudy.chapters.thesis_metrics import figures as _figures_page
from xaistudy.chapters.thesis_metrics import tables as _tables_page
from xaistudy.chapters.thesis_metrics.exercises import EXERCISES
from xaistudy.chapters.thesis_metrics.paper import PAPER
from xaistudy.chapters.thesis_metrics.params import ThesisMetricsParams

__all__ = ["CHAPTER", "EXERCISES", "PAPER", "ThesisMetricsParams", "claims", "figures", "run",
           "tables"]  # fmt: skip


def run(params: ThesisMetricsParams) -> Any:
    """The study's result for ``params`` (every trained model and map cached)."""
    from xaistudy.studies.thesis_metrics import run as run_study

    return run_study(params)


def claims(result: Any, profile: str = "") -> list[dict[str, object]]:
    """The thesis's findings judged on ``result`` (``profile`` is recorded in each row)."""
    return _claims_page.claim_rows(result, profile) + _conclusions_page.conclusion_rows(
        result, profile
    )


def tables(result: Any) -> dict[str, Any]:
    """Every table of ``result`` by the name it is saved under (pandas DataFrames)."""
    return _tables_page.all_tables(result)


def figures(result: Any, only: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Every figure of ``result`` by the name it is saved under (matplotlib Figures);
    ``only``: just these names."""
    return _figures_page.all_figures(result, only)


CHAPTER = Chapter(
    name="thesis_metrics",
    title="Interpretation-quality metrics for tissue grading",
    params_ref=ThesisMetricsParams,
    order=30,
    paper=PAPER,
    exercises=EXERCISES,
    compute_ref="xaistudy.studies.thesis_metrics:run",
)
