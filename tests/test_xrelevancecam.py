"""The xrelevancecam study and chapter: segmentation scoring, stages, dropout, data, parameters,
the paired rows of the claims and the chapter interface on a smoke-size run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fabricate_folders import write_pcle
from torch import nn
from toys import tiny_resnet

from xaistudy.chapters import xrelevancecam as chapter
from xaistudy.chapters.xrelevancecam import XRelevanceCamParams
from xaistudy.core.params import ParamError, build_params
from xaistudy.evaluate.localisation import iou
from xaistudy.evaluate.wsss import (
    AGGREGATIONS,
    aggregate,
    binarise,
    miou,
    miou_aggregation,
    miou_per_layer,
)
from xaistudy.explain.relevance import layer_cams
from xaistudy.models.classifiers import WeightsNotFoundError
from xaistudy.models.pcle import (
    CentreCrop,
    Standardise,
    build_backbone,
    fov_crop_size,
    standin_pretraining,
    synthetic_cohort,
)
from xaistudy.models.stages import (
    StageDropout,
    add_stage_dropout,
    forward_from,
    randomise_stages,
    set_dropout,
)
from xaistudy.studies import xrelevancecam as study


# -- weakly supervised segmentation ---------------------------------------------------------
def test_binarise_rules_by_hand():
    m = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.5, 1.0]])
    # mean 0.3125, std 0.4313 -> threshold 0.7438: only the two 1.0 pixels
    assert binarise(m, "mean_std")[0].sum() == 2
    assert binarise(m, "mean")[0].sum() == 3
    assert binarise(m, "fixed", 0.4)[0].sum() == 3
    assert binarise(m, "otsu")[0].sum() in (2, 3)
    with pytest.raises(ValueError, match="unknown binarise rule 'max'"):
        binarise(m, "max")
    with pytest.raises(ValueError, match=r"fixed threshold must be in \[0, 1\]"):
        binarise(m, "fixed", 2.0)


def test_iou_and_miou_by_hand():
    pred = np.zeros((2, 4, 4), bool)
    truth = np.zeros((2, 4, 4), bool)
    pred[0, :2, :2] = True  # 4 px
    truth[0, :2, :3] = True  # 6 px, intersection 4 -> 4/6
    pred[1, 0, 0] = truth[1, 3, 3] = True  # disjoint -> 0
    np.testing.assert_allclose(iou(pred, truth), [4 / 6, 0.0])
    assert np.isnan(iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)))
    maps = pred.astype(float)
    assert miou(maps, truth, "fixed", 0.5) == pytest.approx(100 * (4 / 6) / 2)
    with pytest.raises(ValueError, match="shapes differ"):
        iou(pred, truth[:, :3])


def test_aggregation_and_tables():
    a = np.zeros((1, 4, 4), np.float32)
    a[0, 0, 0] = 1
    b = np.zeros((1, 4, 4), np.float32)
    b[0, 3, 3] = 1
    maps = {"layer4": a, "layer3": b, "layer2": a, "layer1": a}
    agg = aggregate(maps, AGGREGATIONS["4+3"])
    assert agg[0, 0, 0] == agg[0, 3, 3] == 1.0 and agg.max() == 1.0
    with pytest.raises(ValueError, match="no maps for layer 'layer0'"):
        aggregate(maps, ["layer0"])
    truth = a.astype(bool)
    t1 = miou_per_layer({"m": maps}, truth)
    assert list(t1.columns) == ["method", "layer4", "layer3", "layer2", "layer1", "average"]
    assert t1.loc[0, "layer4"] == pytest.approx(100.0) and t1.loc[0, "layer3"] == 0.0
    t2 = miou_aggregation({"m": maps}, truth)
    assert list(t2.columns) == ["method", *AGGREGATIONS]
    assert t2.loc[0, "4"] == pytest.approx(100.0) and t2.loc[0, "4+3"] == pytest.approx(50.0)


# -- stages, dropout, randomisation -----------------------------------------------------------
def test_forward_from_equals_the_full_model():
    model = tiny_resnet()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
        assert torch.allclose(forward_from(model, "layer2", feats), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="unknown stage 'layer5'"):
        forward_from(model, "layer5", feats)
    with pytest.raises(ValueError, match="has no 'layer1'"):
        forward_from(nn.Linear(2, 2), "layer1", feats)


def test_stage_dropout_stays_on_in_eval_only_when_asked():
    model = add_stage_dropout(tiny_resnet(), 0.5)
    assert sum(isinstance(m, StageDropout) for m in model.modules()) == 4
    model.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        assert set_dropout(model, True) == 4
        assert not torch.equal(model(x), model(x))
        set_dropout(model, False)
        assert torch.equal(model(x), model(x))
    with pytest.raises(ValueError, match="dropout p"):
        StageDropout(1.0)


def test_dropout_maps_are_seeded_averages():
    model = add_stage_dropout(tiny_resnet(), 0.3)
    set_dropout(model, True)
    x = torch.rand(1, 3, 32, 32)
    opts = dict(methods=["gradcam", "xrelevancecam"], layers=["layer2"], rule="unit")
    a = layer_cams(model, x, [1], n_passes=2, seed=1, **opts)
    b = layer_cams(model, x, [1], n_passes=2, seed=1, **opts)
    c = layer_cams(model, x, [1], n_passes=2, seed=2, **opts)
    for method in ("gradcam", "xrelevancecam"):
        np.testing.assert_allclose(a[method]["layer2"], b[method]["layer2"], atol=1e-5)
        assert np.abs(a[method]["layer2"] - c[method]["layer2"]).max() > 1e-3
        assert a[method]["layer2"].shape == (1, 32, 32)


def test_randomise_stages_cascades_from_the_top():
    model = tiny_resnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r2 = randomise_stages(model, 2, seed=0)
    after = r2.state_dict()
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["layer4.0.conv1.weight"], before["layer4.0.conv1.weight"])
    assert torch.equal(after["layer3.0.conv1.weight"], before["layer3.0.conv1.weight"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    r2b = randomise_stages(model, 2, seed=0)
    assert torch.equal(r2b.state_dict()["fc.weight"], after["fc.weight"])
    with pytest.raises(ValueError, match="k must be from 0 to 5"):
        randomise_stages(model, 6)


# -- data and parameters --------------------------------------------------------------------
def test_centre_crop_is_the_square_inside_the_field_of_view():
    assert fov_crop_size(339) == 230  # the paper's 230 x 230 crop
    assert fov_crop_size(100, 0.3) == 42 and fov_crop_size(100, 0.7071) == 99
    sample = {"image": torch.rand(3, 96, 96), "mask": torch.zeros(1, 96, 96)}
    sample["mask"][0, 48, 48] = 1
    out = CentreCrop(fov_crop_size(96))(sample)
    side = fov_crop_size(96)
    assert out["image"].shape == (3, side, side) and out["mask"].sum() == 1


def test_params_profiles_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-cache"))  # no standard local weights
    for profile in ("smoke", "quick"):
        build_params(XRelevanceCamParams, profile)
    root = tmp_path / "pcle"
    write_pcle(root, n_glio=3, n_menin=3)
    with pytest.raises(ParamError, match="skresnext50_32x4d"):  # pretrained=true, no file
        build_params(XRelevanceCamParams, "paper", {"data_root": str(root)})
    paper = build_params(
        XRelevanceCamParams, "paper", {"data_root": str(root), "pretrained": False}
    )
    assert (paper.backbone, paper.resnet, paper.dropout) == ("skresnext50_32x4d", "resnet50", 0.1)
    assert (paper.dataset, paper.n_patients, paper.frames_per_patient) == ("pcle-folder", 0, 0)
    assert fov_crop_size(paper.frame_size) == 230
    with pytest.raises(ParamError, match="clrp_rule"):
        build_params(XRelevanceCamParams, "smoke", {"clrp_rule": "beta"})
    with pytest.raises(ParamError, match="backbone"):
        build_params(XRelevanceCamParams, "smoke", {"backbone": "vgg16"})
    with pytest.raises(ParamError, match="synthetic-pcle generates its frames: n_patients"):
        build_params(XRelevanceCamParams, "smoke", {"n_patients": 0})
    with pytest.raises(ParamError, match="dataset 'pcle-folder': data_root .* does not exist") as e:
        build_params(
            XRelevanceCamParams,
            "paper",
            {"data_root": str(tmp_path / "absent"), "pretrained": False},
        )
    assert "\n" not in str(e.value)
    with pytest.raises(ParamError, match="missing meningioma frame folder"):
        (root / "frames" / "meningioma").rename(root / "frames" / "other")
        build_params(XRelevanceCamParams, "paper", {"data_root": str(root), "pretrained": False})
    with pytest.raises(ParamError, match="has no option 'step'; allowed: frame_step, fov_fraction"):
        build_params(
            XRelevanceCamParams, "smoke", {"dataset": "pcle-folder", "data_options": {"step": 2}}
        )


def test_a_weights_file_is_used_where_it_fits(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-cache"))  # no standard local weights
    source, _ = build_backbone("resnet18", False)
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    model, init = build_backbone("resnet18", str(path), dropout=0.2)
    assert init == "fine-tuned from the weights file r18.pth"
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert sum(isinstance(m, StageDropout) for m in model.modules()) == 4
    # the file does not fit small_cnn and there is no standard file: refused, never scratch
    with pytest.raises(WeightsNotFoundError):
        build_backbone("small_cnn", str(path))
    with pytest.raises(WeightsNotFoundError):
        build_backbone("resnet18", True)


def test_stand_in_pretraining_starts_the_pcle_backbone(tmp_path):
    from xaistudy.core.store import Store

    store = Store(tmp_path / "cache")
    state = standin_pretraining("resnet18", "synthetic-he", 8, 64, epochs=1, store=store)
    model, init = build_backbone("resnet18", False, init_state=state, init_label="stand-in")
    assert init == "stand-in"
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert model.fc.out_features == 2  # the head is new
    again = standin_pretraining("resnet18", "synthetic-he", 8, 64, epochs=1, store=store)
    assert torch.equal(again["conv1.weight"], state["conv1.weight"])  # stored, seeded
    with pytest.raises(ValueError, match="unknown stand-in dataset 'imagenet'"):
        standin_pretraining("resnet18", "imagenet", 8, 64, store=store)


# -- the chapter module -----------------------------------------------------------------------
def test_synthetic_cohort_is_unseen_and_balanced():
    ds = synthetic_cohort(2, 3, 64, centre_crop=True, seed=0, first_id=21)
    assert len(ds) == 12
    patients = ds.extra["patient_id"]
    assert patients.min() == 22 and len(np.unique(patients)) == 4  # ids after the training's
    assert ((patients % 2 == 0) == (ds.labels == 1)).all()  # even ids meningioma
    assert ds[0]["image"].shape[-1] == fov_crop_size(64)
    assert ds.masks[ds.labels == 1].any(axis=(1, 2)).all()
    assert not ds.masks[ds.labels == 0].any()
    with pytest.raises(ValueError, match="n_patients >= 1"):
        synthetic_cohort(0, 3, 64)


def test_standardised_frames_lose_the_gain():
    plain = synthetic_cohort(1, 2, 64, seed=0, first_id=20)
    std = synthetic_cohort(1, 2, 64, seed=0, first_id=20, standardise=True)
    x, z = plain[0]["image"].float(), std[0]["image"]
    assert torch.allclose(z.mean(dim=(1, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(1, 2)), torch.ones(3), atol=1e-2)
    by_hand = (x[0] - x[0].mean()) / torch.sqrt(x[0].var() + 1e-6)  # the book's one rule
    assert torch.allclose(z[0], by_hand, atol=1e-5)
    dimmed = Standardise()({"image": 0.6 * x})["image"]
    assert torch.allclose(dimmed, z, atol=1e-2)  # a patient's gain does not survive


def test_generated_validation_split_is_stratified(tmp_path):
    from xaistudy.core.store import Store

    params = build_params(XRelevanceCamParams, "smoke")
    data = study.load_data(params, 0, Store(tmp_path))
    val = data.train["val"]
    assert sorted(np.unique(val.labels)) == [0, 1]
    assert (val.labels == 1).sum() == (val.labels == 0).sum()
    seen = set(data.train["train"].extra["patient_id"]) | set(data.patients)
    assert not seen & set(val.extra["patient_id"])


def test_each_model_starts_from_the_seeded_generator(monkeypatch):
    """A model's initial weights do not depend on what ran before it in the process."""
    from xaistudy.models import pcle

    draws = []

    def fake_training(name, *args, **kw):
        draws.append((name, kw["dropout"], torch.rand(1).item()))  # what its init would draw
        return name

    monkeypatch.setattr(pcle, "train_pcle_classifier", fake_training)
    params = build_params(XRelevanceCamParams, "smoke")
    data = study.Data({}, {}, torch.zeros(1, 3, 4, 4), np.ones(1), np.ones((1, 4, 4)), np.ones(1))
    torch.manual_seed(123)
    assert set(study.train_models(params, data, 5, "scratch")) == {"sk", "resnet", "sk_dropout"}
    first = list(draws)
    draws.clear()
    torch.rand(7)  # another history
    study.train_models(params, data, 5, "scratch")
    assert draws == first and first[0][2] == first[1][2] == first[2][2]


def test_spread_takes_frames_in_turn_from_each_patient():
    idx = np.array([0, 1, 2, 3, 4, 5])
    patients = np.array([7, 7, 7, 7, 9, 9])
    np.testing.assert_array_equal(study.spread(idx, patients, 3), [0, 1, 4])
    np.testing.assert_array_equal(study.spread(idx, patients, 10), idx)


def test_eval_frames_one_rule_for_empty_annotations():
    p = build_params(XRelevanceCamParams, "smoke")
    masks = np.zeros((4, 4, 4), bool)
    masks[[0, 1, 3], 1, 1] = True
    data = study.Data(
        train={},
        key={},
        images=torch.zeros(4, 3, 4, 4),
        labels=np.array([1, 1, 1, 0]),
        masks=masks,
        patients=np.arange(4),
    )
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9], [0.1, 0.9]])
    # frame 1 misclassified, frame 2 without annotation, frame 3 glioblastoma
    np.testing.assert_array_equal(study.eval_frames(p, data, probs), [0])


def test_frame_ious_and_paired_differences_by_hand():
    truth = np.zeros((2, 4, 4), bool)
    truth[:, :2, :2] = True
    good = truth.astype(np.float32)
    bad = np.zeros((2, 4, 4), np.float32)
    bad[:, 3, 3] = 1
    maps = {
        m: {layer: (good if m == "xrelevancecam" else bad) for layer in study.LAYERS}
        for m in ("relevancecam", "xrelevancecam")
    }
    t = study.frame_ious(maps, truth, "fixed", 0.5)
    assert set(t["view"]) == set(study.VIEWS) and len(t) == 2 * 2 * len(study.VIEWS)
    x = t[(t.method == "xrelevancecam")]
    assert (x["iou"] == 100).all()
    assert (t[(t.method == "relevancecam")]["iou"] == 0).all()
    iou = t.assign(model="sk", seed=0, unit=[5, 6] * (len(t) // 2))
    d = study.iou_difference(iou, "sk", ("xrelevancecam", "layer1"), ("relevancecam", "layer1"))
    assert list(d["value"]) == [100.0, 100.0] and list(d["unit"]) == [5, 6]


def _results(gap: float, seeds=(0, 1, 2), patients=(0, 2, 4, 6)) -> study.Result:
    """Fabricated measurements: XRelevanceCAM's IoU is RelevanceCAM's + ``gap`` (+ noise)."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for unit in patients:
            for frame in range(2):
                for method in study.METHODS:
                    for view in study.VIEWS:
                        for model in ("sk", "resnet", "sk_dropout:on", "sk_dropout:off"):
                            base = 30 + rng.normal()
                            value = base + gap if method == "xrelevancecam" else base
                            other = 10 + rng.normal()  # another frame's mask: no gap
                            rows.append(
                                dict(
                                    seed=seed,
                                    start="scratch",
                                    unit=unit,
                                    frame=frame + 10 * unit,
                                    method=method,
                                    view=view,
                                    model=model,
                                    iou=value,
                                    iou_other_mask=other,
                                )
                            )
    empty = pd.DataFrame()
    params = build_params(XRelevanceCamParams, "smoke")
    return study.Result(
        params, pd.DataFrame(rows), empty, empty, empty, empty, empty, empty, "", None, None
    )


def test_claims_verdicts_follow_the_numbers():
    for gap, verdict in ((10.0, "reproduced"), (-10.0, "contradicted")):
        rows = {r["claim_id"]: r for r in chapter.claims(_results(gap), "smoke")}
        assert rows["table1.xrc_beats_rc.layer1.scratch"]["verdict"] == verdict
        assert rows["table2.xrc_beats_rc.aggregate.scratch"]["verdict"] == verdict
        assert rows["table1.xrc_beats_rc.layer1.scratch"]["n_units"] == 12  # seeds x patients
        # compared as the paper compares: against every other CAM at once
        best = rows["table2.xrc_beats_every_cam.aggregate.scratch"]
        assert best["verdict"] == verdict and best["quote"]
        assert best["paper_estimate"] == pytest.approx(38.20 - 35.93)
        assert best["magnitude_verdict"] in ("inside", "below", "above")
        assert rows["table3.dropout_on_lowers_miou.scratch"]["paper_estimate"] == pytest.approx(
            29.62 - 35.40
        )
        # nothing measured for them here: said so, not dropped
        assert rows["table4.xrc_conserves_better_than_rc.scratch"]["verdict"] == (
            "not testable here"
        )
        assert rows["fig5.sanity_passes.scratch"]["verdict"] == "not testable here"
        assert rows["eq1.pretraining_spreads_channels"]["verdict"] == "not testable here"


def test_a_difference_any_mask_gives_is_uninformative():
    """When XRelevanceCAM's IoU lead is the same against another frame's mask, the lead is
    about the maps' size, not the polyp: the control reaches the verdict alone."""
    res = _results(10.0)
    res.iou["iou_other_mask"] = res.iou["iou"] - 20
    rows = {r["claim_id"]: r for r in chapter.claims(res, "smoke")}
    row = rows["table1.xrc_beats_rc.layer1.scratch"]
    assert row["verdict"] == "uninformative"
    assert row["controls"] == "another tile's mask" and "alone" in row["note"]


def test_an_untrained_networks_conservation_is_uninformative():
    """The reviewer's null: XRelevanceCAM's Table-4 conservation lead holds for a network that
    learned nothing (its error is LRP's own leak, by construction). Judged against the
    untrained-network control the chapter computes, it is not reproduced."""
    from xaistudy.evaluate.controls import untrained_copy

    params = build_params(XRelevanceCamParams, "smoke", {"axiom_channels": 2})
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    patients = np.repeat([0, 1, 2, 3], 2)
    ax, null = [], []
    for seed in (0, 1):
        net = tiny_resnet(seed)  # never trained: stands in for "the trained model"
        ax.append(study.axiom_rows(params, net, x, patients, seed).assign(seed=seed))
        blank = untrained_copy(net, seed)
        null.append(study.axiom_rows(params, blank, x, patients, seed).assign(seed=seed))
    ax = pd.concat(ax).assign(start="scratch")
    null = pd.concat(null).assign(start="scratch")
    empty = pd.DataFrame()

    def verdict(control):
        res = study.Result(params, empty, ax, control, empty, empty, empty, empty, "", None, None)
        rows = {r["claim_id"]: r for r in chapter.claims(res, "smoke")}
        return rows["table4.xrc_conserves_better_than_rc.scratch"]

    assert verdict(empty)["verdict"] == "reproduced"  # the null is real
    judged = verdict(null)
    assert judged["verdict"] == "uninformative", judged["note"]
    assert judged["controls"] == "untrained network"


def test_equal_channel_totals_make_the_two_relevance_maps_one_map():
    """XRelevanceCAM = RelevanceCAM x hw / sum_ij A^k: equal totals, equal maps."""
    from xaistudy.explain.relevance import relevance_weights, weighted_cam

    gen = torch.Generator().manual_seed(0)
    act = torch.rand(1, 3, 4, 4, generator=gen)
    act = act / act.sum((2, 3), keepdim=True) * 5.0  # every channel totals 5
    rel = torch.randn(1, 3, 4, 4, generator=gen)
    maps = [
        weighted_cam(relevance_weights(m, rel, act), act, (8, 8))
        for m in ("relevancecam", "xrelevancecam")
    ]
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)
    act[0, 0] *= 4  # unequal totals: the maps differ
    maps = [
        weighted_cam(relevance_weights(m, rel, act), act, (8, 8))
        for m in ("relevancecam", "xrelevancecam")
    ]
    assert np.abs(maps[0] - maps[1]).max() > 1e-2


@pytest.mark.slow
def test_smoke_run_writes_every_claim(smoke_outputs):
    out = smoke_outputs("xrelevancecam")
    claims = pd.read_csv(out / "tables" / "claims.csv")
    ids = set(claims.claim_id)
    for start in ("scratch", "pretrained"):
        assert {f"table1.xrc_beats_rc.{layer}.{start}" for layer in study.LAYERS} <= ids
        assert {
            f"table2.xrc_beats_rc.aggregate.{start}",
            f"table3.xrc_beats_rc.dropout_on.layer1.{start}",
            f"table4.xrc_conserves_better_than_rc.{start}",
            f"fig5.sanity_passes.{start}",
        } <= ids
    assert "eq1.pretraining_spreads_channels" in ids
    assert (out / "figures" / "eq1_diagnostic.png").exists()
    models = pd.read_csv(out / "tables" / "models.csv")
    assert models.loc[models.start == "pretrained", "initialisation"].str.contains("stand-in").all()


def test_axiom_and_pretraining_rows_pair_by_seed_and_patient():
    ax = pd.DataFrame(
        {
            "seed": 0,
            "unit": [1, 1, 1, 1, 2, 2],
            "method": ["relevancecam", "xrelevancecam"] * 3,
            "axiom": "conservation",
            "layer": ["layer1", "layer1", "layer2", "layer2", "layer1", "layer1"],
            "value": [0.5, 0.1, 0.7, 0.1, 0.4, 0.2],
        }
    )
    d = study.axiom_difference(ax, "conservation", "relevancecam", "xrelevancecam")
    np.testing.assert_allclose(d["value"], [0.5, 0.2])  # unit 1: mean over stages 0.6 - 0.1
    assert list(d["unit"]) == [1, 2]
    assert study.axiom_difference(pd.DataFrame(), "conservation", "a", "b").empty
    diag = pd.DataFrame(
        {
            "seed": 0,
            "unit": [1, 1, 1],
            "model": "sk",
            "start": ["scratch", "pretrained", "pretrained"],
            "activation_cv": [0.2, 0.5, 0.7],
        }
    )
    assert study.pretraining_spread(diag)["value"].tolist() == pytest.approx([0.4])
    assert study.pretraining_spread(diag[diag.start == "scratch"]) is None


# -- the chapter interface on the study run once at smoke size ---------------------------------
@pytest.fixture(scope="module")
def smoke_result(smoke_outputs):
    smoke_outputs("xrelevancecam")  # the book's run first: the study then reuses its stages
    return chapter.run(build_params(XRelevanceCamParams, "smoke"))


@pytest.mark.slow
def test_the_chapter_interface_on_a_smoke_run(smoke_result, smoke_outputs):
    import matplotlib.pyplot as plt

    res = smoke_result
    assert isinstance(res, study.Result)
    rows = chapter.claims(res, "smoke")
    assert rows and all(isinstance(r, dict) and r["claim_id"] for r in rows)
    tables = chapter.tables(res, "smoke")
    assert {"miou_per_layer", "axioms", "sanity", "paper_vs_book"} <= set(tables)
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    # the study run here and the notebook's run agree
    book = pd.read_csv(smoke_outputs("xrelevancecam") / "tables" / "miou_per_layer.csv")
    pd.testing.assert_frame_equal(
        tables["miou_per_layer"], book, check_dtype=False, check_names=False
    )
    figures = chapter.figures(res)
    assert {"miou_per_layer", "sanity", "eq1_diagnostic"} <= set(figures)
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    plt.close("all")


def test_spread_cell_and_margin_rows_by_hand():
    rows = []
    for method, (l1, l4) in {
        "gradcam": (10, 30),
        "relevancecam": (20, 31),
        "xrelevancecam": (40, 33),
    }.items():
        for view, v in (("layer1", l1), ("layer4", l4)):
            rows.append(dict(seed=0, unit=1, frame=0, model="sk", method=method, view=view, iou=v))
    rows.append(dict(seed=0, unit=1, frame=0, model="sk_dropout:on", method="xrelevancecam",
                     view="4+3+2+1", iou=25.0))  # fmt: skip
    rows.append(dict(seed=0, unit=1, frame=0, model="sk_dropout:off", method="xrelevancecam",
                     view="4+3+2+1", iou=35.0))  # fmt: skip
    iou = pd.DataFrame(rows)
    methods = ["gradcam", "relevancecam", "xrelevancecam"]
    spread = study.spread_difference(iou, "sk", methods, "layer1", "layer4")
    assert spread["value"].tolist() == [(40 - 10) - (33 - 30)]
    cell = study.cell_difference(
        iou,
        ("sk_dropout:on", "xrelevancecam", "4+3+2+1"),
        ("sk_dropout:off", "xrelevancecam", "4+3+2+1"),
    )
    assert cell["value"].tolist() == [-10.0]
    pairs = [(("xrelevancecam", "layer1"), (m, "layer1")) for m in ("gradcam", "relevancecam")]
    margins = study.margin_rows(iou, "sk", pairs)
    assert sorted(margins["value"]) == [20.0, 30.0] and set(margins["code"]) == {0, 1}
    assert study.worst_margin(margins) == 20.0 and study.best_margin(margins) == 30.0


# -- false positives in the shallow stages, the gradual deterioration of Fig. 5 ---------------
def test_false_positive_rate_by_hand():
    truth = np.zeros((2, 4, 4), bool)
    truth[:, :2, :2] = True  # 4 px annotated, 12 outside
    pred = np.zeros((2, 4, 4), bool)
    pred[0, :2, :1] = True  # 2 px inside
    pred[0, 3, :3] = True  # 3 px outside -> 3 / 12
    pred[1] = True  # every pixel -> 12 / 12
    np.testing.assert_allclose(study.false_positive_rate(pred, truth), [25.0, 100.0])
    full = np.ones((1, 4, 4), bool)
    assert np.isnan(study.false_positive_rate(full, full)[0])  # nothing outside: undefined
    maps = {m: {layer: pred.astype(np.float32) for layer in study.LAYERS} for m in study.METHODS}
    t = study.frame_ious(maps, truth, "fixed", 0.5, partner=np.array([1, 0]))
    layer1 = t[(t.method == "xrelevancecam") & (t.view == "layer1")]
    assert layer1["fpr"].tolist() == [25.0, 100.0] and layer1["marked"].tolist() == [
        100 * 5 / 16,
        100.0,
    ]
    assert layer1["fpr_other_mask"].tolist() == [25.0, 100.0]  # both frames: the same mask
    # the margin of every other CAM over XRelevanceCAM: one code per (stage, other CAM)
    rows = t.assign(model="sk", seed=0, unit=0)
    rows.loc[rows.method == "xrelevancecam", "fpr"] -= 5.0
    margins = study.false_positive_margin(rows, "sk", ("layer1", "layer2"))
    assert margins["code"].nunique() == 2 * (len(study.METHODS) - 1)
    assert (margins["value"] == 5.0).all() and study.worst_margin(margins) == 5.0
    assert study.false_positive_margin(rows.drop(columns="fpr"), "sk", ("layer1",)).empty


def test_gradual_deterioration_statistic_by_hand():
    assert study.deterioration_tau([0.9, 0.7, 0.6, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    assert study.deterioration_tau([0.5, 0.5, 0.5, 0.5]) == 0.0  # flat: no deterioration
    assert study.deterioration_tau([0.2, 0.9, 0.8, 0.3]) == pytest.approx(0.0)  # 3 rise, 3 fall
    assert study.deterioration_tau([0.9, 0.3, 0.4, 0.2]) == pytest.approx(-2 / 3)  # 5 of 6 fall
    assert np.isnan(study.deterioration_tau([0.4, np.nan]))
    sanity = pd.DataFrame(
        {
            "seed": 0,
            "unit": [3] * 4 + [5] * 4,
            "frame": [0] * 4 + [1] * 4,
            "stages": [4, 3, 2, 1] * 2,  # out of order: sorted by step first
            "spearman": [0.1, 0.4, 0.6, 0.9] + [0.3] * 4,
        }
    )
    rows = study.deterioration_rows(sanity)
    assert rows["value"].tolist() == pytest.approx([-1.0, 0.0]) and list(rows["unit"]) == [3, 5]


def test_the_cascade_reaches_the_stem():
    model = tiny_resnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    weights = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert study.CASCADE[-1] == "stem" and len(study.CASCADE) == 6
    last = study.randomise_cascade(model, len(study.CASCADE), seed=0)
    modules = dict(last.named_modules())
    for name, trained in weights:  # every weight of the network re-drawn, the stem's too
        for p, value in trained.named_parameters():
            assert not torch.equal(getattr(modules[name], p), value), f"{name}.{p} kept"
    # one step before: everything but the stem, as stages.randomise_stages does
    five = study.randomise_cascade(model, 5, seed=0).state_dict()
    assert torch.equal(five["conv1.weight"], before["conv1.weight"])
    assert torch.equal(five["layer1.0.conv1.weight"], last.state_dict()["layer1.0.conv1.weight"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # untouched
    with pytest.raises(ValueError, match="k must be from 0 to 6"):
        study.randomise_cascade(model, 7)
    params = build_params(XRelevanceCamParams, "smoke")
    x = torch.rand(2, 3, 32, 32)
    rows, shown = study.sanity_rows(params, model, x, seed=0)
    assert sorted(set(rows["stages"])) == [1, 2, 3, 4, 5, 6]
    assert rows["randomised"].iloc[-1].endswith("+layer1+stem") and shown.steps[-1] == "+stem"


def test_stored_sanity_and_axiom_rows_load_what_was_computed(tmp_path):
    from xaistudy.core.store import Store
    from xaistudy.studies.xrelevancecam import measure

    model, store = tiny_resnet(), Store(tmp_path)
    params = build_params(XRelevanceCamParams, "smoke")
    x, patients = torch.rand(3, 3, 32, 32), np.array([4, 4, 7])
    rows, shown = study.sanity_rows(params, model, x, seed=0)
    axioms = study.axiom_rows(params, model, x, patients, seed=0)
    for _ in range(2):  # computed and stored, then loaded: the same tables, types included
        got, got_shown = measure.stored_sanity_rows(params, store, {"m": 1}, model, x, seed=0)
        pd.testing.assert_frame_equal(got, rows)
        assert got_shown.steps == shown.steps
        assert all(np.array_equal(a, b) for a, b in zip(got_shown.maps, shown.maps, strict=True))
        got = measure.stored_axiom_rows(params, store, {"m": 1}, model, x, patients, seed=0)
        pd.testing.assert_frame_equal(got, axioms)
    assert len(list(tmp_path.rglob("*.npz"))) == 2


def test_the_new_claims_follow_the_numbers_and_their_controls():
    from dataclasses import replace

    rng = np.random.default_rng(1)
    base = _results(0.0)
    iou = base.iou.copy()
    n = len(iou)
    shallow = iou.view.isin(["layer1", "layer2"]) & (iou.method == "xrelevancecam")
    iou["fpr"] = 20 + rng.normal(size=n) - 8 * shallow
    iou["fpr_other_mask"] = 30 + rng.normal(size=n)  # another frame's mask: no lead

    sanity = []
    for seed in (0, 1, 2):
        for unit in (0, 2, 4, 6):
            for step in range(1, 7):
                similarity = 1 - 0.15 * step + 0.02 * rng.normal()
                sanity.append(
                    dict(
                        seed=seed,
                        start="scratch",
                        unit=unit,
                        frame=unit,
                        stages=step,
                        spearman=similarity,
                    )
                )
    trained = pd.DataFrame(sanity)
    flat = trained.assign(spearman=0.95 + 0.01 * rng.normal(size=len(trained)))

    def rows(iou, untrained):
        res = replace(base, iou=iou, sanity=trained, sanity_untrained=untrained)
        return {r["claim_id"]: r for r in chapter.claims(res, "smoke")}

    judged = rows(iou, flat)
    fewer = judged["table1.fewer_false_positives.shallow.scratch"]
    assert fewer["verdict"] == "reproduced" and fewer["controls"] == "another tile's mask"
    assert "not area-matched" in fewer["note"] and fewer["quote"].endswith("(L162)")
    gradual = judged["fig5.gradual_deterioration.scratch"]
    assert gradual["verdict"] == "reproduced" and gradual["controls"] == "untrained network"
    assert gradual["book_value"] == pytest.approx(-1.0)
    assert judged["fig5.sanity_passes.scratch"]["verdict"] != "not testable here"
    # a lead that another frame's mask gives too (a smaller area), a fall any cascade gives
    same = iou.assign(fpr_other_mask=iou["fpr"] + 10)
    judged = rows(same, trained)
    assert judged["table1.fewer_false_positives.shallow.scratch"]["verdict"] == "uninformative"
    assert judged["fig5.gradual_deterioration.scratch"]["verdict"] == "uninformative"
    # an XRelevanceCAM that marks more non-annotated tissue than one other CAM: contradicted
    worse = iou.copy()
    worse.loc[(worse.method == "gradcam") & worse.view.isin(["layer1"]), "fpr"] -= 20
    verdict = rows(worse, flat)["table1.fewer_false_positives.shallow.scratch"]["verdict"]
    assert verdict == "contradicted"
