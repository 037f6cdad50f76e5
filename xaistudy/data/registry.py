"""The dataset registry and what every loader shares; imports no loader.

Loaders (:mod:`~xaistudy.data.camelyon16`, :mod:`~xaistudy.data.pannuke`, ...) import this
module only and register their factory where it is defined with :func:`register_dataset`;
:func:`xaistudy.data.datasets.get_dataset` imports the loader modules when a name is looked up,
so importing any single data module never runs into another.

Every dataset yields the same sample structure (:class:`ArrayDataset`), a dict with

``image``        float32 tensor (3, H, W) in [0, 1]
``label``        int64 scalar
``mask``         float32 tensor (1, H, W): where the class evidence lives (tumour, artifact, ...)
``nuclei_type``  int64 tensor (H, W): 0 background, 1 neoplastic, 2 non-neoplastic (zeros if none)
``index``        int64 scalar, the sample's position in its split
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from xaistudy.core.store import repo_root

SPLITS = ("train", "val", "test")
#: Tile indices of each split start here, so the splits never share a tile.
SPLIT_OFFSET = {"train": 0, "val": 1_000_000, "test": 2_000_000}
#: Where data/README.md documents every dataset (named in the one-line errors).
README_HINT = "see data/README.md"

DatasetFactory = Callable[..., Dataset]
#: Factory arguments that chapters set from their own parameters (not ``data_options``).
CHAPTER_ARGUMENTS = ("n", "n_per_class", "n_patients", "frames_per_patient", "size", "seed")


class DataRootError(ValueError):
    """A real dataset's files are missing or not in the expected layout (one line)."""


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its factory, what its samples are, and where its files go."""

    name: str
    factory: DatasetFactory
    #: ``tumour-tiles`` (binary, tumour mask), ``grading`` (A, N, R1-R5), ``nuclei`` (nuclei
    #: type maps), ``pcle`` (frames by patient), ``coco`` (natural images), ``images``
    kind: str
    #: one line: the files expected under ``data_root`` (empty for generated datasets)
    layout: str = ""
    #: raises :class:`DataRootError` when ``data_root`` lacks what the loader needs
    check_root: Callable[[Path], None] | None = None

    @property
    def needs_root(self) -> bool:
        return bool(self.layout)

    def options(self) -> list[str]:
        """The loader's own keyword arguments: not split, store, transform, data_root, nor the
        sizes and seed that chapters set from their parameters (:data:`CHAPTER_ARGUMENTS`)."""
        fixed = {"split", "store", "transform", "data_root", *CHAPTER_ARGUMENTS}
        params = inspect.signature(self.factory).parameters
        return [k for k in params if k not in fixed]


#: every registered dataset by name (the loaders' entries appear once their module is imported;
#: :func:`xaistudy.data.datasets.get_spec` imports them)
DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    kind: str = "images",
    layout: str = "",
    check_root: Callable[[Path], None] | None = None,
) -> Callable[[DatasetFactory], DatasetFactory]:
    """Register ``factory(split=..., **kwargs)`` under ``name``.

    Real datasets give ``layout`` (one line naming the expected files; the factory then takes
    ``data_root``) and usually ``check_root``, a fast check that raises
    :class:`DataRootError` naming the first missing file or folder.
    """

    def wrap(factory: DatasetFactory) -> DatasetFactory:
        DATASETS[name] = DatasetSpec(name, factory, kind, layout, check_root)
        return factory

    return wrap


def check_split(split: str) -> None:
    """A one-line error unless ``split`` is one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")


def resolve_data_root(name: str, data_root: str | Path | None = None) -> Path:
    """``data_root`` when given, else ``$XAISTUDY_DATA/<name>``, else ``<repo>/data/<name>``."""
    if data_root not in (None, ""):
        return Path(data_root).expanduser()
    base = os.environ.get("XAISTUDY_DATA")
    return (Path(base).expanduser() if base else repo_root() / "data") / name


def files_fingerprint(paths: Iterable[str | Path]) -> str:
    """A short hash of file names and sizes: the cache key of data read from these files."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(f"{path.name}:{path.stat().st_size};".encode())
    return digest.hexdigest()[:16]


def relative_paths_key(root: Path, paths: Iterable[Path]) -> str:
    """A short hash of ``paths`` relative to ``root``, in order: which files a loader listed."""
    rel = "\n".join(str(Path(p).relative_to(root)) for p in paths)
    return hashlib.sha256(rel.encode()).hexdigest()[:16]


def require(path: Path, what: str, dataset: str) -> Path:
    """``path`` when it exists, else a one-line :class:`DataRootError` naming it."""
    if not path.exists():
        raise DataRootError(f"dataset '{dataset}': missing {what} {path} ({README_HINT})")
    return path


def require_glob(root: Path, pattern: str, what: str, dataset: str) -> list[Path]:
    """Files under ``root`` matching ``pattern`` (sorted); a one-line error when none do."""
    found = sorted(root.glob(pattern))
    if not found:
        raise DataRootError(
            f"dataset '{dataset}': no {what} in {root} (looked for {pattern}; {README_HINT})"
        )
    return found


def patient_split(n_patients: int, seed: int, shares=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Patient ids of each split (80/10/10 by default), every split non-empty when possible."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 7])).permutation(n_patients)
    n_val = max(1, round(shares[1] * n_patients)) if n_patients >= 3 else 0
    n_test = max(1, round(shares[2] * n_patients)) if n_patients >= 3 else 0
    n_train = n_patients - n_val - n_test
    return {
        "train": np.sort(order[:n_train]),
        "val": np.sort(order[n_train : n_train + n_val]),
        "test": np.sort(order[n_train + n_val :]),
    }


class ArrayDataset(Dataset):
    """Samples held as uint8/int arrays, converted to the common sample dict on access."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        masks: np.ndarray | None = None,
        nuclei_type: np.ndarray | None = None,
        classes: Sequence[str] = (),
        extra: Mapping[str, np.ndarray] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ):
        n, h, w = images.shape[:3]
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.masks = masks if masks is not None else np.zeros((n, h, w), bool)
        self.nuclei_type = nuclei_type if nuclei_type is not None else np.zeros((n, h, w), np.uint8)
        self.classes = tuple(classes)
        self.extra = dict(extra or {})
        self.transform = transform
        for name, arr in [("labels", self.labels), ("masks", self.masks)]:
            if len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        image = self.images[i]
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        sample = {
            # a copy: the arrays may be read-only memory-mapped files (Store, stream=True)
            "image": torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255,
            "label": torch.tensor(self.labels[i]),
            "mask": torch.from_numpy(self.masks[i].astype(np.float32))[None],
            "nuclei_type": torch.from_numpy(self.nuclei_type[i].astype(np.int64)),
            "index": torch.tensor(i),
        }
        for key, values in self.extra.items():
            sample[key] = torch.tensor(values[i])
        return self.transform(sample) if self.transform else sample
