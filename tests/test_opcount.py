"""rc_keras.opcount against hand-counted small cases."""

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import opcount
from rc_keras.cells import SpikingLIFCell


def _x(batch, time, features, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype(np.float32)


def test_lstm_sequential_hand_count():
    # LSTM(2) on 3 inputs, per step: 4*2*3 + 4*2*2 products, + 3*2 gate mults, + 2 adds
    # (f*c + i*g); Dense(1) once at the end: 2 products.
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(2), keras.layers.Dense(1)])
    count = opcount.count_ops(model, _x(4, 5, 3))
    per_step_m, per_step_a = 24 + 16 + 6, 24 + 16 + 2
    np.testing.assert_array_equal(count.mults_per_sequence, [5 * per_step_m + 2] * 4)
    np.testing.assert_array_equal(count.adds_per_sequence, [5 * per_step_a + 2] * 4)
    np.testing.assert_array_equal(count.mults[0], [46, 46, 46, 46, 48])
    assert count.firing_rate is None
    np.testing.assert_array_equal(count.steps_run, [5] * 4)


def test_gru_and_simple_rnn_hand_count():
    # GRU(2), reset_after: 3*2*3 + 3*2*2 products, 3*2 element-wise mults; adds: products
    # + 6 (recurrent bias) + 2 (x_h + r*rec_h) + 4 (1 - z, sum).
    gru = keras.Sequential([keras.Input((4, 3)), keras.layers.GRU(2, return_sequences=True),
                            keras.layers.Dense(3)])
    count = opcount.count_ops(gru, _x(2, 4, 3))
    np.testing.assert_array_equal(count.mults[:, 0], [18 + 12 + 6 + 6] * 2)
    np.testing.assert_array_equal(count.adds[:, 0], [18 + 12 + 6 + 6 + 6] * 2)
    rnn = keras.Sequential([keras.Input((4, 3)), keras.layers.SimpleRNN(2), keras.layers.Dense(1)])
    count = opcount.count_ops(rnn, _x(2, 4, 3))
    np.testing.assert_array_equal(count.mults_per_sequence, [4 * (6 + 4) + 2] * 2)


def _hand_set_lif(bits=2):
    """A LIF cell whose outputs are exactly quantize(x * [1, 0.5]) with no memory."""
    cell = SpikingLIFCell(2, output_bits=bits)
    cell.build((None, 1))
    cell.kernel.assign([[0.0, 0.0, 1.0, 0.5]])
    cell.recurrent_kernel.assign(np.zeros((2, 4), np.float32))
    cell.bias.assign([-50.0, -50.0, 0.0, 0.0])     # leak gate ~ 0: potential forgotten
    return cell


# Inputs chosen so the non-zero outputs per step are 2, 1, 0, 1 (2-bit levels 1/3, 2/3, 1).
_SPIKY_X = np.array([[[1.0], [0.5], [0.1], [0.4]]], np.float32)


def test_spiking_cell_skips_zero_outputs():
    cell = _hand_set_lif()
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.RNN(cell, return_sequences=True),
                              keras.layers.Dense(3)])
    outputs = keras.layers.RNN(cell, return_sequences=True)(_SPIKY_X).numpy()
    nonzero = np.count_nonzero(outputs[0], axis=-1)
    np.testing.assert_array_equal(nonzero, [2, 1, 0, 1])
    count = opcount.count_ops(model, _SPIKY_X)
    # Per step: input 2u*1 = 4 products; recurrent 2u * nonzero(t-1); 2u element-wise
    # mults (leak mix, quantizer scale); head Dense(3) reads the non-zero outputs only.
    previous = np.array([0, 2, 1, 0])
    expected_m = 4 + 4 * previous + 4 + 3 * nonzero
    expected_a = 4 + 4 * previous + 6 + 3 * nonzero
    np.testing.assert_array_equal(count.mults[0], expected_m)
    np.testing.assert_array_equal(count.adds[0], expected_a)
    assert count.firing_rate == pytest.approx(4 / 8)


def test_binary_spikes_need_additions_only():
    cell = _hand_set_lif(bits=1)
    model = keras.Sequential([keras.Input((4, 1)), keras.layers.RNN(cell, return_sequences=True),
                              keras.layers.Dense(3)])
    # Binary: only x >= 1 fires (unit 0 at step 0).
    count = opcount.count_ops(model, _SPIKY_X)
    nonzero = np.array([1, 0, 0, 0])
    previous = np.array([0, 1, 0, 0])
    # Multiplications: the input product (4) and the leak mix (2); no quantizer scale,
    # no products with spikes.
    np.testing.assert_array_equal(count.mults[0], [6, 6, 6, 6])
    np.testing.assert_array_equal(count.adds[0], 4 + 4 * previous + 6 + 3 * nonzero)


def test_rc_model_counts_only_steps_before_the_spike():
    cell = _hand_set_lif()
    model = rk.RCModel(cell, keras.layers.Dense(2, activation="softmax"), threshold=0.9)
    x = np.repeat(_SPIKY_X, 3, axis=0)
    x[1, :, 0] = [0.1, 0.1, 0.1, 0.1]       # never fires: dense part only
    model.build(x.shape)
    spike_time = np.array([0, 3, 2])
    full = opcount.count_ops(model, x, halt=False)
    halted = opcount.count_ops(model, x, spike_time=spike_time)
    per_step = np.array([4 + 0 + 4 + 2 * 2, 4 + 4 * 2 + 4 + 2 * 1, 4 + 4 * 1 + 4, 4 + 0 + 4 + 2 * 1])
    np.testing.assert_array_equal(full.mults[0], per_step)
    np.testing.assert_array_equal(full.mults[1], [8, 8, 8, 8])
    np.testing.assert_array_equal(halted.mults_per_sequence,
                                  [per_step[0], 32, per_step[:3].sum()])
    np.testing.assert_array_equal(halted.steps_run, [1, 4, 3])
    np.testing.assert_array_equal(full.steps_run, [4, 4, 4])
    # Without explicit spike times the counter reads them from the halting unroll.
    auto = opcount.count_ops(model, x)
    steps = model.predict(x, verbose=0)["spike_time"]
    np.testing.assert_array_equal(auto.steps_run, steps + 1)
    assert auto.summary()["mean_steps_run"] == pytest.approx(np.mean(steps + 1))


def test_rc_model_lstm_with_sequential_head_and_lengths():
    model = rk.RCModel(keras.layers.LSTMCell(3),
                       keras.Sequential([keras.layers.Dense(4, activation="relu"),
                                         keras.layers.Dense(2, activation="softmax")]))
    x = _x(2, 5, 2)
    model.build(x.shape)
    count = opcount.count_ops(model, x, halt=False, lengths=[5, 2])
    per_step = 4 * 3 * 2 + 4 * 3 * 3 + 3 * 3 + 4 * 3 + 2 * 4
    np.testing.assert_array_equal(count.mults_per_sequence, [5 * per_step, 2 * per_step])
    np.testing.assert_array_equal(count.mults[1], [per_step, per_step, 0, 0, 0])


def test_stacked_cells_use_the_spiking_output_of_the_layer_below():
    lif = _hand_set_lif()
    model = rk.RCModel([lif, keras.layers.GRUCell(2)], keras.layers.Dense(2, activation="softmax"))
    model.build(_SPIKY_X.shape)
    count = opcount.count_ops(model, _SPIKY_X, halt=False)
    nonzero, previous = np.array([2, 1, 0, 1]), np.array([0, 2, 1, 0])
    lif_m = 4 + 4 * previous + 4
    gru_m = 3 * 2 * nonzero + 3 * 2 * 2 + 6      # the GRU input product skips zero spikes
    np.testing.assert_array_equal(count.mults[0], lif_m + gru_m + 2 * 2)


def test_chunks_give_the_same_counts():
    model = rk.RCModel(SpikingLIFCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=0.55)
    x = _x(10, 6, 1) * 3
    model.build(x.shape)
    whole = opcount.count_ops(model, x)
    chunked = opcount.count_ops(model, x, batch_size=3)
    np.testing.assert_array_equal(whole.mults, chunked.mults)
    assert whole.firing_rate == pytest.approx(chunked.firing_rate)


def test_unsupported_layers_raise():
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.Conv1D(2, 2)])
    with pytest.raises(NotImplementedError, match="Conv1D"):
        opcount.count_ops(model, _x(1, 3, 2))
    with pytest.raises(ValueError, match="batch, time"):
        opcount.count_ops(model, np.zeros((2, 3)))
