"""How much History a run database keeps: a public demo must not fill its disk (issue 25 measured one heavy run at
76 MB, about 7 GB an hour from one client).

`Retention(days, megabytes)`: runs older than `days` are removed, then the oldest runs while the runs kept weigh more
than `megabytes` (their steps' payloads, prompts and outputs, as stored). A run still being recorded is never
removed. SQLite reuses the freed pages for new runs, so the file stops growing near the budget instead of shrinking.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from playground.errors import PlaygroundError

DAYS_ENV, MEGABYTES_ENV = "PLAYGROUND_KEEP_DAYS", "PLAYGROUND_KEEP_MB"

# Each finished run's stored weight in bytes, oldest first (ids grow with time). JSON columns are stored as text;
# PostgreSQL has no LENGTH of a JSON value, hence the casts (no-ops on SQLite).
WEIGHTS = text("""
    SELECT runs.id, LENGTH(runs.prompt) + COALESCE(LENGTH(runs.text), 0) + LENGTH(CAST(runs.prompt_ids AS TEXT))
           + COALESCE(SUM(LENGTH(CAST(steps.payload AS TEXT))), 0)
    FROM runs LEFT JOIN steps ON steps.run_id = runs.id
    WHERE runs.status != 'running' GROUP BY runs.id ORDER BY runs.id""")


@dataclass(frozen=True)
class Retention:
    days: float | None = None       # None: no age limit
    megabytes: float | None = None  # None: no size budget

    def __post_init__(self):
        for name in ("days", "megabytes"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise PlaygroundError(f"retention: {name} must be a positive number, got {value!r}")

    @classmethod
    def from_env(cls, days: float | None = None, megabytes: float | None = None) -> Retention:
        """The limits given, else $PLAYGROUND_KEEP_DAYS and $PLAYGROUND_KEEP_MB, else none (keep everything)."""
        return cls(days if days is not None else _number(DAYS_ENV),
                   megabytes if megabytes is not None else _number(MEGABYTES_ENV))

    @property
    def limited(self) -> bool:
        return self.days is not None or self.megabytes is not None


def _number(env: str) -> float | None:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise PlaygroundError(f"${env} must be a number, got {raw!r}") from None


def prune(engine, retention: Retention, now: datetime | None = None) -> list[int]:
    """Remove what `retention` does not keep; return the ids of the runs removed, oldest first."""
    removed: list[int] = []
    with engine.begin() as conn:
        if retention.days is not None:
            cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention.days)).isoformat(timespec="seconds")
            removed += [r[0] for r in conn.execute(text(
                "SELECT id FROM runs WHERE created_at < :cutoff AND status != 'running' ORDER BY id"),
                {"cutoff": cutoff})]
            _delete(conn, removed)
        if retention.megabytes is not None:
            weights = conn.execute(WEIGHTS).all()
            total, budget = sum(w for _, w in weights), retention.megabytes * 1e6
            for run_id, weight in weights:  # oldest first, until what is left fits
                if total <= budget:
                    break
                removed.append(run_id)
                total -= weight
                _delete(conn, [run_id])
    return removed


def _delete(conn, run_ids: list[int]) -> None:
    for run_id in run_ids:
        conn.execute(text("DELETE FROM steps WHERE run_id = :id"), {"id": run_id})
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})
