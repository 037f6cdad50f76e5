"""The package's layers: imports flow one way, with no circle, imports inside functions included.

``core ← stats ← data ← models ← explain ← evaluate ← viz ← studies ← chapters ← app``: a module
may import from its own layer and the layers to its left, never from one to its right. A chapter
package (``chapters/<name>/``) imports no other chapter; ``studies`` import no chapter (the
layering says so). Every ``import`` and ``from … import`` statement counts, wherever it stands
(module level, inside a function, under ``TYPE_CHECKING``), and so does a literal module name
given to ``importlib.import_module``. The graph is read from the source with :mod:`ast`, so a
circle that Python would resolve at run time (an import inside a function) is still caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import xaistudy

LAYERS = (
    "core",
    "stats",
    "data",
    "models",
    "explain",
    "evaluate",
    "viz",
    "studies",
    "chapters",
    "app",
)
#: modules of the chapters layer that every chapter may import (types and the page helpers)
CHAPTERS_SHARED = {"spec", "report", "__init__"}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, anywhere in the file.

    ``from package import name`` points at the submodule when ``name`` is one, else at the
    package's ``__init__``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {m for m in found if m in modules and m != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package modules it imports."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    return {
        name: imports_of(path, name, path.name == "__init__.py", modules)
        for name, path in files.items()
    }


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return len(LAYERS)  # xaistudy/__init__.py, __main__.py: above the app


def chapter_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "chapters" and parts[2] not in CHAPTERS_SHARED:
        return parts[2]
    return None


def violations(graph: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    out = {}
    for importer, targets in graph.items():
        for imported in targets:
            if layer_of(imported) > layer_of(importer):
                out[(importer, imported)] = "upward import"
            a, b = chapter_of(importer), chapter_of(imported)
            if a and b and a != b:
                out[(importer, imported)] = "one chapter imports another"
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


ROOT = Path(xaistudy.__file__).parent


def test_every_module_is_in_a_layer():
    stray = [
        m
        for m in import_graph(ROOT)
        if m.count(".") >= 1 and m.split(".")[1] not in LAYERS and m != "xaistudy.__main__"
    ]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


def test_imports_flow_one_way():
    found = violations(import_graph(ROOT))
    assert not found, "\n".join(f"{a} -> {b}: {why}" for (a, b), why in sorted(found.items()))


#: the longest a module may be, and a chapter's page module (``chapters/<name>/*.py``)
MAX_MODULE_LINES, MAX_CHAPTER_FILE_LINES = 500, 300


def test_modules_are_short():
    too_long = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        parts = rel.split("/")
        chapter_file = parts[0] == "chapters" and len(parts) == 3
        limit = MAX_CHAPTER_FILE_LINES if chapter_file else MAX_MODULE_LINES
        n = len(path.read_text().splitlines())
        if n > limit:
            too_long[rel] = n
    assert not too_long, (
        f"modules over {MAX_MODULE_LINES} lines (chapter files {MAX_CHAPTER_FILE_LINES}): "
        f"{too_long}"
    )


def test_no_import_circle():
    assert circles(import_graph(ROOT)) == []


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "xaistudy"
    for sub in ("core", "data", "chapters", "chapters/a", "chapters/b"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "x.py").write_text("def f():\n    from xaistudy.data import y\n")
    (root / "data" / "y.py").write_text("from xaistudy.core import x\n")
    (root / "chapters" / "a" / "claims.py").write_text(
        "import importlib\nm = importlib.import_module('xaistudy.chapters.b.claims')\n"
    )
    (root / "chapters" / "b" / "claims.py").write_text("from ..spec import T\n")
    (root / "chapters" / "spec.py").write_text("T = 1\n")
    return root


def test_the_checks_see_imports_inside_functions_and_by_name(toy: Path):
    graph = import_graph(toy)
    assert graph["xaistudy.core.x"] == {"xaistudy.data.y"}
    assert graph["xaistudy.chapters.b.claims"] == {"xaistudy.chapters.spec"}
    found = violations(graph)
    assert found[("xaistudy.core.x", "xaistudy.data.y")] == "upward import"
    assert found[("xaistudy.chapters.a.claims", "xaistudy.chapters.b.claims")] == (
        "one chapter imports another"
    )
    assert ("xaistudy.chapters.b.claims", "xaistudy.chapters.spec") not in found
    assert circles(graph) == [["xaistudy.core.x", "xaistudy.data.y"]]


#: a concept and the one module that implements it: no other module defines a function whose
#: name matches the pattern (a twin under the same or a near name)
ONE_IMPLEMENTATION = {
    r"seed_everything": "core/runtime.py",
    r".*kendall.*|tau_b": "stats/ranking.py",
    r"mard|rank_accuracy": "stats/ranking.py",
    r"bootstrap|bootstrap_(ci|many|draws|interval|distribution)|resamples|draw_plan": "stats/",
    r"predict_proba|.*tumour_probability|probability": "models/classify.py",
    r"train_classifier": "models/classify.py",
    r"standardise_channels": "models/transforms.py",
    r"occlude_levels|inpaint_levels": "evaluate/occlusion.py",
}
#: library functions only their home module may call: the rest of the package calls the home
CALLED_ONLY_FROM = {"kendalltau": "stats/ranking.py", "rankdata": "stats/ranking.py"}


def test_one_implementation_per_concept():
    import re

    defined: dict[str, list[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defined.setdefault(node.name, []).append(rel)
    twins = []
    for pattern, home in ONE_IMPLEMENTATION.items():
        for name, places in defined.items():
            if re.fullmatch(pattern, name):
                twins += [
                    f"{name} in {p} (its home: {home})" for p in places if p[: len(home)] != home
                ]
    assert not twins, "\n".join(twins)


def test_rank_statistics_come_from_their_one_home():
    calls = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if name in CALLED_ONLY_FROM and rel != CALLED_ONLY_FROM[name]:
                calls.append(f"{rel}:{node.lineno} uses {name} (use {CALLED_ONLY_FROM[name]})")
    assert not calls, "\n".join(calls)
