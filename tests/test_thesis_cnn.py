"""The thesis's grading CNN (Fig. 5 / Appendix A) and the Table 1 balancing."""

import numpy as np
import pytest
import torch
from torch import nn

from xaistudy.models.thesis_cnn import (
    RotatedSubset,
    ThesisCNN,
    feature_side,
    hidden_widths,
    n_linear_layers,
    rotation_balanced_indices,
)


def test_architecture_matches_the_thesis():
    model = ThesisCNN(num_classes=7, input_size=256)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (5, 5), (5, 5)]
    assert [c.out_channels for c in convs] == [16, 32, 64]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3
    assert n_linear_layers(model) == 7
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    # appendix: fc1 = Linear(64 * 27 * 27, 2048) for 256-px patches, widths halve to 64
    assert linears[0].in_features == 64 * 27 * 27
    assert [lin.out_features for lin in linears] == [2048, 1024, 512, 256, 128, 64, 7]
    assert model.last_conv is model.conv3


@pytest.mark.parametrize("size, side", [(64, 3), (128, 11), (256, 27)])
def test_sized_from_the_input(size, side):
    assert feature_side(size) == side
    model = ThesisCNN(input_size=size, fc_width=64).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, size, size)).shape == (2, 7)


def test_relu_after_every_hidden_linear_layer():
    model = ThesisCNN(input_size=64, fc_width=64, batchnorm=False)
    layers = list(model.classifier)
    for i, layer in enumerate(layers[:-1]):
        if isinstance(layer, nn.Linear):
            assert isinstance(layers[i + 1], nn.ReLU)
    assert isinstance(layers[-1], nn.Linear)
    assert hidden_widths(64) == (64, 32, 16, 8, 4, 2)


def test_bad_sizes_raise_one_line_errors():
    with pytest.raises(ValueError, match="too small"):
        ThesisCNN(input_size=32)
    with pytest.raises(ValueError, match="fc_width"):
        ThesisCNN(input_size=64, fc_width=16)
    with pytest.raises(ValueError, match="built for 64x64"):
        ThesisCNN(input_size=64, fc_width=64)(torch.rand(1, 3, 96, 96))


def test_rotation_balanced_indices_like_table_1():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 8)
    pairs = rotation_balanced_indices(labels, n_per_class=6, augment=[1], seed=0)
    by_class = {c: [p for p in pairs if labels[p[0]] == c] for c in (0, 1, 2)}
    assert {c: len(v) for c, v in by_class.items()} == {0: 6, 1: 6, 2: 6}
    assert all(t == 0 for _, t in by_class[0] + by_class[2])  # not augmented
    assert len(set(by_class[1])) == 6 and any(t > 0 for _, t in by_class[1])
    assert pairs == rotation_balanced_indices(labels, 6, augment=[1], seed=0)  # seeded
    scarce = rotation_balanced_indices(labels, 8, augment=[0, 1], originals=2, seed=0)
    assert {i for i, _ in scarce if labels[i] == 0} == {0, 1}  # 2 originals x 4 rotations
    with pytest.raises(ValueError, match="class 1 has 3 items"):
        rotation_balanced_indices(labels, n_per_class=6)


def test_rotated_subset_rotates_image_and_masks_together():
    image = torch.zeros(3, 4, 4)
    image[:, 0, 3] = 1.0  # top-right pixel
    ntype = torch.zeros(4, 4, dtype=torch.int64)
    ntype[0, 3] = 1
    data = [{"image": image, "nuclei_type": ntype, "label": torch.tensor(0)}]
    item = RotatedSubset(data, [(0, 1)])[0]  # one quarter turn counter-clockwise
    assert item["image"][0, 0, 0] == 1.0 and item["nuclei_type"][0, 0] == 1
    assert torch.equal(RotatedSubset(data, [(0, 0)])[0]["image"], image)


# -- input standardisation and random dihedral augmentation (xaistudy.models.transforms) -------
def test_standardise_channels_against_numpy():
    from xaistudy.models.transforms import STD_EPS, standardise_channels

    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 5, 4)).astype(np.float32)
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), ddof=1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + STD_EPS**2)
    got = standardise_channels(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        standardise_channels(torch.zeros(3, 5, 4))


def test_standardise_constant_channel_is_zero_with_finite_gradient():
    from xaistudy.models.transforms import standardise_channels

    x = torch.full((1, 3, 4, 4), 0.7, requires_grad=True)
    y = standardise_channels(x)
    assert torch.allclose(y, torch.zeros_like(y), atol=1e-4)
    (y * torch.arange(16.0).reshape(1, 1, 4, 4)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_standardised_cnn_ignores_per_tile_stain_strength():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    # a tile's channels scaled and shifted (stain strength, brightness)
    y = x * torch.tensor([0.6, 1.3, 0.9]).view(1, 3, 1, 1) + torch.tensor([0.2, -0.1, 0.05]).view(
        1, 3, 1, 1
    )
    for standardise, same in ((True, True), (False, False)):
        torch.manual_seed(1)
        model = ThesisCNN(num_classes=7, input_size=64, fc_width=64, standardise=standardise)
        model.eval()
        with torch.no_grad():
            close = torch.allclose(model.features(x), model.features(y), atol=1e-3)
        assert close is same


def test_random_dihedral_turns_image_and_maps_together_and_repeats_with_the_seed():
    from xaistudy.models.transforms import RandomDihedral

    image = torch.rand(3, 8, 8)
    sample = {"image": image, "nuclei_type": (image[0] > 0.5).long(), "label": torch.tensor(2)}
    data = RandomDihedral([sample] * 40)
    torch.manual_seed(0)
    first = [data[i] for i in range(len(data))]
    for s in first:
        assert torch.equal(s["nuclei_type"], (s["image"][0] > 0.5).long())
        assert int(s["label"]) == 2
    views = {tuple(s["image"][0].flatten().tolist()) for s in first}
    assert len(views) == 8  # all eight symmetries of the square occur in 40 draws (seed 0)
    torch.manual_seed(0)
    again = [data[i] for i in range(len(data))]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
