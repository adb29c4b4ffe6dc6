"""A local fake LLM provider server (OpenAI, Anthropic, Gemini) for tests and benchmarks.

One aiohttp process on 127.0.0.1 speaks each provider's real wire format,
enforces continuously refilled RPM/TPM buckets with the real 429 signals, and
injects faults on demand (random rates, prompt markers like ``[[fault:500x2]]``,
or ``POST /_config`` at runtime). It also serves each provider's batch API
statefully (jobs that move through their states, fail per request, expire,
cancel, and count every custom id they accepted). Run it with ``python -m tests.fakeserver``;
drive it from tests with ``tests.fakeserver.fixtures`` (kept out of this
module so the server process never imports pytest).

Modules: ``_config`` (options), ``_buckets`` (rate limits), ``_faults`` (fault
choice), ``_schema`` (structured-output instances), ``_dialect`` and one module
per provider (wire formats), ``_state`` (mutable state and control surface),
``_stats`` (counters), ``_app`` (request pipeline), ``_server`` (start/stop);
``_jobs`` (batch jobs, provider-neutral), ``_batchroutes`` (what the batch
endpoints share) and one ``_*_batches`` module per provider.
"""

from tests.fakeserver._config import FAULT_KINDS, LimitOverride, ServerConfig

__all__ = ["FAULT_KINDS", "LimitOverride", "ServerConfig"]
