"""The conservation and sensitivity axioms of XGrad-CAM (Fu et al., 2020) as metrics.

You et al. (2024, "Axiom evaluations") score a CAM at layer ``l`` over ``N`` images by

* conservation: ``1/N sum_n |S_c(A_n) - sum_k sum_ij w_k A_n^k_ij| / |S_c(A_n)|``
* sensitivity:  ``1/N sum_n sum_k |S_c(A_n) - S_c(A_n \\ A_n^k) - sum_ij w_k A_n^k_ij|
  / sum_k |S_c(A_n) - S_c(A_n \\ A_n^k)|``

(lower is better), where ``S_c(A \\ A^k)`` is the score with channel ``k`` of the layer's
output set to zero. The paper prints ``R_ij(A_n^l; k)`` inside the sums; we use the
activations ``A`` as XGrad-CAM defines the axioms (with ``R`` the layer-4 Grad-CAM
conservation value of Table 4 could not be near 0). ``sum_ij w_k A^k_ij`` is the
*contribution* of channel ``k``; methods with pixel-wise weights (HiResCAM, LayerCAM)
contribute ``sum_ij w_k,ij A^k_ij``. ``S_c`` is the target logit for the gradient CAMs and the
contrastive score for RelevanceCAM / XRelevanceCAM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, XGradCAM
from torch import nn

from xaistudy.explain.clrp import clrp_relevance, contrastive_score, resolve_layers
from xaistudy.explain.relevance import (
    RELEVANCE_METHODS,
    layer_activations_and_grads,
    relevance_weights,
)
from xaistudy.models.stages import STAGES, forward_from

#: methods whose channel contributions :func:`contributions` computes
AXIOM_METHODS: tuple[str, ...] = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    "relevancecam",
    "xrelevancecam",
)
_CHANNEL_WEIGHTS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM}


def contributions(
    method: str,
    activations: torch.Tensor | np.ndarray,
    grads: torch.Tensor | np.ndarray | None = None,
    relevance: torch.Tensor | np.ndarray | None = None,
) -> np.ndarray:
    """``sum_ij w_k(,ij) A^k_ij`` per image and channel, ``(B, K)``.

    Gradient methods use pytorch-grad-cam's own weight functions on ``grads`` (the target
    logit's gradient at the layer); the relevance methods use ``relevance``.
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"activations must be (B, K, h, w), got shape {a.shape}")
    if method in ("relevancecam", "xrelevancecam"):
        if relevance is None:
            raise ValueError(f"{method} needs the relevance")
        w = relevance_weights(method, torch.as_tensor(relevance), torch.as_tensor(activations))
        return w.double().numpy() * a.sum(axis=(2, 3))
    if method not in AXIOM_METHODS:
        raise ValueError(f"unknown method '{method}'; allowed: {', '.join(AXIOM_METHODS)}")
    if grads is None:
        raise ValueError(f"{method} needs the gradients")
    g = np.asarray(grads, dtype=np.float64)
    if method == "hirescam":
        return (g * a).sum(axis=(2, 3))
    if method == "layercam":
        return (np.maximum(g, 0) * a).sum(axis=(2, 3))
    weights = _CHANNEL_WEIGHTS[method].get_cam_weights(None, None, None, None, a, g)
    return weights * a.sum(axis=(2, 3))


def _check(scores: np.ndarray, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 2 or len(contrib) != len(scores):
        raise ValueError(
            f"need scores (N,) and contributions (N, K), got {scores.shape} and {contrib.shape}"
        )
    return scores, contrib


def conservation(scores: np.ndarray, contrib: np.ndarray) -> float:
    """``mean_n |S_n - sum_k c_nk| / |S_n|`` (images with ``S_n = 0`` are left out)."""
    scores, contrib = _check(scores, contrib)
    keep = scores != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(scores - contrib.sum(1))[keep] / np.abs(scores[keep])))


def sensitivity(scores: np.ndarray, ablated: np.ndarray, contrib: np.ndarray) -> float:
    """``mean_n sum_k |dS_nk - c_nk| / sum_k |dS_nk|`` with ``dS_nk = S_n - S_n(without k)``.

    ``ablated`` ``(N, K)`` holds ``S_n`` with channel ``k`` zeroed; ``contrib`` the same channels.
    """
    scores, contrib = _check(scores, contrib)
    ablated = np.asarray(ablated, dtype=np.float64)
    if ablated.shape != contrib.shape:
        raise ValueError(f"ablated {ablated.shape} and contributions {contrib.shape} differ")
    delta = scores[:, None] - ablated
    den = np.abs(delta).sum(1)
    keep = den > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(delta - contrib).sum(1)[keep] / den[keep]))


@torch.no_grad()
def ablated_logits(
    model: nn.Module,
    stage: str,
    activations: torch.Tensor,
    channels: Sequence[int] | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Logits ``(B, K', N)`` with each channel of ``stage``'s output zeroed in turn.

    ``activations`` is the stage output ``(B, K, h, w)``; ``channels`` the channels to ablate
    (all by default). The rest of the network runs from the stage (:func:`forward_from`).
    """
    device = next(model.parameters()).device
    k_all = activations.shape[1]
    chans = torch.as_tensor(list(range(k_all)) if channels is None else list(channels)).long()
    out = []
    for a in activations:
        rows = []
        for start in range(0, len(chans), batch_size):
            idx = chans[start : start + batch_size]
            batch = a.to(device)[None].repeat(len(idx), 1, 1, 1)
            batch[torch.arange(len(idx)), idx.to(device)] = 0
            rows.append(forward_from(model, stage, batch).float().cpu())
        out.append(torch.cat(rows))
    return torch.stack(out)


def _channel_subset(k: int, max_channels: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_channels is None or max_channels >= k:
        return np.arange(k)
    return np.sort(rng.choice(k, size=max_channels, replace=False))


def evaluate_axioms(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Sequence[int] | torch.Tensor,
    layers: Sequence[str] = STAGES,
    methods: Sequence[str] = AXIOM_METHODS,
    rule: str = "logit",
    max_channels: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Conservation and sensitivity of each method at each layer: long table.

    Columns ``method, axiom, layer, value, n_images, n_channels``. The relevance methods use
    CLRP with ``rule`` and its total initial relevance as the score (``logit``: the paper's
    ``S_c = L_c - (N-1) L_c / N``), the gradient methods the target logit. ``max_channels``
    evaluates the sensitivity sum on a seeded random subset of channels per layer (None: all).
    """
    unknown = [m for m in methods if m not in AXIOM_METHODS]
    if unknown:
        raise ValueError(f"unknown method '{unknown[0]}'; allowed: {', '.join(AXIOM_METHODS)}")
    model.eval()
    tgt = torch.as_tensor(list(targets) if not torch.is_tensor(targets) else targets).long()
    modules = resolve_layers(model, layers)
    grad_acts = layer_activations_and_grads(model, inputs, tgt.tolist(), modules, batch_size)
    with torch.no_grad():
        logits = model(inputs.to(next(model.parameters()).device)).float().cpu()
    relevant = [m for m in methods if m in RELEVANCE_METHODS]
    captured = (
        clrp_relevance(model, inputs, tgt, modules, rule, batch_size=len(inputs))[0]
        if relevant
        else {}
    )
    logit_score = logits.gather(1, tgt[:, None])[:, 0].double().numpy()
    contrast = contrastive_score(logits, tgt, rule).double().numpy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    rows = []
    for name in modules:
        acts, grads = (torch.as_tensor(v) for v in grad_acts[name])
        chans = _channel_subset(acts.shape[1], max_channels, rng)
        ablated = ablated_logits(model, name, acts, chans, batch_size)  # (B, K', N)
        ab_logit = ablated.gather(2, tgt[:, None, None].expand(-1, len(chans), 1))[..., 0]
        ab_contrast = torch.stack(
            [contrastive_score(ablated[:, j], tgt, rule) for j in range(len(chans))], 1
        )
        for method in methods:
            rel = captured[name][1] if method in RELEVANCE_METHODS else None
            contrib = contributions(method, acts, grads, rel)
            relevance_based = method in RELEVANCE_METHODS
            score = contrast if relevance_based else logit_score
            ab = (ab_contrast if relevance_based else ab_logit).double().numpy()
            for axiom, value in (
                ("conservation", conservation(score, contrib)),
                ("sensitivity", sensitivity(score, ab, contrib[:, chans])),
            ):
                rows.append(
                    {
                        "method": method,
                        "axiom": axiom,
                        "layer": name,
                        "value": value,
                        "n_images": len(inputs),
                        "n_channels": len(chans) if axiom == "sensitivity" else acts.shape[1],
                    }
                )
    return pd.DataFrame(rows)


# -- implementation invariance: a functionally identical twin of a ReLU network -----------------
#
# Sundararajan et al. (2017) call an attribution method implementation invariant when two
# networks that compute the same function always get the same attributions. Integrated
# Gradients is (it reads only the function's gradients along a path); DeepLIFT's rescale rule is
# not, and Borys et al. repeat that as DeepLIFT's weakness (Table B1). The twin below rewrites
# every ReLU of a network so that the function stays exactly the same.
#
# An elementwise rewrite cannot show it: for a chain of one-variable functions a = g(z), the
# rescale multipliers telescope to (g(z) - g(z0)) / (z - z0) (summation to delta), so e.g.
# ReLU(ReLU(z + c) - c) with a constant c > 0 gives DeepLIFT exactly the map of ReLU(z). The
# rewrite has to route a second variable through the ReLU, as in Sundararajan et al.'s example
# ReLU(x1 - 1 - ReLU(x2)) = ReLU(ReLU(x1) - 1 - ReLU(x2)): for any t <= 0,
# ReLU(s + t) = ReLU(ReLU(s) + t). :class:`CoupledReLU` uses t = -r with r a non-negative
# function of another unit of the same layer.


class CoupledReLU(nn.Module):
    """``ReLU(z)``, implemented as ``ReLU(ReLU(z + r) - r)`` with ``r = ReLU(c · y) >= 0``.

    ``y`` is the pre-activation of the neighbouring unit (``z`` rolled by one along dimension 1,
    the channels of a feature map or the features of a vector), ``c = coupling > 0``. Equal to
    ``ReLU(z)`` for every ``z`` and ``r >= 0`` (if ``z >= 0`` the inner ReLU passes ``z + r``;
    otherwise ``max(z, -r) <= 0`` reaches the outer one), up to the rounding of ``z + r - r``.
    Three separate ``nn.ReLU`` modules, each called once, so captum's DeepLift applies its
    rescale rule to each. ``c`` scales ``r`` relative to the layer's own pre-activations (``y``
    is one of them): with ``c = 1``, ``r`` has the size of a typical positive pre-activation of
    the layer, so ``z + r`` changes sign between an input and its baseline at other units than
    ``z`` does, which is where DeepLIFT's multipliers differ from the original's.
    """

    def __init__(self, coupling: float = 1.0):
        super().__init__()
        if not coupling > 0:
            raise ValueError(f"coupling must be > 0, got {coupling}")
        self.coupling = float(coupling)
        self.couple = nn.ReLU()
        self.inner = nn.ReLU()
        self.outer = nn.ReLU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = self.couple(self.coupling * z.roll(1, dims=1))
        return self.outer(self.inner(z + r) - r)


#: functional ReLU calls a twin cannot rewrite (captum's DeepLift does not see them either)
_FUNCTIONAL_RELU = {torch.relu, torch.relu_, nn.functional.relu, nn.functional.relu_}


def implementation_twin(model: nn.Module, coupling: float = 1.0) -> nn.Module:
    """A copy of ``model`` computing the same function with every ``nn.ReLU`` call replaced by
    its own :class:`CoupledReLU` (a ``torch.fx.GraphModule``, in eval mode).

    A ReLU module called several times (torchvision's ResNet blocks, in-place or not) gets one
    new module per call. The original is untouched (the copy is deep). Raises ``ValueError``
    (one line) for a model ``torch.fx`` cannot trace, one that calls ReLU as a function
    (``F.relu``, ``torch.relu``, ``x.relu()``: no module to rewrite, and DeepLift would not
    apply its rule there) or one without any ``nn.ReLU``.
    """
    import copy

    import torch.fx

    name = type(model).__name__
    try:
        traced = torch.fx.symbolic_trace(copy.deepcopy(model))
    except Exception as err:  # noqa: BLE001 - torch.fx raises many kinds of errors
        raise ValueError(
            f"no implementation twin of {name}: torch.fx cannot trace it "
            f"({str(err).splitlines()[0]})"
        ) from None
    modules = dict(traced.named_modules())
    functional = [
        str(node)
        for node in traced.graph.nodes
        if (node.op == "call_function" and node.target in _FUNCTIONAL_RELU)
        or (node.op == "call_method" and node.target in ("relu", "relu_"))
    ]
    if functional:
        raise ValueError(
            f"no implementation twin of {name}: it calls ReLU as a function "
            f"({', '.join(functional)}); only nn.ReLU modules can be rewritten"
        )
    sites = [
        node
        for node in traced.graph.nodes
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU)
    ]
    if not sites:
        raise ValueError(f"no implementation twin of {name}: it has no nn.ReLU to rewrite")
    for k, node in enumerate(sites):
        site = f"coupled_relu_{k}"
        traced.add_submodule(site, CoupledReLU(coupling))
        node.target = site
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()
    return traced.eval()


def relative_l1(maps: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per map: ``‖a − b‖₁ / ‖a‖₁`` of ``maps`` ``a`` and ``others`` ``b`` ``(B, ...)``.

    0 for equal maps, 1 when ``b`` is zero or moved all of ``a``'s mass, up to 2 for ``b = −a``;
    a zero map ``a`` gives 0 against a zero ``b`` and ``inf`` otherwise. Chosen over
    ``1 − Spearman ρ`` to compare a map with its twin's: it is exactly 0 for equal maps (rounding
    gives ~1e-5), it sees mass moved between pixels, a change of sign or of scale that leaves
    the ranks alone, and it is not dominated by the order of the many near-zero pixels.
    """
    a = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    b = np.asarray(others, dtype=np.float64).reshape(len(others), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and others {b.shape} differ")
    num, den = np.abs(a - b).sum(1), np.abs(a).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.where(num > 0, np.inf, 0.0))


#: the methods :func:`implementation_invariance` compares: DeepLIFT (rescale rule) and the
#: implementation-invariant Integrated Gradients, its control
TWIN_METHODS: tuple[str, ...] = ("deeplift", "integrated_gradients")


def implementation_invariance(
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | Sequence[int],
    methods: Sequence[str] = TWIN_METHODS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    reference: Mapping[str, np.ndarray] | None = None,
    coupling: float = 1.0,
    rtol: float = 1e-4,
) -> pd.DataFrame:
    """Per method and input: how far its map for ``model`` moves for the model's twin
    (:func:`implementation_twin`), as :func:`relative_l1` (the model's map first).

    Columns ``method, unit, relative_l1, output_gap``; ``output_gap`` is the largest absolute
    difference of the two models' outputs for the input. ``options``: per method, the options
    of :func:`xaistudy.explain.explain`; ``reference``: per method, the model's maps when they
    were already computed with those options (they are not recomputed). Raises
    ``AssertionError`` when the twin's outputs differ from the model's by more than ``rtol`` of
    their largest magnitude: then the twin does not compute the same function.
    """
    from xaistudy.explain import explain

    model.eval()
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    twin = implementation_twin(model, coupling).to(device)
    with torch.no_grad():
        out, out_twin = model(inputs), twin(inputs)
    gap = (out - out_twin).abs().flatten(1).amax(1).double().cpu().numpy()
    scale = float(out.abs().max())
    if gap.max(initial=0.0) > rtol * max(scale, 1e-6):
        raise AssertionError(
            f"the twin's outputs differ from the model's by {gap.max():.3g} (scale {scale:.3g})"
        )
    rows = []
    for method in methods:
        opts = dict((options or {}).get(method, {}))
        given = (reference or {}).get(method)
        a = explain(method, model, inputs, target, **opts) if given is None else given
        b = explain(method, twin, inputs, target, **opts)
        rows += [
            {"method": method, "unit": i, "relative_l1": float(d), "output_gap": float(g)}
            for i, (d, g) in enumerate(zip(relative_l1(a, b), gap, strict=True))
        ]
    return pd.DataFrame(rows)
