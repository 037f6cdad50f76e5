"""RISE (Petsiuk et al., 2018): saliency as the score-weighted average of random masks.

``rise`` takes any ``score_fn`` of a batch of masked images, so the same code explains a
classifier (the target-class probability) and a segmentation model (a class score summed over
a region).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from xaistudy.core import distributed


def rise_masks(
    n: int, size: int | tuple[int, int], cells: int = 8, p: float = 0.5, seed: int = 0
) -> torch.Tensor:
    """``n`` RISE masks (n, 1, H, W) in [0, 1].

    A ``cells`` x ``cells`` binary grid (each cell kept with probability ``p``) is upsampled
    bilinearly to ``(cells + 1) * ceil(H / cells)`` and cropped at a random shift.
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if n < 1 or cells < 1:
        raise ValueError(f"n and cells must be >= 1, got n={n}, cells={cells}")
    h, w = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(seed)
    grid = (torch.rand(n, 1, cells, cells, generator=gen) < p).float()
    ch, cw = int(np.ceil(h / cells)), int(np.ceil(w / cells))
    up = F.interpolate(
        grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear", align_corners=False
    )
    dy = torch.randint(0, ch, (n,), generator=gen)
    dx = torch.randint(0, cw, (n,), generator=gen)
    masks = torch.stack([up[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return masks.clamp_(0.0, 1.0)


#: what a pixel that a RISE mask hides shows (:func:`fill_like`)
RISE_FILLS: dict[str, str] = {
    "black": "zero (Petsiuk et al.): black for images in [0, 1]",
    "mean": "the image's mean colour (per channel)",
    "blur": "the image blurred (Gaussian, σ = half a mask cell)",
}


def fill_like(image: torch.Tensor, fill: str = "black", cells: int = 8) -> torch.Tensor | float:
    """What the hidden pixels of ``image`` (1, C, H, W) show under RISE's masks (see
    :data:`RISE_FILLS`): a number, or an image that broadcasts against it."""
    if fill not in RISE_FILLS:
        raise ValueError(f"unknown RISE fill {fill!r}; allowed: {', '.join(RISE_FILLS)}")
    if fill == "black":
        return 0.0
    if fill == "mean":
        return image.mean(dim=(-2, -1), keepdim=True)
    from torchvision.transforms.functional import gaussian_blur

    sigma = max(image.shape[-1] / cells / 2, 0.5)
    size = min(2 * int(3 * sigma) + 1, 2 * ((min(image.shape[-2:]) - 1) // 2) + 1)
    return gaussian_blur(image, [size, size], [sigma, sigma])


@torch.no_grad()
def rise(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    n_masks: int = 1000,
    batch_size: int = 64,
    seed: int = 0,
    cells: int = 8,
    p: float = 0.5,
    baseline: float | torch.Tensor = 0.0,
    normalise: str = "coverage",
    masks: torch.Tensor | None = None,
) -> np.ndarray:
    """RISE maps (B, H, W) of ``inputs`` (B, C, H, W).

    ``score_fn(images)`` returns one score per image for the images of one input under many
    masks. The map is ``sum_i score_i * M_i`` divided, per pixel, by how much the masks kept
    that pixel, ``sum_i M_i`` (``normalise="coverage"``, the default: the mean score when the
    pixel is visible, so the random mask pattern itself does not show in the map), or by
    ``n_masks * p`` as in Petsiuk et al. (``normalise="p"``). Masked pixels take ``baseline``:
    a number, or an image that broadcasts against one input (:func:`fill_like`).
    ``masks``: masks drawn beforehand with :func:`rise_masks` (``n_masks`` of them, reused
    across calls); None draws them here. Under ``accelerate launch`` the masks are shared out
    between the processes and the sums added (:mod:`xaistudy.core.distributed`).
    """
    if normalise not in ("coverage", "p"):
        raise ValueError(f"normalise must be 'coverage' or 'p', got {normalise!r}")
    if masks is None:
        masks = rise_masks(n_masks, tuple(inputs.shape[-2:]), cells, p, seed)
    elif masks.shape != (n_masks, 1, *inputs.shape[-2:]):
        raise ValueError(
            f"masks must be (n_masks, 1, H, W) = {(n_masks, 1, *inputs.shape[-2:])}, "
            f"got {tuple(masks.shape)}"
        )
    masks = masks.to(inputs.device)
    mine = distributed.shard(n_masks)  # all masks outside accelerate launch
    out = np.zeros((len(inputs), *inputs.shape[-2:]), np.float32)
    for b in tqdm(range(len(inputs)), desc="RISE", leave=False):
        image = inputs[b : b + 1]
        total = torch.zeros(inputs.shape[-2:], device=inputs.device)
        for start in range(mine.start, mine.stop, batch_size):
            m = masks[start : min(start + batch_size, mine.stop)]
            masked = image * m + baseline * (1 - m)
            scores = score_fn(masked).reshape(-1).to(total.dtype)
            total += (scores[:, None, None] * m[:, 0]).sum(0)
        total = distributed.sum_across(total)
        if normalise == "coverage":
            denominator = masks[:, 0].sum(0).clamp(min=1e-6)
        else:
            denominator = torch.tensor(n_masks * p, device=inputs.device)
        out[b] = (total / denominator).cpu().numpy()
    return out


def class_probability(
    model: torch.nn.Module, target: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A RISE score: the softmax probability of class ``target``."""
    return lambda x: torch.softmax(model(x), dim=1)[:, target]
