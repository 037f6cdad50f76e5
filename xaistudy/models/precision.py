"""How a model's forward passes run: numeric precision, memory layout and compilation.

The book computes in float32 by default, and every stored result was made that way. On a GPU
(and on CPUs with bfloat16 units) the diffusion model's forward passes, which are almost all of
IBO's cost, run several times faster in bfloat16 or float16 under ``torch.autocast``, in
``channels_last`` layout, and compiled (``torch.compile``). These are options of the functions
that train and sample (:func:`xaistudy.models.ddpm.train_ddpm`, :func:`~xaistudy.models.ddpm.
sample`, :func:`xaistudy.evaluate.inpaint.repaint`, :func:`xaistudy.models.train.fit`); the
tests check each reduced precision against float32 within stated tolerances.

What stays float32 whatever the option: the weights (autocast casts per operation), the
schedulers' arithmetic (each step's update of the sample) and the classifier's output
probabilities that the book scores (:func:`~xaistudy.models.classify.predict_proba`).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

#: the precisions a forward pass can run in: name -> autocast dtype (None: plain float32)
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def check_precision(precision: str) -> str:
    """``precision`` itself, or a one-line :class:`ValueError` naming the allowed ones."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def autocast(
    device: str | torch.device, precision: str = "fp32"
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``precision`` on ``device``'s type; ``fp32``: a context that
    changes nothing (so the default path is exactly the float32 code)."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def grad_scaler(device: str | torch.device, precision: str = "fp32") -> torch.amp.GradScaler:
    """A gradient scaler, enabled for ``fp16`` only (float16 gradients underflow without one;
    bfloat16 has float32's range and needs none)."""
    return torch.amp.GradScaler(
        torch.device(device).type, enabled=check_precision(precision) == "fp16"
    )


def channels_last_applies(device: str | torch.device) -> bool:
    """Whether convolutions on ``device`` are run in ``channels_last`` layout: on CUDA, where
    cuDNN's tensor-core kernels want it; on the CPU the layout is left as it is."""
    return torch.device(device).type == "cuda"


def prepare(module: nn.Module, device: str | torch.device, *, compile: bool = False) -> nn.Module:
    """``module`` on ``device`` in eval mode, in ``channels_last`` layout where that applies
    (:func:`channels_last_applies`), and compiled with ``torch.compile`` when ``compile``
    (the first calls then take longer; a compiled module computes what the original does)."""
    module = module.to(device).eval()
    if channels_last_applies(device):
        module = module.to(memory_format=torch.channels_last)
    if compile:
        import torch._inductor.config as compiler

        compiler.deterministic = torch.are_deterministic_algorithms_enabled()
        return torch.compile(module)
    return module


def layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout :func:`prepare` gave the model on ``x``'s device."""
    if x.ndim == 4 and channels_last_applies(x.device):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def fitting_batch(
    model: nn.Module,
    sample: torch.Tensor,
    call,
    *,
    precision: str = "fp32",
    fraction: float = 0.7,
    cap: int = 4096,
) -> int:
    """Images per batch that fit in ``fraction`` of the free memory of ``sample``'s CUDA
    device: one probing call ``call(model, batch)`` on two copies of ``sample`` (1, ...) gives
    the peak memory per image, and the batch is what the free memory holds at that rate (at
    least 1, at most ``cap``). Off CUDA: ``cap`` (host memory is not probed)."""
    dev = sample.device
    if dev.type != "cuda":
        return cap
    batch = sample.expand(2, *sample.shape[1:]).contiguous()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    with torch.no_grad(), autocast(dev, precision):
        call(model, layout(batch))
    torch.cuda.synchronize(dev)
    per_image = max((torch.cuda.max_memory_allocated(dev) - before) / 2, 1)
    free, _ = torch.cuda.mem_get_info(dev)
    return int(max(1, min(cap, fraction * free // per_image)))
