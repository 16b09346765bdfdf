"""The SQLite recorder: what a run stores is exactly what it produced, whatever way the run ends."""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from dataclasses import asdict

import pytest
import torch
from conftest import PROMPTS

from playground.engine import Request, generate
from playground.errors import PlaygroundError
from playground.events import RunFinished, RunStarted, Step
from playground.runtime.lean import LeanLM
from playground.runtime.lm import CachedLM
from playground.storage import recorder as recorder_module
from playground.storage.recorder import Recorder, db_path


def request(pair, method="speculative", **fields) -> Request:
    defaults = dict(prompt=PROMPTS[0], model=pair.target, method=method, max_new_tokens=30, stop_at_eos=False)
    if method == "speculative":
        defaults.update(draft=pair.draft, params={"gamma": 3})
    return Request(**{**defaults, **fields})


def events_as_dicts(steps) -> list[dict]:
    return [asdict(s) for s in steps]


@pytest.mark.parametrize("method", ["autoregressive", "speculative"])
def test_replay_rebuilds_the_run_exactly(llama_pair, db, collect, method, monkeypatch):
    monkeypatch.setattr(recorder_module, "FLUSH_EVERY_STEPS", 4)  # several batches of steps
    rec = Recorder(db)
    started, steps, finished = collect(rec.record(generate(request(llama_pair, method, temperature=0.8, seed=4))))
    assert started.run_id is not None and finished.run_id == started.run_id
    assert finished.status == "finished" and len(finished.token_ids) == 30
    assert finished.token_ids == [t for s in steps for t in s.tokens]

    r_started, r_steps, r_finished = rec.replay(started.run_id)
    assert asdict(r_started) == asdict(started)
    assert events_as_dicts(r_steps) == events_as_dicts(steps), "replayed steps differ from the live ones"
    assert [t for s in r_steps for t in s.tokens] == r_finished.token_ids == finished.token_ids
    assert asdict(r_finished) == asdict(finished)
    assert r_started.settings["temperature"] == 0.8 and r_started.settings["seed"] == 4

    # the same, through plain SQL: nothing is only in memory
    with closing(sqlite3.connect(db)) as conn:
        token_ids, status = conn.execute("SELECT token_ids, status FROM runs WHERE id = ?",
                                         (started.run_id,)).fetchone()
        rows = conn.execute('SELECT "index", committed, drafted, accepted FROM steps WHERE run_id = ? '
                            'ORDER BY "index"', (started.run_id,)).fetchall()
    assert json.loads(token_ids) == finished.token_ids and status == "finished"
    assert rows == [(s.index, len(s.tokens), len(s.drafted), s.accepted) for s in steps]


def test_export_has_every_step_and_is_json(llama_pair, db, collect):
    rec = Recorder(db)
    started, steps, finished = collect(rec.record(generate(request(llama_pair))))
    exported = rec.export(started.run_id)
    again = json.loads(json.dumps(exported))  # JSON all the way down
    assert again["run_id"] == started.run_id
    assert again["run"]["method"] == "speculative" and again["run"]["draft"] == llama_pair.draft
    assert again["run"]["prompt"] == PROMPTS[0] and again["run"]["prompt_ids"] == started.prompt_ids
    assert [s["index"] for s in again["steps"]] == list(range(len(steps)))
    assert again["steps"] == json.loads(json.dumps(events_as_dicts(steps)))
    assert again["result"]["token_ids"] == finished.token_ids
    assert again["result"]["stats"]["new_tokens"] == 30
    assert again["result"]["status"] == "finished"


def test_runs_lists_newest_first(llama_pair, db, collect):
    rec = Recorder(db)
    ids = [collect(rec.record(generate(request(llama_pair, method=m, max_new_tokens=4))))[0].run_id
           for m in ("autoregressive", "speculative", "autoregressive")]
    listed = rec.runs()
    assert [r["id"] for r in listed] == ids[::-1]
    assert [r["method"] for r in listed] == ["autoregressive", "speculative", "autoregressive"]
    assert all(r["status"] == "finished" and r["new_tokens"] == 4 for r in listed)
    assert [r["id"] for r in rec.runs(limit=2)] == ids[:0:-1]


@pytest.mark.parametrize("method", ["autoregressive", "speculative"])
def test_cancel_event_stops_the_run_and_keeps_its_steps(llama_pair, db, method):
    rec, cancel = Recorder(db), threading.Event()
    seen, finished = [], None
    for ev in rec.record(generate(request(llama_pair, method, max_new_tokens=40), cancel)):
        if isinstance(ev, Step):
            seen.append(ev)
            if len(seen) == 3:
                cancel.set()
        elif isinstance(ev, RunFinished):
            finished = ev
    assert len(seen) == 3, "steps were made after the cancel"
    assert finished.status == "cancelled" and finished.error is None
    tokens = [t for s in seen for t in s.tokens]
    assert finished.token_ids == tokens and finished.stats.new_tokens == len(tokens) < 40

    _, steps, stored = rec.replay(finished.run_id)
    assert stored.status == "cancelled"
    assert events_as_dicts(steps) == events_as_dicts(seen)
    assert stored.token_ids == tokens


def test_consumer_stopping_early_is_stored_as_cancelled(llama_pair, db):
    rec = Recorder(db)
    recording = rec.record(generate(request(llama_pair, max_new_tokens=40)))
    started = next(recording)
    assert isinstance(started, RunStarted)
    first, second = next(recording), next(recording)
    assert isinstance(first, Step) and isinstance(second, Step)
    # while it runs, another reader (another process would do the same) sees it as running
    assert [(r["id"], r["status"]) for r in Recorder(db).runs()] == [(started.run_id, "running")]
    recording.close()  # the consumer goes away (a closed browser tab, a broken pipe)

    _, steps, stored = rec.replay(started.run_id)
    assert stored.status == "cancelled"
    assert events_as_dicts(steps) == events_as_dicts([first, second])
    assert stored.token_ids == first.tokens + second.tokens
    assert stored.stats.new_tokens == len(stored.token_ids)
    assert stored.stats.target_forwards == 2


def test_consumer_stopping_early_keeps_the_text_made_so_far(llama_pair, db):
    rec = Recorder(db)
    recording = rec.record(generate(request(llama_pair, method="autoregressive", max_new_tokens=40)))
    started = next(recording)
    steps = [next(recording) for _ in range(5)]
    recording.close()
    stored = rec.replay(started.run_id)[2]
    assert stored.token_ids == [t for s in steps for t in s.tokens]
    assert stored.text == "".join(t for s in steps for t in s.texts) != ""


def test_cancel_before_the_first_step(llama_pair, db, collect):
    cancel = threading.Event()
    cancel.set()
    rec = Recorder(db)
    started, steps, finished = collect(rec.record(generate(request(llama_pair), cancel)))
    assert steps == [] and finished.status == "cancelled" and finished.token_ids == [] and finished.text == ""
    assert finished.stats.new_tokens == 0 and finished.stats.tokens_per_s == 0.0
    _, stored_steps, stored = rec.replay(started.run_id)
    assert stored_steps == [] and stored.status == "cancelled"


@pytest.mark.parametrize("runtime", ["lean", "transformers"])
def test_a_model_failing_mid_run_is_stored_as_an_error_with_its_steps(llama_pair, db, collect, monkeypatch, runtime):
    calls = {"n": 0}
    for runner in (CachedLM, LeanLM):  # the sixth forward fails, whichever runtime runs it
        def flaky_forward(self, ids, keep=1, real_forward=runner.forward):
            calls["n"] += 1
            if calls["n"] == 6:
                raise RuntimeError("boom")
            return real_forward(self, ids, keep)
        monkeypatch.setattr(runner, "forward", flaky_forward)
    rec = Recorder(db)
    started, steps, finished = collect(rec.record(generate(request(llama_pair, method="autoregressive",
                                                                   runtime=runtime))))
    assert finished.status == "error" and finished.error == "RuntimeError: boom"
    assert len(steps) == 5 and finished.token_ids == [t for s in steps for t in s.tokens]
    _, stored_steps, stored = rec.replay(started.run_id)
    assert stored.status == "error" and stored.error == "RuntimeError: boom"
    assert len(stored_steps) == 5 and stored.token_ids == finished.token_ids


def test_wal_mode_is_on(db):
    Recorder(db)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_replay_of_an_unknown_run_is_a_clear_error(db):
    with pytest.raises(PlaygroundError, match="no run 42"):
        Recorder(db).replay(42)


def test_an_unusable_database_path_is_a_clear_error(tmp_path):
    with pytest.raises(PlaygroundError, match="cannot open the run database"):
        Recorder(tmp_path)  # a folder, not a file


def test_db_path_resolution(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_DB", raising=False)
    assert db_path(None) == "playground.db"
    monkeypatch.setenv("PLAYGROUND_DB", "/tmp/from-env.db")
    assert db_path(None) == "/tmp/from-env.db"
    assert db_path("/tmp/from-flag.db") == "/tmp/from-flag.db"
    monkeypatch.setenv("PLAYGROUND_DB", "")
    assert db_path(None) == "playground.db"


def test_recording_does_not_change_the_run(llama_pair, db, collect):
    """The recorder passes events through unchanged: same tokens as an unrecorded run."""
    live = collect(generate(request(llama_pair, temperature=1.0, seed=11)))[2]
    assert live.run_id is None
    torch.manual_seed(123)  # the global RNG plays no part
    recorded = collect(Recorder(db).record(generate(request(llama_pair, temperature=1.0, seed=11))))[2]
    assert recorded.token_ids == live.token_ids and recorded.run_id == 1


def test_a_database_from_before_prompt_texts_is_migrated_and_its_runs_replay(tmp_path, llama_pair, collect):
    old = tmp_path / "old.db"
    with closing(sqlite3.connect(old)) as conn:  # the tables as the first release made them
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at VARCHAR(32), method VARCHAR(64), "
                     "model VARCHAR(512), draft VARCHAR(512), prompt TEXT, prompt_ids JSON, settings JSON, "
                     "status VARCHAR(16), text TEXT, token_ids JSON, stats JSON, error TEXT)")
        conn.execute('CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs (id), '
                     '"index" INTEGER NOT NULL, accepted INTEGER NOT NULL, drafted INTEGER NOT NULL, '
                     'committed INTEGER NOT NULL, payload JSON NOT NULL, UNIQUE (run_id, "index"))')
        conn.execute("INSERT INTO runs (created_at, method, model, prompt, prompt_ids, settings, status, text, "
                     "token_ids) VALUES ('2026-11-22T00:00:00+00:00', 'autoregressive', 'm', 'p', '[5, 6]', '{}', "
                     "'finished', '', '[]')")
        conn.commit()
    rec = Recorder(old)
    started, steps, finished = rec.replay(1)
    assert started.prompt_ids == [5, 6] and started.prompt_texts == [] and finished.status == "finished"
    new_started, *_ = collect(rec.record(generate(Request(prompt=PROMPTS[0], model=llama_pair.target,
                                                          max_new_tokens=3))))
    assert rec.replay(new_started.run_id)[0].prompt_texts == new_started.prompt_texts != []
