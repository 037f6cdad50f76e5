"""Torch datasets by name: the synthetic defaults and the papers' real datasets, one interface.

Every dataset yields the same sample structure, a dict with

``image``        float32 tensor (3, H, W) in [0, 1]
``label``        int64 scalar
``mask``         float32 tensor (1, H, W): where the class evidence lives (tumour, artifact, ...)
``nuclei_type``  int64 tensor (H, W): 0 background, 1 neoplastic, 2 non-neoplastic (zeros if none)
``index``        int64 scalar, the sample's position in its split

so chapters can swap ``dataset="synthetic-he"`` for ``"camelyon16"`` without other changes.
Synthetic datasets are generated once per parameter set and cached in the artifact store.
Real datasets read files under a ``data_root`` folder (default ``$XAISTUDY_DATA/<name>``, else
``data/<name>`` in the repository); :func:`check_data_root` says in one line what is missing
before anything runs, and the loaders cache what they extract in the store.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter, ValidationError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from xaistudy.data import synthetic
from xaistudy.store import Store, repo_root

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


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; a one-line error listing the names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def resolve_data_root(name: str, data_root: str | Path | None = None) -> Path:
    """``data_root`` when given, else ``$XAISTUDY_DATA/<name>``, else ``<repo>/data/<name>``."""
    if data_root not in (None, ""):
        return Path(data_root).expanduser()
    base = os.environ.get("XAISTUDY_DATA")
    return (Path(base).expanduser() if base else repo_root() / "data") / name


def check_data_root(name: str, data_root: str | Path | None = None) -> Path | None:
    """Check that dataset ``name`` can be read; return its resolved root (None if generated).

    Raises :class:`DataRootError` in one line naming what is missing and where it is expected.
    """
    spec = get_spec(name)
    if not spec.needs_root:
        if data_root not in (None, ""):
            raise DataRootError(
                f"dataset '{name}' is generated, not read from files: leave data_root empty"
            )
        return None
    root = resolve_data_root(name, data_root)
    if not root.is_dir():
        raise DataRootError(
            f"dataset '{name}': data_root {root} does not exist; expected {spec.layout} "
            f"({README_HINT})"
        )
    if spec.check_root is not None:
        spec.check_root(root)
    return root


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse options that dataset ``name``'s factory does not take, or values of the wrong
    type for its signature (one line)."""
    spec = get_spec(name)
    allowed = spec.options()
    hints = typing.get_type_hints(spec.factory)
    for key in sorted(options):
        if key in CHAPTER_ARGUMENTS:
            raise DataRootError(
                f"data option '{key}' of dataset '{name}' is set by the chapter's own parameters"
            )
        if key not in allowed:
            raise DataRootError(
                f"dataset '{name}' has no option '{key}'; allowed: {', '.join(allowed) or 'none'}"
            )
        if key in hints:
            try:
                TypeAdapter(hints[key]).validate_python(options[key], strict=False)
            except ValidationError as err:
                raise DataRootError(
                    f"bad data option '{key}' of dataset '{name}': {options[key]!r} "
                    f"({err.errors()[0]['msg']})"
                ) from None


def get_dataset(
    name: str, split: str = "train", data_root: str | Path | None = None, **kwargs: Any
) -> Dataset:
    """The dataset ``name`` for ``split``; a one-line error for unknown names, splits, roots.

    ``data_root`` is used by real datasets only (default :func:`resolve_data_root`).
    """
    spec = get_spec(name)
    _check_split(split)
    root = check_data_root(name, data_root)
    if root is not None:
        kwargs["data_root"] = root
    return spec.factory(split=split, **kwargs)


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


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")


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
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255,
            "label": torch.tensor(self.labels[i]),
            "mask": torch.from_numpy(self.masks[i].astype(np.float32))[None],
            "nuclei_type": torch.from_numpy(self.nuclei_type[i].astype(np.int64)),
            "index": torch.tensor(i),
        }
        for key, values in self.extra.items():
            sample[key] = torch.tensor(values[i])
        return self.transform(sample) if self.transform else sample


def _stack(tiles: Sequence[synthetic.Tile]) -> dict[str, np.ndarray]:
    return {
        "images": np.stack([t.image for t in tiles]),
        "labels": np.array([t.label for t in tiles], np.int64),
        "masks": np.stack([t.mask for t in tiles]),
        "nuclei_type": np.stack([t.nuclei_type for t in tiles]),
    }


def _generate(
    kind: str,
    params: Mapping[str, Any],
    make: Callable[[int], synthetic.Tile],
    n: int,
    store: Store | None,
) -> dict[str, np.ndarray]:
    def compute() -> dict[str, np.ndarray]:
        tiles = [make(i) for i in tqdm(range(n), desc=f"{kind} {params.get('split', '')}".strip())]
        arrays = _stack(tiles)
        if tiles and "patient_id" in tiles[0].meta:
            arrays["patient_id"] = np.array([t.meta["patient_id"] for t in tiles], np.int64)
        return arrays

    return (store or Store()).cached_arrays(kind, dict(params), compute)


@register_dataset("synthetic-he", kind="tumour-tiles")
def synthetic_he(
    split: str = "train",
    n: int = 200,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
) -> ArrayDataset:
    """H&E lymph-node tiles, normal (0) vs containing metastatic tumour (1), balanced.

    Sample ``i`` is tumour when ``i`` is odd, so any prefix is balanced within one tile.
    """
    _check_split(split)
    offset = SPLIT_OFFSET[split]
    params = {"split": split, "n": n, "size": size, "seed": seed}
    arrays = _generate(
        "synthetic-he",
        params,
        lambda i: synthetic.he_tile(seed, offset + i, size=size, tumour=bool(i % 2)),
        n,
        store,
    )
    return ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        arrays["nuclei_type"],
        classes=synthetic.HE_CLASSES,
        transform=transform,
    )


@register_dataset("synthetic-grading", kind="grading")
def synthetic_grading(
    split: str = "train",
    n_per_class: int = 20,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
) -> ArrayDataset:
    """Seven-class grading tiles (A, N, R1-R5), ``n_per_class`` each, classes interleaved."""
    _check_split(split)
    offset = SPLIT_OFFSET[split]
    k = len(synthetic.GRADES)
    params = {"split": split, "n_per_class": n_per_class, "size": size, "seed": seed}
    arrays = _generate(
        "synthetic-grading",
        params,
        lambda i: synthetic.grading_tile(
            seed, offset + i, size=size, grade=synthetic.GRADES[i % k]
        ),
        n_per_class * k,
        store,
    )
    return ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        arrays["nuclei_type"],
        classes=synthetic.GRADES,
        transform=transform,
    )


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


@register_dataset("synthetic-pcle", kind="pcle")
def synthetic_pcle(
    split: str = "train",
    n_patients: int = 20,
    frames_per_patient: int = 8,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
) -> ArrayDataset:
    """pCLE-like frames, glioblastoma (0) vs meningioma (1), split by patient (80/10/10).

    A patient's diagnosis is fixed (even ids meningioma, odd glioblastoma); every frame of a
    patient lies in the same split. Samples carry ``patient_id``.
    """
    _check_split(split)
    patients = patient_split(n_patients, seed)[split]
    if len(patients) == 0:
        raise ValueError(f"split '{split}' has no patients; use n_patients >= 3")
    params = {
        "split": split,
        "n_patients": n_patients,
        "fpp": frames_per_patient,
        "size": size,
        "seed": seed,
    }

    def make(i: int) -> synthetic.Tile:
        pid = int(patients[i // frames_per_patient])
        return synthetic.pcle_frame(
            seed,
            pid * 10_000 + i % frames_per_patient,
            size=size,
            meningioma=pid % 2 == 0,
            patient_id=pid,
        )

    arrays = _generate("synthetic-pcle", params, make, len(patients) * frames_per_patient, store)
    extra = {"patient_id": arrays["patient_id"]} if "patient_id" in arrays else {}
    return ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        arrays["nuclei_type"],
        classes=synthetic.PCLE_CLASSES,
        extra=extra,
        transform=transform,
    )


# The real datasets and the shortcut variant register themselves on import.
from xaistudy.data import camelyon16, coco, diagset, folders, pannuke, shortcuts  # noqa: E402, F401, I001
