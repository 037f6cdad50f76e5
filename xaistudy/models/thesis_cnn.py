"""The grading CNN of Valatkaitė's thesis (Fig. 5, Appendix A) and its balanced training set.

Three convolutions (3x3, 5x5, 5x5; 16/32/64 channels, no padding), each followed by ReLU and a
3x3 max-pool with stride 2, then a flatten and seven linear layers with ReLU between them. The
first linear layer is sized from the input side, so the same class serves 64-px smoke tiles and
the thesis's 256-px patches (64 x 27 x 27 features). As in the appendix code, batch
normalisation follows the first convolution and the first linear layer (``batchnorm=False``
drops both). ``standardise=True`` puts :class:`~xaistudy.models.transforms.ChannelStandardise`
in front (per-tile channel standardisation; not in the thesis). Every operation is its own
module so that hook-based explainers see it; :attr:`ThesisCNN.conv3` is the layer the thesis
hooked for Grad-CAM.

:func:`rotation_balanced_indices` reproduces Table 1: classes with too few patches get the 90,
180 and 270 degree rotations of their patches, then every class is cut to the same size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from xaistudy.data.datasets import ArrayDataset
from xaistudy.models.transforms import ChannelStandardise

#: Channels of the three convolutions and their kernel sizes (appendix code).
CONV_CHANNELS: tuple[int, int, int] = (16, 32, 64)
CONV_KERNELS: tuple[int, int, int] = (3, 5, 5)
POOL_KERNEL, POOL_STRIDE = 3, 2
#: Width of the first hidden linear layer in the thesis; the next five halve it.
THESIS_FC_WIDTH = 2048
N_HIDDEN = 6  # + the output layer = seven linear layers


def feature_side(input_size: int) -> int:
    """Side of the last pooled feature map for a square input of ``input_size`` pixels."""
    side = input_size
    for k in CONV_KERNELS:
        side = side - k + 1  # valid convolution
        side = (side - POOL_KERNEL) // POOL_STRIDE + 1
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for the thesis CNN (>= 40)")
    return side


def hidden_widths(fc_width: int) -> tuple[int, ...]:
    """The six hidden widths: ``fc_width`` halved five times (2048 ... 64 in the thesis)."""
    if fc_width < 32:
        raise ValueError(f"fc_width must be >= 32, got {fc_width}")
    return tuple(max(fc_width // 2**i, 2) for i in range(N_HIDDEN))


class ThesisCNN(nn.Module):
    """The thesis's 7-class grading CNN, for ``input_size`` x ``input_size`` RGB tiles."""

    def __init__(
        self,
        num_classes: int = 7,
        input_size: int = 256,
        fc_width: int = THESIS_FC_WIDTH,
        in_chans: int = 3,
        batchnorm: bool = True,
        standardise: bool = False,
    ):
        super().__init__()
        self.standardise = ChannelStandardise() if standardise else nn.Identity()
        c1, c2, c3 = CONV_CHANNELS
        k1, k2, k3 = CONV_KERNELS
        self.conv1 = nn.Conv2d(in_chans, c1, k1)
        self.bn1 = nn.BatchNorm2d(c1) if batchnorm else nn.Identity()
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)
        self.conv2 = nn.Conv2d(c1, c2, k2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)
        self.conv3 = nn.Conv2d(c2, c3, k3)
        self.relu3 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)
        self.flatten = nn.Flatten(1)
        side = feature_side(input_size)
        widths = (c3 * side * side, *hidden_widths(fc_width))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if i == 0 and batchnorm:  # appendix: relu(fc1) -> fc1_bn -> relu
                layers += [nn.BatchNorm1d(b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.classifier = nn.Sequential(*layers)
        self.input_size = input_size

    @property
    def last_conv(self) -> nn.Module:
        """The last convolution (the thesis's Grad-CAM layer)."""
        return self.conv3

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(self.standardise(x)))))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.pool3(self.relu3(self.conv3(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"ThesisCNN was built for {self.input_size}x{self.input_size} inputs, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.classifier(self.flatten(self.features(x)))


def n_linear_layers(model: nn.Module) -> int:
    """How many ``nn.Linear`` layers ``model`` has (seven for :class:`ThesisCNN`)."""
    return sum(isinstance(m, nn.Linear) for m in model.modules())


# -- Table 1: rotation augmentation and per-class balancing ---------------------------------
def rotation_balanced_indices(
    labels: Sequence[int] | np.ndarray,
    n_per_class: int,
    augment: Sequence[int] = (),
    seed: int = 0,
    originals: int | None = None,
    class_names: Sequence[str] | None = None,
) -> list[tuple[int, int]]:
    """``(sample index, quarter turns)`` pairs giving ``n_per_class`` items of every class.

    Classes in ``augment`` contribute each sample four times (0, 90, 180, 270 degrees), as
    the thesis did for R1, R2 and R5; then every class is cut to ``n_per_class`` items drawn
    without replacement (seeded). ``originals``: augmented classes keep only their first
    ``originals`` samples (to mimic a scarce class). ``class_names``: every one of these
    classes (labels 0, 1, ...) must be balanced, also one without samples, and errors name
    them. Raises ``ValueError`` (one line) when a class has too few items.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    classes = range(len(class_names)) if class_names is not None else np.unique(labels)
    for c in classes:
        idx = np.flatnonzero(labels == c)
        augmented = int(c) in set(augment)
        if augmented and originals is not None:
            idx = idx[:originals]
        turns = (0, 1, 2, 3) if augmented else (0,)
        pool = [(int(i), t) for t in turns for i in idx]
        if len(pool) < n_per_class:
            name = class_names[int(c)] if class_names is not None else str(int(c))
            how = f"{len(idx)} x 4 rotations" if augmented else f"{len(idx)}, not rotated"
            raise ValueError(
                f"class {name} has {len(pool)} items after augmentation ({how}), "
                f"fewer than n_per_class={n_per_class}"
            )
        pick = rng.choice(len(pool), size=n_per_class, replace=False)
        pairs += [pool[k] for k in sorted(pick)]
    return pairs


class RotatedSubset(Dataset):
    """The items of :func:`rotation_balanced_indices`: samples rotated by quarter turns."""

    def __init__(self, dataset: Dataset, pairs: Sequence[tuple[int, int]]):
        self.dataset = dataset
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        index, turns = self.pairs[i]
        sample = dict(self.dataset[index])
        if turns:
            for key in ("image", "mask", "nuclei_type"):
                if key in sample:
                    sample[key] = torch.rot90(sample[key], turns, dims=(-2, -1)).contiguous()
        return sample


def rotated_dataset(dataset: ArrayDataset, pairs: Sequence[tuple[int, int]]) -> ArrayDataset:
    """The items of :func:`rotation_balanced_indices` as a new :class:`ArrayDataset` whose
    arrays (images, masks, nuclei types, extras) hold the rotated samples."""
    index = np.array([i for i, _ in pairs], dtype=np.int64)

    def rotate(arrays: np.ndarray) -> np.ndarray:
        first = arrays[0] if len(arrays) else None
        if first is not None and arrays.strides[0] == 0 and (first == first.flat[0]).all():
            # one constant map shared by every sample (a dataset without annotations)
            return np.broadcast_to(first, (len(pairs), *first.shape))
        return np.stack([np.rot90(arrays[i], t, axes=(0, 1)) for i, t in pairs])

    return ArrayDataset(
        rotate(dataset.images),
        dataset.labels[index],
        rotate(dataset.masks),
        rotate(dataset.nuclei_type),
        classes=dataset.classes,
        extra={k: np.asarray(v)[index] for k, v in dataset.extra.items()},
        transform=dataset.transform,
    )
