"""CLRP relevance (zennit + our canonizer), RelevanceCAM / XRelevanceCAM weights and maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from xaistudy.evaluate.localisation import iou
from xaistudy.evaluate.wsss import binarise
from xaistudy.explain.cams import compute_cam
from xaistudy.explain.clrp import CLRP_RULES, clrp_initial, clrp_relevance, contrastive_score
from xaistudy.explain.relevance import (
    gradient_cams,
    layer_cams,
    relevance_cams,
    relevancecam_weights,
    xrelevancecam_weights,
)
from xaistudy.models.classifiers import build_classifier
from xaistudy.models.stages import STAGES


def _bias_free(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random batch-norm scales and variances, zero means and biases: no bias after merging."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
            m.running_var = torch.rand(m.running_var.shape, generator=gen) + 0.5
            m.running_mean.zero_()
            m.bias.data.zero_()
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
    return model.eval()


def test_clrp_initial_rules_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5], [4.0, 1.0, 3.0]])
    t = torch.tensor([0, 2])
    paper = clrp_initial(logits, t, "zero_sum")
    assert torch.allclose(paper, torch.tensor([[2.0, -1.0, -1.0], [-1.5, -1.5, 3.0]]))
    unit = clrp_initial(logits, t, "unit")
    assert torch.allclose(unit, torch.tensor([[1.0, -1 / 3, -1 / 3], [-1 / 3, -1 / 3, 1.0]]))
    scaled = clrp_initial(logits, t, "logit")
    assert torch.allclose(scaled, torch.tensor([[2.0, -2 / 3, -2 / 3], [-1.0, -1.0, 3.0]]))
    # the contrastive score is the total: L_c - (N-1) L_c / N = L_c / N for "logit"
    assert torch.allclose(contrastive_score(logits, t, "logit"), torch.tensor([2 / 3, 1.0]))
    assert torch.allclose(contrastive_score(logits, t, "zero_sum"), torch.zeros(2))


def test_clrp_initial_bad_input():
    with pytest.raises(ValueError, match="unknown CLRP rule 'alpha'"):
        clrp_initial(torch.zeros(1, 2), torch.tensor([0]), "alpha")
    with pytest.raises(ValueError, match="one per image"):
        clrp_initial(torch.zeros(2, 2), torch.tensor([0]), "unit")


@pytest.mark.parametrize(
    "name",
    ["torchvision", "skresnet18"],
)
def test_relevance_is_conserved_at_every_stage(name):
    """Summed CLRP relevance at each stage = summed initial relevance (bias-free network)."""
    torch.manual_seed(0)
    if name == "torchvision":
        model = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], 3)
    else:
        model = build_classifier("skresnet18", 3)
    model = _bias_free(model)
    x = torch.rand(2, 3, 32, 32)
    for rule in CLRP_RULES:
        captured, logits = clrp_relevance(model, x, [0, 2], STAGES, rule)
        total = clrp_initial(logits, torch.tensor([0, 2]), rule).sum(1)
        scale = clrp_initial(logits, torch.tensor([0, 2]), rule).abs().sum(1)
        for layer, (act, rel) in captured.items():
            assert act.shape == rel.shape
            err = (rel.sum((1, 2, 3)) - total).abs() / scale
            # stated tolerance: 1e-3 of the initial relevance's magnitude
            assert err.max() < 1e-3, (rule, layer, err)
    # the model's forward is unchanged after the canonizers are removed
    assert torch.allclose(model(x), logits, atol=1e-4)


def test_sk_relevance_duplicates_without_our_canonizer():
    """Without the residual/selective-kernel canonizer relevance is not conserved."""
    torch.manual_seed(0)
    model = _bias_free(build_classifier("skresnet18", 2))
    x = torch.rand(1, 3, 32, 32)
    from zennit.canonizers import SequentialMergeBatchNorm

    captured, logits = clrp_relevance(
        model, x, [1], ["layer1"], "unit", canonizers=[SequentialMergeBatchNorm()]
    )
    assert abs(float(captured["layer1"][1].sum()) - 0.5) > 0.05


class _TwoChannelNet(nn.Module):
    """Channel 0 sees bright pixels, channel 1 dark ones; class 1 reads channel 0 only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.conv.weight.data = torch.tensor([[[[1.0]]], [[[-1.0]]]])
        self.conv.bias.data = torch.tensor([-0.6, 0.4])
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        self.fc.weight.data = torch.tensor([[0.0, 3.0], [5.0, 0.0]])

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def test_weights_by_hand_on_a_tiny_network():
    net = _TwoChannelNet().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 6, 6, generator=gen)
    captured, logits = clrp_relevance(net, x, [1, 0], ["relu"], "unit")
    act, rel = captured["relu"]
    a = torch.relu(net.conv(x)).detach()  # (B, 2, 6, 6)
    assert torch.allclose(act, a)
    # hand CLRP, unit rule: r = 1 at the target, -1/2 at the other class
    r = torch.tensor([[-0.5, 1.0], [1.0, -0.5]])
    pooled = a.mean((2, 3))  # (B, 2)
    wp = net.fc.weight.data.clamp(min=0)  # (classes, channels)
    z = pooled @ wp.T  # (B, classes)
    r_pooled = pooled * ((r / z) @ wp)  # z+ rule through the linear layer, (B, channels)
    # Norm rule through the average pool: R_kij = A_kij / sum_ij A_kij * R_k
    hand = a / a.sum((2, 3), keepdim=True) * r_pooled[:, :, None, None]
    assert torch.allclose(rel, hand, atol=1e-5)
    assert torch.allclose(relevancecam_weights(rel), r_pooled / 36, atol=1e-6)
    assert torch.allclose(xrelevancecam_weights(rel, act), r_pooled / a.sum((2, 3)), rtol=1e-4)
    # Eq. 1 makes sum_k w_k sum_ij A equal the total relevance (here 1 - 1/2)
    w = xrelevancecam_weights(rel, act)
    assert torch.allclose((w * act.sum((2, 3))).sum(1), torch.full((2,), 0.5), atol=1e-5)


def test_xrelevancecam_weight_of_an_empty_channel_is_zero():
    rel = torch.ones(1, 2, 2, 2)
    act = torch.zeros(1, 2, 2, 2)
    act[0, 1] = 2.0
    w = xrelevancecam_weights(rel, act)
    assert w[0, 0] == 0 and w[0, 1] == pytest.approx(0.5)


def _blobs():
    """Grey frame with a bright disc (the evidence) and a dark disc (a distractor)."""
    yy, xx = np.mgrid[:32, :32]
    bright = (yy - 9) ** 2 + (xx - 9) ** 2 <= 16
    dark = (yy - 22) ** 2 + (xx - 22) ** 2 <= 16
    img = np.full((32, 32), 0.5, np.float32)
    img[bright], img[dark] = 1.0, 0.0
    return torch.from_numpy(img)[None, None], bright, dark


@pytest.mark.parametrize("method", ["relevancecam", "xrelevancecam", "gradcam", "layercam"])
def test_cam_highlights_the_only_region_that_matters(method):
    net = _TwoChannelNet().eval()
    x, bright, dark = _blobs()
    if method in ("relevancecam", "xrelevancecam"):
        maps = relevance_cams(net, x, 1, ["relu"], "unit", [method])[method]["relu"]
    else:
        maps = gradient_cams(net, x, 1, ["relu"], [method])[method]["relu"]
    assert iou(binarise(maps), bright[None])[0] > 0.5
    assert maps[0][dark].mean() < 0.05 < maps[0][bright].mean()


def test_gradient_cams_equal_compute_cam():
    torch.manual_seed(0)
    model = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], 2)
    model = model.eval()
    x = torch.rand(2, 3, 32, 32)
    fast = gradient_cams(model, x, [0, 1], ["layer2", "layer4"])
    for method, by_layer in fast.items():
        for layer, maps in by_layer.items():
            ref = compute_cam(method, model, x, [0, 1], [getattr(model, layer)])
            np.testing.assert_allclose(maps, ref, atol=1e-5, err_msg=f"{method} {layer}")


def test_layer_cams_bad_input():
    net = _TwoChannelNet().eval()
    x, _, _ = _blobs()
    with pytest.raises(ValueError, match=r"unknown CAM method 'gradcam\+'"):
        layer_cams(net, x, 1, ["gradcam+"], ["relu"])
    with pytest.raises(ValueError, match="model has no layer 'layer9'"):
        layer_cams(net, x, 1, ["gradcam"], ["layer9"])
    with pytest.raises(ValueError, match="n_passes"):
        layer_cams(net, x, 1, ["gradcam"], ["relu"], n_passes=0)


def test_relevance_maps_keep_negative_evidence_below_the_background():
    """No ReLU before min-max (the reference codes): a region of negative weighted activation
    scales to 0, below the zero-valued background; with a ReLU both would be 0."""
    net = _TwoChannelNet().eval()
    x, bright, dark = _blobs()
    maps = relevance_cams(net, x, 1, ["relu"], "unit", ["relevancecam"])["relevancecam"]["relu"]
    background = ~(bright | dark)
    # the dark disc drives channel 1, whose CLRP weight is negative for class 1
    assert maps[0][dark].mean() < 0.02 < maps[0][background].mean() < maps[0][bright].mean()
