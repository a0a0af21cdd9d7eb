"""The keyword training recipe: compile, fit, evaluate, and the whole run in one call.

`compile_kws` (Adam with the gradients clipped to a global L2 norm of
`GRADIENT_CLIP_NORM`, the confidence penalty), `fit_kws` (best validation epoch kept,
`MajorityClassStop` after `GRACE_EPOCHS`), `evaluate_kws` (accuracy, spike time in frames
and milliseconds, accuracy at the end of the clip) and `train_speech_commands`, which
loads a Speech Commands folder (`rc_keras.kws_training.arrays`), trains `kws_lstm` and
writes model, history and summary.

Part of `rc_keras.kws_training`, which re-exports every name here.
"""

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np

from rc_keras import losses, tasks, validation
from rc_keras.kws_training.arrays import check_data_root, load_split_arrays
from rc_keras.kws_training.callbacks import (MajorityClassStop, checkpoint_monitor,
                                             end_of_clip_accuracy, majority_share)
from rc_keras.kws_training.front_end_params import (DEFAULT_NORMALIZATION, FRONT_END_FILE,
                                                    context_frames_of, front_end)
from rc_keras.models import kws_lstm
from rc_keras.tradeoff import frames_to_ms

__all__ = ["GRADIENT_CLIP_NORM", "GRACE_EPOCHS", "UNKNOWN_KEEP", "compile_kws", "fit_kws",
           "evaluate_kws", "augment_params", "train_speech_commands"]

GRADIENT_CLIP_NORM = 0.25
"""L2 clipping of the whole gradient (``keras.optimizers.Adam(global_clipnorm=0.25)``)."""
GRACE_EPOCHS = 10
"""Epochs before the majority-class stop rule applies: augmented, multi-voice data sits at
the majority share for several epochs before the keywords separate (measured in
benchmarks/bench_kws_transfer.py; 1 stopped such runs at epoch 3)."""
UNKNOWN_KEEP = 0.3
"""Share of the "unknown" training clips each augmented block keeps (`load_split_arrays`)."""


def compile_kws(model, beta=0.0, learning_rate=1e-3, clipnorm=GRADIENT_CLIP_NORM):
    """Compiles a keyword model with the paper's recipe; returns it.

    Adam with ``global_clipnorm=clipnorm`` (the L2 norm of all gradients together),
    `rc_keras.ConfidencePenalty(beta)`, and the RC metrics of `rc_keras.tasks`.
    """
    beta = validation.check_beta(beta)
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0; received {learning_rate!r}.")
    if clipnorm is not None and (not np.isfinite(clipnorm) or clipnorm <= 0):
        raise ValueError(f"`clipnorm` must be > 0 or None; received {clipnorm!r}.")
    optimizer = keras.optimizers.Adam(learning_rate=float(learning_rate),
                                      global_clipnorm=None if clipnorm is None else float(clipnorm))
    model.compile(optimizer=optimizer, loss=losses.ConfidencePenalty(beta=beta),
                  metrics=tasks.rc_metrics())
    return model


def fit_kws(model, train, val, checkpoint_path, epochs=10, batch_size=128, stop_share=None,
            grace_epochs=1, verbose=0, seed=0, patience=None):
    """Fits with best-validation checkpointing and the majority-class stop rule.

    An RC model is checkpointed by its validation spike accuracy (the answer at its
    first crossing); an EOS model (``training_mode="eos"``) by its validation accuracy
    at the end of the clip (`EndOfClipAccuracy`), which is what it was trained for.
    The run is `rc_keras.convergence.fit_to_convergence` (the rule every RC-vs-EOS
    comparison uses) with a checkpoint file of the best epoch.

    Args:
        model: a compiled `RCModel`.
        train: ``(x, y)`` with x an array or an ``{"inputs", "lengths"}`` dict.
        val: ``(x, y)`` validation data, same form.
        checkpoint_path: the ``.keras`` file of the best epoch; the model is reloaded
            from it at the end.
        epochs: maximum number of epochs.
        batch_size: training batch size.
        stop_share: majority-class share for `MajorityClassStop` on the training spike
            accuracy; computed from the training labels when None.
        grace_epochs: epochs before the stop rule or early stopping applies.
        verbose: Keras verbosity.
        seed: shuffling seed.
        patience: stop once the checkpoint's validation metric has not improved for this
            many epochs; None trains all ``epochs`` (the best epoch is kept either way).

    Returns:
        ``(best_model, info)``: the reloaded best model and a dict with "history"
        (per-epoch logs), "epoch_seconds", "best_epoch", "stopped_epoch",
        "stop_share", "monitor" (the checkpoint's log entry), "patience" and
        "stopped_early" (patience ran out).
    """
    from rc_keras.convergence import fit_to_convergence  # noqa: PLC0415 - imports this module

    x_train, y_train = train
    if stop_share is None:
        stop_share = majority_share(y_train)
    checkpoint_path = Path(checkpoint_path)
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    stop = MajorityClassStop(stop_share, monitor="spike_accuracy", grace_epochs=grace_epochs)
    monitor, _ = checkpoint_monitor(model, val)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(checkpoint_path), monitor=monitor, mode="max", save_best_only=True)
    # Without patience the stopping rule can never fire: its wait stays below the budget.
    model, run = fit_to_convergence(
        model, train, val, max_epochs=epochs, patience=int(epochs) if patience is None
        else patience, batch_size=batch_size, callbacks=[stop, checkpoint], verbose=verbose,
        seed=seed, min_epochs=grace_epochs)
    best = keras.models.load_model(str(checkpoint_path))
    return best, {"history": run.history, "epoch_seconds": [round(s, 3) for s in run.epoch_seconds],
                  "best_epoch": run.best_epoch, "stopped_epoch": stop.stopped_epoch,
                  "stop_share": float(stop_share), "monitor": monitor,
                  "patience": patience,
                  "stopped_early": run.stopped_early and stop.stopped_epoch is None}




def evaluate_kws(model, x, lengths, y, threshold=None, batch_size=256, lookahead_frames=0):
    """Accuracy and mean spike time (frames read and ms) of ``model.predict``, plus the
    accuracy at the end of the clip.

    Milliseconds are per clip ``min(frames_to_ms(k, lookahead), frames_to_ms(length))``
    for a clip answered after ``k`` frames: look-ahead frames stacked past the clip's
    end hear nothing, so no answer (a clip that never spikes included) is reported
    later than the clip lasts.

    Returns:
        Dict with "accuracy" (at the first crossing of theta), "end_of_clip_accuracy"
        (the answer at the last valid frame: what an EOS model is trained for),
        "mean_spike_time" (frames read), "mean_spike_time_ms", "no_spike_rate",
        "threshold", "sequence_length" (frames), "mean_length" (valid frames),
        "num_sequences" and "training_mode".
    """
    from rc_keras import tradeoff  # noqa: PLC0415

    if threshold is not None:
        model.threshold = threshold
    out = model.predict({"inputs": x, "lengths": lengths}, batch_size=batch_size, verbose=0)
    frames = out["spike_time"] + 1
    lengths = np.asarray(lengths).reshape(-1)
    ms = np.minimum(frames_to_ms(frames, lookahead_frames=lookahead_frames),
                    frames_to_ms(lengths))
    step_probs = tradeoff.step_probabilities(model, x, batch_size=batch_size)
    return {
        "threshold": model.threshold,
        "training_mode": getattr(model, "training_mode", "rc"),
        "accuracy": float(np.mean(out["label"] == np.asarray(y).reshape(-1))),
        "end_of_clip_accuracy": end_of_clip_accuracy(step_probs, lengths, y),
        "mean_spike_time": float(np.mean(frames)),
        "mean_spike_time_ms": float(np.mean(ms)),
        "no_spike_rate": float(1.0 - np.mean(out["spiked"])),
        "sequence_length": int(np.shape(x)[1]),
        "mean_length": float(np.mean(lengths)),
        "num_sequences": int(len(y)),
    }




def augment_params(copies=None):
    """`AugmentParams` for ``--augment-copies`` (0: off; None: the defaults)."""
    from rc_keras import augment as augment_lib  # noqa: PLC0415

    # AugmentParams checks the value itself (an integer >= 0).
    return augment_lib.AugmentParams() if copies is None else augment_lib.AugmentParams(
        copies=copies)


def train_speech_commands(data_root, out_dir, beta=0.2, mode="rc", epochs=30, threshold=0.9,
                          label_set="paper11", units=128, hidden=32, learning_rate=1e-3,
                          batch_size=128, seed=0, cache_dir=None, verbose=1, limit=None,
                          data=None, context_frames=10, grace_epochs=GRACE_EPOCHS, augment=None,
                          normalization=None, unknown_keep=UNKNOWN_KEEP, patience=None,
                          **options):
    """Trains `kws_lstm` on a Speech Commands folder; saves and evaluates the best epoch.

    Writes ``out_dir/model.keras`` (the best epoch by validation spike accuracy; for an
    EOS model by validation accuracy at the end of the clip), ``out_dir/history.json``
    and ``out_dir/summary.json``.

    Args:
        data_root: the dataset folder (real Speech Commands v0.02 or synthesized).
        out_dir: output directory.
        beta: confidence-penalty weight.
        mode: "rc" or "eos".
        epochs: maximum epochs (the stop rule may end a collapsed run earlier).
        threshold: spike threshold theta used in training and evaluation.
        label_set: "paper11" or "standard12".
        units, hidden: LSTM and head widths.
        learning_rate: Adam learning rate.
        batch_size: batch size.
        seed: seed of the weights and the shuffling.
        cache_dir: feature cache folder (default ``out_dir/cache``).
        verbose: Keras verbosity.
        limit: optional cap on clips per split (quick runs).
        data: optional pre-loaded ``{"train": (x, lengths, y), "validation": ...,
            "test": ...}`` arrays (a benchmark loads them once for many models).
        grace_epochs: epochs before the majority-class stop rule applies (10: augmented,
            multi-voice data sits at the majority share for several epochs before the
            keywords separate; measured in benchmarks/bench_kws_transfer.py).
        context_frames: frames of context stacked each side (the paper: 10; 0 gives
            20 features a frame and no look-ahead).
        augment: `rc_keras.augment.AugmentParams` for the training split (None: the
            defaults, `rc_keras.augment.AugmentParams()`; ``NO_AUGMENTATION`` turns it
            off). Seeded by ``seed``; validation and test stay clean.
        unknown_keep: with augmentation, the share of "unknown" training clips each block
            keeps (see `load_split_arrays`); 1 keeps all.
        normalization: the front end's causal normalization ("none", "running_mean",
            "pcen"; None: `DEFAULT_NORMALIZATION`), saved with the model in
            ``out_dir/front_end.json`` for evaluate, sweep and export.
        patience: early stopping (see `fit_kws`); None trains all ``epochs``.
        **options: passed to the loader.

    Returns:
        The summary dict (also in summary.json).
    """
    from rc_keras import augment as augment_lib  # noqa: PLC0415

    augment = augment_lib.AugmentParams() if augment is None else augment
    if not isinstance(augment, augment_lib.AugmentParams):
        raise ValueError("`augment` must be a rc_keras.augment.AugmentParams or None; "
                         f"received {type(augment).__name__}.")
    validation.check_choice(mode, validation.MODES, "training_mode")
    beta = validation.check_beta(beta)
    threshold = validation.check_threshold(threshold)
    out_dir = Path(out_dir)
    if data is None:
        check_data_root(data_root, "rc-keras train --data ROOT")
        cache_dir = out_dir / "cache" if cache_dir is None else cache_dir
        options.setdefault("features", front_end(
            context_frames, normalization=normalization or DEFAULT_NORMALIZATION))
        options.setdefault("cache", False)  # the arrays are cached instead
        data = {split: load_split_arrays(data_root, split, label_set, cache_dir=cache_dir,
                                         limit=limit, augment=augment, augment_seed=seed,
                                         unknown_keep=unknown_keep, **options)
                for split in ("train", "validation", "test")}
    (x_tr, n_tr, y_tr), (x_va, n_va, y_va), (x_te, n_te, y_te) = (
        data["train"], data["validation"], data["test"])
    num_classes = {"paper11": 11, "standard12": 12}.get(label_set, int(max(y_tr.max(), 1) + 1))
    keras.utils.set_random_seed(int(seed))
    model = kws_lstm(num_classes, num_features=x_tr.shape[-1], units=units, hidden=hidden,
                     threshold=threshold, training_mode=mode)
    compile_kws(model, beta=beta, learning_rate=learning_rate)
    start = time.perf_counter()
    best, info = fit_kws(model, ({"inputs": x_tr, "lengths": n_tr}, y_tr),
                         ({"inputs": x_va, "lengths": n_va}, y_va),
                         out_dir / "model.keras", epochs=epochs, batch_size=batch_size,
                         verbose=verbose, seed=seed, grace_epochs=grace_epochs,
                         patience=patience)
    train_seconds = time.perf_counter() - start
    test = evaluate_kws(best, x_te, n_te, y_te, lookahead_frames=context_frames_of(best))
    if options.get("features") is not None:
        (out_dir / FRONT_END_FILE).write_text(
            json.dumps(dataclasses.asdict(options["features"]), indent=2) + "\n")
    (out_dir / "history.json").write_text(json.dumps(info["history"], indent=2) + "\n")
    summary = {
        "task": "speech-commands",
        "config": {"data_root": None if data_root is None else str(data_root), "beta": beta,
                   "mode": mode, "epochs": int(epochs), "threshold": threshold,
                   "label_set": label_set, "units": units, "hidden": hidden,
                   "learning_rate": learning_rate, "batch_size": batch_size, "seed": int(seed),
                   "global_clipnorm": GRADIENT_CLIP_NORM,
                   "context_frames": context_frames_of(best),
                   "augment": dataclasses.asdict(augment), "unknown_keep": unknown_keep,
                   "front_end": (dataclasses.asdict(options["features"])
                                 if options.get("features") is not None else None),
                   "checkpoint_monitor": info["monitor"], "patience": patience,
                   "train_size": int(len(y_tr)), "val_size": int(len(y_va))},
        "test": test,
        "best_epoch": info["best_epoch"],
        "stopped_epoch": info["stopped_epoch"],
        "stop_share": info["stop_share"],
        "stopped_early": info["stopped_early"],
        "epochs_run": len(info["epoch_seconds"]),
        "epoch_seconds": info["epoch_seconds"],
        "train_seconds": round(train_seconds, 2),
        "model_path": str(out_dir / "model.keras"),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
