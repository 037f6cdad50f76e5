"""``xaistudy book`` runs chapters in lanes: each after the chapters it reads, a failure
starting nothing new, the same chapters whatever the number of lanes."""

from __future__ import annotations

import threading
import time

import pytest

from xaistudy.app import book
from xaistudy.app.runner import chapters
from xaistudy.chapters.spec import ALL, LANES_VARIABLE

AFTER = {"a": (), "b": (), "c": (), "slow": (), "needs_slow": ("slow",), "last": ALL}


def record(seconds: dict[str, float], fail: str = ""):
    """A fake chapter run: sleeps, records (name, start, end), raises for ``fail``."""
    log: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        start = time.monotonic()
        time.sleep(seconds.get(name, 0.02))
        if name == fail:
            raise RuntimeError(f"{name} failed")
        with lock:
            log.append((name, start, time.monotonic()))

    return run, log


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_every_chapter_runs_once_after_what_it_reads(lanes):
    run, log = record({"slow": 0.2})
    started = book.schedule(AFTER, run, lanes)
    assert sorted(started) == sorted(AFTER) and len(log) == len(AFTER)
    times = {name: (s, e) for name, s, e in log}
    assert times["needs_slow"][0] >= times["slow"][1]
    assert all(times["last"][0] >= e for n, (_, e) in times.items() if n != "last")
    # a chapter another one waits for starts first; the rest in book order
    assert started[0] == "slow"
    assert started[-1] == "last"


def test_two_lanes_run_two_chapters_at_once():
    run, log = record({"a": 0.3, "b": 0.3})
    book.schedule({"a": (), "b": ()}, run, lanes=2)
    (_, s1, e1), (_, s2, e2) = sorted(log, key=lambda r: r[1])
    assert s2 < e1  # overlapping


def test_a_failure_starts_nothing_new_and_is_raised_after_the_running_ones():
    run, log = record({"a": 0.05, "b": 0.3}, fail="a")
    with pytest.raises(RuntimeError, match="a failed"):
        book.schedule({"a": (), "b": (), "c": ()}, run, lanes=2)
    assert [name for name, *_ in log] == ["b"]  # b finished; c never started


def test_bad_schedules_are_refused_in_one_line():
    run, _ = record({})
    with pytest.raises(ValueError, match="lanes must be >= 1"):
        book.schedule(AFTER, run, lanes=0)
    with pytest.raises(ValueError, match=r"unknown chapters: \['nope'\]"):
        book.schedule({"a": ("nope",)}, run)
    with pytest.raises(RuntimeError, match="wait on each other"):
        book.schedule({"a": ("b",), "b": ("a",)}, run)


def test_the_books_chapters_name_real_prerequisites():
    found = chapters()
    deps = book.dependencies({name: c.after for name, c in found.items()})
    assert deps["meta_evaluation"] == {"ibo"}  # it reuses the ibo chapter's DDPM
    assert deps["synthesis"] == set(found) - {"synthesis"}  # it reads every chapter's claims
    assert 1 <= book.default_lanes() <= book.MAX_LANES


def test_a_chapter_run_beside_others_says_so_in_its_record(monkeypatch, tmp_path):
    import torch

    from xaistudy.chapters import get_chapter
    from xaistudy.chapters.report import start
    from xaistudy.core.params import build_params

    params = build_params(get_chapter("data").params, "smoke")
    threads = torch.get_num_threads()
    try:
        monkeypatch.delenv(LANES_VARIABLE, raising=False)
        assert "chapters at once" not in start(params, tmp_path, "smoke").record
        monkeypatch.setenv(LANES_VARIABLE, "1")
        assert "chapters at once" not in start(params, tmp_path, "smoke").record
        monkeypatch.setenv(LANES_VARIABLE, "2")
        note = start(params, tmp_path, "smoke").record["chapters at once"]
        assert note.startswith("up to 2 (make book)") and "timings" in note
    finally:
        torch.set_num_threads(threads)


def test_the_command_refuses_zero_lanes_before_running_anything(capsys):
    from xaistudy.app import cli

    assert cli.main(["book", "--lanes", "0"]) == 2
    assert "--lanes must be >= 1, got 0" in capsys.readouterr().err
