"""k-means importance levels and the six occlusion strategies."""

import numpy as np
import pytest
import torch

from xaistudy.evaluate import occlusion
from xaistudy.models.ddpm import build_unet, make_scheduler


def smooth_map(seed: int, size: int = 32) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    m = gaussian_filter(np.random.default_rng(seed).random((size, size)), 3)
    return (m - m.min()) / (m.max() - m.min())


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    images = 0.05 + 0.9 * torch.rand(3, 3, 32, 32, generator=gen)
    mask = (torch.rand(3, 1, 32, 32, generator=gen) > 0.6).float()
    return images, mask


def test_levels_are_ordered_by_intensity_and_masks_nested():
    heat = smooth_map(1)
    levels = occlusion.importance_levels(heat, k=5)
    assert set(np.unique(levels)) == {1, 2, 3, 4, 5}
    for i in range(1, 5):  # every value of level i is above every value of level i + 1
        assert heat[levels == i].min() >= heat[levels == i + 1].max()
    masks = occlusion.nested_masks(levels, 4)
    assert masks.shape == (4, 32, 32)
    for i in range(3):
        assert np.all(masks[i] <= masks[i + 1]) and masks[i].sum() < masks[i + 1].sum()
    assert not masks[-1][levels == 5].any()  # level 5 is never occluded


def test_levels_edge_cases_and_errors():
    assert np.all(occlusion.importance_levels(np.zeros((8, 8))) == 5)  # no important pixels
    two = np.zeros((8, 8))
    two[:2] = 1.0
    lv = occlusion.importance_levels(two)
    assert np.all(lv[:2] == 1) and np.all(lv[2:] == 5)
    with pytest.raises(ValueError, match="NaN"):
        occlusion.importance_levels(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="H, W"):
        occlusion.importance_levels(np.zeros(5))


@pytest.mark.parametrize("strategy", ["blackening", "mean", "histogram", "blurring", "nli"])
def test_strategy_changes_exactly_the_masked_pixels(strategy, batch):
    images, mask = batch
    options = {"mean": {"dataset_mean": [0.3, 0.4, 0.5]}, "blurring": {"blur_sigma": 2.0}}
    out = occlusion.occlude(strategy, images, mask, seeds=[1, 2, 3], **options.get(strategy, {}))
    occluded = mask.bool().expand_as(images)
    assert torch.equal(out[~occluded], images[~occluded])
    changed = (out != images) & occluded
    assert changed.sum() / occluded.sum() > 0.98


def test_blackening_and_mean_match_the_equations(batch):
    images, mask = batch
    assert torch.allclose(occlusion.occlude("blackening", images, mask), images * (1 - mask))
    mu = torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1)
    expected = images * (1 - mask) + mu * mask
    assert torch.allclose(
        occlusion.occlude("mean", images, mask, dataset_mean=mu.flatten()), expected
    )


def test_histogram_draws_colours_of_the_image(batch):
    images, mask = batch
    out = occlusion.occlude("histogram", images, mask, seeds=[0, 1, 2])
    colours = {tuple(c) for c in images[0].reshape(3, -1).T.tolist()}
    filled = out[0].reshape(3, -1).T[mask[0].flatten().bool()].tolist()
    assert all(tuple(c) in colours for c in filled)


def test_random_strategies_are_seeded_per_image(batch):
    images, mask = batch
    for strategy in ("histogram", "nli"):
        a = occlusion.occlude(strategy, images, mask, seeds=[4, 5, 6])
        b = occlusion.occlude(strategy, images, mask, seeds=[4, 5, 6])
        one = occlusion.occlude(strategy, images[1:2], mask[1:2], seeds=[5])
        assert torch.equal(a, b) and torch.equal(a[1:2], one)


def test_cumulative_levels_change_exactly_mask_k():
    heat = np.stack([smooth_map(s) for s in range(2)])
    levels = occlusion.levels_batch(heat)
    images = 0.1 + 0.8 * torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = occlusion.occlude_levels("blurring", images, levels, seeds=[0, 1], blur_sigma=2.0)
    assert out.shape == (2, 4, 3, 32, 32)
    masks = occlusion.nested_masks(levels, 4)
    for k in range(4):
        differs = (out[:, k] != images).any(dim=1).numpy()
        assert not differs[~masks[:, k]].any()  # nothing outside Mask_k changed
        assert differs[masks[:, k]].mean() > 0.95


def test_ibo_keeps_unmasked_pixels_bit_for_bit(batch):
    images, mask = batch
    torch.manual_seed(0)
    unet = build_unet(32, (8, 16)).eval()
    out = occlusion.occlude(
        "ibo",
        images,
        mask,
        seeds=[0, 1, 2],
        unet=unet,
        ddpm_scheduler=make_scheduler(100),
        num_inference_steps=4,
        jump_length=2,
        jump_n_sample=1,
        device="cpu",
    )
    kept = ~mask.bool().expand_as(images)
    assert torch.equal(out[kept], images[kept])
    assert (out[~kept] != images[~kept]).float().mean() > 0.98


def test_bad_inputs_give_one_line_errors(batch):
    images, mask = batch
    with pytest.raises(ValueError, match="unknown occlusion strategy 'paint'"):
        occlusion.occlude("paint", images, mask)
    with pytest.raises(ValueError, match=r"mask must be \(B, 1, H, W\)"):
        occlusion.occlude("blackening", images, mask[:, 0])
    with pytest.raises(ValueError, match="dataset_mean"):
        occlusion.occlude("mean", images, mask)
    with pytest.raises(ValueError, match="needs unet"):
        occlusion.occlude("ibo", images, mask)
    with pytest.raises(ValueError, match="one per image"):
        occlusion.occlude_levels("blackening", images, np.ones((3, 32, 32)), seeds=[1])


def test_a_misspelt_option_is_refused_naming_the_allowed_ones(batch):
    images, mask = batch
    with pytest.raises(ValueError, match=r"takes no option 'blur_sgima'; allowed: blur_sigma$"):
        occlusion.occlude("blurring", images, mask, blur_sgima=0.5)
    refused = r"'blackening' takes no option 'blur_sigma'; allowed: none"
    with pytest.raises(ValueError, match=refused):
        occlusion.occlude("blackening", images, mask, blur_sigma=2.0)
    with pytest.raises(ValueError, match=r"allowed: unet, ddpm_scheduler, num_inference_steps"):
        occlusion.occlude("ibo", images, mask, jump_lenght=3)
    with pytest.raises(TypeError, match="no \\*\\*kwargs"):
        occlusion.register_strategy("sloppy", "Sloppy")(lambda images, mask, **kw: images)
    assert "sloppy" not in occlusion.STRATEGY_INFO


def test_the_contributing_guide_adds_a_strategy_with_one_registered_function(batch):
    """CONTRIBUTING.md's diff, verbatim: one registered function is a whole new strategy."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
    diff = re.search(r"```diff\n--- a/xaistudy/evaluate/occlusion.py.*?\n@@\n(.*?)```", guide, re.S)
    code = "\n".join(line[1:] for line in diff.group(1).splitlines())
    images, mask = batch
    try:
        exec(code, vars(occlusion))  # noqa: S102 (the guide's code, in the module it names)
        out = occlusion.occlude("median", images, mask, size=5)
        kept = ~mask.bool().expand_as(images)
        assert torch.equal(out[kept], images[kept]) and not torch.equal(out, images)
        with pytest.raises(ValueError, match="takes no option 'sise'; allowed: size"):
            occlusion.occlude("median", images, mask, sise=5)
    finally:
        occlusion.STRATEGY_INFO.pop("median", None)
        occlusion.STRATEGIES.pop("median", None)
