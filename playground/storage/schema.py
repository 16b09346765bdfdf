"""The run database's tables, as SQLAlchemy 2 ORM classes: `Base.metadata` is the one description of the schema.

The migrations (playground/storage/migrations) write the same tables as Alembic revisions, and
tests/test_migrations.py checks that upgrading an empty database to the newest revision gives exactly this metadata,
on SQLite and on PostgreSQL: a column added here needs its revision, or that test fails.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(512))
    draft: Mapped[str | None] = mapped_column(String(512))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_ids: Mapped[list] = mapped_column(JSON)
    prompt_texts: Mapped[list | None] = mapped_column(JSON)  # added after the first release: revision r2
    settings: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    text: Mapped[str | None] = mapped_column(Text)
    token_ids: Mapped[list | None] = mapped_column(JSON)
    stats: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # hosted mode, the visitor's: revision r3
    published: Mapped[bool | None] = mapped_column(Boolean, default=False)  # in the gallery, for every visitor
    writer: Mapped[str | None] = mapped_column(String(256))  # who records it while running (storage/interrupted.py):
                                                             # revision r4
    steps: Mapped[list[StepRow]] = relationship(back_populates="run", order_by="StepRow.index",
                                                  cascade="all, delete-orphan")


class StepRow(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    drafted: Mapped[int] = mapped_column(Integer)
    committed: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict] = mapped_column(JSON)  # the whole Step, versioned: storage/payload.py
    run: Mapped[RunRow] = relationship(back_populates="steps")
