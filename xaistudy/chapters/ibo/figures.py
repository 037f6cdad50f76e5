"""The ``ibo`` chapter's figures (Figs. 4-6 and the tables drawn as curves)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from xaistudy.chapters.ibo.tables import METRIC_LABELS
from xaistudy.evaluate import faithfulness, occlusion
from xaistudy.studies import ibo as study
from xaistudy.viz import plots
from xaistudy.viz.maps import HEAT_CMAP


def _to_img(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def stain_figure(st: study.Result, n: int = 6) -> plt.Figure:
    """Raw and stain-normalised test tiles of the first seed beside the reference tile."""
    from xaistudy.data import stain
    from xaistudy.data.datasets import get_dataset

    p, run = st.params, st.runs[0]
    raw = get_dataset(
        p.dataset,
        "test",
        data_root=p.data_root or None,
        n=p.n_test,
        size=p.tile_size,
        seed=run.seed,
        **p.data_options,
    )
    show = np.arange(min(n, p.n_test))
    tiles = raw.images[show]
    normed = stain.normalize(tiles, stain.fit_normalizer(run.reference))
    names = ["tumour" if raw.labels[i] else "normal" for i in show]
    fig = plots.image_grid(
        [run.reference, *tiles, run.reference, *normed],
        ncols=len(show) + 1,
        titles=[
            "reference",
            *[f"test {i} ({c})" for i, c in zip(show, names, strict=True)],
            "reference",
            *[f"test {i} normalised" for i in show],
        ],
    )
    fig.suptitle("Modified Reinhard stain normalisation: raw (top) and normalised (bottom)", y=1.02)
    return fig


def ddpm_figure(st: study.Result, n: int = 6) -> plt.Figure:
    """DDPM samples (the gate's first ones), real normal tiles, and the training loss."""
    n = min(n, len(st.gate_images))
    reals = st.runs[0].splits["ddpm"].images[:n]
    fig = plt.figure(figsize=(2.0 * n, 6.2))
    grid = fig.add_gridspec(3, n, height_ratios=[1, 1, 1.1])
    for i in range(n):
        for row, (imgs, name) in enumerate(
            [(st.gate_images, "DDPM sample"), (reals, "real normal tile")]
        ):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(_to_img(imgs[i]))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name} {i + 1}", fontsize=8)
    ax = fig.add_subplot(grid[2, :])
    ax.plot(np.arange(1, len(st.ddpm.losses) + 1), st.ddpm.losses, marker=".")
    ax.set_xlabel("epoch"), ax.set_ylabel("noise-prediction MSE")
    fig.suptitle("DDPM trained on normal tiles only: samples (top), real normal tiles (middle)")
    fig.tight_layout()
    return fig


def heatmap_figure(st: study.Result) -> plt.Figure:
    """Fig. 4: every method's heatmap of the first seed's first occluded tile."""
    run = st.runs[0]
    i = int(run.sample_ids[0])
    img, mask = _to_img(run.splits["test"].images[i]), run.splits["test"].masks[i]
    panels, titles = [plots.outline(img, mask)], ["tumour tile (mask outlined)"]
    for j, m in enumerate(st.methods):
        heat = (plt.get_cmap(HEAT_CMAP)(run.maps[0, j])[..., :3] * 255).astype(np.uint8)
        panels.append(plots.outline((0.5 * img + 0.5 * heat).astype(np.uint8), mask))
        titles.append(study.method_label(m))
    fig = plots.image_grid(panels, ncols=len(panels), titles=titles)
    fig.suptitle(f"Fig. 4: CAM heatmaps of test tile {i} (seed {run.seed}), tumour class", y=1.14)
    return fig


def _shown_method(st: study.Result) -> int:
    return st.methods.index("fullgrad") if "fullgrad" in st.methods else 0


def masks_figure(st: study.Result) -> plt.Figure:
    """Fig. 5: a heatmap, its k-means levels and the nested masks."""
    run, j, k = st.runs[0], _shown_method(st), st.params.kmeans_k
    img = _to_img(run.splits["test"].images[int(run.sample_ids[0])])
    fig, axes = plt.subplots(1, 3 + st.n_masks, figsize=(2.3 * (3 + st.n_masks), 2.8))
    axes[0].imshow(img)
    heat = axes[1].imshow(run.maps[0, j], cmap=HEAT_CMAP, vmin=0, vmax=1)
    axes[1].set_title(f"{study.method_label(st.methods[j])} heatmap")
    fig.colorbar(heat, ax=axes[1], fraction=0.046, pad=0.03, label="heatmap (scaled to [0, 1])")
    levels = axes[2].imshow(
        run.levels[0, j], cmap=plt.get_cmap("viridis_r", k), vmin=0.5, vmax=k + 0.5
    )
    axes[2].set_title("k-means levels (1 = top)")
    fig.colorbar(levels, ax=axes[2], fraction=0.046, pad=0.03, ticks=range(1, k + 1))
    for i in range(st.n_masks):
        axes[3 + i].imshow(np.where(run.masks[0, j, i][..., None], 0, img))
        axes[3 + i].set_title(f"Mask_{i + 1} (black = occluded)", fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Fig. 5: heatmap, its k-means levels and the nested masks")
    fig.tight_layout()
    return fig


def occlusion_figure(st: study.Result) -> plt.Figure:
    """Fig. 6: every strategy on the shown method's masks of the first tile (first replicate)."""
    run, j = st.runs[0], _shown_method(st)
    img = _to_img(run.splits["test"].images[int(run.sample_ids[0])])
    panels, labels = [], []
    for s in st.strategies:
        panels += [img, *run.results[s]["examples"][0, j]]
        labels.append(occlusion.STRATEGIES[s])
    fig = plots.image_grid(
        panels,
        ncols=1 + st.n_masks,
        row_labels=labels,
        panel=1.9,
        titles=["original"] + [f"Mask_{i + 1}" for i in range(st.n_masks)],
    )
    fig.suptitle(
        f"Fig. 6: occlusion strategies on the {study.method_label(st.methods[j])} "
        "masks (cumulative)",
        y=1.01,
    )
    return fig


def perceptual_figure(st: study.Result, table1: pd.DataFrame) -> plt.Figure:
    """Table 1 as curves, one panel per distance."""
    metrics = [m for m in METRIC_LABELS if m in set(table1.metric)]
    cols = [f"Mask_{i + 1}" for i in range(st.n_masks)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for _, row in table1[table1.metric == metric].iterrows():
            ref = str(row.strategy).startswith("reference")
            ax.plot(
                range(1, st.n_masks + 1),
                row[cols].astype(float),
                ls="--" if ref else "-",
                marker="" if ref else "o",
                label=occlusion.STRATEGIES.get(row.strategy, row.strategy),
            )
        ax.set_xticks(range(1, st.n_masks + 1), cols)
        ax.set_title(METRIC_LABELS[metric], fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Table 1 as curves: distance from the original / from the training data")
    fig.tight_layout()
    return fig


def deletion_figure(st: study.Result, auc: pd.DataFrame) -> plt.Figure:
    """Mean deletion curves per strategy and method (all seeds, tiles and replicates)."""
    ncols = min(3, len(st.strategies))
    nrows = int(np.ceil(len(st.strategies) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows), squeeze=False, sharey=True
    )
    rel = st.params.auc_x == "relative"
    for ax, s in zip(axes.flat, st.strategies, strict=False):
        for j, m in enumerate(st.methods):
            xs = np.concatenate(
                [faithfulness.occluded_fractions(r.masks[:, j], rel) for r in st.runs]
            )
            ys = np.concatenate([r.results[s]["prob"][:, :, j].mean(1) for r in st.runs])
            mean_auc = auc[(auc.strategy == s) & (auc.method == m)].auc.mean()
            ax.plot(
                xs.mean(0),
                ys.mean(0),
                marker="o",
                ms=3,
                label=f"{study.method_label(m)} (AUC {mean_auc:.2f})",
            )
        ax.set_title(occlusion.STRATEGIES[s])
        ax.set_xlabel("occluded share p" + (" (of the last mask)" if rel else ""))
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(st.strategies) :]:
        ax.axis("off")
    fig.suptitle("Deletion curves: mean P(tumour) as the masks are occluded")
    fig.tight_layout()
    return fig


def rank_figure(grid: pd.DataFrame) -> plt.Figure:
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 2, 0.45 * len(grid) + 1.5))
    sns.heatmap(
        grid.set_index("method"),
        annot=True,
        fmt="d",
        cmap="viridis_r",
        cbar_kws={"label": "rank"},
        ax=ax,
    )
    ax.set_title("Method ranks: IoU (ground truth) and deletion AUC per strategy (1 = best)")
    return fig


def agreement_figure(mard: pd.DataFrame) -> plt.Figure:
    """Table 9 with intervals: point estimate, bootstrap mean and 95 % interval per strategy."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    y = np.arange(len(mard))
    for ax, key in zip(axes, ["mard", "rank_accuracy", "kendall_tau"], strict=True):
        ax.hlines(y, mard[f"{key}_ci_low"], mard[f"{key}_ci_high"], lw=3, color="#999999")
        ax.plot(mard[f"{key}_boot_mean"], y, "o", color="k", label="bootstrap mean")
        ax.plot(mard[key], y, "x", color="C3", label="point estimate")
        ax.set_yticks(y, [occlusion.STRATEGIES[s] for s in mard.strategy])
        ax.set_xlabel(key.replace("_", " "))
    axes[0].legend(fontsize=7)
    fig.suptitle("Agreement of each strategy's AUC ranking with the IoU ranking (95 % interval)")
    fig.tight_layout()
    return fig


def all_figures(
    st: study.Result,
    tables: dict[str, pd.DataFrame] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, plt.Figure]:
    """Every figure of the chapter (or those named in ``only``, in that order), by the name it
    is saved under (``figures/<name>.png``); ``tables``: the chapter's tables of ``st``
    (:func:`~xaistudy.chapters.ibo.tables.all_tables`) when at hand."""
    from xaistudy.chapters.ibo.tables import all_tables

    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def table(name: str) -> pd.DataFrame:
        if tables is not None:
            return tables[name]
        if "all" not in cache:
            cache["all"] = all_tables(st)
        return cache["all"][name]

    make: dict[str, Callable[[], plt.Figure]] = {
        "stain_normalisation": lambda: stain_figure(st),
        "ddpm_samples": lambda: ddpm_figure(st),
        "heatmaps": lambda: heatmap_figure(st),
        "masks": lambda: masks_figure(st),
        "occlusions": lambda: occlusion_figure(st),
        "perceptual": lambda: perceptual_figure(st, table("lpips")),
        "deletion_curves": lambda: deletion_figure(st, study.auc_rows(st)),
        "rankings": lambda: rank_figure(table("rankings")),
        "agreement": lambda: agreement_figure(table("mard")),
    }
    unknown = [n for n in only or () if n not in make]
    if unknown:
        raise KeyError(f"no figure '{unknown[0]}'; the chapter's figures: {', '.join(make)}")
    return {name: make[name]() for name in (only or make)}
