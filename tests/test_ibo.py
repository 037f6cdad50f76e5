"""The IBO chapter's pieces: stain normalisation, the DDPM, the study steps and parameters."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from xaistudy.data import stain, synthetic
from xaistudy.evaluate import ibo as study
from xaistudy.evaluate import perceptual
from xaistudy.models import ddpm
from xaistudy.models.classifiers import SmallCNN
from xaistudy.params import IboParams, ParamError, build_params
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


def test_params_profiles_and_errors():
    for profile in ("smoke", "quick", "paper"):
        build_params(IboParams, profile)
    paper = build_params(IboParams, "paper")
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
