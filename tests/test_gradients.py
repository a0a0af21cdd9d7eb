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

from tests.helpers import (BATCH, assert_rc_matches_reference, loss_and_grads, rc_loss,
                           rc_setup, reference_loss)


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
    model, x, y = rc_setup(CELLS[cell_name]())
    assert_rc_matches_reference(model, x, y, mode)


def test_negative_control_loss_at_last_step_differs():
    model, x, y = rc_setup(CELLS["lstm"]())
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    rc_value, _, rc_grads = loss_and_grads(rc_loss, model, x, y, loss_fn, "graph")
    eos_loss, _, eos_grads = loss_and_grads(reference_loss, model, x, y, loss_fn, "graph",
                                             at_last_step=True)
    assert abs(float(rc_value) - float(eos_loss)) > 1e-3
    assert max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(rc_grads, eos_grads)) > 1e-4


def test_eos_training_mode_equals_last_step_reference():
    model, x, y = rc_setup(CELLS["lstm"](), training_mode="eos")
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    rc_value, _, rc_grads = loss_and_grads(rc_loss, model, x, y, loss_fn, "graph")
    ref_loss, _, ref_grads = loss_and_grads(reference_loss, model, x, y, loss_fn, "graph",
                                             at_last_step=True)
    np.testing.assert_allclose(rc_value.numpy(), ref_loss.numpy(), atol=1e-5)
    for g_rc, g_ref in zip(rc_grads, ref_grads):
        np.testing.assert_allclose(g_rc.numpy(), g_ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_applies_exactly_the_reference_gradient(jit_compile):
    """One SGD step through model.fit moves every weight by -lr * reference gradient."""
    model, x, y = rc_setup(CELLS["lstm"]())
    loss_fn = rk.ConfidencePenalty(beta=0.3)
    _, _, ref_grads = loss_and_grads(reference_loss, model, x, y, loss_fn, "graph",
                                      theta=model.threshold)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(learning_rate=0.5), loss=loss_fn, jit_compile=jit_compile)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for w0, w, g in zip(before, model.trainable_weights, ref_grads):
        np.testing.assert_allclose(w.numpy(), w0 - 0.5 * g.numpy(), atol=1e-5, err_msg=w.path)
