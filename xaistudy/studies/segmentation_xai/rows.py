"""The tidy row tables of the study, one row per measured unit (a tile of a seed).

:func:`score_seed` scores every map with Dice Explained and the Saliency Ratio
(:func:`xaistudy.evaluate.segmentation_metrics.metric_steps`), :func:`diagnose_seed` checks
maps for emptiness, border and background mass, :func:`convergence_seed` compares RISE maps with
their reference, :func:`roi_seed` measures region-of-interest locality and :func:`batching` times
RISE and Seg-Ablation-CAM at several batch sizes. :func:`per_unit_rows` gives the rows a claim
is judged from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xaistudy.evaluate import controls
from xaistudy.evaluate.segmentation_metrics import metric_steps, share_inside
from xaistudy.explain.rise import rise_masks
from xaistudy.explain.segmentation import (
    SEG_METHODS,
    ablated_channels,
    explain_segmentation,
    map_diagnostics,
    rise_curve,
)
from xaistudy.studies.segmentation_xai.seed import (
    RISE_LAYER,
    SeedResult,
    cam_options,
    forward_passes,
    largest_rise,
    layer_channels,
    warm_seconds,
)

#: a map is a border map when at least this share of its mass is in the border band
BORDER_LIMIT = 0.5


def label(name: str) -> str:
    """The table label of a map name (``rise-<n>`` is RISE)."""
    return SEG_METHODS["rise" if name.startswith("rise") else name].label


def score_seed(params: Any, res: SeedResult) -> pd.DataFrame:
    """One row per (layer, method, threshold, mask count, tile): Dice Explained, Saliency
    Ratio (empty maps scored as selecting every pixel), emptiness and warm seconds."""
    rows = []
    images = res.tiles["images"]
    for (layer, name), sal in res.maps.items():
        if name == "reference":
            continue
        rise = name.startswith("rise")
        thresholds = params.rise_thresholds if rise else params.cam_thresholds
        for thr in thresholds:
            steps = metric_steps(res.model, images[: len(sal)], params.target_class, sal, thr,
                                 params.fill)
            rows += _metric_rows(res, layer, name, thr, steps,
                                 seconds=res.seconds[(layer, name)])
    return pd.DataFrame(rows)


def _metric_rows(res: SeedResult, layer: str, name: str, thr: float, steps: dict,
                 **per_tile: np.ndarray) -> list[dict[str, Any]]:
    """One row per tile of map ``name`` at ``layer`` and threshold ``thr`` from
    :func:`metric_steps`' ``steps``, with the per-tile arrays ``per_tile`` as extra columns."""
    rise = name.startswith("rise")
    return [
        {
            "seed": res.seed,
            "unit": int(res.tiles["index"][i]),
            "layer": layer,
            "method": label(name),
            "threshold": thr,
            "n_masks": int(name.split("-")[1]) if rise else None,
            "dice_explained": float(steps["dice_explained"][i]),
            "saliency_ratio": float(steps["saliency_ratio"][i]),
            "empty": bool(steps["empty"][i]),
            **{k: float(v[i]) for k, v in per_tile.items()},
        }
        for i in range(len(steps["empty"]))
    ]


#: the Dice and Saliency-Ratio claims' null control (:mod:`xaistudy.evaluate.controls`)
CONTROL = "coverage-matched maps"


def control_seed(params: Any, res: SeedResult) -> pd.DataFrame:
    """The claims' null control, rows as :func:`score_seed`'s for the maps the claims judge
    (every CAM at every layer at its lowest threshold; RISE at every mask count at its lowest
    threshold, where Table 1's claims read it, and at its highest, where the mask-count trend
    is read, :func:`control_thresholds`): each map's values moved to random smooth places
    (blobs a sixteenth of the tile wide), so every map keeps its coverage, its area above any
    threshold, but not where it is (:func:`xaistudy.evaluate.controls.coverage_matched`);
    with the map checks of :func:`diagnose_seed` (``inside_share``, ``prediction_share``) of
    the shuffled maps."""
    rows = []
    images = res.tiles["images"]
    smooth = images.shape[-1] / 16
    for k, ((layer, name), sal) in enumerate(res.maps.items()):
        if name == "reference":
            continue
        shuffled = controls.coverage_matched(sal, (res.seed, k), smooth=smooth)
        for thr in control_thresholds(params, rise=name.startswith("rise")):
            steps = metric_steps(res.model, images[: len(sal)], params.target_class, shuffled,
                                 thr, params.fill)
            d = map_diagnostics(shuffled, steps["prediction"], params.border_px, BORDER_LIMIT)
            rows += _metric_rows(res, layer, name, thr, steps, inside_share=d["inside_share"],
                                 prediction_share=d["prediction_share"])
    return pd.DataFrame(rows)


def control_thresholds(params: Any, rise: bool) -> list[float]:
    """The thresholds the null control scores a map at: a CAM's lowest; RISE's lowest (Table
    1's claims) and highest (the mask-count trend), once when they are the same."""
    if not rise:
        return [params.cam_thresholds[0]]
    return sorted({params.rise_thresholds[0], params.rise_thresholds[-1]})


def diagnose_seed(params: Any, res: SeedResult) -> pd.DataFrame:
    """Per (layer, method, tile): empty, border-band share, border map, background map (RISE
    at its largest mask count)."""
    rows = []
    for (layer, name), sal in res.maps.items():
        if name == "reference" or (name.startswith("rise") and name != largest_rise(params)):
            continue
        pred = res.model.predict(res.tiles["images"][: len(sal)], params.target_class)
        d = map_diagnostics(sal, pred.cpu().numpy(), params.border_px, BORDER_LIMIT)
        for i in range(len(sal)):
            rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]), "layer": layer,
                         "method": label(name), **{k: v[i] for k, v in d.items()}})
    return pd.DataFrame(rows)


def convergence_seed(params: Any, res: SeedResult) -> pd.DataFrame:
    """Per tile and mask count: correlation of the coverage and the N·p RISE maps with an
    independent reference map of ``rise_reference`` masks."""
    ref = res.maps[(RISE_LAYER, "reference")]
    rows = []
    for n in params.rise_masks:
        for i in range(len(ref)):
            for estimator, sal in (("coverage", res.maps[(RISE_LAYER, f"rise-{n}")][i]),
                                   ("N·p (Petsiuk)", res.rise_petsiuk[n][i])):
                r = np.corrcoef(sal.ravel(), ref[i].ravel())[0, 1]
                rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]),
                             "n_masks": n, "estimator": estimator, "correlation": float(r)})
    return pd.DataFrame(rows)


def roi_seed(params: Any, res: SeedResult) -> pd.DataFrame:
    """Per (layer, method, tile): share of the saliency inside the region-of-interest window;
    an empty map locates nothing and scores 0 (``empty`` marks it)."""
    rows = []
    for (layer, method), sal in res.roi_maps.items():
        raw = share_inside(sal, res.roi_windows)
        shares = np.nan_to_num(raw, nan=0.0)
        for i, s in enumerate(shares):
            rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]), "layer": layer,
                         "method": SEG_METHODS[method].label, "share_inside": float(s),
                         "empty": bool(np.isnan(raw[i]))})
    return pd.DataFrame(rows)


def batching(params: Any, res: SeedResult) -> pd.DataFrame:
    """Warm seconds per image of RISE (the smallest mask count) at each batch size and of
    Seg-Ablation-CAM at batch 1 and ``ablation_batch`` (first layer), median of repeats."""
    image = res.tiles["images"][0]
    pred = res.model.predict(image[None], params.target_class)[0].cpu().numpy()
    n = min(params.rise_masks)
    masks = rise_masks(n, tuple(image.shape[-2:]), params.rise_cells, params.rise_p, 0)
    masks = masks.to(image.device)
    rows = []
    for b in params.timing_batches:
        sec = warm_seconds(lambda b=b: rise_curve(res.model, image, params.target_class, pred,
                                                  masks, [n], b, params.fill, params.rise_p),
                           params.timing_repeats)
        rows.append({"method": "RISE", "layer": RISE_LAYER, "batch": b, "forwards": n,
                     "seconds_per_image": sec, "ms_per_forward": 1000 * sec / n})
    layer = params.layers[0]
    channels, _ = layer_channels(res.model, layer, image[None])
    for b in sorted({1, params.ablation_batch}):
        opts = {**cam_options(params, layer), "ablation_batch": b}
        sec = warm_seconds(lambda o=opts: explain_segmentation(
            "seg-ablation-cam", res.model, image[None], params.target_class, **o),
            params.timing_repeats)
        f = forward_passes("seg-ablation-cam", ablated_channels(channels, params.ablation_ratio))
        rows.append({"method": "Seg-Ablation-CAM", "layer": layer, "batch": b, "forwards": f,
                     "seconds_per_image": sec, "ms_per_forward": 1000 * sec / f})
    return pd.DataFrame(rows)


def background_rows(table: pd.DataFrame, layer: str, method: str = "Seg-Eigen-CAM") -> pd.DataFrame:
    """Per tile at ``layer``: how much less of ``method``'s mass lies inside the prediction
    than a uniform map would put there (``prediction_share - inside_share``, > 0: the map
    marks the background), minus the median of the same over the other CAMs. ``table``: the
    diagnostics or the control's rows (CAMs only; empty maps have no share and drop out)."""
    t = table[(table["layer"] == layer)]
    t = t.assign(value=t["prediction_share"] - t["inside_share"])
    wide = t.pivot_table(index=["seed", "unit"], columns="method", values="value")
    if method not in wide or wide.shape[1] < 2:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    others = wide.drop(columns=[method]).median(axis=1)
    return (wide[method] - others).dropna().rename("value").reset_index()


def rise_count_rows(table: pd.DataFrame, params: Any, peak: int, others: list[int]) -> pd.DataFrame:
    """Per tile and other mask count ``n`` (``code`` = its position in ``others``): RISE's Dice
    Explained at ``peak`` masks minus at ``n`` masks, at the lowest RISE threshold. ``table``:
    the scores or the control's rows."""
    t = table[(table["layer"] == RISE_LAYER) & (table["threshold"] == params.rise_thresholds[0])]
    wide = t.pivot_table(index=["seed", "unit"], columns="n_masks", values="dice_explained")
    if peak not in wide or not all(n in wide for n in others):
        return pd.DataFrame(columns=["seed", "unit", "code", "value"])
    parts = [
        (wide[peak] - wide[n]).rename("value").reset_index().assign(code=k)
        for k, n in enumerate(others)
    ]
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def rise_trend_rows(table: pd.DataFrame, params: Any, column: str) -> pd.DataFrame:
    """Per tile and mask count (``method``: the count as text, ``value``: ``column``): RISE's
    rows at its highest threshold, where the mask-count trend is read. ``table``: the scores
    or the control's rows."""
    t = table[(table["layer"] == RISE_LAYER) & (table["threshold"] == params.rise_thresholds[-1])]
    t = t.assign(method=t["n_masks"].astype(int).astype(str), value=t[column])
    return t[["seed", "unit", "method", "value"]].reset_index(drop=True)


def per_unit_rows(
    result: Any, layer: str, column: str, sign: float = 1.0, *, control: bool = False
) -> pd.DataFrame:
    """Rows (seed, unit, method, value = sign * ``column``) of the CAMs at ``layer`` at their
    lowest threshold, and of RISE at its lowest threshold and largest mask count (its rows join
    every layer); ``control``: the same rows of the null control (:func:`control_seed`)."""
    p, s = result.params, (result.controls if control else result.scores)
    cams = s[(s["layer"] == layer) & (s["threshold"] == p.cam_thresholds[0])]
    rise = s[(s["layer"] == RISE_LAYER) & (s["threshold"] == p.rise_thresholds[0])
             & (s["n_masks"] == max(p.rise_masks))]
    rows = pd.concat([cams, rise], ignore_index=True)
    return rows.assign(value=sign * rows[column])[["seed", "unit", "method", "value"]]
