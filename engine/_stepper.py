"""Items through a pipeline's steps: which lanes an item runs next, with what prompt.

Each item goes through the step graph on its own: its next step starts as soon
as the answers it reads are in, whatever other items are doing (streaming, not
stage by stage). The dispatcher begins an item (``begin``: its first steps, or on
resume its first unfinished ones, with the answers the log kept), and every
result of it comes back here (``finished``) as it is sent to the log, which gives
the lanes now ready with their prompts. Not once it is on disk: the log is first
in, first out, so a later step's record can never be written before the answer it
read, and a kill before that write loses both, as any call in flight is lost.

A lane that ends other than ``ok`` stops the item at its step: the lanes after it
are logged ``skipped`` (kind ``upstream``, "classify: timeout"), so every lane of
every item ends with a record, the counts add up, and ``--retry-failed`` runs the
failed step again and then what follows it. The one exception is a debate's first
step: its revise step starts once every lane of it has ended, sending each model
that answered its own prompt; a model that did not answer does not revise (that
lane is skipped), and the item stops after the revisions.

Money: when an item begins, the worst case of its later steps is held with its
first step's (``later_units``) and kept for it (``hold``); each later call draws
its own reservation from that pool (``draw``), and what is left goes back when
the item ends. So an item that started can finish, and the cap stays hard either
way: each call still reserves its own worst case, measured on its real prompt.

Batch lanes: a lane whose model goes batch is sent like any other (the dispatcher
hands it to the batch lane instead of a worker), and its result comes back the same
way, as its job's results are read. The stepper counts the items that have an
online lane in flight (``online_items``): the dispatcher bounds those, and sends the
batch lane's chunks out once nothing online is in flight. On resume, a lane whose
request is in a job still open at its provider (``waiting``) is running, not ended:
its item waits for the job's result, which may even be fetched (when the job ended
while the run was down) before the dispatcher reads the item again; such a result
is kept (``_early``) until the item begins. A request a job ended without answering
(expired, cancelled) ends its item's progress here (``unanswered``): the item stays
pending for resume, from that step.

Everything here is plain state used from the event loop's one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from engine._budget import to_units_up
from engine._items import Item
from engine._lanes import Lane
from engine._prices import Price
from engine._results import ErrorInfo, ItemResult
from engine._steps import (
    Answer,
    Graph,
    Step,
    lane_key,
    prompt_bound,
    reads_no_fields,
    render_step,
)
from engine._template import PromptTemplate
from engine._tokens import input_token_bound

ResultOf = Callable[..., ItemResult]
"""``Plan.result``: how a result of an item on a lane is built."""


@dataclass(slots=True)
class _Progress:
    item: Item
    answers: dict[str, Answer]
    """Lanes that answered ok, by key."""
    prompts: dict[str, str] = field(default_factory=dict)
    """The prompt each step was (or would have been) sent, by step name."""
    started: set[str] = field(default_factory=set)
    """Steps whose lanes were sent, had ended before this execution, or will never run."""
    running: set[str] = field(default_factory=set)
    """Lanes sent, without a result yet."""
    ended: set[str] = field(default_factory=set)
    """Lanes of a debate's first step that ended other than ok: its revise step goes on
    without them."""
    online: int = 0
    """How many of ``running`` are online lanes."""
    pool: int = 0
    """Units held for its later steps."""


@dataclass(slots=True)
class Next:
    """What an item does now: lanes to send (key, prompt), results to log for lanes that
    will not run, and units to give back."""

    item: Item
    ready: list[tuple[str, str]] = field(default_factory=list)
    results: list[ItemResult] = field(default_factory=list)
    release: int = 0
    ended: bool = False
    """The item has nothing left to send or to hear back from."""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A batch job ended without answering ``item_id`` on lane ``key`` (expired, cancelled)."""

    key: str
    item_id: str


class Stepper:
    def __init__(
        self,
        graph: Graph,
        lanes: Mapping[str, Lane],
        prices: Mapping[str, Price | None],
        skip: Callable[[str, str, int], bool],
        result_of: ResultOf,
        *,
        max_tokens: int,
        resumed: Mapping[str, dict[str, Answer]] | None = None,
        fresh: bool = False,
        batch_lanes: frozenset[str] = frozenset(),
        waiting: Collection[tuple[str, str]] = (),
    ) -> None:
        self._graph = graph
        self._lanes = lanes
        self._skip = skip
        self._result_of = result_of
        self._max_tokens = max_tokens
        """The run's output limit: a step without its own has it."""
        self._resumed = dict(resumed or {})
        self._fresh = fresh
        """Nothing ran before this execution: no lane has ended, none is skipped."""
        self._batch_lanes = batch_lanes
        self._waiting = waiting
        """(lane, id) of requests in batch jobs open at their provider (live: a request a
        job ended without answering leaves it)."""
        self._early: dict[str, list[ItemResult]] = {}
        """Results of ``waiting`` requests that came before their item began."""
        self._items: dict[str, _Progress] = {}
        self._beginning: _Progress | None = None
        """The item ``begin`` gave lanes to send, until its money is held (``hold``) or it
        is dropped (``forget``): nothing of it is in flight yet."""
        self.online_items = 0
        """Items with an online lane in flight."""
        self._priced: dict[str, list[tuple[str, int, Price, int]]] = {
            step.name: [] for step in graph.steps
        }
        """Each step's priced lanes: (key, input tokens besides the prompt, price, output
        tokens): what ``later_units`` asks of every item."""
        for step in graph.steps:
            for key in step.lanes:
                lane, price = lanes[key], prices[key]
                if price is not None:
                    besides = input_token_bound(lane.system) + lane.framing
                    self._priced[step.name].append(
                        (key, besides, price, lane.max_tokens * lane.answers)
                    )
        self._fixed_bounds: dict[str, int] = {}
        """Prompt bounds of steps whose prompt reads no field of the item (the same for all)."""

    @property
    def in_progress(self) -> int:
        """Items begun that have lanes left to send or to hear back from."""
        return len(self._items)

    def beginning(self, item_id: str) -> bool:
        """``begin`` kept ``item_id``: it has lanes to send or to hear back from."""
        return self._beginning is not None and self._beginning.item.id == item_id

    def begin(self, item: Item) -> Next:
        """The lanes ``item`` starts with: those of the steps whose inputs are in (on resume,
        from the answers the log kept) and that have not ended. An item with nothing to send
        is not kept."""
        progress = _Progress(item, self._resumed.pop(item.id, {}))
        nxt = Next(item)
        early = {result.model: result for result in self._early.pop(item.id, ())}
        for result in early.values():
            if result.status == "ok":
                progress.answers[result.model] = Answer(result.output, result.parsed)
        for step in () if self._fresh else self._graph.steps:
            if step.name in progress.started:
                continue
            for key in step.lanes:
                if (key, item.id) in self._waiting and key not in early:
                    self._run(progress, key)  # its job is still open at the provider
            if ended := self._ended_earlier(progress, step):
                for key in ended:
                    nxt.results += self._stop(progress, step, key, f"{step.name}: did not answer")
            elif all(self._skip(key, item.id, item.line) for key in step.lanes):
                progress.started.add(step.name)  # every lane answered in an earlier execution
        self._advance(progress, nxt)
        if nxt.ready or progress.running:
            self._beginning = progress
        return nxt

    def later_units(self, item_id: str) -> int:
        """The worst case of the lanes of ``item_id`` not yet sent (``prompt_bound``)."""
        progress = self._beginning if self.beginning(item_id) else self._items.get(item_id)
        if progress is None:
            return 0
        item = progress.item
        units = 0
        for step in self._graph.steps:
            if step.name in progress.started:
                continue
            bound = self._prompt_bound(step, item)
            for key, besides, price, output in self._priced[step.name]:
                if not self._skipped(key, item):
                    units += to_units_up(price.worst_case(besides + bound, output))
        return units

    def _prompt_bound(self, step: Step, item: Item) -> int:
        """``prompt_bound`` of ``step`` for ``item``, worked out once for a step whose prompt
        reads none of the item's fields."""
        bound = self._fixed_bounds.get(step.name)
        if bound is None:
            bound = prompt_bound(step, item.fields, self._graph, self._max_tokens,
                                 self._template_of)  # fmt: skip
            if reads_no_fields(step, self._graph):
                self._fixed_bounds[step.name] = bound
        return bound

    def hold(self, item_id: str, units: int) -> None:
        """``units`` are held for the later steps of ``item_id``; one that is beginning is
        in progress from now on (its lanes are sent next)."""
        progress = self._beginning
        if progress is not None and progress.item.id == item_id:
            self._beginning = None
            self._items[item_id] = progress
            self.online_items += progress.online > 0
        progress = self._items.get(item_id)
        if progress is not None:
            progress.pool += units

    def draw(self, item_id: str, units: int) -> int:
        """Take a later lane's reservation from the item's pool; returns what the pool could
        not cover, which must be reserved anew."""
        progress = self._items.get(item_id)
        if progress is None:
            return units
        taken = min(units, progress.pool)
        progress.pool -= taken
        return units - taken

    def forget(self, item_id: str) -> int:
        """Drop an item that could not begin (a cap); returns the units it held."""
        if self.beginning(item_id):
            self._beginning = None
            return 0
        progress = self._pop(item_id)
        return 0 if progress is None else progress.pool

    def finished(self, result: ItemResult) -> Next | None:
        """``result`` is in (on its way to the log): what its item does next (None: not
        one of ours)."""
        progress = self._items.get(result.id)
        if progress is None or result.model not in progress.running:
            if progress is None and (result.model, result.id) in self._waiting:
                self._early.setdefault(result.id, []).append(result)
            return None
        self._ran(progress, result.model)
        step = self._step_of(result)
        nxt = Next(progress.item)
        if result.status == "ok":
            progress.answers[result.model] = Answer(result.output, result.parsed)
            for key in self._ended_earlier(progress, step):
                nxt.results += self._stop(progress, step, key, f"{step.name}: did not answer")
        else:
            why = result.error.kind if result.error is not None else result.status
            nxt.results += self._stop(progress, step, result.model, f"{step.name}: {why}")
        # a debate's revise step goes on without a failed lane
        self._advance(progress, nxt, self._graph.readers[step.name])
        if not progress.running and not nxt.ready:
            self._pop(result.id)
            nxt.release, progress.pool = progress.pool, 0
            nxt.ended = True
        return nxt

    def unanswered(self, key: str, item_id: str) -> int | None:
        """A batch job ended without answering ``item_id`` on lane ``key`` (expired,
        cancelled): the item goes no further in this execution, and stays pending for
        resume from that step. Returns the units it held for its later steps (None: not
        one of ours)."""
        progress = self._items.get(item_id)
        if progress is None or key not in progress.running:
            return None
        self._pop(item_id)
        return progress.pool

    def _pop(self, item_id: str) -> _Progress | None:
        progress = self._items.pop(item_id, None)
        if progress is not None and progress.online:
            self.online_items -= 1
        return progress

    def _run(self, progress: _Progress, key: str) -> None:
        progress.running.add(key)
        if key not in self._batch_lanes:
            progress.online += 1
            if progress.online == 1 and progress.item.id in self._items:
                self.online_items += 1

    def _ran(self, progress: _Progress, key: str) -> None:
        progress.running.discard(key)
        if key not in self._batch_lanes:
            progress.online -= 1
            if not progress.online:
                self.online_items -= 1

    def _step_of(self, result: ItemResult) -> Step:
        step = self._lanes[result.model].step
        assert step is not None
        return step

    def _ended_earlier(self, progress: _Progress, step: Step) -> list[str]:
        """The lanes of ``step`` that ended other than ok before this execution (and are not
        run again)."""
        if self._fresh:
            return []
        item = progress.item
        return [
            key
            for key in step.lanes
            if key not in progress.answers
            and key not in progress.ended
            and key not in progress.running
            and self._skip(key, item.id, item.line)
        ]

    def _advance(self, progress: _Progress, nxt: Next, steps: Sequence[Step] | None = None) -> None:
        """Start every step (of ``steps``, else of the graph) whose inputs are all in."""
        item = progress.item
        for step in self._graph.steps if steps is None else steps:
            if step.name in progress.started or not self._inputs_in(progress, step):
                continue
            progress.started.add(step.name)
            try:
                prompts = self._prompts(progress, step)
            except ValueError as exc:
                error = ErrorInfo("invalid_input", f"{step.name}: {exc}")
                nxt.results += [
                    self._result_of(item, key, "failed", error=error)
                    for key in step.lanes
                    if key not in progress.answers and not self._skip(key, item.id, item.line)
                ]
                nxt.results += self._stop_after(progress, step, f"{step.name}: invalid_input")
                continue
            for key, prompt in prompts.items():
                if key in progress.answers or self._skipped(key, item):
                    continue
                self._run(progress, key)
                nxt.ready.append((key, prompt))

    def _skipped(self, key: str, item: Item) -> bool:
        return not self._fresh and self._skip(key, item.id, item.line)

    def _inputs_in(self, progress: _Progress, step: Step) -> bool:
        """Every lane ``step`` reads has answered (for a revise step, every lane of the step
        it revises has ended)."""
        answers, ended = progress.answers, progress.ended
        for dep in step.depends:
            for key in self._graph.by_name[dep].lanes:
                if key not in answers and not (dep == step.revises and key in ended):
                    return False
        return True

    def _prompts(self, progress: _Progress, step: Step) -> dict[str, str]:
        """What each lane of ``step`` sends for the item (``render_step``; on resume, a step
        that answered before is rendered again when a later one reads its prompt)."""
        return render_step(
            step,
            self._graph,
            self._template_of,
            progress.item.fields,
            progress.answers,
            progress.prompts,
        )

    def _template_of(self, step: Step) -> PromptTemplate:
        """What ``step`` renders when it has no prompt of its own: its lanes' (the run's)."""
        return self._lanes[step.lanes[0]].template

    def _stop(self, progress: _Progress, step: Step, key: str, why: str) -> list[ItemResult]:
        """Lane ``key`` of ``step`` ended other than ok: the item stops at ``step``. In a
        debate's first step, that model does not revise, and the others still do."""
        revision = self._graph.revision_of(step.name)
        if revision is None:
            return self._stop_after(progress, step, why)
        progress.ended.add(key)
        item = progress.item
        out: list[ItemResult] = []
        revising = lane_key(revision.name, self._lanes[key].model)
        if revision.name not in progress.started and not self._skip(revising, item.id, item.line):
            out.append(self._result_of(item, revising, "skipped", error=ErrorInfo("upstream", why)))
        return out + self._stop_after(progress, step, why, keep=revision.name)

    def _stop_after(
        self, progress: _Progress, step: Step, why: str, keep: str | None = None
    ) -> list[ItemResult]:
        """The item stops at ``step``: every later lane of it that has not ended is skipped
        (but those of step ``keep``)."""
        item = progress.item
        error = ErrorInfo("upstream", why)
        out: list[ItemResult] = []
        for later in self._graph.after(step.name):
            if later.name in progress.started or later.name == keep:
                continue
            progress.started.add(later.name)
            out += [
                self._result_of(item, key, "skipped", error=error)
                for key in later.lanes
                if not self._skip(key, item.id, item.line)
            ]
        return out
