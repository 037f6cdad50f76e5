"""The IBO study's measurements as tidy rows (one per seed, tile and what was measured), and
the ranking statistics computed from them (fast: integer codes and ``bincount``).

The rows carry ``seed`` and ``unit`` (the tile), the columns the book's one bootstrap
(:mod:`xaistudy.stats.bootstrap`) resamples by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from xaistudy.evaluate import perceptual
from xaistudy.models.classify import predict_proba
from xaistudy.stats import ranking
from xaistudy.studies.ibo.occlude import METRICS
from xaistudy.studies.ibo.pipeline import Result, SeedModel


def iou_rows(st: Result) -> pd.DataFrame:
    """IoU per seed, ground-truth tile (``unit``) and method; ``iou_shuffled``: the IoU of the
    coverage-matched map (the null control); ``occluded``: in the occluded set."""
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
                    "iou_shuffled": run.ious_shuffled.reshape(-1),
                    "occluded": np.repeat(np.arange(g) < len(run.sample_ids), m),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def auc_rows(st: Result) -> pd.DataFrame:
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


def premise_control_rows(st: Result) -> pd.DataFrame:
    """IBO's premise control per seed and occluded tile (``unit``): P(tumour) before and after
    RePaint fills a random region of the last mask's area (:func:`.pipeline.premise_control`),
    the method whose area it took and the area; no rows without IBO."""
    frames = [
        pd.DataFrame(
            {
                "seed": run.seed,
                "unit": run.sample_ids,
                "method": np.asarray(st.methods)[run.premise_control["method"]],
                "area": run.premise_control["area"],
                "p_before": run.premise_control["p_before"],
                "p_after": run.premise_control["p_after"],
            }
        )
        for run in st.runs
        if len(run.premise_control)
    ]
    columns = ["seed", "unit", "method", "area", "p_before", "p_after"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def distance_rows(st: Result) -> pd.DataFrame:
    """Table 1's distances per seed, tile, strategy, metric and mask (mean over methods and
    noise replicates)."""
    frames = []
    for run in st.runs:
        for strategy, res in run.results.items():
            for metric in METRICS:
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


#: the gate's tissue-free control: each DDPM sample replaced by its mean colour
FLAT = "flat tile"


def gate_rows(st: Result) -> pd.DataFrame:
    """P(tumour) and OoD score of the DDPM's samples, of as many of the real tiles it learned
    from, and of held-out test tiles, per seed's classifier (``source``: DDPM sample / flat
    tile / DDPM training tile / held-out normal tile / held-out tumour tile)."""
    training = st.runs[0].splits["ddpm"].images[: len(st.gate_images)]
    return gate_scores(st.runs, st.gate_images, training)


def gate_scores(
    runs: Sequence[SeedModel], samples: torch.Tensor, training: torch.Tensor | None = None
) -> pd.DataFrame:
    """:func:`gate_rows` for any ``samples`` (N, 3, H, W) in [0, 1], scored by ``runs``'
    classifiers and OoD detectors against their held-out test tiles; ``training`` (optional):
    real tiles the DDPM learned from, scored the same way (the gate's control). Each sample's
    flat copy (its mean colour everywhere, :data:`FLAT`) is scored too: tissue-free tiles,
    the premise claims' null control."""
    frames = []
    flat = samples.mean(dim=(2, 3), keepdim=True).expand_as(samples).contiguous()
    for run in runs:
        test = run.splits["test"]
        y = test.labels.numpy()
        sources = [("DDPM sample", samples), (FLAT, flat)]
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
                        "p_tumour": predict_proba(run.model, images, target=1),
                        "ood": run.ood.score(feats),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


# -- ranking statistics ---------------------------------------------------------------------------
def code_means(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The mean of ``values`` per integer code 0..n-1 (NaN for a code without values)."""
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


def source_ranks(rows: pd.DataFrame, src: int, n_methods: int) -> np.ndarray:
    """The methods' ranks (1 = best) by their mean value of source ``src`` over ``rows``; tied
    methods share the mean of their ranks (mid-ranks), so a strategy that cannot tell the
    methods apart sits in the middle of every ranking, not at its top."""
    sel = rows["src"].to_numpy() == src
    means = code_means(rows["m"].to_numpy()[sel], rows["value"].to_numpy()[sel], n_methods)
    return ranking.rank(
        np.nan_to_num(means, nan=np.inf if src else -np.inf),
        higher_is_better=src == 0,
        method="average",
    )


AGREEMENTS: dict[str, Callable] = {
    "mard": ranking.mard,
    "rank_accuracy": ranking.rank_accuracy,
    "kendall_tau": ranking.kendall_tau,
}


def agreement_statistic(src: int, n_methods: int, what: str = "mard") -> Callable:
    """MARD, rank accuracy or Kendall tau of strategy ``src``'s AUC ranking against the IoU
    ranking, both from the means over the rows (all seeds pooled)."""
    fn = AGREEMENTS[what]

    def statistic(rows: pd.DataFrame) -> float:
        return fn(source_ranks(rows, 0, n_methods), source_ranks(rows, src, n_methods))

    return statistic


def difference_statistic(first: Callable, second: Callable) -> Callable:
    """``first(rows) - second(rows)``."""
    return lambda rows: first(rows) - second(rows)
