"""A paper's findings as data, and verdicts computed from the run's own numbers.

A :class:`Claim` names the finding (table or figure, the paper's number or ordering, quoted as
the paper's), the quantity this run measures for it and the side of a null value the paper's
finding lies on. :func:`judge` computes the verdict from the run's measurements, a tidy table
with one row per measured unit (a tile, a patient, a pair of maps) and seed:

- the estimate is the claim's statistic (default: the mean of ``value``, e.g. a per-tile paired
  difference ``score(A) - score(B)``), averaged over the seeds when there are several;
- its 95 % interval and p-value are calibrated over trained models
  (:func:`xaistudy.stats.verdicts.interval`: the union of a t-interval over the per-seed
  estimates and the bootstrap over seeds and units);
- the claim's **null controls** (the same measurement where the paper's mechanism is absent)
  are judged alone and against the claim; **reproduced** / **contradicted** only when the
  interval lies on one side of the null and the contrast with every control on that side,
  **uninformative** when a control alone reaches the verdict, **inconclusive** otherwise, and
  **not testable here** when the run cannot measure the quantity (the claim says why);
- :func:`claims_table` adjusts the chapter's p-values with Holm's method: a definite verdict
  that does not survive the adjustment is inconclusive.

The same rule runs once per seed (that seed's units only), so a table shows whether the seeds
agree. No verdict is ever typed: change the numbers and the verdict changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from xaistudy.stats.bootstrap import percentile_interval, resamples
from xaistudy.stats.ranking import kendall_tau
from xaistudy.stats.verdicts import (  # noqa: F401 (the verdict names, re-exported)
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    REPRODUCED,
    UNINFORMATIVE,
    VERDICTS,
    ArrayStatistic,
    Statistic,
    adjust_family,
    contrast,
    interval,
    mean_value,
    verdict_with_controls,
)

#: the columns every claims table has, in this order (``claims.csv``)
COLUMNS = (
    "claim_id",
    "kind",
    "paper_value",
    "book_value",
    "ci_low",
    "ci_high",
    "seeds",
    "verdict",
    "paper_estimate",
    "magnitude_verdict",
    "p_value",
    "p_adjusted",
    "controls",
    "control_value",
    "control_ci_low",
    "control_ci_high",
    "control_verdict",
    "seed_verdicts",
    "seeds_agree",
    "n_units",
    "interval",
    "paper",
    "source",
    "quote",
    "statement",
    "quantity",
    "expected",
    "note",
    "shared_stages",
    "data",
    "profile",
)


#: what a claim is: a finding of the paper, a premise its method rests on, a demonstration of
#: the book's own, or an implementation check (a property that holds by the algorithm's
#: construction, so its verdict tests the code, not the paper)
KINDS = ("finding", "premise", "demonstration", "implementation check")


@dataclass(frozen=True)
class Claim:
    """One finding of a paper, and how this run tests it.

    ``quantity`` says what the statistic measures and its sign convention; ``expect`` is the
    side of ``null`` on which the paper's finding lies (``">"``: the paper says the quantity is
    above ``null``). ``not_testable`` gives the reason when this run cannot test the finding.
    ``hypothesis`` is the book's own explanation, printed labelled as a hypothesis.
    """

    id: str
    paper: str
    source: str
    statement: str
    paper_value: str
    quantity: str
    expect: Literal[">", "<"] = ">"
    null: float = 0.0
    statistic: Statistic = mean_value
    not_testable: str = ""
    hypothesis: str = ""
    #: why no null control applies (a runtime, a self-check of the generator…); a claim with
    #: neither controls in :func:`judge` nor this reason says "none given"
    no_control: str = ""
    #: :data:`KINDS`; only findings are the paper's results
    kind: str = "finding"
    #: the paper's own words or table cell the claim stands for
    quote: str = ""
    #: the paper's number for the same quantity, when it gives one: the magnitude verdict says
    #: whether it lies inside, below or above this run's interval
    paper_estimate: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {', '.join(KINDS)}")
        if self.expect not in (">", "<"):
            raise ValueError(f"claim {self.id}: expect must be '>' or '<', not {self.expect!r}")
        if not self.id or any(c.isspace() for c in self.id):
            raise ValueError(f"claim id {self.id!r} must be a non-empty word")


def verdict_of(low: float, high: float, expect: str, null: float = 0.0) -> str:
    """The verdict of an interval [low, high] for a claim that the quantity is ``expect`` null."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if low > null:
        return REPRODUCED if expect == ">" else CONTRADICTED
    if high < null:
        return CONTRADICTED if expect == ">" else REPRODUCED
    return INCONCLUSIVE


def bootstrap_interval(
    data: pd.DataFrame,
    statistic: Statistic = mean_value,
    *,
    unit: str = "unit",
    seed_column: str = "seed",
    n_boot: int = 2000,
    level: float = 0.95,
    rng_seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high): ``statistic`` with a percentile interval over the book's bootstrap
    (:func:`xaistudy.stats.bootstrap.resamples`: seeds, then units within each drawn seed)."""
    data = data.reset_index(drop=True)
    if data.empty:
        return float("nan"), float("nan"), float("nan")
    estimate = float(statistic(data))
    values = data["value"].to_numpy(float) if statistic is mean_value else None
    arrays = (
        [data[c].to_numpy() for c in statistic.columns]
        if isinstance(statistic, ArrayStatistic)
        else None
    )
    stats = np.empty(n_boot)
    draws = resamples(data, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=rng_seed)
    for b, index in enumerate(draws):
        if values is not None:
            stats[b] = values[index].mean()
        elif arrays is not None:
            stats[b] = statistic.fn(*(a[index] for a in arrays))
        else:
            stats[b] = statistic(data.iloc[index])
    low, high = percentile_interval(stats, level)
    return estimate, low, high


def magnitude_verdict(paper_estimate: float | None, low: float, high: float) -> str:
    """Where the paper's number lies against this run's interval: ``inside``, ``below`` or
    ``above`` it; empty when the paper gives no number or the run no interval."""
    if paper_estimate is None or not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if paper_estimate < low:
        return "below"
    if paper_estimate > high:
        return "above"
    return "inside"


def _joined(values: list[str]) -> str:
    return "; ".join(values)


def _num(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else "nan"


def judge(
    claim: Claim,
    data: pd.DataFrame | None,
    *,
    controls: Mapping[str, pd.DataFrame | None] | None = None,
    unit: str = "unit",
    n_boot: int = 2000,
    level: float = 0.95,
    note: str = "",
    shared_stages: str = "",
    data_name: str = "",
    profile: str = "",
) -> dict[str, object]:
    """The verdict on ``claim`` from ``data`` (columns ``seed``, ``unit`` and what the statistic
    reads), as one row of a claims table (:data:`COLUMNS`).

    ``controls`` maps a name to the same measurement where the paper's mechanism is absent
    (same columns, same seeds, ideally the same units): each is judged alone and against the
    claim, and the verdict follows :func:`xaistudy.stats.verdicts.verdict_with_controls`.
    The p-value is adjusted over the chapter's family by :func:`claims_table`.
    """
    controls = {k: v for k, v in (controls or {}).items() if v is not None and len(v)}
    row: dict[str, object] = {
        "claim_id": claim.id,
        "kind": claim.kind,
        "quote": claim.quote,
        "paper_estimate": np.nan if claim.paper_estimate is None else claim.paper_estimate,
        "magnitude_verdict": "",
        "paper_value": claim.paper_value,
        "paper": claim.paper,
        "source": claim.source,
        "statement": claim.statement,
        "quantity": claim.quantity,
        "expected": f"{claim.expect} {claim.null:g}",
        "shared_stages": shared_stages,
        "data": data_name,
        "profile": profile,
        "controls": _joined(list(controls)) or f"none: {claim.no_control or 'none given'}",
        "control_value": "",
        "control_ci_low": "",
        "control_ci_high": "",
        "control_verdict": "",
        "p_adjusted": np.nan,
    }
    notes = [
        n
        for n in (note, f"hypothesis (the book's): {claim.hypothesis}" if claim.hypothesis else "")
        if n
    ]
    if claim.not_testable or data is None or len(data) == 0:
        reason = claim.not_testable or "this run measured nothing for it"
        if not controls and not claim.no_control:  # no measurement: no control to compare
            row["controls"] = "none: not testable here"
        row.update(
            book_value=np.nan,
            ci_low=np.nan,
            ci_high=np.nan,
            p_value=np.nan,
            seeds="",
            verdict=NOT_TESTABLE,
            seed_verdicts="",
            seeds_agree=np.nan,
            n_units=0,
            interval="",
            note="; ".join([reason, *notes]),
        )
        return {c: row[c] for c in COLUMNS}
    for name, rows in {"measurements": data, **controls}.items():
        missing = {"seed", unit} - set(rows.columns)
        if missing:
            raise ValueError(f"claim {claim.id}: {name} lack column(s) {sorted(missing)}")
    data = data.reset_index(drop=True)
    kw = dict(unit=unit, n_boot=n_boot, level=level)
    main = interval(data, claim.statistic, null=claim.null, **kw)
    judged = {
        name: (
            interval(rows, claim.statistic, null=claim.null, **kw),
            contrast(data, rows, claim.statistic, **kw),
        )
        for name, rows in controls.items()
    }
    verdict, why = verdict_with_controls(main, claim.expect, claim.null, judged)
    if main.n_units < 2:  # one unit resamples to itself: no interval, no verdict
        verdict = INCONCLUSIVE
        notes.insert(0, "one unit only: no interval, no verdict")
    elif why:
        notes.insert(0, why)
    per_seed = []
    for s, rows in data.groupby("seed", sort=True):
        alone = interval(
            rows, claim.statistic, null=claim.null, **{**kw, "n_boot": max(200, n_boot // 2)}
        )
        per_seed.append((s, verdict_with_controls(alone, claim.expect, claim.null, {})[0]))
    alone_rows = [(name, a) for name, (a, _) in judged.items()]
    row.update(
        book_value=main.estimate,
        ci_low=main.low,
        ci_high=main.high,
        magnitude_verdict=magnitude_verdict(claim.paper_estimate, main.low, main.high),
        p_value=main.p_value,
        seeds=" ".join(str(s) for s, _ in per_seed),
        verdict=verdict,
        seed_verdicts="; ".join(f"{s}: {v}" for s, v in per_seed),
        seeds_agree=len({v for _, v in per_seed}) == 1,
        n_units=main.n_units,
        interval=main.method,
        control_value=_joined([_num(a.estimate) for _, a in alone_rows]),
        control_ci_low=_joined([_num(a.low) for _, a in alone_rows]),
        control_ci_high=_joined([_num(a.high) for _, a in alone_rows]),
        control_verdict=_joined(
            [
                f"{n}: {verdict_with_controls(a, claim.expect, claim.null, {})[0]}"
                for n, a in alone_rows
            ]
        ),
        note="; ".join(notes),
    )
    return {c: row[c] for c in COLUMNS}


def claims_table(rows: Iterable[dict[str, object]]) -> pd.DataFrame:
    """A chapter's claims table (columns :data:`COLUMNS`) from :func:`judge` rows, the p-values
    Holm-adjusted over the chapter's family (:func:`xaistudy.stats.verdicts.adjust_family`)."""
    table = pd.DataFrame(list(rows), columns=list(COLUMNS))
    if table.empty:
        return table
    return adjust_family(table)[list(COLUMNS)]


def paired_difference(
    scores: pd.DataFrame,
    a: str,
    b: str,
    *,
    by: str = "method",
    value: str = "score",
    unit: str = "unit",
) -> pd.DataFrame:
    """Per seed and unit, ``value`` of ``by == a`` minus that of ``by == b`` (rows: seed, unit,
    value); units missing either side are dropped."""
    keys = ["seed", unit]
    wide = scores[scores[by].isin([a, b])].pivot_table(
        index=keys, columns=by, values=value, aggfunc="mean"
    )
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=[*keys, "value"])
    diff = (wide[a] - wide[b]).dropna().rename("value").reset_index()
    return diff


def _code_means(code: np.ndarray, value: np.ndarray) -> np.ndarray:
    code = code.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(code, value) / np.bincount(code)
    return means[np.isfinite(means)]


def _extreme(pick):
    def statistic(code: np.ndarray, value: np.ndarray) -> float:
        means = _code_means(code, value)
        return float(pick(means)) if means.size else float("nan")

    return statistic


#: rows with one ``code`` per comparison "a − b" and its ``value``: the smallest mean over the
#: comparisons (> 0: ``a`` beats every ``b``, e.g. the best baseline, not the weakest)
worst_margin = ArrayStatistic(("code", "value"), _extreme(np.min))
#: the largest mean over the comparisons (< 0: ``a`` is below every ``b``)
best_margin = ArrayStatistic(("code", "value"), _extreme(np.max))


def order_agreement(order: Sequence[str], *, by: str = "method", value: str = "score") -> Statistic:
    """A statistic: Kendall's tau between the paper's ``order`` (best first) and the order of
    the mean ``value`` per ``by`` in the rows (higher mean = better). 1: the same order."""
    ranks = {name: len(order) - i for i, name in enumerate(order)}

    def statistic(rows: pd.DataFrame) -> float:
        means = rows.groupby(by)[value].mean()
        names = [n for n in order if n in means.index]
        if len(names) < 2:
            return float("nan")
        return kendall_tau([ranks[n] for n in names], [means[n] for n in names])

    return statistic


def scorecard(chapters_dir: str | Path, chapters: Sequence[str] | None = None) -> pd.DataFrame:
    """Every chapter's ``tables/claims.csv`` under ``chapters_dir``, one table with a chapter
    column (chapters in the given order, else alphabetical); empty when none was run."""
    root = Path(chapters_dir)
    if chapters is not None:
        names = list(chapters)
    else:
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    frames = []
    for name in names:
        path = root / name / "tables" / "claims.csv"
        if path.exists():
            table = pd.read_csv(path, keep_default_na=False, na_values=[""])
            table.insert(0, "chapter", name)
            frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["chapter", *COLUMNS])
    return pd.concat(frames, ignore_index=True)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Claims per chapter and verdict (every verdict a column, zeros included)."""
    if table.empty:
        return pd.DataFrame(columns=["chapter", *VERDICTS, "total"])
    counts = pd.crosstab(table["chapter"], table["verdict"]).reindex(
        columns=list(VERDICTS), fill_value=0
    )
    counts["total"] = counts.sum(axis=1)
    return counts.reset_index()


#: one colour per verdict, shared by every figure and table of the book
_BOOK_AUTHORS = ("the book", "this book")


def self_checks(table: pd.DataFrame) -> pd.Series:
    """Which rows of ``table`` are the book's self-checks, not a paper's claims: implementation
    checks whose ``paper`` is the book itself (the ``data`` chapter's generator checks)."""
    if table.empty or "kind" not in table:
        return pd.Series(False, index=table.index, dtype=bool)
    author = table["paper"].fillna("").astype(str).str.lower() if "paper" in table else ""
    own = author.str.startswith(_BOOK_AUTHORS) if "paper" in table else False
    return (table["kind"] == "implementation check") & own


def save_claims(table: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``table`` as ``<out_dir>/tables/claims.csv`` (atomically)."""
    from xaistudy.core.store import atomic_write

    path = Path(out_dir) / "tables" / "claims.csv"
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return path
