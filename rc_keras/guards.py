"""Training guards: stop on a NaN or Inf loss and keep the last good checkpoint.

```python
guard = rc_keras.guards.StopOnNonFiniteLoss("run/last_good.weights.h5")
try:
    model.fit(x, y, epochs=10, callbacks=[guard])
except rc_keras.guards.NonFiniteLossError as error:
    print(error)          # names the epoch, the batch and the optimizer step
    # the model holds the weights of the last good checkpoint again
```
"""

import os
from pathlib import Path

import keras
import numpy as np


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or Inf loss (or NaN/Inf weights).

    Attributes:
        epoch: 0-based epoch of the bad batch.
        batch: 0-based batch index within the epoch.
        step: 1-based optimizer step (``optimizer.iterations``) of the bad batch.
        value: the non-finite value seen.
        checkpoint: path of the last good checkpoint, or None if none was written.
        checkpoint_epoch: number of completed epochs the checkpoint holds, or None.
    """

    def __init__(self, message, epoch, batch, step, value, checkpoint, checkpoint_epoch):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.step = step
        self.value = value
        self.checkpoint = checkpoint
        self.checkpoint_epoch = checkpoint_epoch


def _all_finite(variables):
    values = (keras.ops.convert_to_numpy(v) for v in variables)
    return all(np.all(np.isfinite(v)) for v in values if np.issubdtype(v.dtype, np.floating))


def _state_variables(model):
    """The model's weights and, once built, the optimizer's (moments, step counter)."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops ``fit`` at the first NaN or Inf loss, naming the batch and the step.

    At the end of every epoch whose loss and weights are finite the weights (optimizer
    state included) are written to ``checkpoint_path``; the file is replaced
    atomically, so a crash during the write never leaves a broken checkpoint, and bad
    weights are never written. When a batch reports a non-finite loss the callback
    restores the last good weights (``restore=True``) and raises `NonFiniteLossError`.
    Raising, rather than setting ``model.stop_training`` as
    ``keras.callbacks.TerminateOnNaN`` does, skips ``on_epoch_end`` of every other
    callback, so neither ``BackupAndRestore`` nor ``ModelCheckpoint`` saves the bad
    weights over a good checkpoint.

    Keras logs the running mean of the loss over the epoch: it turns non-finite at the
    first bad batch and stays so, which is the batch reported.

    Args:
        checkpoint_path: file ending in ``.weights.h5`` for the last good weights, or
            None to keep them in memory only (then ``restore`` uses the in-memory copy).
        monitor: the logged quantities to check; a missing key is ignored.
        restore: put the last good weights back into the model before raising.
    """

    def __init__(self, checkpoint_path=None, monitor=("loss",), restore=True):
        super().__init__()
        if checkpoint_path is not None and not str(checkpoint_path).endswith(".weights.h5"):
            raise ValueError("`checkpoint_path` must end in '.weights.h5' (Keras weights file); "
                             f"received {str(checkpoint_path)!r}.")
        if isinstance(monitor, str):
            monitor = (monitor,)
        if not monitor or not all(isinstance(m, str) for m in monitor):
            raise ValueError(f"`monitor` must be a non-empty list of log keys; received {monitor!r}.")
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.monitor = tuple(monitor)
        self.restore = bool(restore)
        self.checkpoint_epoch = None
        self._memory = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._memory = None
        self.checkpoint_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._memory is None:
            # Weights at the start count as good: a NaN in the first epoch rolls back to
            # them. Taken here, after every on_train_begin, so that weights restored by
            # BackupAndRestore are the ones kept.
            self._memory = [(v, keras.ops.convert_to_numpy(v))
                            for v in _state_variables(self.model)]

    def _bad_value(self, logs):
        for key in self.monitor:
            value = (logs or {}).get(key)
            if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                return key, float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
        return None

    def on_train_batch_end(self, batch, logs=None):
        bad = self._bad_value(logs)
        if bad is not None:
            self._stop(batch, *bad)

    def on_epoch_end(self, epoch, logs=None):
        bad = self._bad_value(logs)
        if bad is not None:  # e.g. a non-finite validation loss when monitored
            self._stop(None, *bad)
        if not _all_finite(self.model.weights):
            self._stop(None, "weights", float("nan"))
        self._memory = [(v, keras.ops.convert_to_numpy(v)) for v in _state_variables(self.model)]
        self.checkpoint_epoch = epoch + 1
        if self.checkpoint_path is not None:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.checkpoint_path.with_name("partial-" + self.checkpoint_path.name)
            self.model.save_weights(str(tmp), overwrite=True)
            os.replace(tmp, self.checkpoint_path)

    def _stop(self, batch, key, value):
        optimizer = getattr(self.model, "optimizer", None)
        step = int(optimizer.iterations.numpy()) if optimizer is not None else None
        where = f"epoch {self._epoch}" + ("" if batch is None else f", batch {batch}")
        where += "" if step is None else f" (optimizer step {step})"
        if self.checkpoint_epoch is None:
            kept = "no epoch completed with finite values: weights from before training"
        else:
            kept = f"last good weights after {self.checkpoint_epoch} epoch(s)"
            if self.checkpoint_path is not None:
                kept += f" in {self.checkpoint_path}"
        if self.restore and self._memory is not None:
            for variable, value_ in self._memory:
                variable.assign(value_)
            kept += " (restored into the model)"
        self.model.stop_training = True
        raise NonFiniteLossError(
            f"training stopped: {key} is {value} at {where}; {kept}.",
            epoch=self._epoch, batch=batch, step=step, value=value,
            checkpoint=None if self.checkpoint_path is None or self.checkpoint_epoch is None
            else str(self.checkpoint_path),
            checkpoint_epoch=self.checkpoint_epoch)
