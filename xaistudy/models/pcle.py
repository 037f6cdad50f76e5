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

import torchvision.transforms.v2 as T
from torch import nn
from torch.utils.data import Dataset

from xaistudy.data.datasets import get_dataset
from xaistudy.data.synthetic import PCLE_FOV_FRAC
from xaistudy.models.classifiers import WeightsNotFoundError, build_classifier
from xaistudy.models.stages import add_stage_dropout
from xaistudy.models.train import TrainResult, fit, make_loader
from xaistudy.store import Store

log = logging.getLogger(__name__)


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
) -> dict[str, Dataset]:
    """Train/val/test splits (by patient) of ``dataset``, cropped, train augmented.

    ``synthetic-pcle`` generates ``n_patients`` x ``frames_per_patient`` frames of
    ``frame_size`` px; ``pcle-folder`` reads at most that many patients and frames per
    patient from ``data_root`` (see :func:`xaistudy.data.folders.pcle_folder`, options in
    ``data_options``), resized to ``frame_size``. The centre crop uses the dataset's
    ``fov_fraction`` (the synthetic frames' when it has none).
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
        ds.transform = _Chain(crop, aug)
        out[split] = ds
    return out


@dataclass
class PcleModel:
    """A trained classifier and how it was made."""

    model: nn.Module
    result: TrainResult
    init: str  # "pretrained (path)" or "trained from scratch: ..."


def build_backbone(
    name: str, pretrained: bool | str | Path, dropout: float = 0.0
) -> tuple[nn.Module, str]:
    """``name`` with 2 classes, local pretrained weights when asked and present, else scratch.

    ``pretrained``: False, True (the standard local file) or a weights file; a file that does
    not fit ``name``'s architecture (the chapter trains two) falls back to True for it.
    """
    init = "trained from scratch"
    if isinstance(pretrained, str | Path) and str(pretrained):
        try:
            model = build_classifier(name, 2, pretrained=Path(pretrained))
            init = f"fine-tuned from the weights file {Path(pretrained).name}"
            if dropout > 0:
                add_stage_dropout(model, dropout)
            return model, init
        except ValueError as err:
            log.info(
                "%s does not fit %s (%s); using the standard local weights", pretrained, name, err
            )
            pretrained = True
    if pretrained:
        try:
            model = build_classifier(name, 2, pretrained=True)
            init = "fine-tuned from local ImageNet weights"
        except WeightsNotFoundError:
            model = build_classifier(name, 2)
            init = "trained from scratch: no local ImageNet weights"
    else:
        model = build_classifier(name, 2)
    if dropout > 0:
        add_stage_dropout(model, dropout)
    return model, init


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
) -> PcleModel:
    """Train (or load from the store) ``name`` on ``data`` with AdaMax and early stopping.

    ``data_key`` names the data (it goes into the cache key with every training setting).
    """
    model, init = build_backbone(name, pretrained, dropout)
    params = {
        "backbone": name,
        "init": init,
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
