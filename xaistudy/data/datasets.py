"""Torch datasets by name: the synthetic defaults and the papers' real datasets, one interface.

Every dataset yields the same sample structure (see :mod:`xaistudy.data.registry`), so chapters
can swap ``dataset="synthetic-he"`` for ``"camelyon16"`` without other changes.
Synthetic datasets are generated once per parameter set and cached in the artifact store.
Real datasets read files under a ``data_root`` folder (default ``$XAISTUDY_DATA/<name>``, else
``data/<name>`` in the repository); :func:`check_data_root` says in one line what is missing
before anything runs, and the loaders cache what they extract in the store.
The loader modules register themselves in :data:`~xaistudy.data.registry.DATASETS`; they are
imported here only when a name is looked up (:func:`get_spec`), never at import time.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError
from torch.utils.data import Dataset
from tqdm import tqdm

from xaistudy.data import synthetic
from xaistudy.data.registry import (
    CHAPTER_ARGUMENTS,
    DATASETS,
    README_HINT,
    SPLIT_OFFSET,
    SPLITS,
    ArrayDataset,
    DataRootError,
    DatasetSpec,
    check_split,
    files_fingerprint,
    patient_split,
    register_dataset,
    relative_paths_key,
    require,
    require_glob,
    resolve_data_root,
)
from xaistudy.core.params import ParamError, register_input_check
from xaistudy.core.store import STREAM_BYTES, Store

__all__ = [
    "DATASETS",
    "README_HINT",
    "SPLITS",
    "ArrayDataset",
    "DataRootError",
    "DatasetSpec",
    "check_data_root",
    "check_options",
    "dataset_names",
    "files_fingerprint",
    "get_dataset",
    "get_spec",
    "patient_split",
    "register_dataset",
    "relative_paths_key",
    "require",
    "require_glob",
    "resolve_data_root",
]

#: the modules of the real datasets (and the shortcut variant), imported on first lookup
LOADER_MODULES = ("camelyon16", "coco", "diagset", "folders", "pannuke", "shortcuts")


def _import_loaders() -> None:
    """Import every loader module, so that all of them have registered their datasets."""
    for module in LOADER_MODULES:
        importlib.import_module(f"xaistudy.data.{module}")


def dataset_names() -> list[str]:
    """The names of every registered dataset, generated and real, sorted."""
    _import_loaders()
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``; a one-line error listing the names otherwise."""
    if name not in DATASETS:
        _import_loaders()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


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
    check_split(split)
    root = check_data_root(name, data_root)
    if root is not None:
        kwargs["data_root"] = root
    return spec.factory(split=split, **kwargs)


def _stack(tiles: Sequence[synthetic.Tile]) -> dict[str, np.ndarray]:
    return {
        "images": np.stack([t.image for t in tiles]),
        "labels": np.array([t.label for t in tiles], np.int64),
        "masks": np.stack([t.mask for t in tiles]),
        "nuclei_type": np.stack([t.nuclei_type for t in tiles]),
    }


def _row(tile: synthetic.Tile) -> dict[str, np.ndarray]:
    row = {
        "images": tile.image,
        "labels": np.int64(tile.label),
        "masks": tile.mask,
        "nuclei_type": tile.nuclei_type,
    }
    if "patient_id" in tile.meta:
        row["patient_id"] = np.int64(tile.meta["patient_id"])
    return {k: np.asarray(v) for k, v in row.items()}


def _generate(
    kind: str,
    params: Mapping[str, Any],
    make: Callable[[int], synthetic.Tile],
    n: int,
    store: Store | None,
) -> dict[str, np.ndarray]:
    desc = f"{kind} {params.get('split', '')}".strip()

    def compute() -> dict[str, np.ndarray]:
        tiles = [make(i) for i in tqdm(range(n), desc=desc)]
        arrays = _stack(tiles)
        if tiles and "patient_id" in tiles[0].meta:
            arrays["patient_id"] = np.array([t.meta["patient_id"] for t in tiles], np.int64)
        return arrays

    def stream(allocate) -> dict[str, np.ndarray]:  # each tile written once, never stacked
        arrays: dict[str, np.ndarray] = {}
        for i in tqdm(range(n), desc=desc):
            row = _row(make(i))
            if not arrays:
                arrays = {k: allocate(k, (n, *v.shape), v.dtype) for k, v in row.items()}
            for k, v in row.items():
                arrays[k][i] = v
        return arrays

    size = int(params.get("size", 0))
    big = n * size * size * 3 > STREAM_BYTES  # the images alone
    return (store or Store()).cached_arrays(
        kind, dict(params), stream if big else compute, stream=big
    )


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
    check_split(split)
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
    check_split(split)
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
    check_split(split)
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


@register_input_check
def check_dataset_params(params) -> None:
    """Every dataset a chapter's parameters name: its options and its folder (one-line
    :class:`ParamError` otherwise)."""
    for name_field, (root_field, options_field) in params.DATASET_FIELDS.items():
        name = getattr(params, name_field)
        try:
            check_options(name, getattr(params, options_field))
            check_data_root(name, getattr(params, root_field))
        except (DataRootError, ValueError) as err:  # the hint names this chapter's parameters
            text = str(err).replace("data_root ", f"{root_field} ", 1)
            raise ParamError(text.replace("data_options", options_field)) from None
