"""The xrelevancecam study's run: per seed and backbone start, the three models trained and
measured once into a frozen :class:`StartResult`; :func:`run` gathers them into a
:class:`Result` of long tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from xaistudy.core.store import Store
from xaistudy.evaluate import controls
from xaistudy.models import stages
from xaistudy.models.classify import predict_proba

from .data import Data, eval_frames, load_data, spread, starts, train_models
from .measure import (
    SanityMaps,
    eq1_diagnostic,
    frame_ious,
    model_key,
    model_maps,
    stored_axiom_rows,
    stored_sanity_rows,
)


@dataclass(frozen=True)
class Example:
    """The scored frames of the first seed's from-scratch selective-kernel model and every
    method's maps of them: ``maps[method][layer]`` ``(n, H, W)``."""

    images: torch.Tensor  # (n, 3, H, W)
    masks: np.ndarray  # (n, H, W) bool
    maps: dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class StartResult:
    """Everything measured for one seed and one backbone start (tables with ``seed``,
    ``start`` and, where frames were scored, ``unit``: the test patient)."""

    models: tuple[dict[str, Any], ...]
    iou: tuple[pd.DataFrame, ...]
    diagnostic: tuple[pd.DataFrame, ...]
    axioms: pd.DataFrame | None
    axioms_untrained: pd.DataFrame | None
    sanity: pd.DataFrame | None
    example: Example | None
    sanity_maps: SanityMaps | None
    #: the same cascade on the same frames for the untrained ResNet (Fig. 5's null control)
    sanity_untrained: pd.DataFrame | None = None


@dataclass(frozen=True)
class Result:
    """Every measurement of the run, long tables with ``seed``, ``start`` and ``unit``."""

    params: Any
    #: seed, start, model, method, view, frame, unit, iou, fpr, marked (%) and the controls
    #: iou_other_mask, fpr_other_mask
    iou: pd.DataFrame
    axioms: pd.DataFrame  # seed, start, method, axiom, layer, value, unit, ...
    #: the same axioms on the same frames for the untrained network (the Table-4 claims' null
    #: control, :func:`xaistudy.evaluate.controls.untrained_copy`)
    axioms_untrained: pd.DataFrame
    sanity: pd.DataFrame  # seed, start, stages, randomised, frame, unit, spearman, ssim
    diagnostic: pd.DataFrame  # seed, start, model, layer, frame, unit, activation_cv, ...
    models: pd.DataFrame  # one row per seed, start and model
    counts: pd.DataFrame  # patients and frames per split and seed
    description: str
    example: Example | None
    sanity_maps: SanityMaps | None
    #: the cascade of :attr:`sanity` on the untrained ResNet
    #: (:func:`xaistudy.evaluate.controls.untrained_copy`), the Fig. 5 claims' null control
    sanity_untrained: pd.DataFrame = field(default_factory=pd.DataFrame)


def measure_start(params: Any, data: Data, seed: int, start: str, store: Store) -> StartResult:
    """Train the three models of ``start`` and measure everything for one seed."""
    models = train_models(params, data, seed, start, store)
    tag = {"seed": seed, "start": start}
    first = start == "scratch" and seed == params.seeds[0]
    rows, ious, diags = [], [], []
    ax = ax_untrained = sa = sa_untrained = example = sanity_maps = None
    for key, tm in models.items():
        tm.model.eval()
        stages.set_dropout(tm.model, False)
        probs = predict_proba(tm.model, data.images, batch_size=params.batch_size)
        idx = eval_frames(params, data, probs)
        rows.append(
            {
                **tag,
                "model": key,
                "backbone": params.resnet if key == "resnet" else params.backbone,
                "initialisation": tm.init,
                "epochs run": len(tm.result.history),
                "test accuracy": float((probs.argmax(1) == data.labels).mean()),
                "frames scored": len(idx),
            }
        )
        if len(idx) == 0:
            continue
        partner = (
            controls.partner_index(len(idx), (seed, 1), differ=data.patients[idx])
            if len(idx) > 1
            else None
        )
        runs = [("", 1)] if key != "sk_dropout" else [(":on", params.dropout_passes), (":off", 1)]
        for suffix, passes in runs:
            maps = model_maps(params, store, data, tm, key + suffix, idx, seed, passes)
            t = frame_ious(maps, data.masks[idx], params.binarise, params.threshold, partner)
            t["unit"] = data.patients[idx][t["frame"]]
            ious.append(t.assign(model=key + suffix, **tag))
            if key == "sk" and first:
                example = Example(data.images[idx], data.masks[idx], maps)
            if key in ("sk", "resnet"):
                d = eq1_diagnostic(tm.model, data.images[idx], maps)
                d["unit"] = data.patients[idx][d["frame"]]
                diags.append(d.assign(model=key, **tag))
        if key == "sk":
            frames = spread(idx, data.patients, params.axiom_images)
            x, patients = data.images[frames], data.patients[frames]
            mk = {**model_key(params, data, tm, key), "frames": frames.tolist()}
            ax = stored_axiom_rows(params, store, mk, tm.model, x, patients, seed)
            untrained = controls.untrained_copy(tm.model, seed)
            ax_untrained = stored_axiom_rows(
                params, store, {**mk, "control": "untrained"}, untrained, x, patients, seed
            )
            ax, ax_untrained = ax.assign(**tag), ax_untrained.assign(**tag)
        if key == "resnet":
            frames = spread(idx, data.patients, params.sanity_images)
            mk = {**model_key(params, data, tm, key), "frames": frames.tolist()}
            blank = controls.untrained_copy(tm.model, seed)
            x = data.images[frames]
            sa, shown = stored_sanity_rows(params, store, mk, tm.model, x, seed)
            sa_untrained, _ = stored_sanity_rows(
                params, store, {**mk, "control": "untrained"}, blank, x, seed
            )
            sa, sa_untrained = (
                t.assign(unit=data.patients[frames][t["frame"]], **tag) for t in (sa, sa_untrained)
            )
            sanity_maps = shown if first else None
    return StartResult(
        tuple(rows),
        tuple(ious),
        tuple(diags),
        ax,
        ax_untrained,
        sa,
        example,
        sanity_maps,
        sa_untrained,
    )


def _frame(parts: list) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(parts)


def run(params: Any, store: Store | None = None) -> Result:
    """Everything the chapter shows, for every seed and start (every stage stored)."""
    store = store or Store()
    counts, done, desc = [], [], ""
    for seed in tqdm(params.seeds, desc="xrelevancecam: seeds"):
        data = load_data(params, seed, store)
        desc = data.description
        counts.append(data.counts)
        done += [measure_start(params, data, seed, start, store) for start in starts(params)]
    example = next((r.example for r in done if r.example is not None), None)
    sanity_maps = next((r.sanity_maps for r in done if r.sanity_maps is not None), None)
    return Result(
        params=params,
        iou=_frame([t for r in done for t in r.iou]),
        axioms=_frame([r.axioms for r in done if r.axioms is not None]),
        axioms_untrained=_frame([r.axioms_untrained for r in done if r.axioms is not None]),
        sanity=_frame([r.sanity for r in done if r.sanity is not None]),
        sanity_untrained=_frame([r.sanity_untrained for r in done if r.sanity is not None]),
        diagnostic=_frame([t for r in done for t in r.diagnostic]),
        models=pd.DataFrame([row for r in done for row in r.models]),
        counts=_frame(counts),
        description=desc,
        example=example,
        sanity_maps=sanity_maps,
    )
