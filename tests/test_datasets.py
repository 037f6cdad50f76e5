"""Datasets by name: the common sample structure, splits, caching and clear errors."""

import numpy as np
import pytest
import torch

from xaistudy.core.store import Store
from xaistudy.data import synthetic
from xaistudy.data.datasets import DATASETS, get_dataset, patient_split


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path)


def test_registry_names_and_errors(store):
    assert {"synthetic-he", "synthetic-grading", "synthetic-pcle"} <= set(DATASETS)
    with pytest.raises(ValueError, match="unknown dataset 'camelyon'; allowed: .*synthetic-he"):
        get_dataset("camelyon")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        get_dataset("synthetic-he", split="dev", n=2, size=64, store=store)


@pytest.mark.parametrize(
    "name, kwargs, n_classes",
    [
        ("synthetic-he", {"n": 6}, 2),
        ("synthetic-grading", {"n_per_class": 1}, 7),
        ("synthetic-pcle", {"n_patients": 5, "frames_per_patient": 2}, 2),
    ],
)
def test_sample_structure(name, kwargs, n_classes, store):
    ds = get_dataset(name, split="train", size=64, seed=1, store=store, **kwargs)
    assert len(ds.classes) == n_classes
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert sample["mask"].shape == (1, 64, 64)
    assert sample["nuclei_type"].shape == (64, 64)
    assert int(sample["label"]) in range(n_classes)


def test_he_labels_balanced_and_masks_match_labels(store):
    ds = get_dataset("synthetic-he", n=8, size=64, seed=0, store=store)
    labels = np.array([int(ds[i]["label"]) for i in range(len(ds))])
    assert labels.sum() == 4
    for i in range(len(ds)):
        has_tumour = bool(ds[i]["mask"].sum() > 0)
        assert has_tumour == bool(labels[i])


def test_splits_do_not_share_tiles(store):
    train = get_dataset("synthetic-he", "train", n=4, size=64, store=store)
    test = get_dataset("synthetic-he", "test", n=4, size=64, store=store)
    for i in range(4):
        assert not torch.equal(train[i]["image"], test[i]["image"])


def test_dataset_is_cached_and_deterministic(store):
    first = get_dataset("synthetic-grading", n_per_class=1, size=64, seed=3, store=store)
    assert len(list(store.root.glob("synthetic-grading/*.npz"))) == 1
    again = get_dataset("synthetic-grading", n_per_class=1, size=64, seed=3, store=store)
    fresh = synthetic.grading_tile(3, 0, size=64, grade=synthetic.GRADES[0]).image
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.images[0], fresh)


def test_pcle_split_is_by_patient(store):
    split = patient_split(20, seed=0)
    assert [len(split[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert len(np.unique(np.concatenate(list(split.values())))) == 20
    seen = {}
    for s in ("train", "val", "test"):
        ds = get_dataset(
            "synthetic-pcle", s, n_patients=20, frames_per_patient=2, size=64, store=store
        )
        seen[s] = {int(ds[i]["patient_id"]) for i in range(len(ds))}
        assert seen[s] == set(split[s].tolist())
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["val"])
