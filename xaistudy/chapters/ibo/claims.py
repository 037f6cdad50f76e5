"""The ``ibo`` chapter's claims: the paper's findings (Tables 1, 2 and 9) and IBO's premise,
judged over the seeds, the tiles and the noise replicates (a tile's replicates stay together
in the bootstrap)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from xaistudy.chapters.ibo.paper import PAPER, PAPER_TABLE1_ORDER
from xaistudy.chapters.ibo.tables import METRIC_LABELS, signal_table
from xaistudy.evaluate import occlusion
from xaistudy.stats import ranking
from xaistudy.stats.claims import Claim, judge, order_agreement
from xaistudy.studies import ibo as study

SHARED_DDPM = "one DDPM, trained once on the first seed's normal tiles, serves every seed"


def _table1_closest(metric: str, strategies: Sequence[str], n_masks: int) -> Callable:
    """min over the other strategies and the masks of (their mean distance - IBO's); for SSIM
    (a similarity) IBO's minus theirs. > 0: IBO is the closest to the original everywhere."""
    code = {s: i for i, s in enumerate(strategies)}
    sign = -1.0 if metric == "ssim" else 1.0
    ibo = code["ibo"]

    def statistic(rows: pd.DataFrame) -> float:
        cell = rows["strategy"].map(code).to_numpy() * n_masks + rows["mask"].to_numpy() - 1
        means = study.code_means(cell, rows["value"].to_numpy(), len(strategies) * n_masks)
        means = means.reshape(len(strategies), n_masks)
        diff = sign * (np.delete(means, ibo, axis=0) - means[ibo])
        return float(np.nanmin(diff))

    return statistic


def _split_half_tau(n_methods: int) -> Callable:
    """Kendall tau between the IoU rankings of the even- and the odd-numbered tiles."""

    def statistic(rows: pd.DataFrame) -> float:
        units = rows["unit"].to_numpy().astype(np.uint64)
        half = ((units * np.uint64(0x9E3779B1)) >> np.uint64(11)) & np.uint64(1)  # a fixed hash
        m, v = rows["m"].to_numpy(), rows["value"].to_numpy()
        a, b = (study.code_means(m[half == h], v[half == h], n_methods) for h in (0, 1))
        if np.isnan(a).any() or np.isnan(b).any():
            return float("nan")
        return ranking.kendall_tau(ranking.rank(a, True), ranking.rank(b, True))

    return statistic


def claim_rows(st: study.Result) -> list[dict[str, object]]:
    """The paper's findings (Tables 1, 2 and 9) and IBO's premise, judged over the seeds, the
    tiles and the noise replicates (a tile's replicates stay together in the bootstrap)."""
    p, cite = st.params, PAPER.citation
    iou, auc = study.iou_rows(st), study.auc_rows(st)
    dist, gate = study.distance_rows(st), study.gate_rows(st)
    signal = signal_table(st, auc).set_index("strategy")
    common = dict(n_boot=p.n_boot, data_name=st.data_name, profile=st.profile)
    out = []

    held_out = gate[gate.source == "held-out normal tile"].groupby("seed")
    normal, normal_q95 = held_out.p_tumour.mean(), held_out.ood.quantile(0.95)
    samples, flat = gate[gate.source == "DDPM sample"], gate[gate.source == study.FLAT]
    out.append(
        judge(
            Claim(
                "premise.ddpm_samples_normal",
                cite,
                "Sec. 3 (DDPM of normal tissue)",
                "The DDPM trained on normal tissue generates normal tissue",
                "premise (no number)",
                "P(tumour) of a DDPM sample minus the mean P(tumour) of held-out normal tiles "
                "(per seed's classifier)",
                expect="<",
                null=0.1,
                kind="premise",
            ),
            samples.assign(value=samples.p_tumour - samples.seed.map(normal)),
            controls={"flat tiles": flat.assign(value=flat.p_tumour - flat.seed.map(normal))},
            shared_stages=SHARED_DDPM,
            **common,
        )
    )
    out.append(
        judge(
            Claim(
                "premise.ddpm_samples_in_distribution",
                cite,
                "Sec. 3 (DDPM of normal tissue)",
                "The DDPM's samples lie where normal tissue lies for the classifier",
                "premise (no number)",
                "OoD score of a DDPM sample minus the 95th percentile of the held-out normal "
                "tiles' scores (per seed's classifier; below 0: inside the normal range)",
                expect="<",
                kind="premise",
            ),
            samples.assign(value=samples.ood - samples.seed.map(normal_q95)),
            controls={"flat tiles": flat.assign(value=flat.ood - flat.seed.map(normal_q95))},
            shared_stages=SHARED_DDPM,
            **common,
        )
    )
    if "ibo" in st.strategies:
        sub = auc[auc.strategy == "ibo"]
        out.append(
            judge(
                Claim(
                    "premise.ibo_lowers_p_tumour",
                    cite,
                    "Sec. 3 / Fig. 6",
                    "Inpainting the highlighted regions with normal tissue lowers P(tumour)",
                    "premise (no number)",
                    "P(tumour) before minus after the last mask, IBO",
                    kind="premise",
                ),
                sub.assign(value=sub.p_before - sub.p_after),
                shared_stages=SHARED_DDPM,
                **common,
            )
        )

    if "ibo" in st.strategies and len(st.strategies) > 1:
        for metric in [m for m in METRIC_LABELS if m in set(dist.metric)]:
            rows = dist[dist.metric == metric]
            out.append(
                judge(
                    Claim(
                        f"table1.{metric}.ibo_closest",
                        cite,
                        "Table 1",
                        "IBO's occlusions are the closest to the original at every mask",
                        f"IBO {PAPER.number('table1.ibo.mask4')} vs Blurring "
                        f"{PAPER.number('table1.blurring.mask4')} at Mask_4 (LPIPS)",
                        f"{METRIC_LABELS[metric]}: smallest margin of IBO over any "
                        "other strategy at any mask",
                        statistic=_table1_closest(metric, st.strategies, st.n_masks),
                    ),
                    rows,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
            last = rows[rows["mask"] == st.n_masks]
            score = last.value if metric == "ssim" else -last.value
            out.append(
                judge(
                    Claim(
                        f"table1.{metric}.order",
                        cite,
                        "Table 1",
                        "Strategies ordered by distance to the original: "
                        + " < ".join(PAPER_TABLE1_ORDER),
                        "the order of the LPIPS column Mask_4",
                        f"{METRIC_LABELS[metric]}: Kendall tau of the strategies' order at "
                        f"Mask_{st.n_masks} with the paper's",
                        statistic=order_agreement(
                            [s for s in PAPER_TABLE1_ORDER if s in st.strategies], by="strategy"
                        ),
                    ),
                    last.assign(score=score),
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )

    ranked = study.ranking_rows(iou, auc, st.methods, st.strategies)
    gt = ranked[ranked.src == 0]
    out.append(
        judge(
            Claim(
                "table2.gt_ranking_stable",
                cite,
                "Table 2",
                "The IoU ranking of the methods is a ground truth (a stable order)",
                "one order from the test tiles",
                "Kendall tau between the IoU rankings of two disjoint halves of the tiles",
                statistic=_split_half_tau(len(st.methods)),
                kind="premise",
            ),
            gt,
            **common,
        )
    )

    if "ibo" in st.strategies:
        n, ibo = len(st.methods), st.strategies.index("ibo") + 1
        for i, s in enumerate(st.strategies):
            if s == "ibo":
                continue
            rows = ranked[ranked.src.isin([0, ibo, i + 1])]
            note = ""
            # a comparator whose occlusions do not move the classifier ranks nothing: IBO
            # cannot be closer to the truth than it in any sense the paper means
            silent = (
                ""
                if signal.loc[s, "carries_signal"]
                else f"{occlusion.STRATEGIES[s]} carries no signal (signal table): its "
                "occlusions do not change the classifier's output, so it ranks nothing"
            )
            out.append(
                judge(
                    Claim(
                        f"table9.mard.ibo_vs_{s}",
                        cite,
                        "Table 9",
                        "IBO's ranking is closer to the IoU ranking than "
                        f"{occlusion.STRATEGIES[s]}'s",
                        f"MARD {PAPER.number('table9.mard.ibo')} vs "
                        f"{PAPER.number(f'table9.mard.{s}')}",
                        f"MARD({occlusion.STRATEGIES[s]}) - MARD(IBO)",
                        statistic=study.difference_statistic(
                            study.agreement_statistic(i + 1, n), study.agreement_statistic(ibo, n)
                        ),
                        not_testable=silent,
                    ),
                    rows,
                    note=note,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
            out.append(
                judge(
                    Claim(
                        f"table9.rank_accuracy.ibo_vs_{s}",
                        cite,
                        "Sec. 4 (rank accuracy)",
                        f"IBO places more methods at their ground-truth rank than "
                        f"{occlusion.STRATEGIES[s]}",
                        f"{PAPER.number('rank_accuracy.ibo')} vs best other "
                        f"{PAPER.number('rank_accuracy.best_other')}",
                        f"rank accuracy(IBO) - rank accuracy({occlusion.STRATEGIES[s]})",
                        statistic=study.difference_statistic(
                            study.agreement_statistic(ibo, n, "rank_accuracy"),
                            study.agreement_statistic(i + 1, n, "rank_accuracy"),
                        ),
                        not_testable=silent,
                    ),
                    rows,
                    note=note,
                    shared_stages=SHARED_DDPM,
                    **common,
                )
            )
    return out
