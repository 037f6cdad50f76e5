"""The xrelevancecam study's measurements of one model: CAMs of every method at every stage
(stored), per-frame IoU and false-positive rate of every stage and layer aggregation, Eq. 1's
diagnostic, the axioms per patient and the cascading randomisation of the relevance map, down
to the stem."""

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
#: the sanity cascade's units, top first: :data:`xaistudy.models.stages.CASCADE` (the head,
#: then ``layer4`` .. ``layer1``), then the ``stem`` (everything below ``layer1``): at the last
#: step every weight of the network is random
CASCADE: tuple[str, ...] = (*stages.CASCADE, "stem")


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


def false_positive_rate(binary: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per frame, the false-positive rate (%) of binarised maps ``(B, H, W)``: the pixels a map
    marks outside the annotation over every pixel outside it (NaN where the annotation covers
    the frame).

    The paper's words ("highlighting significantly fewer false positive tissue", L162) count
    the non-target tissue a map lights up; dividing by the non-annotated pixels (not by the
    map's own area, which would measure its purity, 1 - precision) keeps frames with large and
    small annotations on one scale. It falls with the marked area whatever the map shows: the
    claims compare it with the same rate against another frame's annotation."""
    binary, masks = np.asarray(binary, bool), np.asarray(masks, bool)
    outside = (~masks).sum(axis=(-2, -1)).astype(np.float64)
    marked = (binary & ~masks).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(outside > 0, 100 * marked / np.where(outside > 0, outside, 1), np.nan)


def frame_ious(
    maps: dict, masks: np.ndarray, rule: str, threshold: float, partner: np.ndarray | None = None
) -> pd.DataFrame:
    """Per-frame IoU (%) of every method at every view (stage or aggregation): long table, with
    the false-positive rate ``fpr`` (%, :func:`false_positive_rate`) and the share of the
    frame the binarised map marks, ``marked`` (%).

    ``partner``: for each frame another frame (:func:`xaistudy.evaluate.controls.partner_index`);
    columns ``iou_other_mask`` and ``fpr_other_mask`` score the map against the partner's mask
    (NaN without one), the claims' null control (a map that fits any annotated tissue as well
    as its own scores the same)."""
    rows = []
    nan = np.full(len(masks), np.nan)  # one frame: no other frame to swap with
    for method, by_layer in maps.items():
        for view in VIEWS:
            m = (
                by_layer[view]
                if view in by_layer
                else wsss.aggregate(by_layer, wsss.AGGREGATIONS[view])
            )
            binary = wsss.binarise(m, rule, threshold)
            other = masks[partner] if partner is not None else None
            columns = {
                "iou": localisation.iou(binary, masks) * 100,
                "iou_other_mask": nan if other is None else localisation.iou(binary, other) * 100,
                "fpr": false_positive_rate(binary, masks),
                "fpr_other_mask": nan if other is None else false_positive_rate(binary, other),
                "marked": binary.mean(axis=(-2, -1)) * 100,
            }
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
    ``steps`` are ``trained``, ``+fc``, ``+layer4`` ... ``+stem`` with their maps ``(H, W)``."""

    image: torch.Tensor  # (3, H, W)
    steps: tuple[str, ...]
    maps: tuple[np.ndarray, ...]


def randomise_cascade(model: nn.Module, k: int, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the top ``k`` units of :data:`CASCADE` re-initialised.

    ``k <= 5``: :func:`xaistudy.models.stages.randomise_stages`; ``k = 6`` also re-initialises
    the stem, every convolution and linear layer outside the stages and the head (seeded
    apart from the stages' draws), so that no learned weight is left. Batch norms keep their
    statistics and affine weights at every step, as in ``randomise_stages``."""
    if not 0 <= k <= len(CASCADE):
        raise ValueError(f"k must be from 0 to {len(CASCADE)}, got {k}")
    clone = stages.randomise_stages(model, min(k, len(stages.CASCADE)), seed)
    if k == len(CASCADE):
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed + len(stages.CASCADE))
            for name, child in clone.named_children():
                if name in stages.CASCADE:
                    continue
                for module in child.modules():
                    if isinstance(module, (nn.Conv2d, nn.Linear)):
                        module.reset_parameters()
        finally:
            torch.random.set_rng_state(state)
    return clone.eval()


def sanity_rows(
    params: Any, model: nn.Module, x: torch.Tensor, seed: int
) -> tuple[pd.DataFrame, SanityMaps]:
    """Cascading randomisation (fc, then layer4 .. layer1, then the stem;
    :func:`randomise_cascade`): per-frame similarity
    (:func:`xaistudy.evaluate.sanity.compare_batches`) of the XRelevanceCAM map at
    ``sanity_layer`` to the unrandomised model's; and the first frame's maps."""
    layer = [params.sanity_layer]

    def xrc(m):
        return relevance.relevance_cams(
            m, x, 1, layer, params.clrp_rule, ["xrelevancecam"], params.batch_size
        )["xrelevancecam"][params.sanity_layer]

    base = xrc(model)
    rows, firsts = [], [base[0]]
    for k in range(1, len(CASCADE) + 1):
        maps = xrc(randomise_cascade(model, k, seed))
        firsts.append(maps[0])
        rows.append(
            pd.DataFrame(
                {
                    "randomised": "+".join(CASCADE[:k]),
                    "stages": k,
                    "frame": np.arange(len(x)),
                    **sanity.compare_batches(base, maps),
                }
            )
        )
    steps = ("trained", *(f"+{name}" for name in CASCADE))
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
        {**model_key(params, data, tm, key), "idx": idx.tolist()},
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


# -- stored tables: a rerun of the chapter (an exercise, a second test) loads them -------------
def _frame_arrays(table: pd.DataFrame, **extra: np.ndarray) -> dict[str, np.ndarray]:
    out = {"columns": np.array(table.columns, dtype=str), **extra}
    for column in table.columns:
        values = table[column].to_numpy()
        if values.dtype == object:
            if not all(isinstance(v, str) for v in values):
                raise TypeError(f"column {column!r} mixes text and other values")
            values = values.astype(str)
        out[f"column:{column}"] = values
    return out


def _arrays_frame(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({c: arrays[f"column:{c}"] for c in arrays["columns"]})


def model_key(params: Any, data: Any, tm: Any, key: str) -> dict[str, Any]:
    """What identifies one trained model of ``data`` (``key``: ``sk``, ``resnet`` ...): its
    training history, its start and the data, for the keys of what is computed from it."""
    return {
        "model": key,
        "train": tm.result.history.to_dict("list"),
        "init": tm.init,
        "test": [params.test_patients, params.test_frames],
        **data.key,
    }


def stored_axiom_rows(
    params: Any, store: Store, key: Mapping, model: nn.Module, x, patients, seed: int
) -> pd.DataFrame:
    """:func:`axiom_rows`, stored under ``key`` (:func:`model_key`, plus what tells a control
    model apart) and the frames' patients."""
    stage = {**key, "patients": [str(p) for p in patients], "seed": seed, "layers": LAYERS,
             "methods": METHODS, "axiom_channels": params.axiom_channels}  # fmt: skip
    arrays = store.cached_arrays(
        "xrelevancecam-axioms",
        stage,
        lambda: _frame_arrays(axiom_rows(params, model, x, patients, seed)),
    )
    return _arrays_frame(arrays)


def stored_sanity_rows(
    params: Any, store: Store, key: Mapping, model: nn.Module, x: torch.Tensor, seed: int
) -> tuple[pd.DataFrame, SanityMaps]:
    """:func:`sanity_rows`, stored under ``key`` (:func:`model_key`, plus what tells a control
    model apart and which frames ``x`` are)."""
    stage = {**key, "seed": seed, "sanity_layer": params.sanity_layer,
             "clrp_rule": params.clrp_rule, "batch_size": params.batch_size}  # fmt: skip

    def compute() -> dict[str, np.ndarray]:
        rows, shown = sanity_rows(params, model, x, seed)
        return _frame_arrays(rows, shown=np.stack(shown.maps))

    arrays = store.cached_arrays("xrelevancecam-sanity", stage, compute)
    steps = ("trained", *(f"+{name}" for name in CASCADE))
    return _arrays_frame(arrays), SanityMaps(x[0], steps, tuple(arrays["shown"]))
