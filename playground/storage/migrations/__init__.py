"""The run database's schema history, as Alembic revisions (versions/), and bringing a database to the newest one.

r1_first_release: runs and steps as the first release made them; r2_prompt_texts: runs.prompt_texts;
r3_hosted: runs.owner and runs.published (hosted mode); r4_writer: runs.writer (who records a running run).
Databases made before Alembic have no alembic_version table:
their columns tell which revision they are at, they are stamped with it, then upgraded like any other.

Every open upgrades (database.open_engine): the app, the CLI and `python -m playground db upgrade` alike. Replicas
starting together on one PostgreSQL database take turns (an advisory lock), so the schema is made once.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from playground.errors import PlaygroundError

SCRIPTS = Path(__file__).resolve().parent
FIRST_RELEASE, PROMPT_TEXTS, HOSTED, WRITER = "r1_first_release", "r2_prompt_texts", "r3_hosted", "r4_writer"
_ADVISORY_LOCK = 2025_0025  # any number: the one PostgreSQL lock every replica takes to migrate


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this folder, its migrations run on `connection` (env.py), no alembic.ini read."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@functools.cache
def known() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def current(conn: Connection) -> str | None:
    """The revision stamped in the database; None for an empty one and for one made before Alembic."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str | None:
    """Bring the database to the newest revision; the revision it was at (for one made before Alembic, the one its
    columns tell; None for an empty database)."""
    with engine.connect() as conn:  # the common case, a database already at head, takes no write lock
        before = current(conn)
    if before == head():
        return before
    if before is not None and before not in known():  # Alembic would only say it cannot locate the revision
        raise PlaygroundError(f"its schema is at revision {before}, which this version of the playground does not "
                              f"know (its newest is {head()}): it was upgraded by a newer one; upgrade the playground")
    with engine.begin() as conn:
        _take_turns(conn)
        before = current(conn)  # another replica may have migrated while this one waited
        if before is None and (before := legacy_revision(conn)) is not None:
            command.stamp(alembic_config(conn), before)
        if before != head():
            command.upgrade(alembic_config(conn), "head")
    return before


def legacy_revision(conn: Connection) -> str | None:
    """The revision a database made before Alembic is at, from its columns (None: no runs table, an empty one)."""
    inspector = inspect(conn)
    if not inspector.has_table("runs"):
        return None
    columns = {column["name"] for column in inspector.get_columns("runs")}
    if {"owner", "published"} <= columns:  # added in place by the hosted-mode code before Alembic
        return HOSTED
    return PROMPT_TEXTS if "prompt_texts" in columns else FIRST_RELEASE


def _take_turns(conn: Connection) -> None:
    """One migrator at a time: PostgreSQL's transaction-scoped advisory lock, SQLite's write lock taken at BEGIN
    (its DDL is transactional too, so a failed upgrade leaves the database as it was)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
