"""Chapter ``meta_evaluation``: which evaluation metric tells the truth?

The five papers each score explanations their own way and validate the score on their own
data. Here every score meets data where the truth is known. Per seed:

synthetic H&E tiles -> three models whose evidence use is known: a **clean** model (tumour vs
normal; the generator puts the class evidence only inside the tumour mask), a **Clever-Hans**
model (its label is a pen mark drawn independently of the tissue, so the mark is its only usable
cue) and the clean model with its top weight layers **randomised** (no evidence use) -> the
evidence each model uses, verified by intervention (P(target) after replacing the evidence with
normal tissue vs after replacing everything else) -> maps of every method -> the **truth**: how
well a map localises the verified evidence -> every metric of the five papers, computed with the
functions their chapters use -> per metric, Kendall's tau and MARD between its ranking of the
methods and the truth's, and how often it scores a trained model's map above the randomised
model's map of the same tile and method -> each paper's claim about its own metric, judged on
known truth. The notebook is ``notebooks/meta_evaluation.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from scipy.stats import rankdata
from torch import nn
from tqdm.auto import tqdm

from xaistudy.chapters import (
    Chapter,
    saliency_tour,
    segmentation_xai,
    thesis_metrics,
    xrelevancecam,
)
from xaistudy.chapters import ibo as ibo_chapter
from xaistudy.claims import ArrayStatistic, Claim, bootstrap_interval, judge
from xaistudy.data import shortcut_check, shortcuts
from xaistudy.data.datasets import get_dataset
from xaistudy.data.registry import ArrayDataset
from xaistudy.evaluate import (
    axioms,
    faithfulness,
    localisation,
    occlusion,
    quality,
    sanity,
    segmentation_metrics,
    wsss,
)
from xaistudy.evaluate import ibo as ibo_study
from xaistudy.explain import METHODS, explain, relevance, tour
from xaistudy.explain.taxonomy import method_options
from xaistudy.models.classifiers import resolve_device, target_layer
from xaistudy.models.train import make_loader, predict, weights_hash
from xaistudy.params import ParamError, SeedsParams, build_params, choices_field
from xaistudy.store import Store

log = logging.getLogger(__name__)

#: every method this chapter can explain with: the registry's and the two relevance CAMs
METHOD_CHOICES: tuple[str, ...] = (*METHODS, *relevance.RELEVANCE_METHODS)
#: the default methods: two of each family (gradient, CAM, relevance, perturbation)
DEFAULT_METHODS = (
    "saliency",
    "integrated_gradients",
    "gradcam",
    "gradcam++",
    "lrp",
    "relevancecam",
    "xrelevancecam",
    "occlusion",
)
#: the models, what they learn and which tiles they explain
MODELS: dict[str, str] = {
    "clean": "tumour vs normal; the class evidence lies only inside the tumour mask",
    "clever_hans": "marked vs unmarked: a pen mark drawn independently of the tissue",
    "randomised": "the clean model with its top weight layers re-initialised",
}
TRAINED = ("clean", "clever_hans")
#: the randomised twin of each trained model (its maps feed the randomisation metric)
TWIN = {"clean": "randomised", "clever_hans": "randomised_clever_hans"}
#: P(mark | tumour) = P(mark | normal) in the Clever-Hans data: the mark says nothing of the tissue
MARK_COOCCURRENCE = 0.5
TRUTHS = {
    "auc": "ROC AUC of the map's values for evidence vs non-evidence pixels (0.5: chance)",
    "mass": "share of the map's positive mass inside the evidence",
}
TRUTH_LABEL = "truth"


class MetaEvaluationParams(SeedsParams):
    """The ``meta_evaluation`` chapter: every paper's metric against known truth."""

    tile_size: int = Field(64, ge=64, le=512, description="H&E tile side in pixels (64-512)")
    arch: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="classifier of both trained models: small_cnn (fast on a CPU), resnet18, "
        "resnet50",
    )
    n_train: int = Field(400, ge=8, le=100000, description="training tiles per model")
    n_val: int = Field(80, ge=4, le=20000, description="validation tiles")
    n_test: int = Field(200, ge=8, le=20000, description="test tiles the explained ones come from")
    epochs: int = Field(6, ge=1, le=300, description="training epochs (best validation loss kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    methods: str = choices_field(
        METHOD_CHOICES, ",".join(DEFAULT_METHODS), "methods", "comma-separated methods or all"
    )
    n_tiles: int = Field(
        12, ge=2, le=5000, description="tiles explained per model and seed (each one a unit)"
    )
    randomised_layers: int = Field(
        3, ge=1, le=200, description="weight layers re-initialised from the top (randomised model)"
    )
    truth: str = Field(
        "auc",
        pattern=r"^(auc|mass)$",
        description="the ground-truth quality of a map: auc (evidence pixels ranked above the "
        "rest) or mass (positive mass inside the evidence)",
    )
    occlusion_window: int = Field(8, ge=2, le=64, description="Occlusion patch side (px)")
    ig_steps: int = Field(32, ge=2, le=1000, description="Integrated Gradients steps")
    rise_masks: int = Field(400, ge=10, le=20000, description="RISE random masks")
    lime_samples: int = Field(200, ge=10, le=10000, description="LIME perturbed samples")
    shap_samples: int = Field(150, ge=10, le=10000, description="KernelSHAP perturbed samples")
    smoothgrad_samples: int = Field(16, ge=1, le=500, description="SmoothGrad noisy samples")
    thesis_threshold: float = Field(
        quality.MAP_THRESHOLD, ge=0, lt=1, description="map threshold of the thesis's six metrics"
    )
    seg_threshold: float = Field(
        0.1, ge=0, lt=1, description="binarisation threshold of Dice Explained / Saliency Ratio"
    )
    axiom_channels: int = Field(
        32, ge=0, le=4096, description="channels ablated for the sensitivity axiom (0: all)"
    )
    kmeans_k: int = Field(5, ge=2, le=10, description="k-means levels of the deletion curves")
    ibo_tiles: int = Field(
        2,
        ge=0,
        le=5000,
        description="tiles per model and seed also occluded with IBO (RePaint is slow on a CPU; "
        "0: IBO not measured)",
    )
    ibo_profile: str = Field(
        "quick",
        pattern=r"^(smoke|quick|gpu)$",
        description="profile of the ibo chapter whose DDPM of normal tissue and RePaint "
        "schedule IBO uses (shared with that chapter's cache)",
    )
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples of intervals")

    @model_validator(mode="after")
    def _sizes_fit(self) -> MetaEvaluationParams:
        if self.n_tiles > self.n_test:
            raise ValueError(f"n_tiles ({self.n_tiles}) exceeds n_test ({self.n_test})")
        return self

    def check_inputs(self) -> None:
        """Also refuse an IBO whose DDPM was made for another tile size."""
        super().check_inputs()
        if self.ibo_tiles:
            size = build_params(ibo_chapter.IboParams, self.ibo_profile).tile_size
            if size != self.tile_size:
                raise ParamError(
                    f"bad value for parameter 'ibo_profile': its DDPM makes {size}-px tiles, "
                    f"tile_size is {self.tile_size}; match them or set -p ibo_tiles 0"
                )

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "n_train": 48,
            "n_val": 16,
            "n_test": 48,
            "epochs": 1,
            "n_tiles": 3,
            "ig_steps": 4,
            "axiom_channels": 4,
            "ibo_tiles": 1,
            "ibo_profile": "smoke",
            "n_boot": 50,
        },
        "quick": {},
        "paper": {
            "seeds": [0, 1, 2, 3, 4],
            "n_train": 2000,
            "n_val": 200,
            "n_test": 800,
            "epochs": 20,
            "n_tiles": 100,
            "ibo_tiles": 100,
            "ibo_profile": "gpu",
            "tile_size": 512,
            "arch": "resnet50",
            "axiom_channels": 0,
        },
    }
    #: no paper has this experiment: ``paper`` and ``gpu`` are the same larger synthetic run
    PROFILES["gpu"] = dict(PROFILES["paper"])


def methods_of(params: MetaEvaluationParams) -> list[str]:
    return list(METHOD_CHOICES) if params.methods == "all" else params.methods.split(",")


def method_label(name: str) -> str:
    return xrelevancecam.LABELS.get(name) or ibo_study.method_label(name)


# -- the metrics of the five papers ------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """One way a paper scores a map: where it comes from and which way is better."""

    key: str
    label: str
    paper: str
    chapter: str
    function: str  # what computes it (the function the chapter uses)
    higher_is_better: bool
    reads: str  # what the map is compared with

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


_BORYS = saliency_tour.PAPER.citation
_THESIS = thesis_metrics.PAPER.citation
_YOU = xrelevancecam.PAPER.citation
_HASANY = segmentation_xai.PAPER.citation
_AFSHAR = ibo_chapter.PAPER.citation
_ANNOTATION = "the annotation (tumour mask)"
_OUTPUT = "the model's output"

METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "pointing_game",
            "pointing game",
            _BORYS,
            "saliency_tour",
            "localisation.pointing_game",
            True,
            _ANNOTATION,
        ),
        Metric(
            "tour_iou",
            "IoU (top pixels, mask area)",
            _BORYS,
            "saliency_tour",
            "localisation.saliency_iou",
            True,
            _ANNOTATION,
        ),
        Metric(
            "positive_share",
            "positive share in the mask",
            _BORYS,
            "saliency_tour",
            "localisation.positive_share",
            True,
            _ANNOTATION,
        ),
        Metric(
            "randomisation",
            "similarity to the randomised model's map",
            _BORYS,
            "saliency_tour, xrelevancecam",
            "sanity.rank_correlation",
            False,
            "the randomised model's map",
        ),
        *(
            Metric(
                f"thesis_{m}",
                f"{quality.METRIC_LABELS[m]} (thesis)",
                _THESIS,
                "thesis_metrics",
                f"quality.all_metrics ({m})",
                True,
                _ANNOTATION,
            )
            for m in quality.METRICS
        ),
        Metric(
            "miou",
            "IoU (mean + std binarisation)",
            _YOU,
            "xrelevancecam",
            "wsss.iou",
            True,
            _ANNOTATION,
        ),
        Metric(
            "conservation",
            "conservation axiom error",
            _YOU,
            "xrelevancecam",
            "axioms.evaluate_axioms",
            False,
            _OUTPUT,
        ),
        Metric(
            "sensitivity",
            "sensitivity axiom error",
            _YOU,
            "xrelevancecam",
            "axioms.evaluate_axioms",
            False,
            _OUTPUT,
        ),
        Metric(
            "dice_explained",
            "Dice Explained",
            _HASANY,
            "segmentation_xai",
            "segmentation_metrics.metric_steps",
            True,
            _OUTPUT,
        ),
        Metric(
            "saliency_ratio",
            "Saliency Ratio",
            _HASANY,
            "segmentation_xai",
            "segmentation_metrics.metric_steps",
            False,
            _OUTPUT,
        ),
        *(
            Metric(
                f"deletion_{s}",
                f"deletion AUC, {label}",
                _AFSHAR,
                "ibo",
                "ibo.occlude_all + faithfulness.trapezoid_auc",
                False,
                _OUTPUT,
            )
            for s, label in occlusion.STRATEGIES.items()
        ),
    )
}


def metrics_table() -> pd.DataFrame:
    """Every metric: its paper, the chapter that uses it, the function, direction, reference."""
    return pd.DataFrame(
        [
            {
                "metric": m.label,
                "paper": m.paper,
                "chapter": m.chapter,
                "computed by": m.function,
                "direction": m.direction,
                "compares the map with": m.reads,
            }
            for m in METRICS.values()
        ]
    )


# -- data and models ---------------------------------------------------------------------------
@dataclass
class Tiles:
    """The tiles one model explains, with what it uses and what an annotator would draw."""

    images: torch.Tensor  # (n, 3, H, W) in [0, 1]
    evidence: np.ndarray  # (n, H, W) bool: the evidence the model uses
    annotation: np.ndarray  # (n, H, W) bool: the tumour mask
    donors: torch.Tensor  # (n, 3, H, W): unmarked normal tiles, the interventions' fill
    index: np.ndarray  # positions in the test split
    correct: int  # how many of them the model assigns to the target class


@dataclass
class SeedRun:
    """One seed: the models, the tiles each explains, the test accuracy of each."""

    seed: int
    models: dict[str, nn.Module]
    tiles: dict[str, Tiles]
    accuracy: dict[str, float]
    mean: list[float]  # channel mean of the training tiles (the Mean occlusion's fill)


def marked_set(dataset: ArrayDataset, split: str, seed: int) -> ArrayDataset:
    """``dataset`` with the pen mark on half its tiles, independently of the tissue, labelled
    by the mark (1 = marked); ``mask`` stays the tumour mask, ``pen`` holds the stroke."""
    marked = shortcuts.with_pen_marks(dataset, split, seed, cooccurrence=MARK_COOCCURRENCE)
    return ArrayDataset(
        marked.images,
        marked.extra["marked"].astype(np.int64),
        marked.masks,
        marked.nuclei_type,
        classes=("unmarked", "marked"),
        extra={**marked.extra, "tumour": dataset.labels},
    )


def _stack_images(dataset: ArrayDataset, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(dataset.images[rows])).permute(0, 3, 1, 2).float() / 255


def _pick(probs: np.ndarray, candidates: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """The first ``n`` candidates the model assigns to class 1; when there are fewer, the rest
    with the highest P(1) (so a weak model still has tiles; ``correct`` says how many)."""
    correct = candidates[probs[candidates, 1] > 0.5]
    if len(correct) >= n:
        return np.sort(correct[:n]), n
    others = candidates[probs[candidates, 1] <= 0.5]
    extra = others[np.argsort(-probs[others, 1], kind="stable")][: n - len(correct)]
    log.warning("only %d tiles classified as the target; %d more added", len(correct), len(extra))
    return np.sort(np.concatenate([correct, extra])), len(correct)


def _tiles(
    base: ArrayDataset,
    data: ArrayDataset,
    rows: np.ndarray,
    evidence: np.ndarray,
    donors: np.ndarray,
    correct: int,
) -> Tiles:
    return Tiles(
        _stack_images(data, rows),
        evidence,
        np.asarray(base.masks[rows], bool),
        _stack_images(base, donors[np.arange(len(rows)) % len(donors)]),
        rows,
        correct,
    )


def prepare_seed(params: MetaEvaluationParams, seed: int, store: Store) -> SeedRun:
    """Data, the clean and the Clever-Hans model (trained, or loaded from the cache), their
    randomised twins and the tiles each explains."""
    p = params
    device = resolve_device(p.device)
    kw = {"size": p.tile_size, "seed": seed}
    train, val, test = (
        get_dataset("synthetic-he", split, n=n, **kw)
        for split, n in (("train", p.n_train), ("val", p.n_val), ("test", p.n_test))
    )
    # the saliency tour's data key: the same settings share its clean model in the cache
    data_id = {"dataset": "synthetic-he", "n_train": p.n_train, "n_val": p.n_val, **kw}
    fit = dict(
        epochs=p.epochs, lr=p.lr, batch_size=p.batch_size, seed=seed, device=device, store=store
    )
    clean, _ = tour.train_classifier(
        p.arch, train, val, data=data_id, desc=f"clean model, seed {seed}", **fit
    )
    marks = {"marks": "pen, independent of the tissue", "cooccurrence": MARK_COOCCURRENCE}
    hans, _ = tour.train_classifier(
        p.arch,
        marked_set(train, "train", seed),
        marked_set(val, "val", seed),
        data={**data_id, **marks, "label": "marked"},
        desc=f"Clever-Hans model, seed {seed}",
        **fit,
    )
    models = {"clean": clean.model.to(device).eval(), "clever_hans": hans.model.to(device).eval()}
    for name in TRAINED:
        models[TWIN[name]] = sanity.randomise_top_layers(models[name], p.randomised_layers, seed)
    marked_test = marked_set(test, "test", seed)
    tumour = test.labels == 1
    is_marked = marked_test.labels == 1
    donors = np.flatnonzero(~tumour & ~is_marked)
    probs = {
        name: predict(models[name], make_loader(data, 64), device, desc=None)[0]
        for name, data in (("clean", test), ("clever_hans", marked_test))
    }
    rows, correct = _pick(probs["clean"], np.flatnonzero(tumour), p.n_tiles)
    tiles = {"clean": _tiles(test, test, rows, test.masks[rows].astype(bool), donors, correct)}
    rows, correct = _pick(probs["clever_hans"], np.flatnonzero(tumour & is_marked), p.n_tiles)
    pen = np.asarray(marked_test.extra["pen"][rows], bool)
    tiles["clever_hans"] = _tiles(test, marked_test, rows, pen, donors, correct)
    accuracy = {
        "clean": float((probs["clean"].argmax(1) == test.labels).mean()),
        "clever_hans": float((probs["clever_hans"].argmax(1) == marked_test.labels).mean()),
    }
    return SeedRun(seed, models, tiles, accuracy, train.images.reshape(-1, 3).mean(0) / 255)


# -- interventions: the evidence each model uses ------------------------------------------------
def intervene(images: torch.Tensor, evidence: np.ndarray, donors: torch.Tensor):
    """(without the evidence, without the rest): the evidence pixels, then all other pixels,
    replaced by the donor tiles' pixels."""
    e = torch.as_tensor(np.asarray(evidence, bool))[:, None]
    return torch.where(e, donors, images), torch.where(e, images, donors)


def intervention_rows(run: SeedRun) -> pd.DataFrame:
    """Per model and tile: P(target) of the tile, without its evidence, without the rest."""
    parts = []
    for name in (*TRAINED, "randomised"):
        t = run.tiles["clean" if name == "randomised" else name]
        without_evidence, without_rest = intervene(t.images, t.evidence, t.donors)
        prob = {
            k: ibo_study.tumour_probability(run.models[name], x)
            for k, x in (
                ("original", t.images),
                ("without evidence", without_evidence),
                ("without the rest", without_rest),
            )
        }
        parts.append(pd.DataFrame({"seed": run.seed, "model": name, "unit": t.index, **prob}))
    return pd.concat(parts, ignore_index=True)


# -- maps --------------------------------------------------------------------------------------
def layer_name(model: nn.Module) -> str:
    """The name of ``model``'s CAM layer (:func:`target_layer`) among its modules."""
    layer = target_layer(model)
    return next(n for n, m in model.named_modules() if m is layer)


def compute_maps(
    params: MetaEvaluationParams, model: nn.Module, images: torch.Tensor, method: str, seed: int
) -> np.ndarray:
    """Maps (n, H, W) of ``method`` for class 1 of ``model``: the registry's methods through
    :func:`xaistudy.explain.explain`, the relevance CAMs through
    :func:`xaistudy.explain.relevance.relevance_cams` at the same layer as the CAMs."""
    layer = target_layer(model)
    if method in relevance.RELEVANCE_METHODS:
        cams = relevance.relevance_cams(model, images, 1, {"cam": layer}, methods=(method,))
        return cams[method]["cam"].astype(np.float32)
    p = params
    options = method_options(
        method,
        occlusion_window=p.occlusion_window,
        lime_samples=p.lime_samples,
        shap_samples=p.shap_samples,
        rise_masks=p.rise_masks,
        ig_steps=p.ig_steps,
        smoothgrad_samples=p.smoothgrad_samples,
        seed=seed,
    )
    parts = [
        explain(method, model, images[i : i + 16], 1, layer=layer, **options)
        for i in range(0, len(images), 16)
    ]
    return np.concatenate(parts).astype(np.float32)


def maps_of(params: MetaEvaluationParams, run: SeedRun, name: str, store: Store) -> np.ndarray:
    """Maps (n, M, H, W) of every method for model ``name``'s tiles (cached per method)."""
    model = run.models[name]
    tiles = run.tiles[name if name in TRAINED else _explained(name)]
    out = []
    for method in tqdm(methods_of(params), desc=f"maps, {name}", leave=False):
        key = {
            "model": weights_hash(model),
            "tiles": tiles.index.tolist(),
            "seed": run.seed,
            "method": method,
            "data": _data_key(params, run.seed, name),
            **_map_options(params),
        }
        arrays = store.cached_arrays(
            "meta-maps",
            key,
            lambda method=method: {
                "maps": compute_maps(params, model, tiles.images, method, run.seed)
            },
        )
        out.append(arrays["maps"])
    return np.stack(out, axis=1)


def _explained(name: str) -> str:
    return next(k for k, v in TWIN.items() if v == name)


def _data_key(params: MetaEvaluationParams, seed: int, name: str) -> dict[str, Any]:
    return {"size": params.tile_size, "n_test": params.n_test, "seed": seed, "model": name}


def _map_options(params: MetaEvaluationParams) -> dict[str, Any]:
    p = params
    return {
        "window": p.occlusion_window,
        "ig": p.ig_steps,
        "rise": p.rise_masks,
        "lime": p.lime_samples,
        "shap": p.shap_samples,
        "sg": p.smoothgrad_samples,
    }


def positive_unit(maps: np.ndarray) -> np.ndarray:
    """Each map's positive part scaled to [0, 1] (a map without positive values: all 0)."""
    flat = np.clip(np.asarray(maps, np.float64), 0, None).reshape(-1, *maps.shape[-2:])
    return np.stack([quality.minmax(m) for m in flat]).reshape(maps.shape)


# -- the truth and the metrics ------------------------------------------------------------------
def evidence_auc(saliency: np.ndarray, evidence: np.ndarray) -> float:
    """ROC AUC of the map's values for evidence vs other pixels, from the Mann-Whitney rank
    sum (ties count half: a constant map gives 0.5)."""
    ranks = rankdata(np.asarray(saliency, np.float64).ravel())
    e = np.asarray(evidence, bool).ravel()
    n_pos, n_neg = int(e.sum()), int((~e).sum())
    return float((ranks[e].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def truth_scores(maps: np.ndarray, evidence: np.ndarray, kind: str = "auc") -> np.ndarray:
    """The ground-truth quality (n, M) of maps (n, M, H, W) against the evidence (n, H, W).

    ``auc``: ROC AUC of the map's values separating evidence from other pixels (ties count
    half; a constant map 0.5); ``mass``: share of the positive mass inside the evidence (a map
    without positive mass localises nothing: 0).
    """
    if kind not in TRUTHS:
        raise ValueError(f"unknown truth '{kind}'; allowed: {', '.join(TRUTHS)}")
    n, m = maps.shape[:2]
    out = np.zeros((n, m))
    for i in range(n):
        e = np.asarray(evidence[i], bool)
        if not e.any() or e.all():
            raise ValueError(f"tile {i}: the evidence must cover some but not all pixels")
        for j in range(m):
            a = np.asarray(maps[i, j], np.float64)
            if kind == "auc":
                out[i, j] = evidence_auc(a, e)
            else:
                share = localisation.positive_share(a, e)
                out[i, j] = 0.0 if np.isnan(share) else share
    return out


def annotation_scores(
    maps: np.ndarray, annotation: np.ndarray, thesis_threshold: float
) -> dict[str, np.ndarray]:
    """The metrics that compare a map with the annotation, (n, M) each."""
    n, m = maps.shape[:2]
    out = {
        k: np.full((n, m), np.nan)
        for k in (
            "pointing_game",
            "tour_iou",
            "positive_share",
            "miou",
            *(f"thesis_{q}" for q in quality.METRICS),
        )
    }
    post = quality.postprocess_batch(maps.reshape(-1, *maps.shape[2:])).reshape(maps.shape)
    unit = positive_unit(maps)
    for i in range(n):
        for j in range(m):
            loc = localisation.localisation_scores(maps[i, j], annotation[i])
            out["pointing_game"][i, j] = loc["pointing_game"]
            out["tour_iou"][i, j] = loc["iou"]
            out["positive_share"][i, j] = loc["positive_share"]
            pred = quality.binarize(post[i, j], thesis_threshold)
            for q, v in quality.all_metrics(pred, annotation[i], "binary").items():
                out[f"thesis_{q}"][i, j] = v
    binary = wsss.binarise(unit.reshape(-1, *maps.shape[2:]), "mean_std")
    truth = np.repeat(np.asarray(annotation, bool), m, axis=0)
    out["miou"] = np.nan_to_num(wsss.iou(binary, truth)).reshape(n, m)
    return out


class WholeTilePrediction:
    """A tile classifier read as a segmenter: its segment of a class is the whole tile when
    it predicts that class, else nothing. With it, Dice Explained is 1 when the salient pixels
    alone keep the prediction and 0 when not, and the Saliency Ratio is the salient share of
    the tile."""

    def __init__(self, model: nn.Module):
        self.model = model

    @torch.no_grad()
    def predict(self, images: torch.Tensor, target: int) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        hit = self.model(images.to(dev)).argmax(1).cpu() == int(target)
        return hit[:, None, None].expand(-1, *images.shape[-2:])


def output_scores(
    params: MetaEvaluationParams,
    model: nn.Module,
    tiles: Tiles,
    maps: np.ndarray,
    methods: Sequence[str],
    seed: int,
) -> dict[str, np.ndarray]:
    """Dice Explained, Saliency Ratio and the two axioms, (n, M) each (axioms: NaN for
    methods without channel weights)."""
    n, m = maps.shape[:2]
    unit = positive_unit(maps).reshape(-1, *maps.shape[2:])
    x = tiles.images.repeat_interleave(m, dim=0)
    steps = segmentation_metrics.metric_steps(
        WholeTilePrediction(model), x, 1, unit, params.seg_threshold, fill=0.0
    )
    out = {
        "dice_explained": steps["dice_explained"].reshape(n, m).astype(float),
        "saliency_ratio": steps["saliency_ratio"].reshape(n, m).astype(float),
    }
    cams = [k for k in methods if k in axioms.AXIOM_METHODS]
    for axiom in ("conservation", "sensitivity"):
        out[axiom] = np.full((n, m), np.nan)
    if not cams:
        return out
    layer = layer_name(model)
    for i in range(n):
        table = axioms.evaluate_axioms(
            model,
            tiles.images[i : i + 1],
            [1],
            layers=[layer],
            methods=cams,
            rule="logit",
            max_channels=params.axiom_channels or None,
            seed=seed,
        )
        for r in table.itertuples():
            out[r.axiom][i, list(methods).index(r.method)] = r.value
    return out


def deletion_scores(
    params: MetaEvaluationParams,
    run: SeedRun,
    name: str,
    maps: np.ndarray,
    ddpm: tuple | None,
    store: Store,
) -> dict[str, np.ndarray]:
    """Deletion AUC (n, M) of every occlusion strategy, as the IBO chapter computes it: k-means
    levels of each map, Mask_1..Mask_(k-1) occluded cumulatively, P(target) after each, the
    trapezoid AUC. Common random numbers: the methods of a tile share its noise. IBO runs on
    the first ``ibo_tiles`` tiles of the trained models (NaN on the rest and on the randomised
    models: RePaint is the slow part) and only with a DDPM."""
    p, model = params, run.models[name]
    tiles = run.tiles[name if name in TRAINED else _explained(name)]
    n, m = maps.shape[:2]
    levels = occlusion.levels_batch(positive_unit(maps), p.kmeans_k, run.seed)
    k = p.kmeans_k - 1
    xs = faithfulness.occluded_fractions(occlusion.nested_masks(levels, k))
    ibo_params = build_params(ibo_chapter.IboParams, p.ibo_profile, {"device": p.device})
    options = ibo_chapter.strategy_options(ibo_params, run.mean, *(ddpm or (None, {})))
    out = {}
    for strategy in occlusion.STRATEGIES:
        rows = n if strategy != "ibo" else min(n, p.ibo_tiles) if name in TRAINED else 0
        auc = np.full((n, m), np.nan)
        if strategy not in options or rows == 0:
            out[f"deletion_{strategy}"] = auc
            continue
        key_opts, run_opts = options[strategy]
        key = {
            "model": weights_hash(model),
            "tiles": tiles.index[:rows].tolist(),
            "seed": run.seed,
            "strategy": strategy,
            "options": key_opts,
            "k": p.kmeans_k,
            "data": _data_key(p, run.seed, name),
            "maps": _map_options(p),
            "methods": methods_of(p),
        }

        def compute(strategy=strategy, rows=rows, run_opts=run_opts) -> dict[str, np.ndarray]:
            seeds = ibo_study.noise_seeds(run.seed, tiles.index[:rows], m)
            probs = []
            for i in range(0, rows, ibo_study.SAMPLE_CHUNK):
                j = min(i + ibo_study.SAMPLE_CHUNK, rows)
                occluded = ibo_study.occlude_all(
                    strategy, tiles.images[i:j], levels[i:j], seeds[i:j], k, **run_opts
                )
                pk = ibo_study.tumour_probability(model, occluded.reshape(-1, *occluded.shape[3:]))
                p0 = ibo_study.tumour_probability(model, tiles.images[i:j])
                probs.append(
                    np.concatenate(
                        [np.repeat(p0[:, None, None], m, 1), pk.reshape(j - i, m, k)], axis=2
                    )
                )
            return {"auc": faithfulness.trapezoid_auc(xs[:rows], np.concatenate(probs))}

        auc[:rows] = store.cached_arrays("meta-deletion", key, compute)["auc"]
        out[f"deletion_{strategy}"] = auc
    return out


def score_model(
    params: MetaEvaluationParams,
    run: SeedRun,
    name: str,
    maps: np.ndarray,
    twin_maps: np.ndarray | None,
    ddpm: tuple | None,
    store: Store,
) -> pd.DataFrame:
    """Long table ``seed, model, unit, method, metric, value``: the truth and every metric."""
    methods = methods_of(params)
    tiles = run.tiles[name if name in TRAINED else _explained(name)]
    scores = {TRUTH_LABEL: truth_scores(maps, tiles.evidence, params.truth)}
    scores |= annotation_scores(maps, tiles.annotation, params.thesis_threshold)
    scores |= output_scores(params, run.models[name], tiles, maps, methods, run.seed)
    scores |= deletion_scores(params, run, name, maps, ddpm, store)
    if twin_maps is not None:
        signed = [METHODS[k].signed if k in METHODS else False for k in methods]
        scores["randomisation"] = np.array(
            [
                [
                    sanity.rank_correlation(maps[i, j], twin_maps[i, j], absolute=signed[j])
                    for j in range(len(methods))
                ]
                for i in range(len(maps))
            ]
        )
    n, m = maps.shape[:2]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "seed": run.seed,
                    "model": name,
                    "unit": np.repeat(tiles.index, m),
                    "method": np.tile(methods, n),
                    "metric": metric,
                    "value": values.reshape(-1),
                }
            )
            for metric, values in scores.items()
        ],
        ignore_index=True,
    )


# -- the study ---------------------------------------------------------------------------------
@dataclass
class Study:
    """Everything the notebook shows: per seed the models and tiles; all scores; the
    interventions; maps of the first seed for the figures."""

    params: MetaEvaluationParams
    runs: list[SeedRun]
    scores: pd.DataFrame
    interventions: pd.DataFrame
    shortcut: pd.DataFrame
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    ibo: str = ""
    profile: str = "quick"


def ibo_ddpm(params: MetaEvaluationParams, store: Store) -> tuple[tuple | None, str]:
    """The ibo chapter's DDPM of normal tissue for ``ibo_profile`` (or None) and a sentence."""
    if not params.ibo_tiles:
        return None, "IBO not measured (ibo_tiles = 0)"
    ibo_params = build_params(ibo_chapter.IboParams, params.ibo_profile, {"device": params.device})
    dm, key = ibo_chapter.shared_ddpm(ibo_params, store)
    text = (
        f"IBO inpaints with the ibo chapter's DDPM of normal tissue ({params.ibo_profile} "
        f"profile: {ibo_params.ddpm_epochs} epochs, RePaint T = {ibo_params.repaint_steps}, "
        f"j = {ibo_params.jump_length}, r = {ibo_params.resamplings}) on the first "
        f"{params.ibo_tiles} tiles of each trained model and seed; whether its samples pass as "
        "normal tissue is that chapter's gate, measured on that chapter's stain-normalised "
        "tiles with its classifiers. This chapter's tiles are not stain-normalised, so the "
        "tissue IBO inpaints can differ in colour from the tile around it, and that gate does "
        "not speak for these tiles"
    )
    return (dm, key), text


def run_study(
    params: MetaEvaluationParams, profile: str = "quick", store: Store | None = None
) -> Study:
    """The whole experiment over the seeds (models, maps and occlusions cached)."""
    store = store or Store()
    ddpm, ibo_text = ibo_ddpm(params, store)
    runs, scores, interventions, shortcut, examples = [], [], [], [], {}
    for seed in tqdm(params.seeds, desc="seeds"):
        run = prepare_seed(params, seed, store)
        maps = {name: maps_of(params, run, name, store) for name in (*TRAINED, *TWIN.values())}
        for name in (*TRAINED, "randomised"):
            twin = maps[TWIN[name]] if name in TRAINED else None
            scores.append(score_model(params, run, name, maps[name], twin, ddpm, store))
        interventions.append(intervention_rows(run))
        shortcut.append(
            shortcut_check.check(
                "synthetic-he",
                seed,
                shortcut_check.CheckSizes(
                    params.n_train, params.n_val, params.n_test, params.tile_size
                ),
                store=store,
                with_cnn=False,
            )
        )
        if not examples:
            examples = {name: m[:1] for name, m in maps.items()}
        runs.append(run)
    return Study(
        params,
        runs,
        pd.concat(scores, ignore_index=True),
        pd.concat(interventions, ignore_index=True),
        pd.concat(shortcut, ignore_index=True),
        examples,
        ibo_text,
        profile,
    )


# -- tables -------------------------------------------------------------------------------------
def models_table(st: Study) -> pd.DataFrame:
    """Per model: what it learns, its test accuracy and the tiles it explains (mean over seeds)."""
    rows = []
    for name, what in MODELS.items():
        tiles = [r.tiles["clean" if name == "randomised" else name] for r in st.runs]
        acc = [r.accuracy.get(name, np.nan) for r in st.runs]
        rows.append(
            {
                "model": name,
                "what it learns": what,
                "evidence": {
                    "clean": "the tumour mask",
                    "clever_hans": "the pen stroke",
                    "randomised": "none (no evidence use)",
                }[name],
                "test accuracy": float(np.mean(acc)) if name in TRAINED else np.nan,
                "tiles explained per seed": int(np.mean([len(t.index) for t in tiles])),
                "of them assigned to the target class": int(np.mean([t.correct for t in tiles]))
                if name in TRAINED
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


#: the shortcut check's baseline that sees only what lies outside the evidence mask
OUTSIDE = "outside-mask colour"


def shortcut_table(st: Study) -> pd.DataFrame:
    """The data chapter's shortcut check on these tiles, its baseline that reads only the
    pixels outside the tumour mask: at chance, the outside carries no class evidence."""
    table = shortcut_check.accuracy_table(
        st.shortcut[st.shortcut["method"] == OUTSIDE], n_boot=st.params.n_boot
    )
    return table.drop(columns=["dataset"], errors="ignore")


def intervention_table(st: Study) -> pd.DataFrame:
    """Per model: mean P(target) of the tiles, without the evidence and without the rest, and
    the verification: P(without the rest) - P(without the evidence), with its interval."""
    rows = []
    for name, g in st.interventions.groupby("model", sort=False):
        diff = g.assign(value=g["without the rest"] - g["without evidence"])
        est, low, high = bootstrap_interval(diff, n_boot=st.params.n_boot)
        rows.append(
            {
                "model": name,
                "P(target)": g["original"].mean(),
                "without evidence": g["without evidence"].mean(),
                "without the rest": g["without the rest"].mean(),
                "rest − evidence": est,
                "ci_low": low,
                "ci_high": high,
                "evidence verified": bool(low > 0),
            }
        )
    return pd.DataFrame(rows)


def unverified(st: Study) -> list[str]:
    """The trained models whose evidence the intervention did not verify."""
    t = intervention_table(st).set_index("model")
    return [m for m in TRAINED if not t.loc[m, "evidence verified"]]


def _metric_names(st: Study) -> list[str]:
    present = set(st.scores["metric"])
    return [k for k in METRICS if k in present]


def paired_rows(st: Study, model: str, metric: str) -> pd.DataFrame:
    """Rows ``seed, unit, method (code), truth, score`` of one model and metric (pairs with a
    finite score only)."""
    s = st.scores[st.scores["model"] == model]
    wide = s[s["metric"].isin([TRUTH_LABEL, metric])].pivot_table(
        index=["seed", "unit", "method"], columns="metric", values="value", dropna=False
    )
    if metric not in wide:
        return pd.DataFrame(columns=["seed", "unit", "method", "truth", "score"])
    wide = wide.rename(columns={TRUTH_LABEL: "truth", metric: "score"}).reset_index()
    wide = wide[np.isfinite(wide["score"]) & np.isfinite(wide["truth"])]
    codes = {name: i for i, name in enumerate(methods_of(st.params))}
    return wide.assign(method=wide["method"].map(codes)).reset_index(drop=True)


def method_means(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` per method code, for the codes present (in code order)."""
    codes = np.asarray(codes, int)
    counts = np.bincount(codes)
    sums = np.bincount(codes, np.asarray(values, float), len(counts))
    return sums[counts > 0] / counts[counts > 0]


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two short score vectors (scipy's definition, for the bootstrap's
    thousands of calls on a handful of methods); NaN when either is constant."""
    dx = np.sign(np.subtract.outer(x, x))
    dy = np.sign(np.subtract.outer(y, y))
    pairs = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / pairs) if pairs else float("nan")


def agreement(
    truth: np.ndarray, score: np.ndarray, higher_is_better: bool, what: str = "tau"
) -> float:
    """Kendall's tau (``tau``) or MARD (``mard``) between the methods' ranking by ``score``
    (means per method) and by ``truth`` (higher is better). A metric that gives every method
    the same score ranks nothing: tau 0."""
    if len(truth) < 2:
        return float("nan")
    if what == "mard":
        r_truth = faithfulness.rank(truth, higher_is_better=True)
        return faithfulness.mard(r_truth, faithfulness.rank(score, higher_is_better))
    if np.ptp(score) == 0:
        return 0.0
    return kendall_tau_b(truth, score if higher_is_better else -np.asarray(score))


def ranking_statistic(higher_is_better: bool, what: str = "tau") -> ArrayStatistic:
    """A claims statistic: :func:`agreement` of the method means of the rows (columns
    ``method``, ``truth``, ``score``)."""
    return ArrayStatistic(
        ("method", "truth", "score"),
        lambda m, t, s: agreement(method_means(m, t), method_means(m, s), higher_is_better, what),
    )


def win_rows(st: Study, metric: str) -> pd.DataFrame:
    """Per seed, tile and method: 1 when ``metric`` scores the clean model's map better than
    the randomised model's map of the same tile, 0.5 on a tie, 0 when worse."""
    s = st.scores[st.scores["metric"] == metric]
    wide = s.pivot_table(index=["seed", "unit", "method"], columns="model", values="value")
    if "clean" not in wide or "randomised" not in wide:
        return pd.DataFrame(columns=["seed", "unit", "method", "value"])
    wide = wide[np.isfinite(wide["clean"]) & np.isfinite(wide["randomised"])]
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    d = np.sign(sign * (wide["clean"] - wide["randomised"]))
    return wide.assign(value=0.5 + 0.5 * d)[["value"]].reset_index()


def agreement_table(st: Study) -> pd.DataFrame:
    """The chapter's answer: per metric, how well its ranking of the methods agrees with the
    truth's on each trained model (Kendall's tau, MARD, 95 % intervals over seeds and tiles),
    and how often it prefers the clean model's map to the randomised model's (0.5: never
    tells them apart)."""
    rows = []
    for key in _metric_names(st):
        metric, row = METRICS[key], {}
        row.update(metric=metric.label, paper=metric.paper, reads=metric.reads)
        for model in TRAINED:
            data = paired_rows(st, model, key)
            for what in ("tau", "mard"):
                est, low, high = bootstrap_interval(
                    data, ranking_statistic(metric.higher_is_better, what), n_boot=st.params.n_boot
                )
                row[f"{what} {model}"] = est
                row[f"{what} {model} low"], row[f"{what} {model} high"] = low, high
            row[f"methods {model}"] = int(data["method"].nunique()) if len(data) else 0
        wins = win_rows(st, key)
        est, low, high = (
            bootstrap_interval(wins, n_boot=st.params.n_boot)
            if len(wins)
            else (np.nan, np.nan, np.nan)
        )
        row.update(
            {
                "beats randomised": est,
                "beats randomised low": low,
                "beats randomised high": high,
                "key": key,
            }
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("tau clean", ascending=False, kind="stable").reset_index(drop=True)


def truth_table(st: Study) -> pd.DataFrame:
    """The ground-truth ranking: the truth score of every method per trained model (mean over
    tiles and seeds, 95 % interval) and its rank."""
    rows = []
    for model in TRAINED:
        s = st.scores[(st.scores["model"] == model) & (st.scores["metric"] == TRUTH_LABEL)]
        for method, g in s.groupby("method", sort=False):
            est, low, high = bootstrap_interval(g, n_boot=st.params.n_boot)
            rows.append(
                {
                    "model": model,
                    "method": method_label(method),
                    "truth": est,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("model")["truth"].rank(ascending=False, method="min")
    return table.sort_values(["model", "rank"], kind="stable").reset_index(drop=True)


def scores_table(st: Study, model: str = "clean") -> pd.DataFrame:
    """Mean of every metric per method for ``model`` (rows: metrics, columns: methods)."""
    s = st.scores[st.scores["model"] == model]
    wide = s.pivot_table(index="metric", columns="method", values="value", aggfunc="mean")
    order = [TRUTH_LABEL, *_metric_names(st)]
    wide = wide.reindex([k for k in order if k in wide.index])[methods_of(st.params)]
    wide.index = [METRICS[k].label if k in METRICS else k for k in wide.index]
    wide.columns = [method_label(c) for c in wide.columns]
    return wide.reset_index(names="metric")


# -- claims -------------------------------------------------------------------------------------
def _hasany_best(what: str) -> str:
    """Table 1's Dice Explained (``dice``) or Saliency Ratio (``ratio``) of the two methods
    the survey names best, from its paper record."""
    number = segmentation_xai.PAPER.number
    return (
        f"RISE-500 {number(f't1.rise.0.2.500.{what}')}, "
        f"Seg-Ablation-CAM {number(f't1.seg-ablation-cam.0.05.{what}')}"
    )


def _ibo_vs(st: Study, other: str) -> pd.DataFrame:
    """Rows where IBO and ``other`` both scored the clean model's maps: truth, score (IBO),
    other."""
    a = paired_rows(st, "clean", "deletion_ibo")
    b = paired_rows(st, "clean", f"deletion_{other}")
    return a.merge(
        b[["seed", "unit", "method", "score"]].rename(columns={"score": "other"}),
        on=["seed", "unit", "method"],
    )


def _mard_gap(method: np.ndarray, truth: np.ndarray, ibo: np.ndarray, other: np.ndarray):
    truth = method_means(method, truth)
    mard = [agreement(truth, method_means(method, s), False, "mard") for s in (other, ibo)]
    return mard[0] - mard[1]


#: a claims statistic: MARD(other strategy) - MARD(IBO), columns method, truth, score, other
MARD_GAP = ArrayStatistic(("method", "truth", "score", "other"), _mard_gap)


def _tau_gap(higher_is_better: bool) -> ArrayStatistic:
    """A claims statistic: tau(Clever Hans) - tau(clean) of one metric (column ``hans``: the
    row is the Clever-Hans model's)."""

    def gap(method, truth, score, hans):
        taus = []
        for rows in (hans, ~hans):
            if not rows.any():
                return float("nan")
            means = [method_means(method[rows], v[rows]) for v in (truth, score)]
            taus.append(agreement(*means, higher_is_better))
        return taus[0] - taus[1]

    return ArrayStatistic(("method", "truth", "score", "hans"), gap)


def claims(st: Study) -> list[dict[str, object]]:
    """Each paper's claim about its own metric, judged on the known truth."""
    p, out = st.params, []
    names = _metric_names(st)
    common = dict(n_boot=p.n_boot, data_name="synthetic-he", profile=st.profile)
    failed = unverified(st)
    note = f"the intervention did not verify the evidence of: {', '.join(failed)}" if failed else ""

    def tau_claim(cid, paper, source, statement, quote, key, model):
        m = METRICS[key]
        claim = Claim(
            cid,
            paper,
            source,
            statement,
            quote,
            f"Kendall's tau between the {m.label} ranking of the methods and the "
            f"truth's, {model} model",
            ">",
            0.0,
            ranking_statistic(m.higher_is_better),
        )
        data = paired_rows(st, model, key) if key in names else None
        out.append(judge(claim, data, note=note, **common))

    # Afshar et al.: IBO's rankings are the closest to the ground truth (Table 9)
    for other in [s for s in occlusion.STRATEGIES if s != "ibo"]:
        claim = Claim(
            f"ibo_closer_than_{other}",
            _AFSHAR,
            "Table 9",
            f"IBO's deletion-AUC ranking of the methods is closer to the ground truth than "
            f"{occlusion.STRATEGIES[other]}'s",
            f"MARD {ibo_chapter.PAPER.number('table9.mard.ibo')} vs "
            f"{ibo_chapter.PAPER.number(f'table9.mard.{other}')}",
            f"MARD({occlusion.STRATEGIES[other]}) − MARD(IBO) against the truth's ranking, "
            "clean model, tiles occluded with both",
            ">",
            0.0,
            MARD_GAP,
            not_testable=""
            if "deletion_ibo" in names and p.ibo_tiles
            else "IBO was not measured (ibo_tiles = 0)",
        )
        data = _ibo_vs(st, other) if not claim.not_testable else None
        out.append(judge(claim, data, note=note, **common))
    # Valatkaitė: a high IoU with the ground truth indicates an accurate interpretation
    quote = (
        '"A high IoU between predicted and ground truth output indicates accurate interpretation"'
    )
    for model in TRAINED:
        tau_claim(
            f"thesis_iou_ranks_truth_{model}",
            _THESIS,
            "Sect. 3.5.1, Eq. 9",
            "the IoU with the annotation ranks interpretation methods by their quality",
            quote,
            "thesis_iou",
            model,
        )
    # You et al.: the axioms limit the non-explainable factors of a CAM
    for axiom in ("conservation", "sensitivity"):
        for model in TRAINED:
            tau_claim(
                f"{axiom}_ranks_truth_{model}",
                _YOU,
                "Methods (the axioms), Table 4",
                f"a lower {axiom} axiom error means a more faithful CAM",
                f"the {axiom} axiom limits the non-explainable factors",
                axiom,
                model,
            )
    tau_claim(
        "miou_ranks_truth_clean",
        _YOU,
        "Tables 1-3",
        "a higher IoU with the annotated structures means a better CAM",
        "mIoU as the measure of localisation",
        "miou",
        "clean",
    )
    # Hasany et al.: Dice Explained up, Saliency Ratio down
    for key, quote in (
        ("dice_explained", _hasany_best("dice")),
        ("saliency_ratio", _hasany_best("ratio")),
    ):
        for model in TRAINED:
            tau_claim(
                f"{key}_ranks_truth_{model}",
                _HASANY,
                "Table 1, Fig. 4",
                f"{METRICS[key].label} ({METRICS[key].direction}) ranks saliency methods",
                quote,
                key,
                model,
            )
    # Borys et al.: a match with the clinicians' ground truth does not show similar reasoning
    for key in ("pointing_game", "tour_iou"):
        claim = Claim(
            f"{key}_fails_on_clever_hans",
            _BORYS,
            "Sect. 3 (Conclusion)",
            "agreement with the annotation does not show that the model reasons like the "
            f"annotator: the {METRICS[key].label} ranks methods worse on a Clever-Hans model",
            'validation "concluding that a match indicates similar reasoning" is questioned',
            f"tau(Clever Hans) − tau(clean) of the {METRICS[key].label} ranking against the "
            "truth's",
            "<",
            0.0,
            _tau_gap(METRICS[key].higher_is_better),
        )
        data = (
            pd.concat(
                [
                    paired_rows(st, m, key).assign(
                        hans=m == "clever_hans", unit=lambda d, m=m: m + ":" + d["unit"].astype(str)
                    )
                    for m in TRAINED
                ],
                ignore_index=True,
            )
            if key in names
            else None
        )
        out.append(judge(claim, data, note=note, **common))
    # the sanity check (Adebayo et al., in Borys et al. and You et al.)
    for model in TRAINED:
        tau_claim(
            f"randomisation_ranks_truth_{model}",
            _BORYS,
            "Sect. 2.2 (GBP, ref. 48)",
            "a map that changes when the model is randomised is more faithful",
            'GBP "could be invariant to data and models"',
            "randomisation",
            model,
        )
    return out


# -- figures ------------------------------------------------------------------------------------
def _show(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def evidence_figure(st: Study) -> plt.Figure:
    """One tile per trained model: the tile, its annotation, the evidence the model uses and
    the two interventions, with P(target) above each."""
    run = st.runs[0]
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.4))
    for row, name in enumerate(TRAINED):
        t = run.tiles[name]
        x, e, a, d = t.images[:1], t.evidence[:1], t.annotation[0], t.donors[:1]
        without_e, without_r = intervene(x, e, d)
        probs = [
            ibo_study.tumour_probability(run.models[name], z)[0] for z in (x, without_e, without_r)
        ]
        panels = [
            (x[0], f"tile, P = {probs[0]:.2f}"),
            (None, "annotation / evidence"),
            (without_e[0], f"without evidence, P = {probs[1]:.2f}"),
            (without_r[0], f"without the rest, P = {probs[2]:.2f}"),
        ]
        for ax, (img, title) in zip(axes[row], panels, strict=True):
            if img is None:
                ax.imshow(_show(x[0]))
                ax.contour(a, levels=[0.5], colors="black", linewidths=1)
                ax.contourf(e[0], levels=[0.5, 1], colors=["#e41a1c"], alpha=0.45)
            else:
                ax.imshow(_show(img))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        axes[row, 0].text(
            -0.1,
            0.5,
            name.replace("_", " "),
            transform=axes[row, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=10,
        )
    fig.suptitle(
        "What each model uses (red) and the annotation (black outline); P = P(target)", fontsize=9
    )
    fig.tight_layout()
    return fig


def maps_figure(st: Study) -> plt.Figure:
    """The maps of every method for the first tile of each model (first seed)."""
    methods = methods_of(st.params)
    run = st.runs[0]
    names = [*TRAINED, "randomised"]
    fig, axes = plt.subplots(
        len(names), len(methods) + 1, figsize=(1.35 * (len(methods) + 1), 1.5 * len(names) + 0.4)
    )
    for r, name in enumerate(names):
        t = run.tiles["clean" if name == "randomised" else name]
        axes[r, 0].imshow(_show(t.images[0]))
        axes[r, 0].contour(t.evidence[0], levels=[0.5], colors="#e41a1c", linewidths=0.8)
        axes[r, 0].set_title(name.replace("_", " "), fontsize=7)
        for c, method in enumerate(methods, start=1):
            m = st.examples[name][0, c - 1]
            signed = METHODS[method].signed if method in METHODS else False
            axes[r, c].imshow(
                tour.display_map(m, signed),
                cmap=tour.SIGNED_CMAP if signed else tour.UNSIGNED_CMAP,
                vmin=-1 if signed else 0,
                vmax=1,
            )
            axes[r, c].contour(t.evidence[0], levels=[0.5], colors="black", linewidths=0.5)
            axes[r, c].set_title(method_label(method), fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def agreement_figure(table: pd.DataFrame) -> plt.Figure:
    """Metrics ordered by their agreement with the truth on the clean model: Kendall's tau
    per trained model (left) and how often the metric prefers a trained model's map to the
    randomised model's (right), 95 % intervals."""
    t = table.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(t))
    fig, (a1, a2) = plt.subplots(
        1, 2, figsize=(10, 0.3 * len(t) + 1.6), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    for model, colour, dy in (("clean", "#1b7837", 0.15), ("clever_hans", "#c51b7d", -0.15)):
        est = t[f"tau {model}"].to_numpy(float)
        err = np.abs(np.vstack([est - t[f"tau {model} low"], t[f"tau {model} high"] - est]))
        a1.errorbar(
            est,
            y + dy,
            xerr=np.nan_to_num(err),
            fmt="o",
            ms=4,
            color=colour,
            label=model.replace("_", "-"),
            capsize=0,
            lw=1.2,
        )
    a1.axvline(0, color="black", lw=0.8)
    a1.set_xlim(-1.05, 1.05)
    a1.set_xlabel("Kendall's τ with the truth's ranking")
    a1.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    est = t["beats randomised"].to_numpy(float)
    err = np.abs(np.vstack([est - t["beats randomised low"], t["beats randomised high"] - est]))
    a2.errorbar(est, y, xerr=np.nan_to_num(err), fmt="s", ms=4, color="#2166ac", lw=1.2)
    a2.axvline(0.5, color="black", lw=0.8)
    a2.set_xlim(-0.02, 1.02)
    a2.set_xlabel("share scored above the randomised\nmodel's map (0.5: no separation)")
    a1.set_yticks(
        y,
        [f"{m} ({p.split()[0]})" for m, p in zip(t["metric"], t["paper"], strict=True)],
        fontsize=7,
    )
    fig.suptitle("Which metric tells the truth? (ordered by τ on the clean model)", fontsize=10)
    fig.tight_layout()
    return fig


def agreement_view(table: pd.DataFrame) -> pd.DataFrame:
    """The agreement table as the book shows it: estimates with their intervals in one cell."""

    def cell(row, col, digits=2):
        est, low, high = row[col], row[f"{col} low"], row[f"{col} high"]
        if not np.isfinite(est):
            return "—"
        return f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    view = pd.DataFrame({"metric": table["metric"], "paper": table["paper"]})
    for model in TRAINED:
        view[f"τ, {model}"] = [cell(r, f"tau {model}") for _, r in table.iterrows()]
        view[f"MARD, {model}"] = [cell(r, f"mard {model}") for _, r in table.iterrows()]
    view["beats randomised"] = [cell(r, "beats randomised") for _, r in table.iterrows()]
    view["compares with"] = table["reads"]
    return view


def findings(table: pd.DataFrame) -> str:
    """What the agreement table shows, as Markdown bullets computed from its intervals: the
    metrics whose tau interval lies above 0 (agree with the truth), below 0 (rank against it)
    or around 0, per trained model, and which metrics separate the trained model's maps from
    the randomised model's."""

    def names(mask: pd.Series) -> str:
        picked = table[mask]
        return ", ".join(
            f"{m} ({p.split()[0]})" for m, p in zip(picked["metric"], picked["paper"], strict=True)
        )

    lines = []
    for model in TRAINED:
        low, high = table[f"tau {model} low"], table[f"tau {model} high"]
        label = model.replace("_", "-")
        lines.append(
            f"- **{label} model, agree with the truth** (τ interval above 0): "
            f"{names(low > 0) or 'none'}."
        )
        lines.append(
            f"- **{label} model, rank against the truth** (τ interval below 0): "
            f"{names(high < 0) or 'none'}."
        )
        lines.append(
            f"- **{label} model, cannot tell** (interval contains 0): "
            f"{int(((low <= 0) & (high >= 0)).sum())} metrics."
        )
    low, high = table["beats randomised low"], table["beats randomised high"]
    lines.append(
        f"- **Prefer the clean model's maps to the randomised model's** (interval above "
        f"0.5): {names(low > 0.5) or 'none'}; **prefer the randomised model's** (below "
        f"0.5): {names(high < 0.5) or 'none'}."
    )
    return "\n".join(lines)


def run_record(st: Study) -> str:
    """One sentence: what the study ran."""
    p = st.params
    return (
        f"{len(p.seeds)} seeds × {p.n_tiles} tiles per model, {len(methods_of(p))} methods, "
        f"{len(_metric_names(st))} metrics; truth: {TRUTHS[p.truth]}. {st.ibo}."
    )


CHAPTER = Chapter(
    name="meta_evaluation",
    title="Meta-evaluation: which metric tells the truth?",
    params=MetaEvaluationParams,
    order=5,
    part="Synthesis",
    compute=run_study,
)
