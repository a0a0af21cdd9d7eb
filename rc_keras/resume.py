"""Training that survives a killed job and resumes exactly.

`keras.callbacks.BackupAndRestore` works with `RCModel` as with any Keras model: it
saves the weights and the optimizer state at the end of every epoch and, when ``fit``
starts again with the same backup directory, restores them and skips the epochs done.
A run killed in the middle of an epoch repeats that epoch from its start.

That repeat only gives the same weights as an uninterrupted run if the epoch sees the
same batches in the same order. ``fit(x, y, shuffle=True)`` draws each epoch's order
from a random stream that a restarted process begins afresh, so the repeated epoch
would see the order of epoch 0. `fit_resumable` therefore derives the order of epoch
``e`` from ``(seed, e)`` alone:

```python
tf.config.experimental.enable_op_determinism()   # bit-identical kernels across runs
keras.utils.set_random_seed(0)
model = rc_keras.tasks.build_model("spotting")       # any compiled RCModel
rc_keras.resume.fit_resumable(model, x, y, batch_size=64, epochs=10,
                              backup_dir="run/backup", seed=0)
```

Killed and started again with the same arguments, it ends with the same weights as a
run that was never interrupted.
"""

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rc_keras import validation

METADATA_FILE = "training_metadata.json"


def epoch_order(num_examples, epoch, seed):
    """The example order of one epoch: a permutation that depends on (seed, epoch) only."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(num_examples))


def completed_epochs(backup_dir):
    """Epochs completed according to a `BackupAndRestore` directory (0 if none)."""
    path = Path(backup_dir) / METADATA_FILE
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def resumable_dataset(x, y, batch_size, epochs, seed, initial_epoch=0, sample_weight=None):
    """A `tf.data.Dataset` of the batches of epochs ``initial_epoch .. epochs - 1``.

    Epoch ``e`` visits the examples in `epoch_order`(n, e, seed), in batches of
    ``batch_size`` (the last one may be smaller), so a run that starts at epoch ``e``
    sees exactly the batches an uninterrupted run saw from epoch ``e`` on.

    ``x`` may be an ``{"inputs", "lengths"}`` (or ``"mask"``) dict of arrays.

    Returns:
        ``(dataset, steps_per_epoch)``.
    """
    n = len(tf.nest.flatten(x)[0])
    if len(y) != n:
        raise ValueError(f"`y` must have one label per sequence of `x` ({n}); received {len(y)}.")
    batch_size = validation.check_positive_int(batch_size, "batch_size")
    epochs = validation.check_positive_int(epochs, "epochs")
    if not 0 <= int(initial_epoch) <= epochs:
        raise ValueError(f"`initial_epoch` must lie in [0, epochs={epochs}]; "
                         f"received {initial_epoch}.")
    orders = np.array([epoch_order(n, e, seed) for e in range(int(initial_epoch), epochs)],
                      dtype=np.int64).reshape(-1, n)
    arrays = (x, y) + (() if sample_weight is None else (sample_weight,))
    indices = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
    tensors = tf.nest.map_structure(lambda a: tf.constant(np.asarray(a)), arrays)
    # A sequential map keeps the order; deterministic= would only warn (no parallel calls).
    dataset = indices.map(
        lambda idx: tf.nest.map_structure(lambda t: tf.gather(t, idx), tensors)).prefetch(2)
    return dataset, -(-n // batch_size)


def fit_resumable(model, x, y, batch_size, epochs, backup_dir, seed=0, callbacks=None,
                  validation_data=None, verbose=1, sample_weight=None):
    """``model.fit`` that resumes exactly after a kill, with `BackupAndRestore`.

    Args:
        model: a compiled `RCModel` (built here if needed).
        x, y: training arrays (``x`` may be an ``{"inputs", "lengths"}`` dict).
        batch_size, epochs: as for ``fit``.
        backup_dir: the `BackupAndRestore` directory; an unfinished run's backup there
            is resumed, and it is deleted when training completes.
        seed: seed of the per-epoch example order.
        callbacks: more Keras callbacks.
        validation_data: as for ``fit``.
        verbose: ``fit`` verbosity.
        sample_weight: optional per-example weights.

    Returns:
        The Keras ``History`` of the epochs run in this call; ``history.params``
        holds ``"initial_epoch"``.
    """
    inputs = x["inputs"] if isinstance(x, dict) else x
    validation.check_sequences(inputs, getattr(model, "feature_shape", None), name="x")
    if isinstance(x, dict) and x.get("lengths") is not None:
        validation.check_lengths(x["lengths"], *np.shape(inputs)[:2])
    if not model.built:
        model.build(np.shape(inputs))
    if getattr(model, "num_classes", None):
        validation.check_labels(y, model.num_classes, name="y",
                                readout=getattr(model, "readout", "softmax"))
    initial_epoch = completed_epochs(backup_dir)
    dataset, steps = resumable_dataset(x, y, batch_size, epochs, seed, initial_epoch,
                                       sample_weight)
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps,
                        initial_epoch=initial_epoch, validation_data=validation_data,
                        shuffle=False,  # the dataset orders each epoch itself (Keras warns)
                        # User callbacks first: a guard that rejects an epoch must run
                        # before the backup of that epoch is written.
                        callbacks=list(callbacks or []) + [backup], verbose=verbose)
    history.params["initial_epoch"] = initial_epoch
    return history
