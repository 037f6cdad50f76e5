"""The xrelevancecam chapter's parts: segmentation scoring, stages, dropout, data, parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fabricate_folders import write_pcle
from torch import nn
from toys import tiny_resnet

from xaistudy.chapters.xrelevancecam import XRelevanceCamParams
from xaistudy.evaluate.wsss import (
    AGGREGATIONS,
    aggregate,
    binarise,
    iou,
    miou,
    miou_aggregation,
    miou_per_layer,
)
from xaistudy.explain.relevance import layer_cams
from xaistudy.models.pcle import CentreCrop, build_backbone, fov_crop_size
from xaistudy.models.stages import (
    StageDropout,
    add_stage_dropout,
    forward_from,
    randomise_stages,
    set_dropout,
)
from xaistudy.params import ParamError, build_params


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
    assert np.isnan(iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool))[0])
    maps = pred.astype(float)
    assert miou(maps, truth, "fixed", 0.5) == pytest.approx(100 * (4 / 6) / 2)
    with pytest.raises(ValueError, match="differ in shape"):
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


def test_params_profiles_and_errors(tmp_path):
    for profile in ("smoke", "quick"):
        build_params(XRelevanceCamParams, profile)
    root = tmp_path / "pcle"
    write_pcle(root, n_glio=3, n_menin=3)
    paper = build_params(XRelevanceCamParams, "paper", {"data_root": str(root)})
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
        build_params(XRelevanceCamParams, "paper", {"data_root": str(tmp_path / "absent")})
    assert "\n" not in str(e.value)
    with pytest.raises(ParamError, match="missing meningioma frame folder"):
        (root / "frames" / "meningioma").rename(root / "frames" / "other")
        build_params(XRelevanceCamParams, "paper", {"data_root": str(root)})
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
    other, init = build_backbone("small_cnn", str(path))  # the file does not fit small_cnn
    assert init == "trained from scratch: no local ImageNet weights"
