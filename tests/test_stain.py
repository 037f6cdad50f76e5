"""Modified Reinhard stain normalisation as a transform of any dataset in the registry."""

import numpy as np
import torch
from skimage.color import rgb2lab

from xaistudy.core.store import Store
from xaistudy.data import synthetic
from xaistudy.data.datasets import get_dataset
from xaistudy.data.stain import StainNormalise


def _ab_mean(image_chw: torch.Tensor) -> np.ndarray:
    """Mean of the LAB colour channels, by scikit-image (independent of torchstain)."""
    return rgb2lab(image_chw.permute(1, 2, 0).numpy())[..., 1:].reshape(-1, 2).mean(0)


def test_transform_moves_colour_to_the_reference_and_keeps_the_rest(tmp_path):
    reference = synthetic.he_tile(7, 0, size=64, tumour=False).image
    plain = get_dataset("synthetic-he", "train", n=4, size=64, seed=3, store=Store(tmp_path))
    normed = get_dataset(
        "synthetic-he", "train", n=4, size=64, seed=3, store=Store(tmp_path),
        transform=StainNormalise(reference),
    )
    ref_ab = _ab_mean(torch.from_numpy(reference).permute(2, 0, 1) / 255)
    before = np.mean([np.abs(_ab_mean(plain[i]["image"]) - ref_ab).sum() for i in range(4)])
    after = np.mean([np.abs(_ab_mean(normed[i]["image"]) - ref_ab).sum() for i in range(4)])
    assert after < 0.5 * before
    for i in range(4):
        a, b = plain[i], normed[i]
        assert b["image"].shape == a["image"].shape and b["image"].dtype == torch.float32
        assert float(b["image"].min()) >= 0 and float(b["image"].max()) <= 1
        assert torch.equal(a["mask"], b["mask"]) and int(a["label"]) == int(b["label"])
        assert not torch.equal(a["image"], b["image"])
