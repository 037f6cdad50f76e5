"""Calibration of the claims' intervals and verdicts (xaistudy.stats.verdicts) on synthetic
claim data whose truth is known.

Each replicate draws ``seeds`` separately "trained models" whose true effect differs from model
to model (between-seed sd = ``ratio`` × the within-unit sd) and ``units`` noisy units per model,
then asks the book's rule for an interval and a verdict. Reported per cell: how often the
nominal 95 % interval covers the true mean effect; how often a pure-noise claim (true effect 0)
gets a definite verdict; how often a claim whose null control has the same (strong) effect is
called *uninformative*. Writes ``benchmarks/results/verdict_calibration.json``.

    .venv/bin/python benchmarks/verdict_calibration.py [--reps 1000] [--n-boot 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xaistudy.stats import verdicts as vd

RATIOS = (0.0, 0.5, 1.0, 2.0)
SEEDS = (3, 5)
UNITS = (12, 36)
#: the effect of a claim and of its control with the same effect, in sd of a unit around the
#: mean of all models (within and between): large enough that the claim alone is reproduced,
#: so what is measured is the rule, not the power
STRONG = 8.0


def claim_rows(rng: np.random.Generator, seeds: int, units: int, ratio: float, effect: float):
    """Rows (seed, unit, value): per model an effect ``effect + N(0, ratio²)``, per unit
    N(0, 1) noise around it."""
    model = effect + ratio * rng.standard_normal(seeds)
    values = model[:, None] + rng.standard_normal((seeds, units))
    return pd.DataFrame(
        {
            "seed": np.repeat(np.arange(seeds), units),
            "unit": np.tile(np.arange(units), seeds),
            "value": values.ravel(),
        }
    )


def cell(seeds: int, units: int, ratio: float, reps: int, n_boot: int, rng_seed: int) -> dict:
    rng = np.random.default_rng(rng_seed)
    covered = definite = uninformative = 0
    for r in range(reps):
        truth = 0.5
        rows = claim_rows(rng, seeds, units, ratio, truth)
        iv = vd.interval(rows, vd.mean_value, n_boot=n_boot, rng_seed=r)
        covered += iv.low <= truth <= iv.high
        noise = claim_rows(rng, seeds, units, ratio, 0.0)
        nv = vd.interval(noise, vd.mean_value, n_boot=n_boot, rng_seed=r)
        definite += vd.verdict_of_side(nv.side(0.0), ">") != vd.INCONCLUSIVE
        effect = STRONG * np.hypot(1.0, ratio)
        strong = claim_rows(rng, seeds, units, ratio, effect)
        control = claim_rows(rng, seeds, units, ratio, effect)
        sv = vd.interval(strong, vd.mean_value, n_boot=n_boot, rng_seed=r)
        cv = vd.interval(control, vd.mean_value, n_boot=n_boot, rng_seed=r)
        dv = vd.contrast(strong, control, vd.mean_value, n_boot=n_boot, rng_seed=r)
        verdict, _ = vd.verdict_with_controls(sv, ">", 0.0, {"same effect": (cv, dv)})
        uninformative += verdict == vd.UNINFORMATIVE
    return {
        "seeds": seeds,
        "units": units,
        "between_over_within_sd": ratio,
        "replicates": reps,
        "coverage": covered / reps,
        "definite_on_noise": definite / reps,
        "uninformative_with_equal_control": uninformative / reps,
    }


def grid(reps: int, n_boot: int) -> list[dict]:
    cells = itertools.product(SEEDS, UNITS, RATIOS)
    return [cell(s, u, r, reps, n_boot, rng_seed=i) for i, (s, u, r) in enumerate(cells)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    start = time.perf_counter()
    rows = grid(args.reps, args.n_boot)
    result = {
        "what": __doc__.splitlines()[0],
        "rule": "union of a t-interval over per-seed estimates and the hierarchical bootstrap",
        "n_boot": args.n_boot,
        "seconds": round(time.perf_counter() - start, 1),
        "cells": rows,
        "min_coverage": min(r["coverage"] for r in rows),
        "max_definite_on_noise": max(r["definite_on_noise"] for r in rows),
        "min_uninformative_with_equal_control": min(
            r["uninformative_with_equal_control"] for r in rows
        ),
    }
    out = Path(args.out) / "verdict_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(pd.DataFrame(rows).to_string(index=False))
    print(out)


if __name__ == "__main__":
    main()
