"""The conservation and sensitivity metrics (You et al., "Axiom evaluations")."""

from __future__ import annotations

import copy

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


# -- implementation invariance: DeepLIFT on a functionally identical twin ------------------------
class _Classic(nn.Module):
    """Sundararajan et al.'s f(x1, x2) = ReLU(x1 - 1 - ReLU(x2)); ``rectify_x1``: the same
    function written ReLU(ReLU(x1) - 1 - ReLU(x2))."""

    def __init__(self, rectify_x1: bool):
        super().__init__()
        self.rectify_x1 = rectify_x1
        self.r1, self.r2, self.out = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x1 = self.r1(x[:, :1]) if self.rectify_x1 else x[:, :1]
        return self.out(x1 - 1 - self.r2(x[:, 1:]))


class _OneLayer(nn.Module):
    """ReLU of a 2-vector: unit 0 depends on x1 alone."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x)


def _deeplift(model, x, baseline, target=0):
    from captum.attr import DeepLift

    return DeepLift(model.eval()).attribute(x, baselines=baseline, target=target).detach()


def _ig(model, x, baseline, target=0):
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model.eval())
    # midpoints: the kinks at 80 % and 50 % of the path fall between steps, so the sum is exact
    return ig.attribute(
        x, baselines=baseline, target=target, n_steps=200, method="riemann_middle"
    ).detach()


def test_deeplift_depends_on_the_implementation_of_the_classic_example_ig_does_not():
    x, baseline = torch.tensor([[3.0, 1.0]]), torch.tensor([[-3.0, 0.0]])
    plain, rectified = _Classic(False), _Classic(True)
    grid = torch.randn(1000, 2) * 4
    torch.testing.assert_close(plain(grid), rectified(grid))  # the same function
    # by hand: f(x) - f(baseline) = 1; DeepLIFT's rescale multiplier of the output ReLU is
    # 1 / 5 for the plain form (pre-activations 1 and -4), so x1 gets 6 / 5 and x2 -1 / 5; the
    # rectified form's ReLU(x1) takes 3 of x1's 6 and its output ReLU sees 1 and -1: 1.5, -0.5
    torch.testing.assert_close(_deeplift(plain, x, baseline), torch.tensor([[1.2, -0.2]]))
    torch.testing.assert_close(_deeplift(rectified, x, baseline), torch.tensor([[1.5, -0.5]]))
    # Integrated Gradients reads the function only: the gradient (1, -1) on the last 20 % of
    # the path, 0 before, for both forms
    for model in (plain, rectified):
        ig = _ig(model, x, baseline)
        torch.testing.assert_close(ig, torch.tensor([[1.2, -0.2]]), atol=2e-3, rtol=0)
        assert ig.sum().item() == pytest.approx(1.0, abs=2e-3)


def test_the_twin_of_a_relu_layer_moves_deeplift_by_hand_and_not_ig():
    from xaistudy.evaluate.axioms import CoupledReLU, implementation_twin

    x, baseline = torch.tensor([[3.0, 1.0]]), torch.tensor([[-3.0, 0.0]])
    model = _OneLayer()
    twin = implementation_twin(model)
    assert sum(isinstance(m, CoupledReLU) for m in twin.modules()) == 1
    grid = torch.randn(1000, 2) * 4
    torch.testing.assert_close(twin(grid), model(grid))
    # unit 0 is ReLU(x1): DeepLIFT gives (6 · 3 / 6, 0) = (3, 0). Its twin is
    # ReLU(ReLU(x1 + r) - r), r = ReLU(x2): r goes 0 -> 1 (multiplier 1), x1 + r goes -3 -> 4
    # (the inner ReLU's multiplier 4 / 7), ReLU(x1 + r) - r goes 0 -> 3 (multiplier 1): x1 gets
    # 6 · 4 / 7 = 24 / 7 and x2, on which unit 0 does not depend, 1 · (4 / 7 - 1) = -3 / 7
    torch.testing.assert_close(_deeplift(model, x, baseline), torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(_deeplift(twin, x, baseline), torch.tensor([[24 / 7, -3 / 7]]))
    for m in (model, twin):
        torch.testing.assert_close(
            _ig(m, x, baseline), torch.tensor([[3.0, 0.0]]), atol=2e-3, rtol=0
        )


def _small_cnn():
    from xaistudy.models.classifiers import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(2, widths=(16, 32, 32)).eval()
    with torch.no_grad():  # batch norms off the identity: a black tile is no all-zero layer
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model, torch.rand(3, 3, 32, 32)


def test_a_constant_shift_of_the_relus_would_not_change_deeplift():
    """Why the twin couples two units: for a one-variable rewrite ReLU(ReLU(z + c) - c) the
    rescale multipliers telescope to those of ReLU(z)."""
    from xaistudy.evaluate.axioms import relative_l1
    from xaistudy.explain import explain

    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.outer = nn.ReLU(), nn.ReLU()

        def forward(self, z):
            return self.outer(self.inner(z + 0.3) - 0.3)

    model, x = _small_cnn()
    shifted = copy.deepcopy(model)
    for block in shifted.features:
        block[2] = Shifted()
    torch.testing.assert_close(shifted(x), model(x))
    d = relative_l1(explain("deeplift", model, x, 1), explain("deeplift", shifted, x, 1))
    assert d.max() < 1e-5


def test_twin_of_a_cnn_computes_the_same_function_deeplift_moves_ig_does_not():
    from xaistudy.evaluate.axioms import implementation_invariance, implementation_twin

    model, x = _small_cnn()
    twin = implementation_twin(model)
    with torch.no_grad():
        assert (twin(x) - model(x)).abs().max().item() < 1e-5
        wide = torch.rand(16, 3, 32, 32) * 3 - 1  # off the tiles' range too
        assert (twin(wide) - model(wide)).abs().max().item() < 1e-5
    table = implementation_invariance(
        model, x, 1, options={"integrated_gradients": {"n_steps": 16}}
    )
    assert list(table.columns) == ["method", "unit", "relative_l1", "output_gap"]
    by = table.groupby("method")["relative_l1"]
    assert by.min()["deeplift"] > 0.05  # measurably different maps of the same function
    assert by.max()["integrated_gradients"] < 5e-3  # rounding only
    assert (table["output_gap"] < 1e-5).all()
    # the model's own maps given: the same numbers
    from xaistudy.explain import explain

    given = {"deeplift": explain("deeplift", model, x, 1)}
    again = implementation_invariance(model, x, 1, ["deeplift"], reference=given)
    np.testing.assert_allclose(again["relative_l1"], table["relative_l1"][:3], atol=1e-6)


def test_twin_of_a_torchvision_resnet_rewrites_every_relu_call():
    from xaistudy.evaluate.axioms import CoupledReLU, implementation_twin

    model = tiny_resnet()
    x = torch.rand(2, 3, 32, 32)
    twin = implementation_twin(model)
    # the stem's ReLU and two calls of each block's shared in-place ReLU
    assert sum(isinstance(m, CoupledReLU) for m in twin.modules()) == 1 + 4 * 2
    with torch.no_grad():
        assert (twin(x) - model(x)).abs().max().item() < 1e-5
    assert model.layer1[0].relu.inplace and isinstance(model.relu, nn.ReLU)  # left as it was


def test_twin_refuses_what_it_cannot_rewrite_in_one_line():
    from xaistudy.evaluate.axioms import CoupledReLU, implementation_twin

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x):
            return self.lin(torch.nn.functional.relu(x))

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x) if x.sum() > 0 else x

    cases = (
        (Functional(), "calls ReLU as a function"),
        (Branchy(), "cannot trace"),
        (nn.Sequential(nn.Linear(4, 4), nn.Tanh()), "has no nn.ReLU"),
    )
    for model, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            implementation_twin(model)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="coupling must be > 0"):
        CoupledReLU(0.0)


def test_a_twin_that_is_another_function_is_refused(monkeypatch):
    from xaistudy.evaluate import axioms
    from xaistudy.evaluate.controls import untrained_copy

    model, x = _small_cnn()
    monkeypatch.setattr(axioms, "implementation_twin", lambda m, c=1.0: untrained_copy(m, 1))
    with pytest.raises(AssertionError, match="twin's outputs differ"):
        axioms.implementation_invariance(model, x, 1)


def test_relative_l1_by_hand():
    from xaistudy.evaluate.axioms import relative_l1

    a = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = np.array([[1.0, 1.0], [-2.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(relative_l1(a, b), [1.0, 2.0, 0.0, np.inf])
    with pytest.raises(ValueError, match="differ"):
        relative_l1(a, b[:2])
