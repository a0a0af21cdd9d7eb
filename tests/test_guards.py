"""StopOnNonFiniteLoss: stops at the first bad batch, names it, keeps the last good weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras.guards import NonFiniteLossError, StopOnNonFiniteLoss

BATCHES, BATCH = 4, 8


def _model():
    model = rk.RCModel(keras.layers.GRUCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=0.8)
    model.compile(keras.optimizers.Adam(0.01), rk.ConfidencePenalty(beta=0.1))
    model.build((None, 5, 3))
    return model


def _dataset(bad_epoch, bad_batch, bad_weight=np.inf):
    """Two epochs of fixed batches; one batch carries a non-finite sample weight, as a
    class weight 1/count with a zero count would."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCHES, BATCH, 5, 3)).astype("float32")
    y = rng.integers(0, 2, size=(BATCHES, BATCH)).astype("int32")
    xs, ys, ws = [], [], []
    for epoch in range(2):
        for b in range(BATCHES):
            w = np.ones(BATCH, "float32")
            if (epoch, b) == (bad_epoch, bad_batch):
                w[3] = bad_weight
            xs.append(x[b]), ys.append(y[b]), ws.append(w)
    return tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys), np.stack(ws)))


class _Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.after_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.after_epoch[epoch] = [w.numpy() for w in self.model.weights]


def test_nan_loss_stops_with_batch_and_step_and_keeps_last_good_checkpoint(tmp_path):
    model = _model()
    path = tmp_path / "last_good.weights.h5"
    snapshots = _Snapshots()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(NonFiniteLossError) as info:
        model.fit(_dataset(1, 2), epochs=2, steps_per_epoch=BATCHES, verbose=0,
                  callbacks=[StopOnNonFiniteLoss(path), snapshots, backup])
    error = info.value
    # Epoch 1, batch 2 is optimizer step 4 + 3 = 7.
    assert (error.epoch, error.batch, error.step) == (1, 2, 7)
    assert "epoch 1, batch 2 (optimizer step 7)" in str(error)
    assert "inf" in str(error)
    assert error.checkpoint == str(path) and error.checkpoint_epoch == 1
    # The model holds the weights of the end of epoch 0 again, and so does the file.
    good = snapshots.after_epoch[0]
    assert 1 not in snapshots.after_epoch  # no callback saw the bad epoch end
    for w, expected in zip(model.weights, good):
        np.testing.assert_array_equal(w.numpy(), expected)
    fresh = _model()
    fresh.load_weights(str(path))
    for w, expected in zip(fresh.weights, good):
        np.testing.assert_array_equal(w.numpy(), expected)
    # BackupAndRestore still holds its epoch-0 backup (not deleted, not overwritten).
    assert (tmp_path / "backup" / "training_metadata.json").read_text() == \
        '{"epoch": 1, "batch": 0}'


def test_nan_in_first_epoch_restores_initial_weights():
    model = _model()
    initial = [w.numpy() for w in model.weights]
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, batch 1 \(optimizer step 2\)") as info:
        model.fit(_dataset(0, 1, bad_weight=np.nan), epochs=2, steps_per_epoch=BATCHES,
                  verbose=0, callbacks=[StopOnNonFiniteLoss()])
    assert info.value.checkpoint is None and info.value.checkpoint_epoch is None
    for w, expected in zip(model.weights, initial):
        np.testing.assert_array_equal(w.numpy(), expected)


@pytest.mark.parametrize("kwargs, match", [
    ({"checkpoint_path": "model.keras"}, "checkpoint_path.*weights.h5.*model.keras"),
    ({"monitor": ()}, "monitor"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StopOnNonFiniteLoss(**kwargs)
