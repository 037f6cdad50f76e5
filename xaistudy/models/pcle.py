"""pCLE tissue classifiers as in You et al. (2024): centre crop, augmentation, AdaMax, early stop.

:func:`pcle_datasets` returns the patient-level train/val/test splits of ``synthetic-pcle``
with the paper's centre crop (the largest square inside the circular field of view) as an
option; :func:`train_pcle_classifier` trains a backbone (optionally with dropout after each
stage) with cross-entropy, AdaMax and early stopping, cached in the artifact store.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
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


def fov_crop_size(frame_size: int) -> int:
    """Side of the largest square inside the circular field of view of a frame."""
    return int(math.floor(math.sqrt(2) * PCLE_FOV_FRAC * frame_size))


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
) -> dict[str, Dataset]:
    """Train/val/test ``synthetic-pcle`` splits (by patient), cropped, train augmented."""
    crop = CentreCrop(fov_crop_size(frame_size)) if centre_crop else None
    out = {}
    for split in ("train", "val", "test"):
        aug = Augment() if augment and split == "train" else None
        out[split] = get_dataset(
            "synthetic-pcle",
            split,
            n_patients=n_patients,
            frames_per_patient=frames_per_patient,
            size=frame_size,
            seed=seed,
            store=store,
            transform=_Chain(crop, aug),
        )
    return out


@dataclass
class PcleModel:
    """A trained classifier and how it was made."""

    model: nn.Module
    result: TrainResult
    init: str  # "pretrained (path)" or "trained from scratch: ..."


def build_backbone(name: str, pretrained: bool, dropout: float = 0.0) -> tuple[nn.Module, str]:
    """``name`` with 2 classes, local pretrained weights when asked and present, else scratch."""
    init = "trained from scratch"
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
    pretrained: bool = True,
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
