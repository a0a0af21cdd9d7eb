"""SpikingLIFCell: forward equations, quantizer, surrogate gradient, RC exactness (saving:
tests/test_serialization.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rc_keras.cells import SpikingLIFCell, quantize_spikes
from tests.helpers import assert_rc_matches_reference, rc_setup


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_step(x, u, s, kernel, recurrent, bias, bits, reset="subtract"):
    """The docstring's equations, written out in numpy."""
    units = u.shape[-1]
    z = x @ kernel + s @ recurrent + bias
    f, c = _sigmoid(z[:, :units]), z[:, units:]
    v = f * u + (1.0 - f) * c
    levels = 2 ** bits - 1
    out = np.clip(np.floor(levels * v), 0, levels) / levels
    return out, (v - out if reset == "subtract" else v)


def test_forward_matches_hand_computed_step():
    cell = SpikingLIFCell(2, output_bits=2)
    cell.build((None, 1))
    # Leak gate: f = sigmoid(0) = 0.5 for both units; current c = 2 * x for unit 0, -x
    # for unit 1, plus 0.5 * s_prev[0] on unit 1.
    cell.kernel.assign([[0.0, 0.0, 2.0, -1.0]])
    cell.recurrent_kernel.assign([[0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    cell.bias.assign([0.0, 0.0, 0.0, 0.0])
    u = tf.constant([[0.4, 0.2]])
    s = tf.constant([[1.0, 0.0]])
    out, (u_new, s_new) = cell(tf.constant([[0.5]]), [u, s])
    # v0 = 0.5 * 0.4 + 0.5 * 1.0 = 0.7 -> floor(2.1) / 3 = 2/3, residual 0.7 - 2/3
    # v1 = 0.5 * 0.2 + 0.5 * (-0.5 + 0.5) = 0.1 -> floor(0.3) = 0, residual 0.1
    np.testing.assert_allclose(out.numpy(), [[2 / 3, 0.0]], atol=1e-6)
    np.testing.assert_allclose(u_new.numpy(), [[0.7 - 2 / 3, 0.1]], atol=1e-6)
    np.testing.assert_array_equal(s_new.numpy(), out.numpy())


@pytest.mark.parametrize("reset", ["subtract", "none"])
def test_forward_matches_numpy_equations_over_a_sequence(reset):
    rng = np.random.default_rng(0)
    cell = SpikingLIFCell(5, output_bits=3, reset=reset)
    x = rng.normal(size=(4, 7, 3)).astype(np.float32) * 2
    outputs = keras.layers.RNN(cell, return_sequences=True)(x).numpy()
    kernel, recurrent, bias = (w.numpy() for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    u = s = np.zeros((4, 5), np.float32)
    for t in range(7):
        s, u = _numpy_step(x[:, t], u, s, kernel, recurrent, bias, 3, reset)
        np.testing.assert_allclose(outputs[:, t], s, atol=1e-6)
    assert 0 < np.count_nonzero(outputs) < outputs.size


def _hold_then_silence(reset, silent_steps=20):
    """One unit that integrates a pulse of input, then sees nothing: its outputs over time."""
    cell = SpikingLIFCell(1, output_bits=3, reset=reset)
    cell.build((None, 1))
    # Leak gate sigmoid(6 - 12 x): open (f ~ 0) while the input is 1, closed (f ~ 1) after.
    cell.kernel.assign([[-12.0, 0.8]])
    cell.recurrent_kernel.assign([[0.0, 0.0]])
    cell.bias.assign([6.0, 0.0])
    x = np.zeros((1, 1 + silent_steps, 1), np.float32)
    x[0, 0, 0] = 1.0
    return keras.layers.RNN(cell, return_sequences=True)(x).numpy()[0, :, 0]


def test_without_reset_the_potential_holds_a_value_through_silence():
    """reset="none": the potential keeps 0.8 and the unit keeps emitting its level."""
    held = _hold_then_silence("none")
    np.testing.assert_allclose(held[0], 5 / 7, atol=1e-6)        # floor(0.8 * 7) / 7
    assert np.all(held[1:] == held[0])


def test_soft_reset_drains_a_held_value():
    """reset="subtract": what fired is taken off the potential, so the value is gone."""
    drained = _hold_then_silence("subtract")
    np.testing.assert_allclose(drained[0], 5 / 7, atol=1e-6)
    assert np.all(drained[1:] == 0.0)                               # 0.8 - 5/7 < 1/7


def test_leak_bias_starts_at_forget_bias():
    cell = SpikingLIFCell(3, forget_bias=1.5)
    cell.build((None, 2))
    np.testing.assert_array_equal(cell.bias.numpy(), [1.5] * 3 + [0.0] * 3)


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_quantization_levels(bits):
    levels = 2 ** bits - 1
    v = tf.linspace(-1.0, 2.0, 3001)
    s = quantize_spikes(v, bits).numpy()
    np.testing.assert_allclose(np.unique(s), np.arange(levels + 1) / levels, atol=1e-7)
    # Level k/L from v >= k/L on; 0 below 1/L; saturates at 1.
    np.testing.assert_allclose(s, np.clip(np.floor(v.numpy() * levels), 0, levels) / levels)
    assert quantize_spikes(tf.constant(1.0), bits).numpy() == 1.0
    assert quantize_spikes(tf.constant(1.0 / levels - 1e-3), bits).numpy() == 0.0


def test_binary_spikes_fire_at_threshold_one():
    s = quantize_spikes(tf.constant([-0.5, 0.0, 0.99, 1.0, 1.7, 5.0]), 1).numpy()
    np.testing.assert_array_equal(s, [0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("bits", [1, 2])
def test_surrogate_gradient_is_the_documented_box(bits):
    v = tf.constant([-0.7, -0.01, 0.01, 0.2, 0.5, 0.9, 0.99, 1.01, 1.6, 3.0])
    upstream = tf.constant(np.linspace(0.5, 2.0, 10), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(v)
        s = quantize_spikes(v, bits)
    grad = tape.gradient(s, v, output_gradients=upstream).numpy()
    expected = upstream.numpy() * ((v.numpy() >= 0) & (v.numpy() <= 1))
    np.testing.assert_allclose(grad, expected)


def test_gradient_through_potential_is_the_leak():
    """The reset is detached, so d u_t / d u_{t-1} = f_t, not f_t - f_t * ds/dv."""
    cell = SpikingLIFCell(2, output_bits=2)
    cell.build((None, 1))
    cell.kernel.assign([[0.0, 0.0, 1.0, 1.0]])
    cell.recurrent_kernel.assign(np.zeros((2, 4), np.float32))
    cell.bias.assign([2.0, -1.0, 0.0, 0.0])
    u = tf.constant([[0.3, 0.6]])
    with tf.GradientTape() as tape:
        tape.watch(u)
        _, (u_new, _) = cell(tf.constant([[0.4]]), [u, tf.zeros((1, 2))])
    grad = tape.gradient(u_new, u).numpy()
    np.testing.assert_allclose(grad, [[_sigmoid(2.0), _sigmoid(-1.0)]], rtol=1e-6)


def test_half_the_parameters_of_an_lstm():
    for inputs, units in [(1, 64), (40, 128)]:
        lif, lstm = SpikingLIFCell(units), keras.layers.LSTMCell(units)
        lif.build((None, inputs))
        lstm.build((None, inputs))
        assert lif.count_params() == 2 * (inputs * units + units * units + units)
        assert lif.count_params() * 2 == lstm.count_params()


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        SpikingLIFCell(0)
    with pytest.raises(ValueError, match="output_bits"):
        SpikingLIFCell(4, output_bits=0)
    with pytest.raises(ValueError, match="`reset` must be one of"):
        SpikingLIFCell(4, reset="hard")


# Config and .keras round trips (with identical outputs): tests/test_serialization.py.


def test_step_converts_to_tflite_with_builtin_ops():
    """The cell's forward pass uses standard ops only (no py_function, no Flex ops)."""
    cell = SpikingLIFCell(3, output_bits=2)
    cell.build((None, 2))

    @tf.function(input_signature=[tf.TensorSpec((1, 2)), tf.TensorSpec((1, 3)),
                                  tf.TensorSpec((1, 3))])
    def step(x, u, s):
        out, (u_new, s_new) = cell(x, [u, s])
        return out, u_new, s_new

    converter = tf.lite.TFLiteConverter.from_concrete_functions([step.get_concrete_function()], cell)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    assert len(converter.convert()) > 0


# ---------------------------------------------------------------- RC exactness
@pytest.mark.parametrize("mode,reset", [("eager", "subtract"), ("graph", "subtract"),
                                        ("xla", "subtract"), ("graph", "none")])
def test_rc_gradients_equal_full_sequence_reference(mode, reset):
    model, x, y = rc_setup(SpikingLIFCell(6, output_bits=2, reset=reset))
    assert len(model.trainable_weights) == 5
    assert_rc_matches_reference(model, x, y, mode, nonzero=True)
