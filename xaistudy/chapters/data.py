"""Chapter ``data``: The synthetic data: tissue with exact ground truth.

Parameters, profiles and registration; the notebook is ``notebooks/data.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from xaistudy.chapters import Chapter
from xaistudy.params import (
    ChapterParams,
)


class DataParams(ChapterParams):
    """The ``data`` chapter: gallery and statistics of the synthetic datasets."""

    tile_size: int = Field(128, ge=64, le=512, description="tile side in pixels (64-512)")
    gallery_size: int = Field(256, ge=64, le=512, description="side of the gallery tiles")
    n_gallery: int = Field(4, ge=1, le=12, description="tiles per class in the galleries")
    n_stats: int = Field(200, ge=4, le=20000, description="H&E tiles measured for statistics")
    n_stats_per_grade: int = Field(
        20, ge=1, le=5000, description="grading tiles per class measured for statistics"
    )
    n_patients: int = Field(10, ge=2, le=1000, description="pCLE patients")
    frames_per_patient: int = Field(4, ge=1, le=200, description="pCLE frames per patient")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "tile_size": 64,
            "gallery_size": 96,
            "n_gallery": 2,
            "n_stats": 16,
            "n_stats_per_grade": 2,
            "n_patients": 2,
            "frames_per_patient": 2,
        },
        "quick": {},
        "paper": {"n_stats": 2000, "n_stats_per_grade": 200, "n_patients": 40},
    }


CHAPTER = Chapter(
    name="data",
    title="The synthetic data: tissue with exact ground truth",
    params=DataParams,
    order=10,
)
