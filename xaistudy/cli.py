"""The ``xaistudy`` command: list chapters, show their parameters, run one, build the book."""

from __future__ import annotations

import argparse
import logging
import sys

from xaistudy.params import DEFAULT_PROFILE, PROFILES, ParamError, describe_params, parse_cli_value

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"xaistudy: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="xaistudy", description="Run the chapters of the xaistudy book.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the chapters, one line each")

    show = sub.add_parser("params", help="show a chapter's parameters and profiles")
    show.add_argument("chapter")

    run = sub.add_parser("run", help="run one chapter")
    run.add_argument("chapter")
    run.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    run.add_argument(
        "-p",
        dest="overrides",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override one parameter (repeatable); VALUE is JSON or a plain string",
    )
    run.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="SEED",
        help="seeds of the repeated runs (same as -p seeds '[...]'); claims are judged over all",
    )
    run.add_argument("--out", default=None, help="output folder (default book/chapters/CHAPTER)")
    run.add_argument("--log-output", action="store_true", help="stream the notebook's output")

    claims = sub.add_parser("claims", help="print the scorecard: every executed chapter's claims")
    claims.add_argument(
        "--chapters-dir", default=None, help="folder of executed chapters (default book/chapters)"
    )
    claims.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    book = sub.add_parser("book", help="run every chapter, then build the HTML book")
    book.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    book.add_argument(
        "--no-run", action="store_true", help="only rebuild the HTML from executed notebooks"
    )
    return p


def _overrides(pairs: list[list[str]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ParamError(f"parameter '{key}' given twice")
        out[key] = parse_cli_value(value)
    return out


def _print_claims(chapters_dir: str | None, as_csv: bool) -> None:
    from xaistudy import claims, runner

    root = chapters_dir or runner.default_out("x").parent
    table = claims.scorecard(root, [c for c in runner.chapters()])
    if table.empty:
        raise ParamError(f"no executed chapter with claims under {root}; run a chapter first")
    if as_csv:
        print(table.to_csv(index=False), end="")
        return
    cols = [
        "chapter",
        "claim_id",
        "paper_value",
        "book_value",
        "ci_low",
        "ci_high",
        "seeds",
        "verdict",
    ]
    import pandas as pd

    with pd.option_context(
        "display.max_rows",
        None,
        "display.max_colwidth",
        40,
        "display.width",
        200,
        "display.precision",
        3,
    ):
        print(table[cols].fillna("—").to_string(index=False))
    print()
    print(claims.verdict_counts(table).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    from xaistudy import runner
    from xaistudy.chapters import get_chapter

    try:
        if args.command == "list":
            for ch in runner.chapters().values():
                print(f"{ch.name:<18} {ch.title}")
        elif args.command == "params":
            chapter = get_chapter(args.chapter)
            for row in describe_params(chapter.params):
                profiles = "  ".join(f"{p}={row[p]!r}" for p in PROFILES)
                print(f"{row['name']:<20} {row['type']:<6} {profiles}  # {row['description']}")
        elif args.command == "run":
            overrides = _overrides(args.overrides)
            if args.seeds is not None:
                if "seeds" in overrides:
                    raise ParamError("seeds given twice (--seeds and -p seeds)")
                if not get_chapter(args.chapter).has_seeds:
                    raise ParamError(f"chapter '{args.chapter}' runs with one seed; use -p seed N")
                overrides["seeds"] = args.seeds
            out = runner.run_chapter(
                args.chapter, args.profile, overrides, args.out, args.log_output
            )
            print(out)
        elif args.command == "claims":
            _print_claims(args.chapters_dir, args.csv)
        elif args.command == "book":
            print(runner.build_book(args.profile, run=not args.no_run))
    except ParamError as err:
        print(f"xaistudy: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except runner.ChapterFailed as err:
        print(f"xaistudy: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
