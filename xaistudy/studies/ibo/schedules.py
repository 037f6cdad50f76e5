"""Is a cheaper RePaint schedule good enough for IBO? Each schedule (T, j, r) of a grid is
judged against the paper's full schedule on what the chapter reports, with tolerances fixed
before any schedule was measured.

RePaint's cost is linear in its UNet calls per image (:func:`~xaistudy.evaluate.inpaint.
unet_calls_per_image`: 2,410 for the paper's T = 250, j = r = 10; 460 for 100/5/5), and at the
``gpu`` profile's shape those calls are almost all of the chapter's GPU time
(``benchmarks/results/ibo_costs_gpu_h200.json``). Whether fewer calls change the chapter's
numbers is measured, not assumed: one seed's classifier, DDPM and heatmaps (the chapter's own
cached stages), a few tumour tiles, every schedule inpainting the same nested masks with the
same noise seeds (and a second noise replicate for the candidates), then per schedule:

* the deletion AUCs per (tile, method) against the full schedule's (Tables 3-8);
* Table 1's distances to the original (SSIM, feature LPIPS, Mahalanobis OoD score);
* the methods' order by mean AUC (Kendall tau with the full schedule's order) and MARD against
  the IoU ranking (Table 9), next to the full schedule's MARD;
* the inpaintings themselves: SSIM to the full schedule's, beside the SSIM between the
  schedule's own two noise replicates (how far two equally good inpaintings lie apart).

A schedule passes when every criterion of :data:`TOLERANCE` holds; the cheapest that passes is
the one to use. ``benchmarks/repaint_schedules.py`` runs this and writes the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xaistudy.core.store import Store
from xaistudy.evaluate import faithfulness, perceptual
from xaistudy.evaluate.inpaint import check_schedule, unet_calls_per_image
from xaistudy.stats import ranking
from xaistudy.studies.ibo.occlude import (
    measure_occluded,
    noise_seeds,
    occlude_all,
    strategy_options,
)
from xaistudy.studies.ibo.pipeline import explain_seed, prepare_seed, train_ddpm

Schedule = tuple[int, int, int]

#: the paper's RePaint schedule (T, j, r): the reference every other schedule is judged against
FULL: Schedule = (250, 10, 10)
#: the schedules judged, most expensive first (the ``quick`` profile's own, 10/5/2, last)
GRID: tuple[Schedule, ...] = ((250, 10, 5), (100, 5, 5), (50, 5, 5), (25, 5, 5), (10, 5, 2))

#: criterion -> (bound, what it bounds); fixed before any schedule was measured
TOLERANCE: dict[str, tuple[float, str]] = {
    "auc_abs_diff": (0.05, "mean |AUC - full AUC| over (tile, method), at most"),
    "ssim_diff": (0.02, "|mean SSIM to the original - the full schedule's|, at most"),
    "feature_lpips_rel_diff": (0.10, "relative difference of mean feature LPIPS, at most"),
    "mahalanobis_rel_diff": (0.10, "relative difference of mean OoD score, at most"),
    "kendall_tau": (0.6, "tau of the methods' mean-AUC order with the full schedule's, at least"),
    "mard_diff": (0.5, "|MARD - the full schedule's MARD|, at most"),
    "ssim_to_full_gap": (
        0.05,
        "SSIM between the schedule's two replicates minus SSIM to the full schedule, at most",
    ),
}
#: the criteria that are lower bounds (the rest are upper bounds)
AT_LEAST = frozenset({"kendall_tau"})


def label(schedule: Schedule) -> str:
    return "/".join(str(v) for v in schedule)


def parse(text: str) -> Schedule:
    """``"100/5/5"`` -> (100, 5, 5), or a one-line ``ValueError``."""
    parts = text.split("/")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"a schedule is T/j/r with three positive integers, got {text!r}")
    t, j, r = (int(p) for p in parts)
    return t, j, r


def inpaint_schedule(
    params: Any,
    seed_model: Any,
    explained: Any,
    dm: Any,
    ddpm_key: dict,
    schedule: Schedule,
    replicate: int,
    store: Store,
) -> dict[str, np.ndarray]:
    """IBO with ``schedule`` on the occluded tiles of one seed (cached): the occluded images
    (S, M, n_masks, 3, H, W), :func:`~.occlude.measure_occluded`'s arrays, the deletion AUCs
    (S, M), the RePaint seconds (wall clock) and UNet calls per image."""
    p, sm, ex = params, seed_model, explained
    steps, jump, resample = schedule
    check_schedule(steps, jump, resample, p.train_timesteps)
    mean = sm.splits["train"].images.channel_mean()
    key_opts, run_opts = strategy_options(p, mean, dm, ddpm_key)["ibo"]
    change = {"num_inference_steps": steps, "jump_length": jump, "jump_n_sample": resample}
    run_opts = {**run_opts, **change}
    key_opts = {**key_opts, "repaint_steps": steps, "jump_length": jump, "resamplings": resample}
    ids, n_masks = ex.sample_ids, p.kmeans_k - 1

    def compute() -> dict[str, np.ndarray]:
        x = sm.splits["test"].images[ids]
        seeds = noise_seeds(sm.seed, ids, ex.levels.shape[1], replicate)
        start = time.perf_counter()
        occluded = occlude_all("ibo", x, ex.levels, seeds, n_masks, **run_opts)
        seconds = time.perf_counter() - start
        measured = measure_occluded(sm.model, x, occluded, sm.ood, p.alexnet_weights)
        xs = faithfulness.occluded_fractions(ex.masks, relative=p.auc_x == "relative")
        return {
            **{k: v for k, v in measured.items() if k != "examples"},
            "occluded": occluded.numpy(),
            "auc": faithfulness.trapezoid_auc(xs, measured["prob"]),
            "seconds": np.array(seconds),
            "unet_calls_per_image": np.array(unet_calls_per_image(*schedule)),
        }

    key = dict(
        sm.keys["heatmaps"],
        samples=ids.tolist(),
        kmeans_k=p.kmeans_k,
        options=key_opts,
        replicate=replicate,
        noise="common",
    )
    return store.cached_arrays("ibo-schedule-check", key, compute)


def _mard(explained: Any, auc: np.ndarray) -> float:
    iou_ranks = ranking.rank(np.nanmean(explained.ious, axis=0), True, method="average")
    auc_ranks = ranking.rank(auc.mean(axis=0), False, method="average")
    return ranking.mard(iou_ranks, auc_ranks)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else float("inf") if a else 0.0


def _masked_ssim(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    flat = (-1, *a.shape[-3:])
    return float(
        perceptual.ssim(torch.from_numpy(a.reshape(flat)), torch.from_numpy(b.reshape(flat))).mean()
    )


def compare(
    runs: dict[Schedule, list[dict[str, np.ndarray]]], explained: Any, full: Schedule = FULL
) -> pd.DataFrame:
    """One row per schedule (the full one first): cost, the criteria of :data:`TOLERANCE`
    against ``runs[full]`` (replicate 0 of each schedule against the full schedule's), and
    ``passes`` (every criterion within its bound; the full schedule passes by definition)."""
    ref = runs[full][0]
    rows = []
    for schedule, reps in runs.items():
        run = reps[0]
        row: dict[str, Any] = {
            "schedule": label(schedule),
            "T": schedule[0],
            "j": schedule[1],
            "r": schedule[2],
            "unet_calls_per_image": int(run["unet_calls_per_image"]),
            "seconds": float(run["seconds"]),
            "auc_mean": float(run["auc"].mean()),
            "ssim_mean": float(run["ssim"].mean()),
            "feature_lpips_mean": float(run["feature_lpips"].mean()),
            "mahalanobis_mean": float(run["mahalanobis"].mean()),
            "mard": _mard(explained, run["auc"]),
            "auc_abs_diff": float(np.abs(run["auc"] - ref["auc"]).mean()),
            "ssim_diff": abs(float(run["ssim"].mean() - ref["ssim"].mean())),
            "feature_lpips_rel_diff": _rel(
                float(run["feature_lpips"].mean()), float(ref["feature_lpips"].mean())
            ),
            "mahalanobis_rel_diff": _rel(
                float(run["mahalanobis"].mean()), float(ref["mahalanobis"].mean())
            ),
            "kendall_tau": ranking.kendall_tau(run["auc"].mean(axis=0), ref["auc"].mean(axis=0)),
        }
        row["mard_diff"] = abs(row["mard"] - _mard(explained, ref["auc"]))
        row["ssim_to_full"] = _masked_ssim(run["occluded"], ref["occluded"])
        row["ssim_replicates"] = (
            _masked_ssim(reps[0]["occluded"], reps[1]["occluded"]) if len(reps) > 1 else np.nan
        )
        row["ssim_to_full_gap"] = row["ssim_replicates"] - row["ssim_to_full"]
        if schedule == full:
            row["passes"] = True
        else:
            row["passes"] = all(within(name, row[name]) for name in TOLERANCE)
        rows.append(row)
    return pd.DataFrame(rows)


def within(name: str, value: float) -> bool:
    """Whether ``value`` of criterion ``name`` is inside its :data:`TOLERANCE` (NaN: not)."""
    bound = TOLERANCE[name][0]
    if not np.isfinite(value):
        return False
    return value >= bound if name in AT_LEAST else value <= bound


def cheapest_passing(table: pd.DataFrame) -> str:
    """The label of the passing schedule with the fewest UNet calls per image."""
    ok = table[table["passes"].astype(bool)]
    return str(ok.sort_values("unet_calls_per_image").iloc[0]["schedule"])


def run_grid(
    params: Any,
    *,
    schedules: Sequence[Schedule] = GRID,
    full: Schedule = FULL,
    methods: Sequence[str] = ("gradcam", "eigencam", "fullgrad"),
    n_tiles: int = 3,
    replicates: int = 2,
    store: Store | None = None,
) -> tuple[dict[Schedule, list[dict[str, np.ndarray]]], Any]:
    """Every schedule's inpaintings (:func:`inpaint_schedule`) on ``params``' first seed (its
    classifier, DDPM and heatmaps are the chapter's cached stages) with ``methods`` on
    ``n_tiles`` tumour tiles: (runs per schedule, the full one first, one dict per noise
    replicate; the seed's heatmaps and IoUs). The full schedule runs one replicate, the
    others ``replicates``."""
    for schedule in (full, *schedules):
        try:
            check_schedule(*schedule, params.train_timesteps)
        except ValueError as err:
            raise ValueError(f"schedule {label(schedule)}: {err}") from None
    if replicates < 1 or n_tiles < 1:
        raise ValueError("replicates and n_tiles must be >= 1")
    p = params.model_copy(update={"methods": ",".join(methods), "n_samples": n_tiles})
    store = store or Store()
    seed = p.seeds[0]
    sm = prepare_seed(p, seed, store)
    dm, key = train_ddpm(p, seed, sm.splits, store)
    ex = explain_seed(p, sm, store)
    runs = {}
    for schedule in (full, *[s for s in schedules if s != full]):
        reps = 1 if schedule == full else replicates
        runs[schedule] = [
            inpaint_schedule(p, sm, ex, dm, key, schedule, r, store) for r in range(reps)
        ]
    return runs, ex


def check_schedules(params: Any, **options: Any) -> tuple[pd.DataFrame, str]:
    """:func:`run_grid` (same options), then (:func:`compare`'s table, the cheapest passing
    schedule)."""
    runs, ex = run_grid(params, **options)
    table = compare(runs, ex, options.get("full", FULL))
    return table, cheapest_passing(table)
