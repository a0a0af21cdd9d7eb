"""Threshold schedules on the command line: the schedule file and ``rc-keras evaluate``'s flags.

```bash
# fit a schedule on the validation split at a budget of 15 steps, read it on the test split
rc-keras evaluate --model runs/two/model.keras --task two-sequence --fit-schedule 15 \\
    --save-schedule runs/two/schedule.json
# later: the same schedule, from its file
rc-keras evaluate --model runs/two/model.keras --task two-sequence \\
    --threshold-schedule runs/two/schedule.json
```

A schedule file is JSON: a list of per-step thresholds, or an object whose "threshold"
holds that list (what ``--save-schedule`` writes: the fitted point, with its validation
accuracy and mean spike time). An object with ``"monotone": true`` declares a
non-increasing family (the fitter's default), and a schedule in it that rises is
refused. Every value must lie in (0, 1) and above the readout's bound (1/C), and the
list may not be longer than the task's sequences (a value past the last step would never
be used); a shorter list holds its last value, as in `rc_keras.RCModel`.

This module imports no TensorFlow at import time, so ``rc-keras --help`` stays light.
"""

import json
import math
from pathlib import Path

from rc_keras import validation

SCHEDULE_FLAG = "--threshold-schedule"
FIT_FLAG = "--fit-schedule"
SAVE_FLAG = "--save-schedule"


def _budget_arg(value):
    import argparse  # noqa: PLC0415

    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a mean spike time budget > 0 (steps; frames for speech); received "
            f"{value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a mean spike time budget > 0 (steps; frames for speech); received "
            f"{number}")
    return number


def add_evaluate_arguments(parser):
    """Adds ``--threshold-schedule``, ``--fit-schedule`` and ``--save-schedule``."""
    parser.add_argument(SCHEDULE_FLAG, metavar="FILE",
                        help="evaluate with a per-step threshold schedule from a JSON file (a "
                             "list of thresholds, or what --save-schedule writes)")
    parser.add_argument(FIT_FLAG, metavar="BUDGET", type=_budget_arg,
                        help="fit a per-step threshold schedule on the validation split: the "
                             "most accurate there with a mean spike time <= BUDGET (steps; "
                             "frames for speech), then evaluate it on the test split")
    parser.add_argument(SAVE_FLAG, metavar="FILE",
                        help="write the schedule used (fitted or read) to this JSON file")
    return parser


def check_flags(threshold=None, schedule_file=None, fit_budget=None, save=None):
    """Refuses contradicting flags before any data is loaded.

    Raises:
        ValueError: for ``--threshold`` with a schedule flag, both schedule sources, or
            ``--save-schedule`` without a schedule.
    """
    if schedule_file is not None and fit_budget is not None:
        raise ValueError(f"give {SCHEDULE_FLAG} or {FIT_FLAG}, not both.")
    if threshold is not None and (schedule_file is not None or fit_budget is not None):
        flag = SCHEDULE_FLAG if schedule_file is not None else FIT_FLAG
        raise ValueError(f"give --threshold or {flag}, not both: a schedule sets the threshold "
                         "of every step.")
    if save is not None and schedule_file is None and fit_budget is None:
        raise ValueError(f"{SAVE_FLAG} needs a schedule: pass {FIT_FLAG} BUDGET (or "
                         f"{SCHEDULE_FLAG} FILE).")
    if schedule_file is not None:
        read_schedule_file(schedule_file)


def read_schedule_file(path, flag=SCHEDULE_FLAG):
    """Reads a schedule file (see the module docstring).

    Returns:
        ``(values, monotone)``: the list of numbers as written (checked against a model
        by `check_schedule`), and whether the file declares a non-increasing family.

    Raises:
        ValueError: naming ``flag``, for a missing file, bad JSON or a wrong layout.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{flag} {str(path)!r} is not a file.")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{flag} {str(path)!r} is not valid JSON: {error}.") from None
    monotone = False
    if isinstance(record, dict):
        if "threshold" not in record:
            raise ValueError(f"{flag} {str(path)!r} holds an object without \"threshold\": give "
                             "a list of per-step thresholds, or {\"threshold\": [...]}.")
        monotone = record.get("monotone", False)
        if not isinstance(monotone, bool):
            raise ValueError(f"{flag} {str(path)!r}: \"monotone\" must be true or false; "
                             f"received {monotone!r}.")
        record = record["threshold"]
    if not isinstance(record, list):
        raise ValueError(f"{flag} {str(path)!r} must hold a list of per-step thresholds (or "
                         f"{{\"threshold\": [...]}}); received {type(record).__name__}.")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record):
        raise ValueError(f"{flag} {str(path)!r} must hold numbers only; received "
                         f"{record[:8]!r}{'...' if len(record) > 8 else ''}.")
    return list(record), monotone


def check_schedule(values, model, sequence_length, monotone=False, flag=SCHEDULE_FLAG):
    """Checks a schedule against the model and the data it will read.

    Returns:
        The schedule as a tuple of floats.

    Raises:
        ValueError: naming ``flag``: NaN or values outside (0, 1) or at or below the
            readout's bound, an empty list, more values than ``sequence_length``, or a
            rise in a ``monotone`` schedule.
    """
    return validation.check_threshold_values(
        values, model.readout, model.num_outputs, name=flag, max_length=sequence_length,
        non_increasing=monotone, family="monotone")


def fit_on_validation(model, x_val, y_val, budget, lengths=None, batch_size=256):
    """A schedule fitted on validation data (`rc_keras.tradeoff.fit_threshold_schedule`).

    Args:
        model: an `rc_keras.RCModel`.
        x_val, y_val: validation inputs and labels.
        budget: largest mean spike time (steps read) allowed on the validation data.
        lengths: optional valid lengths (keyword clips); otherwise the model's padding
            mask, if it has one.
        batch_size: sequences per forward pass.

    Returns:
        The fitted point: "threshold" (list), "theta_0", "theta_end", "tau",
        "accuracy" and "mean_spike_time" on validation, "constant" (the best constant
        threshold within the budget there).

    Raises:
        ValueError: naming ``--fit-schedule`` when no candidate meets the budget.
    """
    from rc_keras import tradeoff  # noqa: PLC0415 - keeps `rc-keras --help` light

    probs = tradeoff.step_probabilities(model, x_val, batch_size=batch_size)
    mask = None if lengths is not None else tradeoff.padding_mask(model, x_val)
    try:
        return tradeoff.fit_threshold_schedule(probs, y_val, lengths=lengths, mask=mask,
                                               budget=budget, readout=model.readout)
    except ValueError as error:
        raise ValueError(str(error).replace("`budget`", FIT_FLAG)) from None


def schedule_record(point, source, monotone=True):
    """The JSON object `write_schedule_file` writes and `read_schedule_file` reads."""
    record = {"threshold": [validation.float32_value(v) for v in point["threshold"]],
              "monotone": bool(monotone), "source": source}
    for key in ("theta_0", "theta_end", "tau"):
        if key in point:
            record[key] = point[key]
    if "accuracy" in point:
        record["validation"] = {"accuracy": point["accuracy"],
                                "mean_spike_time": point["mean_spike_time"]}
    return record


def write_schedule_file(path, record):
    """Writes a schedule record as JSON; returns the path as a string."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return str(path)


def resolve(model, sequence_length, schedule_file=None, fit_budget=None, load_validation=None,
            save=None, batch_size=256):
    """The schedule ``rc-keras evaluate`` reads with, from a file or fitted on validation.

    Args:
        model: the loaded `rc_keras.RCModel`.
        sequence_length: steps (frames) of the test sequences.
        schedule_file: path of a schedule file, or None.
        fit_budget: mean spike time budget to fit at, or None.
        load_validation: callable returning ``(x_val, lengths_or_None, y_val)``; called
            only when fitting.
        save: optional path to write the schedule to.
        batch_size: sequences per forward pass.

    Returns:
        ``(threshold, info)``: the schedule (tuple of floats) and a JSON-ready dict
        describing it; ``(None, None)`` when neither source is given.
    """
    if schedule_file is None and fit_budget is None:
        return None, None
    if schedule_file is not None:
        values, monotone = read_schedule_file(schedule_file)
        schedule = check_schedule(values, model, sequence_length, monotone)
        info = {"source": str(schedule_file), "monotone": monotone}
        record = {"threshold": list(schedule), "monotone": monotone, "source": str(schedule_file)}
    else:
        x_val, lengths, y_val = load_validation()
        point = fit_on_validation(model, x_val, y_val, fit_budget, lengths, batch_size)
        schedule = check_schedule(point["threshold"], model, sequence_length, monotone=True,
                                  flag=FIT_FLAG)
        record = schedule_record(point, f"fitted on {len(y_val)} validation sequences at a "
                                        f"budget of {fit_budget:g}")
        info = {key: record[key] for key in record if key != "threshold"}
        constant = point.get("constant")
        info["budget"] = fit_budget
        info["constant_on_validation"] = (
            None if constant is None else
            {"threshold": constant["threshold"][0], "accuracy": constant["accuracy"],
             "mean_spike_time": constant["mean_spike_time"]})
    if save is not None:
        info["saved"] = write_schedule_file(save, record)
    return schedule, info
