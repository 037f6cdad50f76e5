"""Test-wide settings: the artifact cache of a test session lives in a temporary folder.

Set before any test runs, so chapter runs (and their notebook kernels, which inherit the
environment) never read or write the checkout's ``data/cache``.
"""

import os
import tempfile

_cache = tempfile.TemporaryDirectory(prefix="xaistudy-test-cache-")
os.environ["XAISTUDY_CACHE"] = _cache.name

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_outputs(tmp_path_factory):
    """``smoke_outputs(name)``: the folder of chapter ``name`` run once per test session with
    the smoke profile through the command line, shared by the chapter's tests, the exercises
    and the smoke book (a chapter's notebook runs once, not once per test)."""
    from xaistudy.app import cli

    done: dict[str, object] = {}

    def get(name: str):
        if name not in done:
            out = tmp_path_factory.mktemp(f"smoke-{name}") / name
            assert cli.main(["run", name, "--profile", "smoke", "--out", str(out)]) == 0
            done[name] = out
        return done[name]

    return get
