"""How far an occluded image is from the original, and from the data: LPIPS and substitutes.

* :func:`lpips_alex` — LPIPS with AlexNet features (Zhang et al.; the paper's Table 1). It needs
  torchvision's ImageNet AlexNet file, given as a path or found at
  ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` (never downloaded); the learned
  LPIPS layer weights ship with the ``lpips`` package.
* Substitutes when that file is absent, labelled as such wherever they appear:
  :func:`ssim` (structural similarity, 1 = identical) and :func:`feature_distance`, the LPIPS
  formula (Eq. 7) with unit weights ``w_l = 1`` on the *study classifier's own* feature maps.
* :class:`Mahalanobis` — an explicit out-of-distribution score: the Mahalanobis distance of an
  image's penultimate classifier features from the training features (shrunk covariance).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from sklearn.covariance import LedoitWolf
from torch import nn

log = logging.getLogger(__name__)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


# -- LPIPS (AlexNet) ------------------------------------------------------------------------
def default_alexnet_path() -> Path:
    """Where torchvision keeps its ImageNet AlexNet file: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def alexnet_weights_path(path: str | Path = "") -> Path | None:
    """The AlexNet weights file LPIPS(alex) uses, or None when there is none.

    ``path`` empty: :func:`default_alexnet_path` when that file exists, else None. A given
    ``path`` must exist (:class:`FileNotFoundError` naming it otherwise).
    """
    if str(path):
        given = Path(path).expanduser()
        if not given.is_file():
            raise FileNotFoundError(f"AlexNet weights file {given} does not exist")
        return given
    default = default_alexnet_path()
    return default if default.is_file() else None


_LPIPS_CACHE: dict[tuple[str, str], nn.Module] = {}


def _lpips_model(device: torch.device, weights: str | Path = "") -> nn.Module:
    import lpips

    path = alexnet_weights_path(weights)
    if path is None:
        raise FileNotFoundError(
            f"LPIPS(alex) needs {ALEXNET_FILE} in {default_alexnet_path().parent} or a file "
            "given as alexnet_weights"
        )
    key = (str(path.resolve()), str(device))
    if key not in _LPIPS_CACHE:
        # random AlexNet first (no download), then the local ImageNet weights into its slices
        model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        for slice_ in (getattr(model.net, f"slice{i}") for i in range(1, 6)):
            for name, module in slice_.named_children():
                if isinstance(module, nn.Conv2d):
                    module.weight.data.copy_(state[f"features.{name}.weight"])
                    module.bias.data.copy_(state[f"features.{name}.bias"])
        _LPIPS_CACHE[key] = model.to(device).eval()
    return _LPIPS_CACHE[key]


@torch.no_grad()
def lpips_alex(
    x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, weights: str | Path = ""
) -> np.ndarray:
    """LPIPS(alex) per image pair, images (B, 3, H, W) in [0, 1].

    ``weights``: the torchvision AlexNet ImageNet file (``features.*`` keys); empty for
    :func:`default_alexnet_path`. Never downloaded.
    """
    _check_pair(x, y)
    device = x.device
    model = _lpips_model(device, weights)
    out = [
        model(x[i : i + batch_size] * 2 - 1, y[i : i + batch_size] * 2 - 1).flatten()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).cpu().numpy().astype(np.float64)


# -- substitutes ----------------------------------------------------------------------------
def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"expected two image batches of the same shape (B, C, H, W), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )


def ssim(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """SSIM per image pair (scikit-image, data range 1): 1 for identical images."""
    _check_pair(x, y)
    a = x.detach().cpu().double().numpy()
    b = y.detach().cpu().double().numpy()
    return np.array(
        [structural_similarity(a[i], b[i], data_range=1.0, channel_axis=0) for i in range(len(a))]
    )


def feature_layers(model: nn.Module) -> list[nn.Module]:
    """The stages whose outputs the feature distance compares.

    ``SmallCNN``: its conv blocks; ResNets: ``layer1..layer4``; otherwise every top-level child
    that contains a convolution.
    """
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential) and hasattr(model, "last_block"):
        return list(features)
    stages = [getattr(model, f"layer{i}", None) for i in range(1, 5)]
    if all(isinstance(s, nn.Module) for s in stages):
        return stages  # type: ignore[return-value]
    found = [m for m in model.children() if any(isinstance(c, nn.Conv2d) for c in m.modules())]
    if not found:
        raise ValueError(f"{type(model).__name__} has no convolutional stage to compare")
    return found


def _activations(model: nn.Module, layers: Sequence[nn.Module], x: torch.Tensor):
    acts: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: acts.append(out)) for m in layers]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return acts


@torch.no_grad()
def feature_distance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    layers: Sequence[nn.Module] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Eq. 7 with ``w_l = 1`` on ``model``'s feature maps: per image pair, 0 when identical.

    Each layer's activations are unit-normalised over channels at every position (as LPIPS
    does), the squared difference is summed over channels, averaged over positions and summed
    over layers. This is an LPIPS-form distance, not LPIPS: the weights are not learned from
    human judgements and the features are the study classifier's.
    """
    _check_pair(x, y)
    model.eval()
    layers = list(layers) if layers is not None else feature_layers(model)
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        fx = _activations(model, layers, x[i : i + batch_size].to(device))
        fy = _activations(model, layers, y[i : i + batch_size].to(device))
        total = torch.zeros(len(fx[0]), device=device)
        for a, b in zip(fx, fy, strict=True):
            a = F.normalize(a.float(), dim=1, eps=1e-10)
            b = F.normalize(b.float(), dim=1, eps=1e-10)
            total += (a - b).pow(2).sum(dim=1).mean(dim=(-2, -1))
        out.append(total.cpu())
    return torch.cat(out).numpy().astype(np.float64)


# -- out-of-distribution score --------------------------------------------------------------
def _head(model: nn.Module) -> nn.Module:
    for name in ("classifier", "fc", "head"):
        module = getattr(model, name, None)
        if isinstance(module, nn.Linear):
            return module
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear head to read features from")
    return linears[-1]


@torch.no_grad()
def penultimate_features(
    model: nn.Module, images: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """The input of ``model``'s final linear layer for each image: (B, D)."""
    model.eval()
    device = next(model.parameters()).device
    feats: list[torch.Tensor] = []
    handle = _head(model).register_forward_hook(lambda _m, inp, _o: feats.append(inp[0].detach()))
    try:
        for i in range(0, len(images), batch_size):
            model(images[i : i + batch_size].to(device))
    finally:
        handle.remove()
    return torch.cat(feats).flatten(1).cpu().double().numpy()


class Mahalanobis:
    """Mahalanobis distance to a feature distribution (mean + Ledoit-Wolf shrunk covariance).

    Fit on the classifier's penultimate features of the training images; a large distance means
    the classifier sees the image as unlike anything it was trained on.
    """

    def fit(self, features: np.ndarray) -> Mahalanobis:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) < 2:
            raise ValueError(f"need (N >= 2, D) training features, got shape {features.shape}")
        self.cov_ = LedoitWolf().fit(features)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if not hasattr(self, "cov_"):
            raise ValueError("Mahalanobis.score called before fit")
        return np.sqrt(self.cov_.mahalanobis(np.asarray(features, dtype=np.float64)))
