"""The chapter's tables: what each metric is, the models, the shortcut check, the interventions,
the truth's ranking, every metric's agreement with it and the mean scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaistudy.evaluate import shortcut_check
from xaistudy.explain import relevance
from xaistudy.studies import ibo as ibo_study
from xaistudy.studies import meta_evaluation as study

from .paper import citation

#: the shortcut check's baseline that sees only what lies outside the evidence mask
OUTSIDE = "outside-mask colour"


def method_label(name: str) -> str:
    """A method's label in the tables and figures: the CAMs' (relevance CAMs included) from
    :data:`xaistudy.explain.relevance.LABELS`, the others' from the method registry."""
    return relevance.LABELS.get(name) or ibo_study.method_label(name)


def metrics_table() -> pd.DataFrame:
    """Every metric: its paper, the chapter that uses it, the function, direction, reference."""
    return pd.DataFrame(
        [
            {
                "metric": m.label,
                "paper": citation(m.paper_chapter),
                "chapter": m.chapter,
                "computed by": m.function,
                "direction": m.direction,
                "compares the map with": m.reads,
            }
            for m in study.METRICS.values()
        ]
    )


def models_table(result: study.Result) -> pd.DataFrame:
    """Per model: what it learns, its test accuracy and the tiles it explains (mean over seeds)."""
    rows = []
    for name, what in study.MODELS.items():
        tiles = [r.tiles_of(name) for r in result.runs]
        acc = [r.accuracy.get(name, np.nan) for r in result.runs]
        trained = name in study.TRAINED
        rows.append(
            {
                "model": name,
                "what it learns": what,
                "evidence": study.EVIDENCE[name],
                "test accuracy": float(np.mean(acc)) if trained else np.nan,
                "tiles explained per seed": int(np.mean([len(t.index) for t in tiles])),
                "of them assigned to the target class": int(np.mean([t.correct for t in tiles]))
                if trained
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def shortcut_table(result: study.Result) -> pd.DataFrame:
    """The data chapter's shortcut check on these tiles, its baseline that reads only the
    pixels outside the tumour mask: at chance, the outside carries no class evidence."""
    table = shortcut_check.accuracy_table(
        result.shortcut[result.shortcut["method"] == OUTSIDE], n_boot=result.params.n_boot
    )
    return table.drop(columns=["dataset"], errors="ignore")


def truth_table(result: study.Result) -> pd.DataFrame:
    """The ground-truth ranking: the truth score of every method per trained model (mean over
    tiles and seeds, 95 % interval) and its rank."""
    table = study.truth_summary(result)
    return table.assign(method=table["method"].map(method_label))


def agreement_table(result: study.Result) -> pd.DataFrame:
    """The chapter's answer, as numbers: per metric (its label, paper and what it compares a map
    with), :func:`xaistudy.studies.meta_evaluation.agreement_numbers`."""
    numbers = study.agreement_numbers(result)
    metrics = [study.METRICS[k] for k in numbers["key"]]
    about = pd.DataFrame(
        {
            "metric": [m.label for m in metrics],
            "paper": [citation(m.paper_chapter) for m in metrics],
            "reads": [m.reads for m in metrics],
        }
    )
    values = numbers.drop(columns="key")
    return pd.concat([about, values, numbers[["key"]]], axis=1)


def agreement_view(table: pd.DataFrame) -> pd.DataFrame:
    """The agreement table as the book shows it: estimates with their intervals in one cell."""

    def cell(row, col, digits=2):
        est, low, high = row[col], row[f"{col} low"], row[f"{col} high"]
        if not np.isfinite(est):
            return "—"
        return f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    view = pd.DataFrame({"metric": table["metric"], "paper": table["paper"]})
    for model in study.TRAINED:
        view[f"τ, {model}"] = [cell(r, f"tau {model}") for _, r in table.iterrows()]
        view[f"MARD, {model}"] = [cell(r, f"mard {model}") for _, r in table.iterrows()]
    view["beats randomised"] = [cell(r, "beats randomised") for _, r in table.iterrows()]
    view["compares with"] = table["reads"]
    return view


def scores_table(result: study.Result, model: str = "clean") -> pd.DataFrame:
    """Mean of every metric per method for ``model`` (rows: metrics, columns: methods)."""
    wide = study.mean_scores(result, model)
    metrics = study.METRICS
    wide.index = [metrics[k].label if k in metrics else k for k in wide.index]
    wide.columns = [method_label(c) for c in wide.columns]
    return wide.reset_index(names="metric")


def all_tables(result: study.Result) -> dict[str, pd.DataFrame]:
    """Every table of ``result`` by its saved name."""
    agreement = agreement_table(result)
    return {
        "metrics": metrics_table(),
        "models": models_table(result),
        "shortcut_check": shortcut_table(result),
        "interventions": study.intervention_summary(result),
        "truth_ranking": truth_table(result),
        "metric_agreement_numbers": agreement,
        "metric_agreement": agreement_view(agreement),
        "scores_clean": scores_table(result, "clean"),
    }
