"""Batched RePaint inpainting (Lugmayr et al.) with diffusers' ``RePaintScheduler``.

RePaint fills the region to inpaint with samples of an unconditional DDPM while the known
region is re-noised from the original at every step; "jumps" go back ``jump_length`` steps
``jump_n_sample - 1`` times to harmonise the two. diffusers ships the scheduler and a pipeline
that inpaints one batch with *one* mask and one random stream; IBO needs thousands of images
with a different mask each. :func:`repaint` therefore runs the scheduler's own ``step`` and
``undo_step`` on a whole batch, with one mask and one seeded ``torch.Generator`` **per image**
(diffusers draws each image's noise from its own generator when given a list), so

* every image gets exactly the random numbers it would get alone: batched == one at a time,
  and an image's result equals ``RePaintPipeline`` run on that image with the same seed;
* the UNet runs once per schedule step for the whole batch instead of once per image.

Conventions (as diffusers): mask ``1 = keep, 0 = inpaint``, a float tensor (B, 1, H, W);
images in [0, 1] here (the model works in [-1, 1]); ``eta=1`` samples as a DDPM (the original
RePaint), ``eta=0`` would be DDIM-like.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from xaistudy.core import distributed
from xaistudy.evaluate.occlusion import check_images_and_mask, register_strategy
from xaistudy.models import precision as numerics
from xaistudy.models.classifiers import resolve_device
from xaistudy.models.ddpm import Scaling, generators

if TYPE_CHECKING:  # diffusers is imported where it runs (seconds of imports)
    from diffusers import DDPMScheduler, RePaintScheduler, UNet2DModel

log = logging.getLogger(__name__)


# -- the schedule and its cost --------------------------------------------------------------
def repaint_scheduler(
    ddpm_scheduler: DDPMScheduler | None = None, num_train_timesteps: int = 1000, eta: float = 1.0
) -> RePaintScheduler:
    """A ``RePaintScheduler`` with the betas of ``ddpm_scheduler`` (the training schedule)."""
    from diffusers import RePaintScheduler

    cfg = ddpm_scheduler.config if ddpm_scheduler is not None else None
    return RePaintScheduler(
        num_train_timesteps=cfg.num_train_timesteps if cfg else num_train_timesteps,
        beta_start=cfg.beta_start if cfg else 1e-4,
        beta_end=cfg.beta_end if cfg else 0.02,
        beta_schedule=cfg.beta_schedule if cfg else "linear",
        clip_sample=cfg.clip_sample if cfg else True,
        eta=eta,
    )


def check_schedule(
    num_inference_steps: int, jump_length: int, jump_n_sample: int, num_train_timesteps: int
) -> None:
    """Raise a one-line ``ValueError`` for a schedule diffusers would mis-handle."""
    if num_inference_steps < 1 or jump_length < 1 or jump_n_sample < 1:
        raise ValueError("num_inference_steps, jump_length and jump_n_sample must be >= 1")
    if num_inference_steps > num_train_timesteps:
        raise ValueError(
            f"num_inference_steps ({num_inference_steps}) exceeds the model's "
            f"{num_train_timesteps} training steps"
        )
    if num_train_timesteps % num_inference_steps:
        raise ValueError(
            f"num_inference_steps ({num_inference_steps}) must divide the "
            f"{num_train_timesteps} training steps (diffusers strides by their ratio)"
        )


def repaint_timesteps(
    num_inference_steps: int, jump_length: int, jump_n_sample: int, num_train_timesteps: int = 1000
) -> np.ndarray:
    """The scheduler's visiting order of timesteps (reverse steps and forward jumps)."""
    sched = repaint_scheduler(num_train_timesteps=num_train_timesteps)
    sched.set_timesteps(num_inference_steps, jump_length, jump_n_sample)
    return sched.timesteps.numpy()


def unet_calls_per_image(num_inference_steps: int, jump_length: int, jump_n_sample: int) -> int:
    """UNet evaluations RePaint spends on one image: ``T + ceil((T - j) / j) * (r - 1) * j``.

    Every reverse step costs one evaluation; a jump is started at every multiple of ``j`` below
    ``T - j`` and repeated ``r - 1`` times, each replaying ``j`` reverse steps.
    (T=250, j=10, r=10: 2,410; T=100: 910; T=50, j=5, r=5: 230.)
    """
    t, j, r = num_inference_steps, jump_length, jump_n_sample
    n_jump_points = len(range(0, t - j, j))
    return t + n_jump_points * (r - 1) * j


@dataclass
class CallCounter:
    """UNet forward calls and the images they evaluated (rows summed over calls)."""

    calls: int = 0
    images: int = 0


@contextlib.contextmanager
def count_unet_calls(unet: torch.nn.Module) -> Iterator[CallCounter]:
    """Count ``unet``'s forward calls (and batch rows) inside the ``with`` block."""
    counter = CallCounter()

    def hook(_module, args, _output):
        counter.calls += 1
        counter.images += int(args[0].shape[0]) if args else 0

    handle = unet.register_forward_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()


# -- batched RePaint -------------------------------------------------------------------------
#: schedules of at least this many steps (reverse steps and jumps) show a progress bar per step
LONG_SCHEDULE = 100


def _check_inputs(images: torch.Tensor, keep: torch.Tensor, seeds: Sequence[int]) -> None:
    check_images_and_mask(images, keep, "keep mask", "1 = keep, 0 = inpaint")
    if len(seeds) != images.shape[0]:
        raise ValueError(f"got {len(seeds)} seeds for {images.shape[0]} images; give one per image")


@torch.no_grad()
def _repaint_chunk(
    unet: UNet2DModel,
    sched: RePaintScheduler,
    original: torch.Tensor,
    keep: torch.Tensor,
    gens: list[torch.Generator],
    scaling: Scaling,
    precision: str = "fp32",
) -> torch.Tensor:
    """RePaint of one chunk in model range, exactly the loop of diffusers' ``RePaintPipeline``
    (with a centred ``scaling``, each predicted clean image is kept in the data's range:
    :meth:`~xaistudy.models.ddpm.Scaling.bound_noise`); the UNet runs in ``precision``, the
    scheduler's steps in float32."""
    from diffusers.utils.torch_utils import randn_tensor

    dev = original.device
    x = randn_tensor(original.shape, generator=gens, device=dev, dtype=original.dtype)
    t_last = sched.timesteps[0] + 1
    long = len(sched.timesteps) >= LONG_SCHEDULE
    for t in tqdm(sched.timesteps, desc="RePaint steps", leave=False, disable=not long):
        if t < t_last:
            with numerics.autocast(dev, precision):
                eps = unet(numerics.layout(x), t).sample.float()
            eps = scaling.bound_noise(eps, x, sched.alphas_cumprod[int(t)])
            x = sched.step(eps, t, x, original, keep, gens).prev_sample
        else:
            x = sched.undo_step(x, t_last, gens)
        t_last = t
    return x


def repaint(
    unet: UNet2DModel,
    images: torch.Tensor,
    keep: torch.Tensor,
    seeds: Sequence[int],
    *,
    ddpm_scheduler: DDPMScheduler | None = None,
    num_inference_steps: int = 250,
    jump_length: int = 10,
    jump_n_sample: int = 10,
    eta: float = 1.0,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    desc: str | None = None,
    scaling: Scaling | None = None,
    precision: str = "fp32",
    compile: bool = False,
) -> torch.Tensor:
    """Inpaint ``images`` (B, 3, H, W) in [0, 1] where ``keep`` (B, 1, H, W) is 0.

    ``scaling`` is how images enter ``unet`` (a trained
    :class:`~xaistudy.models.ddpm.DDPMResult`'s ``scaling``); the default maps [0, 1] to
    [-1, 1], as diffusers' pipeline does.

    Each image has its own mask and its own generator seeded with ``seeds[i]``; ``batch_size``
    (default or 0: all at once, on a GPU as many as fit in 70 % of its free memory,
    :func:`~xaistudy.models.precision.fitting_batch`) only trades memory for speed, never the
    result. ``precision`` and ``compile``: how the UNet runs (:mod:`xaistudy.models.precision`;
    the scheduler's steps stay float32). Pixels where ``keep == 1`` are returned unchanged
    (the final composite is exact). Under ``accelerate launch`` the images are shared out
    between the processes (:mod:`xaistudy.core.distributed`).
    """
    _check_inputs(images, keep, seeds)
    numerics.check_precision(precision)
    scaling = scaling or Scaling()
    dev = resolve_device(device)
    sched = repaint_scheduler(ddpm_scheduler, eta=eta)
    check_schedule(
        num_inference_steps, jump_length, jump_n_sample, sched.config.num_train_timesteps
    )
    sched.set_timesteps(num_inference_steps, jump_length, jump_n_sample, device=dev)
    unet = numerics.prepare(unet, dev, compile=compile)
    keep = (keep > 0.5).float()
    seeds = list(seeds)

    def inpaint(rows: range) -> torch.Tensor:
        bs = batch_size or max(len(rows), 1)
        if not batch_size and dev.type == "cuda" and len(rows):
            probe = scaling.to_model(images[rows.start : rows.start + 1].float().to(dev))
            step = sched.timesteps[0]
            bs = numerics.fitting_batch(unet, probe, lambda m, x: m(x, step), precision=precision,
                                        cap=len(rows))  # fmt: skip
        out = []
        starts = range(rows.start, rows.stop, bs)
        for i in tqdm(starts, desc=desc or "RePaint", leave=False, disable=len(starts) < 2):
            j = min(i + bs, rows.stop)
            x0 = scaling.to_model(images[i:j].float().to(dev))
            gens = generators(seeds[i:j], "cpu")
            x = _repaint_chunk(unet, sched, x0, keep[i:j].to(dev), gens, scaling, precision)
            out.append(scaling.from_model(x))
        return torch.cat(out).cpu() if out else images[rows.start : rows.stop].float().cpu()

    result = distributed.map_rows(inpaint, len(images))  # shared out under accelerate launch
    keep_cpu = keep.cpu()
    return keep_cpu * images.float().cpu() + (1 - keep_cpu) * result


@register_strategy("ibo", "IBO (inpainting)", stochastic=True)
def ibo(
    images: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int] | None = None,
    unet: UNet2DModel | None = None,
    ddpm_scheduler: DDPMScheduler | None = None,
    num_inference_steps: int = 250,
    jump_length: int = 10,
    jump_n_sample: int = 10,
    eta: float = 1.0,
    batch_size: int | None = None,
    device: str = "auto",
    scaling: Scaling | None = None,
    precision: str = "fp32",
    compile: bool = False,
) -> torch.Tensor:
    """IBO: RePaint the occluded pixels (``mask`` 1) with the normal-tissue DDPM ``unet``,
    every image with its own seed, in batches (:func:`repaint`'s options)."""
    if unet is None:
        raise ValueError("the ibo strategy needs unet= (a DDPM trained on normal tissue)")
    seeds = list(seeds) if seeds is not None else list(range(len(images)))
    return repaint(
        unet,
        images,
        1 - mask.float(),
        seeds,
        ddpm_scheduler=ddpm_scheduler,
        num_inference_steps=num_inference_steps,
        jump_length=jump_length,
        jump_n_sample=jump_n_sample,
        eta=eta,
        batch_size=batch_size,
        device=device,
        scaling=scaling,
        precision=precision,
        compile=compile,
    )
