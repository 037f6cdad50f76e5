"""Batched RePaint: same images as one at a time and as diffusers' pipeline; its UNet cost."""

import numpy as np
import pytest
import torch
from diffusers import RePaintPipeline

from xaistudy.evaluate import inpaint, occlusion
from xaistudy.models.ddpm import build_unet, make_scheduler

SCHEDULE = dict(num_inference_steps=10, jump_length=3, jump_n_sample=2)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    unet = build_unet(16, (8, 16)).eval()
    sched = make_scheduler(100)
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 16, 16, generator=gen)
    keep = (torch.rand(4, 1, 16, 16, generator=gen) > 0.5).float()  # a different mask per image
    return unet, sched, images, keep


def run(setup, images, keep, seeds, **kw):
    unet, sched = setup[:2]
    return inpaint.repaint(
        unet, images, keep, seeds, ddpm_scheduler=sched, device="cpu", **SCHEDULE, **kw
    )


@pytest.mark.parametrize(
    ("t", "j", "r", "calls"), [(250, 10, 10, 2410), (100, 10, 10, 910), (50, 5, 5, 230)]
)
def test_unet_calls_formula_matches_the_scheduler(t, j, r, calls):
    assert inpaint.unet_calls_per_image(t, j, r) == calls
    steps = inpaint.repaint_timesteps(t, j, r, num_train_timesteps=1000)
    reverse = sum(
        1 for prev, cur in zip(np.r_[steps[0] + 1, steps[:-1]], steps, strict=True) if cur < prev
    )
    assert reverse == calls


def test_batched_equals_one_at_a_time_and_counts_calls(setup):
    unet, _, images, keep = setup
    seeds = [11, 12, 13, 14]
    with inpaint.count_unet_calls(unet) as counter:
        batched = run(setup, images, keep, seeds)
    per_image = inpaint.unet_calls_per_image(**SCHEDULE)
    assert counter.calls == per_image and counter.images == per_image * 4
    single = torch.cat(
        [run(setup, images[i : i + 1], keep[i : i + 1], seeds[i : i + 1]) for i in range(4)]
    )
    chunked = run(setup, images, keep, seeds, batch_size=3)
    assert torch.allclose(batched, single, atol=1e-4)
    assert torch.allclose(batched, chunked, atol=1e-4)
    assert not torch.allclose(batched, run(setup, images, keep, [1, 2, 3, 4]), atol=1e-2)


def test_matches_diffusers_repaint_pipeline_image_by_image(setup):
    unet, sched, images, keep = setup
    ours = run(setup, images, keep, [5, 6, 7, 8])
    pipe = RePaintPipeline(unet=unet, scheduler=inpaint.repaint_scheduler(sched, eta=1.0))
    pipe.set_progress_bar_config(disable=True)
    for i, s in enumerate([5, 6, 7, 8]):
        out = pipe(
            image=images[i : i + 1] * 2 - 1,
            mask_image=keep[i : i + 1],
            eta=1.0,
            generator=torch.Generator().manual_seed(s),
            output_type="np",
            **SCHEDULE,
        ).images
        theirs = torch.from_numpy(out).permute(0, 3, 1, 2)
        hole = keep[i : i + 1] == 0
        assert torch.allclose(
            ours[i : i + 1][hole.expand_as(theirs)], theirs[hole.expand_as(theirs)], atol=1e-4
        )


def test_known_pixels_unchanged_and_levels_cumulative(setup):
    unet, sched, images, keep = setup
    out = run(setup, images, keep, [0, 1, 2, 3])
    kept = keep.bool().expand_as(images)
    assert torch.equal(out[kept], images[kept])
    levels = torch.randint(1, 6, (4, 16, 16), generator=torch.Generator().manual_seed(2))
    steps = occlusion.occlude_levels(
        "ibo",
        images,
        levels,
        [0, 1, 2, 3],
        n_masks=4,
        unet=unet,
        ddpm_scheduler=sched,
        device="cpu",
        **SCHEDULE,
    )
    assert steps.shape == (4, 4, 3, 16, 16)
    for k in range(4):
        untouched = (levels > k + 1)[:, None].expand_as(images)
        assert torch.equal(steps[:, k][untouched], images[untouched])
        if k:
            before = (levels <= k)[:, None].expand_as(images)  # earlier levels stay as inpainted
            assert torch.equal(steps[:, k][before], steps[:, k - 1][before])


def test_bad_inputs_give_one_line_errors(setup):
    _, _, images, keep = setup
    with pytest.raises(ValueError, match=r"keep mask must be \(B, 1, H, W\)"):
        run(setup, images, keep[:, 0], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="one per image"):
        run(setup, images, keep, [0])
    with pytest.raises(ValueError, match="must divide"):
        inpaint.repaint(
            setup[0],
            images,
            keep,
            [0, 1, 2, 3],
            ddpm_scheduler=setup[1],
            num_inference_steps=7,
            device="cpu",
        )
