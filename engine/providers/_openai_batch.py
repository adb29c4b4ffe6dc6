"""OpenAI's Batch API: a JSONL file of Chat Completions requests, uploaded, then a job over it.

Wire: ``POST /v1/files`` (multipart, ``purpose=batch``) gives a file id;
``POST /v1/batches`` (``input_file_id``, ``endpoint /v1/chat/completions``,
``completion_window 24h``, the client token in ``metadata``) creates the job;
``GET /v1/batches/{id}`` polls it, ``GET /v1/batches`` (newest first) finds it
by its token after a crash, ``POST /v1/batches/{id}/cancel`` cancels it. Its
results are two JSONL files read with ``GET /v1/files/{id}/content``: the
output file (answers) and the error file (requests that failed, expired or
were cancelled).

Each line's ``body`` is what ``OpenAIProvider.build`` sends online, and each
answer's ``response`` goes through ``OpenAIProvider.answer``: a batch request
is the online request, and its answer is judged, charged and mapped to error
kinds as the online answer would be. A line whose ``error.code`` says the
request expired or was cancelled before it ran is ``None`` (still pending).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from functools import partial
from typing import Any

import orjson

from engine._errors import ProviderError
from engine.providers._batch import (
    TERMINAL_STATES,
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
    said,
    segment,
    timestamp,
)
from engine.providers._http import HttpProvider, Reply, json_body
from engine.providers._spool import Spool

ENDPOINT = "/v1/chat/completions"
TOKEN_KEY = "batchdeck_token"
"""The metadata key carrying the client token the job is found by after a crash."""
LIMITS = BatchLimits(max_requests=50_000, max_bytes=200_000_000)
_STATES: dict[str, JobState] = {
    "validating": "submitted",
    "in_progress": "running",
    "finalizing": "running",
    "completed": "ended",
    "failed": "failed",
    "expired": "expired",
    "cancelling": "cancelling",
    "cancelled": "cancelled",
}
_NOT_RUN = frozenset({"batch_expired", "batch_cancelled"})
"""Error-file codes of requests the job never ran: their items stay pending."""


class OpenAIBatch:
    """``BatchApi`` over OpenAI's Batch API (and a server that speaks it)."""

    limits = LIMITS

    def __init__(self, provider: HttpProvider) -> None:
        self._provider = provider
        self._http = BatchHttp(provider)
        self._jobs = JobCollection(self._http, "batches", cursor="after", read=_status)

    def _line(self, request: BatchRequest) -> bytes:
        _, body = self._provider.build(request.request)
        line = {"custom_id": request.custom_id, "method": "POST", "url": ENDPOINT, "body": body}
        return json_body(line)

    def request_bytes(self, request: BatchRequest) -> int:
        return len(self._line(request)) + 1

    async def submit(
        self, requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest], *, token: str
    ) -> JobStatus:
        with Spool(LIMITS) as spool:
            await spool.fill(requests, self._line)
            file_id = await self._upload(spool)
        job = {
            "input_file_id": file_id,
            "endpoint": ENDPOINT,
            "completion_window": "24h",
            "metadata": {TOKEN_KEY: token},
        }
        reply = await self._http.call("POST", "batches", json=job)
        return self._http.read(reply.payload, _status)

    async def _upload(self, spool: Spool) -> str:
        boundary = f"batchdeck-{secrets.token_hex(16)}"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="batchdeck.jsonl"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        reply = await self._http.send(
            "POST",
            "files",
            spool.chunks(head, tail),
            size=len(head) + spool.size + len(tail),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        return self._http.read(reply.payload, lambda file: name_of(file["id"]))

    async def find(self, token: str, *, since: float, count: int) -> list[JobStatus]:
        return [job for job in await self._jobs.since(since) if job.token == token]

    async def status(self, job_id: str) -> JobStatus:
        return await self._jobs.status(job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        return await self._jobs.cancel(job_id)

    async def results(
        self, job_id: str, lookup: RequestLookup
    ) -> AsyncIterator[tuple[str, Outcome]]:
        job = await self._jobs.job(job_id)
        files = self._http.read(job, lambda j: [j.get("output_file_id"), j.get("error_file_id")])
        for file_id in files:
            if isinstance(file_id, str) and file_id:
                target = f"files/{segment(file_id)}/content"
                async for result in self._http.outcomes(target, partial(self._outcome, lookup)):
                    yield result

    def _outcome(self, lookup: RequestLookup, line: bytes) -> tuple[str, Outcome] | None:
        """One output or error line's outcome; None for a line that is not one of ours."""
        try:
            record = orjson.loads(line)
            custom_id = record["custom_id"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return None
        request = lookup(custom_id) if isinstance(custom_id, str) else None
        if request is None:
            return None
        error = record.get("error")
        error = error if isinstance(error, Mapping) else {}
        if error.get("code") in _NOT_RUN:
            return custom_id, None
        response = record.get("response")
        if not isinstance(response, Mapping):
            reason = said(error.get("message") or "no response and no reason")
            return custom_id, ProviderError("server_error", f"{self._provider.name}: {reason}")
        status = response.get("status_code")
        reply = Reply(status if type(status) is int else 0, {}, response.get("body"), line)
        return custom_id, judged(self._provider, request, reply)


def _status(job: Any) -> JobStatus:
    counts = job.get("request_counts") or {}
    requests, succeeded, errored = (count(counts.get(k)) for k in ("total", "completed", "failed"))
    provider_state = name_of(job["status"])
    state = _STATES.get(provider_state, "running")
    metadata = job.get("metadata") or {}
    errors = (job.get("errors") or {}).get("data") or []
    reason = errors[0].get("message") if errors and isinstance(errors[0], Mapping) else None
    token = metadata.get(TOKEN_KEY)
    return JobStatus(
        job_id=name_of(job["id"]),
        state=state,
        provider_state=provider_state,
        requests=requests,
        succeeded=succeeded,
        errored=errored,
        processing=0 if state in TERMINAL_STATES else max(0, requests - succeeded - errored),
        created_at=created(job["created_at"]),
        expires_at=timestamp(job.get("expires_at")),
        token=token if isinstance(token, str) else None,
        error=said(reason) if reason else None,
    )
