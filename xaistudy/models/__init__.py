"""Models: classifiers (torchvision, timm, a small CNN) and their training."""

from xaistudy.models.classifiers import (
    CLASSIFIERS,
    SmallCNN,
    WeightsNotFoundError,
    build_classifier,
    find_pretrained_weights,
    resolve_device,
    target_layer,
)
from xaistudy.models.train import (
    TrainResult,
    fit,
    make_loader,
    predict,
    weights_hash,
)

__all__ = [
    "CLASSIFIERS",
    "SmallCNN",
    "TrainResult",
    "WeightsNotFoundError",
    "build_classifier",
    "find_pretrained_weights",
    "fit",
    "make_loader",
    "predict",
    "resolve_device",
    "target_layer",
    "weights_hash",
]
