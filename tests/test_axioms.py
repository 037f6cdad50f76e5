"""The conservation and sensitivity metrics (You et al., "Axiom evaluations")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from toys import tiny_resnet

from xaistudy.evaluate.axioms import (
    ablated_logits,
    conservation,
    contributions,
    evaluate_axioms,
    sensitivity,
)
from xaistudy.models.stages import forward_from


def test_metrics_by_hand():
    scores = np.array([2.0, -4.0])
    contrib = np.array([[1.0, 0.5], [-2.0, -1.0]])
    # |2 - 1.5| / 2 = 0.25 and |-4 + 3| / 4 = 0.25
    assert conservation(scores, contrib) == pytest.approx(0.25)
    ablated = np.array([[1.5, 1.0], [-1.0, -4.0]])  # dS = [0.5, 1.0] and [-3.0, 0.0]
    # image 1: (|0.5 - 1| + |1 - 0.5|) / 1.5 = 2/3; image 2: (|-3 + 2| + |0 + 1|) / 3 = 2/3
    assert sensitivity(scores, ablated, contrib) == pytest.approx(2 / 3)
    # perfect contributions give 0
    assert sensitivity(scores, ablated, scores[:, None] - ablated) == pytest.approx(0.0)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="need scores"):
        conservation(np.ones(3), np.ones((2, 4)))
    with pytest.raises(ValueError, match="differ"):
        sensitivity(np.ones(2), np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="unknown method 'scorecam'"):
        contributions("scorecam", np.ones((1, 2, 3, 3)), np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="needs the relevance"):
        contributions("xrelevancecam", np.ones((1, 2, 3, 3)))


def test_ablated_logits_match_a_zeroed_forward():
    model = tiny_resnet()
    x = torch.rand(2, 3, 32, 32)
    seen = {}
    handle = model.layer3.register_forward_hook(lambda m, a, out: seen.setdefault("a", out))
    model(x)
    handle.remove()
    act = seen["a"].detach()
    assert torch.allclose(forward_from(model, "layer3", act), model(x), atol=1e-5)
    ab = ablated_logits(model, "layer3", act, [0, 5], batch_size=1)

    def zero(channel):
        def hook(module, args, out):
            out = out.clone()
            out[:, channel] = 0
            return out

        return hook

    for j, channel in enumerate([0, 5]):
        handle = model.layer3.register_forward_hook(zero(channel))
        with torch.no_grad():
            ref = model(x)
        handle.remove()
        assert torch.allclose(ab[:, j], ref, atol=1e-5)


def test_gradcam_is_exact_at_the_last_stage_of_a_gap_linear_head():
    """With global average pooling + a bias-free linear head, Grad-CAM satisfies both axioms."""
    model = tiny_resnet(1)
    model.fc.bias.data.zero_()
    x = torch.rand(2, 3, 32, 32)
    table = evaluate_axioms(model, x, [0, 1], ["layer4"], ["gradcam", "xrelevancecam"])
    value = table.set_index(["method", "axiom"])["value"]
    assert value["gradcam", "conservation"] < 1e-4
    assert value["gradcam", "sensitivity"] < 1e-4
    assert value["xrelevancecam", "conservation"] < 1e-3


def test_xrelevancecam_conserves_better_than_gradcam_on_a_trained_model():
    """As the paper's Table 4: XRelevanceCAM's conservation error is below Grad-CAM's."""
    model = tiny_resnet(2)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32, generator=gen) * 0.5
    y = torch.arange(64) % 2
    x[y == 1, :, 8:20, 8:20] += 0.5  # class 1: a bright square
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(15):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for m in model.modules():  # batch-norm statistics of the final weights
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.8
    table = evaluate_axioms(
        model, x[:6], y[:6], methods=["gradcam", "xrelevancecam"], max_channels=8, seed=0
    )
    cons = table[table["axiom"] == "conservation"].pivot(index="method", columns="layer")["value"]
    assert cons.loc["xrelevancecam"].mean() < cons.loc["gradcam"].mean()
    assert (cons.loc["xrelevancecam"] < 0.01).all()
    sens = table[table["axiom"] == "sensitivity"]
    assert np.isfinite(sens["value"]).all() and (sens["n_channels"] == 8).all()
