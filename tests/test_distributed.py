"""Sharding with accelerate: the shares, and two CPU processes giving the one-process results."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xaistudy.core import distributed

HERE = Path(__file__).parent


@pytest.mark.parametrize("n, size", [(10, 3), (2, 4), (0, 2), (7, 1)])
def test_shares_are_contiguous_and_cover_everything_once(n, size):
    shares = [distributed.shard(n, i, size) for i in range(size)]
    assert [i for s in shares for i in s] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_process_outside_the_launch_is_refused():
    with pytest.raises(ValueError, match="process index 3 is outside 0..1"):
        distributed.shard(5, 3, 2)


def test_one_process_outside_a_launch_does_the_whole_work():
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    assert distributed.map_rows(lambda rows: torch.arange(rows.start, rows.stop), 4).tolist() == [
        0,
        1,
        2,
        3,
    ]
    t = torch.ones(3)
    assert distributed.sum_across(t) is t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_give_the_single_process_results(tmp_path):
    """RePaint and DDPM sampling (images shared out), RISE (masks shared out) and DDPM training
    (each batch shared out, gradients summed) under ``accelerate launch``, two CPU processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    job = str(HERE / "shard_job.py")
    single, sharded = tmp_path / "single.pt", tmp_path / "sharded.pt"
    subprocess.run([sys.executable, job, str(single)], env=env, check=True, timeout=300)
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    launch = [
        *accelerate,
        "--multi_gpu",  # accelerate's torchrun launcher; --cpu starts several only under MPI
        "--num_processes", "2",
        "--num_machines", "1",
        "--mixed_precision", "no",
        "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
    ]  # fmt: skip
    done = subprocess.run([*launch, job, str(sharded)], env=env, timeout=300,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = torch.load(single), torch.load(sharded)
    assert (int(one["world_size"]), int(two["world_size"])) == (1, 2)
    for key in ("repaint", "samples", "rise", "gradient", "loss", "ddpm_losses"):
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-5, msg=key)


def test_compute_fills_the_cache_without_the_notebook(tmp_path, monkeypatch, capsys):
    from xaistudy.app import cli

    monkeypatch.setenv("XAISTUDY_CACHE", str(tmp_path))
    flags = ["-p", "n_images", "1", "-p", "n_roi_images", "1", "-p", "epochs", "1"]
    assert cli.main(["compute", "segmentation_xai", "--profile", "smoke", *flags]) == 0
    summary = capsys.readouterr().out
    assert "segmentation_xai (smoke) computed" in summary and "on 1 process(es)" in summary
    kinds = {p.name for p in tmp_path.iterdir()}
    assert {"synthetic-he", "segmentation-unet", "seg-xai-cam"} <= kinds  # tiles, U-Net, maps
    for chapter in ("synthesis", "data"):
        assert cli.main(["compute", chapter]) == 2
        assert f"chapter '{chapter}' has no separate computation" in capsys.readouterr().err
