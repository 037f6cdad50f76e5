"""The papers this chapter tests: no paper of its own, the five papers' records, read through the
chapter registry (never by importing another chapter)."""

from __future__ import annotations

from xaistudy.chapters.spec import PaperRecord

#: the chapter reproduces no paper: its experiment is this book's own
PAPER = None


def record(chapter: str) -> PaperRecord:
    """The paper record of chapter ``chapter`` (e.g. ``"ibo"``)."""
    from xaistudy.chapters import get_chapter

    paper = get_chapter(chapter).paper
    if paper is None:
        raise ValueError(f"chapter '{chapter}' has no paper record")
    return paper


def citation(chapter: str) -> str:
    """The citation of chapter ``chapter``'s paper, e.g. ``"Afshar et al. 2024"``."""
    return record(chapter).citation
