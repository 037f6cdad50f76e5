"""Tests of xaistudy.models: classifiers, local pretrained weights, training and resumption."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store
from xaistudy.models import checkpoints, classifiers, train
from xaistudy.models.classifiers import (
    CLASSIFIERS,
    WeightsNotFoundError,
    build_classifier,
    find_pretrained_weights,
    resolve_device,
    target_layer,
)
from xaistudy.models.train import fit, make_loader, predict

# -- helpers --------------------------------------------------------------------------------


def square_images(n: int, seed: int, size: int = 16) -> TensorDataset:
    """Noise images with a square whose brightness (dim 0 / bright 1) is the class."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    x = 0.1 * torch.randn(n, 3, size, size, generator=gen)
    for i, label in enumerate(labels.tolist()):
        r, c = torch.randint(0, size - 6, (2,), generator=gen).tolist()
        x[i, :, r : r + 6, c : c + 6] += 1.0 if label else 0.2
    return TensorDataset(x, labels)


def noise_images(n: int, seed: int, size: int = 16) -> TensorDataset:
    """Pure noise with random labels: nothing to learn, the validation loss rises."""
    gen = torch.Generator().manual_seed(seed)
    return TensorDataset(
        torch.randn(n, 3, size, size, generator=gen), torch.randint(0, 2, (n,), generator=gen)
    )


class DictDataset(Dataset):
    """Wraps a TensorDataset to yield {"image", "label"} dicts."""

    def __init__(self, base: TensorDataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.base[i]
        return {"image": x, "label": y}


def small_model(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return build_classifier("small_cnn", num_classes=2)


def loaders(shuffle_seed: int = 0, n: int = 96, dicts: bool = False):
    train_set, val_set = square_images(n, 0), square_images(n // 2, 1)
    if dicts:
        train_set, val_set = DictDataset(train_set), DictDataset(val_set)
    return make_loader(train_set, 16, shuffle=True, seed=shuffle_seed), make_loader(val_set, 32)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An ImageNet-shaped (1000-class) resnet18 state dict saved under its torchvision name."""
    seed_everything(1)
    state = build_classifier("resnet18", num_classes=1000).state_dict()
    filename = classifiers.torchvision_weight_files("resnet18")[0]
    path = tmp_path_factory.mktemp("weights") / filename
    torch.save(state, path)
    return path, state


# -- building -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_supported_classifiers_build_and_run(name: str) -> None:
    model = build_classifier(name, num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 3)


def test_any_timm_name_builds_with_in_chans() -> None:
    model = build_classifier("resnet10t", num_classes=4, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 4)


def test_torchvision_in_chans_replaces_conv1() -> None:
    model = build_classifier("resnet18", num_classes=2, in_chans=1).eval()
    assert model.conv1.in_channels == 1
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet50, small_cnn, or any timm model"):
        build_classifier("no_such_net", num_classes=2)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu")


# -- pretrained weights from local files ----------------------------------------------------


def test_pretrained_from_explicit_file(resnet18_file: tuple[Path, dict]) -> None:
    path, state = resnet18_file
    model = build_classifier("resnet18", num_classes=2, pretrained=path)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.fc.out_features == 2


def test_pretrained_adapts_first_conv_to_one_channel(resnet18_file: tuple[Path, dict]) -> None:
    path, state = resnet18_file
    model = build_classifier("resnet18", num_classes=2, pretrained=str(path), in_chans=1)
    expected = state["conv1.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(model.conv1.weight, expected)


def test_pretrained_wrong_architecture_fails(resnet18_file: tuple[Path, dict]) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        build_classifier("resnet50", num_classes=2, pretrained=resnet18_file[0])


def test_pretrained_true_searches_torch_home(
    resnet18_file: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, state = resnet18_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        build_classifier("resnet18", num_classes=2, pretrained=True)
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path) in message
    assert "\n" not in message and "-p weights" in message
    assert isinstance(err.value, FileNotFoundError)

    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / path.name).write_bytes(path.read_bytes())
    assert find_pretrained_weights("resnet18") == folder / "resnet18-f37072fd.pth"
    model = build_classifier("resnet18", num_classes=2, pretrained=True)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


def test_resnet50_accepts_v1_or_v2_file_names() -> None:
    files = classifiers.torchvision_weight_files("resnet50")
    assert set(files) == {"resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"}


def test_timm_pretrained_from_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="models--timm--resnet10t.c3_in1k"):
        find_pretrained_weights("resnet10t")
    seed_everything(2)
    state = build_classifier("resnet10t", num_classes=1000).state_dict()
    snapshot = tmp_path / "hub" / "models--timm--resnet10t.c3_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    assert find_pretrained_weights("resnet10t") == snapshot / "model.safetensors"
    model = build_classifier("resnet10t", num_classes=2, pretrained=True)
    assert torch.equal(model.conv1[0].weight, state["conv1.0.weight"])
    assert model.fc.out_features == 2


def test_small_cnn_has_no_published_weights() -> None:
    with pytest.raises(WeightsNotFoundError, match="small_cnn"):
        build_classifier("small_cnn", num_classes=2, pretrained=True)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        build_classifier("resnet18", num_classes=2, pretrained=tmp_path / "nope.pth")


# -- CAM target layers ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [*CLASSIFIERS, "mobilenetv3_small_050"])
def test_target_layer_output_is_4d(name: str) -> None:
    model = build_classifier(name, num_classes=2).eval()
    layer = target_layer(model, name)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    handle.remove()
    assert len(seen) == 1 and seen[0].ndim == 4
    if name in ("resnet18", "resnet50", "skresnext50_32x4d"):
        assert layer is model.layer4[-1]
    if name == "small_cnn":
        assert layer is model.features[-1]


def test_target_layer_without_conv_fails() -> None:
    with pytest.raises(ValueError, match="no convolutional layer"):
        target_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "mlp")


# -- training -------------------------------------------------------------------------------


def test_fit_learns_separable_problem() -> None:
    train_loader, val_loader = loaders()
    result = fit(small_model(), train_loader, val_loader, epochs=6, lr=1e-2, patience=None)
    history = result.history
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert history.epoch.tolist() == list(range(1, 7))
    assert result.history.val_acc.max() > 0.9
    assert result.best_epoch == int(history.epoch[history.val_loss.idxmin()])
    assert not result.stopped_early and not result.from_cache and not result.model.training

    probs, labels = predict(result.model, val_loader, device="cpu")
    assert probs.shape == (48, 2) and labels.shape == (48,)
    torch.testing.assert_close(torch.from_numpy(probs.sum(1)), torch.ones(48))
    assert (probs.argmax(1) == labels).mean() > 0.9


def test_fit_is_deterministic_with_dict_batches() -> None:
    runs = []
    for _ in range(2):
        train_loader, val_loader = loaders(dicts=True)
        runs.append(fit(small_model(), train_loader, val_loader, epochs=2, patience=None))
    assert same_weights(runs[0].model, runs[1].model)
    assert runs[0].history.equals(runs[1].history)
    other = fit(small_model(), *loaders(shuffle_seed=1, dicts=True), epochs=2, patience=None)
    assert not same_weights(runs[0].model, other.model)  # the shuffle matters


def test_early_stopping_restores_best_weights() -> None:
    train_set, val_set = noise_images(64, 0), noise_images(64, 1)
    train_loader, val_loader = make_loader(train_set, 16, True, 0), make_loader(val_set, 64)
    result = fit(small_model(), train_loader, val_loader, epochs=30, lr=1e-2, patience=1)
    history = result.history
    assert result.stopped_early and len(history) < 30
    assert result.best_epoch == len(history) - 1  # patience 1: the epoch after the best
    val_loss, _ = train.evaluate(result.model, val_loader, torch.device("cpu"))
    assert val_loss == pytest.approx(history.val_loss.min(), rel=1e-5)


def test_fit_validates_arguments(tmp_path: Path) -> None:
    train_loader, val_loader = loaders(n=16)
    with pytest.raises(ValueError, match="params"):
        fit(small_model(), train_loader, val_loader, epochs=1, store=Store(tmp_path))
    with pytest.raises(ValueError, match="adam, adamax, sgd"):
        fit(small_model(), train_loader, val_loader, epochs=1, optimizer="rmsprop")


def test_crash_resume_matches_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 0.0)  # a checkpoint after every epoch
    params = {"model": "small_cnn", "data": "squares"}
    kwargs = dict(epochs=4, lr=1e-2, optimizer="adam", patience=None, kind="clf", params=params)
    reference = fit(small_model(), *loaders(), store=Store(tmp_path / "a"), **kwargs)

    store = Store(tmp_path / "b")
    real_epoch, calls = train.train_one_epoch, []

    def crash_in_epoch_3(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            real_epoch(*args, **kw)  # consume the epoch's randomness, then die before saving
            raise RuntimeError("simulated crash")
        return real_epoch(*args, **kw)

    monkeypatch.setattr(train, "train_one_epoch", crash_in_epoch_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(small_model(), *loaders(), store=store, **kwargs)
    checkpoint = store.path("clf", params, train.CHECKPOINT_SUFFIX)
    assert checkpoint.exists() and not store.exists("clf", params, ".pt")
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2

    monkeypatch.setattr(train, "train_one_epoch", real_epoch)
    resumed = fit(small_model(seed=5), *loaders(), store=store, **kwargs)
    assert same_weights(resumed.model, reference.model)
    assert resumed.history.equals(reference.history)
    assert not checkpoint.exists() and store.exists("clf", params, ".pt")

    def no_training(*args, **kw):
        raise AssertionError("trained although the result is stored")

    monkeypatch.setattr(train, "train_one_epoch", no_training)
    cached = fit(small_model(seed=6), *loaders(), store=store, **kwargs)
    assert cached.from_cache and same_weights(cached.model, reference.model)
    assert cached.history.equals(reference.history)
    assert cached.best_epoch == reference.best_epoch


def test_checkpoints_follow_the_clock_and_never_change_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint after every epoch with interval 0, none in a short run with a long
    interval; the trained weights are the same either way."""
    saved: list[int] = []
    real_save = train._save_checkpoint

    def counting(store, kind, params, settings, progress, *rest):
        saved.append(progress.epoch)
        return real_save(store, kind, params, settings, progress, *rest)

    monkeypatch.setattr(train, "_save_checkpoint", counting)
    kwargs = dict(epochs=3, lr=1e-2, patience=None, kind="clf", params={"clock": 1})
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 0.0)
    every = fit(small_model(), *loaders(), store=Store(tmp_path / "a"), **kwargs)
    assert saved == [1, 2, 3]
    saved.clear()
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 3600.0)
    none = fit(small_model(), *loaders(), store=Store(tmp_path / "b"), **kwargs)
    assert saved == []
    assert same_weights(every.model, none.model)
    with pytest.raises(ValueError, match="interval_s must be >= 0"):
        checkpoints.CheckpointClock(-1)
