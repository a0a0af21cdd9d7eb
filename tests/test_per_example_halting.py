"""Per-example halting: each example stops costing compute at its own answer.

The unroll runs in stages over fewer and fewer rows; answers, spike steps and every
gradient must be those of the single loop (and of the full-sequence reference), and
the count of cell evaluations is exact.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras import rank_coding
from tests.helpers import (PassThroughCell, assert_rc_matches_reference, identity_head,
                           probs_with_spikes)

# Spike steps of ten rows, and the cell evaluations the staged unroll runs for them
# (COMPACT_FRACTION 3/4, COMPACT_MIN_ROWS 4): 10 rows for steps 0-1 (2 answer, then 1:
# 7 left <= 7.5), 7 rows for steps 2-3 (5 left), 5 rows for steps 4-5 (3 left), and the
# last 3 rows, no longer compacted, for steps 6-9: 20 + 14 + 10 + 12 = 56.
SPIKES = [3, 0, 6, 5, None, 1, 2, 9, 4, 0]
STAGED_EVALUATIONS = 56


def _dummy(per_example_halting=True):
    model = rk.RCModel(PassThroughCell(2), identity_head(),
                       per_example_halting=per_example_halting)
    model.build((None, 10, 2))
    return model


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_dummy_cell_counts_are_exact(mode):
    x = probs_with_spikes(SPIKES, time=10)
    for halting, evaluations in ((True, STAGED_EVALUATIONS), (False, 10 * 10)):
        model = _dummy(halting)
        run = model.rank_code if mode == "eager" else tf.function(model.rank_code)
        out = run(x)
        np.testing.assert_array_equal(out.spike_time.numpy(), [3, 0, 6, 5, 9, 1, 2, 9, 4, 0])
        np.testing.assert_array_equal(out.spiked.numpy(), [s is not None for s in SPIKES])
        assert int(out.steps_run) == 10
        assert int(out.cell_evaluations) == evaluations
        # The frozen counting state is the number of steps each row ran.
        np.testing.assert_allclose(out.states[0].numpy()[:, 0],
                                   [4, 1, 7, 6, 10, 2, 3, 10, 5, 1])


def test_compute_fraction_is_exact_in_evaluate_and_fit():
    x = probs_with_spikes(SPIKES, time=10)
    y = np.ones(10, np.int32)
    for halting, evaluations in ((True, STAGED_EVALUATIONS), (False, 100)):
        model = _dummy(halting)
        model.compile("sgd", rk.ConfidencePenalty(beta=0.0),
                      metrics=[rk.metrics.StepsRun(), rk.metrics.ComputeFraction()])
        logs = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
        assert logs["compute_fraction"] == pytest.approx(evaluations / 100, abs=1e-7)
        assert logs["steps_run"] == 10
        # fit needs a trainable weight: an identity Dense head that a zero learning rate
        # keeps identity (x @ I + 0 is exact), so the spikes stay where they are.
        model = rk.RCModel(PassThroughCell(2),
                           keras.layers.Dense(2, kernel_initializer="identity"),
                           per_example_halting=halting)
        model.compile(keras.optimizers.SGD(0.0), rk.ConfidencePenalty(beta=0.0),
                      metrics=[rk.metrics.StepsRun(), rk.metrics.ComputeFraction()])
        history = model.fit(x, y, batch_size=10, epochs=1, verbose=0).history
        assert history["compute_fraction"][0] == pytest.approx(evaluations / 100, abs=1e-7)
        assert history["steps_run"][0] == 10


def test_compute_fraction_is_a_ratio_of_totals_over_batches():
    # Batches of 10 and 4 rows: the second (spikes 0, 0, 1, 2; 4 rows, never compacted)
    # runs 3 steps x 4 rows = 12 evaluations: (56 + 12) / (10 x 10 + 4 x 10).
    x = probs_with_spikes(SPIKES + [0, 0, 1, 2], time=10)
    model = _dummy()
    model.compile("sgd", rk.ConfidencePenalty(beta=0.0), metrics=[rk.metrics.ComputeFraction()])
    logs = model.evaluate(x, np.ones(14, np.int32), batch_size=10, verbose=0, return_dict=True)
    assert logs["compute_fraction"] == pytest.approx(68 / 140, abs=1e-7)


def test_compute_fraction_needs_the_counts():
    with pytest.raises(ValueError, match="cell_evaluations"):
        rk.metrics.ComputeFraction().update_state(None, {"probs": tf.zeros((2, 2))})


def _spread_model(cell, batch=32, time=16, seed=3):
    """An LSTM model and inputs with theta chosen so that spike steps spread from the
    start to the end of the sequence (the case compaction changes), with a margin
    around theta so rounding cannot move a spike."""
    model = rk.RCModel(cell, keras.layers.Dense(3, activation="softmax"),
                       per_example_halting=True)
    model.build((None, time, 4))
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(batch, time, 4)) * 2.0, tf.float32)
    y = tf.constant(rng.integers(0, 3, size=batch), tf.int32)
    peaks = model.step_probabilities(x).numpy().max(axis=-1)
    values = np.unique(peaks)
    best = None
    for low, high in zip(values[:-1], values[1:]):
        if high - low < 1e-4:
            continue
        theta = (low + high) / 2
        crossed = peaks >= theta
        steps = np.where(crossed.any(axis=1), crossed.argmax(axis=1), time - 1)
        if best is None or steps.std() > best[0]:
            best = (steps.std(), theta)
    model.threshold = float(best[1])
    return model, x, y


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_spread_spike_times_gradients_equal_the_reference(mode):
    model, x, y = _spread_model(keras.layers.LSTMCell(6))
    out = model.rank_code(x, training=True)
    steps = out.spike_time.numpy()
    assert steps.min() <= 3 and steps.max() >= 12 and len(set(steps.tolist())) >= 6, steps
    # Compaction really happened: fewer evaluations than rows x loop length.
    assert int(out.cell_evaluations) < 0.8 * int(out.steps_run) * x.shape[0]
    assert_rc_matches_reference(model, x, y, mode)


def test_spread_spike_times_with_lengths_and_dropout_equal_the_single_loop():
    """Masks, a stack of cells and dropout masks (gathered with the rows) give the
    same loss and gradients with and without per-example halting."""
    cells = [keras.layers.LSTMCell(6, dropout=0.3, recurrent_dropout=0.2, seed=1),
             keras.layers.GRUCell(5)]
    model, x, y = _spread_model(cells)
    lengths = tf.constant(np.random.default_rng(4).integers(4, 17, size=32), tf.int32)
    inputs = {"inputs": x, "lengths": lengths}
    loss_fn = rk.ConfidencePenalty(beta=0.3)

    generators = [cell.seed_generator for cell in model._dropout_cells()]
    seeds = [g.state.numpy() for g in generators]
    results = {}
    for halting in (True, False):
        model.per_example_halting = halting
        for generator, seed in zip(generators, seeds):  # the same dropout masks in both runs
            generator.state.assign(seed)
        with tf.GradientTape() as tape:
            out = model.rank_code(inputs, training=True)
            loss = loss_fn(y, out.probs)
        results[halting] = (loss, out.spike_time, out.cell_evaluations,
                            tape.gradient(loss, model.trainable_weights))
    (loss_a, steps_a, eval_a, grads_a), (loss_b, steps_b, eval_b, grads_b) = (
        results[True], results[False])
    np.testing.assert_array_equal(steps_a.numpy(), steps_b.numpy())
    assert np.all(steps_a.numpy() < lengths.numpy())  # never in padding
    assert int(eval_a) < int(eval_b)
    np.testing.assert_allclose(loss_a.numpy(), loss_b.numpy(), atol=1e-6)
    for weight, a, b in zip(model.trainable_weights, grads_a, grads_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=weight.path)


@pytest.mark.parametrize("halting", [True, False])
def test_lengths_fast_path_equals_the_same_mask(halting):
    """Lengths skip the per-step mask tests in the loop body (a waiting row is always
    on a valid step); the same steps given as a general mask take the full path.
    Answers, frozen states, loss and gradients must agree, in a traced function."""
    model, x, y = _spread_model(keras.layers.LSTMCell(6))
    model.per_example_halting = halting
    lengths = tf.constant(np.random.default_rng(5).integers(1, 17, size=32), tf.int32)
    mask = tf.sequence_mask(lengths, maxlen=16)
    loss_fn = rk.ConfidencePenalty(beta=0.3)

    @tf.function
    def run(inputs):
        answers = model.rank_code(inputs)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model.rank_code(inputs, training=True).probs)
        return answers, loss, tape.gradient(loss, model.trainable_weights)

    (fast, loss_a, grads_a), (full, loss_b, grads_b) = (
        run({"inputs": x, "lengths": lengths}), run({"inputs": x, "mask": mask}))
    assert np.all(fast.spike_time.numpy() < lengths.numpy())
    assert len(set(fast.spike_time.numpy().tolist())) >= 6  # spread, some cut by lengths
    for a, b in zip((fast.probs, fast.spike_time, fast.spiked, *fast.states),
                    (full.probs, full.spike_time, full.spiked, *full.states)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert int(fast.cell_evaluations) == int(full.cell_evaluations)
    np.testing.assert_allclose(loss_a.numpy(), loss_b.numpy(), atol=1e-6)
    for weight, a, b in zip(model.trainable_weights, grads_a, grads_b):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=weight.path)


def test_predict_and_evaluate_use_per_example_halting():
    model, x, y = _spread_model(keras.layers.LSTMCell(6))
    model.compile("adam", rk.ConfidencePenalty(beta=0.1),
                  metrics=[rk.metrics.StepsRun(), rk.metrics.ComputeFraction(),
                           rk.metrics.MeanSpikeTime()])
    staged = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    predicted = model.predict(x, batch_size=32, verbose=0)
    model.per_example_halting = False
    model.compile("adam", rk.ConfidencePenalty(beta=0.1),
                  metrics=[rk.metrics.StepsRun(), rk.metrics.ComputeFraction(),
                           rk.metrics.MeanSpikeTime()])
    single = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    reference = model.predict(x, batch_size=32, verbose=0)
    for key in reference:
        np.testing.assert_allclose(predicted[key], reference[key], atol=1e-6)
    assert staged["loss"] == pytest.approx(single["loss"], abs=1e-6)
    assert staged["mean_spike_time"] == single["mean_spike_time"]
    assert single["compute_fraction"] == pytest.approx(single["steps_run"] / 16)
    # Staged: within the compaction slack of what the examples read.
    assert staged["compute_fraction"] < 0.8 * single["compute_fraction"]
    assert staged["compute_fraction"] >= staged["mean_spike_time"] / 16 - 1e-6


def test_switch_round_trips_through_config_and_is_checked():
    model = rk.RCModel(keras.layers.GRUCell(3), keras.layers.Dense(2, activation="softmax"),
                       per_example_halting=False)
    assert model.get_config()["per_example_halting"] is False
    assert rk.RCModel.from_config(model.get_config()).per_example_halting is False
    assert _dummy().per_example_halting is True
    # Off by default (time falls less than computation; see RCModel's docstring).
    assert rk.RCModel(keras.layers.GRUCell(3), keras.layers.Dense(2)).per_example_halting is False
    with pytest.raises(ValueError, match="per_example_halting"):
        rk.RCModel(PassThroughCell(2), identity_head(), per_example_halting="yes")


def test_xla_falls_back_to_the_single_loop_with_a_warning(caplog):
    model = _dummy()
    x = probs_with_spikes(SPIKES, time=10)
    with caplog.at_level("WARNING", logger="rc_keras"):
        rank_coding._warned_xla.clear()
        out = tf.function(model.rank_code, jit_compile=True)(x)
    assert int(out.cell_evaluations) == 100
    np.testing.assert_array_equal(out.spike_time.numpy(), [3, 0, 6, 5, 9, 1, 2, 9, 4, 0])
    assert "jit_compile" in caplog.text
