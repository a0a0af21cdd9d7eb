"""Speed-accuracy trade-off of rank coding: threshold sweeps, composite frontiers, plots.

A trained RC network can answer earlier or later by moving its threshold theta. One
pass of `RCModel.step_probabilities` (the readout at every step, no halting) gives the
answer of every example at every threshold, so a whole sweep costs one forward pass:

```python
step_probs = tradeoff.all_step_probabilities(model, x)
points = tradeoff.sweep_from_probabilities(step_probs, y, [0.6, 0.8, 0.9, 0.95])
# or, in one call:
points = tradeoff.threshold_sweep(model, x, y, [0.6, 0.8, 0.9, 0.95])
print(tradeoff.format_table(points))
frontier = tradeoff.composite_frontier({"beta=0.0": points_0, "beta=0.1": points_1})
tradeoff.plot_tradeoff({"beta=0.0": points_0, "beta=0.1": points_1}, "tradeoff.png",
                       frontier=frontier)
```

Each point is a dict ``{"threshold", "accuracy", "mean_spike_time", "no_spike_rate"}``;
``mean_spike_time`` counts steps read (0-based spike step + 1), as
`rc_keras.metrics.MeanSpikeTime` does.
"""

from typing import NamedTuple

import numpy as np

from rc_keras import validation

__all__ = ["Crossing", "first_crossing", "all_step_probabilities", "sweep_from_probabilities",
           "threshold_sweep", "composite_frontier", "plot_tradeoff", "format_table"]


class Crossing(NamedTuple):
    """Answers read off per-step probabilities at one threshold.

    Attributes:
        spike_time: (batch,) int32, 0-based step at which each example answers.
        spiked: (batch,) bool, True where the readout crossed the threshold; False
            where the example answered at its last valid step without crossing.
        probs: (batch, outputs) readout at the answer step.
    """

    spike_time: np.ndarray
    spiked: np.ndarray
    probs: np.ndarray


def _valid_steps(batch, time, lengths=None, mask=None):
    """(batch, time) bool mask of valid steps from lengths or an explicit mask."""
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (batch, time):
            raise ValueError(f"`mask` must have shape {(batch, time)}; received {mask.shape}.")
        return mask
    if lengths is None:
        return np.ones((batch, time), dtype=bool)
    lengths = np.asarray(lengths).reshape(-1)
    if lengths.shape[0] != batch:
        raise ValueError(f"`lengths` must have {batch} entries (one per sequence); "
                         f"received {lengths.shape[0]}.")
    if np.any(lengths < 0):
        raise ValueError("`lengths` must be >= 0.")
    return np.arange(time)[None, :] < lengths[:, None]


def _crossed(step_probs, threshold, readout):
    """(batch, time) bool: the spike test at every step, in the probabilities' precision.

    The model compares in its compute dtype (float32), so the threshold is cast to the
    same dtype here; otherwise a probability equal to float32(theta) could spike in the
    model and not here.
    """
    dtype = step_probs.dtype if step_probs.dtype.kind == "f" else np.float64
    theta = np.asarray(threshold, dtype=dtype)
    if readout == "softmax":
        return step_probs.max(axis=-1) >= theta
    p = step_probs[..., 0]
    return (p >= theta) | (p <= np.asarray(1, dtype=dtype) - theta)


def first_crossing(step_probs, threshold, readout="softmax", lengths=None, mask=None):
    """Each example's answer under rank coding, from its readout at every step.

    The rules are the model's (`rc_keras.rank_coding.rank_code`): an example answers at
    the first valid step where its readout crosses ``threshold`` (softmax: the largest
    probability >= theta; sigmoid: p >= theta or p <= 1 - theta); an example that never
    crosses answers at its last valid step, with ``spiked`` False. A spike never lands
    on padding; an example with no valid step answers at step 0, unspiked.

    Args:
        step_probs: (batch, time, outputs) probabilities, e.g. from
            `RCModel.step_probabilities`.
        threshold: theta in (0, 1).
        readout: "softmax" or "sigmoid" (one output).
        lengths: optional (batch,) valid lengths; steps at and after a length are padding.
        mask: optional (batch, time) bool mask of valid steps, instead of ``lengths``.

    Returns:
        A `Crossing` ``(spike_time, spiked, probs)``.

    Raises:
        ValueError: on a threshold outside (0, 1), an unknown readout, or shapes that
            do not fit.
    """
    threshold = validation.check_threshold(threshold)
    validation.check_choice(readout, validation.READOUTS, "readout")
    step_probs = np.asarray(step_probs)
    if step_probs.ndim != 3:
        raise ValueError("`step_probs` must have shape (batch, time, outputs); received shape "
                         f"{step_probs.shape}.")
    batch, time, outputs = step_probs.shape
    if readout == "sigmoid" and outputs != 1:
        raise ValueError(f"readout='sigmoid' needs one output; `step_probs` has {outputs}.")
    if time == 0:
        raise ValueError("`step_probs` has no time steps.")
    valid = _valid_steps(batch, time, lengths, mask)
    crossed = _crossed(step_probs, threshold, readout) & valid
    spiked = crossed.any(axis=1)
    first = np.argmax(crossed, axis=1)
    # Last valid step, 0 for a row without valid steps (as `rank_coding.last_valid_step`).
    last = np.where(valid, np.arange(time)[None, :], 0).max(axis=1)
    spike_time = np.where(spiked, first, last).astype(np.int32)
    probs = step_probs[np.arange(batch), spike_time]
    return Crossing(spike_time, spiked, probs)


def _labels_from_probs(probs):
    """Predicted labels, as `rc_keras.metrics.predicted_labels`."""
    if probs.shape[-1] == 1:
        return (probs[:, 0] >= 0.5).astype(np.int32)
    return np.argmax(probs, axis=-1).astype(np.int32)


def _true_labels(y, outputs):
    y = np.asarray(y)
    if outputs > 1 and y.ndim == 2 and y.shape[-1] == outputs:
        return np.argmax(y, axis=-1)
    return y.reshape(-1).astype(np.int64)


def all_step_probabilities(model, x, batch_size=256):
    """Runs `RCModel.step_probabilities` over ``x`` in batches, in one traced graph.

    Args:
        model: an `rc_keras.RCModel`.
        x: (n, time, *features) array.
        batch_size: sequences per forward pass.

    Returns:
        (n, time, outputs) numpy array.
    """
    import tensorflow as tf  # noqa: PLC0415 - the numpy helpers above do not need TF

    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size}.")
    x = np.asarray(x)
    validation.check_sequences(x, model.feature_shape if model.built else None, name="x")
    if not x.dtype.kind == "f":
        x = x.astype(np.float32)
    if not model.built:
        model.build(x.shape)
    signature = [tf.TensorSpec((None, None) + tuple(x.shape[2:]), x.dtype)]
    # A traced graph: the eager while_loop would run the step in Python at every step.
    run = tf.function(lambda batch: model.step_probabilities(batch, training=False),
                      input_signature=signature)
    chunks = [run(tf.constant(x[i:i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks, axis=0)


def sweep_from_probabilities(step_probs, y, thresholds, readout="softmax", lengths=None,
                             mask=None):
    """Accuracy, mean spike time and no-spike rate at each threshold.

    Args:
        step_probs: (n, time, outputs) probabilities at every step.
        y: (n,) integer labels, or (n, outputs) one-hot.
        thresholds: iterable of theta values in (0, 1).
        readout: "softmax" or "sigmoid".
        lengths: optional (n,) valid lengths.
        mask: optional (n, time) bool mask of valid steps.

    Returns:
        A list of dicts ``{"threshold", "accuracy", "mean_spike_time",
        "no_spike_rate"}``, one per threshold in the given order; ``mean_spike_time``
        is in steps read (spike step + 1).
    """
    step_probs = np.asarray(step_probs)
    labels = _true_labels(y, step_probs.shape[-1])
    if len(labels) != len(step_probs):
        raise ValueError(f"`y` has {len(labels)} labels for {len(step_probs)} sequences.")
    points = []
    for threshold in thresholds:
        crossing = first_crossing(step_probs, threshold, readout, lengths=lengths, mask=mask)
        correct = _labels_from_probs(crossing.probs) == labels
        points.append({
            "threshold": float(threshold),
            "accuracy": float(np.mean(correct)),
            "mean_spike_time": float(np.mean(crossing.spike_time + 1)),
            "no_spike_rate": float(1.0 - np.mean(crossing.spiked)),
        })
    return points


def threshold_sweep(model, x, y, thresholds, lengths=None, batch_size=256):
    """Sweeps the threshold of a trained model with one forward pass.

    The answers agree with ``model.predict`` at each threshold (with inputs
    ``{"inputs": x, "lengths": lengths}`` when lengths are given). A model with a
    ``mask_value`` has its padding steps (all features equal to the mask value) taken as
    invalid; steps are not skipped inside the recurrence, so this matches the model for
    padding at the end of a sequence.

    Args:
        model: an `rc_keras.RCModel`.
        x: (n, time, *features) inputs.
        y: (n,) labels or (n, outputs) one-hot.
        thresholds: iterable of theta values in (0, 1).
        lengths: optional (n,) valid lengths.
        batch_size: sequences per forward pass.

    Returns:
        The list of points of `sweep_from_probabilities`.
    """
    thresholds = [validation.check_threshold(t) for t in thresholds]
    step_probs = all_step_probabilities(model, x, batch_size=batch_size)
    mask = None
    if lengths is None and getattr(model, "mask_value", None) is not None:
        features = tuple(range(2, np.ndim(x)))
        mask = np.any(np.asarray(x) != model.mask_value, axis=features)
    return sweep_from_probabilities(step_probs, y, thresholds, readout=model.readout,
                                    lengths=lengths, mask=mask)


def _iter_curves(curves):
    if isinstance(curves, dict):
        return list(curves.items())
    return [(str(i), points) for i, points in enumerate(curves)]


def composite_frontier(curves):
    """The upper-left (Pareto) frontier of accuracy against mean spike time.

    A point is on the frontier when no other point is at least as accurate and at least
    as fast and strictly better in one of the two. Of points equal in both, one is kept.
    Used to combine the threshold sweeps of models trained with several betas into one
    composite curve, as in the paper.

    Args:
        curves: a dict ``name -> list of points`` or a list of lists of points; each
            point a dict with "accuracy" and "mean_spike_time".

    Returns:
        The frontier points, sorted by mean spike time (then accuracy) ascending; each a
        copy of its point with "curve" set to the name (or list index, as a string) of
        the curve it came from.
    """
    tagged = []
    for name, points in _iter_curves(curves):
        for point in points:
            tagged.append(dict(point, curve=point.get("curve", name)))
    # Fastest first, most accurate first among equally fast: a point is on the frontier
    # exactly when it beats the accuracy of every point before it.
    tagged.sort(key=lambda p: (p["mean_spike_time"], -p["accuracy"]))
    frontier, best = [], -np.inf
    for point in tagged:
        if point["accuracy"] > best:
            frontier.append(point)
            best = point["accuracy"]
    return frontier


def plot_tradeoff(curves, path, frontier=None, time_unit="steps", title=None,
                  annotate_thresholds=True):
    """Plots accuracy against mean spike time for one or more sweeps, to a PNG.

    Args:
        curves: dict ``name -> list of points`` (see `threshold_sweep`).
        path: output file (PNG).
        frontier: optional list of points (`composite_frontier`), drawn as a dashed
            staircase (the best accuracy reachable within a given mean spike time).
        time_unit: unit of ``mean_spike_time`` for the axis label ("steps", "ms", ...).
        title: optional plot title.
        annotate_thresholds: write each point's theta next to it.

    Returns:
        ``path``, as a string.
    """
    # The Agg canvas directly, not pyplot: no global backend switch, no GUI, no leaks.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(6, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    try:
        for name, points in _iter_curves(curves):
            points = sorted(points, key=lambda p: p["mean_spike_time"])
            times = [p["mean_spike_time"] for p in points]
            accuracy = [p["accuracy"] for p in points]
            ax.plot(times, accuracy, marker="o", label=str(name))
            if annotate_thresholds:
                for p in points:
                    if "threshold" in p:
                        ax.annotate(f"{p['threshold']:g}", (p["mean_spike_time"], p["accuracy"]),
                                    textcoords="offset points", xytext=(4, -10), fontsize=7)
        if frontier:
            ax.plot([p["mean_spike_time"] for p in frontier], [p["accuracy"] for p in frontier],
                    linestyle="--", color="black", linewidth=1.2, drawstyle="steps-post",
                    label="frontier")
        ax.set_xlabel(f"mean spike time ({time_unit} read)")
        ax.set_ylabel("accuracy (fraction correct)")
        if title:
            ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        fig.clear()
    return str(path)


def format_table(points, time_unit="steps"):
    """A markdown table of sweep points.

    Args:
        points: list of point dicts (`threshold_sweep`, `composite_frontier`); a
            "curve" column is added when the points carry one.
        time_unit: unit of the mean spike time column.

    Returns:
        The table as a string (no trailing newline).
    """
    with_curve = any("curve" in p for p in points)
    header = (["curve"] if with_curve else []) + [
        "θ", "accuracy", f"mean spike time ({time_unit} read)", "no-spike rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in points:
        row = ([str(p.get("curve", ""))] if with_curve else []) + [
            f"{p['threshold']:g}" if "threshold" in p else "",
            f"{p['accuracy']:.4f}",
            f"{p['mean_spike_time']:.2f}",
            f"{p['no_spike_rate']:.4f}" if "no_spike_rate" in p else ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
