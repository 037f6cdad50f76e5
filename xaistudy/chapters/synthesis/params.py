"""The ``synthesis`` chapter's parameters: where the executed chapters are."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from xaistudy.core.params import BaseParams, ParamError, PathText


class SynthesisParams(BaseParams):
    """The ``synthesis`` chapter: where the executed chapters are."""

    chapters_dir: PathText = Field(
        "",
        description="folder holding the executed chapters; empty: the folder this chapter's "
        "output is in (book/chapters for the book)",
    )

    def check_inputs(self) -> None:
        """Also refuse a ``chapters_dir`` that is not a folder (a scorecard of nothing would
        read as "not run yet")."""
        super().check_inputs()
        if self.chapters_dir and not Path(self.chapters_dir).is_dir():
            raise ParamError(
                f"bad value for parameter 'chapters_dir': {self.chapters_dir} is not a folder "
                "(give the folder that holds the executed chapters, e.g. book/chapters)"
            )
