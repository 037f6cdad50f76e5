"""pCLE tissue classifiers as in You et al. (2024): centre crop, augmentation, AdaMax, early stop.

:func:`pcle_datasets` returns the patient-level train/val/test splits of ``synthetic-pcle`` or
of a folder of real frames (``pcle-folder``) with the paper's centre crop (the largest square
inside the circular field of view) as an option; :func:`train_pcle_classifier` trains a
backbone (optionally with dropout after each stage) with cross-entropy, AdaMax and early
stopping, cached in the artifact store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as T
from torch import nn
from torch.utils.data import Dataset

from xaistudy.core.store import Store
from xaistudy.data import synthetic
from xaistudy.data.datasets import ArrayDataset, get_dataset
from xaistudy.data.synthetic import PCLE_FOV_FRAC
from xaistudy.models.classifiers import build_classifier, load_pretrained
from xaistudy.models.stages import add_stage_dropout
from xaistudy.models.train import TrainResult, fit, make_loader
from xaistudy.models.transforms import standardise_channels

log = logging.getLogger(__name__)

#: synthetic tasks a stand-in pretraining can use
STANDIN_DATASETS: tuple[str, ...] = ("synthetic-he", "synthetic-grading")


def fov_crop_size(frame_size: int, fov_fraction: float = PCLE_FOV_FRAC) -> int:
    """Side of the largest square inside the circular field of view of a frame.

    ``fov_fraction``: the field's radius as a share of the frame side (synthetic frames: 0.48,
    so that a 339 px frame gives the paper's 230 px crop).
    """
    return min(frame_size, int(math.floor(math.sqrt(2) * fov_fraction * frame_size)))


class CentreCrop:
    """Crop image and mask of a sample dict to a centred ``size`` x ``size`` square."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        h, w = sample["image"].shape[-2:]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        for key in ("image", "mask"):
            sample[key] = sample[key][..., top : top + self.size, left : left + self.size]
        return sample


class Augment:
    """Random vertical/horizontal flips, rotation and contrast on the image (not the mask)."""

    def __init__(self, degrees: float = 180.0, contrast: float = 0.3):
        self.ops = T.Compose(
            [
                T.RandomVerticalFlip(),
                T.RandomHorizontalFlip(),
                T.RandomRotation(degrees),
                T.ColorJitter(contrast=contrast),
            ]
        )

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        sample["image"] = self.ops(sample["image"])
        return sample


class Standardise:
    """Each frame's channels to mean 0 and std 1 (removes a patient's gain; see
    :func:`xaistudy.models.transforms.standardise_channels`)."""

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        sample["image"] = standardise_channels(sample["image"].float()[None])[0]
        return sample


class _Chain:
    def __init__(self, *steps):
        self.steps = [s for s in steps if s is not None]

    def __call__(self, sample):
        for step in self.steps:
            sample = step(sample)
        return sample


def pcle_datasets(
    n_patients: int,
    frames_per_patient: int,
    frame_size: int,
    centre_crop: bool = True,
    augment: bool = True,
    seed: int = 0,
    store: Store | None = None,
    dataset: str = "synthetic-pcle",
    data_root: str | Path | None = None,
    data_options: Mapping[str, Any] | None = None,
    standardise: bool = False,
) -> dict[str, Dataset]:
    """Train/val/test splits (by patient) of ``dataset``, cropped, train augmented.

    ``synthetic-pcle`` generates ``n_patients`` x ``frames_per_patient`` frames of
    ``frame_size`` px; ``pcle-folder`` reads at most that many patients and frames per
    patient from ``data_root`` (see :func:`xaistudy.data.folders.pcle_folder`, options in
    ``data_options``), resized to ``frame_size``. The centre crop uses the dataset's
    ``fov_fraction`` (the synthetic frames' when it has none). ``standardise``: each frame's
    channels to mean 0, std 1 after the augmentation (:class:`Standardise`).
    """
    out = {}
    for split in ("train", "val", "test"):
        ds = get_dataset(
            dataset,
            split,
            data_root=data_root or None,
            n_patients=n_patients,
            frames_per_patient=frames_per_patient,
            size=frame_size,
            seed=seed,
            store=store,
            **dict(data_options or {}),
        )
        fraction = getattr(ds, "fov_fraction", PCLE_FOV_FRAC)
        crop = CentreCrop(fov_crop_size(frame_size, fraction)) if centre_crop else None
        aug = Augment() if augment and split == "train" else None
        ds.transform = _Chain(crop, aug, Standardise() if standardise else None)
        out[split] = ds
    return out


def synthetic_cohort(
    n_patients: int,
    frames_per_patient: int,
    frame_size: int,
    centre_crop: bool = True,
    seed: int = 0,
    first_id: int = 0,
    standardise: bool = False,
) -> ArrayDataset:
    """A test cohort of ``synthetic-pcle`` patients ``first_id .. first_id + 2 n - 1``: ``n``
    meningioma (even ids) and ``n`` glioblastoma patients, ``frames_per_patient`` frames each.

    With ``first_id`` at least the training set's patient count, no patient (and no frame) is
    shared with the training data of the same seed. Samples carry ``patient_id``.
    """
    if n_patients < 1 or frames_per_patient < 1:
        raise ValueError(
            f"a cohort needs n_patients >= 1 and frames_per_patient >= 1, got "
            f"{n_patients} and {frames_per_patient}"
        )
    start = first_id + first_id % 2  # an even id: meningioma first
    tiles = [
        synthetic.pcle_frame(
            seed, pid * 10_000 + i, size=frame_size, meningioma=pid % 2 == 0, patient_id=pid
        )
        for pid in range(start, start + 2 * n_patients)
        for i in range(frames_per_patient)
    ]
    ds = ArrayDataset(
        np.stack([t.image for t in tiles]),
        np.array([t.label for t in tiles]),
        np.stack([t.mask for t in tiles]),
        classes=synthetic.PCLE_CLASSES,
        extra={"patient_id": np.array([t.meta["patient_id"] for t in tiles])},
    )
    crop = CentreCrop(fov_crop_size(frame_size)) if centre_crop else None
    ds.transform = _Chain(crop, Standardise() if standardise else None)
    return ds


@dataclass
class PcleModel:
    """A trained classifier and how it was made."""

    model: nn.Module
    result: TrainResult
    init: str  # "pretrained (path)" or "trained from scratch: ..."


def build_backbone(
    name: str,
    pretrained: bool | str | Path,
    dropout: float = 0.0,
    init_state: Mapping[str, torch.Tensor] | None = None,
    init_label: str = "",
) -> tuple[nn.Module, str]:
    """``name`` with 2 classes and how it was initialised.

    ``init_state``: a state dict to start from (e.g. a stand-in pretraining; its head is
    replaced), described by ``init_label``. Otherwise ``pretrained``: False (scratch), True (the
    standard local ImageNet file; :class:`WeightsNotFoundError` when it is missing, never a
    silent fall-back to scratch) or a weights file; a file that does not fit ``name``'s
    architecture (the chapter trains two) falls back to True for it.
    """
    if init_state is not None:
        model = build_classifier(name, 2)
        load_pretrained(model, init_state)
        init = init_label or "fine-tuned from the given weights"
    elif isinstance(pretrained, str | Path) and str(pretrained):
        try:
            model = build_classifier(name, 2, pretrained=Path(pretrained))
            init = f"fine-tuned from the weights file {Path(pretrained).name}"
        except ValueError as err:
            log.info(
                "%s does not fit %s (%s); using the standard local weights", pretrained, name, err
            )
            model = build_classifier(name, 2, pretrained=True)
            init = "fine-tuned from local ImageNet weights"
    elif pretrained:
        model = build_classifier(name, 2, pretrained=True)
        init = "fine-tuned from local ImageNet weights"
    else:
        model = build_classifier(name, 2)
        init = "trained from scratch"
    if dropout > 0:
        add_stage_dropout(model, dropout)
    return model, init


def standin_pretraining(
    name: str,
    dataset: str = "synthetic-he",
    n_tiles: int = 400,
    size: int = 64,
    *,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    store: Store | None = None,
) -> dict[str, torch.Tensor]:
    """Weights of ``name`` trained on a synthetic task (``synthetic-he`` or
    ``synthetic-grading``): a stand-in for an ImageNet pretraining the book can run.

    ``n_tiles`` training tiles (grading: split evenly over its classes), AdaMax, no early stop.
    """
    if dataset not in STANDIN_DATASETS:
        raise ValueError(
            f"unknown stand-in dataset '{dataset}'; allowed: {', '.join(STANDIN_DATASETS)}"
        )

    def sets(split: str, n: int) -> Dataset:
        count = {"n": n} if dataset == "synthetic-he" else {"n_per_class": max(2, n // 7)}
        return get_dataset(dataset, split, size=size, seed=seed, store=store, **count)

    train, val = sets("train", n_tiles), sets("val", max(16, n_tiles // 8))
    model = build_classifier(name, len(train.classes))
    result = fit(
        model,
        make_loader(train, batch_size, shuffle=True, seed=seed),
        make_loader(val, batch_size),
        epochs=epochs,
        lr=lr,
        optimizer="adamax",
        patience=None,
        seed=seed,
        device=device,
        store=store or Store(),
        kind="pcle-standin-pretraining",
        params={
            "backbone": name,
            "dataset": dataset,
            "n": n_tiles,
            "size": size,
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
        },
        desc=f"stand-in pretraining {name} on {dataset}",
    )
    return {k: v.detach().cpu() for k, v in result.model.state_dict().items()}


def train_pcle_classifier(
    name: str,
    data: dict[str, Dataset],
    data_key: dict[str, Any],
    *,
    epochs: int,
    patience: int,
    lr: float = 1e-3,
    batch_size: int = 16,
    pretrained: bool | str | Path = True,
    dropout: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    store: Store | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    init_label: str = "",
    init_key: Mapping[str, Any] | None = None,
) -> PcleModel:
    """Train (or load from the store) ``name`` on ``data`` with AdaMax and early stopping.

    ``data_key`` names the data (it goes into the cache key with every training setting);
    ``init_key`` names the ``init_state`` (a stand-in pretraining) for the key.
    """
    model, init = build_backbone(name, pretrained, dropout, init_state, init_label)
    params = {
        "backbone": name,
        "init": init,
        "init_key": dict(init_key or {}),
        "dropout": dropout,
        "epochs": epochs,
        "patience": patience,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        **data_key,
    }
    result = fit(
        model,
        make_loader(data["train"], batch_size, shuffle=True, seed=seed),
        make_loader(data["val"], batch_size),
        epochs=epochs,
        lr=lr,
        optimizer="adamax",
        patience=patience,
        seed=seed,
        device=device,
        store=store or Store(),
        kind="xrelevancecam-classifier",
        params=params,
        desc=f"train {name}{' + dropout' if dropout else ''}",
    )
    log.info("%s: %s", name, init)
    return PcleModel(result.model, result, init)
