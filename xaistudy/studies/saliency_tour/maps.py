"""Every grid method's maps of the scored tiles, what they cost and how they score: pointing
game, IoU, randomisation sanity, deletion / insertion faithfulness, visual noise, sign, the
summation properties some methods promise and whether a map depends on how the network is
implemented."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from xaistudy.core.store import Store
from xaistudy.evaluate import axioms, faithfulness, localisation, sanity
from xaistudy.explain import explain
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.rise import rise_masks
from xaistudy.models.classifiers import target_layer
from xaistudy.models.classify import predict_proba, weights_key
from xaistudy.studies.saliency_tour.models import Models
from xaistudy.studies.saliency_tour.settings import grid_methods, options

#: per method: {"maps": (B, H, W), "random_maps": (B, H, W)} (and the timing of ``maps``:
#: ``seconds``, ``forward``, ``backward``, each (B,))
Maps = Mapping[str, Mapping[str, np.ndarray]]
#: ``c`` of the twin's ReLUs (:class:`xaistudy.evaluate.axioms.CoupledReLU`): the coupled term
#: is the neighbouring channel's pre-activation itself, so 1 puts it on the layer's own scale
TWIN_COUPLING = 1.0


def roughness(saliency: np.ndarray) -> float:
    """Visual noise of a map: mean absolute difference of neighbouring pixels over mean |map|.

    Scale-free (a map times a constant keeps its value); 0 for a constant map.
    """
    s = np.asarray(saliency, dtype=np.float64)
    scale = np.abs(s).mean()
    if scale == 0:
        return 0.0
    tv = np.abs(np.diff(s, axis=0)).mean() + np.abs(np.diff(s, axis=1)).mean()
    return float(tv / scale)


def variation(saliency: np.ndarray) -> float:
    """How much a map varies: its standard deviation over its mean magnitude (0 for a flat
    map; a map whose every perturbed copy scored alike is nearly flat)."""
    s = np.asarray(saliency, dtype=np.float64)
    scale = np.abs(s).mean()
    return float(s.std() / scale) if scale > 0 else 0.0


def negative_share(saliency: np.ndarray) -> float:
    """Share of a map's absolute mass that is negative (evidence against the class)."""
    s = np.asarray(saliency, dtype=np.float64)
    total = np.abs(s).sum()
    return float(np.clip(-s, 0, None).sum() / total) if total > 0 else 0.0


def region_scores(params: Any, saliency: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """On a tile whose tumour lies in two or more separate regions (else NaN), with the IoU's
    binarisation (:func:`~xaistudy.evaluate.localisation.region_coverage`): how unevenly the
    map covers them (largest − smallest share covered) and how much of the smallest it covers
    (a fine detail a coarse map misses)."""
    cover = localisation.region_coverage(saliency, mask, params.binarise, params.top_fraction)
    if len(cover) < 2:
        return {"coverage_spread": np.nan, "smallest_region_coverage": np.nan}
    return {
        "coverage_spread": float(cover.max() - cover.min()),
        "smallest_region_coverage": float(cover[-1]),
    }


def rise_np_maps(rise_maps: np.ndarray, params: Any, p: float = 0.5) -> np.ndarray:
    """Petsiuk et al.'s RISE (division by N·p) from the book's maps (division by coverage).

    Same masks, same scores: ``sum_i s_i M_i = coverage × map``, so the N·p map is
    ``map × coverage / (N p)`` exactly.
    """
    opts = options(params, "rise")
    coverage = rise_masks(opts["n_masks"], rise_maps.shape[-2:], seed=opts["seed"])[:, 0].sum(0)
    return (rise_maps * coverage.numpy() / (opts["n_masks"] * p)).astype(np.float32)


def cached_maps(
    store: Store, kind: str, key: Mapping[str, Any], compute: Callable[[], Mapping]
) -> dict[str, np.ndarray]:
    """The arrays of the chapter's cached stage ``kind`` (``saliency_tour-<kind>``)."""
    return store.cached_arrays(f"saliency_tour-{kind}", dict(key), compute)


def grid_maps(
    params: Any, m: Models, idx: np.ndarray, x: torch.Tensor, store: Store
) -> dict[str, dict[str, np.ndarray]]:
    """Maps of every grid method for the tumour class, from the model and from its copy with
    the top ``sanity_top_k`` weight layers re-initialised (cached per method).

    Each tile's map is computed alone and timed: ``seconds``, ``forward`` and ``backward`` per
    tile, on this device and thread count (the chapter's timing, :func:`timing_rows`)."""
    model_key = weights_key(m.net)
    n_layers = len(sanity.weight_layers(m.net))
    if params.sanity_top_k > n_layers:
        raise ValueError(
            f"sanity_top_k={params.sanity_top_k} but {params.model} has {n_layers} weight layers"
        )
    randomised = sanity.randomise_top_layers(m.net, params.sanity_top_k, m.seed).to(x.device)
    out = {}
    for method in tqdm(grid_methods(params), desc=f"maps, seed {m.seed}", leave=False):
        opts = options(params, method)
        key = {
            "model": model_key,
            "method": method,
            "options": opts,
            "tiles": idx.tolist(),
            "top_k": params.sanity_top_k,
            "seed": m.seed,
            "device": str(x.device),
            "threads": torch.get_num_threads(),
        }

        def compute(method: str = method, opts: dict = opts) -> dict[str, np.ndarray]:
            layer, random_layer = target_layer(m.net), target_layer(randomised)
            tiles = [x[i : i + 1] for i in range(len(x))]
            timed = [tx.measure(method, m.net, t, [1], layer, opts) for t in tiles]
            random = [tx.run_method(method, randomised, t, [1], random_layer, opts) for t in tiles]
            return {
                "maps": np.concatenate([t.maps for t in timed]),
                "seconds": np.array([t.seconds for t in timed]),
                "forward": np.array([t.forward for t in timed]),
                "backward": np.array([t.backward for t in timed]),
                "random_maps": np.concatenate(random),
            }

        out[method] = cached_maps(store, "maps", key, compute)
    return out


def timing_rows(maps: Maps) -> pd.DataFrame:
    """Seconds and passes per image of every method, a row per scored tile (``unit``): each
    tile's map was computed alone, one method at a time (:func:`grid_maps`). The first tile's
    call warms the method up and is left out when more tiles were scored."""
    rows = []
    for method, res in maps.items():
        n = len(res["seconds"])
        for unit in range(1 if n > 1 else 0, n):
            rows.append(
                {
                    "method": method,
                    "unit": unit,
                    "seconds": float(res["seconds"][unit]),
                    "forward": float(res["forward"][unit]),
                    "backward": float(res["backward"][unit]),
                }
            )
    return pd.DataFrame(rows, columns=["method", "unit", "seconds", "forward", "backward"])


def with_rise_np(maps: Maps, params: Any) -> dict[str, Mapping[str, np.ndarray]]:
    """``maps`` plus ``rise_np``, RISE with Petsiuk's N·p division, when RISE ran."""
    out = dict(maps)
    if "rise" in maps:
        out["rise_np"] = {k: rise_np_maps(maps["rise"][k], params) for k in ("maps", "random_maps")}
    return out


def tile_scores(params: Any, m: Models, x: torch.Tensor, masks: np.ndarray, maps: Maps):
    """Per tile and method: localisation, sanity, deletion/insertion AUC, noise, sign."""
    images = x.cpu().numpy()
    rows = []
    for method, res in with_rise_np(maps, params).items():
        loc = localisation.score_maps(
            res["maps"],
            masks,
            rule=params.binarise,
            value=params.top_fraction,
            tolerance=params.pointing_tolerance,
        )
        san = sanity.compare_batches(res["maps"], res["random_maps"])
        for i, saliency in enumerate(res["maps"]):
            deletion, insertion = faithfulness.pixel_order_curves(
                lambda batch: predict_proba(m.net, batch, target=1),
                images[i],
                saliency,
                params.faithfulness_steps,
            )
            rows.append(
                {
                    "method": method,
                    "unit": i,
                    "pointing_game": loc["pointing_game"][i],
                    "iou": loc["iou"][i],
                    "positive_share": loc["positive_share"][i],
                    "sanity_spearman": san["spearman"][i],
                    "deletion_auc": faithfulness.curve_auc(deletion),
                    "insertion_auc": faithfulness.curve_auc(insertion),
                    "roughness": roughness(saliency),
                    "variation": variation(saliency),
                    "negative_share": negative_share(saliency),
                    "tumour_share": float(masks[i].mean()),
                    **region_scores(params, saliency, masks[i]),
                }
            )
    return pd.DataFrame(rows)


def control_scores(params: Any, masks: np.ndarray, maps: Maps) -> pd.DataFrame:
    """The claims' null control, per tile and method: the map-only scores of
    :func:`tile_scores` (localisation, noise, sign) of the maps the same method gives for the
    network with its top ``sanity_top_k`` weight layers re-initialised (``random_maps``,
    computed for the sanity check). No forward pass: nothing here is recomputed."""
    rows = []
    for method, res in with_rise_np(maps, params).items():
        random_maps = res["random_maps"]
        loc = localisation.score_maps(
            random_maps,
            masks,
            rule=params.binarise,
            value=params.top_fraction,
            tolerance=params.pointing_tolerance,
        )
        for i, saliency in enumerate(random_maps):
            rows.append(
                {
                    "method": method,
                    "unit": i,
                    "pointing_game": loc["pointing_game"][i],
                    "iou": loc["iou"][i],
                    "roughness": roughness(saliency),
                    "negative_share": negative_share(saliency),
                    **region_scores(params, saliency, masks[i]),
                }
            )
    return pd.DataFrame(rows)


def completeness(params: Any, m: Models, x: torch.Tensor, maps: Maps) -> pd.DataFrame:
    """Per tile: |sum of the map − what it should sum to| / |that|, for the methods with a
    summation property (IG, Input × gradient, DeepLIFT: f(x) − f(0); LRP: the logit f(x))."""
    with torch.no_grad():
        logit = m.net(x)[:, 1].cpu().numpy()
        delta = logit - m.net(torch.zeros_like(x))[:, 1].cpu().numpy()
    sums = {
        k: maps[k]["maps"].sum(axis=(1, 2))
        for k in ("integrated_gradients", "input_x_gradient", "deeplift", "lrp")
        if k in maps
    }
    if "integrated_gradients" in maps:
        steps = 4 * params.ig_steps
        sums[f"integrated_gradients ×4 steps ({steps})"] = explain(
            "integrated_gradients", m.net, x, 1, n_steps=steps
        ).sum(axis=(1, 2))
    rows = []
    for method, total in sums.items():
        ref = logit if method == "lrp" else delta
        gap = np.abs(total - ref) / np.clip(np.abs(ref), 1e-6, None)
        rows += [{"method": method, "unit": i, "relative_gap": float(g)} for i, g in enumerate(gap)]
    return pd.DataFrame(rows)


def implementation_invariance(
    params: Any, m: Models, idx: np.ndarray, x: torch.Tensor, maps: Maps, store: Store
) -> pd.DataFrame:
    """Per scored tile: how far DeepLIFT's map moves when the network is replaced by its
    functionally identical twin (:func:`xaistudy.evaluate.axioms.implementation_twin`), and
    Integrated Gradients' map (implementation invariant: the control), as the relative L1
    distance ``‖a − b‖₁ / ‖a‖₁`` (:func:`~xaistudy.evaluate.axioms.relative_l1`). Same
    options and black baseline as the grid; the model's own maps are the grid's (cached), only
    the twin's are computed."""
    methods = axioms.TWIN_METHODS
    opts = {k: options(params, k) for k in methods}
    key = {
        "model": weights_key(m.net),
        "options": opts,
        "tiles": idx.tolist(),
        "coupling": TWIN_COUPLING,
        "seed": m.seed,
    }
    return store.cached_table(
        "saliency_tour-implementation",
        key,
        lambda: axioms.implementation_invariance(
            m.net,
            x,
            [1] * len(x),
            methods,
            options=opts,
            reference={k: maps[k]["maps"] for k in methods if k in maps},
            coupling=TWIN_COUPLING,
        ),
    )
