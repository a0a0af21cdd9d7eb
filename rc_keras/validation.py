"""Input checks shared by every public entry point.

All argument checking lives here so that error messages are uniform: each names the
argument, what was expected and what was received, and raises ``ValueError``.
"""

import math

import numpy as np

READOUTS = ("softmax", "sigmoid")
MODES = ("rc", "eos")


# The extreme thresholds a float32 variable can hold strictly inside (0, 1).
FLOAT32_THRESHOLD_RANGE = (float(np.nextafter(np.float32(0), np.float32(1))),
                           float(np.nextafter(np.float32(1), np.float32(0))))


def check_threshold(threshold, name="threshold"):
    """Returns ``threshold`` as a float after checking it lies in (0, 1).

    Thresholds are stored and compared in float32, so the check is made on the
    float32 value as well: 1 - 1e-9 lies below 1 but is 1.0 in float32 and is refused.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number in (0, 1); received {threshold!r}.") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must lie strictly between 0 and 1; received {value}.")
    stored = np.float32(value)
    if not 0.0 < stored < 1.0:
        low, high = FLOAT32_THRESHOLD_RANGE
        raise ValueError(f"`{name}` is stored in float32, where {value!r} becomes {float(stored)}; "
                         f"use a value in [{float32_value(low)}, {float32_value(high)}].")
    return value


def check_threshold_for(threshold, readout, num_outputs=None, name="threshold"):
    """`check_threshold`, and refuses a theta at which every sequence answers at step 0.

    With a sigmoid readout the spike test ``p >= theta or p <= 1 - theta`` holds for
    every p once theta <= 0.5; with a softmax over C outputs the largest probability is
    never below 1/C, so theta <= 1/C spikes everywhere at once.

    Args:
        threshold: theta.
        readout: "softmax" or "sigmoid".
        num_outputs: the readout's width; None when not known yet (softmax unchecked).
        name: argument name used in the messages.

    Returns:
        The threshold as a float.
    """
    value = check_threshold(threshold, name)
    bound = lowest_useful_threshold(readout, num_outputs)
    # Compared in float32, as the spike test: float32(1/3) lies above 1/3.
    if bound is not None and np.float32(value) <= np.float32(bound):
        why = ("readout='sigmoid' spikes when p >= theta or p <= 1 - theta, true of every p"
               if readout == "sigmoid" else
               f"the largest of {num_outputs} softmax probabilities is never below 1/{num_outputs}")
        raise ValueError(f"`{name}` must be above {bound:g} for this model; received {value}: "
                         f"{why}, so every sequence would answer at its first step.")
    return value


def check_threshold_values(threshold, readout="softmax", num_outputs=None, name="threshold", *,
                           max_length=None, non_increasing=False, family=None):
    """Checks a threshold that may be a scalar or a per-step schedule.

    A schedule is a 1-D sequence of thresholds: step t of a sequence uses
    ``schedule[min(t, len(schedule) - 1)]`` (the last value holds for longer inputs). Every
    value obeys the rules of `check_threshold_for`.

    Args:
        threshold: a number, or a non-empty 1-D array-like of numbers.
        readout: "softmax" or "sigmoid".
        num_outputs: the readout's width; None when not known yet.
        name: argument name used in the messages.
        max_length: where the sequence length is known, the most values a schedule may
            hold (a value past the last step would never be used: a schedule made for
            other data).
        non_increasing: refuse a schedule that rises anywhere (the monotone families:
            high early, when evidence is thin, lower late).
        family: name of the family that requires ``non_increasing``, for the message.

    Returns:
        A float for a scalar, a tuple of floats for a schedule.
    """
    if threshold is None or isinstance(threshold, (str, bytes)):
        raise ValueError(f"`{name}` must be a number in (0, 1) or a 1-D schedule of such numbers; "
                         f"received {threshold!r}.")
    try:
        values = np.asarray(threshold, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number in (0, 1) or a 1-D schedule of such numbers; "
                         f"received {threshold!r}.") from None
    if values.ndim == 0:
        return check_threshold_for(float(values), readout, num_outputs, name)
    if values.ndim != 1:
        raise ValueError(f"`{name}` must be a scalar or a 1-D per-step schedule; received an "
                         f"array of shape {values.shape}.")
    if values.size == 0:
        raise ValueError(f"`{name}` schedule is empty: give at least one per-step threshold.")
    checked = []
    for step, value in enumerate(values):
        try:
            checked.append(check_threshold_for(value, readout, num_outputs, name))
        except ValueError as error:
            raise ValueError(f"{str(error).rstrip('.')} (schedule value at step {step}).") \
                from None
    if max_length is not None and len(checked) > int(max_length):
        raise ValueError(f"`{name}` schedule holds {len(checked)} values, but the sequences have "
                         f"{int(max_length)} steps: give at most one threshold per step (the "
                         "last value holds for the remaining steps).")
    if non_increasing:
        for step in range(1, len(checked)):
            if np.float32(checked[step]) > np.float32(checked[step - 1]):
                family = f"the {family} family" if family else "a monotone schedule"
                raise ValueError(
                    f"`{name}` must not increase over time for {family}; the value at step "
                    f"{step} ({checked[step]:g}) is above the value at step {step - 1} "
                    f"({checked[step - 1]:g}).")
    return tuple(checked)


def schedule_at_steps(threshold, time):
    """The (time,) float32 thresholds a scalar or schedule applies at steps 0..time-1."""
    values = np.atleast_1d(np.asarray(threshold, dtype=np.float32))
    return values[np.minimum(np.arange(time), len(values) - 1)]


def lowest_useful_threshold(readout, num_outputs=None):
    """The bound theta must exceed: 0.5 for a sigmoid readout, 1/C for a softmax over C
    outputs (None when C is not known yet)."""
    if readout == "sigmoid":
        return 0.5
    if num_outputs:
        return 1.0 / int(num_outputs)
    return None


def float32_value(value):
    """The shortest decimal that reads back as the same float32 as ``value``.

    ``float32_value(0.9) == 0.9`` while ``np.float32(0.9)`` widens to 0.8999999761581421;
    either way ``np.float32(float32_value(v)) == np.float32(v)`` exactly.
    """
    return float(str(np.float32(value)))


def check_non_negative(value, name):
    """Returns ``value`` as a float after checking it is finite and >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a non-negative number; received {value!r}.") from None
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {number}.")
    return number


def check_beta(beta):
    """Returns ``beta`` as a float after checking it is finite and >= 0."""
    return check_non_negative(beta, "beta")


def check_choice(value, choices, name):
    """Checks that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}; received {value!r}.")
    return value


def check_sequences(x, feature_shape=None, name="x"):
    """Checks an array-like batch of sequences of shape (batch, time, *features).

    Args:
        x: Array-like input. Symbolic or graph tensors are not checked for values.
        feature_shape: Expected per-step feature shape (tuple) or ``None`` when the
            model is not built yet.
        name: Argument name used in the messages.

    Raises:
        ValueError: on wrong rank, wrong feature shape, or NaN/Inf values.
    """
    shape = tuple(getattr(x, "shape", np.shape(x)))
    expected_rank = 3 if feature_shape is None else 2 + len(feature_shape)
    if feature_shape is None and len(shape) < 3:
        raise ValueError(
            f"`{name}` must have shape (batch, time, *features) with rank >= 3; "
            f"received shape {shape}.")
    if feature_shape is not None:
        if len(shape) != expected_rank:
            raise ValueError(
                f"`{name}` must have rank {expected_rank} (batch, time, *{tuple(feature_shape)}); "
                f"received shape {shape}.")
        received = tuple(shape[2:])
        if any(r is not None and e is not None and r != e
               for r, e in zip(received, feature_shape)):
            raise ValueError(
                f"`{name}` has feature shape {received} but the model was built for "
                f"{tuple(feature_shape)}.")
    if shape[1] == 0:
        raise ValueError(f"`{name}` must hold at least one time step; received shape {shape}.")
    check_finite(x, name)


def check_finite(x, name):
    """Raises ``ValueError`` when a concrete floating array holds NaN or Inf."""
    try:
        values = _widened(np.asarray(x))
    except Exception:  # symbolic tensors: checked in the graph instead
        return
    if values.dtype.kind not in "biuf":  # strings, objects: TensorFlow would fail deep inside
        raise ValueError(f"`{name}` must hold numbers; received dtype {values.dtype}.")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"`{name}` contains {bad} NaN or Inf value(s); inputs must be finite.")


def _widened(values):
    """bfloat16 and the other ml_dtypes floats (numpy kind "V") as float32, for checks."""
    if values.dtype.kind == "V":
        try:
            import ml_dtypes  # noqa: PLC0415 - TensorFlow's dependency; only for such arrays
            ml_dtypes.finfo(values.dtype)
        except (ImportError, ValueError, TypeError):
            return values
        return values.astype(np.float32)
    return values


def check_labels(y, num_classes, name="y", readout="softmax"):
    """Checks integer or one-hot labels against the number of classes.

    Args:
        y: Array-like labels: integers of shape (batch,) / (batch, 1), or one-hot
            of shape (batch, num_classes) for a softmax readout. A sigmoid readout
            takes one target per sequence in [0, 1] (0/1, or soft targets).
        num_classes: Number of classes; 2 for a single sigmoid output.
        name: Argument name used in the messages.
        readout: "softmax" or "sigmoid".
    """
    try:
        labels = _widened(np.asarray(y))
    except Exception:
        return
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must be numeric labels; received dtype {labels.dtype}.")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        raise ValueError(f"`{name}` contains NaN or Inf values.")
    if readout == "sigmoid":
        if labels.ndim > 2 or labels.ndim == 2 and labels.shape[1] != 1:
            raise ValueError(sigmoid_labels_message(name) + f"; received shape {labels.shape}.")
        if labels.size and (labels.min() < 0 or labels.max() > 1):
            raise ValueError(f"`{name}` holds targets in [{labels.min()}, {labels.max()}]; a "
                             "sigmoid readout takes targets in [0, 1].")
        return
    one_hot = labels.ndim >= 2 and labels.shape[-1] == num_classes and num_classes > 1
    if one_hot:
        if np.any(labels < 0) or np.any(labels > 1):
            raise ValueError(f"one-hot `{name}` must hold values in [0, 1].")
        return
    if labels.size and (labels.min() < 0 or labels.max() > num_classes - 1):
        raise ValueError(
            f"`{name}` holds labels in [{labels.min()}, {labels.max()}] but the model has "
            f"{num_classes} classes: labels must lie in [0, {num_classes - 1}].")
    if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
        raise ValueError(f"`{name}` holds non-integer class labels (e.g. "
                         f"{labels[labels != np.round(labels)].flat[0]}); class labels are "
                         "integers (or one-hot rows).")


def sigmoid_labels_message(name="y"):
    """The error text for labels a sigmoid readout cannot take."""
    return (f"`{name}` must hold one target per sequence, shape (batch,) or (batch, 1), for a "
            "sigmoid readout (one output); one-hot labels need a softmax head with one output "
            "per class")


def check_positive_int(value, name):
    """Returns ``value`` as an int after checking it is an integer >= 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.") from None
    if isinstance(value, bool) or number != value or number < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
    return number


def check_sample_weight(sample_weight, num_examples, name="sample_weight"):
    """Checks per-example weights: one finite value >= 0 per example.

    Args:
        sample_weight: array-like of shape (num_examples,) or (num_examples, 1).
        num_examples: number of examples in ``x``.
        name: argument name used in the messages.
    """
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be numeric; received {type(sample_weight).__name__}.") \
            from None
    if weights.ndim not in (1, 2) or weights.shape[0] != num_examples or \
            (weights.ndim == 2 and weights.shape[1] != 1):
        raise ValueError(f"`{name}` must have shape ({num_examples},): one weight per sequence; "
                         f"received shape {weights.shape}.")
    if not np.all(np.isfinite(weights)):
        bad = int(weights.size - np.count_nonzero(np.isfinite(weights)))
        raise ValueError(f"`{name}` contains {bad} NaN or Inf value(s); weights must be finite.")
    if np.any(weights < 0):
        raise ValueError(f"`{name}` must be >= 0; received a minimum of {weights.min():g}.")


def lengths_message(batch, time, name="lengths"):
    """The one error text for bad ``lengths`` (host loops, models and sweeps share it)."""
    return (f"`{name}` must hold one integer in [1, {time}] per sequence ({batch} sequences): "
            "every sequence needs at least one valid step and no more steps than `x` holds")


def mask_message(batch, time, name="mask"):
    """The one error text for a bad step ``mask``."""
    return (f"`{name}` must be a (batch, time) = ({batch}, {time}) array of 0/1 or bool "
            "marking at least one valid step in every sequence")


def check_lengths(lengths, batch, time, name="lengths"):
    """Checks explicit valid lengths against a (batch, time, ...) input.

    Args:
        lengths: array-like of shape (batch,) or (batch, 1): integers in [1, time].
        batch, time: the input's batch size and number of steps.
        name: argument name used in the messages.

    Returns:
        The lengths as an int64 array of shape (batch,).
    """
    values = np.asarray(lengths)
    if values.dtype.kind not in "iu":
        raise ValueError(f"{lengths_message(batch, time, name)}; received dtype {values.dtype}.")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (batch,):
        raise ValueError(f"{lengths_message(batch, time, name)}; received shape {values.shape}.")
    if values.size and (values.min() < 1 or values.max() > time):
        bad = np.flatnonzero((values < 1) | (values > time))
        raise ValueError(f"{lengths_message(batch, time, name)}; received {values[bad[0]]!r} for "
                         f"sequence {bad[0]}.")
    return values.astype(np.int64)


def check_step_mask(mask, batch, time, name="mask"):
    """Checks a (batch, time) mask of valid steps against a (batch, time, ...) input.

    Steps marked invalid may sit anywhere (as with a Keras mask); the network skips them.

    Returns:
        The mask as a bool array of shape (batch, time).
    """
    values = np.asarray(mask)
    if values.shape != (batch, time):
        raise ValueError(f"{mask_message(batch, time, name)}; received shape {values.shape}.")
    if values.dtype.kind not in "biuf" or not np.all((values == 0) | (values == 1)):
        raise ValueError(f"{mask_message(batch, time, name)}; received values other than 0 and 1.")
    values = values.astype(bool)
    empty = np.flatnonzero(~values.any(axis=1))
    if empty.size:
        raise ValueError(f"{mask_message(batch, time, name)}; sequence {empty[0]} has no valid "
                         "step.")
    return values


def check_range(value, name, minimum=None, positive=False, integer=False, strict=False):
    """Checks a range ``(low, high)`` (a search range, a quantization range); returns it
    as a tuple of numbers.

    ``low == high`` is allowed (a search range that fixes a hyperparameter) unless
    ``strict`` (a quantization range: low < high).

    Raises:
        ValueError: for an empty range (not two numbers), an inverted range
            (low > high), values below ``minimum``, or non-positive values with
            ``positive``.
    """
    try:
        values = tuple(value)
    except TypeError:
        raise ValueError(f"`{name}` must be a range (low, high); received {value!r}.") from None
    if len(values) != 2:
        raise ValueError(f"`{name}` must be a range of two values (low, high); received "
                         f"{value!r}, which is {'empty' if not values else 'not a pair'}.")
    try:
        low, high = (int(v) if integer else float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must hold numbers; received {value!r}.") from None
    if integer and any(float(v) != int(v) for v in values):
        raise ValueError(f"`{name}` must hold integers; received {value!r}.")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"`{name}` must hold finite numbers; received {value!r}.")
    if strict and not low < high:
        raise ValueError(f"`{name}` must be (low, high) with low < high; received "
                         f"{value!r}.")
    if low > high:
        raise ValueError(f"`{name}` is inverted: low {low:g} > high {high:g}; give (low, high) "
                         "with low <= high.")
    if minimum is not None and low < minimum:
        raise ValueError(f"`{name}` must lie at or above {minimum:g}; received {value!r}.")
    if positive and low <= 0:
        raise ValueError(f"`{name}` must hold values > 0; received {value!r}.")
    return low, high
