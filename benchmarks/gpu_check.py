"""One short GPU run that measures what the ``ibo`` chapter's ``gpu`` profile costs, in each
precision, and writes one JSON.

    .venv/bin/python benchmarks/gpu_check.py            # on one H100/H200: <= 6 min
    .venv/bin/python benchmarks/gpu_check.py --tiny --out /tmp/check.json   # the CPU, seconds

With the ``gpu`` profile's shapes (512 px tiles, the 113 M-parameter UNet, RePaint batches of
as many images as fit in the free memory), randomly initialised weights and random inputs, for
fp32, bf16 and bf16 + ``torch.compile`` (:mod:`xaistudy.models.precision`; channels_last on
CUDA), it measures

- seconds per RePaint UNet call, per gate UNet call, per DDPM training step and per classifier
  training step (``benchmarks/ibo_costs.py``'s units: warm, median of ``--repeats``);
- the UNet call's FLOPs (``torch.utils.flop_counter``) and the achieved TFLOP/s as a share of
  the card's dense bf16 peak (a table of NVIDIA's published numbers; unknown cards: null);
- peak GPU memory per setting;
- how far bf16 RePaint lands from fp32 on the same inputs and noise (a short schedule, random
  weights: the arithmetic's agreement, not a trained model's);
- the profile's cost estimate in GPU-hours per setting: with its own (validated) RePaint
  schedule, and with the paper's 250/10/10 for comparison.

Which RePaint schedule is good enough is not measured here (a trained DDPM at this shape takes
hours): the ``gpu`` profile's schedule comes from ``benchmarks/repaint_schedules.py`` on the
CPU (``benchmarks/results/repaint_schedules_cpu_2core.json``), which this JSON cites. Steps that
would overrun ``--budget-s`` are skipped and listed as such. ``--tiny`` runs every step at toy
shapes (the tests run it on the CPU).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ibo_costs import costs  # noqa: E402
from benchmarks.repaint_batched import machine, sync  # noqa: E402
from xaistudy.chapters.ibo import IboParams  # noqa: E402
from xaistudy.core.params import build_params  # noqa: E402
from xaistudy.core.store import atomic_write_bytes  # noqa: E402
from xaistudy.evaluate.inpaint import repaint, unet_calls_per_image  # noqa: E402
from xaistudy.models import ddpm  # noqa: E402
from xaistudy.models.classifiers import resolve_device  # noqa: E402

#: dense bf16 tensor-core peak, TFLOP/s, by a pattern of torch.cuda.get_device_name (NVIDIA's
#: data sheets, without sparsity)
BF16_PEAK_TFLOPS = {r"H100.*PCIe": 756.0, r"H100": 989.0, r"H200": 989.0, r"A100": 312.0}
#: the settings measured: (precision, compile)
SETTINGS = (("fp32", False), ("bf16", False), ("bf16", True))
#: toy shapes of --tiny (the same code path, seconds on a CPU)
TINY = {
    "tile_size": 64,
    "ddpm_channels": [8, 16],
    "ddpm_layers": 1,
    "ddpm_attention": True,
    "ddpm_batch_size": 2,
    "repaint_batch": 2,
    "batch_size": 2,
    "gate_samples": 2,
    "classifier": "small_cnn",
    "device": "cpu",
}
PAPER_SCHEDULE = (250, 10, 10)
TARGET_GPU_HOURS = 6.0


def bf16_peak(name: str) -> float | None:
    for pattern, peak in BF16_PEAK_TFLOPS.items():
        if re.search(pattern, name):
            return peak
    return None


def unet_flops(p: IboParams, dev: torch.device) -> int:
    """FLOPs of one RePaint UNet call on one image, counted in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = ddpm.build_unet(p.tile_size, p.ddpm_channels, p.ddpm_layers, p.ddpm_attention).to(dev)
    x = torch.randn(1, 3, p.tile_size, p.tile_size, device=dev)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(x, torch.tensor(500, device=dev))
    return int(counter.get_total_flops())


def precision_agreement(p: IboParams, dev: torch.device) -> dict:
    """bf16 against fp32 RePaint of the same two images, masks and seeds (schedule 10/5/2)."""
    torch.manual_seed(0)
    unet = ddpm.build_unet(p.tile_size, p.ddpm_channels, p.ddpm_layers, p.ddpm_attention)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, p.tile_size, p.tile_size, generator=gen)
    keep = (torch.rand(2, 1, p.tile_size, p.tile_size, generator=gen) > 0.5).float()
    kw = dict(ddpm_scheduler=ddpm.make_scheduler(p.train_timesteps), device=dev,
              num_inference_steps=10, jump_length=5, jump_n_sample=2)  # fmt: skip
    full = repaint(unet, x, keep, [1, 2], **kw)
    low = repaint(unet, x, keep, [1, 2], precision="bf16", **kw)
    gap = (full - low).abs()[(keep == 0).expand_as(full)]
    return {
        "schedule": "10/5/2",
        "weights": "random (the arithmetic's agreement, not a trained model's)",
        "mean_abs_difference_in_hole": float(gap.mean()),
        "max_abs_difference_in_hole": float(gap.max()),
        "known_region_identical": bool(torch.equal(full * keep, low * keep)),
    }


def hours_with_schedule(result: dict, p: IboParams, schedule: tuple[int, int, int]) -> float:
    """``result``'s (``ibo_costs.costs``) estimate with the RePaint calls of ``schedule``."""
    own = unet_calls_per_image(p.repaint_steps, p.jump_length, p.resamplings)
    seconds = dict(result["estimated_seconds"])
    seconds["repaint_unet_call"] *= unet_calls_per_image(*schedule) / own
    return sum(seconds.values()) / 3600


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="toy shapes on the CPU (a test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=330.0, help="skip steps past this")
    ap.add_argument("--compile-on-cpu", action="store_true",
                    help="also time torch.compile on a CPU (minutes of compiling)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None,
                    help="default on a GPU: benchmarks/results/gpu_check_<card>.json")  # fmt: skip
    args = ap.parse_args(argv)
    start = time.perf_counter()
    p = build_params(IboParams, "gpu", TINY if args.tiny else {})
    dev = resolve_device(p.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = bf16_peak(card)
    flops = unet_flops(p, dev)
    out: dict = {
        "benchmark": "gpu_check",
        "profile": "gpu" + (" (--tiny shapes)" if args.tiny else ""),
        "what": "ibo gpu-profile units (random weights and inputs; warm, median of repeats) per "
        "precision setting, FLOPs and achieved TFLOP/s of the RePaint UNet call, peak memory, "
        "bf16-vs-fp32 RePaint agreement, GPU-hour estimates",
        "card": card,
        "bf16_peak_tflops": peak,
        "repaint_unet_call_gflops_per_image": flops / 1e9,
        "profile_schedule": f"{p.repaint_steps}/{p.jump_length}/{p.resamplings}",
        "schedule_validation": "benchmarks/results/repaint_schedules_cpu_2core.json",
        "settings": [],
        "skipped": [],
    }
    for precision, compile in SETTINGS:
        name = precision + (" + compile" if compile else "")
        if compile and dev.type != "cuda" and not args.compile_on_cpu:
            out["skipped"].append(f"{name}: not on a CPU unless --compile-on-cpu")
            continue
        if time.perf_counter() - start > args.budget_s * (0.5 if compile else 0.8):
            out["skipped"].append(f"{name}: over the time budget")
            continue
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        setting = p.model_copy(update={"precision": precision, "compile": compile})
        result = costs(setting, args.repeats)
        call = result["seconds_per_unit"]["repaint_unet_call"]
        batch = result["shapes"]["repaint_batch"]
        row = {
            "setting": name,
            "repaint_batch": batch,
            "seconds_per_unit": result["seconds_per_unit"],
            "repaint_images_per_second": batch / call,
            "repaint_tflops": flops * batch / call / 1e12,
            "share_of_bf16_peak": flops * batch / call / 1e12 / peak if peak else None,
            "gpu_hours_profile_schedule": result["estimated_hours_total"],
            "gpu_hours_paper_schedule": hours_with_schedule(result, p, PAPER_SCHEDULE),
            "seconds_measuring": time.perf_counter() - t0,
        }
        if dev.type == "cuda":
            row["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 1e9
        out["settings"].append(row)
    if time.perf_counter() - start < args.budget_s:
        out["bf16_agreement"] = precision_agreement(p, dev)
    else:
        out["skipped"].append("bf16 agreement: over the time budget")
    done = [r for r in out["settings"] if r["gpu_hours_profile_schedule"]]
    best = min(done, key=lambda r: r["gpu_hours_profile_schedule"]) if done else None
    out["estimate"] = {
        "target_gpu_hours": TARGET_GPU_HOURS,
        "fastest_setting": best and best["setting"],
        "gpu_hours": best and best["gpu_hours_profile_schedule"],
        "within_target": bool(best and best["gpu_hours_profile_schedule"] <= TARGET_GPU_HOURS),
    }
    out["machine"] = machine(dev)
    out["elapsed_seconds"] = time.perf_counter() - start
    sync(dev)
    text = json.dumps(out, indent=2)
    print(text)
    target = args.out
    if target is None and dev.type == "cuda":
        slug = re.sub(r"[^a-z0-9]+", "_", card.lower().replace("nvidia", "")).strip("_")
        target = ROOT / "benchmarks" / "results" / f"gpu_check_{slug}.json"
    if target is not None:
        atomic_write_bytes(target, (text + "\n").encode())
    return out


if __name__ == "__main__":
    main()
