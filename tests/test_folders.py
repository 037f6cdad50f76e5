"""Folder loaders on fabricated trees: pCLE frames by patient, and generic image folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fabricate_folders import N_FRAMES, body, write_image_folder, write_pcle
from PIL import Image

from xaistudy.core.store import Store
from xaistudy.data.datasets import DataRootError, check_data_root, get_dataset, patient_split
from xaistudy.data.folders import natural_key
from xaistudy.data.synthetic import PCLE_CLASSES
from xaistudy.models.pcle import fov_crop_size, pcle_datasets


@pytest.fixture(scope="module")
def pcle_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pcle")
    write_pcle(root)
    return root


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "cache")


def pcle(root, split="train", store=None, **kw):
    kw.setdefault("size", 40)
    return get_dataset("pcle-folder", split, data_root=root, store=store, seed=0, **kw)


def frame_index(sample) -> int:
    """Which frame of its video a loaded sample is (by its grey background level)."""
    level = round(float(sample["image"][0, 0, 0]) * 255)
    return (level - 5) // 10


def per_patient(ds) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in range(len(ds)):
        name = ds.patients[int(ds[i]["patient_id"])]
        out.setdefault(name, []).append(frame_index(ds[i]))
    return out


# -- pCLE --------------------------------------------------------------------------------------
def test_patient_split_is_disjoint_and_has_both_classes(pcle_root, store):
    seen = {}
    for split in ("train", "val", "test"):
        ds = pcle(pcle_root, split, store)
        assert ds.classes == PCLE_CLASSES
        names = {ds.patients[int(ds[i]["patient_id"])] for i in range(len(ds))}
        labels = {int(ds[i]["label"]) for i in range(len(ds))}
        assert labels == {0, 1}, split  # 80/10/10 within each class
        for i in range(len(ds)):  # label = class folder of the patient
            name = ds.patients[int(ds[i]["patient_id"])]
            assert name.split("/")[0] == PCLE_CLASSES[int(ds[i]["label"])]
        seen[split] = names
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"])
    assert not (seen["val"] & seen["test"])
    everyone = {f"glioblastoma/g{k}" for k in range(1, 5)} | {
        f"meningioma/m{k}" for k in range(1, 6)
    }
    assert set.union(*seen.values()) == everyone
    glio = sorted(f"glioblastoma/g{k}" for k in range(1, 5))
    expected_test = {glio[i] for i in patient_split(4, 0)["test"]}
    assert {n for n in seen["test"] if n.startswith("glio")} == expected_test


def test_masks_are_aligned_and_a_missing_mask_is_empty(pcle_root, store):
    found_missing = False
    for split in ("train", "val", "test"):
        ds = pcle(pcle_root, split, store, frame_step=1)
        for i in range(len(ds)):
            s = ds[i]
            mask = s["mask"][0].numpy() > 0.5
            name = ds.patients[int(s["patient_id"])]
            k = frame_index(s)
            bright = s["image"][0].numpy() == 1.0
            if int(s["label"]) == 0:
                assert not mask.any() and not bright.any()
            elif name == "meningioma/m1" and k == 2:
                assert not mask.any() and bright.any()  # no mask file: empty mask
                found_missing = True
            else:
                np.testing.assert_array_equal(mask, body(k)[:, 4:44])  # centred 40 x 40
                np.testing.assert_array_equal(bright, mask)
    assert found_missing


def test_frame_step_natural_order_cap_and_videos(pcle_root, store):
    every = per_patient(pcle(pcle_root, "train", store, frame_step=1))
    step2 = per_patient(pcle(pcle_root, "train", store))  # default: every other frame
    capped = per_patient(pcle(pcle_root, "train", store, frames_per_patient=3))
    for name, frames in step2.items():
        if name == "meningioma/m5":  # two videos of 6 frames: every other frame of each
            assert frames == [0, 2, 4, 0, 2, 4] and every[name] == [*range(6), *range(6)]
            continue
        assert every[name] == list(range(N_FRAMES))  # f2 before f10
        assert frames == [0, 2, 4, 6, 8, 10]
        assert capped[name] == [0, 4, 10]  # 3 of the 6, evenly spaced
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def test_patient_cap_keeps_both_classes(pcle_root, store):
    ds = pcle(pcle_root, "train", store, n_patients=6)
    assert len(ds.patients) == 6
    assert sum(p.startswith("glio") for p in ds.patients) == 3
    assert (
        pcle(pcle_root, "train", store, n_patients=0).patients
        == pcle(pcle_root, "train", store).patients
    )


def test_resize_grey_frames_tiff_and_cache(pcle_root, store):
    ds = pcle(pcle_root, "train", store, size=20)
    assert ds.images.ndim == 3  # grey frames are kept one-channel
    s = ds[0]
    assert s["image"].shape == (3, 20, 20) and s["mask"].shape == (1, 20, 20)
    assert torch.equal(s["image"][0], s["image"][1])
    menin = [ds[i] for i in range(len(ds)) if int(ds[i]["label"]) == 1]
    areas = [float(m["mask"].sum()) for m in menin]
    assert np.mean(areas) == pytest.approx(body(0).sum() / 4, rel=0.3)
    tiff = [
        frame_index(t[i])
        for t in (pcle(pcle_root, s, store, frame_step=1) for s in ("train", "val", "test"))
        for i in range(len(t))
        if t.patients[int(t[i]["patient_id"])].endswith("g4")
    ]
    assert tiff == list(range(N_FRAMES))  # 16-bit frames scaled by their own range (0..65535)
    n_files = len(list((store.root / "pcle-folder").glob("*.npz")))
    again = pcle(pcle_root, "train", store, size=20)
    assert np.array_equal(again.images, ds.images)
    assert len(list((store.root / "pcle-folder").glob("*.npz"))) == n_files


def test_pcle_datasets_read_the_folder_with_the_centre_crop(pcle_root, store):
    data = pcle_datasets(
        0,
        0,
        40,
        centre_crop=True,
        augment=False,
        store=store,
        dataset="pcle-folder",
        data_root=pcle_root,
        data_options={"frame_step": 4, "fov_fraction": 0.4},
    )
    side = fov_crop_size(40, 0.4)
    assert side == 22
    for split, ds in data.items():
        assert ds[0]["image"].shape == (3, side, side), split
        assert ds[0]["mask"].shape == (1, side, side)
    assert len(data["train"]) == sum(
        len(v) for v in per_patient(pcle(pcle_root, "train", store, frame_step=4)).values()
    )


def test_pcle_layout_errors_are_one_line(tmp_path, store):
    def fails(root, match, split="train"):
        with pytest.raises((DataRootError, ValueError), match=match) as err:
            check_data_root("pcle-folder", root)
            pcle(root, split, store)
        assert "\n" not in str(err.value)

    root = tmp_path / "p"
    fails(root, "data_root .* does not exist")
    root.mkdir()
    fails(root, "missing frame folder .*frames")
    (root / "frames" / "glioblastoma").mkdir(parents=True)
    fails(root, "no frame in .*glioblastoma")
    write_pcle(tmp_path / "ok", n_glio=1, n_menin=1)
    (tmp_path / "ok" / "frames" / "meningioma").rename(tmp_path / "ok" / "frames" / "Menin")
    fails(tmp_path / "ok", "missing meningioma frame folder .*frames/meningioma")
    (tmp_path / "ok" / "frames" / "Menin").rename(tmp_path / "ok" / "frames" / "meningioma")
    fails(tmp_path / "ok", "split 'val' has no patients; each class needs at least 3", "val")
    assert len(pcle(tmp_path / "ok", "train", store)) > 0
    frame = tmp_path / "ok" / "frames" / "glioblastoma" / "g1" / "f0.png"
    loose = tmp_path / "ok" / "frames" / "meningioma" / "stray.png"
    loose.write_bytes(frame.read_bytes())
    fails(tmp_path / "ok", "frame .*stray.png lies directly in")
    loose.unlink()


def test_pcle_file_errors_are_one_line(tmp_path, store):
    root = tmp_path / "p"
    write_pcle(root, n_glio=3, n_menin=3)
    mask = root / "masks" / "meningioma" / "m2" / "f0.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
    with pytest.raises(DataRootError, match=r"mask .*m2/f0.png is 8x8 px but its image is 48x40"):
        for split in ("train", "val", "test"):
            pcle(root, split, store, frame_step=1)
    mask.unlink()
    (root / "frames" / "glioblastoma" / "g1" / "f4.png").write_bytes(b"not a png")
    with pytest.raises(DataRootError, match="cannot read .*g1/f4.png") as err:
        for split in ("train", "val", "test"):
            pcle(root, split, store, frame_step=1)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="frame_step must be >= 1"):
        pcle(root, "train", store, frame_step=0)


# -- generic image folders ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def images_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(root)
    return root


def image_name(sample) -> tuple[int, int]:
    """(class offset, i) of a loaded image of value 10 * i + class offset."""
    v = round(float(sample["image"][0, 0, 0]) * 255)
    return v % 10, v // 10


def test_image_folder_splits_labels_and_masks(images_root, store):
    seen = {}
    for split in ("train", "val", "test"):
        ds = get_dataset("image-folder", split, data_root=images_root, size=36, store=store)
        assert ds.classes == ("normal", "tumour")
        names = [image_name(ds[i]) for i in range(len(ds))]
        labels = [int(ds[i]["label"]) for i in range(len(ds))]
        assert labels == [c for c, _ in names]  # label = class folder
        assert labels == [0, 1] * (len(ds) // 2)  # classes alternate
        for i in range(len(ds)):
            c, k = names[i]
            area = float(ds[i]["mask"].sum())
            assert area == (0 if c == 0 or k == 1 else (k + 2) ** 2)
        seen[split] = set(names)
    assert [len(seen[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert set.union(*seen.values()) == {(c, k) for c in (0, 1) for k in range(10)}
    assert not (seen["train"] & seen["test"]) and not (seen["val"] & seen["test"])


def test_image_folder_options_and_errors(images_root, tmp_path, store):
    ds = get_dataset(
        "image-folder",
        "train",
        data_root=images_root,
        size=18,
        store=store,
        classes="tumour,normal",
        n=5,
    )
    assert ds.classes == ("tumour", "normal") and len(ds) == 5
    assert [int(ds[i]["label"]) for i in range(5)] == [0, 1, 0, 1, 0]
    assert [image_name(ds[i])[0] for i in range(5)] == [1, 0, 1, 0, 1]
    assert ds[0]["image"].shape == (3, 18, 18)
    per = get_dataset(
        "image-folder", "train", data_root=images_root, size=18, store=store, n_per_class=2
    )
    assert len(per) == 4
    with pytest.raises(DataRootError, match="no class folder images/cancer; found: normal, tumour"):
        get_dataset("image-folder", data_root=images_root, store=store, classes="cancer")
    root = tmp_path / "i"
    root.mkdir()
    with pytest.raises(DataRootError, match="missing image folder .*images"):
        check_data_root("image-folder", root)
    (root / "images").mkdir()
    with pytest.raises(DataRootError, match="no class folder in"):
        check_data_root("image-folder", root)
    (root / "images" / "a").mkdir()
    with pytest.raises(DataRootError, match="no image in class folder .*images/a"):
        check_data_root("image-folder", root)
