"""Wall time of every chapter of the book, run cold, one after another, then the HTML build.

    .venv/bin/python benchmarks/book_times.py --out benchmarks/results/book_quick_cpu.json

Runs ``xaistudy run CHAPTER --profile PROFILE`` for each chapter in book order, as a separate
process, into the book's own folders (``book/chapters/``), with an empty artifact cache (a
temporary ``XAISTUDY_CACHE``, so every model is trained and every map computed), then
``xaistudy book --no-run``. Writes one JSON object: seconds per chapter, the HTML build, the
total, the seeds and threads each chapter ran with, and the machine. What is timed: the whole
``xaistudy run`` process (interpreter start, validation, notebook execution, writing outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from xaistudy.chapters import discover
    from xaistudy.core.params import build_params

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--chapters", nargs="*", default=None, help="default: every chapter")
    p.add_argument("--out", default=None, help="JSON file to write (stdout always)")
    p.add_argument("--keep-cache", action="store_true", help="use the usual cache (warm run)")
    args = p.parse_args()

    exe = Path(sys.executable).with_name("xaistudy")
    chapters = discover()
    names = args.chapters or list(chapters)
    env = dict(os.environ)
    tmp = None
    if not args.keep_cache:
        tmp = tempfile.TemporaryDirectory(prefix="xaistudy-bench-cache-")
        env["XAISTUDY_CACHE"] = tmp.name
    rows = []
    for name in names:
        params = build_params(chapters[name].params, args.profile)
        start = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "run", name, "--profile", args.profile],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        rows.append(
            {
                "chapter": name,
                "seconds": round(seconds, 1),
                "exit": proc.returncode,
                "seeds": getattr(params, "seeds", [getattr(params, "seed", None)]),
                "threads": params.threads,
            }
        )
        print(f"{name}: {seconds:.0f} s (exit {proc.returncode})", file=sys.stderr, flush=True)
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
    start = time.perf_counter()
    build = subprocess.run(
        [str(exe), "book", "--no-run"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    html_seconds = time.perf_counter() - start
    result = {
        "benchmark": "book_times",
        "profile": args.profile,
        "cache": "warm (existing cache)" if args.keep_cache else "cold (empty cache)",
        "chapters": rows,
        "html_build_seconds": round(html_seconds, 1),
        "html_build_exit": build.returncode,
        "total_seconds": round(sum(r["seconds"] for r in rows) + html_seconds, 1),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(r["exit"] == 0 for r in rows) and build.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
