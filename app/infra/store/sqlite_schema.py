"""The SQLite store's schema and the helpers its statements share (rows to jobs, key chunks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .base import ACTIVE_STATES, FINAL_STATES, Job, JobState

SCHEMA_VERSION = 1


def _sql_list(states: Iterable[JobState]) -> str:
    """Literal state lists: a partial index is only used when the query repeats its literals."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


# Changing the job states changes the jobs_due index: bump SCHEMA_VERSION and rebuild it then.
ACTIVE_SQL = _sql_list(ACTIVE_STATES)
PURGEABLE_SQL = _sql_list(FINAL_STATES - {JobState.DEAD})

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        lease_until REAL NOT NULL,
        reply TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    # claim_expired: a partial index holds only active jobs, already in claim order, so finding
    # the due ones never walks the (many) finished jobs and needs no sort.
    f"""CREATE INDEX IF NOT EXISTS jobs_due ON jobs (lease_until, key)
        WHERE state IN {ACTIVE_SQL}""",
    # list_jobs, and purge_jobs by state and age.
    "CREATE INDEX IF NOT EXISTS jobs_state_updated ON jobs (state, updated_at)",
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        expires_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until REAL NOT NULL
    )""",
)

JOB_COLUMNS = (
    "key, kind, payload, state, owner, lease_until, reply, attempts, last_error, "
    "created_at, updated_at"
)
BATCH = 500  # keys per statement (SQLite limits bound parameters) and rows per purge transaction


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(
        key=row[0],
        kind=row[1],
        payload=row[2],
        state=JobState(row[3]),
        owner=row[4],
        lease_until=row[5],
        reply=row[6],
        attempts=row[7],
        last_error=row[8],
        created_at=row[9],
        updated_at=row[10],
    )


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def marks(count: int) -> str:
    return ", ".join("?" * count)
