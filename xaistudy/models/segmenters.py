"""Segmentation models to explain: a U-Net trained on synthetic H&E tiles, and DeepLabv3.

Every model is wrapped in a :class:`Segmenter`: ``forward`` gives per-class scores (logits)
``(B, K, H, W)`` at input resolution, :meth:`Segmenter.probabilities` the class
probabilities (sigmoid for the multi-label U-Net, softmax for DeepLabv3) and
:meth:`Segmenter.predict` the binary prediction of one class. ``bottleneck`` names the layer
the segmentation CAMs use by default (the end of the encoder).

Nothing is downloaded: DeepLabv3's COCO weights load from the file torchvision would have
downloaded (``$TORCH_HOME/hub/checkpoints/<file>``) or from an explicit path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from xaistudy.data.datasets import get_dataset
from xaistudy.models.classifiers import WeightsNotFoundError, resolve_device
from xaistudy.models.train import TrainResult, fit, make_loader
from xaistudy.models.unet import UNet, segmentation_objective
from xaistudy.store import Store

log = logging.getLogger(__name__)

#: Output channels of the synthetic-tissue U-Net (multi-label, one sigmoid map each).
HE_SEG_CLASSES: tuple[str, ...] = ("tumour", "neoplastic", "non-neoplastic")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Segmenter(nn.Module):
    """A segmentation network with its class names, output kind and bottleneck layer name.

    ``net(x)`` may return a tensor or a dict with ``"out"`` (torchvision); ``normalize``
    applies ImageNet mean/std to inputs in [0, 1] first.
    """

    def __init__(
        self,
        net: nn.Module,
        classes: Sequence[str],
        multilabel: bool,
        bottleneck: str,
        normalize: bool = False,
    ):
        super().__init__()
        self.net = net
        self.classes = tuple(classes)
        self.multilabel = multilabel
        self.bottleneck = bottleneck
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = (x - self.mean) / self.std
        out = self.net(x)
        return out["out"] if isinstance(out, Mapping) else out

    def class_index(self, target: int | str) -> int:
        """Index of ``target`` (a class name or index); a one-line error when unknown."""
        if isinstance(target, str):
            if target not in self.classes:
                raise ValueError(f"unknown class '{target}'; allowed: {', '.join(self.classes)}")
            return self.classes.index(target)
        if not 0 <= int(target) < len(self.classes):
            raise ValueError(f"class index {target} out of range 0..{len(self.classes) - 1}")
        return int(target)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K, H, W): sigmoid (multi-label) or softmax over classes."""
        logits = self(x)
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, target: int | str, batch_size: int = 64) -> torch.Tensor:
        """Binary prediction (B, H, W) of class ``target``: p > 0.5, or argmax == target."""
        c = self.class_index(target)
        out = []
        for chunk in torch.split(x, batch_size):
            prob = self.probabilities(chunk)
            out.append(prob[:, c] > 0.5 if self.multilabel else prob.argmax(1) == c)
        return torch.cat(out)

    def layer(self, name: str | None = None) -> nn.Module:
        """The module ``name`` of the network (default/"bottleneck": the bottleneck layer)."""
        name = self.bottleneck if name in (None, "bottleneck") else name
        try:
            return self.net.get_submodule(name)
        except AttributeError:
            names = [n for n, _ in self.net.named_modules() if n and n.count(".") < 2]
            raise ValueError(
                f"unknown layer '{name}'; allowed: bottleneck, {', '.join(names[:40])}"
            ) from None


# -- the default model: a U-Net on synthetic H&E tiles -------------------------------------
def he_segmentation_targets(batch: Mapping[str, Any]) -> torch.Tensor:
    """(B, 3, H, W) masks: tumour region, neoplastic nuclei, non-neoplastic nuclei."""
    types = batch["nuclei_type"]
    return torch.stack([batch["mask"][:, 0] > 0.5, types == 1, types == 2], dim=1).float()


def unet_segmenter(base: int = 16, depth: int = 3) -> Segmenter:
    """An untrained U-Net wrapped as a :class:`Segmenter` of :data:`HE_SEG_CLASSES`."""
    net = UNet(3, len(HE_SEG_CLASSES), base=base, depth=depth)
    return Segmenter(net, HE_SEG_CLASSES, multilabel=True, bottleneck="bottleneck")


def train_he_unet(
    *,
    size: int = 96,
    n_train: int = 160,
    n_val: int = 32,
    base: int = 16,
    depth: int = 3,
    epochs: int = 15,
    lr: float = 2e-3,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    store: Store | None = None,
) -> tuple[Segmenter, TrainResult]:
    """Train (or load from ``store``) the default segmentation model on synthetic H&E tiles.

    Half of the tiles contain a metastasis; targets are :func:`he_segmentation_targets`.
    """
    if size % 2**depth:
        raise ValueError(f"size must be divisible by 2**depth = {2**depth}, got {size}")
    train = get_dataset("synthetic-he", "train", n=n_train, size=size, seed=seed, store=store)
    val = get_dataset("synthetic-he", "val", n=n_val, size=size, seed=seed, store=store)
    model = unet_segmenter(base, depth)
    params = {
        "model": "unet",
        "classes": list(HE_SEG_CLASSES),
        "size": size,
        "n_train": n_train,
        "n_val": n_val,
        "base": base,
        "depth": depth,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "loss": "bce_dice",
    }
    result = fit(
        model.net,
        make_loader(train, batch_size, shuffle=True, seed=seed),
        make_loader(val, batch_size),
        epochs=epochs,
        lr=lr,
        patience=None,
        seed=seed,
        device=device,
        store=store or Store(),
        kind="segmentation-unet",
        params=params,
        desc="U-Net",
        objective=segmentation_objective(he_segmentation_targets),
    )
    model.to(resolve_device(device)).eval()
    return model, result


# -- DeepLabv3 (the survey's model) --------------------------------------------------------
DEEPLAB_ARCHS: tuple[str, ...] = ("deeplabv3_resnet50", "deeplabv3_resnet101")


def deeplab_weights_file(arch: str = "deeplabv3_resnet101") -> Path:
    """Where torchvision keeps the COCO (VOC labels) weights of ``arch`` once downloaded."""
    if arch not in DEEPLAB_ARCHS:
        raise ValueError(f"unknown DeepLabv3 '{arch}'; allowed: {', '.join(DEEPLAB_ARCHS)}")
    weights = torchvision.models.get_model_weights(arch).COCO_WITH_VOC_LABELS_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def build_deeplabv3(
    arch: str = "deeplabv3_resnet101", weights: str | Path | None = None
) -> Segmenter:
    """DeepLabv3 with torchvision's COCO weights (21 VOC classes) from a local file.

    ``weights``: a path, or None for torchvision's cache file (:func:`deeplab_weights_file`).
    Raises :class:`WeightsNotFoundError` in one line naming the file when it is absent.
    """
    path = Path(weights) if weights is not None else deeplab_weights_file(arch)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"DeepLabv3 weights not found: {path} (put torchvision's "
            f"{deeplab_weights_file(arch).name} there or pass weights=PATH)"
        )
    enum = torchvision.models.get_model_weights(arch).COCO_WITH_VOC_LABELS_V1
    net = torchvision.models.get_model(
        arch, weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    return Segmenter(
        net, enum.meta["categories"], multilabel=False, bottleneck="backbone.layer4", normalize=True
    )


# -- what the chapter explains -------------------------------------------------------------
def load_segmenter(
    model: str = "unet",
    weights: str | Path | None = None,
    store: Store | None = None,
    device: str = "auto",
    **unet_settings: Any,
) -> tuple[Segmenter, TrainResult | None]:
    """``unet``: :func:`train_he_unet` with ``unet_settings``; a DeepLabv3 name: its COCO
    weights from a local file (:func:`build_deeplabv3`). Returns the model on ``device``."""
    if model == "unet":
        return train_he_unet(store=store, device=device, **unet_settings)
    segmenter = build_deeplabv3(model, weights or None)
    return segmenter.to(resolve_device(device)).eval(), None


@torch.no_grad()
def explanation_tiles(
    model: Segmenter,
    target: int | str,
    n: int,
    size: int = 96,
    seed: int = 0,
    store: Store | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """The first ``n`` tumour test tiles on which ``model`` predicts some ``target`` pixels.

    Returns ``images`` (n, 3, H, W) on ``device``, ``masks`` (tumour regions, numpy),
    ``nuclei_type`` (numpy) and ``index`` (positions in the test split). When fewer than ``n``
    of 8 n test tiles qualify, other tumour tiles fill the list (with a warning).
    """
    dev = resolve_device(device)
    data = get_dataset("synthetic-he", "test", n=8 * n, size=size, seed=seed, store=store)
    picked: list[int] = []
    for i in range(1, len(data), 2):  # odd tiles contain a metastasis
        x = data[i]["image"][None].to(dev)
        if model.predict(x, target).any():
            picked.append(i)
        if len(picked) == n:
            break
    if len(picked) < n:
        log.warning("only %d of %d tiles have a predicted '%s' region", len(picked), n, target)
        spare = [i for i in range(1, len(data), 2) if i not in picked]
        picked += spare[: n - len(picked)]  # explanations of an empty region: all-zero maps
    samples = [data[i] for i in picked]
    return {
        "images": torch.stack([s["image"] for s in samples]).to(dev),
        "masks": np.stack([s["mask"][0].numpy() > 0.5 for s in samples]),
        "nuclei_type": np.stack([s["nuclei_type"].numpy() for s in samples]),
        "index": np.array(picked),
    }


@torch.no_grad()
def segmentation_quality(
    model: Segmenter, n: int = 32, size: int = 96, seed: int = 0, store: Store | None = None
) -> list[dict[str, Any]]:
    """Dice of each class of the synthetic-tissue U-Net on ``n`` test tiles (pooled pixels)."""
    data = get_dataset("synthetic-he", "test", n=n, size=size, seed=seed, store=store)
    dev = next(model.parameters()).device
    batch = {k: torch.stack([data[i][k] for i in range(len(data))]) for k in ("image", "mask")}
    batch["nuclei_type"] = torch.stack([data[i]["nuclei_type"] for i in range(len(data))])
    truth = he_segmentation_targets(batch) > 0.5
    rows = []
    for c, name in enumerate(model.classes):
        pred = model.predict(batch["image"].to(dev), c).cpu()
        inter = (pred & truth[:, c]).sum().item()
        total = pred.sum().item() + truth[:, c].sum().item()
        rows.append({"class": name, "dice": 2 * inter / total if total else 1.0, "tiles": n})
    return rows
