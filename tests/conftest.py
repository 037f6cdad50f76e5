"""Test-wide settings: the artifact cache of a test session lives in a temporary folder.

Set before any test runs, so chapter runs (and their notebook kernels, which inherit the
environment) never read or write the checkout's ``data/cache``. Under pytest-xdist the
controlling process makes the folder before it starts its workers, which inherit it: the
workers share one cache and one set of smoke runs (a stage or a chapter's notebook is computed
once per session, whichever worker needs it first, the others wait for it).
"""

import os
import shutil
import tempfile
from pathlib import Path

if "XAISTUDY_TEST_SESSION" not in os.environ:  # the controller, or a run without workers
    _session = tempfile.TemporaryDirectory(prefix="xaistudy-test-")
    os.environ["XAISTUDY_TEST_SESSION"] = _session.name
    # workers share the cores: a thread waiting for work sleeps instead of spinning (the
    # numbers do not change; each run still uses the threads its parameters name)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SESSION = Path(os.environ["XAISTUDY_TEST_SESSION"])
os.environ["XAISTUDY_CACHE"] = str(SESSION / "cache")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_outputs():
    """``smoke_outputs(name)``: the folder of chapter ``name`` run once per test session with
    the smoke profile through the command line, shared by the chapter's tests, the exercises
    and the smoke book (a chapter's notebook runs once, not once per test or per worker)."""
    from filelock import FileLock

    from xaistudy.app import cli

    def get(name: str) -> Path:
        out = SESSION / "smoke" / name
        done = out.parent / f"{name}.done"
        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out.parent / f"{name}.lock")):
            if not done.exists():
                assert cli.main(["run", name, "--profile", "smoke", "--out", str(out)]) == 0
                done.touch()
        return out

    return get


@pytest.fixture(scope="session")
def smoke_book(smoke_outputs):
    """The root of the smoke-profile book, built once per test session from the session's smoke
    runs (its HTML in ``_build/html``), shared by the build test and the browser test: the
    first worker that needs it builds it under a file lock, the others wait for it."""
    from filelock import FileLock

    from xaistudy.app import runner
    from xaistudy.core.store import repo_root

    root = SESSION / "smoke-book"
    done = SESSION / "smoke-book.done"
    with FileLock(str(SESSION / "smoke-book.lock")):
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # what an interrupted build left
            checkout = repo_root()
            root.mkdir()
            shutil.copy(checkout / "_config.yml", root)
            ignore = shutil.ignore_patterns("chapters")
            shutil.copytree(checkout / "book", root / "book", ignore=ignore)
            (root / "data").mkdir()
            shutil.copy(checkout / "data" / "README.md", root / "data")
            (root / ".pytest_cache").mkdir()  # as a checkout has one: it must not become a page
            (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
            for name in runner.chapters():
                if name == "synthesis":  # reads the other chapters' claims beside it
                    runner.run_chapter(name, "smoke", out=root / "book" / "chapters" / name)
                else:
                    shutil.copytree(smoke_outputs(name), root / "book" / "chapters" / name)
            runner.build_html(root)
            done.touch()
    return root
