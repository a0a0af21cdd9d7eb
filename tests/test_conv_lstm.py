import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras import mnist_models
from rc_keras.cells import ConvLSTM2DCell


def _sequence(batch=2, time=4, height=6, width=5, channels=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, height, width, channels)) \
        .astype(np.float32)


def _reference(filters, kernel_size, padding, strides=1):
    layer = keras.layers.ConvLSTM2D(filters, kernel_size, padding=padding, strides=strides,
                                    return_sequences=True)
    return layer


@pytest.mark.parametrize("padding,kernel_size,strides", [("same", 3, 1), ("valid", (3, 2), 1),
                                                         ("same", 3, 2)])
def test_matches_keras_conv_lstm2d_with_copied_weights(padding, kernel_size, strides):
    x = _sequence()
    reference = _reference(3, kernel_size, padding, strides)
    expected = reference(x).numpy()
    cell = ConvLSTM2DCell(3, kernel_size, strides=strides, padding=padding)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    rnn.build(x.shape)
    # Random biases, so a wrong gate order cannot hide behind the zero/one initial bias.
    weights = reference.get_weights()
    weights[2] = np.random.default_rng(1).normal(size=weights[2].shape).astype(np.float32)
    reference.set_weights(weights)
    expected = reference(x).numpy()
    cell.set_weights(weights)
    got = rnn(x).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_sizes_and_initial_state():
    cell = ConvLSTM2DCell(4, 3, padding="valid")
    cell.build((None, 7, 6, 1))
    assert cell.output_size == (5, 4, 4)
    assert cell.state_size == [tf.TensorShape((5, 4, 4))] * 2
    h, c = cell.get_initial_state(batch_size=3)
    assert h.shape == c.shape == (3, 5, 4, 4)
    assert not np.any(h.numpy()) and not np.any(c.numpy())
    # unit_forget_bias: the forget gate's slice of the bias starts at 1, the others at 0.
    np.testing.assert_array_equal(cell.bias.numpy(), np.repeat([0.0, 1.0, 0.0, 0.0], 4))


def test_in_rc_model_equals_full_unroll_gathered_at_spike():
    x = (np.random.default_rng(2).random((3, 5, 6, 6, 1)) > 0.6).astype(np.float32)
    model = mnist_models.rc_conv_lstm_mnist(filters=2, num_classes=3, threshold=0.4)
    out = model.predict(x, verbose=0)
    every_step = model.step_probabilities(x).numpy()
    crossed = every_step.max(-1) >= 0.4
    first = np.where(crossed.any(1), crossed.argmax(1), x.shape[1] - 1)
    np.testing.assert_array_equal(out["spike_time"], first)
    np.testing.assert_allclose(out["probs"], every_step[np.arange(3), first], atol=1e-6)


def test_rc_model_trains_and_round_trips(tmp_path):
    x = (np.random.default_rng(3).random((8, 3, 5, 5, 1)) > 0.5).astype(np.float32)
    y = np.arange(8) % 2
    model = mnist_models.rc_conv_lstm_mnist(filters=2, num_classes=2, threshold=0.8)
    model.compile("adam", rk.ConfidencePenalty(beta=0.1),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    model.build(x.shape)
    before = [w.copy() for w in model.cell.get_weights()]
    assert len(before) == 3
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.cell.get_weights()))
    path = tmp_path / "conv.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.cell, ConvLSTM2DCell)
    assert loaded.cell.get_config() == model.cell.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["probs"],
                               model.predict(x, verbose=0)["probs"], atol=1e-6)


def test_mnist_factories_have_the_paper_sizes():
    lstm = mnist_models.rc_lstm_mnist()
    lstm.build((None, 10, 784))
    assert lstm.cell.units == 340 and lstm.num_outputs == 10
    for filters in (20, 10):
        conv = mnist_models.rc_conv_lstm_mnist(filters=filters)
        conv.build((None, 10, 28, 28, 1))
        assert conv.cell.output_size == (28, 28, filters) and conv.num_outputs == 10


@pytest.mark.parametrize("kwargs,name", [({"filters": 0}, "filters"),
                                         ({"filters": 2, "kernel_size": (3,)}, "kernel_size"),
                                         ({"filters": 2, "padding": "causal"}, "padding"),
                                         ({"filters": 2, "strides": 0}, "strides")])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ConvLSTM2DCell(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="height, width"):
        ConvLSTM2DCell(2).build((None, 5, 1))
