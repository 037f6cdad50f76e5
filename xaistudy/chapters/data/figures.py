"""The ``data`` chapter's figures: galleries of each generator with its ground truth, the stain
variation across seeds, what changes with the grade, and the shortcut check."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from xaistudy.data import synthetic
from xaistudy.evaluate import shortcut_check
from xaistudy.studies import data as study
from xaistudy.viz import plots

#: grading tiles per grade in the gallery, at most (seven columns of grades)
GRADING_GALLERY_ROWS = 2


def he_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` normal and ``n`` tumour tiles: image, evidence region, nuclei types."""
    images, titles = [], []
    for tumour in (False, True):
        for i in range(n):
            t = synthetic.he_tile(seed, i, size=size, tumour=tumour)
            name = synthetic.HE_CLASSES[t.label]
            images += [
                t.image,
                plots.outline(t.image, t.mask),
                plots.nuclei_overlay(t.image, t.nuclei_type),
            ]
            titles += [name, f"{name}: tumour region", f"{name}: nuclei types"]
    fig = plots.image_grid(images, ncols=6, titles=titles)
    fig.suptitle(
        "Synthetic H&E tiles. Yellow: tumour region (evidence mask); "
        "red: neoplastic nuclei; blue: non-neoplastic nuclei",
        y=1.01,
    )
    return fig


def stain_variation(seed: int, size: int, n: int = 6) -> plt.Figure:
    """The first tumour tile of ``n`` consecutive seeds: per-tile stain and tissue draws."""
    tiles = [synthetic.he_tile(seed + k, 0, size=size, tumour=True) for k in range(n)]
    fig = plots.image_grid(
        [t.image for t in tiles], ncols=n, titles=[f"seed {seed + k}" for k in range(n)]
    )
    fig.suptitle("Per-tile stain and tissue variation across seeds", y=1.02)
    return fig


def grading_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` tiles per grade with the evidence mask outlined."""
    tiles = [
        synthetic.grading_tile(seed, i, size=size, grade=g)
        for i in range(n)
        for g in synthetic.GRADES
    ]
    titles = [
        synthetic.GRADES[t.label]
        + (f" ({', '.join(t.meta['artifact'])})" if t.meta.get("artifact") else "")
        for t in tiles
    ]
    images = [plots.outline(t.image, t.mask) for t in tiles]
    fig = plots.image_grid(images, ncols=len(synthetic.GRADES), titles=titles)
    fig.suptitle("Synthetic grading tiles, evidence mask outlined in yellow", y=1.02)
    return fig


def pcle_gallery(seed: int, n: int, size: int) -> plt.Figure:
    """``n`` frames per class, each with its psammoma-body mask."""
    images, titles = [], []
    for meningioma in (False, True):
        for i in range(n):
            t = synthetic.pcle_frame(seed, i, size=size, meningioma=meningioma, patient_id=i)
            name = synthetic.PCLE_CLASSES[t.label]
            images += [t.image, plots.outline(t.image, t.mask)]
            titles += [name, f"{name}: mask"]
    fig = plots.image_grid(images, ncols=4, titles=titles)
    fig.suptitle("Synthetic pCLE frames, psammoma-like bodies outlined in yellow", y=1.01)
    return fig


def grading_properties(grading: pd.DataFrame) -> plt.Figure:
    """Box plots of what changes with the grade: nucleus size, density, evidence share."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, col, label in zip(
        axes,
        ["area_neoplastic_px", "nuclei_per_10k_px", "mask_share"],
        ["mean neoplastic nucleus area (px)", "nuclei per 10,000 px", "evidence-mask share"],
        strict=True,
    ):
        data = [grading.loc[grading["class"] == g, col].dropna() for g in synthetic.GRADES]
        ax.boxplot(data, tick_labels=list(synthetic.GRADES))
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("class")
    fig.suptitle("Grading tiles: what changes with the grade", y=1.03)
    fig.tight_layout()
    return fig


def shortcut_figure(accuracy: pd.DataFrame) -> plt.Figure:
    """Accuracy with 95 % intervals of every method, one panel per dataset; chance dashed."""
    datasets = list(dict.fromkeys(accuracy["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4.2), sharex=True)
    for ax, dataset in zip(np.atleast_1d(axes), datasets, strict=True):
        g = accuracy[accuracy["dataset"] == dataset].iloc[::-1]
        y = np.arange(len(g))
        err = [g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]]
        colours = ["tab:red" if m == shortcut_check.CNN else "tab:blue" for m in g["method"]]
        ax.barh(y, g["accuracy"], xerr=err, color=colours, alpha=0.8)
        ax.axvline(g["chance"].iloc[0], color="k", ls="--", lw=1)
        ax.set_yticks(y, g["method"])
        ax.set_xlim(0, 1)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("test accuracy (dashed: chance)")
    fig.tight_layout()
    return fig


def all_figures(result: study.Result) -> dict[str, plt.Figure]:
    """Every figure of ``result`` by its saved name (the galleries show the first seed)."""
    p = result.params
    seed = p.seeds[0]
    return {
        "he_gallery": he_gallery(seed, p.n_gallery, p.gallery_size),
        "he_stain_variation": stain_variation(seed, p.gallery_size),
        "grading_gallery": grading_gallery(
            seed, min(p.n_gallery, GRADING_GALLERY_ROWS), p.gallery_size
        ),
        "pcle_gallery": pcle_gallery(seed, p.n_gallery, p.gallery_size),
        "grading_properties": grading_properties(result.grading),
        "shortcut_check": shortcut_figure(result.accuracy),
    }
