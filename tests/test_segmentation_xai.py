"""Segmentation explanations and their metrics (Hasany et al.): constructed models and maps, the
study :mod:`xaistudy.studies.segmentation_xai` and the chapter's page functions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from fabricate_folders import write_coco
from pytorch_grad_cam import HiResCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
from torch import nn

from xaistudy.chapters import segmentation_xai as ch
from xaistudy.chapters.segmentation_xai import SegmentationXaiParams
from xaistudy.chapters.segmentation_xai.claims import paper_order, peak_untestable
from xaistudy.chapters.segmentation_xai.paper import (
    PAPER,
    paper_table1,
    survey_mask_counts,
    survey_number,
    survey_thresholds,
)
from xaistudy.core.params import ParamError, build_params
from xaistudy.core.store import Store
from xaistudy.evaluate.segmentation_metrics import (
    binarise,
    dice,
    mask_image,
    metric_steps,
    saliency_ratio,
    share_inside,
)
from xaistudy.explain.rise import rise, rise_masks
from xaistudy.explain.segmentation import (
    SegXResCAM,
    border_band,
    explain_segmentation,
    map_diagnostics,
    minmax,
    pool_gradients,
    region_score,
    rise_curve,
    roi_window,
)
from xaistudy.models.classifiers import WeightsNotFoundError
from xaistudy.models.segmenters import (
    DATASET_TARGETS,
    Segmenter,
    build_deeplabv3,
    candidate_tiles,
    class_truth,
    deeplab_weights_file,
    explanation_tiles,
    he_segmentation_targets,
    segmentation_quality,
    unet_segmenter,
)
from xaistudy.stats.claims import VERDICTS
from xaistudy.studies import segmentation_xai as study

SIZE = 32


def local_segmenter(seed: int = 0) -> Segmenter:
    """A purely local model: logits = 1x1 conv of ReLU(3x3 conv(x)); layer '1' is the ReLU.

    The score over a region M depends only on the features within one pixel of M.
    """
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    with torch.no_grad():
        net[0].bias.fill_(0.5)  # features active everywhere
        net[2].weight.abs_()  # every feature adds to class 1
    return Segmenter(net, ("a", "b"), multilabel=True, bottleneck="1").eval()


class RegionModel(nn.Module):
    """Class-0 logit everywhere = 20 * (mean of the input over a fixed region R) - 5."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.register_buffer("region", region.float())
        self.conv = nn.Conv2d(3, 1, 1)  # a layer, unused by the score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = (x.mean(1) * self.region).sum((1, 2)) / self.region.sum()
        logit = (20 * mean - 5)[:, None, None, None].expand(-1, 1, *x.shape[-2:])
        return logit + 0 * self.conv(x)


# -- metrics --------------------------------------------------------------------------------
def test_dice_matches_hand_computation():
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, :2, :2] = True  # 4 pixels
    b[0, 1:3, 1:3] = True  # 4 pixels, overlap 1
    assert dice(a, b)[0] == pytest.approx(2 * 1 / 8)
    assert dice(a, a)[0] == 1.0
    assert dice(np.zeros_like(a), np.zeros_like(a))[0] == 1.0  # both empty agree
    assert dice(a, np.zeros_like(a))[0] == 0.0


def test_saliency_ratio_on_constructed_maps():
    sal = np.zeros((2, 8, 8), np.float32)
    sal[0, :4, :4] = 0.9  # 16 pixels above 0.1
    sal[0, 6, 6] = 0.05  # below the threshold
    sal[1, :, :] = 0.5  # all 64 pixels
    pred = np.zeros((2, 8, 8), bool)
    pred[0, :2, :4] = True  # 8 pixels
    pred[1, :4, :4] = True  # 16 pixels
    ratio = saliency_ratio(binarise(sal, 0.1), pred)
    np.testing.assert_allclose(ratio, [16 / 8, 64 / 16])
    assert np.isnan(saliency_ratio(binarise(sal, 0.1), np.zeros_like(pred))).all()


def test_binarise_and_mask_errors_are_one_line():
    with pytest.raises(ValueError, match="threshold must be in"):
        binarise(np.zeros((1, 2, 2)), 1.5)
    with pytest.raises(ValueError, match="keep must be"):
        mask_image(torch.zeros(1, 3, 4, 4), np.ones((1, 3, 3), bool))


def test_mask_image_fills_outside_keep():
    img = torch.rand(1, 3, 4, 4)
    keep = np.zeros((1, 4, 4), bool)
    keep[0, 0, 0] = True
    out = mask_image(img, keep, fill=1.0)
    assert torch.equal(out[0, :, 0, 0], img[0, :, 0, 0])
    assert (out[0, :, 1:, :] == 1).all()


def test_dice_explained_is_one_when_mask_keeps_whole_image():
    model = local_segmenter()
    x = torch.rand(2, 3, SIZE, SIZE)
    sal = np.ones((2, SIZE, SIZE), np.float32)
    steps = metric_steps(model, x, 1, sal, threshold=0.05)
    assert steps["prediction"].any(axis=(1, 2)).all()  # a non-trivial prediction
    np.testing.assert_array_equal(steps["dice_explained"], [1.0, 1.0])
    np.testing.assert_allclose(
        steps["saliency_ratio"], SIZE * SIZE / steps["prediction"].reshape(2, -1).sum(1)
    )


def test_dice_explained_matches_hand_computation_on_local_model():
    """Keep the left half: the masked prediction is recomputed by hand and compared."""
    model = local_segmenter()
    x = torch.rand(1, 3, SIZE, SIZE)
    sal = np.zeros((1, SIZE, SIZE), np.float32)
    sal[0, :, : SIZE // 2] = 1
    steps = metric_steps(model, x, 1, sal, threshold=0.5, fill=0.0)
    with torch.no_grad():
        pred = torch.sigmoid(model(x))[0, 1] > 0.5
        masked = x.clone()
        masked[..., SIZE // 2 :] = 0
        pred_masked = torch.sigmoid(model(masked))[0, 1] > 0.5
    inter = (pred & pred_masked).sum().item()
    expected = 2 * inter / (pred.sum().item() + pred_masked.sum().item())
    assert steps["dice_explained"][0] == pytest.approx(expected)
    assert steps["saliency_ratio"][0] == pytest.approx(SIZE * SIZE / 2 / pred.sum().item())


def test_share_inside():
    sal = np.zeros((1, 4, 4))
    sal[0, 0, 0], sal[0, 3, 3] = 3.0, 1.0
    m = np.zeros((1, 4, 4), bool)
    m[0, :2, :2] = True
    assert share_inside(sal, m)[0] == pytest.approx(0.75)
    assert np.isnan(share_inside(np.zeros((1, 4, 4)), m)[0])


# -- methods --------------------------------------------------------------------------------
def test_xres_pooling_against_hand_computation():
    g = torch.arange(16.0).reshape(1, 1, 4, 4)
    pooled = pool_gradients(g, 2, "max")
    expected = torch.tensor([[5.0, 5, 7, 7], [5, 5, 7, 7], [13, 13, 15, 15], [13, 13, 15, 15]])
    assert torch.equal(pooled[0, 0], expected)
    assert torch.equal(pool_gradients(g, 1), g)
    assert pool_gradients(g, 2, "avg")[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)


def test_seg_xres_cam_without_pooling_is_hirescam():
    model = local_segmenter()
    x = torch.rand(2, 3, SIZE, SIZE)
    m = np.zeros((SIZE, SIZE), np.float32)
    m[4:12, 4:12] = 1
    targets = [SemanticSegmentationTarget(1, m) for _ in range(2)]
    ours = SegXResCAM(model, [model.layer("1")], pool=1)(x, targets)
    ref = HiResCAM(model, [model.layer("1")])(x, targets)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_seg_xres_cam_matches_autograd():
    """Pool 2 (max): recomputed with autograd and torch pooling, independent of grad-cam."""
    model = local_segmenter(1)
    x = torch.rand(1, 3, SIZE, SIZE)
    m = torch.zeros(SIZE, SIZE)
    m[20:28, 2:10] = 1
    cam = explain_segmentation("seg-xres-cam", model, x, 1, m.numpy()[None], layer="1")
    a = torch.relu(model.net[0](x)).detach().requires_grad_(True)
    (model.net[2](a)[0, 1] * m).sum().backward()
    g = torch.nn.functional.max_pool2d(a.grad, 2)
    g = g.repeat_interleave(2, -1).repeat_interleave(2, -2)
    ref = torch.relu((g * a).sum(1))[0].detach().numpy()
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    np.testing.assert_allclose(cam[0], ref, atol=1e-4)


def test_xres_keeps_saliency_inside_region_where_grad_cam_spreads_it():
    model = local_segmenter()
    x = torch.rand(4, 3, SIZE, SIZE)
    m = np.zeros((4, SIZE, SIZE), bool)
    m[:, 2:10, 20:28] = True  # top right
    grad = explain_segmentation("seg-grad-cam", model, x, 1, m, layer="1")
    xres = explain_segmentation("seg-xres-cam", model, x, 1, m, layer="1", pool=2)
    window = np.zeros_like(m)
    window[:, 0:12, 18:30] = True  # M and the 2x2 pooling cells it touches
    share_grad, share_xres = share_inside(grad, window), share_inside(xres, window)
    assert (share_xres > 0.95).all()
    assert (share_grad < 0.5).all()
    assert (share_xres > share_grad + 0.4).all()


def test_rise_recovers_the_decisive_region():
    region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    region[4:14, 18:28] = True
    model = Segmenter(RegionModel(region), ("a",), multilabel=True, bottleneck="conv").eval()
    x = torch.full((1, 3, SIZE, SIZE), 0.6)
    sal = explain_segmentation("rise", model, x, 0, n_masks=300, batch_size=100, seed=0)
    inside, outside = sal[0][region.numpy()].mean(), sal[0][~region.numpy()].mean()
    assert inside > outside + 0.3
    again = explain_segmentation("rise", model, x, 0, n_masks=300, batch_size=100, seed=0)
    np.testing.assert_array_equal(sal, again)  # seeded: deterministic


@pytest.mark.parametrize("method", ["seg-grad-cam", "seg-eigen-cam", "seg-ablation-cam"])
def test_cams_are_maps_in_unit_range(method):
    model = local_segmenter()
    x = torch.rand(2, 3, SIZE, SIZE)
    sal = explain_segmentation(method, model, x, 1, layer="1")
    assert sal.shape == (2, SIZE, SIZE) and sal.dtype == np.float32
    assert sal.min() >= 0 and sal.max() <= 1 + 1e-6
    assert sal.max() > 0.99  # min-max scaled, not empty on this model


def test_bad_inputs_are_one_line_errors():
    model = local_segmenter()
    x = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="unknown method 'gradcam'"):
        explain_segmentation("gradcam", model, x, 1)
    with pytest.raises(ValueError, match="unknown class 'c'"):
        explain_segmentation("seg-grad-cam", model, x, "c", layer="1")
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        explain_segmentation("seg-grad-cam", model, x, 1, layer="nope")
    with pytest.raises(ValueError, match="regions must be"):
        explain_segmentation("seg-grad-cam", model, x, 1, np.ones((2, 4, 4)), layer="1")
    with pytest.raises(ValueError, match="inputs must be"):
        explain_segmentation("seg-grad-cam", model, x[0], 1, layer="1")
    with pytest.raises(ValueError, match="pool must be"):
        explain_segmentation("seg-xres-cam", model, x, 1, layer="1", pool=0)


def test_roi_window_finds_densest_square():
    pred = np.zeros((16, 16), bool)
    pred[10:14, 2:6] = True
    pred[0, 15] = True
    window = roi_window(pred, 4)
    assert window.sum() == 16 and (window == pred).sum() == 256 - 1
    with pytest.raises(ValueError, match="window size"):
        roi_window(pred, 32)


# -- the benchmark --------------------------------------------------------------------------
def test_he_targets_and_segmenter_prediction():
    batch = {
        "mask": torch.zeros(1, 1, 4, 4),
        "nuclei_type": torch.tensor([[[0, 1, 2, 0]] * 4]),
    }
    batch["mask"][0, 0, :2] = 1
    t = he_segmentation_targets(batch)
    assert t.shape == (1, 3, 4, 4)
    assert t[0, 0].sum() == 8 and t[0, 1].sum() == 4 and t[0, 2].sum() == 4
    model = unet_segmenter(base=4, depth=2)
    assert model.class_index("neoplastic") == 1
    pred = model.eval().predict(torch.rand(2, 3, 16, 16), "tumour")
    assert pred.shape == (2, 16, 16) and pred.dtype == torch.bool


def test_deeplab_weights_missing_is_one_line(tmp_path):
    name = deeplab_weights_file("deeplabv3_resnet101").name
    assert name.startswith("deeplabv3_resnet101_coco") and name.endswith(".pth")
    with pytest.raises(WeightsNotFoundError, match="DeepLabv3 weights not found") as err:
        build_deeplabv3("deeplabv3_resnet101", tmp_path / "absent.pth")
    assert "\n" not in str(err.value) and name in str(err.value)
    with pytest.raises(ValueError, match="unknown DeepLabv3"):
        deeplab_weights_file("deeplabv3_vgg")


# -- datasets: ground truth, tiles, quality, parameters ------------------------------------------
VOC = (
    "__background__",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def red_is_cat() -> Segmenter:
    """A 21-class softmax model: 'cat' where red exceeds green by > 0.3, else background."""
    conv = nn.Conv2d(3, len(VOC), 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(-10.0)
        conv.bias[0] = 0.0
        conv.weight[8, :, 0, 0] = torch.tensor([10.0, -10.0, 0.0])
        conv.bias[8] = -3.0
    return Segmenter(nn.Sequential(conv), VOC, multilabel=False, bottleneck="0").eval()


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    write_coco(root)
    return root


def test_class_truth_per_kind():
    batch = {
        "mask": torch.zeros(2, 1, 4, 4),
        "nuclei_type": torch.tensor([[[0, 1, 2, 0]] * 4] * 2),
        "label": torch.tensor([0, 1]),
    }
    batch["mask"][:, 0, 0] = 1
    assert class_truth(batch, "tumour").sum() == 8
    assert class_truth(batch, "neoplastic").sum() == 8
    assert class_truth(batch, "non-neoplastic").sum() == 8
    dog = class_truth(batch, "dog", ("cat", "dog"))  # only the sample labelled dog
    assert dog[0].sum() == 0 and dog[1].sum() == 4
    plane = class_truth(batch, "aeroplane", ("airplane", "cat"))  # VOC vs COCO spelling
    assert plane[0].sum() == 4 and plane[1].sum() == 0
    with pytest.raises(ValueError, match="class 'dog' is not among the dataset's classes"):
        class_truth(batch, "dog", ("cat",))


def test_tumour_tile_candidates_are_the_tumour_tiles(tmp_path):
    from xaistudy.data.datasets import get_dataset

    data = get_dataset("synthetic-he", "test", n=6, size=64, store=Store(tmp_path))
    assert candidate_tiles(data, "tumour-tiles", "neoplastic") == [1, 3, 5]


def test_coco_tiles_and_quality_with_a_colour_model(coco_root, tmp_path):
    model = red_is_cat()
    source = {"dataset": "coco", "data_root": coco_root, "data_options": {"min_area": 0.0}}
    store = Store(tmp_path)
    tiles = explanation_tiles(model, "cat", 2, size=64, store=store, device="cpu", **source)
    assert tiles["images"].shape == (2, 3, 64, 64) and len(tiles["index"]) == 2
    for img, truth in zip(tiles["images"], tiles["truth"], strict=True):
        pred = model.predict(img[None], "cat")[0].numpy()
        assert truth.any() and (pred & truth).sum() / (pred | truth).sum() > 0.9
    rows = segmentation_quality(model, n=3, size=64, store=store, **source)
    assert [r["class"] for r in rows] == ["cat"] and rows[0]["dice"] > 0.95
    with pytest.raises(ValueError, match=r"class 'dog' is not among the dataset's classes"):
        explanation_tiles(model, "dog", 1, size=64, store=store, device="cpu", **source)


def test_params_targets_fit_the_dataset(coco_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no torchvision weights cached here
    assert SegmentationXaiParams.UNET_TARGETS == DATASET_TARGETS
    for profile in ("smoke", "quick"):
        build_params(SegmentationXaiParams, profile)
    with pytest.raises(ParamError, match="DeepLabv3 weights not found: .*deeplabv3_resnet101_coco"):
        build_params(SegmentationXaiParams, "paper", {"data_root": str(coco_root)})
    weights = coco_root / "weights.pth"
    weights.write_bytes(b"0")  # only its existence is checked before the run
    paper = build_params(
        SegmentationXaiParams, "paper", {"data_root": str(coco_root), "weights": str(weights)}
    )
    assert (paper.model, paper.dataset, paper.target_class, paper.layers[0]) == (
        "deeplabv3_resnet101",
        "coco",
        "cat",
        "bottleneck",
    )
    assert paper.rise_masks == [100, 500, 1000, 2000] and paper.fill == 0.0
    assert paper.cam_thresholds == [0.05, 0.1] and paper.rise_thresholds == [0.2, 0.4]
    bad = [
        (
            {"dataset": "camelyon16", "target_class": "neoplastic"},
            "not annotated in dataset camelyon16: use tumour",
        ),
        (
            {"dataset": "pannuke", "target_class": "tumour"},
            "not annotated in dataset pannuke: use neoplastic or non-neoplastic",
        ),
        (
            {"dataset": "coco", "model": "deeplabv3_resnet50", "target_class": "tumour"},
            "target_class tumour is not a COCO class",
        ),
        ({"dataset": "coco"}, "does not segment dataset coco"),
        ({"target_class": "cat"}, "not annotated in dataset synthetic-he"),
    ]
    for overrides, match in bad:
        with pytest.raises(ParamError, match=match) as err:
            build_params(SegmentationXaiParams, "smoke", overrides)
        assert "\n" not in str(err.value)
    with pytest.raises(ParamError, match="dataset 'coco': missing annotation file"):
        build_params(SegmentationXaiParams, "paper", {"data_root": str(coco_root / "annotations")})


# -- what the chapter adds: zero ablation, RISE in one pass, map checks, empty maps ----------
def linear_segmenter() -> Segmenter:
    """logits = 1x1 conv (1 class) of a 1x1 conv with 4 channels and no ReLU: layer '0' has
    negative outputs, where pytorch-grad-cam's default ablation writes min - 1e7."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 1, 1))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([1.0, -0.5, 2.0, 0.25]).view(1, 4, 1, 1))
        net[1].bias.fill_(3.0)
    return Segmenter(net, ("a",), multilabel=True, bottleneck="0").eval()


def test_seg_ablation_cam_zeroes_the_channel_hand_computed():
    model = linear_segmenter()
    x = torch.rand(1, 3, 8, 8)
    region = np.ones((1, 8, 8), np.float32)
    with torch.no_grad():
        a = model.net[0](x)
        assert a.min() < 0  # the case the default ablation layer gets wrong
        score = model.net[1](a).sum()
        weights = []
        for k in range(4):
            ablated = a.clone()
            ablated[:, k] = 0
            weights.append(((score - model.net[1](ablated).sum()) / score).item())
        ref = torch.relu((torch.tensor(weights).view(1, 4, 1, 1) * a).sum(1))[0].numpy()
    sal = explain_segmentation("seg-ablation-cam", model, x, 0, region, layer="0")
    np.testing.assert_allclose(sal[0], minmax(ref), atol=1e-4)


def test_rise_curve_equals_rise_with_the_first_masks():
    region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    region[4:14, 18:28] = True
    model = Segmenter(RegionModel(region), ("a",), multilabel=True, bottleneck="conv").eval()
    x = torch.rand(3, SIZE, SIZE)
    m = region.numpy().astype(np.float32)
    masks = rise_masks(40, SIZE, seed=5)
    curve = rise_curve(model, x, 0, m, masks, [10, 40], batch_size=7, baseline=1.0)
    assert curve["coverage"].shape == (2, SIZE, SIZE) and curve["seconds"][1] >= curve["seconds"][0]
    for k, n in enumerate([10, 40]):
        for est, norm in (("coverage", "coverage"), ("p", "p")):
            ref = rise(
                region_score(model, 0, m),
                x[None],
                n_masks=n,
                masks=masks[:n],
                baseline=1.0,
                normalise=norm,
                batch_size=7,
            )[0]
            # float32 sums in another batch order: equal to 1e-3 of the [0, 1] range
            np.testing.assert_allclose(curve[est][k], minmax(ref), atol=1e-3)
    with pytest.raises(ValueError, match="checkpoints must be in 1..40"):
        rise_curve(model, x, 0, m, masks, [50])
    with pytest.raises(ValueError, match="masks must be"):
        rise(region_score(model, 0, m), x[None], n_masks=10, masks=masks)


def test_border_band_and_map_diagnostics_hand_computed():
    band = border_band((8, 8), 2)
    assert band.sum() == 64 - 16 and not band[2:6, 2:6].any()
    with pytest.raises(ValueError, match="border width"):
        border_band((8, 8), 4)
    sal = np.zeros((3, 8, 8))
    sal[1, 0, :] = 1.0  # all mass on the top edge
    sal[2, 3, 3], sal[2, 0, 0] = 3.0, 1.0  # 3/4 inside the prediction, 1/4 in the band
    pred = np.zeros((3, 8, 8), bool)
    pred[:, 2:6, 2:6] = True
    d = map_diagnostics(sal, pred, 2)
    np.testing.assert_array_equal(d["empty"], [True, False, False])
    np.testing.assert_array_equal(d["border_map"], [False, True, False])
    assert d["border_share"][2] == pytest.approx(0.25) and np.isnan(d["border_share"][0])
    assert d["inside_share"][2] == pytest.approx(0.75)
    np.testing.assert_array_equal(d["background_map"], [False, True, False])  # 0 < 16/64


def test_an_empty_map_cannot_win_the_saliency_ratio():
    model = local_segmenter()
    x = torch.rand(2, 3, SIZE, SIZE)
    sal = np.zeros((2, SIZE, SIZE), np.float32)
    sal[1, :4, :4] = 1.0
    steps = metric_steps(model, x, 1, sal, threshold=0.1)
    pred = steps["prediction"].reshape(2, -1).sum(1)
    np.testing.assert_array_equal(steps["empty"], [True, False])
    assert steps["saliency_ratio"][0] == pytest.approx(SIZE * SIZE / pred[0])  # worst: all
    assert steps["saliency_ratio"][1] == pytest.approx(16 / pred[1])


def test_tiles_without_a_predicted_region_are_flagged_with_the_class_name(tmp_path, caplog):
    net = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.fill_(-10.0)  # predicts nothing
    model = Segmenter(net, ("tumour", "neoplastic", "non-neoplastic"), True, "bottleneck")
    tiles = explanation_tiles(model, 1, 2, size=64, store=Store(tmp_path), device="cpu")
    assert not tiles["predicted"].any()
    assert "'neoplastic'" in caplog.text


def test_paper_record_and_orders():
    t1 = paper_table1()
    assert len(t1) == 16 and t1["dice_explained"].max() == pytest.approx(0.948)
    order = paper_order("dice_explained", 2000, "max")
    assert order == ["RISE", "Seg-Ablation-CAM", "Seg-XRes-CAM", "Seg-Grad-CAM", "Seg-Eigen-CAM"]
    assert paper_order("saliency_ratio", 2000, "min")[0] == "Seg-XRes-CAM"
    assert paper_order("seconds", 2000, "min")[-1] == "RISE"
    assert paper_order("seconds", 1000, "min")[-1] == "Seg-Ablation-CAM"  # 163.4 > 160.8
    # the survey's cost per forward: 163.4 s over 2048 channels + 2, 16.1 s over 100 masks
    f = study.forward_passes("seg-ablation-cam", int(PAPER.number("bottleneck_channels")))
    assert 1000 * 163.4 / f == pytest.approx(79.7, abs=0.1)
    assert study.forward_passes("rise", n_masks=100) == 100


def test_the_paper_profile_takes_the_surveys_settings_from_its_table():
    assert survey_thresholds(rise=False) == [0.05, 0.1]
    assert survey_thresholds(rise=True) == [0.2, 0.4]
    assert survey_mask_counts() == [100, 500, 1000, 2000]
    paper = SegmentationXaiParams.PROFILES["paper"]
    assert paper["cam_thresholds"] == survey_thresholds(rise=False)
    assert paper["rise_thresholds"] == survey_thresholds(rise=True)
    assert paper["rise_masks"] == survey_mask_counts()
    assert SegmentationXaiParams.PROFILES["gpu"]["rise_masks"] == survey_mask_counts()


def test_warm_seconds_is_the_median_after_warmup():
    calls = []
    times = iter([0.0, 5.0, 0.2, 0.1])

    def fn():
        calls.append(1)
        import time

        time.sleep(next(times) / 100)

    sec = study.warm_seconds(fn, repeats=3, warmup=1)
    assert len(calls) == 4 and 0.0015 < sec < 0.01  # the 5-unit warm-up call is not counted


def test_params_layers_and_thresholds_are_checked():
    with pytest.raises(ParamError, match="layers must be distinct"):
        build_params(SegmentationXaiParams, "smoke", {"layers": ["bottleneck", "bottleneck"]})
    with pytest.raises(ParamError, match="border_px must be below"):
        build_params(SegmentationXaiParams, "smoke", {"border_px": 40})
    p = build_params(SegmentationXaiParams, "quick", {"rise_masks": [500, 100]})
    assert p.rise_masks == [100, 500] and p.seeds == [0, 1, 2]


@pytest.mark.slow
def test_smoke_run_writes_claims_checks_and_timings(smoke_outputs):
    out = smoke_outputs("segmentation_xai")
    claims = pd.read_csv(out / "tables" / "claims.csv")
    ids = set(claims["claim_id"])
    for layer in ("bottleneck", "up_conv.0"):
        for what in ("dice_order", "ratio_order", "time_order"):
            assert f"{what}.{layer}" in ids
    assert {"rise.ratio_falls_with_masks", "rise.coverage_beats_petsiuk"} <= ids
    assert claims["verdict"].isin(list(VERDICTS)).all()
    # the Saliency Ratio is the map's area: against the area-matched control it cannot be more
    # than uninformative, whatever the maps show
    ratio = claims[claims["claim_id"].str.startswith("ratio")]
    assert not ratio["verdict"].isin(["reproduced", "contradicted"]).any()
    judged = claims[claims["verdict"] != "not testable here"]  # 500 masks are not run at smoke
    assert (judged.loc[judged["claim_id"].str.startswith("rise."), "n_units"] > 0).all()
    checks = pd.read_csv(out / "tables" / "map_checks.csv")
    assert {"empty_maps", "border_maps", "background_maps"} <= set(checks.columns)
    assert len(checks) == 2 * 4 + 1
    timing = pd.read_csv(out / "tables" / "timing.csv")
    assert {"median_seconds", "ms_per_forward", "survey_ms_per_forward"} <= set(timing.columns)
    assert (out / "figures" / "fig2_methods.png").exists()


def test_claims_quote_the_nearest_survey_threshold_for_other_thresholds():
    survey = PAPER.number("t1.seg-grad-cam.0.05.dice")
    assert survey_number("seg-grad-cam", 0.05, None, "dice") == survey
    other = survey_number("seg-grad-cam", 0.3, None, "dice")
    assert other == PAPER.number("t1.seg-grad-cam.0.1.dice") + " (the survey's threshold 0.1)"
    assert survey_number("rise", 0.25, 100, "ratio").endswith("(the survey's threshold 0.2)")


def test_ablated_channel_count_is_pytorch_grad_cams():
    from xaistudy.explain.segmentation import ZeroAblationLayer, ablated_channels

    acts = np.random.default_rng(0).random((16, 4, 4)).astype(np.float32)
    for ratio in (1.0, 0.5, 0.25, 0.1):
        picked = ZeroAblationLayer().activations_to_be_ablated(acts, ratio)
        assert len(set(picked.tolist())) == len(picked) == ablated_channels(16, ratio)
    with pytest.raises(ValueError, match=r"ablation ratio must be 1 \(every channel\) or in"):
        ablated_channels(16, 0.7)


# -- the study at smoke size, and the chapter interface on it -------------------------------------
@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """The study once at the smoke profile, in its own cache (returned with the result)."""
    store = Store(tmp_path_factory.mktemp("segmentation-xai-cache"))
    return study.run(build_params(SegmentationXaiParams, "smoke"), store), store


def test_the_study_result_is_frozen_and_complete(smoke_study):
    res, _ = smoke_study
    p, one = res.params, res.seeds[0]
    assert isinstance(res, study.Result) and [s.seed for s in res.seeds] == p.seeds
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.scores = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.maps = {}
    cams = {(layer, m) for layer in p.layers for m in study.CAMS}
    rise = {(study.RISE_LAYER, f"rise-{n}") for n in p.rise_masks}
    assert set(one.maps) == cams | rise | {(study.RISE_LAYER, "reference")}
    assert set(one.seconds) == cams | rise and set(one.rise_petsiuk) == set(p.rise_masks)
    assert set(one.roi_maps) == {(layer, m) for layer in p.layers for m in study.ROI_METHODS}
    n = len(one.maps[(p.layers[0], "seg-grad-cam")])
    per_tile = len(cams) * len(p.cam_thresholds) + len(rise) * len(p.rise_thresholds)
    assert len(res.scores) == n * per_tile and set(res.channels) == set(p.layers)
    assert res.scores[["dice_explained", "saliency_ratio"]].notna().all().all()


def test_the_method_once_cell_gives_the_studys_numbers(smoke_study):
    """The notebook's worked example: the model loaded from the cache, its tiles, Seg-Grad-CAM
    from the library and the metric give the study's maps and scores."""
    res, store = smoke_study
    p, one = res.params, res.seeds[0]
    model, _ = study.load_model(p, one.seed, store)  # from the cache
    for a, b in zip(model.state_dict().values(), one.model.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b.cpu())
    tiles = study.explained_tiles(p, model, one.seed, store)
    np.testing.assert_array_equal(tiles["index"], one.tiles["index"])
    layer, thr = p.layers[0], p.cam_thresholds[0]
    grad = one.maps[(layer, "seg-grad-cam")]
    x = tiles["images"][: len(grad)]
    again = explain_segmentation("seg-grad-cam", model, x, p.target_class, layer=layer)
    np.testing.assert_allclose(again, grad, atol=1e-5)
    steps = metric_steps(model, x, p.target_class, grad, thr, p.fill)
    s = res.scores
    rows = s[(s["layer"] == layer) & (s["method"] == "Seg-Grad-CAM") & (s["threshold"] == thr)]
    np.testing.assert_allclose(rows["dice_explained"], steps["dice_explained"])
    np.testing.assert_allclose(rows["saliency_ratio"], steps["saliency_ratio"])


def test_the_chapter_interface_on_a_smoke_study(smoke_study):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xaistudy.chapters.segmentation_xai.text import diagnostics_summary, timing_note

    res, _ = smoke_study
    assert callable(ch.claims) and callable(ch.tables) and callable(ch.figures)
    assert ch.CHAPTER.compute is study.run
    tables = ch.tables(res)
    assert list(tables) == ["segmenter_quality", "map_checks", "rise_convergence", "table1",
                            "timing", "batching", "roi_locality", "paper_settings",
                            "paper_vs_book_table1"]  # fmt: skip
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    t1 = tables["table1"]
    assert (t1["dice_explained_low"] <= t1["dice_explained"] + 1e-12).all()
    assert len(tables["map_checks"]) == len(res.params.layers) * len(study.CAMS) + 1
    rows = ch.claims(res, "smoke")
    assert rows and all(isinstance(r, dict) and r["profile"] == "smoke" for r in rows)
    ids = [r["claim_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 9 * len(res.params.layers) + 5
    # the control keeps every map's area: its Saliency Ratio is the map's own, so a ratio
    # claim can never be more than uninformative
    keys = ["seed", "unit", "layer", "method", "threshold", "n_masks"]
    both = res.scores.merge(res.controls, on=keys, suffixes=("", "_control"))
    assert len(both) == len(res.controls) > 0
    np.testing.assert_allclose(both["saliency_ratio_control"], both["saliency_ratio"])
    for r in rows:
        if r["claim_id"].startswith("ratio.") or r["claim_id"] == "rise.ratio_falls_with_masks":
            assert r["controls"] == study.CONTROL
            assert r["verdict"] in ("uninformative", "inconclusive", "not testable here")
    # the RISE trend's control is scored at the threshold the trend is read at, the highest
    p = res.params
    lo, hi = p.rise_thresholds[0], p.rise_thresholds[-1]
    n_lo, n_hi = p.rise_masks[0], p.rise_masks[-1]
    c = res.controls[res.controls["layer"] == study.RISE_LAYER]
    assert set(zip(c["threshold"], c["n_masks"], strict=True)) == {
        (t, n) for t in (lo, hi) for n in p.rise_masks
    }
    at_hi = c[c["threshold"] == hi].pivot_table(
        index=["seed", "unit"], columns="n_masks", values="dice_explained"
    )
    trend = {r["claim_id"]: r for r in rows}["rise.dice_falls_with_masks"]
    assert trend["controls"] == study.CONTROL
    assert trend["control_value"] == f"{(at_hi[n_hi] - at_hi[n_lo]).mean():.4g}"
    figures = ch.figures(res)
    assert list(figures) == ["fig2_methods", "fig3_rise_masks", "rise_convergence",
                             "fig4_metric_procedure"]  # fmt: skip
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    plt.close("all")
    assert list(ch.figures(res, only=["rise_convergence"])) == ["rise_convergence"]
    plt.close("all")
    with pytest.raises(KeyError, match="no figure named"):
        ch.figures(res, only=["fig5"])
    assert "Seg-Eigen-CAM" in diagnostics_summary(res) and res.device in timing_note(res)


def test_background_and_rise_count_rows_by_hand():
    diag = pd.DataFrame({
        "seed": 0, "unit": [1, 1, 1, 1], "layer": "bottleneck",
        "method": ["Seg-Eigen-CAM", "Seg-Grad-CAM", "Seg-XRes-CAM", "Seg-Ablation-CAM"],
        "prediction_share": 0.3, "inside_share": [0.1, 0.6, 0.5, 0.7],
    })  # fmt: skip
    rows = study.background_rows(diag, "bottleneck")
    # Eigen: 0.3 - 0.1 = 0.2; the others 0.3 - (0.6, 0.5, 0.7): median -0.3
    assert rows["value"].tolist() == pytest.approx([0.5])
    params = build_params(SegmentationXaiParams, "quick")
    thr = params.rise_thresholds[0]
    scores = pd.DataFrame({
        "seed": 0, "unit": 3, "layer": study.RISE_LAYER, "threshold": thr,
        "n_masks": [100, 500, 1000], "dice_explained": [0.90, 0.95, 0.93],
    })  # fmt: skip
    peak = study.rise_count_rows(scores, params, 500, [100, 1000])
    assert sorted(peak["value"].round(6)) == [0.02, 0.05] and set(peak["code"]) == {0, 1}
    assert study.rise_count_rows(scores, params, 500, [2000]).empty  # a count the run lacks


def test_rise_trend_rows_and_control_thresholds_read_the_highest_threshold():
    params = build_params(SegmentationXaiParams, "quick")
    assert params.rise_thresholds == [0.2, 0.4]
    rows = pd.DataFrame({
        "seed": 0, "unit": 3, "layer": [study.RISE_LAYER] * 4 + ["bottleneck"],
        "threshold": [0.2, 0.2, 0.4, 0.4, 0.4], "n_masks": [100, 1000, 100, 1000, None],
        "dice_explained": [0.9, 0.8, 0.7, 0.4, 0.1],
    })  # fmt: skip
    trend = study.rise_trend_rows(rows, params, "dice_explained")
    assert trend["method"].tolist() == ["100", "1000"]
    assert trend["value"].tolist() == [0.7, 0.4]  # the 0.4 rows, not the 0.2 ones nor the CAM
    from xaistudy.studies.segmentation_xai.rows import control_thresholds

    assert control_thresholds(params, rise=True) == [0.2, 0.4]
    assert control_thresholds(params, rise=False) == [params.cam_thresholds[0]] == [0.05]
    one = build_params(SegmentationXaiParams, "quick", {"rise_thresholds": [0.3]})
    assert control_thresholds(one, rise=True) == [0.3]


def test_the_500_mask_peak_says_what_it_needs():
    quick = build_params(SegmentationXaiParams, "quick")
    assert peak_untestable(quick) == ""  # 100, 250, 500 and 1000 masks at threshold 0.2
    smoke = build_params(SegmentationXaiParams, "smoke")
    assert peak_untestable(smoke) == (
        "this run runs RISE at 10, 20 masks; the survey's 500-mask peak needs 500 and another "
        "of its counts (100, 1000, 2000): -p rise_masks '[10, 20, 100, 500]'"
    )
    alone = build_params(SegmentationXaiParams, "quick", {"rise_masks": [500]})
    assert peak_untestable(alone).endswith("-p rise_masks '[100, 500]'")
    # Table 1's peak is at 0.2; at 0.4 its best count is 100 (0.853 against 0.766 at 500)
    high = build_params(SegmentationXaiParams, "quick", {"rise_thresholds": [0.4]})
    assert peak_untestable(high) == (
        "the lowest RISE threshold is 0.4, and Table 1 has the peak at 0.2: -p rise_thresholds "
        "'[0.2, 0.4]'"
    )


def test_quick_judges_every_rise_claim_on_twelve_tiles_per_seed():
    p = build_params(SegmentationXaiParams, "quick")
    assert min(p.n_images, p.n_convergence) >= 12 and len(p.seeds) >= 3
    assert p.rise_reference >= 500  # the reference at least as many masks as the survey's peak
