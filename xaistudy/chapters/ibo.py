"""Chapter ``ibo``: IBO, inpainting-based occlusion (Afshar et al.).

data -> classifier (per seed) -> DDPM of normal tissue (trained once, shared by the seeds) and
its gate (do its samples pass as normal tissue?) -> CAM heatmaps of tumour test tiles ->
k-means levels -> six occlusion strategies, cumulative over Mask_1..Mask_4, with common random
numbers (every method of a sample gets the same noise) and replicates over the noise -> Table 1
(distances), Table 2 (IoU ground-truth ranking), Tables 3-8 (deletion AUC rankings), Table 9
(MARD, rank accuracy) -> claims judged over tiles, noise replicates and seeds. The notebook is
``notebooks/ibo.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from xaistudy import plots
from xaistudy.chapters import Chapter, PaperRecord, Setting
from xaistudy.claims import Claim, bootstrap_interval, judge, order_agreement
from xaistudy.evaluate import faithfulness, inpaint, occlusion, perceptual
from xaistudy.evaluate import ibo as study
from xaistudy.exercises import Exercise, Outcome
from xaistudy.models import ddpm
from xaistudy.models.classifiers import resolve_device
from xaistudy.params import (
    DatasetSeedsParams,
    Pretrained,
    WeightsFile,
    choices_field,
    dataset_field,
)
from xaistudy.store import Store

log = logging.getLogger(__name__)


class IboParams(DatasetSeedsParams):
    """The ``ibo`` chapter: inpainting-based occlusion (Afshar et al.) with batched RePaint."""

    dataset: str = dataset_field(
        "synthetic-he", ["synthetic-he", "camelyon16"], "tumour vs normal tiles"
    )
    PRETRAINED_FOR: ClassVar[str] = "classifier"
    tile_size: int = Field(64, ge=64, le=512, description="tile side in pixels (64-512)")
    stain_norm: bool = Field(
        True, description="Modified Reinhard stain normalisation to a reference tile (torchstain)"
    )
    classifier: str = Field(
        "small_cnn",
        pattern=r"^(small_cnn|resnet18|resnet50)$",
        description="tumour classifier: small_cnn, resnet18 or resnet50 (paper)",
    )
    pretrained: Pretrained = Field(
        False,
        description="start from ImageNet weights (resnets only): false, true (the standard "
        "local cache file) or a weights file path; never downloaded",
    )
    n_train: int = Field(400, ge=8, le=200000, description="classifier training tiles (balanced)")
    n_val: int = Field(80, ge=4, le=50000, description="classifier validation tiles")
    n_test: int = Field(200, ge=4, le=50000, description="test tiles (accuracy, F1, samples)")
    epochs: int = Field(8, ge=1, le=300, description="classifier epochs (best validation kept)")
    lr: float = Field(1e-3, gt=0, le=1, description="classifier Adam learning rate")
    batch_size: int = Field(32, ge=2, le=1024, description="classifier batch size")
    ddpm_tiles: int = Field(
        256, ge=4, le=200000, description="normal training tiles the DDPM learns from"
    )
    ddpm_channels: list[int] = Field(
        [16, 32, 64],
        min_length=2,
        max_length=6,
        description="UNet2DModel widths per resolution level, e.g. [16, 32, 64]",
    )
    ddpm_layers: int = Field(1, ge=1, le=4, description="ResNet blocks per UNet level")
    ddpm_attention: bool = Field(False, description="self-attention at the lowest resolution")
    ddpm_epochs: int = Field(140, ge=1, le=2000, description="DDPM training epochs")
    ddpm_batch_size: int = Field(8, ge=2, le=1024, description="DDPM batch size")
    ddpm_lr: float = Field(2e-3, gt=0, le=1, description="DDPM AdamW learning rate")
    train_timesteps: int = Field(1000, ge=10, le=4000, description="DDPM training noise steps")
    ddpm_ema: float = Field(
        0.995, ge=0, lt=1, description="EMA decay of the DDPM weights used for sampling (0: off)"
    )
    ddpm_centre: bool = Field(
        True,
        description="the DDPM learns each channel centred on the tiles' mean colour (scaled "
        "into [-1, 1]) instead of [0, 1] mapped to [-1, 1] (Ho et al.)",
    )
    ddpm_crop: int = Field(
        32,
        ge=0,
        le=512,
        description="0: the DDPM learns whole tiles; n: random n x n windows of them (it still "
        "samples and inpaints whole tiles; n must divide by 2**(levels - 1))",
    )
    ddpm_snr_gamma: float = Field(
        5.0, ge=0, le=100, description="Min-SNR loss weighting gamma (Hang et al. 2023; 0: off)"
    )
    repaint_steps: int = Field(
        10,
        ge=2,
        le=4000,
        description="RePaint steps T (must divide train_timesteps; the paper does not state T, "
        "RePaint's default is 250)",
    )
    jump_length: int = Field(5, ge=1, le=100, description="RePaint jump length j (paper: 10)")
    resamplings: int = Field(
        2, ge=1, le=100, description="RePaint resamplings r (jump_n_sample; paper: 10)"
    )
    eta: float = Field(1.0, ge=0, le=1, description="RePaint eta: 1 = DDPM sampling (original)")
    repaint_batch: int = Field(
        64, ge=1, le=4096, description="images per batched RePaint pass (memory only)"
    )
    methods: str = choices_field(study.CAMS, "all", "methods", "comma-separated CAMs or all")
    strategies: str = choices_field(
        occlusion.STRATEGIES, "all", "strategies", "comma-separated occlusion strategies or all"
    )
    n_samples: int = Field(
        8, ge=1, le=5000, description="random tumour test tiles occluded (paper: 100)"
    )
    n_gt_samples: int = Field(
        64,
        ge=1,
        le=5000,
        description="tumour test tiles of the IoU ground-truth ranking; the occluded tiles are "
        "the first n_samples of them (nested sets)",
    )
    replicates: int = Field(
        2, ge=1, le=50, description="inpainting-noise replicates per tile (random strategies)"
    )
    gate_samples: int = Field(
        32, ge=2, le=5000, description="DDPM samples of the gate (do they pass as normal?)"
    )
    gate_steps: int = Field(
        100, ge=2, le=4000, description="sampling steps of the gate's DDPM samples"
    )
    kmeans_k: int = Field(
        5, ge=3, le=10, description="k-means levels per heatmap; levels 1..k-1 are the masks"
    )
    iou_rule: str = choices_field(
        faithfulness.BINARISE_RULES,
        "threshold",
        "iou_rule",
        "heatmap region for the IoU: threshold (map >= iou_threshold), kmeans "
        "(levels 1..iou_levels) or otsu",
        many=False,
        noun="rule",
    )
    iou_threshold: float = Field(0.5, gt=0, lt=1, description="map threshold of iou_rule=threshold")
    iou_levels: int = Field(2, ge=1, le=9, description="k-means levels of iou_rule=kmeans")
    auc_x: str = Field(
        "relative",
        pattern=r"^(relative|absolute)$",
        description="deletion-curve x: relative (share of Mask_last, paper) or absolute "
        "(share of all pixels)",
    )
    blur_sigma: float = Field(4.0, gt=0, le=64, description="Gaussian sigma (px) of Blurring")
    nli_noise: float = Field(0.01, ge=0, le=1, description="noise std of Noisy Linear Imputation")
    n_boot: int = Field(1000, ge=10, le=100000, description="bootstrap resamples for the CIs")
    alexnet_weights: WeightsFile = Field(
        "",
        description="torchvision AlexNet ImageNet file for LPIPS(alex); empty: "
        "$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth when present",
    )

    @field_validator("ddpm_channels")
    @classmethod
    def _channels_fit_tile(cls, value: list[int], info) -> list[int]:
        size = info.data.get("tile_size")
        if any(c < 4 or c > 1024 for c in value):
            raise ValueError("every width must be 4-1024")
        if size is not None and size % 2 ** (len(value) - 1):
            raise ValueError(f"tile_size {size} must be divisible by 2**{len(value) - 1}")
        return value

    @field_validator("ddpm_crop")
    @classmethod
    def _crop_fits_unet(cls, value: int, info) -> int:
        size, widths = info.data.get("tile_size"), info.data.get("ddpm_channels")
        if value and size is not None and value > size:
            raise ValueError(f"must be at most tile_size ({size}); 0 learns whole tiles")
        if value and widths is not None and value % 2 ** (len(widths) - 1):
            raise ValueError(f"must be divisible by 2**{len(widths) - 1} (the UNet's levels)")
        return value

    @field_validator("repaint_steps")
    @classmethod
    def _steps_divide(cls, value: int, info) -> int:
        total = info.data.get("train_timesteps")
        if total is not None and (value > total or total % value):
            raise ValueError(f"must divide train_timesteps ({total})")
        return value

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_train": 48,
            "n_val": 16,
            "n_test": 16,
            "epochs": 1,
            "batch_size": 16,
            "ddpm_tiles": 16,
            "ddpm_channels": [8, 16],
            "ddpm_epochs": 1,
            "ddpm_batch_size": 16,
            "seeds": [0],
            "repaint_steps": 4,
            "jump_length": 2,
            "resamplings": 2,
            "n_samples": 2,
            "n_gt_samples": 4,
            "gate_samples": 4,
            "gate_steps": 4,
            "n_boot": 50,
        },
        "quick": {},
        "paper": {
            "dataset": "camelyon16",
            "tile_size": 512,
            "classifier": "resnet50",
            # the paper does not give its patch counts; the splits stream from memory-mapped
            # uint8 files (benchmarks/ibo_memory.py measures the host memory this needs)
            "n_train": 8000,
            "n_val": 1000,
            "n_test": 1000,
            "epochs": 20,
            "ddpm_tiles": 4000,
            "ddpm_channels": [128, 128, 256, 256, 512, 512],
            "ddpm_layers": 2,
            "ddpm_attention": True,
            "ddpm_epochs": 140,
            "ddpm_batch_size": 16,
            "ddpm_lr": 1e-4,
            "ddpm_ema": 0.9999,  # Ho et al.'s; the paper does not state one
            "ddpm_crop": 0,  # whole patches, unweighted loss: Ho et al.'s training
            "ddpm_snr_gamma": 0.0,
            "repaint_steps": 250,
            "jump_length": 10,
            "resamplings": 10,
            "repaint_batch": 32,
            "n_samples": 100,
            "n_gt_samples": 100,
            "replicates": 1,
            "gate_samples": 100,
            "gate_steps": 1000,
            "blur_sigma": 16.0,
        },
    }
    #: the paper's classifier, DDPM, tile size and RePaint schedule on the synthetic tiles
    PROFILES["gpu"] = {**PROFILES["paper"], "dataset": "synthetic-he"}


# -- the paper, in one place ----------------------------------------------------------------------
#: Table 1 (LPIPS, AlexNet) per strategy, Mask_1..Mask_4
_PAPER_LPIPS = {
    "blackening": ("0.1106", "0.2280", "0.3693", "0.5567"),
    "histogram": ("0.0841", "0.1844", "0.3082", "0.4621"),
    "mean": ("0.0796", "0.1776", "0.2997", "0.4520"),
    "nli": ("0.0781", "0.1769", "0.2999", "0.4537"),
    "blurring": ("0.0701", "0.1593", "0.2670", "0.3895"),
    "ibo": ("0.0381", "0.0826", "0.1407", "0.2180"),
}
_PAPER_MARD = {
    "mean": "1.1428",
    "blackening": "0.8571",
    "histogram": "0.8571",
    "nli": "0.8571",
    "blurring": "0.8571",
    "ibo": "0.2857",
}
PAPER = PaperRecord(
    key="afshar2024ibo",
    citation="Afshar et al. 2024",
    file="000_18df878e59d1e9fa.txt",
    settings=(
        Setting("data", "CAMELYON16, annotated slides split into train / val / test", "dataset"),
        Setting("patch side (px)", "512", "tile_size"),
        Setting("stain normalisation", "Modified Reinhard", "stain_norm"),
        Setting("classifier", "ResNet50", "classifier"),
        Setting("classifier epochs", "20", "epochs"),
        Setting("classifier train patches", "not stated", "n_train"),
        Setting("DDPM epochs (normal patches only)", "140", "ddpm_epochs"),
        Setting(
            "DDPM input scaling", "not stated", "ddpm_centre", "Ho et al.'s DDPM: [0, 1] to [-1, 1]"
        ),
        Setting("DDPM training windows", "whole patches (implied)", "ddpm_crop", "0: whole tiles"),
        Setting("DDPM loss weighting", "not stated", "ddpm_snr_gamma", "Ho et al.: none (0)"),
        Setting("RePaint steps T", "not stated", "repaint_steps", "RePaint's own default is 250"),
        Setting("RePaint jump length j", "10", "jump_length"),
        Setting("RePaint resamplings r", "10", "resamplings"),
        Setting("tumour samples explained", "100", "n_samples"),
        Setting("inpainting-noise replicates", "1 (not stated)", "replicates"),
        Setting("k-means levels", "5", "kmeans_k"),
        Setting("perceptual metric", "LPIPS (AlexNet)", "alexnet_weights", "empty: substitutes"),
    ),
    numbers={
        "classifier.accuracy": "0.9862",
        "classifier.f1": "0.986",
        **{
            f"table1.{s}.mask{i + 1}": v
            for s, vals in _PAPER_LPIPS.items()
            for i, v in enumerate(vals)
        },
        **{f"table9.mard.{s}": v for s, v in _PAPER_MARD.items()},
        "rank_accuracy.ibo": "5/7 (71 %)",
        "rank_accuracy.best_other": "3/7 (42 %)",
    },
)
#: the paper's Table 1 order at Mask_4, closest to the original first
PAPER_TABLE1_ORDER = ("ibo", "blurring", "mean", "nli", "histogram", "blackening")
STOCHASTIC = frozenset({"histogram", "nli", "ibo"})
SHARED_DDPM = "one DDPM, trained once on the first seed's normal tiles, serves every seed"


# -- one seed's state -----------------------------------------------------------------------------
@dataclass
class SeedRun:
    """Everything one seed computes: data, classifier, heatmaps, occlusions."""

    seed: int
    splits: dict[str, study.Split]
    reference: np.ndarray
    model: torch.nn.Module
    metrics: dict[str, float]
    ood: perceptual.Mahalanobis
    keys: dict[str, dict[str, Any]]
    gt_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    maps: np.ndarray | None = None  # (G, M, H, W) over the ground-truth tiles
    ious: np.ndarray | None = None  # (G, M)
    levels: np.ndarray | None = None  # (S, M, H, W) of the occluded tiles
    masks: np.ndarray | None = None  # (S, M, n_masks, H, W)
    results: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # (S, R, M, ...)
    aucs: dict[str, np.ndarray] = field(default_factory=dict)  # (S, R, M)

    @property
    def sample_ids(self) -> np.ndarray:
        return self.gt_ids[: self.levels.shape[0]] if self.levels is not None else self.gt_ids


@dataclass
class Study:
    """The whole chapter's results: parameters, the shared DDPM, one :class:`SeedRun` per seed."""

    params: IboParams
    profile: str
    methods: list[str]
    strategies: list[str]
    ddpm: ddpm.DDPMResult
    ddpm_key: dict[str, Any]
    runs: list[SeedRun]
    gate_images: torch.Tensor
    timings: dict[str, float]

    @property
    def n_masks(self) -> int:
        return self.params.kmeans_k - 1

    @property
    def data_name(self) -> str:
        p = self.params
        return f"{p.dataset} {p.tile_size}px, {p.classifier}"

    @property
    def have_alex(self) -> bool:
        return perceptual.alexnet_weights_path(self.params.alexnet_weights) is not None


def methods_of(params: IboParams) -> list[str]:
    return study.parse_list(params.methods, study.CAMS)


def strategies_of(params: IboParams) -> list[str]:
    return study.parse_list(params.strategies, study.STRATEGY_ORDER)


# -- cache keys (every parameter a stage depends on) ----------------------------------------------
def _pretrained_key(pretrained: bool | str) -> bool | str:
    from xaistudy.data.datasets import files_fingerprint

    return (
        f"{pretrained}:{files_fingerprint([pretrained])}"
        if isinstance(pretrained, str)
        else (pretrained)
    )


def stage_keys(params: IboParams, seed: int, data_id: dict[str, Any]) -> dict[str, dict]:
    """Cache keys of one seed's stages: data, classifier, heatmaps."""
    p = params
    data = {
        "dataset": p.dataset,
        "tile_size": p.tile_size,
        "stain_norm": p.stain_norm,
        "n_train": p.n_train,
        "n_val": p.n_val,
        "n_test": p.n_test,
        "ddpm_tiles": p.ddpm_tiles,
        "seed": seed,
        **data_id,
    }
    if p.stain_norm and seed != p.seeds[0]:
        data["stain_reference_seed"] = p.seeds[0]
    clf = dict(
        data,
        classifier=p.classifier,
        pretrained=_pretrained_key(p.pretrained),
        epochs=p.epochs,
        lr=p.lr,
        batch_size=p.batch_size,
    )
    return {"data": data, "classifier": clf, "heatmaps": dict(clf, methods=methods_of(p))}


def ddpm_stage_key(params: IboParams, seed: int, data_id: dict[str, Any]) -> dict[str, Any]:
    p = params
    key = {
        "tile_size": p.tile_size,
        "stain_norm": p.stain_norm,
        "ddpm_tiles": p.ddpm_tiles,
        "seed": seed,
        "channels": list(p.ddpm_channels),
        "layers": p.ddpm_layers,
        "attention": p.ddpm_attention,
        "epochs": p.ddpm_epochs,
        "batch_size": p.ddpm_batch_size,
        "lr": p.ddpm_lr,
        "train_timesteps": p.train_timesteps,
        **data_id,
    }
    if p.ddpm_ema:
        key["ema"] = p.ddpm_ema
    if p.ddpm_centre:
        key["centre"] = True
    if p.ddpm_crop and p.ddpm_crop < p.tile_size:
        key["crop"] = p.ddpm_crop
    if p.ddpm_snr_gamma:
        key["snr_gamma"] = p.ddpm_snr_gamma
    return key


# -- the steps ------------------------------------------------------------------------------------
def load_seed_splits(params: IboParams, seed: int, store: Store) -> tuple[dict, Any]:
    """The stain-normalised splits of one seed and the normalisation's reference (cached).
    Every seed is normalised to the first seed's reference tile: one colour space for all
    seeds' classifiers and the DDPM shared between them."""
    p = params
    return study.load_splits(
        p.tile_size,
        p.n_train,
        p.n_val,
        p.n_test,
        p.ddpm_tiles,
        p.stain_norm,
        seed,
        store=store,
        dataset=p.dataset,
        data_root=p.data_root,
        data_options=p.data_options,
        stain_reference_seed=p.seeds[0],
    )


def prepare_seed(params: IboParams, seed: int, store: Store) -> SeedRun:
    """Data splits and the trained classifier of one seed (both cached)."""
    p = params
    splits, reference = load_seed_splits(p, seed, store)
    keys = stage_keys(p, seed, study.data_identity(p.dataset, p.data_options, splits))
    model, _ = study.train_classifier(
        splits,
        p.classifier,
        p.pretrained,
        p.epochs,
        p.lr,
        p.batch_size,
        seed,
        p.device,
        store,
        keys["classifier"],
    )
    model = model.to(resolve_device(p.device)).eval()
    train_features = perceptual.penultimate_features(model, splits["train"].images)
    ood = perceptual.Mahalanobis().fit(train_features)
    return SeedRun(
        seed, splits, reference, model, study.test_metrics(model, splits["test"]), ood, keys
    )


def train_shared_ddpm(params: IboParams, first: SeedRun, store: Store) -> tuple:
    """The DDPM of normal tissue, trained once on the first seed's normal tiles."""
    return _train_ddpm(params, first.seed, first.splits, store)


def shared_ddpm(params: IboParams, store: Store | None = None) -> tuple:
    """(the DDPM, its cache key): the chapter's DDPM of normal tissue for ``params``, without
    the classifiers; what another chapter's IBO occlusion uses (cached: a run of this chapter
    with the same parameters trains it once for both)."""
    store = store or Store()
    seed = params.seeds[0]
    splits, _ = load_seed_splits(params, seed, store)
    return _train_ddpm(params, seed, splits, store)


def _train_ddpm(params: IboParams, seed: int, splits: dict, store: Store) -> tuple:
    p = params
    data_id = study.data_identity(p.dataset, p.data_options, splits)
    key = ddpm_stage_key(p, seed, data_id)
    dm = ddpm.train_ddpm(
        splits["ddpm"].images,
        channels=p.ddpm_channels,
        layers_per_block=p.ddpm_layers,
        attention=p.ddpm_attention,
        num_train_timesteps=p.train_timesteps,
        epochs=p.ddpm_epochs,
        batch_size=p.ddpm_batch_size,
        lr=p.ddpm_lr,
        seed=seed,
        device=p.device,
        store=store,
        kind="ibo-ddpm",
        params=key,
        ema_decay=p.ddpm_ema,
        centre=p.ddpm_centre,
        crop=p.ddpm_crop,
        snr_gamma=p.ddpm_snr_gamma,
    )
    return dm, key


def gate_samples(params: IboParams, dm: ddpm.DDPMResult, key: dict, store: Store) -> torch.Tensor:
    """The gate's DDPM samples (cached with the DDPM's key)."""
    n, steps = params.gate_samples, min(params.gate_steps, params.train_timesteps)
    arrays = store.cached_arrays(
        "ibo-ddpm-samples",
        dict(key, n=n, steps=steps),
        lambda: {
            "x": ddpm.sample(
                dm.unet,
                dm.scheduler,
                [900_000 + i for i in range(n)],
                num_inference_steps=steps,
                device=params.device,
                scaling=dm.scaling,
                batch_size=params.repaint_batch,
            ).numpy()
        },
    )
    return torch.from_numpy(arrays["x"])


def tumour_order(labels: torch.Tensor, seed: int) -> np.ndarray:
    """The tumour tiles of a split in a seeded random order: any first n of them is a sample
    set, so smaller sets are nested in larger ones."""
    tumour = np.flatnonzero(labels.numpy() == 1)
    if len(tumour) == 0:
        raise ValueError("the test split has no tumour tiles")
    return np.random.default_rng(np.random.SeedSequence([seed, 5])).permutation(tumour)


def explain_seed(params: IboParams, run: SeedRun, store: Store) -> None:
    """Heatmaps and IoU of the ground-truth tiles; levels and masks of the occluded tiles."""
    p, methods = params, methods_of(params)
    order = tumour_order(run.splits["test"].labels, run.seed)
    run.gt_ids = order[: max(p.n_gt_samples, p.n_samples)]
    x = run.splits["test"].images[run.gt_ids]
    run.maps = store.cached_arrays(
        "ibo-heatmaps",
        dict(run.keys["heatmaps"], samples=run.gt_ids.tolist()),
        lambda: {"maps": study.heatmaps(run.model, x, methods)},
    )["maps"]
    gt_levels = occlusion.levels_batch(run.maps, k=p.kmeans_k, seed=run.seed)
    region = faithfulness.binarise(
        run.maps, p.iou_rule, p.iou_threshold, levels=gt_levels, n_levels=p.iou_levels
    )
    run.ious = faithfulness.iou(region, run.splits["test"].masks[run.gt_ids][:, None])
    n = min(p.n_samples, len(run.gt_ids))
    run.levels = gt_levels[:n]
    run.masks = occlusion.nested_masks(run.levels, p.kmeans_k - 1)


def strategy_options(
    params: IboParams, mean: Sequence[float], dm, ddpm_key: dict
) -> dict[str, tuple[dict, dict]]:
    """Per strategy: (options that go into the cache key, options passed to the occlusion);
    ``mean`` is the training tiles' channel mean (the Mean strategy's fill); without a DDPM
    (``dm`` None) there is no IBO entry."""
    p = params
    mean = list(mean)
    ibo_key = {
        "ddpm": ddpm_key,
        "repaint_steps": p.repaint_steps,
        "jump_length": p.jump_length,
        "resamplings": p.resamplings,
        "eta": p.eta,
        "repaint_batch": p.repaint_batch,
        "device": str(resolve_device(p.device)),
    }
    ibo_run = dict(
        unet=getattr(dm, "unet", None),
        ddpm_scheduler=getattr(dm, "scheduler", None),
        scaling=getattr(dm, "scaling", None),
        num_inference_steps=p.repaint_steps,
        jump_length=p.jump_length,
        jump_n_sample=p.resamplings,
        eta=p.eta,
        batch_size=p.repaint_batch,
        device=p.device,
    )
    options = {
        "blackening": ({}, {}),
        "mean": ({"dataset_mean": mean}, {"dataset_mean": mean}),
        "histogram": ({}, {}),
        "blurring": ({"blur_sigma": p.blur_sigma}, {"blur_sigma": p.blur_sigma}),
        "nli": ({"nli_noise": p.nli_noise}, {"nli_noise": p.nli_noise}),
    }
    if dm is not None:
        options["ibo"] = (ibo_key, ibo_run)
    return options


def occlude_seed(params: IboParams, run: SeedRun, dm, ddpm_key: dict, store: Store) -> None:
    """Every strategy on every (tile, method), replicated over the noise; common random
    numbers: the methods of a tile share its noise. One cache entry per strategy and replicate."""
    p, methods = params, methods_of(params)
    x = run.splits["test"].images[run.sample_ids]
    alex = perceptual.alexnet_weights_path(p.alexnet_weights)
    options = strategy_options(p, run.splits["train"].images.channel_mean(), dm, ddpm_key)
    base = dict(
        run.keys["heatmaps"],
        samples=run.sample_ids.tolist(),
        kmeans_k=p.kmeans_k,
        alexnet=str(alex) if alex else False,
        noise="common",
        sample_chunk=study.SAMPLE_CHUNK,
    )
    xs = faithfulness.occluded_fractions(run.masks, relative=p.auc_x == "relative")
    for strategy in strategies_of(p):
        key_opts, run_opts = options[strategy]
        reps = []
        for r in range(p.replicates if strategy in STOCHASTIC else 1):
            seeds = study.noise_seeds(run.seed, run.sample_ids, len(methods), r)
            reps.append(
                store.cached_arrays(
                    "ibo-occlusion",
                    dict(base, strategy=strategy, options=key_opts, replicate=r),
                    lambda seeds=seeds, run_opts=run_opts, strategy=strategy: (
                        study.evaluate_strategy(
                            strategy,
                            run.model,
                            x,
                            run.levels,
                            seeds,
                            p.kmeans_k - 1,
                            run.ood,
                            alexnet_weights=p.alexnet_weights,
                            **run_opts,
                        )
                    ),
                )
            )
        stacked = {
            k: np.stack([r[k] for r in reps], axis=1)
            for k in reps[0]
            if k not in ("examples", "seconds", "unet_calls")
        }
        stacked = {k: np.repeat(v, p.replicates // v.shape[1], axis=1) for k, v in stacked.items()}
        stacked.update(
            examples=reps[0]["examples"],
            seconds=np.sum([r["seconds"] for r in reps]),
            unet_calls=np.sum([r["unet_calls"] for r in reps]),
        )
        run.results[strategy] = stacked
        run.aucs[strategy] = faithfulness.trapezoid_auc(
            np.broadcast_to(xs[:, None], stacked["prob"].shape), stacked["prob"]
        )


def run_study(params: IboParams, profile: str = "quick", store: Store | None = None) -> Study:
    """The whole experiment over the seeds (every stage cached)."""
    store = store or Store()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        return out

    runs = [
        timed("data + classifier", lambda s=s: prepare_seed(params, s, store))
        for s in tqdm(params.seeds, desc="ibo: data and classifiers")
    ]
    dm, key = timed("DDPM (shared)", lambda: train_shared_ddpm(params, runs[0], store))
    gate = timed("DDPM gate samples", lambda: gate_samples(params, dm, key, store))
    for run in tqdm(runs, desc="ibo: seeds"):
        timed("heatmaps", lambda run=run: explain_seed(params, run, store))
        timed("occlusion", lambda run=run: occlude_seed(params, run, dm, key, store))
    return Study(
        params, profile, methods_of(params), strategies_of(params), dm, key, runs, gate, timings
    )


# -- tidy measurements (one row per seed, tile and what was measured) -----------------------------
def iou_rows(st: Study) -> pd.DataFrame:
    """IoU per seed, ground-truth tile (``unit``) and method; ``occluded``: in the occluded set."""
    frames = []
    for run in st.runs:
        g, m = run.ious.shape
        frames.append(
            pd.DataFrame(
                {
                    "seed": run.seed,
                    "unit": np.repeat(run.gt_ids, m),
                    "method": np.tile(st.methods, g),
                    "iou": run.ious.reshape(-1),
                    "occluded": np.repeat(np.arange(g) < len(run.sample_ids), m),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def auc_rows(st: Study) -> pd.DataFrame:
    """Deletion AUC and P(tumour) before / after the last mask per seed, tile, replicate,
    strategy and method."""
    frames = []
    for run in st.runs:
        for strategy, auc in run.aucs.items():
            s, r, m = auc.shape
            prob = run.results[strategy]["prob"]
            frames.append(
                pd.DataFrame(
                    {
                        "seed": run.seed,
                        "unit": np.repeat(run.sample_ids, r * m),
                        "replicate": np.tile(np.repeat(np.arange(r), m), s),
                        "strategy": strategy,
                        "method": np.tile(st.methods, s * r),
                        "auc": auc.reshape(-1),
                        "p_before": prob[..., 0].reshape(-1),
                        "p_after": prob[..., -1].reshape(-1),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def distance_rows(st: Study) -> pd.DataFrame:
    """Table 1's distances per seed, tile, strategy, metric and mask (mean over methods and
    noise replicates)."""
    frames = []
    for run in st.runs:
        for strategy, res in run.results.items():
            for metric in study.METRIC_LABELS:
                if metric not in res:
                    continue
                values = res[metric].mean(axis=(1, 2))  # (S, n_masks)
                s, k = values.shape
                frames.append(
                    pd.DataFrame(
                        {
                            "seed": run.seed,
                            "unit": np.repeat(run.sample_ids, k),
                            "strategy": strategy,
                            "metric": metric,
                            "mask": np.tile(np.arange(1, k + 1), s),
                            "value": values.reshape(-1),
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


# -- statistics over rows (fast: integer codes and bincount) --------------------------------------
def _means(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(codes, values, n) / np.bincount(codes, minlength=n)


def ranking_rows(
    iou: pd.DataFrame, auc: pd.DataFrame, methods: Sequence[str], strategies: Sequence[str]
) -> pd.DataFrame:
    """One table for the ranking statistics: ``m`` method code, ``src`` 0 = IoU (higher is
    better), 1 + i = deletion AUC of strategy i (lower is better), ``value``."""
    code = {m: i for i, m in enumerate(methods)}
    gt = pd.DataFrame(
        {"seed": iou.seed, "unit": iou.unit, "m": iou.method.map(code), "src": 0, "value": iou.iou}
    )
    src = {s: i + 1 for i, s in enumerate(strategies)}
    oc = pd.DataFrame(
        {
            "seed": auc.seed,
            "unit": auc.unit,
            "m": auc.method.map(code),
            "src": auc.strategy.map(src),
            "value": auc.auc,
        }
    )
    return pd.concat([gt, oc], ignore_index=True)


def _ranks(rows: pd.DataFrame, src: int, n_methods: int) -> np.ndarray:
    sel = rows["src"].to_numpy() == src
    means = _means(rows["m"].to_numpy()[sel], rows["value"].to_numpy()[sel], n_methods)
    return faithfulness.rank(
        np.nan_to_num(means, nan=np.inf if src else -np.inf), higher_is_better=src == 0
    )


def agreement_statistic(src: int, n_methods: int, what: str = "mard") -> Callable:
    """MARD, rank accuracy or Kendall tau of strategy ``src``'s AUC ranking against the IoU
    ranking, both from the means over the rows (all seeds pooled)."""
    fn = {
        "mard": faithfulness.mard,
        "rank_accuracy": faithfulness.rank_accuracy,
        "kendall_tau": faithfulness.kendall_tau,
    }[what]

    def statistic(rows: pd.DataFrame) -> float:
        return fn(_ranks(rows, 0, n_methods), _ranks(rows, src, n_methods))

    return statistic


def difference_statistic(first: Callable, second: Callable) -> Callable:
    """``first(rows) - second(rows)``."""
    return lambda rows: first(rows) - second(rows)


def bootstrap_many(
    data: pd.DataFrame, statistics: Sequence[Callable], n_boot: int, rng_seed: int = 0
) -> np.ndarray:
    """(n_boot, len(statistics)): every statistic on the same bootstrap resamples, drawn as
    :func:`xaistudy.claims.bootstrap_interval` draws them (seeds, then tiles within a seed; all
    rows of a tile together)."""
    data = data.reset_index(drop=True)
    groups = {s: list(g.groupby("unit").indices.values()) for s, g in data.groupby("seed")}
    offsets = {s: g.index.to_numpy() for s, g in data.groupby("seed")}
    seeds, rng = list(groups), np.random.default_rng(rng_seed)
    out = np.empty((n_boot, len(statistics)))
    for b in range(n_boot):
        drawn = rng.choice(len(seeds), size=len(seeds)) if len(seeds) > 1 else [0]
        parts = []
        for k in drawn:
            units = groups[seeds[k]]
            parts.extend(
                offsets[seeds[k]][units[i]] for i in rng.integers(0, len(units), len(units))
            )
        sample = data.iloc[np.concatenate(parts)]
        out[b] = [statistic(sample) for statistic in statistics]
    return out


def bootstrap_draws(
    data: pd.DataFrame, statistic: Callable, n_boot: int, rng_seed: int = 0
) -> np.ndarray:
    """The finite bootstrap draws of one statistic (see :func:`bootstrap_many`)."""
    draws = bootstrap_many(data, [statistic], n_boot, rng_seed)[:, 0]
    return draws[np.isfinite(draws)]


def _interval(draws: np.ndarray) -> dict[str, float]:
    """Bootstrap mean (the smoothed estimate, inside its interval) and 95 % percentile interval."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return {"boot_mean": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    low, high = np.quantile(draws, [0.025, 0.975])
    return {"boot_mean": float(draws.mean()), "ci_low": float(low), "ci_high": float(high)}


# -- tables ---------------------------------------------------------------------------------------
def splits_table(st: Study) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "seed": run.seed,
                "split": k,
                "tiles": len(v.labels),
                "tumour": int(v.labels.sum()),
                "normal": int((v.labels == 0).sum()),
            }
            for run in st.runs
            for k, v in run.splits.items()
        ]
    )


def data_text(st: Study) -> str:
    """One sentence naming the data of this run."""
    from xaistudy.data.datasets import get_spec, resolve_data_root

    p, sp = st.params, st.runs[0].splits
    if not get_spec(p.dataset).needs_root:
        return (
            f"**Data of this run: `{p.dataset}`**, the book's synthetic H&E tiles "
            f"({p.tile_size} px), not CAMELYON16; seeds {', '.join(map(str, p.seeds))}."
        )
    opts = ", ".join(f"{k}={v!r}" for k, v in p.data_options.items()) or "the loader's defaults"
    return (
        f"**Data of this run: `{p.dataset}`** read from "
        f"`{resolve_data_root(p.dataset, p.data_root)}` ({opts}): {p.tile_size}-pixel "
        f"patches from {len(sp['train'].slides)} training, {len(sp['val'].slides)} "
        f"validation and {len(sp['test'].slides)} test slides (no slide in two splits)."
    )


def classifier_table(st: Study) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "seed": r.seed,
                "classifier": st.params.classifier,
                "test_tiles": r.metrics["n"],
                "accuracy": r.metrics["accuracy"],
                "f1_tumour": r.metrics["f1_tumour"],
            }
            for r in st.runs
        ]
    )


def gate_rows(st: Study) -> pd.DataFrame:
    """P(tumour) and OoD score of the DDPM's samples, of as many of the real tiles it learned
    from, and of held-out test tiles, per seed's classifier (``source``: DDPM sample / DDPM
    training tile / held-out normal tile / held-out tumour tile)."""
    training = st.runs[0].splits["ddpm"].images[: len(st.gate_images)]
    return gate_scores(st.runs, st.gate_images, training)


def gate_scores(
    runs: Sequence[SeedRun], samples: torch.Tensor, training: torch.Tensor | None = None
) -> pd.DataFrame:
    """:func:`gate_rows` for any ``samples`` (N, 3, H, W) in [0, 1], scored by ``runs``'
    classifiers and OoD detectors against their held-out test tiles; ``training`` (optional):
    real tiles the DDPM learned from, scored the same way (the gate's control)."""
    frames = []
    for run in runs:
        test = run.splits["test"]
        y = test.labels.numpy()
        sources = [("DDPM sample", samples)]
        if training is not None:
            sources.append(("DDPM training tile", training))
        sources += [
            ("held-out normal tile", test.images[y == 0]),
            ("held-out tumour tile", test.images[y == 1]),
        ]
        for source, images in sources:
            feats = perceptual.penultimate_features(run.model, images)
            frames.append(
                pd.DataFrame(
                    {
                        "seed": run.seed,
                        "source": source,
                        "unit": np.arange(len(images)),
                        "p_tumour": study.tumour_probability(run.model, images),
                        "ood": run.ood.score(feats),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def gate_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The DDPM gate: do the samples pass as normal tissue? Per seed: mean P(tumour) and OoD
    score of samples vs held-out tiles; ``passes`` (the book's criterion): the samples' mean
    P(tumour) is within 0.1 of the normal tiles' and their median OoD score is below the 95th
    percentile of the normal tiles' scores. The DDPM's training tiles (when scored) get the
    same row as a control: where they fail too, the gate measures a difference between the
    data the DDPM learned and the seed's tiles, not the DDPM."""
    out = []
    for seed, g in rows.groupby("seed"):
        normal = g[g.source == "held-out normal tile"]
        for source, s in g.groupby("source", sort=False):
            out.append(
                {
                    "seed": seed,
                    "source": source,
                    "n": len(s),
                    "p_tumour_mean": s.p_tumour.mean(),
                    "ood_mean": s.ood.mean(),
                    "ood_median": s.ood.median(),
                }
            )
        for source, verdict in GATE_VERDICTS.items():
            scored = g[g.source == source]
            if len(scored):
                out.append({"seed": seed, "source": verdict, **_gate_verdict(scored, normal)})
    table = pd.DataFrame(out)
    return table.astype({"n": "Int64", "passes": "boolean"})


def gate_text(table: pd.DataFrame) -> str:
    """What :func:`gate_table` shows, in one sentence per verdict row (counted from it)."""
    parts = []
    for source, verdict in GATE_VERDICTS.items():
        rows = table[table.source == verdict]
        if not len(rows):
            continue
        passed = rows.loc[rows.passes.astype(bool), "seed"].tolist()
        failed = rows.loc[~rows.passes.astype(bool), "seed"].tolist()
        what = "The DDPM's samples" if source == "DDPM sample" else "Its training tiles (control)"
        text = f"{what} pass as normal for {len(passed)} of {len(rows)} seeds' classifiers"
        if failed:
            text += f" (not for seed{'s' * (len(failed) > 1)} {', '.join(map(str, failed))})"
        parts.append(text + ".")
    return " ".join(parts)


#: the gate's verdict rows: the DDPM's samples, and its training tiles as the control
GATE_VERDICTS = {
    "DDPM sample": "gate: samples pass as normal",
    "DDPM training tile": "control: training tiles pass as normal",
}


def _gate_verdict(scored: pd.DataFrame, normal: pd.DataFrame) -> dict[str, Any]:
    gap = scored.p_tumour.mean() - normal.p_tumour.mean()
    ood = scored.ood.median() - normal.ood.quantile(0.95)
    return {
        "p_tumour_gap": gap,
        "ood_median_minus_normal_q95": ood,
        "passes": bool(abs(gap) <= 0.1 and ood <= 0),
    }


def perceptual_table(st: Study, dist: pd.DataFrame, gate: pd.DataFrame) -> pd.DataFrame:
    """Table 1: mean distance per strategy, metric and mask (tiles, methods, replicates, seeds),
    with the OoD score of unoccluded held-out tiles as reference rows."""
    table = dist.pivot_table(
        index=["metric", "strategy"], columns="mask", values="value", aggfunc="mean", sort=False
    )
    table.columns = [f"Mask_{c}" for c in table.columns]
    table = table.reset_index()
    for source in ("held-out normal tile", "held-out tumour tile"):
        row = {"metric": "mahalanobis", "strategy": f"reference: {source}"}
        row.update(
            {c: float(gate.loc[gate.source == source, "ood"].mean()) for c in table.columns[2:]}
        )
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    return table


def iou_table(st: Study, iou: pd.DataFrame) -> pd.DataFrame:
    """Table 2: mean IoU per method over all ground-truth tiles and seeds, its 95 % interval,
    the ground-truth rank, the rank per seed and the rank on the occluded subset only."""
    rows = []
    for method in st.methods:
        sub = iou[iou.method == method].rename(columns={"iou": "value"})
        est, low, high = bootstrap_interval(sub, n_boot=st.params.n_boot)
        rows.append(
            {
                "method": method,
                "label": study.method_label(method),
                "iou_mean": est,
                "ci_low": low,
                "ci_high": high,
            }
        )
    table = pd.DataFrame(rows)
    table["gt_rank"] = faithfulness.rank(table.iou_mean.to_numpy(), higher_is_better=True)
    for seed, g in iou.groupby("seed"):
        means = g.groupby("method").iou.mean().reindex(st.methods).to_numpy()
        table[f"rank seed {seed}"] = faithfulness.rank(means, higher_is_better=True)
    sub = iou[iou.occluded].groupby("method").iou.mean().reindex(st.methods).to_numpy()
    table["rank on occluded tiles"] = faithfulness.rank(sub, higher_is_better=True)
    return table.sort_values("gt_rank", kind="stable").reset_index(drop=True)


def rank_grid(st: Study, iou: pd.DataFrame, auc: pd.DataFrame) -> pd.DataFrame:
    """Tables 2-8 side by side: each method's rank by IoU and by mean AUC per strategy."""
    grid = pd.DataFrame({"method": [study.method_label(m) for m in st.methods]})
    grid["IoU (ground truth)"] = faithfulness.rank(
        iou.groupby("method").iou.mean().reindex(st.methods).to_numpy(), higher_is_better=True
    )
    for s in st.strategies:
        means = auc[auc.strategy == s].groupby("method").auc.mean().reindex(st.methods)
        grid[occlusion.STRATEGIES[s]] = faithfulness.rank(means.to_numpy(), higher_is_better=False)
    return grid.sort_values("IoU (ground truth)", kind="stable").reset_index(drop=True)


def mard_table(st: Study, ranking: pd.DataFrame) -> pd.DataFrame:
    """Table 9 with uncertainty: per strategy MARD, rank accuracy and Kendall tau (all seeds
    pooled), each with its bootstrap mean and 95 % interval over seeds and tiles (the noise
    replicates of a tile stay together), and MARD per seed and per noise replicate."""
    n, rows, whats = len(st.methods), [], ("mard", "rank_accuracy", "kendall_tau")
    stats = [agreement_statistic(i + 1, n, w) for i in range(len(st.strategies)) for w in whats]
    draws = bootstrap_many(ranking, stats, st.params.n_boot)
    for i, s in enumerate(st.strategies):
        row: dict[str, Any] = {"strategy": s, "paper_mard": PAPER.numbers.get(f"table9.mard.{s}")}
        for k, what in enumerate(whats):
            column = i * len(whats) + k
            row[what] = stats[column](ranking)
            row.update({f"{what}_{key}": v for key, v in _interval(draws[:, column]).items()})
        for seed, g in ranking.groupby("seed"):
            row[f"mard seed {seed}"] = stats[i * len(whats)](g)
        rows.append(row)
    return pd.DataFrame(rows)


def replicate_mard(st: Study, iou: pd.DataFrame, auc: pd.DataFrame) -> pd.DataFrame:
    """MARD of each strategy from one noise replicate at a time (all seeds pooled): how much
    of Table 9 the inpainting noise alone moves."""
    rows = []
    for r in sorted(auc.replicate.unique()):
        ranking = ranking_rows(iou, auc[auc.replicate == r], st.methods, st.strategies)
        for i, s in enumerate(st.strategies):
            rows.append(
                {
                    "replicate": r,
                    "strategy": s,
                    "mard": agreement_statistic(i + 1, len(st.methods))(ranking),
                }
            )
    return (
        pd.DataFrame(rows)
        .pivot(index="strategy", columns="replicate", values="mard")
        .add_prefix("replicate ")
        .reindex(st.strategies)
        .reset_index()
    )


def signal_table(st: Study, auc: pd.DataFrame) -> pd.DataFrame:
    """Which strategies carry signal? Per strategy: mean P(tumour) before and after the last
    mask, the drop with its 95 % interval, and a Friedman test of the methods' AUCs over the
    (seed, tile) blocks. ``carries_signal`` (the book's criterion): the drop's
    interval lies above 0.05 and the Friedman p-value is below 0.05."""
    from scipy.stats import friedmanchisquare

    rows = []
    for s in st.strategies:
        sub = auc[auc.strategy == s]
        drop = sub.assign(value=sub.p_before - sub.p_after)
        est, low, high = bootstrap_interval(drop, n_boot=st.params.n_boot)
        # blocks are tiles (the mean over a tile's noise replicates): replicates are not
        # independent of their tile, and a deterministic strategy's replicates are copies
        wide = sub.pivot_table(index=["seed", "unit"], columns="method", values="auc")
        distinct = wide.T.drop_duplicates().T  # identical heatmaps give identical columns
        try:
            p = (
                friedmanchisquare(*distinct.to_numpy().T).pvalue
                if distinct.shape[1] > 2 and len(distinct) > 1
                else np.nan
            )
        except ValueError:
            p = np.nan
        rows.append(
            {
                "strategy": s,
                "p_tumour_before": sub.p_before.mean(),
                "p_tumour_after_last_mask": sub.p_after.mean(),
                "drop": est,
                "drop_ci_low": low,
                "drop_ci_high": high,
                "auc_spread_between_methods": sub.groupby("method").auc.mean().agg(np.ptp),
                "friedman_p": p,
                "carries_signal": bool(low > 0.05 and np.isfinite(p) and p < 0.05),
            }
        )
    return pd.DataFrame(rows)


def cost_table(st: Study) -> pd.DataFrame:
    """IBO's UNet evaluations and time (all seeds and replicates)."""
    p = st.params
    per_image = inpaint.unet_calls_per_image(p.repaint_steps, p.jump_length, p.resamplings)
    ibo = [r.results["ibo"] for r in st.runs if "ibo" in r.results]
    return pd.DataFrame(
        [
            {
                "schedule": f"T={p.repaint_steps}, j={p.jump_length}, r={p.resamplings}",
                "unet_evals_per_image_per_level": per_image,
                "images_per_level": sum(len(r.sample_ids) for r in st.runs)
                * len(st.methods)
                * p.replicates,
                "levels": st.n_masks,
                "unet_calls_batched": int(sum(r["unet_calls"] for r in ibo)),
                "ibo_seconds (when computed)": float(sum(r["seconds"] for r in ibo)),
                "device": str(resolve_device(p.device)),
                "paper_schedule_evals_per_image (T=250, j=r=10)": inpaint.unet_calls_per_image(
                    250, 10, 10
                ),
            }
        ]
    )


def timings_table(st: Study) -> pd.DataFrame:
    """Wall-clock seconds per stage of this run (a cached stage only loads its result)."""
    return pd.DataFrame({"stage": list(st.timings), "seconds": list(st.timings.values())})


def benchmark_table() -> pd.DataFrame:
    """The stored results of ``benchmarks/repaint_batched.py`` with their machines."""
    import json

    from xaistudy.store import repo_root

    rows = []
    for path in sorted((repo_root() / "benchmarks" / "results").glob("repaint_*.json")):
        r = json.loads(path.read_text())
        rows.append(
            {
                "file": path.name,
                "device": r["machine"]["device"],
                "machine": r["machine"].get("gpu") or r["machine"]["processor"],
                "cpu_threads": r["machine"]["torch_threads"],
                "batch": r["batch"],
                "image_size": r["image_size"],
                "schedule": "T={num_inference_steps}, j={jump_length}, r={jump_n_sample}".format(
                    **r["schedule"]
                ),
                "batched_images_per_s": r["batched"]["images_per_second"],
                "pipeline_loop_images_per_s": r["per_image_pipeline_loop"]["images_per_second"],
                "speedup": r["speedup_batched_over_loop"],
                "max_pixel_difference": r["max_abs_difference_in_inpainted_pixels"],
            }
        )
    return pd.DataFrame(rows)


def gate_benchmark_table() -> pd.DataFrame:
    """The stored results of ``benchmarks/ddpm_gate.py`` (the gate against training length and
    the DDPM's settings), one row per file and epoch count, with their machines.

    ``x0_clip``: the range the sampler clipped each predicted clean image to. Results stored
    before the sampler kept it in the data's range (:meth:`ddpm.Scaling.bound_noise`) clipped
    a centred model's prediction to [-1, 1], which lets bright pixels overshoot."""
    import json

    from xaistudy.store import repo_root

    rows = []
    for path in sorted((repo_root() / "benchmarks" / "results").glob("ddpm_gate_*.json")):
        r = json.loads(path.read_text())
        st, m = r["settings"], r["machine"]
        for run in r["runs"]:
            rows.append(
                {
                    "file": path.name,
                    "machine": m.get("gpu") or f"{m['cpu_count']}-core {m['processor']}",
                    "centred": st.get("ddpm_centre", False),
                    "x0_clip": r.get("x0_clip", "[-1, 1]"),
                    "crop": st.get("ddpm_crop", 0) or st["tile_size"],
                    "snr_gamma": st.get("ddpm_snr_gamma", 0.0),
                    "batch": st["ddpm_batch_size"],
                    "lr": st["ddpm_lr"],
                    "ema": st["ddpm_ema"],
                    "sampling_steps": st["gate_steps"],
                    "epochs": run["ddpm_epochs"],
                    "ddpm_seed": run.get("ddpm_seed", 0),
                    "optimiser_steps": run["optimiser_steps"],
                    "train_s": run["train_seconds"],
                    "p_tumour_samples": run["p_tumour_samples"],
                    "p_tumour_normal": run["p_tumour_normal"],
                    "ood_median_samples": run["ood_median_samples"],
                    "ood_median_normal": run["ood_median_normal"],
                    "passes": run["passes"],
                }
            )
    return pd.DataFrame(rows)


def paper_vs_book(st: Study, table1: pd.DataFrame, mard: pd.DataFrame) -> pd.DataFrame:
    """The paper's numbers (from :data:`PAPER`) beside this run's, naming data and profile."""
    metric = "lpips_alex" if st.have_alex else "feature_lpips"
    note = f"{st.data_name}, seeds {' '.join(map(str, st.params.seeds))}, profile {st.profile}"
    clf = classifier_table(st)
    rows = [
        ("classifier accuracy", PAPER.number("classifier.accuracy"), clf.accuracy.mean()),
        ("classifier F1 (tumour)", PAPER.number("classifier.f1"), clf.f1_tumour.mean()),
    ]
    t1 = table1[table1.metric == metric].set_index("strategy")
    for s in st.strategies:
        for i in range(min(4, st.n_masks)):
            rows.append(
                (
                    f"Table 1 {occlusion.STRATEGIES[s]} Mask_{i + 1} ({metric})",
                    PAPER.number(f"table1.{s}.mask{i + 1}"),
                    t1.loc[s, f"Mask_{i + 1}"],
                )
            )
    for _, r in mard.iterrows():
        rows.append(
            (
                f"Table 9 MARD {occlusion.STRATEGIES[r.strategy]}",
                PAPER.number(f"table9.mard.{r.strategy}"),
                r.mard,
            )
        )
    ibo = mard[mard.strategy == "ibo"]
    if len(ibo):
        rows.append(
            ("rank accuracy, IBO", PAPER.number("rank_accuracy.ibo"), ibo.rank_accuracy.iloc[0])
        )
    others = mard[mard.strategy != "ibo"]
    if len(others):
        rows.append(
            (
                "rank accuracy, best other strategy",
                PAPER.number("rank_accuracy.best_other"),
                others.rank_accuracy.max(),
            )
        )
    table = pd.DataFrame(rows, columns=["quantity", "paper", "this book"])
    table["our data / profile"] = note
    if not st.have_alex:
        table.loc[table.quantity.str.startswith("Table 1"), "our data / profile"] = (
            note + "; no AlexNet weights: a classifier-feature distance, another scale"
        )
    return table


# -- claims ---------------------------------------------------------------------------------------
def _table1_closest(metric: str, strategies: Sequence[str], n_masks: int) -> Callable:
    """min over the other strategies and the masks of (their mean distance - IBO's); for SSIM
    (a similarity) IBO's minus theirs. > 0: IBO is the closest to the original everywhere."""
    code = {s: i for i, s in enumerate(strategies)}
    sign = -1.0 if metric == "ssim" else 1.0
    ibo = code["ibo"]

    def statistic(rows: pd.DataFrame) -> float:
        cell = rows["strategy"].map(code).to_numpy() * n_masks + rows["mask"].to_numpy() - 1
        means = _means(cell, rows["value"].to_numpy(), len(strategies) * n_masks)
        means = means.reshape(len(strategies), n_masks)
        diff = sign * (np.delete(means, ibo, axis=0) - means[ibo])
        return float(np.nanmin(diff))

    return statistic


def _split_half_tau(n_methods: int) -> Callable:
    """Kendall tau between the IoU rankings of the even- and the odd-numbered tiles."""

    def statistic(rows: pd.DataFrame) -> float:
        units = rows["unit"].to_numpy().astype(np.uint64)
        half = ((units * np.uint64(0x9E3779B1)) >> np.uint64(11)) & np.uint64(1)  # a fixed hash
        m, v = rows["m"].to_numpy(), rows["value"].to_numpy()
        a, b = (_means(m[half == h], v[half == h], n_methods) for h in (0, 1))
        if np.isnan(a).any() or np.isnan(b).any():
            return float("nan")
        return faithfulness.kendall_tau(faithfulness.rank(a, True), faithfulness.rank(b, True))

    return statistic


def claims(st: Study) -> list[dict[str, object]]:
    """The paper's findings (Tables 1, 2 and 9) and IBO's premise, judged over the seeds, the
    tiles and the noise replicates (a tile's replicates stay together in the bootstrap)."""
    p, cite = st.params, PAPER.citation
    iou, auc, dist, gate = iou_rows(st), auc_rows(st), distance_rows(st), gate_rows(st)
    signal = signal_table(st, auc).set_index("strategy")
    common = dict(n_boot=p.n_boot, data_name=st.data_name, profile=st.profile)
    out = []

    normal = gate[gate.source == "held-out normal tile"].groupby("seed").p_tumour.mean()
    samples = gate[gate.source == "DDPM sample"]
    out.append(
        judge(
            Claim(
                "premise.ddpm_samples_normal",
                cite,
                "Sec. 3 (DDPM of normal tissue)",
                "The DDPM trained on normal tissue generates normal tissue",
                "premise (no number)",
                "P(tumour) of a DDPM sample minus the mean P(tumour) of held-out normal tiles "
                "(per seed's classifier)",
                expect="<",
                null=0.1,
            ),
            samples.assign(value=samples.p_tumour - samples.seed.map(normal)),
            shared_stages=SHARED_DDPM,
            **common,
        )
    )
    if "ibo" in st.strategies:
        sub = auc[auc.strategy == "ibo"]
        out.append(
            judge(
                Claim(
                    "premise.ibo_lowers_p_tumour",
                    cite,
                    "Sec. 3 / Fig. 6",
                    "Inpainting the highlighted regions with normal tissue lowers P(tumour)",
                    "premise (no number)",
                    "P(tumour) before minus after the last mask, IBO",
                ),
                sub.assign(value=sub.p_before - sub.p_after),
                shared_stages=SHARED_DDPM,
                **common,
            )
        )

    if "ibo" in st.strategies and len(st.strategies) > 1:
        for metric in [m for m in study.METRIC_LABELS if m in set(dist.metric)]:
            rows = dist[dist.metric == metric]
            out.append(
                judge(
                    Claim(
                        f"table1.{metric}.ibo_closest",
                        cite,
                        "Table 1",
                        "IBO's occlusions are the closest to the original at every mask",
                        f"IBO {PAPER.number('table1.ibo.mask4')} vs Blurring "
                        f"{PAPER.number('table1.blurring.mask4')} at Mask_4 (LPIPS)",
                        f"{study.METRIC_LABELS[metric]}: smallest margin of IBO over any "
                        "other strategy at any mask",
                        statistic=_table1_closest(metric, st.strategies, st.n_masks),
                    ),
                    rows,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
            last = rows[rows["mask"] == st.n_masks]
            score = last.value if metric == "ssim" else -last.value
            out.append(
                judge(
                    Claim(
                        f"table1.{metric}.order",
                        cite,
                        "Table 1",
                        "Strategies ordered by distance to the original: "
                        + " < ".join(PAPER_TABLE1_ORDER),
                        "the order of the LPIPS column Mask_4",
                        f"{study.METRIC_LABELS[metric]}: Kendall tau of the strategies' order at "
                        f"Mask_{st.n_masks} with the paper's",
                        statistic=order_agreement(
                            [s for s in PAPER_TABLE1_ORDER if s in st.strategies], by="strategy"
                        ),
                    ),
                    last.assign(score=score),
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )

    ranking = ranking_rows(iou, auc, st.methods, st.strategies)
    gt = ranking[ranking.src == 0]
    out.append(
        judge(
            Claim(
                "table2.gt_ranking_stable",
                cite,
                "Table 2",
                "The IoU ranking of the methods is a ground truth (a stable order)",
                "one order from the test tiles",
                "Kendall tau between the IoU rankings of two disjoint halves of the tiles",
                statistic=_split_half_tau(len(st.methods)),
            ),
            gt,
            **common,
        )
    )

    if "ibo" in st.strategies:
        n, ibo = len(st.methods), st.strategies.index("ibo") + 1
        for i, s in enumerate(st.strategies):
            if s == "ibo":
                continue
            rows = ranking[ranking.src.isin([0, ibo, i + 1])]
            note = (
                f"{occlusion.STRATEGIES[s]} carries signal: "
                f"{'yes' if signal.loc[s, 'carries_signal'] else 'no'} (signal table)"
            )
            out.append(
                judge(
                    Claim(
                        f"table9.mard.ibo_vs_{s}",
                        cite,
                        "Table 9",
                        "IBO's ranking is closer to the IoU ranking than "
                        f"{occlusion.STRATEGIES[s]}'s",
                        f"MARD {PAPER.number('table9.mard.ibo')} vs "
                        f"{PAPER.number(f'table9.mard.{s}')}",
                        f"MARD({occlusion.STRATEGIES[s]}) - MARD(IBO)",
                        statistic=difference_statistic(
                            agreement_statistic(i + 1, n), agreement_statistic(ibo, n)
                        ),
                    ),
                    rows,
                    note=note,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
            out.append(
                judge(
                    Claim(
                        f"table9.rank_accuracy.ibo_vs_{s}",
                        cite,
                        "Sec. 4 (rank accuracy)",
                        f"IBO places more methods at their ground-truth rank than "
                        f"{occlusion.STRATEGIES[s]}",
                        f"{PAPER.number('rank_accuracy.ibo')} vs best other "
                        f"{PAPER.number('rank_accuracy.best_other')}",
                        f"rank accuracy(IBO) - rank accuracy({occlusion.STRATEGIES[s]})",
                        statistic=difference_statistic(
                            agreement_statistic(ibo, n, "rank_accuracy"),
                            agreement_statistic(i + 1, n, "rank_accuracy"),
                        ),
                    ),
                    rows,
                    note=note,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
    return out


# -- figures --------------------------------------------------------------------------------------
def _to_img(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def stain_figure(st: Study, n: int = 6) -> plt.Figure:
    """Raw and stain-normalised test tiles of the first seed beside the reference tile."""
    from xaistudy.data import stain
    from xaistudy.data.datasets import get_dataset

    p, run = st.params, st.runs[0]
    raw = get_dataset(
        p.dataset,
        "test",
        data_root=p.data_root or None,
        n=p.n_test,
        size=p.tile_size,
        seed=run.seed,
        **p.data_options,
    )
    show = np.arange(min(n, p.n_test))
    tiles = raw.images[show]
    normed = stain.normalize(tiles, stain.fit_normalizer(run.reference))
    names = ["tumour" if raw.labels[i] else "normal" for i in show]
    fig = plots.image_grid(
        [run.reference, *tiles, run.reference, *normed],
        ncols=len(show) + 1,
        titles=[
            "reference",
            *[f"test {i} ({c})" for i, c in zip(show, names, strict=True)],
            "reference",
            *[f"test {i} normalised" for i in show],
        ],
    )
    fig.suptitle("Modified Reinhard stain normalisation: raw (top) and normalised (bottom)", y=1.02)
    return fig


def ddpm_figure(st: Study, n: int = 6) -> plt.Figure:
    """DDPM samples (the gate's first ones), real normal tiles, and the training loss."""
    n = min(n, len(st.gate_images))
    reals = st.runs[0].splits["ddpm"].images[:n]
    fig = plt.figure(figsize=(2.0 * n, 6.2))
    grid = fig.add_gridspec(3, n, height_ratios=[1, 1, 1.1])
    for i in range(n):
        for row, (imgs, name) in enumerate(
            [(st.gate_images, "DDPM sample"), (reals, "real normal tile")]
        ):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(_to_img(imgs[i]))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name} {i + 1}", fontsize=8)
    ax = fig.add_subplot(grid[2, :])
    ax.plot(np.arange(1, len(st.ddpm.losses) + 1), st.ddpm.losses, marker=".")
    ax.set_xlabel("epoch"), ax.set_ylabel("noise-prediction MSE")
    fig.suptitle("DDPM trained on normal tiles only: samples (top), real normal tiles (middle)")
    fig.tight_layout()
    return fig


def heatmap_figure(st: Study) -> plt.Figure:
    """Fig. 4: every method's heatmap of the first seed's first occluded tile."""
    run = st.runs[0]
    i = int(run.sample_ids[0])
    img, mask = _to_img(run.splits["test"].images[i]), run.splits["test"].masks[i]
    panels, titles = [plots.outline(img, mask)], ["tumour tile (mask outlined)"]
    for j, m in enumerate(st.methods):
        heat = (plt.cm.jet(run.maps[0, j])[..., :3] * 255).astype(np.uint8)
        panels.append(plots.outline((0.5 * img + 0.5 * heat).astype(np.uint8), mask))
        titles.append(study.method_label(m))
    fig = plots.image_grid(panels, ncols=len(panels), titles=titles)
    fig.suptitle(f"Fig. 4: CAM heatmaps of test tile {i} (seed {run.seed}), tumour class", y=1.14)
    return fig


def _shown_method(st: Study) -> int:
    return st.methods.index("fullgrad") if "fullgrad" in st.methods else 0


def masks_figure(st: Study) -> plt.Figure:
    """Fig. 5: a heatmap, its k-means levels and the nested masks."""
    run, j, k = st.runs[0], _shown_method(st), st.params.kmeans_k
    img = _to_img(run.splits["test"].images[int(run.sample_ids[0])])
    fig, axes = plt.subplots(1, 3 + st.n_masks, figsize=(2.3 * (3 + st.n_masks), 2.8))
    axes[0].imshow(img)
    axes[1].imshow(run.maps[0, j], cmap="jet", vmin=0, vmax=1)
    axes[1].set_title(f"{study.method_label(st.methods[j])} heatmap")
    axes[2].imshow(run.levels[0, j], cmap=plt.get_cmap("viridis_r", k), vmin=0.5, vmax=k + 0.5)
    axes[2].set_title("k-means levels (1 = top)")
    for i in range(st.n_masks):
        axes[3 + i].imshow(np.where(run.masks[0, j, i][..., None], 0, img))
        axes[3 + i].set_title(f"Mask_{i + 1} (black = occluded)", fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Fig. 5: heatmap, its k-means levels and the nested masks")
    fig.tight_layout()
    return fig


def occlusion_figure(st: Study) -> plt.Figure:
    """Fig. 6: every strategy on the shown method's masks of the first tile (first replicate)."""
    run, j = st.runs[0], _shown_method(st)
    img = _to_img(run.splits["test"].images[int(run.sample_ids[0])])
    panels, labels = [], []
    for s in st.strategies:
        panels += [img, *run.results[s]["examples"][0, j]]
        labels.append(occlusion.STRATEGIES[s])
    fig = plots.image_grid(
        panels,
        ncols=1 + st.n_masks,
        row_labels=labels,
        panel=1.9,
        titles=["original"] + [f"Mask_{i + 1}" for i in range(st.n_masks)],
    )
    fig.suptitle(
        f"Fig. 6: occlusion strategies on the {study.method_label(st.methods[j])} "
        "masks (cumulative)",
        y=1.01,
    )
    return fig


def perceptual_figure(st: Study, table1: pd.DataFrame) -> plt.Figure:
    """Table 1 as curves, one panel per distance."""
    metrics = [m for m in study.METRIC_LABELS if m in set(table1.metric)]
    cols = [f"Mask_{i + 1}" for i in range(st.n_masks)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for _, row in table1[table1.metric == metric].iterrows():
            ref = str(row.strategy).startswith("reference")
            ax.plot(
                range(1, st.n_masks + 1),
                row[cols].astype(float),
                ls="--" if ref else "-",
                marker="" if ref else "o",
                label=occlusion.STRATEGIES.get(row.strategy, row.strategy),
            )
        ax.set_xticks(range(1, st.n_masks + 1), cols)
        ax.set_title(study.METRIC_LABELS[metric], fontsize=9)
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Table 1 as curves: distance from the original / from the training data")
    fig.tight_layout()
    return fig


def deletion_figure(st: Study, auc: pd.DataFrame) -> plt.Figure:
    """Mean deletion curves per strategy and method (all seeds, tiles and replicates)."""
    ncols = min(3, len(st.strategies))
    nrows = int(np.ceil(len(st.strategies) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows), squeeze=False, sharey=True
    )
    rel = st.params.auc_x == "relative"
    for ax, s in zip(axes.flat, st.strategies, strict=False):
        for j, m in enumerate(st.methods):
            xs = np.concatenate(
                [faithfulness.occluded_fractions(r.masks[:, j], rel) for r in st.runs]
            )
            ys = np.concatenate([r.results[s]["prob"][:, :, j].mean(1) for r in st.runs])
            mean_auc = auc[(auc.strategy == s) & (auc.method == m)].auc.mean()
            ax.plot(
                xs.mean(0),
                ys.mean(0),
                marker="o",
                ms=3,
                label=f"{study.method_label(m)} (AUC {mean_auc:.2f})",
            )
        ax.set_title(occlusion.STRATEGIES[s])
        ax.set_xlabel("occluded share p" + (" (of the last mask)" if rel else ""))
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(st.strategies) :]:
        ax.axis("off")
    fig.suptitle("Deletion curves: mean P(tumour) as the masks are occluded")
    fig.tight_layout()
    return fig


def rank_figure(grid: pd.DataFrame) -> plt.Figure:
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 2, 0.45 * len(grid) + 1.5))
    sns.heatmap(
        grid.set_index("method"),
        annot=True,
        fmt="d",
        cmap="viridis_r",
        cbar_kws={"label": "rank"},
        ax=ax,
    )
    ax.set_title("Method ranks: IoU (ground truth) and deletion AUC per strategy (1 = best)")
    return fig


def agreement_figure(mard: pd.DataFrame) -> plt.Figure:
    """Table 9 with intervals: point estimate, bootstrap mean and 95 % interval per strategy."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    y = np.arange(len(mard))
    for ax, key in zip(axes, ["mard", "rank_accuracy", "kendall_tau"], strict=True):
        ax.hlines(y, mard[f"{key}_ci_low"], mard[f"{key}_ci_high"], lw=3, color="#999999")
        ax.plot(mard[f"{key}_boot_mean"], y, "o", color="k", label="bootstrap mean")
        ax.plot(mard[key], y, "x", color="C3", label="point estimate")
        ax.set_yticks(y, [occlusion.STRATEGIES[s] for s in mard.strategy])
        ax.set_xlabel(key.replace("_", " "))
    axes[0].legend(fontsize=7)
    fig.suptitle("Agreement of each strategy's AUC ranking with the IoU ranking (95 % interval)")
    fig.tight_layout()
    return fig


# --- exercises (xaistudy exercises ibo)


def _answer_replicates(o: Outcome) -> str:
    return "With one inpainting-noise replicate per tile, " + o.changed_verdicts("table9") + "."


def _evals(o: Outcome, baseline: bool = False) -> int:
    return int(o.table("repaint_cost", baseline)["unet_evals_per_image_per_level"].iloc[0])


def _answer_resamplings(o: Outcome) -> str:
    return (
        f"RePaint with r = 1 calls the UNet {_evals(o)} times per image and level, against "
        f"{_evals(o, True)} with the default r; " + o.changed_verdicts("table1") + " of Table 1."
    )


def _ranking(o: Outcome, baseline: bool = False) -> str:
    t = o.table("iou_ranking", baseline).sort_values("gt_rank")
    return " > ".join(t["label"])


def _answer_iou_rule(o: Outcome) -> str:
    return (
        f"Ground-truth ranking with k-means regions: {_ranking(o)}; with the threshold rule: "
        f"{_ranking(o, True)}."
    )


EXERCISES = (
    Exercise(
        "one-replicate",
        "Does IBO still win Table 9 when each tile is inpainted once?",
        params={"replicates": 1},
        look_at="table:mard",
        answer=_answer_replicates,
    ),
    Exercise(
        "resamplings",
        "What do RePaint's resamplings buy: cost against closeness to the data?",
        params={"resamplings": 1},
        look_at="table:repaint_cost",
        answer=_answer_resamplings,
    ),
    Exercise(
        "iou-rule",
        "Is the ground-truth ranking of the methods a property of the maps or of the rule "
        "that cuts them into regions?",
        params={"iou_rule": "kmeans"},
        look_at="table:iou_ranking",
        answer=_answer_iou_rule,
    ),
)


CHAPTER = Chapter(
    name="ibo",
    title="IBO: inpainting-based occlusion",
    params=IboParams,
    order=50,
    paper=PAPER,
    exercises=EXERCISES,
    compute=run_study,
)
