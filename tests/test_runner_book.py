"""End to end: a chapter through Papermill, a failing chapter, and the smoke-profile book."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from xaistudy.app import cli, runner
from xaistudy.chapters.data import DataParams
from xaistudy.core.store import repo_root

pytestmark = pytest.mark.slow

ROOT = repo_root()
DATA_TABLES = {
    "claims",
    "run_record",
    "class_balance",
    "he_statistics",
    "grading_statistics",
    "pcle_statistics",
    "generation_speed",
    "shortcut_baselines",
    "shortcut_check",
    "histogram_sources",
}
DATA_FIGURES = {
    "claims",
    "method_once",
    "he_gallery",
    "he_stain_variation",
    "grading_gallery",
    "pcle_gallery",
    "grading_properties",
    "shortcut_check",
}


def error_outputs(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
        or (
            out.get("output_type") == "stream"
            and out.get("name") == "stderr"
            and "Traceback" in out.get("text", "")
        )
    ]


@pytest.fixture(scope="module")
def smoke_run(smoke_outputs):
    """The data chapter run once with the smoke profile, through the command line."""
    return smoke_outputs("data")


def test_run_writes_notebook_tables_and_figures(smoke_run, capsys):
    assert (smoke_run / "data.ipynb").exists()
    assert {p.stem for p in (smoke_run / "tables").glob("*.csv")} == DATA_TABLES
    assert {p.stem for p in (smoke_run / "figures").glob("*.png")} == DATA_FIGURES
    assert error_outputs(smoke_run / "data.ipynb") == []
    assert not list(smoke_run.glob(".*"))  # no staging folder, no temporary notebook left


def test_injected_parameters_are_the_validated_ones(smoke_run):
    nb = nbformat.read(smoke_run / "data.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "tile_size = 64" in injected[0].source and 'profile = "smoke"' in injected[0].source
    assert 'out_dir = "."' in injected[0].source  # no path of the machine that ran it
    defaults = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "remove-cell" in defaults[0].metadata.tags  # the book shows only what ran


def test_notebook_parameters_cell_declares_every_parameter():
    import jupytext

    for chapter in runner.chapters().values():
        nb = jupytext.read(chapter.notebook, fmt="md:myst")
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, chapter.name
        names = {
            line.split("=")[0].strip()
            for line in cells[0].source.splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        }
        assert names == set(chapter.params.model_fields) | {"profile", "out_dir"}, chapter.name


def test_failing_chapter_names_the_cell_and_keeps_the_last_good_run(tmp_path, monkeypatch, capsys):
    source = tmp_path / "broken.md"
    source.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Broken\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\nseed = 0\ndevice = 'auto'\n"
        "tile_size = 128\ngallery_size = 256\nn_gallery = 4\nn_stats = 200\n"
        "n_stats_per_grade = 20\nn_patients = 10\nframes_per_patient = 4\n"
        "profile = 'quick'\nout_dir = '.'\n```\n\n"
        "```{code-cell} ipython3\nx = 1\n```\n\n"
        "```{code-cell} ipython3\nraise ValueError('deliberate failure')\n```\n"
    )
    broken = runner.Chapter("broken", "Broken", DataParams, source=source)
    monkeypatch.setattr(runner, "get_chapter", lambda name: broken)
    out = tmp_path / "out"
    previous = _previous_run(out, "broken")
    assert cli.main(["run", "broken", "--profile", "smoke", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "failed in cell" in err and "deliberate failure" in err
    assert (out / "broken.failed.ipynb").exists()  # the failed notebook stays visible
    (out / "broken.failed.ipynb").unlink()
    assert _snapshot(out) == previous  # nothing of the failed run mixed into the last good one


def test_progress_goes_to_the_terminal_not_into_the_book(tmp_path, monkeypatch, capfd):
    source = tmp_path / "progress.md"
    source.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Progress\n\n"
        "```{code-cell} ipython3\n:tags: [parameters]\n\nprofile = 'quick'\nout_dir = '.'\n```\n\n"
        "```{code-cell} ipython3\nfrom tqdm import tqdm\nimport time, warnings\n"
        "from xaistudy.chapters import report\nreport.show_progress()\n"
        "for i in tqdm(range(3), desc='maps', mininterval=0):\n"
        "    for j in tqdm(range(4), desc='inner', leave=False, mininterval=0):\n"
        "        time.sleep(0.02)\n"
        "warnings.warn('a library notice')\n"
        "print('a result')\n```\n"
    )
    chapter = runner.Chapter("progress", "Progress", DataParams, source=source)
    monkeypatch.setattr(runner, "get_chapter", lambda name: chapter)

    out = runner.run_chapter("progress", "smoke", out=tmp_path / "out")
    # off a terminal (pytest's stderr is a file): a quiet log, one line per finished stage
    # and the warning, no bar redrawn and no inner bar
    log = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  [progress]")]
    assert log[0].startswith("  [progress] maps: 3/3 in 00:0"), log
    assert "UserWarning: a library notice" in log[1], log  # the warning, and its source line
    assert len(log) == 3 and not any("inner" in line for line in log), log
    assert not list(tmp_path.glob("**/.stages.log"))  # the relayed file is gone
    # kept out of the book, its last state kept beside it (a terminal shows it live: the
    # pseudo-terminal test below)
    assert "maps: 100%" in (out / "progress.stderr.txt").read_text()
    nb = nbformat.read(out / "progress.ipynb", as_version=4)
    streams = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream"]
    assert [o.name for o in streams] == ["stdout"] and "a result" in streams[0].text
    kept = (out / "progress.stderr.txt").read_text()
    assert "maps: 100%" in kept and "\r" not in kept  # the bar's last state, for the record


def _previous_run(out: Path, name: str) -> dict[str, bytes]:
    """A fake output of an earlier run in ``out``; returns its snapshot."""
    for sub in ("tables", "figures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / f"{name}.ipynb").write_text("last good run")
    (out / "tables" / "class_balance.csv").write_text("old,table\n1,2\n")
    (out / "tables" / "old_only.csv").write_text("x\n1\n")
    (out / "figures" / "he_gallery.png").write_bytes(b"old figure")
    return _snapshot(out)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _start_run(out: Path, cache: Path) -> subprocess.Popen:
    """The data chapter (smoke) in a subprocess of its own session, as a terminal runs it."""
    env = {**os.environ, "XAISTUDY_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    # larger statistics sets: the run still has seconds of work left after its first figure,
    # so a signal sent then lands in the run, not after it (which made this test flaky)
    sizes = ["-p", "n_stats", "400", "-p", "n_stats_per_grade", "40"]
    argv = ["run", "data", "--profile", "smoke", "-p", "threads", "1", *sizes, "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-m", "xaistudy.app.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as from a terminal: Ctrl-C acts even when this test process ignores SIGINT (a child
        # inherits an ignored SIGINT, and then Python never raises KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_until_writing(out: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    """Wait until the run has written a figure into its staging folder; return that folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for staging in out.glob(f"{runner.STAGING_PREFIX}data-*"):
            if any((staging / "figures").glob("*.png")):
                return staging
        time.sleep(0.2)
    raise AssertionError("the run wrote nothing in time")


def test_a_killed_rerun_leaves_the_previous_output_intact(tmp_path):
    out = tmp_path / "out"
    previous = _previous_run(out, "data")
    proc = _start_run(out, tmp_path / "cache")
    staging = _wait_until_writing(out, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith(".")} == previous
    # the next run clears what the killed one left (its process is gone)
    fresh = runner._new_staging(out, "data")
    assert not staging.exists() and fresh.exists()
    shutil.rmtree(fresh)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_ctrl_c_stops_with_one_line_exit_130_and_the_previous_output(tmp_path):
    out = tmp_path / "out"
    previous = _previous_run(out, "data")
    proc = _start_run(out, tmp_path / "cache")
    _wait_until_writing(out, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    assert _snapshot(out) == previous  # no staging folder left, nothing swapped in


def test_smoke_book_builds_html_with_figures_and_no_errors(smoke_book):
    root = smoke_book  # built once per session (tests/conftest.py), also read by the browser
    index = root / "_build" / "html" / "index.html"
    assert index.exists()
    html = (root / "_build" / "html" / "book" / "chapters" / "data" / "data.html").read_text()
    assert html.count("<img") >= len(DATA_FIGURES)
    assert "output traceback" not in html and "Traceback (most recent" not in html
    images = list((root / "_build" / "html" / "_images").glob("*.png"))
    assert len(images) >= len(DATA_FIGURES)
    assert "book/intro.html" in index.read_text()  # the index redirects to the introduction
    intro = (root / "_build" / "html" / "book" / "intro.html").read_text()
    assert "chapters/data/data.html" in intro  # the chapter is in the navigation
    assert (root / ".pytest_cache" / "README.md").exists()  # beside the book as in a checkout
    machine = [str(root), str(ROOT), str(root.parent), f"{Path.home()}/", sys.prefix]
    assert offline_problems(root / "_build" / "html", machine) == []
    # the parameters collapsed under one line: profile, seeds, data
    assert "Parameters: smoke profile · seeds 0 (" in html and "in all; click to show" in html
    # the synthesis read the chapters beside it (not the checkout's book/chapters)
    pages = root / "_build" / "html" / "book" / "chapters"
    synthesis = (pages / "synthesis" / "synthesis.html").read_text()
    assert "No chapter has been run yet" not in synthesis
    paper_chapters = [n for n in runner.chapters() if n not in ("synthesis", "data")]
    assert all(f"<summary>{n} — " in synthesis for n in paper_chapters), synthesis[:2000]
    # every exercise's answer key is shown (kept in the repository), collapsed
    ibo = (pages / "ibo" / "ibo.html").read_text()
    assert "Not computed" not in ibo and "What you should see</summary><p>" in ibo


def test_every_chapters_claims_have_the_columns_and_can_fail(smoke_outputs):
    """Every paper chapter's claims.csv at smoke: the columns of the claims table, only the
    five verdicts, and no definite verdict that one of its controls reaches alone."""
    import pandas as pd

    from xaistudy.stats import claims as claims_mod

    chapters = [n for n in runner.chapters() if n != "synthesis"]
    for name in chapters:
        table = pd.read_csv(smoke_outputs(name) / "tables" / "claims.csv", keep_default_na=False)
        assert list(table.columns) == list(claims_mod.COLUMNS), name
        assert set(table["verdict"]) <= set(claims_mod.VERDICTS), name
        for _, row in table.iterrows():
            if row["verdict"] not in (claims_mod.REPRODUCED, claims_mod.CONTRADICTED):
                continue
            alone = [v.split(": ")[-1] for v in str(row["control_verdict"]).split("; ") if v]
            assert row["verdict"] not in alone, (name, row["claim_id"], row["control_verdict"])
            assert row["controls"], (name, row["claim_id"])  # a control, or why none applies


REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]*\"", re.I)
STDOUT = re.compile(r'class="output stream[^"]*"[^>]*>(.*?)</div>', re.S)


def offline_problems(html_dir: Path, machine_paths: list[str]) -> list[str]:
    """What keeps a built book from reading offline on another machine, one line each: remote
    scripts or styles, thebe's script, formulas without the local MathJax, a path of the
    building machine, a page built from a cache folder, a library warning in an output."""
    problems = []
    mathjax = html_dir / "_static" / "mathjax" / "tex-chtml.js"
    for page in sorted(html_dir.rglob("*.html")):
        name = str(page.relative_to(html_dir))
        text = page.read_text(errors="replace")
        problems += [f"{name}: remote {m}" for m in REMOTE.findall(text)]
        if "THEBE_JS_URL" in text:
            problems.append(f"{name}: thebe script")
        if 'class="math' in text and "_static/mathjax/tex-chtml.js" not in text:
            problems.append(f"{name}: formulas without the local MathJax")
        if 'class="math' in text and not mathjax.exists():
            problems.append(f"{name}: {mathjax} missing")
        for output in STDOUT.findall(text):
            if re.search(r"\w+Warning\b|\bwarn(?:ing)?:|is ignored in", output, re.I):
                problems.append(f"{name}: warning in an output: {output[:120]!r}")
    for path in sorted(html_dir.rglob("*")):
        name = str(path.relative_to(html_dir))
        if ".pytest_cache" in name or ".ruff_cache" in name:
            problems.append(f"{name}: a cache folder became a page")
        if path.is_file() and path.suffix in (".html", ".ipynb", ".md", ".txt", ".js"):
            text = path.read_text(errors="replace")
            problems += [f"{name}: path {p}" for p in machine_paths if p in text]
    return problems


def _read_pty(master: int, pattern: bytes, seconds: float) -> tuple[bytes, float | None]:
    """What the pseudo-terminal shows until ``pattern`` appears (and when, in seconds)."""
    import select

    start, shown = time.perf_counter(), b""
    while time.perf_counter() - start < seconds:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                shown += os.read(master, 65536)
            except OSError:  # the command ended
                break
            if re.search(pattern, shown):
                return shown, time.perf_counter() - start
    return shown, None


def test_a_run_on_a_terminal_shows_live_progress_bars_and_no_widget_advice(tmp_path):
    """``xaistudy run`` in a pseudo-terminal (100 columns): the cell bar moves first, then the
    chapter's own bars (the kernel copies its stderr to the terminal), and no advice to
    install ipywidgets; Ctrl-C then stops it."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**os.environ, "XAISTUDY_CACHE": str(tmp_path / "cache")}
    exe = Path(sys.executable).with_name("xaistudy")
    argv = [str(exe), "run", "data", "--profile", "smoke", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)  # fmt: skip
    os.close(slave)
    try:
        # the start-up bar moves from the first seconds (imports, parameters, kernel start)
        started = time.monotonic()
        early, moved = _read_pty(master, rb"data: loading the chapter: 1/4 steps", 60)
        assert moved is not None, early[-800:]
        print(f"start-up bar moved after {time.monotonic() - started:.1f} s")
        cells, first = _read_pty(master, rb"Executing: +\d+%\|", 60)
        assert first is not None, cells[-800:]
        cells = early + cells
        chapter, second = _read_pty(master, rb"data: seeds: +\d+%\|", 120)
        assert second is not None, (cells + chapter)[-800:]
        assert b"IProgress" not in cells + chapter and b"ipywidgets" not in cells + chapter
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
        os.close(master)
