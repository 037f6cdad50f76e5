"""The ``ibo`` chapter's claims: the paper's findings (Tables 1, 2 and 9, and the abstract's two
magnitudes) and IBO's premise, judged over the seeds, the tiles and the noise replicates (a
tile's replicates stay together in the bootstrap). Quotes: :data:`.paper.QUOTES`."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd

from xaistudy.chapters.ibo import paper
from xaistudy.chapters.ibo.paper import IMPROVEMENT_BASELINE, PAPER, QUOTES
from xaistudy.chapters.ibo.statistics import (
    improvement_statistic,
    split_half_tau,
    table1_closest,
    table1_order_margin,
)
from xaistudy.chapters.ibo.tables import METRIC_LABELS, signal_table
from xaistudy.evaluate import occlusion
from xaistudy.stats.claims import Claim, judge
from xaistudy.studies import ibo as study

SHARED_DDPM = "one DDPM, trained once on the first seed's normal tiles, serves every seed"


def _claim(cid: str, source: str, statement: str, paper_value: str, quantity: str, **kw) -> Claim:
    """A claim of the paper, quoting :data:`.paper.QUOTES` unless given a ``quote``; a claim
    without a control compares the strategies (:data:`.paper.COMPARATORS`)."""
    kw.setdefault("quote", QUOTES.get(cid, ""))
    kw.setdefault("no_control", paper.COMPARATORS)
    return Claim(cid, PAPER.citation, source, statement, paper_value, quantity, **kw)


def _silent(signal: pd.DataFrame, s: str, what: str) -> str:
    """The not-testable reason when strategy ``s`` carries no signal (else "")."""
    why = "carries no signal (signal table): its occlusions do not change the classifier's output"
    return "" if signal.loc[s, "carries_signal"] else f"{occlusion.STRATEGIES[s]} {why}, so {what}"


def claim_rows(st: study.Result) -> list[dict[str, object]]:
    """The paper's findings (Tables 1, 2 and 9) and IBO's premise, judged over the seeds, the
    tiles and the noise replicates (a tile's replicates stay together in the bootstrap)."""
    iou, auc = study.iou_rows(st), study.auc_rows(st)
    dist, gate = study.distance_rows(st), study.gate_rows(st)
    signal = signal_table(st, auc).set_index("strategy")
    common = dict(n_boot=st.params.n_boot, data_name=st.data_name, profile=st.profile)
    out: list[dict[str, object]] = []

    def add(claim: Claim, rows: pd.DataFrame, **kw) -> None:
        out.append(judge(claim, rows, **{"shared_stages": SHARED_DDPM, **common, **kw}))

    def premise(cid: str, statement: str, quantity: str, **kw) -> Claim:
        source = "Sec. 3 (DDPM of normal tissue)" if ".ddpm_" in cid else "Sec. 3 / Fig. 6"
        return _claim(cid, source, statement, "premise (no number)", quantity, kind="premise", **kw)

    held_out = gate[gate.source == "held-out normal tile"].groupby("seed")
    normal, normal_q95 = held_out.p_tumour.mean(), held_out.ood.quantile(0.95)
    samples, flat = gate[gate.source == "DDPM sample"], gate[gate.source == study.FLAT]
    add(
        premise(
            "premise.ddpm_samples_normal",
            "The DDPM trained on normal tissue generates normal tissue",
            "P(tumour) of a DDPM sample minus the mean P(tumour) of held-out normal tiles "
            "(per seed's classifier)",
            expect="<",
            null=0.1,
        ),
        samples.assign(value=samples.p_tumour - samples.seed.map(normal)),
        controls={"flat tiles": flat.assign(value=flat.p_tumour - flat.seed.map(normal))},
    )
    add(
        premise(
            "premise.ddpm_samples_in_distribution",
            "The DDPM's samples lie where normal tissue lies for the classifier",
            "OoD score of a DDPM sample minus the 95th percentile of the held-out normal "
            "tiles' scores (per seed's classifier; below 0: inside the normal range)",
            expect="<",
        ),
        samples.assign(value=samples.ood - samples.seed.map(normal_q95)),
        controls={"flat tiles": flat.assign(value=flat.ood - flat.seed.map(normal_q95))},
    )
    if "ibo" in st.strategies:
        sub, ctl = auc[auc.strategy == "ibo"], study.premise_control_rows(st)
        add(
            premise(
                "premise.ibo_lowers_p_tumour",
                "Inpainting the highlighted regions with normal tissue lowers P(tumour)",
                "P(tumour) before minus after the last mask, IBO (every method and replicate)",
            ),
            sub.assign(value=sub.p_before - sub.p_after),
            controls={study.PREMISE_CONTROL: ctl.assign(value=ctl.p_before - ctl.p_after)},
        )
        # the same tile, method and area: the heatmap's region against a random one
        drop = sub.assign(value=sub.p_before - sub.p_after).groupby(["seed", "unit", "method"])
        paired = ctl.join(drop["value"].mean(), on=["seed", "unit", "method"])
        add(
            premise(
                "premise.heatmap_region_matters",
                "Inpainting the highlighted region lowers P(tumour) more than inpainting a "
                "random region of the same area",
                "P(tumour) drop after IBO on the last mask minus the drop after IBO on a "
                "random region of its area (same tile and method, mean over replicates)",
                no_control="the random region of the same area is the comparator",
            ),
            paired.assign(value=paired.value - (paired.p_before - paired.p_after)),
        )

    if "ibo" in st.strategies and len(st.strategies) > 1:
        for metric in [m for m in METRIC_LABELS if m in set(dist.metric)]:
            rows = dist[dist.metric == metric]
            add(
                _claim(
                    f"table1.{metric}.ibo_closest",
                    "Table 1",
                    "IBO's occlusions are the closest to the original at every mask",
                    f"IBO {paper.lpips('ibo', 4)} vs Blurring {paper.lpips('blurring', 4)} "
                    "at Mask_4 (LPIPS)",
                    f"{METRIC_LABELS[metric]}: smallest margin of IBO over any "
                    "other strategy at any mask",
                    statistic=table1_closest(metric, st.strategies, st.n_masks),
                    quote=paper.table1_quote(),
                ),
                rows,
            )
            add(
                _claim(
                    f"table1.{metric}.order",
                    "Table 1",
                    "Strategies ordered by distance to the original as Table 1 orders them at "
                    f"every mask: {paper.table1_tiers_text()} (Mean and NLI swap between masks, "
                    "so that pair is not tested)",
                    "the order of Table 1's LPIPS at every mask (Mask_1-4)",
                    f"{METRIC_LABELS[metric]} at Mask_{st.n_masks}: smallest adjacent-pair margin, "
                    "the min over the consecutive steps (a, b) of that order of b's mean minus "
                    "a's (SSIM, a similarity: a's minus b's); > 0: every step holds",
                    statistic=table1_order_margin(metric, st.strategies),
                    quote=paper.table1_quote(order=True),
                ),
                rows[rows["mask"] == st.n_masks],
            )
        if IMPROVEMENT_BASELINE in st.strategies and len(st.strategies) > 2:
            # the abstract's "nearly twice", on LPIPS or (no AlexNet weights) its substitute: not
            # LPIPS on another linear scale, so only LPIPS meets the paper's number
            metric = "lpips_alex" if st.have_alex else "feature_lpips"
            rows, base = dist[dist.metric == metric], occlusion.STRATEGIES[IMPROVEMENT_BASELINE]
            same_scale = st.have_alex and st.n_masks == paper.PAPER_TABLE1_MASKS
            note = "" if same_scale else "not LPIPS over Mask_1-4: no magnitude verdict"
            add(
                _claim(
                    f"table1.{metric}.improvement_ratio",
                    "Abstract / Table 1",
                    "IBO's improvement in LPIPS is nearly twice the best other strategy's",
                    paper.improvement_text(),
                    f"{METRIC_LABELS[metric]}, tiles and masks pooled: ({base} − IBO) / ({base} − "
                    "the closest other strategy): IBO's improvement over the best other's",
                    null=1.0,
                    statistic=improvement_statistic(st.strategies),
                    no_control="the null 1 is the best other strategy's own improvement, "
                    "measured on the same tiles and masks",
                    quote=QUOTES["table1.improvement_ratio"],
                    paper_estimate=paper.paper_improvement_ratio() if same_scale else None,
                ),
                rows.assign(code=rows.strategy.map({s: i for i, s in enumerate(st.strategies)})),
                note=note,
            )

    ranked = study.ranking_rows(iou, auc, st.methods, st.strategies)
    add(
        _claim(
            "table2.gt_ranking_stable",
            "Sect. 4.3 / Table 2 (IoU ranking taken as the ground truth)",
            "The IoU ranking of the methods is a ground truth (a stable order)",
            "one order from the test tiles",
            "Kendall tau between the IoU rankings of two disjoint halves of the tiles",
            statistic=split_half_tau(len(st.methods)),
            kind="premise",
        ),
        gt := ranked[ranked.src == 0],  # the IoU rows, in the order of ``iou``
        # the null: the coverage-matched maps' IoUs (a stable order from coverage alone)
        controls={"coverage-matched maps": gt.assign(value=iou.iou_shuffled.values)},
        shared_stages="",
    )
    if "ibo" in st.strategies:
        _table9(st, ranked, signal, add)
    return out


def _table9(st: study.Result, ranked: pd.DataFrame, signal: pd.DataFrame, add) -> None:
    """Table 9 (IBO against each strategy: MARD, rank accuracy), IBO's rank accuracy against a
    ranking with no information (1/n) and its lead over the best other strategy."""
    n, ibo = len(st.methods), st.strategies.index("ibo") + 1
    ibo_ra = study.agreement_statistic(ibo, n, "rank_accuracy")
    ra = (PAPER.number("rank_accuracy.ibo"), PAPER.number("rank_accuracy.best_other"))
    for i, s in enumerate(st.strategies):
        if s == "ibo":
            continue
        rows, label = ranked[ranked.src.isin([0, ibo, i + 1])], occlusion.STRATEGIES[s]
        # a silent comparator ranks nothing: IBO cannot beat it in any sense the paper means
        silent = _silent(signal, s, "it ranks nothing")
        add(
            _claim(
                f"table9.mard.ibo_vs_{s}",
                "Table 9",
                f"IBO's ranking is closer to the IoU ranking than {label}'s",
                f"MARD {PAPER.number('table9.mard.ibo')} vs {PAPER.number(f'table9.mard.{s}')}",
                f"MARD({label}) - MARD(IBO)",
                statistic=study.difference_statistic(
                    study.agreement_statistic(i + 1, n), study.agreement_statistic(ibo, n)
                ),
                not_testable=silent,
                quote=paper.mard_quote(s),
            ),
            rows,
        )
        add(
            _claim(
                f"table9.rank_accuracy.ibo_vs_{s}",
                "Sec. 4 (rank accuracy)",
                f"IBO places more methods at their ground-truth rank than {label}",
                f"{ra[0]} vs best other {ra[1]}",
                f"rank accuracy(IBO) - rank accuracy({label})",
                statistic=study.difference_statistic(
                    ibo_ra, study.agreement_statistic(i + 1, n, "rank_accuracy")
                ),
                not_testable=silent,
                quote=QUOTES["table9.rank_accuracy.ibo_vs"],
            ),
            rows,
        )

    # the paper's rank accuracies are shares of its 7 methods; another count, another scale
    same_scale = n == Fraction(ra[0].split()[0]).denominator
    ibo_silent = _silent(signal, "ibo", "its ranking of the methods is chance")
    add(
        _claim(
            "table9.rank_accuracy.ibo_level",
            "Sect. 4.3 (rank accuracy)",
            "IBO places most of the methods at their IoU rank",
            ra[0],
            f"rank accuracy of IBO's deletion-AUC ranking against the IoU ranking "
            f"({n} methods; null 1/{n}: what a ranking with no information scores)",
            null=1 / n,
            statistic=ibo_ra,
            not_testable=ibo_silent,
            no_control=f"the null 1/{n} is the expected rank accuracy of a random order",
            paper_estimate=paper.paper_value("rank_accuracy.ibo") if same_scale else None,
        ),
        ranked[ranked.src.isin([0, ibo])],
    )
    others = [1 + i for i, s in enumerate(st.strategies) if s != "ibo" and signal.carries_signal[s]]
    alone = [study.agreement_statistic(src, n, "rank_accuracy") for src in others]
    lead = paper.paper_value("rank_accuracy.ibo") - paper.paper_value("rank_accuracy.best_other")
    add(
        _claim(
            "table9.rank_accuracy.ibo_vs_best_other",
            "Abstract / Sect. 4.3 (rank accuracy)",
            "IBO's rank accuracy exceeds the best other strategy's",
            f"{ra[0]} vs best other {ra[1]}",
            "rank accuracy(IBO) − the largest rank accuracy of the other strategies that "
            "carry a signal (signal table)",
            statistic=lambda rows: ibo_ra(rows) - max(fn(rows) for fn in alone),
            not_testable=ibo_silent
            or ("" if others else "no other strategy carries a signal (signal table)"),
            no_control="the comparison is with the best alternative itself",
            paper_estimate=lead if same_scale else None,
        ),
        ranked[ranked.src.isin([0, ibo, *others])],
    )
