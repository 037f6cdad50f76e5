"""The CAMELYON16 loader on fabricated slides in the real format (pyramidal TIFF, ASAP XML)."""

import re
import shutil

import numpy as np
import pytest
import tiffslide
from fabricate_camelyon16 import centre_raster, make_mini_camelyon

from xaistudy.core.store import Store
from xaistudy.data import camelyon16 as c16
from xaistudy.data import camelyon16_patches as c16_patches
from xaistudy.data import camelyon16_slides as c16_slides
from xaistudy.data.datasets import DataRootError, check_data_root, get_dataset

SIZE = 64


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """3 tumour + 3 normal training slides (XML and mask TIFFs) and a 2-slide testing set."""
    root = tmp_path_factory.mktemp("camelyon16")
    return root, make_mini_camelyon(root, masks=True, testing=True)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "cache")


def load(root, store, split="train", n=16, **options):
    return get_dataset(
        "camelyon16", split, data_root=root, n=n, size=SIZE, seed=0, store=store, **options
    )


def slide_name(slide_id: int) -> str:
    prefix = {0: "tumor", 1: "normal", 2: "test"}[slide_id // 1000]
    return f"{prefix}_{slide_id % 1000:03d}"


def one_line_error(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_fabricated_slides_are_pyramids_tiffslide_reads(mini):
    root, drawn = mini
    with tiffslide.TiffSlide(root / "training" / "tumor" / "tumor_001.tif") as slide:
        assert slide.level_count == 3
        assert slide.level_downsamples == pytest.approx((1.0, 2.0, 4.0))
        assert slide.level_dimensions == ((1024, 1024), (512, 512), (256, 256))
        assert float(slide.properties["tiffslide.mpp-x"]) == pytest.approx(0.243)
        region = slide.read_region((320, 192), 1, (32, 32), as_array=True)
        np.testing.assert_array_equal(region, drawn["tumor_001"].levels[1][96:128, 160:192])
    with tiffslide.TiffSlide(root / "training" / "masks" / "tumor_001_mask.tif") as mask:
        assert mask.level_count == 3
        level0 = mask.read_region((0, 0), 0, (1024, 1024), as_array=True)[..., 0]
        np.testing.assert_array_equal(level0 > 0, drawn["tumor_001"].tumour)


def test_asap_xml_gives_the_drawn_polygons_and_holes(mini):
    root, drawn = mini
    polygons = c16_slides.read_asap_xml(root / "training" / "lesion_annotations" / "tumor_002.xml")
    assert [p.group for p in polygons] == ["_0", "_2"]
    assert [p.hole for p in polygons] == [False, True]
    for got, (_, xy) in zip(polygons, drawn["tumor_002"].polygons, strict=True):
        np.testing.assert_allclose(got.xy, xy, atol=1e-4)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_rasterised_mask_is_the_polygon_at_every_level(mini, level):
    _, drawn = mini
    slide = drawn["tumor_001"]
    polygons = [c16_slides.Polygon(xy, g == "_2", g) for g, xy in slide.polygons]
    ds = 2**level
    for x0, y0 in [(256, 320), (384, 448), (512, 512), (0, 0)]:
        got = c16_slides.rasterise(polygons, x0, y0, (SIZE, SIZE), (ds, ds))
        np.testing.assert_array_equal(got, centre_raster(slide.polygons, x0, y0, (SIZE, SIZE), ds))
    whole = c16_slides.rasterise(polygons, 0, 0, (1024, 1024))
    np.testing.assert_array_equal(whole, slide.tumour)


@pytest.mark.parametrize("level", [0, 1])
def test_patches_masks_and_labels_agree_with_the_drawn_slides(mini, store, level):
    root, drawn = mini
    ds = load(root, store, n=16, level=level, annotations="xml")
    assert len(ds) == 16 and ds.classes == ("normal", "tumour")
    np.testing.assert_array_equal(ds.labels, np.arange(16) % 2)  # odd = tumour, balanced
    scale = 2**level
    for i in range(len(ds)):
        slide = drawn[slide_name(int(ds.extra["slide_id"][i]))]
        x0, y0 = int(ds.extra["x"][i]), int(ds.extra["y"][i])
        r, c = y0 // scale, x0 // scale
        assert x0 % (SIZE * scale) == 0 and y0 % (SIZE * scale) == 0  # on the level's grid
        np.testing.assert_array_equal(ds.images[i], slide.levels[level][r : r + SIZE, c : c + SIZE])
        truth = centre_raster(slide.polygons, x0, y0, (SIZE, SIZE), scale)
        np.testing.assert_array_equal(ds.masks[i], truth)
        tissue = slide.tissue[y0 : y0 + SIZE * scale, x0 : x0 + SIZE * scale].mean()
        assert tissue >= 0.4  # detected on a 4x coarser level, so a little below min_tissue
        if ds.labels[i] == 1:
            assert truth.mean() >= 0.5 and slide.name.startswith("tumor")
        else:
            assert not truth.any() and slide.name.startswith("normal")
    sample = ds[1]
    assert sample["image"].shape == (3, SIZE, SIZE) and sample["mask"].shape == (1, SIZE, SIZE)
    assert sample["mask"].sum() == ds.masks[1].sum() and sample["label"] == 1


def test_max_tumour_keeps_patches_with_tumour_and_normal_tissue(mini, store):
    root, _ = mini
    ds = load(root, store, n=12, min_tumour=0.2, max_tumour=0.8, annotations="xml")
    share = ds.masks.reshape(len(ds), -1).mean(axis=1)
    assert np.all((share[1::2] >= 0.2) & (share[1::2] <= 0.8))
    assert np.all(share[0::2] == 0)


def test_tissue_detection_keeps_tissue_and_skips_background(mini):
    root, drawn = mini
    slide = c16_slides.training_slides(root)[0][0]  # tumor_001, XML polygons
    cand = c16_patches.slide_candidates(
        slide, level=0, size=SIZE, min_tissue=0.5, tissue_downsample=32
    )
    truth = drawn["tumor_001"]
    grid = {(x, y) for x in range(0, 1024, SIZE) for y in range(0, 1024, SIZE)}
    kept = set(zip(cand["x"].tolist(), cand["y"].tolist(), strict=True))
    assert kept <= grid and len(kept) == len(cand["x"])

    def fraction(mask, x, y):
        return mask[y : y + SIZE, x : x + SIZE].mean()

    tissue = {xy: fraction(truth.tissue, *xy) for xy in grid}
    assert all(tissue[xy] > 0.3 for xy in kept)  # no background patch kept
    assert {xy for xy in grid if tissue[xy] >= 0.7} <= kept  # every tissue patch kept
    assert sum(tissue[xy] == 0 for xy in grid) > 40  # the slide has background to skip
    for x, y, frac in zip(cand["x"], cand["y"], cand["tumour"], strict=True):
        assert frac == pytest.approx(fraction(truth.tumour, x, y), abs=1e-6)
    assert (cand["tumour"] >= 0.5).sum() > 10 and (cand["tumour"] == 0).sum() > 10
    white = np.full((32, 32, 3), 240, np.uint8)
    assert not c16_patches.tissue_mask(white).any()


def test_mask_tiffs_give_the_same_masks_as_the_xml(mini, store):
    root, drawn = mini
    by_mask = load(root, store, annotations="masks")
    by_xml = load(root, store, annotations="xml")
    np.testing.assert_array_equal(by_mask.extra["x"], by_xml.extra["x"])
    np.testing.assert_array_equal(by_mask.masks, by_xml.masks)  # level 0: exactly the raster
    tumour = np.flatnonzero(by_mask.labels == 1)
    assert by_mask.masks[tumour].mean() > 0.5
    at_level1 = {a: load(root, store, annotations=a, level=1) for a in ("masks", "xml")}
    diff = at_level1["masks"].masks != at_level1["xml"].masks
    assert diff.mean() < 0.02  # block-reduced mask pyramid vs polygon: edge pixels only


def test_splits_never_share_a_slide_and_are_deterministic(mini, store, tmp_path):
    root, _ = mini
    sets = {s: load(root, store, s, n=8) for s in ("train", "val", "test")}
    slides = {s: set(ds.slides) for s, ds in sets.items()}
    assert not (slides["train"] & slides["val"] or slides["train"] & slides["test"])
    assert not slides["val"] & slides["test"]
    assert set().union(*slides.values()) == {
        f"{k}_{i:03d}" for k in ("tumor", "normal") for i in (1, 2, 3)
    }
    for split, ds in sets.items():
        assert set(np.unique(ds.extra["slide_id"]).tolist()) == {
            c16_slides.Slide(root / f"{name}.tif", False).slide_id for name in slides[split]
        }
    again = load(root, Store(tmp_path / "fresh"), "train", n=8)
    np.testing.assert_array_equal(again.images, sets["train"].images)
    bigger = load(root, store, "train", n=16)  # a smaller n is a prefix of a larger one
    np.testing.assert_array_equal(bigger.images[:8], sets["train"].images)
    tumour, normal = c16_slides.training_slides(root)
    assignments = {
        tuple(
            s.name
            for s in c16_patches.split_assignment(tumour, normal, seed, 0.15, 0.15)["test"]
        )
        for seed in range(6)
    }
    assert len(assignments) > 1  # the seed moves slides between splits
    assert c16_patches.split_slides(list("abcdefghij"), 0, [0.15, 0.15], 0)[0].__len__() == 6


def test_official_testing_set_as_test_split(mini, store):
    root, _ = mini
    test = load(root, store, "test", n=8, test_source="testing")
    assert set(test.slides) == {"test_001", "test_002"}
    assert set(np.unique(test.extra["slide_id"]).tolist()) == {2001, 2002}
    assert set(test.extra["slide_id"][test.labels == 0].tolist()) == {2002}  # Normal in csv
    train = load(root, store, "train", n=8, test_source="testing")
    assert not set(train.slides) & set(test.slides)


def test_extraction_resumes_after_an_interruption(mini, store, monkeypatch):
    root, _ = mini
    real = c16.slide_candidates
    calls = []

    def fails_on_second(slide, *args, **kwargs):
        calls.append(slide.name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while extracting the second slide
        return real(slide, *args, **kwargs)

    monkeypatch.setattr(c16, "slide_candidates", fails_on_second)
    with pytest.raises(KeyboardInterrupt):
        load(root, store, "val", n=8)
    first, second = calls
    calls.clear()

    def counts(slide, *args, **kwargs):
        calls.append(slide.name)
        return real(slide, *args, **kwargs)

    monkeypatch.setattr(c16, "slide_candidates", counts)
    ds = load(root, store, "val", n=8)
    assert calls == [second]  # the first slide came from the store
    assert {first, second} == set(ds.slides)
    calls.clear()
    load(root, store, "val", n=4)  # another n: patches drawn again, candidates all stored
    assert calls == []


def test_missing_root_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataRootError) as err:
        check_data_root("camelyon16", "/missing")
    assert "/missing" in one_line_error(err)
    root = tmp_path / "c16"
    make_mini_camelyon(root, n_tumour=1, n_normal=1, side=256, masks=False)
    assert check_data_root("camelyon16", root) == root
    xml = root / "training" / "lesion_annotations" / "tumor_001.xml"
    xml.unlink()
    with pytest.raises(DataRootError) as err:
        check_data_root("camelyon16", root)
    assert "tumor_001" in one_line_error(err) and "tumor_001.xml" in str(err.value)
    (root / "training" / "lesion_annotations.zip").write_bytes(b"PK")
    with pytest.raises(DataRootError, match="lesion_annotations.zip: extract it"):
        check_data_root("camelyon16", root)
    shutil.rmtree(root / "training" / "normal")
    (root / "training" / "tumor" / "tumor_001.tif").unlink()
    with pytest.raises(DataRootError) as err:
        check_data_root("camelyon16", root)
    assert "training/tumor" in one_line_error(err) and "tumor_*.tif" in str(err.value)


def test_bad_options_and_too_few_patches_are_one_line_errors(mini, store, tmp_path):
    root, _ = mini
    with pytest.raises(DataRootError) as err:
        load(root, store, n=4000)
    found = re.search(
        r"split 'train' has (\d+) tumour and (\d+) normal patches", one_line_error(err)
    )
    assert found and 0 < int(found[1]) < 2000 and 0 < int(found[2]) < 2000
    assert "n=4000 needs 2000 and 2000" in str(err.value)
    with pytest.raises(DataRootError, match="levels 0-2; level 5 was asked for"):
        load(root, store, level=5)
    with pytest.raises(ValueError, match="0 < min_tumour <= max_tumour <= 1") as err:
        load(root, store, min_tumour=0.6, max_tumour=0.4)
    assert "min_tumour=0.6" in one_line_error(err)
    small = tmp_path / "small"
    make_mini_camelyon(small, n_tumour=1, n_normal=1, side=256, testing=True)
    (small / "testing" / "reference.csv").unlink()
    with pytest.raises(DataRootError) as err:
        load(small, store, test_source="testing")
    assert "testing/reference.csv" in one_line_error(err)
    with pytest.raises(DataRootError) as err:  # one slide per class: no val or test slides
        load(small, store, "val")
    assert "split 'val' has 0 tumour and 0 normal slides" in one_line_error(err)


def test_large_extractions_stream_to_memory_mapped_files(mini, tmp_path, monkeypatch):
    from xaistudy.data import camelyon16 as c16

    root, _ = mini
    in_memory = load(root, Store(tmp_path / "a"), n=12, level=0)
    monkeypatch.setattr(c16, "STREAM_BYTES", 0)  # every extraction counts as large
    streamed = load(root, Store(tmp_path / "b"), n=12, level=0)
    assert isinstance(streamed.images, np.memmap) and not streamed.images.flags.writeable
    for name in ("images", "labels", "masks"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(in_memory, name))
    assert list((tmp_path / "b").rglob("*.arrays"))  # one folder of .npy files
