"""The ``rc-keras`` command: train, evaluate, sweep and demo.

```bash
rc-keras train --task two-sequence --beta 0.1 --out runs/two_seq
rc-keras evaluate --model runs/two_seq/model.keras --task two-sequence
rc-keras sweep --model runs/two_seq/model.keras --task two-sequence \\
    --thresholds 0.6,0.7,0.8,0.9,0.95,0.99 --out runs/two_seq/sweep
rc-keras demo                     # train, evaluate and export the spotting demo
```

`main` only parses arguments; the work is done by the importable functions
`train`, `evaluate`, `sweep` and `run_demo`, which return plain dicts. Bad arguments
print one line to stderr and exit with status 2.

Keras and TensorFlow are imported inside the functions that need them: ``--help`` and
argument errors answer without loading TensorFlow. On a terminal run the command's
output is its own: TensorFlow's C++ log lines and library warnings are dropped
(`_quiet_libraries`); ``RC_KERAS_DEBUG=1`` shows them, and tracebacks.
"""

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np

from rc_keras import __version__, schedule_cli, tasks, tradeoff, validation
from rc_keras.tuning import cli as tuning_cli

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# The demo writes into an ignored folder of the working directory: a checkout stays as it
# was. The committed reference bundle is rewritten only by `rc-keras demo --update-reference`.
DEFAULT_DEMO_DIR = os.path.join("runs", "demo")
REFERENCE_DEMO_DIR = Path(__file__).resolve().parents[1] / "saved_models" / "demo"
EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2."""


# ---------------------------------------------------------------------- helpers
def _write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return str(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def check_model_file(path):
    """Raises `CLIError` unless ``path`` looks like a ``.keras`` archive (no TensorFlow).

    Says what is wrong: missing, a directory, empty, not a zip archive (or truncated),
    or a zip archive without Keras's ``config.json``.
    """
    path = Path(path)
    if path.is_dir():
        inside = path / "model.keras"
        hint = f", e.g. {inside}" if inside.is_file() else ""
        raise CLIError(f"--model '{path}' is a directory; give a .keras file{hint}.")
    if not path.is_file():
        raise CLIError(f"model file '{path}' does not exist.")
    size = path.stat().st_size
    if size == 0:
        raise CLIError(f"model file '{path}' is empty (0 bytes): not a Keras archive.")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"model file '{path}' is not a Keras archive: a .keras file is a zip "
                       f"archive, and this one ({size} bytes) is not, or is truncated.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CLIError(f"model file '{path}' is a damaged zip archive: {error}.") from None
    if damaged is not None:
        raise CLIError(f"model file '{path}' is damaged: '{damaged}' fails its checksum.")
    if "config.json" not in names:
        raise CLIError(f"model file '{path}' is a zip archive but not a Keras archive "
                       "(no config.json).")
    return path


MODEL_RECORD = "rc_keras.json"
"""Entry of a ``.keras`` archive saved by ``rc-keras`` (Keras ignores it): the task the
model was trained on and its feature shape, so that a model is not evaluated on another
task's data by mistake (`check_task`)."""


def record_task(model_path, task, feature_shape):
    """Adds `MODEL_RECORD` (task name, feature shape) to a saved ``.keras`` archive."""
    record = {"task": tasks.get_task(task).name,
              "feature_shape": None if feature_shape is None else list(feature_shape)}
    with zipfile.ZipFile(model_path, "a") as archive:
        archive.writestr(MODEL_RECORD, json.dumps(record))


def recorded_task(model_path):
    """The `MODEL_RECORD` dict of a ``.keras`` archive, or None when it has none."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            if MODEL_RECORD in archive.namelist():
                return json.loads(archive.read(MODEL_RECORD))
    except (OSError, ValueError, zipfile.BadZipFile):
        pass
    return None


def check_task(model_path, task, allow_mismatch=False):
    """Raises `CLIError` when ``model_path`` records another task than ``task``.

    ``allow_mismatch`` (``--allow-task-mismatch``) lets a different task through when its
    sequences have the recorded feature shape; a different feature shape is refused.
    """
    record = recorded_task(model_path)
    task = tasks.get_task(task)
    if record is None or record.get("task") == task.name:
        return
    if not allow_mismatch:
        raise CLIError(f"'{model_path}' was trained on task '{record.get('task')}', not "
                       f"'{task.name}': pass --task {record.get('task')} (or "
                       "--allow-task-mismatch to run it on the other task's data anyway).")


def check_feature_shape(model, x, model_path):
    """Raises `CLIError` when the sequences ``x`` do not have the model's feature shape."""
    expected = getattr(model, "feature_shape", None)
    if expected is not None and tuple(np.shape(x)[2:]) != tuple(expected):
        raise CLIError(f"'{model_path}' reads features of shape {tuple(expected)}; this task's "
                       f"sequences have {tuple(np.shape(x)[2:])}.")


def load_model(path):
    """Loads a saved RC model, with a `CLIError` for a missing or unreadable file."""
    path = check_model_file(path)
    import keras  # noqa: PLC0415 - see the module docstring

    try:
        return keras.models.load_model(str(path))
    except Exception as error:  # noqa: BLE001 - any load failure is a bad --model argument
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CLIError(
            f"cannot load model '{path}': {type(error).__name__}: {first_line}") from None


def evaluate_model(model, x, y, threshold=None, batch_size=256):
    """Accuracy, mean spike time (steps read) and no-spike rate of ``model.predict``.

    Args:
        model: an `rc_keras.RCModel`.
        x: (n, time, *features) inputs.
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
        "sequence_length": int(np.shape(x)[1]),
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


def _history_dict(history):
    return {key: [float(v) for v in values] for key, values in history.history.items()}


# ---------------------------------------------------------------------- train
def train(task, out_dir, beta=None, threshold=None, mode="rc", epochs=None, train_size=None,
          units=None, seed=0, learning_rate=None, val_size=None, test_size=None, verbose=1,
          backup=True, deterministic=False, callbacks=None, data_root=None,
          context_frames=None, batch_size=None, overwrite=False, log=print,
          normalization=None, augment_copies=None):
    """Trains the task's default model, evaluates it on fresh test data and saves it.

    Every task trains here, with the same guards and backups; a task's hooks
    (`rc_keras.tasks.Task`: ``load``, ``compile_model``, ``plan_fit``, ``evaluate``) add
    its own data source and recipe, e.g. the keyword recipe of speech-commands (best
    validation epoch kept, majority-class stop rule).

    Writes ``out_dir/model.keras``, ``out_dir/history.json`` (per-epoch Keras logs) and
    ``out_dir/summary.json`` (configuration and test metrics). During training,
    ``out_dir/backup/`` holds the `keras.callbacks.BackupAndRestore` state of the last
    completed epoch: run the same command again after a kill and training resumes
    there, with the same result as an uninterrupted run (`rc_keras.resume`).
    ``out_dir/last_good.weights.h5`` holds the last weights with a finite loss; a NaN
    or Inf loss stops training with `rc_keras.guards.NonFiniteLossError`.

    Args:
        task: a `rc_keras.tasks.Task` or registered name.
        out_dir: output directory.
        beta, threshold, units, learning_rate: model settings; task defaults if None.
        mode: training mode, "rc" or "eos".
        epochs, train_size, val_size, test_size: run sizes; task defaults if None.
        seed: seed of the weights, the shuffling and the data splits.
        verbose: Keras ``fit`` verbosity (1: progress bars).
        backup: back up every epoch into ``out_dir/backup`` and resume from it.
        deterministic: enable TensorFlow's deterministic kernels (bit-exact reruns).
        callbacks: more Keras callbacks for ``fit``.
        data_root: dataset folder of a folder-based task (speech-commands).
        context_frames: speech-commands: frames of context stacked each side (default 10).
        batch_size: training batch size; the task's if None.
        normalization: speech-commands: the front end's causal normalization ("none",
            "running_mean", "pcen"; default none).
        augment_copies: speech-commands: augmented copies of each training clip (0: off;
            default 2).
        overwrite: train again into an ``out_dir`` that holds a finished run (its
            summary.json), and start over instead of resuming from ``out_dir/backup``.
        log: callable for the line that says a run resumes.

    Returns:
        The summary dict (also in summary.json): "task", "config", "test",
        "train_seconds", "model_path", and "recipe" from a task's ``plan_fit``.

    Raises:
        CLIError: ``out_dir`` holds a finished run and ``overwrite`` is False.
        ValueError: for an option the task does not take (``data_root`` for a task that
            generates its data...), naming it and its flag.
    """
    check_output_dir(out_dir)
    if (Path(out_dir) / "summary.json").is_file() and not overwrite:
        raise CLIError(f"--out '{out_dir}' holds a finished run (summary.json, model.keras); "
                       "pass --overwrite to train again there, or choose another --out.")
    import keras  # noqa: PLC0415 - see the module docstring

    from rc_keras.guards import StopOnNonFiniteLoss  # noqa: PLC0415
    from rc_keras.resume import completed_epochs, fit_resumable  # noqa: PLC0415

    task = tasks.get_task(task)
    task.check_options(data_root=data_root, context_frames=context_frames,
                       normalization=normalization, augment_copies=augment_copies)
    epochs = validation.check_positive_int(task.epochs if epochs is None else epochs, "epochs")
    batch_size = validation.check_positive_int(
        task.batch_size if batch_size is None else batch_size, "batch_size")
    out_dir = Path(out_dir)
    options = {"data_root": data_root, "context_frames": context_frames,
               "cache_dir": out_dir / "cache", "normalization": normalization,
               "augment_copies": augment_copies}
    options = {key: value for key, value in options.items() if key in task.options}
    backup_dir = out_dir / "backup"
    if overwrite and backup_dir.is_dir():
        shutil.rmtree(backup_dir)
    done = completed_epochs(backup_dir) if backup and backup_dir.is_dir() else 0
    if done:
        log(f"resuming from epoch {done + 1} of {epochs}: {done} epoch(s) done in {backup_dir} "
            "(--overwrite starts over)")
    if deterministic:
        import tensorflow as tf  # noqa: PLC0415
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(int(seed))
    x_train, y_train = task.data("train", train_size, seed, **options)
    x_val, y_val = task.data("val", val_size, seed, **options)
    x_test, y_test = task.data("test", test_size, seed, **options)
    inputs = x_train["inputs"] if isinstance(x_train, dict) else x_train
    model = tasks.build_model(task, units=units, threshold=threshold, beta=beta,
                              training_mode=mode, learning_rate=learning_rate,
                              input_shape=np.shape(inputs))
    start = time.perf_counter()
    plan = (task.plan_fit(task, out_dir=out_dir, y_train=y_train,
                          state_dir=backup_dir if backup else None, model=model,
                          validation_data=(x_val, y_val), options=options)
            if task.plan_fit is not None else tasks.FitPlan())
    guard = StopOnNonFiniteLoss(out_dir / "last_good.weights.h5")
    callbacks = [guard] + list(plan.callbacks) + list(callbacks or [])
    if backup:
        history = fit_resumable(model, x_train, y_train, batch_size, epochs,
                                backup_dir, seed=seed, callbacks=callbacks,
                                validation_data=(x_val, y_val), verbose=verbose)
    else:
        history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                            validation_data=(x_val, y_val), shuffle=True, verbose=verbose,
                            callbacks=callbacks)
    recipe = None
    if plan.finish is not None:
        model, recipe = plan.finish(model)
    train_seconds = time.perf_counter() - start
    if task.evaluate is not None:
        test = task.evaluate(model, x_test, y_test)
    else:
        test = evaluate_model(model, x_test, y_test, batch_size=max(batch_size, 256))
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.keras"
    model.save(str(model_path))
    record_task(model_path, task, model.feature_shape)
    _write_json(out_dir / "history.json", _history_dict(history))
    summary = {
        "task": task.name,
        "config": {
            "units": task.units if units is None else int(units),
            "threshold": model.threshold,
            "beta": task.beta if beta is None else float(beta),
            "mode": mode,
            "epochs": epochs,
            "train_size": int(len(y_train)),
            "val_size": int(len(y_val)),
            "learning_rate": task.learning_rate if learning_rate is None else float(learning_rate),
            "batch_size": batch_size,
            "seed": int(seed),
            "deterministic": bool(deterministic),
            **{key: None if value is None else (value if isinstance(value, (int, float))
                                                else str(value))
               for key, value in options.items() if key != "cache_dir"},
        },
        "resumed_from_epoch": int(history.params.get("initial_epoch", 0)),
        "epochs_run": len(history.history.get("loss", [])),
        "test": test,
        "train_seconds": round(train_seconds, 2),
        "model_path": str(model_path),
    }
    if recipe is not None:
        summary["recipe"] = recipe
    _write_json(out_dir / "summary.json", summary)
    return summary


# ---------------------------------------------------------------------- evaluate
def evaluate(model_path, task, threshold=None, test_size=None, seed=0, data_root=None,
             allow_task_mismatch=False, threshold_schedule=None, fit_schedule=None,
             save_schedule=None):
    """Evaluates a saved model on fresh test data of ``task``.

    ``data_root``: dataset folder of a folder-based task (speech-commands), whose test
    split is read with true lengths; the result then has "mean_spike_time_ms" too.
    A model that records another task (`MODEL_RECORD`) is refused unless
    ``allow_task_mismatch``. ``threshold_schedule`` (a schedule file) or ``fit_schedule``
    (a budget: fitted on the validation split, same size and seed) evaluate with a
    per-step schedule instead (`rc_keras.schedule_cli`); ``save_schedule`` writes it.

    Returns:
        The dict of `evaluate_model`, with "task" and "model" added (and "schedule",
        describing the schedule, when one was used).
    """
    tasks.get_task(task).check_options(data_root=data_root)
    schedule_cli.check_flags(threshold, threshold_schedule, fit_schedule, save_schedule)
    check_model_file(model_path)
    check_task(model_path, task, allow_task_mismatch)
    from rc_keras import kws_training  # noqa: PLC0415 - see the module docstring

    task = tasks.get_task(task)
    model = load_model(model_path)
    if task.name == kws_training.SPEECH_COMMANDS.name:
        params = kws_training.saved_front_end(model_path)
        try:
            x, lengths, y = kws_training.test_arrays_for(data_root, model, test_size,
                                                         params=params)
        except FileNotFoundError as error:
            raise CLIError(str(error)) from None
        schedule, info = schedule_cli.resolve(
            model, x.shape[1], threshold_schedule, fit_schedule, save=save_schedule,
            load_validation=lambda: kws_training.test_arrays_for(
                data_root, model, test_size, params=params, split="validation"))
        result = kws_training.evaluate_kws(model, x, lengths, y,
                                           threshold=threshold if schedule is None else schedule,
                                           lookahead_frames=kws_training.context_frames_of(model))
        return {"task": task.name, "model": str(model_path), **result,
                **({"schedule": info} if info else {})}
    x, y = task.data("test", test_size, seed)
    check_feature_shape(model, x, model_path)
    schedule, info = schedule_cli.resolve(
        model, x.shape[1], threshold_schedule, fit_schedule, save=save_schedule,
        load_validation=lambda: _generated_validation(task, test_size, seed))
    result = evaluate_model(model, x, y, threshold=threshold if schedule is None else schedule)
    return {"task": task.name, "model": str(model_path), **result,
            **({"schedule": info} if info else {})}


def _generated_validation(task, size, seed):
    """The validation split of a generated task as ``(x, lengths, y)`` (lengths None)."""
    x, y = task.data("val", size, seed)
    return x, None, y


# ---------------------------------------------------------------------- sweep
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
    from rc_keras import kws_training  # noqa: PLC0415 - see the module docstring

    task = tasks.get_task(task)
    thresholds = [validation.check_threshold(t) for t in thresholds]
    if not thresholds:
        raise CLIError("give at least one threshold.")
    models = [(path, load_model(path)) for path in model_paths]
    lengths = None
    if task.name == kws_training.SPEECH_COMMANDS.name:
        try:
            x, lengths, y = kws_training.test_arrays_for(
                data_root, models[0][1], test_size,
                params=kws_training.saved_front_end(model_paths[0]))
        except FileNotFoundError as error:
            raise CLIError(str(error)) from None
    else:
        x, y = task.data("test", test_size, seed)
        for path, model in models:
            check_feature_shape(model, x, path)
    if schedule:
        if lengths is not None:  # the folder's validation split, same front end
            x_val, val_lengths, y_val = kws_training.test_arrays_for(
                data_root, models[0][1], test_size,
                params=kws_training.saved_front_end(model_paths[0]), split="validation")
        else:
            (x_val, y_val), val_lengths = task.data("val", test_size, seed), None
    curves, sources = {}, {}
    for path, model in models:
        name = _curve_name(path, curves)
        lookahead = (kws_training.context_frames_of(model) if lengths is not None else None)
        curves[name] = tradeoff.threshold_sweep(model, x, y, thresholds, lengths=lengths,
                                                batch_size=batch_size, lookahead_frames=lookahead)
        if lengths is not None:
            curves[name] = kws_training.sweep_points_ms(curves[name], model)
        sources[name] = str(path)
        if schedule:
            curves[f"{name} schedule"] = _schedule_curve(model, (x_val, val_lengths, y_val),
                                                         (x, lengths, y), batch_size)
            if lengths is not None:
                curves[f"{name} schedule"] = kws_training.sweep_points_ms(
                    curves[f"{name} schedule"], model)
            sources[f"{name} schedule"] = str(path)
    frontier = tradeoff.composite_frontier(curves) if len(curves) > 1 else None
    result = {"task": task.name, "num_sequences": int(len(y)),
              "sequence_length": int(x.shape[1]), "models": sources, "curves": curves,
              "frontier": frontier}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result["json"] = _write_json(out_dir / "sweep.json", result)
        ms_axis = ((kws_training.FRAME_STRIDE_MS, kws_training.FRAME_WINDOW_MS,
                    kws_training.context_frames_of(models[0][1]))
                   if lengths is not None else None)
        result["png"] = tradeoff.plot_tradeoff(
            curves, out_dir / "sweep.png", frontier=frontier, time_unit=task.time_unit,
            ms_axis=ms_axis,
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
    val_probs = tradeoff.all_step_probabilities(model, x_val, batch_size=batch_size)
    fitted = tradeoff.fit_threshold_schedule(val_probs, y_val, readout=model.readout,
                                             **valid(x_val, val_lengths))
    keep = np.unique(np.round(np.linspace(0, len(fitted) - 1, min(max_points, len(fitted)))))
    fitted = [fitted[int(i)] for i in keep]
    test_probs = tradeoff.all_step_probabilities(model, x_test, batch_size=batch_size)
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


# ---------------------------------------------------------------------- demo
DEMO_SIZES = {
    # Full: about a minute of training on 2 CPU cores.
    False: {"units": 32, "epochs": 20, "train_size": 8000, "val_size": 1000, "test_size": 2000},
    # Quick: a smoke test (seconds); the model is barely trained.
    True: {"units": 16, "epochs": 2, "train_size": 512, "val_size": 128, "test_size": 256},
}


def export_model(model, out_dir, calibration, held_out, int8=True, verify=True, int16x8=False,
                 c_array=None, feature_params=None):
    """Writes the deployment bundle of `rc_keras.export.export_bundle` into ``out_dir``.

    The bundle holds the .keras model, the SavedModel, the float32 and int8 (and with
    ``int16x8`` the 16x8) streaming TFLite step models with their sidecars, the C array
    (of the ``c_array`` model: "int8", "int16x8" or "float32"; default int8 with
    ``int8``) and ``report.json``; with ``verify`` the held-out sequences run through
    Keras, LiteRT and TFLM.
    """
    from rc_keras import export  # noqa: PLC0415 - pulls in the TFLite converter

    return export.export_bundle(model, out_dir, int8=int8, int16x8=int16x8, c_array=c_array,
                                calibration=calibration, verify=verify,
                                verify_sequences=held_out if verify else None,
                                feature_params=feature_params)


def run_demo(out_dir=DEFAULT_DEMO_DIR, quick=False, seed=0, verbose=1, log=print):
    """The quick-start job: train RC on spotting, evaluate on fresh data, export.

    Args:
        out_dir: where the deployment bundle (with its ``report.json``) and
            ``demo_report.json`` go.
        quick: a seconds-long smoke run instead of the full (about a minute) one.
        seed: run seed.
        verbose: Keras ``fit`` verbosity.
        log: callable for progress lines.

    Returns:
        The report dict (also written to ``out_dir/demo_report.json``).
    """
    check_output_dir(out_dir)
    import keras  # noqa: PLC0415 - see the module docstring

    start = time.perf_counter()
    task = tasks.get_task("spotting")
    sizes = DEMO_SIZES[bool(quick)]
    out_dir = Path(out_dir)
    log(f"[1/3] training an RC model on '{task.name}' ({sizes['train_size']} sequences, "
        f"{sizes['epochs']} epochs, LSTM {sizes['units']}, theta {task.threshold}, "
        f"beta {task.beta})")
    keras.utils.set_random_seed(int(seed))
    x_train, y_train = task.data("train", sizes["train_size"], seed)
    x_val, y_val = task.data("val", sizes["val_size"], seed)
    x_test, y_test = task.data("test", sizes["test_size"], seed)
    model = tasks.build_model(task, units=sizes["units"])
    train_start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=task.batch_size, epochs=sizes["epochs"],
              validation_data=(x_val, y_val), shuffle=True, verbose=verbose)
    train_seconds = time.perf_counter() - train_start

    log(f"[2/3] evaluating on {len(y_test)} fresh test sequences")
    test = evaluate_model(model, x_test, y_test)
    # Moving theta trades accuracy for speed without retraining; one pass serves all.
    points = tradeoff.threshold_sweep(model, x_test, y_test, DEFAULT_THRESHOLDS)
    log("      " + format_summary(test))
    log("      other thresholds, same network:")
    log("\n".join("      " + line for line in tradeoff.format_table(points).splitlines()))
    note = early_answer_note(points, task.num_classes,
                             "before a run of 5 equal bits can have been seen")
    if note:
        log("      " + note)

    log(f"[3/3] exporting to {out_dir} (Keras, SavedModel, TFLite float32, int8 and int16x8, "
        "C array)")
    # Integer ranges come from state trajectories on validation data; agreement is
    # checked on held-out test sequences in LiteRT and TFLM. int16x8 is in the bundle
    # because int8 rounding moves exits that approach theta slowly (README, deploying).
    exports = export_model(model, out_dir, calibration=x_val,
                           held_out=(x_test[:256], y_test[:256]), int16x8=True)
    log("\n".join("      " + line for line in format_verify(exports).splitlines()))
    record_task(out_dir / "model.keras", task, model.feature_shape)
    report = {
        "task": task.name,
        "quick": bool(quick),
        "config": {**sizes, "threshold": task.threshold, "beta": task.beta,
                   "learning_rate": task.learning_rate, "batch_size": task.batch_size,
                   "seed": int(seed)},
        "test": test,
        "threshold_sweep": points,
        "exports": exports,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "version": __version__,
    }
    report["report_path"] = _write_json(out_dir / "demo_report.json", report)
    return report


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


# ---------------------------------------------------------------------- argument parsing
class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2, and whose
    help shows every option's default."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def add_argument(self, *args, **kwargs):
        default, text = kwargs.get("default"), kwargs.get("help") or ""
        if (not any(default is v for v in (None, False, argparse.SUPPRESS))
                and "default" not in text
                and kwargs.get("action") not in ("help", "version")):
            kwargs["help"] = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return super().add_argument(*args, **kwargs)


def _per_task(field, unit=""):
    """Help text: a run setting's default for each task defined without TensorFlow."""
    shown = ", ".join(f"{name} {getattr(tasks.get_task(name), field)}{unit}"
                      for name in tasks.task_names() if name not in tasks._DEFERRED)
    return f"default: the task's ({shown}; speech-commands: the keyword recipe's)"


def _fit_verbosity(verbose):
    """Keras ``fit`` verbosity: progress bars (1) only on a terminal, else a line per epoch."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def _task_help():
    return f"one of: {', '.join(tasks.task_names())}"


def _task_arg(value):
    try:
        return tasks.check_task_name(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _threshold_arg(value):
    try:
        return validation.check_threshold(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(_plain(error)) from None


def _thresholds_arg(value):
    parts = [p for p in value.replace(" ", "").split(",") if p]
    if not parts:
        raise argparse.ArgumentTypeError("give thresholds as a comma-separated list, e.g. 0.8,0.9")
    return [_threshold_arg(p) for p in parts]


def _beta_arg(value):
    try:
        return validation.check_beta(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(_plain(error)) from None


def _number_arg(convert, accept, expected):
    """An argparse type: ``convert`` the text, then require ``accept(number)``."""
    def parse(value):
        try:
            number = convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; received {value!r}") from None
        if not accept(number):
            raise argparse.ArgumentTypeError(f"expected {expected}; received {number}")
        return number
    return parse


_positive_int = _number_arg(int, lambda n: n >= 1, "a positive integer")
_non_negative_int = _number_arg(int, lambda n: n >= 0, "an integer >= 0")
_positive_float = _number_arg(float, lambda n: np.isfinite(n) and n > 0, "a positive number")


def _plain(error):
    """A validation message without the backticks meant for Python users."""
    return str(error).replace("`", "")


# Library errors name Python parameters; on the command line they name the flags.
_FLAG_WORDING = (
    ("(pass download=True to fetch the official archive)",
     "(make one with 'rc-keras make-keywords --out DIR', or unpack Speech Commands v0.02 "
     "there)"),
    ("pass `data_root` (rc-keras --data ROOT)", "pass --data ROOT"),
    (" (rc-keras --data ROOT)", " (--data ROOT)"),
    (" (rc-keras train --data ROOT)", " (--data ROOT)"),
    ("`data_root`", "--data"),
    ("`max_spike_time` is required for objective='budget'; received None.",
     "--max-spike-time is required for --objective budget (e.g. --max-spike-time 12, in "
     "steps, or 150ms with --step-ms)."),
    ("`max_spike_time`", "--max-spike-time"),
    ("objective='budget'", "--objective budget"),
    ("`directory`", "--directory"),
    ("another directory or overwrite=True", "another --directory, or --overwrite"),
    ("pass overwrite=True", "pass --overwrite"),
    ("overwrite=True", "--overwrite"),
    ("`step_ms`", "--step-ms"),
    ("`calibration`", "--calibration"),
    ("`verify_sequences`", "--verify-sequences"),
    ("`train_data`", "--train-data"),
)
# Parameters whose flag depends on the command.
_COMMAND_FLAG_WORDING = {
    "make-keywords": (("`root`", "--out"), ("`words`", "--words"), ("`voices`", "--voices"),
                      ("`engines`", "--engines")),
    "train": (("`root`", "--data"),),
    "evaluate": (("`root`", "--data"),),
    "sweep": (("`root`", "--data"),),
}


def _speak_in_flags(error, command):
    """The message of a library error, with Python parameters replaced by ``command``'s flags."""
    message = str(error)
    for python, flag in _FLAG_WORDING + _COMMAND_FLAG_WORDING.get(command, ()):
        # A message that already names both ("data_root (--data)") keeps the flag once.
        message = message.replace(python, flag)
    # A message that names a parameter and its flag ("`data_root` (--data)") keeps the flag.
    message = re.sub(r"(?:`\w+`|--[\w-]+) \((--[\w-]+)\)", r"\1", message)
    return _plain(message)


def check_output_dir(path, flag="--out"):
    """Raises `CLIError` unless ``path`` can be (or is) a writable directory. No side effects.

    Run before any work, so that a bad output path fails at once, not after training.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CLIError(f"{flag} '{path}' is a file; give a directory (created if missing).")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise CLIError(f"{flag} '{path}' cannot be created: '{existing}' is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} '{path}': '{existing}' is not writable.")
    return path


def build_parser():
    """The ``rc-keras`` argument parser."""
    task_help = "; ".join(f"{t}: {tasks.task_description(t)}" for t in tasks.task_names())
    parser = _Parser(prog="rc-keras",
                     description="Rank-coded recurrent networks: train, evaluate, sweep the "
                                 "threshold, run the demo.")
    parser.add_argument("--version", action="version", version=f"rc_keras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train a task's default RC model and save it",
                       description=f"Tasks: {task_help}.")
    p.add_argument("--task", type=_task_arg, required=True, help=_task_help())
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")
    p.add_argument("--context-frames", type=_non_negative_int,
                   help="speech-commands: frames of context stacked each side (default 10)")
    p.add_argument("--normalization", choices=("none", "running_mean", "pcen"),
                   help="speech-commands: causal feature normalization (default none)")
    p.add_argument("--augment-copies", type=_non_negative_int,
                   help="speech-commands: augmented copies of each training clip (speed, "
                        "pitch, EQ, reverb, noise, gain, shift, SpecAugment; default 2, "
                        "0: off)")
    p.add_argument("--beta", type=_beta_arg,
                   help="confidence penalty weight (>= 0); " + _per_task("beta"))
    p.add_argument("--threshold", type=_threshold_arg,
                   help="spike threshold theta in (0, 1); " + _per_task("threshold"))
    p.add_argument("--mode", choices=("rc", "eos"), default="rc",
                   help="rc: loss at the spike; eos: conventional, loss at the last step")
    p.add_argument("--epochs", type=_positive_int, help="training epochs; " + _per_task("epochs"))
    p.add_argument("--train-size", type=_positive_int,
                   help="training sequences; " + _per_task("train_size"))
    p.add_argument("--val-size", type=_positive_int,
                   help="validation sequences; " + _per_task("val_size"))
    p.add_argument("--test-size", type=_positive_int,
                   help="test sequences; " + _per_task("test_size"))
    p.add_argument("--units", type=_positive_int, help="LSTM cell width; " + _per_task("units"))
    p.add_argument("--learning-rate", type=_positive_float,
                   help="Adam learning rate; " + _per_task("learning_rate"))
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the weights, the data order and the data splits")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="Keras progress output: 0 none, 1 progress bars (per-epoch lines when "
                        "output is not a terminal), 2 one line per epoch")
    p.add_argument("--no-backup", action="store_true",
                   help="do not back up each epoch into OUT/backup (default: back up, "
                        "and resume from it when the same command runs again)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow kernels: bit-identical reruns, slower")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="train again into an --out that holds a finished run, and start over "
                        "instead of resuming")

    p = sub.add_parser("evaluate", help="evaluate a saved model on fresh test data")
    p.add_argument("--model", required=True, help="a .keras file from 'rc-keras train'")
    p.add_argument("--task", type=_task_arg, required=True,
                   help=_task_help() + "; the model's own task unless --allow-task-mismatch")
    p.add_argument("--threshold", type=_threshold_arg,
                   help="spike threshold theta in (0, 1) (default: the saved model's)")
    p.add_argument("--test-size", type=_positive_int,
                   help="fresh test sequences; " + _per_task("test_size"))
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the test split")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="evaluate a model that records another --task (same feature shape)")
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")
    schedule_cli.add_evaluate_arguments(p)

    p = sub.add_parser("sweep", help="accuracy vs. mean spike time over thresholds",
                       description="One forward pass per model serves every threshold. "
                                   "Repeat --model (e.g. one per beta) for a composite "
                                   "frontier.")
    p.add_argument("--model", action="append", required=True,
                   help="a .keras file; repeat for several models")
    p.add_argument("--task", type=_task_arg, required=True,
                   help=_task_help() + "; the models' own task unless --allow-task-mismatch")
    p.add_argument("--thresholds", type=_thresholds_arg, default=list(DEFAULT_THRESHOLDS),
                   help="comma-separated theta values (default: "
                        f"{','.join(f'{t:g}' for t in DEFAULT_THRESHOLDS)})")
    p.add_argument("--test-size", type=_positive_int,
                   help="fresh test sequences; " + _per_task("test_size"))
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the test split")
    p.add_argument("--out", required=True, help="output directory for sweep.json, sweep.png")
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="sweep models that record another --task (same feature shape)")
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")
    p.add_argument("--schedule", action="store_true",
                   help="also fit per-step threshold schedules on the validation split and "
                        "show them on the test split beside the constant thresholds")

    p = sub.add_parser("export", help="write the deployment bundle of a trained model",
                       description="Writes model.keras, saved_model/, step_float32.tflite, "
                                   "step_int8.tflite (with --int8), the C array and report.json.")
    p.add_argument("--model", required=True, help="a .keras file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--int8", action="store_true", help="also write the full-integer model")
    p.add_argument("--int16x8", action="store_true",
                   help="also write the 16x8 integer model (int16 activations and states, int8 "
                        "weights): tracks the float model's exits where int8 does not")
    p.add_argument("--c-array", choices=["int8", "int16x8", "float32"], default=None,
                   help="the step model in rc_model_data.{c,h} (default: int8 with --int8, "
                        "else float32); int16x8 needs --int16x8")
    p.add_argument("--quantization-aware", action="store_true",
                   help="export the model's int8-exact twin (rc_keras.quantization."
                        "quantize_aware; implies --int8): the int8 model then agrees with the "
                        "exported Keras model")
    p.add_argument("--qat-epochs", type=_non_negative_int, default=0,
                   help="fine-tune the twin this many epochs with the model's loss "
                        "(quantization-aware training) on --train-data or the task's training "
                        "data (default: %(default)s)")
    p.add_argument("--qat-learning-rate", type=float, default=1e-3,
                   help="Adam learning rate of that fine-tuning (default: %(default)s)")
    p.add_argument("--train-data", help="training sequences for --qat-epochs (.npz with x and y)")
    p.add_argument("--calibration", help="calibration sequences for --int8 (.npy, or .npz with x); "
                                         "default with --task: the task's validation data")
    p.add_argument("--verify", action="store_true",
                   help="run held-out sequences through Keras, LiteRT and TFLM")
    p.add_argument("--verify-sequences", help="held-out sequences (.npz with x and y, or .npy); "
                                              "default with --task: the task's test data")
    p.add_argument("--task", type=_task_arg,
                   help="task whose data serve as defaults: " + _task_help())
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="use --task's data for a model that records another task")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the --task data splits")

    p = sub.add_parser("demo", help="train, evaluate and export the spotting demo model")
    p.add_argument("--out", default=None, help=f"output directory (default: {DEFAULT_DEMO_DIR}, "
                                               "in the working directory)")
    p.add_argument("--update-reference", action="store_true",
                   help="rewrite the committed reference bundle saved_models/demo of this "
                        "source checkout (maintainers; not with --out)")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="run seed")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="Keras progress output: 0 none, 1 progress bars (per-epoch lines when "
                        "output is not a terminal), 2 one line per epoch")
    _add_make_keywords_parser(sub)
    _add_tune_parser(sub)
    _add_firmware_parser(sub)
    return parser


# ---------------------------------------------------------------------- commands
def _cmd_train(args):
    check_output_dir(args.out)
    args.verbose = _fit_verbosity(args.verbose)
    summary = train(args.task, args.out, beta=args.beta, threshold=args.threshold,
                    mode=args.mode, epochs=args.epochs, train_size=args.train_size,
                    units=args.units, seed=args.seed, learning_rate=args.learning_rate,
                    val_size=args.val_size, test_size=args.test_size, verbose=args.verbose,
                    backup=not args.no_backup, deterministic=args.deterministic,
                    data_root=args.data, context_frames=args.context_frames,
                    normalization=args.normalization, augment_copies=args.augment_copies,
                    overwrite=args.overwrite)
    task = tasks.get_task(args.task)
    recipe = summary.get("recipe") or {}
    # The recipe counts epochs from 0 (as Keras does); people count from 1.
    best = (f"; best epoch {recipe['best_epoch'] + 1}" if recipe.get("best_epoch") is not None
            else "")
    if recipe.get("stopped_epoch") is not None:
        best += (f", stopped after epoch {recipe['stopped_epoch'] + 1} "
                 "(below the majority-class share)")
    print(f"trained {task.name} ({summary['config']['mode']}, beta "
          f"{summary['config']['beta']:g}) in {summary['train_seconds']:.1f} s{best}")
    print("test: " + format_summary(summary["test"], task.time_unit))
    print(f"saved {summary['model_path']} and {Path(args.out) / 'history.json'}")


def _cmd_evaluate(args):
    result = evaluate(args.model, args.task, threshold=args.threshold,
                      test_size=args.test_size, seed=args.seed, data_root=args.data,
                      allow_task_mismatch=args.allow_task_mismatch,
                      threshold_schedule=args.threshold_schedule,
                      fit_schedule=args.fit_schedule, save_schedule=args.save_schedule)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']} on {result['task']}: "
              + format_summary(result, tasks.get_task(args.task).time_unit))


def _cmd_sweep(args):
    result = sweep(args.model, args.task, args.thresholds, out_dir=args.out,
                   test_size=args.test_size, seed=args.seed, data_root=args.data,
                   allow_task_mismatch=args.allow_task_mismatch, schedule=args.schedule)
    print(format_sweep(result, tasks.get_task(args.task).time_unit))
    print(f"\nwrote {result['json']} and {result['png']}")


def _fine_tuned_twin(model, x_cal, epochs, train_data, task, seed, learning_rate, log=print):
    """The int8-exact twin of ``model``, fine-tuned ``epochs`` epochs (see export_command)."""
    import keras  # noqa: PLC0415 - see the module docstring

    from rc_keras import export, losses, metrics, quantization  # noqa: PLC0415 - converter

    try:
        twin = quantization.quantize_aware(model, x_cal)
    except ValueError as error:
        raise CLIError(f"--quantization-aware: {error}") from None
    if not epochs:
        return twin
    if train_data is not None:
        x, y = export.load_sequences(train_data, "train_data")
    elif task is not None:
        x, y = task.data("train", seed=seed)
    else:
        raise CLIError("--qat-epochs needs --train-data FILE (.npz with x and y) or --task.")
    if y is None:
        raise CLIError("--train-data must hold labels: an .npz with x and y.")
    # The model's own loss (its beta) when it was saved compiled; else beta 0.
    loss = model.loss if isinstance(getattr(model, "loss", None), losses.ConfidencePenalty) \
        else losses.ConfidencePenalty(0.0)
    twin.compile(keras.optimizers.Adam(learning_rate), loss,
                 metrics=[metrics.SpikeAccuracy(), metrics.MeanSpikeTime()])
    log(f"fine-tuning the int8-exact twin: {epochs} epoch(s) on {len(x)} sequences "
        f"(beta {loss.beta:g}, learning rate {learning_rate:g})")
    twin.fit(x, y, epochs=epochs, batch_size=64, shuffle=True, verbose=2)
    return twin


# Documented agreement targets of an integer step model with the Keras model (README,
# "Which integer model"; benchmarks/bench_deploy.py).
INTEGER_TARGETS = {"class_agreement": 0.99, "step_within_1": 0.99}


def agreement_hint(rows):
    """One line when an integer step model misses `INTEGER_TARGETS`, else None."""
    missed = [r for r in rows if "float32" not in r["model"] and r["runtime"] != "tensorflow"
              and any(r[key] < target for key, target in INTEGER_TARGETS.items())]
    if not missed:
        return None
    worst = min(missed, key=lambda r: (r["class_agreement"], r["step_within_1"]))
    models = sorted({r["model"] for r in missed})
    tries = []
    if any("int8" in m and "int16x8" not in m for m in models):
        tries.append("--quantization-aware (the int8-exact twin; add --qat-epochs N to "
                     "fine-tune it)")
    if not any("int16x8" in r["model"] for r in rows) or any("int16x8" in m for m in models):
        tries.append("--int16x8")
    return (f"note: {', '.join(models)} below the targets (exit class and exit step +-1 each "
            f">= 99% of sequences): worst {100 * worst['class_agreement']:.1f}% class, "
            f"{100 * worst['step_within_1']:.1f}% step +-1 ({worst['model']}, "
            f"{worst['runtime']}); try " + " or ".join(tries) + ".")


def format_verify(report, time_unit="steps"):
    """The verification table of an export ``report``, a legend and the target hint."""
    rows = report["verify"]["rows"]
    from rc_keras import export  # noqa: PLC0415 - loaded by the export already

    lines = [export.format_agreement_table(report, time_unit=time_unit), "",
             f"n held-out sequences; class agree: exit class equal to the Keras model's; step "
             f"exact / step +-1: exit step equal to / within one step of the Keras model's; "
             f"mean spike time: {time_unit} read before answering; accuracy: against the "
             "labels."]
    hint = agreement_hint(rows)
    if hint:
        lines.append(hint)
    if "qat" in report:
        lines += ["", format_qat(report["qat"], time_unit)]
    return "\n".join(lines)


def format_qat(qat, time_unit="steps"):
    """The original model beside its int8-exact twin on the same held-out sequences."""
    lines = [f"| model | accuracy % | mean spike time ({time_unit}) |", "|---|---|---|"]
    for name, row in (("original (Keras, float)", qat["original"]),
                      (f"int8-exact twin ({qat['epochs']} epoch(s) fine-tuned)", qat["twin"])):
        lines.append(f"| {name} | {100 * row['accuracy']:.2f} | "
                     f"{row['mean_spike_time']:.2f} |")
    return "\n".join(lines)


def export_command(model_path, out_dir, int8=False, calibration=None, verify=False,
                   verify_sequences=None, task=None, seed=0, int16x8=False, c_array=None,
                   quantization_aware=False, qat_epochs=0, train_data=None,
                   qat_learning_rate=1e-3, allow_task_mismatch=False, log=print):
    """`rc-keras export`: the bundle of a saved model, with data defaults from ``task``.

    With ``quantization_aware`` the bundle is that of the model's int8-exact twin
    (`rc_keras.quantization.quantize_aware`, calibrated on ``calibration``; int8 only),
    fine-tuned ``qat_epochs`` epochs on ``train_data`` (or the task's training data)
    with the model's own loss.
    """
    check_output_dir(out_dir)
    check_model_file(model_path)
    if task is not None:
        check_task(model_path, task, allow_task_mismatch)
    model = load_model(model_path)
    if quantization_aware and int16x8:
        raise CLIError("--quantization-aware exports int8 only; drop --int16x8.")
    if qat_epochs and not quantization_aware:
        raise CLIError("--qat-epochs fine-tunes the int8-exact twin: add --quantization-aware.")
    int8 = int8 or quantization_aware
    quantized = int8 or int16x8
    if task is not None:
        task = tasks.get_task(task)
        if quantized and calibration is None:
            calibration = task.data("val", 1000, seed)[0]
        if verify and verify_sequences is None:
            verify_sequences = task.data("test", 500, seed)
    if quantized and calibration is None:
        raise CLIError("--int8/--int16x8 need --calibration FILE (or --task to use its "
                       "validation data).")
    if verify and verify_sequences is None:
        raise CLIError("--verify needs --verify-sequences FILE (or --task to use its test data).")
    if quantization_aware:
        from rc_keras import export  # noqa: PLC0415 - pulls in the converter

        # Loaded once: the twin's ranges and the bundle's int8 calibration use the same array.
        calibration, _ = export.load_sequences(calibration, "calibration")
        original = model
        model = _fine_tuned_twin(original, calibration, qat_epochs, train_data, task, seed,
                                 qat_learning_rate, log=log)
    from rc_keras import kws_training  # noqa: PLC0415 - see the module docstring

    report = export_model(model, out_dir, calibration, verify_sequences, int8=int8,
                          verify=verify, int16x8=int16x8, c_array=c_array,
                          feature_params=kws_training.saved_front_end(model_path))
    if quantization_aware and verify:
        x_held, y_held = export.load_sequences(verify_sequences, "verify_sequences")
        if y_held is not None:
            report["qat"] = {"epochs": int(qat_epochs),
                             "original": evaluate_model(original, x_held, y_held),
                             "twin": evaluate_model(model, x_held, y_held)}
            _write_json(Path(out_dir) / "report.json", report)
    record = recorded_task(model_path)
    if record is not None and (Path(out_dir) / "model.keras").is_file():
        record_task(Path(out_dir) / "model.keras", record["task"], record["feature_shape"])
    return report


def _cmd_export(args):
    report = export_command(args.model, args.out, int8=args.int8, calibration=args.calibration,
                            verify=args.verify, verify_sequences=args.verify_sequences,
                            task=args.task, seed=args.seed, int16x8=args.int16x8,
                            c_array=args.c_array, quantization_aware=args.quantization_aware,
                            qat_epochs=args.qat_epochs, train_data=args.train_data,
                            qat_learning_rate=args.qat_learning_rate,
                            allow_task_mismatch=args.allow_task_mismatch)
    if "verify" in report:
        time_unit = tasks.get_task(args.task).time_unit if args.task else "steps"
        print(format_verify(report, time_unit))
    print(f"wrote the bundle to {args.out} (report.json)")


def _cmd_demo(args):
    if args.update_reference and args.out is not None:
        raise CLIError(f"--update-reference writes to {REFERENCE_DEMO_DIR}; drop --out.")
    if args.update_reference and not REFERENCE_DEMO_DIR.is_dir():
        raise CLIError(f"--update-reference needs a source checkout: {REFERENCE_DEMO_DIR} "
                       "does not exist.")
    out = REFERENCE_DEMO_DIR if args.update_reference else (args.out or DEFAULT_DEMO_DIR)
    report = run_demo(out, quick=args.quick, seed=args.seed, verbose=_fit_verbosity(args.verbose))
    test = report["test"]
    print(f"demo done in {report['wall_seconds']:.1f} s: accuracy {test['accuracy']:.4f}, "
          f"mean spike time {test['mean_spike_time']:.2f} of {test['sequence_length']} steps; "
          f"report {report['report_path']}")


COMMANDS = {"train": _cmd_train, "evaluate": _cmd_evaluate, "sweep": _cmd_sweep,
            "export": _cmd_export, "demo": _cmd_demo}


# ---------------------------------------------------------------------- make-keywords
def _add_make_keywords_parser(sub):
    from rc_keras.datasets import keyword_synthesis  # noqa: PLC0415 - keeps startup light

    p = sub.add_parser(
        "make-keywords", help="synthesize a keyword dataset in the Speech Commands layout",
        description="Speaks each word with the voices of every installed TTS engine "
                    "(espeak-ng accents x variants, flite, festival; rate, pitch and "
                    "expressiveness varied per utterance), adds open-unknown words "
                    "(wamerican) and real recorded unknown words (ktuberling-data), converts "
                    "to 16 kHz with sox and writes <word>/<voice>_nohash_<n>.wav, "
                    "_background_noise_/, validation_list.txt and testing_list.txt.")
    p.add_argument("--out", required=True, help="output folder (missing or empty)")
    p.add_argument("--words", default=",".join(keyword_synthesis.DEFAULT_WORDS),
                   help="comma-separated words (default: the 10 keywords and %(default)s)")
    p.add_argument("--voices", type=_positive_int, default=90,
                   help="number of voices (default %(default)s, shared among the engines)")
    p.add_argument("--clips-per-voice", type=_positive_int, default=1)
    p.add_argument("--noise", type=float, default=0.0, help="max noise peak level in [0, 1]")
    p.add_argument("--short-fraction", type=float, default=0.1,
                   help="share of clips shorter than 1 s")
    p.add_argument("--split-rule", choices=keyword_synthesis.SPLIT_RULES, default="auto")
    p.add_argument("--validation-percentage", type=float, default=10.0)
    p.add_argument("--testing-percentage", type=float, default=10.0)
    p.add_argument("--workers", type=_positive_int, default=None)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("--engines", default="all",
                   help="comma-separated engines for the voices (espeak-ng, flite, festival) or "
                        "'all' (default: every installed one)")
    p.add_argument("--unknown-per-voice", type=_non_negative_int, default=8,
                   help="open-unknown words (from wamerican) each voice says (default 8)")
    p.add_argument("--unknown-pool", type=_positive_int, default=400,
                   help="number of distinct open-unknown words (default 400)")
    p.add_argument("--real-unknown", type=_non_negative_int, default=600,
                   help="real recorded unknown words from ktuberling-data, languages held "
                        "out per split (default 600; 0: none)")


def _cmd_make_keywords(args):
    from rc_keras.datasets import keyword_synthesis  # noqa: PLC0415

    check_output_dir(args.out)
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    try:
        info = keyword_synthesis.synthesize_keywords(
            args.out, words=words, voices=args.voices, clips_per_voice=args.clips_per_voice,
            seed=args.seed, noise=args.noise, short_fraction=args.short_fraction,
            validation_percentage=args.validation_percentage,
            testing_percentage=args.testing_percentage, split_rule=args.split_rule,
            workers=args.workers, overwrite=args.overwrite,
            engines=(None if args.engines.strip() == "all"
                     else [e.strip() for e in args.engines.split(",") if e.strip()]),
            unknown_per_voice=args.unknown_per_voice, unknown_pool=args.unknown_pool,
            real_unknown=args.real_unknown)
    except FileNotFoundError as error:  # espeak-ng or sox missing
        raise CLIError(str(error)) from None
    splits = info["splits"]
    engines = sorted({v["engine"] for v in info["voices"]})
    print(f"wrote {info['num_clips']} clips ({len(info['voices'])} voices of "
          f"{', '.join(engines)} x {len(words)} words + {args.unknown_per_voice} open-unknown "
          f"words each, {sum(info['real_unknown']['clips'].values())} real unknown words) "
          f"to {args.out} in {info['seconds']:.1f} s: train {splits['train']}, validation "
          f"{splits['validation']}, test {splits['test']}")


COMMANDS["make-keywords"] = _cmd_make_keywords


# ---------------------------------------------------------------------- tune
def _add_tune_parser(sub):
    p = sub.add_parser("tune", help="KerasTuner search over beta and theta (Pareto front)",
                       description="Each trial trains once for its beta and sweeps theta on "
                                   "validation data. The same --directory resumes a search.")
    tuning_cli.add_arguments(p)


def _cmd_tune(args):
    check_output_dir(args.directory, "--directory")
    return tuning_cli.run(args)  # returns 1 when no trial met the budget


COMMANDS["tune"] = _cmd_tune


@contextlib.contextmanager
def _quiet_libraries():
    """Keeps a command's stderr to the tool's own text.

    TensorFlow, the TFLite converter and LiteRT write log lines from C++ straight to file
    descriptor 2 (absl and oneDNN notices, converter traces, "Created TensorFlow Lite
    XNNPACK delegate"), which no Python setting silences in TF 2.21. While the command
    runs, descriptor 2 goes to /dev/null and ``sys.stderr`` writes to a duplicate of the
    original, so Python's messages and tracebacks still reach the terminal. Python-level
    warnings and log records of Keras and TensorFlow are dropped. Only when ``sys.stderr``
    is the process's own (not under pytest's capsys) and ``RC_KERAS_DEBUG`` is unset.
    """
    if os.environ.get("RC_KERAS_DEBUG") or sys.stderr is not sys.__stderr__:
        yield
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real descriptor 2
        yield
        return
    python_stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding,
                              errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    saved_stderr, sys.stderr = sys.stderr, python_stderr
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl", "keras")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=r"rc_keras\b")
            yield
    finally:
        sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(terminal, 2)
        python_stderr.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# ---------------------------------------------------------------------- firmware
def _add_firmware_parser(sub):
    p = sub.add_parser(
        "firmware", help="build a bundle's Cortex-M firmware (TFLM) and run it in QEMU",
        description="Compiles firmware/ against a TFLM tree for an emulated board and, with "
                    "--run, checks it against the TFLM Python interpreter on held-out sequences; "
                    "adds a row (flash, RAM, arena, instructions per frame and per clip, "
                    "agreement) to BUNDLE/report.json under 'device'.")
    p.add_argument("--bundle", required=True, help="directory written by 'rc-keras export'")
    p.add_argument("--board", choices=["mps2-an386", "mps3-an547"], default="mps2-an386",
                   help="mps2-an386: Cortex-M4; mps3-an547: Cortex-M55 with Helium")
    p.add_argument("--kernels", choices=["cmsis_nn", "ref"], default="cmsis_nn")
    p.add_argument("--tflm-tree", help="an exported TFLM source tree (default: the cached "
                                       "extract of ../shared/tflm/tflm-tree-KERNELS-*.tar.gz)")
    p.add_argument("--model", choices=["int8", "int16x8"], help="step model (default: the C array's)")
    p.add_argument("--lut-activations", action="store_true",
                   help="int8 LOGISTIC/TANH as table lookups: the same integers, far fewer "
                        "instructions (rc_keras.export.lut_activations)")
    p.add_argument("--run", action="store_true", help="run held-out sequences in QEMU")
    p.add_argument("--verify-sequences", help="held-out sequences (.npz with x, or .npy)")
    p.add_argument("--task", type=_task_arg, help="task whose test data serve as sequences")
    p.add_argument("--sequences-count", type=_positive_int, default=100,
                   help="sequences from --task (default: %(default)s)")
    p.add_argument("--seed", type=_non_negative_int, default=0)


def _cmd_firmware(args):
    from rc_keras.export import bundle, firmware  # noqa: PLC0415

    x = None
    if args.run:
        if args.verify_sequences:
            x, _ = bundle.load_sequences(args.verify_sequences, "verify_sequences")
        elif args.task is not None:
            x = tasks.get_task(args.task).data("test", args.sequences_count, args.seed)[0]
        else:
            raise CLIError("--run needs --verify-sequences FILE or --task.")
    missing = firmware.missing_tools()
    if missing:
        raise CLIError(f"--board builds need {', '.join(missing)} on PATH (Debian: make "
                       "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
                       "qemu-system-arm).")
    try:
        row = firmware.device_report(args.bundle, board=args.board, kernels=args.kernels,
                                     tree=args.tflm_tree, quantization=args.model, sequences=x,
                                     run=args.run, lut=args.lut_activations)
    except FileNotFoundError as error:
        raise CLIError(str(error)) from None
    print(firmware.format_device_table([row]))
    print(f"firmware {row['elf']}; row added to {args.bundle}/report.json ('device')")


COMMANDS["firmware"] = _cmd_firmware


def main(argv=None):
    """Entry point of ``rc-keras``; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    with _quiet_libraries():
        return _run_command(args)


def _run_command(args):
    try:
        status = COMMANDS[args.command](args)
    except (CLIError, ValueError) as error:
        if os.environ.get("RC_KERAS_DEBUG"):
            traceback.print_exc()
        print(f"rc-keras {args.command}: error: {_speak_in_flags(error, args.command)}",
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        guards = sys.modules.get("rc_keras.guards")  # loaded if training ran
        if guards is None or not isinstance(error, guards.NonFiniteLossError):
            raise
        # Training diverged: not a usage error.
        print(f"rc-keras {args.command}: {error}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
