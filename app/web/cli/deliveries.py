"""``flask deliveries``: list, show and re-send answers that could not be delivered."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from app.infra.store import JobState


@click.group()
def deliveries() -> None:
    """List and re-send answers that could not be delivered."""


@deliveries.command("list")
@click.option(
    "--state", type=click.Choice([s.value for s in JobState]), default="dead", show_default=True
)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def deliveries_list(state: str, limit: int) -> None:
    """Jobs in a state (dead letters by default), oldest first."""
    jobs = current_app.extensions["wecom"].store.list_jobs(JobState(state), limit)
    if not jobs:
        click.echo(f"no {state} jobs")
        return
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.updated_at))
        click.echo(
            f"{job.key}\t{job.kind}\t{when}\tattempts={job.attempts}\t{job.last_error or ''}"
        )


@deliveries.command("show")
@click.argument("key")
@with_appcontext
def deliveries_show(key: str) -> None:
    """Everything recorded about one job."""
    job = current_app.extensions["wecom"].store.get_job(key)
    if job is None:
        raise click.ClickException(f"no job {key!r}")
    record = dataclasses.asdict(job)
    record["state"] = job.state.value
    for field in ("payload", "reply"):
        if record[field]:
            record[field] = json.loads(record[field])
    click.echo(json.dumps(record, ensure_ascii=False, indent=2))


@deliveries.command("resend")
@click.argument("keys", nargs=-1)
@click.option("--all", "resend_all", is_flag=True, help="Every dead job.")
@with_appcontext
def deliveries_resend(keys: tuple[str, ...], resend_all: bool) -> None:
    """Try dead jobs again now, from this process: deliver the recorded answer, or run the
    handler again when it had failed."""
    service = current_app.extensions["wecom"]
    if resend_all:
        keys = tuple(job.key for job in service.store.list_jobs(JobState.DEAD, 10_000))
    if not keys:
        raise click.UsageError("name the jobs to re-send (see `deliveries list`), or pass --all")
    failed = 0
    for key in keys:
        job = service.engine.take_dead_job(key)
        if job is None:
            click.echo(f"{key}: not a dead job", err=True)
            failed += 1
            continue
        state = service.engine.outbox.recover(job)
        click.echo(f"{key}: {state.value}")
        failed += state != JobState.DONE
    if failed:
        sys.exit(1)
