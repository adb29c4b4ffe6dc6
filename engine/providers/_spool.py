"""A job's requests, encoded one by one into a temporary file, then streamed up from it.

A job may hold 100,000 requests and 256 MB: building its body in memory would
make memory grow with the items. Each request is encoded (exactly as its
provider's online call would be) and written as it arrives, so memory stays
that of one request; the file's size is then known, so the upload goes out with
a ``Content-Length`` (the providers' upload endpoints want one) in 1 MiB reads.

The spool also checks what a job may hold: the provider's limits, and custom
ids the strictest provider (Anthropic) accepts. Breaking either is the engine's
bug, refused before anything is sent (``bad_request``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO

import anyio

from engine._errors import ProviderError
from engine.providers._batch import BatchLimits, BatchRequest

CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Anthropic's rule for a ``custom_id``; OpenAI's and Gemini's are looser."""
_READ = 1 << 20
_YIELD_EVERY = 256
"""Requests encoded between two checkpoints: the event loop stays responsive."""


class Spool:
    """Encoded requests in a temporary file: ``element sep element sep ...`` (no trailing sep)."""

    def __init__(self, limits: BatchLimits, *, separator: bytes = b"\n") -> None:
        self._limits = limits
        self._separator = separator
        with _local_errors():
            self._file = tempfile.TemporaryFile()
        self.count = 0
        self.size = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()

    async def fill(
        self,
        requests: Iterable[BatchRequest] | AsyncIterable[BatchRequest],
        encode: Callable[[BatchRequest], bytes],
    ) -> None:
        """Write every request of ``requests`` as ``encode`` makes it."""
        with _local_errors():
            if isinstance(requests, AsyncIterable):
                async for request in requests:
                    await self._add(request, encode)
            else:
                for request in requests:
                    await self._add(request, encode)
        if not self.count:
            raise ProviderError("bad_request", "a batch job needs at least one request")

    async def _add(self, request: BatchRequest, encode: Callable[[BatchRequest], bytes]) -> None:
        if not CUSTOM_ID.fullmatch(request.custom_id):
            raise ProviderError(
                "bad_request",
                f"custom_id {request.custom_id[:80]!r} is not 1-64 of [A-Za-z0-9_-]",
            )
        element = encode(request)
        if self.count:
            element = self._separator + element
        self.count += 1
        self.size += len(element)
        limits = self._limits
        if self.count > limits.max_requests or self.size > limits.max_bytes:
            raise ProviderError(
                "bad_request",
                f"a batch job holds at most {limits.max_requests:,} requests and"
                f" {limits.max_bytes:,} bytes: these requests do not fit in one",
            )
        self._file.write(element)
        if self.count % _YIELD_EVERY == 0:
            await anyio.lowlevel.checkpoint()

    async def chunks(self, prefix: bytes = b"", suffix: bytes = b"") -> AsyncIterator[bytes]:
        """``prefix``, the spooled bytes in 1 MiB reads, ``suffix``: ``size`` plus theirs long."""
        yield prefix
        with _local_errors():
            self._file.seek(0)
        while chunk := _read(self._file):
            yield chunk
            await anyio.lowlevel.checkpoint()
        yield suffix

    def elements(self) -> Iterator[bytes]:
        """The spooled elements one by one (for a body that must be reshaped, Gemini's inline)."""
        self._file.seek(0)
        for line in self._file:
            yield line.rstrip(b"\n")


@contextmanager
def _local_errors() -> Iterator[None]:
    """A spool file that cannot be written or read (a full disk) is an ``internal`` error."""
    try:
        yield
    except OSError as exc:
        raise ProviderError("internal", f"the batch's spool file failed: {exc}") from None


def _read(file: IO[bytes]) -> bytes:
    with _local_errors():
        return file.read(_READ)
