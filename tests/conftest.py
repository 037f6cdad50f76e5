"""Test-wide settings: the artifact cache of a test session lives in a temporary folder.

Set before any test runs, so chapter runs (and their notebook kernels, which inherit the
environment) never read or write the checkout's ``data/cache``. Under pytest-xdist the
controlling process makes the folder before it starts its workers, which inherit it: the
workers share one cache and one set of smoke runs (a stage or a chapter's notebook is computed
once per session, whichever worker needs it first, the others wait for it).

The order of the tests is a schedule (``make test`` hands them out one at a time, in this order,
to whichever worker is free: ``--dist load --maxschedchunk 1``): the smoke book first, its
browser check right behind it on the same worker; then the long tests that share nothing with
it, longest first, while that worker builds the book; then the tests that read the smoke runs
or their cache (ready by then, so nobody waits); the quick tests last, to fill the end.
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

#: tests that start the session: the smoke book, then its browser check (queued on the same
#: worker: a test that waits for the book holds a worker idle)
FIRST = (
    "tests/test_runner_book.py::test_smoke_book_builds_html_with_figures_and_no_errors",
    "tests/test_browser.py::test_every_page_of_the_smoke_book_reads_in_a_browser",
)
#: slow tests that use neither the smoke runs nor the session's cache, longest first (their
#: seconds on the 2-core machine: benchmarks/results/test_times_cpu_2core.json)
LONG_ALONE = (
    "tests/test_paper_profiles.py::test_saliency_tour_paper_profile",
    "tests/test_paper_profiles.py::test_ibo_paper_profile",
    "tests/test_paper_profiles.py::test_xrelevancecam_paper_profile",
    "tests/test_distributed.py::test_two_cpu_processes",
    "tests/test_paper_profiles.py::test_segmentation_xai_paper_profile",
    "tests/test_runner_book.py::test_a_run_on_a_terminal",
    "tests/test_paper_profiles.py::",
    "tests/test_imports.py::",
    "tests/test_runner_book.py::test_ctrl_c",
    "tests/test_runner_book.py::test_a_killed_rerun",
    "tests/test_verdicts.py::test_the_interval_keeps_its_coverage",
)
#: fixtures that read the session's smoke runs (built by the first tests)
SMOKE_FIXTURES = {"smoke_outputs", "smoke_book"}
#: tests that ask for the smoke book at run time (``request.getfixturevalue``)
READS_THE_BOOK = "tests/test_browser.py::"


def _place(item: pytest.Item) -> tuple[int, int]:
    """Where a test goes in the session's schedule: (group, rank within the group)."""
    node = item.nodeid
    for group, prefixes in ((0, FIRST), (1, LONG_ALONE)):
        for rank, prefix in enumerate(prefixes):
            if node.startswith(prefix):
                return group, rank
    slow = item.get_closest_marker("slow") is not None
    reads_smoke = not SMOKE_FIXTURES.isdisjoint(item.fixturenames) or node.startswith(
        READS_THE_BOOK
    )
    if slow and not reads_smoke:
        return 2, 0  # a slow test that computes in the session's cache
    return (3, 0) if slow else (4, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests as the module docstring says (a stable sort: each group keeps the order
    of the files within it; every worker collects the same order)."""
    items.sort(key=_place)


#: the environment's thread count the smoke runs' kernels start under (each run then sets the
#: threads its parameters name; tests/test_reproducibility.py compares a run started under 1)
SMOKE_ENV_THREADS = "2"


@pytest.fixture(scope="session")
def smoke_outputs():
    """``smoke_outputs(name)``: the folder of chapter ``name`` run once per test session with
    the smoke profile through the command line, shared by the chapter's tests, the exercises
    and the smoke book (a chapter's notebook runs once, not once per test or per worker)."""
    from filelock import FileLock, Timeout

    from xaistudy.app import cli

    def get(name: str, wait: bool = True) -> Path | None:
        """The chapter's smoke run (run here if no worker has); ``wait=False``: None while
        another worker is running it."""
        out = SESSION / "smoke" / name
        done = out.parent / f"{name}.done"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(out.parent / f"{name}.lock"), timeout=-1 if wait else 0):
                if not done.exists():
                    with pytest.MonkeyPatch.context() as mp:  # a known start for the kernel
                        mp.setenv("OMP_NUM_THREADS", SMOKE_ENV_THREADS)
                        argv = ["run", name, "--profile", "smoke", "--out", str(out)]
                        assert cli.main(argv) == 0
                    done.touch()
        except Timeout:
            return None
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
            names = [n for n in runner.chapters() if n != "synthesis"]
            # the chapters no other worker is running first, then wait for the others
            for name in names:
                smoke_outputs(name, wait=False)
            for name in names:
                shutil.copytree(smoke_outputs(name), root / "book" / "chapters" / name)
            # the synthesis reads the other chapters' claims beside it
            runner.run_chapter("synthesis", "smoke", out=root / "book" / "chapters" / "synthesis")
            runner.build_html(root)
            done.touch()
    return root
