"""The IBO chapter's pieces: stain normalisation, the DDPM, the study steps and parameters."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from xaistudy.chapters.ibo import IboParams
from xaistudy.data import stain, synthetic
from xaistudy.evaluate import ibo as study
from xaistudy.evaluate import perceptual
from xaistudy.models import ddpm
from xaistudy.models.classifiers import SmallCNN
from xaistudy.params import ParamError, build_params
from xaistudy.store import Store


def test_modified_reinhard_moves_colour_to_the_reference():
    ref = synthetic.he_tile(0, 0, size=64, tumour=False).image
    tiles = np.stack([synthetic.he_tile(s, 1, size=64, tumour=False).image for s in (3, 4, 5)])
    out = stain.normalize(tiles, stain.fit_normalizer(ref))
    assert out.dtype == np.uint8 and out.shape == tiles.shape
    ab = lambda im: rgb2lab(im)[..., 1:].reshape(-1, 2).mean(0)  # noqa: E731 (skimage, independent)
    before = np.mean([np.abs(ab(t) - ab(ref)).sum() for t in tiles])
    after = np.mean([np.abs(ab(t) - ab(ref)).sum() for t in out])
    assert after < 0.5 * before and after < 3.0
    as_tensor = stain.normalize(
        torch.from_numpy(tiles).permute(0, 3, 1, 2) / 255, stain.fit_normalizer(ref)
    )
    assert torch.allclose(as_tensor, torch.from_numpy(out).permute(0, 3, 1, 2) / 255)
    with pytest.raises(ValueError, match="uint8"):
        stain.normalize(tiles.astype(np.float32), stain.fit_normalizer(ref))


def test_ddpm_is_cached_and_sampling_is_seeded_per_image(tmp_path):
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    store = Store(tmp_path)
    kw = dict(
        channels=(8, 16),
        num_train_timesteps=50,
        epochs=2,
        batch_size=4,
        seed=0,
        device="cpu",
        store=store,
        params={"test": 1},
    )
    first = ddpm.train_ddpm(images, **kw)
    assert len(first.losses) == 2 and not first.from_cache
    again = ddpm.train_ddpm(images, **kw)
    assert again.from_cache and again.losses == first.losses
    for a, b in zip(
        first.unet.state_dict().values(), again.unet.state_dict().values(), strict=True
    ):
        assert torch.equal(a.cpu(), b.cpu())
    both = ddpm.sample(first.unet, first.scheduler, [1, 2], num_inference_steps=5, device="cpu")
    one = ddpm.sample(first.unet, first.scheduler, [2], num_inference_steps=5, device="cpu")
    assert both.shape == (2, 3, 16, 16) and 0 <= both.min() and both.max() <= 1
    assert torch.allclose(both[1:], one, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        ddpm.train_ddpm(images[:, :1], epochs=1, device="cpu")


def test_ddpm_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    kw = dict(
        channels=(8, 16), num_train_timesteps=50, batch_size=2, seed=0, device="cpu", epochs=3
    )
    straight = ddpm.train_ddpm(images, **kw)
    store, key = Store(tmp_path), {"resume": 1}
    save = ddpm._save_checkpoint

    def interrupted(store_, kind, params, state):
        save(store_, kind, params, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt  # killed right after epoch 2 was checkpointed

    monkeypatch.setattr(ddpm, "_save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ddpm.train_ddpm(images, store=store, params=key, **kw)
    monkeypatch.setattr(ddpm, "_save_checkpoint", save)
    assert store.path("ddpm", key, ddpm.CHECKPOINT_SUFFIX).exists()
    resumed = ddpm.train_ddpm(images, store=store, params=key, **kw)
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    assert not store.path("ddpm", key, ddpm.CHECKPOINT_SUFFIX).exists()


def test_study_helpers(tmp_path):
    assert study.parse_list("all", study.CAMS) == list(study.CAMS)
    assert study.parse_list("fullgrad,gradcam", study.CAMS) == ["gradcam", "fullgrad"]
    with pytest.raises(ValueError, match="unknown name 'lime'"):
        study.parse_list("lime", study.CAMS)
    seeds = study.image_seeds(0, [3, 8], 7)
    assert seeds.shape == (2, 7) and len(np.unique(seeds)) == 14
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    picked = study.select_samples(labels, 2, seed=0)
    assert len(picked) == 2 and np.all(labels.numpy()[picked] == 1)


def test_evaluate_strategy_and_tables():
    torch.manual_seed(0)
    model = SmallCNN(2).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    levels = np.random.default_rng(0).integers(1, 6, (2, 3, 32, 32))
    ood = perceptual.Mahalanobis().fit(
        perceptual.penultimate_features(model, torch.rand(40, 3, 32, 32))
    )
    seeds = study.image_seeds(0, [0, 1], 3)
    res = {
        s: study.evaluate_strategy(s, model, images, levels, seeds, 4, ood)
        for s in ("blackening", "histogram")
    }
    assert res["blackening"]["prob"].shape == (2, 3, 5)
    assert res["blackening"]["examples"].shape == (2, 3, 4, 32, 32, 3)
    table = study.perceptual_table(res, {"reference": np.array([1.0, 3.0])})
    assert list(table.columns) == ["strategy", "metric", "Mask_1", "Mask_2", "Mask_3", "Mask_4"]
    assert table.iloc[-1].tolist() == ["reference", "mahalanobis", 2.0, 2.0, 2.0, 2.0]
    ious = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2]])
    aucs = {"blackening": np.array([[0.1, 0.5, 0.9], [0.2, 0.4, 0.8]])}
    methods = ["gradcam", "eigencam", "fullgrad"]
    assert study.iou_table(ious, methods, 50, 0)["gt_rank"].tolist() == [1, 2, 3]
    auc = study.auc_table(aucs, ious, methods, 50, 0)
    assert auc["rank"].tolist() == [1, 2, 3] and auc["gt_rank"].tolist() == [1, 2, 3]
    mard = study.mard_table(aucs, ious, 50, 0)
    assert mard.loc[0, "mard"] == 0 and mard.loc[0, "rank_accuracy"] == 1


def test_params_profiles_and_errors(mini_camelyon):
    for profile in ("smoke", "quick"):
        assert build_params(IboParams, profile).dataset == "synthetic-he"
    with pytest.raises(ParamError, match="dataset 'camelyon16': data_root .* does not exist"):
        build_params(IboParams, "paper")  # the paper's data, which this machine lacks
    paper = build_params(IboParams, "paper", {"data_root": str(mini_camelyon)})
    assert (paper.dataset, paper.tile_size, paper.classifier, paper.epochs) == (
        "camelyon16",
        512,
        "resnet50",
        20,
    )
    assert paper.ddpm_epochs == 140
    assert (paper.repaint_steps, paper.jump_length, paper.resamplings, paper.n_samples) == (
        250,
        10,
        10,
        100,
    )
    with pytest.raises(ParamError, match="repaint_steps.*must divide"):
        build_params(IboParams, "quick", {"repaint_steps": 33})
    with pytest.raises(ParamError, match="strategies"):
        build_params(IboParams, "quick", {"strategies": "ibo,paint"})
    with pytest.raises(ParamError, match="ddpm_channels.*divisible"):
        build_params(IboParams, "quick", {"tile_size": 80, "ddpm_channels": [8, 8, 8, 8, 8, 8]})


def test_cli_names_the_missing_camelyon16_root_in_one_line(capsys):
    from xaistudy import cli

    code = cli.main(["run", "ibo", "-p", "dataset", "camelyon16", "-p", "data_root", "/missing"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and "camelyon16" in err and "/missing does not exist" in err


@pytest.fixture(scope="module")
def mini_camelyon(tmp_path_factory):
    from fabricate_camelyon16 import make_mini_camelyon

    root = tmp_path_factory.mktemp("mini-camelyon16")
    make_mini_camelyon(root)
    return root


def test_load_splits_reads_camelyon16_by_slide(mini_camelyon, tmp_path):
    sizes = dict(tile_size=64, n_train=48, n_val=16, n_test=16, ddpm_tiles=16)
    splits, reference = study.load_splits(
        **sizes,
        stain_norm=True,
        seed=0,
        store=Store(tmp_path),
        dataset="camelyon16",
        data_root=str(mini_camelyon),
        data_options={"level": 0},
    )
    assert [len(splits[k].labels) for k in ("train", "val", "test", "ddpm")] == [48, 16, 16, 16]
    assert splits["train"].images.shape == (48, 3, 64, 64) and reference.shape == (64, 64, 3)
    assert int(splits["ddpm"].labels.sum()) == 0 and int(splits["test"].labels.sum()) == 8
    assert (
        splits["ddpm"].masks.sum() == 0 and splits["test"].masks[splits["test"].labels == 1].any()
    )
    names = [set(splits[k].slides) for k in ("train", "val", "test")]
    assert names[0] and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    ident = study.data_identity("camelyon16", {"level": 0}, splits)
    assert ident["dataset"] == "camelyon16" and all(ident["files"].values())
    synthetic, _ = study.load_splits(**sizes, stain_norm=False, seed=0, store=Store(tmp_path))
    assert study.data_identity("synthetic-he", {}, synthetic) == {}


def test_classifier_gets_the_pretrained_weights_file(monkeypatch, tmp_path):
    seen = []

    class Stop(Exception):
        pass

    def fake_build(name, num_classes, pretrained=False):
        seen.append(pretrained)
        raise Stop

    monkeypatch.setattr(study, "build_classifier", fake_build)
    weights = tmp_path / "resnet.pth"
    weights.write_bytes(b"x")
    params = build_params(IboParams, "smoke", {"pretrained": str(weights)})
    with pytest.raises(Stop):
        study.train_classifier({}, "resnet18", params.pretrained, 1, 1e-3, 2, 0, "cpu", None, {})
    assert seen == [str(weights)]


@pytest.mark.slow
def test_smoke_run_on_a_mini_camelyon16_folder(mini_camelyon, tmp_path):
    import nbformat
    import pandas as pd

    from xaistudy.runner import run_chapter

    overrides = {"dataset": "camelyon16", "data_root": str(mini_camelyon)}
    out = run_chapter("ibo", "smoke", overrides, out=tmp_path / "out")
    splits = pd.read_csv(out / "tables" / "splits.csv").set_index("split")
    assert splits.loc["train", "tumour"] == 24 and splits.loc["ddpm", "normal"] == 16
    settings = pd.read_csv(out / "tables" / "settings.csv").set_index("setting")
    assert settings.loc["data", "this run"] == "camelyon16"
    mard = pd.read_csv(out / "tables" / "mard.csv")
    assert set(mard.strategy) == set(study.STRATEGY_ORDER) and mard.mard.notna().all()
    text = nbformat.read(out / "ibo.ipynb", as_version=4)
    outputs = str([c.get("outputs") for c in text.cells if c.cell_type == "code"])
    assert "Data of this run: `camelyon16`" in outputs and "Traceback" not in outputs
