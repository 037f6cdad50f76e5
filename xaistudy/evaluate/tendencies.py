"""The four "tendencies" of Valatkaitė's thesis (Table 5) and its colour overlays (Figs. 16-19).

A test image falls into one of four cases by whether the prediction is correct and whether
the predicted class's softmax probability reaches a threshold (0.6 in the thesis). For each
case and class the figures show the image that best matches it: the most confident for a
high-probability case, the least confident for a low-probability one.

Overlay colours: green = binarised interpretation map, red = tumour mask, blue = non-tumour
mask, yellow = where the map overlaps the tumour mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

PROB_THRESHOLD = 0.6
TENDENCIES: tuple[str, ...] = (
    "correct, high probability",
    "correct, low probability",
    "incorrect, high probability",
    "incorrect, low probability",
)
OVERLAY_COLORS: dict[str, tuple[float, float, float]] = {
    "map": (0.10, 0.85, 0.10),
    "tumour": (0.90, 0.10, 0.10),
    "non-tumour": (0.15, 0.35, 0.95),
    "overlap": (1.00, 0.90, 0.00),
}


def tendency(correct: bool, prob: float, threshold: float = PROB_THRESHOLD) -> str:
    """The Table 5 case of one prediction (``prob``: probability of the predicted class)."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"probability must lie in [0, 1], got {prob}")
    high = prob >= threshold
    return TENDENCIES[(0 if correct else 2) + (0 if high else 1)]


def tendency_table(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...] | list[str],
    threshold: float = PROB_THRESHOLD,
) -> pd.DataFrame:
    """One row per image: image, true/predicted class, probability, correct, tendency."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must be (N, C) with N = len(labels); got {probs.shape}")
    pred = probs.argmax(1)
    p = probs[np.arange(len(pred)), pred]
    return pd.DataFrame(
        {
            "image": np.arange(len(labels)),
            "true": [classes[i] for i in labels],
            "predicted": [classes[i] for i in pred],
            "probability": p,
            "correct": pred == labels,
            "tendency": [
                tendency(bool(c), float(q), threshold)
                for c, q in zip(pred == labels, p, strict=True)
            ],
        }
    )


def pick_examples(table: pd.DataFrame) -> pd.DataFrame:
    """Per tendency and true class, the image that matches the case best (Figs. 16-19).

    High-probability cases take the most confident image, low-probability ones the least
    confident; a (tendency, class) with no image is absent.
    """
    rows = []
    for (case, _cls), group in table.groupby(["tendency", "true"], sort=False):
        best = group["probability"].idxmax() if "high" in case else group["probability"].idxmin()
        rows.append(table.loc[best])
    out = pd.DataFrame(rows).reset_index(drop=True)
    if out.empty:
        return out
    out["tendency"] = pd.Categorical(out["tendency"], TENDENCIES, ordered=True)
    return out.sort_values(["tendency", "true"]).reset_index(drop=True)


def overlay(
    image: np.ndarray,
    map_binary: np.ndarray,
    tumour: np.ndarray,
    non_tumour: np.ndarray,
    alpha: float = 0.6,
) -> np.ndarray:
    """``image`` (H, W, 3 uint8 or float in [0, 1]) with the thesis's colour layers, uint8.

    Layers are painted in order non-tumour (blue), tumour (red), map (green), then the
    map-tumour overlap (yellow), each blended with ``alpha``.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3), got {img.shape}")
    if img.max() > 1.0:
        img = img / 255.0
    layers = {
        "non-tumour": np.asarray(non_tumour, bool),
        "tumour": np.asarray(tumour, bool),
        "map": np.asarray(map_binary, bool),
    }
    layers["overlap"] = layers["map"] & layers["tumour"]
    out = img.copy()
    for name, sel in layers.items():
        if sel.shape != img.shape[:2]:
            raise ValueError(f"{name} layer has shape {sel.shape}, image {img.shape[:2]}")
        out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(OVERLAY_COLORS[name])
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


# -- figures ----------------------------------------------------------------------------------
TENDENCY_MARKERS: dict[str, str] = dict(zip(TENDENCIES, ("o", "s", "^", "X"), strict=True))


def violin_figure(
    rows: pd.DataFrame,
    metric: str,
    label: str,
    methods: Mapping[str, str],
    panels: Sequence[tuple[str, str]],
    panel_titles: Sequence[str],
) -> plt.Figure:
    """Violins of ``metric`` per method, one panel per (ground_truth, mask_type) pair.

    ``rows``: per-image scores with columns method, ground_truth, mask_type, tendency and
    ``metric``; ``methods``: method name -> axis label. The mean of each tendency is marked
    on its method's violin (Figs. 20-25 of the thesis).
    """
    ncols = 2
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 3.4 * nrows), squeeze=False, sharey=True
    )
    order = list(methods)
    for ax, (gt, mask_type), title in zip(axes.flat, panels, panel_titles, strict=False):
        sel = rows[(rows["ground_truth"] == gt) & (rows["mask_type"] == mask_type)]
        sns.violinplot(
            data=sel,
            x="method",
            y=metric,
            order=order,
            ax=ax,
            cut=0,
            inner="quartile",
            color="0.85",
            linewidth=0.8,
            density_norm="width",
        )
        for k, case in enumerate(TENDENCIES):
            means = sel[sel["tendency"] == case].groupby("method")[metric].mean()
            xs = [order.index(m) + (k - 1.5) * 0.12 for m in means.index]
            ax.scatter(
                xs,
                means.values,
                marker=TENDENCY_MARKERS[case],
                s=36,
                zorder=3,
                color=sns.color_palette("deep")[k],
                edgecolor="black",
                linewidth=0.5,
            )
        ax.set_xticks(range(len(order)), [methods[m] for m in order], fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles = [
        Line2D(
            [],
            [],
            marker=TENDENCY_MARKERS[c],
            linestyle="",
            color=sns.color_palette("deep")[k],
            markeredgecolor="black",
            label=f"mean: {c}",
        )
        for k, c in enumerate(TENDENCIES)
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=2,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.06),
    )
    fig.suptitle(f"{label} of the binarised maps against the nuclei masks", fontsize=11)
    fig.tight_layout()
    return fig


def tendency_figure(
    examples: pd.DataFrame,
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    tumour: np.ndarray,
    non_tumour: np.ndarray,
    case: str,
    threshold: float = 0.3,
    panel: float = 1.9,
) -> plt.Figure:
    """Figs. 16-19: for one tendency, the chosen image of each class (columns), plain and
    overlaid with each method's binarised map (rows) and the two masks.

    ``images``: (N, H, W, 3) uint8; ``maps``: method label -> (N, H, W) maps in [0, 1];
    ``tumour``/``non_tumour``: (N, H, W) binary masks; ``examples``: rows of
    :func:`pick_examples` (image, true, predicted, probability, tendency).
    """
    chosen = examples[examples["tendency"] == case] if len(examples) else examples
    if chosen.empty:
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{case}: no test image falls into this case", ha="center", va="center")
        return fig
    ncols = len(chosen)
    nrows = 1 + len(maps)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols, panel * nrows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for j, (_, ex) in enumerate(chosen.iterrows()):
        i = int(ex["image"])
        axes[0, j].imshow(images[i])
        axes[0, j].set_title(
            f"{ex['true']} → {ex['predicted']}\np = {ex['probability']:.2f}", fontsize=8
        )
        for r, m in enumerate(maps.values(), start=1):
            axes[r, j].imshow(overlay(images[i], m[i] > threshold, tumour[i], non_tumour[i]))
    axes[0, 0].set_ylabel("image", fontsize=9)
    for r, label in enumerate(maps, start=1):
        axes[r, 0].set_ylabel(label, fontsize=9)
    legend = [Patch(color=OVERLAY_COLORS[k], label=k) for k in OVERLAY_COLORS]
    fig.legend(
        handles=legend,
        loc="lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.03),
    )
    fig.suptitle(case, fontsize=10)
    fig.tight_layout()
    return fig
