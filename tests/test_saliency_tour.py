"""The saliency tour: every grid method on a tiny model, CAM vs Grad-CAM, taxonomy, the chapter."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xaistudy import cli
from xaistudy.chapters.saliency_tour import SaliencyTourParams
from xaistudy.explain import METHODS, explain
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.cam_original import class_activation_map
from xaistudy.models.classifiers import SmallCNN, target_layer
from xaistudy.params import ParamError, build_params

FAST = dict(
    occlusion_window=8,
    lime_samples=20,
    shap_samples=20,
    rise_masks=16,
    ig_steps=4,
    smoothgrad_samples=2,
)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = SmallCNN(2, widths=(4, 8, 8)).eval()
    return model, torch.rand(2, 3, 32, 32)


@pytest.mark.parametrize("method", tx.TOUR_METHODS)
def test_every_grid_method_gives_a_finite_map_of_the_input_size(tiny, method):
    model, x = tiny
    got = tx.measure(
        method,
        model,
        x,
        [1, 0],
        layer=target_layer(model),
        options=tx.method_options(method, **FAST),
    )
    assert got.maps.shape == (2, 32, 32)
    assert got.maps.dtype == np.float32 and np.isfinite(got.maps).all()
    assert got.seconds > 0 and got.forward >= 1


@pytest.mark.parametrize(
    "method, forward, backward",
    [
        ("saliency", 1, 1),
        ("integrated_gradients", FAST["ig_steps"], FAST["ig_steps"]),
        ("rise", FAST["rise_masks"], 0),
        ("occlusion", 1 + ((32 - 8) // 4 + 1) ** 2, 0),  # 1 + number of window positions
        ("cam", 1, 0),
    ],
)
def test_pass_counts_follow_the_methods_definitions(tiny, method, forward, backward):
    model, x = tiny
    got = tx.measure(
        method, model, x, 1, layer=target_layer(model), options=tx.method_options(method, **FAST)
    )
    assert (got.forward, got.backward) == (forward, backward)


def test_cam_equals_gradcam_for_a_gap_linear_head_and_decomposes_the_logit(tiny):
    model, x = tiny
    with torch.no_grad():  # make the class evidence positive somewhere
        model.classifier.weight.abs_()
    cam = class_activation_map(model, x, [0, 1])
    gradcam = explain("gradcam", model, x, [0, 1], layer=target_layer(model))
    assert cam.max() > 0
    np.testing.assert_allclose(cam, gradcam, atol=1e-4)
    raw = class_activation_map(model, x, [0, 1], raw=True)
    with torch.no_grad():
        logits = model(x)[[0, 1], [0, 1]].numpy()
    bias = model.classifier.bias.detach().numpy()[[0, 1]]
    np.testing.assert_allclose(raw.mean(axis=(1, 2)) + bias, logits, rtol=1e-5, atol=1e-6)


def test_cam_refuses_models_without_a_gap_linear_head():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match="global-average-pool"):
        class_activation_map(model, torch.rand(1, 3, 8, 8), 0)


def test_taxonomy_covers_the_review_and_names_what_is_not_run():
    table = tx.taxonomy_table()
    assert {
        "Occlusion",
        "LIME",
        "RISE",
        "Meaningful Perturbations",
        "Extremal Perturbations",
        "LRP",
        "CAM",
        "Grad-CAM",
        "Score-CAM",
        "Guided Grad-CAM",
    } <= set(table.method)
    row = table.set_index("method").loc["Extremal Perturbations"]
    assert row.library == tx.NOT_RUN_LIBRARY and row.name_in_book == ""
    assert set(table.name_in_book) - {""} == set(tx.TOUR_METHODS)
    assert all(m == "cam" or m in METHODS for m in tx.TOUR_METHODS)
    assert set(table.signal_flow) == {"perturbation", "backpropagation"}
    assert table.loc[table.method == "Deep Dream", "scope"].item() == "global"


def test_methods_parameter_is_validated_before_running():
    assert build_params(SaliencyTourParams, "smoke", {"methods": "gradcam,cam"}).methods
    with pytest.raises(ParamError, match="methods") as err:
        build_params(SaliencyTourParams, "quick", {"methods": "gradcam,magic"})
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smoke_run_writes_the_tables_and_the_shortcut_model_drops_on_clean_tiles(tmp_path):
    assert cli.main(["run", "saliency_tour", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    methods = pd.read_csv(tmp_path / "tables" / "methods.csv")
    required = ["method", "family", "seconds", "passes", "pointing_game", "iou", "sanity_spearman"]
    assert set(required) <= set(methods.columns)
    assert list(methods.method) == list(tx.TOUR_METHODS)
    assert methods[["seconds", "passes", "iou"]].notna().all().all()
    hans = pd.read_csv(tmp_path / "tables" / "clever_hans.csv").set_index(["model", "test_data"])
    acc = hans["accuracy"]["trained with the shortcut"]
    marked = next(k for k in acc.index if k.startswith("marked"))
    assert acc[marked] > acc["clean (no marks)"]
    assert (tmp_path / "figures" / "fig7_grid.png").exists()


def test_weights_key_follows_the_weights(tiny):
    from xaistudy.explain.tour import weights_key

    model, _ = tiny
    key = weights_key(model)
    assert key == weights_key(model)
    changed = SmallCNN(2, widths=(4, 8, 8))
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.classifier.bias += 1e-3
    assert weights_key(changed) != key


def test_batchnorm_recalibration_gives_the_exact_dataset_statistics():
    from xaistudy.explain.tour import recalibrate_batchnorm

    torch.manual_seed(0)
    model = SmallCNN(2, widths=(4, 8))
    images = torch.rand(10, 3, 16, 16)
    dataset = [{"image": img, "label": torch.tensor(0)} for img in images]
    recalibrate_batchnorm(model, dataset, batch_size=10, device="cpu")
    conv, bn = model.features[0][0], model.features[0][1]
    with torch.no_grad():
        acts = conv(images)
    torch.testing.assert_close(bn.running_mean, acts.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, acts.var(dim=(0, 2, 3), unbiased=True))
    assert not model.training and bn.momentum == 0.1


def test_pen_marks_on_any_tumour_tiles_are_those_of_synthetic_he_pen(tmp_path):
    from scipy import ndimage

    from xaistudy.data import shortcuts
    from xaistudy.data.datasets import get_dataset
    from xaistudy.store import Store

    store = Store(tmp_path)
    kw = dict(n=10, size=64, seed=3, store=store)
    base = get_dataset("synthetic-he", "val", **kw)
    wrapped = shortcuts.with_pen_marks(base, "val", 3, cooccurrence=0.7, ink="green")
    ref = get_dataset("synthetic-he-pen", "val", cooccurrence=0.7, ink="green", **kw)
    np.testing.assert_array_equal(wrapped.images, ref.images)
    np.testing.assert_array_equal(wrapped.extra["pen"], ref.extra["pen"])
    np.testing.assert_array_equal(wrapped.masks, base.masks)  # still the tumour mask
    perfect = shortcuts.with_pen_marks(base, "val", 3, cooccurrence=1.0)
    np.testing.assert_array_equal(perfect.extra["marked"], base.labels == 1)
    for i in range(len(base)):  # ink only on and right next to the stroke
        changed = (perfect.images[i] != base.images[i]).any(axis=-1)
        near = ndimage.binary_dilation(perfect.extra["pen"][i], iterations=1)
        assert not (changed & ~near).any()
        assert changed.any() == bool(perfect.extra["marked"][i])
    sample = perfect[1]
    assert sample["pen"].shape == (64, 64) and bool(sample["marked"])


def test_a_pretrained_weights_file_reaches_the_classifier(tmp_path, monkeypatch):
    from xaistudy.explain import tour

    torch.manual_seed(1)
    source = SmallCNN(2, widths=(4, 8))
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    got = {}

    class Stop(Exception):
        pass

    def fake_fit(model, *args, params=None, **kwargs):
        got["state"], got["params"] = model.state_dict(), params
        raise Stop

    monkeypatch.setattr(tour, "fit", fake_fit)
    monkeypatch.setattr(tour, "make_loader", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        tour, "build_classifier", lambda arch, n, pretrained=False: _small(pretrained)
    )
    with pytest.raises(Stop):
        tour.train_classifier(
            "small_cnn",
            [],
            [],
            data={},
            epochs=1,
            lr=1e-3,
            batch_size=2,
            seed=0,
            pretrained=str(path),
        )
    for key, value in source.state_dict().items():
        assert torch.equal(got["state"][key], value)
    assert got["params"]["start"] == "fine-tuned from weights.pth" and got["params"]["weights"]


def _small(pretrained):
    from xaistudy.models.classifiers import build_classifier

    return build_classifier("small_cnn", 2, pretrained=pretrained, widths=(4, 8))
