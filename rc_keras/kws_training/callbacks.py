"""The Keras callbacks of the keyword training recipe, and the readout they judge by.

- `MajorityClassStop`: stops a run whose spike accuracy falls below the majority-class
  share (`majority_share`): it answers no better than "always unknown".
- `EndOfClipAccuracy`: adds ``val_end_of_clip_accuracy`` (`end_of_clip_accuracy`) to the
  epoch logs, what an EOS model is checkpointed by; `checkpoint_monitor` picks the entry.
- `EpochTimer`: wall time of every training epoch.

Part of `rc_keras.kws_training`, which re-exports every name here.
"""

import time

import keras
import numpy as np

__all__ = ["majority_share", "MajorityClassStop", "EpochTimer", "end_of_clip_accuracy",
           "EndOfClipAccuracy", "checkpoint_monitor"]


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


