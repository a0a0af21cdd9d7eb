"""RC training is exact: its loss and gradients equal those of a full-sequence reference.

The reference runs all T steps with keras.layers.RNN, finds each example's first
crossing in the full output sequence and gathers the output there. The RC unroll
stops early, yet must give the same loss and the same gradient for every weight.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk

BATCH, TIME, FEATURES, CLASSES = 8, 12, 4, 3


def _setup(cell, training_mode="rc"):
    head = keras.layers.Dense(CLASSES, activation="softmax")
    model = rk.RCModel(cell, head, training_mode=training_mode)
    model.build((None, TIME, FEATURES))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(BATCH, TIME, FEATURES)) * 2.0, tf.float32)
    y = tf.constant(rng.integers(0, CLASSES, size=BATCH), tf.int32)
    # Put theta where the untrained network crosses at varied steps.
    # theta sits in the widest gap between observed values near the 80th percentile, so
    # float rounding differences between the two paths cannot move a spike.
    values = np.unique(model.step_probabilities(x).numpy().max(axis=-1))
    window = range(int(0.7 * len(values)), int(0.9 * len(values)))
    i = max(window, key=lambda k: values[k + 1] - values[k])
    model.threshold = float((values[i] + values[i + 1]) / 2)
    return model, x, y


def _reference_loss(model, x, y, loss_fn, at_last_step=False, theta=None):
    """Full-sequence forward pass, output gathered at each example's first crossing."""
    rnn = keras.layers.RNN(model.cell, return_sequences=True)
    probs = keras.layers.TimeDistributed(model.head)(rnn(x))
    if at_last_step:
        steps = tf.fill([BATCH], TIME - 1)
    else:
        crossed = tf.reduce_max(probs, axis=-1) >= theta
        first = tf.argmax(tf.cast(crossed, tf.int32), axis=1, output_type=tf.int32)
        steps = tf.where(tf.reduce_any(crossed, axis=1), first, TIME - 1)
    gathered = tf.gather(probs, steps, axis=1, batch_dims=1)
    return loss_fn(y, gathered), steps


def _rc_loss(model, x, y, loss_fn):
    out = model.rank_code(x, training=True)
    return loss_fn(y, out.probs), out.spike_time


def _loss_and_grads(fn, model, x, y, loss_fn, mode, **kwargs):
    def compute(x, y):
        with tf.GradientTape() as tape:
            loss, steps = fn(model, x, y, loss_fn, **kwargs)
        return loss, steps, tape.gradient(loss, model.trainable_weights)
    if mode == "eager":
        return compute(x, y)
    return tf.function(compute, jit_compile=(mode == "xla"))(x, y)


CELLS = {
    "lstm": lambda: keras.layers.LSTMCell(6),
    "gru": lambda: keras.layers.GRUCell(6),
    "simple_rnn": lambda: keras.layers.SimpleRNNCell(6),
    "stacked": lambda: [keras.layers.LSTMCell(5), keras.layers.GRUCell(4)],
}


# LSTM in all three execution modes; the other cells in graph mode.
@pytest.mark.parametrize("cell_name, mode", [
    ("lstm", "eager"), ("lstm", "graph"), ("lstm", "xla"),
    ("gru", "graph"), ("simple_rnn", "graph"), ("stacked", "graph"), ("gru", "xla")])
def test_rc_gradients_equal_full_sequence_reference(cell_name, mode):
    model, x, y = _setup(CELLS[cell_name]())
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    rc_loss, rc_steps, rc_grads = _loss_and_grads(_rc_loss, model, x, y, loss_fn, mode)
    ref_loss, ref_steps, ref_grads = _loss_and_grads(_reference_loss, model, x, y, loss_fn, mode,
                                                     theta=model.threshold)

    np.testing.assert_array_equal(rc_steps.numpy(), ref_steps.numpy())
    assert len(set(rc_steps.numpy().tolist())) >= 3, "spike steps should vary for a meaningful test"
    assert rc_steps.numpy().min() < TIME - 1
    np.testing.assert_allclose(rc_loss.numpy(), ref_loss.numpy(), atol=1e-5)
    assert len(rc_grads) == len(model.trainable_weights)
    for weight, g_rc, g_ref in zip(model.trainable_weights, rc_grads, ref_grads):
        np.testing.assert_allclose(g_rc.numpy(), g_ref.numpy(), atol=1e-5, err_msg=weight.path)


def test_negative_control_loss_at_last_step_differs():
    model, x, y = _setup(CELLS["lstm"]())
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    rc_loss, _, rc_grads = _loss_and_grads(_rc_loss, model, x, y, loss_fn, "graph")
    eos_loss, _, eos_grads = _loss_and_grads(_reference_loss, model, x, y, loss_fn, "graph",
                                             at_last_step=True)
    assert abs(float(rc_loss) - float(eos_loss)) > 1e-3
    assert max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(rc_grads, eos_grads)) > 1e-4


def test_eos_training_mode_equals_last_step_reference():
    model, x, y = _setup(CELLS["lstm"](), training_mode="eos")
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    rc_loss, _, rc_grads = _loss_and_grads(_rc_loss, model, x, y, loss_fn, "graph")
    ref_loss, _, ref_grads = _loss_and_grads(_reference_loss, model, x, y, loss_fn, "graph",
                                             at_last_step=True)
    np.testing.assert_allclose(rc_loss.numpy(), ref_loss.numpy(), atol=1e-5)
    for g_rc, g_ref in zip(rc_grads, ref_grads):
        np.testing.assert_allclose(g_rc.numpy(), g_ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_applies_exactly_the_reference_gradient(jit_compile):
    """One SGD step through model.fit moves every weight by -lr * reference gradient."""
    model, x, y = _setup(CELLS["lstm"]())
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    _, _, ref_grads = _loss_and_grads(_reference_loss, model, x, y, loss_fn, "graph",
                                      theta=model.threshold)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(learning_rate=0.5), loss=loss_fn, jit_compile=jit_compile)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for w0, w, g in zip(before, model.trainable_weights, ref_grads):
        np.testing.assert_allclose(w.numpy(), w0 - 0.5 * g.numpy(), atol=1e-5, err_msg=w.path)
