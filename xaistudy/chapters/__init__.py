"""The book's chapters, one module each, discovered from this package.

A chapter module defines its parameter model, its paper record (when it reproduces a paper),
its steps, tables, figures and claims, and ends with ``CHAPTER = Chapter(...)``. Its notebook
``notebooks/<name>.md`` is the story: short visible calls into the module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xaistudy.exercises import Exercise
from xaistudy.params import BaseParams, ParamError
from xaistudy.store import repo_root

#: book parts, in order
PARTS = ("Chapters", "Synthesis")


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


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its name, title, parameter model, paper and place in the book."""

    name: str
    title: str
    params: type[BaseParams]
    order: int = 100
    part: str = "Chapters"
    paper: PaperRecord | None = None
    source: Path | None = None  # the notebook, when not notebooks/<name>.md
    exercises: tuple[Exercise, ...] = ()  # see xaistudy.exercises
    #: the chapter's computation, ``compute(params)``, every stage cached: what ``xaistudy
    #: compute`` runs outside the notebook (e.g. under ``accelerate launch``, work shared out)
    compute: Callable[[Any], Any] | None = None

    @property
    def notebook(self) -> Path:
        return self.source or repo_root() / "notebooks" / f"{self.name}.md"

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name}"

    @property
    def has_seeds(self) -> bool:
        return "seeds" in self.params.model_fields


def chapter_modules() -> list[str]:
    """The names of the modules of this package (each one a chapter)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def discover() -> dict[str, Chapter]:
    """Every chapter of this package, in book order (part, then ``order``)."""
    found = []
    for name in chapter_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        chapter = getattr(module, "CHAPTER", None)
        if not isinstance(chapter, Chapter) or chapter.name != name:
            raise RuntimeError(f"module {module.__name__} must define CHAPTER = Chapter('{name}')")
        found.append(chapter)
    found.sort(key=lambda c: (PARTS.index(c.part), c.order, c.name))
    return {c.name: c for c in found}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name``, or :class:`ParamError` listing the chapters."""
    chapters = discover()
    if name not in chapters:
        raise ParamError(f"unknown chapter '{name}'; allowed: {', '.join(chapters)}")
    return chapters[name]
