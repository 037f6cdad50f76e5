"""The PanNuke loader on folds fabricated in the real file format."""

import shutil

import numpy as np
import pytest
from fabricate_nuclei import TISSUES, expected_types, tile_code, tile_discs, write_pannuke

from xaistudy.core.store import Store
from xaistudy.data import pannuke as pk
from xaistudy.data.datasets import DataRootError, check_data_root, check_options, get_dataset

SIDE = 64


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("pannuke")
    write_pannuke(path, (4, 3, 3), side=SIDE, layout="official")
    return path


def load(root, tmp_path, split="train", n=4, size=SIDE, seed=0, **options):
    return get_dataset(
        "pannuke", split, data_root=root, n=n, size=size, seed=seed,
        store=Store(tmp_path / "cache"), **options,
    )  # fmt: skip


def test_types_masks_labels_and_tissues_follow_the_drawn_nuclei(root, tmp_path):
    ds = load(root, tmp_path, n=4)
    assert len(ds) == 4 and ds.classes == pk.CLASSES
    assert sorted(map(tuple, ds.origin)) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    for i in range(len(ds)):
        fold, j = (int(v) for v in ds.origin[i])
        sample = ds[i]
        discs = tile_discs(fold, j, SIDE)
        want = expected_types(discs, SIDE, pk.NON_NEOPLASTIC["connective"])
        np.testing.assert_array_equal(sample["nuclei_type"].numpy(), want)
        np.testing.assert_array_equal(sample["mask"][0].numpy() == 1, want == 1)
        assert int(sample["label"]) == int(j % 2 == 0) == int((want == 1).any())
        assert (want == 2).any()  # the connective nucleus is type 2 ...
        inflammatory = expected_types(discs, SIDE, [1]) == 2
        assert (sample["nuclei_type"].numpy()[inflammatory] == 0).all()  # ... the others are not
        assert sample["image"].shape == (3, SIDE, SIDE) and sample["image"].dtype.is_floating_point
        assert round(float(sample["image"][0, 0, 0]) * 255) == tile_code(fold, j)
        assert ds.tissues[int(sample["tissue"])] == TISSUES[(fold + j) % len(TISSUES)]


@pytest.mark.parametrize(
    "choice, channels", [("all", (1, 2, 3, 4)), ("epithelial", (4,)), ("inflammatory", (1,))]
)
def test_non_neoplastic_choice_sets_type_2(root, tmp_path, choice, channels):
    ds = load(root, tmp_path, split="val", n=3, non_neoplastic=choice)
    for i in range(len(ds)):
        fold, j = (int(v) for v in ds.origin[i])
        want = expected_types(tile_discs(fold, j, SIDE), SIDE, channels)
        np.testing.assert_array_equal(ds.nuclei_type[i], want)


def test_folds_make_the_splits(root, tmp_path):
    for split, fold in [("train", 1), ("val", 2), ("test", 3)]:
        ds = load(root, tmp_path, split=split, n=3)
        assert set(ds.origin[:, 0]) == {fold}
    thesis = load(root, tmp_path, split="train", n=7, folds=pk.THESIS_FOLDS)
    assert sorted(map(tuple, thesis.origin)) == [(1, j) for j in range(4)] + [
        (2, j) for j in range(3)
    ]
    val = load(root, tmp_path, split="val", n=3, folds={"train": [1, 2], "val": [3]})
    assert set(val.origin[:, 0]) == {3}
    with pytest.raises(ValueError, match=r"split 'train' \(fold 1\) hold 4 tiles, fewer than n=5"):
        load(root, tmp_path, n=5)


def test_flat_layout_gives_the_same_tiles(root, tmp_path):
    flat = tmp_path / "flat"
    write_pannuke(flat, (4, 3, 3), side=SIDE, layout="flat")
    a = load(root, tmp_path, split="test", n=2, seed=3)
    b = load(flat, tmp_path, split="test", n=2, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.nuclei_type, b.nuclei_type)
    np.testing.assert_array_equal(a.origin, b.origin)


def test_seeded_sampling(root, tmp_path):
    first = load(root, tmp_path, n=2, seed=0).origin
    np.testing.assert_array_equal(first, load(root, tmp_path, n=2, seed=0).origin)
    others = [tuple(map(tuple, load(root, tmp_path, n=2, seed=s).origin)) for s in range(1, 6)]
    assert any(o != tuple(map(tuple, first)) for o in others)


def test_resize_keeps_masks_on_their_nuclei(root, tmp_path):
    ds = load(root, tmp_path, split="train", n=4, size=32)
    assert ds.images.shape == (4, 32, 32, 3) and ds.nuclei_type.shape == (4, 32, 32)
    for i in range(len(ds)):
        fold, j = (int(v) for v in ds.origin[i])
        neo = [d for d in tile_discs(fold, j, SIDE) if d.channel == 0]
        mask = ds.masks[i]
        assert bool(mask.any()) == bool(neo) == bool(ds.labels[i])
        if neo:
            ys, xs = np.nonzero(mask)
            # centre of pixel k at 32 px is at (k + 0.5) * 2 - 0.5 in 64 px coordinates
            assert abs((ys.mean() + 0.5) * 2 - 0.5 - neo[0].cy) < 1.0
            assert abs((xs.mean() + 0.5) * 2 - 0.5 - neo[0].cx) < 1.0
        red = ds.images[i][..., 0].astype(float)
        nuclei = ds.nuclei_type[i] > 0
        assert red[nuclei].mean() < 80 and red[~nuclei].mean() > 90  # dark nuclei under masks


def test_files_are_memory_mapped_and_results_cached(root, tmp_path, monkeypatch):
    calls = []
    real_load = np.load

    def spy(path, *args, **kwargs):
        calls.append((str(path).rsplit("/", 1)[-1], kwargs.get("mmap_mode")))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    first = load(root, tmp_path, split="val", n=2, seed=1)
    big = {(name, mode) for name, mode in calls if name in ("images.npy", "masks.npy")}
    assert big == {("images.npy", "r"), ("masks.npy", "r")}

    def fail(*args, **kwargs):
        raise AssertionError("masks read again despite the cache")

    monkeypatch.setattr(pk, "nuclei_types", fail)
    again = load(root, tmp_path, split="val", n=2, seed=1)
    np.testing.assert_array_equal(first.nuclei_type, again.nuclei_type)


def test_missing_fold_is_one_line_naming_the_file(root, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    (broken / "Fold 3" / "masks" / "fold3" / "masks.npy").unlink()
    with pytest.raises(DataRootError) as err:
        check_data_root("pannuke", broken)
    message = str(err.value)
    assert "\n" not in message and "fold 3" in message
    assert message.split("; expected")[0].endswith("Fold 3/masks/fold3/masks.npy")
    shutil.rmtree(broken / "Fold 2")
    with pytest.raises(DataRootError, match=r"missing fold 2 file .*Fold 2/images/fold2/images"):
        get_dataset("pannuke", "train", data_root=broken, n=2, size=SIDE)


def test_bad_shapes_and_options_are_one_line(root, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    np.save(bad / "Fold 1" / "masks" / "fold1" / "masks.npy", np.zeros((4, SIDE, SIDE, 5)))
    with pytest.raises(DataRootError, match=r"masks.npy has shape \(4, 64, 64, 5\)"):
        load(bad, tmp_path, n=2)
    for options, match in [
        ({"folds": "1/2"}, "train/val/test folds"),
        ({"folds": "1/4/3"}, "among"),
        ({"folds": {"tr": [1]}}, "unknown split"),
        ({"non_neoplastic": "stroma"}, "non_neoplastic must be one of"),
    ]:
        with pytest.raises(ValueError, match=match) as err:
            load(root, tmp_path, n=2, **options)
        assert "\n" not in str(err.value)
    check_options("pannuke", {"folds": pk.THESIS_FOLDS, "non_neoplastic": "all"})
    with pytest.raises(DataRootError, match="has no option 'fold'"):
        check_options("pannuke", {"fold": 1})
