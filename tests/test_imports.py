"""Every module of the package imports on its own: no import circle, whatever is imported first.

Each module is imported in its own process, in which no ``xaistudy`` module was loaded before
(a forked child of one interpreter that holds only the third-party libraries, so the check takes
seconds instead of one cold torch import per module). A module that only imports when another
one was imported first fails here with its traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import xaistudy

#: imports ``argv[1]``'s modules once (loading the third-party libraries), forgets every module
#: of the packages ``argv[2]``, then imports each module in a forked child with none of them
#: loaded; prints {module: {"error": traceback or "", "loaded": the package modules it loaded}}
ISOLATED_IMPORTS = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback

    names, package = json.loads(sys.argv[1]), sys.argv[2]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            pass

    def ours(key):
        return key == package or key.startswith(package + ".")

    for key in [k for k in sys.modules if ours(k)]:
        del sys.modules[key]
    report = {}
    for name in names:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(name)
                error = ""
            except BaseException:
                error = traceback.format_exc()
            loaded = sorted(k for k in sys.modules if ours(k))
            os.write(write, json.dumps({"error": error, "loaded": loaded}).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            report[name] = json.loads(pipe.read())
        os.waitpid(pid, 0)
    print(json.dumps(report))
    """
)


def module_names(root: Path, package: str) -> list[str]:
    """Every module of the package in folder ``root`` (``__init__`` as the package's name)."""
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_each(names: list[str], package: str, pythonpath: str | None = None) -> dict:
    """Run :data:`ISOLATED_IMPORTS` in a fresh interpreter; its report per module."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [sys.executable, "-c", ISOLATED_IMPORTS, json.dumps(names), package],
        capture_output=True,
        text=True,
        env=env,
        cwd=pythonpath,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_first():
    root = Path(xaistudy.__file__).parent
    names = module_names(root, "xaistudy")
    assert {"xaistudy.data.folders", "xaistudy.data.registry", "xaistudy.explain"} <= set(names)
    report = import_each(names, "xaistudy")
    failed = {name: r["error"] for name, r in report.items() if r["error"]}
    assert not failed, "\n".join(f"{n}:\n{e}" for n, e in failed.items())
    # the registry imports no loader; the dataset lookup imports the loaders when asked only
    loaders = {f"xaistudy.data.{m}" for m in ("camelyon16", "coco", "folders", "pannuke")}
    assert not loaders & set(report["xaistudy.data.registry"]["loaded"])
    assert not loaders & set(report["xaistudy.data.datasets"]["loaded"])


def test_an_import_circle_is_caught(tmp_path):
    package = tmp_path / "circle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circle.b import B\nA = 1\n")
    (package / "b.py").write_text("from circle.a import A\nB = 2\n")
    (package / "c.py").write_text("C = 3\n")
    names = module_names(package, "circle")
    assert names == ["circle", "circle.a", "circle.b", "circle.c"]
    report = import_each(names, "circle", pythonpath=str(tmp_path))
    assert "circular import" in report["circle.a"]["error"]
    assert "circular import" in report["circle.b"]["error"]
    assert report["circle.c"] == {"error": "", "loaded": ["circle", "circle.c"]}
