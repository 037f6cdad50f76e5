"""The four stages (``layer1``..``layer4``) of torchvision and timm ResNets as units.

:func:`forward_from` runs a model from a stage's output to the logits (for channel-ablation
scores), :func:`add_stage_dropout` puts a dropout layer after each stage that stays on at
evaluation when asked (Monte-Carlo dropout, Gal & Ghahramani 2016), and
:func:`randomise_stages` re-initialises stages from the top down for the cascading
randomisation sanity check (Adebayo et al., 2018).
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
#: cascading order of :func:`randomise_stages`: the head first, then the stages top-down
CASCADE: tuple[str, ...] = ("fc", "layer4", "layer3", "layer2", "layer1")


def check_stages(model: nn.Module) -> None:
    """Raise a one-line error unless ``model`` has ``layer1``..``layer4`` and an ``fc`` head."""
    missing = [n for n in (*STAGES, "fc") if not isinstance(getattr(model, n, None), nn.Module)]
    if missing:
        raise ValueError(
            f"{type(model).__name__} has no '{missing[0]}'; need a ResNet-like model with "
            "layer1..layer4 and fc"
        )


def head(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Logits from the last stage's output (global average pool, then the ``fc`` layer)."""
    if hasattr(model, "forward_head"):  # timm
        return model.forward_head(features)
    return model.fc(torch.flatten(model.avgpool(features), 1))


def forward_from(model: nn.Module, stage: str, features: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` when ``stage``'s output is ``features`` (the later stages, the head).

    A model with its own ``forward_from(stage, features)`` (e.g. ``small_cnn``, whose stages
    are its blocks ``features.0``..``features.3``) runs that instead.
    """
    if hasattr(model, "forward_from"):
        return model.forward_from(stage, features)
    check_stages(model)
    if stage not in STAGES:
        raise ValueError(f"unknown stage '{stage}'; allowed: {', '.join(STAGES)}")
    x = features
    for name in STAGES[STAGES.index(stage) + 1 :]:
        x = getattr(model, name)(x)
    return head(model, x)


class StageDropout(nn.Module):
    """Channel-agnostic dropout whose ``always_on`` flag keeps it active in eval mode."""

    def __init__(self, p: float = 0.1, always_on: bool = False):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = p
        self.always_on = always_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=self.training or self.always_on)

    def extra_repr(self) -> str:
        return f"p={self.p}, always_on={self.always_on}"


def add_stage_dropout(model: nn.Module, p: float = 0.1) -> nn.Module:
    """``model`` (modified in place) with ``layerN = Sequential(layerN, StageDropout(p))``."""
    check_stages(model)
    for name in STAGES:
        setattr(model, name, nn.Sequential(getattr(model, name), StageDropout(p)))
    return model


def set_dropout(model: nn.Module, always_on: bool) -> int:
    """Switch every :class:`StageDropout` on (also in eval mode) or to its usual behaviour."""
    found = [m for m in model.modules() if isinstance(m, StageDropout)]
    for m in found:
        m.always_on = always_on
    return len(found)


def randomise_stages(model: nn.Module, k: int, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose top ``k`` units of :data:`CASCADE` are re-initialised.

    ``k=1``: the ``fc`` head; ``k=2``: head and ``layer4``; ... ``k=5``: everything but the stem.
    Convolutions and linear layers get their default initialisation (``reset_parameters``,
    seeded); batch-norm statistics are kept, as in the weight-level cascade of
    :mod:`xaistudy.evaluate.sanity`. The original model is untouched.
    """
    check_stages(model)
    if not 0 <= k <= len(CASCADE):
        raise ValueError(f"k must be from 0 to {len(CASCADE)}, got {k}")
    clone = copy.deepcopy(model)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for name in CASCADE[:k]:
            for module in getattr(clone, name).modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.reset_parameters()
    finally:
        torch.random.set_rng_state(state)
    return clone.eval()
