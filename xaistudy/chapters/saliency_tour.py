"""Chapter ``saliency_tour``: the review's saliency methods on one tumour classifier.

Borys et al. (2023) list each method's strength and weakness (Table B1). This module trains a
tumour-vs-normal classifier and its Clever-Hans twin per seed, runs every method on the same
tiles and measures what Table B1 asserts: cost (warm seconds, passes), localisation, the
randomisation sanity check, deletion / insertion faithfulness, visual noise, sensitivity to
the methods' settings, whether their perturbations stay in distribution, and where the maps
of a shortcut model point. :func:`claims` judges each assertion over all seeds. The notebook
is ``notebooks/saliency_tour.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from xaistudy import plots
from xaistudy.chapters import Chapter, PaperRecord, Setting
from xaistudy.claims import Claim, bootstrap_interval, judge, paired_difference
from xaistudy.data import shortcuts
from xaistudy.data.datasets import get_dataset, get_spec
from xaistudy.evaluate import faithfulness, localisation, sanity
from xaistudy.exercises import Exercise, Outcome
from xaistudy.explain import explain, tour
from xaistudy.explain import taxonomy as tx
from xaistudy.explain.rise import rise_masks
from xaistudy.models.classifiers import resolve_device, target_layer
from xaistudy.models.train import make_loader, predict
from xaistudy.params import (
    DatasetSeedsParams,
    Pretrained,
    choices_field,
    dataset_field,
)
from xaistudy.store import Store


class SaliencyTourParams(DatasetSeedsParams):
    """The ``saliency_tour`` chapter: the review's methods on one tumour classifier."""

    dataset: str = dataset_field(
        "synthetic-he", ["synthetic-he", "camelyon16"], "tumour vs normal tiles"
    )
    PRETRAINED_FOR: ClassVar[str] = "model"

    model: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="classifier: small_cnn (fast on a CPU), resnet18 or resnet50",
    )
    pretrained: Pretrained = Field(
        False,
        description="start from ImageNet weights (resnets only): false, true (the standard "
        "local cache file) or a weights file path; never downloaded",
    )
    tile_size: int = Field(64, ge=64, le=256, description="H&E tile side in pixels (64-256)")
    n_train: int = Field(400, ge=8, le=100000, description="training tiles per model (balanced)")
    n_val: int = Field(80, ge=4, le=20000, description="validation tiles")
    n_test: int = Field(200, ge=4, le=20000, description="test tiles (accuracy, Clever Hans)")
    epochs: int = Field(6, ge=1, le=300, description="training epochs (best validation loss kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    methods: str = choices_field(
        tx.TOUR_METHODS, "all", "methods", "comma-separated methods of the grid and table, or all"
    )
    n_eval: int = Field(
        12, ge=1, le=5000, description="correctly classified tumour test tiles scored per method"
    )
    occlusion_window: int = Field(8, ge=2, le=64, description="occlusion patch side (px)")
    lime_samples: int = Field(200, ge=10, le=10000, description="LIME perturbed samples")
    shap_samples: int = Field(150, ge=10, le=10000, description="KernelSHAP perturbed samples")
    rise_masks: int = Field(400, ge=10, le=20000, description="RISE random masks")
    ig_steps: int = Field(32, ge=2, le=1000, description="Integrated Gradients steps")
    smoothgrad_samples: int = Field(16, ge=1, le=500, description="SmoothGrad noisy samples")
    binarise: str = choices_field(
        [rule for rule in localisation.BINARISE_RULES if rule != "threshold"],
        "mask_area",
        "binarise",
        "how maps are binarised for the IoU: mask_area (top pixels as many as the "
        "mask has), top_fraction (top `top_fraction` of pixels) or otsu",
        many=False,
        noun="rule",
    )
    top_fraction: float = Field(0.2, gt=0, le=1, description="share kept by top_fraction")
    pointing_tolerance: int = Field(
        0, ge=0, le=32, description="pointing-game tolerance (px the mask is dilated by)"
    )
    sanity_top_k: int = Field(
        2, ge=1, le=200, description="top weight layers re-initialised for the sanity check"
    )
    cascade_layers: int = Field(
        8, ge=0, le=200, description="layers of the cascading randomisation plot (0: skip it)"
    )
    shortcut_cooccurrence: float = Field(
        0.95,
        ge=0,
        le=1,
        description="P(pen mark | tumour) = 1 - P(pen mark | normal) in the Clever-Hans "
        "training data (0.5: the mark carries no class information)",
    )
    shortcut_ink: str = Field(
        "green",
        pattern=r"^(blue|green|black)$",
        description="pen ink: green, blue (close to haematoxylin, a subtler shortcut) or black",
    )
    n_shortcut_maps: int = Field(4, ge=1, le=16, description="marked tiles shown with maps")
    hans_methods: str = choices_field(
        tx.TOUR_METHODS,
        "gradcam,occlusion,integrated_gradients,lrp,rise",
        "hans_methods",
        "comma-separated methods whose maps of both Clever-Hans models are scored "
        "(attribution mass on the pen mark), or all",
    )
    explain_seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="seed of the explanations' own sampling only (LIME, KernelSHAP, RISE, "
        "SmoothGrad); data and models follow `seeds`",
    )
    timing_repeats: int = Field(
        3, ge=1, le=100, description="timed calls per method (one tile, warm; median reported)"
    )
    n_sweep: int = Field(
        6, ge=1, le=500, description="tiles of the parameter-sensitivity sweep, per seed"
    )
    n_ood: int = Field(
        20, ge=1, le=5000, description="normal tiles of the in-distribution check, per seed"
    )
    faithfulness_steps: int = Field(
        16, ge=2, le=256, description="steps of the deletion and insertion curves"
    )

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_train": 64,
            "n_val": 16,
            "n_test": 40,
            "epochs": 2,
            "batch_size": 8,
            "cascade_layers": 1,
            "n_eval": 1,
            "lime_samples": 20,
            "shap_samples": 20,
            "rise_masks": 32,
            "ig_steps": 4,
            "smoothgrad_samples": 2,
            "occlusion_window": 16,
            "shortcut_cooccurrence": 1.0,
            "n_shortcut_maps": 2,
            "seeds": [0],
            "timing_repeats": 1,
            "n_sweep": 1,
            "n_ood": 2,
            "faithfulness_steps": 4,
        },
        "quick": {},
        "paper": {
            "dataset": "camelyon16",
            "model": "resnet50",
            "tile_size": 224,
            "n_train": 4000,
            "n_val": 500,
            "n_test": 1000,
            "epochs": 30,
            "batch_size": 32,
            "n_eval": 100,
            "occlusion_window": 16,
            "lime_samples": 1000,
            "shap_samples": 1000,
            "rise_masks": 4000,
            "ig_steps": 50,
            "smoothgrad_samples": 50,
            "pointing_tolerance": 15,
        },
    }
    #: the paper profile's model, sizes and sample counts on the synthetic tiles
    PROFILES["gpu"] = {**PROFILES["paper"], "dataset": "synthetic-he"}


# -- the review: its Table B1 and Fig. 7 in one place ---------------------------------------------
def _review_numbers() -> dict[str, str]:
    numbers = {"fig7.score": "0.98 ('Hand', DenseNet121 on MedNIST)"}
    for entry in tx.REVIEW:
        if entry.method and entry.strength:
            numbers[f"b1.{entry.method}.strength"] = entry.strength
            numbers[f"b1.{entry.method}.weakness"] = entry.weakness
    numbers.update(
        {  # single statements of multi-line Table B1 cells, and the text's
            "b1.lime.expense": "High computational expense",
            "b1.cam.localisation": "Inaccurate localization of heatmap",
            "b1.rise.morphology": "Approximate results of object morphology",
            "parameters.lime": "Relies on pre-defined parameters (Table B1); 'minor alterations "
            "can lead to significant differences in results' (Sect. 2.1)",
            "parameters.rise": "Relies on pre-defined parameters",
            "parameters.smoothgrad": numbers["b1.smoothgrad.weakness"],
            "parameters.integrated_gradients": numbers["b1.integrated_gradients.weakness"],
            "parameters.lrp": numbers["b1.lrp.weakness"],
        }
    )
    return numbers


PAPER = PaperRecord(
    key="borys2023saliency",
    citation="Borys et al. 2023",
    file="004_6fbc4ed098113fe3.txt",
    settings=(
        Setting("data (Fig. 7)", "MedNIST, six classes", "dataset", "tumour vs normal H&E tiles"),
        Setting("model (Fig. 7)", "DenseNet121", "model", "no DenseNet in this chapter"),
        Setting("methods", "Table B1 (18 listed)", "methods", "run where a library exists"),
        Setting("library (Fig. 7)", "captum", "", "captum, lime, zennit, pytorch-grad-cam"),
    ),
    numbers=_review_numbers(),
)
B1 = "Table B1"
TEXT = "Sect. 2"

#: the one-setting change per method of the parameter-sensitivity sweep (a "minor alteration")
SWEEP: dict[str, tuple[str, str]] = {
    "lime": ("num_samples", "half the samples"),
    "kernel_shap": ("n_segments", "35 instead of 50 superpixels"),
    "rise": ("cells", "a 6×6 instead of an 8×8 mask grid"),
    "smoothgrad": ("stdevs", "noise σ 0.25 instead of 0.15"),
    "integrated_gradients": ("n_steps", "a quarter of the steps"),
    "lrp": ("composite", "α2β1 instead of the ε + z⁺ rule for convolutions"),
}
STOCHASTIC = ("lime", "kernel_shap", "rise", "smoothgrad")
#: the perturbations of the in-distribution check
PERTURBATIONS = (
    "RISE masks (black)",
    "occlusion window (black)",
    "LIME superpixels off (black)",
    "KernelSHAP superpixels off (black)",
    "all black",
)
SIGNED_FAMILY = {"perturbation": "#8c6bb1", "backpropagation": "#41ab5d", "cam": "#ef6548"}


def grid_methods(params: SaliencyTourParams) -> list[str]:
    """The methods of the grid, in the review's order."""
    chosen = tx.TOUR_METHODS if params.methods == "all" else params.methods.split(",")
    return [m for m in tx.TOUR_METHODS if m in chosen]


def label(method: str) -> str:
    """The display name of ``method`` (``rise_np``: RISE with Petsiuk's N·p division)."""
    return "RISE (N·p)" if method == "rise_np" else tx.method_info(method)["label"]


def options(params: SaliencyTourParams, method: str, **change: Any) -> dict[str, Any]:
    """The options ``explain`` gets for ``method`` (``change`` overrides some)."""
    opts = tx.method_options(
        method,
        occlusion_window=params.occlusion_window,
        lime_samples=params.lime_samples,
        shap_samples=params.shap_samples,
        rise_masks=params.rise_masks,
        ig_steps=params.ig_steps,
        smoothgrad_samples=params.smoothgrad_samples,
        seed=params.explain_seed,
    )
    return {**opts, **change}


# -- data and models ------------------------------------------------------------------------------
@dataclass
class Models:
    """One seed's data, its classifier and its Clever-Hans twin."""

    seed: int
    train: Dataset
    test: Dataset
    net: nn.Module
    hans: nn.Module
    start: str
    best_epoch: int
    test_sets: dict[str, Dataset]


def _pen_set(params: SaliencyTourParams, seed: int, split: str, base: Dataset, co: float):
    if get_spec(params.dataset).needs_root:
        return shortcuts.with_pen_marks(base, split, seed, cooccurrence=co, ink=params.shortcut_ink)
    return get_dataset(
        "synthetic-he-pen",
        split,
        n=len(base),
        cooccurrence=co,
        size=params.tile_size,
        seed=seed,
        ink=params.shortcut_ink,
    )


def train_models(params: SaliencyTourParams, seed: int, device: torch.device) -> Models:
    """The run's tiles for ``seed`` and both classifiers (trained, or loaded from the cache)."""
    store = Store()
    real = get_spec(params.dataset).needs_root
    kw = {"size": params.tile_size, "seed": seed}
    load = {**kw, "data_root": params.data_root or None, **params.data_options}
    train = get_dataset(params.dataset, "train", n=params.n_train, **load)
    val = get_dataset(params.dataset, "val", n=params.n_val, **load)
    test = get_dataset(params.dataset, "test", n=params.n_test, **load)
    data_id: dict[str, Any] = {
        "dataset": params.dataset,
        "n_train": params.n_train,
        "n_val": params.n_val,
        **kw,
    }
    if real:
        data_id.update(
            data_options=params.data_options,
            files=[getattr(d, "fingerprint", "") for d in (train, val)],
        )
    fit_kw = dict(
        epochs=params.epochs,
        lr=params.lr,
        batch_size=params.batch_size,
        seed=seed,
        device=device,
        pretrained=params.pretrained,
        store=store,
    )
    clean, start = tour.train_classifier(
        params.model, train, val, data=data_id, desc=f"classifier, seed {seed}", **fit_kw
    )
    co, ink = params.shortcut_cooccurrence, params.shortcut_ink
    pen_id = {
        **data_id,
        "pen": "synthetic-he-pen" if not real else "with_pen_marks",
        "cooccurrence": co,
        "ink": ink,
    }
    shortcut, _ = tour.train_classifier(
        params.model,
        _pen_set(params, seed, "train", train, co),
        _pen_set(params, seed, "val", val, co),
        data=pen_id,
        desc=f"shortcut classifier, seed {seed}",
        **fit_kw,
    )
    test_sets = {
        "marked as in training": _pen_set(params, seed, "test", test, co),
        "clean (no marks)": test,
        "marks on normal tiles only": _pen_set(params, seed, "test", test, 0.0),
    }
    return Models(
        seed,
        train,
        test,
        clean.model.to(device).eval(),
        shortcut.model.to(device).eval(),
        start,
        clean.best_epoch,
        test_sets,
    )


def classifier_row(params: SaliencyTourParams, m: Models, probs, labels) -> dict[str, Any]:
    """One row of the classifier table."""
    return {
        "data": params.dataset,
        "model": params.model,
        "start": m.start,
        "epochs": params.epochs,
        "best_epoch": m.best_epoch,
        "train_tiles": params.n_train,
        "test_tiles": len(labels),
        "test_accuracy": float((probs.argmax(1) == labels).mean()),
        "cam_layer": type(target_layer(m.net)).__name__,
    }


# -- measures of one map ---------------------------------------------------------------------------
def roughness(saliency: np.ndarray) -> float:
    """Visual noise of a map: mean absolute difference of neighbouring pixels over mean |map|.

    Scale-free (a map times a constant keeps its value); 0 for a constant map.
    """
    s = np.asarray(saliency, dtype=np.float64)
    scale = np.abs(s).mean()
    if scale == 0:
        return 0.0
    tv = np.abs(np.diff(s, axis=0)).mean() + np.abs(np.diff(s, axis=1)).mean()
    return float(tv / scale)


def negative_share(saliency: np.ndarray) -> float:
    """Share of a map's absolute mass that is negative (evidence against the class)."""
    s = np.asarray(saliency, dtype=np.float64)
    total = np.abs(s).sum()
    return float(np.clip(-s, 0, None).sum() / total) if total > 0 else 0.0


def rise_np_maps(rise_maps: np.ndarray, params: SaliencyTourParams, p: float = 0.5) -> np.ndarray:
    """Petsiuk et al.'s RISE (division by N·p) from the book's maps (division by coverage).

    Same masks, same scores: ``sum_i s_i M_i = coverage × map``, so the N·p map is
    ``map × coverage / (N p)`` exactly.
    """
    opts = options(params, "rise")
    coverage = rise_masks(opts["n_masks"], rise_maps.shape[-2:], seed=opts["seed"])[:, 0].sum(0)
    return (rise_maps * coverage.numpy() / (opts["n_masks"] * p)).astype(np.float32)


def probability(model: nn.Module, target: int = 1):
    """A batch scorer (numpy in, numpy out): the softmax probability of ``target``."""
    dev = next(model.parameters()).device

    @torch.no_grad()
    def score(batch: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(batch, dtype=torch.float32, device=dev)
        return torch.softmax(model(x), dim=1)[:, target].cpu().numpy()

    return score


# -- one seed ------------------------------------------------------------------------------------
@dataclass
class SeedRun:
    """Everything measured for one seed: tidy tables (``seed`` and ``unit`` columns) and, for
    the first seed, what the figures show."""

    tables: dict[str, pd.DataFrame]
    shown: dict[str, Any] = field(default_factory=dict)


def _maps(store: Store, kind: str, key: dict[str, Any], compute) -> dict[str, np.ndarray]:
    return store.cached_arrays(f"saliency_tour-{kind}", key, compute)


def grid_maps(params, m: Models, idx: np.ndarray, x: torch.Tensor) -> dict[str, dict]:
    """Maps of every grid method for the tumour class, from the model and from its copy with
    the top ``sanity_top_k`` weight layers re-initialised (cached per method)."""
    store, model_key = Store(), tour.weights_key(m.net)
    n_layers = len(sanity.weight_layers(m.net))
    if params.sanity_top_k > n_layers:
        raise ValueError(
            f"sanity_top_k={params.sanity_top_k} but {params.model} has {n_layers} weight layers"
        )
    randomised = sanity.randomise_top_layers(m.net, params.sanity_top_k, m.seed).to(x.device)
    targets = [1] * len(idx)
    out = {}
    for method in tqdm(grid_methods(params), desc=f"maps, seed {m.seed}", leave=False):
        opts = options(params, method)
        key = {
            "model": model_key,
            "method": method,
            "options": opts,
            "tiles": idx.tolist(),
            "top_k": params.sanity_top_k,
            "seed": m.seed,
        }
        out[method] = _maps(
            store,
            "maps",
            key,
            lambda method=method, opts=opts: {
                "maps": tx.run_method(method, m.net, x, targets, target_layer(m.net), opts),
                "random_maps": tx.run_method(
                    method, randomised, x, targets, target_layer(randomised), opts
                ),
            },
        )
    return out


def time_methods(params, m: Models, x: torch.Tensor, device: torch.device) -> pd.DataFrame:
    """Seconds per image of every method: one tile, after a warm-up call, each method alone,
    ``timing_repeats`` timed calls; plus the forward and backward passes per image."""
    key = {
        "model": tour.weights_key(m.net),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "repeats": params.timing_repeats,
        "tile_size": x.shape[-1],
        "options": {k: options(params, k) for k in grid_methods(params)},
    }

    def compute() -> pd.DataFrame:
        rows = []
        layer = target_layer(m.net)
        for method in tqdm(grid_methods(params), desc=f"timing, seed {m.seed}", leave=False):
            opts = options(params, method)
            counted = tx.measure(method, m.net, x[:1], [1], layer, opts)  # warm-up + passes
            for r in range(params.timing_repeats):
                timed = tx.measure(method, m.net, x[:1], [1], layer, opts)
                rows.append(
                    {
                        "method": method,
                        "unit": r,
                        "seconds": timed.seconds,
                        "forward": counted.forward,
                        "backward": counted.backward,
                    }
                )
        return pd.DataFrame(rows)

    return Store().cached_table("saliency_tour-timing", key, compute)


def tile_scores(params, m: Models, x, masks, maps: dict[str, dict]) -> pd.DataFrame:
    """Per tile and method: localisation, sanity, deletion/insertion AUC, noise, sign."""
    score = probability(m.net)
    images = x.cpu().numpy()
    rows = []
    all_maps = {k: v for k, v in maps.items()}
    if "rise" in maps:
        all_maps["rise_np"] = {
            "maps": rise_np_maps(maps["rise"]["maps"], params),
            "random_maps": rise_np_maps(maps["rise"]["random_maps"], params),
        }
    for method, res in all_maps.items():
        loc = localisation.score_maps(
            res["maps"],
            masks,
            rule=params.binarise,
            value=params.top_fraction,
            tolerance=params.pointing_tolerance,
        )
        san = sanity.compare_batches(res["maps"], res["random_maps"])
        for i, saliency in enumerate(res["maps"]):
            deletion, insertion = faithfulness.pixel_order_curves(
                score, images[i], saliency, params.faithfulness_steps
            )
            rows.append(
                {
                    "method": method,
                    "unit": i,
                    "pointing_game": loc["pointing_game"][i],
                    "iou": loc["iou"][i],
                    "positive_share": loc["positive_share"][i],
                    "sanity_spearman": san["spearman"][i],
                    "deletion_auc": faithfulness.curve_auc(deletion),
                    "insertion_auc": faithfulness.curve_auc(insertion),
                    "roughness": roughness(saliency),
                    "negative_share": negative_share(saliency),
                    "tumour_share": float(masks[i].mean()),
                }
            )
    return pd.DataFrame(rows)


def completeness(params, m: Models, x: torch.Tensor, maps: dict[str, dict]) -> pd.DataFrame:
    """Per tile: |sum of the map − what it should sum to| / |that|, for the methods with a
    summation property (IG, Input × gradient, DeepLIFT: f(x) − f(0); LRP: the logit f(x))."""
    with torch.no_grad():
        logit = m.net(x)[:, 1].cpu().numpy()
        delta = logit - m.net(torch.zeros_like(x))[:, 1].cpu().numpy()
    sums = {
        k: maps[k]["maps"].sum(axis=(1, 2))
        for k in ("integrated_gradients", "input_x_gradient", "deeplift", "lrp")
        if k in maps
    }
    if "integrated_gradients" in maps:
        steps = 4 * params.ig_steps
        sums[f"integrated_gradients ×4 steps ({steps})"] = explain(
            "integrated_gradients", m.net, x, 1, n_steps=steps
        ).sum(axis=(1, 2))
    rows = []
    for method, total in sums.items():
        ref = logit if method == "lrp" else delta
        gap = np.abs(total - ref) / np.clip(np.abs(ref), 1e-6, None)
        rows += [{"method": method, "unit": i, "relative_gap": float(g)} for i, g in enumerate(gap)]
    return pd.DataFrame(rows)


def _perturbed(params, image: torch.Tensor, rng: np.random.Generator, k: int = 16) -> dict:
    """``k`` perturbed copies of ``image`` per perturbation of :data:`PERTURBATIONS`."""
    from skimage.segmentation import quickshift

    from xaistudy.explain.attributions import superpixels

    c, h, w = image.shape
    img = image.cpu().numpy()
    masks = rise_masks(k, (h, w), seed=int(rng.integers(2**31)))[:, 0].numpy()
    win = params.occlusion_window
    occl = np.ones((k, h, w), np.float32)
    for j in range(k):
        y, x0 = rng.integers(0, h - win + 1), rng.integers(0, w - win + 1)
        occl[j, y : y + win, x0 : x0 + win] = 0
    quick = quickshift(
        img.transpose(1, 2, 0) * 255.0,
        kernel_size=4,
        max_dist=200,
        ratio=0.2,
        rng=params.explain_seed,
    )
    slic = superpixels(image, 50, params.explain_seed)

    def segments_off(seg: np.ndarray) -> np.ndarray:
        keep = rng.random((k, seg.max() + 1)) < 0.5
        return np.stack([keep[j][seg] for j in range(k)]).astype(np.float32)

    black = np.zeros((1, h, w), np.float32)
    keeps = [masks, occl, segments_off(quick), segments_off(slic), black]
    return {name: img[None] * k[:, None] for name, k in zip(PERTURBATIONS, keeps, strict=True)}


def in_distribution(params, m: Models, probs: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per normal test tile the model gets right and per perturbation: the tumour probability
    before and after (mean over the perturbed copies) and the share called tumour."""
    idx = np.flatnonzero((labels == 0) & (probs.argmax(1) == 0))[: params.n_ood]
    score = probability(m.net)
    rng = np.random.default_rng([params.explain_seed, m.seed])
    rows = []
    for i in idx:
        image = torch.as_tensor(m.test[int(i)]["image"])
        for name, batch in _perturbed(params, image, rng).items():
            p = score(batch)
            rows.append(
                {
                    "perturbation": name,
                    "unit": int(i),
                    "p_tumour_clean": probs[i, 1],
                    "p_tumour_perturbed": float(p.mean()),
                    "shift": float(p.mean() - probs[i, 1]),
                    "called_tumour": float((p > 0.5).mean()),
                }
            )
    return pd.DataFrame(rows)


def _altered(params, method: str, model: nn.Module) -> dict[str, Any]:
    what = SWEEP[method][0]
    if method == "lime":
        return {"num_samples": max(10, params.lime_samples // 2)}
    if method == "integrated_gradients":
        return {"n_steps": max(2, params.ig_steps // 4)}
    if method == "lrp":
        from zennit.composites import EpsilonAlpha2Beta1Flat

        from xaistudy.explain.attributions import _lrp_canonizers

        return {"composite": EpsilonAlpha2Beta1Flat(canonizers=_lrp_canonizers(model))}
    return {what: {"kernel_shap": 35, "rise": 6, "smoothgrad": 0.25}[method]}


def sweep(params, m: Models, x: torch.Tensor, maps: dict[str, dict]) -> pd.DataFrame:
    """Per tile: Spearman ρ of the default map with the map after one minor change of a
    setting (:data:`SWEEP`), and with the map of another explanation seed (same settings)."""
    x = x[: params.n_sweep]
    targets, layer, rows = [1] * len(x), target_layer(m.net), []
    for method in [k for k in SWEEP if k in maps]:
        base = maps[method]["maps"][: len(x)]
        opts = options(params, method)
        key = {
            "model": tour.weights_key(m.net),
            "method": method,
            "options": opts,
            "change": SWEEP[method][1],
            "tiles": len(x),
            "seed": m.seed,
        }

        def compute(method=method, opts=opts, base=base) -> dict[str, np.ndarray]:
            altered = tx.run_method(
                method, m.net, x, targets, layer, {**opts, **_altered(params, method, m.net)}
            )
            reseeded = (
                tx.run_method(
                    method, m.net, x, targets, layer, {**opts, "seed": params.explain_seed + 1}
                )
                if method in STOCHASTIC
                else base
            )
            return {"altered": altered, "reseeded": reseeded}

        got = _maps(Store(), "sweep", key, compute)
        for i in range(len(x)):
            rows.append(
                {
                    "method": method,
                    "unit": i,
                    "change": SWEEP[method][1],
                    "rho_altered": sanity.rank_correlation(base[i], got["altered"][i]),
                    "rho_reseeded": sanity.rank_correlation(base[i], got["reseeded"][i]),
                }
            )
    out = pd.DataFrame(rows)
    if len(out):
        out["sensitivity"] = out["rho_reseeded"] - out["rho_altered"]
    return out


def clever_hans(params, m: Models, device) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Accuracy of both models on the three test sets; per marked tumour tile and method,
    where each model's map points and how much of its positive mass lies on the mark; per
    marked normal tile, each model's tumour probability."""
    models = {"trained with the shortcut": m.hans, "trained without the shortcut": m.net}
    acc = tour.accuracy_table(models, m.test_sets, device=device)
    marked = m.test_sets["marked as in training"]
    idx = np.array(
        [
            i
            for i in range(len(marked))
            if int(marked[i]["label"]) == 1 and bool(marked[i]["marked"])
        ]
    )[: max(params.n_eval, params.n_shortcut_maps)]
    x = tour.stack(marked, idx).to(device)
    pen = tour.stack(marked, idx, "pen").numpy().astype(bool)
    tumour = tour.stack(marked, idx, "mask")[:, 0].numpy() > 0.5
    methods = tx.TOUR_METHODS if params.hans_methods == "all" else params.hans_methods.split(",")
    methods = [k for k in grid_methods(params) if k in methods] or ["gradcam"]
    rows, shown = [], {"x": x.cpu().numpy(), "pen": pen, "tumour": tumour, "maps": {}}
    for name, net in models.items():
        for method in methods:
            opts = options(params, method)
            key = {
                "model": tour.weights_key(net),
                "method": method,
                "options": opts,
                "tiles": idx.tolist(),
                "cooccurrence": params.shortcut_cooccurrence,
                "ink": params.shortcut_ink,
                "seed": m.seed,
            }
            maps = _maps(
                Store(),
                "hans",
                key,
                lambda net=net, method=method, opts=opts: {
                    "maps": tx.run_method(method, net, x, [1] * len(idx), target_layer(net), opts)
                },
            )["maps"]
            shown["maps"][name, method] = maps
            on_pen = localisation.score_maps(maps, pen)
            on_tumour = localisation.score_maps(maps, tumour)
            rows += [
                {
                    "model": name,
                    "method": method,
                    "unit": int(i),
                    "pointing_at_mark": on_pen["pointing_game"][j],
                    "pointing_at_tumour": on_tumour["pointing_game"][j],
                    "mass_on_mark": on_pen["positive_share"][j],
                    "mass_on_tumour": on_tumour["positive_share"][j],
                    "mark_share": float(pen[j].mean()),
                    "tumour_share": float(tumour[j].mean()),
                }
                for j, i in enumerate(idx)
            ]
    normal_marked = m.test_sets["marks on normal tiles only"]
    n_idx = [
        i
        for i in range(len(normal_marked))
        if int(normal_marked[i]["label"]) == 0 and bool(normal_marked[i]["marked"])
    ]
    xs = tour.stack(normal_marked, n_idx).numpy() if n_idx else np.zeros((0, 3, 1, 1))
    normal = pd.DataFrame(
        {
            "unit": n_idx,
            **{name: probability(net)(xs) if n_idx else [] for name, net in models.items()},
        }
    )
    return acc, pd.DataFrame(rows), normal, shown


def cascade(params, m: Models, x: torch.Tensor, maps: dict[str, dict]) -> pd.DataFrame:
    """Spearman ρ of each cheap method's maps as more weight layers are re-initialised."""
    cheap = [k for k in maps if tx.method_info(k)["family"] != "perturbation" and k != "scorecam"]
    names = [n for n, _ in sanity.weight_layers(m.net)][::-1]
    depth = min(len(names), params.cascade_layers)
    if not cheap or depth == 0:
        return pd.DataFrame(columns=["method", "layers_reinitialised", "top_layer", "spearman"])
    key = {
        "model": tour.weights_key(m.net),
        "methods": cheap,
        "tiles": len(x),
        "depth": depth,
        "seed": m.seed,
    }

    def compute() -> pd.DataFrame:
        rows = []
        for k, name, rand in sanity.cascading_randomisation(m.net, m.seed, depth):
            rand = rand.to(x.device)
            for method in cheap:
                got = tx.run_method(
                    method, rand, x, [1] * len(x), target_layer(rand), options(params, method)
                )
                rho = np.nanmean(sanity.compare_batches(maps[method]["maps"], got)["spearman"])
                rows.append(
                    {
                        "method": method,
                        "layers_reinitialised": k,
                        "top_layer": name,
                        "spearman": rho,
                    }
                )
        return pd.DataFrame(rows)

    return Store().cached_table("saliency_tour-cascade", key, compute)


def run_seed(params: SaliencyTourParams, seed: int, show: bool = False) -> SeedRun:
    """Train (or load) both models of ``seed`` and measure everything the chapter reports."""
    device = resolve_device(params.device)
    m = train_models(params, seed, device)
    probs, labels = predict(m.net, make_loader(m.test, 64), device=device, desc=None)
    idx = tour.correct_tumour_tiles(probs, labels, params.n_eval)
    if len(idx) == 0:
        raise RuntimeError(
            f"seed {seed}: the classifier got no tumour test tile right; train longer (-p epochs)"
        )
    x = tour.stack(m.test, idx).to(device)
    masks = tour.stack(m.test, idx, "mask")[:, 0].numpy() > 0.5
    maps = grid_maps(params, m, idx, x)
    acc, hans, normal, hans_shown = clever_hans(params, m, device)
    tables = {
        "classifier": pd.DataFrame([classifier_row(params, m, probs, labels)]),
        "scores": tile_scores(params, m, x, masks, maps),
        "timing": time_methods(params, m, x, device),
        "completeness": completeness(params, m, x, maps),
        "ood": in_distribution(params, m, probs, labels),
        "sweep": sweep(params, m, x, maps),
        "accuracy": acc,
        "hans": hans,
        "hans_normal": normal,
    }
    for table in tables.values():
        table.insert(0, "seed", seed)
    run = SeedRun(tables)
    if show:
        with torch.no_grad():
            feats = []
            hook = target_layer(m.net).register_forward_hook(
                lambda _m, _i, out: feats.append(tuple(out.shape[-2:]))
            )
            m.net(x[:1])
            hook.remove()
        run.shown = {
            "image": x[0].cpu().numpy(),
            "mask": masks[0],
            "p": float(probs[idx[0], 1]),
            "maps": {k: v["maps"][0] for k, v in maps.items()},
            "random_maps": {k: v["random_maps"][0] for k, v in maps.items()},
            "feature_map": feats[-1],
            "hans": hans_shown,
            "cascade": cascade(params, m, x, maps),
        }
        if "rise" in maps:
            run.shown["maps"]["rise_np"] = rise_np_maps(maps["rise"]["maps"][:1], params)[0]
    return run


@dataclass
class Results:
    """All seeds' measurements, concatenated, and the first seed's figures' material."""

    tables: dict[str, pd.DataFrame]
    shown: dict[str, Any]


def run_all(params: SaliencyTourParams) -> Results:
    """:func:`run_seed` for every seed; the tables of all seeds stacked."""
    runs = [run_seed(params, s, show=(k == 0)) for k, s in enumerate(params.seeds)]
    tables = {
        name: pd.concat([r.tables[name] for r in runs], ignore_index=True)
        for name in runs[0].tables
    }
    return Results(tables, runs[0].shown)


# -- tables ----------------------------------------------------------------------------------------
def _interval(rows: pd.DataFrame, column: str) -> tuple[float, float, float]:
    data = rows[["seed", "unit", column]].rename(columns={column: "value"}).dropna()
    return bootstrap_interval(data, n_boot=500) if len(data) else (np.nan, np.nan, np.nan)


def methods_table(res: Results) -> pd.DataFrame:
    """Per method: cost (median warm seconds, passes) and the means over seeds and tiles."""
    scores, timing = res.tables["scores"], res.tables["timing"]
    cols = [
        "pointing_game",
        "iou",
        "positive_share",
        "sanity_spearman",
        "deletion_auc",
        "insertion_auc",
        "roughness",
        "negative_share",
    ]
    means = scores.groupby("method", sort=False)[cols].mean()
    cost = timing.groupby("method", sort=False).agg(
        seconds=("seconds", "median"), forward=("forward", "first"), backward=("backward", "first")
    )
    cost.loc["rise_np"] = cost.loc["rise"] if "rise" in cost.index else np.nan
    table = means.join(cost).reset_index()
    table.insert(1, "label", [label(k) for k in table["method"]])
    table.insert(
        2,
        "family",
        [
            "perturbation" if k == "rise_np" else tx.method_info(k)["family"]
            for k in table["method"]
        ],
    )
    table["passes"] = table["forward"] + table["backward"]
    table["rank_by_seconds"] = table["seconds"].rank(ascending=False, method="min").astype("Int64")
    table["tiles"] = scores.groupby("method", sort=False)["unit"].count().to_numpy()
    return table


def timing_table(res: Results, params: SaliencyTourParams) -> pd.DataFrame:
    """Seconds per image, what was timed, and the pass counts."""
    t = res.tables["timing"]
    device, threads = resolve_device(params.device), params.threads
    out = (
        t.groupby("method", sort=False)
        .agg(
            median_seconds=("seconds", "median"),
            min_seconds=("seconds", "min"),
            max_seconds=("seconds", "max"),
            calls=("seconds", "size"),
            forward=("forward", "first"),
            backward=("backward", "first"),
        )
        .reset_index()
    )
    out.insert(1, "label", [label(k) for k in out["method"]])
    out["timed"] = (
        f"one tile per call, after a warm-up call, each method alone; median over "
        f"{len(t['unit'].unique())} calls × {t['seed'].nunique()} seeds; "
        f"{threads} thread(s), device {device}"
    )
    return out.sort_values("median_seconds", ascending=False, ignore_index=True)


def table_b1(methods: pd.DataFrame) -> pd.DataFrame:
    """The review's strength and weakness of each method next to this run's numbers."""
    rows = []
    for r in methods.itertuples():
        entry = tx.review_entry(r.method) if r.method != "rise_np" else None
        rows.append(
            {
                "method": r.label,
                "review strength (B1)": entry.strength if entry and entry.strength else "—",
                "review weakness (B1)": entry.weakness if entry and entry.weakness else "—",
                "s / image (warm)": r.seconds,
                "passes / image": f"{r.forward:.0f} fwd + {r.backward:.0f} bwd",
                "pointing game": r.pointing_game,
                "IoU": r.iou,
                "deletion AUC ↓": r.deletion_auc,
                "insertion AUC ↑": r.insertion_auc,
                "roughness": r.roughness,
                "sanity ρ": r.sanity_spearman,
            }
        )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and 95 % bootstrap interval (seeds and units resampled) of ``columns`` per ``by``."""
    rows = []
    for keys, g in table.groupby(by, sort=False):
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        for c in columns:
            est, lo, hi = _interval(g, c)
            row.update({c: est, f"{c} 95% CI": f"[{lo:.2f}, {hi:.2f}]"})
        row["n"] = int(g.groupby(["seed", "unit"]).ngroups)
        rows.append(row)
    return pd.DataFrame(rows)


def ood_table(res: Results) -> pd.DataFrame:
    """Per perturbation: the tumour probability of correctly classified normal tiles before
    and after, and the share of perturbed copies called tumour."""
    return summary(
        res.tables["ood"],
        ["perturbation"],
        ["p_tumour_clean", "p_tumour_perturbed", "called_tumour"],
    )


def sweep_table(res: Results) -> pd.DataFrame:
    """Per method: ρ with the map after a minor change vs after a new explanation seed."""
    t = res.tables["sweep"]
    if t.empty:
        return t
    out = summary(t, ["method", "change"], ["rho_altered", "rho_reseeded", "sensitivity"])
    out.insert(1, "label", [label(k) for k in out["method"]])
    return out


def completeness_table(res: Results) -> pd.DataFrame:
    """Mean relative summation gap per method (0: the map sums exactly as its rule says)."""
    return summary(res.tables["completeness"], ["method"], ["relative_gap"])


def hans_table(res: Results) -> pd.DataFrame:
    """Per model and method: pointing at mark / tumour and positive mass on the mark."""
    out = summary(
        res.tables["hans"],
        ["model", "method"],
        ["pointing_at_mark", "pointing_at_tumour", "mass_on_mark", "mark_share"],
    )
    out["method"] = [label(k) for k in out["method"]]
    return out


def accuracy_table(res: Results) -> pd.DataFrame:
    """Accuracy, sensitivity and specificity of both models per test set (mean over seeds)."""
    table = (
        res.tables["accuracy"]
        .groupby(["model", "test_data"], sort=False)[["accuracy", "sensitivity", "specificity"]]
        .agg(["mean", "min", "max"])
    )
    table.columns = [c if s == "mean" else f"{c} {s}" for c, s in table.columns]
    return table.reset_index()


def rise_versions(res: Results) -> pd.DataFrame:
    """The two RISE normalisations side by side (pointing, IoU, deletion, insertion)."""
    s = res.tables["scores"]
    return summary(
        s[s["method"].isin(["rise", "rise_np"])].assign(method=lambda d: d["method"].map(label)),
        ["method"],
        ["pointing_game", "iou", "deletion_auc", "insertion_auc"],
    )


def paper_vs_book(params: SaliencyTourParams, res: Results) -> pd.DataFrame:
    """The review's checkable numbers (from :data:`PAPER`) next to this run's."""
    shown = res.shown
    setting = f"{params.dataset} {params.tile_size} px, {params.model}"
    return pd.DataFrame(
        [
            {
                "statement": "Fig. 7: prediction score of the explained image",
                "paper": PAPER.number("fig7.score"),
                "this book": f"{shown['p']:.2f} (tumour, first "
                f"scored tile of seed {params.seeds[0]})",
                "data": setting,
            },
            {
                "statement": "Grad-CAM's resolution is that of the last convolutional feature map",
                "paper": "qualitative (Sect. 2.2)",
                "this book": f"{shown['feature_map']} feature map "
                f"for a {params.tile_size}×{params.tile_size} tile",
                "data": setting,
            },
        ]
    )


# -- claims ----------------------------------------------------------------------------------------
#: Table B1 statements about methods this chapter runs that no measurement here can test
NOT_MEASURED = (
    (
        "occlusion.model_agnostic",
        "b1.occlusion.strength",
        "Occlusion needs no access to model internals",
        "a property of the algorithm (it only calls the model), not a measurement",
    ),
    (
        "gradcam.intuitive",
        "b1.gradcam.strength",
        "Grad-CAM is intuitive",
        "needs readers' judgements",
    ),
    (
        "gradcam.partial_coverage",
        "b1.gradcam.weakness",
        "Grad-CAM covers several objects of one class only partly",
        "needs tiles with several separate tumour regions, scored per region; not implemented",
    ),
    (
        "cam.architectural_dependence",
        "b1.cam.weakness",
        "CAM depends on the architecture",
        "by construction: CAM needs global average pooling and one linear layer (a unit test "
        "checks that other models are refused)",
    ),
    (
        "saliency.straightforward",
        "b1.saliency.strength",
        "Vanilla gradient: straightforward computation",
        "not a measurable quantity",
    ),
    (
        "guided_backprop.architectures",
        "b1.guided_backprop.strength",
        "Guided Backpropagation applies to several architectures",
        "one architecture per run (`-p model`)",
    ),
    (
        "deeplift.implementation_invariance",
        "b1.deeplift.weakness",
        "DeepLIFT does not satisfy implementation invariance",
        "needs two different networks computing the same function",
    ),
    (
        "deconvolution.approximate_inverse",
        "b1.deconvolution.weakness",
        "DeconvNet uses only an approximate inverse",
        "a property of the algorithm, not a measurement",
    ),
    (
        "input_x_gradient.simple",
        "b1.input_x_gradient.strength",
        "Input × gradient: simple process",
        "not a measurable quantity",
    ),
)


def _b1(method: str, side: str) -> str:
    return PAPER.number(f"b1.{method}.{side}")


def _log_ratio(timing: pd.DataFrame, method: str, other: str | None) -> pd.DataFrame:
    """Per seed and timed call: log10(seconds of ``method`` / seconds of ``other``), or / the
    median over the other grid methods of that call (``other`` None)."""
    wide = timing.pivot_table(index=["seed", "unit"], columns="method", values="seconds")
    if method not in wide or (other is not None and other not in wide):
        return pd.DataFrame(columns=["seed", "unit", "value"])
    ref = wide.drop(columns=[method]).median(axis=1) if other is None else wide[other]
    return np.log10(wide[method] / ref).rename("value").reset_index()


def _vs_others(scores: pd.DataFrame, method: str, column: str) -> pd.DataFrame:
    """Per seed and tile: ``column`` of ``method`` minus its median over the other methods."""
    grid = scores[scores["method"] != "rise_np"]
    wide = grid.pivot_table(index=["seed", "unit"], columns="method", values=column)
    if method not in wide:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    others = wide.drop(columns=[method]).median(axis=1)
    return (wide[method] - others).rename("value").reset_index()


def _column(table: pd.DataFrame, column: str, **where: Any) -> pd.DataFrame:
    for k, v in where.items():
        table = table[table[k] == v]
    return table[["seed", "unit", column]].rename(columns={column: "value"}).dropna()


def _minus(table: pd.DataFrame, column: str, by: str, a: str, b: str) -> pd.DataFrame:
    return paired_difference(table, a, b, by=by, value=column)


def claims(params: SaliencyTourParams, res: Results, profile: str) -> list[dict[str, object]]:
    """Every Table B1 strength and weakness this run can measure, the text's Grad-CAM vs
    occlusion cost and the Clever-Hans warning, judged over all seeds."""
    t = res.tables
    scores, timing, hans = t["scores"], t["timing"], t["hans"]
    comp, ood, sw = t["completeness"], t["ood"], t["sweep"]
    cite = PAPER.citation
    shortcut, clean = "trained with the shortcut", "trained without the shortcut"
    gradcam_hans = hans[hans["method"] == "gradcam"]
    tests: list[tuple[Claim, pd.DataFrame | None]] = [
        (
            Claim(
                "occlusion.high_cost",
                cite,
                B1,
                "Occlusion has a high computational cost",
                _b1("occlusion", "weakness"),
                "log10(occlusion's warm seconds per image / the "
                "median over the other grid methods), per timed call",
            ),
            _log_ratio(timing, "occlusion", None),
        ),
        (
            Claim(
                "lime.high_cost",
                cite,
                B1,
                "LIME has a high computational expense",
                PAPER.number("b1.lime.expense"),
                "log10(LIME's seconds / median over the other grid methods)",
            ),
            _log_ratio(timing, "lime", None),
        ),
        (
            Claim(
                "gradcam.faster_than_occlusion",
                cite,
                TEXT + ".2",
                "Grad-CAM maps can be computed faster than the occlusion map",
                "qualitative",
                "log10(occlusion's seconds / Grad-CAM's seconds)",
            ),
            _log_ratio(timing, "occlusion", "gradcam"),
        ),
        (
            Claim(
                "deconvolution.fast",
                cite,
                B1,
                "DeconvNet: fast computation",
                _b1("deconvolution", "strength"),
                "log10(Deconvolution's seconds / median over the other grid methods)",
                expect="<",
            ),
            _log_ratio(timing, "deconvolution", None),
        ),
        (
            Claim(
                "lrp.fast",
                cite,
                B1,
                "LRP: fast and scalable computation",
                _b1("lrp", "strength"),
                "log10(LRP's seconds / median over the other grid methods)",
                expect="<",
            ),
            _log_ratio(timing, "lrp", None),
        ),
        (
            Claim(
                "kernel_shap.positive_and_negative",
                cite,
                B1,
                "SHAP denotes positive and negative contributions",
                _b1("kernel_shap", "strength"),
                "share of the map's absolute mass that is negative, per tile (null: 5 %)",
                null=0.05,
            ),
            _column(scores, "negative_share", method="kernel_shap"),
        ),
        (
            Claim(
                "lime.positive_and_negative",
                cite,
                B1,
                "LIME denotes positive and negative contributions",
                _b1("lime", "strength"),
                "negative share of the map's absolute mass, per tile (null: 5 %)",
                null=0.05,
            ),
            _column(scores, "negative_share", method="lime"),
        ),
        (
            Claim(
                "cam.inaccurate_localisation",
                cite,
                B1,
                "CAM: inaccurate localisation of the heatmap",
                PAPER.number("b1.cam.localisation"),
                "IoU of CAM − median IoU of the other grid methods, per tile",
                expect="<",
            ),
            _vs_others(scores, "cam", "iou"),
        ),
        (
            Claim(
                "kernel_shap.approximate_morphology",
                cite,
                B1,
                "SHAP: approximate results of object morphology",
                _b1("kernel_shap", "weakness"),
                "IoU of KernelSHAP − median IoU of the other grid methods",
                expect="<",
            ),
            _vs_others(scores, "kernel_shap", "iou"),
        ),
        (
            Claim(
                "rise.approximate_morphology",
                cite,
                B1,
                "RISE: approximate results of object morphology",
                PAPER.number("b1.rise.morphology"),
                "IoU of RISE − median IoU of the other grid methods",
                expect="<",
            ),
            _vs_others(scores, "rise", "iou"),
        ),
        (
            Claim(
                "occlusion.approximate_morphology",
                cite,
                TEXT + ".1",
                "RISE and Occlusion produce only approximate results of objects' morphology",
                "qualitative",
                "IoU of Occlusion − median IoU of the other grid methods",
                expect="<",
            ),
            _vs_others(scores, "occlusion", "iou"),
        ),
        (
            Claim(
                "rise.realistic_perturbations",
                cite,
                B1,
                "RISE: realistic perturbations",
                _b1("rise", "strength"),
                "tumour probability of a correctly classified normal "
                "tile under RISE's masks − without them (null: 0.1; realistic perturbations "
                "should not move it more)",
                expect="<",
                null=0.1,
            ),
            _column(ood, "shift", perturbation=PERTURBATIONS[0]),
        ),
        (
            Claim(
                "smoothgrad.reduces_noise",
                cite,
                B1,
                "SmoothGrad reduces visual noise",
                _b1("smoothgrad", "strength"),
                "roughness of SmoothGrad's map − that of the vanilla gradient, per tile",
                expect="<",
            ),
            _minus(scores, "roughness", "method", "smoothgrad", "saliency"),
        ),
        (
            Claim(
                "guided_backprop.invariant_to_model",
                cite,
                B1,
                "Guided Backpropagation is in some cases invariant to data and model",
                _b1("guided_backprop", "weakness"),
                "sanity ρ of Guided Backpropagation − that of the vanilla gradient, per tile",
            ),
            _minus(scores, "sanity_spearman", "method", "guided_backprop", "saliency"),
        ),
        (
            Claim(
                "integrated_gradients.completeness",
                cite,
                B1,
                "Integrated Gradients satisfies the completeness axiom",
                _b1("integrated_gradients", "strength"),
                "relative gap |Σ map − (f(x) − f(0))| / |f(x) − f(0)| (null: 5 %)",
                expect="<",
                null=0.05,
            ),
            _column(comp, "relative_gap", method="integrated_gradients"),
        ),
        (
            Claim(
                "input_x_gradient.saturating_gradients",
                cite,
                B1,
                "Vanilla gradient and Input × gradient: saturating gradients",
                _b1("input_x_gradient", "weakness"),
                "summation gap of Input × gradient − that of Integrated Gradients, per tile "
                "(a saturated gradient misses part of f(x) − f(0))",
            ),
            _minus(comp, "relative_gap", "method", "input_x_gradient", "integrated_gradients"),
        ),
        (
            Claim(
                "deeplift.counters_saturation",
                cite,
                B1,
                "DeepLIFT counters the saturation of Input × gradient",
                _b1("deeplift", "strength"),
                "summation gap of DeepLIFT − that of Input × gradient, per tile",
                expect="<",
            ),
            _minus(comp, "relative_gap", "method", "deeplift", "input_x_gradient"),
        ),
    ]
    for method, (_what, change) in SWEEP.items():
        if f"parameters.{method}" not in PAPER.numbers:  # the review says nothing about it
            continue
        tests.append(
            (
                Claim(
                    f"{method}.relies_on_parameters",
                    cite,
                    B1,
                    f"{label(method)}: results depend on its parameters",
                    PAPER.number(f"parameters.{method}"),
                    f"ρ(default, new explanation seed) − "
                    f"ρ(default, {change}), per tile: how much more a minor change of a setting "
                    "moves the map than the method's own sampling does",
                ),
                _column(sw, "sensitivity", method=method),
            )
        )
    tests += [
        (
            Claim(
                "clever_hans.shortcut_learned",
                cite,
                TEXT + ".2",
                "Markers in the image can become a shortcut (Clever Hans)",
                "qualitative (Hosch et al.)",
                "tumour probability of a marked normal tile: shortcut model − clean model",
            ),
            t["hans_normal"].assign(value=lambda d: d[shortcut] - d[clean]),
        ),
        (
            Claim(
                "clever_hans.gradcam_reveals_mark",
                cite,
                TEXT + ".2",
                "Grad-CAM exposes the markers a shortcut model uses",
                "qualitative (Hosch et al.)",
                "Grad-CAM's "
                "positive mass on the mark of a marked tumour tile: shortcut − clean model",
            ),
            _minus(gradcam_hans, "mass_on_mark", "model", shortcut, clean),
        ),
        (
            Claim(
                "clever_hans.plausible_not_faithful",
                cite,
                TEXT + ".3",
                "A plausible-looking map does not show that the model uses the right evidence",
                "qualitative",
                "shortcut model's Grad-CAM maximum on the tumour (0/1) − the tumour's share of "
                "the tile, per marked tumour tile (> 0: the map looks plausible although the "
                "model learned the mark)",
            ),
            _column(
                gradcam_hans[gradcam_hans["model"] == shortcut].assign(
                    plausible=lambda d: d["pointing_at_tumour"] - d["tumour_share"]
                ),
                "plausible",
            ),
        ),
    ]
    tests += [
        (Claim(cid, cite, B1, statement, PAPER.number(key), "—", not_testable=why), None)
        for cid, key, statement, why in NOT_MEASURED
    ]
    data = f"{params.dataset} {params.tile_size} px, {params.model}"
    return [judge(c, d, data_name=data, profile=profile) for c, d in tests]


# -- figures ---------------------------------------------------------------------------------------
def taxonomy_figure(taxonomy: pd.DataFrame) -> plt.Figure:
    """Methods of this chapter per review signal flow and book family."""
    counts = (
        taxonomy[taxonomy.book_family != "-"]
        .groupby(["signal_flow", "book_family"])
        .size()
        .unstack(fill_value=0)
    )
    fig, ax = plt.subplots(figsize=(7, 2.6))
    counts.plot.barh(stacked=True, ax=ax, color=[SIGNED_FAMILY[c] for c in counts.columns])
    ax.set_xlabel("methods run in this chapter")
    ax.set_ylabel("review's signal flow")
    ax.legend(title="family in this book", fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    ax.set_title("The methods of this chapter in the review's taxonomy")
    return fig


def grid_figure(res: Results) -> plt.Figure:
    """Every method's map of the first scored tile (the review's Fig. 7)."""
    s = res.shown
    names = list(s["maps"])
    ncols = 6
    nrows = int(np.ceil((len(names) + 1) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.35 * nrows), squeeze=False)
    image = (s["image"].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    axes[0, 0].imshow(plots.outline(image, s["mask"]))
    axes[0, 0].set_title(f"tile (tumour p={s['p']:.2f})", fontsize=9)
    axes[0, 0].set_axis_off()
    for ax, method in zip(axes.flat[1:], names, strict=False):
        signed = method != "rise_np" and tx.method_info(method)["signed"]
        tour.show_map(ax, s["maps"][method], signed, [(s["mask"], "black")], label(method))
    for ax in axes.flat[len(names) + 1 :]:
        ax.axis("off")
    fig.subplots_adjust(top=0.9, hspace=0.25)
    tour.add_colorbars(fig, axes)
    fig.suptitle("Maps of every method for the tumour class (outline: the tumour)", y=0.97)
    return fig


def methods_figure(methods: pd.DataFrame, tumour_share: float) -> plt.Figure:
    """Seconds, pointing game, IoU, deletion/insertion AUC and sanity ρ per method."""
    panels = [
        ("seconds", "warm seconds per image (log)"),
        ("pointing_game", "pointing game"),
        ("iou", "IoU with the tumour"),
        ("deletion_auc", "deletion AUC (lower: faithful)"),
        ("insertion_auc", "insertion AUC (higher: faithful)"),
        ("sanity_spearman", "sanity ρ"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 0.32 * len(methods) + 1.6), sharey=True)
    colours = [SIGNED_FAMILY[f] for f in methods["family"]]
    for ax, (col, title) in zip(axes, panels, strict=True):
        ax.barh(methods["label"], methods[col], color=colours)
        ax.set_xlabel(title, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_xscale("log")
    axes[1].axvline(tumour_share, color="grey", ls="--", lw=1, label="chance")
    axes[1].legend(fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SIGNED_FAMILY.values()]
    fig.legend(
        handles,
        list(SIGNED_FAMILY),
        title="family",
        loc="lower center",
        ncol=3,
        bbox_to_anchor=(0.5, 0.99),
        fontsize=8,
    )
    return fig


def sanity_figure(
    res: Results, shown_methods=("saliency", "guided_backprop", "integrated_gradients", "gradcam")
) -> plt.Figure:
    """The first tile's maps from the trained and the re-initialised model."""
    s = res.shown
    names = [k for k in shown_methods if k in s["random_maps"]] or list(s["random_maps"])[:4]
    fig, axes = plt.subplots(2, len(names), figsize=(2.4 * len(names), 5.0), squeeze=False)
    for j, method in enumerate(names):
        signed = tx.method_info(method)["signed"]
        a, b = s["maps"][method], s["random_maps"][method]
        tour.show_map(axes[0, j], a, signed, [(s["mask"], "black")], f"{label(method)}\ntrained")
        rho = sanity.rank_correlation(a, b)
        tour.show_map(
            axes[1, j], b, signed, [(s["mask"], "black")], f"re-initialised, ρ = {rho:.2f}"
        )
    tour.add_colorbars(fig, axes)
    return fig


def cascade_figure(res: Results) -> plt.Figure:
    """Cascading randomisation: ρ against the number of re-initialised layers."""
    table = res.shown["cascade"]
    fig, ax = plt.subplots(figsize=(8.5, 4))
    for j, (method, sub) in enumerate(table.groupby("method", sort=False)):
        ax.plot(
            sub.layers_reinitialised,
            sub.spearman,
            marker="os^Dv"[j % 5],
            label=label(method),
            color=plt.get_cmap("tab20")(j % 20),
            ls="--" if tx.method_info(method)["family"] == "cam" else "-",
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("weight layers re-initialised, from the top")
    ax.set_ylabel("Spearman ρ, trained vs randomised map")
    ax.set_ylim(-0.5, 1.05)
    if len(table):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def rise_figure(res: Results) -> plt.Figure:
    """The first tile, RISE divided by coverage and by N·p, and the tile under one mask."""
    s = res.shown
    masks = rise_masks(1, s["mask"].shape, seed=0)[0, 0].numpy()
    image = s["image"].transpose(1, 2, 0)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    axes[0].imshow(plots.outline((image * 255).astype(np.uint8), s["mask"]))
    axes[0].set_title("tile", fontsize=9)
    axes[1].imshow(image * masks[..., None])
    axes[1].set_title("what the model sees\nunder one RISE mask", fontsize=9)
    for ax, k in zip(axes[2:], ["rise", "rise_np"], strict=True):
        if k in s["maps"]:
            tour.show_map(ax, s["maps"][k], False, [(s["mask"], "black")], label(k))
    for ax in axes[:2]:
        ax.set_axis_off()
    return fig


def hans_figure(res: Results, n_show: int) -> plt.Figure:
    """Marked tumour tiles (ink visible, no outline on the image) and both models' maps."""
    h = res.shown["hans"]
    cols = list(h["maps"])
    n = min(n_show, len(h["x"]))
    fig, axes = plt.subplots(
        n, 1 + len(cols), figsize=(2.1 * (1 + len(cols)), 2.3 * n), squeeze=False
    )
    for r in range(n):
        axes[r, 0].imshow(h["x"][r].transpose(1, 2, 0))
        axes[r, 0].set_axis_off()
        for c, (model, method) in enumerate(cols, start=1):
            title = (
                f"{label(method)}\n{'with' if 'with ' in model else 'without'} shortcut"
                if r == 0
                else None
            )
            tour.show_map(
                axes[r, c],
                h["maps"][model, method][r],
                tx.method_info(method)["signed"],
                [(h["tumour"][r], "black"), (h["pen"][r], "cyan")],
                title,
            )
    axes[0, 0].set_title("marked tumour tile", fontsize=9)
    tour.add_colorbars(fig, axes)
    fig.suptitle("Clever Hans: maps of the tumour class (cyan: pen mark, black: tumour)", y=1.01)
    return fig



# --- exercises (xaistudy exercises saliency_tour)


def _occlusion(o: Outcome, baseline: bool = False) -> tuple[float, float, float]:
    t = o.table("methods", baseline).set_index("method").loc["occlusion"]
    return float(t["seconds"]), float(t["forward"]), float(t["iou"])


def _answer_window(o: Outcome) -> str:
    (s, f, iou), (bs, bf, biou) = _occlusion(o), _occlusion(o, True)
    return (
        f"Occlusion with 4-px patches: {f:.0f} forward passes and {s:.2f} s per tile, IoU "
        f"{iou:.2f}; with the default window: {bf:.0f} passes, {bs:.2f} s, IoU {biou:.2f}."
    )


def _answer_binarise(o: Outcome) -> str:
    return "With Otsu's threshold instead of the mask's area, " + o.changed_verdicts() + "."


def _clean_accuracy(o: Outcome, baseline: bool = False) -> float:
    t = o.table("clever_hans", baseline)
    return float(t.loc[t["test_data"] == "clean (no marks)", "accuracy"].iloc[0])


def _answer_shortcut(o: Outcome) -> str:
    return (
        f"With marks that carry no class information (co-occurrence 0.5) the model scores "
        f"{_clean_accuracy(o):.2f} on clean tiles, against {_clean_accuracy(o, True):.2f} "
        "when the mark predicts the class."
    )


def _answer_sanity(o: Outcome) -> str:
    t = o.table("methods").set_index("label")["sanity_spearman"].dropna()
    kept = ", ".join(t[t > 0.5].index) or "none"
    return (
        f"Re-initialising only the linear head, the maps that stay similar (Spearman > 0.5) "
        f"are: {kept}."
    )


EXERCISES = (
    Exercise(
        "occlusion-window",
        "Resolution vs cost: how do the occlusion map, its cost and its IoU change with the "
        "patch size?",
        params={"occlusion_window": 4},
        look_at="table:methods",
        answer=_answer_window,
    ),
    Exercise(
        "binarisation",
        "Which verdicts depend on how a map is binarised?",
        params={"binarise": "otsu"},
        look_at="claim:cam.inaccurate_localisation",
        answer=_answer_binarise,
    ),
    Exercise(
        "shortcut-strength",
        "How strong must a shortcut be before the model stops generalising to clean tiles?",
        params={"shortcut_cooccurrence": 0.5},
        look_at="table:clever_hans",
        answer=_answer_shortcut,
    ),
    Exercise(
        "sanity-head",
        "Which methods still pass the sanity check when only the last layer is randomised?",
        params={"sanity_top_k": 1},
        look_at="table:methods",
        answer=_answer_sanity,
    ),
)


CHAPTER = Chapter(
    name="saliency_tour",
    title="A tour of saliency methods",
    params=SaliencyTourParams,
    order=20,
    paper=PAPER,
    exercises=EXERCISES,
    compute=run_all,
)
