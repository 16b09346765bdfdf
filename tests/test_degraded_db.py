"""Issue 25, degraded, never broken: a run database that is damaged, locked, read-only or full never stops a run.

The command line prints the whole result, then one warning line, and exits with status 3 (cli.NOT_STORED); the
recorder stops storing a run at its first failed write (start, step batch or outcome) and says why once, on the
run's RunFinished. Faults are real SQLite ones where they can be made deterministic (a file of random bytes, another
writer's lock, an immutable or read-only folder, PRAGMA max_page_count); where a fault must hit one kind of write,
the connection itself fails that statement as SQLite would. The app's side is in test_degraded_app.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from contextlib import closing

import pytest
from conftest import ROOT, _collect, one_error_line

from playground import cli
from playground.engine import Request, generate
from playground.errors import StorageError
from playground.storage import database as database_module
from playground.storage import recorder as recorder_module
from playground.storage.degraded import Unrecorded, open_for_runs
from playground.storage.recorder import Recorder

MODEL = "tiny-code"
PROMPT = "def add(a, b):\n"
LONG_PROMPT = "def f(x):\n    return x + 1\n\n\n" * 40  # its run row needs more pages than the first
SECRET = "SECRET-sk-visitor-A-12345"


def generate_args(db, prompt=PROMPT, *extra) -> list:
    return ["generate", "--model", MODEL, "--prompt", prompt, "--max-new-tokens", 4, "--db", db, *extra]


def request(prompt=PROMPT, tokens=6) -> Request:
    return Request(prompt=prompt, model=MODEL, max_new_tokens=tokens, stop_at_eos=False)


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """What `generate` prints on a healthy database, to compare the degraded runs' output with."""
    db = tmp_path_factory.mktemp("healthy") / "runs.db"
    _, _, finished = _collect(Recorder(db).record(generate(request(tokens=4))))
    return finished.text


def not_stored(status, out, err, expected_text, *words) -> str:
    """The checks every degraded `generate` passes; the warning line."""
    assert status == cli.NOT_STORED, err
    assert out == expected_text, "the result was not printed whole"
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines[0].startswith("[run (not stored): 4 tokens, ")
    warning = lines[-1]
    assert len(lines) == 2 and warning.startswith("warning: run not stored: ")
    for word in words:
        assert word in warning, warning
    assert "INSERT" not in warning and "SELECT" not in warning and "sqlalche.me" not in warning
    assert "def add" not in warning and SECRET not in warning
    return warning


# ------------------------------------------------------------ the command line, opening a database that fails


def test_generate_on_a_damaged_database_prints_its_result_and_one_warning(db, main, expected):
    db.write_bytes(os.urandom(8192))
    before = db.read_bytes()
    not_stored(*main(*generate_args(db)), expected, "file is not a database", repr(str(db)))
    assert db.read_bytes() == before, "the damaged file was changed"


def test_generate_on_a_locked_database(db, main, expected, stored_runs):
    Recorder(db).engine.dispose()
    with closing(sqlite3.connect(db, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the database (SQLite waits 5 s, then gives up)
        status, out, err = main(*generate_args(db))
        holder.execute("ROLLBACK")
    not_stored(status, out, err, expected, "database is locked")
    assert stored_runs(db) == []


@pytest.fixture
def read_only():
    """read_only(path): the file or folder can no longer be written, even by root (chattr +i there); undone after."""
    made = []

    def make(path):
        if os.geteuid() == 0:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
                pytest.skip("root, and no chattr +i here: nothing is read-only to root")
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
        made.append(path)

    yield make
    for path in reversed(made):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_generate_on_a_read_only_database(tmp_path, main, expected, read_only, stored_runs):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.db"
    assert main(*generate_args(db))[0] == 0
    before = db.read_bytes()
    read_only(db)
    read_only(folder)
    warning = not_stored(*main(*generate_args(db)), expected)
    assert "unable to open database file" in warning or "readonly" in warning
    assert db.read_bytes() == before and stored_runs(db) == [(1, "finished")]


def test_generate_into_a_read_only_folder(tmp_path, main, expected, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder)
    not_stored(*main(*generate_args(folder / "runs.db")), expected, "unable to open database file")
    assert list(folder.iterdir()) == []


@pytest.fixture
def full_disk(monkeypatch):
    """full_disk(db): from now on the database cannot grow by a page, as on a full disk (SQLITE_FULL)."""
    def fill(db):
        with closing(sqlite3.connect(db)) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        pragmas = database_module._sqlite_pragmas

        def capped(dbapi_conn, record):
            pragmas(dbapi_conn, record)
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")
        monkeypatch.setattr(database_module, "_sqlite_pragmas", capped)
    return fill


def test_generate_on_a_full_disk(db, main, full_disk, stored_runs):
    Recorder(db).engine.dispose()
    full_disk(db)
    status, out, err = main(*generate_args(db, LONG_PROMPT))
    assert status == cli.NOT_STORED and out and "Traceback" not in err
    warning = err.strip().splitlines()[-1]
    assert warning.startswith("warning: run not stored: ") and "database or disk is full" in warning
    assert "def f" not in warning and "INSERT" not in warning
    assert stored_runs(db) == []


def test_generate_json_says_the_run_was_not_stored(db, main):
    db.write_bytes(os.urandom(4096))
    status, out, err = main(*generate_args(db, PROMPT, "--json"))
    result = json.loads(out)
    assert status == cli.NOT_STORED and result["run_id"] is None
    assert result["not_stored"] == "file is not a database" and len(result["token_ids"]) == 4


@pytest.mark.parametrize("command", [("export", 1), ("gallery", 1, "--out", "site"), ("prune", "--days", 1)])
def test_reading_commands_on_a_damaged_database_are_one_line(tmp_path, db, main, command):
    db.write_bytes(os.urandom(8192))
    args = [a if a != "site" else tmp_path / "site" for a in command]
    status, out, err = main(*args, "--db", db)
    assert status == 2 and out == ""
    assert "file is not a database" in one_error_line(err)


def test_generate_on_a_damaged_database_as_a_process(tmp_path, run_cli):
    """The whole program, not main() alone: no traceback from anything at exit either."""
    db = tmp_path / "runs.db"
    db.write_bytes(os.urandom(8192))
    done = run_cli(*generate_args(db, PROMPT), cwd=ROOT)
    assert done.returncode == cli.NOT_STORED and done.stdout.strip()
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("warning: run not stored: ")


# ------------------------------------------------------------ the recorder, a database failing mid-run


@pytest.fixture
def failing(monkeypatch):
    """failing(recorder, statement): every later statement of the recorder starting with `statement` fails with
    SQLite's full-disk error; the number of statements that failed is returned in a list."""
    from sqlalchemy import event

    def fail(rec: Recorder, statement: str) -> list:
        tries = []

        def before(conn, cursor, sql, params, context, executemany):
            if sql.lstrip().upper().startswith(statement):
                tries.append(sql)
                raise sqlite3.OperationalError("database or disk is full")
        event.listen(rec.engine, "before_cursor_execute", before)
        return tries
    return fail


@pytest.mark.parametrize("statement, left", [("INSERT INTO RUNS", []), ("INSERT INTO STEPS", [(1, "error")]),
                                             ("UPDATE RUNS", [(1, "running")])],
                         ids=["run-start", "step-batch", "finish"])
def test_a_failed_write_stops_recording_the_run_not_the_run(db, failing, monkeypatch, stored_runs, statement, left):
    monkeypatch.setattr(recorder_module, "FLUSH_EVERY_STEPS", 2)  # several batches: only the first is tried
    rec = Recorder(db)
    tries = failing(rec, statement)
    started, steps, finished = _collect(rec.record(generate(request(tokens=6))))
    assert finished.status == "finished" and len(steps) == 6 and len(finished.token_ids) == 6
    assert finished.not_stored == "database or disk is full" and finished.run_id is None
    assert len(tries) == (1 if statement != "UPDATE RUNS" else 2), "it went on writing after the first failure"
    assert stored_runs(db) == left  # a partly stored run is marked failed where the database lets us


def test_a_partly_stored_run_says_why(db, failing, monkeypatch):
    monkeypatch.setattr(recorder_module, "FLUSH_EVERY_STEPS", 2)
    rec = Recorder(db)
    failing(rec, "INSERT INTO STEPS")
    started, _, _ = _collect(rec.record(generate(request())))
    _, _, stored = rec.replay(started.run_id)
    assert stored.status == "error" and stored.error == "not stored completely: database or disk is full"


def test_a_cancelled_run_on_a_failing_database_ends_quietly(db, failing):
    rec = Recorder(db)
    failing(rec, "INSERT INTO STEPS")
    failing(rec, "UPDATE")
    events = rec.record(generate(request()))
    for ev in events:
        if type(ev).__name__ == "Step":
            break
    events.close()  # the consumer went away: its cancelled run cannot be written, and that is no error


def test_a_run_over_its_storage_budget_is_still_refused(db, monkeypatch):
    """A write failure is swallowed; the hosted budget's refusal is not (it is no storage error)."""
    from playground import hosted
    from playground.errors import PlaygroundError
    monkeypatch.setattr(hosted, "limit", lambda name, default: 1e-9 if name == "stored MB per run" else default)
    with pytest.raises(PlaygroundError, match="stored MB per run") as caught:
        _collect(Recorder(db).record(generate(request())))
    assert not isinstance(caught.value, StorageError)


def test_a_database_that_cannot_be_opened_runs_unrecorded(tmp_path):
    db = tmp_path / "runs.db"
    db.write_bytes(os.urandom(4096))
    rec = open_for_runs(db)
    assert isinstance(rec, Unrecorded)
    _, steps, finished = _collect(rec.visitor("someone").record(generate(request())))
    assert len(steps) == 6 and finished.not_stored == "file is not a database"
    with pytest.raises(StorageError, match="file is not a database"):
        rec.runs()
