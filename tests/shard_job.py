"""The sharded work of ``tests/test_distributed.py``: RePaint, DDPM sampling and training,
RISE, small.

``python tests/shard_job.py OUT`` computes them in one process; under ``accelerate launch
--multi_gpu --num_processes 2 tests/shard_job.py OUT`` (CPU processes when there is no GPU or
``ACCELERATE_USE_CPU=true``) the same calls share the work out. The main
process writes the results to OUT (a torch file).
"""

from __future__ import annotations

import sys

import torch

from xaistudy.core import distributed
from xaistudy.evaluate.inpaint import repaint
from xaistudy.explain.rise import rise
from xaistudy.models.ddpm import (
    batch_gradient,
    build_unet,
    make_scheduler,
    sample,
    to_model_range,
    train_ddpm,
)


def compute() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    images = torch.rand(5, 3, 16, 16)  # 5 images: shares of 3 and 2
    keep = (torch.rand(5, 1, 16, 16) > 0.4).float()
    unet = build_unet(16, (8, 16))
    inpainted = repaint(
        unet,
        images,
        keep,
        seeds=[11, 12, 13, 14, 15],
        ddpm_scheduler=make_scheduler(100),
        num_inference_steps=10,
        jump_length=2,
        jump_n_sample=2,
        batch_size=2,
        device="cpu",
    )
    samples = sample(unet, make_scheduler(100), seeds=[7, 8, 9], num_inference_steps=5,
                     device="cpu")  # fmt: skip
    weights = torch.randn(3 * 16 * 16)
    maps = rise(lambda x: torch.sigmoid(x.flatten(1) @ weights), images[:2], n_masks=45,
                batch_size=8, seed=3, cells=4)
    # the gradient of a batch of 5 (shares of 3 and 2) is the whole batch's on every process
    net, alphas = build_unet(16, (8, 16)), make_scheduler(100).alphas_cumprod
    noise, t = torch.randn(5, 3, 16, 16), torch.randint(0, 100, (5,))
    loss = batch_gradient(net, alphas, to_model_range(images), noise, t)
    gradient = torch.cat([p.grad.flatten() for p in net.parameters()])
    # several epochs (batches of 4, 4 and 1: one process has an empty share of the last one)
    trained = train_ddpm(images.repeat(2, 1, 1, 1)[:9], channels=(8, 16), epochs=3,
                         batch_size=4, lr=1e-3, seed=5, device="cpu")  # batches of 4, 4, 1
    return {
        "repaint": inpainted,
        "samples": samples,
        "rise": torch.as_tensor(maps),
        "gradient": gradient,
        "loss": torch.tensor(loss),
        "ddpm_losses": torch.tensor(trained.losses),
        "world_size": torch.tensor(distributed.world_size()),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    results = compute()
    if distributed.is_main():
        torch.save(results, sys.argv[1])
