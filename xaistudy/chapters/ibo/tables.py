"""The ``ibo`` chapter's tables of a study result (Tables 1, 2, 3-9 and what they rest on)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xaistudy.chapters.ibo.paper import PAPER
from xaistudy.evaluate import inpaint, occlusion
from xaistudy.models.classifiers import resolve_device
from xaistudy.stats import ranking
from xaistudy.stats.bootstrap import bootstrap_draws, percentile_interval
from xaistudy.stats.claims import bootstrap_interval
from xaistudy.studies import ibo as study

#: the distances of Table 1 and how the book labels them
METRIC_LABELS = {
    "lpips_alex": "LPIPS (AlexNet)",
    "ssim": "SSIM (substitute; 1 = identical)",
    "feature_lpips": "LPIPS-form distance on the classifier's features (substitute)",
    "mahalanobis": "Mahalanobis OoD score (penultimate features)",
}


def splits_table(st: study.Result) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "seed": run.seed,
                "split": k,
                "tiles": len(v.labels),
                "tumour": int(v.labels.sum()),
                "normal": int((v.labels == 0).sum()),
            }
            for run in st.runs
            for k, v in run.splits.items()
        ]
    )


def classifier_table(st: study.Result) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "seed": r.seed,
                "classifier": st.params.classifier,
                "test_tiles": r.metrics["n"],
                "accuracy": r.metrics["accuracy"],
                "f1_tumour": r.metrics["f1_tumour"],
            }
            for r in st.runs
        ]
    )


def perceptual_table(st: study.Result, dist: pd.DataFrame, gate: pd.DataFrame) -> pd.DataFrame:
    """Table 1: mean distance per strategy, metric and mask (tiles, methods, replicates, seeds),
    with the OoD score of unoccluded held-out tiles as reference rows."""
    table = dist.pivot_table(
        index=["metric", "strategy"], columns="mask", values="value", aggfunc="mean", sort=False
    )
    table.columns = [f"Mask_{c}" for c in table.columns]
    table = table.reset_index()
    for source in ("held-out normal tile", "held-out tumour tile"):
        row = {"metric": "mahalanobis", "strategy": f"reference: {source}"}
        row.update(
            {c: float(gate.loc[gate.source == source, "ood"].mean()) for c in table.columns[2:]}
        )
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return table


def _method_ranks(means: pd.Series, higher_is_better: bool) -> np.ndarray:
    return ranking.rank(means.to_numpy(), higher_is_better=higher_is_better)


def iou_table(st: study.Result, iou: pd.DataFrame) -> pd.DataFrame:
    """Table 2: mean IoU per method over all ground-truth tiles and seeds, its 95 % interval,
    the ground-truth rank, the rank per seed and the rank on the occluded subset only."""
    methods = list(st.methods)
    rows = []
    for method in methods:
        sub = iou[iou.method == method].rename(columns={"iou": "value"})
        est, low, high = bootstrap_interval(sub, n_boot=st.params.n_boot)
        label = study.method_label(method)
        rows.append(
            {"method": method, "label": label, "iou_mean": est, "ci_low": low, "ci_high": high}
        )
    table = pd.DataFrame(rows)
    table["gt_rank"] = _method_ranks(table.iou_mean, True)
    for seed, g in iou.groupby("seed"):
        means = g.groupby("method").iou.mean().reindex(methods)
        table[f"rank seed {seed}"] = _method_ranks(means, True)
    sub = iou[iou.occluded].groupby("method").iou.mean().reindex(methods)
    table["rank on occluded tiles"] = _method_ranks(sub, True)
    return table.sort_values("gt_rank", kind="stable").reset_index(drop=True)


def auc_table(st: study.Result, auc: pd.DataFrame) -> pd.DataFrame:
    """Tables 3-8 as values: mean deletion AUC per strategy and method over seeds, tiles and
    noise replicates, its 95 % interval (the book's bootstrap: seeds, then tiles with their
    replicates) and the method's rank within the strategy (1: lowest AUC, the best)."""
    rows = []
    for strategy in st.strategies:
        for method in st.methods:
            sub = auc[(auc.strategy == strategy) & (auc.method == method)]
            est, low, high = bootstrap_interval(
                sub.rename(columns={"auc": "value"}), n_boot=st.params.n_boot
            )
            rows.append(
                {
                    "strategy": strategy,
                    "method": study.method_label(method),
                    "auc_mean": est,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("strategy", sort=False)["auc_mean"].rank(method="average")
    return table


def rank_grid(st: study.Result, iou: pd.DataFrame, auc: pd.DataFrame) -> pd.DataFrame:
    """Tables 2-8 side by side: each method's rank by IoU and by mean AUC per strategy."""
    methods = list(st.methods)
    grid = pd.DataFrame({"method": [study.method_label(m) for m in methods]})
    grid["IoU (ground truth)"] = _method_ranks(
        iou.groupby("method").iou.mean().reindex(methods), True
    )
    for s in st.strategies:
        means = auc[auc.strategy == s].groupby("method").auc.mean().reindex(methods)
        grid[occlusion.STRATEGIES[s]] = _method_ranks(means, False)
    return grid.sort_values("IoU (ground truth)", kind="stable").reset_index(drop=True)


AGREEMENT_KINDS = ("mard", "rank_accuracy", "kendall_tau")


def mard_table(st: study.Result, rows: pd.DataFrame) -> pd.DataFrame:
    """Table 9 with uncertainty: per strategy MARD, rank accuracy and Kendall tau (all seeds
    pooled) of :func:`xaistudy.studies.ibo.ranking_rows` ``rows``, each with its bootstrap mean
    and 95 % interval over seeds and tiles (the noise replicates of a tile stay together), and
    MARD per seed."""
    n, whats, out = len(st.methods), AGREEMENT_KINDS, []
    stats = [
        study.agreement_statistic(i + 1, n, w) for i in range(len(st.strategies)) for w in whats
    ]
    draws = bootstrap_draws(rows, stats, n_boot=st.params.n_boot, rng_seed=0)
    for i, s in enumerate(st.strategies):
        row: dict[str, Any] = {"strategy": s, "paper_mard": PAPER.numbers.get(f"table9.mard.{s}")}
        for k, what in enumerate(whats):
            column = draws[:, i * len(whats) + k]
            finite = column[np.isfinite(column)]
            low, high = percentile_interval(column)
            row[what] = stats[i * len(whats) + k](rows)
            row[f"{what}_boot_mean"] = float(finite.mean()) if finite.size else np.nan
            row[f"{what}_ci_low"], row[f"{what}_ci_high"] = low, high
        for seed, g in rows.groupby("seed"):
            row[f"mard seed {seed}"] = stats[i * len(whats)](g)
        out.append(row)
    return pd.DataFrame(out)


def replicate_mard(st: study.Result, iou: pd.DataFrame, auc: pd.DataFrame) -> pd.DataFrame:
    """MARD of each strategy from one noise replicate at a time (all seeds pooled): how much
    of Table 9 the inpainting noise alone moves."""
    out = []
    for r in sorted(auc.replicate.unique()):
        rows = study.ranking_rows(iou, auc[auc.replicate == r], st.methods, st.strategies)
        for i, s in enumerate(st.strategies):
            mard = study.agreement_statistic(i + 1, len(st.methods))(rows)
            out.append({"replicate": r, "strategy": s, "mard": mard})
    return (
        pd.DataFrame(out)
        .pivot(index="strategy", columns="replicate", values="mard")
        .add_prefix("replicate ")
        .reindex(list(st.strategies))
        .reset_index()
    )


def signal_table(st: study.Result, auc: pd.DataFrame) -> pd.DataFrame:
    """Which strategies carry signal? Per strategy: mean P(tumour) before and after the last
    mask, the drop with its 95 % interval, and a Friedman test of the methods' AUCs over the
    (seed, tile) blocks. ``carries_signal`` (the book's criterion): the drop's
    interval lies above 0.05 and the Friedman p-value is below 0.05."""
    from scipy.stats import friedmanchisquare

    rows = []
    for s in st.strategies:
        sub = auc[auc.strategy == s]
        drop = sub.assign(value=sub.p_before - sub.p_after)
        est, low, high = bootstrap_interval(drop, n_boot=st.params.n_boot)
        # blocks are tiles (the mean over a tile's noise replicates): replicates are not
        # independent of their tile, and a deterministic strategy's replicates are copies
        wide = sub.pivot_table(index=["seed", "unit"], columns="method", values="auc")
        distinct = wide.T.drop_duplicates().T  # identical heatmaps give identical columns
        try:
            p = (
                friedmanchisquare(*distinct.to_numpy().T).pvalue
                if distinct.shape[1] > 2 and len(distinct) > 1
                else np.nan
            )
        except ValueError:
            p = np.nan
        rows.append(
            {
                "strategy": s,
                "p_tumour_before": sub.p_before.mean(),
                "p_tumour_after_last_mask": sub.p_after.mean(),
                "drop": est,
                "drop_ci_low": low,
                "drop_ci_high": high,
                "auc_spread_between_methods": sub.groupby("method").auc.mean().agg(np.ptp),
                "friedman_p": p,
                "carries_signal": bool(low > 0.05 and np.isfinite(p) and p < 0.05),
            }
        )
    return pd.DataFrame(rows)


def cost_table(st: study.Result) -> pd.DataFrame:
    """IBO's UNet evaluations and time (all seeds and replicates)."""
    p = st.params
    per_image = inpaint.unet_calls_per_image(p.repaint_steps, p.jump_length, p.resamplings)
    ibo = [r.results["ibo"] for r in st.runs if "ibo" in r.results]
    images = sum(len(r.sample_ids) for r in st.runs) * len(st.methods) * p.replicates
    return pd.DataFrame(
        [
            {
                "schedule": f"T={p.repaint_steps}, j={p.jump_length}, r={p.resamplings}",
                "unet_evals_per_image_per_level": per_image,
                "images_per_level": images,
                "levels": st.n_masks,
                "unet_calls_batched": int(sum(r["unet_calls"] for r in ibo)),
                "ibo_seconds (when computed)": float(sum(r["seconds"] for r in ibo)),
                "device": str(resolve_device(p.device)),
                "paper_schedule_evals_per_image (T=250, j=r=10)": inpaint.unet_calls_per_image(
                    250, 10, 10
                ),
            }
        ]
    )


def timings_table(st: study.Result) -> pd.DataFrame:
    """Wall-clock seconds per stage of this run (a cached stage only loads its result)."""
    return pd.DataFrame({"stage": list(st.timings), "seconds": list(st.timings.values())})


def all_tables(st: study.Result) -> dict[str, pd.DataFrame]:
    """Every table of the chapter, by the name it is saved under (``tables/<name>.csv``)."""
    from xaistudy.chapters.ibo import records

    iou, auc, dist, gate = (
        study.iou_rows(st),
        study.auc_rows(st),
        study.distance_rows(st),
        study.gate_rows(st),
    )
    out = {
        "splits": splits_table(st),
        "classifier": classifier_table(st),
        "ddpm_gate": records.gate_table(gate),
        "ddpm_gate_benchmark": records.gate_benchmark_table(),
        "repaint_cost": cost_table(st),
        "repaint_benchmark": records.benchmark_table(),
        "repaint_schedules": records.schedule_table(),
        "lpips": perceptual_table(st, dist, gate),
        "iou_ranking": iou_table(st, iou),
        "auc": auc_table(st, auc),
        "rankings": rank_grid(st, iou, auc),
        "signal": signal_table(st, auc),
        "mard": mard_table(st, study.ranking_rows(iou, auc, st.methods, st.strategies)),
        "mard_replicates": replicate_mard(st, iou, auc),
        "settings": PAPER.settings_table(st.params),
    }
    out["paper_vs_book"] = records.paper_vs_book(st, out["classifier"], out["lpips"], out["mard"])
    out["timings"] = timings_table(st)
    return out
