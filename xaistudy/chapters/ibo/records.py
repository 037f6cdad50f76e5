"""The ``ibo`` chapter's records beside the measurements: the DDPM gate's verdict table and
its sentence, the stored benchmark results, the paper's numbers beside this run's, and the
sentence naming the run's data."""

from __future__ import annotations

from typing import Any

import pandas as pd

from xaistudy.chapters.ibo.paper import PAPER
from xaistudy.evaluate import occlusion
from xaistudy.studies import ibo as study


def data_text(st: study.Result) -> str:
    """One sentence naming the data of this run."""
    from xaistudy.data.datasets import get_spec, resolve_data_root

    p, sp = st.params, st.runs[0].splits
    if not get_spec(p.dataset).needs_root:
        return (
            f"**Data of this run: `{p.dataset}`**, the book's synthetic H&E tiles "
            f"({p.tile_size} px), not CAMELYON16; seeds {', '.join(map(str, p.seeds))}."
        )
    opts = ", ".join(f"{k}={v!r}" for k, v in p.data_options.items()) or "the loader's defaults"
    return (
        f"**Data of this run: `{p.dataset}`** read from "
        f"`{resolve_data_root(p.dataset, p.data_root)}` ({opts}): {p.tile_size}-pixel "
        f"patches from {len(sp['train'].slides)} training, {len(sp['val'].slides)} "
        f"validation and {len(sp['test'].slides)} test slides (no slide in two splits)."
    )


def gate_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The DDPM gate: do the samples pass as normal tissue? Per seed: mean P(tumour) and OoD
    score of samples vs held-out tiles; ``passes`` (the book's criterion): the samples' mean
    P(tumour) is within 0.1 of the normal tiles' and their median OoD score is below the 95th
    percentile of the normal tiles' scores. The DDPM's training tiles (when scored) get the
    same row as a control: where they fail too, the gate measures a difference between the
    data the DDPM learned and the seed's tiles, not the DDPM."""
    out = []
    for seed, g in rows.groupby("seed"):
        normal = g[g.source == "held-out normal tile"]
        for source, s in g.groupby("source", sort=False):
            out.append(
                {
                    "seed": seed,
                    "source": source,
                    "n": len(s),
                    "p_tumour_mean": s.p_tumour.mean(),
                    "ood_mean": s.ood.mean(),
                    "ood_median": s.ood.median(),
                }
            )
        for source, verdict in GATE_VERDICTS.items():
            scored = g[g.source == source]
            if len(scored):
                out.append({"seed": seed, "source": verdict, **_gate_verdict(scored, normal)})
    table = pd.DataFrame(out)
    return table.astype({"n": "Int64", "passes": "boolean"})


def gate_text(table: pd.DataFrame) -> str:
    """What :func:`gate_table` shows, in one sentence per verdict row (counted from it)."""
    parts = []
    for source, verdict in GATE_VERDICTS.items():
        rows = table[table.source == verdict]
        if not len(rows):
            continue
        passed = rows.loc[rows.passes.astype(bool), "seed"].tolist()
        failed = rows.loc[~rows.passes.astype(bool), "seed"].tolist()
        what = {
            "DDPM sample": "The DDPM's samples",
            "DDPM training tile": "Its training tiles (control)",
            "flat tile": "Flat tiles of the samples' mean colours (control: no tissue)",
        }[source]
        text = f"{what} pass as normal for {len(passed)} of {len(rows)} seeds' classifiers"
        if failed:
            text += f" (not for seed{'s' * (len(failed) > 1)} {', '.join(map(str, failed))})"
        parts.append(text + ".")
    return " ".join(parts)


#: the gate's verdict rows: the DDPM's samples, and its training tiles as the control
GATE_VERDICTS = {
    "DDPM sample": "gate: samples pass as normal",
    "DDPM training tile": "control: training tiles pass as normal",
    "flat tile": "control: flat tiles (no tissue) pass as normal",
}


def _gate_verdict(scored: pd.DataFrame, normal: pd.DataFrame) -> dict[str, Any]:
    gap = scored.p_tumour.mean() - normal.p_tumour.mean()
    ood = scored.ood.median() - normal.ood.quantile(0.95)
    return {
        "p_tumour_gap": gap,
        "ood_median_minus_normal_q95": ood,
        "passes": bool(abs(gap) <= 0.1 and ood <= 0),
    }


def benchmark_table() -> pd.DataFrame:
    """The stored results of ``benchmarks/repaint_batched.py`` with their machines."""
    import json

    from xaistudy.core.store import repo_root

    rows = []
    for path in sorted((repo_root() / "benchmarks" / "results").glob("repaint_*.json")):
        r = json.loads(path.read_text())
        if "batched" not in r:  # another RePaint benchmark (e.g. the schedule check)
            continue
        rows.append(
            {
                "file": path.name,
                "device": r["machine"]["device"],
                "machine": r["machine"].get("gpu") or r["machine"]["processor"],
                "cpu_threads": r["machine"]["torch_threads"],
                "batch": r["batch"],
                "image_size": r["image_size"],
                "schedule": "T={num_inference_steps}, j={jump_length}, r={jump_n_sample}".format(
                    **r["schedule"]
                ),
                "batched_images_per_s": r["batched"]["images_per_second"],
                "pipeline_loop_images_per_s": r["per_image_pipeline_loop"]["images_per_second"],
                "speedup": r["speedup_batched_over_loop"],
                "max_pixel_difference": r["max_abs_difference_in_inpainted_pixels"],
            }
        )
    return pd.DataFrame(rows)


def gate_benchmark_table() -> pd.DataFrame:
    """The stored results of ``benchmarks/ddpm_gate.py`` (the gate against training length and
    the DDPM's settings), one row per file and epoch count, with their machines.

    ``x0_clip``: the range the sampler clipped each predicted clean image to. Results stored
    before the sampler kept it in the data's range (:meth:`ddpm.Scaling.bound_noise`) clipped
    a centred model's prediction to [-1, 1], which lets bright pixels overshoot."""
    import json

    from xaistudy.core.store import repo_root

    rows = []
    for path in sorted((repo_root() / "benchmarks" / "results").glob("ddpm_gate_*.json")):
        r = json.loads(path.read_text())
        st, m = r["settings"], r["machine"]
        for run in r["runs"]:
            rows.append(
                {
                    "file": path.name,
                    "machine": m.get("gpu") or f"{m['cpu_count']}-core {m['processor']}",
                    "centred": st.get("ddpm_centre", False),
                    "x0_clip": r.get("x0_clip", "[-1, 1]"),
                    "crop": st.get("ddpm_crop", 0) or st["tile_size"],
                    "snr_gamma": st.get("ddpm_snr_gamma", 0.0),
                    "batch": st["ddpm_batch_size"],
                    "lr": st["ddpm_lr"],
                    "ema": st["ddpm_ema"],
                    "sampling_steps": st["gate_steps"],
                    "epochs": run["ddpm_epochs"],
                    "ddpm_seed": run.get("ddpm_seed", 0),
                    "optimiser_steps": run["optimiser_steps"],
                    "train_s": run["train_seconds"],
                    "p_tumour_samples": run["p_tumour_samples"],
                    "p_tumour_normal": run["p_tumour_normal"],
                    "ood_median_samples": run["ood_median_samples"],
                    "ood_median_normal": run["ood_median_normal"],
                    "passes": run["passes"],
                }
            )
    return pd.DataFrame(rows)


def schedule_table() -> pd.DataFrame:
    """The stored results of ``benchmarks/repaint_schedules.py``: per file and schedule, its
    cost, every criterion of :data:`~xaistudy.studies.ibo.schedules.TOLERANCE` and whether it
    passed (``chosen``: the cheapest that passed, which the ``gpu`` profile uses)."""
    import json

    from xaistudy.core.store import repo_root
    from xaistudy.studies.ibo.schedules import TOLERANCE

    rows = []
    for path in sorted((repo_root() / "benchmarks" / "results").glob("repaint_schedules_*.json")):
        r = json.loads(path.read_text())
        floors = {f["schedule"]: f for f in r.get("replicate_floors", [])}
        for row in r["table"]:
            floor = floors.get(row["schedule"], {})
            rows.append(
                {
                    "file": path.name,
                    "schedule": row["schedule"],
                    "unet_calls_per_image": row["unet_calls_per_image"],
                    "seconds": row["seconds"],
                    **{k: row[k] for k in TOLERANCE},
                    **{f"{k} (noise floor)": floor.get(f"floor_{k}") for k in TOLERANCE
                       if f"floor_{k}" in floor},  # fmt: skip
                    "passes": row["passes"],
                    "chosen": row["schedule"] == r["chosen"],
                    "noise_fails": ", ".join(r.get("criteria_the_noise_fails", [])),
                }
            )
    table = pd.DataFrame(rows)
    pairs = [c for k in TOLERANCE for c in (k, f"{k} (noise floor)") if c in table]
    rest = [c for c in table if c not in pairs and c not in ("passes", "chosen", "noise_fails")]
    return table[[*rest, *pairs, "passes", "chosen", "noise_fails"]] if rows else table


def schedule_text(params: Any, table: pd.DataFrame) -> str:
    """Which RePaint schedule the ``gpu`` profile uses and why, and whether this run's
    schedule passed the check (from :func:`schedule_table`)."""
    from xaistudy.chapters.ibo.params import GPU_SCHEDULE
    from xaistudy.studies.ibo.schedules import FULL, TOLERANCE, label, within

    if table.empty:
        return "No schedule check is stored (benchmarks/repaint_schedules.py writes one)."
    chosen = table[table.chosen]
    files = ", ".join(sorted(set(table.file)))
    if set(chosen.schedule) == {label(FULL)}:
        text = (
            f"No cheaper schedule stayed within every tolerance in {files}, so the `gpu` "
            f"profile keeps the paper's {label(GPU_SCHEDULE)} (T/j/r)."
        )
    else:
        text = (
            f"The `gpu` profile's RePaint schedule is {label(GPU_SCHEDULE)} (T/j/r): the "
            f"cheapest of the grid within every tolerance in {files} (chosen there: "
            f"{', '.join(chosen.schedule)}; the paper's {label(FULL)} is the reference)."
        )
    noise = sorted({c for v in table.noise_fails for c in v.split(", ") if c})
    if noise:
        text += (
            f" On {', '.join(noise)}, two noise replicates of the same schedule already differ "
            "by more than the bound (the noise-floor columns), so the check could not pass any "
            "schedule there: it cannot tell whether a cheaper schedule is good enough on it."
        )
    own = f"{params.repaint_steps}/{params.jump_length}/{params.resamplings}"
    mine = table[table.schedule == own]
    if mine.empty:
        return text + f" This run's schedule, {own}, is not in the check."
    row = mine.iloc[0]
    if row.passes:
        return text + f" This run's schedule, {own}, passed it."
    failed = [k for k in TOLERANCE if not within(k, row[k])]
    return text + f" This run's schedule, {own}, did not pass it ({', '.join(failed)} outside)."


def paper_vs_book(
    st: study.Result, clf: pd.DataFrame, table1: pd.DataFrame, mard: pd.DataFrame
) -> pd.DataFrame:
    """The paper's numbers (from :data:`PAPER`) beside this run's (``clf``: the classifier
    table, ``table1``: Table 1, ``mard``: Table 9), naming data and profile."""
    metric = "lpips_alex" if st.have_alex else "feature_lpips"
    note = f"{st.data_name}, seeds {' '.join(map(str, st.params.seeds))}, profile {st.profile}"
    rows = [
        ("classifier accuracy", PAPER.number("classifier.accuracy"), clf.accuracy.mean()),
        ("classifier F1 (tumour)", PAPER.number("classifier.f1"), clf.f1_tumour.mean()),
    ]
    t1 = table1[table1.metric == metric].set_index("strategy")
    for s in st.strategies:
        for i in range(min(4, st.n_masks)):
            rows.append(
                (
                    f"Table 1 {occlusion.STRATEGIES[s]} Mask_{i + 1} ({metric})",
                    PAPER.number(f"table1.{s}.mask{i + 1}"),
                    t1.loc[s, f"Mask_{i + 1}"],
                )
            )
    for _, r in mard.iterrows():
        rows.append(
            (
                f"Table 9 MARD {occlusion.STRATEGIES[r.strategy]}",
                PAPER.number(f"table9.mard.{r.strategy}"),
                r.mard,
            )
        )
    ibo = mard[mard.strategy == "ibo"]
    if len(ibo):
        rows.append(
            ("rank accuracy, IBO", PAPER.number("rank_accuracy.ibo"), ibo.rank_accuracy.iloc[0])
        )
    others = mard[mard.strategy != "ibo"]
    if len(others):
        rows.append(
            (
                "rank accuracy, best other strategy",
                PAPER.number("rank_accuracy.best_other"),
                others.rank_accuracy.max(),
            )
        )
    table = pd.DataFrame(rows, columns=["quantity", "paper", "this book"])
    table["our data / profile"] = note
    if not st.have_alex:
        table.loc[table.quantity.str.startswith("Table 1"), "our data / profile"] = (
            note + "; no AlexNet weights: a classifier-feature distance, another scale"
        )
    return table
