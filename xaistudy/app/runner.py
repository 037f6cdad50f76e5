"""Run a chapter: validate its parameters, execute its notebook with Papermill, collect outputs.

A chapter is a module of :mod:`xaistudy.chapters` (its parameter model, steps and claims) plus
``notebooks/<name>.md`` (jupytext MyST markdown with one cell tagged ``parameters``). Running
it writes ``<out>/<name>.ipynb`` (the executed notebook), ``<out>/tables/*.csv`` and
``<out>/figures/*.png``; ``out`` defaults to ``book/chapters/<name>/``.

Everything is checked before anything runs (parameters, the files they name, the output
folder, the device). The notebook runs in a staging folder inside ``out`` and its results are
swapped in only when it succeeds, so a failed, interrupted or killed run leaves the previous
output as it was. Paths (parameters, ``$XAISTUDY_CACHE``, ``$XAISTUDY_DATA``) are resolved
against the caller's folder first, since the notebook runs in another one.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xaistudy.chapters import Chapter, discover, get_chapter
from xaistudy.core.params import DEFAULT_PROFILE, BaseParams, ParamError, build_params
from xaistudy.core.runtime import thread_environment
from xaistudy.core.store import OUT_VARIABLE, Store, default_out, repo_root

log = logging.getLogger(__name__)


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; the message names the cell."""


def chapters() -> dict[str, Chapter]:
    """The book's chapters in book order (see :mod:`xaistudy.chapters`)."""
    return discover()


#: environment variables naming folders; made absolute before a notebook runs elsewhere
PATH_VARIABLES = (
    "XAISTUDY_CACHE",
    "XAISTUDY_DATA",
    "TORCH_HOME",
    "HF_HOME",
    "HF_HUB_CACHE",
    "XDG_CACHE_HOME",
)
STAGING_PREFIX = ".staging-"
#: the kernel's warning filter: a library importing ``tqdm.auto`` in a kernel without
#: ipywidgets would advise installing them; the chapters draw text bars, shown live on a
#: terminal and kept in ``<name>.stderr.txt`` otherwise
KERNEL_WARNINGS = {"PYTHONWARNINGS": "ignore:IProgress not found"}
#: the terminal a run was started from, for the kernel's live progress bars
#: (:func:`xaistudy.chapters.report.start` copies the kernel's stderr there)
TERMINAL_VARIABLE = "XAISTUDY_TERMINAL"
#: off a terminal: the file the kernel writes its quiet log to (one line per stage), which
#: the runner copies to its own stderr as it grows
LOG_VARIABLE = "XAISTUDY_LOG"


def absolute_path_variables() -> None:
    """Make every relative folder in :data:`PATH_VARIABLES` absolute against the current folder."""
    for var in PATH_VARIABLES:
        value = os.environ.get(var)
        if value and not Path(value).expanduser().is_absolute():
            os.environ[var] = str(Path(value).expanduser().resolve())


def check_out(out: str | Path) -> Path:
    """The absolute output folder, created if missing; :class:`ParamError` in one line when
    it is a file or cannot be written (an empty name is refused: it is not the current
    folder by accident)."""
    if not str(out).strip():
        raise ParamError("output folder: the name is empty; give a folder, e.g. --out runs/mine")
    out = Path(out).expanduser().resolve()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise ParamError(f"output folder {out}: {existing} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ParamError(f"output folder {out} cannot be written ({err.strerror})") from None
    return out


def register_input_checks(model: type[BaseParams]) -> None:
    """Import the layers that check the files ``model``'s parameters name (they register their
    checks with :func:`xaistudy.core.params.register_input_check`); none when it names none."""
    if model.DATASET_FIELDS:
        import xaistudy.data.datasets  # noqa: F401
    if model.PRETRAINED_FOR:
        import xaistudy.models.classifiers  # noqa: F401


def prepare_run(
    name: str,
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
) -> tuple[Chapter, BaseParams]:
    """Resolve and validate everything a run needs; raises :class:`ParamError` in one line.

    With ``out`` the output folder is checked too (created, written to).
    """
    absolute_path_variables()
    chapter = get_chapter(name)
    register_input_checks(chapter.params)
    params = build_params(chapter.params, profile, overrides)
    if not chapter.notebook.exists():
        raise ParamError(f"chapter '{name}' has no notebook at {chapter.notebook}")
    if out is not None:
        check_out(out)
    check_cache()
    return chapter, params


def check_cache() -> Path:
    """The artifact cache's folder, created if missing; :class:`ParamError` in one line when
    it cannot be written (before a run spends minutes on a result it could not keep)."""
    root = Store().root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        raise ParamError(
            f"artifact cache {root} cannot be written ({err.strerror}); "
            "set XAISTUDY_CACHE to a writable folder"
        ) from None
    return root


def compute_chapter(
    name: str, profile: str = DEFAULT_PROFILE, overrides: Mapping[str, Any] | None = None
) -> str:
    """Run chapter ``name``'s computation in this process (no notebook), filling the artifact
    cache that ``xaistudy run`` with the same parameters then reads; returns a one-line summary.

    Under ``accelerate launch`` every process runs it and the sharded steps share their work
    out (:mod:`xaistudy.core.distributed`).
    """
    from xaistudy.core import distributed
    from xaistudy.core.runtime import fix_threads

    chapter, params = prepare_run(name, profile, overrides)
    if chapter.compute is None:
        raise ParamError(f"chapter '{name}' has no separate computation; use 'xaistudy run {name}'")
    distributed.world_size()  # under a launch: join the processes first (one GPU each)
    fix_threads(params.threads)
    start = time.perf_counter()
    chapter.compute(params)
    return (
        f"{name} ({profile}) computed in {time.perf_counter() - start:.0f} s on "
        f"{distributed.world_size()} process(es); results cached in {Store().root}; "
        f"'xaistudy run {name} --profile {profile}' with the same parameters reads them"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _new_staging(out: Path, name: str) -> Path:
    """A fresh staging folder in ``out``; leftovers of killed runs (dead pid) are removed."""
    prefix = f"{STAGING_PREFIX}{name}-"
    for old in out.glob(f"{prefix}*"):
        pid = old.name.removeprefix(prefix).removesuffix(".input.ipynb")
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    staging = out / f"{prefix}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for sub in ("figures", "tables"):
        (staging / sub).mkdir(parents=True)
    return staging


def _swap_in(staging: Path, out: Path) -> None:
    """Move every entry of ``staging`` into ``out``, replacing the entry of the same name
    (a folder such as ``tables/`` is replaced whole, so no old file stays beside new ones)."""
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if target.is_dir() and not target.is_symlink():
            old = out / f".{entry.name}.replaced-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old)
        else:
            if entry.is_dir() and target.exists():
                target.unlink()
            os.replace(entry, target)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]):
    """Set environment variables for the duration of the block (a kernel inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _terminal_name() -> str | None:
    """The terminal device this process's stderr writes to, or None (not a terminal)."""
    try:
        return os.ttyname(sys.stderr.fileno()) if sys.stderr.isatty() else None
    except (AttributeError, OSError, ValueError):
        return None


def run_chapter(
    name: str,
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    log_output: bool = False,
    step: Callable[[str], None] | None = None,
) -> Path:
    """Execute chapter ``name`` and return its output folder (``step``, when given, is called
    with the name of each start-up step as it begins: a progress bar's hook).

    Parameters are validated before anything runs. The executed notebook replaces the previous
    one only when the run succeeds; a failed run leaves ``<name>.failed.ipynb`` beside it and
    raises :class:`ChapterFailed` naming the cell.
    """
    import jupytext
    import nbformat
    import papermill as pm

    out = out if out is not None else default_out(name)
    step = step or (lambda _: None)
    step("checking the parameters")
    chapter, params = prepare_run(name, profile, overrides, out)
    out = check_out(out)
    step("starting the kernel")
    staging = _new_staging(out, name)
    source = staging.parent / f"{staging.name}.input.ipynb"
    running = staging / f"{name}.ipynb"
    nbformat.write(jupytext.read(chapter.notebook, fmt="md:myst"), source)
    # out_dir is relative: the notebook runs in its output folder, and the page shows no
    # path of the machine that built it
    parameters = {**params.model_dump(mode="json"), "profile": profile, "out_dir": "."}
    log.info("running chapter %s (profile %s) into %s", name, profile, out)
    kernel_env = {**thread_environment(params.threads), **KERNEL_WARNINGS}
    kernel_env[OUT_VARIABLE] = str(out.resolve())  # where the run is written (not on the page)
    terminal = _terminal_name() if not log_output else None
    stage_log = staging / ".stages.log"  # (removed before the swap; a killed run's goes with
    # its staging folder)
    if terminal:  # the kernel shows its progress bars there too
        kernel_env[TERMINAL_VARIABLE] = terminal
    elif not log_output:  # a quiet line per stage instead
        kernel_env[LOG_VARIABLE] = str(stage_log)
    try:
        with _environment(kernel_env), _relay_lines(stage_log, sys.stderr, f"  [{name}] "):
            pm.execute_notebook(
                str(source),
                str(running),
                parameters=parameters,
                cwd=str(staging),
                kernel_name="python3",
                language="python",
                progress_bar=sys.stderr.isatty(),
                log_output=log_output,
                # the kernel's own log (transport notices; a socket error when Ctrl-C stops it) is
                # not the chapter's output: chapter errors arrive as messages, not as this log
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        stage_log.unlink(missing_ok=True)
        _finish_notebook(running, parameters_summary(params, profile))
        (out / f"{name}.failed.ipynb").unlink(missing_ok=True)
        _swap_in(staging, out)
    except pm.PapermillExecutionError as err:
        if err.ename == "KeyboardInterrupt":
            raise KeyboardInterrupt from None
        failed = out / f"{name}.failed.ipynb"
        if running.exists():
            os.replace(running, failed)
        raise ChapterFailed(
            f"chapter '{name}' failed in cell {err.exec_count} ({err.ename}: {err.evalue}); "
            f"see {failed}"
        ) from None
    finally:
        source.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    return out


@contextlib.contextmanager
def _relay_lines(path: Path, stream, prefix: str = "", every: float = 0.5):
    """While the block runs, copy each whole line appended to ``path`` onto ``stream``."""
    stop = threading.Event()

    def relay() -> None:
        position = 0
        while True:
            last = stop.is_set()
            try:
                with open(path, "rb") as f:
                    f.seek(position)
                    data = f.read()
            except OSError:  # not written yet
                data = b""
            end = data.rfind(b"\n") + 1
            if end:
                text = data[:end].decode(errors="replace").splitlines()
                stream.write("".join(f"{prefix}{line}\n" for line in text))
                stream.flush()
                position += end
            if last:
                return
            stop.wait(every)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _with_profile(fn, *args, profile: str):
    """``fn(*args, profile=profile)`` when ``fn`` takes a profile (it records it), else
    ``fn(*args)``: the chapter interface's functions take one where they need it."""
    if "profile" in inspect.signature(fn).parameters:
        return fn(*args, profile=profile)
    return fn(*args)


def run_tables(
    name: str,
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    figures: bool = False,
) -> Path:
    """Compute chapter ``name``'s tables and claims in this process, without its notebook,
    and return the output folder (``tables/*.csv`` and ``tables/claims.csv``; with
    ``figures``, every figure of the chapter's ``figures`` too, as ``figures/*.png``).

    The numbers are the notebook's: the same chapter functions (``run``, ``tables``,
    ``claims``, ``figures``) with the same parameters, threads and cache. What is missing is
    the page (the executed notebook). The exercises' answer keys and the tests of the paper
    profiles come from such runs. The outputs replace the previous ones only when the run
    succeeds.
    """
    import matplotlib.pyplot as plt
    import torch

    from xaistudy.core.runtime import fix_threads
    from xaistudy.stats.claims import claims_table, save_claims
    from xaistudy.viz.plots import save_figure, save_table

    out = out if out is not None else default_out(name)
    chapter, params = prepare_run(name, profile, overrides, out)
    out = check_out(out)
    staging = _new_staging(out, name)
    threads = torch.get_num_threads()
    try:
        fix_threads(params.threads)
        result = _with_profile(chapter.run, params, profile=profile)
        for table_name, table in _with_profile(chapter.tables, result, profile=profile).items():
            save_table(table, table_name, staging)
        rows = _with_profile(chapter.claims, result, profile=profile)
        save_claims(claims_table(rows), staging)
        if figures:
            for figure_name, fig in chapter.figures(result).items():
                save_figure(fig, figure_name, staging)
                plt.close(fig)
        else:
            shutil.rmtree(staging / "figures", ignore_errors=True)
        _swap_in(staging, out)
    finally:
        torch.set_num_threads(threads)  # the caller's pool, as it was
        shutil.rmtree(staging, ignore_errors=True)
    return out


def parameters_summary(params: BaseParams, profile: str) -> str:
    """One line naming what a reader needs first of a run's parameters: profile, seeds, data
    and how many parameters there are in all."""
    values = params.model_dump(mode="json")
    parts = [f"{profile} profile"]
    if "seeds" in values:
        parts.append("seeds " + " ".join(str(s) for s in values["seeds"]))
    elif "seed" in values:
        parts.append(f"seed {values['seed']}")
    data = [str(values[f]) for f in type(params).DATASET_FIELDS if f in values]
    if data:
        parts.append("data " + ", ".join(data))
    return f"Parameters: {' · '.join(parts)} ({len(values) + 1} in all; click to show)"


def _finish_notebook(notebook: Path, summary: str = "") -> None:
    """Keep only what the book shows: the parameters that ran (the notebook's default
    ``parameters`` cell gets ``remove-cell``; Papermill's injected cell stays, collapsed under
    ``summary``) and the cells' results. The kernel's stderr (progress bars, library warnings,
    which name files of the machine that ran it) moves to ``<name>.stderr.txt`` beside the
    notebook."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    record = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # where it ran: a path of that machine
        if record.get(key):
            record[key] = Path(record[key]).name
    stderr = []
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags and summary:  # collapsed: one line, all a click away
            tags.append("hide-input")
            cell.metadata["mystnb"] = {
                "code_prompt_show": summary,
                "code_prompt_hide": "Hide the parameters",
            }
        outputs = cell.get("outputs", [])
        for out in outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                stderr.append(out.get("text", ""))
        if outputs:
            cell["outputs"] = [
                o
                for o in outputs
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    nbformat.write(nb, notebook)
    if stderr:
        lines = []
        for line in "".join(stderr).split("\n"):  # a progress bar: keep its last state
            states = [part for part in line.split("\r") if part.strip()]
            lines += states[-1:]
        notebook.with_suffix(".stderr.txt").write_text("\n".join(lines) + "\n")


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


