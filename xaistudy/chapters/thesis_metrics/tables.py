"""The display tables of the ``thesis_metrics`` page, built from the study's result.

The page modules import only light libraries at module level (the chapter package imports them
when it is imported); the study and the metrics are imported where they are used.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from xaistudy.chapters.thesis_metrics.paper import CLASSES, PAPER, thesis_means, thesis_order
from xaistudy.chapters.thesis_metrics.text import data_text, order_text


def classification(res: Any) -> pd.DataFrame:
    """Per-class test accuracy (%) per seed, their mean, and the thesis's Table 4."""
    from xaistudy.studies.thesis_metrics import class_accuracy

    table = class_accuracy(res.runs)
    mean = {"seed": "mean over seeds", **table.drop(columns="seed").mean().to_dict()}
    paper = {
        "seed": "thesis (Table 4, DiagSet)",
        **{c: float(PAPER.number(f"table4.{c}")) for c in (*CLASSES, "average")},
        "n_test": int(PAPER.number("table1.test_per_class")) * len(CLASSES),
    }
    return pd.concat([table, pd.DataFrame([mean, paper])], ignore_index=True)


def models_table(res: Any) -> pd.DataFrame:
    """Parameters, best epochs and seconds of each seed's models."""
    return pd.DataFrame(
        [
            {
                "seed": r.seed,
                "CNN parameters": r.cnn_parameters,
                "CNN best epoch": r.cnn_best_epoch,
                "U-Net parameters": r.unet_parameters,
                "U-Net best epoch": r.unet_best_epoch,
                "U-Net best validation IoU": float(r.unet_history["val_acc"].max()),
                "seconds (0 when cached)": round(r.seconds, 1),
            }
            for r in res.runs
        ]
    )


def table6_wide(long: pd.DataFrame, ground_truth: str) -> pd.DataFrame:
    """Table 6 in the thesis's layout: metric x method rows, mask type x class columns."""
    from xaistudy.evaluate.quality import METRICS
    from xaistudy.studies.thesis_metrics import MASK_TYPES, METHODS

    if long.empty:
        return pd.DataFrame(columns=["metric", "method"])
    sel = long[long["ground_truth"] == ground_truth].copy()
    sel["metric"] = pd.Categorical(sel["metric"], list(METRICS))
    sel["method"] = pd.Categorical(sel["method"].map(METHODS), list(METHODS.values()))
    sel["mask_type"] = pd.Categorical(sel["mask_type"], MASK_TYPES)
    sel["class"] = pd.Categorical(sel["class"], CLASSES)
    wide = sel.pivot_table(
        index=["metric", "method"], columns=["mask_type", "class"], values="mean", observed=True
    )
    wide.columns = [f"{mt} {c}" for mt, c in wide.columns]
    return wide.reset_index()


def paper_vs_book(res: Any) -> pd.DataFrame:
    """Per metric: the thesis's class-averaged tumour-mask ordering (Table 6) beside this
    run's (reading ``average``, each ground truth), with the data and profile."""
    from xaistudy.evaluate.quality import METRIC_LABELS, METRICS
    from xaistudy.studies.thesis_metrics import headline

    params = res.params
    paper = thesis_means("tumour")
    sel = headline(res.scores, params, mask_type="tumour")
    rows = []
    for metric in METRICS:
        row = {
            "metric": METRIC_LABELS[metric],
            "thesis (DiagSet, U-Net masks, Table 6 class means)": order_text(
                paper.loc[metric].to_dict()
            ),
        }
        for gt, g in sel.groupby("ground_truth", sort=False):
            row[f"this book, {gt} masks ({params.average})"] = order_text(
                g.groupby("method")[metric].mean().to_dict()
            )
        row["data"] = data_text(params)
        rows.append(row)
    return pd.DataFrame(rows)


def readings(res: Any) -> pd.DataFrame:
    """The lesson on averaging: per reading and metric (tumour mask, U-Net masks), this run's
    method ordering and its Kendall tau with the thesis's ordering, pooled and per seed."""
    from xaistudy.evaluate.quality import METRIC_LABELS, METRICS, READINGS
    from xaistudy.studies.thesis_metrics import kept, order_tau

    scores = res.scores
    sel = kept(
        scores[(scores["mask_type"] == "tumour") & (scores["ground_truth"] == "U-Net")],
        res.params,
    )
    rows = []
    for reading in READINGS:
        r = sel[sel["reading"] == reading]
        for metric in METRICS:
            order = thesis_order(metric)
            means = r.groupby("method")[metric].mean()
            per_seed = [
                order_tau(order, g.groupby("method")[metric].mean()) for _, g in r.groupby("seed")
            ]
            rows.append(
                {
                    "reading": reading,
                    "metric": METRIC_LABELS[metric],
                    "this run's ordering": order_text(means.to_dict()),
                    "tau with the thesis's ordering": order_tau(order, means),
                    "tau per seed": ", ".join(f"{t:.2f}" for t in per_seed),
                }
            )
    return pd.DataFrame(rows)


def all_tables(res: Any) -> dict[str, pd.DataFrame]:
    """Every table of the page by the name it is saved under."""
    from xaistudy.studies import thesis_metrics as study

    params, runs, scores = res.params, res.runs, res.scores
    long6 = study.table6(scores, params)
    return {
        "paper_vs_book_settings": PAPER.settings_table(params),
        "dataset": runs[0].table1,
        "classification": classification(res),
        "models": models_table(res),
        "segmentation": study.segmentation(runs, params),
        "coverage": study.coverage(runs, params),
        "empty_masks": study.empty_mask_counts(scores),
        "table6": long6,
        **{
            f"table6_{gt.lower().replace('-', '')}": table6_wide(long6, gt)
            for gt in study.ground_truths(params)
        },
        "paper_vs_book": paper_vs_book(res),
        "readings": readings(res),
        "tendencies": study.tendency_counts(runs, params),
        "ground_truth_effect": study.ground_truth_effect(scores, params),
    }
