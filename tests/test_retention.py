"""Retention (issue 25): a run database on a public demo must not grow without end. Runs older than N days go, then
the oldest runs beyond a size budget; a run being recorded is never removed; what is kept still replays."""

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from conftest import one_error_line

from playground.engine import Request, generate
from playground.errors import PlaygroundError
from playground.storage.recorder import Recorder
from playground.storage.retention import Retention

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def record(recorder: Recorder, pair, prompt: str, tokens: int = 6) -> int:
    events = list(recorder.record(generate(Request(prompt=prompt, model=pair.target, max_new_tokens=tokens))))
    return events[-1].run_id


def age(db, run_id: int, days: float) -> None:
    with closing(sqlite3.connect(db)) as conn:
        created = (NOW - timedelta(days=days)).isoformat(timespec="seconds")
        conn.execute("UPDATE runs SET created_at = ? WHERE id = ?", (created, run_id))
        conn.commit()


def ids(recorder: Recorder) -> list[int]:
    return sorted(r["id"] for r in recorder.runs())


def test_runs_older_than_the_days_kept_are_removed_and_the_rest_replay(llama_pair, db):
    recorder = Recorder(db)
    runs = [record(recorder, llama_pair, f"x = {i}") for i in range(4)]
    for run_id, days in zip(runs, (40, 31, 29, 0.1)):
        age(db, run_id, days)
    assert recorder.prune(Retention(days=30), now=NOW) == runs[:2]
    assert ids(recorder) == runs[2:]
    started, steps, finished = recorder.replay(runs[2])
    assert finished.status == "finished" and len(steps) == 6


def test_the_oldest_runs_go_first_until_the_rest_fit_the_budget(llama_pair, db):
    recorder = Recorder(db)
    runs = [record(recorder, llama_pair, f"y = {i}", tokens=8) for i in range(5)]
    with closing(sqlite3.connect(db)) as conn:
        weight = conn.execute("SELECT SUM(LENGTH(payload)) FROM steps WHERE run_id = ?", (runs[0],)).fetchone()[0]
    budget_mb = 2.5 * weight / 1e6  # room for two runs of about this weight, not three
    removed = recorder.prune(Retention(megabytes=budget_mb))
    assert removed == runs[:len(removed)] and ids(recorder) == runs[len(removed):]  # oldest first
    assert len(ids(recorder)) == 2


def test_a_recorder_with_a_retention_prunes_after_each_run(llama_pair, db):
    recorder = Recorder(db, retention=Retention(days=7))
    first = record(recorder, llama_pair, "a = 1")
    age(db, first, 8)
    second = record(recorder, llama_pair, "b = 2")  # ending this run removes the week-old one
    assert ids(recorder) == [second]


def test_a_run_being_recorded_is_never_removed(llama_pair, db):
    recorder = Recorder(db)
    events = recorder.record(generate(Request(prompt="z = 0", model=llama_pair.target, max_new_tokens=6)))
    run_id = next(events).run_id  # started, not finished: status 'running'
    age(db, run_id, 400)
    assert recorder.prune(Retention(days=1, megabytes=1e-9), now=NOW) == []
    assert [e for e in events][-1].status == "finished" and ids(recorder) == [run_id]


@pytest.mark.parametrize("days,megabytes", [(0, None), (-1, None), (None, float("nan")), (None, float("inf"))])
def test_limits_must_be_positive_numbers(days, megabytes):
    with pytest.raises(PlaygroundError, match="must be a positive number"):
        Retention(days, megabytes)


def test_prune_from_the_command_line(llama_pair, db, main, monkeypatch):
    recorder = Recorder(db)
    old, new = record(recorder, llama_pair, "p = 1"), record(recorder, llama_pair, "q = 2")
    age(db, old, 90)
    status, out, _ = main("prune", "--db", db, "--days", 30)
    assert status == 0 and out.strip() == f"removed 1 run ({old}..{old})" and ids(recorder) == [new]
    status, _, err = main("prune", "--db", db)
    assert status == 2 and "--days N and/or --mb M" in one_error_line(err)
    monkeypatch.setenv("PLAYGROUND_KEEP_DAYS", "soon")
    status, _, err = main("prune", "--db", db)
    assert status == 2 and "$PLAYGROUND_KEEP_DAYS must be a number" in one_error_line(err)
