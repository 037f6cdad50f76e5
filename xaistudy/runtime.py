"""How a chapter's numbers are made the same on every machine: threads and seeds.

Results of a CPU run depend on the number of threads the numeric libraries split their
reductions into, not on the machine's core count; :func:`fix_threads` sets that number (the
``threads`` parameter of every chapter) for torch and the BLAS/OpenMP pools, and turns on
torch's deterministic algorithms.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

log = logging.getLogger(__name__)


def fix_threads(threads: int) -> dict[str, object]:
    """Use ``threads`` CPU threads in torch and the BLAS/OpenMP pools; deterministic kernels.

    Returns what was set, for the chapter's run record.
    """
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first parallel work; keep what is set
        pass
    threadpool_limits(limits=threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return {"threads": threads, "interop_threads": torch.get_num_interop_threads()}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
