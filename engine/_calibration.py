"""What a run's calls actually used, to calibrate the estimate of a larger one.

The estimate counts input tokens by bytes (a family's bytes a token) and has to guess
output (a quarter of ``max_tokens``, unless told): the guess is where it is most off.
A try (or any run) knows better: its results carry the tokens each call used. Per
lane (a model, or a model of one step), a calibration keeps the calls that used
known tokens (answered, not from the response cache, whose results carry no usage),
their input and output tokens, and what the estimate counts for the same run's
prompts, so the estimate of another input can take

- output: the sampled calls' mean output a call, times its calls;
- input: its own count times the sample's ratio of used to counted (a family's
  bytes a token is a rule of thumb; this is the provider's own count).

A lane the sample did not measure keeps the estimate's own figures, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine import log
from engine._errors import BatchdeckError, ConfigError
from engine._estimate import estimate
from engine._run import Run


@dataclass(frozen=True, slots=True)
class LaneUsage:
    """What one lane's sampled calls used, and what the estimate counted for them."""

    calls: int
    input_tokens: int
    output_tokens: int
    counted_input_per_call: float
    """The estimate's input tokens a call over the sample's own input."""

    @property
    def input_ratio(self) -> float:
        """Used over counted input, per call (1 when nothing was counted)."""
        if not self.calls or self.counted_input_per_call <= 0:
            return 1.0
        return self.input_tokens / self.calls / self.counted_input_per_call

    @property
    def output_per_call(self) -> float:
        return self.output_tokens / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """The tokens a run's calls used, per lane key, to estimate a larger run by."""

    source: str
    """The run it comes from (its dir)."""
    items: int
    """Items of that run with at least one measured call."""
    lanes: Mapping[str, LaneUsage]

    def over(self, earlier: Calibration | None) -> Calibration:
        """This calibration, with ``earlier``'s lanes where this one measured none (a try
        whose answers all came from the cache measured nothing new)."""
        if earlier is None:
            return self
        lanes = {**earlier.lanes, **{k: v for k, v in self.lanes.items() if v.calls}}
        return Calibration(self.source, max(self.items, earlier.items), lanes)


def calibration_of(run: Run) -> Calibration:
    """The calibration ``run``'s log gives (the latest result of each pair). Estimates the
    run's own input once (the response cache left out), so a big run takes a while."""
    calls: dict[str, list[int]] = {}
    measured: set[str] = set()
    for result in log.iter_results(run.log_path):
        usage = result.usage
        if result.status not in ("ok", "truncated") or result.cached or usage.unknown:
            continue
        if usage.input_tokens <= 0:
            continue
        tally = calls.setdefault(result.model, [0, 0, 0])
        tally[0] += 1
        tally[1] += usage.input_tokens
        tally[2] += usage.output_tokens
        measured.add(result.id)
    try:
        counted = estimate(run.config.model_copy(update={"cache": False}))
    except BatchdeckError as exc:  # its input gone (an old try's, pruned), say
        raise ConfigError(f"cannot calibrate from run {run.run_dir}: {exc}") from None
    per_call = {
        m.model: m.input_tokens / counted.items if counted.items else 0.0 for m in counted.models
    }
    lanes = {
        key: LaneUsage(n, used_in, used_out, per_call.get(key, 0.0))
        for key, (n, used_in, used_out) in calls.items()
    }
    return Calibration(str(run.run_dir), len(measured), lanes)
