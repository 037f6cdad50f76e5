"""The ``synthesis`` chapter's parameters: where the executed chapters are."""

from __future__ import annotations

from pydantic import Field

from xaistudy.core.params import BaseParams


class SynthesisParams(BaseParams):
    """The ``synthesis`` chapter: where the executed chapters are."""

    chapters_dir: str = Field(
        "", description="folder holding the executed chapters; empty: the book's book/chapters"
    )
