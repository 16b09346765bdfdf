"""Runs left `running` by a process that is gone: killed mid-run, or stopped by a database that failed under it.

Each run row names its writer: the host, the machine's boot, the process id and the process's start time
(`writer_id`). When a recorder opens the database, a `running` run is stale when its writer is provably gone:

- on this host and boot, no process with that id, or one that started at another time (the id was reused);
- on this host, another boot: the machine restarted since;
- on another host (replicas sharing a database), nothing can be checked there: stale once older than
  `OTHER_HOST_STALE_S`, far beyond the longest run a request may ask for;
- no writer (a row from before writers were stored): stale, as only one process used a database then.

So several processes may share a database: a run being recorded by a live process is never marked.
"""

from __future__ import annotations

import functools
import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

ERROR = "interrupted: the process recording this run stopped before the run ended"
OTHER_HOST_STALE_S = 24 * 3600
_SEP = "|"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:  # not Linux: the process start time below tells reused ids apart where it can
        return ""


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, Linux), "" where that cannot be read, None if there is
    no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]  # field 22; the name in parentheses may hold spaces
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _alive_elsewhere(pid)
    except (OSError, IndexError):
        return ""


def _alive_elsewhere(pid: int) -> str | None:
    """No /proc: whether a process `pid` exists at all (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # it exists, owned by someone else
        pass
    return ""


def writer_id(pid: int | None = None) -> str:
    """Who records a run: host|boot|pid|start time of the process (this one by default)."""
    return _own_writer(os.getpid()) if pid is None else _writer(pid)


def _writer(pid: int) -> str:
    return _SEP.join((socket.gethostname(), _boot_id(), str(pid), _started(pid) or ""))


@functools.lru_cache(maxsize=1)
def _own_writer(pid: int) -> str:
    """This process's writer, read once (keyed by its id, so a forked child reads its own): every run it starts
    names the same writer, and /proc need not be read again for each."""
    return _writer(pid)


def writer_gone(writer: str | None, created_at: str, now: datetime | None = None) -> bool:
    """Whether the process that wrote a `running` run is provably gone (see the module's doc)."""
    if not writer:
        return True
    host, boot, pid, started = (writer.split(_SEP) + ["", "", "", ""])[:4]
    if host != socket.gethostname():
        begun = datetime.fromisoformat(created_at)
        return (now or datetime.now(UTC)) - begun > timedelta(seconds=OTHER_HOST_STALE_S)
    if boot != _boot_id() or not pid.isdigit():
        return True
    now_started = _started(int(pid))
    return now_started is None or bool(started and now_started and started != now_started)


def stale_runs(engine, runs_table, now: datetime | None = None) -> list[int]:
    """The ids of the `running` runs whose writer is gone, oldest first."""
    query = select(runs_table.c.id, runs_table.c.writer, runs_table.c.created_at).where(
        runs_table.c.status == "running").order_by(runs_table.c.id)
    with engine.connect() as conn:
        return [run_id for run_id, writer, created in conn.execute(query) if writer_gone(writer, created, now)]
