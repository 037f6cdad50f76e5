"""How long the `ibo` chapter's DDPM must train before its samples pass as normal tissue.

    .venv/bin/python benchmarks/ddpm_gate.py --epochs 40 160 640 \
        --out benchmarks/results/ddpm_gate_<machine>.json
    .venv/bin/python benchmarks/ddpm_gate.py -p ddpm_channels '[32, 64, 128]' -p ddpm_ema 0.999
    .venv/bin/python benchmarks/ddpm_gate.py --epochs 140 --ddpm-seeds 0 1 2

For each epoch count and DDPM training seed (the initial weights, batches, noise and windows;
the data and the classifier stay the first seed's), trains the chapter's DDPM from scratch on
the first seed's normal tiles (the study's own ``train_ddpm``, the profile's settings with
the ``-p`` overrides), draws the gate's samples (``gate_samples``) and scores them exactly as
the chapter's gate does (``gate_scores``, ``gate_table``): mean P(tumour) and median OoD score
of the samples against the held-out normal tiles, with the first seed's classifier. Each
model trains in a fresh temporary cache, so nothing is reused between them. Writes one JSON
object (stdout, and ``--out`` when given): per model the optimiser steps, training and
sampling seconds (wall clock, synchronised on a GPU), the gate's numbers and whether it
passes; and the machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.repaint_batched import machine, sync  # noqa: E402
from xaistudy.chapters.ibo import IboParams  # noqa: E402
from xaistudy.chapters.ibo.records import gate_table  # noqa: E402
from xaistudy.core.params import build_params, parse_param_value  # noqa: E402
from xaistudy.core.store import Store, atomic_write_bytes  # noqa: E402
from xaistudy.models.classifiers import resolve_device  # noqa: E402
from xaistudy.studies import ibo as study  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument(
        "-p", dest="pairs", nargs=2, action="append", default=[], metavar=("KEY", "VALUE")
    )
    ap.add_argument("--epochs", type=int, nargs="+", default=[40, 160, 640])
    ap.add_argument(
        "--ddpm-seeds", type=int, nargs="+", default=[0], help="DDPM training seeds (default 0)"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = IboParams
    overrides = {k: parse_param_value(model, k, v) for k, v in args.pairs}
    base = build_params(model, args.profile, {**overrides, "seeds": [0]})
    dev = resolve_device(base.device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ddpm-gate-") as tmp:
        data_store = Store(Path(tmp) / "data")
        run = study.prepare_seed(base, base.seeds[0], data_store)
        for epochs, ddpm_seed in itertools.product(args.epochs, args.ddpm_seeds):
            values = {**overrides, "seeds": [0], "ddpm_epochs": epochs}
            p = build_params(model, args.profile, values)
            store = Store(Path(tmp) / f"ddpm-{epochs}-{ddpm_seed}")
            t0 = time.perf_counter()
            dm, key = study.train_ddpm(p, ddpm_seed, run.splits, store)
            sync(dev)
            t_train = time.perf_counter() - t0
            t0 = time.perf_counter()
            samples = study.gate_samples(p, dm, key, store)
            sync(dev)
            t_sample = time.perf_counter() - t0
            table = gate_table(study.gate_scores([run], samples))
            verdict = table[table.source == "gate: samples pass as normal"].iloc[0]
            by = table.set_index("source")
            rows.append(
                {
                    "ddpm_epochs": epochs,
                    "ddpm_seed": ddpm_seed,
                    "optimiser_steps": epochs * -(-p.ddpm_tiles // p.ddpm_batch_size),
                    "train_seconds": round(t_train, 2),
                    "sample_seconds": round(t_sample, 2),
                    "final_loss": dm.losses[-1],
                    "p_tumour_samples": float(by.loc["DDPM sample", "p_tumour_mean"]),
                    "p_tumour_normal": float(by.loc["held-out normal tile", "p_tumour_mean"]),
                    "ood_median_samples": float(by.loc["DDPM sample", "ood_median"]),
                    "ood_median_normal": float(by.loc["held-out normal tile", "ood_median"]),
                    "ood_median_minus_normal_q95": float(verdict.ood_median_minus_normal_q95),
                    "passes": bool(verdict.passes),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if args.out:  # a partial result survives an interrupted run
                _write(args.out, _result(args, base, overrides, dev, run, rows))
    out = _result(args, base, overrides, dev, run, rows)
    print(json.dumps(out, indent=2))
    if args.out:
        _write(args.out, out)
    return out


def _result(args, base, overrides, dev, run, rows) -> dict:
    names = ["tile_size", "ddpm_tiles", "train_timesteps", "gate_samples", "gate_steps"]
    names += [n for n in type(base).model_fields if n.startswith("ddpm_") and n != "ddpm_epochs"]
    settings = {n: getattr(base, n) for n in names}
    return {
        "benchmark": "ddpm_gate",
        "profile": args.profile,
        "overrides": overrides,
        "settings": settings,
        "classifier_test_accuracy": run.metrics["accuracy"],
        "x0_clip": "data range",
        "criterion": "passes: |mean P(tumour) of samples - of normal tiles| <= 0.1 and the "
        "samples' median OoD score <= the normal tiles' 95th percentile (ibo records.gate_table)",
        "runs": rows,
        "machine": machine(dev),
    }


def _write(path: Path, obj: dict) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
