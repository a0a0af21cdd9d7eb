"""Training the keyword-spotting network on Speech Commands (real or synthesized).

The recipe of the paper's Speech Commands experiment: `rc_keras.models.kws_lstm`
(LSTM 128, Dense 32 relu, Dense n softmax) on log-mel frames, Adam with the gradients
clipped to a global L2 norm of 0.25 (``global_clipnorm``: the norm of all gradients
together, as PyTorch's ``clip_grad_norm_``), the confidence penalty
``cross-entropy - beta * entropy``, the best epoch by validation spike accuracy kept
(``keras.callbacks.ModelCheckpoint(save_best_only=True)``), and a run stopped once its
spike accuracy falls below the share of the majority class (`MajorityClassStop`): a run
that answers no better than "always unknown" has collapsed.

```python
from rc_keras import kws_training
summary = kws_training.train_speech_commands("data/speech_commands", "runs/kws_b02", beta=0.2)
```
or ``rc-keras train --task speech-commands --data data/speech_commands --beta 0.2 --out runs/kws``.

Clips are turned into feature arrays once per split and cached as ``.npz`` files
(`load_split_arrays`), so every epoch and every model of a beta sweep reads the same
features without recomputing them.
"""

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np

from rc_keras import losses, metrics, tasks, validation
# One frames -> milliseconds map for the whole library (re-exported here).
from rc_keras.tradeoff import frames_to_ms
from rc_keras.models import kws_lstm

__all__ = ["MajorityClassStop", "EpochTimer", "majority_share", "compile_kws",
           "fit_kws", "load_split_arrays", "evaluate_kws", "train_speech_commands",
           "front_end", "context_frames_of", "sweep_points_ms", "test_arrays_for",
           "end_of_clip_accuracy", "EndOfClipAccuracy", "waveform_features", "saved_front_end",
           "FRONT_END_FILE", "DEFAULT_NORMALIZATION",
           "FRAME_STRIDE_MS", "FRAME_WINDOW_MS", "frames_to_ms", "SPEECH_COMMANDS"]

FRAME_STRIDE_MS = 10.0
"""Hop between feature frames (the paper's front end: 10 ms)."""
FRAME_WINDOW_MS = 25.0
"""Analysis window of one frame (25 ms): frame k (1-based) covers audio up to
``25 + 10 * (k - 1)`` ms."""
GRADIENT_CLIP_NORM = 0.25
"""L2 clipping of the whole gradient (``keras.optimizers.Adam(global_clipnorm=0.25)``)."""
GRACE_EPOCHS = 10
"""Epochs before the majority-class stop rule applies: augmented, multi-voice data sits at
the majority share for several epochs before the keywords separate (measured in
benchmarks/bench_kws_transfer.py; 1 stopped such runs at epoch 3)."""
UNKNOWN_KEEP = 0.3
"""Share of the "unknown" training clips each augmented block keeps (`load_split_arrays`)."""


def majority_share(labels):
    """Share of the most frequent class in ``labels`` (integers or one-hot)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[-1] > 1:
        labels = labels.argmax(axis=-1)
    labels = labels.reshape(-1)
    if labels.size == 0:
        raise ValueError("`labels` is empty; the majority share needs at least one label.")
    return float(np.bincount(labels.astype(np.int64)).max() / labels.size)


@keras.saving.register_keras_serializable(package="rc_keras")
class MajorityClassStop(keras.callbacks.Callback):
    """Stops a run whose spike accuracy falls below the majority-class share.

    The paper's stop rule: a network that answers worse than always naming the most
    frequent class (e.g. "unknown") has collapsed, and more epochs will not rescue it.
    The first ``grace_epochs`` epochs are not checked, since an untrained network sits
    at chance.

    Args:
        share: the majority-class share in (0, 1] (see `majority_share`).
        monitor: the log entry to watch; "spike_accuracy" (training) or
            "val_spike_accuracy".
        grace_epochs: number of initial epochs not checked.

    Attributes:
        stopped_epoch: 0-based epoch at whose end the run was stopped, or None.
    """

    def __init__(self, share, monitor="spike_accuracy", grace_epochs=1):
        super().__init__()
        try:
            share = float(share)
        except (TypeError, ValueError):
            raise ValueError(f"`share` must be a number in (0, 1]; received {share!r}.") from None
        if not 0.0 < share <= 1.0:
            raise ValueError(f"`share` must lie in (0, 1]; received {share}.")
        if int(grace_epochs) != grace_epochs or grace_epochs < 0:
            raise ValueError(f"`grace_epochs` must be an integer >= 0; received {grace_epochs!r}.")
        self.share = share
        self.monitor = str(monitor)
        self.grace_epochs = int(grace_epochs)
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"MajorityClassStop monitors {self.monitor!r}, which is not in the "
                             f"epoch logs {sorted(logs)}; compile with "
                             "rc_keras.metrics.SpikeAccuracy().")
        if epoch < self.grace_epochs:
            return
        if float(logs[self.monitor]) < self.share:
            self.stopped_epoch = int(epoch)
            self.model.stop_training = True

    def get_config(self):
        return {"share": self.share, "monitor": self.monitor, "grace_epochs": self.grace_epochs}

    @classmethod
    def from_config(cls, config):
        # keras.callbacks.Callback has none: without it a registered callback cannot be
        # deserialized (found by tests/test_serialization.py).
        return cls(**config)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every training epoch (seconds, validation excluded).

    Attributes:
        seconds: list of per-epoch training times.
    """

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        # Validation runs inside the epoch; stop the clock there.
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        if self._start is not None:  # no validation this epoch
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


def end_of_clip_accuracy(step_probs, lengths, y):
    """Accuracy of the answer at each clip's last valid frame (the conventional readout).

    Args:
        step_probs: (n, frames, classes) per-step probabilities
            (`rc_keras.tradeoff.step_probabilities`).
        lengths: valid frames per clip.
        y: integer labels.
    """
    lengths = np.clip(np.asarray(lengths).reshape(-1), 1, step_probs.shape[1])
    last = step_probs[np.arange(len(lengths)), lengths - 1]
    return float(np.mean(last.argmax(-1) == np.asarray(y).reshape(-1)))


class EndOfClipAccuracy(keras.callbacks.Callback):
    """Adds ``val_end_of_clip_accuracy`` to the epoch logs (for checkpointing EOS models).

    An EOS model is trained to answer at the end of the clip, so it is chosen by the
    accuracy there, not by where its output first crosses theta. Place this callback
    before the checkpoint: later callbacks see the entry in the same logs.

    Args:
        x: validation features (n, frames, features).
        lengths: valid frames per clip.
        y: integer labels.
    """

    def __init__(self, x, lengths, y):
        super().__init__()
        self.x, self.lengths, self.y = x, np.asarray(lengths), np.asarray(y)
        self.values = []

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        from rc_keras import tradeoff  # noqa: PLC0415

        probs = tradeoff.step_probabilities(self.model, self.x)
        self.values.append(end_of_clip_accuracy(probs, self.lengths, self.y))
        if logs is not None:
            logs["val_end_of_clip_accuracy"] = self.values[-1]


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


def checkpoint_monitor(model, val):
    """The log entry that picks a keyword model's best epoch, and the callback that adds it.

    An RC model is judged by its validation spike accuracy (the answer at its first
    crossing): ``("val_spike_accuracy", None)``. An EOS model (``training_mode="eos"``) by
    its validation accuracy at the end of the clip, which is what it was trained for:
    ``("val_end_of_clip_accuracy", EndOfClipAccuracy(...))``; place that callback before
    the checkpoint.

    Args:
        model: the `RCModel` being trained.
        val: ``(x, y)`` validation data, x an array or an ``{"inputs", "lengths"}`` dict;
            None (no validation data) judges any model by its spike accuracy.
    """
    if getattr(model, "training_mode", "rc") != "eos" or val is None:
        return "val_spike_accuracy", None
    x_val, y_val = val
    inputs, lengths = ((x_val["inputs"], x_val["lengths"]) if isinstance(x_val, dict)
                       else (x_val, np.full(len(y_val), np.shape(x_val)[1])))
    return "val_end_of_clip_accuracy", EndOfClipAccuracy(inputs, lengths, y_val)


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


# ---------------------------------------------------------------------- data
def _cache_key(root, split, label_set, options):
    text = json.dumps({"root": str(Path(root).resolve()), "split": split,
                       "label_set": label_set, "options": options}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_split_arrays(root, split, label_set="paper11", cache_dir=None, limit=None,
                      augment=None, augment_seed=0, unknown_keep=1.0, **options):
    """One split of a Speech Commands folder as feature arrays, cached.

    Runs `rc_keras.datasets.speech_commands` (log-mel features with true lengths) once
    and stacks the result into arrays; with ``cache_dir`` the arrays are written to an
    ``.npz`` there (keyed by root, split, label set and options) and read back next time.

    Args:
        root: the dataset folder (``<word>/<hash>_nohash_<n>.wav`` and list files).
        split: "train", "validation" (or "val") or "test".
        label_set: "paper11" or "standard12".
        cache_dir: optional folder for the cached arrays.
        limit: optional maximum number of clips (the first ones in loader order).
        augment: an `rc_keras.augment.AugmentParams`; for the "train" split only, each
            clip is followed by ``augment.copies`` augmented copies (ignored for other
            splits, so validation and test stay clean). None or ``copies=0``: off.
        augment_seed: seed of the augmentation (each copy of each clip draws from
            ``default_rng([augment_seed, copy, clip])``).
        unknown_keep: with ``augment``, the share of "unknown" clips each block (the
            clean split and every copy) keeps, each block its own seeded draw: the
            majority class is thinned without dropping any unknown clip from all blocks.
        **options: passed to `rc_keras.datasets.speech_commands`.

    Returns:
        ``(x, lengths, y)``: float32 (n, frames, features), int32 (n,), int32 (n,).
    """
    from rc_keras.datasets import speech_commands  # noqa: PLC0415 - the loader pulls in audio code

    split = {"val": "validation"}.get(split, split)
    validation.check_choice(split, ("train", "validation", "test"), "split")
    if augment is not None and split == "train" and augment.enabled:
        return _augmented_split(root, label_set, cache_dir, limit, augment, augment_seed,
                                options, unknown_keep)
    cache = None
    if cache_dir is not None:
        key = _cache_key(root, split, label_set, dict(options, limit=limit))
        cache = Path(cache_dir) / f"speech_commands_{split}_{label_set}_{key}.npz"
        if cache.is_file():
            with np.load(cache) as data:
                return data["x"], data["lengths"], data["y"]
    dataset = speech_commands(root, split, label_set=label_set, **options)
    xs, ns, ys = [], [], []
    count = 0
    for inputs, labels in dataset.batch(256).as_numpy_iterator():
        xs.append(inputs["inputs"])
        ns.append(inputs["lengths"])
        ys.append(labels)
        count += len(labels)
        if limit is not None and count >= limit:
            break
    if not xs:
        raise ValueError(f"the {split} split of {root} holds no clips.")
    x = np.concatenate(xs).astype(np.float32)
    lengths = np.concatenate(ns).astype(np.int32).reshape(-1)
    y = np.concatenate(ys).astype(np.int32).reshape(-1)
    if limit is not None:
        x, lengths, y = x[:limit], lengths[:limit], y[:limit]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x, lengths=lengths, y=y)
    return x, lengths, y


def _background_noises(root, sample_rate):
    """The dataset's ``_background_noise_`` waveforms (decoded, at ``sample_rate``)."""
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras.datasets.speech_commands import probe_wav, resample  # noqa: PLC0415

    folder = Path(root) / "_background_noise_"
    noises = []
    for path in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        rate, _, _ = probe_wav(path)
        audio, _ = tf.audio.decode_wav(tf.io.read_file(str(path)))
        wave = tf.reduce_mean(audio, axis=-1)
        if rate != sample_rate:
            wave = resample(wave, rate, sample_rate)
        noises.append(wave.numpy().astype(np.float32))
    return noises


def waveform_features(waves, lengths, params, augment=None, rng_for=None):
    """Front-end features of padded waveforms, with optional SpecAugment masks.

    Args:
        waves: float32 (n, clip_samples).
        lengths: true samples per clip.
        params: `rc_keras.features.FrontEndParams`.
        augment: `rc_keras.augment.AugmentParams` whose masks to apply, or None.
        rng_for: ``i -> numpy Generator`` for clip i's masks (with ``augment``).

    Returns:
        ``(x, frames)``: float32 (n, frames, params.feature_size), int32 (n,) valid frames.
    """
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras import augment as augment_lib  # noqa: PLC0415
    from rc_keras import features as features_lib  # noqa: PLC0415

    frames_per_clip = params.frames_per_clip
    band_hz = augment_lib.mel_band_centres(params.num_mel_bins, params.lower_edge_hz,
                                           params.upper_edge_hz)
    frames = np.clip([features_lib.num_frames(params, int(n)) for n in lengths], 1,
                     frames_per_clip).astype(np.int32)
    out = []
    for start in range(0, len(waves), 256):
        mel = features_lib.log_mel(tf.constant(waves[start:start + 256]), params).numpy()
        if augment is not None:
            mel = np.stack([augment_lib.spec_augment(m, augment, rng_for(start + i),
                                                     frames[start + i], band_hz)
                            for i, m in enumerate(mel)])
        out.append(features_lib.stack_context(tf.constant(mel), params.context_frames).numpy()
                   if params.context_frames else mel)
    return np.concatenate(out).astype(np.float32), frames


def speech_commands_module():
    """`rc_keras.datasets.speech_commands` the module (the package exports a function of
    the same name)."""
    import importlib  # noqa: PLC0415

    return importlib.import_module("rc_keras.datasets.speech_commands")


def _augmented_split(root, label_set, cache_dir, limit, augment, seed, options,
                     unknown_keep=1.0):
    """The train split plus ``augment.copies`` augmented copies of every clip (each block
    keeping a seeded ``unknown_keep`` share of the "unknown" clips)."""
    import dataclasses  # noqa: PLC0415

    from rc_keras import augment as augment_lib  # noqa: PLC0415
    from rc_keras import features as features_lib  # noqa: PLC0415
    from rc_keras.datasets import speech_commands  # noqa: PLC0415

    params = options.get("features") or features_lib.FrontEndParams()
    cache = None
    if cache_dir is not None:
        key = _cache_key(root, "train", label_set, dict(
            options, limit=limit, augment=dataclasses.asdict(augment), augment_seed=seed,
            unknown_keep=unknown_keep))
        cache = Path(cache_dir) / f"speech_commands_train_aug_{label_set}_{key}.npz"
        if cache.is_file():
            with np.load(cache) as data:
                return data["x"], data["lengths"], data["y"]
    wave_options = {k: v for k, v in options.items() if k not in ("features", "cache")}
    dataset = speech_commands(root, "train", label_set=label_set, features=None, cache=False,
                              **wave_options)
    waves, samples, y = [], [], []
    for inputs, labels in dataset.batch(256).as_numpy_iterator():
        waves.append(inputs["inputs"])
        samples.append(inputs["lengths"])
        y.append(labels)
    if not waves:
        raise ValueError(f"the train split of {root} holds no clips.")
    waves = np.concatenate(waves).astype(np.float32)
    samples = np.concatenate(samples).astype(np.int64)
    y = np.concatenate(y).astype(np.int32)
    if limit is not None:
        waves, samples, y = waves[:limit], samples[:limit], y[:limit]
    noises = _background_noises(root, params.sample_rate)
    xs, ns = [], []
    x, n = waveform_features(waves, samples, params)
    xs.append(x)
    ns.append(n)
    for copy in range(1, augment.copies + 1):
        rngs = [np.random.default_rng([int(seed), copy, i]) for i in range(len(y))]
        altered = np.empty_like(waves)
        lengths = np.empty_like(samples)
        for i in range(len(y)):
            altered[i], lengths[i] = augment_lib.augment_waveform(
                waves[i], augment, rngs[i], length=samples[i], noises=noises,
                sample_rate=params.sample_rate)
        x, n = waveform_features(altered, lengths, params, augment, lambda i: rngs[i])
        xs.append(x)
        ns.append(n)
    unknown = np.isin(y, [speech_commands_module().LABEL_SETS[label_set].index("unknown")])
    keeps = [~unknown | (np.random.default_rng([int(seed), block, 41]).random(len(y))
                         < unknown_keep) for block in range(augment.copies + 1)]
    x = np.concatenate([x[k] for x, k in zip(xs, keeps)])
    lengths = np.concatenate([n[k] for n, k in zip(ns, keeps)])
    y = np.concatenate([y[k] for k in keeps])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x, lengths=lengths, y=y)
    return x, lengths, y


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


def _needs_data_root(num_sequences, seed=0):
    raise ValueError("the speech-commands task reads clips from a folder: pass `data_root` "
                     "(rc-keras --data ROOT); it has no generated data.")


# ---------------------------------------------------------------------- task hooks
# `rc-keras train/evaluate/sweep --task speech-commands` run the common paths of
# `rc_keras.workflows` (guards, backups, flags); these hooks give them the recipe above.
def _load_task_split(task, split, size=None, seed=0, data_root=None, context_frames=None,
                     cache_dir=None, normalization=None, augment_copies=None):
    """``Task.load``: a split of ``data_root`` as ``({"inputs", "lengths"}, y)``; ``size``
    clips drawn at random (seeded by the split and ``seed``), or all of them.

    The train split gets the keyword recipe's augmented copies (`augment_params`, seeded
    by ``seed``, each block keeping `UNKNOWN_KEEP` of the "unknown" clips); validation and
    test stay clean. Every split goes through the front end `task_front_end` gives."""
    if data_root is None:
        raise ValueError("`data_root` is required for the speech-commands task "
                         "(rc-keras train --data ROOT).")
    if not Path(data_root).is_dir():
        raise ValueError(f"`data_root` {str(data_root)!r} is not a directory.")
    augment = augment_params(augment_copies) if split == "train" else None
    x, lengths, y = load_split_arrays(data_root, split, "paper11", cache_dir=cache_dir,
                                      features=task_front_end(context_frames, normalization),
                                      cache=False, augment=augment, augment_seed=seed,
                                      unknown_keep=UNKNOWN_KEEP)
    if size is not None:
        if size > len(y):
            raise ValueError(f"the {split} split of {data_root} holds {len(y)} clips; a "
                             f"{split} size of {size} asks for more.")
        rng = np.random.default_rng(tasks.split_seed(split, seed))
        keep = np.sort(rng.choice(len(y), size, replace=False))
        x, lengths, y = x[keep], lengths[keep], y[keep]
    return {"inputs": x, "lengths": lengths}, y


def _task_model(task, units, threshold, training_mode, input_shape=None):
    return kws_lstm(task.num_classes, num_features=input_shape[-1], units=units,
                    threshold=threshold, training_mode=training_mode)


def _task_compile(model, beta, learning_rate):
    return compile_kws(model, beta=beta, learning_rate=learning_rate)


def _task_plan_fit(task, out_dir, y_train, state_dir=None, model=None, validation_data=None,
                   options=None, grace_epochs=GRACE_EPOCHS):
    """``Task.plan_fit``: the majority-class stop rule and the best validation epoch
    (kept across a resume), reloaded after ``fit``. An RC model is judged by its
    validation spike accuracy, an EOS model by its validation accuracy at the end of the
    clip (`EndOfClipAccuracy`), which is what it was trained for. The front end goes
    into ``out_dir/front_end.json`` for evaluate, sweep and export."""
    from rc_keras.callbacks import BestEpochCheckpoint  # noqa: PLC0415

    options = options or {}
    share = majority_share(y_train)
    stop = MajorityClassStop(share, monitor="spike_accuracy", grace_epochs=grace_epochs)
    monitor, end_of_clip = checkpoint_monitor(model, validation_data)
    callbacks = [stop] + ([end_of_clip] if end_of_clip is not None else [])
    path = Path(out_dir) / "best_epoch.keras"
    best = BestEpochCheckpoint(path, monitor=monitor, mode="max",
                               state_path=None if state_dir is None
                               else Path(state_dir) / "best_epoch.json")
    params = task_front_end(options.get("context_frames"), options.get("normalization"))

    def finish(model):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / FRONT_END_FILE).write_text(
            json.dumps(dataclasses.asdict(params), indent=2) + "\n")
        info = {"best_epoch": best.best_epoch, "stopped_epoch": stop.stopped_epoch,
                "stop_share": share, "global_clipnorm": GRADIENT_CLIP_NORM,
                "checkpoint_monitor": monitor, "front_end": dataclasses.asdict(params),
                "augment": dataclasses.asdict(augment_params(options.get("augment_copies"))),
                "unknown_keep": UNKNOWN_KEEP}
        return (model if best.best_epoch is None else keras.models.load_model(path)), info

    return tasks.FitPlan(callbacks=callbacks + [best], finish=finish)


def _task_evaluate(model, x, y):
    return evaluate_kws(model, x["inputs"], x["lengths"], y,
                        lookahead_frames=context_frames_of(model))


def _task_model_data(task, model, model_path, size=None, seed=0, data_root=None, split="test"):
    """``Task.model_data``: a split through the front end saved beside the model."""
    x, lengths, y = test_arrays_for(data_root, model, size, params=saved_front_end(model_path),
                                    split=split)
    return {"inputs": x, "lengths": lengths}, y


def _task_step_ms(model):
    """``Task.step_ms``: 10 ms hops, 25 ms windows, the model's stacked future frames."""
    return FRAME_STRIDE_MS, FRAME_WINDOW_MS, context_frames_of(model)


SPEECH_COMMANDS = tasks.Task(
    name="speech-commands",
    description="Speech Commands keyword spotting from a folder (--data ROOT), paper11 labels",
    generate=_needs_data_root,
    load=_load_task_split,
    options=("data_root", "context_frames", "cache_dir", "normalization", "augment_copies"),
    model_factory=_task_model,
    compile_model=_task_compile,
    plan_fit=_task_plan_fit,
    evaluate=_task_evaluate,
    model_data=_task_model_data,
    step_ms=_task_step_ms,
    num_classes=11,
    units=128,
    threshold=0.9,
    beta=0.2,
    learning_rate=1e-3,
    epochs=30,
    batch_size=128,
    time_unit="frames",
)
# Registered on first use: rc_keras.tasks lists it without importing this module.


def front_end(context_frames=10, **kwargs):
    """The paper's `rc_keras.features.FrontEndParams` with ``context_frames`` each side."""
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    return FrontEndParams(context_frames=int(context_frames), **kwargs)


FRONT_END_FILE = "front_end.json"
"""Written next to a trained keyword model: its `FrontEndParams` (normalization included)."""
DEFAULT_NORMALIZATION = "none"
"""The causal normalization `rc-keras train --task speech-commands` uses by default: the
leave-one-engine-out benchmark (benchmarks/results/kws_transfer_72_voices.md) measured plain
log-mel ahead of running-mean subtraction and PCEN at its training budget."""


def task_front_end(context_frames=None, normalization=None):
    """The speech-commands task's `FrontEndParams`: ``context_frames`` each side (None:
    10, the paper's) and a causal ``normalization`` (None: `DEFAULT_NORMALIZATION`)."""
    return front_end(10 if context_frames is None else context_frames,
                     normalization=normalization or DEFAULT_NORMALIZATION)


def saved_front_end(model_path):
    """The `FrontEndParams` saved next to ``model_path`` (`FRONT_END_FILE`), or None."""
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    path = Path(model_path).parent / FRONT_END_FILE
    if not path.is_file():
        return None
    return FrontEndParams(**json.loads(path.read_text()))


def context_frames_of(model, num_mel_bins=20):
    """Context frames each side that a keyword model's input width implies.

    A model on ``num_mel_bins * (2 * c + 1)`` features per step was trained with a
    context of ``c`` frames each side (20 features: none, 420: ten).

    Raises:
        ValueError: for a width that no context gives.
    """
    width = int(model.feature_shape[-1])
    if width % num_mel_bins or (width // num_mel_bins) % 2 == 0:
        raise ValueError(f"the model reads {width} features per step, which is not "
                         f"{num_mel_bins} mel bands x (2 * context + 1) frames.")
    return (width // num_mel_bins - 1) // 2


def sweep_points_ms(points, model):
    """Sweep points of a keyword model with "mean_spike_time_ms" added (its look-ahead
    of stacked future frames included)."""
    from rc_keras import tradeoff  # noqa: PLC0415

    return tradeoff.add_milliseconds(points, FRAME_STRIDE_MS, FRAME_WINDOW_MS,
                                     lookahead_frames=context_frames_of(model))


def test_arrays_for(data_root, model, size=None, label_set="paper11", params=None,
                    split="test"):
    """The test split of ``data_root`` with the front end ``model`` was trained on
    (``params``, e.g. `saved_front_end`; default: the paper's with the model's context).
    ``split="validation"`` reads the validation split the same way (what a threshold
    schedule is fitted on).

    Returns:
        ``(x, lengths, y)`` arrays, at most ``size`` clips.
    """
    if data_root is None:
        raise ValueError("`data_root` is required for the speech-commands task "
                         "(rc-keras --data ROOT).")
    if not Path(data_root).is_dir():
        raise FileNotFoundError(f"`data_root` {str(data_root)!r} is not a directory.")
    if params is None:
        params = front_end(context_frames_of(model))
    return load_split_arrays(data_root, split, label_set, limit=size, features=params,
                             cache=False)


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
        if data_root is None:
            raise ValueError("`data_root` is required for the speech-commands task "
                             "(rc-keras train --data ROOT).")
        if not Path(data_root).is_dir():
            raise FileNotFoundError(f"`data_root` {str(data_root)!r} is not a directory.")
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
