"""An unconditional DDPM (diffusers ``UNet2DModel`` + ``DDPMScheduler``) for tissue tiles.

The model of the IBO chapter learns what *normal* tissue looks like: it is trained on normal
tiles only and later fills occluded regions with normal tissue (RePaint, see
:mod:`xaistudy.evaluate.inpaint`). Images enter the model in [-1, 1]; the functions here take
and return [0, 1] tensors. Training is cached in the artifact store and resumes from a
checkpoint written after an epoch, at most every
:data:`~xaistudy.models.checkpoints.INTERVAL_S` seconds.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from xaistudy.core import distributed
from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store, atomic_write_bytes

if TYPE_CHECKING:  # diffusers is imported where a model is built (seconds of imports)
    from diffusers import DDPMScheduler, UNet2DModel
from xaistudy.models import precision as numerics
from xaistudy.models.checkpoints import CheckpointClock
from xaistudy.models.classifiers import resolve_device

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".ckpt.pt"


def build_unet(
    size: int,
    channels: Sequence[int] = (32, 64, 64),
    layers_per_block: int = 1,
    attention: bool = False,
) -> UNet2DModel:
    """A diffusers ``UNet2DModel`` for ``size``×``size`` RGB images.

    ``channels`` are the widths of the resolution levels (each level halves the size);
    ``attention`` adds self-attention at the lowest resolution (as in Ho et al.'s model).
    """
    channels = tuple(int(c) for c in channels)
    if size % 2 ** (len(channels) - 1):
        raise ValueError(f"size {size} must be divisible by 2**{len(channels) - 1}")
    down = ["DownBlock2D"] * len(channels)
    up = ["UpBlock2D"] * len(channels)
    if attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=size,
        in_channels=3,
        out_channels=3,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        norm_num_groups=min(8, min(channels)),
    )


def make_scheduler(num_train_timesteps: int = 1000) -> DDPMScheduler:
    """The linear-beta DDPM noise schedule of Ho et al. (betas 1e-4 .. 0.02 over 1000 steps);
    each step's predicted clean image is clipped to [-1, 1], which is [0, 1] under the default
    :class:`Scaling` (a centred one's tighter box is :meth:`Scaling.bound_noise`'s)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=1e-4 * 1000 / num_train_timesteps,
        beta_end=0.02 * 1000 / num_train_timesteps,
        beta_schedule="linear",
        clip_sample=True,
    )


@dataclass(frozen=True)
class Scaling:
    """How [0, 1] images enter a DDPM: ``(x - mean) / scale`` per channel.

    The default maps [0, 1] to [-1, 1] (Ho et al.). :meth:`of` centres each channel on the
    training images' mean, so that the tissue's mean colour is the model's zero, with the
    smallest scale that keeps [0, 1] inside [-1, 1] (the range the schedulers clip to;
    :meth:`bound_noise` clips to the box [0, 1] maps to). A small DDPM trained briefly on
    [-1, 1] gets its samples' overall colour wrong, and the classifier reads them as tumour
    (``benchmarks/ddpm_gate.py`` measures both).
    """

    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    scale: tuple[float, ...] = (0.5, 0.5, 0.5)

    @classmethod
    def of(cls, images, chunk: int = 256) -> Scaling:
        """Centred on each channel's mean over every pixel of ``images`` (N, C, H, W) in
        [0, 1] (a tensor, or tiles read on demand, in chunks of ``chunk``); scale
        ``max(mean, 1 - mean)``."""
        total = torch.zeros(images.shape[1], dtype=torch.float64)
        for i in range(0, len(images), chunk):
            total += images[i : i + chunk].double().sum(dim=(0, 2, 3))
        n = len(images) * images.shape[2] * images.shape[3]
        if n == 0:
            raise ValueError("Scaling.of: no images")
        mean = total / n
        return cls(tuple(mean.tolist()), tuple(torch.maximum(mean, 1 - mean).tolist()))

    def _view(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)

    def to_model(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the model's space."""
        return (images - self._view(self.mean, images)) / self._view(self.scale, images)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """The model's space -> [0, 1] images, clamped."""
        return (x * self._view(self.scale, x) + self._view(self.mean, x)).clamp(0, 1)

    @property
    def fills_clip_range(self) -> bool:
        """Whether [0, 1] maps onto exactly [-1, 1] in every channel (the default), so the
        schedulers' own clipping of the predicted clean image keeps it in the data's range."""
        return all(m == 0.5 and s == 0.5 for m, s in zip(self.mean, self.scale, strict=True))

    def bound_noise(
        self, noise: torch.Tensor, x: torch.Tensor, alpha_bar: torch.Tensor
    ) -> torch.Tensor:
        """The noise prediction at ``x`` (noise level ``alpha_bar``, the cumulative alpha) whose
        implied clean image is clipped to [0, 1] in every channel.

        The schedulers clip the predicted clean image to [-1, 1]; a centred scaling maps [0, 1]
        to a smaller box, and a clean image predicted outside it comes out saturated (white
        or black patches). Where the prediction is inside, ``noise`` is returned unchanged.
        """
        if self.fills_clip_range:
            return noise
        lo = self.to_model(torch.zeros(1, len(self.mean), 1, 1, dtype=x.dtype, device=x.device))
        hi = self.to_model(torch.ones_like(lo))
        a = torch.as_tensor(alpha_bar, dtype=x.dtype, device=x.device)
        x0 = (x - (1 - a).sqrt() * noise) / a.sqrt()
        return noise + (a / (1 - a)).sqrt() * (x0 - torch.maximum(torch.minimum(x0, hi), lo))


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the default :class:`Scaling`)."""
    return images * 2 - 1


def from_model_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return (images / 2 + 0.5).clamp(0, 1)


@dataclass
class DDPMResult:
    """A trained DDPM: the UNet, its noise schedule, the loss per epoch and how images enter
    the model (its :class:`Scaling`)."""

    unet: UNet2DModel
    scheduler: DDPMScheduler
    losses: list[float]
    from_cache: bool = False
    scaling: Scaling = Scaling()


def _save_checkpoint(store, kind, params, state) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(store.path(kind, params, CHECKPOINT_SUFFIX), buf.getvalue())


def batch_gradient(
    unet: UNet2DModel,
    alphas_cumprod: torch.Tensor,
    x0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    snr_gamma: float = 0.0,
    *,
    precision: str = "fp32",
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """Accumulate into ``unet``'s ``.grad`` the gradient of the batch's epsilon-prediction MSE
    (clean images ``x0`` in model range, their ``noise`` and timesteps ``t``); return the loss.
    ``snr_gamma`` > 0 weights each image's error by ``min(SNR(t), gamma) / SNR(t)`` (Min-SNR,
    Hang et al. 2023), which stops the nearly clean timesteps from dominating the gradient.
    ``precision``: the UNet's forward pass under autocast (:mod:`xaistudy.models.precision`;
    the loss is computed in float32); ``scaler``: a gradient scaler (fp16), which scales the
    loss before the backward pass.

    Under ``accelerate launch`` every process holds the whole batch (drawn from the same
    generator), takes its share of the rows, and the gradients are summed over the processes,
    so each one ends with the whole batch's gradient (:mod:`xaistudy.core.distributed`).
    """
    dev = alphas_cumprod.device
    batch, rows = len(x0), distributed.shard(len(x0))
    x0, noise, t = (v[rows.start : rows.stop].to(dev) for v in (x0, noise, t))
    loss = torch.zeros((), device=dev)
    if len(rows):  # a share may be empty (a last batch smaller than the processes)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = numerics.layout(a.sqrt() * x0 + (1 - a).sqrt() * noise)
        with numerics.autocast(dev, precision):
            predicted = unet(xt, t).sample.float()
        if snr_gamma:
            snr = (a / (1 - a)).flatten()
            error = F.mse_loss(predicted, noise, reduction="none").mean(dim=(1, 2, 3))
            loss = (error * snr.clamp(max=snr_gamma) / snr).mean()
        else:
            loss = F.mse_loss(predicted, noise)
        loss = loss * (len(rows) / batch)
        (scaler.scale(loss) if scaler is not None else loss).backward()
    distributed.sum_gradients(unet)
    return float(distributed.sum_across(loss.detach()))


def train_ddpm(
    images: torch.Tensor,
    *,
    channels: Sequence[int] = (32, 64, 64),
    layers_per_block: int = 1,
    attention: bool = False,
    num_train_timesteps: int = 1000,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 2e-4,
    flips: bool = True,
    ema_decay: float = 0.0,
    centre: bool = False,
    crop: int = 0,
    snr_gamma: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    store: Store | None = None,
    kind: str = "ddpm",
    params: Mapping[str, Any] | None = None,
) -> DDPMResult:
    """Train an unconditional DDPM (epsilon prediction, MSE) on ``images`` (N, 3, H, W) in [0, 1]
    (a tensor, or :class:`~xaistudy.data.tiles.Tiles` converted batch by batch).

    ``flips``: random horizontal/vertical flips and 90-degree rotations (tissue has no
    orientation). ``ema_decay`` > 0 keeps an exponential moving average of the weights
    (updated after every step) and returns it as the model. ``centre``: the model learns the
    channels centred on their mean (:meth:`Scaling.of` the images) instead of [-1, 1]; sample
    and inpaint with the result's ``scaling``. ``crop`` > 0: every step learns from a random
    ``crop``×``crop`` window of each image (the convolutional UNet still samples and inpaints
    whole images; on stationary tissue texture a step costs less for much the same lesson;
    ``benchmarks/ddpm_gate.py`` measures the gate with and without). ``snr_gamma``: see
    :func:`batch_gradient`. ``precision``: the forward passes under autocast (fp16 with a
    gradient scaler; :mod:`xaistudy.models.precision`); the weights stay float32.
    With ``store`` (then ``params`` must identify the data and every setting), a finished
    model is loaded instead of trained, and an interrupted run resumes from the last finished
    epoch.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
    if store is not None and params is None:
        raise ValueError("train_ddpm: pass params (what identifies this model) together with store")
    dev = resolve_device(device)
    size = images.shape[-1]
    depth = 2 ** (len(tuple(channels)) - 1)
    if crop and (crop > size or crop % depth):
        raise ValueError(f"crop must be at most {size} and divisible by {depth}, got {crop}")
    if snr_gamma < 0:
        raise ValueError(f"snr_gamma must be >= 0, got {snr_gamma}")
    numerics.check_precision(precision)
    seed_everything(seed)  # the initial weights depend on the seed only
    unet = build_unet(size, channels, layers_per_block, attention)
    scheduler = make_scheduler(num_train_timesteps)
    if store is not None:
        done = store.load_state(kind, params)
        if done is not None:
            unet.load_state_dict(done["model"])
            log.info("loaded trained DDPM from %s", store.path(kind, params, ".pt"))
            scaling = Scaling(*map(tuple, done["scaling"])) if "scaling" in done else Scaling()
            return DDPMResult(unet.to(dev).eval(), scheduler, list(done["losses"]), True, scaling)
    scaling = Scaling.of(images) if centre else Scaling()

    if not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
    unet.to(dev)
    if numerics.channels_last_applies(dev):
        unet.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr)
    scaler = numerics.grad_scaler(dev, precision)
    ema = [p.detach().clone() for p in unet.parameters()] if ema_decay else None
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    start = 0
    if store is not None:
        ckpt = store.load_state(kind, params, CHECKPOINT_SUFFIX)  # None when absent or corrupt
        if ckpt is not None:
            unet.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            if "scaler" in ckpt:
                scaler.load_state_dict(ckpt["scaler"])
            gen.set_state(ckpt["generator"])
            if ema is not None:
                ema = [t.to(dev) for t in ckpt["ema"]]
            losses, start = list(ckpt["losses"]), int(ckpt["epoch"])
            log.info("resuming DDPM training from epoch %d", start)

    data = images  # a tensor or tiles read on demand (xaistudy.data.tiles); batches converted
    n = len(data)
    alphas = scheduler.alphas_cumprod.to(dev)
    bar = tqdm(total=epochs, initial=start, desc="DDPM (normal tiles)", unit="epoch")
    clock = CheckpointClock()
    for epoch in range(start, epochs):
        unet.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch_size):
            x0 = scaling.to_model(data[order[i : i + batch_size]].float())
            if crop and crop < size:
                x0 = random_crops(x0, crop, gen)
            if flips:
                k = int(torch.randint(0, 4, (1,), generator=gen))
                x0 = torch.rot90(x0, k, dims=(2, 3))
                if torch.rand(1, generator=gen) < 0.5:
                    x0 = x0.flip(3)
            noise = torch.randn(x0.shape, generator=gen)
            t = torch.randint(0, num_train_timesteps, (len(x0),), generator=gen)
            opt.zero_grad(set_to_none=True)
            loss = batch_gradient(
                unet, alphas, x0, noise, t, snr_gamma, precision=precision, scaler=scaler
            )
            scaler.step(opt)  # opt.step() unless fp16 (then skipped on overflow)
            scaler.update()
            if ema is not None:
                with torch.no_grad():
                    for e, p in zip(ema, unet.parameters(), strict=True):
                        e.lerp_(p.detach(), 1 - ema_decay)
            total += loss * len(x0)
        losses.append(total / n)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        # one writer under accelerate launch
        if store is not None and distributed.is_main() and clock.due():
            state = {
                "model": {k: v.detach().cpu() for k, v in unet.state_dict().items()},
                "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
                "losses": losses,
                "epoch": epoch + 1,
            }
            if ema is not None:
                state["ema"] = [t.detach().cpu() for t in ema]
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            _save_checkpoint(store, kind, params, state)
    bar.close()
    if ema is not None:
        with torch.no_grad():
            for e, p in zip(ema, unet.parameters(), strict=True):
                p.copy_(e)
    unet.eval()
    if store is not None and distributed.is_main():
        model_state = {k: v.detach().cpu() for k, v in unet.state_dict().items()}
        state = {"model": model_state, "losses": losses}
        if centre:
            state["scaling"] = [list(scaling.mean), list(scaling.scale)]
        store.save_state(kind, params, state)
        store.path(kind, params, CHECKPOINT_SUFFIX).unlink(missing_ok=True)
    return DDPMResult(unet, scheduler, losses, scaling=scaling)


def random_crops(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size``×``size`` window of each image (N, C, H, W), offsets from ``gen``."""
    n, _, h, w = images.shape
    top = torch.randint(0, h - size + 1, (n,), generator=gen).tolist()
    left = torch.randint(0, w - size + 1, (n,), generator=gen).tolist()
    return torch.stack(
        [im[:, y : y + size, x : x + size] for im, y, x in zip(images, top, left, strict=True)]
    )


def generators(seeds: Sequence[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One seeded ``torch.Generator`` per image, so an image's noise never depends on its batch."""
    return [torch.Generator(device=torch.device(device)).manual_seed(int(s)) for s in seeds]


@torch.no_grad()
def sample(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    seeds: Sequence[int],
    num_inference_steps: int = 50,
    device: str | torch.device = "auto",
    scaling: Scaling = Scaling(),
    batch_size: int | None = None,
    precision: str = "fp32",
    compile: bool = False,
) -> torch.Tensor:
    """Ancestral DDPM samples (len(seeds), 3, H, W) in [0, 1], one seeded generator per image
    (under ``accelerate launch`` the images are shared out between the processes);
    ``scaling``: the model's (a :class:`DDPMResult`'s ``scaling``; each step's predicted clean
    image is kept in [0, 1], :meth:`Scaling.bound_noise`); ``batch_size`` (default or 0: all
    at once, on a GPU as many as fit in its free memory) only bounds the memory, each image's
    noise comes from its own generator.
    ``precision`` and ``compile``: how the UNet runs (:mod:`xaistudy.models.precision`); the
    scheduler's steps stay float32."""
    from diffusers import DDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    dev = resolve_device(device)
    size = unet.config.sample_size
    unet = numerics.prepare(unet, dev, compile=compile)
    seeds = list(seeds)

    def chunk(start: int, stop: int) -> torch.Tensor:
        gens = generators(seeds[start:stop], dev)
        x = randn_tensor((stop - start, 3, size, size), generator=gens, device=dev)
        sched = DDPMScheduler.from_config(scheduler.config)
        sched.set_timesteps(num_inference_steps, device=dev)
        for t in tqdm(sched.timesteps, desc="DDPM samples", leave=False):
            with numerics.autocast(dev, precision):
                noise = unet(numerics.layout(x), t).sample.float()
            noise = scaling.bound_noise(noise, x, sched.alphas_cumprod[int(t)])
            x = sched.step(noise, t, x, generator=gens).prev_sample
        return scaling.from_model(x).cpu()

    def draw(rows: range) -> torch.Tensor:
        if not len(rows):
            return torch.zeros(0, 3, size, size)
        bs = batch_size or len(rows)
        if not batch_size and dev.type == "cuda":  # as many as fit in the free memory
            probe = torch.zeros(1, 3, size, size, device=dev)
            bs = numerics.fitting_batch(unet, probe, lambda m, x: m(x, 0), precision=precision,
                                        cap=len(rows))  # fmt: skip
        return torch.cat(
            [chunk(i, min(i + bs, rows.stop)) for i in range(rows.start, rows.stop, bs)]
        )

    return distributed.map_rows(draw, len(seeds))
