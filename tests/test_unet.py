"""The U-Net, its loss and scores, and segmentation training through fit()."""

import pytest
import torch

from xaistudy.models.train import fit, make_loader
from xaistudy.models.unet import (
    UNet,
    bce_dice_loss,
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
