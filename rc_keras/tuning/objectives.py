"""Objectives of a beta/theta search: how one threshold sweep becomes one number.

A trial trains once (for its beta) and sweeps theta on validation data, giving a whole
accuracy vs. mean spike time curve. An objective scores that curve by its best point:

- ``"budget"``: the best accuracy among points whose mean spike time is within
  ``max_spike_time`` (steps, or ms with a step duration). A curve with no point within
  the budget scores ``-(fastest mean spike time - budget) / sequence_length``, a value
  in (-1, 0): below any curve that meets the budget, yet still ordered by how close it
  came, so Bayesian optimization keeps a useful signal.
- ``"weighted"``: ``accuracy - weight * mean_spike_time / sequence_length``; with a
  budget too, only points within it count (a curve with none scores below ``-weight``).

Both are KerasTuner objectives to maximise (`TuningObjective.keras_objective`), reported
under their own metric names, so RandomSearch, BayesianOptimization and Hyperband rank
trials by them like any Keras metric.
"""

import dataclasses
import math
import re
from typing import Optional

import numpy as np

from rc_keras import validation

# The theta grid each trial sweeps (here, without TensorFlow: `rc-keras tune --help` shows it).
DEFAULT_THRESHOLDS = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99,
                      0.995, 0.999)
OBJECTIVES = ("budget", "weighted")
METRIC_NAMES = {"budget": "budget_accuracy", "weighted": "weighted_score"}

_BUDGET_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(steps?|ms)?\s*$")


def parse_spike_time(value, step_ms=None, name="max_spike_time"):
    """A mean spike time budget in steps, from a number or a string with a unit.

    Args:
        value: a number of steps, or a string such as ``"12"``, ``"12 steps"`` or
            ``"150ms"``.
        step_ms: duration of one step in milliseconds; needed for a budget in ms.
        name: argument name for error messages.

    Returns:
        The budget in steps, a float > 0.

    Raises:
        ValueError: for a malformed or non-positive value, or ms without ``step_ms``.
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number, unit = float(value), "steps"
    else:
        match = _BUDGET_PATTERN.match(str(value))
        if not match:
            raise ValueError(f"`{name}` must be a number of steps or a time such as '150ms'; "
                             f"received {value!r}.")
        number, unit = float(match.group(1)), (match.group(2) or "steps")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"`{name}` must be > 0; received {value!r}.")
    if unit == "ms":
        if step_ms is None:
            raise ValueError(f"`{name}` is given in ms ({value!r}); pass `step_ms`, the "
                             "duration of one step in ms, to convert it to steps.")
        step_ms = float(step_ms)
        if not math.isfinite(step_ms) or step_ms <= 0:
            raise ValueError(f"`step_ms` must be > 0; received {step_ms}.")
        return number / step_ms
    return number


@dataclasses.dataclass(frozen=True, kw_only=True)
class TuningObjective:
    """How a trial's threshold sweep is scored.

    Build it with `make_objective`, which checks the arguments.
    """

    kind: str
    """"budget" or "weighted"."""
    sequence_length: int
    """Steps per sequence: normalises spike times to a fraction."""
    max_spike_time: Optional[float] = None
    """Budget on the mean spike time, in steps read (required for "budget"; optional for
    "weighted", where it excludes slower points)."""
    weight: float = 0.0
    """lambda of the weighted score: accuracy - lambda * mean spike fraction."""

    @property
    def metric_name(self):
        """The name under which trials report this objective's value."""
        return METRIC_NAMES[self.kind]

    def keras_objective(self):
        """The `keras_tuner.Objective` to maximise."""
        import keras_tuner  # noqa: PLC0415 - keeps this module importable without it

        return keras_tuner.Objective(self.metric_name, direction="max")

    def weighted(self, point):
        """accuracy - weight * mean spike time / sequence length of one point."""
        return point["accuracy"] - self.weight * point["mean_spike_time"] / self.sequence_length

    def meets_budget(self, point):
        """Whether a point's mean spike time is within the budget (always, without one)."""
        return self.max_spike_time is None or point["mean_spike_time"] <= self.max_spike_time

    def best_point(self, points):
        """The best point of a curve, or None when no point meets the budget.

        Ties go to the faster point, then to the higher threshold.
        """
        candidates = [p for p in points if self.meets_budget(p)]
        if not candidates:
            return None
        key = self.weighted if self.kind == "weighted" else (lambda p: p["accuracy"])
        # A schedule point (a list of thresholds) ties on its highest threshold, at step 0;
        # among equal ones a constant wins (the simpler rule).
        return max(candidates, key=lambda p: (key(p), -p["mean_spike_time"],
                                              float(np.max(p["threshold"])),
                                              np.ndim(p["threshold"]) == 0))

    def score(self, points):
        """The objective value of a curve (see the module docstring)."""
        if not points:
            raise ValueError("`points` is empty: a sweep needs at least one threshold.")
        best = self.best_point(points)
        if best is not None:
            return float(self.weighted(best) if self.kind == "weighted" else best["accuracy"])
        # Below every value a point within the budget can have (accuracy >= 0, spike
        # fraction <= 1), and higher the closer the curve came to the budget.
        floor = -self.weight if self.kind == "weighted" else 0.0
        fastest = min(p["mean_spike_time"] for p in points)
        return float(floor - (fastest - self.max_spike_time) / self.sequence_length)

    def metrics(self, points):
        """Trial metrics of a curve: the objective value and its best point."""
        best = self.best_point(points)
        metrics = {self.metric_name: self.score(points),
                   "met_budget": float(best is not None)}
        if best is not None:
            metrics.update(best_accuracy=best["accuracy"],
                           best_mean_spike_time=best["mean_spike_time"])
            if np.ndim(best["threshold"]) == 0:
                metrics.update(best_threshold=best["threshold"])
            else:  # trial metrics are numbers: the schedule itself is in the trial's curve
                metrics.update(best_is_schedule=1.0, best_theta_0=float(best["threshold"][0]),
                               best_theta_end=float(best["threshold"][-1]))
        return metrics

    def describe(self):
        """One line for reports."""
        if self.kind == "weighted":
            within = ("" if self.max_spike_time is None
                      else f", mean spike time <= {self.max_spike_time:g} steps")
            return (f"weighted score: accuracy - {self.weight:g} x mean spike time / "
                    f"{self.sequence_length} steps{within}")
        return f"best accuracy with mean spike time <= {self.max_spike_time:g} steps"

    def to_dict(self):
        """A JSON-ready dict (also used to detect a resumed search with other settings)."""
        return dataclasses.asdict(self)


def make_objective(objective="weighted", sequence_length=None, max_spike_time=None, weight=0.5,
                   step_ms=None):
    """Checks the arguments and builds a `TuningObjective`.

    Args:
        objective: "budget" (best accuracy with mean spike time <= ``max_spike_time``)
            or "weighted" (accuracy - ``weight`` * mean spike fraction).
        sequence_length: steps per sequence (> 0).
        max_spike_time: budget, steps or a string with unit ("12", "150ms"); required
            for "budget".
        weight: lambda >= 0 of the weighted score.
        step_ms: duration of one step in ms, to read a budget given in ms.

    Returns:
        A `TuningObjective`.

    Raises:
        ValueError: for an unknown objective, a missing or impossible budget (the
            earliest possible answer is after one step), or a negative weight.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {list(OBJECTIVES)}; received {objective!r}.")
    if sequence_length is None or int(sequence_length) < 1:
        raise ValueError(f"`sequence_length` must be a positive integer; received "
                         f"{sequence_length!r}.")
    budget = None
    if max_spike_time is not None:
        budget = parse_spike_time(max_spike_time, step_ms)
        if budget < 1.0:
            raise ValueError(
                f"`max_spike_time` of {max_spike_time!r} is {budget:g} steps, but the earliest "
                "possible answer is after 1 step: no trial can meet this budget.")
    elif objective == "budget":
        raise ValueError("`max_spike_time` is required for objective='budget'; received None.")
    weight = validation.check_non_negative(weight, "weight")
    return TuningObjective(kind=objective, sequence_length=int(sequence_length),
                           max_spike_time=budget, weight=weight)
