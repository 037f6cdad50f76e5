"""The explanation core: every method runs, CAMs and RISE find a known decisive region,
IG is complete, LRP conserves relevance, and bad input is refused clearly."""

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from xaistudy.explain import ATTRIBUTIONS, CAM_METHODS, METHODS, attribute, compute_cam, explain
from xaistudy.explain.rise import fill_like, rise, rise_masks
from xaistudy.models.classifiers import build_classifier, target_layer
from xaistudy.stats.intervals import mean_ci

FAST = {
    "integrated_gradients": {"n_steps": 4},
    "ig_noise_tunnel": {"n_steps": 4, "nt_samples": 2},
    "smoothgrad": {"nt_samples": 3},
    "lime": {"num_samples": 30},
    "kernel_shap": {"n_samples": 30, "n_segments": 16},
    "feature_ablation": {"n_segments": 16},
    "rise": {"n_masks": 32},
    "scorecam": {"batch_size": 64},
}


def test_methods_table_matches_implementations():
    assert set(METHODS) == set(ATTRIBUTIONS) | set(CAM_METHODS)
    assert {m.family for m in METHODS.values()} == {"perturbation", "backpropagation", "cam"}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_classifier("small_cnn", num_classes=2).eval()
    x = torch.rand(2, 3, 64, 64)
    return model, x


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gives_finite_maps_of_input_size(method, tiny):
    model, x = tiny
    maps = explain(method, model, x, [0, 1], layer=target_layer(model), **FAST.get(method, {}))
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.std() > 0, "a constant map explains nothing"


class Spotlight(nn.Module):
    """Class 1 logit = mean of ReLU(channel sum) over the image; class 0 = its negative.

    Only bright pixels activate ``features``, so the decisive region is where the input is bright.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 1, bias=False)
        nn.init.constant_(self.features.weight, 1.0)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]))

    def forward(self, x):
        return self.fc(self.relu(self.features(x - 0.5)).mean((2, 3)))


def square_image(size=32, top=4, left=4, side=10):
    x = torch.full((1, 3, size, size), 0.3)
    x[..., top : top + side, left : left + side] = 1.0
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return x, mask


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
def test_cam_highlights_the_decisive_region(method):
    model = Spotlight().eval()
    x, mask = square_image()
    cam = compute_cam(method, model, x, 1, model.relu)[0]
    assert cam[mask].mean() > 0.8 and cam[~mask].mean() < 0.1
    assert mask[np.unravel_index(cam.argmax(), cam.shape)]


def test_rise_finds_the_only_region_that_matters():
    region = np.zeros((32, 32), bool)
    region[20:30, 2:12] = True
    r = torch.from_numpy(region)

    def score(images):  # depends only on the pixels inside the region
        return images[:, :, r].mean((1, 2))

    saliency = rise(score, torch.ones(1, 3, 32, 32), n_masks=400, seed=0, cells=8)[0]
    outside = saliency[~region]
    assert saliency[region].mean() - outside.mean() > 2 * outside.std()
    top = saliency >= np.quantile(saliency, 0.9)
    assert (top & region).sum() / top.sum() > 0.6  # chance level: 0.1
    assert np.array_equal(saliency, rise(score, torch.ones(1, 3, 32, 32), n_masks=400, seed=0)[0])


def test_rise_masks_shape_range_density_and_seed():
    m = rise_masks(200, (40, 30), cells=6, p=0.3, seed=1)
    assert m.shape == (200, 1, 40, 30) and m.min() >= 0 and m.max() <= 1
    assert abs(float(m.mean()) - 0.3) < 0.05
    assert torch.equal(m, rise_masks(200, (40, 30), cells=6, p=0.3, seed=1))
    with pytest.raises(ValueError, match="p must be in"):
        rise_masks(2, 8, p=1.0)


def test_integrated_gradients_is_complete():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).eval()
    x = torch.rand(2, 3, 8, 8)
    for baseline in (0.0, 1.0):  # black (the default) and white: complete for either
        attr = attribute("integrated_gradients", model, x, [2, 0], n_steps=300, baseline=baseline)
        with torch.no_grad():
            delta = model(x) - model(torch.full_like(x, baseline))
        expected = torch.stack([delta[0, 2], delta[1, 0]])
        torch.testing.assert_close(attr.sum((1, 2, 3)), expected, rtol=1e-2, atol=1e-3)
    # the map depends on the baseline: the review's warning, on a network where it must
    black = attribute("integrated_gradients", model, x, [2, 0], n_steps=300)
    assert not torch.allclose(black, attr, atol=1e-3)


def test_lrp_conserves_relevance_on_a_bias_free_network():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 2, bias=False),
    ).eval()
    x = torch.rand(3, 3, 8, 8)
    relevance = attribute("lrp", model, x, [1, 1, 0])
    with torch.no_grad():
        logits = model(x)
    expected = logits[torch.arange(3), torch.tensor([1, 1, 0])]
    torch.testing.assert_close(relevance.sum((1, 2, 3)), expected, rtol=2e-2, atol=1e-3)


def test_lrp_handles_resnet_skip_connections():
    model = build_classifier("resnet18", num_classes=2).eval()
    relevance = attribute("lrp", model, torch.rand(1, 3, 64, 64), 1)
    assert relevance.shape == (1, 3, 64, 64) and torch.isfinite(relevance).all()


def test_clear_errors():
    model = Spotlight().eval()
    x, _ = square_image()
    with pytest.raises(ValueError, match="unknown method 'gradcam2'"):
        explain("gradcam2", model, x, 1)
    with pytest.raises(ValueError, match="needs layer="):
        explain("gradcam", model, x, 1)
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        explain("saliency", model, x, [0, 1])
    with pytest.raises(ValueError, match="needs layer="):
        explain("guided_gradcam", model, x, 1)


def test_wrong_layer_is_not_swallowed():
    model = Spotlight().eval()
    x, _ = square_image()
    stranger = nn.Conv2d(3, 3, 1)  # not part of the model: its hooks never fire
    with pytest.raises((ValueError, RuntimeError, AttributeError)):
        compute_cam("gradcam", model, x, 1, stranger)


def test_mean_ci_matches_scipy():
    values = np.array([0.2, 0.4, 0.35, 0.5, 0.1, np.nan])
    mean, low, high = mean_ci(values)
    finite = values[np.isfinite(values)]
    ref = sps.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=sps.sem(finite))
    assert mean == pytest.approx(finite.mean())
    assert (low, high) == pytest.approx(ref)
    assert np.isnan(mean_ci([])).all()  # NaNs, not numbers, for no data
    assert mean_ci([0.3]) == (0.3, 0.3, 0.3)


def test_lime_keeps_only_the_top_superpixels(tiny):
    model, x = tiny
    attr = attribute("lime", model, x[:1], 0, num_samples=40, num_features=3)
    values = np.unique(attr[0, 0].numpy())
    assert 1 <= len(values[values != 0]) <= 3
    positive = attribute(
        "lime", model, x[:1], 0, num_samples=40, num_features=3, positive_only=True
    )
    assert (positive >= 0).all()


def test_rise_coverage_normalisation_removes_the_mask_pattern():
    constant = rise(lambda x: torch.ones(len(x)), torch.ones(1, 3, 16, 16), n_masks=50)[0]
    np.testing.assert_allclose(constant, 1.0, rtol=1e-5)  # a score that never changes: flat map
    petsiuk = rise(
        lambda x: torch.ones(len(x)), torch.ones(1, 3, 16, 16), n_masks=50, normalise="p"
    )[0]
    assert petsiuk.std() > 0.01  # dividing by N * p leaves the masks' own coverage pattern
    with pytest.raises(ValueError, match="normalise must be"):
        rise(lambda x: torch.ones(len(x)), torch.ones(1, 3, 8, 8), n_masks=2, normalise="max")


def test_a_misspelt_option_is_named_not_swallowed(tiny):
    model, x = tiny
    layer = target_layer(model)
    with pytest.raises(
        ValueError,
        match=r"unknown option 'n_step' of method 'integrated_gradients'; "
        r"allowed: n_steps, baseline, internal_batch_size$",
    ):
        explain("integrated_gradients", model, x, [0, 1], n_step=4)
    with pytest.raises(ValueError, match="unknown option 'num_sample' of method 'lime'"):
        attribute("lime", model, x[:1], 0, num_sample=40)
    with pytest.raises(ValueError, match="unknown option 'eigen_smoth' of method 'gradcam'"):
        explain("gradcam", model, x, [0, 1], layer=layer, eigen_smoth=True)
    with pytest.raises(
        ValueError, match="unknown option 'seed' of method 'saliency'; allowed: none"
    ):
        explain("saliency", model, x, [0, 1], seed=1)


def test_registry_carries_each_methods_metadata_and_options():
    from xaistudy.explain import CHANNEL_SHARED, FAMILIES, method_names
    from xaistudy.explain.registry import keyword_options, register_method

    assert [m.family for m in METHODS.values()] == sorted(
        (m.family for m in METHODS.values()), key=FAMILIES.index
    )
    assert method_names("cam") == tuple(CAM_METHODS)
    for name, fn in ATTRIBUTIONS.items():
        assert METHODS[name].options == keyword_options(fn)
    assert METHODS["integrated_gradients"].options == ("n_steps", "baseline", "internal_batch_size")
    assert METHODS["rise"].signed is False and METHODS["guided_gradcam"].needs_layer
    assert METHODS["fullgrad"].needs_layer is False and METHODS["gradcam"].needs_layer
    assert set(CHANNEL_SHARED) == {"occlusion", "feature_ablation", "kernel_shap", "lime", "rise"}
    with pytest.raises(TypeError, match="name every option"):
        register_method("sloppy", label="x", family="cam", library="x", passes="x")(
            lambda model, inputs, targets, **_: inputs
        )
    assert "sloppy" not in METHODS
    with pytest.raises(ValueError, match="registered twice"):
        register_method("saliency", label="x", family="cam", library="x", passes="x")(
            lambda model, inputs, targets: inputs
        )


def test_channel_shared_maps_are_one_channel_not_the_sum(tiny):
    model, x = tiny
    attr = attribute("occlusion", model, x, [0, 1], window=8, stride=8)
    assert torch.equal(attr[:, 0], attr[:, 1]) and torch.equal(attr[:, 0], attr[:, 2])
    maps = explain("occlusion", model, x, [0, 1], window=8, stride=8)
    np.testing.assert_array_equal(maps, attr[:, 0].numpy())
    grads = attribute("saliency", model, x, [0, 1])
    np.testing.assert_allclose(
        explain("saliency", model, x, [0, 1]), grads.sum(dim=1).numpy(), rtol=1e-6
    )


def test_the_contributing_guide_adds_a_method_with_one_registered_function(tiny):
    """CONTRIBUTING.md's diff, verbatim: one registered function is a whole new method."""
    import re
    from pathlib import Path

    from xaistudy.explain import attributions

    guide = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
    start = r"```diff\n--- a/xaistudy/explain/attributions.py.*?\n@@\n(.*?)```"
    diff = re.search(start, guide, re.S)
    code = "\n".join(line[1:] for line in diff.group(1).splitlines())
    model, x = tiny
    before = dict(METHODS)
    try:
        exec(code, vars(attributions))  # noqa: S102 (the guide's code, in the module it names)
        maps = explain("gradient_shap", model, x, [0, 1], n_samples=4)
        assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
        with pytest.raises(ValueError, match="n_sample"):
            explain("gradient_shap", model, x, [0, 1], n_sample=4)
    finally:
        METHODS.clear()
        METHODS.update(before)


def test_rise_fill_black_mean_and_blur():
    """What RISE's hidden pixels show: zero, the image's mean colour, or the image blurred
    (smoother than the image, its mean kept); an unknown fill is refused in one line."""
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert fill_like(image, "black") == 0.0
    mean = fill_like(image, "mean")
    assert mean.shape == (1, 3, 1, 1)
    torch.testing.assert_close(mean[0, :, 0, 0], image[0].mean(dim=(1, 2)))
    blur = fill_like(image, "blur", cells=8)
    assert blur.shape == image.shape
    assert blur.diff(dim=-1).abs().mean() < 0.2 * image.diff(dim=-1).abs().mean()
    assert blur.mean().item() == pytest.approx(image.mean().item(), abs=0.02)
    with pytest.raises(ValueError, match="unknown RISE fill 'grey'; allowed: black, mean, blur"):
        fill_like(image, "grey")
    # a fill that equals the image hides nothing: every mask scores the same, a flat map
    flat = rise(lambda x: x.mean(dim=(1, 2, 3)), image, n_masks=16, baseline=image)
    assert np.ptp(flat) < 1e-5
