"""Chapter ``segmentation_xai``: explaining segmentation models (Hasany et al.'s survey).

Five methods (Seg-Grad-CAM, Seg-XRes-CAM, Seg-Eigen-CAM, Seg-Ablation-CAM, RISE) explain one
class of a segmentation model; Dice Explained, Saliency Ratio and time score them (the survey's
Table 1). The computation is :mod:`xaistudy.studies.segmentation_xai`; this package presents
it: parameters, the paper record, claims, tables, figures and exercises. The notebook is
``notebooks/segmentation_xai.md``.

The page modules ``claims``, ``tables`` and ``figures`` are imported here, before the
interface functions of the same names are defined: a submodule imported later would be bound
over the function. They import only light libraries at module level; ``from
xaistudy.chapters.segmentation_xai.figures import metric_figure`` reaches a module's own names.
"""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.segmentation_xai import claims as _claims_page
from xaistudy.chapters.segmentation_xai import figures as _figures_page
from xaistudy.chapters.segmentation_xai import tables as _tables_page
from xaistudy.chapters.segmentation_xai.exercises import EXERCISES
from xaistudy.chapters.segmentation_xai.paper import PAPER
from xaistudy.chapters.segmentation_xai.params import SegmentationXaiParams
from xaistudy.chapters.spec import Chapter

__all__ = ["CHAPTER", "EXERCISES", "PAPER", "SegmentationXaiParams", "claims", "figures", "run",
           "tables"]  # fmt: skip


def run(params: SegmentationXaiParams) -> Any:
    """The study's result for ``params`` (every stage cached)."""
    from xaistudy.studies.segmentation_xai import run as run_study

    return run_study(params)


def claims(result: Any, profile: str = "") -> list[dict[str, object]]:
    """The chapter's claims judged on ``result`` (``profile`` is recorded in each row)."""
    return _claims_page.claim_rows(result, profile)


def tables(result: Any) -> dict[str, Any]:
    """The page's tables by the name they are saved under (pandas DataFrames)."""
    return _tables_page.all_tables(result)


def figures(result: Any, only: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The page's figures by the name they are saved under (matplotlib Figures); ``only``:
    just these names."""
    return _figures_page.all_figures(result, only)


CHAPTER = Chapter(
    name="segmentation_xai",
    title="Explaining segmentation models",
    params_ref=SegmentationXaiParams,
    order=60,
    paper=PAPER,
    exercises=EXERCISES,
    compute_ref="xaistudy.studies.segmentation_xai:run",
)
