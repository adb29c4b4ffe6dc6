"""Gemini's Batch Mode: inline requests up to 20 MB, else an uploaded JSONL file.

Wire: ``POST /v1beta/models/{model}:batchGenerateContent`` with ``{"batch":
{model, displayName, inputConfig}}`` creates a job (a long-running
operation ``batches/{id}``); ``inputConfig`` holds the requests inline
(``requests.requests[]``: ``{request, metadata: {key}}``) while the job stays
under 20 MB, else the ``fileName`` of a JSONL file (``{key, request}`` per
line) uploaded with the resumable Files API (``POST /upload/v1beta/files``,
then the upload URL it gives). ``GET /v1beta/batches/{id}`` polls the
operation (``metadata.state`` ``BATCH_STATE_PENDING/RUNNING/SUCCEEDED/FAILED/
CANCELLED/EXPIRED``, ``metadata.batchStats``); its ``response`` holds the
inline responses (``{metadata: {key}, response | error}``) or the
``responsesFile`` (``{key, response | error}`` per line, read from
``/download/v1beta/{file}:download?alt=media``).
``POST /v1beta/batches/{id}:cancel`` cancels it; ``GET /v1beta/batches``
lists jobs, found again by their ``displayName``, the client token.

Each request is what ``GeminiProvider.build`` sends online; each response
goes through ``GeminiProvider.answer``, each ``error`` (a ``google.rpc.Status``)
through its ``failure`` with the HTTP status that code carries online. A
request cancelled before it ran (code 1, ``CANCELLED``) is ``None``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import replace
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
    CLOCK_SLACK_S,
    MAX_PAGES,
    PAGE,
    BatchHttp,
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

LIMITS = BatchLimits(max_requests=100_000, max_bytes=2_000_000_000)
"""batchdeck's own bound on a job (Gemini's input files may hold 2 GB)."""
INLINE_BYTES = 20_000_000
"""Gemini's cap on a create request's body: a job whose inline body fits goes inline."""
_INLINE_GROWTH = 16
"""Bytes an inline request takes beyond its file line (``metadata`` wraps the key)."""
_ENVELOPE = 4096
"""Room for the create body's envelope (model, display name, nesting)."""
_STATES: dict[str, JobState] = {
    "PENDING": "submitted",
    "RUNNING": "running",
    "SUCCEEDED": "ended",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}
_GRPC_STATUS = {
    1: 499,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    11: 400,
    13: 500,
    14: 503,
    16: 401,
}
"""The HTTP status each ``google.rpc.Code`` carries online (Google's own mapping)."""
_CANCELLED = 1


class GeminiBatch:
    """``BatchApi`` over Gemini's Batch Mode."""

    limits = LIMITS

    def __init__(self, provider: HttpProvider) -> None:
        self._provider = provider
        self._http = BatchHttp(provider)

    def _encode(self, request: BatchRequest) -> tuple[str, bytes]:
        """The online call's path (which names the model) and the request's JSONL line."""
        path, body = self._provider.build(request.request)
        return path, json_body({"key": request.custom_id, "request": body})

    def request_bytes(self, request: BatchRequest) -> int:
        return len(self._encode(request)[1]) + 1

    async def submit(
        self, requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest], *, token: str
    ) -> JobStatus:
        paths: set[str] = set()

        def line(request: BatchRequest) -> bytes:
            path, encoded = self._encode(request)
            paths.add(path)
            if len(paths) > 1:
                raise ProviderError("bad_request", "a Gemini batch job is for one model")
            return encoded

        with Spool(LIMITS) as spool:
            await spool.fill(requests, line)
            model_path = paths.pop().removesuffix(":generateContent")
            if spool.size + _INLINE_GROWTH * spool.count + _ENVELOPE + len(token) <= INLINE_BYTES:
                inline = [_inline(element) for element in spool.elements()]
                source: dict[str, Any] = {"requests": {"requests": inline}}
            else:
                source = {"fileName": await self._upload(spool, token)}
        job = {
            "model": model_path.removeprefix("v1beta/"),
            "displayName": token,
            "inputConfig": source,
        }
        reply = await self._http.call(
            "POST", f"{model_path}:batchGenerateContent", json={"batch": job}
        )
        return self._http.read(reply.payload, _status)

    async def _upload(self, spool: Spool, token: str) -> str:
        start = await self._http.call(
            "POST",
            "upload/v1beta/files",
            json={"file": {"displayName": token}},
            headers={
                "x-goog-upload-protocol": "resumable",
                "x-goog-upload-command": "start",
                "x-goog-upload-header-content-length": str(spool.size),
                "x-goog-upload-header-content-type": "application/jsonl",
            },
        )
        url = start.headers.get("x-goog-upload-url")
        if not url:
            raise ProviderError("bad_response", f"{self._http.name} gave no upload URL")
        reply = await self._http.send(
            "POST",
            url,
            spool.chunks(),
            size=spool.size,
            headers={
                "content-type": "application/jsonl",
                "x-goog-upload-command": "upload, finalize",
                "x-goog-upload-offset": "0",
            },
        )
        return self._http.read(reply.payload, lambda p: name_of(p["file"]["name"]))

    async def find(self, token: str, *, since: float, count: int) -> list[JobStatus]:
        found: list[JobStatus] = []
        query: dict[str, str | int] = {"pageSize": PAGE}
        for _ in range(MAX_PAGES):  # the listing's order is not documented: read it all
            reply = await self._http.call("GET", "v1beta/batches", query=query)
            page = self._http.read(
                reply.payload, lambda p: [_status(op) for op in p.get("operations") or ()]
            )
            found += [j for j in page if j.token == token and j.created_at >= since - CLOCK_SLACK_S]
            next_page = reply.payload.get("nextPageToken")
            if not page or not isinstance(next_page, str) or not next_page:
                break
            query["pageToken"] = next_page
        return found

    async def status(self, job_id: str) -> JobStatus:
        return self._http.read(await self._operation(job_id), _status)

    async def _operation(self, job_id: str) -> Any:
        name = job_id.removeprefix("batches/")
        return (await self._http.call("GET", f"v1beta/batches/{segment(name)}")).payload

    async def cancel(self, job_id: str) -> JobStatus:
        name = job_id.removeprefix("batches/")
        await self._http.call("POST", f"v1beta/batches/{segment(name)}:cancel")
        job = await self.status(job_id)
        # Gemini has no word for a cancel under way: the job reads RUNNING until it stops.
        return job if job.done else replace(job, state="cancelling")

    async def results(
        self, job_id: str, lookup: RequestLookup
    ) -> AsyncIterator[tuple[str, Outcome]]:
        operation = await self._operation(job_id)
        output = self._http.read(operation, _output)
        inline = output.get("inlinedResponses")
        if isinstance(inline, Mapping):
            for item in inline.get("inlinedResponses") or ():
                metadata = item.get("metadata") if isinstance(item, Mapping) else None
                key = metadata.get("key") if isinstance(metadata, Mapping) else None
                result = self._outcome(key, item, b"", lookup)
                if result is not None:
                    yield result
            return
        file = output.get("responsesFile")
        if not isinstance(file, str) or not file.startswith("files/"):
            return
        target = f"download/v1beta/files/{segment(file.removeprefix('files/'))}:download"
        read = partial(self._line_outcome, lookup)
        async for result in self._http.outcomes(target, read, {"alt": "media"}):
            yield result

    def _line_outcome(self, lookup: RequestLookup, line: bytes) -> tuple[str, Outcome] | None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, Mapping):
            return None
        return self._outcome(record.get("key"), record, line, lookup)

    def _outcome(
        self, key: Any, item: Mapping[str, Any], raw: bytes, lookup: RequestLookup
    ) -> tuple[str, Outcome] | None:
        """One response's outcome; None for one that is not ours."""
        request = lookup(key) if isinstance(key, str) else None
        if request is None:
            return None
        error = item.get("error") or item.get("status")
        if "response" in item and not error:
            return key, judged(self._provider, request, Reply(200, {}, item["response"], raw))
        error = error if isinstance(error, Mapping) else {}
        code = error.get("code")
        if code == _CANCELLED:
            return key, None
        status = _GRPC_STATUS.get(code, 500) if isinstance(code, int) else 500
        return key, judged(self._provider, request, Reply(status, {}, {"error": error}, raw))


def _inline(element: bytes) -> dict[str, Any]:
    line = orjson.loads(element)
    return {"request": line["request"], "metadata": {"key": line["key"]}}


def _output(operation: Any) -> Mapping[str, Any]:
    """Where the operation keeps its results (``response``, or ``metadata.output``)."""
    for where in (operation.get("response"), (operation.get("metadata") or {}).get("output")):
        if isinstance(where, Mapping) and where:
            return where
    return {}


def _status(operation: Any) -> JobStatus:
    batch = operation.get("metadata") or operation
    stats = batch.get("batchStats") or {}
    provider_state = name_of(batch["state"])
    word = provider_state.removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
    state = _STATES.get(word, "running")
    error = operation.get("error")
    reason = error.get("message") if isinstance(error, Mapping) else None
    pending = count(stats.get("pendingRequestCount"))
    display = batch.get("displayName")
    return JobStatus(
        job_id=name_of(operation.get("name") or batch["name"]).removeprefix("batches/"),
        state=state,
        provider_state=provider_state,
        requests=count(stats.get("requestCount")),
        succeeded=count(stats.get("successfulRequestCount")),
        errored=count(stats.get("failedRequestCount")),
        processing=0 if state in TERMINAL_STATES else pending,
        created_at=created(batch["createTime"]),
        expires_at=timestamp(batch.get("expireTime")),
        token=display if isinstance(display, str) else None,
        error=said(reason) if reason and state == "failed" else None,
    )
