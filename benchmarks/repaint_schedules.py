"""Which RePaint schedule is good enough for IBO: the grid judged against the paper's full
schedule on what the chapter reports (:mod:`xaistudy.studies.ibo.schedules`).

    .venv/bin/python benchmarks/repaint_schedules.py --profile quick \
        --out benchmarks/results/repaint_schedules_cpu_2core.json

Uses the profile's first seed: its classifier, DDPM and heatmaps are the ``ibo`` chapter's
cached stages (trained here when the cache lacks them), and each schedule's inpaintings are a
cached stage too, so an interrupted run resumes. The tolerances are
:data:`~xaistudy.studies.ibo.schedules.TOLERANCE`, fixed in the code before any schedule was
measured. What is timed (``seconds``): the wall clock of one schedule's RePaint over every
nested mask of the tiles (``n_tiles`` x methods x masks images), on this machine's threads.
Writes one JSON object (stdout, and ``--out`` when given).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.repaint_batched import machine  # noqa: E402
from xaistudy.chapters.ibo import IboParams  # noqa: E402
from xaistudy.core.params import build_params  # noqa: E402
from xaistudy.core.runtime import fix_threads  # noqa: E402
from xaistudy.core.store import Store, atomic_write_bytes  # noqa: E402
from xaistudy.models.classifiers import resolve_device  # noqa: E402
from xaistudy.studies.ibo import schedule_noise, schedules  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--full", default=schedules.label(schedules.FULL), help="reference T/j/r")
    ap.add_argument(
        "--schedules",
        default=",".join(schedules.label(s) for s in schedules.GRID),
        help="comma-separated T/j/r schedules judged against --full",
    )
    ap.add_argument("--methods", default="gradcam,eigencam,fullgrad")
    ap.add_argument("--tiles", type=int, default=3, help="tumour tiles of the first seed")
    ap.add_argument("--replicates", type=int, default=2, help="noise replicates per candidate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="artifact cache (default: the book's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        full = schedules.parse(args.full)
        grid = tuple(schedules.parse(s) for s in args.schedules.split(",") if s.strip())
    except ValueError as err:
        ap.error(str(err))
    fix_threads(args.threads)
    params = build_params(IboParams, args.profile, {"threads": args.threads})
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    runs, explained = schedules.run_grid(
        params,
        schedules=grid,
        full=full,
        methods=methods,
        n_tiles=args.tiles,
        replicates=args.replicates,
        store=Store(args.cache) if args.cache else Store(),
    )
    out = report(params, runs, explained, full, methods, args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        atomic_write_bytes(args.out, (text + "\n").encode())
    return out


def report(params, runs, explained, full, methods, args) -> dict:
    """The JSON object: the table, the chosen schedule, the replicate floors, the setting."""
    table = schedules.compare(runs, explained, full)
    chosen = schedules.cheapest_passing(table)
    floors = schedule_noise.replicate_floors(runs, explained)
    no_power = sorted(
        set.intersection(*(set(f.split(", ")) - {""} for f in floors["floor_outside"]))
        if len(floors)
        else set()
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    out = {
        "benchmark": "repaint_schedules",
        "profile": args.profile,
        "what": "each RePaint schedule (T/j/r) against the full one on one seed's tumour tiles: "
        "deletion AUCs, Table 1's distances to the original, the methods' AUC order and MARD, "
        "and the inpaintings' SSIM to the full schedule's beside the SSIM between the "
        "schedule's own two noise replicates; seconds: wall clock of the schedule's RePaint "
        "over every nested mask",
        "full_schedule": schedules.label(full),
        "tolerance": {k: {"bound": v[0], "meaning": v[1]} for k, v in schedules.TOLERANCE.items()},
        "tolerance_fixed": "in xaistudy/studies/ibo/schedules.py before any schedule was measured",
        "chosen": chosen,
        "chosen_rule": "the passing schedule with the fewest UNet calls per image",
        "replicate_floors": json.loads(floors.to_json(orient="records")),
        "criteria_the_noise_fails": no_power,
        "replicate_floors_meaning": "each criterion between a schedule's own two noise "
        "replicates; a criterion listed in criteria_the_noise_fails has its floor outside the "
        "bound for every schedule with replicates: the noise alone fails it, so the check had "
        "no power to pass any schedule on it",
        "setting": {
            "seed": params.seeds[0],
            "tiles": args.tiles,
            "methods": list(methods),
            "masks_per_map": params.kmeans_k - 1,
            "replicates_per_candidate": args.replicates,
            "tile_size": params.tile_size,
            "ddpm_channels": params.ddpm_channels,
            "train_timesteps": params.train_timesteps,
            "threads": args.threads,
        },
        "table": json.loads(table.to_json(orient="records")),
        "machine": machine(resolve_device(params.device)),
        "torch": torch.__version__,
        "commit": commit,
        "date": datetime.date.today().isoformat(),
    }
    return out


if __name__ == "__main__":
    main()
