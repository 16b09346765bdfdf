"""A throwaway PostgreSQL server for tests/test_postgres.py: Debian's `postgresql` binaries, a cluster made by initdb
in a temporary folder, reached only through a Unix socket in that folder (listen_addresses='': no TCP port is opened,
so it cannot clash with another server), trust authentication, no fsync (nothing here must survive a crash), and
removed afterwards.

PostgreSQL refuses to run as root: as root (CI, this project's machines) the server runs as the `postgres` user the
Debian package makes (else `nobody`), through util-linux's runuser. Without the binaries the tests skip, except where
$PLAYGROUND_REQUIRE_POSTGRES=1 (.ci/run installs them and sets it): there a missing server fails them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_ENV = "PLAYGROUND_REQUIRE_POSTGRES"
SUPERUSER = "postgres"


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/VERSION/bin, newest version first."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    return Path(found[0]).parent if found else None


def unavailable(reason: str):
    """Skip, or fail where PostgreSQL is required (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (${REQUIRE_ENV}=1: CI installs Debian's postgresql and must test on it)")
    pytest.skip(f"{reason}: install Debian's postgresql (`apt-get install postgresql`) to run these tests")


def _run_as() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as a user it accepts."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root and there is no `postgres` or `nobody` user to run PostgreSQL as")


def _owned_by_runner(folder: Path, prefix: list[str]) -> None:
    """The server's user must own its data folder (initdb writes it; the socket goes beside it)."""
    if prefix:
        entry = pwd.getpwnam(prefix[2])
        os.chown(folder, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    # The socket file is named after the port; any port would do in a private folder, a free one avoids surprise.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _must(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-1500:]}")


@contextmanager
def server(bindir: Path) -> Iterator[str]:
    """A running server; yields the SQLAlchemy URL of its `postgres` database, as the superuser."""
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="playground-pg-"))  # not pytest's tmp_path: its folders are root's, 0700
    os.chmod(root, 0o755)
    data, port = root / "data", _free_port()
    data.mkdir()
    _owned_by_runner(data, prefix)
    _owned_by_runner(root, prefix)  # pg_ctl's log file and the socket go in root
    try:
        _must(subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                              "--no-sync", "-E", "UTF8", "--locale=C"], capture_output=True, text=True, timeout=120),
              "initdb")
        options = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off " \
                  f"-c full_page_writes=off"
        _must(subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                              "-t", "60", "-o", options, "start"], capture_output=True, text=True, timeout=90),
              "pg_ctl start")
        try:
            yield f"postgresql+psycopg://{SUPERUSER}@/postgres?host={root}&port={port}"
        finally:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
