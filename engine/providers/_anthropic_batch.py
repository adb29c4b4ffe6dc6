"""Anthropic's Message Batches API: every request in one JSON body, results as JSONL.

Wire: ``POST /v1/messages/batches`` (``{"requests": [{custom_id, params}]}``)
creates the batch; ``GET /v1/messages/batches/{id}`` polls it
(``processing_status`` ``in_progress``/``canceling``/``ended``, five
``request_counts``); its results are JSONL at its ``results_url`` once it has
ended, one ``{custom_id, result}`` per request with ``result.type``
``succeeded`` (the Message), ``errored`` (an error envelope), ``canceled`` or
``expired``; ``POST .../{id}/cancel`` cancels it.

Each ``params`` is what ``AnthropicProvider.build`` sends online, and each
succeeded Message goes through ``AnthropicProvider.answer`` (the schema's tool
and its unwrapping included); an errored one through its ``failure``, with the
status the same error carries online, so error kinds match. ``canceled`` and
``expired`` requests are ``None``: their items stay pending.

A batch keeps no client data, so ``find`` matches the batches created since
the intent that hold the same number of requests; the caller decides what
more than one means.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from functools import partial
from typing import Any

import orjson

from engine.providers._batch import (
    BatchLimits,
    BatchRequest,
    JobState,
    JobStatus,
    Outcome,
    RequestLookup,
)
from engine.providers._batchhttp import (
    BatchHttp,
    JobCollection,
    count,
    created,
    judged,
    name_of,
    timestamp,
)
from engine.providers._http import HttpProvider, Reply, json_body
from engine.providers._spool import Spool

BATCHES = "v1/messages/batches"
_HEAD = b'{"requests":['
_TAIL = b"]}"
LIMITS = BatchLimits(max_requests=100_000, max_bytes=256_000_000 - len(_HEAD) - len(_TAIL))
_STATES: dict[str, JobState] = {
    "in_progress": "running",
    "canceling": "cancelling",
    "ended": "ended",
}
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")
_NOT_RUN = frozenset({"canceled", "expired"})
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status each error type carries online, so ``failure`` reads it the same way."""


class AnthropicBatch:
    """``BatchApi`` over Anthropic's Message Batches API."""

    limits = LIMITS

    def __init__(self, provider: HttpProvider) -> None:
        self._provider = provider
        self._http = BatchHttp(provider)
        self._jobs = JobCollection(self._http, BATCHES, cursor="after_id", read=_status)

    def _element(self, request: BatchRequest) -> bytes:
        _, body = self._provider.build(request.request)
        return json_body({"custom_id": request.custom_id, "params": body})

    def request_bytes(self, request: BatchRequest) -> int:
        return len(self._element(request)) + 1

    async def submit(
        self, requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest], *, token: str
    ) -> JobStatus:
        with Spool(LIMITS, separator=b",") as spool:
            await spool.fill(requests, self._element)
            size = len(_HEAD) + spool.size + len(_TAIL)
            reply = await self._http.send("POST", BATCHES, spool.chunks(_HEAD, _TAIL), size=size)
        return self._http.read(reply.payload, _status)

    async def find(self, token: str, *, since: float, count: int) -> list[JobStatus]:
        return [job for job in await self._jobs.since(since) if job.requests == count]

    async def status(self, job_id: str) -> JobStatus:
        return await self._jobs.status(job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        return await self._jobs.cancel(job_id)

    async def results(
        self, job_id: str, lookup: RequestLookup
    ) -> AsyncIterator[tuple[str, Outcome]]:
        job = await self._jobs.job(job_id)
        url = self._http.read(job, lambda j: j.get("results_url"))
        if isinstance(url, str) and url:
            async for result in self._http.outcomes(url, partial(self._outcome, lookup)):
                yield result

    def _outcome(self, lookup: RequestLookup, line: bytes) -> tuple[str, Outcome] | None:
        """One results line's outcome; None for a line that is not one of ours."""
        try:
            record = orjson.loads(line)
            custom_id, result = record["custom_id"], record["result"]
            kind = result["type"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return None
        request = lookup(custom_id) if isinstance(custom_id, str) else None
        if request is None:
            return None
        if kind in _NOT_RUN:
            return custom_id, None
        if kind == "succeeded":
            reply = Reply(200, {}, result.get("message"), line)
        else:
            reply = _errored(result.get("error"), line)
        return custom_id, judged(self._provider, request, reply)


def _errored(error: Any, line: bytes) -> Reply:
    """An ``errored`` result as the reply the same error is online (the envelope, its status)."""
    inner = (
        error.get("error") if isinstance(error, Mapping) and error.get("type") == "error" else error
    )
    inner = inner if isinstance(inner, Mapping) else {}
    status = _ERROR_STATUS.get(str(inner.get("type")), 500)
    return Reply(status, {}, {"type": "error", "error": inner}, line)


def _status(batch: Any) -> JobStatus:
    counts = batch["request_counts"]
    processing, succeeded, errored, canceled, expired = (count(counts.get(k)) for k in _COUNTS)
    provider_state = name_of(batch["processing_status"])
    state = _STATES.get(provider_state, "running")
    if state == "ended" and batch.get("cancel_initiated_at"):
        state = "cancelled"
    elif state == "ended" and expired:
        state = "expired"
    return JobStatus(
        job_id=name_of(batch["id"]),
        state=state,
        provider_state=provider_state,
        requests=processing + succeeded + errored + canceled + expired,
        succeeded=succeeded,
        errored=errored,
        processing=processing,
        created_at=created(batch["created_at"]),
        expires_at=timestamp(batch.get("expires_at")),
        token=None,
    )
