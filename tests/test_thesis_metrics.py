"""The thesis_metrics chapter: tendencies, overlays, maps, tables and parameters."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xaistudy.evaluate import quality as q
from xaistudy.evaluate import tendencies as tend
from xaistudy.models.thesis_cnn import ThesisCNN
from xaistudy.params import ParamError, ThesisMetricsParams, build_params


# -- tendencies (Table 5) -------------------------------------------------------------------
def test_tendency_cases_and_threshold_boundary():
    assert tend.tendency(True, 0.6) == "correct, high probability"
    assert tend.tendency(True, 0.59) == "correct, low probability"
    assert tend.tendency(False, 0.95) == "incorrect, high probability"
    assert tend.tendency(False, 0.2) == "incorrect, low probability"
    with pytest.raises(ValueError, match="probability"):
        tend.tendency(True, 1.5)


def test_tendency_table_and_examples():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7], [0.45, 0.55], [0.8, 0.2], [0.2, 0.8]])
    labels = np.array([0, 0, 0, 0, 0, 1])
    table = tend.tendency_table(probs, labels, ["a", "b"])
    assert list(table["tendency"]) == [
        "correct, high probability",
        "correct, low probability",
        "incorrect, high probability",
        "incorrect, low probability",
        "correct, high probability",
        "correct, high probability",
    ]
    assert table.loc[2, "probability"] == pytest.approx(0.7)
    ex = tend.pick_examples(table)
    pick = ex.set_index(["tendency", "true"])["image"]
    # the most confident correct "a" is image 0 (0.9 beats 0.8)
    assert pick[("correct, high probability", "a")] == 0
    assert pick[("correct, high probability", "b")] == 5
    assert len(ex) == 5 and list(ex["tendency"].cat.categories) == list(tend.TENDENCIES)


def test_overlay_colours():
    image = np.zeros((2, 2, 3), np.uint8)
    m = np.array([[1, 1], [0, 0]], bool)
    tumour = np.array([[1, 0], [1, 0]], bool)
    non_tumour = np.array([[0, 0], [0, 1]], bool)
    out = tend.overlay(image, m, tumour, non_tumour, alpha=1.0)
    colours = {
        k: (np.asarray(v) * 255).round().astype(np.uint8) for k, v in tend.OVERLAY_COLORS.items()
    }
    np.testing.assert_array_equal(out[0, 0], colours["overlap"])  # map and tumour: yellow
    np.testing.assert_array_equal(out[0, 1], colours["map"])  # map only: green
    np.testing.assert_array_equal(out[1, 0], colours["tumour"])  # tumour only: red
    np.testing.assert_array_equal(out[1, 1], colours["non-tumour"])  # blue
    with pytest.raises(ValueError, match="shape"):
        tend.overlay(image, m[:1], tumour, non_tumour)


# -- maps on a model whose decisive region is known ------------------------------------------
class TopLeft(nn.Module):
    """Class 1 logit = sum of the top-left 8x8 block of the red channel; class 0 = minus it."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        s = self.scale * x[:, 0, :8, :8].sum(dim=(1, 2))
        return torch.stack([-s, s], dim=1)


def test_integrated_gradients_map_lies_on_the_decisive_region():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 0.5 + 0.5
    maps = q.interpretation_maps("integrated_gradients", TopLeft(), x, [1, 1], n_steps=8)
    assert maps.shape == (2, 32, 32)
    assert maps.min() >= 0 and maps.max() == pytest.approx(1.0)
    binm = q.binarize(maps)
    truth = np.zeros((32, 32), bool)
    truth[:8, :8] = True
    for b in binm:  # everything highlighted lies in the block: precision 1
        assert q.precision(b, truth, "binary") == 1.0
        assert q.recall(b, truth, "binary") > 0.5


def test_gradcam_maps_on_the_thesis_cnn_and_errors():
    model = ThesisCNN(input_size=64, fc_width=64).eval()
    x = torch.rand(2, 3, 64, 64)
    maps = q.interpretation_maps("gradcam", model, x, [0, 3], layer=model.last_conv)
    assert maps.shape == (2, 64, 64) and 0 <= maps.min() and maps.max() <= 1
    with pytest.raises(ValueError, match="layer"):
        q.interpretation_maps("gradcam", model, x, [0, 3])
    with pytest.raises(ValueError, match="method must be one of"):
        q.interpretation_maps("occlusion", model, x, [0, 3])


def test_lime_kept_superpixels_become_one():
    # 4 x 4 blocks of distinct flat colours on a 0-255 scale, so that lime's quickshift
    # (max_dist 200) finds the blocks as superpixels
    rng = np.random.default_rng(0)
    blocks = rng.random((3, 4, 4)).repeat(8, 1).repeat(8, 2) * 255
    x = torch.from_numpy(blocks).float()[None]
    maps = q.interpretation_maps("lime", TopLeft(), x, [1], num_samples=60, num_features=3)
    assert set(np.unique(maps).tolist()) == {0.0, 1.0}
    assert maps[0, :8, :8].mean() > 0.5  # the decisive block is kept
    assert 0 < maps.mean() < 0.5  # only a few superpixels are kept


# -- tables ---------------------------------------------------------------------------------
def test_summarise_means_cis_and_degenerate_counts():
    rows = pd.DataFrame(
        {
            "method": ["a"] * 4 + ["b"] * 2,
            "degenerate": [True, False, False, False, True, True],
            **{m: [0.0, 1.0, 1.0, 0.0, 0.5, 0.5] for m in q.METRICS},
        }
    )
    out = q.summarise(rows, ["method"], n_boot=200, seed=0)
    a = out[(out["method"] == "a") & (out["metric"] == "iou")].iloc[0]
    assert a["mean"] == pytest.approx(0.5) and a["n"] == 4 and a["n_degenerate"] == 1
    assert 0.0 <= a["ci_low"] <= 0.5 <= a["ci_high"] <= 1.0
    b = out[(out["method"] == "b") & (out["metric"] == "f1")].iloc[0]
    assert b["ci_low"] == b["ci_high"] == 0.5
    assert out.equals(q.summarise(rows, ["method"], n_boot=200, seed=0))  # seeded
    rows.loc[0, "iou"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        q.summarise(rows, ["method"])


# -- parameters -----------------------------------------------------------------------------
def test_profiles_validate_and_paper_is_the_thesis():
    smoke = build_params(ThesisMetricsParams, "smoke")
    quick = build_params(ThesisMetricsParams, "quick")
    paper = build_params(ThesisMetricsParams, "paper")
    assert smoke.tile_size == 64 and quick.average == "macro"
    assert (paper.tile_size, paper.fc_width, paper.ig_steps, paper.nt_steps) == (
        256,
        2048,
        100,
        100,
    )
    assert (paper.map_threshold, paper.mask_threshold, paper.prob_threshold) == (0.3, 0.5, 0.6)
    assert (paper.lime_samples, paper.lime_features, paper.unet_lr) == (500, 3, 1e-4)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"average": "micro"}, "average"),
        ({"augment_classes": "R1,R9"}, "augment_classes"),
        ({"tile_size": 32}, "tile_size"),
        ({"spearman_on": "ranks"}, "spearman_on"),
    ],
)
def test_bad_parameters_are_refused(overrides, expected):
    with pytest.raises(ParamError, match=expected):
        build_params(ThesisMetricsParams, "quick", overrides)


# -- figures --------------------------------------------------------------------------------
def test_tendency_and_violin_figures():
    import matplotlib

    matplotlib.use("Agg")
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    table = tend.tendency_table(probs, np.array([0, 0, 1]), ["a", "b"])
    examples = tend.pick_examples(table)
    images = np.zeros((3, 8, 8, 3), np.uint8)
    maps = {"M1": np.ones((3, 8, 8)), "M2": np.zeros((3, 8, 8))}
    masks = np.zeros((3, 8, 8), bool)
    fig = tend.tendency_figure(examples, images, maps, masks, masks, "correct, high probability")
    assert len(fig.axes) == (1 + len(maps)) * 2  # image + one row per method, two classes
    empty = tend.tendency_figure(examples, images, maps, masks, masks, "incorrect, low probability")
    assert "no test image" in empty.axes[0].texts[0].get_text()
    rows = pd.DataFrame(
        {
            "method": ["m"] * 6,
            "ground_truth": ["g"] * 6,
            "mask_type": ["t"] * 6,
            "tendency": [tend.TENDENCIES[0]] * 3 + [tend.TENDENCIES[1]] * 3,
            "iou": np.linspace(0, 1, 6),
        }
    )
    fig = tend.violin_figure(rows, "iou", "IoU", {"m": "M"}, [("g", "t")], ["t (g)"])
    assert fig.axes[0].get_ylabel() == "IoU" and fig.axes[0].get_title() == "t (g)"
