"""The book's chapters, one package each (``chapters/<name>/``), discovered from this package.

A chapter package holds what the reader sees of one study: its parameter model, its paper
record (when it reproduces a paper), its claims, tables, figures and exercises, and defines
``CHAPTER = Chapter(...)`` (:mod:`xaistudy.chapters.spec`) in its ``__init__``. The computation
is the study ``xaistudy.studies.<name>``. Its notebook ``notebooks/<name>.md`` is the story:
short visible calls into both.
"""

from __future__ import annotations

import importlib
import pkgutil

from xaistudy.chapters.spec import PARTS, Chapter, PaperRecord, Setting  # noqa: F401 (re-exported)
from xaistudy.core.params import ParamError


def chapter_modules() -> list[str]:
    """The names of the chapter packages of this package (each one a chapter)."""
    return sorted(
        m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_")
    )


def _load(name: str) -> Chapter:
    module = importlib.import_module(f"{__name__}.{name}")
    chapter = getattr(module, "CHAPTER", None)
    if not isinstance(chapter, Chapter) or chapter.name != name:
        raise RuntimeError(f"module {module.__name__} must define CHAPTER = Chapter('{name}')")
    return chapter


def discover() -> dict[str, Chapter]:
    """Every chapter of this package, in book order (part, then ``order``)."""
    found = sorted(
        (_load(name) for name in chapter_modules()),
        key=lambda c: (PARTS.index(c.part), c.order, c.name),
    )
    return {c.name: c for c in found}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name`` (only its package is imported), or :class:`ParamError`
    listing the chapters."""
    names = chapter_modules()
    if name not in names:
        raise ParamError(f"unknown chapter '{name}'; allowed: {', '.join(names)}")
    return _load(name)
