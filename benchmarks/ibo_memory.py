"""Peak host memory of the ``ibo`` paper-shaped run, measured at scaled sizes, extrapolated.

    .venv/bin/python benchmarks/ibo_memory.py --out benchmarks/results/ibo_memory_cpu_2core.json

Every measurement is a fresh Python process with an empty artifact cache that reports its peak
resident set size (``ru_maxrss``):

1. ``load_splits`` alone (data generation, stain normalisation, the memory-mapped splits) at
   two training-split sizes: the slope is the memory per tile pixel the data stage holds.
   Splits of the paper's size are written to memory-mapped files as they are generated
   (``STREAM_BYTES``); the scaled runs are made to take the same path.
2. The whole study (``xaistudy.studies.ibo.run``) with the paper profile's models and
   schedules shape (the ``gpu`` profile: ResNet-50, the 113 M-parameter DDPM with attention,
   every CAM and strategy) at a scaled size: small tiles and counts, one epoch, a few RePaint
   steps (steps and epochs repeat the same work and do not add memory).

The paper size is extrapolated as (2) plus the slope of (1) times the extra tile pixels, for
the peak RSS (which counts the pages of the memory-mapped files, reclaimable) and for the peak
anonymous memory (which the run really needs). What
runs on the GPU in a GPU run (the networks' activations) is in these CPU numbers, so they bound
the host memory of a GPU run from above. The occlusion stage holds ``SAMPLE_CHUNK`` samples at
a time whatever ``n_samples`` is; its images at the paper's tile size are added analytically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 2**30
#: (tile side, training tiles) of the data-stage measurements
DATA_POINTS = ((128, 512), (128, 2048))
#: the scaled whole run: the paper profile's models and schedule shape on small tiles
SCALED_RUN = {
    "seeds": [0], "tile_size": 128, "n_train": 64, "n_val": 8, "n_test": 8, "epochs": 1,
    "ddpm_tiles": 32, "ddpm_epochs": 1, "repaint_steps": 4, "jump_length": 2, "resamplings": 2,
    "n_samples": 1, "n_gt_samples": 2, "gate_samples": 2, "gate_steps": 4, "n_boot": 50,
}  # fmt: skip

#: paper-scale splits exceed STREAM_BYTES and stream to memory-mapped files; the scaled runs
#: take that same path (the threshold set to 0), so the extrapolation follows the paper's code
_STREAM = """
from xaistudy.data import camelyon16, datasets
datasets.STREAM_BYTES = camelyon16.STREAM_BYTES = 0
"""
#: a thread that samples the process's anonymous resident memory (RssAnon: what cannot be
#: paged out to the memory-mapped files) every 20 ms; PEAK_ANON holds the largest value (KiB)
_SAMPLER = """
import re, threading, time
PEAK_ANON = [0]
def _sample():
    while True:
        text = open("/proc/self/status").read()
        PEAK_ANON[0] = max(PEAK_ANON[0], int(re.search(r"RssAnon:\\s+(\\d+)", text).group(1)))
        time.sleep(0.02)
threading.Thread(target=_sample, daemon=True).start()
"""
_DATA = _STREAM + _SAMPLER + """
import resource, sys
from xaistudy.studies.ibo import load_splits
size, n = int(sys.argv[1]), int(sys.argv[2])
load_splits(size, n, n // 8, n // 8, n // 2, True, 0)
time.sleep(0.05)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, PEAK_ANON[0])
"""
_RUN = _STREAM + _SAMPLER + """
import json, resource, sys
from xaistudy.chapters.ibo import IboParams
from xaistudy.core.params import build_params
from xaistudy.core.runtime import fix_threads
from xaistudy.studies import ibo
params = build_params(IboParams, "gpu", json.loads(sys.argv[1]))
fix_threads(params.threads)
ibo.run(params, profile="gpu")
time.sleep(0.05)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, PEAK_ANON[0])
"""


def peak_gib(code: str, *args: str) -> tuple[float, float]:
    """Peak RSS and peak anonymous RSS (GiB) of ``python -c code args``, empty artifact cache.

    RSS (``ru_maxrss``) also counts pages of the memory-mapped files, which the system can drop
    and read again; the anonymous part is the memory the run really needs.
    """
    with tempfile.TemporaryDirectory(prefix="xaistudy-mem-") as cache:
        env = {**os.environ, "XAISTUDY_CACHE": cache}
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, check=True,
                              capture_output=True, text=True)  # fmt: skip
    rss, anon = done.stdout.split()[-2:]  # KiB on Linux
    return int(rss) * 1024 / GIB, int(anon) * 1024 / GIB


def tile_pixels(size: int, n_train: int, n_val: int, n_test: int, ddpm_tiles: int) -> int:
    """Tile pixels the data stage generates (the training split at its larger size)."""
    return size * size * (max(n_train, 2 * ddpm_tiles) + n_val + n_test)


def main() -> int:
    from xaistudy.chapters.ibo import IboParams
    from xaistudy.core.params import build_params
    from xaistudy.studies.ibo import CAMS, SAMPLE_CHUNK

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON file to write (stdout always)")
    args = parser.parse_args()

    data = []
    for size, n in DATA_POINTS:
        rss, anon = peak_gib(_DATA, str(size), str(n))
        pixels = tile_pixels(size, n, n // 8, n // 8, n // 2)
        data.append({"tile_size": size, "n_train": n, "pixels": pixels,
                     "peak_rss_gib": round(rss, 3), "peak_anon_gib": round(anon, 3)})  # fmt: skip
        print(data[-1], flush=True)
    run_rss, run_anon = peak_gib(_RUN, json.dumps(SCALED_RUN))
    scaled = build_params(IboParams, "gpu", SCALED_RUN)
    paper = build_params(IboParams, "gpu")
    scaled_pixels = tile_pixels(scaled.tile_size, scaled.n_train, scaled.n_val, scaled.n_test,
                                scaled.ddpm_tiles)  # fmt: skip
    paper_pixels = tile_pixels(paper.tile_size, paper.n_train, paper.n_val, paper.n_test,
                               paper.ddpm_tiles)  # fmt: skip
    # one chunk of occluded images, their originals and the float copy measured (float32)
    chunk_gib = 3 * SAMPLE_CHUNK * len(CAMS) * 4 * 3 * paper.tile_size**2 * 4 / GIB
    paper_row = {
        "tile_size": paper.tile_size, "n_train": paper.n_train, "n_val": paper.n_val,
        "n_test": paper.n_test, "ddpm_tiles": paper.ddpm_tiles, "pixels": paper_pixels,
        "n_samples": paper.n_samples, "sample_chunk": SAMPLE_CHUNK,
        "occlusion_chunk_gib": round(chunk_gib, 3),
    }  # fmt: skip
    for what, run_gib in (("rss", run_rss), ("anon", run_anon)):
        slope = (data[1][f"peak_{what}_gib"] - data[0][f"peak_{what}_gib"]) / (
            data[1]["pixels"] - data[0]["pixels"]
        )
        paper_row[f"{what}_gib_per_gigapixel"] = round(slope * 1e9, 4)
        paper_row[f"extrapolated_peak_{what}_gib"] = round(
            run_gib + slope * (paper_pixels - scaled_pixels) + chunk_gib, 2
        )
    result = {
        "what": "peak resident memory of fresh processes (empty artifact cache): rss = "
        "ru_maxrss, which also counts pages of the memory-mapped files; anon = RssAnon sampled "
        "every 20 ms, the memory that cannot be paged out",
        "data_stage": data,
        "scaled_run": {**SCALED_RUN, "profile": "gpu (paper shapes, synthetic tiles)",
                       "peak_rss_gib": round(run_rss, 3),
                       "peak_anon_gib": round(run_anon, 3)},  # fmt: skip
        "paper": paper_row,
        "threads": scaled.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},  # fmt: skip
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
