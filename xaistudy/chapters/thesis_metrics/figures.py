"""The figures of the ``thesis_metrics`` page: training curves (thesis Figs. 10-11), the U-Net's
masks, the violins (Figs. 20-25) and the tendency overlays (Figs. 16-19).

matplotlib, the study and the metrics are imported where they are used, so importing the
chapter package stays light.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaistudy.chapters.thesis_metrics.paper import CLASSES

#: the metrics shown as violins, one figure each
VIOLIN_METRICS: tuple[str, ...] = ("iou", "precision", "f1", "pixel_accuracy")


def training_figure(history, best: int, loss: str, score: str, title: str):
    """Training and validation curves (cf. thesis Figs. 10 and 11)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, col, name in [(axes[0], "loss", loss), (axes[1], "acc", score)]:
        ax.plot(history["epoch"], history[f"train_{col}"], marker="o", label="training")
        ax.plot(history["epoch"], history[f"val_{col}"], marker="s", label="validation")
        ax.axvline(best, color="0.5", linestyle=":", label="kept weights")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cnn_figure(res: Any):
    """The first seed's grading-CNN training curves (cf. thesis Fig. 10)."""
    r = res.runs[0]
    return training_figure(
        r.cnn_history,
        r.cnn_best_epoch,
        "cross-entropy loss",
        "accuracy",
        f"Grading CNN training, seed {r.seed} (cf. thesis Fig. 10)",
    )


def unet_figure(res: Any):
    """The first seed's U-Net training curves (cf. thesis Fig. 11)."""
    r = res.runs[0]
    return training_figure(
        r.unet_history,
        r.unet_best_epoch,
        "BCE + Dice loss",
        "IoU (mask > 0.5)",
        f"Nuclei U-Net training, seed {r.seed} (cf. thesis Fig. 11)",
    )


def mask_gallery(res: Any):
    """One test tile per class: the tile, the U-Net's masks and the exact masks."""
    from xaistudy.studies.thesis_metrics import ground_truths
    from xaistudy.viz import plots

    r, params = res.runs[0], res.params
    masks = r.masks("U-Net", params.mask_threshold)
    first = [
        int(np.flatnonzero(r.labels == k)[0]) for k in range(len(CLASSES)) if (r.labels == k).any()
    ]
    panels = []
    for i in first:
        types = np.where(masks["tumour"][i], 1, np.where(masks["non-tumour"][i], 2, 0))
        panels += [r.images[i], plots.nuclei_overlay(r.images[i], types)]
        if r.exact is not None:
            panels.append(plots.nuclei_overlay(r.images[i], r.exact[i]))
    columns = ["tile", "U-Net masks", "exact masks"][: 1 + len(ground_truths(params))]
    fig = plots.image_grid(
        panels,
        ncols=len(columns),
        titles=columns * len(first),
        row_labels=[CLASSES[r.labels[i]] for i in first],
        panel=1.9,
    )
    fig.suptitle(
        f"U-Net nuclei masks on grading test tiles, seed {r.seed} (red: tumour, blue: non-tumour)",
        y=1.01,
    )
    return fig


def violin(res: Any, metric: str):
    """Figs. 20-25: violins per method and mask (reading ``average``), tendency means marked."""
    import matplotlib.pyplot as plt

    from xaistudy.evaluate import tendencies as tend
    from xaistudy.evaluate.quality import METRIC_LABELS
    from xaistudy.studies.thesis_metrics import MASK_TYPES, METHODS, ground_truths, headline

    params = res.params
    sel = headline(res.scores, params)
    keys = [(gt, mt) for gt in ground_truths(params) for mt in MASK_TYPES]
    if sel.empty:
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no test tile has a non-empty mask", ha="center", va="center")
        return fig
    return tend.violin_figure(
        sel, metric, METRIC_LABELS[metric], METHODS, keys, [f"{mt} mask ({gt})" for gt, mt in keys]
    )


def tendency_figures(res: Any) -> list:
    """Figs. 16-19 for the first seed: per tendency, the best-fitting tile of each class."""
    from xaistudy.evaluate import tendencies as tend
    from xaistudy.studies.thesis_metrics import METHODS

    r, params = res.runs[0], res.params
    tt = tend.tendency_table(r.probs, r.labels, CLASSES, params.prob_threshold)
    examples = tend.pick_examples(tt)
    masks = r.masks("U-Net", params.mask_threshold)
    labelled = {METHODS[m]: r.maps[m] for m in METHODS}
    return [
        tend.tendency_figure(
            examples,
            r.images,
            labelled,
            masks["tumour"],
            masks["non-tumour"],
            case,
            threshold=params.map_threshold,
        )
        for case in tend.TENDENCIES
    ]


def all_figures(res: Any, only: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The page's figures by the name they are saved under (``only``: just these names)."""
    import matplotlib.pyplot as plt

    makers = {
        "cnn_training": lambda: cnn_figure(res),
        "unet_training": lambda: unet_figure(res),
        "unet_masks": lambda: mask_gallery(res),
        **{f"violin_{m}": (lambda m=m: violin(res, m)) for m in VIOLIN_METRICS},
    }
    cases = [f"tendency_{k}" for k in range(1, 5)]
    wanted = list(only) or [*makers, *cases]
    unknown = set(wanted) - set(makers) - set(cases)
    if unknown:
        raise KeyError(f"no figure named {sorted(unknown)}; the page has {[*makers, *cases]}")
    out = {name: makers[name]() for name in wanted if name in makers}
    if set(wanted) & set(cases):
        for name, fig in zip(cases, tendency_figures(res), strict=True):
            if name in wanted:
                out[name] = fig
            else:
                plt.close(fig)
    return {name: out[name] for name in wanted}
