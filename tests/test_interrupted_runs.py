"""Issue 25: a run interrupted mid-write (its process killed while the run is `running`) reads as failed once a
recorder opens the database again (the app's start, any command that opens it), and only a run whose writer is
provably gone: a run being recorded by a live process, here or on another host, is left alone."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ROOT, _cli_env
from sqlalchemy.orm import Session

from playground.errors import StorageError
from playground.storage import interrupted
from playground.storage.recorder import Recorder, RunRow

KILLED_MID_RUN = textwrap.dedent("""
    import os, signal, sys
    from playground.engine import Request, generate
    from playground.storage import recorder
    from playground.storage.recorder import Recorder
    recorder.FLUSH_EVERY_STEPS = 2  # some steps reach the database before the kill
    events = Recorder(sys.argv[1]).record(generate(Request(prompt="def add(a, b):", model="tiny-code",
                                                           max_new_tokens=32, stop_at_eos=False)))
    for i, ev in enumerate(events):
        if i == 5:  # RunStarted and four steps: two batches written
            os.kill(os.getpid(), signal.SIGKILL)
""")


def statuses(db) -> list[tuple]:
    with Session(Recorder(db, create=False).engine) as s:
        return [(r.id, r.status, r.error) for r in s.query(RunRow).order_by(RunRow.id)]


def test_a_run_killed_mid_write_reads_as_failed_at_the_next_start(db, main):
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_RUN, str(db)], cwd=ROOT, env=_cli_env(),
                            capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with closing(sqlite3.connect(db)) as conn:  # as the killed process left it, read without the recorder
        assert conn.execute("SELECT status FROM runs").fetchall() == [("running",)]
    status, out, _ = main("export", 1, "--db", db)  # a command that opens the database marks it
    assert status == 0
    result = json.loads(out)["result"]
    assert result["status"] == "error" and result["error"] == interrupted.ERROR
    assert len(result["token_ids"]) == 4, "the steps stored before the kill are kept"


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def running_row(db, writer: str | None, age_s: float = 0) -> int:
    rec = Recorder(db)
    created = (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(timespec="seconds")
    with Session(rec.engine) as s:
        row = RunRow(created_at=created, method="autoregressive", model="tiny-code", draft=None, prompt="x",
                     prompt_ids=[1], prompt_texts=["x"], settings={}, status="running", writer=writer)
        s.add(row)
        s.commit()
        return row.id


def host_boot_pid_start(writer: str) -> list[str]:
    return writer.split("|")


def replaced(writer: str, index: int, value: str) -> str:
    parts = host_boot_pid_start(writer)
    parts[index] = value
    return "|".join(parts)


ME = interrupted.writer_id()
CASES = {
    "this-live-process": (ME, 0, "running"),
    "a-dead-process": (interrupted.writer_id(dead_pid()), 0, "error"),
    "a-reused-pid": (replaced(ME, 3, "1"), 0, "error"),  # this pid, but a process started at another time
    "another-boot": (replaced(ME, 1, "another-boot"), 0, "error"),
    "another-host-recently": (replaced(ME, 0, "other-host"), 60, "running"),
    "another-host-long-ago": (replaced(ME, 0, "other-host"), interrupted.OTHER_HOST_STALE_S + 60, "error"),
    "no-writer": (None, 0, "error"),  # stored before writers were: one process per database then
}


@pytest.mark.parametrize("case", CASES)
def test_only_runs_whose_writer_is_gone_are_marked(db, case):
    writer, age, after = CASES[case]
    run_id = running_row(db, writer, age)
    assert statuses(db) == [(run_id, after, interrupted.ERROR if after == "error" else None)]


def test_the_apps_start_marks_interrupted_runs(db):
    import app
    run_id = running_row(db, interrupted.writer_id(dead_pid()))
    app.build_app(str(db))
    assert statuses(db)[0][:2] == (run_id, "error")


def test_a_start_that_cannot_write_leaves_them_for_a_later_one(db, monkeypatch):
    """A database that cannot be written at start is opened all the same; the run is marked when it can be."""
    run_id = running_row(db, None)

    def cannot_write(*_args):
        raise StorageError("cannot use the run database: attempt to write a readonly database")
    monkeypatch.setattr(Recorder, "_mark", cannot_write)
    Recorder(db)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("running",)]
    monkeypatch.undo()
    assert statuses(db)[0][:2] == (run_id, "error")


def test_the_writer_is_this_process(db):
    host, boot, pid, started = host_boot_pid_start(ME)
    assert host == socket.gethostname() and pid == str(os.getpid())
    assert not interrupted.writer_gone(ME, datetime.now(UTC).isoformat())
