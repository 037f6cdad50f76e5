"""Exercises: a chapter's levers, what to look at, and an answer key computed from a run.

A chapter module lists its exercises as data and hands them to its ``Chapter``::

    EXERCISES = (
        Exercise(
            "averaging",
            "Does the ranking survive another averaging rule?",
            params={"average": "macro"},
            look_at="claim:table6.order.iou",
            answer=_answer_averaging,       # Outcome -> "what you should see"
        ),
        ...
    )

``xaistudy exercises CHAPTER`` lists them with their commands; ``--run`` computes the chapter's
tables and claims once with its defaults (the baseline) and once per exercise, at the smoke
profile unless told otherwise, and writes the answer key (``answers.json``) computed from those
runs. The runs are :func:`xaistudy.app.runner.run_tables`: the chapter's own functions in this
process, without executing its notebook (the numbers are the notebook's; the page is not
rendered), so an exercise costs its computation only. The chapter's last cell renders the
exercises with that key in collapsed blocks.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xaistudy.chapters.spec import ANSWERS, Exercise, Outcome  # noqa: F401 (re-exported)
from xaistudy.core.store import repo_root


def default_dir(chapter: str) -> Path:
    """Where ``xaistudy exercises CHAPTER --run`` writes by default and the book reads the
    answer key (``answers.json``, kept in the repository: the test suite recomputes it)."""
    return repo_root() / "book" / "exercises" / chapter


def load_answers(chapter: str, folder: str | Path | None = None) -> dict[str, Any] | None:
    path = Path(folder or default_dir(chapter)) / ANSWERS
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def run_exercises(
    chapter: str,
    profile: str = "smoke",
    out: str | Path | None = None,
    baseline: str | Path | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Compute ``chapter``'s tables and claims with its defaults (unless ``baseline`` names such
    a run) and once per exercise at ``profile``; compute each answer key and write
    ``answers.json`` in ``out``.

    Every exercise's parameters are validated before anything runs.
    """
    from xaistudy.app import runner
    from xaistudy.chapters import get_chapter
    from xaistudy.core.params import ParamError

    ch = get_chapter(chapter)
    exercises = [e for e in ch.exercises if only is None or e.slug in only]
    if only is not None and len(exercises) != len(set(only)):
        known = ", ".join(e.slug for e in ch.exercises)
        raise ParamError(f"unknown exercise in {only}; {chapter} has: {known}")
    out = runner.check_out(default_dir(chapter) if out is None else out)
    for e in exercises:
        runner.prepare_run(chapter, profile, e.overrides(ch.has_seeds))
    if baseline is None:
        baseline = runner.run_tables(chapter, profile, out=out / "baseline")
    result: dict[str, Any] = {"chapter": chapter, "profile": profile, "exercises": {}}
    for e in exercises:
        print(f"== exercise {chapter}/{e.slug}: {e.command(chapter, profile)}", flush=True)
        run_out = runner.run_tables(chapter, profile, e.overrides(ch.has_seeds), out=out / e.slug)
        e.check_target(run_out)
        text = e.answer(Outcome(run_out, Path(baseline))) if e.answer else ""
        result["exercises"][e.slug] = {
            "command": e.command(chapter, profile),
            "answer": text,
        }
    _write_json(out / ANSWERS, result)
    return result


def exercises_html(chapter: str, answers: Mapping[str, Any] | None = None) -> str:
    """The chapter's exercises as HTML: question, command, where to look, and the answer key
    in a collapsed block (or how to compute it when this build did not)."""
    from xaistudy.chapters import get_chapter

    ch = get_chapter(chapter)
    computed = (answers or {}).get("exercises", {})
    profile = (answers or {}).get("profile", "smoke")
    items = []
    for e in ch.exercises:
        key = computed.get(e.slug)
        if key and key.get("answer"):
            body = (
                f"<p>{html.escape(key['answer'])}</p><p><i>Computed from "
                f"<code>{html.escape(key['command'])}</code> and the same command without "
                f"the exercise's parameters ({html.escape(profile)} profile: small sizes, so "
                "read directions, not decimals). <code>xaistudy exercises "
                f"{html.escape(chapter)} --run</code> recomputes it; the test suite does too, "
                "and fails when the code no longer gives this answer.</i></p>"
            )
        else:
            body = (
                "<p><i>Not computed in this build. Run <code>xaistudy exercises "
                f"{html.escape(chapter)} --run</code> and rebuild the book.</i></p>"
            )
        hint = f"<br>{html.escape(e.hint)}" if e.hint else ""
        items.append(
            f"<li><p><b>{html.escape(e.question)}</b>{hint}</p>"
            f"<p><code>{html.escape(e.command(chapter))}</code><br>Look at the "
            f"{_code_html(e.where())}.</p>"
            f"<details><summary>What you should see</summary>{body}</details></li>"
        )
    return "<ol class='xaistudy-exercises'>" + "".join(items) + "</ol>"


def _code_html(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def show(chapter: str, folder: str | Path | None = None) -> None:
    """Display the chapter's exercises (the last cell of a chapter's notebook)."""
    from IPython.display import HTML, display

    display(HTML(exercises_html(chapter, load_answers(chapter, folder))))
