"""Where real datasets are looked for, and the one-line errors before anything runs."""

from pathlib import Path

import pytest

from xaistudy.chapters.ibo import IboParams
from xaistudy.chapters.saliency_tour import SaliencyTourParams
from xaistudy.core.params import ParamError, build_params
from xaistudy.core.store import repo_root
from xaistudy.data import datasets
from xaistudy.data.datasets import (
    DataRootError,
    check_data_root,
    check_options,
    files_fingerprint,
    get_dataset,
    require,
    require_glob,
    resolve_data_root,
)

REAL = ["camelyon16", "pannuke", "diagset", "coco", "pcle-folder", "image-folder"]


def test_every_real_dataset_is_registered_with_a_layout():
    for name in REAL:
        spec = datasets.get_spec(name)
        assert spec.needs_root and spec.layout and "\n" not in spec.layout
    for name in ["synthetic-he", "synthetic-grading", "synthetic-pcle", "synthetic-he-pen"]:
        assert not datasets.get_spec(name).needs_root


def test_data_root_defaults_to_env_then_repo(monkeypatch, tmp_path):
    monkeypatch.delenv("XAISTUDY_DATA", raising=False)
    assert resolve_data_root("camelyon16") == repo_root() / "data" / "camelyon16"
    monkeypatch.setenv("XAISTUDY_DATA", str(tmp_path))
    assert resolve_data_root("camelyon16") == tmp_path / "camelyon16"
    assert resolve_data_root("camelyon16", "/elsewhere") == Path("/elsewhere")
    assert resolve_data_root("camelyon16", "") == tmp_path / "camelyon16"


@pytest.mark.parametrize("name", REAL)
def test_missing_root_is_one_line_naming_folder_and_layout(name, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataRootError) as err:
        check_data_root(name, missing)
    message = str(err.value)
    assert "\n" not in message
    assert f"dataset '{name}'" in message and str(missing) in message
    assert datasets.get_spec(name).layout in message and "data/README.md" in message


@pytest.mark.parametrize("name", REAL)
def test_empty_root_names_what_is_missing(name, tmp_path):
    with pytest.raises(DataRootError) as err:
        check_data_root(name, tmp_path)
    message = str(err.value)
    assert "\n" not in message and f"dataset '{name}'" in message and str(tmp_path) in message


def test_generated_datasets_take_no_root(tmp_path):
    assert check_data_root("synthetic-he") is None
    with pytest.raises(DataRootError, match="generated, not read from files"):
        check_data_root("synthetic-he", tmp_path)
    with pytest.raises(DataRootError, match="generated"):
        get_dataset("synthetic-he", "train", data_root=tmp_path, n=2, size=64)


def test_options_are_checked_against_the_loader():
    check_options("camelyon16", {"level": 1})
    with pytest.raises(DataRootError, match="has no option 'zoom'; allowed: .*level"):
        check_options("camelyon16", {"zoom": 2})
    with pytest.raises(DataRootError, match="'size' .* set by the chapter's own parameters"):
        check_options("camelyon16", {"size": 512})
    with pytest.raises(DataRootError, match="allowed: none"):
        check_options("synthetic-he", {"level": 1})


def test_require_helpers_name_the_missing_file(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"x")
    assert require(tmp_path / "a.tif", "slide", "d") == tmp_path / "a.tif"
    with pytest.raises(DataRootError, match=r"dataset 'd': missing slide .*b\.tif"):
        require(tmp_path / "b.tif", "slide", "d")
    assert require_glob(tmp_path, "*.tif", "slides", "d") == [tmp_path / "a.tif"]
    with pytest.raises(DataRootError, match=r"no slides in .*looked for \*\.xml"):
        require_glob(tmp_path, "*.xml", "slides", "d")


def test_fingerprint_follows_names_and_sizes(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    a.write_bytes(b"12")
    b.write_bytes(b"3")
    first = files_fingerprint([a, b])
    assert first == files_fingerprint([b, a])  # order does not matter
    b.write_bytes(b"34")
    assert files_fingerprint([a, b]) != first


def test_params_refuse_a_missing_root_and_bad_options(tmp_path):
    with pytest.raises(ParamError) as err:
        build_params(
            IboParams, "smoke", {"dataset": "camelyon16", "data_root": str(tmp_path / "x")}
        )
    assert "dataset 'camelyon16'" in str(err.value) and "does not exist" in str(err.value)
    with pytest.raises(ParamError, match="leave data_root empty"):
        build_params(IboParams, "smoke", {"data_root": str(tmp_path)})
    with pytest.raises(ParamError, match="has no option 'foo'"):
        build_params(SaliencyTourParams, "smoke", {"data_options": {"foo": 1}})


def test_weights_parameters_accept_flags_and_existing_files(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    assert build_params(IboParams, "smoke", {"pretrained": "false"}).pretrained is False
    assert build_params(IboParams, "smoke", {"pretrained": str(weights)}).pretrained == str(weights)
    assert build_params(IboParams, "smoke", {"alexnet_weights": str(weights)}).alexnet_weights
    for key in ("pretrained", "alexnet_weights"):
        with pytest.raises(ParamError, match=f"'{key}'.*file .*missing.pth does not exist"):
            build_params(IboParams, "smoke", {key: str(tmp_path / "missing.pth")})


def test_option_values_are_checked_against_the_loader_signature():
    check_options("camelyon16", {"level": 2, "annotations": "xml", "exclude": ["normal_086"]})
    with pytest.raises(DataRootError, match="bad data option 'level' .*'two'"):
        check_options("camelyon16", {"level": "two"})
    with pytest.raises(DataRootError, match="'annotations' .*'auto', 'masks' or 'xml'"):
        check_options("camelyon16", {"annotations": "polygons"})
    with pytest.raises(ParamError, match="bad data option 'level'"):  # before the root check
        build_params(
            IboParams, "smoke", {"dataset": "camelyon16", "data_options": {"level": [1]}}
        )


def test_pretrained_true_needs_the_standard_file_before_the_run(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    overrides = {"classifier": "resnet18", "pretrained": True}
    with pytest.raises(ParamError) as err:
        build_params(IboParams, "smoke", overrides)
    assert "resnet18-f37072fd.pth" in str(err.value) and str(tmp_path) in str(err.value)
    with pytest.raises(ParamError, match="small_cnn has no published pretrained weights"):
        build_params(SaliencyTourParams, "smoke", {"pretrained": True})
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(b"x")
    assert build_params(IboParams, "smoke", overrides).pretrained is True
