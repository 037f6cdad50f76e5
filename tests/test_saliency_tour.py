"""The saliency tour: every grid method on a tiny model, CAM vs Grad-CAM, taxonomy, the study
and the chapter's pages."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xaistudy.chapters import saliency_tour as chapter
from xaistudy.chapters.saliency_tour import PAPER, SaliencyTourParams
from xaistudy.chapters.saliency_tour.claims import NOT_MEASURED
from xaistudy.core.params import ParamError, build_params
from xaistudy.core.store import Store
from xaistudy.explain import METHODS, explain
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.cam_original import class_activation_map
from xaistudy.models.classifiers import SmallCNN, target_layer
from xaistudy.stats.claims import COLUMNS, VERDICTS
from xaistudy.studies import saliency_tour as study
from xaistudy.studies.saliency_tour import rows

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
def test_smoke_run_writes_the_tables_claims_and_figures(smoke_outputs):
    tmp_path = smoke_outputs("saliency_tour")
    methods = pd.read_csv(tmp_path / "tables" / "methods.csv")
    required = [
        "method",
        "family",
        "seconds",
        "passes",
        "pointing_game",
        "iou",
        "sanity_spearman",
        "deletion_auc",
        "insertion_auc",
        "roughness",
    ]
    assert set(required) <= set(methods.columns)
    assert list(methods.method) == [*tx.TOUR_METHODS, "rise_np"]
    assert methods[["seconds", "passes", "iou", "deletion_auc"]].notna().all().all()
    hans = pd.read_csv(tmp_path / "tables" / "clever_hans.csv").set_index(["model", "test_data"])
    acc = hans["accuracy"]["trained with the shortcut"]
    assert acc["marked as in training"] > acc["clean (no marks)"]
    claims = pd.read_csv(tmp_path / "tables" / "claims.csv")
    assert set(EXPECTED_CLAIMS) | {c[0] for c in NOT_MEASURED} == set(claims.claim_id)
    measured = claims.set_index("claim_id").loc[EXPECTED_CLAIMS]
    assert (measured.verdict != "not testable here").all() and measured.book_value.notna().all()
    assert claims.verdict.isin(VERDICTS).all() and claims.profile.eq("smoke").all()
    timing = pd.read_csv(tmp_path / "tables" / "timing.csv")
    # one scored tile at smoke: its call is timed cold (with more, the first is the warm-up)
    assert timing.timed.str.contains("each scored tile's map alone.*, cold;").all()
    for name in ("fig7_grid", "clever_hans_maps", "claims", "rise_versions"):
        assert (tmp_path / "figures" / f"{name}.png").exists()


EXPECTED_CLAIMS = [
    "occlusion.high_cost",
    "lime.high_cost",
    "gradcam.faster_than_occlusion",
    "deconvolution.fast",
    "lrp.fast",
    "kernel_shap.positive_and_negative",
    "lime.positive_and_negative",
    "cam.inaccurate_localisation",
    "kernel_shap.approximate_morphology",
    "rise.approximate_morphology",
    "occlusion.approximate_morphology",
    "rise.realistic_perturbations",
    "gradcam.partial_coverage",
    "gradcam.misses_fine_details",
    "smoothgrad.reduces_noise",
    "guided_backprop.invariant_to_model",
    "integrated_gradients.completeness",
    "input_x_gradient.saturating_gradients",
    "deeplift.counters_saturation",
    "deeplift.not_implementation_invariant",
    "lime.relies_on_parameters",
    "rise.relies_on_parameters",
    "smoothgrad.relies_on_parameters",
    "integrated_gradients.relies_on_parameters",
    "integrated_gradients.relies_on_baseline",
    "lrp.relies_on_parameters",
    "clever_hans.shortcut_learned",
    "clever_hans.gradcam_reveals_mark",
    "clever_hans.plausible_not_faithful",
]


def test_batchnorm_recalibration_gives_the_exact_dataset_statistics():
    from xaistudy.models.classify import recalibrate_batchnorm

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

    from xaistudy.core.store import Store
    from xaistudy.data import shortcuts
    from xaistudy.data.datasets import get_dataset

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
    from xaistudy.models import classify as tour

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


# -- the study's measures ----------------------------------------------------------------------
def test_roughness_by_hand():
    assert study.roughness(np.ones((4, 4))) == 0.0
    assert study.roughness(np.zeros((4, 4))) == 0.0
    checker = np.indices((4, 4)).sum(0) % 2 * 2.0 - 1.0  # ±1, every neighbour differs by 2
    assert study.roughness(checker) == pytest.approx(4.0)
    ramp = np.tile(np.arange(4.0), (4, 1))  # steps of 1 along x, none along y; mean |.| = 1.5
    assert study.roughness(ramp) == pytest.approx(1 / 1.5)
    assert study.roughness(7 * ramp) == pytest.approx(study.roughness(ramp))


def test_negative_share_by_hand():
    assert study.negative_share(np.array([[1.0, -3.0], [0.0, 0.0]])) == pytest.approx(0.75)
    assert study.negative_share(np.zeros((2, 2))) == 0.0
    assert study.negative_share(np.ones((2, 2))) == 0.0


def test_rise_np_maps_equal_petsiuks_normalisation(tiny):
    from xaistudy.explain.rise import class_probability, rise

    model, x = tiny
    params = SaliencyTourParams(rise_masks=24, explain_seed=3)
    opts = study.options(params, "rise")
    book = explain("rise", model, x[:1], 1, **opts)
    petsiuk = rise(class_probability(model, 1), x[:1], n_masks=24, seed=3, normalise="p")
    np.testing.assert_allclose(study.rise_np_maps(book, params), petsiuk, rtol=1e-4, atol=1e-6)


def test_deletion_and_insertion_curves_by_hand():
    from xaistudy.evaluate.faithfulness import curve_auc, pixel_order_curves

    image = np.array([[[4.0, 3.0], [2.0, 1.0]]])  # one channel, total 10
    saliency = np.array([[0.9, 0.1], [0.5, 0.3]])  # order: 4, 2, 1, 3

    def total(batch):
        return batch.sum(axis=(1, 2, 3))

    deletion, insertion = pixel_order_curves(total, image, saliency, steps=4)
    np.testing.assert_allclose(deletion, [10, 6, 4, 3, 0])
    np.testing.assert_allclose(insertion, [0, 4, 6, 7, 10])
    assert curve_auc(deletion) == pytest.approx((10 / 2 + 6 + 4 + 3 + 0 / 2) / 4)
    with pytest.raises(ValueError, match="does not match"):
        pixel_order_curves(total, image, np.zeros((3, 3)))


def test_cost_and_localisation_contrasts_by_hand():
    timing = pd.DataFrame(
        {
            "seed": 0,
            "unit": [0, 0, 0, 1, 1, 1],
            "method": ["a", "b", "c"] * 2,
            "seconds": [10.0, 1.0, 0.1, 100.0, 10.0, 1.0],
        }
    )
    got = rows.log_ratio(timing, "a", None).sort_values("unit")
    np.testing.assert_allclose(got["value"], np.log10([10 / 0.55] * 2))  # a / median(b, c)
    np.testing.assert_allclose(rows.log_ratio(timing, "a", "c")["value"], [2.0, 2.0])
    scores = pd.DataFrame(
        {
            "seed": 0,
            "unit": 0,
            "method": ["a", "b", "c", "d", "rise_np"],
            "iou": [0.1, 0.5, 0.3, 0.9, 5.0],
        }
    )
    assert rows.vs_others(scores, "a", "iou")["value"].item() == pytest.approx(0.1 - 0.5)


def test_perturbation_maps_are_one_value_per_pixel_not_a_channel_sum(tiny):
    from xaistudy.explain import attribute

    model, x = tiny
    attr = attribute("occlusion", model, x, 1, window=8, stride=4)
    torch.testing.assert_close(attr[:, 0], attr[:, 2])
    got = explain("occlusion", model, x, 1, window=8, stride=4)
    np.testing.assert_allclose(got, attr[:, 0].numpy(), rtol=1e-6)


def test_kernel_shap_gives_a_tile_the_same_map_alone_and_in_a_batch(tiny):
    model, x = tiny
    batch = explain("kernel_shap", model, x, [0, 1], n_samples=20, seed=5)
    alone = explain("kernel_shap", model, x[1:], [1], n_samples=20, seed=5)
    np.testing.assert_allclose(batch[1], alone[0], rtol=1e-5, atol=1e-7)


def test_explain_seed_changes_only_the_sampling_options():
    a = study.options(SaliencyTourParams(explain_seed=0), "lime")
    b = study.options(SaliencyTourParams(explain_seed=4), "lime")
    assert a["seed"] == 0 and b["seed"] == 4 and a["num_samples"] == b["num_samples"]
    assert study.options(SaliencyTourParams(explain_seed=4), "saliency") == {}


def test_every_statement_of_a_claim_quotes_the_paper_record():
    assert PAPER.number("b1.occlusion.weakness") == "High computational cost"
    assert PAPER.number("fig7.score").startswith("0.98")
    with pytest.raises(KeyError, match="no number"):
        PAPER.number("b1.nothing")


# -- a torchvision ResNet -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=2).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model, torch.rand(1, 3, 32, 32)


def test_relu_per_call_site_copy_computes_the_same_function(resnet):
    from xaistudy.models.relu_sites import has_shared_relu, relu_call_counts, relu_per_call_site

    model, x = resnet
    assert has_shared_relu(model) and max(relu_call_counts(model).values()) == 2
    copy = relu_per_call_site(model)
    counts = relu_call_counts(copy)
    assert set(counts.values()) == {1} and len(counts) == 17  # 1 stem + 8 blocks × 2
    assert not has_shared_relu(copy)
    torch.testing.assert_close(copy(x), model(x))
    assert model.layer1[0].relu.inplace  # the original is left as it was


def test_deeplift_runs_on_a_torchvision_resnet_and_sums_to_the_difference(resnet):
    model, x = resnet
    attr = explain("deeplift", model, x, 1)
    with torch.no_grad():
        delta = (model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]).item()
    assert attr.shape == (1, 32, 32)
    assert attr.sum() == pytest.approx(delta, rel=1e-3, abs=1e-5)
    with tx.count_passes(model) as count:  # the ReLU copy's passes are the model's passes
        explain("deeplift", model, x, 1)
    assert (count.forward, count.backward) == (2, 2)  # input and baseline, one batch of two


def test_relu_copy_refuses_untraceable_models_in_one_line():
    from xaistudy.models.relu_sites import relu_per_call_site

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="cannot be traced") as err:
        relu_per_call_site(Branchy())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", tx.TOUR_METHODS)
def test_every_grid_method_runs_on_a_torchvision_resnet(resnet, method):
    model, x = resnet
    maps = tx.run_method(
        method, model, x, [1], layer=target_layer(model), options=tx.method_options(method, **FAST)
    )
    assert maps.shape == (1, 32, 32) and np.isfinite(maps).all()


def test_cascade_counts_layers_from_the_top_and_names_them(tiny, tmp_path):
    model, x = tiny
    m = study.Models(0, None, None, model, model, "", 0, {})
    params = SaliencyTourParams(methods="saliency,gradcam", cascade_layers=2)
    maps = {
        k: {"maps": tx.run_method(k, model, x, [1, 1], target_layer(model))}
        for k in ("saliency", "gradcam")
    }
    table = study.cascade(params, m, x, maps, Store(tmp_path))
    names = [n for n, _ in sanity_layers(model)][::-1]
    assert list(table.layers_reinitialised.unique()) == [1, 2]
    assert list(table.top_layer.unique()) == names[:2]
    assert table.spearman.dropna().between(-1, 1).all()  # NaN: two constant maps


def test_implementation_invariance_reuses_the_grids_maps_and_is_cached(tiny, tmp_path):
    from xaistudy.evaluate.controls import CONTROLS

    model, x = tiny
    m = study.Models(0, None, None, model, model, "", 0, {})
    params = SaliencyTourParams(ig_steps=4)
    idx = np.arange(len(x))
    maps = {
        k: {"maps": tx.run_method(k, model, x, [1, 1], options=study.options(params, k))}
        for k in ("deeplift", "integrated_gradients")
    }
    table = study.implementation_invariance(params, m, idx, x, maps, Store(tmp_path))
    assert sorted(table["method"].unique()) == ["deeplift", "integrated_gradients"]
    assert list(table["unit"]) == [0, 1, 0, 1]
    assert table["relative_l1"].notna().all() and (table["output_gap"] < 1e-5).all()
    # given other "grid maps", the distances are measured from them: they were reused
    other = {k: {"maps": -v["maps"]} for k, v in maps.items()}
    fresh = study.implementation_invariance(params, m, idx, x, other, Store(tmp_path / "b"))
    assert (fresh["relative_l1"] > 1.5).all()
    cached = study.implementation_invariance(params, m, idx, x, other, Store(tmp_path))
    pd.testing.assert_frame_equal(cached, table)  # the same key: read back, not recomputed
    assert "implementation-invariant method" in CONTROLS


def sanity_layers(model):
    from xaistudy.evaluate.sanity import weight_layers

    return weight_layers(model)


# -- the study once at the smoke size, and the chapter's interface on it ---------------------------
@pytest.fixture(scope="module")
def smoke_result(tmp_path_factory):
    params = build_params(SaliencyTourParams, "smoke", {})
    return study.run(params, store=Store(tmp_path_factory.mktemp("saliency-tour-cache")))


@pytest.mark.slow
def test_the_study_returns_frozen_results_with_every_table(smoke_result):
    import dataclasses

    assert isinstance(smoke_result, study.Result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke_result.shown = None
    assert set(smoke_result.tables) == set(study.TABLES)
    for name, table in smoke_result.tables.items():
        assert isinstance(table, pd.DataFrame) and len(table), name
        assert table.columns[0] == "seed" and set(table["seed"]) == {0}, name
    scores = smoke_result.tables["scores"]
    assert list(scores["method"].unique()) == [*tx.TOUR_METHODS, "rise_np"]
    shown = smoke_result.shown
    assert set(shown.maps) == {*tx.TOUR_METHODS, "rise_np"} and set(shown.random_maps) == set(
        tx.TOUR_METHODS
    )
    assert shown.maps["gradcam"].shape == shown.mask.shape == shown.image.shape[1:]


@pytest.mark.slow
def test_the_chapter_interface_gives_claims_tables_and_figures(smoke_result):
    rows_ = chapter.claims(smoke_result, "smoke")
    assert rows_ and all(isinstance(r, dict) and list(r) == list(COLUMNS) for r in rows_)
    assert {r["claim_id"] for r in rows_} == set(EXPECTED_CLAIMS) | {c[0] for c in NOT_MEASURED}
    # the map claims face the randomised network's maps of the same tiles, scored the same way
    by_id = {r["claim_id"]: r for r in rows_}
    for cid in (
        "smoothgrad.reduces_noise",
        "lime.positive_and_negative",
        "cam.inaccurate_localisation",
    ):
        assert by_id[cid]["controls"] == "randomised network", cid
    # DeepLIFT on the network's twin faces Integrated Gradients on the same twin
    twin = by_id["deeplift.not_implementation_invariant"]
    assert twin["controls"] == "implementation-invariant method"
    assert twin["kind"] == "finding" and "L138" in twin["quote"]
    scores, null = (smoke_result.tables[k] for k in ("scores", "scores_randomised"))
    keys = ["seed", "unit", "method"]
    assert (
        scores[keys].sort_values(keys).values.tolist()
        == null[keys].sort_values(keys).values.tolist()
    )
    first = null[(null["unit"] == 0) & (null["method"] == "gradcam")]["roughness"].item()
    assert first == pytest.approx(study.roughness(smoke_result.shown.random_maps["gradcam"]))
    tables = chapter.tables(smoke_result)
    assert {"methods", "table_b1", "clever_hans", "paper_vs_book"} <= set(tables)
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    figures = chapter.figures(smoke_result)
    assert {"fig7_grid", "clever_hans_maps", "sanity_cascade"} <= set(figures)
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    assert list(chapter.figures(smoke_result, "taxonomy")) == ["taxonomy"]
    plt.close("all")
    # importing the page modules leaves the interface functions in place
    assert callable(chapter.claims) and callable(chapter.tables) and callable(chapter.figures)


def test_each_tile_is_timed_alone_and_the_first_call_is_the_warm_up(tmp_path, monkeypatch):
    """grid_maps computes each tile's map in its own timed call (the maps equal a batched call);
    the timing table has a row per tile but the first (its call warmed the method up), or the
    single tile's row when only one is scored."""
    from types import SimpleNamespace

    from xaistudy.studies.saliency_tour import maps as maps_mod

    calls = []
    real_measure = tx.measure

    def counting_measure(method, model, inputs, *args, **kwargs):
        calls.append((method, len(inputs)))
        return real_measure(method, model, inputs, *args, **kwargs)

    monkeypatch.setattr(maps_mod.tx, "measure", counting_measure)
    params = build_params(SaliencyTourParams, "smoke", {"methods": "gradcam,saliency"})
    net = SmallCNN(2, widths=(4, 8)).eval()
    m = SimpleNamespace(net=net, seed=0)
    x = torch.rand(3, 3, 16, 16)
    maps = maps_mod.grid_maps(params, m, np.arange(3), x, Store(tmp_path))
    assert calls == [("saliency", 1)] * 3 + [("gradcam", 1)] * 3  # the review's order
    batched = tx.run_method("saliency", net, x, [1, 1, 1], target_layer(net))
    np.testing.assert_allclose(maps["saliency"]["maps"], batched, rtol=1e-5, atol=1e-7)
    assert maps["gradcam"]["forward"].tolist() == [1.0] * 3  # passes per tile: one forward
    assert maps["gradcam"]["backward"].tolist() == [1.0] * 3  # and one backward
    table = maps_mod.timing_rows(maps)
    assert table.groupby("method")["unit"].apply(list).to_dict() == {
        "gradcam": [1, 2], "saliency": [1, 2]
    }  # fmt: skip
    assert (table["seconds"] > 0).all()
    one = {k: {n: a[:1] for n, a in v.items()} for k, v in maps.items()}
    assert maps_mod.timing_rows(one)["unit"].tolist() == [0, 0]  # one tile: its call is timed


def test_region_scores_need_two_tumour_regions():
    """Partial coverage and fine details are scored on tiles with two or more tumour regions
    (NaN otherwise), with the IoU's binarisation: a map on the larger region only covers it
    whole and none of the smaller one."""
    from xaistudy.studies.saliency_tour.maps import region_scores

    params = build_params(SaliencyTourParams, "smoke", {})
    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True  # 64 px
    mask[14:18, 14:18] = True  # 16 px
    on_large = np.where(mask & (np.arange(20)[:, None] < 12), 1.0, 0.0)
    scores = region_scores(params, on_large, mask)
    assert scores == {"coverage_spread": 1.0, "smallest_region_coverage": 0.0}
    both = region_scores(params, mask.astype(float), mask)
    assert both == {"coverage_spread": 0.0, "smallest_region_coverage": 1.0}
    one = np.zeros((20, 20), bool)
    one[2:10, 2:10] = True
    assert all(np.isnan(v) for v in region_scores(params, on_large, one).values())


@pytest.mark.slow
def test_flat_rise_maps_make_rises_claims_not_testable(smoke_result):
    """A RISE whose maps are flat (every masked copy scored alike) measures its masks, not the
    model: its claims become not testable here, with the numbers in the reason."""
    import dataclasses

    from xaistudy.chapters.saliency_tour.claims import FLAT, judged, rise_status

    def verdicts(result):
        return {r["claim_id"]: r for r in judged(result, "smoke") if r["claim_id"][:5] == "rise."}

    working = verdicts(smoke_result)
    assert working and all(r["verdict"] != "not testable here" for r in working.values())
    scores = smoke_result.tables["scores"].copy()
    scores.loc[scores["method"] == "rise", "variation"] = FLAT / 10
    flat = dataclasses.replace(smoke_result, tables={**smoke_result.tables, "scores": scores})
    judged_flat = verdicts(flat)
    assert set(judged_flat) == set(working)
    for row in judged_flat.values():
        assert row["verdict"] == "not testable here"
        assert "RISE's maps are flat (median variation 0.0010 < 0.01)" in row["note"]
    assert rise_status(smoke_result).startswith("RISE's maps are not flat (median variation")
    assert rise_status(flat).startswith("RISE's maps are flat (median variation 0.0010")
