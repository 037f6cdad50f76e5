"""Computed text of the ``thesis_metrics`` page: the data of a run and method orderings.

The study is imported where it is used, so importing the chapter package stays light.
"""

from __future__ import annotations

from typing import Any


def data_text(params: Any) -> str:
    """One line naming the data of this run."""
    from xaistudy.studies.thesis_metrics import real_grading

    opts = params.data_options
    grading = (
        f"DiagSet-A patches{f' (options {opts})' if opts else ''}"
        if real_grading(params)
        else "synthetic grading tiles"
    )
    nuclei = "PanNuke" if params.nuclei_dataset == "pannuke" else "synthetic H&E tiles"
    return f"{grading}; U-Net trained on {nuclei}"


def order_text(values: dict[str, float]) -> str:
    """``Grad-CAM 0.083 > LIME 0.041 > ...`` from method -> value."""
    from xaistudy.studies.thesis_metrics import METHODS

    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    return " > ".join(f"{METHODS[m]} {v:.3g}" for m, v in ranked)
