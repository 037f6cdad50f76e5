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

``xaistudy exercises CHAPTER`` lists them with their commands; ``--run`` runs the chapter once
with its defaults (the baseline) and once per exercise, at the smoke profile unless told
otherwise, and writes the answer key (``answers.json``) computed from those runs. The chapter's
last cell renders the exercises with that key in collapsed blocks.
"""

from __future__ import annotations

import html
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xaistudy.store import repo_root

#: what an exercise may point at: a table (tables/NAME.csv), a claim (claims.csv) or a figure
TARGET_KINDS = ("table", "claim", "figure")
ANSWERS = "answers.json"


class Outcome:
    """The outputs an answer is computed from: the exercise's run and the baseline run."""

    def __init__(self, out: Path, baseline: Path | None = None):
        self.out = Path(out)
        self.baseline = Path(baseline) if baseline is not None else None

    def _dir(self, baseline: bool) -> Path:
        if baseline and self.baseline is None:
            raise ValueError("this outcome has no baseline run")
        return self.baseline if baseline else self.out  # type: ignore[return-value]

    def table(self, name: str, baseline: bool = False) -> pd.DataFrame:
        """``tables/<name>.csv`` of the exercise's run (or of the baseline)."""
        return pd.read_csv(self._dir(baseline) / "tables" / f"{name}.csv")

    def claim(self, claim_id: str, baseline: bool = False) -> pd.Series:
        """One row of ``claims.csv``; a KeyError names the missing claim."""
        table = self.table("claims", baseline).set_index("claim_id")
        if claim_id not in table.index:
            raise KeyError(f"no claim '{claim_id}' in {self._dir(baseline)}")
        return table.loc[claim_id]

    def verdicts(self, prefix: str = "", baseline: bool = False) -> pd.Series:
        """Verdict per claim id starting with ``prefix``."""
        table = self.table("claims", baseline)
        table = table[table["claim_id"].str.startswith(prefix)]
        return table.set_index("claim_id")["verdict"]

    def changed_verdicts(self, prefix: str = "") -> str:
        """The claims whose verdict differs from the baseline's, as one sentence."""
        ours, base = self.verdicts(prefix), self.verdicts(prefix, baseline=True)
        both = ours.index.intersection(base.index)
        moved = [f"{c}: {base[c]} → {ours[c]}" for c in both if ours[c] != base[c]]
        if not moved:
            return f"no verdict changes among the {len(both)} claims compared"
        return f"{len(moved)} of {len(both)} verdicts change ({'; '.join(moved)})"


@dataclass(frozen=True)
class Exercise:
    """One exercise: the question it teaches, the parameters to change, where to look and a
    function computing the answer key from the runs."""

    slug: str
    question: str
    params: Mapping[str, Any] = field(default_factory=dict)
    look_at: str = ""
    answer: Callable[[Outcome], str] | None = None
    seeds: tuple[int, ...] | None = None
    hint: str = ""

    def __post_init__(self):
        kind, _, name = self.look_at.partition(":")
        if kind not in TARGET_KINDS or not name:
            raise ValueError(
                f"exercise '{self.slug}': look_at must be one of "
                f"{', '.join(k + ':NAME' for k in TARGET_KINDS)}, got '{self.look_at}'"
            )

    @property
    def target(self) -> tuple[str, str]:
        kind, _, name = self.look_at.partition(":")
        return kind, name

    def overrides(self, seeds_param: bool = True) -> dict[str, Any]:
        """The parameters of the exercise's run (``seeds_param`` False: the chapter has a
        single ``seed``, so the exercise may name one seed only)."""
        out = dict(self.params)
        if self.seeds is not None:
            if seeds_param:
                out["seeds"] = list(self.seeds)
            elif len(self.seeds) == 1:
                out["seed"] = self.seeds[0]
            else:
                raise ValueError(f"exercise '{self.slug}': this chapter runs one seed")
        return out

    def command(self, chapter: str, profile: str | None = None) -> str:
        """The command a reader types (``profile`` None: the default profile)."""
        parts = ["xaistudy", "run", chapter]
        if profile:
            parts += ["--profile", profile]
        for key, value in self.params.items():
            text = value if isinstance(value, str) else json.dumps(value)
            parts += ["-p", key, shlex.quote(text)]
        if self.seeds is not None:
            parts += ["--seeds", *(str(s) for s in self.seeds)]
        return " ".join(parts)

    def where(self) -> str:
        kind, name = self.target
        if kind == "claim":
            return f"claim `{name}` in `tables/claims.csv`"
        if kind == "table":
            return f"table `tables/{name}.csv`"
        return f"figure `figures/{name}.png`"

    def check_target(self, out: Path) -> None:
        """Raise (naming the exercise) when the run at ``out`` lacks what the exercise points at."""
        kind, name = self.target
        if kind == "claim":
            Outcome(out).claim(name)
            return
        path = (
            out
            / ("tables" if kind == "table" else "figures")
            / (f"{name}.csv" if kind == "table" else f"{name}.png")
        )
        if not path.is_file():
            raise FileNotFoundError(f"exercise '{self.slug}' points at {path}, which the run lacks")


def default_dir(chapter: str) -> Path:
    """Where ``xaistudy exercises CHAPTER --run`` writes by default (read by the book)."""
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
    """Run ``chapter`` with its defaults (unless ``baseline`` names such a run) and once per
    exercise at ``profile``; compute each answer key and write ``answers.json`` in ``out``.

    Every exercise's parameters are validated before anything runs.
    """
    from xaistudy import runner
    from xaistudy.chapters import get_chapter
    from xaistudy.params import ParamError

    ch = get_chapter(chapter)
    exercises = [e for e in ch.exercises if only is None or e.slug in only]
    if only is not None and len(exercises) != len(set(only)):
        known = ", ".join(e.slug for e in ch.exercises)
        raise ParamError(f"unknown exercise in {only}; {chapter} has: {known}")
    out = Path(out or default_dir(chapter)).resolve()
    for e in exercises:
        runner.prepare_run(chapter, profile, e.overrides(ch.has_seeds))
    if baseline is None:
        baseline = runner.run_chapter(chapter, profile, out=out / "baseline")
    result: dict[str, Any] = {"chapter": chapter, "profile": profile, "exercises": {}}
    for e in exercises:
        print(f"== exercise {chapter}/{e.slug}: {e.command(chapter, profile)}", flush=True)
        run_out = runner.run_chapter(chapter, profile, e.overrides(ch.has_seeds), out=out / e.slug)
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
                f"<p>{html.escape(key['answer'])}</p><p><i>Computed by this build from "
                f"<code>{html.escape(key['command'])}</code> and the same command without "
                f"the exercise's parameters ({html.escape(profile)} profile: small sizes, so "
                "read directions, not decimals).</i></p>"
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
