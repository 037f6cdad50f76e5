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
from xaistudy.models import precision as numerics  # noqa: E402
from xaistudy.models.classifiers import build_classifier, resolve_device  # noqa: E402
from xaistudy.studies import ibo as study  # noqa: E402

#: RePaint's batch on a CPU when the profile asks for "as many as fit" (0)
AUTO_BATCH_CPU = 32


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


def parse_overrides(items: list[str]) -> dict:
    """``["precision=bf16", "repaint_steps=100"]`` -> a dict (values read as JSON when they
    parse, else kept as strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="gpu")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="parameter overrides, e.g. precision=bf16 repaint_steps=100")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    p = build_params(IboParams, args.profile, parse_overrides(args.set))
    out = costs(p, args.repeats)
    out["profile"] = args.profile
    out["overrides"] = parse_overrides(args.set)
    print(json.dumps(out, indent=2))
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(out, indent=2) + "\n").encode())
    return out


def costs(p: IboParams, repeats: int = 5) -> dict:
    """Seconds per unit of each heavy step with ``p``'s shapes, precision and compilation
    (random weights and inputs), the units ``p`` implies and their product."""
    dev = resolve_device(p.device)
    size, gen = p.tile_size, torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    unet = ddpm.build_unet(size, p.ddpm_channels, p.ddpm_layers, p.ddpm_attention).to(dev)
    if numerics.channels_last_applies(dev):
        unet.to(memory_format=torch.channels_last)
    sched = ddpm.make_scheduler(p.train_timesteps)
    alphas = sched.alphas_cumprod.to(dev)
    opt = torch.optim.AdamW(unet.parameters(), lr=p.ddpm_lr)
    scaler = numerics.grad_scaler(dev, p.precision)
    x0 = torch.rand(p.ddpm_batch_size, 3, size, size, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, p.train_timesteps, (len(x0),), generator=gen)

    def ddpm_step():
        opt.zero_grad(set_to_none=True)
        ddpm.batch_gradient(unet, alphas, x0, noise, t, precision=p.precision, scaler=scaler)
        scaler.step(opt)
        scaler.update()

    units = {"ddpm_training_step": median_seconds(ddpm_step, dev, repeats)}
    opt.zero_grad(set_to_none=True)
    sampler = numerics.prepare(unet, dev, compile=p.compile)  # as RePaint and the gate run it

    def unet_call(batch: int):
        x = numerics.layout(torch.randn(batch, 3, size, size, device=dev))
        step = torch.tensor(500, device=dev)

        @torch.no_grad()
        def call():
            with numerics.autocast(dev, p.precision):
                sampler(x, step)

        return call

    n_seeds, methods = len(p.seeds), len(study.methods_of(p))
    inpainted = p.n_samples * methods * (p.kmeans_k - 1) * p.replicates
    batch = p.repaint_batch or AUTO_BATCH_CPU  # 0: as many as fit (RePaint probes on a GPU)
    if not p.repaint_batch and dev.type == "cuda":
        probe = torch.zeros(1, 3, size, size, device=dev)
        batch = numerics.fitting_batch(sampler, probe, lambda m, x: m(x, 500),
                                       precision=p.precision, cap=inpainted)  # fmt: skip
    units["repaint_unet_call"] = median_seconds(unet_call(batch), dev, repeats)
    gate_batch = min(p.gate_samples, batch)  # study.gate_samples' batches
    units["gate_unet_call"] = median_seconds(unet_call(gate_batch), dev, repeats)
    n_parameters = sum(v.numel() for v in unet.parameters())
    unet.cpu()

    clf = build_classifier(p.classifier, 2, pretrained=False).to(dev).train()
    copt = torch.optim.Adam(clf.parameters(), lr=p.lr)
    xb = torch.rand(p.batch_size, 3, size, size, generator=gen).to(dev)
    yb = torch.randint(0, 2, (p.batch_size,), generator=gen).to(dev)

    cscaler = numerics.grad_scaler(dev, p.precision)

    def clf_step():
        copt.zero_grad(set_to_none=True)
        with numerics.autocast(dev, p.precision):
            logits = clf(xb)
        cscaler.scale(torch.nn.functional.cross_entropy(logits.float(), yb)).backward()
        cscaler.step(copt)
        cscaler.update()

    units["classifier_training_step"] = median_seconds(clf_step, dev, repeats)

    per_image = unet_calls_per_image(p.repaint_steps, p.jump_length, p.resamplings)
    counts = {
        "ddpm_training_step": p.ddpm_epochs * -(-p.ddpm_tiles // p.ddpm_batch_size),
        "repaint_unet_call": n_seeds * -(-inpainted // batch) * per_image,
        "gate_unet_call": -(-p.gate_samples // gate_batch) * min(p.gate_steps, p.train_timesteps),
        "classifier_training_step": n_seeds * p.epochs * -(-p.n_train // p.batch_size),
    }
    estimate = {k: units[k] * counts[k] for k in units}
    out = {
        "benchmark": "ibo_costs",
        "what": "median seconds per unit (warm), units the profile implies, their product "
        "(an estimate of those steps' compute only, RePaint before identical heatmaps merge)",
        "shapes": {
            "tile_size": size,
            "ddpm_channels": p.ddpm_channels,
            "ddpm_parameters": n_parameters,
            "ddpm_batch_size": p.ddpm_batch_size,
            "repaint_batch": batch,
            "repaint_unet_calls_per_image": per_image,
            "gate_samples": p.gate_samples,
            "gate_batch": gate_batch,
            "classifier": p.classifier,
            "classifier_batch": p.batch_size,
            "precision": p.precision,
            "compile": p.compile,
            "repaint_schedule": f"{p.repaint_steps}/{p.jump_length}/{p.resamplings}",
            "seeds": n_seeds,
            "images_inpainted_per_seed": inpainted,
        },
        "seconds_per_unit": units,
        "units": counts,
        "estimated_seconds": estimate,
        "estimated_hours_total": sum(estimate.values()) / 3600,
        "repeats": repeats,
        "machine": machine(dev),
    }
    if dev.type == "cuda":
        out["machine"]["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 1e9
    return out


if __name__ == "__main__":
    main()
