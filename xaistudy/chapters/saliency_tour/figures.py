"""The chapter's figures: the taxonomy, every method's map of one tile (the review's Fig. 7),
the measured Table B1, the sanity check, the two RISE maps and the Clever-Hans maps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from xaistudy.chapters.saliency_tour.tables import methods_table
from xaistudy.chapters.saliency_tour.text import label, signed
from xaistudy.evaluate import sanity
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.rise import rise_masks
from xaistudy.studies import saliency_tour as study
from xaistudy.viz import plots
from xaistudy.viz.maps import add_colorbars, show_map

SIGNED_FAMILY = {"perturbation": "#8c6bb1", "backpropagation": "#41ab5d", "cam": "#ef6548"}


def taxonomy_figure(taxonomy: pd.DataFrame) -> plt.Figure:
    """Methods of this chapter per review signal flow and book family."""
    counts = (
        taxonomy[taxonomy.book_family != "-"]
        .groupby(["signal_flow", "book_family"])
        .size()
        .unstack(fill_value=0)
    )
    fig, ax = plt.subplots(figsize=(7, 2.6))
    counts.plot.barh(stacked=True, ax=ax, color=[SIGNED_FAMILY[c] for c in counts.columns])
    ax.set_xlabel("methods run in this chapter")
    ax.set_ylabel("review's signal flow")
    ax.legend(title="family in this book", fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title("The methods of this chapter in the review's taxonomy")
    return fig


def grid_figure(result: study.Result) -> plt.Figure:
    """Every method's map of the first scored tile (the review's Fig. 7)."""
    s = result.shown
    names = list(s.maps)
    ncols = 6
    nrows = int(np.ceil((len(names) + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.35 * nrows), squeeze=False)
    image = (s.image.transpose(1, 2, 0) * 255).round().astype(np.uint8)
    axes[0, 0].imshow(plots.outline(image, s.mask))
    axes[0, 0].set_title(f"tile (tumour p={s.p:.2f})", fontsize=9)
    axes[0, 0].set_axis_off()
    for ax, method in zip(axes.flat[1:], names, strict=False):
        show_map(ax, s.maps[method], signed(method), [(s.mask, "black")], label(method))
    for ax in axes.flat[len(names) + 1 :]:
        ax.axis("off")
    fig.subplots_adjust(top=0.9, hspace=0.25)
    add_colorbars(fig, axes)
    fig.suptitle("Maps of every method for the tumour class (outline: the tumour)", y=0.97)
    return fig


def methods_figure(methods: pd.DataFrame, tumour_share: float) -> plt.Figure:
    """Seconds, pointing game, IoU, deletion/insertion AUC and sanity ρ per method."""
    panels = [
        ("seconds", "warm seconds per image (log)"),
        ("pointing_game", "pointing game"),
        ("iou", "IoU with the tumour"),
        ("deletion_auc", "deletion AUC (lower: faithful)"),
        ("insertion_auc", "insertion AUC (higher: faithful)"),
        ("sanity_spearman", "sanity ρ"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 0.32 * len(methods) + 1.6), sharey=True)
    colours = [SIGNED_FAMILY[f] for f in methods["family"]]
    for ax, (col, title) in zip(axes, panels, strict=True):
        ax.barh(methods["label"], methods[col], color=colours)
        ax.set_xlabel(title, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_xscale("log")
    axes[1].axvline(tumour_share, color="grey", ls="--", lw=1, label="chance")
    axes[1].legend(fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SIGNED_FAMILY.values()]
    fig.legend(
        handles,
        list(SIGNED_FAMILY),
        title="family",
        loc="lower center",
        ncol=3,
        bbox_to_anchor=(0.5, 0.99),
        fontsize=8,
    )
    return fig


def sanity_figure(
    result: study.Result,
    shown_methods=("saliency", "guided_backprop", "integrated_gradients", "gradcam"),
) -> plt.Figure:
    """The first tile's maps from the trained and the re-initialised model."""
    s = result.shown
    names = [k for k in shown_methods if k in s.random_maps] or list(s.random_maps)[:4]
    fig, axes = plt.subplots(2, len(names), figsize=(2.4 * len(names), 5.0), squeeze=False)
    for j, method in enumerate(names):
        a, b = s.maps[method], s.random_maps[method]
        outline = [(s.mask, "black")]
        show_map(axes[0, j], a, signed(method), outline, f"{label(method)}\ntrained")
        rho = sanity.rank_correlation(a, b)
        show_map(axes[1, j], b, signed(method), outline, f"re-initialised, ρ = {rho:.2f}")
    add_colorbars(fig, axes)
    return fig


def cascade_figure(result: study.Result) -> plt.Figure:
    """Cascading randomisation: ρ against the number of re-initialised layers."""
    table = result.shown.cascade
    fig, ax = plt.subplots(figsize=(8.5, 4))
    for j, (method, sub) in enumerate(table.groupby("method", sort=False)):
        ax.plot(
            sub.layers_reinitialised,
            sub.spearman,
            marker="os^Dv"[j % 5],
            label=label(method),
            color=plt.get_cmap("tab20")(j % 20),
            ls="--" if tx.method_info(method)["family"] == "cam" else "-",
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("weight layers re-initialised, from the top")
    ax.set_ylabel("Spearman ρ, trained vs randomised map")
    ax.set_ylim(-0.5, 1.05)
    if len(table):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def rise_figure(result: study.Result) -> plt.Figure:
    """The first tile, RISE divided by coverage and by N·p, and the tile under one mask."""
    s = result.shown
    masks = rise_masks(1, s.mask.shape, seed=0)[0, 0].numpy()
    image = s.image.transpose(1, 2, 0)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    axes[0].imshow(plots.outline((image * 255).astype(np.uint8), s.mask))
    axes[0].set_title("tile", fontsize=9)
    axes[1].imshow(image * masks[..., None])
    axes[1].set_title("what the model sees\nunder one RISE mask", fontsize=9)
    for ax, k in zip(axes[2:], ["rise", "rise_np"], strict=True):
        if k in s.maps:
            show_map(ax, s.maps[k], False, [(s.mask, "black")], label(k))
    for ax in axes[:2]:
        ax.set_axis_off()
    return fig


def hans_figure(result: study.Result, n_show: int) -> plt.Figure:
    """Marked tumour tiles (ink visible, no outline on the image) and both models' maps."""
    h = result.shown.hans
    cols = list(h.maps)
    n = min(n_show, len(h.x))
    fig, axes = plt.subplots(
        n, 1 + len(cols), figsize=(2.1 * (1 + len(cols)), 2.3 * n), squeeze=False
    )
    for r in range(n):
        axes[r, 0].imshow(h.x[r].transpose(1, 2, 0))
        axes[r, 0].set_axis_off()
        for c, (model, method) in enumerate(cols, start=1):
            title = (
                f"{label(method)}\n{'with' if 'with ' in model else 'without'} shortcut"
                if r == 0
                else None
            )
            show_map(
                axes[r, c],
                h.maps[model, method][r],
                signed(method),
                [(h.tumour[r], "black"), (h.pen[r], "cyan")],
                title,
            )
    axes[0, 0].set_title("marked tumour tile", fontsize=9)
    add_colorbars(fig, axes)
    fig.suptitle("Clever Hans: maps of the tumour class (cyan: pen mark, black: tumour)", y=1.01)
    return fig


def all_figures(result: study.Result, *names: str) -> dict[str, plt.Figure]:
    """The chapter's figures by name (every one when no name is given), drawn on demand."""
    draw = {
        "taxonomy": lambda: taxonomy_figure(tx.taxonomy_table(study.grid_methods(result.params))),
        "fig7_grid": lambda: grid_figure(result),
        "methods_measured": lambda: methods_figure(
            methods_table(result), float(result.tables["scores"]["tumour_share"].mean())
        ),
        "rise_versions": lambda: rise_figure(result),
        "sanity_examples": lambda: sanity_figure(result),
        "sanity_cascade": lambda: cascade_figure(result),
        "clever_hans_maps": lambda: hans_figure(result, result.params.n_shortcut_maps),
    }
    unknown = set(names) - set(draw)
    if unknown:
        raise KeyError(f"no figure {sorted(unknown)}; the chapter draws {', '.join(draw)}")
    return {name: draw[name]() for name in names or draw}
