"""Artifact store: expensive results cached on disk, keyed by a hash of what made them.

Every artifact lives at ``<root>/<kind>/<key><suffix>`` where ``key`` hashes the parameters
that produced it together with :data:`CODE_VERSION`. Writes are atomic (temporary file in the
same folder, then :func:`os.replace`), so a run killed halfway leaves either the old file or
none, never a truncated one; long loops store one file per item (:meth:`Store.cached_items`)
and resume from the items already finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

#: Bump when the meaning of a cached artifact changes, so old caches are not reused.
CODE_VERSION = "3"

ENV_CACHE = "XAISTUDY_CACHE"

_UMASK = os.umask(0)
os.umask(_UMASK)


def repo_root() -> Path:
    """The checkout root when the package runs from a source tree, else the working folder."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_cache_root() -> Path:
    """``$XAISTUDY_CACHE`` when set, else ``data/cache`` in the checkout."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else repo_root() / "data" / "cache"


def params_key(kind: str, params: Mapping[str, Any]) -> str:
    """A short stable hash of ``kind``, ``params`` (JSON, sorted keys) and the code version."""
    blob = json.dumps(
        {"kind": kind, "params": params, "version": CODE_VERSION}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


class Store:
    """Artifacts under ``root`` (default :func:`default_cache_root`), one folder per kind."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_root()

    def path(self, kind: str, params: Mapping[str, Any], suffix: str) -> Path:
        """Where the artifact of ``kind`` made with ``params`` lives."""
        return self.root / kind / f"{params_key(kind, params)}{suffix}"

    def exists(self, kind: str, params: Mapping[str, Any], suffix: str) -> bool:
        return self.path(kind, params, suffix).exists()

    # -- torch state (model weights, checkpoints) -------------------------------------------
    def save_state(self, kind: str, params: Mapping[str, Any], state: Mapping[str, Any]) -> Path:
        """Save a (nested) dict of tensors and plain values with :func:`torch.save`."""
        buf = io.BytesIO()
        torch.save(dict(state), buf)
        return atomic_write_bytes(self.path(kind, params, ".pt"), buf.getvalue())

    def load_state(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Load what :meth:`save_state` wrote (``weights_only=True``), or None if absent."""
        path = self.path(kind, params, ".pt")
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    # -- arrays, tables, json ----------------------------------------------------------------
    def save_arrays(self, kind: str, params: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
        return atomic_write_bytes(self.path(kind, params, ".npz"), _npz_bytes(arrays))

    def load_arrays(self, kind: str, params: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        path = self.path(kind, params, ".npz")
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def save_json(self, kind: str, params: Mapping[str, Any], obj: Any) -> Path:
        text = json.dumps(obj, indent=2, sort_keys=True, default=str)
        return atomic_write_bytes(self.path(kind, params, ".json"), text.encode())

    def load_json(self, kind: str, params: Mapping[str, Any]) -> Any | None:
        path = self.path(kind, params, ".json")
        return json.loads(path.read_text()) if path.exists() else None

    def cached_arrays(
        self,
        kind: str,
        params: Mapping[str, Any],
        compute: Callable[[], Mapping[str, Any]],
    ) -> dict[str, np.ndarray]:
        """Return the stored arrays of ``kind``/``params``, computing and storing them once."""
        found = self.load_arrays(kind, params)
        if found is not None:
            log.info("cache hit %s/%s", kind, params_key(kind, params))
            return found
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.save_arrays(kind, params, arrays)
        return arrays

    def cached_table(
        self, kind: str, params: Mapping[str, Any], compute: Callable[[], pd.DataFrame]
    ) -> pd.DataFrame:
        """Return the stored table of ``kind``/``params``, computing and storing it once."""
        path = self.path(kind, params, ".csv")
        if path.exists():
            return pd.read_csv(path)
        table = compute()
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
        return table

    def cached_items(
        self,
        kind: str,
        params: Mapping[str, Any],
        items: Iterable[Any],
        compute_one: Callable[[Any], Mapping[str, Any]],
        desc: str | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """Compute ``compute_one(item)`` for every item, one stored file per item.

        Items already in the store are loaded, not recomputed, so a loop interrupted at item k
        resumes at item k. ``str(item)`` must identify an item within ``params``.
        """
        folder = self.path(kind, params, ".items")
        items = list(items)
        out: list[dict[str, np.ndarray]] = []
        todo = sum(not (folder / f"{item}.npz").exists() for item in items)
        bar = tqdm(
            total=len(items), desc=desc or kind, initial=len(items) - todo, disable=todo == 0
        )
        for item in items:
            path = folder / f"{item}.npz"
            if path.exists():
                with np.load(path, allow_pickle=False) as data:
                    out.append({k: data[k] for k in data.files})
                continue
            arrays = {k: np.asarray(v) for k, v in compute_one(item).items()}
            atomic_write_bytes(path, _npz_bytes(arrays))
            out.append(arrays)
            bar.update(1)
        bar.close()
        return out
