"""The ``xaistudy`` command: list chapters, show their parameters, run one, build the book."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from argparse import SUPPRESS

from xaistudy.core.params import (
    DEFAULT_PROFILE,
    PROFILES,
    ParamError,
    describe_params,
    parse_param_value,
)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

PROFILES_HELP = (
    "profiles: smoke (seconds to a minute, for tests), quick (the default: minutes on a "
    "laptop CPU), paper (the papers' settings and data), gpu (the papers' model sizes, image "
    "sizes and schedules on the synthetic data; sized for a GPU; ibo in bfloat16 with a RePaint "
    "schedule validated against the paper's)"
)


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

    run = sub.add_parser(
        "run",
        help="run one chapter",
        epilog=f"chapters: {', '.join(_chapter_names())}; {PROFILES_HELP}. "
        "'xaistudy params CHAPTER' lists a chapter's parameters.",
    )
    run.add_argument("chapter", help="the chapter to run (see the list below)")
    run.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    run.add_argument(
        "-p",
        dest="overrides",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override one parameter (repeatable); VALUE is JSON or a plain string "
        "(negative numbers such as -1e-3 are values)",
    )
    run.add_argument(f"--{_PAIR}", dest="pairs", action="append", default=[], help=SUPPRESS)
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

    compute = sub.add_parser(
        "compute",
        help="compute a chapter's results into the cache, without its notebook",
        epilog="e.g. 'accelerate launch --multi_gpu --num_processes 8 -m xaistudy compute ibo "
        "--profile gpu' shares RePaint, DDPM training and sampling, and RISE out between 8 "
        "GPUs; 'xaistudy run' with the same parameters then reads the cache.",
    )
    compute.add_argument("chapter", help="the chapter (see 'xaistudy list')")
    compute.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    compute.add_argument(
        "-p", dest="overrides", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
        help="override one parameter (repeatable), as for 'xaistudy run'",
    )  # fmt: skip
    compute.add_argument(f"--{_PAIR}", dest="pairs", action="append", default=[], help=SUPPRESS)

    claims = sub.add_parser("claims", help="print the scorecard: every executed chapter's claims")
    claims.add_argument(
        "--chapters-dir", default=None, help="folder of executed chapters (default book/chapters)"
    )
    claims.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    ex = sub.add_parser(
        "exercises",
        help="list a chapter's exercises; --run computes their answer key",
        epilog="--run runs the chapter once with its defaults and once per exercise "
        "(smoke profile unless --profile), then writes answers.json for the book.",
    )
    ex.add_argument("chapter", help="the chapter (see 'xaistudy list')")
    ex.add_argument("--run", action="store_true", help="run the exercises, print the answers")
    ex.add_argument("--profile", default="smoke", choices=PROFILES, help="profile of --run")
    ex.add_argument("--only", nargs="+", default=None, metavar="SLUG", help="these exercises")
    ex.add_argument(
        "--out", default=None, help="folder of the runs and answers.json (default book/exercises/)"
    )

    book = sub.add_parser(
        "book", help="run every chapter, then build the HTML book", epilog=PROFILES_HELP
    )
    book.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES)
    book.add_argument(
        "--no-run", action="store_true", help="only rebuild the HTML from executed notebooks"
    )
    book.add_argument(
        "--exercises",
        action="store_true",
        help="first run every exercise at the smoke size (about 9 min) for the answer keys",
    )
    book.add_argument(
        "--lanes",
        type=int,
        default=None,
        help="chapters run at once, each in its own process with its own threads (default: "
        "one per core, at most 2; the numbers do not depend on it)",
    )
    return p


#: the hidden option each ``-p KEY VALUE`` becomes before parsing (see :func:`_protect_values`)
_PAIR = "param-pair"
_SEP = "\x1f"


def _chapter_names() -> list[str]:
    """The chapters' names, from the package's folders: nothing is imported, so ``--help``
    stays fast (and a broken chapter module does not break it)."""
    from xaistudy.chapters import chapter_modules

    return chapter_modules()


def _protect_values(argv: list[str]) -> list[str]:
    """Turn each ``-p KEY VALUE`` into one ``--param-pair=KEY<sep>VALUE`` token, so that a
    VALUE starting with "-" (``-1e-3``) is read as a value, never as an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "-p" and i + 2 < len(argv):
            out.append(f"--{_PAIR}={argv[i + 1]}{_SEP}{argv[i + 2]}")
            i += 3
        else:
            out.append(argv[i])
            i += 1
    return out


def _overrides(pairs: list[str], chapter: str) -> dict[str, object]:
    from xaistudy.app import runner

    if not pairs:
        return {}
    model = runner.get_chapter(chapter).params
    out: dict[str, object] = {}
    for pair in pairs:
        key, value = pair.split(_SEP, 1)
        if key in out:
            raise ParamError(f"parameter '{key}' given twice")
        out[key] = parse_param_value(model, key, value)
    return out


def _print_claims(chapters_dir: str | None, as_csv: bool) -> None:
    """Print the scorecard: by chapter, the papers' claims first and the book's self-checks
    apart, each claim with what it measures and the paper's side (``--csv``: the full table)."""
    from xaistudy.app import runner
    from xaistudy.chapters.synthesis.tables import scorecard_lines
    from xaistudy.stats import claims

    root = chapters_dir or runner.default_out("x").parent
    table = claims.scorecard(root, [c for c in runner.chapters()])
    if table.empty:
        raise ParamError(f"no executed chapter with claims under {root}; run a chapter first")
    if as_csv:
        print(table.to_csv(index=False), end="")
        return
    for line in scorecard_lines(table):
        print(line)


def _exercises(args: argparse.Namespace) -> None:
    from xaistudy.app import exercises
    from xaistudy.chapters import get_chapter

    chapter = get_chapter(args.chapter)
    if not chapter.exercises:
        raise ParamError(f"chapter '{chapter.name}' has no exercises")
    if not args.run:
        for i, e in enumerate(chapter.exercises, 1):
            print(f"{i}. [{e.slug}] {e.question}")
            print(f"   {e.command(chapter.name)}")
            print(f"   look at: {e.where().replace('`', '')}")
        return
    result = exercises.run_exercises(chapter.name, args.profile, args.out, only=args.only)
    for slug, item in result["exercises"].items():
        print(f"[{slug}] {item['command']}")
        print(f"   {item['answer']}")


class _StartupBar:
    """On a terminal, a bar over the steps before the notebook's own bar appears (the imports
    of the chapter and its libraries, the parameters, the kernel: seconds), so a run shows
    progress from its first second; called with each step's name, it moves on."""

    STEPS = (
        "loading the libraries",
        "loading the chapter",
        "checking the parameters",
        "starting the kernel",
    )

    def __init__(self, chapter: str):
        from tqdm import tqdm

        self.bar = tqdm(
            total=len(self.STEPS),
            desc=f"{chapter}: {self.STEPS[0]}",
            bar_format="{desc}: {n}/{total} steps [{elapsed}]",
            leave=False,
        )

    def __call__(self, step: str) -> None:
        self.bar.set_description_str(f"{self.bar.desc.split(':')[0]}: {step}", refresh=False)
        self.bar.update(1)
        if self.bar.n >= len(self.STEPS) - 1:  # the kernel starts: the notebook's bar follows
            self.close()

    def close(self) -> None:
        self.bar.close()


def _startup_bar(args: argparse.Namespace) -> _StartupBar | None:
    return _StartupBar(args.chapter) if sys.stderr.isatty() and not args.log_output else None


def _interrupted(signum, frame) -> None:
    """Ctrl-C: stop, and keep quiet about what stopping does to the notebook's kernel (it gets
    the same signal; the engine's "kernel died" errors would bury the one line that matters)."""
    logging.disable(logging.CRITICAL)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2: bad input, 130: interrupted)."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous = signal.signal(signal.SIGINT, _interrupted)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("xaistudy: interrupted; the previous output is unchanged", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a command that stopped reading (head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(_protect_values(argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    from xaistudy.chapters import chapter_index, get_chapter

    if args.command == "list":  # the chapters' titles are read without importing them
        for name, title in chapter_index():
            print(f"{name:<18} {title}")
        return 0
    starting = _startup_bar(args) if args.command == "run" else None
    from xaistudy.app import book, runner

    if starting is not None:
        starting("loading the chapter")

    try:
        if args.command == "params":
            chapter = get_chapter(args.chapter)
            print(f"{chapter.name}: {chapter.title}; {PROFILES_HELP}")
            for row in describe_params(chapter.params):
                profiles = "  ".join(f"{p}={row[p]!r}" for p in PROFILES)
                allowed = f"  allowed: {row['allowed']}" if row["allowed"] else ""
                print(f"{row['name']:<20} {row['type']:<14} {profiles}{allowed}")
                print(f"{'':<20} {row['description']}")
        elif args.command == "run":
            overrides = _overrides(args.pairs, args.chapter)
            if args.seeds is not None:
                if "seeds" in overrides:
                    raise ParamError("seeds given twice (--seeds and -p seeds)")
                if not get_chapter(args.chapter).has_seeds:
                    raise ParamError(f"chapter '{args.chapter}' runs with one seed; use -p seed N")
                overrides["seeds"] = args.seeds
            out = runner.run_chapter(
                args.chapter, args.profile, overrides, args.out, args.log_output, starting
            )
            print(out)
        elif args.command == "compute":
            from xaistudy.core import distributed

            summary = runner.compute_chapter(
                args.chapter, args.profile, _overrides(args.pairs, args.chapter)
            )
            if distributed.is_main():
                print(summary)
        elif args.command == "exercises":
            _exercises(args)
        elif args.command == "claims":
            _print_claims(args.chapters_dir, args.csv)
        elif args.command == "book":
            if args.lanes is not None and args.lanes < 1:
                raise ParamError(f"--lanes must be >= 1, got {args.lanes}")
            built = book.build_book(
                args.profile, run=not args.no_run, exercises=args.exercises, lanes=args.lanes
            )
            print(built)
    except ParamError as err:
        if starting is not None:
            starting.close()
        print(f"xaistudy: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except runner.ChapterFailed as err:
        print(f"xaistudy: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
