"""Chapter ``segmentation_xai``: explaining segmentation models (Hasany et al.'s survey).

Five methods (Seg-Grad-CAM, Seg-XRes-CAM, Seg-Eigen-CAM, Seg-Ablation-CAM, RISE) explain one
class of a segmentation model; Dice Explained, Saliency Ratio and time score them (the survey's
Table 1). The CAMs run at every layer of ``layers`` (the survey's bottleneck and a decoder
layer), RISE on the same tiles; every stochastic stage (data, U-Net, masks) repeats per seed and
every claim is judged over all seeds. The notebook is ``notebooks/segmentation_xai.md``.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from tqdm.auto import tqdm

from xaistudy import plots
from xaistudy.chapters import Chapter, PaperRecord, Setting
from xaistudy.claims import Claim, judge, order_agreement, paired_difference
from xaistudy.evaluate.segmentation_metrics import metric_steps, share_inside
from xaistudy.evaluate.stats import mean_ci
from xaistudy.exercises import Exercise, Outcome
from xaistudy.explain.rise import rise_masks
from xaistudy.explain.segmentation import (
    SEG_METHODS,
    ablated_channels,
    border_band,
    check_ablation_ratio,
    explain_segmentation,
    map_diagnostics,
    rise_curve,
    roi_window,
)
from xaistudy.params import (
    DatasetSeedsParams,
    ParamError,
    WeightsFile,
    dataset_field,
)

log = logging.getLogger(__name__)

CAMS: tuple[str, ...] = ("seg-grad-cam", "seg-xres-cam", "seg-eigen-cam", "seg-ablation-cam")
RISE_LAYER = "input"  # RISE perturbs the input; its rows carry this in the layer column
BORDER_LIMIT = 0.5  # a map is a border map when at least this share of its mass is in the band


class SegmentationXaiParams(DatasetSeedsParams):
    """The ``segmentation_xai`` chapter: explaining a segmentation model (Hasany et al.)."""

    dataset: str = dataset_field(
        "synthetic-he",
        ["synthetic-he", "camelyon16", "pannuke", "coco"],
        "tiles segmented by the U-Net (synthetic-he, camelyon16, pannuke) or COCO-2017 images "
        "(deeplabv3)",
    )

    model: str = Field(
        "unet",
        pattern=r"^(unet|deeplabv3_resnet50|deeplabv3_resnet101)$",
        description="unet (trained here on the tile dataset), deeplabv3_resnet50 or "
        "deeplabv3_resnet101 (COCO weights from a local file only)",
    )
    weights: WeightsFile = Field(
        "",
        description="DeepLabv3 weights file (a state dict of torchvision's architecture with "
        "21 VOC classes and the auxiliary head); empty: torchvision's cache file "
        "$TORCH_HOME/hub/checkpoints/deeplabv3_<backbone>_coco-*.pth",
    )
    target_class: str = Field(
        "neoplastic",
        pattern=r"^(tumour|neoplastic|non-neoplastic|aeroplane|bicycle|bird|boat|bottle|bus|car"
        r"|cat|chair|cow|diningtable|dog|horse|motorbike|person|pottedplant|sheep|sofa|train"
        r"|tvmonitor)$",
        description="class explained: tumour, neoplastic or non-neoplastic (unet); a VOC class "
        "such as cat or person (deeplabv3)",
    )
    tile_size: int = Field(
        64,
        ge=64,
        le=512,
        multiple_of=16,
        description="tile (or COCO image) side in px (64-512, multiple of 16)",
    )
    n_train: int = Field(128, ge=8, le=100000, description="U-Net training tiles")
    n_val: int = Field(16, ge=4, le=20000, description="U-Net validation tiles")
    epochs: int = Field(12, ge=1, le=300, description="U-Net training epochs")
    lr: float = Field(2e-3, gt=0, le=1, description="Adam learning rate")
    batch_size: int = Field(16, ge=2, le=1024, description="training batch size")
    unet_base: int = Field(16, ge=4, le=128, description="U-Net channels at the top level")
    unet_depth: int = Field(3, ge=1, le=5, description="U-Net down/up stages (1-5)")
    layers: list[str] = Field(
        ["bottleneck", "up_conv.0"],
        min_length=1,
        description="layers of the CAMs: bottleneck (end of the encoder, the survey's choice) "
        "and module names such as up_conv.0 (first U-Net decoder block) or backbone.layer3",
    )
    n_images: int = Field(8, ge=1, le=5000, description="test tiles explained, per seed")
    cam_thresholds: list[float] = Field(
        [0.05, 0.1], min_length=1, description="binarisation thresholds of the CAMs, in [0, 1)"
    )
    rise_thresholds: list[float] = Field(
        [0.2, 0.4], min_length=1, description="binarisation thresholds of RISE, in [0, 1)"
    )
    rise_masks: list[int] = Field(
        [100, 250, 500, 1000],
        min_length=1,
        description="RISE mask counts (each >= 1): one pass over the largest count, maps read "
        "off at each count",
    )
    rise_batch: int = Field(10, ge=1, le=10000, description="masked images per forward pass")
    rise_cells: int = Field(8, ge=2, le=64, description="RISE grid cells per side")
    rise_p: float = Field(0.5, gt=0, lt=1, description="RISE probability of keeping a cell")
    rise_reference: int = Field(
        2000, ge=1, le=100000, description="masks of the independent RISE reference map"
    )
    n_convergence: int = Field(
        2, ge=1, le=5000, description="tiles per seed of the RISE convergence curve"
    )
    xres_pool: int = Field(2, ge=1, le=16, description="Seg-XRes-CAM gradient pooling window")
    xres_pool_mode: str = Field(
        "max", pattern=r"^(max|avg)$", description="Seg-XRes-CAM pooling: max or avg"
    )
    ablation_batch: int = Field(
        64, ge=1, le=4096, description="ablated copies per forward pass (Seg-Ablation-CAM)"
    )
    ablation_ratio: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Seg-Ablation-CAM: 1 ablates every channel (the survey); r <= 0.5 only the "
        "2 floor(r K) channels pytorch-grad-cam picks by objectness (ratio_channels_to_ablate)",
    )
    fill: float = Field(
        1.0,
        ge=0,
        le=1,
        description="value of masked-out pixels (metrics and RISE): 1 white glass, 0 black",
    )
    border_px: int = Field(
        6, ge=0, le=128, description="width of the border band of the empty/border-map check"
    )
    timing_repeats: int = Field(
        3, ge=1, le=50, description="repeats of each warm timing (the median is reported)"
    )
    timing_batches: list[int] = Field(
        [1, 10, 100], min_length=1, description="RISE batch sizes compared in the batching table"
    )
    roi_size: int = Field(24, ge=4, le=512, description="side of the region-of-interest window")
    n_roi_images: int = Field(
        8, ge=1, le=5000, description="tiles of the region-of-interest study, per seed"
    )
    n_show: int = Field(3, ge=1, le=8, description="tiles shown in the figures")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "tile_size": 64,
            "n_train": 64,
            "n_val": 8,
            "epochs": 6,
            "lr": 0.005,
            "batch_size": 8,
            "unet_base": 8,
            "unet_depth": 2,
            "layers": ["bottleneck", "up_conv.0"],
            "n_images": 2,
            "rise_masks": [10, 20],
            "rise_reference": 20,
            "n_convergence": 1,
            "ablation_batch": 32,
            "border_px": 4,
            "timing_repeats": 1,
            "timing_batches": [1, 10],
            "roi_size": 24,
            "n_roi_images": 2,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "model": "deeplabv3_resnet101",
            "dataset": "coco",
            "target_class": "cat",
            "layers": ["bottleneck", "classifier.0"],
            "tile_size": 320,
            "n_images": 100,
            "cam_thresholds": [0.05, 0.1],
            "rise_thresholds": [0.2, 0.4],
            "rise_masks": [100, 500, 1000, 2000],
            "rise_batch": 10,
            "rise_reference": 4000,
            "n_convergence": 10,
            "fill": 0.0,
            "border_px": 27,
            "roi_size": 96,
            "n_roi_images": 100,
            "n_show": 4,
        },
    }
    #: the survey's image size, sample count, RISE mask counts and thresholds on the synthetic
    #: tiles, with the U-Net trained here (DeepLabv3's COCO weights need -p weights)
    PROFILES["gpu"] = {
        **PROFILES["paper"],
        "model": "unet",
        "dataset": "synthetic-he",
        "target_class": "neoplastic",
        "layers": ["bottleneck", "up_conv.0"],
        "fill": 1.0,
    }

    def check_inputs(self) -> None:
        """The dataset's files, then DeepLabv3's weights file (one line naming what is missing)."""
        super().check_inputs()
        if self.model.startswith("deeplabv3") and not self.weights:
            from xaistudy.models.segmenters import deeplab_weights_file

            path = deeplab_weights_file(self.model)
            if not path.is_file():
                raise ParamError(
                    f"DeepLabv3 weights not found: {path} (put torchvision's {path.name} there "
                    "or pass -p weights FILE)"
                )
        if self.model == "unet":  # layer names checked on the untrained network, before the run
            from xaistudy.models.segmenters import unet_segmenter

            net = unet_segmenter(self.unet_base, self.unet_depth)
            for layer in self.layers:
                try:
                    net.layer(layer)
                except ValueError as err:
                    raise ParamError(f"bad value for parameter 'layers': {err}") from None

    #: the classes each U-Net dataset annotates (tumour: ``mask``; nuclei: ``nuclei_type``)
    UNET_TARGETS: ClassVar[dict[str, tuple[str, ...]]] = {
        "synthetic-he": ("tumour", "neoplastic", "non-neoplastic"),
        "camelyon16": ("tumour",),
        "pannuke": ("neoplastic", "non-neoplastic"),
    }

    @model_validator(mode="after")
    def _model_fits_dataset(self) -> SegmentationXaiParams:
        coco = self.dataset == "coco"
        if coco != self.model.startswith("deeplabv3"):
            raise ValueError(
                f"model {self.model} does not segment dataset {self.dataset}: use deeplabv3_* "
                "with coco, and unet with synthetic-he, camelyon16 or pannuke"
            )
        tissue = ("tumour", "neoplastic", "non-neoplastic")
        allowed = self.UNET_TARGETS.get(self.dataset)
        if allowed is not None and self.target_class not in allowed:
            raise ValueError(
                f"target_class {self.target_class} is not annotated in dataset {self.dataset}: "
                f"use {' or '.join(allowed)}"
            )
        if coco and self.target_class in tissue:
            raise ValueError(
                f"target_class {self.target_class} is not a COCO class: use a VOC class such "
                "as cat, dog or person"
            )
        if 2 * self.border_px >= self.tile_size:
            raise ValueError(f"border_px must be below tile_size / 2 = {self.tile_size // 2}")
        return self

    @field_validator("ablation_ratio")
    @classmethod
    def _ratio(cls, value: float) -> float:
        return check_ablation_ratio(value)

    @field_validator("cam_thresholds", "rise_thresholds")
    @classmethod
    def _thresholds(cls, values: list[float]) -> list[float]:
        if any(not 0 <= v < 1 for v in values):
            raise ValueError("every threshold must be in [0, 1)")
        return sorted(values)

    @field_validator("rise_masks", "timing_batches")
    @classmethod
    def _counts(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError("every count must be >= 1")
        return sorted(set(values))

    @field_validator("layers")
    @classmethod
    def _layers(cls, values: list[str]) -> list[str]:
        import re

        bad = [v for v in values if not re.fullmatch(r"[A-Za-z_][\w.]*", v)]
        if bad:
            raise ValueError(f"layer {bad[0]!r} is not a module name")
        if len(set(values)) != len(values):
            raise ValueError("layers must be distinct")
        return values


# -- the paper: its settings and Table 1, in one place -------------------------------------------
_TABLE1 = """
seg-grad-cam 0.05 - 0.606 3.47 0.25
seg-grad-cam 0.1 - 0.515 2.403 0.25
seg-xres-cam 0.05 - 0.671 1.788 0.26
seg-xres-cam 0.1 - 0.636 1.25 0.26
seg-eigen-cam 0.05 - 0.421 5.166 7.67
seg-eigen-cam 0.1 - 0.354 4.831 7.67
seg-ablation-cam 0.05 - 0.843 6.675 163.4
seg-ablation-cam 0.1 - 0.793 3.859 163.4
rise 0.2 100 0.927 11.155 16.1
rise 0.4 100 0.853 7.773 16.1
rise 0.2 500 0.948 10.59 80.4
rise 0.4 500 0.766 3.884 80.4
rise 0.2 1000 0.942 9.282 160.8
rise 0.4 1000 0.762 3.154 160.8
rise 0.2 2000 0.913 7.053 321.2
rise 0.4 2000 0.747 2.196 321.2
"""


def _row_key(method: str, threshold: float, n_masks: int | None) -> str:
    return f"t1.{method}.{threshold:g}" + (f".{n_masks}" if n_masks else "")


def _table1_numbers() -> dict[str, str]:
    numbers = {}
    for line in _TABLE1.strip().splitlines():
        method, thr, n, dice, ratio, sec = line.split()
        key = _row_key(method, float(thr), None if n == "-" else int(n))
        numbers.update({f"{key}.dice": dice, f"{key}.ratio": ratio, f"{key}.seconds": sec})
    return numbers


PAPER = PaperRecord(
    key="hasany2024guided",
    citation="Hasany et al. 2024",
    file="003_4fa91e0868423aa2.txt",
    settings=(
        Setting("model", "DeepLabv3-ResNet101 (torchvision, COCO weights)", "model"),
        Setting("data", "a subset of COCO-2017 (size not given)", "dataset"),
        Setting("images", "not given", "n_images"),
        Setting("layer of the CAMs", "the bottleneck", "layers",
                "the book adds a decoder layer"),
        Setting("CAM thresholds", "0.05, 0.1", "cam_thresholds"),
        Setting("RISE thresholds", "0.2, 0.4", "rise_thresholds"),
        Setting("RISE masks", "100, 500, 1000, 2000", "rise_masks"),
        Setting("RISE grid and keep probability", "not given", "rise_p"),
        Setting("RISE normalisation", "not given (Petsiuk: N·p)", "",
                "the book shows both, coverage and N·p"),
        Setting("masked pixels", "not given (black in the figures)", "fill"),
        Setting("seeds", "not given", "seeds"),
    ),
    numbers={
        **_table1_numbers(),
        # DeepLabv3-ResNet101's bottleneck (backbone.layer4) has 2048 channels: the
        # architecture's, not printed in the survey; it gives the survey's cost per forward
        "bottleneck_channels": "2048",
        "fig2.eigen_background": "'Dog', 'Bike' and 'Train'",
        "fig4.dice": "0.81, 0.86, 0.94",
        "fig4.ratio": "0.8, 1.42, 1.45",
    },
)


def paper_table1() -> pd.DataFrame:
    """The survey's Table 1 from :data:`PAPER` (method names as the book's labels)."""
    rows = []
    for line in _TABLE1.strip().splitlines():
        method, thr, n, *_ = line.split()
        n_masks = None if n == "-" else int(n)
        key = _row_key(method, float(thr), n_masks)
        rows.append(
            {
                "method": SEG_METHODS[method].label,
                "threshold": float(thr),
                "n_masks": n_masks,
                "dice_explained": float(PAPER.number(f"{key}.dice")),
                "saliency_ratio": float(PAPER.number(f"{key}.ratio")),
                "seconds": float(PAPER.number(f"{key}.seconds")),
            }
        )
    table = pd.DataFrame(rows)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


# -- one seed: model, tiles, maps, scores ---------------------------------------------------------
@dataclass
class SeedResult:
    """What one seed produced: the model, its tiles and every map with its warm time."""

    seed: int
    model: Any
    tiles: dict[str, Any]
    quality: pd.DataFrame
    maps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    seconds: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    rise_petsiuk: dict[int, np.ndarray] = field(default_factory=dict)
    roi_maps: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    roi_windows: np.ndarray | None = None


@dataclass
class Results:
    """All seeds of a run and the tidy tables the claims are judged from."""

    params: SegmentationXaiParams
    device: str
    description: str
    seeds: list[SeedResult]
    scores: pd.DataFrame
    diagnostics: pd.DataFrame
    convergence: pd.DataFrame
    roi: pd.DataFrame
    batching: pd.DataFrame
    channels: dict[str, int]
    seconds: float = 0.0


def _model_key(params: SegmentationXaiParams, seed: int) -> dict[str, Any]:
    if params.model != "unet":
        return {"model": params.model, "weights": params.weights}
    return {"model": "unet", **_unet_settings(params, seed)}


def _source(params: SegmentationXaiParams) -> dict[str, Any]:
    opts = dict(params.data_options)
    if params.dataset == "coco":  # the COCO loader reads the explained class's images
        opts = {"classes": params.target_class, **opts}
    return {"dataset": params.dataset, "data_root": params.data_root or None, "data_options": opts}


def _unet_settings(params: SegmentationXaiParams, seed: int) -> dict[str, Any]:
    settings = {
        "size": params.tile_size,
        "n_train": params.n_train,
        "n_val": params.n_val,
        "base": params.unet_base,
        "depth": params.unet_depth,
        "epochs": params.epochs,
        "lr": params.lr,
        "batch_size": params.batch_size,
        "seed": seed,
    }
    if params.dataset != "synthetic-he":
        settings.update(_source(params))
    return settings


def _cam_options(params: SegmentationXaiParams, layer: str) -> dict[str, Any]:
    return {
        "layer": layer,
        "pool": params.xres_pool,
        "pool_mode": params.xres_pool_mode,
        "ablation_batch": params.ablation_batch,
        "ablation_ratio": params.ablation_ratio,
    }


def warm_seconds(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


def forward_passes(method: str, channels: int = 0, n_masks: int = 0) -> float:
    """Forward passes of one explanation of one image: Seg-Grad-CAM and Seg-XRes-CAM one
    forward and one backward (counted as 2), Seg-Eigen-CAM one, Seg-Ablation-CAM one per
    ablated channel (``channels``) plus two (pytorch-grad-cam's own and the score's), RISE one
    per mask."""
    return {
        "seg-grad-cam": 2.0,
        "seg-xres-cam": 2.0,
        "seg-eigen-cam": 1.0,
        "seg-ablation-cam": float(channels + 2),
        "rise": float(n_masks),
    }[method]


def layer_channels(model, layer: str, x: torch.Tensor) -> tuple[int, int]:
    """(channels, side) of layer ``layer``'s output for input ``x``."""
    shape = {}
    hook = model.layer(layer).register_forward_hook(lambda m, i, o: shape.update(s=o.shape))
    with torch.no_grad():
        model(x)
    hook.remove()
    return int(shape["s"][1]), int(shape["s"][-1])


def _tiles(params: SegmentationXaiParams, model, seed: int, store, device) -> dict[str, Any]:
    from xaistudy.models.segmenters import explanation_tiles

    n = max(params.n_images, params.n_roi_images, params.n_show)
    pool = 8 if params.dataset == "synthetic-he" else 4
    tiles = explanation_tiles(
        model, params.target_class, n, size=params.tile_size, seed=seed, store=store,
        device=device, pool=pool, **_source(params),
    )
    keep = tiles["predicted"]
    if not keep.any():
        raise ValueError(
            f"seed {seed}: the model predicts no '{params.target_class}' pixel on any test "
            f"{'image' if params.dataset == 'coco' else 'tile'} showing it; nothing to explain "
            "(a model without predictions has no explanation to score)"
        )
    idx = np.flatnonzero(keep)
    return {k: v[torch.as_tensor(idx, device=v.device)] if k == "images" else v[idx]
            for k, v in tiles.items()}


def _cached_maps(store, kind, key, n, compute_one, desc) -> dict[str, np.ndarray]:
    items = store.cached_items(kind, key, range(n), compute_one, desc=desc)
    return {k: np.stack([np.asarray(r[k]) for r in items]) for k in items[0]}


def run_seed(params: SegmentationXaiParams, seed: int, store, device: str) -> SeedResult:
    """Train (or load) the model of ``seed``, pick its tiles, compute every map (cached)."""
    from xaistudy.models.segmenters import load_segmenter, segmentation_quality
    from xaistudy.runtime import seed_everything

    seed_everything(seed)
    unet = _unet_settings(params, seed) if params.model == "unet" else {}
    model, trained = load_segmenter(
        params.model, params.weights or None, store=store, device=device, **unet
    )
    quality = pd.DataFrame(
        segmentation_quality(model, n=params.n_val, size=params.tile_size, seed=seed,
                             store=store, **_source(params))
    )
    quality.insert(0, "seed", seed)
    if trained is not None:
        quality["final_val_iou"] = float(trained.history["val_acc"].iloc[-1])
    tiles = _tiles(params, model, seed, store, device)
    out = SeedResult(seed, model, tiles, quality)
    images, n = tiles["images"], min(params.n_images, len(tiles["images"]))
    base = {
        **_model_key(params, seed),
        "source": _source(params),
        "tiles": tiles["index"].tolist(),
        "size": params.tile_size,
        "target": params.target_class,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    for layer in params.layers:
        for method in CAMS:
            opts = _cam_options(params, layer)
            warm = {"done": False}

            def one(i, method=method, opts=opts, warm=warm) -> dict[str, np.ndarray]:
                def call(j=i):
                    return explain_segmentation(method, model, images[j : j + 1],
                                                params.target_class, **opts)

                if not warm["done"]:  # the first call of a method pays its start-up cost
                    call(0)
                    warm["done"] = True
                start = time.perf_counter()
                sal = call()
                return {"saliency": sal[0], "seconds": np.float64(time.perf_counter() - start)}

            got = _cached_maps(store, "seg-xai-cam", {**base, "method": method, "options": opts},
                               n, one, f"seed {seed} {layer} {method}")
            out.maps[(layer, method)] = got["saliency"]
            out.seconds[(layer, method)] = got["seconds"]
    _rise(params, out, images[:n], base, store)
    _roi(params, out, base, store)
    return out


def _rise(params, out: SeedResult, images, base, store) -> None:
    """RISE on the same tiles as the CAMs: one pass of the largest mask count, masks drawn once
    per seed; coverage and Petsiuk (N·p) maps at every count, and the reference maps."""
    counts = params.rise_masks
    size = tuple(images.shape[-2:])
    masks = rise_masks(max(counts), size, params.rise_cells, params.rise_p, out.seed)
    masks = masks.to(images.device)
    pred = out.model.predict(images, params.target_class).cpu().numpy()
    opts = {"cells": params.rise_cells, "p": params.rise_p, "fill": params.fill,
            "batch": params.rise_batch, "counts": counts, "seed": out.seed}
    warm = {"done": False}

    def one(i: int) -> dict[str, np.ndarray]:
        def call(j=i, m=masks, c=counts):
            return rise_curve(out.model, images[j], params.target_class, pred[j], m, c,
                              params.rise_batch, params.fill, params.rise_p)

        if not warm["done"]:
            call(0, masks[: min(20, len(masks))], [min(20, len(masks))])
            warm["done"] = True
        return call()

    got = _cached_maps(store, "seg-xai-rise", {**base, "options": opts}, len(images), one,
                       f"seed {out.seed} RISE")
    for k, n in enumerate(counts):
        out.maps[(RISE_LAYER, f"rise-{n}")] = got["coverage"][:, k]
        out.seconds[(RISE_LAYER, f"rise-{n}")] = got["seconds"][:, k]
        out.rise_petsiuk[n] = got["p"][:, k]
    n_ref = min(params.n_convergence, len(images))
    ref_masks = rise_masks(params.rise_reference, size, params.rise_cells, params.rise_p,
                           out.seed + 7919).to(images.device)

    def reference(i: int) -> dict[str, np.ndarray]:
        return {"map": rise_curve(out.model, images[i], params.target_class, pred[i], ref_masks,
                                  [params.rise_reference], params.rise_batch, params.fill,
                                  params.rise_p)["coverage"][0]}

    ref = _cached_maps(store, "seg-xai-rise-ref",
                       {**base, "options": {**opts, "reference": params.rise_reference}},
                       n_ref, reference, f"seed {out.seed} RISE reference")
    out.maps[(RISE_LAYER, "reference")] = ref["map"]


def _roi(params, out: SeedResult, base, store) -> None:
    """Explain only M = the prediction inside the ``roi_size`` window where it is densest."""
    images = out.tiles["images"][: params.n_roi_images]
    size = min(params.roi_size, params.tile_size)
    pred = out.model.predict(images, params.target_class).cpu().numpy()
    windows = np.stack([roi_window(p, size) for p in pred])
    out.roi_windows = windows
    for layer in params.layers:
        opts = _cam_options(params, layer)
        for method in ("seg-grad-cam", "seg-xres-cam", "seg-ablation-cam"):

            def compute(method=method, opts=opts) -> dict[str, np.ndarray]:
                return {"map": explain_segmentation(method, out.model, images,
                                                    params.target_class, windows & pred, **opts)}

            key = {**base, "method": method, "options": opts, "roi_size": size,
                   "n": len(images)}
            out.roi_maps[(layer, method)] = store.cached_arrays("seg-xai-roi", key, compute)["map"]


def _label(name: str) -> str:
    return SEG_METHODS["rise" if name.startswith("rise") else name].label


def score_seed(params: SegmentationXaiParams, res: SeedResult) -> pd.DataFrame:
    """One row per (layer, method, threshold, mask count, tile): Dice Explained, Saliency
    Ratio (empty maps scored as selecting every pixel), emptiness and warm seconds."""
    rows = []
    images = res.tiles["images"]
    for (layer, name), sal in res.maps.items():
        if name == "reference":
            continue
        rise = name.startswith("rise")
        thresholds = params.rise_thresholds if rise else params.cam_thresholds
        for thr in thresholds:
            steps = metric_steps(res.model, images[: len(sal)], params.target_class, sal, thr,
                                 params.fill)
            for i in range(len(sal)):
                rows.append({
                    "seed": res.seed,
                    "unit": int(res.tiles["index"][i]),
                    "layer": layer,
                    "method": _label(name),
                    "threshold": thr,
                    "n_masks": int(name.split("-")[1]) if rise else None,
                    "dice_explained": float(steps["dice_explained"][i]),
                    "saliency_ratio": float(steps["saliency_ratio"][i]),
                    "empty": bool(steps["empty"][i]),
                    "seconds": float(res.seconds[(layer, name)][i]),
                })
    return pd.DataFrame(rows)


def diagnose_seed(params: SegmentationXaiParams, res: SeedResult) -> pd.DataFrame:
    """Per (layer, method, tile): empty, border-band share, border map, background map."""
    rows = []
    for (layer, name), sal in res.maps.items():
        if name == "reference" or (name.startswith("rise") and name != _largest(params)):
            continue
        pred = res.model.predict(res.tiles["images"][: len(sal)], params.target_class)
        d = map_diagnostics(sal, pred.cpu().numpy(), params.border_px, BORDER_LIMIT)
        for i in range(len(sal)):
            rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]), "layer": layer,
                         "method": _label(name), **{k: v[i] for k, v in d.items()}})
    return pd.DataFrame(rows)


def _largest(params) -> str:
    return f"rise-{max(params.rise_masks)}"


def convergence_seed(params: SegmentationXaiParams, res: SeedResult) -> pd.DataFrame:
    """Per tile and mask count: correlation of the coverage and the N·p RISE maps with an
    independent reference map of ``rise_reference`` masks."""
    ref = res.maps[(RISE_LAYER, "reference")]
    rows = []
    for n in params.rise_masks:
        for i in range(len(ref)):
            for estimator, sal in (("coverage", res.maps[(RISE_LAYER, f"rise-{n}")][i]),
                                   ("N·p (Petsiuk)", res.rise_petsiuk[n][i])):
                r = np.corrcoef(sal.ravel(), ref[i].ravel())[0, 1]
                rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]),
                             "n_masks": n, "estimator": estimator, "correlation": float(r)})
    return pd.DataFrame(rows)


def roi_seed(params: SegmentationXaiParams, res: SeedResult) -> pd.DataFrame:
    """Per (layer, method, tile): share of the saliency inside the region-of-interest window;
    an empty map locates nothing and scores 0 (``empty`` marks it)."""
    rows = []
    for (layer, method), sal in res.roi_maps.items():
        raw = share_inside(sal, res.roi_windows)
        shares = np.nan_to_num(raw, nan=0.0)
        for i, s in enumerate(shares):
            rows.append({"seed": res.seed, "unit": int(res.tiles["index"][i]), "layer": layer,
                         "method": SEG_METHODS[method].label, "share_inside": float(s),
                         "empty": bool(np.isnan(raw[i]))})
    return pd.DataFrame(rows)


def batching(params: SegmentationXaiParams, res: SeedResult) -> pd.DataFrame:
    """Warm seconds per image of RISE (the smallest mask count) at each batch size and of
    Seg-Ablation-CAM at batch 1 and ``ablation_batch`` (first layer), median of repeats."""
    image = res.tiles["images"][0]
    pred = res.model.predict(image[None], params.target_class)[0].cpu().numpy()
    n = min(params.rise_masks)
    masks = rise_masks(n, tuple(image.shape[-2:]), params.rise_cells, params.rise_p, 0)
    masks = masks.to(image.device)
    rows = []
    for b in params.timing_batches:
        sec = warm_seconds(lambda b=b: rise_curve(res.model, image, params.target_class, pred,
                                                  masks, [n], b, params.fill, params.rise_p),
                           params.timing_repeats)
        rows.append({"method": "RISE", "layer": RISE_LAYER, "batch": b, "forwards": n,
                     "seconds_per_image": sec, "ms_per_forward": 1000 * sec / n})
    layer = params.layers[0]
    channels, _ = layer_channels(res.model, layer, image[None])
    for b in sorted({1, params.ablation_batch}):
        opts = {**_cam_options(params, layer), "ablation_batch": b}
        sec = warm_seconds(lambda o=opts: explain_segmentation(
            "seg-ablation-cam", res.model, image[None], params.target_class, **o),
            params.timing_repeats)
        f = forward_passes("seg-ablation-cam", ablated_channels(channels, params.ablation_ratio))
        rows.append({"method": "Seg-Ablation-CAM", "layer": layer, "batch": b, "forwards": f,
                     "seconds_per_image": sec, "ms_per_forward": 1000 * sec / f})
    return pd.DataFrame(rows)


def describe_run(params: SegmentationXaiParams, device: str) -> str:
    """One line: the data, model, class, layers and profile a run used."""
    if params.dataset == "coco":
        data = (f"COCO-2017 val2017 images showing '{params.target_class}', resized to "
                f"{params.tile_size} px")
        model = (f"`{params.model}` with weights from `{params.weights}`" if params.weights
                 else f"`{params.model}` with torchvision's COCO weights (local file)")
    else:
        data = f"`{params.dataset}` tiles of {params.tile_size} px"
        model = f"a U-Net trained here on {params.n_train} tiles per seed"
    return (f"data: {data}; model: {model}; explained class '{params.target_class}'; layers "
            f"{', '.join(params.layers)}; seeds {', '.join(map(str, params.seeds))}; "
            f"device {device}")


def run(params: SegmentationXaiParams) -> Results:
    """Every seed of the chapter (cached), scored; the batching timings on the first seed."""
    from xaistudy.models.classifiers import resolve_device
    from xaistudy.store import Store

    start = time.perf_counter()
    device = str(resolve_device(params.device))
    store = Store()
    seeds = [run_seed(params, s, store, device) for s in tqdm(params.seeds, desc="seeds")]
    x = seeds[0].tiles["images"][:1]
    channels = {layer: layer_channels(seeds[0].model, layer, x)[0] for layer in params.layers}
    return Results(
        params=params,
        device=device,
        description=describe_run(params, device),
        seeds=seeds,
        scores=pd.concat([score_seed(params, r) for r in seeds], ignore_index=True),
        diagnostics=pd.concat([diagnose_seed(params, r) for r in seeds], ignore_index=True),
        convergence=pd.concat([convergence_seed(params, r) for r in seeds], ignore_index=True),
        roi=pd.concat([roi_seed(params, r) for r in seeds], ignore_index=True),
        batching=batching(params, seeds[0]),
        channels=channels,
        seconds=time.perf_counter() - start,
    )


# -- tables ---------------------------------------------------------------------------------------
def quality_table(res: Results) -> pd.DataFrame:
    """Pixel Dice of each annotated class per seed."""
    return pd.concat([r.quality for r in res.seeds], ignore_index=True)


def table1(res: Results) -> pd.DataFrame:
    """Table 1 per layer: mean and 95 % t-interval of Dice Explained and Saliency Ratio over
    tiles and seeds, empty maps, and the median warm seconds per image."""
    out = []
    keys = ["layer", "method", "threshold", "n_masks"]
    for key, g in res.scores.fillna({"n_masks": -1}).groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        row["n_masks"] = None if row["n_masks"] == -1 else int(row["n_masks"])
        row["tiles"] = len(g)
        for col in ("dice_explained", "saliency_ratio"):
            row[col], row[f"{col}_low"], row[f"{col}_high"] = mean_ci(g[col])
        row["empty_maps"] = int(g["empty"].sum())
        row["median_seconds"] = float(g["seconds"].median())
        out.append(row)
    table = pd.DataFrame(out)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


def diagnostics_table(res: Results) -> pd.DataFrame:
    """Per layer and method: empty maps, border maps (≥ 50 % of the mass in the border band),
    mean border share beside the band's area share, background maps."""
    d = res.diagnostics
    size = res.params.tile_size
    band = float(border_band((size, size), res.params.border_px).mean())
    table = d.groupby(["layer", "method"], sort=False).agg(
        maps=("empty", "size"),
        empty_maps=("empty", "sum"),
        border_maps=("border_map", "sum"),
        mean_border_share=("border_share", "mean"),
        background_maps=("background_map", "sum"),
        mean_inside_prediction=("inside_share", "mean"),
        prediction_area_share=("prediction_share", "mean"),
    ).reset_index()
    table.insert(5, "border_band_area_share", band)
    return table


def diagnostics_summary(res: Results) -> str:
    """Computed sentences on the map checks: empty and border maps per layer, and how often
    Seg-Eigen-CAM's (sign-arbitrary) first component marks the background."""
    t = diagnostics_table(res)
    parts = []
    for r in t.itertuples():
        if r.empty_maps or r.border_maps:
            parts.append(f"{r.method} at `{r.layer}`: {r.empty_maps} empty and {r.border_maps} "
                         f"border maps of {r.maps}")
    text = ("Flagged maps: " + "; ".join(parts) + "." if parts
            else "No method gave an empty or border map.")
    eigen = t[t["method"] == "Seg-Eigen-CAM"]
    if len(eigen):
        counts = ", ".join(f"{r.background_maps} of {r.maps} at `{r.layer}`"
                           for r in eigen.itertuples())
        text += (f" Seg-Eigen-CAM marks the background on {counts}; the survey reports maps "
                 f"of the background for {PAPER.number('fig2.eigen_background')} in its Fig. 2. "
                 "A first principal component has no sign of its own (pytorch-grad-cam fixes "
                 "none), so such a map may be the complement of an object map rather than a "
                 "statement about the model (the book's hypothesis).")
    return text


def timing_table(res: Results) -> pd.DataFrame:
    """Median warm seconds per image and the cost per forward pass, beside the survey's."""
    paper = paper_table1()
    rows = []
    for (layer, method), g in res.scores.groupby(["layer", "method"], sort=False):
        names = {SEG_METHODS[m].label: m for m in SEG_METHODS}
        name = names[method]
        for n, h in g.groupby(g["n_masks"].fillna(0).astype(int)):
            sec = float(h.drop_duplicates(["seed", "unit"])["seconds"].median())
            ablated = ablated_channels(res.channels.get(layer, 0), res.params.ablation_ratio)
            f = forward_passes(name, ablated, n)
            p = paper[(paper["method"] == method) & (paper["n_masks"].fillna(0) == n)]
            p_sec = float(p["seconds"].iloc[0]) if len(p) else np.nan
            p_f = forward_passes(name, int(PAPER.number("bottleneck_channels")), n)
            rows.append({"layer": layer, "method": method, "n_masks": n or None,
                         "median_seconds": sec, "forwards": f,
                         "ms_per_forward": 1000 * sec / f, "survey_seconds": p_sec,
                         "survey_forwards": p_f,
                         "survey_ms_per_forward": 1000 * p_sec / p_f if len(p) else np.nan})
    table = pd.DataFrame(rows)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


def paper_vs_book(res: Results) -> pd.DataFrame:
    """The survey's Table 1 rows beside this run's means at each layer (RISE: input)."""
    paper = paper_table1().rename(columns={
        "dice_explained": "dice_explained_paper", "saliency_ratio": "saliency_ratio_paper",
        "seconds": "seconds_paper"})
    book = table1(res)[["layer", "method", "threshold", "n_masks", "dice_explained",
                        "saliency_ratio", "median_seconds"]].rename(columns={
        "dice_explained": "dice_explained_book", "saliency_ratio": "saliency_ratio_book",
        "median_seconds": "seconds_book"})
    side = paper.merge(book, on=["method", "threshold", "n_masks"], how="outer")
    order = {SEG_METHODS[m].label: i for i, m in enumerate(SEG_METHODS)}
    side = side.sort_values(
        ["method", "threshold", "n_masks", "layer"], key=lambda c: c.map(order) if c.name ==
        "method" else c
    ).reset_index(drop=True)
    return side[["method", "threshold", "n_masks", "layer", "dice_explained_paper",
                 "dice_explained_book", "saliency_ratio_paper", "saliency_ratio_book",
                 "seconds_paper", "seconds_book"]]


def convergence_table(res: Results) -> pd.DataFrame:
    """Mean correlation with the reference map per mask count and estimator."""
    return (res.convergence.groupby(["n_masks", "estimator"])["correlation"]
            .agg(["mean", "min", "count"]).reset_index())


def roi_table(res: Results) -> pd.DataFrame:
    """Mean share of the saliency inside the region-of-interest window per layer and method."""
    size = min(res.params.roi_size, res.params.tile_size)
    t = res.roi.groupby(["layer", "method"], sort=False).agg(
        share_inside=("share_inside", "mean"), tiles=("share_inside", "size"),
        empty_maps=("empty", "sum"),
    )
    t = t.reset_index()
    t["window_area_share"] = size**2 / res.params.tile_size**2
    return t


def timing_note(res: Results) -> str:
    """Where the timings come from."""
    return (f"Warm timings on device {res.device} with {torch.get_num_threads()} thread(s): the "
            "first explanation of each method is untimed, Table 1 reports the median over "
            f"tiles and seeds, the batching table the median of {res.params.timing_repeats} "
            "repeats; other programs may share the processor.")


# -- figures --------------------------------------------------------------------------------------
def _rgb(image: torch.Tensor) -> np.ndarray:
    return (image.detach().cpu().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _heat(ax, rgb, sal, title=None):
    ax.imshow(rgb)
    art = ax.imshow(sal, cmap="jet", vmin=0, vmax=1, alpha=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return art


def methods_figure(res: Results) -> plt.Figure:
    """The survey's Fig. 2: the first seed's maps of every method at every layer."""
    r, p = res.seeds[0], res.params
    shown = min(p.n_show, len(r.maps[(RISE_LAYER, _largest(p))]))
    cols = [(layer, m) for layer in p.layers for m in CAMS] + [(RISE_LAYER, _largest(p))]
    fig, axes = plt.subplots(shown, 1 + len(cols), figsize=(1.9 * (1 + len(cols)), 2.1 * shown),
                             squeeze=False)
    for i in range(shown):
        rgb = _rgb(r.tiles["images"][i])
        pred = r.model.predict(r.tiles["images"][i : i + 1], p.target_class)[0].cpu().numpy()
        axes[i, 0].imshow(plots.outline(rgb, pred, width=1))
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_title(f"tile {r.tiles['index'][i]}: M", fontsize=8)
        for j, (layer, m) in enumerate(cols):
            title = f"{_label(m)}\n{layer}" if i == 0 else None
            art = _heat(axes[i, j + 1], rgb, r.maps[(layer, m)][i], title)
    fig.colorbar(art, ax=axes, shrink=0.7, label="saliency (scaled to [0, 1])")
    fig.suptitle(f"Saliency of '{p.target_class}' over its predicted map (yellow), seed "
                 f"{r.seed}", y=1.02)
    return fig


def rise_figure(res: Results) -> plt.Figure:
    """The survey's Fig. 3: RISE with more and more masks (coverage estimator, first seed)."""
    r, p = res.seeds[0], res.params
    shown = min(p.n_show, len(r.maps[(RISE_LAYER, _largest(p))]))
    fig, axes = plt.subplots(shown, len(p.rise_masks), figsize=(2.2 * len(p.rise_masks),
                                                                 2.2 * shown), squeeze=False)
    for i in range(shown):
        rgb = _rgb(r.tiles["images"][i])
        for j, n in enumerate(p.rise_masks):
            _heat(axes[i, j], rgb, r.maps[(RISE_LAYER, f"rise-{n}")][i],
                  f"{n} masks" if i == 0 else None)
    fig.suptitle(f"RISE for '{p.target_class}' with more and more masks", y=1.02)
    return fig


def convergence_figure(res: Results) -> plt.Figure:
    """Correlation with the independent reference map against the mask count, per estimator."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for est, g in res.convergence.groupby("estimator"):
        m = g.groupby("n_masks")["correlation"].agg(["mean", "min", "max"])
        ax.plot(m.index, m["mean"], "o-", label=est)
        ax.fill_between(m.index, m["min"], m["max"], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("RISE masks")
    ax.set_ylabel(f"correlation with {res.params.rise_reference}-mask reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_figure(res: Results, layer: str | None = None) -> plt.Figure:
    """The survey's Fig. 4: the metric's steps for Seg-XRes-CAM on the first tile."""
    r, p = res.seeds[0], res.params
    layer = layer or p.layers[-1]
    thr = p.cam_thresholds[-1]
    sal = r.maps[(layer, "seg-xres-cam")][:1]
    st = metric_steps(r.model, r.tiles["images"][:1], p.target_class, sal, thr, p.fill)
    panels = [("(a) tile", _rgb(r.tiles["images"][0]), None),
              ("(b) prediction", st["prediction"][0], "gray"),
              (f"(c) Seg-XRes-CAM, {layer}", sal[0], "jet"),
              (f"(d) binarised (> {thr:g})", st["binary"][0], "gray"),
              ("(e) masked tile", _rgb(torch.from_numpy(st["masked"][0])), None),
              ("(f) prediction on (e)", st["masked_prediction"][0], "gray")]
    fig, axes = plt.subplots(1, 6, figsize=(14, 2.7))
    for ax, (title, img, cmap) in zip(axes, panels, strict=True):
        ax.imshow(img, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Dice Explained = Dice(b, f) = {st['dice_explained'][0]:.3f};  Saliency "
                 f"Ratio = |d| / |b| = {st['saliency_ratio'][0]:.2f}", y=1.05)
    return fig


# -- claims ---------------------------------------------------------------------------------------
def _per_unit(res: Results, layer: str, column: str, sign: float = 1.0) -> pd.DataFrame:
    """Rows (seed, unit, method, value) at each method's lowest threshold; RISE at the
    largest mask count (its rows join every layer)."""
    p = res.params
    s = res.scores
    cams = s[(s["layer"] == layer) & (s["threshold"] == p.cam_thresholds[0])]
    rise = s[(s["layer"] == RISE_LAYER) & (s["threshold"] == p.rise_thresholds[0])
             & (s["n_masks"] == max(p.rise_masks))]
    rows = pd.concat([cams, rise], ignore_index=True)
    return rows.assign(value=sign * rows[column])[["seed", "unit", "method", "value"]]


def _paper_order(column: str, n_masks: int, best: str) -> list[str]:
    paper = paper_table1()
    low = paper.groupby("method")["threshold"].transform("min")
    rows = paper[(paper["threshold"] == low)
                 & (paper["n_masks"].isna() | (paper["n_masks"] == n_masks))]
    return list(rows.sort_values(column, ascending=best == "min")["method"])


def _paper_rise_count(params) -> int:
    counts = {100, 500, 1000, 2000}
    return max(params.rise_masks) if max(params.rise_masks) in counts else 2000


def _pair(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    return paired_difference(rows, a, b, by="method", value="value")


def _num(method: str, thr: float, n: int | None, what: str) -> str:
    """The survey's Table 1 value; at a threshold the survey did not use, its value at the
    nearest threshold it did use, saying so."""
    key = f"{_row_key(method, thr, n)}.{what}"
    if key in PAPER.numbers:
        return PAPER.numbers[key]
    near = min((0.2, 0.4) if method == "rise" else (0.05, 0.1), key=lambda t: abs(t - thr))
    value = PAPER.number(f"{_row_key(method, near, n)}.{what}")
    return f"{value} (the survey's threshold {near:g})"


def claims(res: Results, profile: str) -> list[dict[str, object]]:
    """Table 1's orderings at every layer, the pairwise findings of the survey's text, the
    region-of-interest argument and the RISE mask-count trend, judged over all seeds."""
    p = res.params
    cite = PAPER.citation
    n_p = _paper_rise_count(p)
    data_name = describe_run(p, res.device).split(";")[0].removeprefix("data: ")
    tests: list[tuple[Claim, pd.DataFrame, int]] = []
    lo_cam, lo_rise = p.cam_thresholds[0], p.rise_thresholds[0]
    rise_note = f"RISE at {max(p.rise_masks)} masks"
    for layer in p.layers:
        orders = {
            "dice": _paper_order("dice_explained", n_p, "max"),
            "ratio": _paper_order("saliency_ratio", n_p, "min"),
            "time": _paper_order("seconds", n_p, "min"),
        }
        data = {
            "dice": _per_unit(res, layer, "dice_explained"),
            "ratio": _per_unit(res, layer, "saliency_ratio", -1.0),
            "time": _per_unit(res, layer, "seconds", -1.0),
        }
        words = {"dice": ("Dice Explained", "higher"), "ratio": ("Saliency Ratio", "lower"),
                 "time": ("time per image", "lower")}
        for what, order in orders.items():
            label, better = words[what]
            tests.append((Claim(
                f"{what}_order.{layer}", cite, "Table 1",
                f"Methods ordered by {label} ({better} is better) as in Table 1, layer {layer}",
                " > ".join(order) + f" (thresholds {lo_cam:g}/{lo_rise:g}, RISE {n_p} masks)",
                f"Kendall tau between the survey's order and the order of the mean {label} per "
                f"method ({rise_note})",
                statistic=order_agreement(order, by="method", value="value"),
            ), data[what], 400))
        dice, ratio = data["dice"], data["ratio"]
        tests += [
            (Claim(f"dice.ablation_vs_xres.{layer}", cite, "Table 1 and text",
                   f"Seg-Ablation-CAM leads the feature-space methods in Dice Explained "
                   f"(runner-up Seg-XRes-CAM), layer {layer}",
                   f"{_num('seg-ablation-cam', lo_cam, None, 'dice')} vs "
                   f"{_num('seg-xres-cam', lo_cam, None, 'dice')}",
                   "Dice Explained of Seg-Ablation-CAM − Seg-XRes-CAM per tile"),
             _pair(dice, "Seg-Ablation-CAM", "Seg-XRes-CAM"), 2000),
            (Claim(f"dice.rise_vs_ablation.{layer}", cite, "Table 1 and text",
                   f"RISE explains better than the best feature-space method, layer {layer}",
                   f"{_num('rise', lo_rise, n_p, 'dice')} ({n_p} masks) vs "
                   f"{_num('seg-ablation-cam', lo_cam, None, 'dice')}",
                   f"Dice Explained of RISE − Seg-Ablation-CAM per tile ({rise_note})"),
             _pair(dice, "RISE", "Seg-Ablation-CAM"), 2000),
            (Claim(f"ratio.xres_vs_grad.{layer}", cite, "Table 1",
                   f"Seg-XRes-CAM selects fewer pixels than Seg-Grad-CAM, layer {layer}",
                   f"{_num('seg-xres-cam', lo_cam, None, 'ratio')} vs "
                   f"{_num('seg-grad-cam', lo_cam, None, 'ratio')}",
                   "Saliency Ratio of Seg-XRes-CAM − Seg-Grad-CAM per tile (empty maps: all "
                   "pixels)", expect="<"),
             _pair(ratio.assign(value=-ratio["value"]), "Seg-XRes-CAM", "Seg-Grad-CAM"), 2000),
        ]
        roi = res.roi[res.roi["layer"] == layer].rename(columns={"share_inside": "value"})
        tests += [
            (Claim(f"roi.xres_vs_grad.{layer}", cite, "Sec. 3 (GAP argument)",
                   "Explaining a region M, Seg-XRes-CAM keeps the saliency nearer M than "
                   f"Seg-Grad-CAM, whose GAP spreads it, layer {layer}", "argued, no number",
                   "share of saliency inside M's window: Seg-XRes-CAM − Seg-Grad-CAM"),
             _pair(roi, "Seg-XRes-CAM", "Seg-Grad-CAM"), 2000),
            (Claim(f"roi.xres_vs_ablation.{layer}", cite, "footnote 5",
                   f"Seg-Ablation-CAM spreads a region's saliency too, layer {layer}",
                   "argued, no number",
                   "share of saliency inside M's window: Seg-XRes-CAM − Seg-Ablation-CAM"),
             _pair(roi, "Seg-XRes-CAM", "Seg-Ablation-CAM"), 2000),
        ]
    s = res.scores[res.scores["layer"] == RISE_LAYER]
    hi, n_lo, n_hi = p.rise_thresholds[-1], min(p.rise_masks), max(p.rise_masks)
    trend = s[s["threshold"] == hi]
    trend = trend.assign(method=trend["n_masks"].astype(int).astype(str))
    for col, what, w in (("saliency_ratio", "ratio", "Saliency Ratio"),
                         ("dice_explained", "dice", "Dice Explained")):
        t = trend.assign(value=trend[col])
        paper_n = [n for n in (100, 500, 1000, 2000)]
        tests.append((Claim(
            f"rise.{what}_falls_with_masks", cite, "Table 1 and Fig. 3",
            f"With more RISE masks the {w} falls (maps concentrate on the object)",
            f"{_num('rise', hi, paper_n[0], what)} ({paper_n[0]} masks) → "
            f"{_num('rise', hi, paper_n[-1], what)} ({paper_n[-1]}) at threshold {hi:g}",
            f"{w} at {n_hi} − at {n_lo} masks per tile (threshold {hi:g})", expect="<"),
            _pair(t, str(n_hi), str(n_lo)), 2000))
    conv = res.convergence.rename(columns={"correlation": "value"})
    at_lo = conv[conv["n_masks"] == n_lo].rename(columns={"estimator": "method"})
    tests.append((Claim(
        "rise.coverage_beats_petsiuk", "this book", "RISE estimator",
        "Dividing by each pixel's mask coverage estimates the RISE map better than dividing "
        "by N·p (Petsiuk et al.)", "— (the survey does not say which it used)",
        f"correlation with a {p.rise_reference}-mask reference: coverage − N·p at {n_lo} masks"),
        _pair(at_lo, "coverage", "N·p (Petsiuk)"), 2000))
    cov = conv[conv["estimator"] == "coverage"].assign(method=conv["n_masks"].astype(str))
    tests.append((Claim(
        "rise.maps_converge", cite, "Fig. 3",
        "The number of masks matters: maps become more refined from 100 to 2000 masks",
        "qualitative (Fig. 3)",
        f"correlation with the reference: {n_hi} − {n_lo} masks (coverage estimator)"),
        _pair(cov, str(n_hi), str(n_lo)), 2000))
    return [judge(c, d, n_boot=nb, data_name=data_name, profile=profile,
                  note="" if len(d) else "no tile measured")
            for c, d, nb in tests]



# --- exercises (xaistudy exercises segmentation_xai)


def _answer_rise(o: Outcome) -> str:
    t = o.table("rise_convergence")
    estimator = "coverage" if (t["estimator"] == "coverage").any() else t["estimator"].iloc[0]
    t = t[t["estimator"] == estimator]
    curve = ", ".join(f"{int(n)}: {m:.2f}" for n, m in zip(t["n_masks"], t["mean"], strict=True))
    return (
        f"Pearson correlation with the reference RISE map by number of masks "
        f"({estimator} estimator): {curve}."
    )


def _best(o: Outcome, baseline: bool = False) -> str:
    """The CAM (RISE left out: it has no layer and its own thresholds) with the highest mean
    Dice Explained."""
    t = o.table("table1", baseline).dropna(subset=["dice_explained"])
    t = t[t["layer"] != RISE_LAYER]
    r = t.sort_values("dice_explained", ascending=False).iloc[0]
    return f"{r['method']} at {r['layer']} ({r['dice_explained']:.2f})"


def _answer_thresholds(o: Outcome) -> str:
    return (
        f"Highest Dice Explained of a CAM with thresholds 0.3/0.5: {_best(o)}; with the survey's "
        f"0.05/0.1: {_best(o, True)}; " + o.changed_verdicts() + "."
    )


def _answer_layer(o: Outcome) -> str:
    return (
        f"Explaining the first decoder block only, the CAM with the highest Dice Explained is "
        f"{_best(o)}; "
        f"with both layers: {_best(o, True)}."
    )


EXERCISES = (
    Exercise(
        "rise-masks",
        "How many RISE masks until the map stops changing?",
        params={"rise_masks": [5, 10, 40, 80]},
        look_at="table:rise_convergence",
        answer=_answer_rise,
    ),
    Exercise(
        "thresholds",
        "Does the winner of Table 1 depend on the binarisation threshold?",
        params={"cam_thresholds": [0.3, 0.5]},
        look_at="table:table1",
        answer=_answer_thresholds,
    ),
    Exercise(
        "decoder-layer",
        "Where in a U-Net should a CAM look: the bottleneck or the decoder?",
        params={"layers": ["up_conv.0"]},
        look_at="table:table1",
        answer=_answer_layer,
    ),
)


CHAPTER = Chapter(
    name="segmentation_xai",
    title="Explaining segmentation models",
    params=SegmentationXaiParams,
    order=60,
    paper=PAPER,
    exercises=EXERCISES,
    compute=run,
)
