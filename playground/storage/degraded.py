"""A run database that cannot be opened (damaged, read-only, locked, on a full disk) must not stop decoding: the
command line and the app then record through `Unrecorded`, which passes every run's events through unstored and
says why on each RunFinished (`not_stored`), as the Recorder does for a database that fails mid-run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from playground.errors import StorageError
from playground.events import RunFinished
from playground.storage.recorder import Recorder
from playground.storage.retention import Retention


class Unrecorded:
    """Stands in for a Recorder whose database could not be opened: runs pass unstored; reading (History, export)
    is the one-line error that opening was."""

    def __init__(self, path: str, error: StorageError):
        self.path, self.error = path, error
        self.owner, self.retention = None, None

    def visitor(self, owner: str) -> Unrecorded:
        return self  # no runs to keep apart

    def record(self, events: Iterable) -> Iterator:
        for ev in events:
            if isinstance(ev, RunFinished):
                ev.not_stored = self.error.reason
            yield ev

    def _unreadable(self, *_args, **_kwargs):
        raise self.error

    runs = gallery = publish = replay = export = prune = _unreadable


def open_for_runs(path: str | Path, retention: Retention | None = None) -> Recorder | Unrecorded:
    """A Recorder of the database at `path`, or, where it cannot be opened, an Unrecorded that says why."""
    try:
        return Recorder(path, retention=retention)
    except StorageError as exc:
        return Unrecorded(str(path), exc)
