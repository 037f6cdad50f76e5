"""The same code on one process or many: sharding with Hugging Face ``accelerate``.

Run any entry point under ``accelerate launch --multi_gpu --num_processes N`` (N GPUs; N CPU
processes on gloo when there is no GPU or ``ACCELERATE_USE_CPU=true``; accelerate's ``--cpu``
flag starts several processes only through MPI) and the heaviest loops split their work between
the processes:

- **RePaint** (:func:`xaistudy.evaluate.inpaint.repaint`) splits the *images*. Every image has
  its own seeded generator, so which process inpaints it does not change its noise.
- **RISE** (:func:`xaistudy.explain.rise.rise`) splits the *masks*: each process sums its share
  of ``score * mask`` and the sums are added.
- **DDPM training** (:func:`xaistudy.models.ddpm.train_ddpm`) splits every *batch*: all
  processes draw the batch's noise and timesteps from the same generator, each computes the
  loss of its slice, and the gradients are summed before the identical optimiser step, so the
  weights stay the same on every process.

Outside a launch these functions see one process and do nothing. The sharded results equal the
single-process ones up to the order of floating-point sums (``tests/test_distributed.py``
checks it with two CPU processes).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import torch


@cache
def _state():
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # CPU processes (gloo) when asked for, or when there is no GPU to give each process
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def launched() -> bool:
    """True inside ``accelerate launch`` (or torchrun) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size() -> int:
    """Number of processes sharing the work (1 outside a launch)."""
    return _state().num_processes if launched() else 1


def rank() -> int:
    """This process's index, 0..world_size() - 1 (0 outside a launch)."""
    return _state().process_index if launched() else 0


def is_main() -> bool:
    """True on the process that writes results (the only one outside a launch)."""
    return rank() == 0


def shard(n: int, index: int | None = None, size: int | None = None) -> range:
    """The contiguous share of ``range(n)`` of process ``index`` out of ``size`` (default: this
    process of this launch); the first ``n % size`` processes take one item more."""
    index = rank() if index is None else index
    size = world_size() if size is None else size
    if not 0 <= index < size:
        raise ValueError(f"process index {index} is outside 0..{size - 1}")
    per, extra = divmod(n, size)
    start = index * per + min(index, extra)
    return range(start, start + per + (1 if index < extra else 0))


def map_rows(fn: Callable[[range], torch.Tensor], n: int) -> torch.Tensor:
    """``fn(range(n))`` computed in shares: each process calls ``fn`` on its :func:`shard`
    (rows of the result in order), and every process gets the concatenated (CPU) result."""
    if world_size() == 1:
        return fn(range(n))
    from accelerate.utils import gather_object

    mine = fn(shard(n)).cpu()
    parts = gather_object([mine])
    return torch.cat(parts)


def sum_across(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the processes (itself outside a launch)."""
    if world_size() == 1:
        return t
    from accelerate.utils import reduce

    return reduce(t.contiguous(), reduction="sum")


def sum_gradients(module: torch.nn.Module) -> None:
    """Sum every parameter's gradient over the processes, in place.

    A process without a gradient (an empty share of the batch) contributes zeros, so every
    parameter must take part in the forward pass (as in a DDPM's UNet).
    """
    if world_size() == 1:
        return
    for p in module.parameters():
        if p.requires_grad:
            p.grad = sum_across(p.grad if p.grad is not None else torch.zeros_like(p))
