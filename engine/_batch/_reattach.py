"""Finding the jobs earlier executions submitted, before this one sends anything.

Each job's intent is in the log. One that got its job id back is simply followed
again. One the process was killed around (after the intent, before the id was
logged) is looked for at its provider by its client token (OpenAI's metadata,
Gemini's display name; Anthropic keeps none, so its adapter matches the jobs
created since the intent with as many requests): none found means it was never
created, and its items are pending again; one found is adopted; several are never
guessed between: the run stops with one line listing them.

What the open jobs' requests without a result reserved is held again from the
start, and their items are not dispatched again: they are at the provider.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine import log
from engine._errors import ConfigError, ProviderError
from engine.providers import BatchApi

FIND_SLACK_S = 60.0
"""How far before its intent a job may say it was created (clocks differ)."""


@dataclass(frozen=True, slots=True)
class Reattached:
    jobs: tuple[log.BatchRecord, ...]
    """The open jobs, each with its job id."""
    records: tuple[dict[str, Any], ...]
    """What was learned, for the log: jobs found by token, intents that made no job."""
    pending: set[tuple[str, str]]
    """(model, id) of the open jobs' requests without a result: not to dispatch (a job that
    ends unfinished gives its items back by taking them out)."""
    carried_units: int
    """What those requests reserved."""


async def reattach(state: log.LogState, apis: Mapping[str, BatchApi]) -> Reattached:
    jobs: list[log.BatchRecord] = []
    records: list[dict[str, Any]] = []
    for job in state.batches.values():
        if job.closed:
            continue
        api = apis.get(job.model)
        if api is None:
            raise ConfigError(f"{job.model}: has no batch API to find its job {job.token} with")
        if job.job_id is None:
            found = await _find(api, job)
            if found is None:
                records.append(
                    log.batch_record(replace(job, state="unsent", t=time.time(), closed=True))
                )
                continue
            job = found
            records.append(log.batch_record(job))
        jobs.append(job)
    pending: set[tuple[str, str]] = set()
    carried = 0
    for job in jobs:
        for _, id, line, units in job.items:
            if state.status(job.model, id, line) is None:
                pending.add((job.model, id))
                carried += units
    return Reattached(tuple(jobs), tuple(records), pending, carried)


async def _find(api: BatchApi, job: log.BatchRecord) -> log.BatchRecord | None:
    try:
        found = await api.find(job.token, since=job.since - FIND_SLACK_S, count=len(job.items))
    except ProviderError as exc:
        raise ConfigError(
            f"{job.model}: cannot look for batch job {job.token} submitted before the run "
            f"stopped: {exc.message}"
        ) from None
    if len(found) > 1:  # a cancelled or failed candidate is not the one to wait for
        found = [status for status in found if status.state not in ("cancelled", "failed")]
    if len(found) > 1:
        ids = ", ".join(status.job_id for status in found)
        raise ConfigError(
            f"{job.model}: the batch job submitted at {time.ctime(job.since)} with "
            f"{len(job.items)} requests could be any of {ids}: cancel the ones that are not "
            "this run's (at the provider), then resume"
        )
    if not found:
        return None
    status = found[0]
    return replace(
        job,
        job_id=status.job_id,
        state=status.state,
        provider_state=status.provider_state,
        expires_at=status.expires_at,
        t=time.time(),
    )
