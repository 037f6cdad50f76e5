"""The Clever-Hans data: pen marks, their co-occurrence with the class, clean tiles."""

import numpy as np
import pytest
from scipy import ndimage

from xaistudy.core.store import Store
from xaistudy.data import shortcuts, synthetic


def test_clean_tiles_are_the_synthetic_he_tiles():
    tile, pen = shortcuts.pen_tile(0, 5, size=64, tumour=True, marks="none")
    ref = synthetic.he_tile(0, 5, size=64, tumour=True)
    assert np.array_equal(tile.image, ref.image) and not pen.any()
    assert np.array_equal(tile.mask, ref.mask)


def test_pen_mark_changes_only_the_stroke_and_has_the_ink_colour():
    image = synthetic.he_tile(0, 1, size=64, tumour=True).image
    marked, stroke = shortcuts.add_pen_mark(image, np.random.default_rng(0), ink="green")
    assert 0.01 < stroke.mean() < 0.5
    near = ndimage.binary_dilation(stroke, iterations=2)
    assert np.array_equal(marked[~near], image[~near])  # tissue outside the stroke untouched
    drop = image[stroke].astype(float).mean(0) - marked[stroke].astype(float).mean(0)
    ink = np.asarray(synthetic.PEN_INKS["green"])
    assert np.argmax(drop) == np.argmax(ink)  # green ink absorbs red light most
    assert (drop > 0).all()


def test_cooccurrence_sets_the_marking_rates():
    idx = range(3000)
    for rate in (1.0, 0.8, 0.5):
        tumour = np.mean([shortcuts.is_marked(0, i, True, rate) for i in idx])
        normal = np.mean([shortcuts.is_marked(0, i, False, rate) for i in idx])
        assert tumour == pytest.approx(rate, abs=0.03)
        assert normal == pytest.approx(1 - rate, abs=0.03)


def test_dataset_marks_exactly_the_tumour_tiles_at_full_cooccurrence(tmp_path):
    ds = shortcuts.synthetic_he_pen("test", n=8, size=64, cooccurrence=1.0, store=Store(tmp_path))
    sample = ds[1]
    assert sample["pen"].shape == (64, 64) and sample["mask"].shape == (1, 64, 64)
    marked = [bool(ds[i]["marked"]) for i in range(8)]
    assert marked == [bool(i % 2) for i in range(8)]  # odd samples are the tumour tiles
    again = shortcuts.synthetic_he_pen(
        "test", n=8, size=64, cooccurrence=1.0, store=Store(tmp_path)
    )
    assert np.array_equal(ds.images, again.images)
    clean = shortcuts.synthetic_he_pen("test", n=8, size=64, marks="none", store=Store(tmp_path))
    assert not any(bool(clean[i]["marked"]) for i in range(8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cooccurrence": 1.5}, "cooccurrence must be in"),
        ({"marks": "some"}, "marks must be"),
        ({"ink": "red"}, "unknown ink"),
    ],
)
def test_bad_arguments_are_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        shortcuts.pen_tile(0, 1, size=64, tumour=True, **kwargs)
