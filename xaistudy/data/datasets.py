"""Torch datasets by name: the synthetic defaults now, real datasets under the same interface.

Every dataset yields the same sample structure, a dict with

``image``        float32 tensor (3, H, W) in [0, 1]
``label``        int64 scalar
``mask``         float32 tensor (1, H, W): where the class evidence lives (tumour, artifact, ...)
``nuclei_type``  int64 tensor (H, W): 0 background, 1 neoplastic, 2 non-neoplastic (zeros if none)
``index``        int64 scalar, the sample's position in its split

so chapters can swap ``dataset="synthetic-he"`` for a real dataset without other changes.
Synthetic datasets are generated once per parameter set and cached in the artifact store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from xaistudy.data import synthetic
from xaistudy.store import Store

SPLITS = ("train", "val", "test")
#: Tile indices of each split start here, so the splits never share a tile.
SPLIT_OFFSET = {"train": 0, "val": 1_000_000, "test": 2_000_000}

DatasetFactory = Callable[..., Dataset]
DATASETS: dict[str, DatasetFactory] = {}


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Register a dataset factory ``factory(split=..., **kwargs)`` under ``name``."""

    def wrap(factory: DatasetFactory) -> DatasetFactory:
        DATASETS[name] = factory
        return factory

    return wrap


def get_dataset(name: str, split: str = "train", **kwargs: Any) -> Dataset:
    """The dataset ``name`` for ``split``; a one-line error for unknown names or splits."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(sorted(DATASETS))}")
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")
    return DATASETS[name](split=split, **kwargs)


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


@register_dataset("synthetic-he")
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


@register_dataset("synthetic-grading")
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


@register_dataset("synthetic-pcle")
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
