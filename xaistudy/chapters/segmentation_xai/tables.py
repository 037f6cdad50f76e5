"""The display tables of the ``segmentation_xai`` page, computed from the study's rows.

The page modules import only light libraries at module level (the chapter package imports them
when it is imported); the study and the explanation library are imported where they are used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaistudy.chapters.segmentation_xai.paper import PAPER, paper_table1
from xaistudy.stats.intervals import mean_ci


def quality_table(res) -> pd.DataFrame:
    """Pixel Dice of each annotated class per seed (and the U-Net's final validation IoU)."""
    return pd.concat([r.quality for r in res.seeds], ignore_index=True)


def table1(res) -> pd.DataFrame:
    """Table 1 per layer: mean and 95 % t-interval of Dice Explained and Saliency Ratio over
    tiles and seeds, empty maps, and the median warm seconds per image."""
    out = []
    keys = ["layer", "method", "threshold", "n_masks"]
    for key, g in res.scores.fillna({"n_masks": -1}).groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row["n_masks"] = None if row["n_masks"] == -1 else int(row["n_masks"])
        row["tiles"] = len(g)
        for col in ("dice_explained", "saliency_ratio"):
            row[col], row[f"{col}_low"], row[f"{col}_high"] = mean_ci(g[col])
        row["empty_maps"] = int(g["empty"].sum())
        row["median_seconds"] = float(g["seconds"].median())
        out.append(row)
    table = pd.DataFrame(out)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


def diagnostics_table(res) -> pd.DataFrame:
    """Per layer and method: empty maps, border maps (≥ 50 % of the mass in the border band),
    mean border share beside the band's area share, background maps."""
    from xaistudy.explain.segmentation import border_band

    d = res.diagnostics
    size = res.params.tile_size
    band = float(border_band((size, size), res.params.border_px).mean())
    table = d.groupby(["layer", "method"], sort=False).agg(
        maps=("empty", "size"),
        empty_maps=("empty", "sum"),
        border_maps=("border_map", "sum"),
        mean_border_share=("border_share", "mean"),
        background_maps=("background_map", "sum"),
        mean_inside_prediction=("inside_share", "mean"),
        prediction_area_share=("prediction_share", "mean"),
    ).reset_index()
    table.insert(5, "border_band_area_share", band)
    return table


def timing_table(res) -> pd.DataFrame:
    """Median warm seconds per image and the cost per forward pass, beside the survey's."""
    from xaistudy.explain.segmentation import SEG_METHODS, ablated_channels
    from xaistudy.studies.segmentation_xai import forward_passes

    paper = paper_table1()
    names = {SEG_METHODS[m].label: m for m in SEG_METHODS}
    rows = []
    for (layer, method), g in res.scores.groupby(["layer", "method"], sort=False):
        name = names[method]
        for n, h in g.groupby(g["n_masks"].fillna(0).astype(int)):
            sec = float(h.drop_duplicates(["seed", "unit"])["seconds"].median())
            ablated = ablated_channels(res.channels.get(layer, 0), res.params.ablation_ratio)
            f = forward_passes(name, ablated, n)
            p = paper[(paper["method"] == method) & (paper["n_masks"].fillna(0) == n)]
            p_sec = float(p["seconds"].iloc[0]) if len(p) else np.nan
            p_f = forward_passes(name, int(PAPER.number("bottleneck_channels")), n)
            rows.append({"layer": layer, "method": method, "n_masks": n or None,
                         "median_seconds": sec, "forwards": f,
                         "ms_per_forward": 1000 * sec / f, "survey_seconds": p_sec,
                         "survey_forwards": p_f,
                         "survey_ms_per_forward": 1000 * p_sec / p_f if len(p) else np.nan})
    table = pd.DataFrame(rows)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


def paper_vs_book(res) -> pd.DataFrame:
    """The survey's Table 1 rows beside this run's means at each layer (RISE: input)."""
    from xaistudy.explain.segmentation import SEG_METHODS

    paper = paper_table1().rename(columns={
        "dice_explained": "dice_explained_paper", "saliency_ratio": "saliency_ratio_paper",
        "seconds": "seconds_paper"})
    book = table1(res)[["layer", "method", "threshold", "n_masks", "dice_explained",
                        "saliency_ratio", "median_seconds"]].rename(columns={
        "dice_explained": "dice_explained_book", "saliency_ratio": "saliency_ratio_book",
        "median_seconds": "seconds_book"})
    side = paper.merge(book, on=["method", "threshold", "n_masks"], how="outer")
    order = {SEG_METHODS[m].label: i for i, m in enumerate(SEG_METHODS)}
    side = side.sort_values(
        ["method", "threshold", "n_masks", "layer"], key=lambda c: c.map(order) if c.name ==
        "method" else c
    ).reset_index(drop=True)
    return side[["method", "threshold", "n_masks", "layer", "dice_explained_paper",
                 "dice_explained_book", "saliency_ratio_paper", "saliency_ratio_book",
                 "seconds_paper", "seconds_book"]]


def convergence_table(res) -> pd.DataFrame:
    """Mean correlation with the reference map per mask count and estimator."""
    return (res.convergence.groupby(["n_masks", "estimator"])["correlation"]
            .agg(["mean", "min", "count"]).reset_index())


def roi_table(res) -> pd.DataFrame:
    """Mean share of the saliency inside the region-of-interest window per layer and method."""
    size = min(res.params.roi_size, res.params.tile_size)
    t = res.roi.groupby(["layer", "method"], sort=False).agg(
        share_inside=("share_inside", "mean"), tiles=("share_inside", "size"),
        empty_maps=("empty", "sum"),
    )
    t = t.reset_index()
    t["window_area_share"] = size**2 / res.params.tile_size**2
    return t


def all_tables(res) -> dict[str, pd.DataFrame]:
    """Every table of the page by its file name (``tables/<name>.csv``), in page order."""
    return {
        "segmenter_quality": quality_table(res),
        "map_checks": diagnostics_table(res),
        "rise_convergence": convergence_table(res),
        "table1": table1(res),
        "timing": timing_table(res),
        "batching": res.batching,
        "roi_locality": roi_table(res),
        "paper_settings": PAPER.settings_table(res.params),
        "paper_vs_book_table1": paper_vs_book(res),
    }
