"""Parameter validation and the command line: one-line errors, exit 2, nothing executed."""

import pytest

from xaistudy import cli, runner
from xaistudy.chapters.data import DataParams
from xaistudy.params import PROFILES, ParamError, build_params, parse_cli_value


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
            real = {
                params.profile_defaults(profile).get(field)
                for field in params.DATASET_FIELDS
            } - {None}
            if not real:
                build_params(params, profile)
                continue
            # paper profiles read the real datasets: without them, one line naming the folder
            with pytest.raises(ParamError) as err:
                build_params(params, profile)
            message = str(err.value)
            assert "\n" not in message and str(tmp_path) in message and "does not exist" in message
            assert any(f"dataset '{name}'" in message for name in real)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"no_such_key": 1}, "unknown parameter 'no_such_key'"),
        ({"seed": "abc"}, "bad value for parameter 'seed'"),
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
        (["run", "data", "-p", "seed", "abc"], "bad value for parameter 'seed'"),
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
