"""How a chapter's numbers are made the same on every machine: threads and seeds.

Results of a CPU run depend on the number of threads the numeric libraries split their
reductions into, not on the machine's core count; :func:`fix_threads` sets that number (the
``threads`` parameter of every chapter) for torch and the BLAS/OpenMP pools, and turns on
torch's deterministic algorithms. A library loaded later (scipy's or scikit-learn's BLAS,
imported by LIME) takes its pool size from the environment, so the same number also goes into
:data:`THREAD_VARIABLES`; the runner starts a chapter's kernel with them already set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from collections.abc import Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)

#: environment variables the numeric libraries read when they are loaded
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_environment(threads: int) -> dict[str, str]:
    """The environment that makes every numeric library start with ``threads`` threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def set_deterministic_algorithms(on: bool, warn_only: bool = True) -> None:
    """``torch.use_deterministic_algorithms(on, warn_only=...)`` without loading the compiler.

    torch's function imports ``torch._inductor`` (1.7-2.3 s of every process's start on the
    2-core machine) only to copy the flag into the compiler's config; here the flag is set in
    torch itself, and in the compiler's config when the compiler is already loaded
    (:func:`xaistudy.models.precision.prepare` copies it when it compiles).
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without it: the public function
        torch.use_deterministic_algorithms(on, warn_only=warn_only)
        return
    setter(on, warn_only=warn_only)
    compiler = sys.modules.get("torch._inductor.config")
    if compiler is not None:
        compiler.deterministic = on


def fix_threads(threads: int) -> dict[str, object]:
    """Use ``threads`` CPU threads in torch and the BLAS/OpenMP pools; deterministic kernels.

    Returns what was set, for the chapter's run record.
    """
    from threadpoolctl import threadpool_limits

    os.environ.update(thread_environment(threads))  # for the libraries loaded from now on
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only settable before the first parallel work; keep what is set
        pass
    threadpool_limits(limits=threads)
    set_deterministic_algorithms(True, warn_only=True)
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"torch uses {torch.get_num_threads()} threads, not {threads}")
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


def check_device(device: str) -> None:
    """Raise :class:`ValueError` in one line when ``device`` does not exist on this machine."""
    if device in ("auto", "cpu"):
        return
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' is not available on this machine; use auto or cpu")
        return
    if not torch.cuda.is_available():
        raise ValueError(f"device '{device}' is not available: no CUDA GPU here; use auto or cpu")
    index = int(device.split(":")[1]) if ":" in device else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(
            f"device '{device}' is not available: this machine has {count} CUDA device(s), "
            f"cuda:0..cuda:{count - 1}"
        )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's and torch's global generators (CPU and CUDA) and make
    cuDNN deterministic: the book's one seeding function."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = not _FAST_KERNELS
    torch.backends.cudnn.benchmark = _FAST_KERNELS


#: set inside :func:`deterministic_kernels` ``(False)``: :func:`seed_everything` then leaves
#: cuDNN free to pick its fastest algorithms
_FAST_KERNELS = False


@contextlib.contextmanager
def deterministic_kernels(on: bool = True) -> Iterator[None]:
    """Deterministic kernels on (the book's default: the same numbers on every run) or off
    (cuDNN may then pick its fastest algorithm per shape, and some GPU reductions vary in the
    last bits between runs); the previous settings are restored on exit."""
    global _FAST_KERNELS
    before = (
        _FAST_KERNELS,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    _FAST_KERNELS = not on
    set_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = on, not on
    try:
        yield
    finally:
        _FAST_KERNELS = before[0]
        set_deterministic_algorithms(before[1], warn_only=before[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[3:]
