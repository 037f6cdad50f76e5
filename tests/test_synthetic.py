"""Tests of the procedural synthetic data (xaistudy.data.synthetic)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from xaistudy.data import synthetic as S

KINDS = {
    "he": lambda seed, index, size: S.he_tile(seed, index, size),
    "grading": lambda seed, index, size: S.grading_tile(seed, index, size, grade="R3"),
    "artifact": lambda seed, index, size: S.grading_tile(seed, index, size, grade="A"),
    "pcle": lambda seed, index, size: S.pcle_frame(seed, index, size),
}


def _areas(tile: S.Tile) -> np.ndarray:
    """Pixel area of nucleus id i at index i - 1."""
    return np.bincount(tile.nuclei_instance.ravel())[1:]


def _instance_types(tile: S.Tile) -> np.ndarray:
    """Type of nucleus id i at index i - 1 (taken at any one of its pixels)."""
    inst, typ = tile.nuclei_instance.ravel(), tile.nuclei_type.ravel()
    out = np.zeros(inst.max() + 1, dtype=np.uint8)
    out[inst] = typ
    return out[1:]


def _check_tile(tile: S.Tile, size: int) -> None:
    assert tile.image.shape == (size, size, 3) and tile.image.dtype == np.uint8
    assert tile.mask.shape == (size, size) and tile.mask.dtype == np.bool_
    assert tile.nuclei_instance.shape == (size, size) and tile.nuclei_instance.dtype == np.int32
    assert tile.nuclei_type.shape == (size, size) and tile.nuclei_type.dtype == np.uint8
    assert isinstance(tile.label, int) and isinstance(tile.meta, dict)


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_arguments_give_same_bytes(kind: str) -> None:
    a, b = KINDS[kind](3, 5, 96), KINDS[kind](3, 5, 96)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.nuclei_instance, b.nuclei_instance)
    assert np.array_equal(a.nuclei_type, b.nuclei_type)
    assert a.meta == b.meta


@pytest.mark.parametrize("kind", KINDS)
def test_other_seed_or_index_gives_other_image(kind: str) -> None:
    base = KINDS[kind](3, 5, 96).image
    assert not np.array_equal(base, KINDS[kind](4, 5, 96).image)
    assert not np.array_equal(base, KINDS[kind](3, 6, 96).image)


def test_tile_does_not_depend_on_other_tiles() -> None:
    tiles = S.he_set(6, size=64, seed=11)
    for i in (0, 5):
        alone = S.he_tile(11, i, 64, tumour=bool(tiles[i].label))
        assert alone.image.tobytes() == tiles[i].image.tobytes()
    frames = S.pcle_set(3, 2, size=64, seed=2)
    again = S.pcle_frame(2, 5, 64, meningioma=bool(frames[5].label), patient_id=2)
    assert again.image.tobytes() == frames[5].image.tobytes()


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("size", [64, 128, 512])
@pytest.mark.parametrize("kind", KINDS)
def test_allowed_sizes(kind: str, size: int) -> None:
    _check_tile(KINDS[kind](0, 1, size), size)


@pytest.mark.parametrize("size", [32, 63, 513, 1024])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_sizes_raise(kind: str, size: int) -> None:
    with pytest.raises(ValueError, match="64 to 512"):
        KINDS[kind](0, 0, size)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="grade"):
        S.grading_tile(0, 0, 64, grade="R6")
    with pytest.raises(ValueError, match="tumour_area"):
        S.he_tile(0, 0, 64, tumour_area=(0.5, 0.2))
    with pytest.raises(ValueError, match="seed"):
        S.he_tile(-1, 0, 64)


# ----------------------------------------------------------------------------- H&E


@pytest.fixture(scope="module")
def he_tiles() -> list[S.Tile]:
    return [S.he_tile(7, i, 128, tumour=i % 4 != 0) for i in range(16)]


def test_he_tumour_mask_area(he_tiles: list[S.Tile]) -> None:
    for t in he_tiles:
        frac = t.mask.mean()
        if t.label == 1:
            assert S.TUMOUR_AREA_DEFAULT[0] <= frac <= S.TUMOUR_AREA_DEFAULT[1]
            assert t.meta["tumour_fraction"] == pytest.approx(frac)
        else:
            assert frac == 0.0
            assert not (t.nuclei_type == S.NEOPLASTIC).any()
    for i in range(6):
        assert 0.3 <= S.he_tile(1, i, 96, tumour_area=(0.3, 0.35)).mask.mean() <= 0.35


def test_he_nucleus_sizes(he_tiles: list[S.Tile]) -> None:
    neo, non = [], []
    for t in he_tiles:
        areas, types = _areas(t), _instance_types(t)
        neo.extend(areas[types == S.NEOPLASTIC])
        non.extend(areas[types == S.NON_NEOPLASTIC])
    assert len(neo) > 50 and len(non) > 500
    assert np.mean(neo) > 1.8 * np.mean(non)


def test_he_instances_consistent(he_tiles: list[S.Tile]) -> None:
    for t in he_tiles:
        inst, typ = t.nuclei_instance, t.nuclei_type
        ids = np.unique(inst[inst > 0])
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # ids 1..K, none missing
        assert t.meta["n_nuclei"] == len(ids) > 0
        assert np.array_equal(inst > 0, typ > 0)
        pairs = np.unique(inst[inst > 0].astype(np.int64) * 4 + typ[inst > 0])
        assert len(pairs) == len(ids)  # one type per instance
        assert set(np.unique(typ)) <= {0, 1, 2}


def test_he_nuclei_respect_the_mask(he_tiles: list[S.Tile]) -> None:
    for t in he_tiles:
        areas, types = _areas(t), _instance_types(t)
        inside = np.bincount(t.nuclei_instance[t.mask], minlength=len(areas) + 1)[1:]
        neo = types == S.NEOPLASTIC
        assert (inside[neo] >= 0.95 * areas[neo]).all()
        assert (inside[types == S.NON_NEOPLASTIC] == 0).all()


def test_he_stain_variation_recorded(he_tiles: list[S.Tile]) -> None:
    refs = {"stain_h": S.H_REF, "stain_e": S.E_REF}
    for key, ref in refs.items():
        ref = np.asarray(ref) / np.linalg.norm(ref)
        vecs = np.array([t.meta[key] for t in he_tiles])
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
        angles = np.degrees(np.arccos(np.clip(vecs @ ref, -1, 1)))
        assert angles.max() <= S.STAIN_MAX_ROTATION_DEG + 0.5
        assert np.ptp(angles) > 1.0  # tiles really differ
    scales = [t.meta["conc_scale_h"] for t in he_tiles]
    assert min(scales) >= S.CONC_SCALE[0] and max(scales) <= S.CONC_SCALE[1]
    assert np.ptp(scales) > 0.1


def test_he_colours_look_like_he(he_tiles: list[S.Tile]) -> None:
    """Nuclei are dark and blue-purple, the rest lighter and pink (red above green)."""
    for t in he_tiles:
        img = t.image.astype(float)
        nuc, rest = t.nuclei_instance > 0, t.nuclei_instance == 0
        assert img[nuc].mean() < img[rest].mean() - 30
        assert img[nuc][:, 2].mean() > img[nuc][:, 1].mean()  # blue > green in nuclei
        assert img[rest][:, 0].mean() > img[rest][:, 1].mean() + 20  # pink background


def _effective_density(tile: S.Tile, region: np.ndarray) -> np.ndarray:
    """(H, E) densities of the region's mean transmission, split along the tile's stain vectors."""
    basis = np.stack([tile.meta["stain_h"], tile.meta["stain_e"]], axis=1)
    mean_t = tile.image[region].astype(float).mean(0) / 255
    od = -np.log(mean_t) - np.asarray(S.RESIDUAL_OD)
    return np.linalg.lstsq(basis, od, rcond=None)[0]


def test_regions_have_the_tile_target_colour() -> None:
    """Evidence region and rest each have the tile's target mean densities, whatever the class."""
    for i in range(8):
        he = S.he_tile(3, i, 128, tumour=i % 2 == 1)
        grading = S.grading_tile(3, i, 128, S.GRADES[1 + i % 6])
        for t, ref in ((he, S.DENSITY_REF_HE), (grading, S.DENSITY_REF_GRADING)):
            target = np.asarray(ref) * (t.meta["conc_scale_h"], t.meta["conc_scale_e"])
            regions = [r for r in (t.mask, ~t.mask) if r.any()]
            assert len(regions) == 1 + int(t.label > (0 if t.meta["kind"] == "he" else 1))
            for region in regions:
                assert _effective_density(t, region) == pytest.approx(target, rel=0.06)


def test_lymph_node_structures() -> None:
    """Follicles, sinuses and capsules all occur; a capsule edge band holds no lymphocytes."""
    seen: set[str] = set()
    capsule_tiles = 0
    for i in range(40):
        t = S.he_tile(2, i, 96, tumour=False)
        seen |= set(t.meta["structures"])
        if "capsule" not in t.meta["structures"]:
            continue
        capsule_tiles += 1
        nuclei = t.nuclei_instance > 0
        bands = [nuclei[:3].mean(), nuclei[-3:].mean(), nuclei[:, :3].mean(), nuclei[:, -3:].mean()]
        assert min(bands) < 0.5 * nuclei.mean()  # one edge band (the capsule) is nearly empty
    assert seen == {"follicle", "sinus", "capsule"} and capsule_tiles > 0


def test_he_set_balance() -> None:
    for n, share in [(10, 0.5), (7, 0.3), (5, 1.0)]:
        tiles = S.he_set(n, size=64, seed=3, tumour_share=share)
        labels = [t.label for t in tiles]
        assert len(tiles) == n and sum(labels) == round(n * share)
        assert all((t.mask.any()) == bool(t.label) for t in tiles)
    assert [t.label for t in S.he_set(10, 64, seed=3)] != [t.label for t in S.he_set(10, 64, 4)]


# ----------------------------------------------------------------------------- grading


def test_grading_set_balance_and_order() -> None:
    tiles = S.grading_set(2, size=64, seed=1)
    labels = [t.label for t in tiles]
    assert np.bincount(labels).tolist() == [2] * len(S.GRADES)
    assert labels == [t.label for t in S.grading_set(2, size=64, seed=1)]
    assert all(t.meta["class"] == S.GRADES[t.label] for t in tiles)


def test_grading_masks_and_types() -> None:
    for i in range(3):
        for g in S.GRADES:
            t = S.grading_tile(5, i, 128, g)
            types = _instance_types(t)
            if g == "N":
                assert not t.mask.any() and not (types == S.NEOPLASTIC).any()
            elif g == "A":
                assert t.mask.any() and t.meta["artifact"]
                assert set(t.meta["artifact"]) <= set(S.ARTIFACTS)
            else:
                assert t.mask.any() and (types == S.NEOPLASTIC).sum() > 3
                areas = _areas(t)
                inside = np.bincount(t.nuclei_instance[t.mask], minlength=len(areas) + 1)[1:]
                neo = types == S.NEOPLASTIC
                assert (inside[neo] >= 0.95 * areas[neo]).all()


def test_grade_monotonicity() -> None:
    area, density = [], []
    for g in S.GRADES[2:]:
        a, d = [], []
        for i in range(10):
            t = S.grading_tile(0, i, 128, g)
            areas, types = _areas(t), _instance_types(t)
            a.append(areas[types == S.NEOPLASTIC].mean())
            d.append(len(areas) / t.nuclei_instance.size)
        area.append(np.mean(a))
        density.append(np.mean(d))
    assert np.all(np.diff(area) > 0), area
    assert np.all(np.diff(density) > 0), density


def test_artifact_kinds_all_occur() -> None:
    seen = set()
    for i in range(20):
        seen |= set(S.grading_tile(2, i, 64, "A").meta["artifact"])
    assert seen == set(S.ARTIFACTS)


# ----------------------------------------------------------------------------- pCLE


def test_pcle_frames() -> None:
    size = 128
    yy, xx = np.indices((size, size))
    c = (size - 1) / 2
    outside = np.hypot(yy - c, xx - c) > S.PCLE_FOV_FRAC * size
    for i in range(6):
        men = S.pcle_frame(0, i, size, meningioma=True, patient_id=i % 3)
        gbm = S.pcle_frame(0, i, size, meningioma=False, patient_id=i % 3)
        for t in (men, gbm):
            _check_tile(t, size)
            assert (t.image[outside] == 0).all()
            assert (t.image[..., 0] == t.image[..., 1]).all()
            assert (t.image[..., 0] == t.image[..., 2]).all()
            assert not t.nuclei_instance.any() and not t.nuclei_type.any()
        assert men.label == 1 and gbm.label == 0
        assert men.mask.any() and not gbm.mask.any()
        assert not (men.mask & outside).any()
        grey = men.image[..., 0].astype(float)
        background = ~men.mask & ~outside
        assert grey[men.mask].mean() > grey[background].mean() + 30
        assert 1 <= men.meta["n_psammoma"] <= S.PSAMMOMA_COUNT[1]


def test_pcle_frames_are_not_dark() -> None:
    frames = S.pcle_set(6, 2, size=96, seed=4)
    means = [f.image[..., 0].mean() for f in frames]
    assert 40 < np.mean(means) < 90  # whole frame incl. the black corners (was 29-33)
    assert min(means) > 20


def test_pcle_set_patients() -> None:
    frames = S.pcle_set(4, 3, size=64, seed=0)
    assert len(frames) == 12
    by_patient: dict[int, set[int]] = {}
    for f in frames:
        by_patient.setdefault(f.meta["patient_id"], set()).add(f.label)
    assert sorted(by_patient) == [0, 1, 2, 3]
    assert all(len(v) == 1 for v in by_patient.values())  # one diagnosis per patient
    assert sorted(next(iter(v)) for v in by_patient.values()) == [0, 0, 1, 1]
    b0 = frames[0].meta["brightness"]
    assert all(f.meta["brightness"] == b0 for f in frames[:3])
    assert frames[3].meta["brightness"] != b0  # patient-level appearance differs


# ----------------------------------------------------------------------------- rules, speed


def test_rules_are_in_sync_with_constants() -> None:
    assert set(S.RULES) == {"he", "grading", "pcle"}
    he, grading, pcle = (" ".join(S.RULES[k]) for k in ("he", "grading", "pcle"))
    assert f"{S.LYMPH_PITCH:g} px" in he and f"{S.TUMOUR_PITCH:g} px" in he
    assert f"{S.TUMOUR_NUCLEUS.radius[0]:g}-{S.TUMOUR_NUCLEUS.radius[1]:g} px" in he
    for g in S.GRADES[1:]:
        assert f"{S.GRADE_SPECS[g].nucleus_radius:g} px" in grading
    assert all(a in grading for a in S.ARTIFACTS)
    assert f"{S.PSAMMOMA_RADIUS[0]:g}-{S.PSAMMOMA_RADIUS[1]:g} px" in pcle
    assert str(S.DENSITY_REF_HE) in he and str(S.DENSITY_REF_GRADING) in grading
    assert f"{S.PCLE_BACKGROUND:g}" in pcle and f"{1 - S.PSAMMOMA_COMPENSATION:g}" in pcle


def test_speed_he_tiles() -> None:
    S.he_tile(0, 0, 128)  # warm-up (imports, FFT plans)
    # CPU time of this thread: not slowed by other jobs' load, nor counting the idle threads
    # of pools that earlier tests in this process started
    start = time.thread_time()
    S.he_set(200, size=128, seed=9)
    assert time.thread_time() - start < 8.0
