"""The ``data`` chapter's parameters and profiles."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from xaistudy.core.params import SeedsParams


class DataParams(SeedsParams):
    """The ``data`` chapter: galleries and measured properties of the synthetic datasets."""

    tile_size: int = Field(128, ge=64, le=512, description="tile side in pixels (64-512)")
    gallery_size: int = Field(256, ge=64, le=512, description="side of the gallery tiles")
    n_gallery: int = Field(4, ge=1, le=12, description="tiles per class in the galleries")
    n_stats: int = Field(
        200, ge=4, le=20000, description="H&E tiles measured for statistics, per seed"
    )
    n_stats_per_grade: int = Field(
        20, ge=2, le=5000, description="grading tiles per class measured for statistics, per seed"
    )
    n_patients: int = Field(10, ge=2, le=1000, description="pCLE patients, per seed")
    frames_per_patient: int = Field(4, ge=1, le=200, description="pCLE frames per patient")
    check_size: int = Field(
        64, ge=64, le=256, description="tile side of the shortcut check (64-256 px)"
    )
    check_he_train: int = Field(
        400, ge=8, le=20000, description="shortcut check: H&E training tiles, per seed"
    )
    check_he_test: int = Field(
        200, ge=4, le=20000, description="shortcut check: H&E test tiles, per seed"
    )
    check_grading_train: int = Field(
        100, ge=2, le=5000, description="shortcut check: grading training tiles per class"
    )
    check_grading_test: int = Field(
        30, ge=1, le=5000, description="shortcut check: grading test tiles per class"
    )
    check_pcle_train: int = Field(
        40, ge=2, le=1000, description="shortcut check: pCLE training patients (4 frames each)"
    )
    check_pcle_test: int = Field(
        60, ge=2, le=1000, description="shortcut check: pCLE test patients (4 frames each)"
    )
    cnn_epochs: int = Field(12, ge=1, le=200, description="shortcut check: small-CNN epochs")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "tile_size": 64,
            "gallery_size": 96,
            "n_gallery": 2,
            "n_stats": 16,
            "n_stats_per_grade": 2,
            "n_patients": 2,
            "frames_per_patient": 2,
            "check_he_train": 24,
            "check_he_test": 12,
            "check_grading_train": 4,
            "check_grading_test": 2,
            "check_pcle_train": 4,
            "check_pcle_test": 2,
            "cnn_epochs": 1,
        },
        "quick": {},
        "paper": {"n_stats": 2000, "n_stats_per_grade": 200, "n_patients": 40},
    }
    PROFILES["gpu"] = dict(PROFILES["paper"])  # synthetic data either way
