"""What the review warns about, measured: whether the perturbations stay in distribution, how
much a minor change of a setting moves a map, where a shortcut model's maps point (Clever
Hans), and how the maps change as more layers are re-initialised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from xaistudy.core.store import Store
from xaistudy.evaluate import localisation, sanity
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.rise import fill_like, rise_masks
from xaistudy.models.classifiers import target_layer
from xaistudy.models.classify import predict_proba, weights_key
from xaistudy.studies.saliency_tour.maps import Maps, cached_maps
from xaistudy.studies.saliency_tour.models import (
    MARKED,
    MARKED_NORMAL,
    Models,
    accuracy_table,
    stack,
)
from xaistudy.studies.saliency_tour.settings import (
    PERTURBATIONS,
    STOCHASTIC,
    SWEEP,
    altered,
    hans_methods,
    options,
    swept_method,
)

#: the two Clever-Hans models
SHORTCUT, NO_SHORTCUT = "trained with the shortcut", "trained without the shortcut"


def perturbed(params: Any, image: torch.Tensor, rng: np.random.Generator, k: int = 16) -> dict:
    """``k`` perturbed copies of ``image`` per perturbation of :data:`PERTURBATIONS`."""
    from skimage.segmentation import quickshift

    from xaistudy.explain.attributions import superpixels

    c, h, w = image.shape
    img = image.cpu().numpy()
    masks = rise_masks(k, (h, w), seed=int(rng.integers(2**31)))[:, 0].numpy()
    win = params.occlusion_window
    occl = np.ones((k, h, w), np.float32)
    for j in range(k):
        y, x0 = rng.integers(0, h - win + 1), rng.integers(0, w - win + 1)
        occl[j, y : y + win, x0 : x0 + win] = 0
    quick = quickshift(
        img.transpose(1, 2, 0) * 255.0,
        kernel_size=4,
        max_dist=200,
        ratio=0.2,
        rng=params.explain_seed,
    )
    slic = superpixels(image, 50, params.explain_seed)

    def segments_off(seg: np.ndarray) -> np.ndarray:
        keep = rng.random((k, seg.max() + 1)) < 0.5
        return np.stack([keep[j][seg] for j in range(k)]).astype(np.float32)

    black = np.zeros((1, h, w), np.float32)
    keeps = [masks, occl, segments_off(quick), segments_off(slic), black]
    out = {name: img[None] * k[:, None] for name, k in zip(PERTURBATIONS, keeps, strict=True)}
    fill = fill_like(image[None].cpu(), params.rise_fill)  # what RISE's hidden pixels show
    out[PERTURBATIONS[0]] = out[PERTURBATIONS[0]] + np.asarray(fill) * (1 - masks[:, None])
    return out


def in_distribution(params: Any, m: Models, probs: np.ndarray, labels: np.ndarray):
    """Per normal test tile the model gets right and per perturbation: the tumour probability
    before and after (mean over the perturbed copies) and the share called tumour."""
    idx = np.flatnonzero((labels == 0) & (probs.argmax(1) == 0))[: params.n_ood]
    rng = np.random.default_rng([params.explain_seed, m.seed])
    rows = []
    for i in idx:
        image = torch.as_tensor(m.test[int(i)]["image"])
        for name, batch in perturbed(params, image, rng).items():
            p = predict_proba(m.net, batch, target=1)
            rows.append(
                {
                    "perturbation": name,
                    "unit": int(i),
                    "p_tumour_clean": probs[i, 1],
                    "p_tumour_perturbed": float(p.mean()),
                    "shift": float(p.mean() - probs[i, 1]),
                    "called_tumour": float((p > 0.5).mean()),
                }
            )
    return pd.DataFrame(rows)


def sweep(params: Any, m: Models, x: torch.Tensor, maps: Maps, store: Store) -> pd.DataFrame:
    """Per tile: Spearman ρ of the default map with the map after one minor change of a
    setting (:data:`SWEEP`), and with the map of another explanation seed (same settings)."""
    x = x[: params.n_sweep]
    targets, layer, rows = [1] * len(x), target_layer(m.net), []
    for name in [k for k in SWEEP if swept_method(k) in maps]:
        method = swept_method(name)
        base = maps[method]["maps"][: len(x)]
        opts = options(params, method)
        key = {
            "model": weights_key(m.net),
            "method": name,
            "options": opts,
            "change": SWEEP[name][1],
            "tiles": len(x),
            "seed": m.seed,
        }

        def compute(name=name, method=method, opts=opts, base=base) -> dict[str, np.ndarray]:
            new = {**opts, **altered(params, name, m.net)}
            reseeded = {**opts, "seed": params.explain_seed + 1}
            return {
                "altered": tx.run_method(method, m.net, x, targets, layer, new),
                "reseeded": tx.run_method(method, m.net, x, targets, layer, reseeded)
                if method in STOCHASTIC
                else base,
            }

        got = cached_maps(store, "sweep", key, compute)
        for i in range(len(x)):
            rows.append(
                {
                    "method": name,
                    "unit": i,
                    "change": SWEEP[name][1],
                    "rho_altered": sanity.rank_correlation(base[i], got["altered"][i]),
                    "rho_reseeded": sanity.rank_correlation(base[i], got["reseeded"][i]),
                }
            )
    out = pd.DataFrame(rows)
    if len(out):
        out["sensitivity"] = out["rho_reseeded"] - out["rho_altered"]
    return out


@dataclass(frozen=True)
class HansShown:
    """The marked tumour tiles of the Clever-Hans figure: images, pen and tumour masks, and
    each (model, method)'s maps."""

    x: np.ndarray
    pen: np.ndarray
    tumour: np.ndarray
    maps: Mapping[tuple[str, str], np.ndarray]


@dataclass(frozen=True)
class CleverHans:
    """One seed's Clever-Hans measurements (tidy tables) and its figure's material."""

    accuracy: pd.DataFrame  # both models on the three test sets
    maps: pd.DataFrame  # per model, method and marked tumour tile: where the map points
    normal: pd.DataFrame  # per marked normal tile: each model's tumour probability
    shown: HansShown


def _marked(dataset: Any, label: int) -> list[int]:
    return [
        i
        for i in range(len(dataset))
        if int(dataset[i]["label"]) == label and bool(dataset[i]["marked"])
    ]


def clever_hans(params: Any, m: Models, device: torch.device, store: Store) -> CleverHans:
    """Accuracy of both models on the three test sets; per marked tumour tile and method,
    where each model's map points and how much of its positive mass lies on the mark; per
    marked normal tile, each model's tumour probability."""
    models = {SHORTCUT: m.hans, NO_SHORTCUT: m.net}
    acc = accuracy_table(models, m.test_sets, device=device)
    marked = m.test_sets[MARKED]
    idx = np.array(_marked(marked, 1))[: max(params.n_eval, params.n_shortcut_maps)]
    x = stack(marked, idx).to(device)
    pen = stack(marked, idx, "pen").numpy().astype(bool)
    tumour = stack(marked, idx, "mask")[:, 0].numpy() > 0.5
    rows, shown = [], {}
    for name, net in models.items():
        for method in hans_methods(params):
            opts = options(params, method)
            key = {
                "model": weights_key(net),
                "method": method,
                "options": opts,
                "tiles": idx.tolist(),
                "cooccurrence": params.shortcut_cooccurrence,
                "ink": params.shortcut_ink,
                "seed": m.seed,
            }
            maps = cached_maps(
                store,
                "hans",
                key,
                lambda net=net, method=method, opts=opts: {
                    "maps": tx.run_method(method, net, x, [1] * len(idx), target_layer(net), opts)
                },
            )["maps"]
            shown[name, method] = maps
            on_pen = localisation.score_maps(maps, pen)
            on_tumour = localisation.score_maps(maps, tumour)
            rows += [
                {
                    "model": name,
                    "method": method,
                    "unit": int(i),
                    "pointing_at_mark": on_pen["pointing_game"][j],
                    "pointing_at_tumour": on_tumour["pointing_game"][j],
                    "mass_on_mark": on_pen["positive_share"][j],
                    "mass_on_tumour": on_tumour["positive_share"][j],
                    "mark_share": float(pen[j].mean()),
                    "tumour_share": float(tumour[j].mean()),
                }
                for j, i in enumerate(idx)
            ]
    normal_marked = m.test_sets[MARKED_NORMAL]
    n_idx = _marked(normal_marked, 0)
    xs = stack(normal_marked, n_idx).numpy() if n_idx else np.zeros((0, 3, 1, 1))
    normal = pd.DataFrame(
        {
            "unit": n_idx,
            **{
                name: predict_proba(net, xs, target=1) if n_idx else []
                for name, net in models.items()
            },
        }
    )
    figure = HansShown(x.cpu().numpy(), pen, tumour, shown)
    return CleverHans(acc, pd.DataFrame(rows), normal, figure)


def cascade(params: Any, m: Models, x: torch.Tensor, maps: Maps, store: Store) -> pd.DataFrame:
    """Spearman ρ of each cheap method's maps as more weight layers are re-initialised."""
    cheap = [k for k in maps if tx.method_info(k)["family"] != "perturbation" and k != "scorecam"]
    names = [n for n, _ in sanity.weight_layers(m.net)][::-1]
    depth = min(len(names), params.cascade_layers)
    if not cheap or depth == 0:
        return pd.DataFrame(columns=["method", "layers_reinitialised", "top_layer", "spearman"])
    key = {
        "model": weights_key(m.net),
        "methods": cheap,
        "tiles": len(x),
        "depth": depth,
        "seed": m.seed,
    }

    def compute() -> pd.DataFrame:
        rows = []
        for k, name, rand in sanity.cascading_randomisation(m.net, m.seed, depth):
            rand = rand.to(x.device)
            for method in cheap:
                got = tx.run_method(
                    method, rand, x, [1] * len(x), target_layer(rand), options(params, method)
                )
                rho = np.nanmean(sanity.compare_batches(maps[method]["maps"], got)["spearman"])
                rows.append(
                    {
                        "method": method,
                        "layers_reinitialised": k,
                        "top_layer": name,
                        "spearman": rho,
                    }
                )
        return pd.DataFrame(rows)

    return store.cached_table("saliency_tour-cascade", key, compute)
