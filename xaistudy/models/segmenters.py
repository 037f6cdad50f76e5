"""Segmentation models to explain: a U-Net trained on H&E tiles, and DeepLabv3 on COCO images.

Every model is wrapped in a :class:`Segmenter`: ``forward`` gives per-class scores (logits)
``(B, K, H, W)`` at input resolution, :meth:`Segmenter.probabilities` the class
probabilities (sigmoid for the multi-label U-Net, softmax for DeepLabv3) and
:meth:`Segmenter.predict` the binary prediction of one class. ``bottleneck`` names the layer
the segmentation CAMs use by default (the end of the encoder).

Nothing is downloaded: DeepLabv3's COCO weights load from the file torchvision would have
downloaded (``$TORCH_HOME/hub/checkpoints/<file>``) or from an explicit path.

The U-Net trains on ``synthetic-he`` (default), ``camelyon16`` or ``pannuke``; which of its
classes a dataset annotates is :data:`DATASET_TARGETS` (tumour regions need ``mask``, the
nuclei classes ``nuclei_type``). :func:`explanation_tiles` and :func:`segmentation_quality`
read the test split of any of them, or of ``coco`` for DeepLabv3.
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

from xaistudy.core.store import Store
from xaistudy.data.datasets import get_dataset, get_spec
from xaistudy.models.classifiers import WeightsNotFoundError, resolve_device
from xaistudy.models.train import TrainResult, fit, make_loader
from xaistudy.models.unet import UNet, segmentation_objective

log = logging.getLogger(__name__)

#: Output channels of the synthetic-tissue U-Net (multi-label, one sigmoid map each).
HE_SEG_CLASSES: tuple[str, ...] = ("tumour", "neoplastic", "non-neoplastic")
#: The U-Net classes each tile dataset annotates (the others are all-zero targets there).
DATASET_TARGETS: dict[str, tuple[str, ...]] = {
    "synthetic-he": HE_SEG_CLASSES,
    "camelyon16": ("tumour",),
    "pannuke": ("neoplastic", "non-neoplastic"),
}
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


def class_truth(batch: Mapping[str, Any], name: str, classes: Sequence[str] = ()) -> torch.Tensor:
    """Ground truth (B, H, W) bool of class ``name`` in a batch of samples.

    ``tumour``: the ``mask``; ``neoplastic``/``non-neoplastic``: ``nuclei_type`` 1/2; any other
    name (a COCO class) is the ``mask`` of the samples whose label is ``name`` in ``classes``
    (the dataset's class names; COCO and Pascal VOC spellings match).
    """
    if name == "tumour":
        return batch["mask"][:, 0] > 0.5
    if name in HE_SEG_CLASSES:
        return batch["nuclei_type"] == HE_SEG_CLASSES.index(name)
    from xaistudy.data.coco import VOC_TO_COCO

    spell = [VOC_TO_COCO.get(c, c) for c in classes]
    if VOC_TO_COCO.get(name, name) not in spell:
        raise ValueError(f"class '{name}' is not among the dataset's classes {tuple(classes)}")
    labels = torch.as_tensor(batch["label"]).reshape(-1)
    is_class = labels == spell.index(VOC_TO_COCO.get(name, name))
    return (batch["mask"][:, 0] > 0.5) & is_class[:, None, None].to(batch["mask"].device)


def data_kwargs(
    dataset: str, data_root: str | Path | None, data_options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Keyword arguments of :func:`get_dataset` beyond the chapter's own."""
    return {"data_root": data_root or None, **dict(data_options or {})}


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
    dataset: str = "synthetic-he",
    data_root: str | Path | None = None,
    data_options: Mapping[str, Any] | None = None,
) -> tuple[Segmenter, TrainResult]:
    """Train (or load from ``store``) the U-Net on ``dataset``'s tiles (default: synthetic H&E,
    half of them with a metastasis); targets are :func:`he_segmentation_targets`.
    """
    if size % 2**depth:
        raise ValueError(f"size must be divisible by 2**depth = {2**depth}, got {size}")
    if dataset not in DATASET_TARGETS:
        raise ValueError(
            f"the U-Net trains on {', '.join(DATASET_TARGETS)}, not on dataset '{dataset}'"
        )
    extra = data_kwargs(dataset, data_root, data_options)
    train = get_dataset(dataset, "train", n=n_train, size=size, seed=seed, store=store, **extra)
    val = get_dataset(dataset, "val", n=n_val, size=size, seed=seed, store=store, **extra)
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
    if dataset != "synthetic-he":
        params["data"] = {"dataset": dataset, **{k: str(v) for k, v in extra.items()}}
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


def _samples(data: Any, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """The samples ``indices`` of a dataset stacked into one batch."""
    items = [data[i] for i in indices]
    return {
        k: torch.stack([s[k] for s in items]) for k in ("image", "mask", "nuclei_type", "label")
    }


def candidate_tiles(data: Any, kind: str, target: str) -> list[int]:
    """Indices (in order) of the test tiles worth explaining for class ``target``.

    Tumour-tile datasets: the tumour tiles (label 1); others: the tiles whose ground truth
    holds some ``target`` pixels.
    """
    if kind == "tumour-tiles":
        labels = getattr(data, "labels", None)
        if labels is None:
            labels = [int(data[i]["label"]) for i in range(len(data))]
        return [i for i in range(len(data)) if int(labels[i]) == 1]
    classes = getattr(data, "classes", ())
    picked = []
    for start in range(0, len(data), 64):
        idx = list(range(start, min(start + 64, len(data))))
        truth = class_truth(_samples(data, idx), target, classes)
        picked += [i for i, t in zip(idx, truth.flatten(1).any(1).tolist(), strict=True) if t]
    return picked


@torch.no_grad()
def explanation_tiles(
    model: Segmenter,
    target: int | str,
    n: int,
    size: int = 96,
    seed: int = 0,
    store: Store | None = None,
    device: str = "auto",
    dataset: str = "synthetic-he",
    data_root: str | Path | None = None,
    data_options: Mapping[str, Any] | None = None,
    pool: int = 8,
) -> dict[str, Any]:
    """The first ``n`` test tiles of ``dataset`` that show ``target`` and on which ``model``
    predicts some ``target`` pixels (tumour tiles of a tumour-tile dataset, see
    :func:`candidate_tiles`), out of ``pool * n`` test tiles.

    Returns ``images`` (n, 3, H, W) on ``device``, ``masks`` (the samples' masks, numpy),
    ``truth`` (ground truth of ``target``), ``nuclei_type`` (numpy), ``index`` (positions
    in the test split) and ``predicted`` (bool: the model predicts some ``target`` pixels).
    When fewer than ``n`` qualify, other candidates fill the list (with a warning naming the
    class; their ``predicted`` is False).
    """
    dev = resolve_device(device)
    name = model.classes[model.class_index(target)]
    extra = data_kwargs(dataset, data_root, data_options)
    data = get_dataset(dataset, "test", n=pool * n, size=size, seed=seed, store=store, **extra)
    candidates = candidate_tiles(data, get_spec(dataset).kind, name)
    picked: list[int] = []
    for i in candidates:
        x = data[i]["image"][None].to(dev)
        if model.predict(x, target).any():
            picked.append(i)
        if len(picked) == n:
            break
    n_predicted = len(picked)
    if len(picked) < n:
        log.warning("only %d of %d tiles have a predicted '%s' region", len(picked), n, name)
        spare = [i for i in candidates if i not in picked]
        picked += spare[: n - len(picked)]  # explanations of an empty region: all-zero maps
    if not picked:
        raise ValueError(f"no test tile of dataset '{dataset}' shows class '{name}'")
    batch = _samples(data, picked)
    return {
        "images": batch["image"].to(dev),
        "masks": batch["mask"][:, 0].numpy() > 0.5,
        "truth": class_truth(batch, name, getattr(data, "classes", ())).numpy(),
        "nuclei_type": batch["nuclei_type"].numpy(),
        "index": np.array(picked),
        "predicted": np.arange(len(picked)) < n_predicted,
    }


def annotated_classes(model: Segmenter, dataset: str, classes: Sequence[str] = ()) -> list[str]:
    """The model's classes that ``dataset`` has ground truth for."""
    if dataset in DATASET_TARGETS:
        return [c for c in model.classes if c in DATASET_TARGETS[dataset]]
    from xaistudy.data.coco import VOC_TO_COCO

    spell = {VOC_TO_COCO.get(c, c) for c in classes}
    return [c for c in model.classes if VOC_TO_COCO.get(c, c) in spell]


@torch.no_grad()
def segmentation_quality(
    model: Segmenter,
    n: int = 32,
    size: int = 96,
    seed: int = 0,
    store: Store | None = None,
    dataset: str = "synthetic-he",
    data_root: str | Path | None = None,
    data_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Dice of each class ``dataset`` annotates on ``n`` of its test tiles (pooled pixels)."""
    extra = data_kwargs(dataset, data_root, data_options)
    data = get_dataset(dataset, "test", n=n, size=size, seed=seed, store=store, **extra)
    dev = next(model.parameters()).device
    classes = getattr(data, "classes", ())
    batch = _samples(data, range(len(data)))
    rows = []
    for name in annotated_classes(model, dataset, classes):
        truth = class_truth(batch, name, classes)
        pred = model.predict(batch["image"].to(dev), name).cpu()
        inter = (pred & truth).sum().item()
        total = pred.sum().item() + truth.sum().item()
        rows.append({"class": name, "dice": 2 * inter / total if total else 1.0, "tiles": n})
    return rows
