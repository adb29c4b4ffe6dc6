"""Finding the jobs earlier executions submitted, before this one sends anything.

Each job's intent is in the log. One that got its job id back is simply followed
again. One the process was killed around (after the intent, before the id was
logged) is looked for at its provider by its client token (OpenAI's metadata,
Gemini's display name; Anthropic keeps none, so its adapter matches the jobs
created since the intent with as many requests, leaving out the jobs the log already
knows: this run's other jobs, whose ids are fsynced as soon as the provider gives them,
so at most one intent a model lacks its id at a kill): none found means it was never
created, and its items are pending again; one found is adopted; several (another process
made a job of the same size meanwhile) are never guessed between: the run stops with one
line listing them.

What the open jobs' requests without a result reserved is held again from the
start, and their items are not dispatched again: they are at the provider.

A job its provider answers "not found" for (deleted, past its retention, or the key is
another account's) stops the run with one line; nothing sends its requests again unless
the user says so (``resume --forget-job ID``): a key of another account would make
the same answer for jobs that did run, and sending them again pays twice.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine import log
from engine._errors import ConfigError, ProviderError
from engine.providers import BatchApi, JobStatus

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


async def reattach(
    state: log.LogState, apis: Mapping[str, BatchApi], forget: Collection[str] = ()
) -> Reattached:
    """``forget``: ids of open jobs to close as ``forgotten``, once their provider says it
    does not know them: their requests without a result are pending again, to be sent
    again."""
    jobs: list[log.BatchRecord] = []
    records: list[dict[str, Any]] = []
    known = known_job_ids(state)
    open_ids = {job.job_id for job in state.batches.values() if not job.closed}
    if unknown := sorted(set(forget) - open_ids):
        listed = ", ".join(sorted(i for i in open_ids if i is not None)) or "none"
        raise ConfigError(
            f"--forget-job {unknown[0]}: the run has no open batch job of that id (open: {listed})"
        )
    for job in sorted(state.batches.values(), key=lambda job: job.since):
        if job.closed:
            continue
        api = apis.get(job.model)
        if api is None:
            raise ConfigError(f"{job.model}: has no batch API to find its job {job.token} with")
        if job.job_id in forget:
            await _check_lost(api, job)
            records.append(
                log.batch_record(replace(job, state="forgotten", t=time.time(), closed=True))
            )
            continue
        if job.job_id is None:
            found = await _find(api, job, known)
            if found is None:
                records.append(
                    log.batch_record(replace(job, state="unsent", t=time.time(), closed=True))
                )
                continue
            job = found
            assert job.job_id is not None
            known.add(job.job_id)
            records.append(log.batch_record(job))
        jobs.append(job)
    pending: set[tuple[str, str]] = set()
    carried = 0
    for job in jobs:
        for entry in job.items:
            if state.status(job.model, entry.id, entry.line) is None:
                pending.add((job.model, entry.id))
                carried += entry.units
    return Reattached(tuple(jobs), tuple(records), pending, carried)


async def _check_lost(api: BatchApi, job: log.BatchRecord) -> None:
    """ConfigError unless ``job``'s provider answers that it does not know the job: one it
    still has (a mistyped id) would be paid for twice if its requests went again."""
    assert job.job_id is not None
    where = f"--forget-job {job.job_id}"
    try:
        status = await api.status(job.job_id)
    except ProviderError as exc:
        if exc.kind == "not_found":
            return
        raise ConfigError(f"{where}: cannot ask {job.model} about it: {exc.message}") from None
    raise ConfigError(
        f"{where}: {job.model} still has that job ({status.state}): resume without "
        "--forget-job fetches its results (batchdeck cancel RUN cancels it)"
    )


def known_job_ids(state: log.LogState) -> set[str]:
    """The ids of every job the log has an id for: never a candidate for another intent."""
    return {job.job_id for job in state.batches.values() if job.job_id is not None}


async def candidates(
    api: BatchApi, token: str, since: float, count: int, known: Collection[str]
) -> list[JobStatus]:
    """The jobs that may be the one created with ``token`` (ProviderError if the provider
    cannot be asked): not one of ``known``; among several, not a cancelled or failed one."""
    found = [
        status
        for status in await api.find(token, since=since - FIND_SLACK_S, count=count)
        if status.job_id not in known
    ]
    if len(found) > 1:
        found = [status for status in found if status.state not in ("cancelled", "failed")]
    return found


async def _find(
    api: BatchApi, job: log.BatchRecord, known: Collection[str]
) -> log.BatchRecord | None:
    try:
        found = await candidates(api, job.token, job.since, len(job.items), known)
    except ProviderError as exc:
        raise ConfigError(
            f"{job.model}: cannot look for batch job {job.token} submitted before the run "
            f"stopped: {exc.message}"
        ) from None
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
