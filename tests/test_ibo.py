"""The IBO chapter: stain normalisation, the DDPM, the study (``xaistudy.studies.ibo``), its
parameters and the chapter's interface and page functions."""

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.color import rgb2lab

from xaistudy.chapters import ibo as chapter
from xaistudy.chapters.ibo import IboParams, paper
from xaistudy.chapters.ibo.claims import SHARED_DDPM
from xaistudy.chapters.ibo.records import (
    benchmark_table,
    gate_benchmark_table,
    gate_table,
    gate_text,
)
from xaistudy.chapters.ibo.statistics import (
    split_half_tau,
    table1_adjacent_pairs,
    table1_closest,
    table1_order_margin,
)
from xaistudy.core.params import ParamError, build_params
from xaistudy.core.store import Store
from xaistudy.data import stain, synthetic
from xaistudy.evaluate import occlusion, perceptual
from xaistudy.models import checkpoints, ddpm
from xaistudy.models.classifiers import SmallCNN
from xaistudy.studies import ibo as study


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
    chunked = ddpm.sample(
        first.unet, first.scheduler, [1, 2], num_inference_steps=5, device="cpu", batch_size=1
    )
    assert torch.allclose(chunked, both, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        ddpm.train_ddpm(images[:, :1], epochs=1, device="cpu")


def test_ddpm_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    kw = dict(
        channels=(8, 16), num_train_timesteps=50, batch_size=2, seed=0, device="cpu", epochs=3
    )
    straight = ddpm.train_ddpm(images, **kw)
    store, key = Store(tmp_path), {"resume": 1}
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 0.0)  # a checkpoint after every epoch
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


def test_scaling_centres_each_channel_inside_the_clip_range():
    gen = torch.Generator().manual_seed(3)
    images = torch.rand(5, 3, 8, 8, generator=gen) * torch.tensor([0.3, 0.6, 0.9]).view(1, 3, 1, 1)
    scaling = ddpm.Scaling.of(images, chunk=2)  # chunks: sums over several reads
    mean = images.permute(1, 0, 2, 3).reshape(3, -1).double().numpy().mean(1)
    assert np.allclose(scaling.mean, mean)
    assert np.allclose(scaling.scale, np.maximum(mean, 1 - mean))
    z = scaling.to_model(images)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    ends = scaling.to_model(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1))
    assert ends.min() >= -1 and ends.max() <= 1 and (ends.abs() == 1).any(dim=0).all()
    assert torch.allclose(scaling.from_model(z), images, atol=1e-6)
    assert scaling.from_model(z * 10).min() >= 0 and scaling.from_model(z * 10).max() <= 1
    default = ddpm.Scaling()  # [0, 1] -> [-1, 1] bit for bit, as before
    assert torch.equal(default.to_model(images), ddpm.to_model_range(images))
    assert torch.equal(default.from_model(z), ddpm.from_model_range(z))
    with pytest.raises(ValueError, match="no images"):
        ddpm.Scaling.of(images[:0])


def test_centred_ddpm_keeps_its_scaling_through_the_cache(tmp_path):
    images = 0.6 + 0.3 * torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    kw = dict(
        channels=(8, 16), num_train_timesteps=50, epochs=1, batch_size=4, seed=0, device="cpu"
    )
    store, key = Store(tmp_path), {"centred": 1}
    plain = ddpm.train_ddpm(images, **kw)
    first = ddpm.train_ddpm(images, centre=True, store=store, params=key, **kw)
    again = ddpm.train_ddpm(images, centre=True, store=store, params=key, **kw)
    assert plain.scaling == ddpm.Scaling() and first.scaling == ddpm.Scaling.of(images)
    assert again.from_cache and again.scaling == first.scaling
    assert first.losses != plain.losses  # the model saw other numbers
    out = ddpm.sample(
        first.unet, first.scheduler, [1], num_inference_steps=5, device="cpu", scaling=first.scaling
    )
    assert out.shape == (1, 3, 16, 16) and 0 <= out.min() and out.max() <= 1
    keep = torch.zeros(2, 1, 16, 16)
    keep[..., :8] = 1
    from xaistudy.evaluate.inpaint import repaint

    filled = repaint(
        first.unet,
        images[:2],
        keep,
        [0, 1],
        ddpm_scheduler=first.scheduler,
        scaling=first.scaling,
        num_inference_steps=5,
        jump_length=2,
        jump_n_sample=2,
        device="cpu",
    )
    assert torch.equal(filled[..., :8], images[:2, :, :, :8])  # known pixels exact


def test_bounded_noise_keeps_the_predicted_clean_image_in_the_data_range():
    gen = torch.Generator().manual_seed(5)
    scaling = ddpm.Scaling((0.8, 0.4, 0.7), (0.8, 0.6, 0.7))  # [0, 1] -> a box inside [-1, 1]
    x, noise = torch.randn(4, 3, 6, 6, generator=gen), torch.randn(4, 3, 6, 6, generator=gen)
    a = torch.tensor(0.3)
    out = scaling.bound_noise(noise, x, a)
    # independently: the clean image implied by the noise, clipped per channel in numpy
    xn, en, an = x.double().numpy(), noise.double().numpy(), 0.3
    x0 = (xn - np.sqrt(1 - an) * en) / np.sqrt(an)
    lo = ((0 - np.array(scaling.mean)) / np.array(scaling.scale)).reshape(1, 3, 1, 1)
    hi = ((1 - np.array(scaling.mean)) / np.array(scaling.scale)).reshape(1, 3, 1, 1)
    clipped = np.clip(x0, lo, hi)
    implied = (xn - np.sqrt(1 - an) * out.double().numpy()) / np.sqrt(an)
    assert np.allclose(implied, clipped, atol=1e-5)
    inside = (x0 >= lo) & (x0 <= hi)
    assert inside.any() and (~inside).any()  # the test covers both cases
    assert torch.equal(out[torch.from_numpy(inside)], noise[torch.from_numpy(inside)])
    assert ddpm.Scaling().bound_noise(noise, x, a) is noise  # default: the scheduler's own clip


def test_random_crops_are_windows_of_their_own_image():
    images = torch.arange(3 * 3 * 8 * 8, dtype=torch.float32).view(3, 3, 8, 8)
    crops = ddpm.random_crops(images, 4, torch.Generator().manual_seed(0))
    again = ddpm.random_crops(images, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, 4, 4) and torch.equal(crops, again)
    for im, crop in zip(images, crops, strict=True):
        y, x = divmod(int(crop[0, 0, 0]) - int(im[0, 0, 0]), 8)  # arange: value -> position
        assert torch.equal(crop, im[:, y : y + 4, x : x + 4])


def test_min_snr_weighting_matches_a_hand_computed_loss():
    torch.manual_seed(0)
    unet = ddpm.build_unet(8, (8, 8))
    alphas = ddpm.make_scheduler(100).alphas_cumprod
    gen = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(4, 3, 8, 8, generator=gen), torch.randn(4, 3, 8, 8, generator=gen)
    t = torch.tensor([0, 10, 50, 99])
    a = alphas[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        err = (unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t).sample - noise) ** 2
    per_image = err.double().mean(dim=(1, 2, 3)).numpy()
    snr = (alphas[t] / (1 - alphas[t])).double().numpy()
    expected = np.mean(per_image * np.minimum(snr, 5.0) / snr)
    assert snr.max() > 5 > snr.min()  # the weight bites on some images only
    assert ddpm.batch_gradient(unet, alphas, x0, noise, t, 5.0) == pytest.approx(expected, rel=1e-5)
    assert ddpm.batch_gradient(unet, alphas, x0, noise, t) == pytest.approx(per_image.mean(), 1e-5)


def test_ddpm_learns_from_crops_and_checks_its_options():
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    kw = dict(channels=(8, 16), num_train_timesteps=50, epochs=1, batch_size=2, device="cpu")
    from diffusers import UNet2DModel

    seen = []
    unet_forward = UNet2DModel.forward

    def spy(self, x, t, *args, **kwargs):
        seen.append(tuple(x.shape[-2:]))
        return unet_forward(self, x, t, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UNet2DModel, "forward", spy)
        dm = ddpm.train_ddpm(images, crop=8, snr_gamma=5.0, **kw)
    assert set(seen) == {(8, 8)} and dm.unet.config.sample_size == 16
    out = ddpm.sample(dm.unet, dm.scheduler, [0], num_inference_steps=3, device="cpu")
    assert out.shape == (1, 3, 16, 16)  # whole tiles from a model that saw 8 x 8 windows
    with pytest.raises(ValueError, match="crop must be at most 16 and divisible by 2"):
        ddpm.train_ddpm(images, crop=7, **kw)
    with pytest.raises(ValueError, match="crop must be at most 16"):
        ddpm.train_ddpm(images, crop=32, **kw)
    with pytest.raises(ValueError, match="snr_gamma must be >= 0"):
        ddpm.train_ddpm(images, snr_gamma=-1.0, **kw)


def test_study_helpers():
    assert study.parse_list("all", study.CAMS) == list(study.CAMS)
    assert study.parse_list("fullgrad,gradcam", study.CAMS) == ["gradcam", "fullgrad"]
    with pytest.raises(ValueError, match="unknown name 'lime'"):
        study.parse_list("lime", study.CAMS)
    assert study.STOCHASTIC == {"histogram", "nli", "ibo"}  # from the strategy registry


def test_evaluate_strategy_measures_every_mask():
    torch.manual_seed(0)
    model = SmallCNN(2).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    levels = np.random.default_rng(0).integers(1, 6, (2, 3, 32, 32))
    ood = perceptual.Mahalanobis().fit(
        perceptual.penultimate_features(model, torch.rand(40, 3, 32, 32))
    )
    seeds = study.noise_seeds(0, [0, 1], 3)
    res = {
        s: study.evaluate_strategy(s, model, images, levels, seeds, 4, ood, sample_chunk=1)
        for s in ("blackening", "histogram")
    }
    black = res["blackening"]
    assert black["prob"].shape == (2, 3, 5) and black["examples"].shape == (2, 3, 4, 32, 32, 3)
    for metric in ("ssim", "feature_lpips", "mahalanobis"):
        assert black[metric].shape == (2, 3, 4) and np.isfinite(black[metric]).all()
    # P(tumour) of the original is the one predict_proba gives; after Mask_k, of its occlusion
    from xaistudy.models.classify import predict_proba

    assert np.allclose(black["prob"][:, :, 0], predict_proba(model, images, target=1)[:, None])
    occluded = study.occlude_all("blackening", images, levels, seeds, 4)
    after = predict_proba(model, occluded.reshape(-1, 3, 32, 32), target=1).reshape(2, 3, 4)
    assert np.allclose(black["prob"][:, :, 1:], after)
    assert int(black["unet_calls"]) == 0 and black["seconds"] >= 0


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
    assert paper.ddpm_epochs == 140 and paper.replicates == 1 and paper.n_gt_samples == 100
    assert build_params(IboParams, "quick").seeds == [0, 1, 2]
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
    with pytest.raises(ParamError, match="ddpm_crop.*at most tile_size"):
        build_params(IboParams, "quick", {"ddpm_crop": 128})
    with pytest.raises(ParamError, match=r"ddpm_crop.*divisible by 2\*\*2"):
        build_params(IboParams, "quick", {"ddpm_crop": 30})
    assert (paper.ddpm_crop, paper.ddpm_snr_gamma) == (0, 0)  # the paper's whole patches


def test_cli_names_the_missing_camelyon16_root_in_one_line(capsys):
    from xaistudy.app import cli

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


def test_load_splits_normalises_every_seed_to_one_reference(tmp_path):
    """Seed 1 normalised to seed 0's reference tile: the first normal training tile of seed 0's
    draw, and each stored tile is that normaliser applied to seed 1's raw tile."""
    from xaistudy.data.datasets import get_dataset

    sizes = dict(tile_size=64, n_train=12, n_val=4, n_test=4, ddpm_tiles=4, stain_norm=True)
    store = Store(tmp_path)
    _, own0 = study.load_splits(**sizes, seed=0, store=store)
    shared, ref = study.load_splits(**sizes, seed=1, store=store, stain_reference_seed=0)
    own1, ref1 = study.load_splits(**sizes, seed=1, store=store)
    raw0 = get_dataset("synthetic-he", "train", n=12, size=64, seed=0, store=store)
    assert np.array_equal(ref, own0) and np.array_equal(ref, raw0.images[0])  # tile 0 is normal
    assert not np.array_equal(ref, ref1)
    raw1 = get_dataset("synthetic-he", "test", n=4, size=64, seed=1, store=store)
    expected = stain.normalize(np.asarray(raw1.images), stain.fit_normalizer(own0))
    assert np.array_equal(shared["test"].images.storage, expected)
    assert not np.array_equal(own1["test"].images.storage, expected)  # own reference differs


def test_classifier_gets_the_pretrained_weights_file(monkeypatch, tmp_path):
    seen = []

    class Stop(Exception):
        pass

    def fake_build(name, num_classes, pretrained=False):
        seen.append(pretrained)
        raise Stop

    from xaistudy.models import classify

    monkeypatch.setattr(classify, "build_classifier", fake_build)
    weights = tmp_path / "resnet.pth"
    weights.write_bytes(b"x")
    overrides = {"pretrained": str(weights), "classifier": "resnet18", "device": "cpu"}
    params = build_params(IboParams, "smoke", overrides)
    with pytest.raises(Stop):
        study.prepare_seed(params, 0, Store(tmp_path / "cache"))
    assert [str(w) for w in seen] == [str(weights)]


@pytest.mark.slow
def test_ddpm_ema_resumes_and_differs_from_the_raw_weights(tmp_path, monkeypatch):
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    kw = dict(
        channels=(8, 16), num_train_timesteps=50, batch_size=2, seed=0, device="cpu", epochs=3
    )
    raw = ddpm.train_ddpm(images, **kw)
    ema = ddpm.train_ddpm(images, ema_decay=0.5, **kw)
    assert ema.losses == pytest.approx(raw.losses)  # EMA does not change the training itself
    pairs = zip(raw.unet.parameters(), ema.unet.parameters(), strict=True)
    diffs = [(a - b).abs().max() for a, b in pairs]
    assert max(diffs) > 0
    store, key = Store(tmp_path), {"ema": 1}
    monkeypatch.setattr(checkpoints, "INTERVAL_S", 0.0)  # a checkpoint after every epoch
    save = ddpm._save_checkpoint

    def interrupted(store_, kind, params, state):
        save(store_, kind, params, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ddpm, "_save_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ddpm.train_ddpm(images, store=store, params=key, ema_decay=0.5, **kw)
    monkeypatch.setattr(ddpm, "_save_checkpoint", save)
    resumed = ddpm.train_ddpm(images, store=store, params=key, ema_decay=0.5, **kw)
    for a, b in zip(ema.unet.parameters(), resumed.unet.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="ema_decay"):
        ddpm.train_ddpm(images, ema_decay=1.0, **kw)


def test_noise_is_shared_by_the_methods_of_a_tile_and_identical_maps_run_once(monkeypatch):
    seeds = study.noise_seeds(0, [3, 8], 4, replicate=0)
    assert seeds.shape == (2, 4) and (seeds == seeds[:, :1]).all() and seeds[0, 0] != seeds[1, 0]
    assert not (study.noise_seeds(0, [3, 8], 4, replicate=1) == seeds).any()
    assert (study.noise_seeds(0, [3], 4)[0] == seeds[0]).all()  # fixed by the tile, not the set
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    levels = np.random.default_rng(0).integers(1, 6, (2, 3, 16, 16))
    levels[:, 1] = levels[:, 0]  # methods 0 and 1: the same heatmap levels
    levels[1, 2] = np.where(levels[1, 0] == 5, 5, levels[1, 0])  # same occluded pixels as 0
    batches = []
    real = occlusion.occlude_levels

    def counting(strategy, imgs, *args, **kw):
        batches.append(len(imgs))
        return real(strategy, imgs, *args, **kw)

    monkeypatch.setattr(occlusion, "occlude_levels", counting)
    out = study.occlude_all("histogram", images, levels, seeds[:, :3], 4)
    assert batches == [3]  # (0: methods 0=1, 2), (1: methods 0=1=2)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[1, 0], out[1, 2])
    assert not torch.equal(out[0, 0], out[0, 2])
    per_method = np.array([[1, 2, 3], [4, 5, 6]])  # one seed per (tile, method): other noise
    own = study.occlude_all("histogram", images, levels, per_method, 4)
    assert not torch.equal(own[:, 0], own[:, 1])


def test_sample_sets_are_nested():
    labels = torch.tensor([1, 0] * 20)
    order = study.tumour_order(labels, seed=3)
    assert sorted(order.tolist()) == list(range(0, 40, 2))
    assert (study.tumour_order(labels, seed=3) == order).all()
    assert not (study.tumour_order(labels, seed=4) == order).all()
    with pytest.raises(ValueError, match="no tumour tiles"):
        study.tumour_order(torch.zeros(4, dtype=torch.long), 0)


def _ranking_rows():
    # 3 methods, 2 seeds x 2 tiles; IoU ranks: m0 > m1 > m2; strategy 1 AUC: m0 < m2 < m1
    rows = []
    for seed in (0, 1):
        for unit in (10, 11):
            for m, (iou, auc) in enumerate([(0.9, 0.1), (0.5, 0.7), (0.1, 0.4)]):
                rows += [
                    dict(seed=seed, unit=unit, m=m, src=0, value=iou),
                    dict(seed=seed, unit=unit, m=m, src=1, value=auc),
                    dict(seed=seed, unit=unit, m=m, src=2, value=auc if m == 0 else 1 - auc),
                ]
    return pd.DataFrame(rows)


def test_agreement_statistics_match_hand_computed_ranks():
    rows = _ranking_rows()
    # strategy 1 ranks (1, 3, 2) vs ground truth (1, 2, 3): MARD 2/3, 1 of 3 right
    assert study.agreement_statistic(1, 3)(rows) == pytest.approx(2 / 3)
    assert study.agreement_statistic(1, 3, "rank_accuracy")(rows) == pytest.approx(1 / 3)
    # strategy 2 AUC (0.1, 0.3, 0.6): ranks (1, 2, 3), identical to the ground truth
    assert study.agreement_statistic(2, 3)(rows) == 0
    assert study.agreement_statistic(2, 3, "kendall_tau")(rows) == pytest.approx(1)
    diff = study.difference_statistic(
        study.agreement_statistic(1, 3), study.agreement_statistic(2, 3)
    )
    assert diff(rows) == pytest.approx(2 / 3)
    # a strategy that cannot tell the methods apart (every AUC equal) sits at the mid-rank 2 of
    # 3: MARD 2/3 against the ground truth's (1, 2, 3), as a random ranking's mean (8/9) is
    # worse; under the "min" tie rule it would rank every method first (MARD 1)
    flat = rows.assign(value=np.where(rows["src"] == 1, 0.5, rows["value"]))
    assert study.agreement_statistic(1, 3)(flat) == pytest.approx(2 / 3)
    assert study.agreement_statistic(1, 3, "rank_accuracy")(flat) == pytest.approx(1 / 3)


def test_table1_margin_and_split_half_statistics():
    rows = pd.DataFrame(
        [
            dict(seed=0, unit=u, strategy=s, mask=k, value=v + k)
            for u in range(2)
            for k in (1, 2)
            for s, v in (("ibo", 0.0), ("mean", 0.5), ("blurring", 0.2))
        ]
    )
    assert table1_closest("mahalanobis", ["mean", "blurring", "ibo"], 2)(rows) == pytest.approx(0.2)
    # SSIM is a similarity: IBO's lower values make it the farthest
    assert table1_closest("ssim", ["mean", "blurring", "ibo"], 2)(rows) == pytest.approx(-0.5)
    iou = pd.DataFrame(
        [
            dict(seed=0, unit=u, m=m, value=v)
            for u in range(40)
            for m, v in enumerate([0.9, 0.5, 0.1])
        ]
    )
    assert split_half_tau(3)(iou) == pytest.approx(1)
    assert np.isnan(split_half_tau(3)(iou[iou.unit == 0]))  # one half is empty


def _last_mask_rows(means: dict[str, float]) -> pd.DataFrame:
    """Two seeds of two tiles per strategy whose values average to ``means``."""
    return pd.DataFrame(
        [
            dict(seed=seed, unit=u, strategy=s, mask=4, value=v + d)
            for seed in (0, 1)
            for u, d in ((0, -0.01), (1, 0.01))
            for s, v in means.items()
        ]
    )


def test_table1_order_margin_is_the_smallest_adjacent_step_of_the_papers_order():
    from xaistudy.stats.claims import order_agreement

    strategies = list(study.STRATEGY_ORDER)
    # Blurring behind Mean and NLI: the order is mostly the paper's (Kendall tau 11/15 > 0),
    # but the step Blurring < Mean (and Blurring < NLI) is inverted
    swapped = {"ibo": 0.1, "mean": 0.2, "nli": 0.25, "blurring": 0.3}
    rows = _last_mask_rows(swapped | {"histogram": 0.4, "blackening": 0.5})
    tau = order_agreement(paper.PAPER_TABLE1_ORDER, by="strategy")(rows.assign(score=-rows.value))
    assert tau == pytest.approx(11 / 15)  # 2 of the 15 pairs discordant
    # min(0.3 - 0.1, 0.2 - 0.3, 0.25 - 0.3, 0.4 - 0.2, 0.4 - 0.25, 0.5 - 0.4)
    assert table1_order_margin("mahalanobis", strategies)(rows) == pytest.approx(-0.1)
    # the paper's order, Mean and NLI either way round (Table 1 swaps them between masks)
    held = {"ibo": 0.1, "blurring": 0.2, "nli": 0.3, "mean": 0.35, "histogram": 0.4}
    rows = _last_mask_rows(held | {"blackening": 0.6})
    assert table1_order_margin("feature_lpips", strategies)(rows) == pytest.approx(0.05)
    # SSIM is a similarity: the same order reads from the largest value down
    ssim = rows.assign(value=1 - rows.value)
    assert table1_order_margin("ssim", strategies)(ssim) == pytest.approx(0.05)
    assert table1_order_margin("mahalanobis", strategies)(ssim) == pytest.approx(-0.2)
    # a run with some of the strategies tests the steps between those it has
    assert table1_adjacent_pairs(["blackening", "mean", "ibo"]) == [
        ("ibo", "mean"),
        ("mean", "blackening"),
    ]
    assert table1_order_margin("mahalanobis", ["blackening", "mean", "ibo"])(
        rows[rows.strategy.isin(["blackening", "mean", "ibo"])]
    ) == pytest.approx(0.25)


def test_table1_tiers_are_the_order_the_paper_holds_at_every_mask():
    tiers = paper.PAPER_TABLE1_TIERS
    assert [s for tier in tiers for s in tier] == list(paper.PAPER_TABLE1_ORDER)
    masks = range(1, paper.PAPER_TABLE1_MASKS + 1)
    for near, far in table1_adjacent_pairs(paper.PAPER_TABLE1_ORDER):
        assert all(paper.lpips(near, i) < paper.lpips(far, i) for i in masks), (near, far)
    for tier in (t for t in tiers if len(t) > 1):  # a tier: an order that changes with the mask
        a, b = tier
        assert {paper.lpips(a, i) < paper.lpips(b, i) for i in masks} == {True, False}


def test_random_regions_keep_the_area_and_are_seeded_per_tile():
    regions = np.zeros((3, 32, 32), dtype=bool)
    regions[0, :10, :10], regions[1, 5:, :], regions[2, 3, 3] = True, True, True
    moved = study.random_regions(regions, 0, [4, 7, 9])
    assert moved.dtype == bool and moved.shape == regions.shape
    assert (moved.sum(axis=(1, 2)) == regions.sum(axis=(1, 2))).all()
    assert not (moved == regions).all()
    assert (study.random_regions(regions[1:], 0, [7, 9]) == moved[1:]).all()  # per tile
    assert not (study.random_regions(regions, 1, [4, 7, 9]) == moved).all()  # per seed


def test_gate_table_applies_the_criterion_to_samples_and_control():
    def rows(source, p, ood):
        return pd.DataFrame({"seed": 0, "source": source, "p_tumour": p, "ood": ood})

    normal_ood = np.arange(1.0, 21.0)  # 95th percentile (linear): 19.05
    gate = pd.concat(
        [
            rows("DDPM sample", [0.3, 0.3, 0.3], [10.0, 30.0, 12.0]),  # gap 0.2: fails
            rows("DDPM training tile", [0.15, 0.05], [18.0, 20.0]),  # gap 0, median 19: passes
            rows("held-out normal tile", np.full(20, 0.1), normal_ood),
            rows("held-out tumour tile", [0.9], [40.0]),
            rows("flat tile", [0.05, 0.1], [80.0, 90.0]),  # P(tumour) passes, OoD does not
        ]
    )
    table = gate_table(gate).set_index("source")
    flat = table.loc["control: flat tiles (no tissue) pass as normal"]
    assert flat.p_tumour_gap == pytest.approx(-0.025) and not flat.passes
    sample = table.loc["gate: samples pass as normal"]
    control = table.loc["control: training tiles pass as normal"]
    assert sample.p_tumour_gap == pytest.approx(0.2)
    assert sample.ood_median_minus_normal_q95 == pytest.approx(12.0 - 19.05)
    assert not sample.passes
    assert control.p_tumour_gap == pytest.approx(0.0, abs=1e-12)
    assert control.ood_median_minus_normal_q95 == pytest.approx(19.0 - 19.05)
    assert control.passes
    assert table.loc["held-out normal tile", "n"] == 20
    no_control = gate_table(gate[gate.source != "DDPM training tile"])
    assert "control: training tiles pass as normal" not in set(no_control.source)
    assert gate_text(table.reset_index()) == (
        "The DDPM's samples pass as normal for 0 of 1 seeds' classifiers (not for seed 0). "
        "Its training tiles (control) pass as normal for 1 of 1 seeds' classifiers. "
        "Flat tiles of the samples' mean colours (control: no tissue) pass as normal for 0 of 1 "
        "seeds' classifiers (not for seed 0)."
    )


@pytest.fixture(scope="module")
def smoke_study():
    """The study at the smoke size, run once in the session's cache (the notebook's smoke run
    of ``test_smoke_run_writes_the_claims`` then loads every stage from it)."""
    return chapter.run(build_params(IboParams, "smoke"), profile="smoke")


def test_the_chapter_interface_on_a_smoke_study(smoke_study):
    import dataclasses

    import matplotlib.pyplot as plt

    import xaistudy.chapters.ibo.figures  # noqa: F401 (the page modules of the same names)
    import xaistudy.chapters.ibo.tables  # noqa: F401
    from xaistudy.stats.bootstrap import bootstrap_draws, percentile_interval

    st = smoke_study
    assert isinstance(st, study.Result) and len(st.runs) == 1 and st.profile == "smoke"
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.runs[0].maps = None
    one = st.runs[0]
    assert one.maps.shape[:2] == (len(one.gt_ids), len(st.methods)) and len(one.sample_ids) == 2
    assert set(one.results) == set(st.strategies) == set(study.STRATEGY_ORDER)
    assert callable(chapter.tables) and callable(chapter.figures)  # not the page modules
    tables = chapter.tables(st)
    assert {"lpips", "iou_ranking", "rankings", "mard", "signal", "paper_vs_book", "auc"} <= set(
        tables
    )
    aucs = tables["auc"]  # Tables 3-8 as values with intervals, beside the ranks
    assert len(aucs) == len(st.strategies) * len(st.methods)
    assert ((aucs.ci_low <= aucs.auc_mean + 1e-12) & (aucs.auc_mean <= aucs.ci_high + 1e-12)).all()
    first = study.auc_rows(st)
    first = first[(first.strategy == st.strategies[0]) & (first.method == st.methods[0])]
    assert aucs.auc_mean.iloc[0] == pytest.approx(first.auc.mean())
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    # Table 9's intervals are the book's one bootstrap (seeds, then tiles) of the same rows
    mard = tables["mard"].set_index("strategy")
    rows = study.ranking_rows(study.iou_rows(st), study.auc_rows(st), st.methods, st.strategies)
    first = study.agreement_statistic(1, len(st.methods))
    draws = bootstrap_draws(rows, [first], n_boot=st.params.n_boot, rng_seed=0)[:, 0]
    strategy = st.strategies[0]
    assert mard.loc[strategy, "mard"] == first(rows)
    low, high = percentile_interval(draws)
    assert (mard.loc[strategy, "mard_ci_low"], mard.loc[strategy, "mard_ci_high"]) == (low, high)
    assert low <= mard.loc[strategy, "mard_boot_mean"] <= high
    claims = chapter.claims(st)
    assert claims and all(isinstance(c, dict) and c["verdict"] for c in claims)
    # IBO's premise faces IBO on a random region of the same area, one per occluded tile
    control = study.premise_control_rows(st)
    assert len(control) == len(one.sample_ids) and control.p_after.between(0, 1).all()
    last = one.masks[np.arange(len(one.sample_ids)), :, -1].sum(axis=(2, 3))
    assert (control.area.to_numpy() == np.median(last, axis=1)).all()  # 7 methods: a median
    premise = {c["claim_id"]: c for c in claims}["premise.ibo_lowers_p_tumour"]
    assert premise["controls"] == study.PREMISE_CONTROL and premise["control_value"] != ""
    # the heatmap's region against the random one, paired by tile and method: its estimate is
    # the mean over tiles of (drop on the heatmap's region − drop on the random region)
    matters = {c["claim_id"]: c for c in claims}["premise.heatmap_region_matters"]
    auc = study.auc_rows(st)
    drop = auc[auc.strategy == "ibo"].assign(d=lambda t: t.p_before - t.p_after)
    mean_drop = drop.groupby(["unit", "method"])["d"].mean()
    random_drop = control.set_index(["unit", "method"]).eval("p_before - p_after")
    expected = (mean_drop.loc[random_drop.index] - random_drop).mean()
    assert matters["kind"] == "premise" and matters["n_units"] == len(control)
    assert matters["book_value"] == pytest.approx(expected, abs=1e-6)
    figures = chapter.figures(st, tables)
    assert set(figures) >= {"heatmaps", "masks", "occlusions", "agreement"}
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    assert list(chapter.figures(st, tables, only=["masks"])) == ["masks"]
    with pytest.raises(KeyError, match="no figure 'mask'"):
        chapter.figures(st, tables, only=["mask"])
    plt.close("all")


@pytest.mark.slow
def test_smoke_run_writes_the_claims(smoke_outputs):
    out = smoke_outputs("ibo")
    claims = pd.read_csv(out / "tables" / "claims.csv")
    ids = set(claims.claim_id)
    for s in ("blackening", "histogram", "mean", "nli", "blurring"):
        assert {f"table9.mard.ibo_vs_{s}", f"table9.rank_accuracy.ibo_vs_{s}"} <= ids
    assert {"table2.gt_ranking_stable", "premise.ddpm_samples_normal"} <= ids
    premises = claims.set_index("claim_id").loc[
        ["premise.ddpm_samples_normal", "premise.ddpm_samples_in_distribution"]
    ]
    assert (premises["controls"] == "flat tiles").all()  # tissue-free tiles face the premise
    assert claims.set_index("claim_id").controls["premise.ibo_lowers_p_tumour"] == (
        study.PREMISE_CONTROL
    )
    assert {f"table1.{m}.ibo_closest" for m in ("ssim", "feature_lpips", "mahalanobis")} <= ids
    shared = claims.set_index("claim_id").shared_stages
    assert shared["table9.mard.ibo_vs_mean"] == SHARED_DDPM
    gate = pd.read_csv(out / "tables" / "ddpm_gate.csv")
    assert {"DDPM sample", "DDPM training tile", "held-out normal tile", "flat tile"} <= set(
        gate.source
    )
    assert "control: training tiles pass as normal" in set(gate.source)


def test_benchmark_table_reads_only_the_repaint_results():
    """Other benchmarks write beside RePaint's results; the table must list RePaint's alone."""
    import json

    from xaistudy.core.store import repo_root

    results = repo_root() / "benchmarks" / "results"
    repaint = sorted(
        p.name for p in results.glob("*.json") if "batched" in json.loads(p.read_text())
    )
    table = benchmark_table()
    assert repaint, "no RePaint benchmark result is recorded"
    assert sorted(table["file"]) == repaint
    assert (table["speedup"] > 0).all()
    assert (table["max_pixel_difference"] >= 0).all()


def test_gate_benchmark_table_reads_the_stored_gate_results():
    import json

    from xaistudy.core.store import repo_root

    files = sorted((repo_root() / "benchmarks" / "results").glob("ddpm_gate_*.json"))
    assert files, "no DDPM gate measurement is recorded"
    table = gate_benchmark_table()
    runs = sum(len(json.loads(f.read_text())["runs"]) for f in files)
    assert len(table) == runs and set(table.file) == {f.name for f in files}
    gap = (table.p_tumour_samples - table.p_tumour_normal).abs()
    assert (~table.passes | (gap <= 0.1)).all()  # no row passes with a P(tumour) gap over 0.1
