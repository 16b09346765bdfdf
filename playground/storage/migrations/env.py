"""Alembic's environment: migrations run on the connection the playground passes (migrations.upgrade), or, from the
`alembic` command (alembic.ini at the repository root, for writing a new revision with --autogenerate), on
$PLAYGROUND_DB."""

from alembic import context
from sqlalchemy import Connection

from playground.storage.database import db_path, to_url
from playground.storage.schema import Base


def run(connection: Connection) -> None:
    # render_as_batch: SQLite alters a table by copying it, which plain ALTER cannot do for most changes
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_from_the_command_line() -> None:
    from sqlalchemy import create_engine

    engine = create_engine(to_url(db_path()))
    with engine.begin() as connection:
        run(connection)
    engine.dispose()


if context.config.attributes.get("connection") is not None:
    run(context.config.attributes["connection"])
else:
    run_from_the_command_line()
