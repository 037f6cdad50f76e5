"""What a profile of the `ibo` chapter costs: measured seconds per unit of work × counted units.

    .venv/bin/python benchmarks/ibo_costs.py --profile gpu \
        --out benchmarks/results/ibo_costs_<machine>.json

The `gpu` profile's full run takes longer than one measurement can, so this times one unit of
each heavy step with the profile's own shapes and models, randomly initialised, on random
inputs, and multiplies by the number of units the profile's parameters imply:

- a DDPM training step (``ddpm.batch_gradient`` + AdamW, ``ddpm_batch_size`` images);
- a batched RePaint UNet call (``repaint_batch`` images; one call per RePaint step);
- a DDPM sampling UNet call of the gate (``gate_samples`` images, ``repaint_batch`` at a time);
- a classifier training step (``batch_size`` images, forward + backward + Adam).

Each unit is timed warm (three untimed calls first), synchronised on a GPU, and reported as the
median of ``--repeats`` calls. The product is an *estimate* of the compute of those steps only
(no data generation, heatmaps, metrics or I/O), before identical heatmaps are merged (which
only removes RePaint work). Writes one JSON object (stdout, and ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.repaint_batched import machine, sync  # noqa: E402
from xaistudy.chapters.ibo import IboParams  # noqa: E402
from xaistudy.core.params import build_params  # noqa: E402
from xaistudy.core.store import atomic_write_bytes  # noqa: E402
from xaistudy.evaluate.inpaint import unet_calls_per_image  # noqa: E402
from xaistudy.models import ddpm  # noqa: E402
from xaistudy.models.classifiers import build_classifier, resolve_device  # noqa: E402
from xaistudy.studies import ibo as study  # noqa: E402


def median_seconds(fn, dev: torch.device, repeats: int) -> float:
    for _ in range(3):
        fn()
    sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="gpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    p = build_params(IboParams, args.profile)
    dev = resolve_device(p.device)
    size, gen = p.tile_size, torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    unet = ddpm.build_unet(size, p.ddpm_channels, p.ddpm_layers, p.ddpm_attention).to(dev)
    sched = ddpm.make_scheduler(p.train_timesteps)
    alphas = sched.alphas_cumprod.to(dev)
    opt = torch.optim.AdamW(unet.parameters(), lr=p.ddpm_lr)
    x0 = torch.rand(p.ddpm_batch_size, 3, size, size, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, p.train_timesteps, (len(x0),), generator=gen)

    def ddpm_step():
        opt.zero_grad(set_to_none=True)
        ddpm.batch_gradient(unet, alphas, x0, noise, t)
        opt.step()

    units = {"ddpm_training_step": median_seconds(ddpm_step, dev, args.repeats)}
    opt.zero_grad(set_to_none=True)
    unet.eval()

    def unet_call(batch: int):
        x = torch.randn(batch, 3, size, size, device=dev)
        step = torch.tensor(500, device=dev)

        @torch.no_grad()
        def call():
            unet(x, step)

        return call

    units["repaint_unet_call"] = median_seconds(unet_call(p.repaint_batch), dev, args.repeats)
    gate_batch = min(p.gate_samples, p.repaint_batch)  # study.gate_samples' batches
    units["gate_unet_call"] = median_seconds(unet_call(gate_batch), dev, args.repeats)
    n_parameters = sum(v.numel() for v in unet.parameters())
    unet.cpu()

    clf = build_classifier(p.classifier, 2, pretrained=False).to(dev).train()
    copt = torch.optim.Adam(clf.parameters(), lr=p.lr)
    xb = torch.rand(p.batch_size, 3, size, size, generator=gen).to(dev)
    yb = torch.randint(0, 2, (p.batch_size,), generator=gen).to(dev)

    def clf_step():
        copt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(clf(xb), yb).backward()
        copt.step()

    units["classifier_training_step"] = median_seconds(clf_step, dev, args.repeats)

    n_seeds, methods = len(p.seeds), len(study.methods_of(p))
    per_image = unet_calls_per_image(p.repaint_steps, p.jump_length, p.resamplings)
    inpainted = p.n_samples * methods * (p.kmeans_k - 1) * p.replicates
    counts = {
        "ddpm_training_step": p.ddpm_epochs * -(-p.ddpm_tiles // p.ddpm_batch_size),
        "repaint_unet_call": n_seeds * -(-inpainted // p.repaint_batch) * per_image,
        "gate_unet_call": -(-p.gate_samples // gate_batch) * min(p.gate_steps, p.train_timesteps),
        "classifier_training_step": n_seeds * p.epochs * -(-p.n_train // p.batch_size),
    }
    estimate = {k: units[k] * counts[k] for k in units}
    out = {
        "benchmark": "ibo_costs",
        "profile": args.profile,
        "what": "median seconds per unit (warm), units the profile implies, their product "
        "(an estimate of those steps' compute only, RePaint before identical heatmaps merge)",
        "shapes": {
            "tile_size": size,
            "ddpm_channels": p.ddpm_channels,
            "ddpm_parameters": n_parameters,
            "ddpm_batch_size": p.ddpm_batch_size,
            "repaint_batch": p.repaint_batch,
            "repaint_unet_calls_per_image": per_image,
            "gate_samples": p.gate_samples,
            "gate_batch": gate_batch,
            "classifier": p.classifier,
            "classifier_batch": p.batch_size,
            "seeds": n_seeds,
            "images_inpainted_per_seed": inpainted,
        },
        "seconds_per_unit": units,
        "units": counts,
        "estimated_seconds": estimate,
        "estimated_hours_total": sum(estimate.values()) / 3600,
        "repeats": args.repeats,
        "machine": machine(dev),
    }
    if dev.type == "cuda":
        out["machine"]["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 1e9
    print(json.dumps(out, indent=2))
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(out, indent=2) + "\n").encode())
    return out


if __name__ == "__main__":
    main()
