"""The run database's schema comes from Alembic migrations (playground/storage/migrations) and is exactly
`Base.metadata`; databases made before Alembic are recognised by their columns, stamped and upgraded; a database is
named by a path or any SQLAlchemy URL, whose password no message shows. PostgreSQL: tests/test_postgres.py."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import one_error_line
from sqlalchemy import create_engine, inspect

from playground.errors import PlaygroundError
from playground.storage import database, migrations
from playground.storage.recorder import Recorder
from playground.storage.schema import Base

RECORDED_V1 = Path(__file__).resolve().parent / "data" / "recorded-v1.db"  # prompt_texts, no owner: revision r2

# The tables as the first release's create_all made them (no prompt_texts, owner or published)
FIRST_RELEASE = [
    "CREATE TABLE runs (id INTEGER NOT NULL, created_at VARCHAR(32) NOT NULL, method VARCHAR(64) NOT NULL, "
    "model VARCHAR(512) NOT NULL, draft VARCHAR(512), prompt TEXT NOT NULL, prompt_ids JSON NOT NULL, "
    "settings JSON NOT NULL, status VARCHAR(16) NOT NULL, text TEXT, token_ids JSON, stats JSON, error TEXT, "
    "PRIMARY KEY (id))",
    'CREATE TABLE steps (id INTEGER NOT NULL, run_id INTEGER NOT NULL, "index" INTEGER NOT NULL, accepted INTEGER '
    "NOT NULL, drafted INTEGER NOT NULL, committed INTEGER NOT NULL, payload JSON NOT NULL, PRIMARY KEY (id), "
    'UNIQUE (run_id, "index"), FOREIGN KEY(run_id) REFERENCES runs (id))',
    "CREATE INDEX ix_runs_method ON runs (method)",
    "CREATE INDEX ix_steps_run_id ON steps (run_id)",
    "INSERT INTO runs (created_at, method, model, prompt, prompt_ids, settings, status, text, token_ids) VALUES "
    "('2026-11-22T00:00:00+00:00', 'autoregressive', 'm', 'p', '[5, 6]', '{}', 'finished', '', '[]')",
]
# What the in-place migration of the hosted-mode code (before Alembic) added to a database
PROMPT_TEXTS = ["ALTER TABLE runs ADD COLUMN prompt_texts JSON"]
HOSTED_IN_PLACE = ["ALTER TABLE runs ADD COLUMN owner VARCHAR(64)", "CREATE INDEX ix_runs_owner ON runs (owner)",
                   "ALTER TABLE runs ADD COLUMN published BOOLEAN DEFAULT 0"]


def differences(engine) -> list:
    """What the database's schema lacks or has beyond Base.metadata (Alembic's autogenerate comparison)."""
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def revision_of(engine) -> str | None:
    with engine.connect() as conn:
        return migrations.current(conn)


def sqlite_engine(path: Path):
    return create_engine(database.to_url(path))


def made_with(path: Path, statements: list[str]) -> Path:
    with closing(sqlite3.connect(path)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    return path


def test_a_new_database_is_made_by_the_migrations_as_the_metadata_says(db):
    recorder = Recorder(db)
    assert revision_of(recorder.engine) == migrations.head() == migrations.WRITER
    assert differences(recorder.engine) == []
    assert set(inspect(recorder.engine).get_table_names()) == {"runs", "steps", "alembic_version"}


def test_the_revisions_go_down_to_nothing_and_up_again(db):
    Recorder(db)
    engine = sqlite_engine(db)
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"} and revision_of(engine) is None
    assert migrations.upgrade(engine) is None  # an empty database
    assert differences(engine) == [] and revision_of(engine) == migrations.head()


def test_a_database_upgraded_by_a_newer_playground_is_refused_unchanged(db):
    Recorder(db).engine.dispose()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'r9_future'")
        conn.commit()
    with pytest.raises(PlaygroundError, match="at revision r9_future, which this version of the playground does not "
                                              "know .*upgrade the playground"):
        Recorder(db, create=False)
    assert revision_of(sqlite_engine(db)) == "r9_future"


@pytest.mark.parametrize("made, found", [
    (FIRST_RELEASE, migrations.FIRST_RELEASE),
    (FIRST_RELEASE + PROMPT_TEXTS, migrations.PROMPT_TEXTS),
    (FIRST_RELEASE + PROMPT_TEXTS + HOSTED_IN_PLACE, migrations.HOSTED),
], ids=["first-release", "prompt-texts", "hosted-in-place"])
def test_a_database_made_before_alembic_is_stamped_by_its_columns_and_upgraded(tmp_path, made, found):
    old = made_with(tmp_path / "old.db", made)
    engine = sqlite_engine(old)
    with engine.connect() as conn:
        assert migrations.legacy_revision(conn) == found
    engine.dispose()
    recorder = Recorder(old, create=False)
    assert revision_of(recorder.engine) == migrations.head() and differences(recorder.engine) == []
    started, steps, finished = recorder.replay(1)
    assert started.prompt_ids == [5, 6] and steps == [] and finished.status == "finished"
    assert [r["published"] for r in recorder.runs()] == [False] and recorder.visitor("v").runs() == []


def test_an_upgrade_that_fails_leaves_the_database_as_it_was(tmp_path):
    """Half of hosted mode's in-place columns (owner without published) reads as r2, whose upgrade then fails on the
    existing owner column: one transaction, so neither the stamp nor any column stays behind."""
    old = made_with(tmp_path / "half.db", FIRST_RELEASE + PROMPT_TEXTS + HOSTED_IN_PLACE[:1])
    with pytest.raises(PlaygroundError, match="cannot open the run database .*duplicate column name: owner"):
        Recorder(old, create=False)
    engine = sqlite_engine(old)
    assert "alembic_version" not in inspect(engine).get_table_names()
    assert "published" not in {c["name"] for c in inspect(engine).get_columns("runs")}
    assert "ix_runs_owner" not in {i["name"] for i in inspect(engine).get_indexes("runs")}


def test_the_recorded_v1_database_upgrades_from_r2(tmp_path, main):
    copy = tmp_path / RECORDED_V1.name
    shutil.copyfile(RECORDED_V1, copy)
    status, out, _ = main("db", "upgrade", "--db", copy)
    assert status == 0 and out.strip() == f"run database {copy}: at revision {migrations.WRITER} (was " \
                                          f"{migrations.PROMPT_TEXTS})"
    status, out, _ = main("db", "upgrade", "--db", copy)
    assert status == 0 and out.strip().endswith("(already)")
    assert differences(sqlite_engine(copy)) == [] and len(Recorder(copy, create=False).runs()) == 11


def test_a_sqlite_url_names_the_same_file_as_its_path(db, monkeypatch):
    Recorder(f"sqlite:///{db}")  # made through the URL
    assert db.is_file() and revision_of(Recorder(db, create=False).engine) == migrations.head()
    monkeypatch.setenv("PLAYGROUND_DB", f"sqlite:///{db}")
    assert database.db_path() == f"sqlite:///{db}" and database.sqlite_file(database.db_path()) == str(db)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reading_a_missing_database_by_url_makes_nothing(tmp_path, main):
    missing = tmp_path / "missing" / "x.db"
    status, _, err = main("export", 1, "--db", f"sqlite:///{missing}")
    assert status == 2 and "no run database at" in one_error_line(err) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://visitor:hunter2@127.0.0.1:1/runs",      # nothing listens on port 1
    "postgresql+psycopg://visitor:hunter2@127.0.0.1:notaport/runs",  # not even a URL SQLAlchemy parses
    "nosuchdialect://visitor:hunter2@host/runs",
])
def test_a_password_in_a_url_is_never_shown(url, main):
    assert "hunter2" not in database.shown(url) and "visitor:***@" in database.shown(url)
    with pytest.raises(PlaygroundError) as refused:
        Recorder(url)
    assert "hunter2" not in str(refused.value) and "***" in str(refused.value)
    status, _, err = main("prune", "--days", 1, "--db", url)
    assert status == 2 and "hunter2" not in err and "***" in one_error_line(err)
