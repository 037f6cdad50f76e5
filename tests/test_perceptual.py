"""LPIPS availability, the substitutes (SSIM, classifier-feature LPIPS form), Mahalanobis OoD."""

import numpy as np
import pytest
import torch

from xaistudy.evaluate import perceptual
from xaistudy.models.classifiers import SmallCNN


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SmallCNN(2).eval()


@pytest.fixture
def images():
    return 0.2 + 0.6 * torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def noisy(images, std, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (images + std * torch.randn(images.shape, generator=gen)).clamp(0, 1)


def test_feature_distance_zero_for_identical_and_grows_with_noise(model, images):
    assert np.allclose(perceptual.feature_distance(model, images, images), 0, atol=1e-10)
    d = [
        perceptual.feature_distance(model, images, noisy(images, s)).mean()
        for s in (0.02, 0.1, 0.3)
    ]
    assert 0 < d[0] < d[1] < d[2]


def test_feature_distance_equals_the_lpips_formula_by_hand(model, images):
    other = noisy(images, 0.1)
    layers = perceptual.feature_layers(model)
    assert len(layers) == 4
    acts = {}
    for name, x in (("a", images), ("b", other)):
        outs = []
        hooks = [
            m.register_forward_hook(lambda _m, _i, o, outs=outs: outs.append(o)) for m in layers
        ]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        acts[name] = outs
    expected = sum(
        (
            (
                a / a.norm(dim=1, keepdim=True).clamp_min(1e-10)
                - b / b.norm(dim=1, keepdim=True).clamp_min(1e-10)
            )
            ** 2
        )
        .sum(1)
        .mean((1, 2))
        for a, b in zip(acts["a"], acts["b"], strict=True)
    )
    assert np.allclose(
        perceptual.feature_distance(model, images, other), expected.numpy(), rtol=1e-5
    )


def test_ssim_one_for_identical_and_drops_with_noise(images):
    assert np.allclose(perceptual.ssim(images, images), 1.0)
    assert (
        perceptual.ssim(images, noisy(images, 0.2)).mean()
        < perceptual.ssim(images, noisy(images, 0.05)).mean()
        < 1
    )
    with pytest.raises(ValueError, match="same shape"):
        perceptual.ssim(images, images[:2])


def test_mahalanobis_scores_far_points_higher(model, images):
    rng = np.random.default_rng(0)
    train = rng.normal(0, 1, (500, 3))
    ood = perceptual.Mahalanobis().fit(train)
    near, far = ood.score(np.zeros((1, 3))), ood.score(np.full((1, 3), 6.0))
    assert near[0] < 0.2 and far[0] == pytest.approx(np.sqrt(3 * 36), rel=0.15)
    with pytest.raises(ValueError, match="before fit"):
        perceptual.Mahalanobis().score(train)
    feats = perceptual.penultimate_features(model, images)
    assert feats.shape == (4, 128)


def test_lpips_alex_needs_the_local_file(monkeypatch, tmp_path, images):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert perceptual.alexnet_weights_path() is None
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        perceptual.lpips_alex(images, images)
