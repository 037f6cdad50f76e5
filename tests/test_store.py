"""The artifact store: keys (parameters, code, libraries), atomic writes, caching, resume after
a crash, and corrupt files recomputed."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xaistudy.core import store as store_mod
from xaistudy.core.store import (
    Store,
    atomic_write,
    atomic_write_bytes,
    params_key,
    source_fingerprint,
)


def test_key_depends_on_params_and_kind_not_on_order():
    assert params_key("a", {"x": 1, "y": 2}) == params_key("a", {"y": 2, "x": 1})
    assert params_key("a", {"x": 1}) != params_key("a", {"x": 2})
    assert params_key("a", {"x": 1}) != params_key("b", {"x": 1})


def test_atomic_write_keeps_old_file_when_writer_crashes(tmp_path):
    path = tmp_path / "table.csv"
    atomic_write_bytes(path, b"old")

    def crash(tmp):
        tmp.write_bytes(b"half-writ")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temp file left


def test_state_roundtrip_uses_weights_only(tmp_path, monkeypatch):
    store = Store(tmp_path)
    model = torch.nn.Linear(3, 2)
    store.save_state("model", {"lr": 1e-3}, {"model": model.state_dict(), "epoch": 4})
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    state = store.load_state("model", {"lr": 1e-3})
    assert calls == [True]
    assert state["epoch"] == 4
    assert torch.equal(state["model"]["weight"], model.weight)
    assert store.load_state("model", {"lr": 1e-2}) is None


def test_cached_arrays_and_table_compute_once(tmp_path):
    store = Store(tmp_path)
    counter = {"n": 0}

    def compute():
        counter["n"] += 1
        return {"a": np.arange(5)}

    first = store.cached_arrays("arr", {"k": 1}, compute)
    second = store.cached_arrays("arr", {"k": 1}, compute)
    assert counter["n"] == 1 and np.array_equal(first["a"], second["a"])
    store.cached_arrays("arr", {"k": 2}, compute)
    assert counter["n"] == 2

    table = store.cached_table("tab", {}, lambda: pd.DataFrame({"x": [1, 2]}))
    again = store.cached_table("tab", {}, lambda: pd.DataFrame({"x": [9, 9]}))
    assert again["x"].tolist() == table["x"].tolist() == [1, 2]


def test_cached_items_resume_after_simulated_crash(tmp_path):
    store = Store(tmp_path)
    done = []

    def compute(i, crash_at=None):
        if i == crash_at:
            raise RuntimeError("killed")
        done.append(i)
        return {"value": np.full(3, i)}

    with pytest.raises(RuntimeError):
        store.cached_items("heat", {"m": "gradcam"}, range(6), lambda i: compute(i, crash_at=3))
    assert done == [0, 1, 2]
    done.clear()
    out = store.cached_items("heat", {"m": "gradcam"}, range(6), compute)
    assert done == [3, 4, 5]  # items 0-2 came from the store
    assert [int(o["value"][0]) for o in out] == list(range(6))
    folder = store.path("heat", {"m": "gradcam"}, ".items")
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XAISTUDY_CACHE", str(tmp_path / "c"))
    assert Store().root == tmp_path / "c"


def test_written_files_get_ordinary_permissions(tmp_path):
    path = atomic_write_bytes(tmp_path / "figure.png", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# -- keys follow the code and the libraries ------------------------------------------------


def test_an_edit_to_a_dependency_module_changes_the_fingerprint(tmp_path):
    package = tmp_path / "xaistudy"
    shutil.copytree(
        Path(store_mod.__file__).parent.parent,
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    before = source_fingerprint(package)
    assert source_fingerprint(package) == before  # stable
    relevance = package / "explain" / "relevance.py"
    relevance.write_text(relevance.read_text() + "\n# an edit\n")
    assert source_fingerprint(package) != before
    (package / "explain" / "__pycache__").mkdir(exist_ok=True)
    edited = source_fingerprint(package)
    (package / "explain" / "__pycache__" / "x.py").write_text("ignored")
    assert source_fingerprint(package) == edited  # compiled caches do not count


def test_keys_change_with_the_code_and_the_library_versions(monkeypatch):
    key = params_key("maps", {"method": "gradcam"})
    monkeypatch.setattr(store_mod, "source_fingerprint", lambda _: "edited source")
    store_mod.code_version.cache_clear()
    try:
        edited = params_key("maps", {"method": "gradcam"})
        assert edited != key
        real = store_mod.library_versions()
        assert {"torch", "grad-cam", "zennit", "captum", "lime", "diffusers"} <= set(real)
        monkeypatch.setattr(store_mod, "library_versions", lambda: {**real, "grad-cam": "99.0"})
        store_mod.code_version.cache_clear()
        assert params_key("maps", {"method": "gradcam"}) not in (key, edited)
    finally:
        monkeypatch.undo()
        store_mod.code_version.cache_clear()
    assert params_key("maps", {"method": "gradcam"}) == key


# -- corrupt artifacts are named, moved aside and recomputed ---------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _one_warning_naming(caplog, path: Path) -> None:
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert str(path) in message and "\n" not in message and path.name + ".corrupt" in message
    assert path.with_name(path.name + ".corrupt").exists()


def _write_and_truncate(store, kind, write):
    write()
    path = next(p for p in (store.root / kind).iterdir() if not p.name.endswith(".sha256"))
    _truncate(path)
    return path


@pytest.mark.parametrize("suffix", [".npz", ".pt", ".json", ".csv"])
def test_a_truncated_artifact_is_recomputed_with_one_warning(tmp_path, caplog, suffix):
    store = Store(tmp_path)
    calls = []

    def compute_arrays():
        calls.append(1)
        return {"a": np.arange(1000)}

    def compute_table():
        calls.append(1)
        return pd.DataFrame({"x": range(200)})

    write, read = {
        ".npz": (
            lambda: store.cached_arrays("k", {}, compute_arrays),
            lambda: store.cached_arrays("k", {}, compute_arrays)["a"].sum(),
        ),
        ".pt": (
            lambda: store.save_state("k", {}, {"w": torch.arange(1000.0)}),
            lambda: store.load_state("k", {}),
        ),
        ".json": (
            lambda: store.save_json("k", {}, {"values": list(range(200))}),
            lambda: store.load_json("k", {}),
        ),
        ".csv": (
            lambda: store.cached_table("k", {}, compute_table),
            lambda: store.cached_table("k", {}, compute_table)["x"].sum(),
        ),
    }[suffix]
    path = _write_and_truncate(store, "k", write)
    assert path.suffix == suffix
    with caplog.at_level("WARNING", logger="xaistudy.core.store"):
        got = read()
    _one_warning_naming(caplog, path)
    if suffix in (".pt", ".json"):
        assert got is None  # absent: the caller recomputes
    else:
        assert got == {".npz": 499500, ".csv": 19900}[suffix] and len(calls) == 2
        assert path.exists()  # recomputed and stored again
    caplog.clear()
    with caplog.at_level("WARNING", logger="xaistudy.core.store"):
        read()
    assert not caplog.records  # the new file is good


def test_a_truncated_item_is_recomputed_and_the_others_kept(tmp_path, caplog):
    store = Store(tmp_path)
    done = []

    def compute(i):
        done.append(i)
        return {"value": np.full(500, i)}

    store.cached_items("heat", {}, range(4), compute)
    item = store.path("heat", {}, ".items") / "2.npz"
    _truncate(item)
    done.clear()
    with caplog.at_level("WARNING", logger="xaistudy.core.store"):
        out = store.cached_items("heat", {}, range(4), compute)
    assert done == [2]
    assert [int(o["value"][0]) for o in out] == [0, 1, 2, 3]
    _one_warning_naming(caplog, item)


def test_a_file_without_checksum_is_judged_by_loading_it(tmp_path, caplog):
    """Checkpoints written with atomic_write_bytes carry no checksum; a truncated one still
    fails to load and is moved aside (not a PytorchStreamReader traceback)."""
    store = Store(tmp_path)
    path = store.path("train", {"lr": 1}, ".ckpt.pt")
    buf = io.BytesIO()
    torch.save({"epoch": 3, "w": torch.zeros(1000)}, buf)
    atomic_write_bytes(path, buf.getvalue())
    assert store.load_state("train", {"lr": 1}, ".ckpt.pt")["epoch"] == 3
    _truncate(path)
    with caplog.at_level("WARNING", logger="xaistudy.core.store"):
        assert store.load_state("train", {"lr": 1}, ".ckpt.pt") is None
    _one_warning_naming(caplog, path)
    assert not path.exists()


def _clear_code_caches() -> None:
    for cached in (store_mod._modules, store_mod.import_closure, store_mod.code_version):
        cached.cache_clear()


def test_a_stage_key_follows_only_the_code_its_study_runs(tmp_path, monkeypatch):
    """Edit a plot or a page: no study's key moves. Edit a training function: exactly the
    studies that run it get new keys."""
    root = tmp_path / "xaistudy"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/store.py": "def put(): pass\n",
        "models/__init__.py": "",
        "models/train.py": "from xaistudy.core import store\ndef fit(): pass\n",
        "models/unet.py": "def build(): pass\n",
        "viz/__init__.py": "",
        "viz/plots.py": "def plot(): pass\n",
        "studies/__init__.py": "",
        "studies/a.py": "def run():\n    from xaistudy.models import train\n",
        "studies/b.py": "from xaistudy.models.unet import build\n",
        "chapters/__init__.py": "",
        "chapters/a.py": "from xaistudy.viz import plots\nfrom xaistudy.studies import a\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(store_mod, "PACKAGE_DIR", root)
    _clear_code_caches()
    try:
        assert "xaistudy.models.train" in store_mod.import_closure("xaistudy.studies.a")
        assert "xaistudy.viz.plots" not in store_mod.import_closure("xaistudy.studies.a")
        before = {s: store_mod.code_version(f"xaistudy.studies.{s}") for s in "ab"}

        def edit(name: str) -> dict[str, str]:
            (root / name).write_text((root / name).read_text() + "# an edit\n")
            _clear_code_caches()
            return {s: store_mod.code_version(f"xaistudy.studies.{s}") for s in "ab"}

        assert edit("viz/plots.py") == before  # a plot: nothing recomputes
        assert edit("chapters/a.py") == before  # a page: nothing recomputes
        after = edit("models/train.py")  # a training function: only study a recomputes
        assert after["a"] != before["a"] and after["b"] == before["b"]
        again = edit("core/store.py")  # what fit imports: study a again, still not b
        assert again["a"] != after["a"] and again["b"] == before["b"]
    finally:
        monkeypatch.undo()
        _clear_code_caches()


def test_the_stage_code_is_the_innermost_study_on_the_stack(tmp_path):
    assert store_mod.calling_module() is None  # a test: the whole package counts
    outer = {"__name__": "xaistudy.studies.outer"}
    inner = {"__name__": "xaistudy.studies.inner", "store_mod": store_mod}
    exec("def where():\n    return store_mod.calling_module()\n", inner)
    outer["where"] = inner["where"]
    exec("def run():\n    return where()\n", outer)
    assert outer["run"]() == "xaistudy.studies.inner"
    path = Store(tmp_path).path("maps", {"x": 1}, ".npz")
    assert path.stem == params_key("maps", {"x": 1})  # no study: the package's version


def test_the_repo_root_is_the_checkout():
    root = store_mod.repo_root()
    assert (root / "pyproject.toml").is_file() and (root / "xaistudy" / "core").is_dir()
    assert store_mod.default_out("ibo") == root / "book" / "chapters" / "ibo"
