"""The whole book: every chapter (and its exercises on request), then the HTML."""

from __future__ import annotations

from pathlib import Path

from xaistudy.app import exercises as ex
from xaistudy.app.runner import build_html, chapters, prepare_run, run_chapter
from xaistudy.core.params import DEFAULT_PROFILE
from xaistudy.core.store import default_out


def build_book(profile: str = DEFAULT_PROFILE, run: bool = True, exercises: bool = True) -> Path:
    """Run every chapter with ``profile`` into ``book/chapters/`` (the Synthesis part last, as
    it reads the others' claims), then build the HTML book.

    With ``exercises`` the chapters' exercises run first at the smoke profile (about 9 min on
    a 2-core CPU, beyond the quick book's 45 min) and rewrite their answer keys; without, each
    chapter shows the keys kept in the repository (``book/exercises/CHAPTER/answers.json``,
    which the test suite recomputes and compares).
    """
    if run:
        names = list(chapters())
        for name in names:
            prepare_run(name, profile, out=default_out(name))  # validate all before running any
        if exercises:
            for name, chapter in chapters().items():
                if chapter.exercises:
                    print(f"== exercises of {name} (profile smoke)", flush=True)
                    ex.run_exercises(name, "smoke")
        for name in names:
            print(f"== chapter {name} (profile {profile})", flush=True)
            run_chapter(name, profile)
    return build_html()
