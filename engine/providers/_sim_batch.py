"""simulate's batch API: provider-side jobs kept on disk, so batch runs rehearse offline.

It stands where a provider's batch service stands, outside the process that submits:
jobs live in a store directory (the run dir's ``sim-batches``), so they outlive a killed
batchdeck, and ``resume``, ``batches`` and ``cancel`` from another process see them.
A job exists once its ``job.json`` is renamed into place (after its requests are written
and fsynced), so a kill mid-submission leaves no half job, as an upload that never
reached ``POST /batches`` leaves none.

A job works through its requests in order, all of them ``batch_s`` seconds after it was
created (``--sim-batch-s``); a request fails (``server_error``) at ``--sim-failure-rate``,
decided from the seed and its custom_id when the job is created. Cancelling or expiry
keeps what was done by then and leaves the rest without a result. ``expires_at`` is a
field of ``job.json``: tests move it to make a job expire half done. Requests are read
back from the job's file when its results are fetched, never held in memory.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import orjson

from engine._atomic import write_atomic
from engine._config import SimSettings
from engine._errors import ProviderError
from engine.providers._base import CallRequest, CallResult
from engine.providers._batch import (
    BatchLimits,
    BatchRequest,
    JobState,
    JobStatus,
    Outcome,
    RequestLookup,
)

LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
"""As OpenAI's: 50,000 requests and 200 MB a job."""
EXPIRY_S = 24 * 3600.0
WRITE_CHUNK = 1 << 20
JOB_FILE = "job.json"
REQUESTS_FILE = "requests.jsonl"


class SimBatchApi:
    limits = LIMITS

    def __init__(
        self, settings: SimSettings, store: Path, answer: Callable[[CallRequest], CallResult]
    ) -> None:
        self._settings = settings
        self._store = store
        self._answer = answer

    def request_bytes(self, request: BatchRequest) -> int:
        return len(_line(request))

    async def submit(
        self, requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest], *, token: str
    ) -> JobStatus:
        job_id = f"simbatch_{secrets.token_hex(6)}"
        job_dir = self._store / job_id
        job_dir.mkdir(parents=True, mode=0o700)
        count = 0
        failing: list[int] = []
        buffer = bytearray()
        async with await anyio.open_file(job_dir / REQUESTS_FILE, "wb") as f:
            async for request in _each(requests):
                buffer += _line(request)
                if self._fails(request.custom_id):
                    failing.append(count)
                count += 1
                if len(buffer) >= WRITE_CHUNK:
                    await f.write(bytes(buffer))
                    buffer.clear()
            await f.write(bytes(buffer))
            await f.flush()
            await anyio.to_thread.run_sync(os.fsync, f.wrapped.fileno())
        now = time.time()
        job = {
            "id": job_id,
            "token": token,
            "count": count,
            "failing": failing,
            "created_at": now,
            "batch_s": self._settings.batch_s,
            "expires_at": now + EXPIRY_S,
            "cancelled_at": None,
        }
        await anyio.to_thread.run_sync(write_atomic, job_dir / JOB_FILE, orjson.dumps(job))
        return _status(job, now)

    async def find(self, token: str, *, since: float, count: int) -> list[JobStatus]:
        now = time.time()
        return [
            _status(job, now)
            for job in _jobs(self._store)
            if job["token"] == token and job["created_at"] >= since
        ]

    async def status(self, job_id: str) -> JobStatus:
        return _status(self._job(job_id), time.time())

    async def results(
        self, job_id: str, lookup: RequestLookup
    ) -> AsyncIterator[tuple[str, Outcome]]:
        job = self._job(job_id)
        status = _status(job, time.time())
        done = _done(job, time.time())
        failing = set(job["failing"])
        if status.state not in ("ended", "expired", "cancelled"):
            raise ProviderError("bad_request", f"batch {job_id} has not ended")
        index = 0
        async for line in _lines(self._store / job_id / REQUESTS_FILE):
            custom_id = orjson.loads(line)["custom_id"]
            if lookup(custom_id) is None:
                pass
            elif index >= done:
                yield custom_id, None
            elif index in failing:
                yield custom_id, ProviderError("server_error", "simulated batch error")
            else:
                yield custom_id, self._answer(_request(orjson.loads(line)))
            index += 1

    async def cancel(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        if job["cancelled_at"] is None and _status(job, time.time()).state == "running":
            job["cancelled_at"] = time.time()
            write_atomic(self._store / job_id / JOB_FILE, orjson.dumps(job))
        return _status(job, time.time())

    def _job(self, job_id: str) -> dict[str, Any]:
        path = self._store / job_id / JOB_FILE
        try:
            job: dict[str, Any] = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise ProviderError("not_found", f"no batch {job_id}") from None
        return job

    def _fails(self, custom_id: str) -> bool:
        draw = zlib.crc32(f"{self._settings.seed}:{custom_id}".encode()) / 2**32
        return draw < self._settings.failure_rate


def accepted_custom_ids(store: Path) -> list[str]:
    """Every custom_id of every job the store ever created (for tests: none twice)."""
    ids: list[str] = []
    for job in _jobs(store):
        with open(store / job["id"] / REQUESTS_FILE, "rb") as f:
            ids.extend(orjson.loads(line)["custom_id"] for line in f)
    return ids


def _jobs(store: Path) -> list[dict[str, Any]]:
    if not store.is_dir():
        return []
    jobs = []
    for job_dir in sorted(store.iterdir()):
        path = job_dir / JOB_FILE
        if path.is_file():
            jobs.append(orjson.loads(path.read_bytes()))
    return jobs


async def _lines(path: Path) -> AsyncIterator[bytes]:
    """The lines of ``path``, read a chunk per hop to a thread."""
    rest = b""
    async with await anyio.open_file(path, "rb") as f:
        while chunk := await f.read(WRITE_CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line
    if rest:
        yield rest


async def _each(
    requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest],
) -> AsyncIterator[BatchRequest]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request


def _line(batch: BatchRequest) -> bytes:
    r = batch.request
    fields = {
        "custom_id": batch.custom_id,
        "model": r.model,
        "prompt": r.prompt,
        "system": r.system,
        "max_tokens": r.max_tokens,
        "schema": r.schema,
    }
    return orjson.dumps(fields) + b"\n"


def _request(data: dict[str, Any]) -> CallRequest:
    return CallRequest(
        model=data["model"],
        prompt=data["prompt"],
        system=data["system"],
        max_tokens=data["max_tokens"],
        schema=data["schema"],
    )


def _done(job: dict[str, Any], now: float) -> int:
    """Requests the job has worked through by ``now`` (by its cancel or expiry if earlier)."""
    until = min(now, job["expires_at"], job["cancelled_at"] or math.inf)
    span = job["batch_s"]
    share = 1.0 if span <= 0 else max(0.0, min(1.0, (until - job["created_at"]) / span))
    return int(job["count"] * share)


def _status(job: dict[str, Any], now: float) -> JobStatus:
    count = job["count"]
    done = _done(job, now)
    errored = sum(1 for index in job["failing"] if index < done)
    state: JobState
    if done >= count:
        state = "ended"
    elif job["cancelled_at"] is not None:
        state = "cancelled"
    elif now >= job["expires_at"]:
        state = "expired"
    else:
        state = "running"
    return JobStatus(
        job_id=job["id"],
        state=state,
        provider_state=state,
        requests=count,
        succeeded=done - errored,
        errored=errored,
        processing=count - done if state == "running" else 0,
        created_at=job["created_at"],
        expires_at=job["expires_at"],
        token=job["token"],
    )
