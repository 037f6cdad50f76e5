"""The xrelevancecam study's measurements of one model: CAMs of every method at every stage
(stored), per-frame IoU of every stage and layer aggregation, Eq. 1's diagnostic, the axioms
per patient and the cascading randomisation of the relevance map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaistudy.core.store import Store
from xaistudy.evaluate import axioms, localisation, sanity, wsss
from xaistudy.explain import relevance
from xaistudy.explain.clrp import resolve_layers
from xaistudy.models import stages

LAYERS: tuple[str, ...] = stages.STAGES
METHODS: tuple[str, ...] = relevance.LAYER_METHODS
#: what is scored: the four stages and the layer aggregations of Table 2
VIEWS: tuple[str, ...] = (*LAYERS, "4+3", "4+3+2", "4+3+2+1")
#: the models of one start: key -> what it is
MODELS = {"sk": "selective-kernel", "resnet": "ResNet", "sk_dropout": "selective-kernel + dropout"}


def cached_layer_cams(
    store: Store, key: Mapping, model: nn.Module, inputs: torch.Tensor, targets, **options
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`xaistudy.explain.relevance.layer_cams` stored under ``key`` (what identifies the
    model and the inputs) and the options."""

    def compute():
        maps = relevance.layer_cams(model, inputs, targets, **options)
        return {f"{m}/{n}": v for m, d in maps.items() for n, v in d.items()}

    params = {**key, **{k: v for k, v in options.items() if k != "batch_size"}}
    flat = store.cached_arrays("xrelevancecam-maps", params, compute)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in flat.items():
        method, layer = name.split("/")
        out.setdefault(method, {})[layer] = arr
    return out


def frame_ious(
    maps: dict, masks: np.ndarray, rule: str, threshold: float, partner: np.ndarray | None = None
) -> pd.DataFrame:
    """Per-frame IoU (%) of every method at every view (stage or aggregation): long table.

    ``partner``: for each frame another frame (:func:`xaistudy.evaluate.controls.partner_index`);
    column ``iou_other_mask`` is the IoU of the map with the partner's mask (NaN without one),
    the claims' null control (a map that fits any annotated tissue as well as its own scores
    the same)."""
    rows = []
    for method, by_layer in maps.items():
        for view in VIEWS:
            m = (
                by_layer[view]
                if view in by_layer
                else wsss.aggregate(by_layer, wsss.AGGREGATIONS[view])
            )
            binary = wsss.binarise(m, rule, threshold)
            columns = {"iou": localisation.iou(binary, masks) * 100}
            columns["iou_other_mask"] = (
                localisation.iou(binary, masks[partner]) * 100
                if partner is not None
                else np.full(len(masks), np.nan)  # one frame: no other frame to swap with
            )
            rows.append(
                pd.DataFrame(
                    {"method": method, "view": view, "frame": np.arange(len(masks)), **columns}
                )
            )
    return pd.concat(rows, ignore_index=True)


def eq1_diagnostic(model: nn.Module, x: torch.Tensor, maps: dict) -> pd.DataFrame:
    """Per frame and stage: the coefficient of variation of the channel activation totals
    ``sum_ij A^k`` (XRelevanceCAM's weight is RelevanceCAM's times ``hw / sum_ij A^k``, so equal
    totals make the two maps equal) and the Pearson correlation of the two maps."""
    acts = relevance.layer_activations_and_grads(
        model, x, [1] * len(x), resolve_layers(model, LAYERS)
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


@dataclass(frozen=True)
class SanityMaps:
    """The first sanity frame and its XRelevanceCAM map as the cascade randomises the ResNet:
    ``steps`` are ``trained``, ``+fc``, ``+layer4`` ... with their maps ``(H, W)``."""

    image: torch.Tensor  # (3, H, W)
    steps: tuple[str, ...]
    maps: tuple[np.ndarray, ...]


def sanity_rows(
    params: Any, model: nn.Module, x: torch.Tensor, seed: int
) -> tuple[pd.DataFrame, SanityMaps]:
    """Cascading randomisation (fc, then layer4 .. layer1; :func:`xaistudy.models.stages.
    randomise_stages`): per-frame similarity (:func:`xaistudy.evaluate.sanity.compare_batches`)
    of the XRelevanceCAM map at ``sanity_layer`` to the trained model's; and the first frame's
    maps."""
    layer = [params.sanity_layer]

    def xrc(m):
        return relevance.relevance_cams(
            m, x, 1, layer, params.clrp_rule, ["xrelevancecam"], params.batch_size
        )["xrelevancecam"][params.sanity_layer]

    base = xrc(model)
    rows, firsts = [], [base[0]]
    for k in range(1, len(stages.CASCADE) + 1):
        maps = xrc(stages.randomise_stages(model, k, seed))
        firsts.append(maps[0])
        rows.append(
            pd.DataFrame(
                {
                    "randomised": "+".join(stages.CASCADE[:k]),
                    "stages": k,
                    "frame": np.arange(len(x)),
                    **sanity.compare_batches(base, maps),
                }
            )
        )
    steps = ("trained", *(f"+{name}" for name in stages.CASCADE))
    return pd.concat(rows, ignore_index=True), SanityMaps(x[0], steps, tuple(firsts))


def axiom_rows(params: Any, model: nn.Module, x, patients, seed: int) -> pd.DataFrame:
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


def model_maps(params, store, data, tm, key: str, idx: np.ndarray, seed: int, passes: int = 1):
    """Every method's maps at every stage of the frames ``idx`` (stored), with the model's
    stage dropout on and ``passes`` passes averaged when ``passes > 1``."""
    stages.set_dropout(tm.model, passes > 1)
    maps = cached_layer_cams(
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
