"""A run: its directory, its saved config, and the handle that controls it.

A run dir holds ``config.json`` (never a key), ``log.jsonl`` (the checkpoint
log, the source of truth) and ``summary.json`` (a cache of the last outcome so
listing runs does not rescan every log). ``Run.execute`` checks everything that
can be checked before the first call (the log's tail, the input's fingerprint,
prices for the caps, the prompt template against the first item) and then hands
an ``Execution`` a ready plan; the control methods are plain sync calls, safe
from a TUI key handler or a signal task on the same loop.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import anyio

from engine import _summary as summary
from engine import log
from engine._atomic import fsync_dir, write_atomic
from engine._batch import known_job_ids, next_job_number, reattach
from engine._budget import to_units_up
from engine._cache import ResponseCache, RunCache
from engine._config import (
    SETTINGS,
    SPEED_SETTINGS,
    RunConfig,
    bare_model,
    settings_of,
    with_settings,
)
from engine._dispatch import READ_CHUNK
from engine._errors import BatchdeckError, ConfigError, InputError, ProviderError, RunNotFound
from engine._events import (
    CacheWarning,
    Event,
    InputWarning,
    LiveState,
    LogRecovered,
    RunFinished,
    RunStarted,
    Subscriber,
)
from engine._execution import Execution
from engine._item_cap import ItemCap
from engine._items import InvalidItem, Item
from engine._lanes import graph_of, lane_keys, lanes_for
from engine._lock import LOCK_NAME, Holder, RunLock
from engine._lock import holder as lock_holder
from engine._paths import CONFIG_NAME, LOG_NAME, runs_root
from engine._plan import BatchPlan, Plan
from engine._prices import FREE, Price, PriceTable, user_prices_path
from engine._ratelimit import RateLimiter
from engine._reasoning import min_max_tokens
from engine._replay import publish_results, replay_log
from engine._stepper import Stepper
from engine._steps import Answer, split_lane
from engine._template import PromptTemplate, default_template_for, unknown_placeholders
from engine._tokens import answers_per_call
from engine.providers import PRESETS, BatchApi, Provider, is_free, make_provider
from engine.providers._base import Identifies
from engine.providers.simulate import SIMULATE, SimulateProvider
from engine.readers import STDIN, check_input, count_items, detect_format, read_items


@dataclass(frozen=True, slots=True)
class _Options:
    """What one ``execute`` call asked for (see its docstring)."""

    retry_failed: bool
    force: bool
    only: Collection[tuple[str, str]] | None
    prompt_override: str | None
    providers: Mapping[str, Provider] | None
    detach: bool = False
    max_tokens: int | None = None
    forget_jobs: Collection[str] = ()


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Run:
    def __init__(self, run_dir: Path, config: RunConfig, *, new: bool = False) -> None:
        self.run_dir = run_dir
        self.config = config
        self._new = new
        self._lock: RunLock | None = None
        self._execution: Execution | None = None
        self._pending_pause = False
        self._pending_stop = False

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @classmethod
    def create(cls, config: RunConfig, run_dir: Path | None = None) -> Run:
        """A new run, checked but not yet on disk: ``execute`` makes its dir once every
        check before the first call has passed, so a refused run leaves nothing behind."""
        config = preflight(config)
        if run_dir is None:
            run_dir = runs_root() / new_run_id()
        _check_unused(run_dir)
        return cls(run_dir, config, new=True)

    @classmethod
    def open(cls, ref: str | Path) -> Run:
        """A run by its dir, or by its id under the runs root."""
        candidates = [Path(ref), runs_root() / str(ref)]
        for run_dir in candidates:
            if (run_dir / LOG_NAME).is_file() and (run_dir / CONFIG_NAME).is_file():
                config_path = run_dir / CONFIG_NAME
                return cls(run_dir, RunConfig.from_json(config_path.read_bytes(), str(config_path)))
        raise RunNotFound(f"no run {ref!s}: not a run dir, nor a run id under {runs_root()}")

    def for_resume(self, **settings: Any) -> Run:
        """This run with a new invocation's settings, by name (``workers=16``, ``retries=1``).
        The others keep the run's saved values, except those that count per invocation
        (``time_limit``, ``max_items``): they start afresh unless given again."""
        fresh = {s.name: s.default for s in SETTINGS if s.about.per_invocation}
        return self.with_config(with_settings(self.config, {**fresh, **settings}))

    def with_config(self, config: RunConfig) -> Run:
        """The same run with changed speed or cap settings; results-changing settings refuse.

        The new settings are saved by ``execute``, under the run's lock."""
        if config.fingerprint() != self.config.fingerprint():
            before, after = settings_of(self.config), settings_of(config)
            changed = next(
                (
                    s.name
                    for s in SETTINGS
                    if s.about.changes_results and before[s.name] != after[s.name]
                ),
                None,
            )
            can = ", ".join(s.name for s in SPEED_SETTINGS)
            raise ConfigError(
                f"{changed or 'the prompt, models or schema'} cannot change on resume: "
                f"it changes results (only {can} can)",
                field=changed,
            )
        return Run(self.run_dir, config, new=self._new)

    # ---- one process drives a run ----

    def holder(self) -> Holder | None:
        """The process executing this run (this one included), or None when none is."""
        return None if self._new else lock_holder(self.run_dir)

    @contextmanager
    def held(self, *, wait: bool = False) -> Iterator[Run]:
        """Hold the run's lock for the block, so no other process can execute it meanwhile.

        ``execute`` holds it for itself when it is not held; hold it around more than
        the execution (reading the log for ``--output``, say). ``RunBusy`` naming the
        holder if another process has it; with ``wait``, wait for it (Ctrl+C gives up).
        A new run is not on disk yet, so no one else can hold it: its execution locks it.
        """
        if self._lock is not None or self._new:
            yield self
            return
        self._lock = RunLock.acquire(self.run_dir, wait=wait)
        try:
            yield self
        finally:
            self._lock.release()
            self._lock = None

    # ---- provider batch jobs ----

    def batch_jobs(self) -> list[log.BatchRecord]:
        """Every provider batch job this run's log knows, as last logged, oldest first."""
        return list(log.scan(self.log_path).batches.values())

    @asynccontextmanager
    async def batch_apis(self) -> AsyncIterator[dict[str, BatchApi]]:
        """The batch API of each of this run's models that has one (for looking at or
        cancelling its jobs from another process), closed after the block."""
        providers = _build_providers(self.config, session=0, run_dir=self.run_dir)
        apis: dict[str, BatchApi] = {}
        async with AsyncExitStack() as stack:
            for provider in set(providers.values()):
                stack.push_async_callback(_shielded(provider.aclose))
            for key in lane_keys(self.config):
                api = providers[split_lane(key)[1]].batch_api()
                if api is not None:
                    apis[key] = api
            yield apis

    async def cancel_batch_jobs(self) -> list[tuple[log.BatchRecord, str | None]]:
        """Ask the provider to cancel each of this run's open jobs: per job, None once asked,
        else why it could not be. It writes nothing: whoever executes the run next sees
        them cancelled, logs what they finished, and their other items stay pending."""
        jobs = [job for job in self.batch_jobs() if job.open and job.job_id is not None]
        if not jobs:
            return []
        asked: list[tuple[log.BatchRecord, str | None]] = []
        async with self.batch_apis() as apis:
            for job in jobs:
                assert job.job_id is not None
                api = apis.get(job.model)
                if api is None:
                    asked.append((job, f"{bare_model(job.model)} has no batch API"))
                    continue
                try:
                    await api.cancel(job.job_id)
                except ProviderError as exc:
                    asked.append((job, exc.message))
                    continue
                asked.append((job, None))
        return asked

    # ---- control ----

    def pause(self) -> None:
        self._pending_pause = True
        if self._execution is not None:
            self._execution.pause()

    def resume(self) -> None:
        self._pending_pause = False
        if self._execution is not None:
            self._execution.resume()

    def stop(self) -> None:
        self._pending_stop = True
        if self._execution is not None:
            self._execution.stop()

    def abort(self) -> None:
        self._pending_stop = True
        if self._execution is not None:
            self._execution.abort()

    def set_workers(self, count: int) -> None:
        self.config = self.config.model_copy(update={"workers": max(1, count)})
        if self._execution is not None:
            self._execution.set_workers(count)

    @property
    def paused(self) -> bool:
        return self._execution.paused if self._execution is not None else self._pending_pause

    # ---- execution ----

    async def execute(
        self,
        subscribers: Sequence[Subscriber] = (),
        *,
        retry_failed: bool = False,
        force: bool = False,
        only: Collection[tuple[str, str]] | None = None,
        prompt_override: str | None = None,
        providers: Mapping[str, Provider] | None = None,
        replay: bool = False,
        detach: bool = False,
        max_tokens: int | None = None,
        forget_jobs: Collection[str] = (),
    ) -> RunFinished:
        """Run every item without a terminal record (or only the ``(model, id)`` pairs given).

        Raises ConfigError / InputError / LogError before anything is sent when
        the run cannot work; item failures are results, never exceptions.
        ``providers`` (model -> provider) replaces the ones the config names, as
        httpx's transport does: for tests and for embedding batchdeck.
        ``replay`` publishes the log's results first, as ``replay`` does, so a
        subscriber that starts empty sees the whole run (``already_done`` is 0).
        ``detach`` returns once every batch chunk is submitted, leaving the jobs running.
        ``max_tokens`` raises the output limit of the calls this execution sends (a
        retry of truncated answers); each result records it. ``forget_jobs``: ids of open
        batch jobs their provider no longer knows, closed so their requests go again.
        """
        emit = _emitter(subscribers)
        options = _Options(
            retry_failed,
            force,
            only,
            prompt_override,
            providers,
            detach=detach,
            max_tokens=max_tokens,
            forget_jobs=forget_jobs,
        )
        with self.held():  # the log replayed is the log the execution goes on from
            if replay and not self._new:
                emit(self._started("replaying", resumed=False, already_done=0))
                await publish_results(self.log_path, emit, self.config.max_cost)
            async with self._planned(options, emit) as plan:
                execution = Execution(plan, subscribers, plan.config.workers)
                self._execution = execution
                try:
                    done = plan.state.done
                    elapsed_before = plan.state.elapsed_s
                    emit(
                        self._started(
                            "running",
                            resumed=plan.state.result_records > 0,
                            already_done=0 if replay else done,
                            elapsed_before_s=elapsed_before,
                        )
                    )
                    if self._pending_pause:
                        execution.pause()
                    if self._pending_stop:
                        execution.stop()
                    finished = await execution.run()
                finally:
                    self._execution = None
                    self._pending_stop = False
        if self.log_path.exists():  # not when the run dir was deleted under the run
            summary.save(self.run_dir, finished, elapsed_before + finished.elapsed_s)
            with suppress(OSError):  # the worker count it ended with is what resume keeps
                self._save_config()
        return finished

    async def replay(self, subscribers: Sequence[Subscriber] = ()) -> RunFinished:
        """Publish this past run's events from its log without executing it (see ``_replay``)."""
        started = self._started("replaying", resumed=False, already_done=0)
        return await replay_log(self.run_dir, _emitter(subscribers), started, self.config.max_cost)

    def _started(
        self, state: LiveState, *, resumed: bool, already_done: int, elapsed_before_s: float = 0.0
    ) -> RunStarted:
        return RunStarted(
            run_id=self.run_id,
            run_dir=str(self.run_dir),
            models=lane_keys(self.config),
            resumed=resumed,
            already_done=already_done,
            state=state,
            elapsed_before_s=elapsed_before_s,
        )

    @asynccontextmanager
    async def _planned(
        self, options: _Options, emit: Callable[[Event], None]
    ) -> AsyncIterator[Plan]:
        """Check all that can be checked before a call, open what the run needs, close it after.

        An existing run is locked first, so its log cannot change under the checks; a new
        run gets its dir, lock, config and log only once the checks have passed."""
        config = self.config
        async with AsyncExitStack() as stack:
            state: log.LogState | None = None
            if not self._new:
                stack.enter_context(self.held())
                state = await self._checked_log(options, emit)
            prices = _prices_for(config)
            if options.providers is not None:
                providers = dict(options.providers)
            else:
                providers = _build_providers(
                    config, session=1 if state is None else state.records, run_dir=self.run_dir
                )
                for provider in set(providers.values()):
                    stack.push_async_callback(_shielded(provider.aclose))
            apis = _batch_apis(config, providers, state)
            reattached = (
                None
                if state is None or not (apis or options.forget_jobs)
                else await reattach(state, apis, options.forget_jobs)
            )
            retrying = options.only is not None
            warnings: list[str] = []
            if options.only is None:
                stream, items, template = await _open_items(config, warnings.append)
                stack.callback(stream.close)
                counted = await anyio.to_thread.run_sync(count_items, config.input, config.format)
                total = None if counted is None else counted * len(lane_keys(config))
            else:
                wanted = frozenset(options.only)
                prompt = options.prompt_override or config.prompt
                template = _template_for_retry(self.log_path, prompt, wanted)
                stream = _items_from_log(self.log_path, wanted)
                stack.callback(stream.close)
                items = stream
                total = await anyio.to_thread.run_sync(_pairs_in_input, config)
            lanes = lanes_for(config, template)
            by_lane = {key: lane.model for key, lane in lanes.items()}
            providers = {key: providers[model] for key, model in by_lane.items()}
            cache = await _run_cache(config, providers, retrying=retrying, emit=emit)
            if cache is not None:
                stack.push_async_callback(_shielded(cache.close))
            # A few small writes, each fsynced: off the event loop, which may be drawing the app.
            if state is None:
                state = await anyio.to_thread.run_sync(self._materialize, stack)
            else:
                await anyio.to_thread.run_sync(self._save_config)
            skip = (
                _skipper(state, options.retry_failed) if options.only is None else _not_in(wanted)
            )
            waiting: set[tuple[str, str]] = set() if reattached is None else reattached.pending
            if waiting:
                skip = _also_skipping(skip, waiting)
            for message in warnings:
                emit(InputWarning(message))
            resumed: dict[str, dict[str, Answer]] | None = None
            unfinished = partial(_unfinished, lane_keys(config), skip)
            if config.steps and state.result_records:
                resumed = await anyio.to_thread.run_sync(_answers_in_log, self.log_path, unfinished)
            item_cap = None
            if config.max_item_cost is not None:  # what each unfinished item has cost so far
                spend = await anyio.to_thread.run_sync(log.item_spend, self.log_path, unfinished)
                spent = {item_id: to_units_up(cost) for item_id, cost in spend.items()}
                if reattached is not None:  # its requests still in jobs: their worst case
                    for job in reattached.jobs:
                        for entry in job.items:
                            if (job.model, entry.id) in reattached.pending:
                                spent[entry.id] = spent.get(entry.id, 0) + entry.units
                item_cap = ItemCap(to_units_up(config.max_item_cost), spent)
            writer = await anyio.to_thread.run_sync(
                partial(log.LogWriter.open_append, self.log_path, durability=config.durability)
            )
            stack.callback(writer.close)
            session = log.encode(log.session_record(resumed=state.records > 1))
            if reattached is not None:  # what was learned of earlier jobs, with it
                session += b"".join(log.encode(r) for r in reattached.records)
            await anyio.to_thread.run_sync(writer.write_now, session)
            batch = None
            if apis:
                job_ids = known_job_ids(state)
                if reattached is not None:  # found again by their tokens just now
                    job_ids.update(job.job_id for job in reattached.jobs if job.job_id)
                online = _prices_for(config, online=True)
                batch = BatchPlan(
                    apis=apis,
                    lanes=_batch_lanes(config) & frozenset(apis),
                    online_prices={key: online[model] for key, model in by_lane.items()},
                    open_jobs=() if reattached is None else reattached.jobs,
                    carried_units=0 if reattached is None else reattached.carried_units,
                    waiting=waiting,
                    job_ids=job_ids,
                    run_id=self.run_id,
                    next_job=next_job_number(state.batches),
                    detach=options.detach,
                )
            limiters = _limiters(config, emit)
            plan = Plan(
                config=config,
                items=items,
                template=template,
                lanes=lanes,
                providers=providers,
                prices={key: prices[model] for key, model in by_lane.items()},
                limiters={key: limiters[m] for key, m in by_lane.items() if m in limiters},
                writer=writer,
                state=state,
                skip=skip,
                prompt_override=options.prompt_override,
                max_tokens=options.max_tokens,
                total=total,
                retrying=None if options.only is None else state.outcome,
                batch=batch,
                cache=cache,
                item_cap=item_cap,
            )
            graph = graph_of(config)
            if graph is not None:
                stepper = Stepper(
                    graph, lanes, plan.prices, skip, plan.result, max_tokens=config.max_tokens,
                    resumed=resumed,
                    fresh=not state.result_records and options.only is None and not waiting,
                    batch_lanes=frozenset() if batch is None else batch.lanes, waiting=waiting,
                )  # fmt: skip
                plan = replace(plan, stepper=stepper)
            yield plan

    async def _checked_log(self, options: _Options, emit: Callable[[Event], None]) -> log.LogState:
        """The log's state after recovering its tail, refused if the input or the saved
        settings are not those the run started with (unless ``force``)."""
        config = self.config
        recovery = await anyio.to_thread.run_sync(log.recover, self.log_path)
        if recovery.bad_bytes:
            emit(LogRecovered(recovery.bad_bytes, str(recovery.side_file)))
        state = await anyio.to_thread.run_sync(log.scan, self.log_path)
        recorded = (state.header or {}).get("config")
        if recorded is not None and recorded != config.fingerprint() and not options.force:
            raise ConfigError(
                f"{self.run_dir / CONFIG_NAME} was edited: its settings are not those run "
                f"{self.run_id} started with (its log says so): put it back, or resume with "
                "--force to use it anyway"
            )
        if (
            options.only is None
            and state.result_records
            and not log.fingerprint_matches(state.header or {}, config.input)
        ):
            if not options.force:
                raise InputError(
                    f"{config.input} is not the input this run started with (changed, moved, "
                    "or stdin): resume with --force to use it anyway"
                )
            # Items may have moved to other lines: match finished work by id instead.
            state = await anyio.to_thread.run_sync(partial(log.scan, self.log_path, index="id"))
        return state

    def _materialize(self, stack: AsyncExitStack) -> log.LogState:
        """Make the new run's dir (0700), lock it, save its config and start its log."""
        config, run_dir = self.config, self.run_dir
        try:
            run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create run dir {run_dir}: {exc.strerror}") from None
        fsync_dir(run_dir.parent)
        self._new = False
        stack.enter_context(self.held())
        _check_unused(run_dir)  # again, under the lock: another process may have raced us
        write_atomic(run_dir / CONFIG_NAME, config.to_json())
        source = None if config.input == STDIN else log.input_fingerprint(config.input)
        header = log.header_record(run_dir.name, config=config.fingerprint(), input=source)
        log.LogWriter.create(self.log_path, header, durability=config.durability).close()
        return log.scan(self.log_path)

    def _save_config(self) -> None:
        """Save this execution's speed and cap settings, if they changed."""
        path = self.run_dir / CONFIG_NAME
        data = self.config.to_json()
        if path.read_bytes() != data:
            write_atomic(path, data)


def _check_unused(run_dir: Path) -> None:
    """A new run's dir is absent or empty (but for a lock): its config.json and summary.json
    would otherwise replace files of the same name that are not batchdeck's."""
    if (run_dir / LOG_NAME).exists():
        raise ConfigError(f"{run_dir} already holds a run: use --resume to go on with it")
    try:
        others = sorted(entry.name for entry in run_dir.iterdir() if entry.name != LOCK_NAME)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot use {run_dir} as a run dir: {exc.strerror}") from None
    if others:
        raise ConfigError(
            f"{run_dir} is not empty (it holds {others[0]}{', ...' if len(others) > 1 else ''}): "
            "a new run needs a new or empty --run-dir"
        )


def _emitter(subscribers: Sequence[Subscriber]) -> Callable[[Event], None]:
    def emit(event: Event) -> None:
        for subscriber in subscribers:
            subscriber(event)

    return emit


def _build_providers(config: RunConfig, session: int, run_dir: Path) -> dict[str, Provider]:
    """One provider per provider name and base URL (it owns the connection pool), shared
    by the models that name both: two models on two servers get two.

    ``session`` tells executions of one run apart (simulate's failures differ between
    them, as a real provider's would, so a retry later can succeed). simulate keeps its
    batch jobs in the run dir, where another process (resume, cancel) finds them."""
    built: dict[tuple[str, str | None], Provider] = {}
    providers: dict[str, Provider] = {}
    for model in config.models:
        name = model.partition(":")[0]
        where = (name, config.base_url_of(model))
        if where not in built:
            if name == SIMULATE:
                built[where] = SimulateProvider(
                    config.sim, session=session, batch_store=run_dir / SIM_BATCH_DIR
                )
            else:
                built[where] = make_provider(
                    name, base_url=where[1], allow_insecure_http=config.allow_insecure_http
                )
        providers[model] = built[where]
    return providers


SIM_BATCH_DIR = "sim-batches"
"""Where simulate keeps a run's batch jobs, in its run dir."""


def _batch_apis(
    config: RunConfig, providers: Mapping[str, Provider], state: log.LogState | None
) -> dict[str, BatchApi]:
    """The batch API of each lane (a model, or one model of a pipeline's step) that goes
    batch, or has jobs left open in the log; ConfigError for a model whose provider has
    none. Jobs and their records are per lane, so a model batch in two steps has two."""
    wanted = set(_batch_lanes(config))
    if state is not None:
        wanted.update(job.model for job in state.batches.values() if job.open)
    apis: dict[str, BatchApi] = {}
    for key in lane_keys(config):
        if key not in wanted:
            continue
        model = split_lane(key)[1]
        provider = providers[model]
        api = provider.batch_api()
        if api is None:
            raise ConfigError(
                f"{model}: {provider.name} has no batch API: run it online "
                f"(without --batch, or as {bare_model(model)}@online)",
                field="batch",
            )
        apis[key] = api
    return apis


def _batch_lanes(config: RunConfig) -> frozenset[str]:
    """The lanes whose model goes batch."""
    batch = config.batch_models
    return frozenset(key for key in lane_keys(config) if split_lane(key)[1] in batch)


def _also_skipping(
    skip: Callable[[str, str, int], bool], pending: set[tuple[str, str]]
) -> Callable[[str, str, int], bool]:
    """``skip``, and the pairs waiting in a batch job at their provider."""

    def skipping(model: str, item_id: str, line: int) -> bool:
        return skip(model, item_id, line) or (model, item_id) in pending

    return skipping


async def _run_cache(
    config: RunConfig,
    providers: Mapping[str, Provider],
    *,
    retrying: bool,
    emit: Callable[[Event], None],
) -> RunCache | None:
    """The response cache for this execution, or None when no model's answers are cached.

    A retry of chosen pairs asks for new answers: it stores them but reads none."""
    identities = {
        model: provider.request_identity
        for model, provider in providers.items()
        if isinstance(provider, Identifies)
    }
    if not identities and not config.cache_only:
        return None
    store = await anyio.to_thread.run_sync(ResponseCache.open, config.cache_max_gb)
    return RunCache(
        store,
        identities,
        read=config.cache and not retrying,
        only=config.cache_only,
        warn=lambda message: emit(CacheWarning(message)),
    )


def _limiters(config: RunConfig, emit: Callable[[Event], None]) -> dict[str, RateLimiter]:
    """A limiter per model that talks to a real API, or that the user gave limits for."""
    return {
        model: RateLimiter(
            model,
            rpm=config.rpm,
            tpm=config.tpm,
            burst_s=config.burst,
            charge_max=_wire(model) == "openai",
            publish=emit,
        )
        for model in config.models
        if _wire(model) is not None or config.rpm or config.tpm
    }


CLOSE_DEADLINE_S = 10.0
"""Longest closing a connection pool may hold up the end of a run."""


def _shielded(close: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Closing a connection pool must finish even when the run is being cancelled, but not
    hold the way out forever (a peer that never acknowledges the close)."""

    async def run() -> None:
        with anyio.move_on_after(CLOSE_DEADLINE_S, shield=True):
            await close()

    return run


def _wire(model: str) -> str | None:
    """The wire format a model's provider speaks (None for simulate)."""
    preset = PRESETS.get(model.partition(":")[0])
    return None if preset is None else preset.wire


def preflight(config: RunConfig) -> RunConfig:
    """What a new run checks before it is made, and ``estimate`` checks too, so that the two
    refuse the same runs: the input, its format, the template against the first item, a
    price for each model under a cost cap, the passed-through fields, room to answer under
    a reasoning effort. Returns the config with its input made absolute (a resume may come
    from another directory)."""
    check_input(config.input)
    detect_format(config.input, config.format)
    if config.input != STDIN:  # stdin is read once, by the run itself
        config = config.model_copy(update={"input": os.path.abspath(config.input)})
        stream, head = _first_chunk(config)
        stream.close()
        _template_for(config, head)
    _prices_for(config)
    answers_per_call(config.params)
    _check_reasoning(config)
    return config


def _check_reasoning(config: RunConfig) -> None:
    """A thinking budget has a floor on some providers; the limit must leave an answer room."""
    if config.reasoning_effort is None:
        return
    for model in config.models:
        least = min_max_tokens(_wire(model) or "")
        if config.max_tokens < least:
            raise ConfigError(
                f"--max-tokens {config.max_tokens} is too small for --reasoning-effort on "
                f"{model}: it thinks at least {least // 2:,} tokens within that limit; "
                f"give --max-tokens {least} or more"
            )


def online_price(table: PriceTable, model: str) -> Price | None:
    """What ``model``'s calls cost online: nothing on a free preset (a local server), else
    its price in ``table`` (None: unpriced)."""
    return FREE if is_free(model.partition(":")[0]) else table.lookup(bare_model(model))


def _prices_for(config: RunConfig, *, online: bool = False) -> dict[str, Price | None]:
    """Each model's price, at the batch rate for the models that go batch (unless
    ``online``: what they would cost online)."""
    table = PriceTable.load()
    prices: dict[str, Price | None] = {}
    batch = frozenset() if online else config.batch_models
    for model in config.models:
        price = online_price(table, model)
        if price is not None and model in batch:
            price = price.batch()
        if price is None and (config.max_cost is not None or config.max_item_cost is not None):
            raise ConfigError(
                f"no price known for {model}, so a cost cap cannot be enforced: add "
                f'"{bare_model(model)}": {{"input": USD_PER_MTOK, "output": USD_PER_MTOK}} '
                f'under "models" in {user_prices_path()}'
            )
        prices[model] = price
    return prices


async def _open_items(
    config: RunConfig, warn: Callable[[str], None]
) -> tuple[Generator[Item | InvalidItem], Iterator[Item | InvalidItem], PromptTemplate]:
    """Open the input, peek its first chunk, and check the template against the first item.

    Returns the reader (to close), the items to run (the peeked chunk, then the rest) and
    the template."""

    stream, head = await anyio.to_thread.run_sync(_first_chunk, config, warn)
    try:
        template = _template_for(config, head)
    except ConfigError:
        stream.close()
        raise
    return stream, chain(head, stream), template


def _first_chunk(
    config: RunConfig, warn: Callable[[str], None] | None = None
) -> tuple[Generator[Item | InvalidItem], list[Item | InvalidItem]]:
    stream = read_items(config.input, config.format, on_warning=warn)
    return stream, list(islice(stream, READ_CHUNK))


def _template_for(config: RunConfig, head: Sequence[Item | InvalidItem]) -> PromptTemplate:
    """The run's template, checked against the first valid item: ConfigError if it asks for
    a field that item lacks (the user most likely mistyped it)."""
    first = next((entry for entry in head if isinstance(entry, Item)), None)
    names = list(first.fields) if first is not None else []
    template = PromptTemplate.parse(config.prompt or default_template_for(names))
    if first is None:
        return template
    graph = graph_of(config)
    asked = [("the prompt", unknown_placeholders(template, names))] if config.prompt else []
    for step in graph.steps if graph is not None else ():
        asked.append(
            (f"step {step.name}'s prompt", [f for f in step.item_fields if f not in names])
        )
    for what, unknown in asked:
        if unknown:
            raise ConfigError(
                f"{what} uses {{{unknown[0]}}}, which the first item of {config.input} "
                f"(line {first.line}) does not have; its fields: {', '.join(names)}"
            )
    return template


def _skipper(state: log.LogState, retry_failed: bool) -> Callable[[str, str, int], bool]:
    """Resume skips every finished pair; with --retry-failed, failed and skipped ones run again."""
    status = state.status

    def skip(model: str, item_id: str, line: int) -> bool:
        done = status(model, item_id, line)
        return done == "ok" if retry_failed else done is not None

    return skip


def _pairs_in_input(config: RunConfig) -> int | None:
    """(item, model) pairs in the run's input, or None when it cannot be counted."""
    try:
        counted = count_items(config.input, config.format)
    except BatchdeckError:
        return None
    return None if counted is None else counted * len(lane_keys(config))


def _unfinished(
    lanes: Sequence[str], skip: Callable[[str, str, int], bool], item_id: str, line: int
) -> bool:
    """The item has a lane still to run (not ``skip``ped): resume keeps what it needs of it
    in memory, a finished item's nothing."""
    return not all(skip(lane, item_id, line) for lane in lanes)


def _answers_in_log(
    path: Path, unfinished: Callable[[str, int], bool]
) -> dict[str, dict[str, Answer]]:
    """What a pipeline's lanes answered ok, by item id then lane, for the ``unfinished``
    items: what their later steps read when a resume continues them."""
    said: dict[str, dict[str, Answer]] = {}
    for result in log.iter_results(path):
        if result.status == "ok" and unfinished(result.id, result.line):
            said.setdefault(result.id, {})[result.model] = Answer(result.output, result.parsed)
    return said


def _not_in(wanted: frozenset[tuple[str, str]]) -> Callable[[str, str, int], bool]:
    def skip(model: str, item_id: str, line: int) -> bool:
        return (model, item_id) not in wanted

    return skip


def _template_for_retry(
    path: Path, prompt: str | None, wanted: frozenset[tuple[str, str]]
) -> PromptTemplate:
    if prompt is not None:
        return PromptTemplate.parse(prompt)
    first = next(_items_from_log(path, wanted), None)
    return PromptTemplate.parse(default_template_for(list(first.fields) if first else []))


def _items_from_log(path: Path, wanted: frozenset[tuple[str, str]]) -> Generator[Item]:
    """The items of the wanted pairs, once each, with the fields their records kept."""
    ids = {item_id for _, item_id in wanted}
    for result in log.iter_results(path):
        if result.id in ids and (result.model, result.id) in wanted:
            ids.discard(result.id)
            yield Item(result.id, result.line, result.fields)
