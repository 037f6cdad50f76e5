"""The review's taxonomy of saliency methods (Borys et al. 2023, Tables B1 and C1) and their cost.

:data:`REVIEW` types the review's Table B1 (strength, weakness, citations per year) and Table
C1 (the open-source code it links, surrogate, model-agnostic) for every method it lists, and
maps each to the method name this book runs (``None``: not run, with the reason).
:func:`run_method` computes a map for any of those names (:func:`xaistudy.explain.explain`,
plus ``"cam"``, the original CAM); :func:`measure` also times it and counts the model's
forward and backward passes with :func:`count_passes`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaistudy.explain import METHODS, explain
from xaistudy.explain.cam_original import class_activation_map

NOT_RUN_LIBRARY = "not run: no maintained implementation in the libraries this book uses"


@dataclass(frozen=True)
class ReviewEntry:
    """One method as the review lists it, and what this book runs for it."""

    review_name: str
    signal_flow: str  # the review's column: "Perturbation-based" or "Backpropagation-based"
    strength: str  # Table B1 (as printed; "" when the method is not in Table B1)
    weakness: str
    citations_per_year: float | None
    review_code: str  # Table C1 link
    surrogate: bool | None
    model_agnostic: bool | None  # Table C1's column
    method: str | None  # the name this book runs, None when not run
    not_run_reason: str = ""
    scope: str = "local"  # one image at a time ("local") or the model as a whole ("global")


_C = "https://github.com/pytorch/captum"
REVIEW: list[ReviewEntry] = [
    ReviewEntry(
        "Occlusion",
        "Perturbation-based",
        "No access to model internals required, so model-agnostic",
        "High computational cost",
        1900,
        "https://github.com/keiserlab/plaquebox-papers",
        False,
        True,
        "occlusion",
    ),
    ReviewEntry(
        "SHAP (KernelSHAP)",
        "Perturbation-based",
        "Denotes positive and negative contributions",
        "Approximate results of object morphology",
        1770,
        "https://github.com/slundberg/shap",
        True,
        True,
        "kernel_shap",
    ),
    ReviewEntry(
        "LIME",
        "Perturbation-based",
        "Denotes positive and negative contributions",
        "High computational expense; relies on pre-defined parameters; high computational cost",
        1597,
        "https://github.com/marcotcr/lime",
        True,
        True,
        "lime",
    ),
    ReviewEntry(
        "Meaningful Perturbations",
        "Perturbation-based",
        "Perturbation mask generated based on optimization approach",
        "Blur and noise naturally contained in medical images",
        209,
        "https://github.com/ruthcfong/perturb_explanations",
        False,
        True,
        None,
        NOT_RUN_LIBRARY,
    ),
    ReviewEntry(
        "RISE",
        "Perturbation-based",
        "Realistic perturbations",
        "Approximate results of object morphology; relies on pre-defined parameters",
        123,
        "https://github.com/eclique/RISE",
        False,
        True,
        "rise",
    ),
    ReviewEntry(
        "Real-time Perturbations",
        "Perturbation-based",
        "Individual neural network generated perturbation mask",
        "High implementational effort",
        77,
        "https://github.com/PiotrDabkowski/pytorch-saliency",
        False,
        True,
        None,
        "not run: needs a separately trained masking network",
    ),
    ReviewEntry(
        "Extremal Perturbations",
        "Perturbation-based",
        "Investigates the perturbation's effect w.r.t. its size",
        "Blur and noise naturally contained in medical images",
        67,
        "https://github.com/facebookresearch/TorchRay",
        False,
        False,
        None,
        NOT_RUN_LIBRARY,
    ),
    ReviewEntry(
        "Grad-CAM",
        "Backpropagation-based",
        "Intuitive, no explicit labeling of data needed",
        "Multiple occurrences of same class objects result in partial coverage",
        2007,
        "https://github.com/ramprs/grad-cam",
        False,
        False,
        "gradcam",
    ),
    ReviewEntry(
        "DeconvNet",
        "Backpropagation-based",
        "Fast computation",
        "Uses only an approximate inverse of the convolution features",
        1900,
        _C,
        False,
        False,
        "deconvolution",
    ),
    ReviewEntry(
        "CAM",
        "Backpropagation-based",
        "Intuitive, no explicit labeling of data needed",
        "Architectural dependence; inaccurate localization of heatmap",
        1074,
        "https://github.com/zhoubolei/CAM",
        False,
        False,
        "cam",
    ),
    ReviewEntry(
        "Deep Dream",
        "Backpropagation-based",
        "Versatile range of implementations (neurons, layers, images, atlases)",
        "Results can be challenging to interpret, especially for medical images",
        597,
        _C,
        False,
        False,
        None,
        "not run: a global explanation (an image synthesised per class), not a map of one "
        "prediction",
        scope="global",
    ),
    ReviewEntry(
        "Vanilla Gradient",
        "Backpropagation-based",
        "Straightforward and direct computation of gradients",
        "Saturating gradients",
        597,
        _C,
        False,
        False,
        "saliency",
    ),
    ReviewEntry(
        "Integrated Gradients",
        "Backpropagation-based",
        "Satisfies mathematical axioms regarding sensitivity and invariance",
        "Results may differ, depending on selected baseline and number of iterations",
        572,
        "https://github.com/ankurtaly/Integrated-Gradients",
        False,
        False,
        "integrated_gradients",
    ),
    ReviewEntry(
        "Guided Backpropagation",
        "Backpropagation-based",
        "Applicable to several network architectures",
        "In some cases, invariant to data and model",
        559,
        _C,
        False,
        False,
        "guided_backprop",
    ),
    ReviewEntry(
        "DeepLIFT",
        "Backpropagation-based",
        "Counters the saturation during Input*Gradient",
        "Does not satisfy implementation invariance",
        446,
        "https://github.com/kundajelab/deeplift",
        False,
        False,
        "deeplift",
    ),
    ReviewEntry(
        "LRP",
        "Backpropagation-based",
        "Fast and scalable computation",
        "Results are sensitive to specific parameters",
        396,
        "https://github.com/sebastian-lapuschkin/lrp_toolbox",
        False,
        False,
        "lrp",
    ),
    ReviewEntry(
        "SmoothGrad",
        "Backpropagation-based",
        "Reduces visual noise",
        "Results depend on hyper-parameters: sigma (the noise level) and n (number of samples)",
        234,
        "https://github.com/pair-code/saliency",
        False,
        False,
        "smoothgrad",
    ),
    ReviewEntry(
        "Input * Gradient",
        "Backpropagation-based",
        "Simple process",
        "Saturating gradients",
        78,
        _C,
        False,
        False,
        "input_x_gradient",
    ),
    # named in the review's text (Sect. 2.2) as Grad-CAM extensions, not in Tables B1 / C1
    *(
        ReviewEntry(name, "Backpropagation-based", "", "", None, "", None, None, method)
        for name, method in [
            ("Grad-CAM++", "gradcam++"),
            ("Score-CAM", "scorecam"),
            ("Guided Grad-CAM", "guided_gradcam"),
        ]
    ),
]

#: Method names of the chapter's grid, in the review's order (perturbation first).
TOUR_METHODS: tuple[str, ...] = (
    "occlusion",
    "lime",
    "kernel_shap",
    "rise",
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "smoothgrad",
    "guided_backprop",
    "deconvolution",
    "deeplift",
    "lrp",
    "cam",
    "gradcam",
    "gradcam++",
    "scorecam",
    "guided_gradcam",
)

CAM_INFO = {
    "label": "CAM",
    "family": "cam",
    "library": "xaistudy (weights of the final linear layer)",
    "signed": False,
    "needs_layer": False,
    "model_agnostic": False,
    "passes": "1 forward",
}


def method_info(method: str) -> dict[str, Any]:
    """Label, family, library, signed, needs_layer, model_agnostic, passes of ``method``."""
    if method == "cam":
        return dict(CAM_INFO)
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; allowed: cam, {', '.join(METHODS)}")
    info = METHODS[method]
    return {
        "label": info.label,
        "family": info.family,
        "library": info.library,
        "signed": info.signed,
        "needs_layer": info.needs_layer,
        "model_agnostic": info.model_agnostic,
        "passes": info.passes,
    }


def review_entry(method: str) -> ReviewEntry | None:
    """The review's entry of a method this book runs (None if the review does not list it)."""
    return next((e for e in REVIEW if e.method == method), None)


def taxonomy_table(methods: list[str] | tuple[str, ...] = TOUR_METHODS) -> pd.DataFrame:
    """One row per review method: its place in the taxonomy and what this book runs for it.

    Columns: method (review name), signal_flow (perturbation / backpropagation, as the
    review), book_family (perturbation / backpropagation / cam), scope (local / global),
    model_agnostic (our implementation needs only the model's outputs), signed (the map
    separates positive and negative evidence), library (what this book calls, or why not run).
    """
    rows = []
    for entry in REVIEW:
        run = entry.method is not None and entry.method in methods
        info = method_info(entry.method) if run else {}
        rows.append(
            {
                "method": entry.review_name,
                "signal_flow": entry.signal_flow.split("-")[0].lower(),
                "book_family": info.get("family", "-"),
                "scope": entry.scope,
                "model_agnostic": info.get("model_agnostic", entry.model_agnostic),
                "signed": info.get("signed", None),
                "library": info.get("library")
                if run
                else (entry.not_run_reason or "not run: left out by the methods parameter"),
                "name_in_book": entry.method if run else "",
            }
        )
    return pd.DataFrame(rows)


# -- cost --------------------------------------------------------------------------------------
@dataclass
class PassCount:
    """Images sent forward through, and gradients sent backward from, a model's output."""

    forward: int = 0
    backward: int = 0
    handles: list[Any] = field(default_factory=list, repr=False)


@contextmanager
def count_passes(model: nn.Module) -> Iterator[PassCount]:
    """Count forward and backward passes of ``model`` per image (a batch of B counts B).

    A forward pass is one image through ``model.forward``; a backward pass is one image's
    gradient flowing back from the model's output (counted by a hook on the output tensor).
    """
    count = PassCount()

    def on_forward(_module: nn.Module, args: tuple, output: Any) -> None:
        n = len(args[0]) if args and hasattr(args[0], "__len__") else 1
        count.forward += n
        if isinstance(output, torch.Tensor) and output.requires_grad:

            def on_backward(grad: torch.Tensor) -> None:
                count.backward += len(grad)

            output.register_hook(on_backward)

    handle = model.register_forward_hook(on_forward)
    try:
        yield count
    finally:
        handle.remove()


def run_method(
    method: str,
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | list[int] | torch.Tensor,
    layer: nn.Module | None = None,
    options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Maps (B, H, W) of ``method``: :func:`~xaistudy.explain.explain`, or the original CAM."""
    if method == "cam":
        return class_activation_map(model, inputs, target)
    return explain(method, model, inputs, target, layer=layer, **dict(options or {}))


@dataclass
class Measured:
    """Maps of one method with their cost per image."""

    maps: np.ndarray
    seconds: float
    forward: float
    backward: float


def measure(
    method: str,
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | list[int] | torch.Tensor,
    layer: nn.Module | None = None,
    options: Mapping[str, Any] | None = None,
) -> Measured:
    """:func:`run_method` with wall-clock seconds and passes, each per image."""
    n = len(inputs)
    with count_passes(model) as count:
        start = time.perf_counter()
        maps = run_method(method, model, inputs, target, layer, options)
        seconds = time.perf_counter() - start
    return Measured(maps, seconds / n, count.forward / n, count.backward / n)


def method_options(
    method: str,
    *,
    occlusion_window: int,
    lime_samples: int,
    shap_samples: int,
    rise_masks: int,
    ig_steps: int,
    smoothgrad_samples: int,
    seed: int = 0,
) -> dict[str, Any]:
    """The chapter's settings as the options ``explain`` takes for ``method``."""
    return {
        "occlusion": {"window": occlusion_window, "stride": max(1, occlusion_window // 2)},
        "lime": {"num_samples": lime_samples, "seed": seed},
        "kernel_shap": {"n_samples": shap_samples, "seed": seed},
        "rise": {"n_masks": rise_masks, "seed": seed},
        "integrated_gradients": {"n_steps": ig_steps},
        "smoothgrad": {"nt_samples": smoothgrad_samples, "seed": seed},
    }.get(method, {})
