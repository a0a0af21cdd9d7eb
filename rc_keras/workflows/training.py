"""One training path for every task: guards, backups, resume, the task's recipe, summary.

```python
from rc_keras.workflows import train
summary = train("two-sequence", "runs/two_seq", beta=0.1)
```

``rc-keras train`` is a thin shell over `train`. A task adds its own data source and
recipe through its hooks (`rc_keras.tasks.Task`), never through a branch here.
Keras and TensorFlow load when `train` runs, not when this module is imported.
"""

import shutil
import time
from pathlib import Path

import numpy as np

from rc_keras import tasks, validation
from rc_keras.workflows.evaluation import evaluate_model
from rc_keras.workflows.files import CLIError, check_output_dir, record_task, write_json


def history_dict(history):
    """The per-epoch logs of a Keras ``History`` as plain floats (for JSON)."""
    return {key: [float(v) for v in values] for key, values in history.history.items()}


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
    import keras  # noqa: PLC0415 - TensorFlow loads only when a job runs

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
    write_json(out_dir / "history.json", history_dict(history))
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
    write_json(out_dir / "summary.json", summary)
    return summary
