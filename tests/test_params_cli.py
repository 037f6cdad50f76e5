"""Parameter validation and the command line: one-line errors, exit 2, nothing executed."""

import os
import re

import pytest
import torch

from xaistudy.app import cli, runner
from xaistudy.chapters.data import DataParams
from xaistudy.core.params import (
    PROFILES,
    ParamError,
    build_params,
    describe_params,
    parse_cli_value,
    parse_param_value,
)


def test_profiles_set_defaults_and_overrides_win():
    smoke = build_params(DataParams, "smoke")
    quick = build_params(DataParams, "quick")
    assert smoke.tile_size == 64 and quick.tile_size == 128
    assert build_params(DataParams, "smoke", {"tile_size": 256}).tile_size == 256


def test_every_profile_of_every_chapter_validates(monkeypatch, tmp_path):
    monkeypatch.setenv("XAISTUDY_DATA", str(tmp_path))  # no real dataset here
    for chapter in runner.chapters().values():
        for profile in PROFILES:
            params = chapter.params
            named = {params.profile_defaults(profile).get(f) for f in params.DATASET_FIELDS}
            real = {name for name in named - {None} if not name.startswith("synthetic")}
            if not real:
                build_params(params, profile)
                continue
            # paper profiles read the real datasets: without them, one line naming the folder
            with pytest.raises(ParamError) as err:
                build_params(params, profile)
            message = str(err.value)
            assert "\n" not in message and str(tmp_path) in message and "does not exist" in message
            assert any(f"dataset '{name}'" in message for name in real)


def test_gpu_profiles_are_the_paper_shapes_on_synthetic_data(capsys):
    shapes = ("tile_size", "classifier", "model", "backbone", "ddpm_channels", "repaint_steps",
              "jump_length", "resamplings", "n_samples", "rise_masks", "frame_size", "fc_width")
    for name, chapter in runner.chapters().items():
        params = chapter.params
        gpu = build_params(params, "gpu")  # no real dataset needed
        for field in params.DATASET_FIELDS:
            assert getattr(gpu, field).startswith("synthetic"), (name, field)
        paper = params.profile_defaults("paper")
        own = {
            "segmentation_xai": {"model"},  # DeepLabv3 needs COCO
            "ibo": {"repaint_steps", "jump_length", "resamplings"},  # the validated schedule
        }.get(name, set())
        for field in set(shapes) & set(paper) - own:
            assert getattr(gpu, field) == paper[field], (name, field)
        if name == "ibo":
            from xaistudy.chapters.ibo.params import GPU_SCHEDULE

            assert (gpu.repaint_steps, gpu.jump_length, gpu.resamplings) == GPU_SCHEDULE
        if chapter.part == "Chapters":
            assert cli.main(["params", name]) == 0
            header = capsys.readouterr().out.splitlines()[0]
            assert "gpu (the papers' model sizes" in header


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"no_such_key": 1}, "unknown parameter 'no_such_key'"),
        ({"seeds": "abc"}, "bad value for parameter 'seeds'"),
        ({"seeds": [2**31]}, "bad value for parameter 'seeds'"),
        ({"tile_size": 32}, "bad value for parameter 'tile_size'"),
        ({"device": "tpu"}, "bad value for parameter 'device'"),
    ],
)
def test_bad_parameters_are_one_line(overrides, expected):
    with pytest.raises(ParamError) as err:
        build_params(DataParams, "quick", overrides)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_profile():
    with pytest.raises(ParamError, match="unknown profile 'huge'"):
        build_params(DataParams, "huge")


def test_cli_values_parse_as_json_then_string():
    assert parse_cli_value("1e-3") == 1e-3
    assert parse_cli_value("true") is True
    assert parse_cli_value("[1, 2]") == [1, 2]
    assert parse_cli_value("camelyon16") == "camelyon16"


def _refuse_execution(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a notebook was executed")

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", boom)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "data", "-p", "no_such_key", "1"], "unknown parameter 'no_such_key'"),
        (["run", "data", "-p", "seeds", "abc"], "bad value for parameter 'seeds'"),
        (["run", "data", "--seeds", "-1"], "bad value for parameter 'seeds'"),
        (["run", "data", "-p", "device", "cuda:99"], "device 'cuda:99' is not available"),
        (["run", "data", "-p", "threads", "-2"], "bad value for parameter 'threads'"),
        (["run", "saliency_tour", "-p", "lr", "-1e-3"], "bad value for parameter 'lr'"),
        (["run", "saliency_tour", "-p", "dataset", "nope"], "(not an allowed value)"),
        (["run", "segmentation_xai", "-p", "layers", '["nope"]'], "unknown layer 'nope'"),
        (["run", "nope"], "unknown chapter 'nope'; allowed: data"),
        (["run", "data", "--profile", "huge"], "invalid choice"),
        (["run", "data", "-p", "seed", "1", "-p", "seed", "2"], "given twice"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(argv, expected, capsys, monkeypatch, tmp_path):
    _refuse_execution(monkeypatch)
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(cli.main([*argv, "--out", str(tmp_path / "out")]))
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_list_and_params(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(runner.chapters()) and out[0].startswith("data")
    assert cli.main(["params", "data"]) == 0
    assert "tile_size" in capsys.readouterr().out


def test_cli_refuses_an_output_folder_that_is_a_file(capsys, monkeypatch, tmp_path):
    _refuse_execution(monkeypatch)
    (tmp_path / "taken").write_text("a file")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        assert cli.main(["run", "data", "--profile", "smoke", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is a file, not a folder" in err


def test_cli_refuses_an_empty_output_folder_and_an_unwritable_cache(capsys, monkeypatch, tmp_path):
    _refuse_execution(monkeypatch)
    for command in (["run", "data"], ["exercises", "data", "--run"]):
        assert cli.main([*command, "--profile", "smoke", "--out", ""]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "the name is empty" in err, err
    (tmp_path / "file").write_text("a file")
    monkeypatch.setenv("XAISTUDY_CACHE", str(tmp_path / "file" / "cache"))
    assert cli.main(["run", "data", "--profile", "smoke", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "artifact cache" in err and "XAISTUDY_CACHE" in err


def test_a_yes_no_value_is_refused_where_a_number_is_expected(capsys, monkeypatch):
    _refuse_execution(monkeypatch)
    assert cli.main(["run", "data", "--profile", "smoke", "-p", "cnn_epochs", "true"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'cnn_epochs': True (a yes/no value where int is expected)" in err
    assert len(err.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_refuses_a_read_only_output_folder(capsys, monkeypatch, tmp_path):
    _refuse_execution(monkeypatch)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert cli.main(["run", "data", "--out", str(locked / "out")]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be written" in err


def test_unavailable_device_is_refused_before_the_run():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ParamError, match="device 'cuda' is not available: no CUDA GPU"):
        build_params(DataParams, "smoke", {"device": "cuda"})
    assert build_params(DataParams, "smoke", {"device": "cpu"}).device == "cpu"


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chapter", interrupted)
    assert cli.main(["run", "data", "--profile", "smoke"]) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err


def test_text_parameters_keep_the_text_and_numbers_parse():
    tour = runner.chapters()["saliency_tour"].params
    assert parse_param_value(tour, "data_root", "2024") == "2024"  # a folder called 2024
    assert parse_param_value(tour, "n_train", "2024") == 2024
    assert parse_param_value(tour, "lr", "-1e-3") == -1e-3
    assert parse_param_value(tour, "pretrained", "true") == "true"  # validated to True
    assert build_params(tour, "smoke", {"pretrained": "false"}).pretrained is False
    assert parse_param_value(DataParams, "seeds", "[1, 2]") == [1, 2]


def test_path_parameters_resolve_against_the_callers_folder(tmp_path, monkeypatch):
    (tmp_path / "w.pth").write_bytes(b"weights")
    (tmp_path / "2024").mkdir()
    tour = runner.chapters()["saliency_tour"].params
    assert {"pretrained", "data_root"} <= set(tour.path_fields())
    got = tour.resolve_paths(
        {"pretrained": "w.pth", "data_root": "2024", "n_train": 8}, cwd=tmp_path
    )
    assert got == {
        "pretrained": str(tmp_path / "w.pth"),
        "data_root": str(tmp_path / "2024"),
        "n_train": 8,
    }
    assert tour.resolve_paths({"pretrained": "true", "data_root": ""}, tmp_path) == {
        "pretrained": "true",
        "data_root": "",
    }
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # the relative file is found from the caller's folder only
    with pytest.raises(ParamError, match="does not exist"):
        build_params(tour, "smoke", {"pretrained": "w.pth"})
    params = build_params(tour, "smoke", {"pretrained": "../w.pth"})
    assert params.pretrained == str(tmp_path / "w.pth")


def test_a_folder_given_as_a_file_is_named_as_a_folder(tmp_path):
    tour = runner.chapters()["saliency_tour"].params
    with pytest.raises(ParamError, match="is a folder, not a file"):
        build_params(tour, "smoke", {"pretrained": str(tmp_path)})


def test_missing_pretrained_weights_hint_names_this_chapters_parameter(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    tour = runner.chapters()["saliency_tour"].params
    with pytest.raises(ParamError) as err:
        build_params(tour, "smoke", {"model": "resnet18", "pretrained": True})
    assert "-p pretrained " in str(err.value) and "-p weights" not in str(err.value)


def test_params_shows_ranges_and_allowed_values(capsys):
    assert cli.main(["params", "data"]) == 0
    out = capsys.readouterr().out
    assert "PydanticUndefined" not in out
    assert "seeds" in out and "[0, 1, 2]" in out  # a default made by a factory
    assert "allowed: 1..256" in out  # threads
    for chapter in runner.chapters():
        assert cli.main(["params", chapter]) == 0
        assert "PydanticUndefined" not in capsys.readouterr().out
    rows = {r["name"]: r for r in describe_params(runner.chapters()["saliency_tour"].params)}
    assert rows["dataset"]["allowed"].startswith("synthetic-he")


def test_run_help_lists_chapters_and_profiles(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in runner.chapters():
        assert name in out
    assert all(p in out for p in PROFILES) and "quick (the default" in out


def test_every_hint_in_an_error_names_a_parameter_of_that_chapter(monkeypatch, tmp_path):
    """The dataset and weights errors of every chapter, collected: each parameter a hint names
    (``-p NAME``, ``NAME /missing/folder``) is one the chapter has."""
    from xaistudy.data.datasets import dataset_names, get_spec

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights anywhere
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("XAISTUDY_DATA", str(tmp_path / "data"))
    messages = []
    for name, chapter in runner.chapters().items():
        model = chapter.params
        runner.register_input_checks(model)
        attempts = [{"pretrained": True}] if "pretrained" in model.model_fields else []
        for field in model.DATASET_FIELDS:
            attempts += [{field: d} for d in dataset_names() if get_spec(d).needs_root]
        for overrides in attempts:
            try:
                build_params(model, "smoke", overrides)
            except ParamError as err:
                if not str(err).startswith("bad "):  # not a dataset this field allows
                    messages.append((name, model, str(err)))
    assert len(messages) >= 8
    for name, model, text in messages:
        named = set(re.findall(r"-p (\w+)", text))
        named |= set(re.findall(r"(\w*data_(?:root|options)) ", text))
        assert named, (name, text)
        assert named <= set(model.model_fields), (name, text)


def test_synthesis_refuses_a_chapters_folder_that_does_not_exist(capsys, monkeypatch, tmp_path):
    _refuse_execution(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    assert cli.main(["run", "synthesis", "-p", "chapters_dir", "nope", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{tmp_path / 'nope'} is not a folder" in err
    # a relative folder that exists is read against the caller's folder
    params = build_params(runner.get_chapter("synthesis").params, "quick", {"chapters_dir": "mine"})
    assert params.chapters_dir == str(tmp_path / "mine")


def test_help_and_list_import_no_chapter_and_no_torch():
    """``xaistudy --help``, ``run --help`` and ``list`` answer without importing a chapter or
    torch (seconds of imports): the chapter names come from the package's folders, their
    titles from each package's ``CHAPTER = Chapter(...)`` statement, read as text."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom xaistudy.app import cli\n"
        "for argv in (['--help'], ['run', '--help'], ['list']):\n"
        "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in sys.modules if m == 'torch' or m.startswith('xaistudy.chapters.')]\n"
        "print('HEAVY', sorted(m for m in heavy if m != 'xaistudy.chapters.spec'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out, out[-500:]
    assert "thesis_metrics" in out and "xrelevancecam" in out  # the chapters are listed
    titles = [f"{c.name:<18} {c.title}" for c in runner.chapters().values()]
    listed = [line for line in out.splitlines() if line in titles]
    assert listed == titles  # the same titles in book order as importing the chapters gives
