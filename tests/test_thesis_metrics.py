"""The thesis_metrics study and chapter: tendencies, overlays, maps, Table 6, claims, parameters
and the chapter interface on a smoke-size study."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from fabricate_nuclei import (
    GRADES,
    balanced_counts,
    write_diagset_blobs,
    write_pannuke,
)
from torch import nn

from xaistudy.app import cli
from xaistudy.chapters import thesis_metrics as tm
from xaistudy.chapters.thesis_metrics import ThesisMetricsParams
from xaistudy.chapters.thesis_metrics.paper import (
    PAPER,
    thesis_means,
    thesis_order,
    thesis_table6,
)
from xaistudy.core.params import ParamError, build_params
from xaistudy.core.store import Store
from xaistudy.data import pannuke as pk
from xaistudy.data.datasets import ArrayDataset
from xaistudy.evaluate import quality as q
from xaistudy.evaluate import tendencies as tend
from xaistudy.models.thesis_cnn import ThesisCNN, rotated_dataset, rotation_balanced_indices
from xaistudy.stats.bootstrap import bootstrap_draws, percentile_interval
from xaistudy.studies import thesis_metrics as study


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


# -- Table 6 --------------------------------------------------------------------------------
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


def test_table6_intervals_are_the_books_bootstrap_over_seeds_then_tiles():
    rng = np.random.default_rng(1)
    rows = pd.DataFrame(
        {
            "seed": np.repeat([0, 1, 2], 5),
            "unit": np.tile(np.arange(5), 3),
            "method": "m",
            "degenerate": False,
            **{m: rng.random(15) for m in q.METRICS},
        }
    )
    rows.loc[3, "spearman"] = np.nan  # a NaN score is left out of its draw's mean
    out = q.summarise(rows, ["method"], n_boot=300, seed=4, skip_nan=True).set_index("metric")
    stats = [lambda r, m=m: float(np.nanmean(r[m].to_numpy())) for m in q.METRICS]
    draws = bootstrap_draws(rows, stats, n_boot=300, rng_seed=4)
    for k, metric in enumerate(q.METRICS):
        low, high = percentile_interval(draws[:, k])
        assert out.loc[metric, ["ci_low", "ci_high"]].tolist() == pytest.approx([low, high])
    assert out.loc["spearman", "n_nan"] == 1 and out.loc["spearman", "n"] == 14
    # seeds drawn first: the interval is wider than resampling the 15 tiles as one sample
    pooled = q.summarise(rows.assign(seed=0), ["method"], n_boot=300, seed=4, skip_nan=True)
    pooled = pooled.set_index("metric")
    assert (out["ci_high"] - out["ci_low"]).sum() > (pooled["ci_high"] - pooled["ci_low"]).sum()


# -- parameters -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    """Mini DiagSet-A (blobs, 256 px patches, five scans) and PanNuke (64 px) folders."""
    root = tmp_path_factory.mktemp("thesis-data")
    counts = {}
    for scan in ("s1", "s2", "s3", "s4", "s5"):
        counts[scan] = {**balanced_counts(2), "R1": 1, "BG": 1}
    partitions = {"train": ["s1", "s2", "s3"], "validation": ["s4"], "test": ["s5"]}
    write_diagset_blobs(root / "diagset", counts, partitions, side=256)
    write_pannuke(root / "pannuke", (4, 3, 3), side=64)
    return root


def test_profiles_validate_and_paper_is_the_thesis(fabricated):
    smoke = build_params(ThesisMetricsParams, "smoke")
    quick = build_params(ThesisMetricsParams, "quick")
    roots = {
        "data_root": str(fabricated / "diagset"),
        "nuclei_data_root": str(fabricated / "pannuke"),
    }
    paper = build_params(ThesisMetricsParams, "paper", roots)
    assert smoke.tile_size == 64 and quick.average == "thesis" and quick.seeds == [0, 1, 2]
    assert paper.unet_arch == "thesis" and paper.unet_base == 32
    assert quick.unet_arch == "textbook"  # the appendix UNET learned no tumour mask at quick size
    assert (quick.dataset, quick.nuclei_dataset) == ("synthetic-grading", "synthetic-he")
    assert (paper.tile_size, paper.fc_width, paper.ig_steps, paper.nt_steps) == (
        256,
        2048,
        100,
        50,  # the thesis's NoiseTunnel ran captum's default of 50 IG steps
    )
    assert (paper.map_threshold, paper.mask_threshold, paper.prob_threshold) == (0.3, 0.5, 0.6)
    assert (paper.lime_samples, paper.lime_features, paper.unet_lr) == (500, 3, 1e-4)
    # Table 1 and Table 2: DiagSet-A patches; PanNuke folds 1+2 (5179) train, fold 3 (2722)
    assert (paper.dataset, paper.nuclei_dataset) == ("diagset", "pannuke")
    assert (paper.n_train_per_class, paper.n_val_per_class, paper.n_test_per_class) == (
        8776,
        3510,
        5266,
    )
    assert paper.augment_classes == "R1,R2,R5"
    assert pk.parse_folds(paper.nuclei_data_options["folds"]) == {
        "train": (1, 2),
        "val": (3,),
        "test": (3,),
    }
    assert (paper.he_n_train, paper.he_n_val) == (5179, 2722)
    assert (paper.cnn_epochs, paper.batch_size, paper.cnn_lr, paper.cnn_patience) == (
        50,
        64,
        1e-3,
        5,
    )
    assert (paper.unet_epochs, paper.unet_batch_size, paper.unet_patience) == (124, 1, 50)


def test_paper_profile_without_data_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XAISTUDY_DATA", str(tmp_path / "nothing"))
    out = tmp_path / "out"
    assert cli.main(["run", "thesis_metrics", "--profile", "paper", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dataset 'diagset'" in err and "does not exist" in err
    assert not out.exists()
    args = ["run", "thesis_metrics", "-p", "nuclei_dataset", "pannuke", "--out", str(out)]
    assert cli.main([*args, "-p", "nuclei_data_options", '{"fold": 1}']) == 2
    assert "dataset 'pannuke' has no option 'fold'" in capsys.readouterr().err


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


# -- Table 1 with real class counts ---------------------------------------------------------
def test_balancing_names_a_short_class_and_rotated_copies_keep_masks_aligned():
    labels = np.array([0, 0, 0, 1, 2, 2, 2])
    names = ["A", "N", "R1", "R2"]  # R2 has no samples at all
    with pytest.raises(ValueError, match=r"class R2 has 0 items .*fewer than n_per_class=3"):
        rotation_balanced_indices(labels, 3, augment=[1], class_names=names)
    with pytest.raises(ValueError, match=r"class N has 4 items after augmentation \(1 x 4"):
        rotation_balanced_indices(labels, 5, augment=[0, 1], class_names=names[:3])
    pairs = rotation_balanced_indices(labels, 3, augment=[1], seed=0, class_names=names[:3])
    rotated_n = [(i, t) for i, t in pairs if labels[i] == 1]  # the one N sample, 3 of 4 turns
    assert len(set(rotated_n)) == 3 and {i for i, _ in rotated_n} == {3}
    assert all(t == 0 for i, t in pairs if labels[i] != 1)  # A and R1 are not rotated
    images = np.zeros((7, 4, 4, 3), np.uint8)
    masks = np.zeros((7, 4, 4), bool)
    images[:, 0, 3] = 255  # top-right pixel, also in the mask
    masks[:, 0, 3] = True
    ds = ArrayDataset(images, labels, masks, masks.astype(np.uint8) * 2, classes=names[:3],
                      extra={"scan": np.arange(7)})  # fmt: skip
    rotated = rotated_dataset(ds, pairs)
    assert len(rotated) == 9 and list(rotated.labels) == [int(labels[i]) for i, _ in pairs]
    for k, (i, t) in enumerate(pairs):
        where = {0: (0, 3), 1: (0, 0), 2: (3, 0), 3: (3, 3)}[t]  # counter-clockwise turns
        assert rotated.images[k][where].tolist() == [255, 255, 255] and rotated.masks[k][where]
        assert rotated.nuclei_type[k][where] == 2 and int(rotated[k]["scan"]) == i
    blank = np.broadcast_to(np.zeros((1, 4, 4), np.uint8), (7, 4, 4))  # DiagSet: no annotations
    bare = rotated_dataset(ArrayDataset(images, labels, blank.astype(bool), blank), pairs)
    assert bare.masks.shape == (9, 4, 4) and not bare.masks.any() and not bare.nuclei_type.any()
    assert bare.images[0][0, 3].tolist() == rotated.images[0][0, 3].tolist()


@pytest.mark.slow
def test_smoke_run_on_fabricated_diagset_and_pannuke(fabricated, tmp_path, monkeypatch):
    """The chapter end to end on DiagSet blobs + PanNuke folds: U-Net masks only, real counts."""
    monkeypatch.setenv("XAISTUDY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    code = cli.main(
        ["run", "thesis_metrics", "--profile", "smoke", "--out", str(out),
         "-p", "dataset", "diagset", "-p", "data_root", str(fabricated / "diagset"),
         "-p", "nuclei_dataset", "pannuke", "-p", "nuclei_data_root", str(fabricated / "pannuke"),
         "-p", "nuclei_data_options", '{"folds": "1,2/3/3"}']
    )  # fmt: skip
    assert code == 0
    table1 = pd.read_csv(out / "tables" / "dataset.csv").set_index("class")
    assert list(table1.index) == list(GRADES)
    assert table1.loc["R1", "original patches"] == 5 and table1.loc["R1", "after rotation"] == 20
    assert table1.loc["A", "patches in the train / val / test splits"] == "6 / 2 / 2"
    assert (table1[["training", "validation", "testing"]].values == [4, 2, 1]).all()
    seg = pd.read_csv(out / "tables" / "segmentation.csv")
    assert set(seg["data"]) == {"pannuke validation tiles"}
    assert set(pd.read_csv(out / "tables" / "table6.csv")["ground_truth"]) <= {"U-Net"}
    settings = pd.read_csv(out / "tables" / "paper_vs_book_settings.csv").set_index("setting")
    assert settings.loc["grading data", "this run"] == "diagset"
    assert settings.loc["U-Net training tiles", "this run"] == "4"
    versus = pd.read_csv(out / "tables" / "paper_vs_book.csv")
    assert versus["data"].str.startswith("DiagSet-A patches; U-Net trained on PanNuke").all()
    assert not any("exact" in c for c in versus.columns)
    claims = pd.read_csv(out / "tables" / "claims.csv").set_index("claim_id")
    same = claims.loc[[i for i in claims.index if i.startswith("ground_truth.")], "verdict"]
    assert (same == "not testable here").all()  # DiagSet has no nuclei annotations


# -- the paper record and the claims --------------------------------------------------------
def test_paper_record_holds_table6_and_its_orderings():
    t6 = thesis_table6()
    assert len(t6) == 6 * 4 * 2 * 7
    assert PAPER.number("table6.iou.gradcam.tumour.A") == "0.0085"
    assert PAPER.number("table6.pixel_accuracy.gradcam.non-tumour.R5") == "0.731"
    assert PAPER.number("table4.average") == "62.39"
    # class means of the tumour mask: Grad-CAM first in IoU, precision, recall, F1
    for metric in ("iou", "precision", "recall", "f1"):
        assert thesis_order(metric)[0] == "gradcam"
    assert thesis_order("precision")[:2] == ["gradcam", "lime"]
    assert thesis_order("pixel_accuracy") == [
        "ig_noise_tunnel", "integrated_gradients", "lime", "gradcam"
    ]  # fmt: skip
    gc_recall = np.mean([0.0308, 0.153, 0.2298, 0.2047, 0.1906, 0.1736, 0.1754])
    assert thesis_means().loc["recall", "gradcam"] == pytest.approx(gc_recall)
    with pytest.raises(KeyError, match="no number"):
        PAPER.number("table6.iou.occlusion.tumour.A")


def _fake_scores(order, seeds=(0, 1, 2), n=12, noise=0.02, tendency_shift=0.0):
    """Scores whose method means follow ``order`` (best first) on every metric."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for unit in range(n):
            cls = study.CLASSES[2 + unit % 2]
            case = tend.TENDENCIES[1] if unit % 4 == 0 else tend.TENDENCIES[0]
            for gt in ("U-Net", "exact"):
                for k, method in enumerate(order):
                    base = 0.5 - 0.1 * k + (tendency_shift if case == tend.TENDENCIES[1] else 0)
                    value = base + noise * rng.standard_normal()
                    rows.append({"seed": seed, "unit": unit, "class": cls, "tendency": case,
                                 "method": method, "ground_truth": gt, "mask_type": "tumour",
                                 "reading": "thesis", "empty": False, "degenerate": False,
                                 **{m: value for m in q.METRICS}})  # fmt: skip
    return pd.DataFrame(rows)


def _fake_result(params, scores, controls=None):
    """A result of ``scores`` with ``controls`` (default: none, so the claims are judged on
    their own intervals)."""
    if controls is None:
        controls = scores.iloc[:0].assign(control="")
    return study.Result(params=params, runs=(), scores=scores, controls=controls)


def _blobs(rng, n, size, centres, radius):
    """(n, size, size) bool: ``centres`` random discs of ``radius`` per tile."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size), bool)
    for i in range(n):
        for cy, cx in rng.integers(0, size, (centres, 2)):
            out[i] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    return out


def _null_runs(params, *, seeds=(0, 1), per_class=2, size=32):
    """Seed runs whose maps carry no information about the masks: independent random maps
    that only match each method's coverage (Grad-CAM most, then LIME, then the two IGs), and
    whose "U-Net" mask is made of independent blobs of about the exact mask's area."""
    coverage = {"gradcam": 0.45, "lime": 0.25, "integrated_gradients": 0.06,
                "ig_noise_tunnel": 0.04}  # fmt: skip
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        labels = np.repeat(np.arange(len(study.CLASSES)), per_class)
        n = len(labels)
        probs = np.full((n, len(study.CLASSES)), 0.02)
        probs[np.arange(n), labels] = 0.88
        exact = np.where(_blobs(rng, n, size, 4, 4), 1, 0)  # NEOPLASTIC = 1
        unet = _blobs(rng, n, size, 4, 4).astype(float)  # unrelated to ``exact``
        maps = {}
        for method, share in coverage.items():
            noise = rng.random((n, size, size))
            maps[method] = (noise > np.quantile(noise, 1 - share)).astype(float) * noise
        runs.append(study.SeedRun(
            seed=seed, table1=None, cnn=None, cnn_history=None, cnn_best_epoch=0,
            cnn_parameters=0, unet_history=None, unet_best_epoch=0, unet_parameters=0,
            probs=probs, labels=labels, images=None,
            unet_prob=np.stack([unet, np.zeros_like(unet)], 1), exact=exact, maps=maps,
        ))  # fmt: skip
    return runs


def test_coverage_only_maps_and_an_unrelated_mask_reproduce_nothing():
    """The reviewer's nulls: maps with no information about the masks order the methods as
    Table 6 does on several metrics, and a "U-Net" mask unrelated to the exact one ranks
    them as the exact mask does; judged against the same run's controls, none of these
    claims is reproduced."""
    params = build_params(ThesisMetricsParams, "quick", {"n_boot": 400})
    runs = _null_runs(params)
    result = study.Result(
        params=params, runs=tuple(runs), scores=study.score(runs, params, ("thesis",)),
        controls=study.control_scores(runs, params),
    )  # fmt: skip
    bare = dataclasses.replace(result, controls=result.controls.iloc[:0])
    without = {r["claim_id"]: r["verdict"] for r in tm.claims(bare, "quick")}
    judged = {r["claim_id"]: r for r in tm.claims(result, "quick")}
    # the nulls are real: without controls these uninformative maps "reproduce" the thesis
    assert without["table6.order.recall"] == "reproduced"
    assert without["ground_truth.same_order.recall"] == "reproduced"
    for claim_id, row in judged.items():
        if claim_id.startswith(("table6.order.", "ground_truth.same_order.")):
            assert row["verdict"] != "reproduced", (claim_id, row["note"])
            if without[claim_id] == "reproduced":
                assert row["verdict"] in ("uninformative", "inconclusive"), claim_id
    assert judged["table6.order.recall"]["verdict"] == "uninformative"
    assert "coverage-matched maps" in judged["table6.order.recall"]["note"]


def test_informative_maps_pass_their_controls():
    """The positive side: every method marks as many pixels as the mask has, Grad-CAM all on
    the mask and each later method a larger share elsewhere; the order comes from where the
    maps are, so the coverage-only control does not reach it."""
    params = build_params(ThesisMetricsParams, "quick", {"n_boot": 400})
    runs = _null_runs(params, seeds=(0, 1, 2, 3, 4))
    rng = np.random.default_rng(5)
    for run in runs:
        truth = run.exact == 1
        run.unet_prob[:, 0] = truth
        for k, method in enumerate(thesis_order("f1")):
            maps = truth.astype(float).copy()
            for i in range(len(maps)):
                on, off = np.flatnonzero(truth[i]), np.flatnonzero(~truth[i])
                moved = rng.choice(on, int(0.25 * k * on.size), replace=False)
                flat = maps[i].reshape(-1)
                flat[moved] = 0
                flat[rng.choice(off, moved.size, replace=False)] = 1
            run.maps[method] = maps * 0.9
    result = study.Result(
        params=params, runs=tuple(runs), scores=study.score(runs, params, ("thesis",)),
        controls=study.control_scores(runs, params),
    )  # fmt: skip
    judged = {r["claim_id"]: r for r in tm.claims(result, "quick")}
    assert judged["table6.order.f1"]["verdict"] == "reproduced", judged["table6.order.f1"]


def _half_low_probability(runs):
    """Every other tile predicted correctly with probability 0.5: tendencies 1 and 2 both have
    tiles in every class."""
    for run in runs:
        run.probs[1::2] = 0.5 / (len(study.CLASSES) - 1)
        run.probs[np.arange(1, len(run.labels), 2), run.labels[1::2]] = 0.5
    return runs


def _truth_maps(runs, rng, moved_share):
    """Maps on the exact mask, each with a share of its pixels moved off it: per tile, a draw
    between 0 and 2 times ``moved_share[method]`` (one draw per tile for all methods); the
    "U-Net" mask is the exact mask."""
    for run in runs:
        truth = run.exact == 1
        run.unet_prob[:, 0] = truth
        draw = rng.uniform(0, 2, len(truth))
        for method, share in moved_share.items():
            maps = truth.astype(float).copy()
            for i in range(len(maps)):
                on, off = np.flatnonzero(truth[i]), np.flatnonzero(~truth[i])
                moved = rng.choice(on, int(draw[i] * share * on.size), replace=False)
                flat = maps[i].reshape(-1)
                flat[moved] = 0
                flat[rng.choice(off, moved.size, replace=False)] = 1
            run.maps[method] = maps * 0.9
    return runs


def _judged(params, runs):
    result = study.Result(
        params=params, runs=tuple(runs), scores=study.score(runs, params, ("thesis",)),
        controls=study.control_scores(runs, params),
    )  # fmt: skip
    bare = dataclasses.replace(result, controls=result.controls.iloc[:0])
    return (
        {r["claim_id"]: r for r in tm.claims(result, "quick")},
        {r["claim_id"]: r["verdict"] for r in tm.claims(bare, "quick")},
    )


@pytest.mark.slow
def test_similarity_claims_face_a_positive_control():
    """'Similar quality' and 'no method stands out' are equivalence claims: maps that say
    nothing about the nuclei read "similar" too, so without a case known to differ the claim
    cannot fail. Their positive controls (the maps shuffled) make such a run uninformative,
    and leave a run whose maps do say where the nuclei are reproduced."""
    params = build_params(ThesisMetricsParams, "quick", {"n_boot": 400})
    similar = ("tendency.1.similar_quality", "tendency.2.similar_quality")
    runs = _half_low_probability(_null_runs(params, seeds=(0, 1, 2, 3, 4), per_class=8))
    judged, without = _judged(params, runs)
    for claim_id in similar:
        assert without[claim_id] == "reproduced", claim_id
        assert judged[claim_id]["verdict"] == "uninformative", judged[claim_id]
        assert judged[claim_id]["controls"] == "shuffled maps of the case"
    # informative maps, equally good for every method: the shuffled case differs, the claim holds
    runs = _half_low_probability(_null_runs(params, seeds=(0, 1, 2, 3, 4), per_class=8))
    share = {m: 0.25 for m in study.METHODS}
    judged, _ = _judged(params, _truth_maps(runs, np.random.default_rng(3), share))
    for claim_id in (*similar, "table6.no_superior_method.spearman"):
        assert judged[claim_id]["verdict"] == "reproduced", judged[claim_id]


def test_claims_follow_the_numbers():
    params = build_params(ThesisMetricsParams, "quick", {"n_boot": 200})
    order = thesis_order("recall")
    same = {r["claim_id"]: r for r in tm.claims(_fake_result(params, _fake_scores(order)), "quick")}
    assert same["table6.order.recall"]["verdict"] == "reproduced"
    assert same["table6.order.recall"]["seeds_agree"]
    assert same["table6.order.recall"]["book_value"] == pytest.approx(1.0)
    assert same["table6.order.recall"]["profile"] == "quick"
    # pixel accuracy's thesis order is the reverse of recall's for Grad-CAM and IG
    assert same["table6.order.pixel_accuracy"]["verdict"] == "contradicted"
    assert same["ground_truth.same_order.f1"]["verdict"] == "reproduced"
    # no tile of the incorrect cases: not testable; the correct cases differ by noise only
    assert same["tendency.3.similar_quality"]["verdict"] == "not testable here"
    assert same["tendency.2.similar_quality"]["verdict"] == "reproduced"
    shifted = _fake_result(params, _fake_scores(order, tendency_shift=0.2))
    shifted = {r["claim_id"]: r for r in tm.claims(shifted, "quick")}
    assert shifted["tendency.2.similar_quality"]["verdict"] == "contradicted"
    assert len(same) == 6 + 4 + 6 + 7  # Table 6, tendencies, premise, conclusions 1-4, 6


def test_tendency_differences_are_within_class_by_hand():
    params = build_params(ThesisMetricsParams, "quick", {"tendency_metric": "f1"})
    a, b = tend.TENDENCIES[0], tend.TENDENCIES[1]
    rows = pd.DataFrame({
        "seed": 0, "unit": [0, 1, 2, 3], "class": ["R1", "R1", "R5", "R5"],
        "tendency": [b, a, b, a], "method": "gradcam", "ground_truth": "U-Net",
        "mask_type": "tumour", "reading": "thesis", "empty": False,
        "f1": [0.2, 0.1, 0.9, 0.8],
    })  # fmt: skip
    # class means differ a lot, yet within each class the case b tile is 0.1 above
    diff = study.tendency_differences(rows, params, b)
    sd = np.std([0.2, 0.1, 0.9, 0.8], ddof=1)
    assert list(diff["unit"]) == [0, 2]
    np.testing.assert_allclose(diff["value"], [0.1 / sd, 0.1 / sd])


@pytest.mark.slow
def test_smoke_run_writes_every_claim(smoke_outputs):
    out = smoke_outputs("thesis_metrics")
    claims = pd.read_csv(out / "tables" / "claims.csv")
    ids = set(claims["claim_id"])
    assert {f"table6.order.{m}" for m in q.METRICS if m != "spearman"} <= ids
    assert "table6.no_superior_method.spearman" in ids
    assert {f"tendency.{k}.similar_quality" for k in range(1, 5)} <= ids
    assert {f"ground_truth.same_order.{m}" for m in q.METRICS} <= ids
    readings = pd.read_csv(out / "tables" / "readings.csv")
    assert set(readings["reading"]) == set(q.READINGS)
    assert {"table6", "empty_masks", "segmentation", "ground_truth_effect"} <= {
        p.stem for p in (out / "tables").glob("*.csv")
    }


def test_order_statistics_match_the_claims_module_and_scipy():
    from scipy.stats import kendalltau

    from xaistudy.stats.claims import order_agreement

    order = thesis_order("precision")
    rows = study.method_rows(_fake_scores(order[::-1], seeds=(0,), noise=0.3), "f1", order)
    rows.loc[::7, "value"] = np.nan  # NaN scores are skipped, as pandas' mean skips them
    fast = study.order_statistic(order)(rows)
    assert fast == pytest.approx(order_agreement(order, by="method", value="value")(rows))
    # the readings table's tau: scipy's, methods without a mean left out
    means = pd.Series({"lime": 0.3, "gradcam": 0.1, "integrated_gradients": 0.2})
    names = [m for m in order if m in means.index]
    expected = kendalltau([-order.index(m) for m in names], means[names]).statistic
    assert study.order_tau(order, means) == pytest.approx(expected)


# -- the study and the chapter interface at smoke size -----------------------------------------
@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """The study once at the smoke profile, with two test tiles per class."""
    params = build_params(ThesisMetricsParams, "smoke", {"n_test_per_class": 2})
    return study.run(params, Store(tmp_path_factory.mktemp("thesis-cache")))


def test_the_study_result_is_frozen_and_complete(smoke_study):
    res = smoke_study
    assert isinstance(res, study.Result) and len(res.runs) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.runs[0].maps = {}
    one = res.runs[0]
    n = len(one.labels)
    assert n == 2 * len(study.CLASSES) and one.probs.shape == (n, len(study.CLASSES))
    assert set(one.maps) == set(study.METHODS) and one.unet_prob.shape[:2] == (n, 2)
    assert one.inputs([0, 1]).shape == (2, 3, 64, 64)
    # the stored tiles are the CNN's input: the probabilities repeat from them
    from xaistudy.models.classify import predict_proba

    np.testing.assert_allclose(predict_proba(one.cnn, one.inputs(range(n))), one.probs, atol=1e-6)
    assert list(res.scores.columns) == list(study.SCORE_COLUMNS)
    per_reading = 2 * len(study.METHODS) * len(study.MASK_TYPES) * n  # U-Net and exact masks
    assert (res.scores["reading"].value_counts() == per_reading).all()


def test_the_chapter_interface_on_a_smoke_study(smoke_study):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = smoke_study
    assert callable(tm.tables) and callable(tm.figures) and callable(tm.claims)
    tables = tm.tables(res)
    assert {"dataset", "classification", "table6", "table6_unet", "table6_exact", "readings",
            "paper_vs_book", "ground_truth_effect", "tendencies"} <= set(tables)  # fmt: skip
    assert all(isinstance(t, pd.DataFrame) and len(t) for t in tables.values())
    t6 = tables["table6"]
    assert (t6["ci_low"] <= t6["mean"] + 1e-12).all() and (
        t6["mean"] <= t6["ci_high"] + 1e-12
    ).all()
    rows = tm.claims(res, "smoke")
    assert len(rows) == 23 and all(isinstance(r, dict) and r["profile"] == "smoke" for r in rows)
    figures = tm.figures(res)
    assert len(figures) == 3 + 4 + 4
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    plt.close("all")
    assert list(tm.figures(res, only=["tendency_2"])) == ["tendency_2"]
    assert len(plt.get_fignums()) == 1  # the other tendencies were closed
    plt.close("all")
    with pytest.raises(KeyError, match="no figure"):
        tm.figures(res, only=["violin_recall"])


def test_the_conclusions_rows_by_hand():
    params = build_params(ThesisMetricsParams, "quick", {"tendency_metric": "f1"})
    rows = []
    for unit, cls in enumerate(["R1", "R3", "N", "R5"]):
        for method, (t, n) in {"gradcam": (0.6, 0.2), "lime": (0.4, 0.3)}.items():
            for mask_type, f1 in (("tumour", t + 0.1 * unit), ("non-tumour", n)):
                rows.append({"seed": 0, "unit": unit, "class": cls, "method": method,
                             "ground_truth": "U-Net", "mask_type": mask_type,
                             "reading": params.average, "empty": False, "f1": f1})  # fmt: skip
    scores = pd.DataFrame(rows)
    c1 = study.mask_type_difference(scores, params, "f1")
    assert list(c1["unit"]) == [0, 1, 3]  # cancer tiles only (N is normal tissue)
    np.testing.assert_allclose(c1["value"], [0.25, 0.35, 0.55])  # mean of (t - n) over methods
    c2 = study.method_difference(scores, params, "f1", "gradcam", "lime")
    np.testing.assert_allclose(c2["value"], [0.2] * 4)
    grades = study.grade_rows(scores, params, "f1", ("R1", "R5"))
    assert list(grades["group"]) == [1, 0, 1]
    # R1 and R5 tiles: 0.5 and 0.8 (means over methods); R3: 0.6
    assert study.group_gap(grades) == pytest.approx((0.5 + 0.8) / 2 - 0.6)


def test_nuclei_share_difference_against_hand_computed_shares():
    """Conclusions 3 and 4: the share of a method's pixels on the nuclei (binary precision on
    the tumour plus the non-tumour mask) minus the other methods' mean; an empty map is left
    out, not scored as "all off the nuclei"."""
    from types import SimpleNamespace

    import pandas as pd

    from xaistudy.studies.thesis_metrics import nuclei_share_difference

    rows = []
    shares = {  # (tile, method): precision on the tumour mask, on the non-tumour mask
        (0, "gradcam"): (0.1, 0.1), (0, "lime"): (0.5, 0.3), (0, "ig"): (0.4, 0.2),
        (1, "gradcam"): (0.2, 0.2), (1, "lime"): (0.6, 0.2), (1, "ig"): (0.0, 0.0),
    }  # fmt: skip
    for (unit, method), pair in shares.items():
        for mask_type, precision in zip(("tumour", "non-tumour"), pair, strict=True):
            for truth in ("U-Net", "exact"):
                rows.append(dict(seed=0, unit=unit, method=method, mask_type=mask_type,
                                 ground_truth=truth, reading="binary", precision=precision,
                                 empty=False, degenerate=(unit, method) == (1, "ig")))  # fmt: skip
    scores = pd.DataFrame(rows)
    params = SimpleNamespace(empty_masks="exclude")
    lime = nuclei_share_difference(scores, params, "lime", inside=True)
    # tile 0: 0.8 - mean(0.2, 0.6) = 0.4; tile 1: IG's map is empty, so the tile is left out
    assert lime["unit"].tolist() == [0] and lime["value"].iloc[0] == pytest.approx(0.4)
    off = nuclei_share_difference(scores, params, "gradcam", inside=False)
    # tile 0: (1 - 0.2) - mean(1 - 0.8, 1 - 0.6) = 0.8 - 0.3 = 0.5
    assert off["value"].iloc[0] == pytest.approx(0.5)
    assert nuclei_share_difference(scores, params, "nope").empty
