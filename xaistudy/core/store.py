"""Artifact store: expensive results cached on disk, keyed by a hash of what made them.

Every artifact lives at ``<root>/<kind>/<key><suffix>`` where ``key`` hashes the parameters
that produced it together with :func:`code_version`: a fingerprint of the source of the code
that computes it (the import closure of the study that runs the stage, read statically) and the
versions of the libraries that compute the numbers, so an edited module or an upgraded library
never reuses an old result, and an edited figure or claim never recomputes one. Writes are
atomic (temporary file in the same folder, then :func:`os.replace`), so a run killed halfway
leaves either the old file or none, never a truncated one; each file gets a ``.sha256``
sidecar, and a file that fails its checksum or cannot be read is named in one warning, moved
aside as ``<file>.corrupt`` and recomputed. Long loops store one file per item
(:meth:`Store.cached_items`) and resume from the items already finished.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the libraries whose versions are part of every cache key (they compute the numbers)
KEY_LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "captum",
    "grad-cam",
    "zennit",
    "lime",
    "diffusers",
    "scikit-learn",
    "scikit-image",
    "scipy",
)

#: the suffix of the checksum file written beside every artifact
DIGEST_SUFFIX = ".sha256"

ENV_CACHE = "XAISTUDY_CACHE"
#: arrays larger than this (bytes) are cached as memory-mapped ``.npy`` files written row by row
#: (:meth:`Store.cached_arrays` with ``stream=True``) instead of one compressed ``.npz`` in memory
STREAM_BYTES = 2**29

#: ``allocate(name, shape, dtype)``: a writable array that becomes the cached array ``name``
Allocate = Callable[[str, tuple[int, ...], Any], np.ndarray]

_UMASK = os.umask(0)
os.umask(_UMASK)

#: the package's folder (``xaistudy/``); its parent is the checkout in a source tree
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def repo_root() -> Path:
    """The checkout root when the package runs from a source tree, else the working folder."""
    here = PACKAGE_DIR.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


#: set by the runner for a chapter's kernel: the folder the chapter's run is written into
OUT_VARIABLE = "XAISTUDY_OUT"


def default_out(name: str) -> Path:
    """Where chapter ``name``'s executed notebook, tables and figures go by default (the book
    renders this folder)."""
    return repo_root() / "book" / "chapters" / name


def default_cache_root() -> Path:
    """``$XAISTUDY_CACHE`` when set, else ``data/cache`` in the checkout."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else repo_root() / "data" / "cache"


def source_fingerprint(package_dir: str | Path) -> str:
    """A hash of every ``.py`` file under ``package_dir`` (relative path and content)."""
    package_dir = Path(package_dir)
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def library_versions(names: Iterable[str] = KEY_LIBRARIES) -> dict[str, str]:
    """The installed version of each distribution in ``names`` ("absent" when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``__init__`` as the package's name)."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _static_imports(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    # a submodule runs its packages' __init__ first
    for m in list(found):
        while "." in m:
            m = m.rpartition(".")[0]
            found.add(m)
    return {m for m in found if m in modules}


@functools.cache
def import_closure(module: str) -> tuple[str, ...]:
    """``module`` and every package module it imports, directly or not (read from the source,
    imports inside functions included): the code a stage computed in ``module`` can run."""
    modules = _modules()
    if module not in modules:
        raise KeyError(f"no module {module} in {PACKAGE_DIR}")
    parents = [module.rsplit(".", k)[0] for k in range(1, module.count(".") + 1)]
    seen, todo = set(), [module, *(p for p in parents if p in modules)]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_static_imports(m, modules[m], modules) - seen)
    return tuple(sorted(seen))


@functools.cache
def code_version(module: str | None = None) -> str:
    """What a cache key depends on besides its parameters: the source of the code that computes
    it and the versions of :data:`KEY_LIBRARIES` (computed once per process and module).

    ``module`` names the study that runs the stage: only the source of its
    :func:`import_closure` counts (a study imports no page), so editing a figure, a table, a
    claim or another study reuses every stored result, while editing code the study runs (a
    training function, a generator) recomputes its stages. Without ``module``, the whole
    package.
    """
    if module is None or module not in _modules():
        source = source_fingerprint(PACKAGE_DIR)
    else:
        digest = hashlib.sha256()
        for name in import_closure(module):
            digest.update(name.encode() + b"\0" + _modules()[name].read_bytes() + b"\0")
        source = digest.hexdigest()
    blob = json.dumps({"source": source, "libraries": library_versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: the layer whose functions orchestrate cached stages: a stage's code is its study's closure
STUDIES = "xaistudy.studies."


def calling_module() -> str | None:
    """The innermost study module (``xaistudy.studies.*``) on the call stack: the code that
    made a stage's inputs and runs it is that study's :func:`import_closure`. None (the whole
    package counts) when no study is on the stack, e.g. a library function called directly."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith(STUDIES):
            return name
        frame = frame.f_back
    return None


def params_key(kind: str, params: Mapping[str, Any], module: str | None = None) -> str:
    """A short stable hash of ``kind``, ``params`` (JSON, sorted keys) and
    :func:`code_version` of ``module``."""
    blob = json.dumps(
        {"kind": kind, "params": params, "version": code_version(module)},
        sort_keys=True,
        default=str,
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


class CorruptArtifact(ValueError):
    """A cached file whose content does not match the checksum written with it."""


def digest_path(path: Path) -> Path:
    """The checksum file beside ``path``."""
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_artifact(path: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically, then its SHA-256 beside it (see :func:`read_artifact`)."""
    path = atomic_write_bytes(path, data)
    atomic_write_bytes(digest_path(path), hashlib.sha256(data).hexdigest().encode())
    return path


def _verify(path: Path) -> None:
    digest = digest_path(path)
    if not digest.exists():  # written without a checksum: the loader's own checks decide
        return
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest.read_text().strip():
        raise CorruptArtifact("checksum mismatch")


def quarantine(path: Path, err: BaseException) -> Path:
    """Move a bad cache file aside as ``<file>.corrupt`` and say so in one warning line."""
    aside = path.with_name(path.name + ".corrupt")
    lines = str(err).strip().splitlines()
    reason = f"{type(err).__name__}: {lines[0][:120]}" if lines else type(err).__name__
    os.replace(path, aside)
    digest_path(path).unlink(missing_ok=True)
    log.warning("corrupt cache file %s (%s); moved to %s, recomputing", path, reason, aside.name)
    return aside


def read_artifact(path: str | Path, load: Callable[[Path], T]) -> T | None:
    """``load(path)`` after checking the file's checksum; None when the file is absent.

    A file that fails its checksum or whose loading raises is quarantined (see
    :func:`quarantine`) and None is returned, so the caller recomputes it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        _verify(path)
        return load(path)
    except Exception as err:  # any failure to read a cache file means: recompute it
        quarantine(path, err)
        return None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _load_torch(path: Path) -> dict[str, Any]:
    import torch  # here, not at the top: the command line's help and lists need no torch

    return torch.load(path, map_location="cpu", weights_only=True)


class Store:
    """Artifacts under ``root`` (default :func:`default_cache_root`), one folder per kind."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_root()

    def path(self, kind: str, params: Mapping[str, Any], suffix: str) -> Path:
        """Where the artifact of ``kind`` made with ``params`` lives; its key includes the source
        of the code that computes it (:func:`calling_module`'s :func:`import_closure`)."""
        return self.root / kind / f"{params_key(kind, params, calling_module())}{suffix}"

    def exists(self, kind: str, params: Mapping[str, Any], suffix: str) -> bool:
        return self.path(kind, params, suffix).exists()

    # -- torch state (model weights, checkpoints) -------------------------------------------
    def save_state(
        self,
        kind: str,
        params: Mapping[str, Any],
        state: Mapping[str, Any],
        suffix: str = ".pt",
    ) -> Path:
        """Save a (nested) dict of tensors and plain values with :func:`torch.save`."""
        import torch

        buf = io.BytesIO()
        torch.save(dict(state), buf)
        return write_artifact(self.path(kind, params, suffix), buf.getvalue())

    def load_state(
        self, kind: str, params: Mapping[str, Any], suffix: str = ".pt"
    ) -> dict[str, Any] | None:
        """Load what :meth:`save_state` wrote (``weights_only=True``), or None if absent or
        corrupt (then moved aside)."""
        return read_artifact(self.path(kind, params, suffix), _load_torch)

    # -- arrays, tables, json ----------------------------------------------------------------
    def save_arrays(self, kind: str, params: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
        return write_artifact(self.path(kind, params, ".npz"), _npz_bytes(arrays))

    def load_arrays(self, kind: str, params: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        return read_artifact(self.path(kind, params, ".npz"), _load_npz)

    def save_json(self, kind: str, params: Mapping[str, Any], obj: Any) -> Path:
        text = json.dumps(obj, indent=2, sort_keys=True, default=str)
        return write_artifact(self.path(kind, params, ".json"), text.encode())

    def load_json(self, kind: str, params: Mapping[str, Any]) -> Any | None:
        return read_artifact(self.path(kind, params, ".json"), lambda p: json.loads(p.read_text()))

    def cached_arrays(
        self,
        kind: str,
        params: Mapping[str, Any],
        compute: Callable[..., Mapping[str, Any]],
        *,
        stream: bool = False,
    ) -> dict[str, np.ndarray]:
        """Return the stored arrays of ``kind``/``params``, computing and storing them once.

        ``stream=True`` (for arrays too large to hold twice): ``compute(allocate)`` fills arrays
        that ``allocate(name, shape, dtype)`` maps onto ``.npy`` files, row by row; any other
        array it returns is saved beside them. The folder of files appears only once complete,
        and the arrays come back memory-mapped read-only.
        """
        if stream:
            return self._cached_npy_folder(kind, params, compute)
        found = self.load_arrays(kind, params)
        if found is not None:
            log.info("cache hit %s/%s", kind, self.path(kind, params, ".npz").stem)
            return found
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.save_arrays(kind, params, arrays)
        return arrays

    def _cached_npy_folder(
        self, kind: str, params: Mapping[str, Any], compute: Callable[[Allocate], Mapping]
    ) -> dict[str, np.ndarray]:
        folder = self.path(kind, params, ".arrays")
        if folder.is_dir():
            try:
                return {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}
            except (OSError, ValueError) as err:
                log.warning("corrupt cache folder %s (%s); recomputing", folder, err)
                shutil.rmtree(folder)
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

        def allocate(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.lib.format.open_memmap(tmp / f"{name}.npy", "w+", dtype, tuple(shape))

        try:
            arrays = dict(compute(allocate))
            for name, array in arrays.items():
                if isinstance(array, np.memmap) and Path(array.filename) == tmp / f"{name}.npy":
                    array.flush()
                else:
                    np.save(tmp / f"{name}.npy", np.asarray(array))
            del arrays
            try:
                os.replace(tmp, folder)
            except OSError:  # another process stored the same folder first: keep theirs
                if not folder.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}

    def cached_table(
        self, kind: str, params: Mapping[str, Any], compute: Callable[[], pd.DataFrame]
    ) -> pd.DataFrame:
        """Return the stored table of ``kind``/``params``, computing and storing it once."""
        path = self.path(kind, params, ".csv")
        found = read_artifact(path, pd.read_csv)
        if found is not None:
            return found
        table = compute()
        write_artifact(path, table.to_csv(index=False).encode())
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
        resumes at item k (a corrupt item file is moved aside and recomputed). ``str(item)``
        must identify an item within ``params``.
        """
        folder = self.path(kind, params, ".items")
        items = list(items)
        found = [read_artifact(folder / f"{item}.npz", _load_npz) for item in items]
        todo = sum(f is None for f in found)
        bar = tqdm(
            total=len(items), desc=desc or kind, initial=len(items) - todo, disable=todo == 0
        )
        out: list[dict[str, np.ndarray]] = []
        for item, arrays in zip(items, found, strict=True):
            if arrays is None:
                arrays = {k: np.asarray(v) for k, v in compute_one(item).items()}
                write_artifact(folder / f"{item}.npz", _npz_bytes(arrays))
                bar.update(1)
            out.append(arrays)
        bar.close()
        return out
