"""The ``xrelevancecam`` chapter's figures: maps per method and stage (Figs. 2-3), mIoU per
stage, the cascading randomisation (Fig. 5) and Eq. 1's diagnostic. matplotlib is imported
where a figure is drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from xaistudy.explain.relevance import LABELS
from xaistudy.studies import xrelevancecam as study

LAYERS, METHODS = study.LAYERS, study.METHODS


def _empty_figure(text: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return fig


def displayable(image: torch.Tensor) -> np.ndarray:
    """A (3, H, W) frame as an (H, W, 3) array min-max scaled to [0, 1] (standardised frames)."""
    x = image.permute(1, 2, 0).numpy()
    return (x - x.min()) / max(float(x.max() - x.min()), 1e-8)


def maps_figure(result: study.Result, k: int = 0):
    """Rows: methods; columns: the frame and each stage (first seed, from scratch)."""
    import matplotlib.pyplot as plt

    from xaistudy.viz.maps import HEAT_CMAP

    ex = result.example
    if ex is None:
        return _empty_figure("no frame scored at the first seed")
    image, mask = ex.images[k], ex.masks[k]
    fig, axes = plt.subplots(
        len(METHODS), len(LAYERS) + 1, figsize=(2.0 * (len(LAYERS) + 1), 1.9 * len(METHODS))
    )
    for r, method in enumerate(METHODS):
        axes[r, 0].imshow(displayable(image))
        axes[r, 0].contour(mask, levels=[0.5], colors="yellow", linewidths=0.8)
        axes[r, 0].set_ylabel(LABELS[method], fontsize=8)
        for c, layer in enumerate(LAYERS, start=1):
            art = axes[r, c].imshow(ex.maps[method][layer][k], cmap=HEAT_CMAP, vmin=0, vmax=1)
            axes[r, c].contour(mask, levels=[0.5], colors="white", linewidths=0.6)
            if r == 0:
                axes[r, c].set_title(layer, fontsize=9)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle("CAMs per method and stage (white/yellow: annotation); first seed, scratch")
    fig.tight_layout()
    fig.colorbar(art, ax=axes, fraction=0.02, pad=0.02, label="CAM (scaled to [0, 1])")
    return fig


def miou_figure(table1: pd.DataFrame):
    """Table 1 as lines: mIoU per stage and method, one panel per start."""
    import matplotlib.pyplot as plt

    if len(table1) == 0:
        return _empty_figure("no frame scored")
    fig, axes = plt.subplots(1, table1["start"].nunique(), figsize=(11, 3.4), squeeze=False)
    for ax, (start, g) in zip(axes[0], table1.groupby("start"), strict=True):
        for _, row in g.iterrows():
            ax.plot(
                LAYERS,
                [row[c] for c in LAYERS],
                marker="o",
                label=row["method"],
                lw=2.5 if "Relevance" in row["method"] else 1.0,
            )
        ax.set_title(f"start: {start}")
        ax.set_ylabel("mIoU (%)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sanity_figure(result: study.Result, sanity: pd.DataFrame):
    """The first sanity frame's map as stages are randomised, and the similarity curves
    (``sanity``: the chapter's sanity table)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from xaistudy.viz.maps import HEAT_CMAP

    shown, params = result.sanity_maps, result.params
    if shown is None:  # no frame scored at the first seed
        return _empty_figure("no scored frame at the first seed")
    n = len(shown.steps)
    fig, axes = plt.subplots(
        1,
        n + 2,
        figsize=(2.0 * (n + 3), 2.3),
        gridspec_kw={"width_ratios": [1] * (n + 1) + [2.5]},
    )
    axes[0].imshow(displayable(shown.image))
    axes[0].set_title("frame", fontsize=8)
    for a, name, cam in zip(axes[1:-1], shown.steps, shown.maps, strict=True):
        art = a.imshow(cam, cmap=HEAT_CMAP, vmin=0, vmax=1)
        a.set_title(name, fontsize=8)
    for a in axes[:-1]:
        a.set_xticks([])
        a.set_yticks([])
    for start, g in sanity.groupby("start"):
        axes[-1].plot(g["stages"], g["spearman"], marker="o", label=f"Spearman, {start}")
        axes[-1].plot(g["stages"], g["ssim"], marker="s", ls="--", label=f"SSIM, {start}")
    axes[-1].axhline(params.sanity_spearman, color="grey", lw=0.6)
    axes[-1].set_xlabel("units randomised from the top")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # a count of units
    axes[-1].legend(fontsize=6)
    fig.suptitle(f"Cascading randomisation, XRelevanceCAM at {params.sanity_layer} (ResNet)")
    fig.tight_layout()
    fig.colorbar(art, ax=list(axes[1:-1]), fraction=0.03, pad=0.01, label="CAM (to [0, 1])")
    return fig


def diagnostic_figure(result: study.Result):
    """RelevanceCAM-XRelevanceCAM difference (1 - Pearson) against the channel-weight spread."""
    import matplotlib.pyplot as plt

    if len(result.diagnostic) == 0:
        return _empty_figure("no frame scored: no diagnostic")
    fig, ax = plt.subplots(figsize=(7, 4))
    markers = {"scratch": "o", "pretrained": "^"}
    colours = dict(zip(LAYERS, plt.cm.viridis(np.linspace(0, 0.9, len(LAYERS))), strict=True))
    for (start, layer), g in result.diagnostic.groupby(["start", "layer"]):
        ax.scatter(
            g["activation_cv"],
            1 - g["rc_xrc_pearson"],
            s=10,
            alpha=0.5,
            marker=markers.get(start, "o"),
            color=colours[layer],
            label=f"{layer}, {start}",
        )
    ax.set_xlabel("coefficient of variation of the channel activation totals sum_ij A^k")
    ax.set_ylabel("1 - Pearson(RelevanceCAM, XRelevanceCAM)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title("Eq. 1 can only change the map when the channel totals differ")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def figures(result: study.Result) -> dict:
    """Every figure of the chapter by name (``maps_per_layer_<k>`` for the shown frames)."""
    from xaistudy.chapters.xrelevancecam import page_tables

    n_maps = 0 if result.example is None else len(result.example.images)
    out = {
        f"maps_per_layer_{k}": maps_figure(result, k)
        for k in range(min(result.params.n_show, n_maps))
    }
    out["miou_per_layer"] = miou_figure(page_tables.miou_table(result, "sk", LAYERS))
    out["sanity"] = sanity_figure(result, page_tables.sanity_table(result))
    out["eq1_diagnostic"] = diagnostic_figure(result)
    return out
