"""Computed sentences of the ``segmentation_xai`` page: the run's description, the map checks
and where the timings come from."""

from __future__ import annotations

from typing import Any

from xaistudy.chapters.segmentation_xai.paper import PAPER
from xaistudy.chapters.segmentation_xai.tables import diagnostics_table


def describe_run(params: Any, device: str) -> str:
    """One line: the data, model, class, layers and profile a run used."""
    if params.dataset == "coco":
        data = (f"COCO-2017 val2017 images showing '{params.target_class}', resized to "
                f"{params.tile_size} px")
        model = (f"`{params.model}` with weights from `{params.weights}`" if params.weights
                 else f"`{params.model}` with torchvision's COCO weights (local file)")
    else:
        data = f"`{params.dataset}` tiles of {params.tile_size} px"
        model = f"a U-Net trained here on {params.n_train} tiles per seed"
    return (f"data: {data}; model: {model}; explained class '{params.target_class}'; layers "
            f"{', '.join(params.layers)}; seeds {', '.join(map(str, params.seeds))}; "
            f"device {device}")


def diagnostics_summary(res) -> str:
    """Computed sentences on the map checks: empty and border maps per layer, and how often
    Seg-Eigen-CAM's (sign-arbitrary) first component marks the background."""
    t = diagnostics_table(res)
    parts = []
    for r in t.itertuples():
        if r.empty_maps or r.border_maps:
            parts.append(f"{r.method} at `{r.layer}`: {r.empty_maps} empty and {r.border_maps} "
                         f"border maps of {r.maps}")
    text = ("Flagged maps: " + "; ".join(parts) + "." if parts
            else "No method gave an empty or border map.")
    eigen = t[t["method"] == "Seg-Eigen-CAM"]
    if len(eigen):
        counts = ", ".join(f"{r.background_maps} of {r.maps} at `{r.layer}`"
                           for r in eigen.itertuples())
        text += (f" Seg-Eigen-CAM marks the background on {counts}; the survey reports maps "
                 f"of the background for {PAPER.number('fig2.eigen_background')} in its Fig. 2. "
                 "A first principal component has no sign of its own (pytorch-grad-cam fixes "
                 "none), so such a map may be the complement of an object map rather than a "
                 "statement about the model (the book's hypothesis).")
    return text


def timing_note(res) -> str:
    """Where the timings come from."""
    return (f"Warm timings on device {res.device} with {res.threads} thread(s): the "
            "first explanation of each method is untimed, Table 1 reports the median over "
            f"tiles and seeds, the batching table the median of {res.params.timing_repeats} "
            "repeats; other programs may share the processor.")
