"""Stain normalisation of H&E tiles: the Modified Reinhard method (Roy et al.) via torchstain.

Reinhard normalisation matches each tile's LAB channel statistics to those of a reference
tile. The *modified* variant (used by the IBO paper) keeps the tile's own luminance mean and
stretches its luminance contrast by ``1 + q``, ``q = (std_ref - std) / std_ref`` (0.05 when the
tile already has more contrast than the reference), and shifts the two colour channels to the
reference means. torchstain implements it (``method="modified"``); this module fits it on a
reference tile and applies it to batches of uint8 arrays or [0, 1] tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from torchstain.torch.normalizers import TorchReinhardNormalizer


def _to_chw_uint8(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One image as a (3, H, W) tensor in 0..255 from HWC uint8 or CHW [0, 1] float."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor in [0, 1], got shape {tuple(image.shape)}")
    return (image.detach().float().cpu().clamp(0, 1) * 255).round()


def fit_normalizer(reference: np.ndarray | torch.Tensor) -> TorchReinhardNormalizer:
    """A Modified Reinhard normaliser fitted on ``reference`` (HWC uint8 or CHW [0, 1])."""
    normalizer = TorchReinhardNormalizer(method="modified")
    normalizer.fit(_to_chw_uint8(reference))
    return normalizer


def normalize(
    images: np.ndarray | torch.Tensor, normalizer: TorchReinhardNormalizer
) -> np.ndarray | torch.Tensor:
    """Normalise a batch: (N, H, W, 3) uint8 -> same; (N, 3, H, W) [0, 1] tensor -> same."""
    as_array = isinstance(images, np.ndarray)
    if images.ndim != 4:
        raise ValueError(f"expected a batch (N, H, W, 3) uint8 or (N, 3, H, W), got {images.shape}")
    out = []
    for image in images:
        hwc = normalizer.normalize(_to_chw_uint8(image))  # (H, W, 3) uint8
        out.append(hwc.numpy() if as_array else hwc.permute(2, 0, 1).float() / 255)
    return np.stack(out) if as_array else torch.stack(out)


class StainNormalise:
    """A dataset transform: normalise each sample's image to ``reference`` (Modified Reinhard).

    Works with any dataset of the registry, synthetic or real::

        get_dataset("pannuke", "train", transform=StainNormalise(reference_tile))

    ``reference`` is one tile, (H, W, 3) uint8 or (3, H, W) in [0, 1]. Everything else in the
    sample (masks, labels) is passed through unchanged.
    """

    def __init__(self, reference: np.ndarray | torch.Tensor):
        self.normalizer = fit_normalizer(reference)

    def __call__(self, sample: dict) -> dict:
        out = dict(sample)
        out["image"] = normalize(sample["image"][None], self.normalizer)[0]
        return out
