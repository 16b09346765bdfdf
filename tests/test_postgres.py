"""The run database on PostgreSQL, as several replicas of the app share it (issue 25): a real server (tests/postgres.py)
records a run that replays identically, keeps each visitor's History private with a shared gallery, prunes by age and
size, and is made by the same migrations as SQLite, to exactly the schema of `Base.metadata`.

Skipped without Debian's postgresql binaries, failed instead in CI ($PLAYGROUND_REQUIRE_POSTGRES=1, .ci/run)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import postgres
import pytest
from conftest import PROMPTS, one_error_line
from sqlalchemy import create_engine, inspect, text
from test_migrations import differences, revision_of

from playground.engine import Request, generate
from playground.errors import PlaygroundError
from playground.events import RunStarted, Step
from playground.storage import migrations
from playground.storage import recorder as recorder_module
from playground.storage.recorder import Recorder
from playground.storage.retention import Retention

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
_names = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> str:
    """The URL of a throwaway server's `postgres` database, for the module's tests."""
    bindir = postgres.bin_dir()
    if bindir is None:
        postgres.unavailable("no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres.server(bindir))
        except (RuntimeError, OSError, TimeoutError) as exc:
            postgres.unavailable(f"the PostgreSQL server did not start: {exc}")
        yield url


@pytest.fixture
def pg(server) -> str:
    """The URL of a new, empty database of its own for each test (ids start at 1, nothing left by another test)."""
    name = f"runs_{next(_names)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server.replace("/postgres?", f"/{name}?")


@pytest.fixture
def recorders():
    """open(url, ...) -> a Recorder whose connections are closed after the test, before the server stops."""
    opened: list[Recorder] = []

    def open_one(*args, **kwargs) -> Recorder:
        opened.append(Recorder(*args, **kwargs))
        return opened[-1]

    yield open_one
    for recorder in opened:
        recorder.engine.dispose()


def request(pair, method: str = "speculative", **fields) -> Request:
    defaults = dict(prompt=PROMPTS[0], model=pair.target, method=method, max_new_tokens=24, stop_at_eos=False)
    if method == "speculative":
        defaults.update(draft=pair.draft, params={"gamma": 3})
    return Request(**{**defaults, **fields})


def record(recorder: Recorder, pair, prompt: str = PROMPTS[1], tokens: int = 6) -> int:
    events = list(recorder.record(generate(request(pair, "autoregressive", prompt=prompt, max_new_tokens=tokens))))
    return events[-1].run_id


def test_the_migrations_make_exactly_the_metadata_on_postgresql(pg, recorders):
    recorder = recorders(pg)
    assert revision_of(recorder.engine) == migrations.head()
    assert differences(recorder.engine) == []
    with recorder.engine.connect() as conn:  # the hosted-mode columns and their index came from revision r3
        assert conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'runs' "
                                 "AND indexname = 'ix_runs_owner'")).scalar() == "ix_runs_owner"


def test_a_database_at_an_older_revision_is_upgraded_on_postgresql(pg, recorders):
    engine = create_engine(pg)
    with engine.begin() as conn:
        migrations.command.upgrade(migrations.alembic_config(conn), migrations.PROMPT_TEXTS)
        conn.execute(text("INSERT INTO runs (created_at, method, model, prompt, prompt_ids, settings, status) "
                          "VALUES ('2026-12-01T00:00:00+00:00', 'autoregressive', 'm', 'p', '[5]', '{}', 'finished')"))
    assert revision_of(engine) == migrations.PROMPT_TEXTS
    engine.dispose()
    recorder = recorders(pg, create=False)
    assert revision_of(recorder.engine) == migrations.head() and differences(recorder.engine) == []
    assert [(r["id"], r["published"]) for r in recorder.runs()] == [(1, False)]
    assert recorder.visitor("someone").runs() == []  # runs from before hosted mode are nobody's


@pytest.mark.parametrize("method", ["autoregressive", "speculative"])
def test_a_run_replays_identically_from_postgresql(llama_pair, pg, recorders, collect, monkeypatch, method):
    monkeypatch.setattr(recorder_module, "FLUSH_EVERY_STEPS", 4)  # several batches of steps
    recorder = recorders(pg)
    started, steps, finished = collect(recorder.record(generate(request(llama_pair, method, temperature=0.8,
                                                                        seed=4))))
    assert started.run_id == 1 and finished.status == "finished" and len(finished.token_ids) == 24
    replica = recorders(pg, create=False)  # another replica reads it back
    r_started, r_steps, r_finished = replica.replay(started.run_id)
    assert asdict(r_started) == asdict(started)
    assert [asdict(s) for s in r_steps] == [asdict(s) for s in steps], "replayed steps differ from the live ones"
    assert asdict(r_finished) == asdict(finished)
    assert replica.export(started.run_id)["result"]["token_ids"] == finished.token_ids
    with replica.engine.connect() as conn:  # nothing is only in memory: plain SQL sees the run and its steps
        assert conn.execute(text("SELECT count(*) FROM steps WHERE run_id = 1")).scalar() == len(steps)


def test_another_replica_sees_a_run_being_recorded_and_it_ends_cancelled(llama_pair, pg, recorders):
    recorder, replica = recorders(pg), recorders(pg)
    recording = recorder.record(generate(request(llama_pair, max_new_tokens=40)))
    started = next(recording)
    first, second = next(recording), next(recording)
    assert isinstance(started, RunStarted) and isinstance(first, Step) and isinstance(second, Step)
    assert [(r["id"], r["status"]) for r in replica.runs()] == [(started.run_id, "running")]
    recording.close()  # the visitor went away
    _, steps, stored = replica.replay(started.run_id)
    assert stored.status == "cancelled" and stored.token_ids == first.tokens + second.tokens
    assert [asdict(s) for s in steps] == [asdict(first), asdict(second)]


def test_each_visitor_sees_their_own_runs_and_the_gallery_on_postgresql(llama_pair, pg, recorders):
    shared = recorders(pg)
    a, b = shared.visitor("visitor-a"), recorders(pg).visitor("visitor-b")  # b on another replica
    secret, kept = record(a, llama_pair, "# SECRET = 1\n"), record(a, llama_pair, "def kept():\n")
    assert [r["id"] for r in a.runs()] == [kept, secret] and b.runs() == [] and b.gallery() == []
    with pytest.raises(PlaygroundError, match=f"no run {secret}"):
        b.replay(secret)
    with pytest.raises(PlaygroundError, match="no run"):
        b.publish(secret)  # nobody publishes someone else's run
    a.publish(secret)
    assert [(r["id"], r["published"]) for r in b.gallery()] == [(secret, True)] and b.runs() == []
    assert b.replay(secret)[0].prompt == "# SECRET = 1\n"
    with pytest.raises(PlaygroundError, match="no run"):
        b.replay(kept)


def age(recorder: Recorder, run_id: int, days: float) -> None:
    with recorder.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET created_at = :at WHERE id = :id"),
                     {"at": (NOW - timedelta(days=days)).isoformat(timespec="seconds"), "id": run_id})


def test_retention_prunes_by_age_then_size_on_postgresql(llama_pair, pg, recorders):
    recorder = recorders(pg)
    runs = [record(recorder, llama_pair, f"x = {i}", tokens=8) for i in range(5)]
    for run_id, days in zip(runs, (40, 31, 2, 1, 0.1)):
        age(recorder, run_id, days)
    assert recorder.prune(Retention(days=30), now=NOW) == runs[:2]
    with recorder.engine.connect() as conn:
        weight = conn.execute(text("SELECT SUM(LENGTH(CAST(payload AS TEXT))) FROM steps WHERE run_id = :id"),
                              {"id": runs[2]}).scalar()
    assert recorder.prune(Retention(megabytes=2.5 * weight / 1e6), now=NOW) == runs[2:3]  # room for two runs
    assert sorted(r["id"] for r in recorder.runs()) == runs[3:]
    assert recorder.replay(runs[3])[2].status == "finished"


def test_replicas_opening_a_new_database_together_make_its_schema_once(pg, recorders):
    opened, failed = [], []

    def open_replica():
        try:
            opened.append(recorders(pg))
        except PlaygroundError as exc:
            failed.append(str(exc))

    threads = [threading.Thread(target=open_replica, daemon=True) for _ in range(4)]  # a hung one must not
    for thread in threads:                                                                # keep pytest alive
        thread.start()
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert failed == [] and len(opened) == 4
    with opened[0].engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [migrations.head()]


def test_the_command_line_on_postgresql_and_its_password_never_shown(llama_pair, pg, main, monkeypatch):
    status, _, err = main("export", 1, "--db", pg)  # reading commands make nothing in an empty database
    assert status == 2 and "not a run database" in one_error_line(err)
    engine = create_engine(pg)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    status, out, _ = main("db", "upgrade", "--db", pg)
    assert status == 0 and f"at revision {migrations.head()} (was empty)" in out
    monkeypatch.setenv("PLAYGROUND_DB", pg)
    status, out, err = main("export", 7)
    assert status == 2 and "no run 7" in one_error_line(err)
    status, out, _ = main("generate", "--model", llama_pair.target, "--prompt", "x = 1", "--max-new-tokens", 4,
                          "--json")
    generated = json.loads(out)
    assert status == 0 and generated["run_id"] == 1 and len(generated["token_ids"]) == 4
    status, out, _ = main("export", 1)
    exported = json.loads(out)
    assert status == 0 and exported["result"]["token_ids"] == generated["token_ids"] == \
        [t for step in exported["steps"] for t in step["tokens"]]
    wrong = pg.replace("postgres@", "postgres:hunter2@").replace("/runs_", "/missing_")
    status, _, err = main("export", 1, "--db", wrong)
    line = one_error_line(err)
    assert status == 2 and "cannot open the run database" in line and "does not exist" in line
    assert "hunter2" not in err and "postgres:***@" in line
