"""Fabricated pretrained-weight caches in the real layouts, holding seeded random weights.

The chapters never download weights: they read torchvision's cache
(``$TORCH_HOME/hub/checkpoints/<file of the weights enum>``) and the Hugging Face hub cache
(``$HF_HOME/hub/models--timm--<name>/snapshots/<rev>/model.safetensors``). These writers put
files of the right names, formats and architectures there, so the loading code runs as it would
with the published weights (the values are random, so no result means anything).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torchvision
from safetensors.torch import save_file

from xaistudy.models.classifiers import torchvision_weight_files
from xaistudy.models.segmenters import deeplab_weights_file


def write_torchvision_weights(torch_home: Path, name: str, seed: int = 0) -> Path:
    """``name``'s ImageNet weights file (random values) in ``torch_home``'s checkpoints."""
    torch.manual_seed(seed)
    net = torchvision.models.get_model(name, weights=None)
    path = Path(torch_home) / "hub" / "checkpoints" / torchvision_weight_files(name)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def write_timm_weights(hf_home: Path, name: str, seed: int = 0) -> Path:
    """``name``'s weights (random values) as the hub cache holds them, under ``hf_home``."""
    torch.manual_seed(seed)
    net = timm.create_model(name, pretrained=False)
    hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id or f"timm/{name}"
    snapshot = Path(hf_home) / "hub" / ("models--" + hub_id.replace("/", "--")) / "snapshots"
    path = snapshot / ("0" * 40) / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def write_deeplab_weights(
    torch_home: Path, arch: str = "deeplabv3_resnet101", seed: int = 0, favour: int | None = None
) -> Path:
    """torchvision's COCO (VOC labels) DeepLabv3 file (random values), auxiliary head included.

    ``favour``: a VOC class index predicted on every pixel (random weights predict it nowhere
    otherwise): the output layer's weights are scaled down and that class's bias raised, so the
    outputs still depend on the input.
    """
    torch.manual_seed(seed)
    net = torchvision.models.get_model(
        arch, weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    if favour is not None:
        with torch.no_grad():
            net.classifier[-1].weight.mul_(1e-4)
            net.classifier[-1].bias[favour] += 10.0
    path = Path(torch_home) / "hub" / "checkpoints" / deeplab_weights_file(arch).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path
