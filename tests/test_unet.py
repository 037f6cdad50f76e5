"""The U-Net, its loss and scores, and segmentation training through fit()."""

import pytest
import torch

from xaistudy.models.train import fit, make_loader
from xaistudy.models.unet import (
    ThesisUNet,
    UNet,
    bce_dice_loss,
    build_unet,
    dice_score,
    iou_score,
    nuclei_targets,
    segmentation_objective,
)


def test_unet_shapes_and_size_check():
    model = UNet(3, 2, base=4, depth=3)
    assert model(torch.rand(2, 3, 32, 40)).shape == (2, 2, 32, 40)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.rand(1, 3, 30, 32))


def test_thesis_unet_is_the_appendix_architecture():
    model = ThesisUNet(3, 2, base=32)
    # hand count: conv(k, cin, cout) = k*k*cin*cout + cout, BN = 2 * cout, ConvT(3) like conv
    def conv(k, i, o):
        return k * k * i * o + o

    def block(k, i, o, t=False):
        return conv(k, i, o) + conv(k, o, o) + 4 * o + (conv(3, o, o) if t else 0)

    expected = (block(7, 3, 32) + block(3, 32, 64) + block(3, 64, 128)
                + block(3, 128, 64, True) + block(3, 128, 32, True) + block(3, 64, 2, True))
    assert sum(p.numel() for p in model.parameters()) == expected == 537_366
    first = model.conv1[0]
    assert first.kernel_size == (7, 7) and first.padding == (3, 3)
    pool = model.conv1[-1]
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert isinstance(model.upconv1[-1], torch.nn.ConvTranspose2d)  # the output layer
    small = ThesisUNet(3, 2, base=4)
    assert small(torch.rand(2, 3, 24, 40)).shape == (2, 2, 24, 40)
    with pytest.raises(ValueError, match="divisible by 8"):
        small(torch.rand(1, 3, 20, 32))
    assert isinstance(build_unet("textbook", base=4, depth=2), UNet)
    assert isinstance(build_unet("thesis", base=4), ThesisUNet)
    with pytest.raises(ValueError, match="must be one of thesis, textbook"):
        build_unet("resnet")


def test_scores_against_hand_computation():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1  # 8 pixels
    perfect = (target * 2 - 1) * 50  # logits: sigmoid = target
    assert float(dice_score(perfect, target)) == pytest.approx(1.0, abs=1e-5)
    assert iou_score(perfect, target) == pytest.approx(1.0)
    half = torch.full((1, 1, 4, 4), -50.0)
    half[..., :1, :] = 50  # predicts 4 of the 8 pixels, nothing else
    assert iou_score(half, target) == pytest.approx(4 / 8)
    assert float(dice_score(half, target)) == pytest.approx(2 * 4 / (4 + 8), abs=1e-4)
    empty = torch.full((1, 1, 4, 4), -50.0)
    assert iou_score(empty, torch.zeros(1, 1, 4, 4)) == 1.0  # nothing to find, nothing found
    assert float(bce_dice_loss(perfect, target)) < 1e-3
    assert float(bce_dice_loss(-perfect, target)) > 1.0


def test_nuclei_targets_split_types():
    types = torch.tensor([[[0, 1], [2, 1]]])
    t = nuclei_targets({"nuclei_type": types})
    assert t.shape == (1, 2, 2, 2)
    assert t[0, 0].tolist() == [[0, 1], [0, 1]] and t[0, 1].tolist() == [[0, 0], [1, 0]]


def test_fit_trains_a_segmenter():
    torch.manual_seed(0)
    images = torch.rand(32, 3, 16, 16)
    masks = (images[:, :1] > 0.5).float()  # the target is a per-pixel rule of the input
    data = [{"image": images[i], "mask": masks[i]} for i in range(32)]
    loader = make_loader(data, batch_size=8, shuffle=True, seed=0)
    objective = segmentation_objective(lambda b: b["mask"])
    result = fit(
        UNet(3, 1, base=4, depth=2),
        loader,
        make_loader(data, 16),
        epochs=15,
        lr=1e-2,
        objective=objective,
        patience=None,
    )
    assert result.history["val_acc"].iloc[-1] > 0.8  # IoU
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]


@pytest.mark.parametrize("arch", ["thesis", "textbook"])
def test_standardised_unet_ignores_per_tile_stain_strength(arch):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32)
    y = 0.7 * x + 0.2  # the same tile, fainter and brighter
    torch.manual_seed(1)
    net = build_unet(arch, 3, 2, base=4, depth=2, standardise=True).eval()
    with torch.no_grad():
        a, b = net(x), net(y)
    assert float((a - b).abs().max() / a.abs().max()) < 1e-3
    # without it the first layer sees the two tiles differently
    plain = build_unet(arch, 3, 2, base=4, depth=2, standardise=False)
    assert not torch.allclose(plain.standardise(x), plain.standardise(y))
