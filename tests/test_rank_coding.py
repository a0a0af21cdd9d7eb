"""The halting unroll: exact spike steps and loop iterations from a cell with known outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from tests.helpers import PassThroughCell, identity_head, probs_with_spikes


def _model(threshold=0.95, **kwargs):
    model = rk.RCModel(PassThroughCell(2), identity_head(), threshold=threshold, **kwargs)
    model.build((None, 10, 2))
    return model


def test_spike_times_and_loop_iterations_are_exact():
    model = _model()
    x = probs_with_spikes([3, 0, 6, 5], time=10)
    out = model.rank_code(x)
    np.testing.assert_array_equal(out.spike_time.numpy(), [3, 0, 6, 5])
    assert out.spiked.numpy().all()
    # The loop stops after the latest spike (step 6): 7 iterations, not 10.
    assert int(out.steps_run) == 7
    assert model.cell.calls == 7
    np.testing.assert_allclose(out.probs.numpy(), [[0.01, 0.99]] * 4, atol=1e-6)


def test_states_are_frozen_at_the_spike():
    model = _model()
    out = model.rank_code(probs_with_spikes([2, 7], time=10))
    # The counting state equals the number of steps each example ran (spike step + 1).
    np.testing.assert_allclose(out.states[0].numpy()[:, 0], [3.0, 8.0])


def test_no_crossing_answers_at_last_step_and_runs_to_the_end():
    model = _model()
    out = model.rank_code(probs_with_spikes([None, 1], time=10))
    np.testing.assert_array_equal(out.spike_time.numpy(), [9, 1])
    np.testing.assert_array_equal(out.spiked.numpy(), [False, True])
    assert int(out.steps_run) == 10
    np.testing.assert_allclose(out.probs.numpy()[0], [0.6, 0.4], atol=1e-6)


def test_spike_never_lands_in_padding():
    model = _model()
    x = probs_with_spikes([6, 6, 2], time=10)
    out = model.rank_code({"inputs": x, "lengths": tf.constant([4, 10, 3])})
    # Row 0 would spike at 6 but has 4 valid steps: it answers at step 3, not spiked.
    np.testing.assert_array_equal(out.spike_time.numpy(), [3, 6, 2])
    np.testing.assert_array_equal(out.spiked.numpy(), [False, True, True])
    np.testing.assert_allclose(out.states[0].numpy()[:, 0], [4.0, 7.0, 3.0])


def test_keras_style_mask_value_marks_padding():
    model = _model(mask_value=0.0)
    x = probs_with_spikes([5, 1], time=10).numpy()
    x[0, 3:] = 0.0  # padding after three steps
    out = model.rank_code(tf.constant(x))
    np.testing.assert_array_equal(out.spike_time.numpy(), [2, 1])
    np.testing.assert_array_equal(out.spiked.numpy(), [False, True])


def test_eos_mode_answers_at_last_valid_step():
    model = _model()
    x = probs_with_spikes([1, 4], time=10)
    out = model.rank_code({"inputs": x, "lengths": tf.constant([10, 6])}, mode="eos")
    np.testing.assert_array_equal(out.spike_time.numpy(), [9, 5])
    assert int(out.steps_run) == 10


def test_sigmoid_readout_spikes_on_either_side():
    model = rk.RCModel(PassThroughCell(1), identity_head(), threshold=0.9, readout="sigmoid")
    x = tf.constant([[[0.5], [0.95], [0.5]],
                     [[0.5], [0.5], [0.05]],
                     [[0.5], [0.5], [0.5]]])
    out = model.rank_code(x)
    np.testing.assert_array_equal(out.spike_time.numpy(), [1, 2, 2])
    np.testing.assert_array_equal(out.spiked.numpy(), [True, True, False])


def test_threshold_change_takes_effect_in_compiled_predict():
    model = _model(threshold=0.95)
    x = probs_with_spikes([4, None], time=10)
    assert model.predict(x, verbose=0)["spike_time"].tolist() == [4, 9]
    model.threshold = 0.55  # every step of both rows now crosses
    assert model.predict(x, verbose=0)["spike_time"].tolist() == [0, 0]
    assert model.threshold == pytest.approx(0.55)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_graph_and_xla_unroll_match_eager(jit_compile):
    model = _model()
    x = probs_with_spikes([3, 0, 8], time=10)
    fn = tf.function(lambda v: model.rank_code(v)[:4], jit_compile=jit_compile)
    probs, spike_time, spiked, steps_run = fn(x)
    np.testing.assert_array_equal(spike_time.numpy(), [3, 0, 8])
    assert int(steps_run) == 9


def test_step_probabilities_runs_every_step():
    model = _model()
    x = probs_with_spikes([1, 2], time=10)
    np.testing.assert_allclose(model.step_probabilities(x).numpy(), x.numpy())


def test_step_probabilities_carry_state_over_masked_steps():
    model = rk.RCModel(keras.layers.SimpleRNNCell(3), keras.layers.Dense(2, activation="softmax"),
                       mask_value=0.0)
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")
    x[0, 2:4] = 0.0  # two masked steps in the middle of row 0
    full = model.step_probabilities(tf.constant(x)).numpy()
    # Row 0 with the masked steps removed gives the same readout at the valid steps.
    compact = model.step_probabilities(tf.constant(np.delete(x[:1], [2, 3], axis=1))).numpy()
    np.testing.assert_allclose(full[0, [0, 1, 4, 5]], compact[0], atol=1e-6)
