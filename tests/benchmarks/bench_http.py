"""HTTP client throughput and client CPU per request against the fake server, printed.

Run from the repository root: ``python -m tests.benchmarks.bench_http``
(``--help`` for the knobs). The fake server runs as a subprocess answering
after 500 ms, so only the client's CPU is counted here (``time.process_time``
of this process over the measured window); the server's own CPU per request is
printed beside it from ``/_stats``. Each variant keeps ``--in-flight`` calls
going (256 by default) for ``--warmup`` seconds, then counts the calls that
complete in the next ``--seconds``; each figure is the median of ``--runs``
runs, each in a fresh event loop. Targets: at least 450 requests/s and at most
0.5 ms of client CPU per request.

``measure(client_factory, ...)`` is the reusable part: a client factory is an
async context manager factory yielding one coroutine function that makes one
call (raising on failure), so a variant that goes through batchdeck's own
provider plugs in beside the raw ones as one more ``VARIANTS`` entry.

The variants: httpx's own pool (collapses at hundreds of connections,
encode/httpx#3215); ``AsyncClient`` over ``httpx_aiohttp.AiohttpTransport``;
httpx requests sent straight to that transport without an ``AsyncClient``
(what the client's per-call bookkeeping costs); aiohttp alone (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from engine.providers import CallRequest, make_provider
from tests.fakeserver.fixtures import FakeServer, run_fake_server

Call = Callable[[], Awaitable[object]]
ClientFactory = Callable[[], AbstractAsyncContextManager[Call]]

LATENCY_MS = 500.0
IN_FLIGHT = 256
WARMUP_S = 2.0
MEASURE_S = 10.0
RUNS = 3
TIMEOUT_S = 30.0
TARGET_RPS = 450.0
TARGET_CPU_MS = 0.5
_MS = 1000.0


@dataclass(frozen=True, slots=True)
class Measurement:
    completed: int
    errors: int
    seconds: float
    cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_s * _MS / max(self.completed, 1)


async def measure(
    client_factory: ClientFactory,
    *,
    in_flight: int = IN_FLIGHT,
    warmup_s: float = WARMUP_S,
    duration_s: float = MEASURE_S,
) -> Measurement:
    """Keep ``in_flight`` calls going; count completions and this process's CPU after warm-up."""
    completed = errors = 0
    measuring = False
    stop = asyncio.Event()

    async def worker(call: Call) -> None:
        nonlocal completed, errors
        while not stop.is_set():
            try:
                await call()
            except Exception:
                if measuring:
                    errors += 1
            else:
                if measuring:
                    completed += 1

    async with client_factory() as call:
        workers = [asyncio.create_task(worker(call)) for _ in range(in_flight)]
        await asyncio.sleep(warmup_s)  # a benchmark's clock, not a wait for a condition
        measuring = True
        cpu_started, started = time.process_time(), time.perf_counter()
        await asyncio.sleep(duration_s)
        measuring = False
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        stop.set()
        await asyncio.gather(*workers)
    return Measurement(completed, errors, seconds, cpu_s)


_BODY = orjson.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Classify this support ticket: refund."}],
        "max_completion_tokens": 32,
    }
)
_HEADERS = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}


def httpx_variant(
    make_client: Callable[[httpx.Limits], httpx.AsyncClient],
) -> Callable[[str, int], ClientFactory]:
    """A variant posting one small chat completion per call through an httpx client."""

    def variant(base_url: str, connections: int) -> ClientFactory:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        url = f"{base_url}/chat/completions"

        @asynccontextmanager
        async def factory() -> AsyncIterator[Call]:
            async with make_client(limits) as client:

                async def call() -> object:
                    response = await client.post(url, content=_BODY, headers=_HEADERS)
                    response.raise_for_status()
                    return orjson.loads(response.content)

                yield call

        return factory

    return variant


def transport_variant(base_url: str, connections: int) -> ClientFactory:
    """httpx ``Request``/``Response`` sent straight through ``AiohttpTransport``, no client.

    Skips what ``AsyncClient.send`` adds per call (URL and header merging, the
    cookie jar's ``extract_cookies``, auth and redirect plumbing) while keeping
    httpx's types as the API.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    url = httpx.URL(f"{base_url}/chat/completions")
    timeouts = {"timeout": httpx.Timeout(TIMEOUT_S).as_dict()}

    @asynccontextmanager
    async def factory() -> AsyncIterator[Call]:
        async with AiohttpTransport(limits=limits) as transport:

            async def call() -> object:
                request = httpx.Request(
                    "POST", url, headers=_HEADERS, content=_BODY, extensions=timeouts
                )
                response = await transport.handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                response.raise_for_status()
                return orjson.loads(response.content)

            yield call

    return factory


def aiohttp_variant(base_url: str, connections: int) -> ClientFactory:
    """The same calls through aiohttp alone: the floor the httpx layer adds to."""
    url = f"{base_url}/chat/completions"

    @asynccontextmanager
    async def factory() -> AsyncIterator[Call]:
        connector = aiohttp.TCPConnector(limit=connections)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def call() -> object:
                async with session.post(url, data=_BODY, headers=_HEADERS) as response:
                    response.raise_for_status()
                    return orjson.loads(await response.read())

            yield call

    return factory


def batchdeck_variant(base_url: str, connections: int) -> ClientFactory:
    """What a run does: batchdeck's own OpenAI provider, one call per item."""
    request = CallRequest(model="gpt-4o-mini", prompt="Classify: my printer is on fire.")

    @asynccontextmanager
    async def factory() -> AsyncIterator[Call]:
        provider = make_provider("openai", base_url=base_url, key="test-key")
        try:

            async def call() -> object:
                return await provider.call(request)

            yield call
        finally:
            await provider.aclose()

    return factory


def _httpx_default(limits: httpx.Limits) -> httpx.AsyncClient:
    return httpx.AsyncClient(limits=limits, timeout=TIMEOUT_S)


def _httpx_aiohttp(limits: httpx.Limits) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=TIMEOUT_S)


VARIANTS: dict[str, Callable[[str, int], ClientFactory]] = {
    "httpx default transport": httpx_variant(_httpx_default),
    "httpx + AiohttpTransport": httpx_variant(_httpx_aiohttp),
    "httpx types, AiohttpTransport, no client": transport_variant,
    "aiohttp alone (reference)": aiohttp_variant,
    "batchdeck's OpenAI provider": batchdeck_variant,
}
"""Name -> function of (the server's OpenAI base URL, connection count)."""


def run_variant(
    server: FakeServer,
    name: str,
    factory: ClientFactory,
    *,
    runs: int,
    in_flight: int,
    warmup_s: float,
    duration_s: float,
) -> None:
    """Print the median of ``runs`` measurements of one variant, with the server's CPU."""
    results: list[Measurement] = []
    server_cpu_ms: list[float] = []
    for _ in range(runs):
        before = server.stats()
        result = asyncio.run(
            measure(factory, in_flight=in_flight, warmup_s=warmup_s, duration_s=duration_s)
        )
        after = server.stats()
        served = max(after["requests"] - before["requests"], 1)
        server_cpu_ms.append((after["process_cpu_s"] - before["process_cpu_s"]) * _MS / served)
        results.append(result)
    rps = statistics.median(r.requests_per_s for r in results)
    cpu = statistics.median(r.cpu_ms_per_request for r in results)
    errors = sum(r.errors for r in results)
    verdict = "meets" if rps >= TARGET_RPS and cpu <= TARGET_CPU_MS else "misses"
    print(
        f"{name:42} {rps:6.1f} req/s  {cpu:6.3f} ms client CPU/req  "
        f"{statistics.median(server_cpu_ms):6.3f} ms server CPU/req  errors {errors}  "
        f"({verdict} >= {TARGET_RPS:.0f} req/s, <= {TARGET_CPU_MS} ms)",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--warmup", type=float, default=WARMUP_S)
    parser.add_argument("--seconds", type=float, default=MEASURE_S)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args(argv)
    print(
        f"{args.in_flight} calls in flight, server latency {args.latency_ms:.0f} ms, "
        f"{args.seconds:.0f} s measured after {args.warmup:.0f} s warm-up, "
        f"median of {args.runs} runs",
        flush=True,
    )
    with run_fake_server(latency_ms=args.latency_ms) as server:
        for name in args.only or VARIANTS:
            run_variant(
                server,
                name,
                VARIANTS[name](server.openai_base_url, args.in_flight),
                runs=args.runs,
                in_flight=args.in_flight,
                warmup_s=args.warmup,
                duration_s=args.seconds,
            )


if __name__ == "__main__":
    main()
