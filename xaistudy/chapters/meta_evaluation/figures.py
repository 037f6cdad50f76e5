"""The chapter's figures: what each model uses, the maps, and every metric against the truth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from xaistudy.explain import METHODS
from xaistudy.models.classify import predict_proba
from xaistudy.studies import meta_evaluation as study
from xaistudy.viz.maps import SIGNED_CMAP, UNSIGNED_CMAP, display_map

from .tables import agreement_table, method_label


def _show(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def evidence_figure(result: study.Result) -> plt.Figure:
    """One tile per trained model: the tile, its annotation, the evidence the model uses and
    the two interventions, with P(target) above each."""
    run = result.runs[0]
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.4))
    for row, name in enumerate(study.TRAINED):
        t = run.tiles[name]
        x, e, a, d = t.images[:1], t.evidence[:1], t.annotation[0], t.donors[:1]
        without_e, without_r = study.intervene(x, e, d)
        probs = [predict_proba(run.models[name], z, target=1)[0] for z in (x, without_e, without_r)]
        panels = [
            (x[0], f"tile, P = {probs[0]:.2f}"),
            (None, "annotation / evidence"),
            (without_e[0], f"without evidence, P = {probs[1]:.2f}"),
            (without_r[0], f"without the rest, P = {probs[2]:.2f}"),
        ]
        for ax, (img, title) in zip(axes[row], panels, strict=True):
            if img is None:
                ax.imshow(_show(x[0]))
                ax.contour(a, levels=[0.5], colors="black", linewidths=1)
                ax.contourf(e[0], levels=[0.5, 1], colors=["#e41a1c"], alpha=0.45)
            else:
                ax.imshow(_show(img))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        axes[row, 0].text(
            -0.1,
            0.5,
            name.replace("_", " "),
            transform=axes[row, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=10,
        )
    fig.suptitle(
        "What each model uses (red) and the annotation (black outline); P = P(target)", fontsize=9
    )
    fig.tight_layout()
    return fig


def maps_figure(result: study.Result) -> plt.Figure:
    """The maps of every method for the first tile of each model (first seed)."""
    methods = study.methods_of(result.params)
    run = result.runs[0]
    names = [*study.TRAINED, "randomised"]
    fig, axes = plt.subplots(
        len(names), len(methods) + 1, figsize=(1.35 * (len(methods) + 1), 1.5 * len(names) + 0.4)
    )
    for r, name in enumerate(names):
        t = run.tiles_of(name)
        axes[r, 0].imshow(_show(t.images[0]))
        axes[r, 0].contour(t.evidence[0], levels=[0.5], colors="#e41a1c", linewidths=0.8)
        axes[r, 0].set_title(name.replace("_", " "), fontsize=7)
        for c, method in enumerate(methods, start=1):
            m = result.examples[name][0, c - 1]
            signed = METHODS[method].signed if method in METHODS else False
            axes[r, c].imshow(
                display_map(m, signed),
                cmap=SIGNED_CMAP if signed else UNSIGNED_CMAP,
                vmin=-1 if signed else 0,
                vmax=1,
            )
            axes[r, c].contour(t.evidence[0], levels=[0.5], colors="black", linewidths=0.5)
            axes[r, c].set_title(method_label(method), fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def agreement_figure(table: pd.DataFrame) -> plt.Figure:
    """Metrics ordered by their agreement with the truth on the clean model: Kendall's tau
    per trained model (left) and how often the metric prefers a trained model's map to the
    randomised model's (right), 95 % intervals (``table``: :func:`.tables.agreement_table`)."""
    t = table.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(t))
    fig, (a1, a2) = plt.subplots(
        1, 2, figsize=(10, 0.3 * len(t) + 1.6), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    for model, colour, dy in (("clean", "#1b7837", 0.15), ("clever_hans", "#c51b7d", -0.15)):
        est = t[f"tau {model}"].to_numpy(float)
        err = np.abs(np.vstack([est - t[f"tau {model} low"], t[f"tau {model} high"] - est]))
        a1.errorbar(
            est,
            y + dy,
            xerr=np.nan_to_num(err),
            fmt="o",
            ms=4,
            color=colour,
            label=model.replace("_", "-"),
            capsize=0,
            lw=1.2,
        )
    a1.axvline(0, color="black", lw=0.8)
    a1.set_xlim(-1.05, 1.05)
    a1.set_xlabel("Kendall's τ with the truth's ranking")
    a1.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    est = t["beats randomised"].to_numpy(float)
    err = np.abs(np.vstack([est - t["beats randomised low"], t["beats randomised high"] - est]))
    a2.errorbar(est, y, xerr=np.nan_to_num(err), fmt="s", ms=4, color="#2166ac", lw=1.2)
    a2.axvline(0.5, color="black", lw=0.8)
    a2.set_xlim(-0.02, 1.02)
    a2.set_xlabel("share scored above the randomised\nmodel's map (0.5: no separation)")
    a1.set_yticks(
        y,
        [f"{m} ({p.split()[0]})" for m, p in zip(t["metric"], t["paper"], strict=True)],
        fontsize=7,
    )
    fig.suptitle("Which metric tells the truth? (ordered by τ on the clean model)", fontsize=10)
    fig.tight_layout()
    return fig


def all_figures(
    result: study.Result, agreement: pd.DataFrame | None = None
) -> dict[str, plt.Figure]:
    """Every figure of ``result`` by its saved name (``agreement``: the agreement table when
    already computed)."""
    if agreement is None:
        agreement = agreement_table(result)
    return {
        "evidence": evidence_figure(result),
        "maps": maps_figure(result),
        "metric_agreement": agreement_figure(agreement),
    }
