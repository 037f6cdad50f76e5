"""The meta_evaluation study and chapter: the truth, the agreement statistics, the models' data,
the interventions, the study once at the smoke size through the chapter interface, and the
chapter's notebook end to end."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from xaistudy.chapters import meta_evaluation as me
from xaistudy.chapters.meta_evaluation.tables import metrics_table
from xaistudy.chapters.meta_evaluation.text import findings
from xaistudy.core.params import ParamError, build_params
from xaistudy.data.datasets import get_dataset
from xaistudy.models.classifiers import build_classifier
from xaistudy.models.stages import forward_from
from xaistudy.stats import ranking
from xaistudy.stats.claims import VERDICTS
from xaistudy.studies import meta_evaluation as study


def _square(size: int = 16, lo: int = 4, hi: int = 8) -> np.ndarray:
    e = np.zeros((size, size), bool)
    e[lo:hi, lo:hi] = True
    return e


# -- the truth ----------------------------------------------------------------------------------
def test_truth_auc_and_mass_by_hand():
    e = _square()
    perfect = e.astype(float)
    maps = np.stack([perfect, -perfect, np.zeros_like(perfect), perfect + 0.5 * ~e])[None]
    auc = study.truth_scores(maps, e[None], "auc")[0]
    # evidence ranked above everything else: 1; below: 0; a constant map: chance
    np.testing.assert_allclose(auc[:3], [1.0, 0.0, 0.5])
    assert auc[3] == 1.0  # 1 inside beats 0.5 outside: a ranking, whatever the scale
    mass = study.truth_scores(maps, e[None], "mass")[0]
    # 16 px of 1 inside, 240 px of 0.5 outside: 16 / (16 + 120)
    np.testing.assert_allclose(mass, [1.0, 0.0, 0.0, 16 / 136])


def test_truth_refuses_an_empty_or_full_evidence_and_an_unknown_kind():
    maps = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="some but not all"):
        study.truth_scores(maps, np.zeros((1, 4, 4), bool))
    with pytest.raises(ValueError, match="some but not all"):
        study.truth_scores(maps, np.ones((1, 4, 4), bool))
    with pytest.raises(ValueError, match="unknown truth 'iou'"):
        study.truth_scores(maps, _square(4, 0, 2)[None], "iou")


class RedSquare(nn.Module):
    """Class 1's logit is the red channel's sum inside rows/columns 4..7: its only evidence."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())

    def forward(self, x):
        evidence = self.scale * x[:, 0, 4:8, 4:8].sum(dim=(1, 2))
        tie = 0 * self.features(x).mean(dim=(1, 2, 3))  # a layer for the CAM methods
        return torch.stack([torch.zeros_like(evidence) + tie, evidence], dim=1)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "occlusion"])
def test_a_method_on_a_model_with_a_known_region_scores_high_truth(method):
    params = build_params(me.MetaEvaluationParams, "smoke", {"occlusion_window": 4})
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = study.compute_maps(params, RedSquare().eval(), x, method, seed=0)
    truth = study.truth_scores(maps[:, None], np.stack([_square()] * 2))
    assert truth.min() > 0.9, truth


# -- agreement with the truth --------------------------------------------------------------------
def test_agreement_by_hand():
    truth = np.array([0.9, 0.5, 0.1])
    assert study.agreement(truth, np.array([3.0, 2.0, 1.0]), True) == 1.0
    assert study.agreement(truth, np.array([3.0, 2.0, 1.0]), True, "mard") == 0.0
    # a lower-is-better metric that orders like the truth
    assert study.agreement(truth, np.array([0.1, 0.2, 0.3]), False) == 1.0
    assert study.agreement(truth, np.array([1.0, 2.0, 3.0]), True) == -1.0
    # ranks 3,2,1 vs 1,2,3: |2| + 0 + |2| over 3 methods
    assert study.agreement(truth, np.array([1.0, 2.0, 3.0]), True, "mard") == pytest.approx(4 / 3)
    # a metric that gives every method the same score ranks nothing
    assert study.agreement(truth, np.array([0.5, 0.5, 0.5]), True) == 0.0
    assert np.isnan(study.agreement(truth[:1], np.array([1.0]), True))


def test_ranking_statistic_ranks_the_means_per_method():
    rows = pd.DataFrame({
        "seed": 0, "unit": [0, 0, 1, 1],
        "method": [0, 1, 0, 1],
        "truth": [0.9, 0.2, 0.7, 0.4],  # method 0 better
        "score": [0.1, 0.8, 0.9, 0.3],  # means 0.5 vs 0.55: method 1 ahead
    })  # fmt: skip
    assert study.ranking_statistic(True)(rows) == -1.0
    assert study.ranking_statistic(False)(rows) == 1.0
    assert study.ranking_statistic(True, "mard")(rows) == 1.0


def test_win_rows_count_ties_as_half():
    rows = []
    for method, clean, rnd in (("a", 0.9, 0.1), ("b", 0.5, 0.5), ("c", 0.1, 0.9)):
        rows += [
            {"seed": 0, "unit": 1, "method": method, "metric": "pointing_game", "model": "clean",
             "value": clean},
            {"seed": 0, "unit": 1, "method": method, "metric": "pointing_game",
             "model": "randomised", "value": rnd},
        ]  # fmt: skip
    st = study.Result(None, (), pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame())
    wins = study.win_rows(st, "pointing_game").set_index("method")["value"]
    assert wins.to_dict() == {"a": 1.0, "b": 0.5, "c": 0.0}
    # lower is better: the order flips
    for r in rows:
        r["metric"] = "saliency_ratio"
    st = study.Result(None, (), pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame())
    assert study.win_rows(st, "saliency_ratio").set_index("method")["value"].to_dict() == {
        "a": 0.0, "b": 0.5, "c": 1.0}  # fmt: skip


# -- data, interventions, models ----------------------------------------------------------------
def test_marked_set_labels_by_the_mark_independently_of_the_tissue():
    base = get_dataset("synthetic-he", "train", n=40, size=64, seed=3)
    marked = study.marked_set(base, "train", 3)
    pen = marked.extra["pen"].reshape(40, -1).any(1)
    assert np.array_equal(marked.labels, pen.astype(int))  # the label is the mark
    assert np.array_equal(marked.masks, base.masks)  # the tumour mask is kept
    assert np.array_equal(marked.extra["tumour"], base.labels)
    # both classes of tissue carry the mark (it says nothing about the tissue)
    assert {(int(t), int(m)) for t, m in zip(base.labels, marked.labels, strict=True)} == {
        (0, 0), (0, 1), (1, 0), (1, 1)}  # fmt: skip
    unmarked = ~pen
    assert np.array_equal(marked.images[unmarked], base.images[unmarked])


def test_intervene_swaps_exactly_the_evidence_or_the_rest():
    x, d = torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)
    e = _square()[None]
    without_e, without_r = study.intervene(x, e, d)
    assert torch.equal(without_e[0, :, e[0]], torch.ones(3, 16))
    assert torch.equal(without_e[0, :, ~e[0]], torch.zeros(3, 240))
    assert torch.equal(without_r, 1 - without_e)


def test_whole_tile_prediction_reads_a_classifier_as_a_segmenter():
    seg = study.WholeTilePrediction(RedSquare().eval())
    x = torch.zeros(2, 3, 16, 16)
    x[0, 0, 4:8, 4:8] = 1  # image 0: class 1; image 1: a tie, argmax 0
    pred = seg.predict(x, 1)
    assert pred.shape == (2, 16, 16) and pred[0].all() and not pred[1].any()


def test_small_cnn_runs_from_any_block():
    torch.manual_seed(0)
    model = build_classifier("small_cnn", 2).eval()
    x = torch.rand(2, 3, 64, 64)
    for k in range(4):
        features = model.features[: k + 1](x)
        torch.testing.assert_close(forward_from(model, f"features.{k}", features), model(x))
    with pytest.raises(ValueError, match="unknown stage 'layer4'"):
        forward_from(model, "layer4", x)


# -- parameters ---------------------------------------------------------------------------------
def test_parameters_are_checked_before_anything_runs():
    with pytest.raises(ParamError, match="n_tiles .* exceeds n_test"):
        build_params(me.MetaEvaluationParams, "smoke", {"n_tiles": 100})
    with pytest.raises(ParamError, match="ibo_profile.*64-px tiles, tile_size is 96"):
        build_params(me.MetaEvaluationParams, "quick", {"tile_size": 96})
    assert build_params(me.MetaEvaluationParams, "quick", {"tile_size": 96, "ibo_tiles": 0})
    with pytest.raises(ParamError, match="unknown method 'gradcm'"):
        build_params(me.MetaEvaluationParams, "smoke", {"methods": "gradcm"})
    for profile in ("smoke", "quick", "paper", "gpu"):
        assert build_params(me.MetaEvaluationParams, profile)


def test_every_metric_names_its_paper_and_direction():
    table = metrics_table()
    assert len(table) == len(study.METRICS) >= 20
    assert set(table["paper"]) == {
        "Borys et al. 2023", "Valatkaitė 2024", "You et al. 2024", "Hasany et al. 2024",
        "Afshar et al. 2024"}  # fmt: skip


# -- the study once, through the chapter interface ---------------------------------------------
@pytest.fixture(scope="module")
def smoke_result():
    """The study at the smoke size, run once through the chapter's :func:`run` (its stages go to
    the session's cache, which the notebook run below then reads)."""
    params = build_params(me.MetaEvaluationParams, "smoke")
    return me.run(params, "smoke")


@pytest.mark.slow
def test_the_chapter_interface_on_the_smoke_study(smoke_result):
    result = smoke_result
    assert isinstance(result, study.Result) and result.profile == "smoke"
    with pytest.raises(AttributeError):
        result.profile = "quick"  # frozen
    assert set(result.scores["model"]) == {"clean", "clever_hans", "randomised"}
    assert set(result.examples) == {*study.TRAINED, *study.TWIN.values()}
    rows = me.claims(result)
    assert isinstance(rows, list) and len(rows) >= 15 and all(isinstance(r, dict) for r in rows)
    assert {r["verdict"] for r in rows} <= set(VERDICTS)
    assert {r["profile"] for r in rows} == {"smoke"}
    tables = me.tables(result)
    assert set(tables) >= {"metrics", "models", "interventions", "metric_agreement_numbers"}
    for name, table in tables.items():
        assert isinstance(table, pd.DataFrame) and len(table), name
    agreement = tables["metric_agreement_numbers"]
    assert set(agreement["key"]) == set(study.METRICS)  # IBO included (one tile at smoke)
    assert agreement["tau clean"].is_monotonic_decreasing or agreement["tau clean"].isna().any()
    figures = me.figures(result, tables["metric_agreement_numbers"])
    assert set(figures) == {"evidence", "maps", "metric_agreement"}
    assert all(isinstance(f, plt.Figure) for f in figures.values())
    plt.close("all")
    # the interface functions stay callable after their page modules were imported
    assert callable(me.claims) and callable(me.tables) and callable(me.figures)


# -- the chapter, end to end ----------------------------------------------------------------------
@pytest.mark.slow
def test_smoke_run_scores_every_metric_and_judges_every_claim(smoke_outputs):
    out = smoke_outputs("meta_evaluation")
    tables = {p.stem: pd.read_csv(p) for p in (out / "tables").glob("*.csv")}
    agreement = tables["metric_agreement_numbers"]
    assert set(agreement["key"]) == set(study.METRICS)  # IBO included (one tile at smoke)
    assert agreement["tau clean"].between(-1, 1).all()
    claims = tables["claims"]
    assert set(claims["verdict"]) <= set(VERDICTS) and len(claims) >= 15
    assert claims["claim_id"].str.startswith("ibo_closer_than_").sum() == 5
    interventions = tables["interventions"].set_index("model")
    assert set(interventions.index) == {"clean", "clever_hans", "randomised"}
    assert (out / "figures" / "metric_agreement.png").exists()


def test_evidence_auc_and_the_tau_b_used_match_sklearn_and_scipy():
    from scipy.stats import kendalltau
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = np.round(rng.normal(size=(16, 16)), 1)  # with ties
        e = rng.uniform(size=(16, 16)) < 0.3
        assert study.evidence_auc(a, e) == pytest.approx(roc_auc_score(e.ravel(), a.ravel()))
        x, y = np.round(rng.normal(size=8), 1), np.round(rng.normal(size=8), 1)
        assert ranking.kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic)


def test_findings_read_the_intervals_only():
    row = {"paper": "Borys et al. 2023", "beats randomised": 0.6, "beats randomised low": 0.55,
           "beats randomised high": 0.7}  # fmt: skip
    table = pd.DataFrame([
        {**row, "metric": "above", "tau clean low": 0.1, "tau clean high": 0.9,
         "tau clever_hans low": -0.9, "tau clever_hans high": -0.1},
        {**row, "metric": "around", "tau clean low": -0.1, "tau clean high": 0.9,
         "tau clever_hans low": -0.1, "tau clever_hans high": 0.1,
         "beats randomised low": 0.2, "beats randomised high": 0.4},
    ])  # fmt: skip
    text = findings(table).splitlines()
    assert text[0].endswith("above (Borys).") and text[1].endswith("none.")
    assert text[2].endswith("1 metrics.")
    assert text[3].endswith("none.") and text[4].endswith("above (Borys).")
    assert "(below 0.5): around (Borys)." in text[6]
