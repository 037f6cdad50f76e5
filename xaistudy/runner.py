"""Run a chapter: validate its parameters, execute its notebook with Papermill, collect outputs.

A chapter is a module of :mod:`xaistudy.chapters` (its parameter model, steps and claims) plus
``notebooks/<name>.md`` (jupytext MyST markdown with one cell tagged ``parameters``). Running
it writes ``<out>/<name>.ipynb`` (the executed notebook), ``<out>/tables/*.csv`` and
``<out>/figures/*.png``; ``out`` defaults to ``book/chapters/<name>/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xaistudy.chapters import Chapter, discover, get_chapter
from xaistudy.params import DEFAULT_PROFILE, BaseParams, ParamError, build_params
from xaistudy.store import repo_root

log = logging.getLogger(__name__)


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message names the cell."""


def chapters() -> dict[str, Chapter]:
    """The book's chapters in book order (see :mod:`xaistudy.chapters`)."""
    return discover()


def default_out(name: str) -> Path:
    return repo_root() / "book" / "chapters" / name


def prepare_run(
    name: str, profile: str = DEFAULT_PROFILE, overrides: Mapping[str, Any] | None = None
) -> tuple[Chapter, BaseParams]:
    """Resolve and validate everything a run needs; raises :class:`ParamError` in one line."""
    chapter = get_chapter(name)
    params = build_params(chapter.params, profile, overrides)
    if not chapter.notebook.exists():
        raise ParamError(f"chapter '{name}' has no notebook at {chapter.notebook}")
    return chapter, params


def run_chapter(
    name: str,
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    log_output: bool = False,
) -> Path:
    """Execute chapter ``name`` and return its output folder.

    Parameters are validated before anything runs. The executed notebook replaces the previous
    one only when the run succeeds; a failed run leaves ``<name>.failed.ipynb`` beside it and
    raises :class:`ChapterFailed` naming the cell.
    """
    import jupytext
    import nbformat
    import papermill as pm

    chapter, params = prepare_run(name, profile, overrides)
    out = Path(out if out is not None else default_out(name)).resolve()
    for sub in ("", "figures", "tables"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    source = out / f".{name}.input.ipynb"
    running = out / f".{name}.running.ipynb"
    nbformat.write(jupytext.read(chapter.notebook, fmt="md:myst"), source)
    parameters = {**params.model_dump(mode="json"), "profile": profile, "out_dir": str(out)}
    log.info("running chapter %s (profile %s) into %s", name, profile, out)
    try:
        pm.execute_notebook(
            str(source),
            str(running),
            parameters=parameters,
            cwd=str(out),
            kernel_name="python3",
            language="python",
            progress_bar=sys.stderr.isatty(),
            log_output=log_output,
            # the kernel's own start-up chatter (transport notices) is not the chapter's output
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except pm.PapermillExecutionError as err:
        failed = out / f"{name}.failed.ipynb"
        if running.exists():
            os.replace(running, failed)
        raise ChapterFailed(
            f"chapter '{name}' failed in cell {err.exec_count} ({err.ename}: {err.evalue}); "
            f"see {failed}"
        ) from None
    finally:
        source.unlink(missing_ok=True)
    _hide_default_parameters(running)
    os.replace(running, out / f"{name}.ipynb")
    (out / f"{name}.failed.ipynb").unlink(missing_ok=True)
    return out


def _hide_default_parameters(notebook: Path) -> None:
    """Keep only the parameters that ran visible in the book: the notebook's default
    ``parameters`` cell gets ``remove-cell``; Papermill's injected cell stays."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, notebook)


def build_html(root: Path | None = None) -> Path:
    """Build the HTML book from the executed notebooks (no re-execution); return index.html."""
    root = root or repo_root()
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else shutil.which("jupyter-book") or "jupyter-book"]
    cmd += ["build", str(root), "--config", str(root / "_config.yml")]
    cmd += ["--toc", str(root / "book" / "_toc.yml")]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise ChapterFailed("jupyter-book build failed:\n" + "\n".join(tail))
    index = root / "_build" / "html" / "index.html"
    if not index.exists():
        raise ChapterFailed(f"jupyter-book finished but {index} is missing")
    return index


def build_book(profile: str = DEFAULT_PROFILE, run: bool = True) -> Path:
    """Run every chapter with ``profile`` into ``book/chapters/`` (the Synthesis part last, as
    it reads the others' claims), then build the HTML book."""
    if run:
        names = list(chapters())
        for name in names:
            prepare_run(name, profile)  # validate all before running any
        for name in names:
            print(f"== chapter {name} (profile {profile})", flush=True)
            run_chapter(name, profile)
    return build_html()
