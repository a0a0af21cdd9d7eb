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
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from rc_keras import __version__, tasks, tradeoff, validation
from rc_keras.guards import NonFiniteLossError, StopOnNonFiniteLoss
from rc_keras.resume import fit_resumable
from rc_keras import kws_training  # registers the speech-commands task (--data ROOT)
from rc_keras.tuning import cli as tuning_cli

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
DEFAULT_DEMO_DIR = os.path.join("saved_models", "demo")
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


def load_model(path):
    """Loads a saved RC model, with a `CLIError` for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"model file '{path}' does not exist.")
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
    """One line: accuracy, mean spike time out of the sequence length, no-spike rate."""
    return (f"accuracy {metrics['accuracy']:.4f} | mean spike time "
            f"{metrics['mean_spike_time']:.2f} of {metrics['sequence_length']} {time_unit} | "
            f"no-spike rate {metrics['no_spike_rate']:.4f} | theta {metrics['threshold']:g} | "
            f"n={metrics['num_sequences']}")


def _history_dict(history):
    return {key: [float(v) for v in values] for key, values in history.history.items()}


# ---------------------------------------------------------------------- train
def train(task, out_dir, beta=None, threshold=None, mode="rc", epochs=None, train_size=None,
          units=None, seed=0, learning_rate=None, val_size=None, test_size=None, verbose=1,
          backup=True, deterministic=False, callbacks=None):
    """Trains the task's default model, evaluates it on fresh test data and saves it.

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

    Returns:
        The summary dict (also in summary.json): "task", "config", "test",
        "train_seconds", "model_path".
    """
    task = tasks.get_task(task)
    epochs = task.epochs if epochs is None else int(epochs)
    if deterministic:
        import tensorflow as tf  # noqa: PLC0415
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(int(seed))
    x_train, y_train = task.data("train", train_size, seed)
    x_val, y_val = task.data("val", val_size, seed)
    x_test, y_test = task.data("test", test_size, seed)
    model = tasks.build_model(task, units=units, threshold=threshold, beta=beta,
                              training_mode=mode, learning_rate=learning_rate)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    guard = StopOnNonFiniteLoss(out_dir / "last_good.weights.h5")
    callbacks = [guard] + list(callbacks or [])
    if backup:
        history = fit_resumable(model, x_train, y_train, task.batch_size, epochs,
                                out_dir / "backup", seed=seed, callbacks=callbacks,
                                validation_data=(x_val, y_val), verbose=verbose)
    else:
        history = model.fit(x_train, y_train, batch_size=task.batch_size, epochs=epochs,
                            validation_data=(x_val, y_val), shuffle=True, verbose=verbose,
                            callbacks=callbacks)
    train_seconds = time.perf_counter() - start
    test = evaluate_model(model, x_test, y_test, batch_size=max(task.batch_size, 256))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.keras"
    model.save(str(model_path))
    _write_json(out_dir / "history.json", _history_dict(history))
    summary = {
        "task": task.name,
        "config": {
            "units": task.units if units is None else int(units),
            "threshold": model.threshold,
            "beta": task.beta if beta is None else float(beta),
            "mode": mode,
            "epochs": epochs,
            "train_size": int(len(x_train)),
            "val_size": int(len(x_val)),
            "learning_rate": task.learning_rate if learning_rate is None else float(learning_rate),
            "batch_size": task.batch_size,
            "seed": int(seed),
            "deterministic": bool(deterministic),
        },
        "resumed_from_epoch": int(history.params.get("initial_epoch", 0)),
        "test": test,
        "train_seconds": round(train_seconds, 2),
        "model_path": str(model_path),
    }
    _write_json(out_dir / "summary.json", summary)
    return summary


# ---------------------------------------------------------------------- evaluate
def evaluate(model_path, task, threshold=None, test_size=None, seed=0, data_root=None):
    """Evaluates a saved model on fresh test data of ``task``.

    ``data_root``: dataset folder of a folder-based task (speech-commands), whose test
    split is read with true lengths; the result then has "mean_spike_time_ms" too.

    Returns:
        The dict of `evaluate_model`, with "task" and "model" added.
    """
    task = tasks.get_task(task)
    model = load_model(model_path)
    if task.name == kws_training.SPEECH_COMMANDS.name:
        try:
            x, lengths, y = kws_training.test_arrays_for(data_root, model, test_size)
        except FileNotFoundError as error:
            raise CLIError(str(error)) from None
        result = kws_training.evaluate_kws(model, x, lengths, y, threshold=threshold,
                                           lookahead_frames=kws_training.context_frames_of(model))
        return {"task": task.name, "model": str(model_path), **result}
    x, y = task.data("test", test_size, seed)
    result = evaluate_model(model, x, y, threshold=threshold)
    return {"task": task.name, "model": str(model_path), **result}


# ---------------------------------------------------------------------- sweep
def _curve_name(path, taken):
    path = Path(path)
    name = path.parent.name if path.stem == "model" and path.parent.name else path.stem
    base, index = name, 2
    while name in taken:
        name, index = f"{base}-{index}", index + 1
    return name


def sweep(model_paths, task, thresholds=DEFAULT_THRESHOLDS, out_dir=None, test_size=None,
          seed=0, batch_size=256, data_root=None):
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

    Returns:
        Dict with "task", "curves" (name -> points), "frontier" (points, or None for
        one model) and, with ``out_dir``, "json" and "png" paths.
    """
    task = tasks.get_task(task)
    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    thresholds = [validation.check_threshold(t) for t in thresholds]
    if not thresholds:
        raise CLIError("give at least one threshold.")
    models = [(path, load_model(path)) for path in model_paths]
    lengths = None
    if task.name == kws_training.SPEECH_COMMANDS.name:
        try:
            x, lengths, y = kws_training.test_arrays_for(data_root, models[0][1], test_size)
        except FileNotFoundError as error:
            raise CLIError(str(error)) from None
    else:
        x, y = task.data("test", test_size, seed)
    curves, sources = {}, {}
    for path, model in models:
        name = _curve_name(path, curves)
        curves[name] = tradeoff.threshold_sweep(model, x, y, thresholds, lengths=lengths,
                                                batch_size=batch_size)
        if lengths is not None:
            curves[name] = kws_training.sweep_points_ms(curves[name], model)
        sources[name] = str(path)
    frontier = tradeoff.composite_frontier(curves) if len(curves) > 1 else None
    result = {"task": task.name, "num_sequences": int(len(y)),
              "sequence_length": int(x.shape[1]), "models": sources, "curves": curves,
              "frontier": frontier}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result["json"] = _write_json(out_dir / "sweep.json", result)
        result["png"] = tradeoff.plot_tradeoff(
            curves, out_dir / "sweep.png", frontier=frontier, time_unit=task.time_unit,
            title=f"{task.name}: accuracy vs. mean spike time (n={len(y)})")
    return result


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
                 c_array=None):
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
                                verify_sequences=held_out if verify else None)


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

    log(f"[3/3] exporting to {out_dir} (Keras, SavedModel, TFLite float32, int8 and int16x8, "
        "C array)")
    # Integer ranges come from state trajectories on validation data; agreement is
    # checked on held-out test sequences in LiteRT and TFLM. int16x8 is in the bundle
    # because int8 rounding moves exits that approach theta slowly (README, deploying).
    exports = export_model(model, out_dir, calibration=x_val,
                           held_out=(x_test[:256], y_test[:256]), int16x8=True)
    log("\n".join("      " + line for line in exports["verify"]["table"].splitlines()))
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


# ---------------------------------------------------------------------- argument parsing
class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _task_arg(value):
    try:
        return tasks.get_task(value).name
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


def build_parser():
    """The ``rc-keras`` argument parser."""
    task_help = "; ".join(f"{t}: {tasks.get_task(t).description}" for t in tasks.task_names())
    parser = _Parser(prog="rc-keras",
                     description="Rank-coded recurrent networks: train, evaluate, sweep the "
                                 "threshold, run the demo.")
    parser.add_argument("--version", action="version", version=f"rc_keras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train a task's default RC model and save it",
                       description=f"Tasks: {task_help}.")
    p.add_argument("--task", type=_task_arg, required=True, help="task name")
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")
    p.add_argument("--context-frames", type=_non_negative_int, default=10,
                   help="speech-commands: frames of context stacked each side (default 10)")
    p.add_argument("--beta", type=_beta_arg, help="confidence penalty weight (>= 0)")
    p.add_argument("--threshold", type=_threshold_arg, help="spike threshold theta in (0, 1)")
    p.add_argument("--mode", choices=("rc", "eos"), default="rc",
                   help="rc: loss at the spike; eos: conventional, loss at the last step")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--train-size", type=_positive_int, help="training sequences")
    p.add_argument("--val-size", type=_positive_int, help="validation sequences")
    p.add_argument("--test-size", type=_positive_int, help="test sequences")
    p.add_argument("--units", type=_positive_int, help="LSTM cell width")
    p.add_argument("--learning-rate", type=_positive_float, help="Adam learning rate")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="Keras progress output (1: progress bars)")
    p.add_argument("--no-backup", action="store_true",
                   help="do not back up each epoch into OUT/backup (default: back up, "
                        "and resume from it when the same command runs again)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow kernels: bit-identical reruns, slower")
    p.add_argument("--out", required=True, help="output directory")

    p = sub.add_parser("evaluate", help="evaluate a saved model on fresh test data")
    p.add_argument("--model", required=True, help="a .keras file from 'rc-keras train'")
    p.add_argument("--task", type=_task_arg, required=True)
    p.add_argument("--threshold", type=_threshold_arg, help="override the saved theta")
    p.add_argument("--test-size", type=_positive_int)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")

    p = sub.add_parser("sweep", help="accuracy vs. mean spike time over thresholds",
                       description="One forward pass per model serves every threshold. "
                                   "Repeat --model (e.g. one per beta) for a composite "
                                   "frontier.")
    p.add_argument("--model", action="append", required=True,
                   help="a .keras file; repeat for several models")
    p.add_argument("--task", type=_task_arg, required=True)
    p.add_argument("--thresholds", type=_thresholds_arg, default=list(DEFAULT_THRESHOLDS),
                   help="comma-separated theta values (default: %(default)s)")
    p.add_argument("--test-size", type=_positive_int)
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--out", required=True, help="output directory for sweep.json, sweep.png")
    p.add_argument("--data", help="dataset folder (speech-commands: Speech Commands layout)")

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
    p.add_argument("--task", type=_task_arg, help="task whose data serve as defaults")
    p.add_argument("--seed", type=_non_negative_int, default=0)

    p = sub.add_parser("demo", help="train, evaluate and export the spotting demo model")
    p.add_argument("--out", default=DEFAULT_DEMO_DIR, help="output directory "
                                                           "(default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    _add_make_keywords_parser(sub)
    _add_tune_parser(sub)
    _add_firmware_parser(sub)
    return parser


# ---------------------------------------------------------------------- commands
def _cmd_train(args):
    if args.task == kws_training.SPEECH_COMMANDS.name:
        kws_training.cli_train(args)
        return
    summary = train(args.task, args.out, beta=args.beta, threshold=args.threshold,
                    mode=args.mode, epochs=args.epochs, train_size=args.train_size,
                    units=args.units, seed=args.seed, learning_rate=args.learning_rate,
                    val_size=args.val_size, test_size=args.test_size, verbose=args.verbose,
                    backup=not args.no_backup, deterministic=args.deterministic)
    task = tasks.get_task(args.task)
    print(f"trained {task.name} ({summary['config']['mode']}, beta "
          f"{summary['config']['beta']:g}) in {summary['train_seconds']:.1f} s")
    print("test: " + format_summary(summary["test"], task.time_unit))
    print(f"saved {summary['model_path']} and {Path(args.out) / 'history.json'}")


def _cmd_evaluate(args):
    result = evaluate(args.model, args.task, threshold=args.threshold,
                      test_size=args.test_size, seed=args.seed, data_root=args.data)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']} on {result['task']}: "
              + format_summary(result, tasks.get_task(args.task).time_unit))


def _cmd_sweep(args):
    result = sweep(args.model, args.task, args.thresholds, out_dir=args.out,
                   test_size=args.test_size, seed=args.seed, data_root=args.data)
    print(format_sweep(result, tasks.get_task(args.task).time_unit))
    print(f"\nwrote {result['json']} and {result['png']}")


def _fine_tuned_twin(model, x_cal, epochs, train_data, task, seed, learning_rate):
    """The int8-exact twin of ``model``, fine-tuned ``epochs`` epochs (see export_command)."""
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
    twin.fit(x, y, epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    return twin


def export_command(model_path, out_dir, int8=False, calibration=None, verify=False,
                   verify_sequences=None, task=None, seed=0, int16x8=False, c_array=None,
                   quantization_aware=False, qat_epochs=0, train_data=None,
                   qat_learning_rate=1e-3):
    """`rc-keras export`: the bundle of a saved model, with data defaults from ``task``.

    With ``quantization_aware`` the bundle is that of the model's int8-exact twin
    (`rc_keras.quantization.quantize_aware`, calibrated on ``calibration``; int8 only),
    fine-tuned ``qat_epochs`` epochs on ``train_data`` (or the task's training data)
    with the model's own loss.
    """
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
        model = _fine_tuned_twin(model, calibration, qat_epochs, train_data, task, seed,
                                 qat_learning_rate)
    return export_model(model, out_dir, calibration, verify_sequences, int8=int8, verify=verify,
                        int16x8=int16x8, c_array=c_array)


def _cmd_export(args):
    report = export_command(args.model, args.out, int8=args.int8, calibration=args.calibration,
                            verify=args.verify, verify_sequences=args.verify_sequences,
                            task=args.task, seed=args.seed, int16x8=args.int16x8,
                            c_array=args.c_array, quantization_aware=args.quantization_aware,
                            qat_epochs=args.qat_epochs, train_data=args.train_data,
                            qat_learning_rate=args.qat_learning_rate)
    if "verify" in report:
        print(report["verify"]["table"])
    print(f"wrote the bundle to {args.out} (report.json)")


def _cmd_demo(args):
    report = run_demo(args.out, quick=args.quick, seed=args.seed, verbose=args.verbose)
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
        description="Speaks each word with espeak-ng voices (accents x variants x speeds x "
                    "pitches), converts to 16 kHz with sox and writes <word>/<voice>_nohash_<n>"
                    ".wav, _background_noise_/, validation_list.txt and testing_list.txt.")
    p.add_argument("--out", required=True, help="output folder (missing or empty)")
    p.add_argument("--words", default=",".join(keyword_synthesis.DEFAULT_WORDS),
                   help="comma-separated words (default: the 10 keywords and %(default)s)")
    p.add_argument("--voices", type=_positive_int, default=60, help="number of voices")
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
    p.add_argument("--engines", default="espeak-ng",
                   help="comma-separated engines for the voices: espeak-ng, flite")


def _cmd_make_keywords(args):
    from rc_keras.datasets import keyword_synthesis  # noqa: PLC0415

    words = [w.strip() for w in args.words.split(",") if w.strip()]
    try:
        info = keyword_synthesis.synthesize_keywords(
            args.out, words=words, voices=args.voices, clips_per_voice=args.clips_per_voice,
            seed=args.seed, noise=args.noise, short_fraction=args.short_fraction,
            validation_percentage=args.validation_percentage,
            testing_percentage=args.testing_percentage, split_rule=args.split_rule,
            workers=args.workers, overwrite=args.overwrite,
            engines=[e.strip() for e in args.engines.split(",") if e.strip()])
    except FileNotFoundError as error:  # espeak-ng or sox missing
        raise CLIError(str(error)) from None
    splits = info["splits"]
    print(f"wrote {info['num_clips']} clips ({len(info['voices'])} voices x {len(words)} words) "
          f"to {args.out} in {info['seconds']:.1f} s: train {splits['train']}, validation "
          f"{splits['validation']}, test {splits['test']}")


COMMANDS["make-keywords"] = _cmd_make_keywords


# ---------------------------------------------------------------------- tune
def _add_tune_parser(sub):
    p = sub.add_parser("tune", help="KerasTuner search over beta and theta (Pareto front)",
                       description="Each trial trains once for its beta and sweeps theta on "
                                   "validation data. The same --directory resumes a search.")
    tuning_cli.add_arguments(p)


COMMANDS["tune"] = tuning_cli.run  # returns 1 when no trial met the budget


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
    try:
        status = COMMANDS[args.command](args)
    except (CLIError, ValueError) as error:
        if os.environ.get("RC_KERAS_DEBUG"):
            raise
        print(f"rc-keras {args.command}: error: {_plain(error)}", file=sys.stderr)
        return EXIT_USAGE
    except NonFiniteLossError as error:  # training diverged: not a usage error
        print(f"rc-keras {args.command}: {error}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
