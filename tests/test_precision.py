"""Reduced precision, layout and compilation (``xaistudy.models.precision``): the fp32 default
changes nothing, bf16 and fp16 agree with fp32 within stated tolerances on smoke sizes, and the
RePaint schedules of the validation grid give valid inpaintings."""

import numpy as np
import pytest
import torch
from torch import nn

from xaistudy.core import runtime
from xaistudy.core.params import ParamError, build_params
from xaistudy.evaluate import inpaint
from xaistudy.models import ddpm, precision
from xaistudy.models.classifiers import SmallCNN
from xaistudy.models.train import fit, make_loader
from xaistudy.studies.ibo import schedules

#: tolerances of a reduced precision against float32, in [0, 1] pixel units (RePaint, samples)
#: and relative (training losses); measured agreement is 5-10x inside them
PIXEL_MEAN = {"bf16": 0.01, "fp16": 0.005}
PIXEL_MAX = 0.1
LOSS_REL = 0.01


@pytest.fixture(scope="module")
def trained():
    """A tiny DDPM trained for three epochs in float32, and a batch to inpaint."""
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    kw = dict(channels=(8, 16), num_train_timesteps=100, epochs=3, batch_size=4, seed=0)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 16, 16, generator=gen)
    keep = (torch.rand(4, 1, 16, 16, generator=gen) > 0.5).float()
    return images, kw, ddpm.train_ddpm(images, device="cpu", **kw), x, keep


def test_unknown_precision_is_a_one_line_error():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, got 'fp64'"):
        precision.autocast("cpu", "fp64")
    with pytest.raises(ValueError, match="precision must be one of"):
        inpaint.repaint(nn.Identity(), torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8), [0],
                        precision="half")  # fmt: skip
    with pytest.raises(ParamError, match="precision"):
        from xaistudy.chapters.ibo import IboParams

        build_params(IboParams, "smoke", {"precision": "fp64"})


def test_fp32_is_plain_float32_and_bf16_casts_the_convolutions():
    conv = nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with precision.autocast("cpu", "fp32"):
        assert conv(x).dtype == torch.float32
    with precision.autocast("cpu", "bf16"):
        assert conv(x).dtype == torch.bfloat16
    assert not precision.grad_scaler("cpu", "bf16").is_enabled()
    assert precision.grad_scaler("cpu", "fp16").is_enabled()
    assert not precision.channels_last_applies("cpu") and precision.channels_last_applies("cuda")


def test_ddpm_training_in_reduced_precision_tracks_float32(trained):
    images, kw, fp32, *_ = trained
    for name in ("bf16", "fp16"):
        other = ddpm.train_ddpm(images, device="cpu", precision=name, **kw)
        for a, b in zip(fp32.losses, other.losses, strict=True):
            assert abs(a - b) / a < LOSS_REL, (name, fp32.losses, other.losses)
        weight = next(other.unet.parameters())
        assert weight.dtype == torch.float32  # autocast casts per operation, weights stay fp32


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_repaint_and_samples_in_reduced_precision_agree_with_float32(trained, name):
    _, _, dm, x, keep = trained
    kw = dict(ddpm_scheduler=dm.scheduler, device="cpu", num_inference_steps=10, jump_length=3,
              jump_n_sample=2)  # fmt: skip
    full = inpaint.repaint(dm.unet, x, keep, [1, 2, 3, 4], **kw)
    low = inpaint.repaint(dm.unet, x, keep, [1, 2, 3, 4], precision=name, **kw)
    hole = (keep == 0).expand_as(full)
    gap = (full - low).abs()
    assert torch.equal(full[~hole], low[~hole]) and torch.equal(low[~hole], x[~hole])
    assert 0 < gap[hole].mean() < PIXEL_MEAN[name] and gap.max() < PIXEL_MAX
    assert low.dtype == torch.float32 and 0 <= low.min() and low.max() <= 1
    a = ddpm.sample(dm.unet, dm.scheduler, [1, 2], num_inference_steps=10, device="cpu")
    b = ddpm.sample(dm.unet, dm.scheduler, [1, 2], num_inference_steps=10, device="cpu",
                    precision=name)  # fmt: skip
    assert (a - b).abs().mean() < PIXEL_MEAN[name] and (a - b).abs().max() < PIXEL_MAX


def test_fp32_repaint_is_unchanged_by_the_precision_option(trained):
    _, _, dm, x, keep = trained
    kw = dict(ddpm_scheduler=dm.scheduler, device="cpu", num_inference_steps=10, jump_length=3,
              jump_n_sample=2)  # fmt: skip
    assert torch.equal(
        inpaint.repaint(dm.unet, x, keep, [5, 6, 7, 8], **kw),
        inpaint.repaint(dm.unet, x, keep, [5, 6, 7, 8], precision="fp32", **kw),
    )


def test_classifier_training_in_reduced_precision_tracks_float32():
    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.rand(32, 3, 32, 32, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    )
    losses = {}
    for name in ("fp32", "bf16", "fp16"):
        torch.manual_seed(0)
        result = fit(SmallCNN(2), make_loader(data, 8, shuffle=True, seed=0),
                     make_loader(data, 16), epochs=2, seed=0, device="cpu", patience=None,
                     precision=name)  # fmt: skip
        losses[name] = result.history["train_loss"].to_numpy()
        assert next(result.model.parameters()).dtype == torch.float32
    for name in ("bf16", "fp16"):
        assert abs(losses[name] - losses["fp32"]).max() / losses["fp32"].max() < LOSS_REL, losses


def test_compile_wraps_the_module_and_layout_is_left_alone_on_the_cpu():
    net = nn.Conv2d(3, 3, 1)
    compiled = precision.prepare(net, "cpu", compile=True)
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled._orig_mod is net and not net.training
    x = torch.rand(1, 3, 4, 4)
    assert precision.layout(x).is_contiguous()
    assert precision.prepare(net, "cpu") is net
    unet = ddpm.build_unet(16, (8, 16), attention=True)  # fused scaled-dot-product attention
    kinds = {type(m.processor).__name__ for m in unet.modules() if hasattr(m, "processor")}
    assert kinds == {"AttnProcessor2_0"}


def test_deterministic_kernels_switch_and_restore_and_survive_seeding():
    runtime.fix_threads(torch.get_num_threads())
    assert torch.are_deterministic_algorithms_enabled()
    with runtime.deterministic_kernels(False):
        runtime.seed_everything(0)
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()
    runtime.seed_everything(0)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


class _NoisePredictor(nn.Module):
    """The smallest stand-in for a DDPM's UNet (a 1x1 convolution): the schedule's steps, not
    the model, are under test."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x, t):
        from types import SimpleNamespace

        return SimpleNamespace(sample=self.conv(x))


def test_every_schedule_of_the_grid_gives_valid_inpaintings():
    torch.manual_seed(0)
    unet = _NoisePredictor().eval()
    sched = ddpm.make_scheduler(1000)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 8, 8, generator=gen)
    keep = (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float()
    for schedule in (schedules.FULL, *schedules.GRID):
        with inpaint.count_unet_calls(unet) as counter:
            out = inpaint.repaint(unet, x, keep, [0, 1], ddpm_scheduler=sched, device="cpu",
                                  num_inference_steps=schedule[0], jump_length=schedule[1],
                                  jump_n_sample=schedule[2])  # fmt: skip
        assert counter.calls == inpaint.unet_calls_per_image(*schedule), schedule
        assert out.shape == x.shape and torch.isfinite(out).all()
        assert 0 <= out.min() and out.max() <= 1
        assert torch.equal(out * keep, x * keep), schedule  # the known region is unchanged
        assert (out - x).abs()[(keep == 0).expand_as(x)].mean() > 0.01  # the hole is filled


def test_schedule_labels_parse_and_bad_ones_are_one_line_errors():
    assert schedules.parse("100/5/5") == (100, 5, 5) and schedules.label((50, 5, 5)) == "50/5/5"
    with pytest.raises(ValueError, match="T/j/r"):
        schedules.parse("100/5")


def _run(auc, ssim=0.8, lpips=0.2, maha=10.0, occluded=None, calls=2410):
    s, m = auc.shape
    occluded = occluded if occluded is not None else torch.zeros(s, m, 1, 3, 8, 8).numpy()
    return {
        "auc": auc, "ssim": np.full((s, m, 1), ssim), "feature_lpips": np.full((s, m, 1), lpips),
        "mahalanobis": np.full((s, m, 1), maha), "occluded": occluded,
        "seconds": np.array(1.0), "unet_calls_per_image": np.array(calls),
    }  # fmt: skip


def test_schedule_table_applies_the_tolerances_to_hand_made_runs():
    from types import SimpleNamespace

    ex = SimpleNamespace(ious=np.array([[0.9, 0.5, 0.1], [0.8, 0.4, 0.2]]))  # IoU order 0, 1, 2
    full = np.array([[0.2, 0.5, 0.8], [0.3, 0.6, 0.9]])  # AUC order 0, 1, 2: MARD 0
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 1, 3, 8, 8)).astype(np.float32)
    close = {"occluded": images, "calls": 460}
    runs = {
        schedules.FULL: [_run(full, occluded=images)],
        (100, 5, 5): [_run(full + 0.01, **close), _run(full, **close)],
        (50, 5, 5): [_run(full[:, ::-1].copy(), occluded=images, calls=230)] * 2,
        (10, 5, 2): [_run(full, ssim=0.7, occluded=images, calls=15)] * 2,
    }
    table = schedules.compare(runs, ex).set_index("schedule")
    assert table.loc["250/10/10", "passes"] and table.loc["250/10/10", "auc_abs_diff"] == 0
    row = table.loc["100/5/5"]
    assert row["auc_abs_diff"] == pytest.approx(0.01) and row["kendall_tau"] == 1
    assert row["mard"] == 0 and row["ssim_to_full"] == pytest.approx(1.0) and row["passes"]
    reversed_ = table.loc["50/5/5"]  # the methods' order reversed: tau -1, MARD 4/3
    assert reversed_["kendall_tau"] == -1 and reversed_["mard"] == pytest.approx(4 / 3)
    assert not reversed_["passes"]
    assert table.loc["10/5/2", "ssim_diff"] == pytest.approx(0.1)  # over the 0.02 bound
    assert not table.loc["10/5/2", "passes"]
    assert schedules.cheapest_passing(table.reset_index()) == "100/5/5"
    from xaistudy.studies.ibo.schedule_noise import replicate_floors

    floors = replicate_floors(runs, ex).set_index("schedule")  # replicate 0 against 1
    assert list(floors.index) == ["100/5/5", "50/5/5", "10/5/2"]  # the full one has one
    assert floors.loc["100/5/5", "floor_auc_abs_diff"] == pytest.approx(0.01)
    assert floors.loc["100/5/5", "floor_outside"] == ""
    assert floors.loc["50/5/5", "floor_auc_abs_diff"] == 0  # identical replicates
    wide = {s: [_run(full + 0.08, **close), _run(full, **close)] for s in [(100, 5, 5)]}
    assert replicate_floors(wide, ex).floor_outside.iloc[0] == "auc_abs_diff"  # 0.08 > 0.05


def test_schedule_check_runs_on_the_smoke_study(tmp_path):
    from xaistudy.chapters.ibo import IboParams
    from xaistudy.core.store import Store

    params = build_params(IboParams, "smoke")
    table, chosen = schedules.check_schedules(
        params, schedules=((10, 5, 2), (4, 2, 2)), full=(20, 5, 2), methods=("gradcam", "eigencam"),
        n_tiles=2, store=Store(tmp_path),
    )  # fmt: skip
    assert list(table["schedule"]) == ["20/5/2", "10/5/2", "4/2/2"]
    assert list(table["unet_calls_per_image"]) == [35, 15, 6]
    first = table.iloc[0]
    assert first["auc_abs_diff"] == 0 and first["mard_diff"] == 0 and first["passes"]
    assert table["ssim_replicates"].iloc[1:].between(0, 1).all()
    assert chosen in set(table["schedule"])
    with pytest.raises(ValueError, match="schedule 30/5/2: .* must divide"):
        schedules.check_schedules(params, schedules=((30, 5, 2),), full=(20, 5, 2))
    with pytest.raises(ValueError, match="schedule 250/10/10: .* exceeds"):
        schedules.check_schedules(params)  # the paper's T = 250 > the smoke DDPM's 100 steps


def test_gpu_check_runs_every_step_at_toy_shapes_on_the_cpu(tmp_path):
    """The GPU script's code path, as a GPU run takes it, at toy shapes (compile skipped)."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import gpu_check

    out = gpu_check.main(["--tiny", "--repeats", "1", "--out", str(tmp_path / "check.json")])
    assert json.loads((tmp_path / "check.json").read_text()) == json.loads(json.dumps(out))
    assert [r["setting"] for r in out["settings"]] == ["fp32", "bf16"]
    assert out["skipped"] == ["bf16 + compile: not on a CPU unless --compile-on-cpu"]
    assert out["repaint_unet_call_gflops_per_image"] > 0 and out["bf16_peak_tflops"] is None
    for row in out["settings"]:
        assert set(row["seconds_per_unit"]) == {
            "ddpm_training_step", "repaint_unet_call", "gate_unet_call", "classifier_training_step"
        }  # fmt: skip
        assert row["gpu_hours_paper_schedule"] >= row["gpu_hours_profile_schedule"] > 0
    agreement = out["bf16_agreement"]
    assert agreement["known_region_identical"]
    assert agreement["mean_abs_difference_in_hole"] < PIXEL_MEAN["bf16"]
    assert gpu_check.bf16_peak("NVIDIA H100 PCIe") == 756 and gpu_check.bf16_peak("NVIDIA H200")


def test_the_gpu_profile_runs_bf16_with_the_schedule_the_check_chose():
    import json

    from xaistudy.chapters.ibo import IboParams
    from xaistudy.chapters.ibo.params import GPU_SCHEDULE
    from xaistudy.chapters.ibo.records import schedule_table, schedule_text
    from xaistudy.core.store import repo_root
    from xaistudy.studies.ibo.occlude import numerics_key

    gpu = build_params(IboParams, "gpu")
    assert gpu.precision == "bf16" and gpu.repaint_batch == 0 and gpu.deterministic
    assert (gpu.repaint_steps, gpu.jump_length, gpu.resamplings) == GPU_SCHEDULE
    quick = build_params(IboParams, "quick")
    assert quick.precision == "fp32" and not quick.compile and numerics_key(quick) == {}
    assert numerics_key(gpu) == {"precision": "bf16"}
    path = repo_root() / "benchmarks" / "results" / "repaint_schedules_cpu_2core.json"
    check = json.loads(path.read_text())
    passed = [r for r in check["table"] if r["passes"]]
    cheapest = min(passed, key=lambda r: r["unet_calls_per_image"])["schedule"]
    assert check["chosen"] == cheapest == schedules.label(GPU_SCHEDULE)
    assert check["full_schedule"] == schedules.label(schedules.FULL)
    assert {k: v["bound"] for k, v in check["tolerance"].items()} == {
        k: v[0] for k, v in schedules.TOLERANCE.items()
    }  # the stored check used today's tolerances
    table = schedule_table()
    assert table.chosen.sum() == 1 and set(table.file) == {path.name}
    text = schedule_text(quick, table)
    assert schedules.label(GPU_SCHEDULE) in text and "This run's schedule, 10/5/2," in text
