"""What the chapter reads off the scores: the interventions' verification, the pairs (truth,
score) of a metric, the rankings' agreement with the truth's (Kendall's tau, MARD) and how often
a metric prefers a trained model's map to the randomised model's. Intervals resample the seeds
and, within each, the tiles (:func:`xaistudy.stats.claims.bootstrap_interval`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from xaistudy.stats import ranking
from xaistudy.stats.claims import ArrayStatistic, bootstrap_interval

from .design import METRICS, TRAINED, TRUTH_LABEL, methods_of

if TYPE_CHECKING:
    from .study import Result


# -- the interventions --------------------------------------------------------------------------
def intervention_summary(result: Result) -> pd.DataFrame:
    """Per model: mean P(target) of the tiles, without the evidence and without the rest, and
    the verification: P(without the rest) - P(without the evidence), with its interval."""
    rows = []
    for name, g in result.interventions.groupby("model", sort=False):
        diff = g.assign(value=g["without the rest"] - g["without evidence"])
        est, low, high = bootstrap_interval(diff, n_boot=result.params.n_boot)
        rows.append(
            {
                "model": name,
                "P(target)": g["original"].mean(),
                "without evidence": g["without evidence"].mean(),
                "without the rest": g["without the rest"].mean(),
                "rest − evidence": est,
                "ci_low": low,
                "ci_high": high,
                "evidence verified": bool(low > 0),
            }
        )
    return pd.DataFrame(rows)


def unverified(result: Result) -> list[str]:
    """The trained models whose evidence the intervention did not verify."""
    t = intervention_summary(result).set_index("model")
    return [m for m in TRAINED if not t.loc[m, "evidence verified"]]


# -- a metric against the truth ------------------------------------------------------------------
def metric_names(result: Result) -> list[str]:
    """The metrics (keys of :data:`METRICS`) this run scored, in :data:`METRICS` order."""
    present = set(result.scores["metric"])
    return [k for k in METRICS if k in present]


def paired_rows(result: Result, model: str, metric: str) -> pd.DataFrame:
    """Rows ``seed, unit, method (code), truth, score`` of one model and metric (pairs with a
    finite score only)."""
    s = result.scores[result.scores["model"] == model]
    wide = s[s["metric"].isin([TRUTH_LABEL, metric])].pivot_table(
        index=["seed", "unit", "method"], columns="metric", values="value", dropna=False
    )
    if metric not in wide:
        return pd.DataFrame(columns=["seed", "unit", "method", "truth", "score"])
    wide = wide.rename(columns={TRUTH_LABEL: "truth", metric: "score"}).reset_index()
    wide = wide[np.isfinite(wide["score"]) & np.isfinite(wide["truth"])]
    codes = {name: i for i, name in enumerate(methods_of(result.params))}
    return wide.assign(method=wide["method"].map(codes)).reset_index(drop=True)


def method_means(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` per method code, for the codes present (in code order)."""
    codes = np.asarray(codes, int)
    counts = np.bincount(codes)
    sums = np.bincount(codes, np.asarray(values, float), len(counts))
    return sums[counts > 0] / counts[counts > 0]


def agreement(
    truth: np.ndarray, score: np.ndarray, higher_is_better: bool, what: str = "tau"
) -> float:
    """Kendall's tau (``tau``) or MARD (``mard``) between the methods' ranking by ``score``
    (means per method) and by ``truth`` (higher is better), ties at their mid-ranks. A metric
    that gives every method the same score ranks nothing: tau 0."""
    if len(truth) < 2:
        return float("nan")
    if what == "mard":
        r_truth = ranking.rank(truth, higher_is_better=True, method="average")
        return ranking.mard(r_truth, ranking.rank(score, higher_is_better, method="average"))
    if np.ptp(score) == 0:
        return 0.0
    return ranking.kendall_tau(truth, score if higher_is_better else -np.asarray(score))


def ranking_statistic(higher_is_better: bool, what: str = "tau") -> ArrayStatistic:
    """A bootstrap statistic: :func:`agreement` of the method means of the rows (columns
    ``method``, ``truth``, ``score``)."""
    return ArrayStatistic(
        ("method", "truth", "score"),
        lambda m, t, s: agreement(method_means(m, t), method_means(m, s), higher_is_better, what),
    )


def win_rows(result: Result, metric: str) -> pd.DataFrame:
    """Per seed, tile and method: 1 when ``metric`` scores the clean model's map better than
    the randomised model's map of the same tile, 0.5 on a tie, 0 when worse."""
    s = result.scores[result.scores["metric"] == metric]
    wide = s.pivot_table(index=["seed", "unit", "method"], columns="model", values="value")
    if "clean" not in wide or "randomised" not in wide:
        return pd.DataFrame(columns=["seed", "unit", "method", "value"])
    wide = wide[np.isfinite(wide["clean"]) & np.isfinite(wide["randomised"])]
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    d = np.sign(sign * (wide["clean"] - wide["randomised"]))
    return wide.assign(value=0.5 + 0.5 * d)[["value"]].reset_index()


def agreement_numbers(result: Result) -> pd.DataFrame:
    """Per metric (``key``), how well its ranking of the methods agrees with the truth's on
    each trained model (Kendall's tau, MARD, 95 % intervals over seeds and tiles), and how often
    it prefers the clean model's map to the randomised model's (0.5: never tells them apart);
    ordered by tau on the clean model."""
    rows = []
    n_boot = result.params.n_boot
    for key in metric_names(result):
        metric, row = METRICS[key], {"key": key}
        for model in TRAINED:
            data = paired_rows(result, model, key)
            for what in ("tau", "mard"):
                est, low, high = bootstrap_interval(
                    data, ranking_statistic(metric.higher_is_better, what), n_boot=n_boot
                )
                row[f"{what} {model}"] = est
                row[f"{what} {model} low"], row[f"{what} {model} high"] = low, high
            row[f"methods {model}"] = int(data["method"].nunique()) if len(data) else 0
        wins = win_rows(result, key)
        est, low, high = (
            bootstrap_interval(wins, n_boot=n_boot) if len(wins) else (np.nan, np.nan, np.nan)
        )
        row.update(
            {"beats randomised": est, "beats randomised low": low, "beats randomised high": high}
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("tau clean", ascending=False, kind="stable").reset_index(drop=True)


def truth_summary(result: Result) -> pd.DataFrame:
    """The ground-truth ranking: per trained model and method (name), the mean truth score over
    tiles and seeds with its 95 % interval, and its rank (1: localises the evidence best)."""
    rows = []
    for model in TRAINED:
        s = result.scores[
            (result.scores["model"] == model) & (result.scores["metric"] == TRUTH_LABEL)
        ]
        for method, g in s.groupby("method", sort=False):
            est, low, high = bootstrap_interval(g, n_boot=result.params.n_boot)
            rows.append(
                {"model": model, "method": method, "truth": est, "ci_low": low, "ci_high": high}
            )
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("model")["truth"].rank(ascending=False, method="min")
    return table.sort_values(["model", "rank"], kind="stable").reset_index(drop=True)


def mean_scores(result: Result, model: str = "clean") -> pd.DataFrame:
    """Mean of the truth and every metric per method for ``model`` (index: metric keys, the
    truth first; columns: method names)."""
    s = result.scores[result.scores["model"] == model]
    wide = s.pivot_table(index="metric", columns="method", values="value", aggfunc="mean")
    order = [TRUTH_LABEL, *metric_names(result)]
    return wide.reindex([k for k in order if k in wide.index])[methods_of(result.params)]


# -- the claims' statistics ----------------------------------------------------------------------
def ibo_vs(result: Result, other: str) -> pd.DataFrame:
    """Rows where IBO and strategy ``other`` both scored the clean model's maps: ``truth``,
    ``score`` (IBO), ``other``."""
    a = paired_rows(result, "clean", "deletion_ibo")
    b = paired_rows(result, "clean", f"deletion_{other}")
    return a.merge(
        b[["seed", "unit", "method", "score"]].rename(columns={"score": "other"}),
        on=["seed", "unit", "method"],
    )


def _mard_gap(method: np.ndarray, truth: np.ndarray, ibo: np.ndarray, other: np.ndarray):
    truth = method_means(method, truth)
    mard = [agreement(truth, method_means(method, s), False, "mard") for s in (other, ibo)]
    return mard[0] - mard[1]


#: MARD(other strategy) - MARD(IBO) against the truth's ranking, rows of :func:`ibo_vs`
MARD_GAP = ArrayStatistic(("method", "truth", "score", "other"), _mard_gap)


def tau_gap(higher_is_better: bool) -> ArrayStatistic:
    """tau(Clever Hans) - tau(clean) of one metric, rows of :func:`both_models_rows`."""

    def gap(method, truth, score, hans):
        taus = []
        for rows in (hans, ~hans):
            if not rows.any():
                return float("nan")
            means = [method_means(method[rows], v[rows]) for v in (truth, score)]
            taus.append(agreement(*means, higher_is_better))
        return taus[0] - taus[1]

    return ArrayStatistic(("method", "truth", "score", "hans"), gap)


def both_models_rows(result: Result, metric: str) -> pd.DataFrame:
    """:func:`paired_rows` of both trained models, ``hans`` True on the Clever-Hans model's rows
    and the units made distinct per model."""
    return pd.concat(
        [
            paired_rows(result, m, metric).assign(
                hans=m == "clever_hans", unit=lambda d, m=m: m + ":" + d["unit"].astype(str)
            )
            for m in TRAINED
        ],
        ignore_index=True,
    )
