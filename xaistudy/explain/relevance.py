"""Contrastive LRP (CLRP) relevance at the ResNet stages, RelevanceCAM and XRelevanceCAM.

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

RelevanceCAM (Lee et al., 2021) weights channel ``k`` by the mean relevance of its map;
XRelevanceCAM (You et al., 2024, Eq. 1) by ``sum_ij R_ij^k / sum_ij A_ij^k``. Both maps are
``sum_k w_k A^k``, upsampled to the input and min-max scaled per image, with no ReLU before the
scaling: the Relevance-CAM and XRelevanceCAM reference codes apply none (the gradient CAMs keep
pytorch-grad-cam's ReLU).

The paper's text names the LRP-epsilon and LRP-alpha-beta rules; the authors' code, like this
module, propagates with z+ (alpha1-beta0).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
import torchvision
from pytorch_grad_cam.utils.image import scale_cam_image
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
RELEVANCE_METHODS: tuple[str, ...] = ("relevancecam", "xrelevancecam")
STAGES: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")


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


# -- CAM weights and maps -------------------------------------------------------------------
def relevancecam_weights(relevance: torch.Tensor) -> torch.Tensor:
    """RelevanceCAM: the mean relevance of each channel's map, ``(B, K)``."""
    return relevance.mean(dim=(2, 3))


def xrelevancecam_weights(
    relevance: torch.Tensor, activations: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """XRelevanceCAM (Eq. 1): ``sum_ij R / sum_ij A`` per channel, 0 for all-zero channels."""
    num = relevance.sum(dim=(2, 3))
    den = activations.sum(dim=(2, 3))
    safe = torch.where(den.abs() > eps, den, torch.ones_like(den))
    return torch.where(den.abs() > eps, num / safe, torch.zeros_like(num))


def relevance_weights(method: str, relevance: torch.Tensor, activations: torch.Tensor):
    """Channel weights ``(B, K)`` of ``relevancecam`` or ``xrelevancecam``."""
    if method == "relevancecam":
        return relevancecam_weights(relevance)
    if method == "xrelevancecam":
        return xrelevancecam_weights(relevance, activations)
    raise ValueError(
        f"unknown relevance method '{method}'; allowed: {', '.join(RELEVANCE_METHODS)}"
    )


def minmax(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling of ``(B, H, W)`` to [0, 1] (constant maps become 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def finish_cam(cam: np.ndarray, size: tuple[int, int], relu: bool = True) -> np.ndarray:
    """pytorch-grad-cam's post-processing: ReLU (when ``relu``), min-max, resize to ``size``
    (H, W), min-max."""
    cam = np.asarray(cam, dtype=np.float32)
    if relu:
        cam = np.maximum(cam, 0)
    return minmax(scale_cam_image(cam, (size[1], size[0])))


def weighted_cam(
    weights: torch.Tensor, activations: torch.Tensor, size: tuple[int, int]
) -> np.ndarray:
    """``sum_k w_k A^k`` upsampled to ``size``, min-max scaled, no ReLU (as the relevance
    CAMs' reference codes): (B, H, W)."""
    cam = (weights[:, :, None, None] * activations).sum(1)
    return finish_cam(cam.float().numpy(), size, relu=False)


def relevance_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module] = STAGES,
    rule: str = DEFAULT_RULE,
    methods: Sequence[str] = RELEVANCE_METHODS,
    batch_size: int = 16,
) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {layer: maps (B, H, W)}}`` of RelevanceCAM / XRelevanceCAM from one CLRP pass."""
    captured, _ = clrp_relevance(model, inputs, targets, layers, rule, batch_size)
    size = tuple(inputs.shape[-2:])
    return {
        m: {n: weighted_cam(relevance_weights(m, r, a), a, size) for n, (a, r) in captured.items()}
        for m in methods
    }


#: the CAM methods of the chapter: pytorch-grad-cam's five and the two relevance CAMs
LAYER_METHODS: tuple[str, ...] = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    *RELEVANCE_METHODS,
)


def layer_activations_and_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Sequence[int],
    layers: Mapping[str, nn.Module],
    batch_size: int = 16,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Activations and target-logit gradients ``(B, K, h, w)`` at each layer, one backward."""
    device = next(model.parameters()).device
    acts: dict[str, list] = {n: [] for n in layers}
    grads: dict[str, list] = {n: [] for n in layers}
    tgt = torch.tensor(list(targets))
    model.eval()
    for start in range(0, len(inputs), batch_size):
        seen: dict[str, torch.Tensor] = {}
        got: dict[str, torch.Tensor] = {}

        def capture(name, seen=seen, got=got):
            def hook(module, args, output):
                seen[name] = output.detach().cpu()
                output.register_hook(lambda g: got.__setitem__(name, g.detach().cpu()))

            return hook

        handles = [m.register_forward_hook(capture(n)) for n, m in layers.items()]
        try:
            x = inputs[start : start + batch_size].to(device).requires_grad_(True)
            logits = model(x)
            t = tgt[start : start + batch_size].to(device)
            model.zero_grad(set_to_none=True)
            logits.gather(1, t[:, None]).sum().backward()
        finally:
            for h in handles:
                h.remove()
        for n in layers:
            acts[n].append(seen[n].numpy())
            grads[n].append(got[n].numpy())
    return {n: (np.concatenate(acts[n]), np.concatenate(grads[n])) for n in layers}


def gradient_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module] = STAGES,
    methods: Sequence[str] = LAYER_METHODS[:5],
    batch_size: int = 16,
) -> dict[str, dict[str, np.ndarray]]:
    """Gradient CAMs of every layer from one forward/backward, with pytorch-grad-cam's code.

    Each method's own ``get_cam_image`` (its weights) and post-processing are applied to the
    activations and gradients of each layer, so the maps equal
    :func:`~xaistudy.explain.cams.compute_cam` with that single layer, at a quarter of the
    passes for four layers.
    """
    from xaistudy.explain.cams import CAM_METHODS

    modules = resolve_layers(model, layers)
    tgt = as_targets(targets, len(inputs))
    captured = layer_activations_and_grads(model, inputs, tgt, modules, batch_size)
    size = tuple(inputs.shape[-2:])
    out: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        if method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method '{method}'; allowed: {', '.join(CAM_METHODS)}")
        cls = CAM_METHODS[method]
        # the class's own weight and image functions, without its hooks (they use no state)
        shim = SimpleNamespace(get_cam_weights=partial(cls.get_cam_weights, None))
        out[method] = {
            n: finish_cam(cls.get_cam_image(shim, None, None, None, a, g, False), size)
            for n, (a, g) in captured.items()
        }
    return out


def layer_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    methods: Sequence[str] = LAYER_METHODS,
    layers: Sequence[str] = STAGES,
    rule: str = DEFAULT_RULE,
    batch_size: int = 16,
    n_passes: int = 1,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {layer: maps (B, H, W)}}`` for every method at every layer.

    Gradient CAMs come from :func:`gradient_cams` (pytorch-grad-cam's weights, one backward
    for all layers); the relevance CAMs from one CLRP pass per batch. With ``n_passes > 1``
    (a model whose dropout stays on) the maps of ``n_passes`` seeded passes are averaged, as
    in the paper's dropout experiment.
    """
    from xaistudy.explain.cams import CAM_METHODS

    unknown = [m for m in methods if m not in CAM_METHODS and m not in RELEVANCE_METHODS]
    if unknown:
        raise ValueError(f"unknown CAM method '{unknown[0]}'; allowed: {', '.join(LAYER_METHODS)}")
    if n_passes < 1:
        raise ValueError(f"n_passes must be >= 1, got {n_passes}")
    modules = resolve_layers(model, layers)
    tgt = as_targets(targets, len(inputs))
    total: dict[str, dict[str, np.ndarray]] = {m: {} for m in methods}
    state = torch.random.get_rng_state()
    try:
        for p in range(n_passes):
            out: dict[str, dict[str, np.ndarray]] = {m: {} for m in methods}
            grad_methods = [m for m in methods if m not in RELEVANCE_METHODS]
            if grad_methods:
                torch.manual_seed(seed * 1000 + p)
                out.update(gradient_cams(model, inputs, tgt, modules, grad_methods, batch_size))
            relevant = [m for m in methods if m in RELEVANCE_METHODS]
            if relevant:
                torch.manual_seed(seed * 1000 + p)
                out.update(relevance_cams(model, inputs, tgt, modules, rule, relevant, batch_size))
            for method in methods:
                for name in modules:
                    prev = total[method].get(name, 0.0)
                    total[method][name] = prev + out[method][name] / n_passes
    finally:
        torch.random.set_rng_state(state)
    return {m: {n: v.astype(np.float32) for n, v in d.items()} for m, d in total.items()}


def cached_layer_cams(
    store, key: Mapping, model: nn.Module, inputs: torch.Tensor, targets, **options
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`layer_cams` stored under ``key`` (what identifies model, inputs and options)."""

    def compute():
        maps = layer_cams(model, inputs, targets, **options)
        return {f"{m}/{n}": v for m, d in maps.items() for n, v in d.items()}

    params = {**key, **{k: v for k, v in options.items() if k != "batch_size"}}
    flat = store.cached_arrays("xrelevancecam-maps", params, compute)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in flat.items():
        method, layer = name.split("/")
        out.setdefault(method, {})[layer] = arr
    return out
