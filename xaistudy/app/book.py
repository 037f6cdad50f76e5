"""The whole book: every chapter (and its exercises on request), then the HTML.

The chapters run as separate ``xaistudy run`` processes, ``lanes`` at a time (two on a machine
with two cores or more). Each runs with the threads its parameters name, in its own process,
so its numbers are those of a run alone. Two chapters at once slow each other (measured on
the 2-core machine: each took 1.2-1.8x its time alone) but finish the quick book 16 % sooner
than one at a time (``benchmarks/results/book_quick_cpu_2core.json``). A chapter starts when
the chapters it reuses or reads (``Chapter.after``) have finished; among the ready ones, a
chapter others wait for goes first, then book order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from xaistudy.app import exercises as ex
from xaistudy.app.runner import ChapterFailed, build_html, chapters, prepare_run
from xaistudy.chapters.spec import ALL, LANES_VARIABLE
from xaistudy.core.params import DEFAULT_PROFILE
from xaistudy.core.store import default_out, repo_root

#: at most this many chapters at once by default
MAX_LANES = 2


def default_lanes() -> int:
    """Chapters run at once by default: one per core, at most :data:`MAX_LANES`."""
    return max(1, min(MAX_LANES, os.cpu_count() or 1))


def dependencies(after: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Each chapter's prerequisites among ``after``'s keys (:data:`ALL`: every other one); an
    unknown name is an error."""
    names = set(after)
    deps = {}
    for name, needs in after.items():
        if tuple(needs) == ALL:
            deps[name] = names - {name}
            continue
        unknown = set(needs) - names
        if unknown:
            raise ValueError(f"chapter '{name}' runs after unknown chapters: {sorted(unknown)}")
        deps[name] = set(needs)
    return deps


def schedule(
    after: Mapping[str, Sequence[str]],
    run: Callable[[str], None],
    lanes: int = 1,
) -> list[str]:
    """Call ``run(name)`` for every chapter of ``after`` (name → the chapters it runs after, in
    book order), ``lanes`` at a time, each after its prerequisites; returns the names in the
    order they started. A failing ``run`` starts nothing new; the first error is raised once
    the running ones have finished."""
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    deps = dependencies(after)
    order = list(after)
    # named by another chapter (not merely part of ALL): it goes first among the ready ones
    waited_for = {n for needs in after.values() if tuple(needs) != ALL for n in needs}
    done: set[str] = set()
    running: set[str] = set()
    started: list[str] = []
    errors: list[BaseException] = []
    cond = threading.Condition()

    def next_ready() -> str | None:
        ready = [n for n in order if n not in started and deps[n] <= done]
        ready.sort(key=lambda n: (n not in waited_for, order.index(n)))
        return ready[0] if ready else None

    def lane() -> None:
        while True:
            with cond:
                while True:
                    if errors or len(started) == len(order):
                        return
                    name = next_ready()
                    if name is not None:
                        break
                    if not running:  # nothing left that could make a chapter ready
                        errors.append(RuntimeError(f"chapters wait on each other: {deps}"))
                        cond.notify_all()
                        return
                    cond.wait()
                started.append(name)
                running.add(name)
            try:
                run(name)
            except BaseException as err:  # noqa: BLE001 - re-raised below, after the others
                with cond:
                    errors.append(err)
            finally:
                with cond:
                    running.discard(name)
                    done.add(name)
                    cond.notify_all()

    threads = [threading.Thread(target=lane, daemon=True) for _ in range(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # join in slices: Ctrl-C reaches this (main) thread
            t.join(timeout=0.5)
    if errors:
        raise errors[0]
    return started


class _Printer:
    """Whole lines from several lanes onto one stream."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            print(line, file=self.stream, flush=True)


def run_in_process(name: str, profile: str, show: Callable[[str], None], lanes: int) -> None:
    """Chapter ``name`` through ``xaistudy run`` in its own process. Alone (``lanes`` 1) it
    writes to this terminal (live bars); beside others its lines are prefixed ``[name]``."""
    show(f"== chapter {name} (profile {profile})")
    start = time.monotonic()
    command = [sys.executable, "-m", "xaistudy", "run", name, "--profile", profile]
    env = {**os.environ, LANES_VARIABLE: str(lanes)}
    if lanes > 1:  # a thread waiting for work sleeps instead of spinning on a shared core
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if lanes == 1:
        code, last = subprocess.call(command, env=env, cwd=repo_root()), ""
    else:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=repo_root(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        last = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.strip():
                show(line if line.startswith("  [") else f"  [{name}] {line}")
                last = line
        code = proc.wait()
    if code == 130:
        raise KeyboardInterrupt
    if code != 0:
        raise ChapterFailed(last.removeprefix("xaistudy: ") or f"chapter '{name}' failed ({code})")
    show(f"== chapter {name} done in {time.monotonic() - start:.0f} s")


def build_book(
    profile: str = DEFAULT_PROFILE,
    run: bool = True,
    exercises: bool = True,
    lanes: int | None = None,
) -> Path:
    """Run every chapter with ``profile`` into ``book/chapters/`` (``lanes`` at a time, default
    :func:`default_lanes`; each after the chapters it reads, the Synthesis part's scorecard
    last), then build the HTML book.

    With ``exercises`` the chapters' exercises run first at the smoke profile (about 9 min on
    a 2-core CPU, beyond the quick book's 45 min) and rewrite their answer keys; without, each
    chapter shows the keys kept in the repository (``book/exercises/CHAPTER/answers.json``,
    which the test suite recomputes and compares).
    """
    lanes = default_lanes() if lanes is None else lanes
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    if run:
        found = chapters()
        for name in found:
            prepare_run(name, profile, out=default_out(name))  # validate all before running any
        if exercises:
            for name, chapter in found.items():
                if chapter.exercises:
                    print(f"== exercises of {name} (profile smoke)", flush=True)
                    ex.run_exercises(name, "smoke")
        show = _Printer()
        after = {name: chapter.after for name, chapter in found.items()}
        schedule(after, lambda name: run_in_process(name, profile, show, lanes), lanes)
    return build_html()
