"""Chapter ``xrelevancecam``: XRelevanceCAM, relevance-weighted CAMs layer by layer (You et al.).

Per seed: pCLE data split by patient (synthetic frames score on a generated cohort of unseen
test patients) -> for each backbone start (from scratch; pretrained, with ImageNet weights when
given, else a stand-in pretraining on a synthetic task) the selective-kernel backbone, the
ResNet and the selective-kernel backbone with stage dropout are trained -> CAMs of every method
at every stage of the correctly classified meningioma frames -> per-frame IoU (Tables 1-3),
axioms per patient (Table 4), cascading randomisation (Fig. 5) and the diagnostic of Eq. 1
(channel activation-total spread, RelevanceCAM-vs-XRelevanceCAM map correlation). Every claim
is judged with a bootstrap over seeds and patients. The notebook is
``notebooks/xrelevancecam.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from xaistudy.chapters import Chapter, PaperRecord, Setting
from xaistudy.claims import Claim, judge
from xaistudy.data.synthetic import PCLE_FOV_FRAC
from xaistudy.evaluate import axioms, sanity, wsss
from xaistudy.exercises import Exercise, Outcome
from xaistudy.explain import relevance
from xaistudy.models import pcle, stages
from xaistudy.models.train import make_loader, predict
from xaistudy.params import (
    PROFILES,
    DatasetSeedsParams,
    ParamError,
    Pretrained,
    choices_field,
    dataset_field,
)
from xaistudy.store import Store

LAYERS = relevance.STAGES
METHODS = relevance.LAYER_METHODS
LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "relevancecam": "RelevanceCAM",
    "xrelevancecam": "XRelevanceCAM",
}
#: what is scored: the four stages and the layer aggregations of Table 2
VIEWS = (*LAYERS, "4+3", "4+3+2", "4+3+2+1")
#: the models of one start: key -> (role, dropout on at evaluation)
MODELS = {"sk": "selective-kernel", "resnet": "ResNet", "sk_dropout": "selective-kernel + dropout"}


class XRelevanceCamParams(DatasetSeedsParams):
    """The ``xrelevancecam`` chapter: relevance-weighted CAMs layer by layer (You et al.)."""

    dataset: str = dataset_field(
        "synthetic-pcle",
        ["synthetic-pcle", "pcle-folder"],
        "pCLE frames by patient: synthetic-pcle or pcle-folder (frames/<class>/<patient>/)",
    )
    backbone: str = Field(
        "skresnet18",
        pattern=r"^(skresnet18|skresnet34|skresnext50_32x4d)$",
        description="selective-kernel backbone of Tables 1, 3, 4: skresnet18, skresnet34 or "
        "skresnext50_32x4d (the paper's)",
    )
    resnet: str = Field(
        "resnet18",
        pattern=r"^(resnet18|resnet50)$",
        description="ResNet of Table 2 and the sanity check: resnet18 or resnet50 (the paper's)",
    )
    pretrained: Pretrained = Field(
        False,
        description="ImageNet weights for the pretrained start: true (the standard local cache "
        "file; the run refuses when it is missing), a weights file path, or false (then the "
        "stand-in pretraining is the pretrained start); never downloaded",
    )
    standin: str = Field(
        "synthetic-he",
        pattern=r"^(synthetic-he|synthetic-grading|none)$",
        description="stand-in pretraining task when no ImageNet weights are given: "
        "synthetic-he, synthetic-grading, or none (only the from-scratch start)",
    )
    standin_tiles: int = Field(400, ge=8, le=100000, description="stand-in training tiles")
    standin_epochs: int = Field(3, ge=1, le=200, description="stand-in pretraining epochs")
    n_patients: int = Field(
        20,
        ge=0,
        le=1000,
        description="pCLE patients, split 80/10/10 by patient (synthetic-pcle: generated, >= "
        "10; pcle-folder: at most this many of the folder's, 0 = all)",
    )
    frames_per_patient: int = Field(
        8,
        ge=0,
        le=2000,
        description="frames per patient (synthetic-pcle: generated, >= 1; pcle-folder: at "
        "most this many per patient after frame_step, evenly spaced, 0 = all)",
    )
    test_patients: int = Field(
        8,
        ge=1,
        le=1000,
        description="synthetic-pcle: meningioma (and as many glioblastoma) test patients "
        "generated per seed, unseen in training; pcle-folder: its test split is used instead",
    )
    test_frames: int = Field(4, ge=1, le=1000, description="frames per generated test patient")
    val_patients: int = Field(
        1,
        ge=0,
        le=1000,
        description="synthetic-pcle: validation on this many generated meningioma (and as many "
        "glioblastoma) patients unseen in training, a split stratified by class; 0 = the "
        "patient split's own validation patients (pcle-folder: always its val split)",
    )
    standardise: bool = Field(
        True,
        description="each frame's channels to mean 0, std 1 (removes a patient's gain)",
    )
    frame_size: int = Field(
        96,
        ge=64,
        le=512,
        description="frame side in px (generated, or the folder's frames resized to it)",
    )
    centre_crop: bool = Field(
        True, description="crop to the largest square inside the circular field of view"
    )
    epochs: int = Field(10, ge=1, le=500, description="maximum training epochs")
    patience: int = Field(4, ge=1, le=100, description="early stopping: epochs w/o improvement")
    lr: float = Field(1e-3, gt=0, le=1, description="AdaMax learning rate")
    batch_size: int = Field(16, ge=2, le=512, description="training and CAM batch size")
    clrp_rule: str = Field(
        "unit",
        pattern=r"^(unit|zero_sum|logit)$",
        description="initial CLRP relevance: unit (1, -1/N; the reference code), zero_sum "
        "(L_t, -L_t/(N-1)) or logit (L_t, -L_t/N, the paper's Sect. 3.2)",
    )
    binarise: str = choices_field(
        wsss.BINARISE_RULES,
        "mean_std",
        "binarise",
        "map binarisation for the IoU: mean_std (mean + std), mean, otsu or fixed",
        many=False,
        noun="rule",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="threshold of binarise=fixed")
    n_eval: int = Field(
        64, ge=1, le=100000, description="most correctly classified meningioma frames scored"
    )
    dropout: float = Field(0.1, ge=0.01, lt=1, description="dropout after each stage (Table 3)")
    dropout_passes: int = Field(5, ge=1, le=100, description="passes averaged with dropout on")
    axiom_images: int = Field(8, ge=1, le=10000, description="frames of the axiom table, per seed")
    axiom_channels: int = Field(
        32, ge=0, le=4096, description="channels ablated per layer for sensitivity (0: all)"
    )
    sanity_layer: str = Field(
        "layer3",
        pattern=r"^layer[1-4]$",
        description="layer whose XRelevanceCAM the sanity check follows (layer1..layer4)",
    )
    sanity_images: int = Field(8, ge=1, le=1000, description="frames of the sanity check")
    sanity_spearman: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="sanity pass rule: a frame passes when its map with every stage randomised "
        "has Spearman similarity below this to the trained model's map",
    )
    n_show: int = Field(2, ge=1, le=8, description="frames shown in the figures")

    @model_validator(mode="after")
    def _counts_fit_dataset(self) -> XRelevanceCamParams:
        too_few = self.n_patients < 10 or self.frames_per_patient < 1
        if self.dataset == "synthetic-pcle" and too_few:
            raise ValueError(
                f"synthetic-pcle generates its frames: n_patients must be >= 10 (got "
                f"{self.n_patients}) and frames_per_patient >= 1 (got {self.frames_per_patient}); "
                "0 (all) is for pcle-folder"
            )
        return self

    def check_inputs(self) -> None:
        """Also refuse ``pretrained=true`` when a backbone's standard weights file is missing."""
        super().check_inputs()
        if self.pretrained is True:
            from xaistudy.models.classifiers import WeightsNotFoundError, find_pretrained_weights

            for name in (self.backbone, self.resnet):
                try:
                    find_pretrained_weights(name)
                except WeightsNotFoundError as err:
                    raise ParamError(str(err).replace("\n", " ")) from None

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "n_patients": 10,
            "frames_per_patient": 2,
            "test_patients": 2,
            "test_frames": 1,
            "frame_size": 64,
            "epochs": 1,
            "standin_tiles": 8,
            "standin_epochs": 1,
            "dropout_passes": 2,
            "axiom_images": 2,
            "axiom_channels": 2,
            "sanity_images": 1,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "dataset": "pcle-folder",
            "backbone": "skresnext50_32x4d",
            "resnet": "resnet50",
            "pretrained": True,
            "n_patients": 0,
            "frames_per_patient": 0,
            "frame_size": 339,
            "epochs": 100,
            "patience": 10,
            "batch_size": 32,
            "n_eval": 100000,
            "dropout_passes": 10,
            "axiom_images": 200,
            "axiom_channels": 0,
            "sanity_images": 50,
        },
    }
    #: the paper's backbones, frame size and schedules on synthetic frames; the pretrained start
    #: is the stand-in pretraining unless ImageNet files are given with -p pretrained
    PROFILES["gpu"] = {
        **PROFILES["paper"],
        "dataset": "synthetic-pcle",
        "pretrained": False,
        "n_patients": 40,
        "frames_per_patient": 40,
    }


# -- the paper ---------------------------------------------------------------------------------
_T1 = {  # Table 1, SK-ResNeXt, mIoU %: layer1..layer4, average
    "gradcam": ("16.38", "18.46", "33.14", "31.82", "24.95"),
    "relevancecam": ("18.0", "30.37", "33.42", "31.0", "28.19"),
    "xrelevancecam": ("28.07", "31.83", "35.11", "32.31", "31.83"),
}
_T2 = {  # Table 2, mIoU %: 4, 4+3, 4+3+2, 4+3+2+1
    ("sk", "gradcam"): ("31.82", "33.86", "32.73", "31.74"),
    ("sk", "relevancecam"): ("31.0", "33.13", "35.79", "35.93"),
    ("sk", "xrelevancecam"): ("32.31", "34.45", "37.04", "38.20"),
    ("resnet", "gradcam"): ("23.18", "25.11", "23.98", "21.48"),
    ("resnet", "relevancecam"): ("24.02", "27.25", "24.20", "23.30"),
    ("resnet", "xrelevancecam"): ("23.68", "29.20", "27.66", "26.10"),
}
_T3 = {  # Table 3, dropout on: layer1..layer4, 4+3+2+1
    "gradcam": ("10.19", "16.52", "23.99", "25.88", "24.52"),
    "relevancecam": ("17.87", "22.08", "28.08", "25.98", "28.57"),
    "xrelevancecam": ("20.26", "24.53", "29.02", "25.96", "29.62"),
}
_T4 = {  # Table 4, average over layers
    ("gradcam", "conservation"): "0.689",
    ("gradcam", "sensitivity"): "0.999",
    ("relevancecam", "conservation"): "0.528",
    ("relevancecam", "sensitivity"): "1.29",
    ("xrelevancecam", "conservation"): "0.0097",
    ("xrelevancecam", "sensitivity"): "1.02",
}
PAPER = PaperRecord(
    key="you2024xrelevancecam",
    citation="You et al. 2024",
    file="002_0eff168feed41a5e.txt",
    settings=(
        Setting("data", "ex vivo pCLE, 34 patients (18 meningioma, 16 GBM)", "dataset"),
        Setting("split", "by patient 80/10/10 (27/3/4 patients)", "n_patients"),
        Setting("test frames scored", "correctly classified meningioma frames", "n_eval"),
        Setting("frame side", "339 px frames", "frame_size"),
        Setting("centre crop", "230 x 230 px inside the field of view", "centre_crop"),
        Setting("frames per patient", "all frames of the videos", "frames_per_patient"),
        Setting("validation split", "split-out patients (3)", "val_patients"),
        Setting("input standardisation", "not stated", "standardise"),
        Setting("maximum epochs", "until early stopping", "epochs"),
        Setting("selective-kernel backbone", "SK-ResNeXt-50 32x4d", "backbone"),
        Setting("ResNet (Table 2, Fig. 5)", "ResNet50", "resnet"),
        Setting(
            "initialisation",
            "ImageNet weights (timm)",
            "pretrained",
            "false: a stand-in pretraining on a synthetic task, labelled as such",
        ),
        Setting("optimiser, learning rate", "AdaMax, 1e-3", "lr"),
        Setting("early stopping", "10 epochs without improvement", "patience"),
        Setting(
            "LRP rule",
            "text: LRP-epsilon / alpha-beta; authors' code: z+",
            "",
            "z+ here, as the authors' code",
        ),
        Setting("CLRP start", "text: -L_t/(N-1) at the other classes", "clrp_rule"),
        Setting(
            "CAM library",
            "TorchCAM",
            "",
            "pytorch-grad-cam here; Grad-CAM++ differs: a TorchCAM line divides a copy "
            "and has no effect",
        ),
        Setting(
            "map post-processing",
            "min-max, no ReLU (reference code)",
            "",
            "relevance CAMs: no ReLU; gradient CAMs: pytorch-grad-cam's ReLU",
        ),
        Setting("dropout (Table 3)", "0.1 after each stage, 10 passes", "dropout_passes"),
        Setting("sanity layer (Fig. 5)", "stage 3", "sanity_layer"),
    ),
    numbers={
        **{
            f"table1.{m}.{c}": v[i]
            for m, v in _T1.items()
            for i, c in enumerate((*LAYERS, "average"))
        },
        **{
            f"table2.{b}.{m}.{a}": v[i]
            for (b, m), v in _T2.items()
            for i, a in enumerate(wsss.AGGREGATIONS)
        },
        **{
            f"table3.on.{m}.{c}": v[i]
            for m, v in _T3.items()
            for i, c in enumerate((*LAYERS, "4+3+2+1"))
        },
        **{f"table4.{m}.{a}": v for (m, a), v in _T4.items()},
        "fig5": "the layer-3 map deteriorates gradually (visual)",
        "test_frames": "11 frames of one patient (Tables 1-2), 7 (Table 3), 8 (Table 4)",
    },
)


# -- data ---------------------------------------------------------------------------------------
@dataclass
class Data:
    """One seed's data: training splits, the scored test frames and their patients."""

    train: dict[str, Any]
    key: dict[str, Any]
    images: torch.Tensor  # (N, 3, H, W) test frames, cropped
    labels: np.ndarray
    masks: np.ndarray  # (N, H, W) bool
    patients: np.ndarray
    description: str = ""
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)


def is_synthetic(params: XRelevanceCamParams) -> bool:
    return params.dataset == "synthetic-pcle"


def load_data(params: XRelevanceCamParams, seed: int, store: Store) -> Data:
    """Training/validation splits (augmented) and the test frames of ``seed``."""
    from xaistudy.data.datasets import files_fingerprint, resolve_data_root

    source = {
        "dataset": params.dataset,
        "data_root": params.data_root or None,
        "data_options": params.data_options,
    }
    sizes = (params.n_patients, params.frames_per_patient, params.frame_size, params.centre_crop)
    std = params.standardise
    train = pcle.pcle_datasets(
        *sizes, augment=True, seed=seed, store=store, standardise=std, **source
    )
    key = dict(zip(("n_patients", "fpp", "frame_size", "centre_crop"), sizes, strict=True))
    key.update(data_seed=seed, standardise=std)
    if is_synthetic(params):
        test = pcle.synthetic_cohort(
            params.test_patients,
            params.test_frames,
            params.frame_size,
            params.centre_crop,
            seed,
            first_id=params.n_patients,
            standardise=std,
        )
        if params.val_patients:
            train["val"] = pcle.synthetic_cohort(
                params.val_patients,
                params.frames_per_patient,
                params.frame_size,
                params.centre_crop,
                seed,
                first_id=params.n_patients + 2 * params.test_patients + 2,
                standardise=std,
            )
            key["val_patients"] = params.val_patients
        desc = (
            f"synthetic pCLE frames (`synthetic-pcle`, generated by this book); test: "
            f"{2 * params.test_patients} generated patients unseen in training"
        )
    else:
        plain = pcle.pcle_datasets(
            *sizes, augment=False, seed=seed, store=store, standardise=std, **source
        )
        test = plain["test"]
        root = resolve_data_root(params.dataset, params.data_root or None)
        files = [root / f for ds in plain.values() for f in ds.files]
        key.update(
            dataset=params.dataset, data_options=params.data_options, files=files_fingerprint(files)
        )
        desc = f"pCLE frames read from the folder `{root}` (`{params.dataset}`), its test split"
    samples = [test[i] for i in range(len(test))]
    counts = [
        {
            "split": s,
            "patients": len(np.unique(ds.extra["patient_id"])),
            "frames": len(ds),
            "meningioma frames": int((ds.labels == 1).sum()),
        }
        for s, ds in (("train", train["train"]), ("val", train["val"]), ("test", test))
    ]
    return Data(
        train=train,
        key=key,
        images=torch.stack([s["image"] for s in samples]),
        labels=np.asarray(test.labels),
        masks=np.stack([s["mask"][0].numpy() > 0 for s in samples]),
        patients=np.asarray(test.extra["patient_id"]),
        description=desc,
        counts=pd.DataFrame(counts).assign(seed=seed),
    )


# -- models ------------------------------------------------------------------------------------
def starts(params: XRelevanceCamParams) -> list[str]:
    """The backbone starts this run compares: ``scratch`` and, when there is one, ``pretrained``."""
    return ["scratch"] + (["pretrained"] if params.pretrained or params.standin != "none" else [])


def start_label(params: XRelevanceCamParams, start: str) -> str:
    """How the backbones of ``start`` were initialised, in words (a stand-in says so)."""
    if start == "scratch":
        return "from scratch"
    if params.pretrained:
        return "ImageNet weights"
    return f"stand-in pretraining on {params.standin} (a stand-in for ImageNet)"


def train_models(
    params: XRelevanceCamParams, data: Data, seed: int, start: str, store: Store
) -> dict[str, pcle.PcleModel]:
    """The three models of ``start`` for ``seed`` (trained once, then from the store)."""
    out = {}
    for key, name, dropout in (
        ("sk", params.backbone, 0.0),
        ("resnet", params.resnet, 0.0),
        ("sk_dropout", params.backbone, params.dropout),
    ):
        init: dict[str, Any] = {"pretrained": params.pretrained if start != "scratch" else False}
        if start != "scratch" and not params.pretrained:
            init["init_key"] = {
                "standin": params.standin,
                "tiles": params.standin_tiles,
                "epochs": params.standin_epochs,
                "size": params.frame_size,
            }
            init["init_state"] = pcle.standin_pretraining(
                name,
                params.standin,
                params.standin_tiles,
                params.frame_size,
                epochs=params.standin_epochs,
                lr=params.lr,
                batch_size=params.batch_size,
                device=params.device,
                store=store,
            )
            init["init_label"] = f"fine-tuned from a {start_label(params, start)}"
        out[key] = pcle.train_pcle_classifier(
            name,
            data.train,
            data.key,
            epochs=params.epochs,
            patience=params.patience,
            lr=params.lr,
            batch_size=params.batch_size,
            dropout=dropout,
            seed=seed,
            device=params.device,
            store=store,
            **init,
        )
    return out


def eval_frames(params: XRelevanceCamParams, data: Data, probs: np.ndarray) -> np.ndarray:
    """Correctly classified meningioma frames with a non-empty annotation (one rule for both
    data sources), at most ``n_eval``, spread evenly over the list."""
    keep = (data.labels == 1) & data.masks.any(axis=(1, 2)) & (probs.argmax(1) == 1)
    idx = np.flatnonzero(keep)
    if len(idx) > params.n_eval:
        idx = idx[np.linspace(0, len(idx) - 1, params.n_eval).round().astype(int)]
    return idx


def spread(idx: np.ndarray, patients: np.ndarray, k: int) -> np.ndarray:
    """At most ``k`` of ``idx``, taken in turn from each patient (so every patient counts)."""
    by_patient = [list(idx[patients[idx] == p]) for p in np.unique(patients[idx])]
    out: list[int] = []
    while len(out) < min(k, len(idx)):
        for frames in by_patient:
            if frames and len(out) < k:
                out.append(frames.pop(0))
    return np.sort(np.array(out, dtype=int))


# -- measurements ------------------------------------------------------------------------------
def frame_ious(maps: dict, masks: np.ndarray, rule: str, threshold: float) -> pd.DataFrame:
    """Per-frame IoU (%) of every method at every view (stage or aggregation): long table."""
    rows = []
    for method, by_layer in maps.items():
        for view in VIEWS:
            m = (
                by_layer[view]
                if view in by_layer
                else wsss.aggregate(by_layer, wsss.AGGREGATIONS[view])
            )
            values = wsss.iou(wsss.binarise(m, rule, threshold), masks) * 100
            rows.append(
                pd.DataFrame(
                    {"method": method, "view": view, "frame": np.arange(len(values)), "iou": values}
                )
            )
    return pd.concat(rows, ignore_index=True)


def eq1_diagnostic(model, x: torch.Tensor, maps: dict) -> pd.DataFrame:
    """Per frame and stage: the coefficient of variation of the channel activation totals
    ``sum_ij A^k`` (XRelevanceCAM's weight is RelevanceCAM's times ``hw / sum_ij A^k``, so equal
    totals make the two maps equal) and the Pearson correlation of the two maps."""
    acts = relevance.layer_activations_and_grads(
        model, x, [1] * len(x), relevance.resolve_layers(model, LAYERS)
    )
    rows = []
    for layer, (a, _) in acts.items():
        totals = a.sum(axis=(2, 3))  # (B, K)
        cv = totals.std(1) / np.maximum(totals.mean(1), 1e-12)
        rc, xrc = maps["relevancecam"][layer], maps["xrelevancecam"][layer]
        for i in range(len(x)):
            r = np.corrcoef(rc[i].ravel(), xrc[i].ravel())[0, 1]
            rows.append(
                {
                    "layer": layer,
                    "frame": i,
                    "activation_cv": float(cv[i]),
                    "rc_xrc_pearson": float(r),
                }
            )
    return pd.DataFrame(rows)


def sanity_rows(params: XRelevanceCamParams, model, x: torch.Tensor, seed: int) -> pd.DataFrame:
    """Cascading randomisation (fc, then layer4 .. layer1): per-frame similarity of the
    XRelevanceCAM map at ``sanity_layer`` to the trained model's."""
    layer = [params.sanity_layer]

    def xrc(m):
        return relevance.relevance_cams(
            m, x, 1, layer, params.clrp_rule, ["xrelevancecam"], params.batch_size
        )["xrelevancecam"][params.sanity_layer]

    base, rows = xrc(model), []
    for k in range(1, len(stages.CASCADE) + 1):
        sim = sanity.compare_batches(base, xrc(stages.randomise_stages(model, k, seed)))
        rows.append(
            pd.DataFrame(
                {
                    "randomised": "+".join(stages.CASCADE[:k]),
                    "stages": k,
                    "frame": np.arange(len(x)),
                    **sim,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def axiom_rows(params: XRelevanceCamParams, model, x, patients, seed: int) -> pd.DataFrame:
    """Table 4 per patient: conservation and sensitivity of every method at every stage."""
    parts = []
    for p in np.unique(patients):
        t = axioms.evaluate_axioms(
            model,
            x[patients == p],
            [1] * int((patients == p).sum()),
            layers=LAYERS,
            methods=METHODS,
            rule="logit",
            max_channels=params.axiom_channels or None,
            seed=seed,
        )
        parts.append(t.assign(unit=p))
    return pd.concat(parts, ignore_index=True)


@dataclass
class Results:
    """Every measurement of the run, long tables with ``seed``, ``start`` and ``unit``."""

    iou: pd.DataFrame
    axioms: pd.DataFrame
    sanity: pd.DataFrame
    diagnostic: pd.DataFrame
    models: pd.DataFrame
    counts: pd.DataFrame
    description: str
    example: dict[str, Any]


def _maps(params, store, data, tm, key, idx, seed, passes=1):
    stages.set_dropout(tm.model, passes > 1)
    maps = relevance.cached_layer_cams(
        store,
        {
            "model": key,
            "train": tm.result.history.to_dict("list"),
            "init": tm.init,
            "idx": idx.tolist(),
            "test": [params.test_patients, params.test_frames],
            **data.key,
        },
        tm.model,
        data.images[idx],
        [1] * len(idx),
        methods=METHODS,
        layers=LAYERS,
        rule=params.clrp_rule,
        batch_size=params.batch_size,
        n_passes=passes,
        seed=seed,
    )
    stages.set_dropout(tm.model, False)
    return maps


def measure_start(params, data: Data, seed: int, start: str, store: Store) -> dict[str, Any]:
    """Train the three models of ``start`` and measure everything for one seed."""
    models = train_models(params, data, seed, start, store)
    loader = make_loader(
        torch.utils.data.TensorDataset(data.images, torch.as_tensor(data.labels)), params.batch_size
    )
    out: dict[str, list] = {"iou": [], "models": [], "diagnostic": []}
    tag = {"seed": seed, "start": start}
    for key, tm in models.items():
        tm.model.eval()
        stages.set_dropout(tm.model, False)
        probs, y = predict(tm.model, loader, params.device, desc=None)
        idx = eval_frames(params, data, probs)
        name = params.resnet if key == "resnet" else params.backbone
        out["models"].append(
            {
                **tag,
                "model": key,
                "backbone": name,
                "initialisation": tm.init,
                "epochs run": len(tm.result.history),
                "test accuracy": float((probs.argmax(1) == y).mean()),
                "frames scored": len(idx),
            }
        )
        if len(idx) == 0:
            continue
        runs = [("", 1)] if key != "sk_dropout" else [(":on", params.dropout_passes), (":off", 1)]
        for suffix, passes in runs:
            maps = _maps(params, store, data, tm, key + suffix, idx, seed, passes)
            t = frame_ious(maps, data.masks[idx], params.binarise, params.threshold)
            t["unit"] = data.patients[idx][t["frame"]]
            out["iou"].append(t.assign(model=key + suffix, **tag))
            if key == "sk" and start == "scratch" and seed == params.seeds[0]:
                out["example"] = {"maps": maps, "idx": idx}
            if key in ("sk", "resnet"):
                d = eq1_diagnostic(tm.model, data.images[idx], maps)
                d["unit"] = data.patients[idx][d["frame"]]
                out["diagnostic"].append(d.assign(model=key, **tag))
        if key == "sk":
            ax = spread(idx, data.patients, params.axiom_images)
            out["axioms"] = axiom_rows(
                params, tm.model, data.images[ax], data.patients[ax], seed
            ).assign(**tag)
        if key == "resnet":
            sa = spread(idx, data.patients, params.sanity_images)
            s = sanity_rows(params, tm.model, data.images[sa], seed)
            s["unit"] = data.patients[sa][s["frame"]]
            out["sanity"] = s.assign(**tag)
            if start == "scratch" and seed == params.seeds[0]:
                out["sanity_frames"], out["resnet_model"] = sa, tm
    return out


def measure(params: XRelevanceCamParams, store: Store | None = None) -> Results:
    """Everything the chapter shows, for every seed and start."""
    store = store or Store()
    parts: dict[str, list] = {
        k: [] for k in ("iou", "axioms", "sanity", "diagnostic", "models", "counts")
    }
    example: dict[str, Any] = {}
    desc = ""
    for seed in tqdm(params.seeds, desc="xrelevancecam: seeds"):
        data = load_data(params, seed, store)
        desc = data.description
        parts["counts"].append(data.counts)
        for start in starts(params):
            got = measure_start(params, data, seed, start, store)
            for k in ("iou", "diagnostic"):
                parts[k].extend(got[k])
            parts["models"].extend(got["models"])
            for k in ("axioms", "sanity"):
                if k in got:
                    parts[k].append(got[k])
            if "example" in got:
                example = {**got["example"], "data": data}
            if "sanity_frames" in got:
                example["sanity_frames"] = got["sanity_frames"]
                example["resnet"] = got["resnet_model"]
    frames = {
        k: pd.concat(v, ignore_index=True)
        if v and isinstance(v[0], pd.DataFrame)
        else pd.DataFrame(v)
        for k, v in parts.items()
    }
    return Results(
        frames["iou"],
        frames["axioms"],
        frames["sanity"],
        frames["diagnostic"],
        frames["models"],
        frames["counts"],
        desc,
        example,
    )


# -- tables ------------------------------------------------------------------------------------
def _label(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["method"] = pd.Categorical(out["method"], list(METHODS), ordered=True)
    out = out.sort_values([c for c in ("start", "model", "method") if c in out]).copy()
    out["method"] = out["method"].map(LABELS).astype(str)
    return out.reset_index(drop=True)


def miou_table(res: Results, model: str, views: Sequence[str]) -> pd.DataFrame:
    """Mean IoU (%) per start and method over every scored frame of every seed."""
    t = res.iou[res.iou["model"] == model] if len(res.iou) else res.iou
    if len(t) == 0:  # no frame scored for this model at any seed
        return pd.DataFrame(columns=["start", "method", *views, "frames (all seeds)"])
    wide = t.pivot_table(index=["start", "method"], columns="view", values="iou", aggfunc="mean")[
        list(views)
    ].reset_index()
    if set(LAYERS) <= set(views):
        wide["average"] = wide[list(LAYERS)].mean(axis=1)
    n = t.groupby("start").apply(
        lambda g: g[["seed", "unit", "frame"]].drop_duplicates().shape[0], include_groups=False
    )
    wide["frames (all seeds)"] = wide["start"].map(n)
    return _label(wide)


def axioms_table(res: Results) -> pd.DataFrame:
    """Table 4: mean over patients and seeds, per start, method, axiom and stage."""
    if len(res.axioms) == 0:
        return pd.DataFrame(columns=["start", "method", "axiom", *LAYERS, "average"])
    wide = res.axioms.pivot_table(
        index=["start", "method", "axiom"], columns="layer", values="value", aggfunc="mean"
    )[list(LAYERS)]
    wide["average"] = wide.mean(axis=1)
    return _label(wide.reset_index())


def sanity_table(res: Results) -> pd.DataFrame:
    """Mean similarity to the trained map per start and number of randomised units."""
    if len(res.sanity) == 0:
        return pd.DataFrame(columns=["start", "stages", "randomised", "spearman", "ssim"])
    t = res.sanity.groupby(["start", "stages", "randomised"], sort=True)[["spearman", "ssim"]]
    out = t.mean().reset_index()
    out["frames (all seeds)"] = res.sanity.groupby(["start", "stages"]).size().to_numpy()
    return out


def diagnostic_table(res: Results) -> pd.DataFrame:
    """Eq. 1's diagnostic per start, model and stage (means over frames and seeds)."""
    if len(res.diagnostic) == 0:
        return pd.DataFrame(columns=["start", "model", "layer", "activation_cv", "rc_xrc_pearson"])
    return (
        res.diagnostic.groupby(["start", "model", "layer"])[["activation_cv", "rc_xrc_pearson"]]
        .mean()
        .reset_index()
    )


def diagnostic_figure(res: Results) -> plt.Figure:
    """RelevanceCAM-XRelevanceCAM difference (1 - Pearson) against the channel-weight spread."""
    if len(res.diagnostic) == 0:
        return _empty_figure("no frame scored: no diagnostic")
    fig, ax = plt.subplots(figsize=(7, 4))
    markers = {"scratch": "o", "pretrained": "^"}
    colours = dict(zip(LAYERS, plt.cm.viridis(np.linspace(0, 0.9, len(LAYERS))), strict=True))
    for (start, layer), g in res.diagnostic.groupby(["start", "layer"]):
        ax.scatter(
            g["activation_cv"],
            1 - g["rc_xrc_pearson"],
            s=10,
            alpha=0.5,
            marker=markers.get(start, "o"),
            color=colours[layer],
            label=f"{layer}, {start}",
        )
    ax.set_xlabel("coefficient of variation of the channel activation totals sum_ij A^k")
    ax.set_ylabel("1 - Pearson(RelevanceCAM, XRelevanceCAM)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title("Eq. 1 can only change the map when the channel totals differ")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _displayable(image: torch.Tensor) -> np.ndarray:
    """A (3, H, W) frame as an (H, W, 3) array min-max scaled to [0, 1] (standardised frames)."""
    x = image.permute(1, 2, 0).numpy()
    return (x - x.min()) / max(float(x.max() - x.min()), 1e-8)


def maps_figure(res: Results, k: int = 0) -> plt.Figure:
    """Rows: methods; columns: the frame and each stage (first seed, from scratch)."""
    ex = res.example
    data, i = ex["data"], ex["idx"][k]
    fig, axes = plt.subplots(
        len(METHODS), len(LAYERS) + 1, figsize=(2.0 * (len(LAYERS) + 1), 1.9 * len(METHODS))
    )
    for r, method in enumerate(METHODS):
        axes[r, 0].imshow(_displayable(data.images[i]))
        axes[r, 0].contour(data.masks[i], levels=[0.5], colors="yellow", linewidths=0.8)
        axes[r, 0].set_ylabel(LABELS[method], fontsize=8)
        for c, layer in enumerate(LAYERS, start=1):
            axes[r, c].imshow(ex["maps"][method][layer][k], cmap="jet", vmin=0, vmax=1)
            axes[r, c].contour(data.masks[i], levels=[0.5], colors="white", linewidths=0.6)
            if r == 0:
                axes[r, c].set_title(layer, fontsize=9)
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle("CAMs per method and stage (white/yellow: annotation); first seed, scratch")
    fig.tight_layout()
    return fig


def _empty_figure(text: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    return fig


def miou_figure(table1: pd.DataFrame) -> plt.Figure:
    if len(table1) == 0:
        return _empty_figure("no frame scored")
    fig, axes = plt.subplots(1, table1["start"].nunique(), figsize=(11, 3.4), squeeze=False)
    for ax, (start, g) in zip(axes[0], table1.groupby("start"), strict=True):
        for _, row in g.iterrows():
            ax.plot(
                LAYERS,
                [row[c] for c in LAYERS],
                marker="o",
                label=row["method"],
                lw=2.5 if "Relevance" in row["method"] else 1.0,
            )
        ax.set_title(f"start: {start}")
        ax.set_ylabel("mIoU (%)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sanity_figure(res: Results, params: XRelevanceCamParams) -> plt.Figure:
    """The first sanity frame's map as stages are randomised, and the similarity curves."""
    ex = res.example
    if "sanity_frames" not in ex or "data" not in ex:  # no frame scored at the first seed
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.text(0.5, 0.5, "no scored frame at the first seed", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = ex["data"].images[ex["sanity_frames"][:1]]
    model = ex["resnet"].model
    cols = [("trained", model)] + [
        (f"+{stages.CASCADE[k - 1]}", stages.randomise_stages(model, k, params.seeds[0]))
        for k in range(1, len(stages.CASCADE) + 1)
    ]
    fig, axes = plt.subplots(
        1,
        len(cols) + 2,
        figsize=(2.0 * (len(cols) + 3), 2.3),
        gridspec_kw={"width_ratios": [1] * (len(cols) + 1) + [2.5]},
    )
    axes[0].imshow(_displayable(x[0]))
    axes[0].set_title("frame", fontsize=8)
    for a, (name, m) in zip(axes[1:-1], cols, strict=True):
        cam = relevance.relevance_cams(
            m, x, 1, [params.sanity_layer], params.clrp_rule, ["xrelevancecam"]
        )["xrelevancecam"][params.sanity_layer]
        a.imshow(cam[0], cmap="jet", vmin=0, vmax=1)
        a.set_title(name, fontsize=8)
    for a in axes[:-1]:
        a.set_xticks([])
        a.set_yticks([])
    st = sanity_table(res)
    for start, g in st.groupby("start"):
        axes[-1].plot(g["stages"], g["spearman"], marker="o", label=f"Spearman, {start}")
        axes[-1].plot(g["stages"], g["ssim"], marker="s", ls="--", label=f"SSIM, {start}")
    axes[-1].axhline(params.sanity_spearman, color="grey", lw=0.6)
    axes[-1].set_xlabel("units randomised from the top")
    axes[-1].legend(fontsize=6)
    fig.suptitle(f"Cascading randomisation, XRelevanceCAM at {params.sanity_layer} (ResNet)")
    fig.tight_layout()
    return fig


# -- claims ------------------------------------------------------------------------------------
def _diff(iou: pd.DataFrame, model: str, a: tuple[str, str], b: tuple[str, str]) -> pd.DataFrame:
    """Per frame: IoU of (method, view) ``a`` minus that of ``b``; columns seed, unit, value."""
    if len(iou) == 0:
        return pd.DataFrame(columns=["seed", "unit", "frame", "value"])
    t = iou[iou["model"] == model]
    keys = ["seed", "unit", "frame"]
    va = t[(t["method"] == a[0]) & (t["view"] == a[1])].set_index(keys)["iou"]
    vb = t[(t["method"] == b[0]) & (t["view"] == b[1])].set_index(keys)["iou"]
    return (va - vb).dropna().rename("value").reset_index()


def _layer_mean(iou: pd.DataFrame, model: str, a: str, b: str) -> pd.DataFrame:
    if len(iou) == 0:
        return pd.DataFrame(columns=["seed", "unit", "frame", "value"])
    t = iou[(iou["model"] == model) & iou["view"].isin(LAYERS)]
    w = t.pivot_table(index=["seed", "unit", "frame"], columns="method", values="iou")
    if a not in w or b not in w:
        return pd.DataFrame(columns=["seed", "unit", "frame", "value"])
    return (w[a] - w[b]).dropna().rename("value").reset_index()


def _axiom_diff(ax: pd.DataFrame, axiom: str, worse: str, better: str) -> pd.DataFrame:
    if not _axiom_diff_safe(ax):
        return pd.DataFrame(columns=["seed", "unit", "value"])
    t = ax[ax["axiom"] == axiom].groupby(["seed", "unit", "method"])["value"].mean().unstack()
    if worse not in t or better not in t:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    return (t[worse] - t[better]).dropna().rename("value").reset_index()


EQ1_HYPOTHESIS = (
    "Eq. 1 changes RelevanceCAM's map only where the channel activation totals differ "
    "(see the diagnostic)"
)


def _axiom_diff_safe(ax: pd.DataFrame) -> bool:
    return len(ax) > 0 and "axiom" in ax


def _sanity_margin(sa: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per frame: ``threshold`` minus the Spearman similarity with every unit randomised."""
    if len(sa) == 0:
        return pd.DataFrame(columns=["seed", "unit", "value"])
    full = sa[sa["stages"] == sa["stages"].max()]
    return full.assign(value=threshold - full["spearman"])[["seed", "unit", "value"]]


def claims(res: Results, params: XRelevanceCamParams, profile: str) -> list[dict[str, object]]:
    """The paper's findings (Tables 1-4, Fig. 5) per backbone start, and the Eq. 1 diagnostic."""
    n = PAPER.number
    data_name = "synthetic" if is_synthetic(params) else params.dataset
    rows = []
    shared = "" if params.pretrained else "stand-in pretraining (seed 0, shared by the seeds)"
    for start in starts(params):
        iou = res.iou[res.iou["start"] == start] if len(res.iou) else res.iou
        ax = res.axioms[res.axioms["start"] == start] if len(res.axioms) else res.axioms
        sa = res.sanity[res.sanity["start"] == start] if len(res.sanity) else res.sanity
        s = f".{start}"
        note = f"start: {start_label(params, start)}; unit: test patient"
        tests: list[tuple[Claim, pd.DataFrame]] = []
        for i, layer in enumerate(LAYERS):
            xrc, rc = n(f"table1.xrelevancecam.{layer}"), n(f"table1.relevancecam.{layer}")
            tests.append(
                (
                    Claim(
                        f"table1.xrc_beats_rc.{layer}{s}",
                        PAPER.citation,
                        "Table 1",
                        f"XRelevanceCAM segments better than RelevanceCAM at {layer}",
                        f"{xrc} vs {rc}",
                        f"IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, {layer}, %",
                        hypothesis=EQ1_HYPOTHESIS if i == 0 else "",
                    ),
                    _diff(iou, "sk", ("xrelevancecam", layer), ("relevancecam", layer)),
                )
            )
        tests += [
            (
                Claim(
                    f"table1.xrc_beats_gradcam.average{s}",
                    PAPER.citation,
                    "Table 1",
                    "XRelevanceCAM's average per-layer mIoU exceeds Grad-CAM's",
                    f"{n('table1.xrelevancecam.average')} vs {n('table1.gradcam.average')}",
                    "mean over the stages of IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, %",
                ),
                _layer_mean(iou, "sk", "xrelevancecam", "gradcam"),
            ),
            (
                Claim(
                    f"table1.shallow_beats_deep{s}",
                    PAPER.citation,
                    "Table 1",
                    "XRelevanceCAM's layer 3 segments better than its layer 1 (depth helps)",
                    f"{n('table1.xrelevancecam.layer3')} vs {n('table1.xrelevancecam.layer1')}",
                    "IoU(XRelevanceCAM, layer3) - IoU(XRelevanceCAM, layer1) per frame, %",
                ),
                _diff(iou, "sk", ("xrelevancecam", "layer3"), ("xrelevancecam", "layer1")),
            ),
            (
                Claim(
                    f"table2.aggregation_beats_layer4{s}",
                    PAPER.citation,
                    "Table 2",
                    "Aggregating all four stages beats layer 4 alone (XRelevanceCAM, SK)",
                    f"{n('table2.sk.xrelevancecam.4+3+2+1')} vs {n('table2.sk.xrelevancecam.4')}",
                    "IoU(XRelevanceCAM, 4+3+2+1) - IoU(XRelevanceCAM, 4) per frame, %",
                ),
                _diff(iou, "sk", ("xrelevancecam", "4+3+2+1"), ("xrelevancecam", "layer4")),
            ),
            (
                Claim(
                    f"table2.xrc_beats_rc.aggregate{s}",
                    PAPER.citation,
                    "Table 2",
                    "XRelevanceCAM wins the 4+3+2+1 aggregation over RelevanceCAM (SK)",
                    f"{n('table2.sk.xrelevancecam.4+3+2+1')} vs "
                    f"{n('table2.sk.relevancecam.4+3+2+1')}",
                    "IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, 4+3+2+1, %",
                ),
                _diff(iou, "sk", ("xrelevancecam", "4+3+2+1"), ("relevancecam", "4+3+2+1")),
            ),
            (
                Claim(
                    f"table2.resnet.xrc_beats_gradcam.aggregate{s}",
                    PAPER.citation,
                    "Table 2",
                    "With the ResNet, XRelevanceCAM beats Grad-CAM at 4+3+2+1",
                    f"{n('table2.resnet.xrelevancecam.4+3+2+1')} vs "
                    f"{n('table2.resnet.gradcam.4+3+2+1')}",
                    "IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, ResNet, 4+3+2+1, %",
                ),
                _diff(iou, "resnet", ("xrelevancecam", "4+3+2+1"), ("gradcam", "4+3+2+1")),
            ),
            (
                Claim(
                    f"table3.xrc_beats_rc.dropout_on.layer1{s}",
                    PAPER.citation,
                    "Table 3",
                    "With dropout on, XRelevanceCAM beats RelevanceCAM at layer 1",
                    f"{n('table3.on.xrelevancecam.layer1')} vs "
                    f"{n('table3.on.relevancecam.layer1')}",
                    "IoU(XRelevanceCAM) - IoU(RelevanceCAM) per frame, dropout on, layer1, %",
                ),
                _diff(
                    iou, "sk_dropout:on", ("xrelevancecam", "layer1"), ("relevancecam", "layer1")
                ),
            ),
            (
                Claim(
                    f"table3.xrc_beats_gradcam.dropout_on.aggregate{s}",
                    PAPER.citation,
                    "Table 3",
                    "With dropout on, XRelevanceCAM beats Grad-CAM at 4+3+2+1",
                    f"{n('table3.on.xrelevancecam.4+3+2+1')} vs {n('table3.on.gradcam.4+3+2+1')}",
                    "IoU(XRelevanceCAM) - IoU(Grad-CAM) per frame, dropout on, 4+3+2+1, %",
                ),
                _diff(iou, "sk_dropout:on", ("xrelevancecam", "4+3+2+1"), ("gradcam", "4+3+2+1")),
            ),
        ]
        tests += [
            (
                Claim(
                    f"table4.xrc_conserves_better_than_rc{s}",
                    PAPER.citation,
                    "Table 4",
                    "XRelevanceCAM's conservation error is below RelevanceCAM's",
                    f"{n('table4.xrelevancecam.conservation')} vs "
                    f"{n('table4.relevancecam.conservation')}",
                    "conservation(RelevanceCAM) - conservation(XRelevanceCAM), mean over "
                    "stages, per patient",
                ),
                _axiom_diff(ax, "conservation", "relevancecam", "xrelevancecam"),
            ),
            (
                Claim(
                    f"table4.xrc_conserves_better_than_gradcam{s}",
                    PAPER.citation,
                    "Table 4",
                    "XRelevanceCAM's conservation error is below Grad-CAM's",
                    f"{n('table4.xrelevancecam.conservation')} vs "
                    f"{n('table4.gradcam.conservation')}",
                    "conservation(Grad-CAM) - conservation(XRelevanceCAM), per patient",
                ),
                _axiom_diff(ax, "conservation", "gradcam", "xrelevancecam"),
            ),
            (
                Claim(
                    f"table4.xrc_sensitivity_better_than_rc{s}",
                    PAPER.citation,
                    "Table 4",
                    "XRelevanceCAM's sensitivity error is below RelevanceCAM's",
                    f"{n('table4.xrelevancecam.sensitivity')} vs "
                    f"{n('table4.relevancecam.sensitivity')}",
                    "sensitivity(RelevanceCAM) - sensitivity(XRelevanceCAM), per patient",
                ),
                _axiom_diff(ax, "sensitivity", "relevancecam", "xrelevancecam"),
            ),
            (
                Claim(
                    f"fig5.sanity_passes{s}",
                    PAPER.citation,
                    "Fig. 5",
                    f"With every stage randomised the XRelevanceCAM map no longer resembles "
                    f"the trained one (stated rule: Spearman < {params.sanity_spearman:g})",
                    n("fig5"),
                    "threshold - Spearman(trained map, fully randomised map) per frame",
                ),
                _sanity_margin(sa, params.sanity_spearman),
            ),
        ]
        rows += [
            judge(
                c,
                d,
                note=note,
                shared_stages=shared if start != "scratch" else "",
                data_name=data_name,
                profile=profile,
            )
            for c, d in tests
        ]
    rows += _hypothesis_claims(res, data_name, profile)
    return rows


def _hypothesis_claims(res: Results, data_name: str, profile: str) -> list[dict[str, object]]:
    """The book's hypothesis: a pretrained start spreads the channel totals (Eq. 1 acts)."""
    d = res.diagnostic[res.diagnostic["model"] == "sk"] if len(res.diagnostic) else None
    diff = None
    if d is not None and {"scratch", "pretrained"} <= set(d["start"]):
        per = d.groupby(["seed", "unit", "start"])["activation_cv"].mean().unstack("start")
        diff = (per["pretrained"] - per["scratch"]).dropna().rename("value").reset_index()
    claim = Claim(
        "eq1.pretraining_spreads_channels",
        "the book's hypothesis",
        "diagnostic",
        "A pretrained start spreads the channel activation totals more than training from "
        "scratch, so Eq. 1 has something to reweight",
        "— (not the paper's)",
        "CV of the channel activation totals (mean over stages and frames), pretrained - "
        "scratch start, SK backbone, per test patient",
    )
    return [
        judge(
            claim,
            diff,
            data_name=data_name,
            profile=profile,
            note="paired by seed and patient; the scored frames may differ between starts",
        )
    ]


# -- paper vs book ---------------------------------------------------------------------------
def paper_vs_book(res: Results, params: XRelevanceCamParams, profile: str) -> pd.DataFrame:
    """The paper's Tables 1-4 numbers beside this run's means (each start), from ``PAPER``."""
    t1 = {s: g for s, g in miou_table(res, "sk", LAYERS).groupby("start")}
    t2 = {
        (s, m): g for m in ("sk", "resnet") for s, g in miou_table(res, m, VIEWS).groupby("start")
    }
    t3 = {s: g for s, g in miou_table(res, "sk_dropout:on", VIEWS).groupby("start")}
    t4 = {s: g for s, g in axioms_table(res).groupby("start")} if len(res.axioms) else {}
    data_name = "synthetic pCLE" if is_synthetic(params) else params.dataset
    rows = []
    for key, paper_value in PAPER.numbers.items():
        parts = key.split(".")
        if parts[0] not in ("table1", "table2", "table3", "table4"):
            continue
        row = {
            "table": parts[0].replace("table", "Table "),
            "quantity": key,
            "paper": float(paper_value),
        }
        for start in starts(params):
            label = f"this book ({start})"
            try:
                if parts[0] == "table1":
                    g, col, method = t1[start], parts[2], parts[1]
                elif parts[0] == "table2":
                    g, method = t2[(start, parts[1])], parts[2]
                    col = "layer4" if parts[3] == "4" else parts[3]
                elif parts[0] == "table3":
                    g, method, col = t3[start], parts[2], parts[3]
                else:
                    g = t4[start]
                    g, method, col = g[g["axiom"] == parts[2]], parts[1], "average"
                row[label] = float(g.loc[g["method"] == LABELS[method], col].iloc[0])
            except (KeyError, IndexError):
                row[label] = np.nan
        row["data + profile"] = f"{data_name}, {profile}, {params.backbone} / {params.resnet}"
        rows.append(row)
    return pd.DataFrame(rows)


def profiles_table() -> pd.DataFrame:
    """What each profile trains and scores."""
    rows = []
    for prof in PROFILES:
        p = XRelevanceCamParams.model_construct(
            **{
                **{
                    k: f.get_default(call_default_factory=True)
                    for k, f in XRelevanceCamParams.model_fields.items()
                },
                **XRelevanceCamParams.profile_defaults(prof),
            }
        )
        side = pcle.fov_crop_size(p.frame_size, PCLE_FOV_FRAC) if p.centre_crop else p.frame_size
        rows.append(
            {
                "profile": prof,
                "dataset": p.dataset,
                "seeds": len(p.seeds),
                "backbones": f"{p.backbone} / {p.resnet}",
                "frame / input (px)": f"{p.frame_size} / {side}",
                "train patients x frames": f"{p.n_patients or 'all'} x "
                f"{p.frames_per_patient or 'all'}",
                "max epochs": p.epochs,
                "pretrained start": "ImageNet" if p.pretrained else f"stand-in: {p.standin}",
            }
        )
    return pd.DataFrame(rows)



# --- exercises (xaistudy exercises xrelevancecam)


def _xrc_layers(o: Outcome, baseline: bool = False) -> str:
    t = o.table("miou_per_layer", baseline)
    row = t[(t["start"] == "scratch") & (t["method"] == "XRelevanceCAM")]
    if row.empty:
        return "—"
    row = row.iloc[0]
    return ", ".join(f"{c} {row[c]:.1f}" for c in ("layer1", "layer2", "layer3", "layer4"))


def _answer_rule(o: Outcome) -> str:
    return (
        f"XRelevanceCAM mIoU per layer (from scratch) with the paper's logit rule: "
        f"{_xrc_layers(o)}; with the reference code's unit rule: {_xrc_layers(o, True)}."
    )


def _answer_binarise(o: Outcome) -> str:
    return "With Otsu's threshold, " + o.changed_verdicts("table1") + " of Table 1."


def _answer_standin(o: Outcome) -> str:
    t = o.table("eq1_diagnostic")
    means = t.groupby("start")[["activation_cv", "rc_xrc_pearson"]].mean()
    rows = "; ".join(
        f"{start}: channel-weight CV {r.activation_cv:.2f}, RC-XRC Pearson {r.rc_xrc_pearson:.3f}"
        for start, r in means.iterrows()
    )
    return f"Without the stand-in pretraining only the scratch start remains ({rows})."


EXERCISES = (
    Exercise(
        "clrp-rule",
        "Does the initial CLRP relevance (the paper's text vs the authors' code) change the "
        "layer-wise mIoU?",
        params={"clrp_rule": "logit"},
        look_at="table:miou_per_layer",
        answer=_answer_rule,
    ),
    Exercise(
        "binarisation",
        "Do the Table 1 verdicts depend on how the maps are binarised?",
        params={"binarise": "otsu"},
        look_at="claim:table1.xrc_beats_rc.layer1.scratch",
        answer=_answer_binarise,
    ),
    Exercise(
        "no-pretraining",
        "What does Eq. 1's channel weighting have to act on when nothing was pretrained?",
        params={"standin": "none"},
        look_at="table:eq1_diagnostic",
        answer=_answer_standin,
    ),
)


CHAPTER = Chapter(
    name="xrelevancecam",
    title="XRelevanceCAM: relevance-weighted CAMs",
    params=XRelevanceCamParams,
    order=40,
    paper=PAPER,
    exercises=EXERCISES,
    compute=measure,
)
