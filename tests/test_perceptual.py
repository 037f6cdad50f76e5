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


ALEXNET_CONVS = {
    0: (64, 3, 11),
    3: (192, 64, 5),
    6: (384, 192, 3),
    8: (256, 384, 3),
    10: (256, 256, 3),
}


def fake_alexnet_file(path):
    """A torchvision-style AlexNet ``features.*`` state dict with random weights."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for i, (out, inp, k) in ALEXNET_CONVS.items():
        state[f"features.{i}.weight"] = 0.05 * torch.randn(out, inp, k, k, generator=gen)
        state[f"features.{i}.bias"] = 0.01 * torch.randn(out, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_lpips_alex_uses_a_given_weights_file(tmp_path, images):
    path = tmp_path / "weights" / "my_alexnet.pth"
    state = fake_alexnet_file(path)
    assert perceptual.alexnet_weights_path(str(path)) == path
    model = perceptual._lpips_model(torch.device("cpu"), path)
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv, i in zip(convs, ALEXNET_CONVS, strict=True):
        assert torch.equal(conv.weight, state[f"features.{i}.weight"])
    assert np.allclose(perceptual.lpips_alex(images, images, weights=path), 0, atol=1e-6)
    d = [perceptual.lpips_alex(images, noisy(images, s), weights=path).mean() for s in (0.05, 0.3)]
    assert 0 < d[0] < d[1]
    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        perceptual.alexnet_weights_path(tmp_path / "nowhere.pth")


def test_lpips_alex_finds_the_standard_file_under_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    standard = tmp_path / "hub" / "checkpoints" / perceptual.ALEXNET_FILE
    fake_alexnet_file(standard)
    assert perceptual.alexnet_weights_path() == standard
    assert perceptual.alexnet_weights_path("") == standard


def test_ibo_strategy_reports_lpips_alex_with_a_weights_file(tmp_path, model):
    from xaistudy.studies import ibo

    path = tmp_path / "alex.pth"
    fake_alexnet_file(path)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    levels = np.random.default_rng(1).integers(1, 6, (2, 1, 32, 32))
    ood = perceptual.Mahalanobis().fit(
        perceptual.penultimate_features(model, torch.rand(20, 3, 32, 32))
    )
    seeds = ibo.noise_seeds(0, [0, 1], 1)
    res = ibo.evaluate_strategy(
        "blackening", model, images, levels, seeds, 4, ood, alexnet_weights=str(path)
    )
    assert res["lpips_alex"].shape == (2, 1, 4)
    assert np.all(np.diff(res["lpips_alex"], axis=-1) >= -1e-6)  # cumulative masks: further away
    assert res["lpips_alex"][..., -1].min() > 0
