"""One seed of the ``thesis_metrics`` study: the data draw, the grading CNN, the nuclei U-Net,
the test predictions and masks, and the four methods' post-processed maps.

Every trained model and every map is cached per seed in the :class:`~xaistudy.core.store.Store`
(stages ``thesis_cnn``, ``thesis_unet``, ``thesis_maps``). ``params`` is any object with the
``thesis_metrics`` chapter's parameter fields.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaistudy.core.runtime import seed_everything
from xaistudy.core.store import Store
from xaistudy.data import synthetic
from xaistudy.data.datasets import get_dataset
from xaistudy.evaluate import quality as q
from xaistudy.models.classifiers import resolve_device
from xaistudy.models.thesis_cnn import (
    RotatedSubset,
    ThesisCNN,
    rotated_dataset,
    rotation_balanced_indices,
)
from xaistudy.models.train import fit, make_loader, predict
from xaistudy.models.transforms import RandomDihedral
from xaistudy.models.unet import build_unet, nuclei_targets, segmentation_objective

#: the grading classes (DiagSet-A): artifacts, normal, grades R1-R5
CLASSES: tuple[str, ...] = tuple(synthetic.GRADES)
#: the thesis's four methods (names of :func:`xaistudy.explain.explain`) and their labels
METHODS: dict[str, str] = {
    "integrated_gradients": "IG",
    "ig_noise_tunnel": "NT",
    "lime": "LIME",
    "gradcam": "Grad-CAM",
}
#: the U-Net's two output masks, in channel order
MASK_TYPES: tuple[str, ...] = ("tumour", "non-tumour")


@dataclass(frozen=True, eq=False)
class SeedRun:
    """Everything one seed produced: Table 1, the trained models and their histories, the
    test tiles' predictions, U-Net probabilities, exact nuclei types and post-processed maps."""

    seed: int
    table1: pd.DataFrame
    cnn: nn.Module  # the grading CNN (eval mode)
    cnn_history: pd.DataFrame
    cnn_best_epoch: int
    cnn_parameters: int
    unet_history: pd.DataFrame
    unet_best_epoch: int
    unet_parameters: int
    probs: np.ndarray  # (N, 7) softmax of the test tiles
    labels: np.ndarray  # (N,)
    images: np.ndarray  # (N, H, W, 3) uint8
    unet_prob: np.ndarray  # (N, 2, H, W) U-Net probabilities (tumour, non-tumour)
    exact: np.ndarray | None  # (N, H, W) nuclei types, synthetic tiles only
    maps: dict[str, np.ndarray]  # method -> (N, H, W) post-processed maps
    he_val: dict[str, np.ndarray] = field(default_factory=dict)  # prob, types
    seconds: float = 0.0

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(1)

    def inputs(self, index: Any) -> torch.Tensor:
        """The CNN's input for the test tiles ``index``: (B, 3, H, W) float32 in [0, 1]."""
        block = np.asarray(self.images[np.atleast_1d(index)])
        return torch.from_numpy(block).permute(0, 3, 1, 2).float() / 255

    def masks(self, ground_truth: str, mask_threshold: float) -> dict[str, np.ndarray]:
        """Binary masks per mask type from the U-Net or the exact nuclei types."""
        if ground_truth == "U-Net":
            return {mt: self.unet_prob[:, k] > mask_threshold for k, mt in enumerate(MASK_TYPES)}
        if self.exact is None:
            raise ValueError("this run has no exact nuclei masks (real grading data)")
        codes = (synthetic.NEOPLASTIC, synthetic.NON_NEOPLASTIC)
        return {mt: self.exact == c for mt, c in zip(MASK_TYPES, codes, strict=True)}


def real_grading(params: Any) -> bool:
    """True when the grading tiles are real patches (no exact nuclei masks)."""
    return params.dataset != "synthetic-grading"


def ground_truths(params: Any) -> tuple[str, ...]:
    """``U-Net`` always; ``exact`` when the grading tiles carry nuclei types (synthetic)."""
    return ("U-Net",) if real_grading(params) else ("U-Net", "exact")


def _synthetic_sets(params: Any, seed: int, aug: list[int], per_class: dict[str, int]):
    originals = math.ceil(params.n_train_per_class / 4)
    sets = {
        s: get_dataset("synthetic-grading", s, n_per_class=n, size=params.tile_size, seed=seed)
        for s, n in per_class.items()
    }
    pairs = rotation_balanced_indices(
        sets["train"].labels, params.n_train_per_class, augment=aug, seed=seed, originals=originals
    )
    table1 = pd.DataFrame(
        {
            "class": CLASSES,
            "original tiles": [originals if k in aug else per_class["train"] for k in range(7)],
            "after rotation": [4 * originals if k in aug else per_class["train"] for k in range(7)],
            "training": [sum(sets["train"].labels[i] == k for i, _ in pairs) for k in range(7)],
            "validation": [per_class["val"]] * 7,
            "testing": [per_class["test"]] * 7,
            "rotated": ["yes" if k in aug else "no" for k in range(7)],
        }
    )
    return RotatedSubset(sets["train"], pairs), sets["val"], sets["test"], table1, None


def grading_sets(params: Any, seed: int, store: Store):
    """Training (rotation-balanced), validation and test sets, Table 1 and the real files'
    fingerprints (None for synthetic tiles) of one seed."""
    aug = [CLASSES.index(c) for c in params.augment_classes.split(",") if c]
    per_class = {
        "train": params.n_train_per_class,
        "val": params.n_val_per_class,
        "test": params.n_test_per_class,
    }
    if not real_grading(params):
        return _synthetic_sets(params, seed, aug, per_class)
    loaded = {
        s: get_dataset(
            params.dataset,
            s,
            data_root=params.data_root or None,
            n_per_class=n,
            size=params.tile_size,
            seed=seed,
            store=store,
            **{"too_few": "all", **params.data_options},
        )
        for s, n in per_class.items()
    }
    balanced = {}
    for k, (s, n) in enumerate(per_class.items()):
        try:
            balanced[s] = rotation_balanced_indices(
                loaded[s].labels, n, augment=aug, seed=seed + k, class_names=CLASSES
            )
        except ValueError as err:
            raise ValueError(
                f"{params.dataset} split '{s}': {err}; lower n_{s}_per_class or "
                "rotate the class (augment_classes)"
            ) from None
    test = rotated_dataset(loaded["test"], balanced["test"])
    avail = {s: loaded[s].class_counts for s in per_class}
    table1 = pd.DataFrame(
        {
            "class": CLASSES,
            "original patches": [sum(avail[s][c] for s in per_class) for c in CLASSES],
            "after rotation": [
                sum(avail[s][c] for s in per_class) * (4 if k in aug else 1)
                for k, c in enumerate(CLASSES)
            ],
            "training": [
                sum(loaded["train"].labels[i] == k for i, _ in balanced["train"]) for k in range(7)
            ],
            "validation": [
                sum(loaded["val"].labels[i] == k for i, _ in balanced["val"]) for k in range(7)
            ],
            "testing": [int((test.labels == k).sum()) for k in range(7)],
            "patches in the train / val / test splits": [
                " / ".join(str(avail[s][c]) for s in per_class) for c in CLASSES
            ],
            "rotated": ["yes" if k in aug else "no" for k in range(7)],
        }
    )
    train = RotatedSubset(loaded["train"], balanced["train"])
    val = RotatedSubset(loaded["val"], balanced["val"])
    return train, val, test, table1, [loaded[s].fingerprint for s in per_class]


def cnn_key(params: Any, seed: int, files: Any = None) -> dict[str, Any]:
    """What identifies one seed's trained grading CNN (its cache key)."""
    key = {
        "model": "thesis_cnn",
        "tile_size": params.tile_size,
        "fc_width": params.fc_width,
        "seed": seed,
        "n_train": params.n_train_per_class,
        "n_val": params.n_val_per_class,
        "augment": params.augment_classes,
        "epochs": params.cnn_epochs,
        "patience": params.cnn_patience,
        "lr": params.cnn_lr,
        "batch_size": params.batch_size,
        "standardise": params.input_standardise,
        "dihedral": params.train_dihedral,
    }
    if real_grading(params):
        key |= {"data": params.dataset, "data_options": params.data_options, "files": files}
    return key


def unet_key(params: Any, seed: int, he: dict) -> dict[str, Any]:
    """What identifies one seed's trained nuclei U-Net (its cache key)."""
    key = {
        "model": "thesis_unet",
        "arch": params.unet_arch,
        "tile_size": params.tile_size,
        "base": params.unet_base,
        "depth": params.unet_depth,
        "n_train": params.he_n_train,
        "n_val": params.he_n_val,
        "epochs": params.unet_epochs,
        "lr": params.unet_lr,
        "batch_size": params.unet_batch_size,
        "seed": seed,
        "patience": params.unet_patience,
        "standardise": params.input_standardise,
    }
    if params.nuclei_dataset != "synthetic-he":
        key |= {
            "data": params.nuclei_dataset,
            "data_options": params.nuclei_data_options,
            "files": [he[s].fingerprint for s in he],
        }
    return key


def explanation_options(params: Any, seed: int) -> dict[str, dict[str, Any]]:
    """The options of each of the thesis's four methods (Grad-CAM: the last convolution)."""
    return {
        "integrated_gradients": {"n_steps": params.ig_steps},
        "ig_noise_tunnel": {
            "n_steps": params.nt_steps,
            "nt_samples": params.nt_samples,
            "stdevs": params.nt_stdevs,
            "seed": seed,
        },
        "lime": {
            "num_samples": params.lime_samples,
            "num_features": params.lime_features,
            "positive_only": params.lime_positive_only,
            "seed": seed,
            "hide_color": None if params.lime_hide == "mean" else 0,
        },
        "gradcam": {},
    }


def _train_cnn(params: Any, seed: int, train, val, key: dict, store: Store):
    seed_everything(seed)
    cnn = ThesisCNN(
        num_classes=len(CLASSES),
        input_size=params.tile_size,
        fc_width=params.fc_width,
        standardise=params.input_standardise,
    )
    augmented = RandomDihedral(train) if params.train_dihedral else train
    return fit(
        cnn,
        make_loader(augmented, params.batch_size, shuffle=True, seed=seed),
        make_loader(val, params.batch_size),
        epochs=params.cnn_epochs,
        lr=params.cnn_lr,
        patience=params.cnn_patience,
        seed=seed,
        device=params.device,
        store=store,
        kind="thesis_cnn",
        params=key,
        desc=f"grading CNN, seed {seed}",
    )


def _train_unet(params: Any, seed: int, he: dict, store: Store):
    seed_everything(seed)
    unet = build_unet(
        params.unet_arch,
        3,
        2,
        base=params.unet_base,
        depth=params.unet_depth,
        standardise=params.input_standardise,
    )
    return fit(
        unet,
        make_loader(he["train"], params.unet_batch_size, shuffle=True, seed=seed),
        make_loader(he["val"], params.unet_batch_size),
        epochs=params.unet_epochs,
        lr=params.unet_lr,
        patience=params.unet_patience,
        seed=seed,
        device=params.device,
        store=store,
        kind="thesis_unet",
        params=unet_key(params, seed, he),
        desc=f"nuclei U-Net, seed {seed}",
        objective=segmentation_objective(nuclei_targets),
    )


def _nuclei_sets(params: Any, seed: int, store: Store) -> dict[str, Any]:
    return {
        s: get_dataset(
            params.nuclei_dataset,
            s,
            data_root=params.nuclei_data_root or None,
            n=n,
            size=params.tile_size,
            seed=seed,
            store=store,
            **params.nuclei_data_options,
        )
        for s, n in (("train", params.he_n_train), ("val", params.he_n_val))
    }


def run_seed(params: Any, seed: int, store: Store | None = None) -> SeedRun:
    """Draw the data, train the CNN and the U-Net, predict, segment and explain (one seed).

    Every trained model and every map is cached per seed in ``store``.
    """
    store = store or Store()
    started = time.time()
    dev = resolve_device(params.device)
    train, val, test, table1, files = grading_sets(params, seed, store)
    key = cnn_key(params, seed, files)
    cnn_run = _train_cnn(params, seed, train, val, key, store)
    cnn = cnn_run.model.to(dev).eval()
    he = _nuclei_sets(params, seed, store)
    unet_run = _train_unet(params, seed, he, store)
    unet = unet_run.model.to(dev).eval()
    probs, labels = predict(cnn, make_loader(test, params.batch_size), device=params.device)
    x = torch.stack([test[i]["image"] for i in range(len(test))])
    with torch.no_grad():
        seg = torch.cat(
            [torch.sigmoid(unet(x[i : i + 32].to(dev))).cpu() for i in range(0, len(x), 32)]
        ).numpy()
        hx = torch.stack([he["val"][i]["image"] for i in range(len(he["val"]))])
        he_prob = torch.sigmoid(unet(hx.to(dev))).cpu().numpy()
    pred = probs.argmax(1)
    maps = {}
    for method, opts in explanation_options(params, seed).items():
        items = store.cached_items(
            "thesis_maps",
            {"cnn": key, "method": method, **opts, "n_test": params.n_test_per_class},
            range(len(x)),
            lambda i, m=method, o=opts: {
                "map": q.interpretation_maps(
                    m, cnn, x[i : i + 1], [int(pred[i])], layer=cnn.last_conv, **o
                )[0]
            },
            desc=f"{METHODS[method]}, seed {seed}",
        )
        maps[method] = np.stack([it["map"] for it in items])
    return SeedRun(
        seed=seed,
        table1=table1,
        cnn=cnn,
        cnn_history=cnn_run.history,
        cnn_best_epoch=cnn_run.best_epoch,
        cnn_parameters=sum(p.numel() for p in cnn.parameters()),
        unet_history=unet_run.history,
        unet_best_epoch=unet_run.best_epoch,
        unet_parameters=sum(p.numel() for p in unet.parameters()),
        probs=probs,
        labels=labels,
        images=np.asarray(test.images),
        unet_prob=seg,
        exact=None if real_grading(params) else np.asarray(test.nuclei_type),
        maps=maps,
        he_val={"prob": he_prob, "types": np.asarray(he["val"].nuclei_type)},
        seconds=time.time() - started,
    )
