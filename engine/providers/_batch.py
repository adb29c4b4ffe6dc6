"""The seam between the engine's batch runner and a provider's native batch API.

Providers sell the same calls at half price through a batch API: the caller
hands over many requests at once, the provider answers within a day. Three
providers, three wire formats (OpenAI uploads a JSONL file then creates a job,
Anthropic takes the requests in one JSON body, Gemini takes them inline or as
an uploaded file), one shape here, so the engine chunks, records intents,
reserves money and polls without knowing which provider it drives.

What each side owns:
- the engine chooses each request's ``custom_id`` (it maps back to exactly one
  (item, model)), cuts the pending pairs into chunks within ``limits`` (using
  ``request_bytes``), records an intent carrying a client ``token`` before
  every ``submit``, paces the polling, and maps results to items;
- a ``BatchApi`` builds each request exactly as its provider's online call
  would be built (system prompt, structured output, ``--param``), streams it
  up, reports a job's state in the normalised ``JobState`` and reads the
  per-request results back through the same parser and error mapping as an
  online answer, so a batch result is indistinguishable from an online one
  except for its price.

Every method raises ``ProviderError`` (and nothing else) on failure, with the
same kinds and redaction as an online call: a 429 on a polling call is a
``rate_limited`` error carrying ``retry_after``, and the engine waits. A
``BatchApi`` belongs to its provider (``Provider.batch_api()``) and is closed
with it (``await provider.aclose()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from engine._errors import ProviderError
from engine.providers._base import CallRequest, CallResult


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How much one job may hold; ``submit`` refuses (``bad_request``) a stream past them."""

    max_requests: int
    """OpenAI 50,000 per input file; Anthropic 100,000 per batch; Gemini: per file."""
    max_bytes: int
    """Sum of ``request_bytes`` over a job: OpenAI 200 MB per input file, Anthropic 256 MB
    per request body, Gemini's uploaded file (inline requests go up to 20 MB, then a file)."""


@dataclass(frozen=True, slots=True)
class BatchRequest:
    custom_id: str
    """The engine's name for this request, unique within a job; results come back by it.
    At most 64 characters of ``[A-Za-z0-9_-]`` (Anthropic's rule, the strictest)."""
    request: CallRequest
    """Built exactly as for an online call; every request of one job is for one model."""


JobState = Literal["submitted", "running", "ended", "failed", "expired", "cancelling", "cancelled"]
"""Where a job stands, in the log's words (``engine.log``'s ``BatchState``, plus
``cancelling``): ``submitted`` (accepted, still validated or queued: OpenAI
``validating``, Gemini ``PENDING``), ``running``, ``ended`` (every request
answered, errored, expired or cancelled: results can be read), ``failed`` (the
job as a whole was refused, e.g. an input that did not validate; no results),
``expired`` (the provider's window closed: what finished can still be read),
``cancelling``, ``cancelled`` (what finished before the cancel can be read)."""

TERMINAL_STATES: frozenset[JobState] = frozenset({"ended", "failed", "expired", "cancelled"})
"""States a job never leaves; ``results`` may be read in all but ``failed``."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    state: JobState
    provider_state: str
    """The provider's own word (``validating``, ``canceling``, ``BATCH_STATE_RUNNING``)."""
    requests: int
    """How many requests the job holds (0 while the provider has not counted them yet)."""
    succeeded: int
    errored: int
    processing: int
    """Not yet answered. ``requests - succeeded - errored - processing`` expired or were
    cancelled: those items stay pending."""
    created_at: float
    """Unix seconds, by the provider's clock."""
    expires_at: float | None
    token: str | None
    """The client token the job was created with, where the provider keeps one
    (OpenAI metadata, Gemini display name); None for Anthropic."""
    error: str | None = None
    """Why a ``failed`` job failed, on one line, when the provider says."""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


Outcome = CallResult | ProviderError | None
"""One request's result: an answer (usage read as online), an error (its ``ErrorKind``,
and its ``usage`` when the provider billed it), or None when the request expired or
was cancelled before it ran (its item stays pending, nothing was billed)."""

RequestLookup = Callable[[str], CallRequest | None]
"""The request a ``custom_id`` was submitted as (None: not one of ours, skipped).
Results are parsed against it as online answers are (a schema's tool, its wrapping)."""


class BatchApi(Protocol):
    """One provider's batch API for one run; safe to use from many tasks at once."""

    @property
    def limits(self) -> BatchLimits: ...

    def request_bytes(self, request: BatchRequest) -> int:
        """The bytes ``request`` adds to a job (one JSONL line, or one array element)."""
        ...

    async def submit(
        self, requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest], *, token: str
    ) -> JobStatus:
        """Create one job from ``requests``, carrying ``token`` where the provider keeps one.

        The requests are streamed out (to a spool file, then the wire): memory stays
        flat in their number. A crash after the upload and before the job exists
        leaves at most an unused file at the provider, never a job.
        """
        ...

    async def find(self, token: str, *, since: float, count: int) -> list[JobStatus]:
        """Jobs created at or after ``since`` (Unix seconds) that may be the one ``token`` made.

        Where the provider keeps the token (OpenAI, Gemini), those that carry it.
        Anthropic keeps none: every job created since ``since`` holding ``count``
        requests; more than one means the caller cannot tell which is its own.
        """
        ...

    async def status(self, job_id: str) -> JobStatus: ...

    def results(self, job_id: str, lookup: RequestLookup) -> AsyncIterator[tuple[str, Outcome]]:
        """``(custom_id, outcome)`` for each request the job finished, streamed (memory flat).

        Read when the job is ``done`` (and not ``failed``); requests that have not
        finished are left out, as are custom ids ``lookup`` does not know.
        """
        ...

    async def cancel(self, job_id: str) -> JobStatus:
        """Ask the provider to cancel the job; its state is ``cancelling`` until it settles."""
        ...
