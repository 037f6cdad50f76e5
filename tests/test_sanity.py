"""Model-parameter randomisation: layer selection, map similarity, and that it separates models."""

import numpy as np
import pytest
import torch
from torch import nn

from xaistudy.evaluate import sanity
from xaistudy.explain import explain
from xaistudy.models.classifiers import SmallCNN, target_layer


def test_rank_correlation_hand_value():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 3.0], [2.0, 4.0]])  # rank differences 0, 1, 1, 0
    assert sanity.rank_correlation(a, b) == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert sanity.rank_correlation(a, a) == pytest.approx(1.0)
    assert sanity.rank_correlation(a, -a) == pytest.approx(-1.0)
    assert sanity.rank_correlation(a, -a, absolute=True) == pytest.approx(1.0)
    assert sanity.rank_correlation(a, np.zeros((2, 2))) == 0.0
    assert np.isnan(sanity.rank_correlation(np.zeros((2, 2)), np.zeros((2, 2))))


def test_ssim_is_scale_free_and_drops_for_unrelated_maps():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    assert sanity.ssim(a, 3 * a + 2) == pytest.approx(1.0)
    assert sanity.ssim(a, rng.random((32, 32))) < 0.2


def small_model(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(2, widths=(4, 8, 8)).eval()


def test_randomise_top_layers_changes_exactly_the_top_k():
    model = small_model()
    names = [n for n, _ in sanity.weight_layers(model)]
    assert names == ["features.0.0", "features.1.0", "features.2.0", "classifier"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rand = sanity.randomise_top_layers(model, 2, seed=1)
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, before[k])
    after = rand.state_dict()
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])
    assert not torch.equal(after["features.2.0.weight"], before["features.2.0.weight"])
    assert torch.equal(after["features.1.0.weight"], before["features.1.0.weight"])
    again = sanity.randomise_top_layers(model, 2, seed=1).state_dict()
    assert all(torch.equal(after[k], again[k]) for k in after)  # seeded
    steps = list(sanity.cascading_randomisation(model, max_layers=3))
    assert [(k, n) for k, n, _ in steps] == [
        (1, "classifier"),
        (2, "features.2.0"),
        (3, "features.1.0"),
    ]
    with pytest.raises(ValueError, match="k must be from 1 to 4"):
        sanity.randomise_top_layers(model, 5)


@pytest.fixture(scope="module")
def trained():
    """A model trained to call images with a bright top-left quadrant class 1."""
    torch.manual_seed(0)
    model = SmallCNN(2, widths=(8, 16, 16))
    x = torch.rand(32, 3, 32, 32) * 0.5
    y = torch.arange(32) % 2
    x[y == 1, :, :16, :16] += 0.5
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():  # exact batch-norm statistics of the final weights
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model(x)
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x[y == 1][:4]


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_sanity_check_separates_trained_from_reinitialised(method, trained):
    model, x = trained
    maps = explain(method, model, x, 1, layer=target_layer(model))
    same = explain(method, model, x, 1, layer=target_layer(model))
    rand = sanity.randomise_top_layers(model, 2, seed=0)
    rand_maps = explain(method, rand, x, 1, layer=target_layer(rand))
    assert np.nanmean(sanity.compare_batches(maps, same)["spearman"]) == pytest.approx(1.0)
    assert np.nanmean(sanity.compare_batches(maps, rand_maps)["spearman"]) < 0.5


def test_bad_maps_are_one_line():
    with pytest.raises(ValueError, match="same shape"):
        sanity.rank_correlation(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        sanity.ssim(np.full((8, 8), np.nan), np.zeros((8, 8)))
