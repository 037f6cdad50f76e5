"""The whole experiment over the seeds: :func:`run` → :class:`Result`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from xaistudy.core.store import Store
from xaistudy.evaluate import shortcut_check
from xaistudy.studies import ibo as ibo_study

from .data import SeedRun, intervention_rows, prepare_seed
from .design import TRAINED, TWIN
from .maps import maps_of
from .scores import score_model


@dataclass(frozen=True)
class Result:
    """Everything the chapter shows: per seed the models and tiles; all scores (long table
    ``seed, model, unit, method, metric, value``); the interventions (P(target) per model and
    tile); the data chapter's shortcut check on these tiles; the first seed's maps of the first
    tile of every model (n = 1, M, H, W); the ibo chapter's parameters IBO used (None: IBO not
    measured); the profile the parameters came from (the claims record it)."""

    params: Any
    runs: tuple[SeedRun, ...]
    scores: pd.DataFrame
    interventions: pd.DataFrame
    shortcut: pd.DataFrame
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    ibo_params: Any = None
    profile: str = "quick"


def ibo_ddpm(params: Any, ibo_params: Any, store: Store) -> tuple | None:
    """(the DDPM, its cache key): the ibo chapter's DDPM of normal tissue for ``ibo_params``
    (shared with that chapter's cache), or None when IBO is not measured (``ibo_tiles`` 0)."""
    if not params.ibo_tiles:
        return None
    return ibo_study.shared_ddpm(ibo_params, store)


def run(params: Any, ibo_params: Any, store: Store | None = None, profile: str = "quick") -> Result:
    """The whole experiment over ``params.seeds`` (models, maps and occlusions cached).

    ``ibo_params``: the ibo chapter's parameters (its ``ibo_profile``, this run's device): its
    DDPM and RePaint schedule for IBO, and the other strategies' options (blur, noise);
    ``profile`` names where the parameters came from.
    """
    store = store or Store()
    ddpm = ibo_ddpm(params, ibo_params, store)
    runs, scores, interventions, shortcut, examples = [], [], [], [], {}
    for seed in tqdm(params.seeds, desc="seeds"):
        seed_run = prepare_seed(params, seed, store)
        maps = {name: maps_of(params, seed_run, name, store) for name in (*TRAINED, *TWIN.values())}
        for name in (*TRAINED, "randomised"):
            twin = maps[TWIN[name]] if name in TRAINED else None
            scores.append(
                score_model(params, seed_run, name, maps[name], twin, ibo_params, ddpm, store)
            )
        interventions.append(intervention_rows(seed_run))
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
        runs.append(seed_run)
    return Result(
        params,
        tuple(runs),
        pd.concat(scores, ignore_index=True),
        pd.concat(interventions, ignore_index=True),
        pd.concat(shortcut, ignore_index=True),
        examples,
        ibo_params if ddpm is not None else None,
        profile,
    )
