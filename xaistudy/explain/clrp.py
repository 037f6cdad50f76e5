"""Contrastive LRP (CLRP) relevance at the layers of a ResNet, through zennit.

Relevance comes from zennit: a composite with the z+ rule (LRP-alpha1-beta0, biases ignored
so relevance is conserved) on convolutions and linear layers, the ``Norm`` rule on average
pools and on the residual sums, and ``Pass`` through activations; canonizers merge batch
norms into the preceding convolution and expose the residual ``+`` as a module. zennit's
``ResNetCanonizer`` covers torchvision ResNets; :class:`TimmResNetCanonizer` covers timm's
ResNets and Selective-Kernel ResNe(X)ts (``skresnet18``, ``skresnext50_32x4d``), whose
selective-kernel attention gate is treated as a constant.

Inside zennit's attributor the gradient that reaches a tensor *is* its relevance, so a tensor
hook on each stage's output captures the relevance there. The CLRP start vector
(:func:`clrp_initial`) puts relevance on the target logit and negative relevance on the others.
The relevance-weighted CAMs built on it are in :mod:`xaistudy.explain.relevance`.

The XRelevanceCAM paper's text names the LRP-epsilon and LRP-alpha-beta rules; the authors'
code, like this module, propagates with z+ (alpha1-beta0).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
import torchvision
from timm.layers.selective_kernel import SelectiveKernel
from timm.models.resnet import BasicBlock as TimmBasicBlock
from timm.models.resnet import Bottleneck as TimmBottleneck
from timm.models.sknet import SelectiveKernelBasic, SelectiveKernelBottleneck
from torch import nn
from zennit.attribution import Gradient
from zennit.canonizers import (
    AttributeCanonizer,
    Canonizer,
    CompositeCanonizer,
    MergeBatchNorm,
    SequentialMergeBatchNorm,
)
from zennit.composites import LayerMapComposite
from zennit.layer import Sum
from zennit.rules import Norm, Pass, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Activation, AvgPool, Convolution, Linear

from xaistudy.explain.cams import as_targets
from xaistudy.models.stages import STAGES

log = logging.getLogger(__name__)

#: initial CLRP relevance at the logits (t: target, N classes, L_t: the target's logit)
CLRP_RULES: dict[str, str] = {
    "unit": "1 at the target, -1/N elsewhere (the public Relevance-CAM code; the default)",
    "zero_sum": "L_t at the target, -L_t/(N-1) at every other class, total 0 (the paper's "
    "related-work text)",
    "logit": "L_t at the target, -L_t/N elsewhere, total L_t/N (the paper's Sect. 3.2 "
    "contrastive score)",
}
DEFAULT_RULE = "unit"


# -- CLRP start ---------------------------------------------------------------------------
def clrp_initial(
    logits: torch.Tensor, targets: torch.Tensor, rule: str = DEFAULT_RULE
) -> torch.Tensor:
    """The relevance put on the logits ``(B, N)`` before propagation (see :data:`CLRP_RULES`)."""
    if rule not in CLRP_RULES:
        raise ValueError(f"unknown CLRP rule '{rule}'; allowed: {', '.join(CLRP_RULES)}")
    b, n = logits.shape
    if n < 2:
        raise ValueError("CLRP needs at least two classes")
    targets = torch.as_tensor(targets, device=logits.device).long().reshape(-1)
    if len(targets) != b:
        raise ValueError(f"got {len(targets)} targets for {b} images; give one per image")
    lt = logits.detach().gather(1, targets[:, None])  # (B, 1)
    if rule == "zero_sum":
        start, other = lt, -lt / (n - 1)
    elif rule == "unit":
        start, other = torch.ones_like(lt), -torch.ones_like(lt) / n
    else:
        start, other = lt, -lt / n
    out = other.expand(b, n).clone()
    out.scatter_(1, targets[:, None], start)
    return out


def contrastive_score(logits: torch.Tensor, targets: torch.Tensor, rule: str = "logit"):
    """The contrastive score: the total initial CLRP relevance, ``(B,)``.

    With ``logit`` it is the paper's ``S_c = L_c - (N-1) L_c / N``; ``zero_sum`` gives 0 and
    ``unit`` the constant ``1/N``, which is why the axiom evaluation uses ``logit``.
    """
    return clrp_initial(logits, targets, rule).sum(1)


# -- canonizers ---------------------------------------------------------------------------
def _gate_constant(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``x * gate`` whose backward passes the incoming gradient (relevance) unchanged."""
    return x + (x * (gate.detach() - 1)).detach()


class _SKConvCanonizer(AttributeCanonizer):
    """timm ``SelectiveKernel``: the attention gate a constant, the path sum a ``Sum`` module."""

    def __init__(self):
        super().__init__(self._attribute_map)

    @classmethod
    def _attribute_map(cls, name, module):
        if isinstance(module, SelectiveKernel):
            return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
        return None

    @staticmethod
    def forward(self, x):
        if self.split_input:
            parts = torch.split(x, self.in_channels // self.num_paths, 1)
            paths = [op(parts[i]) for i, op in enumerate(self.paths)]
        else:
            paths = [op(x) for op in self.paths]
        stacked = torch.stack(paths, dim=1)
        gate = self.attn(stacked.detach())  # (B, paths, C, 1, 1), a constant for relevance
        gated = _gate_constant(stacked, gate)  # (B, paths, C, H, W)
        return self.canonizer_sum(gated.movedim(1, -1))


class _TimmBlockCanonizer(AttributeCanonizer):
    """timm residual blocks: the in-place ``x += shortcut`` becomes a ``Sum`` module."""

    BLOCKS = (SelectiveKernelBasic, SelectiveKernelBottleneck, TimmBasicBlock, TimmBottleneck)

    def __init__(self):
        super().__init__(self._attribute_map)

    @classmethod
    def _attribute_map(cls, name, module):
        if isinstance(module, cls.BLOCKS):
            return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
        return None

    @staticmethod
    def forward(self, x):
        shortcut = x
        if isinstance(self, TimmBasicBlock):
            out = self.aa(self.act1(self.drop_block(self.bn1(self.conv1(x)))))
            out = self.bn2(self.conv2(out))
        elif isinstance(self, TimmBottleneck):
            out = self.act1(self.bn1(self.conv1(x)))
            out = self.aa(self.act2(self.drop_block(self.bn2(self.conv2(out)))))
            out = self.bn3(self.conv3(out))
        elif isinstance(self, SelectiveKernelBottleneck):
            out = self.conv3(self.conv2(self.conv1(x)))
        else:  # SelectiveKernelBasic
            out = self.conv2(self.conv1(x))
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        out = self.canonizer_sum(torch.stack([shortcut, out], dim=-1))
        last = self.act2 if isinstance(self, TimmBasicBlock) else getattr(self, "act3", None)
        return (last or self.act)(out)


class ChildMergeBatchNorm(MergeBatchNorm):
    """Merge each batch norm into the convolution right before it among its siblings.

    Unlike zennit's ``SequentialMergeBatchNorm`` (which walks leaves) this also finds timm's
    ``BatchNormAct2d``, a batch norm with its activation as a child module.
    """

    def apply(self, root_module):
        instances = []
        for parent in root_module.modules():
            previous = None
            for child in parent.children():
                if isinstance(previous, self.linear_type) and isinstance(child, nn.BatchNorm2d):
                    instance = self.copy()
                    instance.register((previous,), child)
                    instances.append(instance)
                previous = child
        return instances


class TimmResNetCanonizer(CompositeCanonizer):
    """Batch norms merged, residual sums and selective-kernel path sums as ``Sum`` modules."""

    def __init__(self):
        super().__init__((ChildMergeBatchNorm(), _TimmBlockCanonizer(), _SKConvCanonizer()))


def canonizers_for(model: nn.Module) -> list[Canonizer]:
    """The canonizers that make ``model`` LRP-ready (batch norms merged, sums as modules)."""
    if isinstance(model, torchvision.models.ResNet):
        return [ResNetCanonizer()]
    blocks = (*_TimmBlockCanonizer.BLOCKS, SelectiveKernel)
    if any(isinstance(m, blocks) for m in model.modules()):
        return [TimmResNetCanonizer()]
    return [SequentialMergeBatchNorm()]


def clrp_composite(model: nn.Module, canonizers: Sequence[Canonizer] | None = None):
    """z+ (alpha1-beta0, bias ignored) on conv/linear, Norm on pools and sums, Pass on ReLUs."""
    zplus = ZPlus(zero_params=["bias"])
    return LayerMapComposite(
        layer_map=[
            (Activation, Pass()),
            (Sum, Norm()),
            (AvgPool, Norm()),
            (Convolution, zplus),
            (Linear, zplus),
        ],
        canonizers=list(canonizers_for(model) if canonizers is None else canonizers),
    )


# -- relevance at the stages --------------------------------------------------------------
def resolve_layers(model: nn.Module, layers: Sequence[str] | Mapping[str, nn.Module]):
    """``{name: module}`` for layer names (``layer1``...) or a ready mapping."""
    if isinstance(layers, Mapping):
        return dict(layers)
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"model has no layer '{missing[0]}'; expected e.g. {', '.join(STAGES)}")
    return {name: modules[name] for name in layers}


class _NoInplace:
    """Context: every ``nn.ReLU`` of a model runs out of place (zennit's hooks need it)."""

    def __init__(self, model: nn.Module):
        self.relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]

    def __enter__(self):
        for m in self.relus:
            m.inplace = False

    def __exit__(self, *exc):
        for m in self.relus:
            m.inplace = True


def clrp_relevance(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module] = STAGES,
    rule: str = DEFAULT_RULE,
    batch_size: int = 16,
    canonizers: Sequence[Canonizer] | None = None,
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """CLRP relevance and activations at each layer's output, and the logits.

    Returns ``({name: (activations, relevance)}, logits)``, tensors on the CPU, activations and
    relevance ``(B, K, h, w)``. The model is left as it was (canonizers are removed).
    """
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be (B, C, H, W), got shape {tuple(inputs.shape)}")
    modules = resolve_layers(model, layers)
    tgt = torch.tensor(as_targets(targets, len(inputs)))
    device = next(model.parameters()).device
    acts: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    rels: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    logits_all = []
    was_training = model.training
    model.eval()
    with _NoInplace(model):
        for start in range(0, len(inputs), batch_size):
            x = inputs[start : start + batch_size].to(device).requires_grad_(True)
            t = tgt[start : start + batch_size].to(device)
            seen: dict[str, torch.Tensor] = {}
            grads: dict[str, torch.Tensor] = {}

            def capture(name, seen=seen, grads=grads):
                def forward_hook(module, args, output):
                    seen[name] = output.detach()
                    if output.requires_grad:
                        output.register_hook(lambda g: grads.__setitem__(name, g.detach()))

                return forward_hook

            handles = [m.register_forward_hook(capture(n)) for n, m in modules.items()]
            try:
                with Gradient(model, clrp_composite(model, canonizers)) as attributor:
                    logits = model(x)
                    start_rel = clrp_initial(logits, t, rule)
                    torch.autograd.backward(logits, start_rel)
                    del attributor
            finally:
                for h in handles:
                    h.remove()
            logits_all.append(logits.detach().cpu())
            for n in modules:
                if n not in grads:
                    raise RuntimeError(f"no relevance reached layer '{n}'")
                acts[n].append(seen[n].cpu())
                rels[n].append(grads[n].cpu())
    model.train(was_training)
    out = {n: (torch.cat(acts[n]), torch.cat(rels[n])) for n in modules}
    return out, torch.cat(logits_all)
