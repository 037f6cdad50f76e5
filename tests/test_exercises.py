"""Exercises: data in the chapter modules, listed by the CLI, each one run at the smoke size."""

import json
import re

import pandas as pd
import pytest

from xaistudy.app import cli, exercises
from xaistudy.app.exercises import Exercise, Outcome
from xaistudy.chapters import discover
from xaistudy.core.params import PROFILES, build_params

#: every chapter ends with exercises, except the Synthesis part (a scorecard of the others)
PAPER_CHAPTERS = [c.name for c in discover().values() if c.part != "Synthesis"]


def _claims(folder, verdicts):
    (folder / "tables").mkdir(parents=True)
    rows = [{"claim_id": k, "verdict": v} for k, v in verdicts.items()]
    pd.DataFrame(rows).to_csv(folder / "tables" / "claims.csv", index=False)
    return folder


#: a column measured on the wall clock (it differs between two runs of the same code)
WALL_CLOCK = re.compile(r"second|_per_s|_s$|^ms_|_ms$|speed|timed")


def _assert_same_numbers(ours: pd.DataFrame, notebooks: pd.DataFrame, name: str) -> None:
    """The same table but for what the wall clock measures: timing columns, and in the claims
    the timing claims and the Holm-adjusted p-values (they depend on the timing claims')."""
    assert list(ours.columns) == list(notebooks.columns), name
    keep = [c for c in ours.columns if not WALL_CLOCK.search(c)]
    if name == "claims.csv":
        timed = ours["quantity"].str.contains("second|time", case=False)
        assert timed.equals(notebooks["quantity"].str.contains("second|time", case=False))
        ours, notebooks = ours[~timed], notebooks[~timed]
        keep = ["claim_id", "kind", "quote", "book_value", "ci_low", "ci_high", "control_value"]
    pd.testing.assert_frame_equal(ours[keep], notebooks[keep], obj=name)


def test_every_paper_chapter_has_three_to_six_exercises_with_valid_parameters():
    assert PAPER_CHAPTERS  # the book reproduces papers
    for name in PAPER_CHAPTERS:
        chapter = discover()[name]
        assert 3 <= len(chapter.exercises) <= 6, name
        assert len({e.slug for e in chapter.exercises}) == len(chapter.exercises)
        quick = build_params(chapter.params, "quick")
        for e in chapter.exercises:
            assert e.answer is not None and e.question.endswith("?"), (name, e.slug)
            for key, value in e.params.items():  # an exercise moves a lever
                assert getattr(quick, key) != value, (name, e.slug, key)
            for profile in PROFILES:  # the levers are real parameters with allowed values
                if profile != "paper":  # paper needs the real datasets' folders
                    build_params(chapter.params, profile, e.overrides(chapter.has_seeds))


def test_cli_lists_the_exercises_with_their_commands(capsys):
    for name in PAPER_CHAPTERS:
        assert cli.main(["exercises", name]) == 0
        text = capsys.readouterr().out
        for e in discover()[name].exercises:
            assert e.command(name) in text and e.question in text


def test_cli_refuses_a_chapter_without_exercises_and_an_unknown_slug(capsys):
    assert cli.main(["exercises", "synthesis"]) == 2
    assert "has no exercises" in capsys.readouterr().err
    assert cli.main(["exercises", "ibo", "--run", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown exercise" in err and "one-replicate" in err and len(err.splitlines()) == 1


def test_command_quotes_values_and_lists():
    e = Exercise("x", "Why?", params={"rise_masks": [5, 10], "average": "macro"}, look_at="table:t")
    assert e.command("seg") == (
        "xaistudy run seg -p rise_masks '[5, 10]' -p average macro --out exercises/seg/x"
    )  # its own folder: following it never overwrites the book's chapter
    assert e.command("seg", "smoke").startswith("xaistudy run seg --profile smoke ")
    seeded = Exercise("y", "Why?", seeds=(0, 1), look_at="claim:c")
    assert seeded.command("ibo").endswith("--seeds 0 1 --out exercises/ibo/y")
    assert seeded.overrides() == {"seeds": [0, 1]}
    assert Exercise("z", "Why?", seeds=(3,), look_at="claim:c").overrides(False) == {"seed": 3}
    with pytest.raises(ValueError, match="runs one seed"):
        seeded.overrides(seeds_param=False)


def test_a_bad_target_is_refused_when_the_exercise_is_defined():
    with pytest.raises(ValueError, match="look_at must be one of"):
        Exercise("x", "Why?", look_at="plot:t")
    with pytest.raises(ValueError, match="look_at"):
        Exercise("x", "Why?", look_at="table:")


def test_check_target_names_what_the_run_lacks(tmp_path):
    run = _claims(tmp_path / "run", {"a.b": "reproduced"})
    Exercise("ok", "Why?", look_at="claim:a.b").check_target(run)
    with pytest.raises(KeyError, match="no claim 'c.d'"):
        Exercise("x", "Why?", look_at="claim:c.d").check_target(run)
    with pytest.raises(FileNotFoundError, match="exercise 'y' points at .*missing.csv"):
        Exercise("y", "Why?", look_at="table:missing").check_target(run)


def test_changed_verdicts_compares_with_the_baseline(tmp_path):
    base = _claims(tmp_path / "base", {"t.a": "reproduced", "t.b": "inconclusive", "u": "x"})
    same = _claims(tmp_path / "same", {"t.a": "reproduced", "t.b": "inconclusive"})
    moved = _claims(tmp_path / "moved", {"t.a": "contradicted", "t.b": "inconclusive"})
    assert Outcome(same, base).changed_verdicts("t.") == (
        "no verdict changes among the 2 claims compared"
    )
    assert Outcome(moved, base).changed_verdicts("t.") == (
        "1 of 2 verdicts change (t.a: reproduced → contradicted)"
    )
    with pytest.raises(ValueError, match="no baseline"):
        Outcome(same).table("claims", baseline=True)


def test_html_collapses_the_answer_and_says_when_it_was_not_computed():
    name = PAPER_CHAPTERS[0]
    first = discover()[name].exercises[0]
    empty = exercises.exercises_html(name, None)
    assert empty.count("<details>") == len(discover()[name].exercises)
    assert f"xaistudy exercises {name} --run" in empty
    answers = {
        "profile": "smoke",
        "exercises": {first.slug: {"command": "cmd", "answer": "IoU <0.5> & more"}},
    }
    text = exercises.exercises_html(name, answers)
    assert "IoU &lt;0.5&gt; &amp; more" in text  # escaped, inside the collapsed block
    assert text.index("<summary>What you should see</summary><p>IoU") > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_CHAPTERS)
def test_every_exercise_runs_at_smoke_size_and_computes_its_answer(
    name, smoke_outputs, tmp_path, capsys
):
    out = tmp_path / name
    result = exercises.run_exercises(name, "smoke", out)  # in-process runs, baseline included
    # the in-process runs give the notebook's numbers: every table they write is the one the
    # notebook (run through the command line) wrote, to the last digit
    notebook, baseline = smoke_outputs(name) / "tables", out / "baseline" / "tables"
    written = sorted(p.name for p in baseline.glob("*.csv"))
    assert "claims.csv" in written and len(written) > 1
    for csv in written:
        _assert_same_numbers(pd.read_csv(baseline / csv), pd.read_csv(notebook / csv), csv)
    slugs = [e.slug for e in discover()[name].exercises]
    assert list(result["exercises"]) == slugs
    for e in discover()[name].exercises:
        answer = result["exercises"][e.slug]["answer"]
        assert len(answer) > 20 and "nan" not in answer.lower(), (e.slug, answer)
        e.check_target(out / e.slug)
    assert json.loads((out / exercises.ANSWERS).read_text()) == result
    html = exercises.exercises_html(name, exercises.load_answers(name, out))
    assert "Not computed" not in html
    # the answer key the book shows (kept in the repository) is the one this code computes
    kept = exercises.load_answers(name)
    refresh = f"the book's answer key is stale: refresh it with 'xaistudy exercises {name} --run'"
    assert kept is not None and kept["profile"] == "smoke", refresh
    assert kept["exercises"] == result["exercises"], refresh


def test_the_book_shows_an_answer_key_for_every_exercise():
    """Each chapter's answer key is kept in the repository (the slow test above recomputes
    it), so a default build of the book shows every exercise's answer, not how to compute it."""
    for name, chapter in discover().items():
        if not chapter.exercises:
            continue
        kept = exercises.load_answers(name)
        assert kept is not None, f"{name}: no answer key; run 'xaistudy exercises {name} --run'"
        assert set(kept["exercises"]) == {e.slug for e in chapter.exercises}, name
        assert "Not computed" not in exercises.exercises_html(name, kept), name
