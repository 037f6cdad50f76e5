"""What the saliency tour runs: the grid's methods, their options and the one-setting changes
of the parameter-sensitivity sweep."""

from __future__ import annotations

from typing import Any

from torch import nn

from xaistudy.explain import taxonomy as tx

#: the one-setting change per method of the parameter-sensitivity sweep (a "minor alteration")
SWEEP: dict[str, tuple[str, str]] = {
    "lime": ("num_samples", "half the samples"),
    "kernel_shap": ("n_segments", "35 instead of 50 superpixels"),
    "rise": ("cells", "a 6×6 instead of an 8×8 mask grid"),
    "smoothgrad": ("stdevs", "noise σ 0.25 instead of 0.15"),
    "integrated_gradients": ("n_steps", "a quarter of the steps"),
    "integrated_gradients.baseline": ("baseline", "a white instead of a black baseline"),
    "lrp": ("composite", "α2β1 instead of the ε + z⁺ rule for convolutions"),
}
#: the methods that sample (their maps change with the explanation seed alone)
STOCHASTIC = ("lime", "kernel_shap", "rise", "smoothgrad")
#: the perturbations of the in-distribution check
PERTURBATIONS = (
    "RISE masks (RISE's fill, `rise_fill`)",
    "occlusion window (black)",
    "LIME superpixels off (black)",
    "KernelSHAP superpixels off (black)",
    "all black",
)


def grid_methods(params: Any) -> list[str]:
    """The methods of the grid, in the review's order."""
    chosen = tx.TOUR_METHODS if params.methods == "all" else params.methods.split(",")
    return [m for m in tx.TOUR_METHODS if m in chosen]


def hans_methods(params: Any) -> list[str]:
    """The grid methods whose maps of both Clever-Hans models are scored (Grad-CAM if none)."""
    chosen = tx.TOUR_METHODS if params.hans_methods == "all" else params.hans_methods.split(",")
    return [k for k in grid_methods(params) if k in chosen] or ["gradcam"]


def options(params: Any, method: str, **change: Any) -> dict[str, Any]:
    """The options ``explain`` gets for ``method`` (``change`` overrides some)."""
    opts = tx.method_options(
        method,
        occlusion_window=params.occlusion_window,
        lime_samples=params.lime_samples,
        shap_samples=params.shap_samples,
        rise_masks=params.rise_masks,
        ig_steps=params.ig_steps,
        smoothgrad_samples=params.smoothgrad_samples,
        seed=params.explain_seed,
    )
    if method == "rise":
        opts["fill"] = params.rise_fill
    return {**opts, **change}


def swept_method(name: str) -> str:
    """The method a :data:`SWEEP` entry changes (``"integrated_gradients.baseline"``: a second
    setting of Integrated Gradients)."""
    return name.split(".")[0]


def altered(params: Any, method: str, model: nn.Module) -> dict[str, Any]:
    """The options that :data:`SWEEP` entry ``method`` changes, with their new values."""
    what = SWEEP[method][0]
    if method == "integrated_gradients.baseline":
        return {"baseline": 1.0}
    if method == "lime":
        return {"num_samples": max(10, params.lime_samples // 2)}
    if method == "integrated_gradients":
        return {"n_steps": max(2, params.ig_steps // 4)}
    if method == "lrp":
        from zennit.composites import EpsilonAlpha2Beta1Flat

        from xaistudy.explain.attributions import _lrp_canonizers

        return {"composite": EpsilonAlpha2Beta1Flat(canonizers=_lrp_canonizers(model))}
    return {what: {"kernel_shap": 35, "rise": 6, "smoothgrad": 0.25}[method]}
