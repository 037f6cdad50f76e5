"""The book's chapters, one package each (``chapters/<name>/``), discovered from this package.

A chapter package holds what the reader sees of one study: its parameter model, its paper
record (when it reproduces a paper), its claims, tables, figures and exercises, and defines
``CHAPTER = Chapter(...)`` (:mod:`xaistudy.chapters.spec`) in its ``__init__``. The computation
is the study ``xaistudy.studies.<name>``. Its notebook ``notebooks/<name>.md`` is the story:
short visible calls into both.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

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


def chapter_index() -> list[tuple[str, str]]:
    """Every chapter's (name, title) in book order, read from the ``CHAPTER = Chapter(...)``
    statement of each package's ``__init__.py`` without importing it (a chapter's imports take
    seconds: torch, its study). A statement whose name, title, part or order is not a literal
    is read by importing that chapter."""
    rows = []
    for name in chapter_modules():
        fields = _literal_fields(Path(__path__[0]) / name / "__init__.py")
        if {"name", "title"} <= set(fields) and fields["name"] == name:
            part, order = fields.get("part", PARTS[0]), fields.get("order", 100)
        else:
            chapter = _load(name)
            fields, part, order = {"title": chapter.title}, chapter.part, chapter.order
        rows.append((PARTS.index(part), order, name, fields["title"]))
    return [(name, title) for *_, name, title in sorted(rows)]


def _literal_fields(init: Path) -> dict[str, object]:
    """The literal keyword arguments of ``CHAPTER = Chapter(...)`` in ``init`` (empty when
    there is no such statement)."""
    for node in ast.parse(init.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["CHAPTER"]
            and isinstance(node.value, ast.Call)
        ):
            out = {}
            for kw in node.value.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    pass
            return out
    return {}


def get_chapter(name: str) -> Chapter:
    """The chapter called ``name`` (only its package is imported), or :class:`ParamError`
    listing the chapters."""
    names = chapter_modules()
    if name not in names:
        raise ParamError(f"unknown chapter '{name}'; allowed: {', '.join(names)}")
    return _load(name)
