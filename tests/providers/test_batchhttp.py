"""A results file read as a stream: whatever the chunking and the compression, the same lines."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import anyio
import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.providers import make_provider
from engine.providers._batchhttp import BatchHttp
from engine.providers._http import HttpProvider

LINES = st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")), max_size=30)
ENCODINGS = st.sampled_from(["", "gzip", "deflate"])


def encoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    return zlib.compress(body) if encoding == "deflate" else body


def read_lines(wire: bytes, cuts: list[int], encoding: str) -> list[bytes]:
    """The lines ``BatchHttp.lines`` gives for ``wire`` sent in pieces cut at ``cuts``."""
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    pieces = [wire[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]

    async def stream() -> list[bytes]:
        class Pieces(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                for piece in pieces:
                    yield piece

        def answer(request: httpx.Request) -> httpx.Response:
            headers = {"content-encoding": encoding} if encoding else {}
            return httpx.Response(200, headers=headers, stream=Pieces())

        provider = make_provider(
            "openai", key="sk-test-0123456789abcdefWXYZ", transport=httpx.MockTransport(answer)
        )
        assert isinstance(provider, HttpProvider)
        try:
            return [line async for line in BatchHttp(provider).lines("files/f/content")]
        finally:
            await provider.aclose()

    return anyio.run(stream)


@settings(max_examples=60, deadline=None)
@given(lines=LINES, cuts=st.lists(st.integers(min_value=0), max_size=12), encoding=ENCODINGS)
def test_any_chunking_and_encoding_gives_the_same_lines(
    lines: list[bytes], cuts: list[int], encoding: str
) -> None:
    body = b"\n".join(lines)
    got = read_lines(encoded(body, encoding), cuts, encoding)
    assert got == [line for line in lines if line.strip()]
