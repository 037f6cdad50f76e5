"""Small models shared by several test files."""

import torch
import torchvision
from torch import nn


def tiny_resnet(seed: int = 0) -> nn.Module:
    """A torchvision ResNet with one BasicBlock per stage and two classes, in eval mode."""
    torch.manual_seed(seed)
    model = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], 2)
    return model.eval()
