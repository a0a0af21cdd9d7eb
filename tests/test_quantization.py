"""Quantization: the int8-friendly LSTM step (same math as keras.layers.LSTMCell, clips
where asked), fake quantization, and quantization-aware twins that agree with their int8
export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras import export, quantization
from rc_keras.quantization import fake_quant


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



@pytest.mark.parametrize("value_range", [(-8.0, 8.0), (-13.8, 4.6), (-1.0, 1.0), (0.0, 3.1),
                                         (-126.5, 128.5),   # zero point exactly 126.5
                                         fake_quant.SIGMOID_RANGE, fake_quant.TANH_RANGE])
def test_rounding_ops_equal_the_fake_quant_op(value_range):
    # Gaussian values across the grid, and two far outside it so both ends saturate.
    values = np.random.default_rng(0).normal(size=20000) * 8 * max(1.0, abs(value_range[0]) / 8)
    x = tf.constant(np.concatenate([values, [-1e4, 1e4]]).astype(np.float32))
    with_op = fake_quant.fake_quant(x, value_range).numpy()
    with fake_quant.rounding_ops():
        with_floor = fake_quant.fake_quant(x, value_range).numpy()
    low, high, scale, _ = fake_quant.nudged_range(value_range)
    np.testing.assert_allclose(with_floor, with_op, atol=4e-6)   # float rounding only
    np.testing.assert_allclose([with_op.min(), with_op.max()], [low, high], atol=1e-6)
    assert len(np.unique(np.round((with_op - low) / scale))) <= 256


def test_fake_quant_weights_lands_on_the_per_channel_int8_grid():
    kernel = tf.constant(np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32))
    quantized = fake_quant.fake_quant_weights(kernel).numpy()
    scale = np.abs(kernel.numpy()).max(axis=0) / 127
    steps = quantized / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert np.abs(steps).max() == pytest.approx(127, abs=1e-4)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        total = tf.reduce_sum(fake_quant.fake_quant_weights(kernel) * 2.0)
    np.testing.assert_allclose(tape.gradient(total, kernel).numpy(), 2.0)   # straight through


def test_quantized_layers_check_arguments():
    with pytest.raises(ValueError, match="input_range"):
        rk.quantization.QuantizedLSTMCell(4, input_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="gate_clip"):
        rk.quantization.QuantizedLSTMCell(4, gate_clip=0)
    with pytest.raises(ValueError, match="activations"):
        rk.quantization.QuantizedLSTMCell(4, activation="relu")
    with pytest.raises(ValueError, match="activations"):
        rk.quantization.QuantizedDense(3, activation="elu")
    # Config and .keras round trips of both layers: tests/test_serialization.py.


@pytest.fixture(scope="module")
def trained_pair():
    """A tiny LSTM RCModel trained on the 2-sequence task, its twin, and data."""
    keras.utils.set_random_seed(7)
    task = dict(steps=15, mean=0.3, sigma_range=(0.3, 1.0))
    x, y = rk.datasets.two_sequence(512, seed=3, **task)
    model = rk.RCModel(keras.layers.LSTMCell(8),
                       keras.Sequential([keras.layers.Dense(6, activation="relu"),
                                         keras.layers.Dense(2, activation="softmax")]),
                       threshold=0.8)
    model.compile(keras.optimizers.Adam(0.02), rk.ConfidencePenalty(0.0))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    twin = rk.quantization.quantize_aware(model, x[:256])
    x_test, y_test = rk.datasets.two_sequence(150, seed=4, **task)
    return model, twin, x, y, x_test, y_test


def test_quantize_aware_twin_is_the_int8_model(trained_pair, tmp_path):
    model, twin, x, _, x_test, y_test = trained_pair
    assert rk.quantization.is_quantization_aware(twin)
    assert not rk.quantization.is_quantization_aware(model)
    assert isinstance(twin.cell, rk.quantization.QuantizedLSTMCell)
    assert twin.threshold == pytest.approx(model.threshold) and twin.readout == model.readout
    # Same weights, rounded arithmetic: the twin answers like the float model.
    ours, theirs = twin.predict(x_test, verbose=0), model.predict(x_test, verbose=0)
    assert np.mean(ours["label"] == theirs["label"]) >= 0.9
    side = export.export_tflite_step(twin, tmp_path / "q.tflite", "int8", calibration=x[:256])
    cell_state = side["states"][1]
    # The FakeQuant range is the int8 scale: 8/128 per step, [-128, 127] steps.
    assert cell_state["scale"] == pytest.approx(1 / 16, rel=1e-5)
    assert cell_state["zero_point"] == 0
    for runtime in ("litert", "litert-builtin", "tflm"):
        out = export.run_tflite_stream(tmp_path / "q.tflite", x_test, runtime=runtime)
        assert np.mean(out["label"] == ours["label"]) >= 0.99, runtime
        assert np.mean(np.abs(out["spike_time"] - ours["spike_time"]) <= 1) >= 0.99, runtime
    # Its float32 step rounds with ops TFLM runs (no QUANTIZE to uint8).
    side = export.export_tflite_step(twin, tmp_path / "f.tflite")
    assert "FLOOR" in side["ops"] and "QUANTIZE" not in side["ops"]
    out = export.run_tflite_stream(tmp_path / "f.tflite", x_test, runtime="tflm")
    assert np.mean(out["label"] == ours["label"]) >= 0.99
    with pytest.raises(ValueError, match="int16x8"):
        export.export_tflite_step(twin, tmp_path / "s.tflite", "int16x8", calibration=x[:64])


def test_quantize_aware_twin_trains_and_reloads(trained_pair, tmp_path):
    _, twin, x, y, x_test, _ = trained_pair
    path = tmp_path / "twin.keras"
    twin.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x_test, verbose=0)["spike_time"],
                                  twin.predict(x_test, verbose=0)["spike_time"])
    loaded.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(0.1))
    before = [w.copy() for w in loaded.cell.get_weights()]
    history = loaded.fit(x[:128], y[:128], epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, b) for a, b in zip(before, loaded.cell.get_weights()))


def test_quantize_aware_refuses_what_it_cannot_twin():
    x = np.zeros((4, 5, 2), np.float32)
    gru = rk.RCModel(keras.layers.GRUCell(3), keras.layers.Dense(2, activation="softmax"))
    gru(x)
    with pytest.raises(ValueError, match="LSTMCell"):
        rk.quantization.quantize_aware(gru, x)
    conv_head = rk.RCModel(keras.layers.LSTMCell(3),
                           keras.Sequential([keras.layers.Dropout(0.1),
                                             keras.layers.Dense(2, activation="softmax")]))
    conv_head(x)
    with pytest.raises(ValueError, match="Dense"):
        rk.quantization.quantize_aware(conv_head, x)
    lstm = rk.RCModel(keras.layers.LSTMCell(3), keras.layers.Dense(2, activation="softmax"))
    lstm(x)
    with pytest.raises(ValueError, match="calibration"):
        rk.quantization.quantize_aware(lstm, np.zeros((4, 5, 3), np.float32))
