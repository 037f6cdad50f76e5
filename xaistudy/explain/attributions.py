"""Pixel attributions with one interface: ``attribute(method, model, inputs, target, **options)``.

Gradient and perturbation methods come from captum, LIME from the ``lime`` package, LRP from
zennit (with canonizers for batch norm and ResNet skip connections), RISE from
:mod:`xaistudy.explain.rise`. Every method returns a signed tensor of the input's shape
(B, C, H, W): positive values are evidence for ``target``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import (
    Deconvolution,
    DeepLift,
    FeatureAblation,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from skimage.segmentation import slic
from torch import nn

from xaistudy.explain.cams import as_targets
from xaistudy.explain.registry import METHODS, check_options, register_method
from xaistudy.explain.rise import class_probability, fill_like, rise


def grid_segments(height: int, width: int, n_segments: int) -> np.ndarray:
    """A regular grid of about ``n_segments`` rectangular segments (H, W), labels from 0."""
    k = max(1, int(round(np.sqrt(n_segments))))
    rows = np.minimum(np.arange(height) * k // height, k - 1)
    cols = np.minimum(np.arange(width) * k // width, k - 1)
    return (rows[:, None] * k + cols[None, :]).astype(np.int64)


def superpixels(image: torch.Tensor, n_segments: int = 50, seed: int = 0) -> np.ndarray:
    """SLIC superpixels (H, W) of one image (C, H, W) in [0, 1], labels 0..K-1.

    Falls back to :func:`grid_segments` when SLIC finds fewer than a quarter of the requested
    segments (e.g. on noise or flat images), so perturbation methods always have features.
    """
    rgb = image.detach().permute(1, 2, 0).cpu().numpy().astype(np.float64)
    channel_axis = -1 if rgb.shape[-1] == 3 else None
    rgb = rgb if channel_axis else rgb[..., 0]
    seg = slic(rgb, n_segments=n_segments, compactness=10, start_label=0, channel_axis=channel_axis)
    if len(np.unique(seg)) < max(2, n_segments // 4):
        return grid_segments(*seg.shape, n_segments)
    return np.unique(seg, return_inverse=True)[1].reshape(seg.shape).astype(np.int64)


def _per_image(inputs: torch.Tensor, targets: list[int], fn: Callable) -> torch.Tensor:
    return torch.cat([fn(inputs[i : i + 1], targets[i], i) for i in range(len(inputs))])


@register_method(
    "saliency",
    label="Vanilla gradient",
    family="backpropagation",
    library="captum",
    passes="1 forward + 1 backward",
)
def _saliency(model, inputs, targets):
    return Saliency(model).attribute(inputs, target=targets, abs=False)


@register_method(
    "input_x_gradient",
    label="Input × gradient",
    family="backpropagation",
    library="captum",
    passes="1 forward + 1 backward",
)
def _input_x_gradient(model, inputs, targets):
    return InputXGradient(model).attribute(inputs, target=targets)


@register_method(
    "integrated_gradients",
    label="Integrated Gradients",
    family="backpropagation",
    library="captum",
    passes="n_steps forward + n_steps backward",
)
def _integrated_gradients(
    model,
    inputs,
    targets,
    *,
    n_steps: int = 50,
    baseline: float = 0.0,
    internal_batch_size: int = 32,
):
    # ``baseline``: the constant image the path starts from (0: black for inputs in [0, 1])
    return IntegratedGradients(model).attribute(
        inputs,
        baselines=torch.full_like(inputs, baseline),
        target=targets,
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
    )


@register_method(
    "ig_noise_tunnel",
    label="IG + NoiseTunnel",
    family="backpropagation",
    library="captum",
    passes="nt_samples × n_steps forward + backward",
    stochastic=True,
)
def _ig_noise_tunnel(
    model,
    inputs,
    targets,
    *,
    n_steps: int = 50,
    nt_samples: int = 5,
    stdevs: float = 0.1,
    internal_batch_size: int = 32,
    seed: int = 0,
):
    torch.manual_seed(seed)
    return NoiseTunnel(IntegratedGradients(model)).attribute(
        inputs,
        baselines=torch.zeros_like(inputs),
        target=targets,
        n_steps=n_steps,
        nt_type="smoothgrad_sq",
        nt_samples=nt_samples,
        stdevs=stdevs,
        internal_batch_size=internal_batch_size,
    )


@register_method(
    "smoothgrad",
    label="SmoothGrad",
    family="backpropagation",
    library="captum",
    passes="nt_samples forward + backward",
    stochastic=True,
)
def _smoothgrad(
    model, inputs, targets, *, nt_samples: int = 25, stdevs: float = 0.15, seed: int = 0
):
    torch.manual_seed(seed)
    return NoiseTunnel(Saliency(model)).attribute(
        inputs,
        target=targets,
        nt_type="smoothgrad",
        nt_samples=nt_samples,
        stdevs=stdevs,
        abs=False,
    )


@register_method(
    "guided_backprop",
    label="Guided Backpropagation",
    family="backpropagation",
    library="captum",
    passes="1 forward + 1 modified backward",
)
def _guided_backprop(model, inputs, targets):
    return GuidedBackprop(model).attribute(inputs, target=targets)


@register_method(
    "deconvolution",
    label="Deconvolution",
    family="backpropagation",
    library="captum",
    passes="1 forward + 1 modified backward",
)
def _deconvolution(model, inputs, targets):
    return Deconvolution(model).attribute(inputs, target=targets)


@register_method(
    "deeplift",
    label="DeepLIFT",
    family="backpropagation",
    library="captum",
    passes="2 forward (input, baseline) + 1 modified backward",
)
def _deeplift(model, inputs, targets):
    from xaistudy.models.relu_sites import has_shared_relu, relu_per_call_site

    if has_shared_relu(model):  # e.g. torchvision ResNets: one ReLU module per call site
        model = relu_per_call_site(model)
    return DeepLift(model).attribute(inputs, baselines=torch.zeros_like(inputs), target=targets)


@register_method(
    "guided_gradcam",
    label="Guided Grad-CAM",
    family="backpropagation",
    library="captum",
    passes="1 forward + 2 backward",
    needs_layer=True,
)
def _guided_gradcam(model, inputs, targets, *, layer: nn.Module | None = None):
    if layer is None:
        raise ValueError("guided_gradcam needs layer= (the convolutional layer of the CAM)")
    return GuidedGradCam(model, layer).attribute(
        inputs, target=targets, interpolate_mode="bilinear"
    )


@register_method(
    "occlusion",
    label="Occlusion",
    family="perturbation",
    library="captum",
    passes="1 + number of window positions forward",
    model_agnostic=True,
    channel_shared=True,
)
def _occlusion(model, inputs, targets, *, window: int | None = None, stride: int | None = None):
    h = inputs.shape[-1]
    window = window or max(4, h // 8)
    stride = stride or max(2, window // 2)
    c = inputs.shape[1]
    return Occlusion(model).attribute(
        inputs,
        target=targets,
        sliding_window_shapes=(c, window, window),
        strides=(c, stride, stride),
        baselines=0.0,
        perturbations_per_eval=16,
    )


def _superpixel_mask(image: torch.Tensor, n_segments: int, seed: int) -> torch.Tensor:
    seg = torch.from_numpy(superpixels(image[0], n_segments, seed)).to(image.device)
    return seg.expand(image.shape[1], -1, -1)[None]


@register_method(
    "feature_ablation",
    label="Feature ablation",
    family="perturbation",
    library="captum",
    passes="1 + number of superpixels forward",
    model_agnostic=True,
    channel_shared=True,
)
def _feature_ablation(model, inputs, targets, *, n_segments: int = 50, seed: int = 0):
    return _per_image(
        inputs,
        targets,
        lambda x, t, i: FeatureAblation(model).attribute(
            x,
            target=t,
            feature_mask=_superpixel_mask(x, n_segments, seed),
            baselines=0.0,
            perturbations_per_eval=16,
        ),
    )


@register_method(
    "kernel_shap",
    label="KernelSHAP",
    family="perturbation",
    library="captum",
    passes="n_samples forward",
    model_agnostic=True,
    channel_shared=True,
    stochastic=True,
)
def _kernel_shap(
    model, inputs, targets, *, n_samples: int = 200, n_segments: int = 50, seed: int = 0
):
    def one(x, t, i):
        torch.manual_seed(seed)  # the same tile gets the same map alone or in a batch
        return KernelShap(model).attribute(
            x,
            target=t,
            feature_mask=_superpixel_mask(x, n_segments, seed),
            baselines=0.0,
            n_samples=n_samples,
            perturbations_per_eval=32,
        )

    return _per_image(inputs, targets, one)


@register_method(
    "lime",
    label="LIME",
    family="perturbation",
    library="lime",
    passes="num_samples forward",
    model_agnostic=True,
    channel_shared=True,
    stochastic=True,
)
def _lime(
    model,
    inputs,
    targets,
    *,
    num_samples: int = 500,
    num_features: int | None = None,
    positive_only: bool = False,
    seed: int = 0,
    batch_size: int = 50,
    hide_color: float | None = 0,
):
    """LIME (``lime`` package) on quickshift superpixels; the map holds each segment's weight.

    ``hide_color``: the value of a switched-off superpixel (0: black; None: the superpixel's
    mean colour, ``lime``'s own default).

    Superpixels are ``lime``'s default quickshift (kernel 4, max_dist 200, ratio 0.2) computed
    on the image scaled to 0-255, the range those settings are made for. ``num_features`` keeps
    the top segments by absolute weight, as ``lime``'s ``get_image_and_mask`` does
    (``positive_only``: the top positive ones), e.g. 3 in the thesis chapter; None keeps all.
    """
    from lime import lime_image
    from skimage.segmentation import quickshift

    def segment(image: np.ndarray) -> np.ndarray:
        return quickshift(image * 255.0, kernel_size=4, max_dist=200, ratio=0.2, rng=seed)

    device = inputs.device

    def classifier_fn(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().to(device)
        with torch.no_grad():
            return torch.softmax(model(x), dim=1).cpu().numpy()

    def one(x, t, i):
        image = x[0].detach().permute(1, 2, 0).cpu().numpy().astype(np.float64)
        explanation = lime_image.LimeImageExplainer(random_state=seed).explain_instance(
            image,
            classifier_fn,
            labels=(t,),
            top_labels=None,
            hide_color=hide_color,
            num_samples=num_samples,
            batch_size=batch_size,
            random_seed=seed,
            segmentation_fn=segment,
        )
        weights = sorted(explanation.local_exp[t], key=lambda sw: -abs(sw[1]))
        if positive_only:
            weights = [(s, w) for s, w in weights if w > 0]
        if num_features is not None:
            weights = weights[:num_features]
        seg_map = np.zeros(explanation.segments.shape, np.float32)
        for seg, weight in weights:
            seg_map[explanation.segments == seg] = weight
        out = torch.from_numpy(seg_map).to(device)
        return out.expand(x.shape[1], -1, -1)[None].clone()

    return _per_image(inputs, targets, one)


@register_method(
    "rise",
    label="RISE",
    family="perturbation",
    library="xaistudy",
    passes="n_masks forward",
    signed=False,
    model_agnostic=True,
    channel_shared=True,
    stochastic=True,
)
def _rise(
    model,
    inputs,
    targets,
    *,
    n_masks: int = 1000,
    cells: int = 8,
    p: float = 0.5,
    batch_size: int = 64,
    seed: int = 0,
    fill: str = "black",
):
    maps = [
        rise(
            class_probability(model, t),
            inputs[i : i + 1],
            n_masks=n_masks,
            batch_size=batch_size,
            seed=seed,
            cells=cells,
            p=p,
            baseline=fill_like(inputs[i : i + 1], fill, cells),
        )
        for i, t in enumerate(targets)
    ]
    out = torch.from_numpy(np.concatenate(maps)).to(inputs.device)[:, None]
    return out.expand(-1, inputs.shape[1], -1, -1).clone()


def _lrp_canonizers(model: nn.Module) -> list:
    from torchvision.models import ResNet
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer

    return [ResNetCanonizer()] if isinstance(model, ResNet) else [SequentialMergeBatchNorm()]


@register_method(
    "lrp",
    label="LRP (ε + z⁺ + flat)",
    family="backpropagation",
    library="zennit",
    passes="1 forward + 1 modified backward",
)
def _lrp(model, inputs, targets, *, composite: Any = None):
    """LRP with zennit's EpsilonPlusFlat composite, starting from the target logit.

    Canonizers merge batch norms into convolutions; torchvision ResNets get zennit's ResNet
    canonizer for their skip connections. Relevance sums to the logit up to the bias terms.
    """
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat

    composite = composite or EpsilonPlusFlat(canonizers=_lrp_canonizers(model))
    index = torch.tensor(targets, device=inputs.device)

    def initial_relevance(output: torch.Tensor) -> torch.Tensor:
        """The target logit, all other outputs zero (relevance sums to the logit)."""
        onehot = torch.zeros_like(output)
        onehot[torch.arange(len(output)), index] = 1.0
        return onehot * output

    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(inputs.detach().clone().requires_grad_(True), initial_relevance)
    return relevance.detach()


class _Attributions(Mapping):
    """The attribution functions by name: every registered method that is not a CAM, read
    from the registry when asked (a method registered later, anywhere, is in it)."""

    def __getitem__(self, name: str) -> Callable[..., torch.Tensor]:
        info = METHODS.get(name)
        if info is None or info.family == "cam":
            raise KeyError(name)
        return info.implementation

    def __iter__(self):
        return (name for name, info in METHODS.items() if info.family != "cam")

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: the attribution functions by name (every registered method that is not a CAM)
ATTRIBUTIONS: Mapping[str, Callable[..., torch.Tensor]] = _Attributions()


def attribute(
    method: str,
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | list[int] | torch.Tensor,
    **options: Any,
) -> torch.Tensor:
    """Signed attributions (B, C, H, W) of ``inputs`` for ``target`` (one class per image).

    ``options`` are the method's own settings, its keyword-only parameters (e.g. ``n_steps``
    for integrated_gradients, ``num_samples``/``num_features`` for lime, ``n_masks`` for rise,
    ``layer`` for guided_gradcam, ``seed`` for the stochastic ones); any other name is a
    one-line error listing the method's options.
    """
    if method not in ATTRIBUTIONS:
        raise ValueError(
            f"unknown attribution method '{method}'; allowed: {', '.join(ATTRIBUTIONS)}"
        )
    check_options(method, options)
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    if METHODS[method].library == "captum":  # captum's gradients: a leaf of the graph
        inputs = inputs.detach().requires_grad_()  # (as captum makes it, without its warning)
    targets = as_targets(target, len(inputs))
    model.eval()
    with warnings.catch_warnings():  # captum's notices that it sets (and removes) hooks
        warnings.filterwarnings("ignore", message="Setting (forward, )?backward hooks")
        out = ATTRIBUTIONS[method](model, inputs, targets, **options)
    return torch.nan_to_num(out.detach().float())
