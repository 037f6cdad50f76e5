"""Batched RePaint vs a per-image loop of diffusers' RePaintPipeline, on the same UNet and masks.

    .venv/bin/python benchmarks/repaint_batched.py                 # tiny CPU default, < 3 min
    .venv/bin/python benchmarks/repaint_batched.py --size 256 --channels 128,128,256,256,512,512 \
        --steps 250 --jump 10 --resample 10 --batch 32 --device cuda \
        --out benchmarks/results/repaint_<machine>.json

Both sides inpaint the same ``batch`` images, each with its own random mask and its own seed,
with the same randomly initialised ``UNet2DModel`` and the same RePaint schedule (eta = 1).
The loop calls ``RePaintPipeline`` once per image (what the pipeline supports: one mask per
call); the batched side is :func:`xaistudy.evaluate.inpaint.repaint` (all images in one pass).
Writes one JSON object (stdout, and ``--out`` when given): images per second of both, their
ratio, UNet evaluations per image counted on both sides, the formula's value, the largest
difference between the two sides' images, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xaistudy.evaluate.inpaint import (  # noqa: E402
    count_unet_calls,
    repaint,
    repaint_scheduler,
    unet_calls_per_image,
)
from xaistudy.models.classifiers import resolve_device  # noqa: E402
from xaistudy.models.ddpm import build_unet, make_scheduler  # noqa: E402


def machine(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32, help="images inpainted (each its own mask)")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--channels", default="16,32", help="UNet widths per level")
    ap.add_argument("--steps", type=int, default=20, help="RePaint steps T")
    ap.add_argument("--jump", type=int, default=5, help="jump length j")
    ap.add_argument("--resample", type=int, default=2, help="resamplings r (jump_n_sample)")
    ap.add_argument("--train-timesteps", type=int, default=1000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument(
        "--loop-images",
        type=int,
        default=0,
        help="time the per-image loop on only this many images and extrapolate "
        "its images/s (0: all)",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import RePaintPipeline
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    dev = resolve_device(args.device)
    torch.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    unet = build_unet(args.size, channels).to(dev).eval()
    ddpm_sched = make_scheduler(args.train_timesteps)
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen)
    blobs = torch.nn.functional.avg_pool2d(
        torch.rand(args.batch, 1, args.size, args.size, generator=gen), 5, 1, 2
    )
    keep = (blobs > blobs.flatten(1).median(1).values.view(-1, 1, 1, 1)).float()
    seeds = list(range(100, 100 + args.batch))
    schedule = dict(
        num_inference_steps=args.steps, jump_length=args.jump, jump_n_sample=args.resample
    )

    # batched: one pass over all images (warm-up on one image first)
    repaint(
        unet,
        images[:1],
        keep[:1],
        seeds[:1],
        ddpm_scheduler=ddpm_sched,
        device=dev,
        num_inference_steps=min(args.steps, 2) if args.train_timesteps % 2 == 0 else 1,
    )
    sync(dev)
    with count_unet_calls(unet) as batched_calls:
        t0 = time.perf_counter()
        batched = repaint(
            unet, images, keep, seeds, ddpm_scheduler=ddpm_sched, device=dev, eta=1.0, **schedule
        )
        sync(dev)
        t_batched = time.perf_counter() - t0

    # per-image loop of diffusers' pipeline
    pipe = RePaintPipeline(unet=unet, scheduler=repaint_scheduler(ddpm_sched, eta=1.0))
    pipe.set_progress_bar_config(disable=True)
    n_loop = args.loop_images or args.batch
    outs = []
    with count_unet_calls(unet) as loop_calls:
        t0 = time.perf_counter()
        for i in range(n_loop):
            out = pipe(
                image=(images[i : i + 1] * 2 - 1).to(dev),
                mask_image=keep[i : i + 1].to(dev),
                eta=1.0,
                generator=torch.Generator().manual_seed(seeds[i]),
                output_type="np",
                **schedule,
            ).images
            outs.append(torch.from_numpy(out).permute(0, 3, 1, 2))
        sync(dev)
        t_loop = time.perf_counter() - t0
    looped = torch.cat(outs)
    hole = (keep[:n_loop] == 0).expand_as(looped)
    max_diff = float((batched[:n_loop][hole] - looped[hole]).abs().max()) if hole.any() else 0.0

    ips_batched = args.batch / t_batched
    ips_loop = n_loop / t_loop
    result = {
        "benchmark": "repaint_batched",
        "machine": machine(dev),
        "params": vars(args) | {"out": str(args.out) if args.out else None},
        "batch": args.batch,
        "image_size": args.size,
        "unet_parameters": sum(p.numel() for p in unet.parameters()),
        "schedule": schedule,
        "unet_evals_per_image_formula": unet_calls_per_image(args.steps, args.jump, args.resample),
        "batched": {
            "seconds": t_batched,
            "images_per_second": ips_batched,
            "unet_calls": batched_calls.calls,
            "unet_evals_per_image": batched_calls.images / args.batch,
        },
        "per_image_pipeline_loop": {
            "images_timed": n_loop,
            "seconds": t_loop,
            "images_per_second": ips_loop,
            "unet_calls": loop_calls.calls,
            "unet_evals_per_image": loop_calls.images / n_loop,
        },
        "speedup_batched_over_loop": ips_batched / ips_loop,
        "max_abs_difference_in_inpainted_pixels": max_diff,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
