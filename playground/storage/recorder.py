"""Recording runs into the run database (SQLite or PostgreSQL: storage/database.py) and reading them back as the
same typed events.

`Recorder.record(events)` passes a run's events through unchanged while storing them: the run row when it starts,
steps in batches (one commit per batch keeps the cost per step to microseconds), the outcome when it ends. A run whose
consumer stops early is stored as cancelled. `Recorder.replay(run_id)` rebuilds RunStarted, the Steps and
RunFinished from the database alone, so a replay draws exactly what the live view drew.

A recorder made for one visitor (`Recorder.visitor(owner)`, hosted mode) stores that owner on its runs and lists,
replays and publishes only that visitor's runs, the runs published to the gallery being readable by everyone: a run
of someone else reads as a run that does not exist.

Degraded, never broken: a database that fails while a run is recorded (locked, damaged, read-only, full) stops the
storing of that run, not the run: its events go on unchanged, and its RunFinished says why it was not stored
(`not_stored`, one line without SQL). A run left `running` by a process that is gone is marked failed when a
recorder next opens the database (storage/interrupted.py).
"""

from __future__ import annotations

import copy
import functools
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from playground import hosted
from playground.errors import PlaygroundError, StorageError
from playground.events import RunFinished, RunStarted, Stats, Step
from playground.storage import database, interrupted
from playground.storage import payload as step_format
from playground.storage.database import DEFAULT_DB, db_path  # noqa: F401 (where the CLI and the app find them)
from playground.storage.retention import Retention, prune
from playground.storage.schema import RunRow, StepRow

FLUSH_EVERY_STEPS = 64
FLUSH_EVERY_S = 1.0


def _step_row(run_id: int, step: Step) -> dict:
    return {"run_id": run_id, "index": step.index, "accepted": step.accepted, "drafted": step.proposed,
            "committed": len(step.tokens), "payload": step_format.step_payload(step)}


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong: SQLAlchemy's own message adds the SQL it ran and a link on more lines."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _clear_errors(method):
    """A locked or damaged database file as one PlaygroundError line, not a traceback with SQL in it."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StorageError(f"cannot use the run database {self.path!r}: {_reason(exc)}", _reason(exc)) from None
        except ValueError as exc:  # json.JSONDecodeError: a stored JSON column that is not JSON
            raise PlaygroundError(f"cannot read the run database {self.path!r}: a stored row is not valid JSON "
                                  f"({exc}): the database was changed outside the playground") from None
    return wrapped


class Recorder:
    def __init__(self, path: str | Path, create: bool = True, retention: Retention | None = None):
        """Open the run database `path` (a SQLite file's path, or any SQLAlchemy URL: storage/database.py), its
        schema upgraded to the newest migration; create=False (reading commands) only opens one that exists, and
        never makes a file or a folder. With a `retention`, every run that ends prunes the database to it."""
        self.path, self.retention = database.shown(path), retention  # a URL's password never reaches a message
        self.owner: str | None = None  # set by visitor(): runs are then private to it
        if not create and database.missing_file(path):
            raise PlaygroundError(f"no run database at {self.path!r}")
        try:
            self.engine = database.open_engine(path, create)
        except Exception as exc:
            raise StorageError(f"cannot open the run database {self.path!r}: {_reason(exc)}", _reason(exc)) from None
        self._mark_interrupted()

    def visitor(self, owner: str) -> Recorder:
        """This database as the visitor `owner` sees it: their own runs, and the gallery (one connection pool)."""
        if not owner:
            raise PlaygroundError("a visitor needs an identity")
        mine = copy.copy(self)
        mine.owner = str(owner)
        return mine

    def _visible(self, row: RunRow | None) -> bool:
        return row is not None and (self.owner is None or row.owner == self.owner or bool(row.published))

    # ------------------------------------------------------------ writing

    def record(self, events: Iterable) -> Iterator:
        """Yield `events` unchanged while storing them; ids of stored runs are set on RunStarted/RunFinished. A write
        that fails stops the storing of this run, not the run: the rest of its events pass unstored, and its
        RunFinished says why (`not_stored`, once; `run_id` None)."""
        run = _Recording(budget=hosted.limit("stored MB per run", float("inf")) * 1e6)  # bytes, hosted mode only
        try:
            for ev in events:
                if run.failed is None:
                    try:
                        self._store(run, ev)
                    except StorageError as exc:
                        run.failed = exc.reason
                        self._abandon(run)
                if isinstance(ev, RunFinished) and run.failed is not None:
                    ev.run_id, ev.not_stored = None, run.failed
                yield ev
        finally:
            if run.id is not None and not run.finished and run.failed is None:  # the consumer stopped early: keep
                _quietly(lambda: (self._flush(run.pending), self._mark(run.id, "cancelled")))  # what was made
            if run.id is not None and self.retention is not None and self.retention.limited:
                _quietly(self.prune)

    def _store(self, run: _Recording, ev) -> None:
        """Store one event of `run`: the run row, a step (written in batches) or the outcome."""
        if isinstance(ev, RunStarted):
            run.id = ev.run_id = self._start(ev)
            run.stored = len(ev.prompt) + len(json.dumps(ev.prompt_texts)) if run.budget < float("inf") else 0
        elif isinstance(ev, Step) and run.id is not None:
            row = _step_row(run.id, ev)
            if run.budget < float("inf"):
                run.stored += len(json.dumps(row["payload"]))
                if run.stored > run.budget:  # stored as cancelled, with the steps that fitted, by record's `finally`
                    raise hosted.refusal("stored MB per run", run.stored / 1e6, run.budget / 1e6)
            run.pending.append(row)
            if len(run.pending) >= FLUSH_EVERY_STEPS or time.perf_counter() - run.last_flush > FLUSH_EVERY_S:
                self._flush(run.pending)
                run.pending, run.last_flush = [], time.perf_counter()
        elif isinstance(ev, RunFinished) and run.id is not None:
            self._flush(run.pending)
            run.pending = []
            self._finish(run.id, ev)
            ev.run_id, run.finished = run.id, True

    def _abandon(self, run: _Recording) -> None:
        """After a write failed: the part of the run already stored is marked failed, where the database still lets
        us; else it stays `running` until a recorder opens the database after this process ends."""
        run.pending = []
        if run.id is not None:
            _quietly(lambda: self._mark(run.id, "error", f"not stored completely: {run.failed}"))

    def _mark_interrupted(self) -> None:
        """Runs left `running` by a process that is gone: marked failed (storage/interrupted.py). A database that
        cannot be written now keeps them for a later start."""
        try:
            for run_id in interrupted.stale_runs(self.engine, RunRow.__table__):
                self._mark(run_id, "error", interrupted.ERROR)
        except (PlaygroundError, SQLAlchemyError, sqlite3.Error):  # a damaged step among theirs, too
            pass

    @_clear_errors
    def _start(self, ev: RunStarted) -> int:
        with Session(self.engine) as s:
            row = RunRow(created_at=datetime.now(UTC).isoformat(timespec="seconds"), method=ev.method,
                         model=ev.model, draft=ev.draft, prompt=ev.prompt, prompt_ids=ev.prompt_ids,
                         prompt_texts=ev.prompt_texts, settings=ev.settings, status="running", owner=self.owner,
                         published=False, writer=interrupted.writer_id())
            s.add(row)
            s.commit()
            return row.id

    @_clear_errors
    def _flush(self, rows: list[dict]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(StepRow.__table__.insert(), rows)

    @_clear_errors
    def _finish(self, run_id: int, ev: RunFinished) -> None:
        with Session(self.engine) as s:
            row = s.get(RunRow, run_id)
            row.status, row.text, row.token_ids = ev.status, ev.text, ev.token_ids
            row.stats, row.error = asdict(ev.stats), ev.error
            s.commit()

    @_clear_errors
    def _mark(self, run_id: int, status: str, error: str | None = None) -> None:
        with Session(self.engine) as s:
            row = s.get(RunRow, run_id)
            if row.status == "running":
                steps = self._steps(row)
                row.status, row.error = status, error
                row.token_ids = [t for st in steps for t in st.tokens]
                row.text = "".join(t for st in steps for t in st.texts)  # the engine's decode never ran
                row.stats = asdict(Stats.from_steps(steps, sum(st.seconds for st in steps)))
                s.commit()

    @_clear_errors
    def prune(self, retention: Retention | None = None, now: datetime | None = None) -> list[int]:
        """Remove the runs `retention` (default: this recorder's) does not keep; the ids removed, oldest first."""
        return prune(self.engine, retention or self.retention or Retention(), now)

    # ------------------------------------------------------------ reading

    @_clear_errors
    def runs(self, limit: int = 100) -> list[dict]:
        """Newest first: id, time, method, models, status, prompt start, tokens, tokens/s and whether it is in the
        gallery. A visitor's recorder lists that visitor's runs only."""
        query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
        return self._listed(query if self.owner is None else query.where(RunRow.owner == self.owner))

    @_clear_errors
    def gallery(self, limit: int = 100) -> list[dict]:
        """The runs their visitors published for everyone, newest first, as `runs` lists them."""
        return self._listed(select(RunRow).where(RunRow.published.is_(True)).order_by(RunRow.id.desc()).limit(limit))

    def _listed(self, query) -> list[dict]:
        with Session(self.engine) as s:
            return [{"id": r.id, "created_at": r.created_at, "method": r.method, "model": r.model,
                     "draft": r.draft, "status": r.status, "prompt": r.prompt,
                     "new_tokens": (r.stats or {}).get("new_tokens"),
                     "tokens_per_s": (r.stats or {}).get("tokens_per_s"), "published": bool(r.published)}
                    for r in s.scalars(query).all()]

    @_clear_errors
    def publish(self, run_id: int) -> None:
        """Put run `run_id` in the gallery, where every visitor can list and replay it: only its own visitor can."""
        with Session(self.engine) as s:
            row = s.get(RunRow, int(run_id))
            if row is None or self.owner is not None and row.owner != self.owner:
                raise PlaygroundError(f"no run {run_id} in {self.path}")
            row.published = True
            s.commit()

    @_clear_errors
    def replay(self, run_id: int) -> tuple[RunStarted, list[Step], RunFinished]:
        """The run's events, rebuilt from the database alone."""
        with Session(self.engine) as s:
            row = s.get(RunRow, int(run_id))
            if not self._visible(row):  # another visitor's run reads as a missing one
                raise PlaygroundError(f"no run {run_id} in {self.path}")
            started = RunStarted(method=row.method, model=row.model, draft=row.draft, prompt=row.prompt,
                                 prompt_ids=list(row.prompt_ids), settings=dict(row.settings), run_id=row.id,
                                 prompt_texts=list(row.prompt_texts or []))
            steps = self._steps(row)
            finished = RunFinished(status=row.status, text=row.text or "", token_ids=list(row.token_ids or []),
                                   stats=Stats(**(row.stats or {})), error=row.error, run_id=row.id)
            return started, steps, finished

    def _steps(self, row: RunRow) -> list[Step]:
        try:
            return [step_format.step_from_payload(r.payload) for r in row.steps]
        except PlaygroundError as exc:
            raise PlaygroundError(f"cannot read run {row.id} of {self.path!r}: {exc}") from None

    def export(self, run_id: int) -> dict:
        """The run as JSON-ready data: its steps in the current step format, whose version is `version`."""
        started, steps, finished = self.replay(run_id)
        return {"version": step_format.VERSION, "run_id": started.run_id, "run": asdict(started),
                "steps": [step_format.step_record(s) for s in steps], "result": asdict(finished)}


@dataclass
class _Recording:
    """What record() knows of the run it stores."""
    budget: float                       # bytes it may store (hosted mode), else inf
    id: int | None = None               # its row, once written
    pending: list = field(default_factory=list)  # step rows not written yet
    last_flush: float = field(default_factory=time.perf_counter)
    stored: int = 0                     # bytes stored, counted against the budget
    finished: bool = False              # its outcome is stored
    failed: str | None = None           # why it stopped being stored


def _quietly(write) -> None:
    """A write nobody waits on (a cancelled run's end, pruning): a database that fails it (or holds a damaged step
    it reads first) fails it alone."""
    try:
        write()
    except PlaygroundError:
        pass

