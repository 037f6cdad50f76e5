"""The DiagSet-A loader on blobs and image trees fabricated in the real formats."""

import shutil

import numpy as np
import pytest
from fabricate_nuclei import (
    GRADES,
    balanced_counts,
    decode_patch,
    write_diagset_blobs,
    write_diagset_tree,
)

from xaistudy.core.store import Store
from xaistudy.data import diagset as dg
from xaistudy.data import synthetic
from xaistudy.data.datasets import DataRootError, check_data_root, get_dataset

SCANS = ["s1", "s2", "s3", "s4", "s5"]
PARTITIONS = {"train": ["s1", "s2", "s3"], "validation": ["s4"], "test": ["s5"]}


def scan_counts(scan: str) -> dict[str, int]:
    """Three patches per class and scan, one R1 patch in s2 only, BG and T patches too."""
    counts = {**balanced_counts(3), "BG": 2, "T": 1}
    counts["R1"] = 1 if scan == "s2" else 0
    if scan in ("s4", "s5"):
        counts["R1"] = 2
    return counts


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diagset")
    write_diagset_blobs(root, {s: scan_counts(s) for s in SCANS}, PARTITIONS, side=256)
    return root


def load(root, tmp_path, split="train", n_per_class=2, size=64, seed=0, **options):
    return get_dataset(
        "diagset", split, data_root=root, n_per_class=n_per_class, size=size, seed=seed,
        store=Store(tmp_path / "cache"), **options,
    )  # fmt: skip


def decoded(ds):
    return [decode_patch(ds.images[i]) for i in range(len(ds))]


def test_classes_interleaved_labelled_by_folder_from_the_partition_scans(blobs, tmp_path):
    assert dg.CLASSES == synthetic.GRADES == GRADES
    ds = load(blobs, tmp_path, split="val", n_per_class=2)
    assert len(ds) == 14 and ds.classes == GRADES and ds.images.shape == (14, 64, 64, 3)
    assert list(ds.labels) == [i % 7 for i in range(14)]
    patches = decoded(ds)
    assert [c for c, _, _ in patches] == list(ds.labels)  # the patch's own class folder
    assert ds.scans == ("s4",) and {SCANS[s] for _, s, _ in patches} == {"s4"}
    assert len(set(patches)) == 14  # no patch twice
    assert ds.class_counts == {g: 2 if g == "R1" else 3 for g in GRADES}
    assert (ds.masks == 0).all() and (ds.nuclei_type == 0).all()
    sample = ds[3]
    assert int(sample["label"]) == 3 and ds.scans[int(sample["scan"])] == "s4"
    assert sample["mask"].shape == (1, 64, 64) and sample["nuclei_type"].shape == (64, 64)


def test_too_few_patches_error_or_all(blobs, tmp_path):
    with pytest.raises(ValueError) as err:
        load(blobs, tmp_path, split="train", n_per_class=2)
    message = str(err.value)
    assert "\n" not in message and "split 'train'" in message and "in R1 (" in message
    assert "A 9, N 9, R1 1," in message and '"too_few": "all"' in message
    ds = load(blobs, tmp_path, split="train", n_per_class=2, too_few="all")
    assert ds.class_counts["R1"] == 1 and np.bincount(ds.labels).tolist() == [2, 2, 1, 2, 2, 2, 2]
    assert list(ds.labels[:7]) == list(range(7))  # interleaved while every class has patches
    assert list(ds.labels[7:]) == [0, 1, 3, 4, 5, 6]
    assert [c for c, _, _ in decoded(ds)] == list(ds.labels)


def test_splits_are_disjoint_by_scan_with_and_without_partitions(blobs, tmp_path):
    seen = {}
    for split in ("train", "val", "test"):
        ds = load(blobs, tmp_path, split=split, n_per_class=1)
        seen[split] = {SCANS[s] for _, s, _ in decoded(ds)}
    assert seen == {"train": {"s1", "s2", "s3"}, "val": {"s4"}, "test": {"s5"}}
    bare = tmp_path / "bare"
    shutil.copytree(blobs, bare)
    shutil.rmtree(bare / "partitions")
    scans = {}
    for split in ("train", "val", "test"):
        ds = load(bare, tmp_path, split=split, n_per_class=1, too_few="all")
        scans[split] = set(ds.scans)
        assert {SCANS[s] for _, s, _ in decoded(ds)} <= scans[split]
    assert [len(scans[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert set.union(*scans.values()) == set(SCANS)
    reseeded = [
        set(load(bare, tmp_path, split="val", n_per_class=1, too_few="all", split_seed=s).scans)
        for s in range(1, 6)
    ]
    assert any(r != scans["val"] for r in reseeded)  # split_seed draws another scan split
    ignored = load(blobs, tmp_path, split="val", n_per_class=1, partition="", too_few="all")
    assert set(ignored.scans) == scans["val"]  # partition "" ignores the files


def test_background_and_other_tissue_blobs_are_not_used(blobs, tmp_path):
    ds = load(blobs, tmp_path, split="test", n_per_class=3, too_few="all")
    assert sum(ds.class_counts.values()) == 6 * 3 + 2  # BG and T not counted
    assert {c for c, _, _ in decoded(ds)} == set(range(7))


def test_seed_changes_the_choice_deterministically(blobs, tmp_path):
    a = decoded(load(blobs, tmp_path, split="val", n_per_class=1, seed=0))
    assert a == decoded(load(blobs, tmp_path, split="val", n_per_class=1, seed=0))
    assert any(
        decoded(load(blobs, tmp_path, split="val", n_per_class=1, seed=s)) != a
        for s in range(1, 6)
    )


def test_blob_errors_are_one_line(blobs, tmp_path):
    with pytest.raises(DataRootError, match=r"missing magnification folder .*blobs/S/40x"):
        load(blobs, tmp_path, magnification="40x")
    broken = tmp_path / "broken"
    shutil.copytree(blobs, broken)
    (broken / "partitions" / "DiagSet-A.2" / "test.csv").unlink()
    with pytest.raises(DataRootError, match=r"missing partition file .*DiagSet-A.2/test.csv"):
        load(broken, tmp_path, split="test", n_per_class=1)
    shutil.rmtree(broken / "blobs" / "S" / "20x")
    with pytest.raises(DataRootError) as err:
        check_data_root("diagset", broken)
    assert "\n" not in str(err.value) and "no magnification folder" in str(err.value)
    with pytest.raises(ValueError, match="too_few must be one of error, all"):
        load(blobs, tmp_path, too_few="some")


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "tree"
    counts = {"train": balanced_counts(3), "validation": balanced_counts(2), "test": {}}
    counts["test"] = {**balanced_counts(2), "R5": 1}
    write_diagset_tree(root, counts, side=48)
    return root


def test_image_tree_labels_counts_and_cache(tree, tmp_path, monkeypatch):
    ds = load(tree, tmp_path, split="train", n_per_class=3, size=32)
    assert ds.layout == "images" and ds.images.shape == (21, 32, 32, 3)
    assert list(ds.labels) == [i % 7 for i in range(21)]
    patches = decoded(ds)
    assert [c for c, _, _ in patches] == list(ds.labels) and {s for _, s, _ in patches} == {0}
    val = load(tree, tmp_path, split="val", n_per_class=2, size=32)  # the 'validation' folder
    assert {s for _, s, _ in decoded(val)} == {1}
    with pytest.raises(ValueError, match=r"fewer than n_per_class=2 patches in R5 \("):
        load(tree, tmp_path, split="test", n_per_class=2)

    def fail(path):
        raise AssertionError("image read again despite the cache")

    monkeypatch.setattr(dg, "_read_image", fail)
    again = load(tree, tmp_path, split="train", n_per_class=3, size=32)
    np.testing.assert_array_equal(again.images, ds.images)


def test_image_tree_missing_folders_are_one_line(tree, tmp_path):
    shutil.rmtree(tree / "test" / "R3")
    with pytest.raises(DataRootError) as err:
        check_data_root("diagset", tree)
    message = str(err.value)
    assert "\n" not in message and message.startswith("dataset 'diagset': missing class folder")
    assert "test/R3" in message
    shutil.rmtree(tree / "test")
    with pytest.raises(DataRootError, match=r"missing split folder .*tree/test;"):
        check_data_root("diagset", tree)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataRootError, match="neither blobs/S/<mag>x .* nor train/val/test"):
        get_dataset("diagset", "train", data_root=empty, n_per_class=1, size=32)
