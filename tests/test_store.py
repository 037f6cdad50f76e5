"""The artifact store: keys, atomic writes, caching and resume after a crash."""

import os

import numpy as np
import pandas as pd
import pytest
import torch

from xaistudy.store import Store, atomic_write, atomic_write_bytes, params_key


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
