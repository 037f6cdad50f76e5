"""Runs a user can trust: the same tables whatever the machine's thread settings, and a run
started from any folder with relative paths."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMOKE_ENV_THREADS

from xaistudy.core import runtime

pytestmark = pytest.mark.slow

#: tables that measure wall-clock time (they differ between any two runs)
TIMING_TABLES = {"generation_speed"}


def _run_from(folder: Path, chapter: str, omp_threads: int, tag: str) -> Path:
    """Run ``chapter`` (smoke, threads=2) from ``folder`` with a relative output folder and a
    relative cache of its own, under ``OMP_NUM_THREADS=omp_threads``; return the output."""
    env = {**os.environ, "OMP_NUM_THREADS": str(omp_threads), "XAISTUDY_CACHE": f"cache-{tag}"}
    argv = ["run", chapter, "--profile", "smoke", "-p", "threads", "2", "--out", f"out-{tag}"]
    result = subprocess.run(
        [sys.executable, "-m", "xaistudy.app.cli", *argv],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return folder / f"out-{tag}"


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    """Every table of a run, without timing tables and columns of seconds."""
    tables = {}
    for path in sorted((out / "tables").glob("*.csv")):
        if path.stem in TIMING_TABLES:
            continue
        table = pd.read_csv(path)
        tables[path.stem] = table.drop(columns=[c for c in table if "second" in c.lower()])
    return tables


@pytest.mark.parametrize("chapter", ["thesis_metrics"])  # data, models, maps and claims
def test_tables_do_not_depend_on_the_environments_thread_count(tmp_path, chapter, smoke_outputs):
    """A run started under OMP_NUM_THREADS=1 (from another folder, relative paths, a cache of
    its own) against the session's smoke run, started under OMP_NUM_THREADS=2."""
    assert SMOKE_ENV_THREADS != "1"
    one, two = _run_from(tmp_path, chapter, 1, "omp1"), smoke_outputs(chapter)
    a, b = _tables(one), _tables(two)
    assert a.keys() == b.keys() and len(a) >= 4
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    # the kernel really used the chapter's threads, not OMP_NUM_THREADS
    for out in (one, two):
        record = pd.read_csv(out / "tables" / "run_record.csv").set_index("setting")["value"]
        assert record["threads"] == "2"
    # relative paths were resolved against the caller's folder: cache and output are here
    assert (tmp_path / "out-omp1" / f"{chapter}.ipynb").exists()
    if chapter == "thesis_metrics":  # the data chapter caches nothing
        assert any((tmp_path / "cache-omp1").rglob("*.pt"))
    assert not list(tmp_path.glob("out-*/.staging-*"))


def test_fix_threads_sets_torch_and_reports_what_it_set():
    import torch

    before = torch.get_num_threads()
    try:
        record = runtime.fix_threads(1)
        assert record["threads"] == torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(False)


def test_deterministic_kernels_are_set_without_loading_the_compiler():
    """fix_threads turns torch's deterministic algorithms on (warn-only) in a fresh process
    without importing torch._inductor (torch's own setter loads it: ~2 s per process); once
    the compiler is loaded, the flag reaches its config too."""
    code = (
        "import sys, torch\n"
        "from xaistudy.core.runtime import fix_threads, set_deterministic_algorithms\n"
        "fix_threads(1)\n"
        "print(torch.are_deterministic_algorithms_enabled(),\n"
        "      torch.is_deterministic_algorithms_warn_only_enabled(),\n"
        "      'torch._inductor' in sys.modules)\n"
        "import torch._inductor.config as c\n"
        "set_deterministic_algorithms(False); print(c.deterministic)\n"
        "set_deterministic_algorithms(True); print(c.deterministic)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "False", "False", "True"]


def test_libraries_loaded_after_fix_threads_use_the_same_threads():
    """scipy's and scikit-learn's BLAS/OpenMP pools (loaded by LIME, after the chapter fixed
    its threads) must not keep the size the caller's environment asked for."""
    code = (
        "from xaistudy.core.runtime import fix_threads; fix_threads(2)\n"
        "import scipy.linalg, sklearn.linear_model\n"
        "from threadpoolctl import threadpool_info\n"
        "print(sorted({p['num_threads'] for p in threadpool_info()}))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[2]"
