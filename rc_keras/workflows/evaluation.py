"""Evaluating and sweeping saved models: one path for every task.

```python
from rc_keras.workflows import evaluate, sweep
evaluate("runs/two_seq/model.keras", "two-sequence", threshold=0.9)
sweep(["runs/b0/model.keras", "runs/b1/model.keras"], "two-sequence",
      thresholds=[0.8, 0.9, 0.95], out_dir="runs/sweep")
```

A task that reads a saved model's data its own way (the keyword front end saved beside
it) or whose steps are milliseconds of audio says so through its hooks
(`rc_keras.tasks.Task.model_data`, ``evaluate``, ``step_ms``); nothing here names a task.
"""

import inspect
import os
from pathlib import Path

import numpy as np

from rc_keras import tasks, tradeoff, validation
from rc_keras.workflows import schedules
from rc_keras.workflows.files import (CLIError, check_feature_shape, check_model_file,
                                      check_output_dir, check_task, load_model, write_json)

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
"""The theta values of ``rc-keras sweep`` and of the demo's sweep."""


def evaluate_model(model, x, y, threshold=None, batch_size=256):
    """Accuracy, mean spike time (steps read) and no-spike rate of ``model.predict``.

    Args:
        model: an `rc_keras.RCModel`.
        x: (n, time, *features) inputs, or an ``{"inputs", "lengths"}`` dict.
        y: (n,) integer labels.
        threshold: optional theta to set on the model first (it stays set).
        batch_size: prediction batch size.

    Returns:
        Dict with "accuracy", "mean_spike_time", "no_spike_rate", "threshold",
        "sequence_length" and "num_sequences".
    """
    if threshold is not None:
        model.threshold = threshold
    out = model.predict(x, batch_size=batch_size, verbose=0)
    labels = np.asarray(y).reshape(-1)
    return {
        "threshold": model.threshold,
        "accuracy": float(np.mean(out["label"] == labels)),
        "mean_spike_time": float(np.mean(out["spike_time"] + 1)),
        "no_spike_rate": float(1.0 - np.mean(out["spiked"])),
        "sequence_length": int(np.shape(x["inputs"] if isinstance(x, dict) else x)[1]),
        "num_sequences": int(len(labels)),
    }


def format_summary(metrics, time_unit="steps"):
    """One line: accuracy, mean spike time out of the sequence length (and in ms of audio
    for speech), no-spike rate; an EOS model's end-of-clip accuracy too."""
    ms = (f" ({metrics['mean_spike_time_ms']:.0f} ms)" if "mean_spike_time_ms" in metrics
          else "")
    end = (f" | end-of-clip accuracy {metrics['end_of_clip_accuracy']:.4f}"
           if "end_of_clip_accuracy" in metrics else "")
    return (f"accuracy {metrics['accuracy']:.4f}{end} | mean spike time "
            f"{metrics['mean_spike_time']:.2f} of {metrics['sequence_length']} {time_unit}{ms} | "
            f"no-spike rate {metrics['no_spike_rate']:.4f} | theta "
            f"{tradeoff.format_threshold(metrics['threshold'])} | "
            f"n={metrics['num_sequences']}")


def model_test_data(task, model, model_path, size=None, seed=0, data_root=None, split="test"):
    """The test split of ``task`` as the saved model at ``model_path`` reads it.

    The task's ``model_data`` hook when it has one (e.g. the front end saved beside a
    keyword model), else ``task.data("test", size, seed)``; either way checked against
    the model's feature shape. ``split="val"`` reads the validation split the same way
    (what a threshold schedule is fitted on).

    Returns:
        ``(x, y)``; ``x`` may be an ``{"inputs", "lengths"}`` dict.
    """
    if task.model_data is not None:
        try:
            # ``split`` only when not the test split: a hook that reads only the test split
            # (and has no ``split`` parameter) keeps working for evaluate and sweep.
            extra = {}
            if split != "test":
                if "split" not in inspect.signature(task.model_data).parameters:
                    raise CLIError(f"--schedule is not supported for --task {task.name} yet: "
                                   "its data hook reads the test split only, and a schedule "
                                   "is fitted on the validation split.")
                extra["split"] = split
            x, y = task.model_data(task, model, model_path, size=size, seed=seed,
                                   data_root=data_root, **extra)
        except FileNotFoundError as error:
            raise CLIError(str(error)) from None
    else:
        x, y = task.data(split, size, seed)
    check_feature_shape(model, x, model_path)
    return x, y


def evaluate(model_path, task, threshold=None, test_size=None, seed=0, data_root=None,
             allow_task_mismatch=False, threshold_schedule=None, fit_schedule=None,
             save_schedule=None):
    """Evaluates a saved model on fresh test data of ``task``.

    ``data_root``: dataset folder of a folder-based task (speech-commands), whose test
    split is read with true lengths; the result then has "mean_spike_time_ms" too.
    A model that records another task (`rc_keras.workflows.files.MODEL_RECORD`) is
    refused unless ``allow_task_mismatch``. ``threshold_schedule`` (a schedule file) or
    ``fit_schedule`` (a budget: fitted on the validation split, same size and seed)
    evaluate with a per-step schedule instead (`rc_keras.workflows.schedules`);
    ``save_schedule`` writes it.

    Returns:
        The dict of `evaluate_model` (or of the task's ``evaluate`` hook), with "task"
        and "model" added (and "schedule", describing the schedule, when one was used).
    """
    tasks.get_task(task).check_options(data_root=data_root)
    schedules.check_flags(threshold, threshold_schedule, fit_schedule, save_schedule)
    check_model_file(model_path)
    check_task(model_path, task, allow_task_mismatch)
    task = tasks.get_task(task)
    model = load_model(model_path)
    x, y = model_test_data(task, model, model_path, test_size, seed, data_root)

    def validation_split():
        x_val, y_val = model_test_data(task, model, model_path, test_size, seed, data_root,
                                       split="val")
        if isinstance(x_val, dict):
            return x_val["inputs"], x_val["lengths"], y_val
        return x_val, None, y_val

    steps = (x["inputs"] if isinstance(x, dict) else x).shape[1]
    schedule, info = schedules.resolve(model, steps, threshold_schedule, fit_schedule,
                                          load_validation=validation_split, save=save_schedule)
    if schedule is not None:
        threshold = schedule
    if threshold is not None:
        model.threshold = threshold  # it stays set, as `evaluate_model` leaves it
    result = (task.evaluate(model, x, y) if task.evaluate is not None
              else evaluate_model(model, x, y))
    return {"task": task.name, "model": str(model_path), **result,
            **({"schedule": info} if info else {})}


def _curve_name(path, taken):
    path = Path(path)
    name = path.parent.name if path.stem == "model" and path.parent.name else path.stem
    base, index = name, 2
    while name in taken:
        name, index = f"{base}-{index}", index + 1
    return name


def sweep(model_paths, task, thresholds=DEFAULT_THRESHOLDS, out_dir=None, test_size=None,
          seed=0, batch_size=256, data_root=None, allow_task_mismatch=False, schedule=False):
    """Sweeps the threshold of one or more saved models with one pass each.

    With several models (e.g. one per beta) the composite (Pareto) frontier over
    their curves is computed too.

    Args:
        model_paths: a path or a list of paths to ``.keras`` files.
        task: a `rc_keras.tasks.Task` or registered name.
        thresholds: theta values in (0, 1).
        out_dir: if given, writes ``sweep.json`` and ``sweep.png`` there.
        test_size: number of test sequences; task default if None.
        seed: run seed of the test split.
        batch_size: sequences per forward pass.
        data_root: dataset folder of a folder-based task (speech-commands): its test
            split, with true lengths; points then carry "mean_spike_time_ms" too.
        schedule: also fit per-step threshold schedules
            (`rc_keras.tradeoff.fit_threshold_schedule`) on the task's validation split
            (same size and seed as the test split) and read them on the test split: a curve
            "<name> schedule" beside each constant-theta curve, its points carrying the
            validation accuracy and mean spike time too.

    Returns:
        Dict with "task", "curves" (name -> points), "frontier" (points, or None for
        one model) and, with ``out_dir``, "json" and "png" paths.
    """
    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    tasks.get_task(task).check_options(data_root=data_root)
    if out_dir is not None:
        check_output_dir(out_dir)
    for path in model_paths:
        check_model_file(path)
        check_task(path, task, allow_task_mismatch)
    task = tasks.get_task(task)
    thresholds = [validation.check_threshold(t) for t in thresholds]
    if not thresholds:
        raise CLIError("give at least one threshold.")
    models = [(path, load_model(path)) for path in model_paths]
    x, y = model_test_data(task, models[0][1], model_paths[0], test_size, seed, data_root)
    for path, model in models[1:]:
        check_feature_shape(model, x, path)
    x, lengths = (x["inputs"], x["lengths"]) if isinstance(x, dict) else (x, None)
    if schedule:  # the validation split, read as the test split is
        x_val, y_val = model_test_data(task, models[0][1], model_paths[0], test_size, seed,
                                       data_root, split="val")
        x_val, val_lengths = ((x_val["inputs"], x_val["lengths"]) if isinstance(x_val, dict)
                              else (x_val, None))
    curves, sources = {}, {}
    for path, model in models:
        name = _curve_name(path, curves)
        ms_axis = task.step_ms(model) if task.step_ms is not None else None
        curves[name] = tradeoff.threshold_sweep(
            model, x, y, thresholds, lengths=lengths, batch_size=batch_size,
            lookahead_frames=None if ms_axis is None else ms_axis[2])
        if ms_axis is not None:
            stride_ms, window_ms, lookahead = ms_axis
            curves[name] = tradeoff.add_milliseconds(curves[name], stride_ms, window_ms,
                                                     lookahead_frames=lookahead)
        sources[name] = str(path)
        if schedule:
            curves[f"{name} schedule"] = _schedule_curve(model, (x_val, val_lengths, y_val),
                                                         (x, lengths, y), batch_size)
            if ms_axis is not None:
                curves[f"{name} schedule"] = tradeoff.add_milliseconds(
                    curves[f"{name} schedule"], stride_ms, window_ms, lookahead_frames=lookahead)
            sources[f"{name} schedule"] = str(path)
    frontier = tradeoff.composite_frontier(curves) if len(curves) > 1 else None
    result = {"task": task.name, "num_sequences": int(len(y)),
              "sequence_length": int(x.shape[1]), "models": sources, "curves": curves,
              "frontier": frontier}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result["json"] = write_json(out_dir / "sweep.json", result)
        result["png"] = tradeoff.plot_tradeoff(
            curves, out_dir / "sweep.png", frontier=frontier, time_unit=task.time_unit,
            ms_axis=task.step_ms(models[0][1]) if task.step_ms is not None else None,
            title=f"{task.name}: accuracy vs. mean spike time (n={len(y)})")
    return result


def _schedule_curve(model, val, test, batch_size, max_points=12):
    """Schedules fitted on validation (their frontier, thinned), read on the test split.

    ``val`` and ``test`` are ``(x, lengths, y)``; lengths None for generated tasks (the
    model's padding mask, if any, marks their valid steps)."""
    def valid(x, lengths):
        if lengths is not None:
            return {"lengths": lengths}
        return {"mask": tradeoff.padding_mask(model, x)}

    (x_val, val_lengths, y_val), (x_test, test_lengths, y_test) = val, test
    val_probs = tradeoff.step_probabilities(model, x_val, batch_size=batch_size)
    fitted = tradeoff.fit_threshold_schedule(val_probs, y_val, readout=model.readout,
                                             **valid(x_val, val_lengths))
    keep = np.unique(np.round(np.linspace(0, len(fitted) - 1, min(max_points, len(fitted)))))
    fitted = [fitted[int(i)] for i in keep]
    test_probs = tradeoff.step_probabilities(model, x_test, batch_size=batch_size)
    points = tradeoff.sweep_from_probabilities(test_probs, y_test,
                                               [f["threshold"] for f in fitted],
                                               readout=model.readout,
                                               **valid(x_test, test_lengths))
    for point, fit in zip(points, fitted):
        point.update(theta_0=fit["theta_0"], theta_end=fit["theta_end"], tau=fit["tau"],
                     val_accuracy=fit["accuracy"], val_mean_spike_time=fit["mean_spike_time"])
    return points


def format_sweep(result, time_unit="steps"):
    """Markdown tables of a `sweep` result: each curve, then the frontier."""
    blocks = []
    for name, points in result["curves"].items():
        heading = f"{name} ({result['models'][name]})" if len(result["curves"]) > 1 else name
        blocks.append(f"{heading}\n\n{tradeoff.format_table(points, time_unit)}")
    if result.get("frontier"):
        blocks.append("composite frontier\n\n"
                      + tradeoff.format_table(result["frontier"], time_unit))
    return "\n\n".join(blocks)


def early_answer_note(points, num_classes, why="before the evidence is in"):
    """One line explaining sweep points near chance accuracy, or None.

    A low theta is crossed after the first few steps, when the network cannot yet know
    the answer: accuracy then sits near chance (1 / classes). Said once, so that a table
    with 0.5 accuracy at theta 0.6 on a two-class task does not look like a bug.
    """
    chance = 1.0 / num_classes
    early = [p for p in points if p["accuracy"] < chance + 0.1]
    if not early:
        return None
    steps = max(p["mean_spike_time"] for p in early)
    return (f"(theta <= {max(p['threshold'] for p in early):g} answers within "
            f"{steps:.1f} steps on average, {why}: near chance ({chance:.2f} with "
            f"{num_classes} classes); a higher theta waits for the evidence.)")
