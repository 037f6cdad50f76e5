"""The ``data`` chapter: its study at the smoke size through the chapter interface, and the row
tables and sentences its claims and notebook are computed from."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from xaistudy.chapters import data as chapter
from xaistudy.chapters.data.text import histogram_reading, rules
from xaistudy.core.params import build_params
from xaistudy.data import synthetic
from xaistudy.studies import data as study

TABLES = {
    "class_balance",
    "he_statistics",
    "grading_statistics",
    "pcle_statistics",
    "generation_speed",
    "shortcut_baselines",
    "shortcut_check",
    "histogram_sources",
}
FIGURES = {
    "he_gallery",
    "he_stain_variation",
    "grading_gallery",
    "pcle_gallery",
    "grading_properties",
    "shortcut_check",
}


@pytest.fixture(scope="module")
def result() -> study.Result:
    params = build_params(chapter.DataParams, "smoke", {"gallery_size": 64, "n_gallery": 1})
    return chapter.run(params, profile="smoke")


def test_the_study_result_is_frozen_and_complete(result):
    assert isinstance(result, study.Result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.he = result.grading  # type: ignore[misc]
    p = result.params
    assert len(result.he) == p.n_stats and len(result.grading) == 7 * p.n_stats_per_grade
    assert len(result.pcle) == p.n_patients * p.frames_per_patient
    assert set(result.shortcuts["dataset"]) == set(result.accuracy["dataset"])
    assert set(result.shortcuts["value"]) <= {0.0, 1.0}


def test_the_chapter_interface_returns_claims_tables_and_figures(result):
    rows = chapter.claims(result)
    assert rows and all(isinstance(r, dict) and r["claim_id"] for r in rows)
    assert {r["profile"] for r in rows} == {"smoke"}
    assert len({r["claim_id"] for r in rows}) == len(rows) == 4 + 3 * 3 + 2
    tables = chapter.tables(result)
    assert set(tables) == TABLES
    assert all(isinstance(t, pd.DataFrame) and not t.empty for t in tables.values())
    assert not any("nucle" in c for c in tables["pcle_statistics"].columns)
    figures = chapter.figures(result)
    assert set(figures) == FIGURES
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    plt.close("all")


def test_class_difference_subtracts_the_other_class_mean_per_seed():
    stats = pd.DataFrame(
        {
            "seed": [0, 0, 0, 1, 1, 1],
            "unit": [0, 1, 2, 0, 1, 2],
            "class": ["normal", "tumour", "tumour", "normal", "normal", "tumour"],
            "x": [1.0, 4.0, 6.0, 2.0, 4.0, 10.0],
        }
    )
    out = study.class_difference(stats, "x", "tumour", "normal")
    assert out["seed"].tolist() == [0, 0, 1] and out["unit"].tolist() == [1, 2, 2]
    assert out["value"].tolist() == [3.0, 5.0, 7.0]


def test_grade_trend_averages_to_the_covariance_of_grade_and_value():
    rng = np.random.default_rng(0)
    grades = ["A", "N", "R1", "R2", "R3", "R4", "R5"] * 6
    stats = pd.DataFrame(
        {"seed": 0, "unit": np.arange(len(grades)), "class": grades, "v": rng.normal(size=42)}
    )
    malignant = stats[stats["class"].str.startswith("R")]
    index = malignant["class"].str[1].astype(float) - 1
    expected = np.cov(index, malignant["v"], bias=True)[0, 1]
    assert study.grade_trend(stats, "v")["value"].mean() == pytest.approx(expected)


def test_histogram_sources_and_their_reading():
    accuracy = pd.DataFrame(
        {
            "dataset": "d",
            "method": [
                "colour histogram",
                "histogram without nuclei",
                "haematoxylin fraction",
                "nuclear pixel share",
            ],
            "accuracy": [0.9, 0.86, 0.6, 0.55],
            "chance": 0.5,
        }
    )
    sources = study.histogram_sources(accuracy)
    share = sources["histogram without nuclei: share of the histogram's gain"].iloc[0]
    assert share == pytest.approx(0.9)
    text = histogram_reading(sources)
    assert text.startswith("- d: without the nucleus pixels the histogram keeps 90%")
    assert "between the nuclei" in text


def test_rules_are_the_generators_rules():
    assert rules("pcle").splitlines() == [f"- {r}" for r in synthetic.RULES["pcle"]]
