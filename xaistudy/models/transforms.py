"""Input transforms shared by the models: per-tile channel standardisation and random
dihedral (90-degree rotation and flip) augmentation of dict samples.

:func:`standardise_channels` shifts and scales every channel of every tile to mean 0 and
standard deviation 1, which removes a tile's overall stain strength and brightness.
:class:`ChannelStandardise` is the same as a module, placed first in a model so that explainers
still see (and perturb) the raw [0, 1] image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

#: the denominator is sqrt(variance + STD_EPS**2): a constant channel maps to 0 and its
#: gradient stays finite (explainers differentiate through this layer)
STD_EPS = 1e-3
#: the keys of a sample that are images or pixel maps and turn with the image
SPATIAL_KEYS = ("image", "mask", "nuclei_type")


def standardise_channels(x: torch.Tensor, eps: float = STD_EPS) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps**2)`` per tile and channel of a batch ``(N, C, H, W)``
    (the unbiased variance, as ``torch.std``)."""
    if x.ndim != 4:
        raise ValueError(f"standardise_channels expects (N, C, H, W), got shape {tuple(x.shape)}")
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps**2)


class ChannelStandardise(nn.Module):
    """:func:`standardise_channels` as the first layer of a model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return standardise_channels(x)


class RandomDihedral(Dataset):
    """Samples (dicts) under a random quarter-turn rotation and a random horizontal flip.

    Draws from the global torch RNG (seeded by the training loop), so a seeded run repeats.
    The image and its pixel maps (``keys``) turn together.
    """

    def __init__(self, base: Dataset, keys: Sequence[str] = SPATIAL_KEYS):
        self.base = base
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = dict(self.base[i])
        turns = int(torch.randint(0, 4, ()))
        flip = bool(torch.rand(()) < 0.5)
        for key in self.keys:
            if key in sample and torch.is_tensor(sample[key]):
                v = torch.rot90(sample[key], turns, dims=(-2, -1))
                sample[key] = (v.flip(-1) if flip else v).contiguous()
        return sample
