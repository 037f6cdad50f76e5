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

from collections.abc import Sequence

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
