"""The figures of the ``segmentation_xai`` page: the survey's Figs. 2-4 and RISE's convergence.

matplotlib, the study and the metrics are imported where they are used, so importing the
chapter package stays light.
"""

from __future__ import annotations

import numpy as np


def _rgb(image) -> np.ndarray:
    return (image.detach().cpu().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _heat(ax, rgb, sal, title=None):
    from xaistudy.viz.maps import HEAT_CMAP

    ax.imshow(rgb)
    art = ax.imshow(sal, cmap=HEAT_CMAP, vmin=0, vmax=1, alpha=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return art


def methods_figure(res):
    """The survey's Fig. 2: the first seed's maps of every method at every layer."""
    import matplotlib.pyplot as plt

    from xaistudy.studies.segmentation_xai import CAMS, RISE_LAYER, label, largest_rise
    from xaistudy.viz import plots

    r, p = res.seeds[0], res.params
    shown = min(p.n_show, len(r.maps[(RISE_LAYER, largest_rise(p))]))
    cols = [(layer, m) for layer in p.layers for m in CAMS] + [(RISE_LAYER, largest_rise(p))]
    fig, axes = plt.subplots(shown, 1 + len(cols), figsize=(1.9 * (1 + len(cols)), 2.1 * shown),
                             squeeze=False)
    for i in range(shown):
        rgb = _rgb(r.tiles["images"][i])
        pred = r.model.predict(r.tiles["images"][i : i + 1], p.target_class)[0].cpu().numpy()
        axes[i, 0].imshow(plots.outline(rgb, pred, width=1))
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_title(f"tile {r.tiles['index'][i]}: M", fontsize=8)
        for j, (layer, m) in enumerate(cols):
            title = f"{label(m)}\n{layer}" if i == 0 else None
            art = _heat(axes[i, j + 1], rgb, r.maps[(layer, m)][i], title)
    fig.colorbar(art, ax=axes, shrink=0.7, label="saliency (scaled to [0, 1])")
    fig.suptitle(f"Saliency of '{p.target_class}' over its predicted map (yellow), seed "
                 f"{r.seed}", y=1.02)
    return fig


def rise_figure(res):
    """The survey's Fig. 3: RISE with more and more masks (coverage estimator, first seed)."""
    import matplotlib.pyplot as plt

    from xaistudy.studies.segmentation_xai import RISE_LAYER, largest_rise

    r, p = res.seeds[0], res.params
    shown = min(p.n_show, len(r.maps[(RISE_LAYER, largest_rise(p))]))
    fig, axes = plt.subplots(shown, len(p.rise_masks), figsize=(2.2 * len(p.rise_masks),
                                                                 2.2 * shown), squeeze=False)
    for i in range(shown):
        rgb = _rgb(r.tiles["images"][i])
        for j, n in enumerate(p.rise_masks):
            _heat(axes[i, j], rgb, r.maps[(RISE_LAYER, f"rise-{n}")][i],
                  f"{n} masks" if i == 0 else None)
    fig.suptitle(f"RISE for '{p.target_class}' with more and more masks", y=1.02)
    return fig


def convergence_figure(res):
    """Correlation with the independent reference map against the mask count, per estimator."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for est, g in res.convergence.groupby("estimator"):
        m = g.groupby("n_masks")["correlation"].agg(["mean", "min", "max"])
        ax.plot(m.index, m["mean"], "o-", label=est)
        ax.fill_between(m.index, m["min"], m["max"], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("RISE masks")
    ax.set_ylabel(f"correlation with {res.params.rise_reference}-mask reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_figure(res, layer: str | None = None):
    """The survey's Fig. 4: the metric's steps for Seg-XRes-CAM on the first tile."""
    import matplotlib.pyplot as plt
    import torch

    from xaistudy.evaluate.segmentation_metrics import metric_steps
    from xaistudy.viz.maps import HEAT_CMAP

    r, p = res.seeds[0], res.params
    layer = layer or p.layers[-1]
    thr = p.cam_thresholds[-1]
    sal = r.maps[(layer, "seg-xres-cam")][:1]
    st = metric_steps(r.model, r.tiles["images"][:1], p.target_class, sal, thr, p.fill)
    panels = [("(a) tile", _rgb(r.tiles["images"][0]), None),
              ("(b) prediction", st["prediction"][0], "gray"),
              (f"(c) Seg-XRes-CAM, {layer}", sal[0], HEAT_CMAP),
              (f"(d) binarised (> {thr:g})", st["binary"][0], "gray"),
              ("(e) masked tile", _rgb(torch.from_numpy(st["masked"][0])), None),
              ("(f) prediction on (e)", st["masked_prediction"][0], "gray")]
    fig, axes = plt.subplots(1, 6, figsize=(14, 2.7))
    for ax, (title, img, cmap) in zip(axes, panels, strict=True):
        art = ax.imshow(img, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if cmap == HEAT_CMAP:
            fig.colorbar(art, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(f"Dice Explained = Dice(b, f) = {st['dice_explained'][0]:.3f};  Saliency "
                 f"Ratio = |d| / |b| = {st['saliency_ratio'][0]:.2f}", y=1.05)
    return fig


def all_figures(res, only: tuple[str, ...] | list[str] = ()) -> dict:
    """The page's figures by the name they are saved under (``figures/<name>.png``), in page
    order; ``only``: just these names (an unknown name is a KeyError naming the figures)."""
    makers = {
        "fig2_methods": methods_figure,
        "fig3_rise_masks": rise_figure,
        "rise_convergence": convergence_figure,
        "fig4_metric_procedure": metric_figure,
    }
    wanted = list(only) or list(makers)
    unknown = set(wanted) - set(makers)
    if unknown:
        raise KeyError(f"no figure named {sorted(unknown)}; the page has {list(makers)}")
    return {name: makers[name](res) for name in wanted}
