"""The int8-friendly LSTM step: same math as keras.layers.LSTMCell, clips where asked."""

import keras
import numpy as np
import pytest

from rc_keras import quantization


def _cell(units=5, features=4, scale=1.0, seed=0):
    keras.utils.set_random_seed(seed)
    cell = keras.layers.LSTMCell(units)
    cell.build((None, features))
    cell.set_weights([w * scale for w in cell.get_weights()])
    return cell


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _inputs(units=5, features=4, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(3, features)).astype(np.float32) * 3,
            np.tanh(rng.normal(size=(3, units))).astype(np.float32),
            rng.normal(size=(3, units)).astype(np.float32) * 4)


def test_lstm_step_equals_keras_lstm_cell():
    cell = _cell()
    x, h, c = _inputs()
    want_h, (_, want_c) = cell(x, [h, c])
    for divisor in (1.0, 3.7):
        got_h, got_c = quantization.lstm_step(cell.kernel, cell.recurrent_kernel, cell.bias, x, h,
                                              c, input_divisor=divisor)
        np.testing.assert_allclose(np.asarray(got_h), np.asarray(want_h), atol=1e-5)
        np.testing.assert_allclose(np.asarray(got_c), np.asarray(want_c), atol=1e-5)


def test_lstm_step_clips_gate_preactivations_and_cell_state():
    cell = _cell(scale=10.0)   # pre-activations far beyond +-2
    x, h, c = _inputs()
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in cell.get_weights())
    z = np.clip(x @ kernel + h @ recurrent + bias, -2.0, 2.0)
    i, f, g, o = np.split(z, 4, axis=-1)
    want_c = np.clip(_sigmoid(f) * c + _sigmoid(i) * np.tanh(g), -3.0, 3.0)
    want_h = _sigmoid(o) * np.tanh(want_c)
    assert np.abs(x @ kernel + h @ recurrent + bias).max() > 10
    got_h, got_c = quantization.lstm_step(cell.kernel, cell.recurrent_kernel, cell.bias, x, h, c,
                                          input_divisor=2.0, gate_clip=2.0, cell_clip=3.0)
    np.testing.assert_allclose(np.asarray(got_c), want_c, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_h), want_h, atol=1e-5)


def test_lstm_step_passes_each_named_tensor_to_quantize():
    cell = _cell()
    x, h, c = _inputs()
    seen = []

    def record(name, tensor):
        seen.append(name)
        return tensor * 0 if name == "cell" else tensor

    got_h, got_c = quantization.lstm_step(cell.kernel, cell.recurrent_kernel, cell.bias, x, h, c,
                                          quantize=record)
    assert seen == ["concat", "gates", "sigmoid", "sigmoid", "sigmoid", "tanh",
                    "forget_times_cell", "input_times_candidate", "cell", "tanh_cell", "hidden"]
    # What quantize returns is what flows on: a zeroed cell state gives h = o * tanh(0) = 0.
    assert np.all(np.asarray(got_c) == 0) and np.all(np.asarray(got_h) == 0)


@pytest.mark.parametrize("cell,supported", [
    (lambda: keras.layers.LSTMCell(3), True),
    (lambda: keras.layers.LSTMCell(3, activation="relu"), False),
    (lambda: keras.layers.LSTMCell(3, recurrent_activation="hard_sigmoid"), False),
    (lambda: keras.layers.GRUCell(3), False),
])
def test_supports_lstm_step(cell, supported):
    assert quantization.supports_lstm_step(cell()) is supported
