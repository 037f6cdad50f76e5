"""Every random state a training run consumes, captured with a checkpoint and restored on
resumption (torch's CPU and CUDA generators, NumPy's, Python's and the data loader's), so an
interrupted run ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

log = logging.getLogger(__name__)


def loader_generators(loader: DataLoader) -> list[torch.Generator]:
    """The generators that drive ``loader``'s shuffling (its own and its sampler's)."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    found = [
        getattr(loader, "generator", None),
        getattr(getattr(loader, "sampler", None), "generator", None),
        getattr(getattr(batch_sampler, "sampler", None), "generator", None),
    ]
    unique: dict[int, torch.Generator] = {}
    for gen in found:
        if isinstance(gen, torch.Generator):
            unique.setdefault(id(gen), gen)
    return list(unique.values())


def capture(loader: DataLoader) -> dict[str, Any]:
    """Every random state training consumes, in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_version, torch.tensor(py_state, dtype=torch.int64), py_gauss],
        "loader": [gen.get_state() for gen in loader_generators(loader)],
    }


def restore(state: Mapping[str, Any], loader: DataLoader) -> None:
    """Set every random state :func:`capture` took (``loader``'s generators included)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(
        ("MT19937", keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached)
    )
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state.tolist()), gauss))
    generators = loader_generators(loader)
    if len(generators) != len(state["loader"]):
        log.warning("loader generators changed since the checkpoint; shuffling may differ")
        return
    for gen, gen_state in zip(generators, state["loader"], strict=True):
        gen.set_state(gen_state)
