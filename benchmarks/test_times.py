"""Wall time of ``make test`` on a clean clone, cold, with its per-file and slowest-test table.

    git clone <repo> /tmp/fresh && cd /tmp/fresh
    .venv/bin/python benchmarks/test_times.py --out benchmarks/results/test_times_cpu_2core.json

or, when no ``.venv`` exists yet (a cold run, the install included), with any Python 3.11:

    python3 benchmarks/test_times.py --out benchmarks/results/test_times_cpu_2core.json

Runs ``make test`` in the checkout this script lives in (it creates ``.venv`` and installs when
there is none: the time before pytest starts is the install) with pytest's JUnit report, then
writes one JSON object: the install and test seconds, the pass/fail counts, seconds per test
file (the sum of its tests' durations: with several workers the files overlap in time, so the
sum exceeds the wall time) and the slowest tests. What is timed: the whole ``make test``
process, on the wall clock; the per-test durations are pytest's own (setup, call, teardown).
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
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _read_junit(path: Path) -> tuple[dict[str, float], list[dict], dict[str, int]]:
    per_file: dict[str, float] = defaultdict(float)
    tests, counts = [], {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
    for case in ET.parse(path).getroot().iter("testcase"):
        seconds = float(case.get("time", 0))
        file = case.get("classname", "").split(".")[-1] + ".py"
        per_file[f"tests/{file}"] += seconds
        tests.append({"test": f"tests/{file}::{case.get('name')}", "seconds": round(seconds, 1)})
        kinds = {child.tag for child in case}
        key = ("failed" if "failure" in kinds else "errors" if "error" in kinds
               else "skipped" if "skipped" in kinds else "passed")  # fmt: skip
        counts[key] += 1
    return dict(per_file), tests, counts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="JSON file to write (stdout always)")
    p.add_argument("--top", type=int, default=25, help="slowest tests listed")
    args = p.parse_args()

    cold = not (ROOT / ".venv" / ".xaistudy-installed").exists()
    with tempfile.TemporaryDirectory(prefix="xaistudy-test-times-") as tmp:
        junit = Path(tmp) / "junit.xml"
        log = Path(tmp) / "make_test.log"
        start = time.perf_counter()
        first_test = None
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["make", "test", f"PYTEST_ARGS=--junitxml={junit}"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            for line in proc.stdout:
                out.write(line)
                if first_test is None and "-m pytest" in line:
                    first_test = time.perf_counter() - start
            proc.wait()
        total = time.perf_counter() - start
        per_file, tests, counts = _read_junit(junit) if junit.exists() else ({}, [], {})
        tail = log.read_text().splitlines()[-5:]
    result = {
        "benchmark": "test_times",
        "command": "make test on a clean clone (what CI runs)",
        "cache": "cold: an empty artifact cache (the test session's own temporary folder)",
        "venv": "created and installed by make test (cold)" if cold else "already installed",
        "what_was_timed": "wall time of the whole `make test` process; install_seconds is the "
        "time before pytest starts; per-file seconds are sums of pytest's per-test durations "
        "(with several workers they overlap in time)",
        "returncode": proc.returncode,
        "install_seconds": round(first_test or 0.0),
        "test_seconds": round(total - (first_test or 0.0)),
        "total_seconds": round(total),
        "total_minutes": round(total / 60, 1),
        "tests": counts,
        "per_file_seconds": dict(sorted(((k, round(v, 1)) for k, v in per_file.items()),
                                        key=lambda kv: -kv[1])),  # fmt: skip
        "slowest": sorted(tests, key=lambda t: -t["seconds"])[: args.top],
        "pytest_summary": tail,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
