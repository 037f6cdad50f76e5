"""A copy of a model with one ReLU module per call site, for attribution rules that need it.

captum's DeepLIFT keeps per-module state (the module's input and output of the last call), so
a ReLU module called several times per forward pass, as in torchvision's ResNet blocks
(``self.relu`` after both convolutions and after the skip connection), is refused.
:func:`relu_per_call_site` traces the model with ``torch.fx`` and gives every call of a ReLU
its own (non-in-place) ``nn.ReLU``; weights are shared with the original model, the copy
computes the same function, and the hooks on the model's own call fire on the copy's.
"""

from __future__ import annotations

from collections import Counter

import torch.fx
from torch import nn


def relu_call_counts(model: nn.Module) -> Counter[str]:
    """How often each ReLU module of ``model`` is called in one forward pass (by name)."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    return Counter(
        str(node.target)
        for node in graph.nodes
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU)
    )


def has_shared_relu(model: nn.Module) -> bool:
    """True when some ReLU module of ``model`` is called more than once per forward pass."""
    try:
        return any(n > 1 for n in relu_call_counts(model).values())
    except Exception:  # noqa: BLE001 - not traceable: leave the model as it is
        return False


def relu_per_call_site(model: nn.Module) -> nn.Module:
    """A ``torch.fx.GraphModule`` computing ``model`` with a separate ``nn.ReLU`` per call.

    Raises ``ValueError`` (one line) when the model cannot be traced symbolically.
    """
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as err:  # noqa: BLE001 - torch.fx raises many kinds of errors
        raise ValueError(
            f"{type(model).__name__} cannot be traced by torch.fx: {str(err).splitlines()[0]}"
        ) from None
    modules = dict(traced.named_modules())
    k = 0
    for node in traced.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(str(node.target)), nn.ReLU):
            name = f"relu_site_{k}"
            traced.add_submodule(name, nn.ReLU(inplace=False))
            node.target = name
            k += 1
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()
    # the copy stands in for the model: hooks on the model's own call (e.g. pass counting) fire
    traced._forward_pre_hooks.update(model._forward_pre_hooks)
    traced._forward_hooks.update(model._forward_hooks)
    return traced.train(model.training)
