"""The synthesis tables: claims per chapter and verdict, the scorecard and the metrics against
known truth, each by the name it is saved under (``tables/<name>.csv``); the scorecard as
collapsible HTML per chapter (:func:`scorecard_html`) and as terminal lines
(:func:`scorecard_lines`). The book's self-checks of its own generators are counted apart from
the papers' claims everywhere (:func:`xaistudy.stats.claims.self_checks`)."""

from __future__ import annotations

import html
import textwrap

import pandas as pd

from xaistudy.chapters.synthesis.scorecard import Scorecard
from xaistudy.stats import claims as claims_mod
from xaistudy.viz import claims as claims_view

#: the scorecard's columns, in reading order
SCORECARD_COLUMNS = [
    "chapter",
    "kind",
    "paper",
    "source",
    "statement",
    "paper_value",
    "quantity",
    "expected",
    "book_value",
    "ci_low",
    "ci_high",
    "verdict",
    "magnitude_verdict",
    "p_adjusted",
    "controls",
    "control_value",
    "control_verdict",
    "seeds",
    "seeds_agree",
    "data",
    "profile",
    "note",
]

#: each table's caption, by its saved name
CAPTIONS = {
    "verdict_counts": "Claims per chapter and verdict (the book's self-checks apart)",
    "scorecard": "Scorecard: the papers' claims, judged",
    "metric_agreement": "The papers' metrics against known truth",
}

#: the two parts of the scorecard: the papers' claims, then the book's self-checks
PAPERS, SELF_CHECKS = "papers' claims", "self-checks"


def scorecard_view(table: pd.DataFrame) -> pd.DataFrame:
    """The scorecard as the book shows it (claim id folded into the statement's source)."""
    view = table.copy()
    view["source"] = view["source"].astype(str) + " (" + view["claim_id"].astype(str) + ")"
    return view[SCORECARD_COLUMNS]


def _parts(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(part, rows): the papers' claims, then the self-checks; empty parts left out."""
    own = claims_mod.self_checks(table)
    parts = [(PAPERS, table[~own]), (SELF_CHECKS, table[own])]
    return [(name, rows) for name, rows in parts if len(rows)]


def counts_table(table: pd.DataFrame) -> pd.DataFrame:
    """Claims per chapter and verdict, the papers' claims and the self-checks in separate
    rows (column ``claims``), each part closed by a total row (chapter "all chapters")."""
    columns = ["chapter", "claims", *claims_mod.VERDICTS, "total"]
    frames = []
    for part, rows in _parts(table):
        order = list(dict.fromkeys(rows["chapter"]))  # the chapters in the table's order
        counts = claims_mod.verdict_counts(rows).set_index("chapter").loc[order].reset_index()
        total = counts[[*claims_mod.VERDICTS, "total"]].sum().to_frame().T
        total.insert(0, "chapter", "all chapters")
        counts = pd.concat([counts, total], ignore_index=True)
        counts.insert(1, "claims", part)
        frames.append(counts)
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)[columns]
    out.columns.name = None
    out[[*claims_mod.VERDICTS, "total"]] = out[[*claims_mod.VERDICTS, "total"]].astype(int)
    return out


def _verdict_list(rows: pd.DataFrame) -> str:
    counts = rows["verdict"].value_counts()
    return ", ".join(f"{int(counts[v])} {v}" for v in claims_mod.VERDICTS if counts.get(v, 0))


def _count(n: int, self_check: bool) -> str:
    noun = "self-check" if self_check else "claim"
    return f"{n} {noun}{'s' * (n != 1)}"


def multiplicity_text(table: pd.DataFrame) -> str:
    """The summary: how many of the papers' claims were judged, in how many families, the
    error each verdict carries (Holm within a chapter; across the book at most the sum of the
    chapters' 5 %), and the book's self-checks counted apart."""
    if table.empty:
        return "No chapter has been run yet: no claim was judged."
    own = claims_mod.self_checks(table)
    papers, checks = table[~own], table[own]
    judged = papers[papers["verdict"] != claims_mod.NOT_TESTABLE]
    families = judged["chapter"].nunique()
    counts = judged["verdict"].value_counts()
    parts = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in claims_mod.VERDICTS[:4])
    kinds = judged["kind"].value_counts() if "kind" in judged else pd.Series(dtype=int)
    findings = int(kinds.get("finding", 0))
    others = ", ".join(
        f"{int(n)} {k}{'s' if n > 1 else ''}" for k, n in kinds.items() if k != "finding"
    )
    text = (
        f"{len(judged)} of the papers' claims were judged in {families} chapters ({parts}; "
        f"{len(papers) - len(judged)} not testable here); {findings} of them are the papers' "
        f"findings{f', the others {others}' if others else ''}. Each chapter is one family: "
        "Holm's adjustment keeps the chance of any false *reproduced* or *contradicted* verdict "
        f"within a chapter at or below 5 %; over the {families} chapters together that chance "
        f"is at most {min(1.0, 0.05 * families):.0%} (the sum of the families' 5 %). A claim "
        "that its null control also reaches is *uninformative*, whatever its own interval says."
    )
    if len(checks):
        text += (
            f" Apart from these, {len(checks)} self-checks of the book's own generators were "
            f"judged ({_verdict_list(checks)}): they test the book's synthetic data, not a "
            "paper, and are counted on their own."
        )
    return text


def _text_colour(verdict: str) -> str:
    return "black" if verdict == claims_mod.NOT_TESTABLE else "white"


def _chapter_html(chapter: str, rows: pd.DataFrame, self_check: bool) -> str:
    """One chapter's claims as a collapsible table (``<details>``), verdict cells coloured."""
    summary = f"{chapter} — {_count(len(rows), self_check)}: {_verdict_list(rows)}"
    heads = [
        "claim",
        "the design's value" if self_check else "paper's number",
        "ours [95 % interval]",
        "verdict",
        "control (value and verdict alone)",
        "what is measured" + ("" if self_check else " (paper's side)"),
    ]
    side = "expected" if self_check else "paper's side"
    body = []
    for _, r in rows.iterrows():
        verdict = str(r["verdict"])
        colour = claims_view.VERDICT_COLOURS.get(verdict, "white")
        claim = (
            f"<b>{html.escape(str(r['claim_id']))}</b><br>"
            f"<small>{html.escape(str(r['source']))}: {html.escape(str(r['statement']))}</small>"
        )
        cells = [
            claim,
            html.escape(str(r["paper_value"])),
            html.escape(claims_view.estimate_text(r)),
            None,
            html.escape(claims_view.control_text(r)),
            f"{html.escape(str(r['quantity']))} ({side}: {html.escape(str(r['expected']))})",
        ]
        tds = [
            f'<td style="background:{colour};color:{_text_colour(verdict)}">'
            f"{html.escape(verdict)}</td>"
            if c is None
            else f"<td>{c}</td>"
            for c in cells
        ]
        body.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in heads)
    return (
        f"<details><summary>{html.escape(summary)}</summary>"
        f'<table class="xaistudy-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></details>"
    )


def scorecard_html(table: pd.DataFrame) -> str:
    """The scorecard as HTML: the papers' claims, then the book's self-checks, one collapsible
    table per chapter (``<details>``, its summary the verdict counts), the columns in reading
    order and each verdict cell coloured as in the figures."""
    if table.empty:
        return "<p>No chapter has been run yet: no claim was judged.</p>"
    style = (
        "<style>.xaistudy-table td,.xaistudy-table th{white-space:normal;overflow-wrap:anywhere;"
        "max-width:28em;text-align:left;vertical-align:top;padding:2px 8px}"
        "details{margin:4px 0}summary{cursor:pointer;font-weight:bold}</style>"
    )
    titles = {
        PAPERS: "The papers' claims",
        SELF_CHECKS: "The book's self-checks of its own generators (not a paper's findings)",
    }
    out = [style]
    for part, rows in _parts(table):
        out.append(f"<p><b>{titles[part]}</b></p>")
        for chapter, chapter_rows in rows.groupby("chapter", sort=False):
            out.append(_chapter_html(str(chapter), chapter_rows, part == SELF_CHECKS))
    return "\n".join(out)


def scorecard_lines(table: pd.DataFrame, width: int = 100) -> list[str]:
    """The scorecard in a terminal: the papers' claims, then the self-checks, by chapter; two
    lines per claim (id, estimate with its interval and verdict; then what the number measures
    and the side of the null the paper expects), every line at most ``width`` characters; then
    the summary (:func:`multiplicity_text`)."""

    def wrap(text: str, indent: str = "") -> list[str]:
        return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ")

    lines: list[str] = []
    for part, rows in _parts(table):
        title = "THE PAPERS' CLAIMS" if part == PAPERS else "THE BOOK'S SELF-CHECKS"
        lines += wrap(title + ("" if part == PAPERS else " (its generators, not a paper)"))
        side = "paper's side" if part == PAPERS else "expected"
        for chapter, chapter_rows in rows.groupby("chapter", sort=False):
            n = _count(len(chapter_rows), part == SELF_CHECKS)
            lines += wrap(f"{chapter} — {n}: {_verdict_list(chapter_rows)}")
            for _, r in chapter_rows.iterrows():
                estimate, verdict = claims_view.estimate_text(r), str(r["verdict"])
                room = max(8, width - len(estimate) - len(verdict) - 6)
                cid = str(r["claim_id"])
                cid = cid if len(cid) <= room else cid[: room - 1] + "…"
                lines.append(f"  {cid:<{room}}  {estimate}  {verdict}"[:width])
                tail = f" ({side}: {r['expected']})"
                room = max(12, width - 16 - len(tail))
                measured = textwrap.shorten(str(r["quantity"]), room, placeholder=" …")
                lines.append(f"      measures: {measured}{tail}"[:width])
        lines.append("")
    lines += textwrap.wrap(multiplicity_text(table).replace("*", ""), width)
    return lines


def all_tables(card: Scorecard) -> dict[str, pd.DataFrame]:
    """Every table of ``card`` by its saved name (``metric_agreement`` only when the
    meta-evaluation has run)."""
    out = {
        "verdict_counts": counts_table(card.table),
        "scorecard": scorecard_view(card.table),
    }
    if card.agreement is not None:
        out["metric_agreement"] = card.agreement
    return out
