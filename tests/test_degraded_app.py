"""Issue 25, degraded, never broken, in the app: on a run database that cannot be opened or fails mid-run, the app
starts, every tab that records runs (Generate, Compare, Diffusion, DAG) shows its result, and one warning per click
says the runs were not stored; nothing shown holds SQL or the prompt."""

from __future__ import annotations

import os
import threading
from collections import deque
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from playground.app import common
from playground.app.generate import decoded
from playground.compare import dag as compare_dag
from playground.engine import Request
from playground.storage.recorder import Recorder

SECRET = "# SECRET api_key = 'sk-visitor-A-12345'\ndef f(x):\n"
VISITOR = SimpleNamespace(session_hash="session-1")


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """The app's warning toasts (common.warn), in order."""
    shown: list[str] = []
    monkeypatch.setattr(common, "warn", shown.append)
    return shown


@pytest.fixture(scope="module")
def damaged_app(tmp_path_factory):
    """The app built on a file of random bytes: it starts, and records nothing."""
    import app
    db = tmp_path_factory.mktemp("damaged") / "runs.db"
    db.write_bytes(os.urandom(8192))
    return app.build_app(str(db))


def handler(demo, tab: str):
    """The click handler of `tab` (its function `run`, defined in the tab's builder)."""
    found = [f.fn for f in demo.fns.values() if getattr(f.fn, "__qualname__", "") == f"{tab}.<locals>.run"]
    assert found, f"no run handler in {tab}"
    return found[0]


def one_not_stored_warning(shown: list[str], why: str) -> str:
    unstored = [w for w in shown if w.startswith("Not stored:")]
    assert len(unstored) == 1, shown
    assert why in unstored[0] and "INSERT" not in unstored[0] and "sk-visitor" not in unstored[0]
    return unstored[0]


def last(outputs):
    """A handler's last outputs, after running it to its end."""
    return deque(outputs, maxlen=1)[0]


def test_compare_on_a_damaged_database(damaged_app, warnings):
    final = last(handler(damaged_app, "compare_tab")(VISITOR, SECRET, "tiny-code", "tiny-code-draft", 4))
    one_not_stored_warning(warnings, "file is not a database")
    assert "Cannot run" not in final[0] and "identical" in final[0].lower()


def test_diffusion_on_a_damaged_database(damaged_app, warnings):
    final = last(handler(damaged_app, "diffusion_tab")(VISITOR, SECRET, "tiny-code-diffusion", "threshold", 0.9, 4,
                                                       4, ""))
    one_not_stored_warning(warnings, "file is not a database")
    assert "Cannot run" not in final[0]


def test_dag_on_a_damaged_database(damaged_app, warnings):
    picks = list(compare_dag.TAB_MODELS.values())
    final = last(handler(damaged_app, "dag_tab")(VISITOR, "trois cent douze", "greedy", *picks))
    one_not_stored_warning(warnings, "file is not a database")
    assert "Cannot run" not in final[0]


def test_history_on_a_damaged_database_is_empty_and_says_why(damaged_app, warnings, monkeypatch):
    fns = [f.fn for f in damaged_app.fns.values() if getattr(f.fn, "__qualname__", "") == "Replays.history"]
    from playground.app import history
    monkeypatch.setattr(history, "warn", warnings.append)
    table, _, _ = fns[0](VISITOR)
    assert warnings and "file is not a database" in warnings[0]
    assert "SELECT" not in warnings[0]


def read_only_after_start(rec: Recorder) -> None:
    """From now on every connection of `rec` refuses writes, as a database that turned read-only under the app."""
    rec.engine.dispose()
    event.listen(rec.engine, "connect", lambda conn, _record: conn.execute("PRAGMA query_only = 1"))


def test_generate_on_a_database_that_fails_mid_run(tmp_path, warnings):
    rec = Recorder(tmp_path / "runs.db")
    read_only_after_start(rec)
    req = Request(prompt=SECRET, model="tiny-code", method="speculative", draft="tiny-code-draft", max_new_tokens=6)
    final = last(decoded(rec, req, True, threading.Event()))
    warning = one_not_stored_warning(warnings, "attempt to write a readonly database")
    status = final[0]
    assert "run (not stored)" in status and "data-not-stored" in status and "Not stored" in status
    assert "sk-visitor" not in warning
    assert rec.runs() == []
