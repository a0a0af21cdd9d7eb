"""Speed-accuracy trade-off of rank coding: threshold sweeps, composite frontiers, plots.

A trained RC network can answer earlier or later by moving its threshold theta. One
pass of `RCModel.step_probabilities` (the readout at every step, no halting) gives the
answer of every example at every threshold, so a whole sweep costs one forward pass:

```python
step_probs = tradeoff.step_probabilities(model, x)
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

__all__ = ["Crossing", "first_crossing", "step_probabilities", "all_step_probabilities",
           "sweep_from_probabilities",
           "threshold_sweep", "composite_frontier", "plot_tradeoff", "format_table",
           "frames_to_ms", "add_milliseconds", "frontier_accuracy_at", "compare_frontiers",
           "fast_operating_points", "plot_comparison", "format_comparison_table",
           "exponential_schedule", "fit_threshold_schedule", "padding_mask", "format_threshold"]


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
    """(batch, time) bool mask of valid steps from lengths or an explicit mask.

    The model's rules (`rc_keras.validation`): lengths in [1, time], a mask with a
    valid step in every row.
    """
    if lengths is not None and mask is not None:
        raise ValueError("give `lengths` or `mask`, not both.")
    if mask is not None:
        return validation.check_step_mask(mask, batch, time)
    if lengths is None:
        return np.ones((batch, time), dtype=bool)
    lengths = validation.check_lengths(lengths, batch, time)
    return np.arange(time)[None, :] < lengths[:, None]


def _crossed(step_probs, threshold, readout):
    """(batch, time) bool: the spike test at every step, in the probabilities' precision.

    The model compares in its compute dtype (float32), so the threshold is cast to the
    same dtype here; otherwise a probability equal to float32(theta) could spike in the
    model and not here.
    """
    dtype = step_probs.dtype if step_probs.dtype.kind == "f" else np.float64
    theta = np.asarray(threshold, dtype=dtype)
    if theta.ndim == 1:  # a schedule: step t uses theta[min(t, len - 1)]
        theta = theta[np.minimum(np.arange(step_probs.shape[1]), len(theta) - 1)]
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
    on padding; every example needs at least one valid step.

    Args:
        step_probs: (batch, time, outputs) probabilities, e.g. from
            `RCModel.step_probabilities`.
        threshold: theta in (0, 1), or a 1-D per-step schedule (step t uses
            ``threshold[min(t, len - 1)]``, as `rc_keras.RCModel`).
        readout: "softmax" or "sigmoid" (one output).
        lengths: optional (batch,) valid lengths in [1, time]; steps at and after a
            length are padding.
        mask: optional (batch, time) bool mask of valid steps, instead of ``lengths``.

    Returns:
        A `Crossing` ``(spike_time, spiked, probs)``.

    Raises:
        ValueError: on a threshold outside (0, 1), an unknown readout, or shapes that
            do not fit.
    """
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
    threshold = validation.check_threshold_values(threshold, readout, outputs)
    valid = _valid_steps(batch, time, lengths, mask)
    crossed = _crossed(step_probs, threshold, readout) & valid
    spiked = crossed.any(axis=1)
    first = np.argmax(crossed, axis=1)
    # Last valid step (as `rank_coding.last_valid_step`).
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


def step_probabilities(model, x, batch_size=256):
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


# The old name of `step_probabilities` (the readout at every step, in batches), kept for
# existing code; see `rc_keras.rank_coding.step_probabilities`.
all_step_probabilities = step_probabilities


def sweep_from_probabilities(step_probs, y, thresholds, readout="softmax", lengths=None,
                             mask=None, lookahead_frames=None):
    """Accuracy, mean spike time and no-spike rate at each threshold.

    Args:
        step_probs: (n, time, outputs) probabilities at every step.
        y: (n,) integer labels, or (n, outputs) one-hot.
        thresholds: iterable of theta values in (0, 1); an item may also be a 1-D
            per-step schedule (its point's "threshold" is then a list).
        readout: "softmax" or "sigmoid".
        lengths: optional (n,) valid lengths.
        mask: optional (n, time) bool mask of valid steps.
        lookahead_frames: with ``lengths``, the future frames stacked into each step's
            features: each point then also has "lookahead_frames" and
            "mean_overrun_frames", the mean of ``max(0, k + lookahead - length)`` over
            examples answering after reading ``k`` steps, i.e. how far the look-ahead
            reaches past the clip's end, which `add_milliseconds` takes off (no answer
            is later than the clip lasts).

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
            "threshold": _threshold_value(threshold),
            "accuracy": float(np.mean(correct)),
            "mean_spike_time": float(np.mean(crossing.spike_time + 1)),
            "no_spike_rate": float(1.0 - np.mean(crossing.spiked)),
        })
        if lookahead_frames is not None and lengths is not None:
            overrun = np.maximum(0, crossing.spike_time + 1 + int(lookahead_frames)
                                 - np.asarray(lengths).reshape(-1))
            points[-1].update(lookahead_frames=int(lookahead_frames),
                              mean_overrun_frames=float(np.mean(overrun)))
    return points


def threshold_sweep(model, x, y, thresholds, lengths=None, batch_size=256,
                    lookahead_frames=None):
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
        lookahead_frames: see `sweep_from_probabilities`.

    Returns:
        The list of points of `sweep_from_probabilities`.
    """
    thresholds = [validation.check_threshold_values(t) for t in thresholds]
    step_probs = step_probabilities(model, x, batch_size=batch_size)
    mask = padding_mask(model, x) if lengths is None else None
    return sweep_from_probabilities(step_probs, y, thresholds, readout=model.readout,
                                    lengths=lengths, mask=mask,
                                    lookahead_frames=lookahead_frames)


def padding_mask(model, x):
    """(n, time) valid steps of ``x`` for a model with a ``mask_value`` (steps whose
    features all equal it are padding), or None for a model without one."""
    if getattr(model, "mask_value", None) is None:
        return None
    return np.any(np.asarray(x) != model.mask_value, axis=tuple(range(2, np.ndim(x))))


def _threshold_value(threshold):
    """A point's "threshold": a float, or a list of floats for a schedule."""
    values = np.asarray(threshold, dtype=np.float64)
    return float(values) if values.ndim == 0 else [float(v) for v in values]


def format_threshold(threshold):
    """A threshold for tables: ``0.9``, or ``schedule 0.99→0.9`` (first and last value)."""
    if isinstance(threshold, (list, tuple)):
        return f"schedule {threshold[0]:g}→{threshold[-1]:g}"
    return f"{threshold:g}"


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


def _label_axes(ax, time_unit, ms_axis):
    """Axis labels; with ``ms_axis=(stride_ms, window_ms, lookahead_frames)`` a top axis in
    milliseconds of audio heard (`add_milliseconds`' affine map)."""
    ax.set_xlabel(f"mean spike time ({time_unit} read)")
    ax.set_ylabel("accuracy (fraction correct)")
    if ms_axis is not None:
        stride, window, lookahead = ms_axis
        top = ax.secondary_xaxis(
            "top", functions=(lambda k: window + stride * (k - 1 + lookahead),
                              lambda ms: (ms - window) / stride + 1 - lookahead))
        top.set_xlabel("mean spike time (ms of audio heard)")


def plot_tradeoff(curves, path, frontier=None, time_unit="steps", title=None,
                  annotate_thresholds=True, ms_axis=None):
    """Plots accuracy against mean spike time for one or more sweeps, to a PNG.

    Args:
        curves: dict ``name -> list of points`` (see `threshold_sweep`).
        path: output file (PNG).
        frontier: optional list of points (`composite_frontier`), drawn as a dashed
            staircase (the best accuracy reachable within a given mean spike time).
        time_unit: unit of ``mean_spike_time`` for the axis label ("steps", "ms", ...).
        title: optional plot title.
        annotate_thresholds: write each point's theta next to it.
        ms_axis: optional ``(stride_ms, window_ms, lookahead_frames)`` of a frame-based
            input: adds a top axis in milliseconds of audio (see `add_milliseconds`).

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
                    if "threshold" in p and not isinstance(p["threshold"], (list, tuple)):
                        ax.annotate(f"{p['threshold']:g}", (p["mean_spike_time"], p["accuracy"]),
                                    textcoords="offset points", xytext=(4, -10), fontsize=7)
        if frontier:
            ax.plot([p["mean_spike_time"] for p in frontier], [p["accuracy"] for p in frontier],
                    linestyle="--", color="black", linewidth=1.2, drawstyle="steps-post",
                    label="frontier")
        _label_axes(ax, time_unit, ms_axis)
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
    with_ms = any("mean_spike_time_ms" in p for p in points)
    header = (["curve"] if with_curve else []) + [
        "θ", "accuracy", f"mean spike time ({time_unit} read)"] + (
        ["mean spike time (ms of audio)"] if with_ms else []) + ["no-spike rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in points:
        row = ([str(p.get("curve", ""))] if with_curve else []) + [
            format_threshold(p["threshold"]) if "threshold" in p else "",
            f"{p['accuracy']:.4f}",
            f"{p['mean_spike_time']:.2f}"] + (
            [f"{p['mean_spike_time_ms']:.0f}" if "mean_spike_time_ms" in p else ""]
            if with_ms else []) + [
            f"{p['no_spike_rate']:.4f}" if "no_spike_rate" in p else ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- RC vs. conventional
def frames_to_ms(frames, stride_ms=10.0, window_ms=25.0, lookahead_frames=0):
    """Milliseconds of audio heard after reading ``frames`` frames (1-based count).

    Frame k ends at ``window_ms + stride_ms * (k - 1)``; frames stacked with a context
    of future frames (``lookahead_frames``) have heard that many strides more. The map
    is affine, so a mean over examples converts the same way.

    Args:
        frames: number of frames read (scalar or array), >= 1 for a real answer.
        stride_ms: hop between frames in ms (the paper's front end: 10 ms).
        window_ms: window length in ms (25 ms).
        lookahead_frames: future frames stacked into each step's features.

    Returns:
        Float (or array) of milliseconds.
    """
    frames = np.asarray(frames, dtype=np.float64)
    out = window_ms + stride_ms * (frames - 1 + lookahead_frames)
    return float(out) if out.ndim == 0 else out


def add_milliseconds(points, stride_ms=10.0, window_ms=25.0, lookahead_frames=0):
    """Copies of sweep points with "mean_spike_time_ms" added (frame-based inputs).

    Reading ``k`` frames of a front end with hop ``stride_ms`` and window ``window_ms``
    means hearing ``window_ms + stride_ms * (k - 1)`` ms of audio, plus
    ``stride_ms * lookahead_frames`` when future context frames are stacked into each
    step. The map is affine, so it converts a mean spike time exactly. Points that carry
    "mean_overrun_frames" for the same ``lookahead_frames`` (`sweep_from_probabilities`
    with lengths) have it taken off: an answer never hears more than its clip.

    Args:
        points: list of point dicts with "mean_spike_time" in frames read.
        stride_ms: frame hop in ms (10 ms in the paper's front end).
        window_ms: analysis window in ms (25 ms).
        lookahead_frames: future frames stacked into each step's features.

    Returns:
        A new list of point dicts.
    """
    for name, value in (("stride_ms", stride_ms), ("window_ms", window_ms)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"`{name}` must be a number > 0; received {value!r}.")
    if int(lookahead_frames) != lookahead_frames or lookahead_frames < 0:
        raise ValueError(f"`lookahead_frames` must be an integer >= 0; received "
                         f"{lookahead_frames!r}.")
    def overrun(p):
        same = p.get("lookahead_frames") == lookahead_frames
        return p.get("mean_overrun_frames", 0.0) if same else 0.0

    return [dict(p, mean_spike_time_ms=frames_to_ms(p["mean_spike_time"] - overrun(p),
                                                    stride_ms, window_ms, lookahead_frames))
            for p in points]


def frontier_accuracy_at(frontier, mean_spike_time):
    """The best accuracy a frontier reaches within a mean spike time (its staircase).

    Args:
        frontier: points of `composite_frontier` (sorted by mean spike time).
        mean_spike_time: the time budget.

    Returns:
        The accuracy of the last frontier point at or before ``mean_spike_time``, or
        None when the frontier starts later.
    """
    best = None
    for point in frontier:
        if point["mean_spike_time"] <= mean_spike_time:
            best = point["accuracy"] if best is None else max(best, point["accuracy"])
    return best


def compare_frontiers(frontier, reference, tolerance=0.0):
    """Checks that ``frontier`` lies at or above ``reference`` wherever both exist.

    Both staircases (`frontier_accuracy_at`) are read at every frontier point of either
    curve inside the overlap of their time ranges, from the later of the two first
    points to the earlier of the two last points.

    Args:
        frontier: frontier points (e.g. of the RC-trained models).
        reference: frontier points (e.g. of the conventionally trained models).
        tolerance: accuracy by which ``frontier`` may fall short and still count as
            "at or above" (0: none).

    Returns:
        Dict with "overlap" ([start, end] in the points' time unit, or None when the
        ranges do not overlap), "checks" (list of {"mean_spike_time", "accuracy",
        "reference_accuracy", "difference"}), "worst_difference" (min difference, or
        None) and "at_or_above" (True when every check passes; None without overlap).
    """
    if not frontier or not reference:
        raise ValueError("`frontier` and `reference` must each hold at least one point.")
    start = max(frontier[0]["mean_spike_time"], reference[0]["mean_spike_time"])
    end = min(frontier[-1]["mean_spike_time"], reference[-1]["mean_spike_time"])
    if start > end:
        return {"overlap": None, "checks": [], "worst_difference": None, "at_or_above": None}
    times = sorted({p["mean_spike_time"] for p in list(frontier) + list(reference)
                    if start <= p["mean_spike_time"] <= end} | {start, end})
    checks = []
    for t in times:
        a, b = frontier_accuracy_at(frontier, t), frontier_accuracy_at(reference, t)
        checks.append({"mean_spike_time": float(t), "accuracy": float(a),
                       "reference_accuracy": float(b), "difference": float(a - b)})
    worst = min(c["difference"] for c in checks)
    return {"overlap": [float(start), float(end)], "checks": checks,
            "worst_difference": worst, "at_or_above": bool(worst >= -float(tolerance))}


def fast_operating_points(points, max_time, min_accuracy):
    """Points answering within ``max_time`` at an accuracy of at least ``min_accuracy``.

    Args:
        points: sweep or frontier points.
        max_time: largest allowed mean spike time.
        min_accuracy: smallest allowed accuracy.

    Returns:
        The qualifying points, most accurate first (ties: fastest first).
    """
    chosen = [p for p in points
              if p["mean_spike_time"] <= max_time and p["accuracy"] >= min_accuracy]
    return sorted(chosen, key=lambda p: (-p["accuracy"], p["mean_spike_time"]))


def plot_comparison(groups, path, frontiers=None, time_unit="frames", ms_axis=None, title=None,
                    reference_lines=None):
    """One PNG with the sweeps of several groups of models (e.g. RC and EOS), Figure-5 style.

    Curves of the first group are drawn solid, of the second dashed, of a third dotted;
    each group's frontier is a thick staircase in the group's colour.

    Args:
        groups: dict ``group -> {curve name -> points}``, e.g.
            ``{"RC": {"beta=0": [...], ...}, "EOS": {"beta=0": [...]}}``.
        path: output PNG.
        frontiers: optional dict ``group -> frontier points``.
        time_unit: unit of "mean_spike_time" for the bottom axis.
        ms_axis: optional ``(stride_ms, window_ms, lookahead_frames)``: adds a top axis
            in milliseconds (see `add_milliseconds`).
        title: optional title.
        reference_lines: optional dict ``label -> accuracy`` drawn as horizontal lines
            (e.g. the EOS model read at the end of the clip).

    Returns:
        ``path`` as a string.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    styles = ["-", "--", ":", "-."]
    palettes = ["Blues", "Oranges", "Greens", "Purples"]
    group_colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    fig = Figure(figsize=(7.5, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    try:
        import matplotlib  # noqa: PLC0415

        for g, (group, curves) in enumerate(groups.items()):
            cmap = matplotlib.colormaps[palettes[g % len(palettes)]]
            items = list(curves.items())
            for c, (name, points) in enumerate(items):
                points = sorted(points, key=lambda p: p["mean_spike_time"])
                shade = 0.45 + 0.5 * (c / max(1, len(items) - 1))
                ax.plot([p["mean_spike_time"] for p in points], [p["accuracy"] for p in points],
                        linestyle=styles[g % len(styles)], marker="o", markersize=3,
                        linewidth=1, color=cmap(shade), label=f"{group} {name}")
            if frontiers and frontiers.get(group):
                front = frontiers[group]
                ax.plot([p["mean_spike_time"] for p in front], [p["accuracy"] for p in front],
                        drawstyle="steps-post", linewidth=2.4, alpha=0.85,
                        color=group_colours[g % len(group_colours)],
                        label=f"{group} composite frontier")
        for i, (label, accuracy) in enumerate((reference_lines or {}).items()):
            ax.axhline(accuracy, color="grey", linestyle=styles[(i + 2) % len(styles)],
                       linewidth=1, label=label)
        _label_axes(ax, time_unit, ms_axis)
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=6.5, ncol=2)
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        fig.clear()
    return str(path)


def format_comparison_table(frontiers, time_unit="frames"):
    """A markdown table of several frontiers, one row per point, ms column when present.

    Args:
        frontiers: dict ``group -> points`` (points may carry "curve" and
            "mean_spike_time_ms").
        time_unit: unit of "mean_spike_time".

    Returns:
        The table as a string.
    """
    with_ms = any("mean_spike_time_ms" in p for points in frontiers.values() for p in points)
    header = ["group", "model", "θ", "accuracy", f"mean spike time ({time_unit})"]
    header += ["mean spike time (ms)"] if with_ms else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, points in frontiers.items():
        for p in points:
            row = [str(group), str(p.get("curve", "")),
                   format_threshold(p["threshold"]) if "threshold" in p else "",
                   f"{p['accuracy']:.4f}", f"{p['mean_spike_time']:.2f}"]
            if with_ms:
                ms = p.get("mean_spike_time_ms")
                row.append("" if ms is None else f"{ms:.0f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- threshold schedules
FIT_METHODS = ("exponential", "steps")


def exponential_schedule(theta_0, theta_end, tau, length, monotone=False):
    """The per-step thresholds ``theta_end + (theta_0 - theta_end) * exp(-t / tau)``.

    The family `fit_threshold_schedule` searches: it starts at ``theta_0`` and relaxes
    towards ``theta_end`` with time constant ``tau`` steps; ``theta_0 == theta_end`` is a
    constant threshold.

    Args:
        theta_0: threshold at step 0, in (0, 1).
        theta_end: the value approached late in the sequence, in (0, 1).
        tau: time constant in steps, > 0.
        length: number of steps (the last value holds for longer inputs).
        monotone: require a non-increasing schedule (``theta_0 >= theta_end``), as the
            fitter does by default.

    Returns:
        A tuple of ``length`` floats, each exactly a float32 (what the model stores).

    Raises:
        ValueError: on a value outside (0, 1), a tau that is not > 0, a length < 1, or,
            with ``monotone``, ``theta_0 < theta_end``.
    """
    theta_0 = validation.check_threshold(theta_0, "theta_0")
    theta_end = validation.check_threshold(theta_end, "theta_end")
    if monotone and theta_0 < theta_end:
        raise ValueError(f"`theta_0` ({theta_0:g}) must be >= `theta_end` ({theta_end:g}) for a "
                         "monotone (non-increasing) schedule.")
    length = validation.check_positive_int(length, "length")
    tau = float(tau)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"`tau` must be a finite number > 0; received {tau!r}.")
    t = np.arange(length, dtype=np.float64)
    values = np.float32(theta_end + (theta_0 - theta_end) * np.exp(-t / tau))
    return tuple(validation.float32_value(v) for v in values)


def _default_levels(confidence, valid, bound, count):
    """About ``count`` thresholds inside (bound, 1) spread over the data's confidence.

    Half sit at quantiles of the valid steps' confidence (dense where the data is),
    half are spaced geometrically in 1 - theta between its minimum and its maximum
    (confidences pile up near 1, where quantiles tie).
    """
    values = confidence[valid].astype(np.float64)
    low = 0.0 if bound is None else float(bound)
    if not values.size:
        return []
    quantiles = np.quantile(values, np.linspace(0.0, 0.995, max(1, count // 2)))
    start = max(float(values.min()), low + 1e-6)
    stop = min(float(values.max()), 1.0 - 1e-6)
    geometric = 1.0 - np.geomspace(1.0 - start, 1.0 - max(stop, start), count - count // 2)
    levels = np.unique(np.float32(np.concatenate([quantiles, geometric])))
    return [float(v) for v in levels if np.float32(low) < v < np.float32(1)]


def fit_threshold_schedule(step_probabilities, labels, lengths=None, budget=None, *,
                           readout="softmax", mask=None, levels=None, taus=None,
                           constant_levels=None, monotone=True, method="exponential",
                           _all_candidates=False):
    """Fits a per-step threshold schedule on validation data.

    Searches the exponential family of `exponential_schedule` on a grid: ``theta_0`` and
    ``theta_end`` over ``levels``, ``tau`` over ``taus``, plus every constant threshold of
    ``constant_levels``. Each candidate is scored exactly as the model answers (first
    crossing of ``schedule[min(t, len - 1)]``, last valid step otherwise), on the given
    data, with one vectorized pass per candidate.

    Guard against overfitting: a schedule of T free values could be tuned to the noise
    of a validation set; this family has three parameters on a coarse grid (by default
    12 levels x 6 time constants), non-increasing when ``monotone`` (high early, when
    evidence is thin, lower late), and it contains the constant thresholds, so on the
    fitting data the result is never worse than the best constant of
    ``constant_levels``. Report its accuracy on held-out data, not on the data it was
    fitted on.

    ``method="steps"`` (with a ``budget``) also fits one free threshold per step, by
    backward induction: for a price ``lam`` per step read, the threshold of step t (from
    the last step back to the first) is the level that maximizes, over the sequences
    that reach step t, the value of answering there (correct - lam * steps read) against
    the value of reading on under the thresholds already chosen for the later steps.
    The price is then bisected until the mean spike time meets the budget, each
    schedule scored exactly; the result is the most accurate of these and of the
    exponential fit within the budget. (The induction counts every sequence as reaching
    every step, so it is a heuristic; the exact scoring keeps it honest.) Guards: the
    levels come from a grid (about 40 values chosen as ``levels``), the schedule is
    non-increasing with ``monotone``, and it must beat the 3-parameter family on the
    fitting data to be chosen; it has more freedom, so compare its validation and test
    accuracy.

    Args:
        step_probabilities: (n, time, outputs) readout at every step, e.g. from
            `step_probabilities` on a validation set.
        labels: (n,) integer labels, or (n, outputs) one-hot.
        lengths: optional (n,) valid lengths in [1, time].
        budget: largest allowed mean spike time (steps read, spike step + 1). None
            returns the whole frontier instead of one schedule.
        readout: "softmax" or "sigmoid".
        mask: optional (n, time) bool mask of valid steps, instead of ``lengths``.
        levels: thresholds for ``theta_0`` and ``theta_end`` (each also tried as a
            constant); default about 12 values from the data's per-step confidence
            (largest probability; max(p, 1 - p) for sigmoid): quantiles, and values spaced
            geometrically in 1 - theta up to the largest confidence.
        taus: time constants in steps; default 6 values spaced geometrically in [1, time].
        constant_levels: constant thresholds also tried; default about 100 values chosen
            as for ``levels``.
        monotone: only non-increasing schedules (``theta_0 >= theta_end``).
        method: "exponential" (the family on its grid) or "steps" (one threshold per
            step, as above; needs ``budget``).

    Returns:
        With ``budget``: the most accurate candidate whose mean spike time is within it
        (ties: the faster), a point dict ``{"threshold": list of ``time`` floats,
        "theta_0", "theta_end", "tau", "accuracy", "mean_spike_time", "no_spike_rate",
        "constant"}`` where "constant" is the best constant-threshold point within the
        budget (None when no constant fits). Without ``budget``: the frontier
        (`composite_frontier`) of all candidates, each point carrying the same keys
        except "constant"; constant candidates have tau None. Every single result
        has "method": "exponential", or "steps" with "price" (lam) when a per-step
        schedule won (its theta_0 and theta_end are its first and last values, tau None).

    Raises:
        ValueError: on bad shapes, labels, lengths, grids, or a budget no candidate meets.
    """
    validation.check_choice(readout, validation.READOUTS, "readout")
    validation.check_choice(method, FIT_METHODS, "method")
    if method == "steps" and budget is None:
        raise ValueError("method='steps' fits one schedule for one budget: give a `budget`.")
    step_probs = np.asarray(step_probabilities)
    if step_probs.ndim != 3 or step_probs.shape[1] == 0 or step_probs.shape[0] == 0:
        raise ValueError("`step_probabilities` must have shape (n, time, outputs) with n, time >= "
                         f"1; received shape {step_probs.shape}.")
    if step_probs.dtype.kind != "f":
        step_probs = step_probs.astype(np.float32)
    validation.check_finite(step_probs, "step_probabilities")
    n, time, outputs = step_probs.shape
    if readout == "sigmoid" and outputs != 1:
        raise ValueError(f"readout='sigmoid' needs one output; `step_probabilities` has {outputs}.")
    y = _true_labels(labels, outputs)
    if len(y) != n:
        raise ValueError(f"`labels` has {len(y)} labels for {n} sequences.")
    if budget is not None:
        budget = validation.check_non_negative(budget, "budget")
    valid = _valid_steps(n, time, lengths, mask)
    last = np.where(valid, np.arange(time)[None, :], 0).max(axis=1)
    bound = validation.lowest_useful_threshold(readout, outputs)
    if readout == "softmax":
        predicted = np.argmax(step_probs, axis=-1)
        confidence = step_probs.max(axis=-1)
        probe = confidence[..., None]  # `_crossed` on the max alone: one reduction, not one each
    else:
        predicted = (step_probs[..., 0] >= 0.5).astype(np.int64)
        confidence = np.maximum(step_probs[..., 0], 1 - step_probs[..., 0])
        probe = step_probs
    correct = predicted == y[:, None]
    rows = np.arange(n)

    def check_grid(values, name):
        values = [validation.check_threshold_for(v, readout, outputs, name) for v in values]
        if not values:
            raise ValueError(f"`{name}` must hold at least one threshold.")
        return sorted(set(values))

    levels = check_grid(_default_levels(confidence, valid, bound, 12) if levels is None
                        else levels, "levels")
    constant_levels = check_grid(_default_levels(confidence, valid, bound, 100)
                                 if constant_levels is None else constant_levels,
                                 "constant_levels")
    if taus is None:
        taus = np.geomspace(1.0, max(time, 1), 6)
    taus = [float(t) for t in taus]
    if not taus or not all(np.isfinite(t) and t > 0 for t in taus):
        raise ValueError(f"`taus` must hold time constants > 0; received {taus!r}.")

    def score(schedule):
        theta = np.asarray(schedule, dtype=probe.dtype)
        crossed = _crossed(probe, theta, readout) & valid
        spiked = crossed.any(axis=1)
        spike_time = np.where(spiked, crossed.argmax(axis=1), last)
        return {"accuracy": float(correct[rows, spike_time].mean()),
                "mean_spike_time": float((spike_time + 1).mean()),
                "no_spike_rate": float(1.0 - spiked.mean())}

    candidates = []
    for theta in sorted(set(constant_levels) | set(levels)):
        candidates.append(dict(score(theta), threshold=[theta] * time, theta_0=theta,
                               theta_end=theta, tau=None))
    for theta_0 in levels:
        for theta_end in levels:
            if theta_0 == theta_end or (monotone and theta_0 < theta_end):
                continue
            for tau in taus:
                schedule = exponential_schedule(theta_0, theta_end, tau, time)
                candidates.append(dict(score(schedule), threshold=list(schedule),
                                       theta_0=theta_0, theta_end=theta_end, tau=tau))
    if _all_candidates:  # for benchmarks: every scored candidate
        return candidates
    if budget is None:
        return composite_frontier({"schedule": candidates})

    def best_of(points):
        fitting = [p for p in points if p["mean_spike_time"] <= budget]
        return max(fitting, key=lambda p: (p["accuracy"], -p["mean_spike_time"]),
                   default=None)

    best = best_of(candidates)
    if best is None:
        fastest = min(p["mean_spike_time"] for p in candidates)
        raise ValueError(f"`budget` {budget} is below every candidate's mean spike time; the "
                         f"fastest reaches {fastest:.3f} steps.")
    constant = best_of(c for c in candidates if c["tau"] is None)
    best = dict(best, method="exponential")
    if method == "steps":
        fine = check_grid(_default_levels(confidence, valid, bound, 40) + levels, "levels")
        fitted = _fit_per_step(confidence, correct, valid, last, fine, budget, monotone, score)
        if fitted is not None and best_of([best, fitted]) is fitted:
            best = fitted
    return dict(best, constant=constant)


def _backward_schedule(confidence, correct, valid, last, grid, price, monotone):
    """Per-step thresholds by backward induction at a price per step read (see
    `fit_threshold_schedule`, method "steps")."""
    n, time = confidence.shape
    rows = np.arange(n)
    # What each sequence scores when it reads on to its last valid step.
    value = correct[rows, last] - price * (last + 1.0)
    theta = np.empty(time)
    floor = -np.inf
    for t in range(time - 1, -1, -1):
        live = valid[:, t] & (t < last)  # at its last valid step a sequence answers anyway
        stop_value = correct[:, t] - price * (t + 1.0)
        conf, gain = confidence[live, t], (stop_value - value)[live]
        order = np.argsort(-conf, kind="stable")
        conf, cumulative = conf[order], np.concatenate([[0.0], np.cumsum(gain[order])])
        levels = grid[grid >= floor] if monotone else grid
        if not levels.size:
            levels = grid[-1:]
        # Sequences with confidence >= level answer at t: a prefix of the sorted list.
        # Ties take the lowest level: with `monotone` it constrains the earlier steps least.
        stops = np.searchsorted(-conf, -levels, side="right")
        choice = levels[np.argmax(cumulative[stops])]
        theta[t] = choice
        if monotone:
            floor = choice
        answer = live & (confidence[:, t] >= choice)
        value = np.where(answer, stop_value, value)
    return theta


def _fit_per_step(confidence, correct, valid, last, grid, budget, monotone, score):
    """The most accurate backward-induction schedule within ``budget`` over a bisection
    of the price per step; None when none fits."""
    grid = np.asarray(grid, np.float64)
    confidence = confidence.astype(np.float64)
    correct = correct.astype(np.float64)
    best = None

    def attempt(price):
        nonlocal best
        theta = _backward_schedule(confidence, correct, valid, last, grid, price, monotone)
        threshold = [validation.float32_value(v) for v in theta]
        point = dict(score(threshold), threshold=threshold, theta_0=threshold[0],
                     theta_end=threshold[-1], tau=None, method="steps", price=price)
        fits = point["mean_spike_time"] <= budget
        if fits and (best is None or (point["accuracy"], -point["mean_spike_time"])
                     > (best["accuracy"], -best["mean_spike_time"])):
            best = point
        return fits

    if attempt(0.0):  # the most accurate schedule already meets the budget
        return best
    low, high = 0.0, 1.0
    for _ in range(20):  # a higher price answers sooner
        price = 0.5 * (low + high)
        if attempt(price):
            high = price
        else:
            low = price
    return best
