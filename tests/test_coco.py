"""The COCO-2017 loader on a mini COCO written in the real format (pycocotools, JPEG files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fabricate_folders import CAT, write_coco
from PIL import Image

from xaistudy.core.store import Store
from xaistudy.data.datasets import DataRootError, check_data_root, check_options, get_dataset


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return root, write_coco(root)


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "cache")


def load(root, split="val", store=None, **kw):
    kw.setdefault("n", 10)
    kw.setdefault("size", 64)
    return get_dataset("coco", split, data_root=root, store=store, **kw)


def by_id(ds) -> dict[int, dict]:
    return {int(ds[i]["image_id"]): ds[i] for i in range(len(ds))}


def test_masks_equal_the_polygon_rle_and_crowd_regions(coco_root, store):
    root, expected = coco_root
    val = by_id(load(root, "val", store))
    test = by_id(load(root, "test", store))
    assert set(val) == {1, 3} and set(test) == {2, 4}  # cat, >= 5 % of the image
    # 64 x 64 images at size 64: no resampling, the masks must be exact
    for image_id, sample in [(1, val[1]), (3, val[3]), (2, test[2])]:
        mask = sample["mask"][0].numpy() > 0.5
        np.testing.assert_array_equal(mask, expected[image_id][CAT])
    assert val[1]["mask"].sum() == 20 * 20  # the polygon [10, 30) x [20, 40)
    # the dog of image 1 is not part of the cat mask
    assert val[1]["mask"][0, 4:12, 44:54].sum() == 0
    # the image is the JPEG: the painted cat is red inside the mask, grey outside
    img, mask = val[3]["image"], val[3]["mask"][0] > 0.5
    assert img[0][mask].mean() > 0.8 and img[0][~mask].mean() < 0.35


def test_sample_structure_and_labels(coco_root, store):
    root, _ = coco_root
    ds = load(root, "val", store, classes="cat,dog", size=32)
    assert ds.classes == ("cat", "dog")
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert 0 <= float(s["image"].min()) and float(s["image"].max()) <= 1
    assert s["mask"].shape == (1, 32, 32) and s["nuclei_type"].shape == (32, 32)
    assert int(s["nuclei_type"].abs().sum()) == 0
    labels = {int(ds[i]["image_id"]): int(ds[i]["label"]) for i in range(len(ds))}
    # image 1 holds a cat (400 px) and a dog (80 px): labelled by the larger, cat
    assert labels == {1: 0, 3: 0, 5: 1}


def test_class_filter_min_area_and_voc_names(coco_root, store):
    root, _ = coco_root
    assert set(by_id(load(root, "val", store, classes="dog"))) == {5}  # image 1's dog: 2 %
    assert set(by_id(load(root, "val", store, classes="dog", min_area=0.0))) == {1, 5}
    assert set(by_id(load(root, "test", store, min_area=0.0))) == {2, 4, 6}
    plane = load(root, "val", store, classes="aeroplane")  # Pascal VOC name of 'airplane'
    assert plane.classes == ("aeroplane",) and set(by_id(plane)) == {7}
    assert set(by_id(load(root, "val", store, classes=["airplane"]))) == {7}


def test_splits_are_disjoint_seeded_and_prefix_stable(coco_root, store):
    root, _ = coco_root
    val = set(by_id(load(root, "val", store, min_area=0.0)))
    test = set(by_id(load(root, "test", store, min_area=0.0)))
    train = set(by_id(load(root, "train", store, min_area=0.0)))
    assert val == {1, 3} and test == {2, 4, 6} and train == {10, 12}
    assert not (val & test)
    order = [int(load(root, "test", store, min_area=0.0)[i]["image_id"]) for i in range(3)]
    again = [int(load(root, "test", None, min_area=0.0)[i]["image_id"]) for i in range(3)]
    assert order == again
    first = load(root, "test", store, min_area=0.0, n=1)
    assert len(first) == 1 and int(first[0]["image_id"]) == order[0]
    orders = {
        tuple(int(s["image_id"]) for s in load(root, "test", store, min_area=0.0, seed=k))
        for k in range(8)
    }
    assert len(orders) > 1  # the seed changes the draw


def test_cached_in_the_store(coco_root, store):
    root, _ = coco_root
    a = load(root, "test", store, size=48)
    assert len(list((store.root / "coco").glob("*.npz"))) == 1
    b = load(root, "test", store, size=48)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert len(list((store.root / "coco").glob("*.npz"))) == 1


def test_resize_crop_and_pad_of_a_wide_image(coco_root, store):
    root, expected = coco_root
    truth = expected[4][CAT]  # 48 x 80
    crop = by_id(load(root, "test", store, size=32))[4]
    assert crop["image"].shape == (3, 32, 32)
    # crop: the centred 48 x 48 square, scaled by 32/48 (nearest)
    square = truth[:, 16:64]
    ref = (
        np.asarray(
            Image.fromarray(square.astype(np.uint8) * 255).resize(
                (32, 32), Image.Resampling.NEAREST
            )
        )
        > 127
    )
    got = crop["mask"][0].numpy() > 0.5
    assert (got & ref).sum() / (got | ref).sum() > 0.85
    pad = by_id(load(root, "test", store, size=32, fit="pad"))[4]
    # pad: 80 -> 32, 48 -> 19 rows, centred: 6 black rows above and 7 below
    assert float(pad["image"][:, :6].max()) == 0 and float(pad["image"][:, 25:].max()) == 0
    assert float(pad["image"][:, 6:25].min()) > 0
    area = float(pad["mask"].sum())
    assert area == pytest.approx(truth.sum() * (32 / 80) ** 2, rel=0.15)


def test_check_root_and_layout_errors_are_one_line(tmp_path, store):
    def fails(match, **kw):
        with pytest.raises(DataRootError, match=match) as err:
            load(kw.pop("root"), store=store, **kw)
        assert "\n" not in str(err.value)

    fails("does not exist", root=tmp_path / "absent")
    root = tmp_path / "c"
    root.mkdir()
    fails("missing annotation file .*instances_val2017.json", root=root)
    expected = write_coco(root, with_train=False)
    assert expected
    fails("missing annotation file .*instances_train2017.json", root=root, split="train")
    (root / "val2017").rename(root / "elsewhere")
    fails("missing image folder .*val2017", root=root)
    with pytest.raises(DataRootError, match="val2017"):
        check_data_root("coco", root)
    (root / "elsewhere").rename(root / "val2017")
    (root / "val2017" / "000000000003.jpg").unlink()
    fails("missing image .*000000000003.jpg", root=root)
    Image.new("RGB", (10, 12)).save(root / "val2017" / "000000000003.jpg")
    fails(r"000000000003.jpg is 10x12 px but its annotation says 64x64", root=root)
    (root / "annotations" / "instances_val2017.json").write_text("{not json")
    fails("is not a COCO instances file", root=root)


def test_option_errors_are_one_line(coco_root, store):
    root, _ = coco_root
    with pytest.raises(ValueError, match="unknown class 'unicorn'; allowed: .*cat"):
        load(root, classes="unicorn", store=store)
    with pytest.raises(ValueError, match="no val image in val2017 shows cat over at least"):
        load(root, min_area=0.9, store=store)
    with pytest.raises(ValueError, match="unknown fit 'squash'"):
        load(root, fit="squash", store=store)
    with pytest.raises(ValueError, match="classes is empty"):
        load(root, classes=" , ", store=store)
    with pytest.raises(
        DataRootError, match="has no option 'colour'; allowed: classes, min_area, fit"
    ):
        check_options("coco", {"colour": 1})
