"""The ``synthesis`` chapter: the scorecard of the executed chapters through the chapter
interface, on fabricated chapter folders and on none."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from xaistudy.chapters import synthesis
from xaistudy.chapters.synthesis.tables import SCORECARD_COLUMNS
from xaistudy.stats import claims as claims_mod


def _write_claims(folder, chapter: str, shift: float) -> None:
    claim = claims_mod.Claim(
        f"{chapter}.positive", "Someone et al.", "Table 1", "It is positive", "> 0", "a value"
    )
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"seed": 0, "unit": np.arange(30), "value": rng.normal(shift, 1, 30)})
    row = claims_mod.judge(claim, data, data_name="synthetic", profile="smoke")
    claims_mod.save_claims(claims_mod.claims_table([row]), folder / chapter)


def test_scorecard_of_the_chapters_that_ran(tmp_path):
    _write_claims(tmp_path, "data", 5.0)
    _write_claims(tmp_path, "ibo", -5.0)
    card = synthesis.run(synthesis.SynthesisParams(chapters_dir=str(tmp_path)))
    assert "data" not in card.not_run and "ibo" not in card.not_run and card.not_run
    assert card.agreement is None  # the meta-evaluation did not run
    assert synthesis.claims(card) == []
    tables = synthesis.tables(card)
    assert set(tables) == {"verdict_counts", "scorecard"}
    assert list(tables["scorecard"].columns) == SCORECARD_COLUMNS
    counts = tables["verdict_counts"].set_index("chapter")
    assert counts.loc["data", claims_mod.REPRODUCED] == 1
    assert counts.loc["ibo", claims_mod.CONTRADICTED] == 1
    assert tables["scorecard"]["source"].tolist() == [
        "Table 1 (data.positive)",
        "Table 1 (ibo.positive)",
    ]
    figures = synthesis.figures(card)
    assert set(figures) == {"verdict_counts"} and isinstance(figures["verdict_counts"], plt.Figure)
    plt.close("all")


def test_scorecard_of_no_chapter_is_empty(tmp_path):
    card = synthesis.run(synthesis.SynthesisParams(chapters_dir=str(tmp_path)))
    assert "synthesis" not in card.not_run and "data" in card.not_run
    assert all(t.empty for t in synthesis.tables(card).values())
    assert synthesis.figures(card) == {}


def test_the_synthesis_counts_the_family_and_its_error(tmp_path):
    from xaistudy.chapters.synthesis.tables import multiplicity_text

    _write_claims(tmp_path, "data", 5.0)
    _write_claims(tmp_path, "ibo", -5.0)
    card = synthesis.run(synthesis.SynthesisParams(chapters_dir=str(tmp_path)))
    text = multiplicity_text(card.table)
    assert text.startswith("2 claims were judged in 2 chapters (1 reproduced, 1 contradicted")
    assert "2 of them are the papers' findings" in text and "at most 10%" in text
    assert multiplicity_text(card.table.iloc[:0]).startswith("No chapter has been run yet")


def test_the_terminal_scorecard_fits_100_columns(tmp_path, capsys):
    from xaistudy.app import cli

    _write_claims(tmp_path, "segmentation_xai", 5.0)
    _write_claims(tmp_path, "meta_evaluation", -5.0)
    assert cli.main(["claims", "--chapters-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in out) <= 100
    assert any(line.strip().startswith("segmentation_xai.positive") for line in out)
    assert any("reproduced" in line for line in out) and "claims were judged" in " ".join(out)
