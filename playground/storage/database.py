"""Where the runs live: a SQLAlchemy URL (`postgresql+psycopg://user:pw@host/db`, `sqlite:///runs.db`), or a plain
path, which names a SQLite file as it always did.

SQLite is one file on one machine: WAL mode lets the app and the CLI read while a run is written. Several replicas of
the app share one PostgreSQL database instead. Whatever the backend, opening a database brings its schema to the
newest migration (playground/storage/migrations). A URL is only ever shown with its password hidden.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from playground.errors import PlaygroundError
from playground.storage import migrations

DEFAULT_DB = "playground.db"
ENV = "PLAYGROUND_DB"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")  # what tells a URL from a path
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")  # for text that does not even parse as a URL


def db_path(cli_value: str | None = None) -> str:
    """--db, else $PLAYGROUND_DB, else playground.db in the working directory."""
    return cli_value or os.environ.get(ENV) or DEFAULT_DB


def is_url(target: str | Path) -> bool:
    return bool(_SCHEME.match(str(target)))


def to_url(target: str | Path) -> URL:
    """The SQLAlchemy URL of `target`: a URL as written, anything else the path of a SQLite file."""
    if not is_url(target):
        return URL.create("sqlite", database=str(target))
    try:
        return make_url(str(target))
    except (ArgumentError, ValueError):  # the message would not hide the password: say it ourselves
        raise PlaygroundError(f"{shown(target)!r} is not a database URL (dialect+driver://user:password@host/name)"
                              ) from None


def shown(target: str | Path) -> str:
    """`target` as messages name it: a path as given, a URL with its password as ***."""
    text = str(target)
    if not is_url(text):
        return text
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", text)


def sqlite_file(target: str | Path) -> str | None:
    """The file of a SQLite database (None for an in-memory one or another backend)."""
    return _file_of(to_url(target))


def _file_of(url: URL) -> str | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def missing_file(target: str | Path) -> bool:
    """A SQLite database whose file does not exist: reading commands refuse it rather than make it."""
    file = sqlite_file(target)
    return file is not None and not Path(file).is_file()


def open_engine(target: str | Path, create: bool = True) -> Engine:
    """An engine on `target`, its schema at the newest migration. create=False (reading commands) opens only a
    database that already holds runs, and never makes a file or a folder."""
    engine = _engine(to_url(target), create)
    try:
        migrations.upgrade(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def upgrade(target: str | Path) -> tuple[str | None, str]:
    """`python -m playground db upgrade`: make or upgrade the database; (the revision it was at, the newest)."""
    engine = _engine(to_url(target), create=True)
    try:
        return migrations.upgrade(engine), migrations.head()
    finally:
        engine.dispose()


def _engine(url: URL, create: bool) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, create)
    engine = create_engine(url, pool_pre_ping=True)  # a server restarted under a replica: reconnect
    if not create:
        _check_has_runs(engine)
    return engine


def _sqlite_engine(url: URL, create: bool) -> Engine:
    file = _file_of(url)
    if file is not None and not create:  # look before the pragmas switch someone else's SQLite file to WAL
        _check_holds_runs(file)
    if file is not None and create:
        Path(file).resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _check_holds_runs(file: str) -> None:
    """Read-only: a file that is no SQLite database, or one without a runs table, is refused unchanged."""
    with closing(sqlite3.connect(f"{Path(file).resolve().as_uri()}?mode=ro", uri=True)) as conn:
        if not conn.execute("PRAGMA table_info(runs)").fetchall():
            raise PlaygroundError("it holds no runs: not a run database")


def _check_has_runs(engine: Engine) -> None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("runs"):
            raise PlaygroundError("it holds no runs: not a run database")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, no fsync per commit
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
