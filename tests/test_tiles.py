"""Tiles read on demand from uint8 storage equal the whole split converted at once."""

import numpy as np
import pytest
import torch

from xaistudy.data import tiles as tiles_mod
from xaistudy.data.tiles import Tiles, write_npy


@pytest.fixture
def storage():
    return np.random.default_rng(0).integers(0, 256, (7, 5, 4, 3), dtype=np.uint8)


def _whole(storage):
    return torch.from_numpy(storage).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize(
    "index",
    [3, -1, slice(1, 5), slice(None, None, 2), np.array([4, 0, 4, 2]), [6, 1],
     torch.tensor([2, 5]), np.arange(7) % 3 == 0, torch.arange(7) > 4],
)  # fmt: skip
def test_indexing_gives_the_converted_rows(storage, index):
    expected = _whole(storage)[torch.as_tensor(index) if isinstance(index, list) else index]
    torch.testing.assert_close(Tiles(storage)[index], expected, rtol=0, atol=0)


def test_a_subset_is_a_view_with_the_same_indexing(storage):
    view = Tiles(storage).subset(np.array([6, 2, 3, 0])).subset(slice(1, 4))
    assert view.shape == (3, 3, 5, 4) and len(view) == 3
    torch.testing.assert_close(view[:], _whole(storage)[[2, 3, 0]], rtol=0, atol=0)
    torch.testing.assert_close(view[1], _whole(storage)[3], rtol=0, atol=0)


def test_channel_mean_in_chunks_equals_the_whole_mean(storage, monkeypatch):
    monkeypatch.setattr(tiles_mod, "CHUNK", 3)  # 7 tiles: chunks of 3, 3, 1
    mean = Tiles(storage).channel_mean()
    np.testing.assert_allclose(mean, _whole(storage).double().mean(dim=(0, 2, 3)), rtol=1e-12)


def test_bad_storage_and_indices_are_refused(storage):
    with pytest.raises(ValueError, match=r"storage must be uint8 \(N, H, W, 3\)"):
        Tiles(storage.astype(np.float32))
    with pytest.raises(IndexError, match="tile 7 is out of range for 7 tiles"):
        Tiles(storage)[7]
    with pytest.raises(IndexError, match="boolean index of length 3 for 7 tiles"):
        Tiles(storage)[np.array([True, False, True])]


def test_write_npy_transforms_in_chunks_and_maps_the_file(storage, tmp_path):
    path = tmp_path / "tiles.npy"
    out = write_npy(path, storage, lambda a: 255 - a, chunk=2)
    assert isinstance(out, np.memmap) and not out.flags.writeable
    np.testing.assert_array_equal(out, 255 - storage)
    assert [p.name for p in tmp_path.iterdir()] == ["tiles.npy"]


def test_an_interrupted_write_leaves_no_file(storage, tmp_path):
    calls = []

    def failing(a):
        calls.append(len(a))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return a

    with pytest.raises(KeyboardInterrupt):
        write_npy(tmp_path / "tiles.npy", storage, failing, chunk=2)
    assert list(tmp_path.iterdir()) == []


def test_large_generated_sets_stream_to_memory_mapped_files(tmp_path, monkeypatch):
    from xaistudy.core.store import Store
    from xaistudy.data import datasets

    kwargs = dict(n=6, size=64, seed=3)
    in_memory = datasets.get_dataset("synthetic-he", "test", store=Store(tmp_path / "a"), **kwargs)
    monkeypatch.setattr(datasets, "STREAM_BYTES", 0)  # every set counts as large
    streamed = datasets.get_dataset("synthetic-he", "test", store=Store(tmp_path / "b"), **kwargs)
    assert isinstance(streamed.images, np.memmap) and not streamed.images.flags.writeable
    for name in ("images", "labels", "masks", "nuclei_type"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(in_memory, name))
    torch.testing.assert_close(streamed[2]["image"], in_memory[2]["image"])
    again = datasets.get_dataset("synthetic-he", "test", store=Store(tmp_path / "b"), **kwargs)
    np.testing.assert_array_equal(again.images, in_memory.images)  # read back, not generated


def test_an_interrupted_streamed_computation_leaves_nothing(tmp_path):
    from xaistudy.core.store import Store

    store = Store(tmp_path)

    def compute(allocate):
        allocate("images", (4, 2), np.uint8)[:2] = 1
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.cached_arrays("k", {"a": 1}, compute, stream=True)
    assert list(tmp_path.rglob("*")) == [tmp_path / "k"]  # the kind folder, empty

    def ok(allocate):
        out = allocate("images", (4, 2), np.uint8)
        out[:] = 7
        return {"images": out, "labels": np.arange(4)}

    got = store.cached_arrays("k", {"a": 1}, ok, stream=True)
    assert got["images"].sum() == 56 and got["labels"].tolist() == [0, 1, 2, 3]
    assert store.cached_arrays("k", {"a": 1}, compute, stream=True)["labels"][3] == 3  # cached
