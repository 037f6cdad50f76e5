"""The ``synthesis`` chapter: the scorecard of the executed chapters through the chapter
interface, on fabricated chapter folders and on none."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from xaistudy.chapters import synthesis
from xaistudy.chapters.synthesis.tables import SCORECARD_COLUMNS
from xaistudy.stats import claims as claims_mod
from xaistudy.viz import claims as claims_view


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
    assert text.startswith(
        "2 of the papers' claims were judged in 2 chapters (1 reproduced, 1 contradicted"
    )
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


def _write_self_checks(folder, values: list[float]) -> None:
    """The data chapter's kind of claims: checks of the book's own generators, one per value
    (reproduced when the value is far above 0, contradicted far below)."""
    rows = []
    for i, shift in enumerate(values):
        claim = claims_mod.Claim(
            f"he.check{i}", "the book's generators (their rules)", "H&E rules", "It holds",
            "> 0", "a generator's property", kind="implementation check", no_control="its own",
        )
        data = pd.DataFrame({"seed": 0, "unit": np.arange(30), "value": np.full(30, shift)})
        data["value"] += np.linspace(-0.1, 0.1, 30)
        rows.append(claims_mod.judge(claim, data, n_boot=200))
    claims_mod.save_claims(claims_mod.claims_table(rows), folder / "data")


def _card_with_self_checks(tmp_path):
    _write_claims(tmp_path, "ibo", 5.0)  # one reproduced finding
    _write_claims(tmp_path, "xrelevancecam", -5.0)  # one contradicted finding
    _write_self_checks(tmp_path, [5.0, 5.0, -5.0])  # 2 reproduced, 1 contradicted self-checks
    return synthesis.run(synthesis.SynthesisParams(chapters_dir=str(tmp_path)))


def test_self_checks_are_counted_apart_from_the_papers_findings(tmp_path):
    from xaistudy.chapters.synthesis.tables import counts_table, multiplicity_text

    card = _card_with_self_checks(tmp_path)
    text = multiplicity_text(card.table)
    assert text.startswith(
        "2 of the papers' claims were judged in 2 chapters (1 reproduced, 1 contradicted, "
        "0 inconclusive, 0 uninformative; 0 not testable here); 2 of them are the papers' "
        "findings."
    )
    assert "at most 10%" in text  # two families of the papers' claims, not three
    assert "3 self-checks of the book's own generators were judged (2 reproduced, " \
        "1 contradicted)" in text
    counts = counts_table(card.table)
    assert counts[["chapter", "claims", claims_mod.REPRODUCED, "total"]].values.tolist() == [
        ["xrelevancecam", "papers' claims", 0, 1],  # the book's order
        ["ibo", "papers' claims", 1, 1],
        ["all chapters", "papers' claims", 1, 2],
        ["data", "self-checks", 2, 3],
        ["all chapters", "self-checks", 2, 3],
    ]


def test_the_scorecard_html_is_one_coloured_table_per_chapter(tmp_path):
    import re

    from xaistudy.chapters.synthesis.tables import scorecard_html

    card = _card_with_self_checks(tmp_path)
    page = scorecard_html(card.table)
    summaries = re.findall(r"<details><summary>(.*?)</summary>", page)
    assert summaries == [
        "xrelevancecam — 1 claim: 1 contradicted",
        "ibo — 1 claim: 1 reproduced",
        "data — 3 self-checks: 2 reproduced, 1 contradicted",
    ]
    assert page.count("<details>") == page.count("</details>") == 3
    # the papers' claims come first, the self-checks after their own heading
    assert page.index("ibo —") < page.index("self-checks of its own generators") < page.index(
        "data —"
    )
    green = claims_view.VERDICT_COLOURS[claims_mod.REPRODUCED]
    red = claims_view.VERDICT_COLOURS[claims_mod.CONTRADICTED]
    assert page.count(f'style="background:{green};color:white">reproduced</td>') == 3
    assert page.count(f'style="background:{red};color:white">contradicted</td>') == 2
    heads = re.findall(r"<th>(.*?)</th>", page)[:5]
    assert heads == ["claim", "paper's number", "ours [95 % interval]", "verdict",
                     "control (value and verdict alone)"]
    assert "DESIGN.md" not in page


def test_the_verdict_figure_shows_every_verdict_outside_the_bars(tmp_path):
    card = _card_with_self_checks(tmp_path)
    fig = synthesis.figures(card)["verdict_counts"]
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["xrelevancecam", "ibo", "data (self-checks)"]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(claims_mod.VERDICTS)
    fig.canvas.draw()
    box, axes_box = legend.get_window_extent(), ax.get_window_extent()
    assert box.y1 <= axes_box.y0  # under the axes: it hides no bar
    plt.close(fig)


def test_the_terminal_scorecard_says_what_each_number_measures(tmp_path):
    from xaistudy.chapters.synthesis.tables import scorecard_lines

    card = _card_with_self_checks(tmp_path)
    table = card.table.copy()
    long = "a long description of the measured quantity " * 5
    table.loc[table["chapter"] == "xrelevancecam", "quantity"] = long
    lines = scorecard_lines(table)
    assert max(len(line) for line in lines) <= 100
    assert lines[:2] == ["THE PAPERS' CLAIMS", "xrelevancecam — 1 claim: 1 contradicted"]
    assert lines[2].startswith("  xrelevancecam.positive") and lines[2].endswith("contradicted")
    assert lines[3].startswith("      measures: a long description of the measured quantity")
    assert lines[3].endswith("… (paper's side: > 0)")
    assert lines[4] == "ibo — 1 claim: 1 reproduced"
    assert lines[6] == "      measures: a value (paper's side: > 0)"
    checks = lines[lines.index("THE BOOK'S SELF-CHECKS (its generators, not a paper)"):]
    assert checks[1] == "data — 3 self-checks: 2 reproduced, 1 contradicted"
    assert checks[3] == "      measures: a generator's property (expected: > 0)"
