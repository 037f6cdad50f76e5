"""The chapter types, and nothing else: what a chapter, its paper record, its settings and its
exercises are. Every chapter package builds one :class:`Chapter`; the runner, the CLI and the
exercises runner read it. This module imports no chapter and no computation.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xaistudy.core.params import BaseParams
from xaistudy.core.store import repo_root

if TYPE_CHECKING:  # pandas is imported where a table is read (`xaistudy list` needs none)
    import pandas as pd

#: book parts, in order
PARTS = ("Chapters", "Synthesis")
#: ``Chapter.after`` naming every other chapter
ALL = ("*",)
#: set by ``xaistudy book`` for each chapter it runs: how many chapters run at once (the run
#: record says so, since the chapter's wall-clock timings then share the cores)
LANES_VARIABLE = "XAISTUDY_LANES"

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
        import pandas as pd

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
        """The command a reader types (``profile`` None: the default profile); it writes to the
        exercise's own folder (``exercises/<chapter>/<slug>``), never over the book's chapter."""
        parts = ["xaistudy", "run", chapter]
        if profile:
            parts += ["--profile", profile]
        for key, value in self.params.items():
            text = value if isinstance(value, str) else json.dumps(value)
            parts += ["-p", key, shlex.quote(text)]
        if self.seeds is not None:
            parts += ["--seeds", *(str(s) for s in self.seeds)]
        parts += ["--out", f"exercises/{chapter}/{self.slug}"]
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



@dataclass(frozen=True)
class Setting:
    """One setting of a paper: the paper's value and the parameter (if any) that carries it."""

    name: str
    paper: str
    parameter: str = ""
    note: str = ""


@dataclass(frozen=True)
class PaperRecord:
    """What the chapter reproduces, in one place: the paper, its settings and its numbers.

    ``numbers`` maps a key (e.g. ``"table9.mard.ibo"``) to the paper's value as the paper
    prints it; claims quote these, so no paper number is typed twice.
    """

    key: str  # BibTeX key in book/references.bib
    citation: str  # e.g. "Afshar et al. 2024"
    file: str  # the paper's text under ../shared/papers/
    settings: tuple[Setting, ...] = ()
    numbers: dict[str, str] = field(default_factory=dict)

    def number(self, key: str) -> str:
        """The paper's value for ``key``; a KeyError names the key and the record."""
        try:
            return self.numbers[key]
        except KeyError:
            raise KeyError(f"{self.citation} has no number '{key}'") from None

    def settings_table(self, params: BaseParams | None = None):
        """The paper's settings beside the values of this run (when ``params`` is given)."""
        import pandas as pd

        rows = []
        for s in self.settings:
            row = {"setting": s.name, "paper": s.paper, "parameter": s.parameter}
            if params is not None:
                row["this run"] = _format(getattr(params, s.parameter)) if s.parameter else "—"
            row["note"] = s.note
            rows.append(row)
        return pd.DataFrame(rows)


def _format(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def resolve(ref: Any) -> Any:
    """``ref`` itself, or the object a ``"package.module:name"`` string names (imported now)."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    if not name:
        raise ValueError(f"a reference must read 'package.module:name', got '{ref}'")
    import importlib

    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its name, title, parameter model, paper and place in the book.

    The chapter interface is four functions of the chapter package: ``run(params) -> Result``
    (the study), and ``claims(result)``, ``tables(result)`` (name → table) and
    ``figures(result)`` (name → figure) of its pages; :attr:`run`, :attr:`claims`,
    :attr:`tables` and :attr:`figures` reach them. ``params`` and ``compute`` may be given as
    ``"package.module:name"`` strings, imported when first used.
    """

    name: str
    title: str
    params_ref: type[BaseParams] | str
    order: int = 100
    part: str = "Chapters"
    paper: PaperRecord | None = None
    source: Path | None = None  # the notebook, when not notebooks/<name>.md
    exercises: tuple[Exercise, ...] = ()
    #: the chapter's computation, ``compute(params)``, every stage cached: what ``xaistudy
    #: compute`` runs outside the notebook (e.g. under ``accelerate launch``, work shared out)
    compute_ref: Callable[[Any], Any] | str | None = None
    #: the chapters whose cached stages this one reuses or whose outputs it reads (:data:`ALL`:
    #: every other chapter): ``xaistudy book`` starts it only when they have finished
    after: tuple[str, ...] = ()

    @property
    def params(self) -> type[BaseParams]:
        """The chapter's parameter model (imported on first use)."""
        return resolve(self.params_ref)

    @property
    def compute(self) -> Callable[[Any], Any] | None:
        """The chapter's computation (imported on first use)."""
        return resolve(self.compute_ref)

    @property
    def run(self) -> Callable[[Any], Any]:
        """``run(params) -> Result``: the chapter package's ``run`` (its study, every stage
        cached)."""
        return resolve(f"{self.module}:run")

    @property
    def claims(self) -> Callable[[Any], Any]:
        """``claims(result) -> list[dict]``: the paper's findings judged on a result."""
        return resolve(f"{self.module}:claims")

    @property
    def tables(self) -> Callable[[Any], Any]:
        """``tables(result) -> {name: DataFrame}``."""
        return resolve(f"{self.module}:tables")

    @property
    def figures(self) -> Callable[[Any], Any]:
        """``figures(result) -> {name: Figure}``."""
        return resolve(f"{self.module}:figures")

    @property
    def notebook(self) -> Path:
        return self.source or repo_root() / "notebooks" / f"{self.name}.md"

    @property
    def module(self) -> str:
        return f"xaistudy.chapters.{self.name}"

    @property
    def has_seeds(self) -> bool:
        return "seeds" in self.params.model_fields
