"""Per-step threshold schedules: the model's halting loop, saving, sweeps and the fitter."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import PassThroughCell, identity_head

import rc_keras as rk
from rc_keras import tradeoff

SCHEDULE = [0.99, 0.9, 0.8, 0.7]  # the last value holds from step 3 on


def _constant_levels(levels, time=7):
    """Inputs whose probability of class 1 is ``levels[i]`` at every step of sequence i."""
    x = np.zeros((len(levels), time, 2), "float32")
    x[:, :, 1] = np.asarray(levels, "float32")[:, None]
    x[:, :, 0] = 1 - x[:, :, 1]
    return x


def _pass_through(threshold):
    model = rk.RCModel(PassThroughCell(2), identity_head(), threshold=threshold)
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=[rk.metrics.MeanSpikeTime(), rk.metrics.NoSpikeRate()])
    return model


# ----------------------------------------------------------------------------- halting loop
def test_dummy_cell_spikes_where_it_first_crosses_the_schedule():
    # Level p answers at the first t with SCHEDULE[min(t, 3)] <= p; 0.6 never crosses.
    levels = [0.995, 0.95, 0.85, 0.75, 0.6, 0.9]
    expected = np.array([0, 1, 2, 3, 6, 1])
    x = _constant_levels(levels)
    model = _pass_through(SCHEDULE)
    assert model.threshold == tuple(SCHEDULE) and model.threshold_is_schedule
    out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out["spike_time"], expected)
    np.testing.assert_array_equal(out["spiked"], [True, True, True, True, False, True])
    traced = tf.function(lambda v: model.rank_code(v).spike_time)(tf.constant(x))
    np.testing.assert_array_equal(traced.numpy(), expected)
    # evaluate's metrics see the same spikes (mean of steps read = spike step + 1).
    result = model.evaluate(x, np.ones(len(x), "int32"), verbose=0, return_dict=True)
    assert result["mean_spike_time"] == pytest.approx(np.mean(expected + 1))
    assert result["no_spike_rate"] == pytest.approx(1 / 6)
    # A sweep over step probabilities reads the same answers off one pass.
    crossing = tradeoff.first_crossing(model.step_probabilities(x).numpy(), model.threshold)
    np.testing.assert_array_equal(crossing.spike_time, expected)


def test_time_varying_outputs_cross_a_time_varying_schedule_at_known_steps():
    # Output 0.85 at steps 0-1 (below 0.99, 0.9), 0.85 at step 2 crosses 0.8.
    x = _constant_levels([0.85, 0.85], time=5)
    x[1, 2:, 1], x[1, 2:, 0] = 0.75, 0.25  # drops below 0.8, crosses 0.7 at step 3
    out = _pass_through(SCHEDULE).predict(x, verbose=0)
    np.testing.assert_array_equal(out["spike_time"], [2, 3])
    # With lengths the spike never lands in padding: sequence 1 ends at step 2.
    out = _pass_through(SCHEDULE).predict({"inputs": x, "lengths": np.array([5, 3])}, verbose=0)
    np.testing.assert_array_equal(out["spike_time"], [2, 2])
    np.testing.assert_array_equal(out["spiked"], [True, False])


def test_scalar_threshold_is_unchanged_and_switching_needs_no_rebuild():
    x = _constant_levels([0.995, 0.95, 0.85, 0.75])
    model = _pass_through(0.9)
    assert model.threshold == 0.9 and not model.threshold_is_schedule
    np.testing.assert_array_equal(model.predict(x, verbose=0)["spike_time"], [0, 0, 6, 6])
    assert model.get_config()["threshold"] == 0.9
    model.threshold = SCHEDULE  # the traced predict function follows the variable
    np.testing.assert_array_equal(model.predict(x, verbose=0)["spike_time"], [0, 1, 2, 3])
    model.threshold = [0.9]  # a schedule of one value answers as the scalar
    assert model.threshold == (0.9,)
    np.testing.assert_array_equal(model.predict(x, verbose=0)["spike_time"], [0, 0, 6, 6])
    model.threshold = 0.9
    assert model.threshold == 0.9 and not model.threshold_is_schedule


def test_schedule_round_trips_exactly_through_keras_file(tmp_path):
    schedule = [0.97, 0.9300001, 0.81, 0.7]
    x = np.random.default_rng(0).normal(size=(16, 6, 3)).astype("float32")
    model = rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=schedule)
    model.build(x.shape)
    stored = model._threshold_steps.numpy()
    np.testing.assert_array_equal(stored, np.float32(schedule))
    assert model.get_config()["threshold"] == list(model.threshold)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.threshold == model.threshold and loaded.threshold_is_schedule
    np.testing.assert_array_equal(loaded._threshold_steps.numpy(), stored)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0)["spike_time"],
                                  model.predict(x, verbose=0)["spike_time"])


def test_training_runs_with_a_schedule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=[0.9, 0.8, 0.6])
    model.compile("adam", rk.ConfidencePenalty(beta=0.1), metrics=[rk.metrics.MeanSpikeTime()])
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    out = model.predict(x, verbose=0)
    assert result["mean_spike_time"] == pytest.approx(np.mean(out["spike_time"] + 1))


def test_schedule_can_be_set_inside_a_tf_function():
    x = _constant_levels([0.995, 0.95, 0.85, 0.75])
    model = _pass_through(0.9)
    model.build(x.shape)

    @tf.function
    def spikes_at(schedule):
        model.threshold = schedule
        return model.rank_code(x).spike_time

    times = spikes_at(tf.constant(SCHEDULE))
    np.testing.assert_array_equal(times.numpy(), [0, 1, 2, 3])
    assert model.threshold_is_schedule
    np.testing.assert_array_equal(np.float32(model.threshold), np.float32(SCHEDULE))
    with pytest.raises(tf.errors.InvalidArgumentError, match="strictly between 0 and 1"):
        spikes_at(tf.constant([0.9, 1.5, 0.8, 0.7]))
    np.testing.assert_array_equal(np.float32(model.threshold), np.float32(SCHEDULE))
    # Set a scalar eagerly, then run the traced function again (no retrace): the model
    # reads back the schedule that function assigned, not the scalar of the Python side.
    model.threshold = 0.9
    spikes_at(tf.constant(SCHEDULE))
    assert model.threshold_is_schedule and len(model.threshold) == len(SCHEDULE)
    assert model.get_config()["threshold"] == list(model.threshold)


@pytest.mark.parametrize("value, message", [
    ([0.9, float("nan")], r"strictly between 0 and 1; received nan \(schedule value at step 1\)"),
    ([0.9, 1.2], r"strictly between 0 and 1; received 1.2 \(schedule value at step 1\)"),
    ([0.9, 0.0], r"strictly between 0 and 1"),
    ([], r"`threshold` schedule is empty"),
    ([[0.9, 0.8]], r"`threshold` must be a scalar or a 1-D per-step schedule; received an array "
                   r"of shape \(1, 2\)"),
    (["a", "b"], r"`threshold` must be a number"),
    ("0.9", r"`threshold` must be a number in \(0, 1\) or a 1-D schedule"),
    (None, r"`threshold` must be a number in \(0, 1\) or a 1-D schedule of such numbers; received None"),
])
def test_bad_schedules_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        rk.RCModel(PassThroughCell(2), identity_head(), threshold=value)
    model = _pass_through(0.9)
    with pytest.raises(ValueError, match=message):
        model.threshold = value
    assert model.threshold == 0.9


def test_schedule_value_at_or_below_one_over_c_is_refused_once_built():
    model = _pass_through([0.9, 0.5])  # C unknown yet
    with pytest.raises(ValueError, match=r"`threshold` must be above 0.5 for this model.*step 1"):
        model.build((None, 3, 2))
    model = _pass_through(0.9)
    model.build((None, 3, 2))
    with pytest.raises(ValueError, match=r"must be above 0.5.*step 2"):
        model.threshold = [0.9, 0.8, 0.5]


# ----------------------------------------------------------------------------- fitter
def _noisy_then_sure(n, seed, time=20):
    """Step probabilities with early noise that a falling threshold can ignore.

    Before an onset step (3..8) the confidence is noise, 0.5 + 0.48 u exp(-t / 4), with a
    random label; from the onset on it is 0.95 on the true label. A constant theta either
    lets early noise spike (theta <= 0.98) or never spikes after the onset (theta > 0.95);
    a schedule falling from 0.98 to below 0.95 does neither.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    onset = rng.integers(3, 9, n)
    t = np.arange(time)[None, :]
    noise = 0.5 + 0.48 * rng.uniform(size=(n, time)) * np.exp(-t / 4)
    noise_label = rng.integers(0, 2, (n, time))
    after = t >= onset[:, None]
    confidence = np.where(after, 0.95, noise)
    label = np.where(after, y[:, None], noise_label)
    p1 = np.where(label == 1, confidence, 1 - confidence).astype("float32")
    return np.stack([1 - p1, p1], axis=-1), y


def test_fitted_schedule_beats_every_constant_threshold_at_its_budget():
    probs, y = _noisy_then_sure(2000, seed=0)
    budget = 8.0
    fitted = tradeoff.fit_threshold_schedule(probs, y, budget=budget)
    assert fitted["mean_spike_time"] <= budget and len(fitted["threshold"]) == probs.shape[1]
    assert np.all(np.diff(fitted["threshold"]) <= 0)  # monotone by default
    # The point is exactly what the model's rules give for that schedule.
    (check,) = tradeoff.sweep_from_probabilities(probs, y, [fitted["threshold"]])
    for key in ("accuracy", "mean_spike_time", "no_spike_rate"):
        assert check[key] == fitted[key]
    # Every constant theta on a fine grid, within the same budget, is clearly worse.
    # (with the fitter's own best constant, which lands on the data's level 0.95).
    grid = list(np.linspace(0.501, 0.999, 250)) + [fitted["constant"]["threshold"][0]]
    constants = [p for p in tradeoff.sweep_from_probabilities(probs, y, grid)
                 if p["mean_spike_time"] <= budget]
    best_constant = max(p["accuracy"] for p in constants)
    assert fitted["constant"]["accuracy"] == best_constant
    assert fitted["accuracy"] >= best_constant + 0.02
    # Fitted on validation, it holds on a held-out test set from the same source.
    test_probs, test_y = _noisy_then_sure(2000, seed=1)
    (on_test,) = tradeoff.sweep_from_probabilities(test_probs, test_y, [fitted["threshold"]])
    (constant_on_test,) = tradeoff.sweep_from_probabilities(
        test_probs, test_y, [fitted["constant"]["threshold"][0]])
    assert abs(on_test["accuracy"] - fitted["accuracy"]) < 0.02
    assert on_test["accuracy"] >= constant_on_test["accuracy"] + 0.02


def test_frontier_points_reproduce_and_dominate_the_constant_sweep():
    probs, y = _noisy_then_sure(500, seed=2, time=12)
    lengths = np.random.default_rng(3).integers(6, 13, 500)
    frontier = tradeoff.fit_threshold_schedule(probs, y, lengths=lengths, taus=[2, 6],
                                               constant_levels=[0.6, 0.9, 0.96, 0.99])
    times = [p["mean_spike_time"] for p in frontier]
    assert times == sorted(times) and np.all(np.diff([p["accuracy"] for p in frontier]) > 0)
    for point in frontier[:3]:
        (check,) = tradeoff.sweep_from_probabilities(probs, y, [point["threshold"]],
                                                     lengths=lengths)
        assert check["accuracy"] == point["accuracy"]
        assert check["mean_spike_time"] == point["mean_spike_time"]
    constants = tradeoff.sweep_from_probabilities(probs, y, [0.6, 0.9, 0.96, 0.99],
                                                  lengths=lengths)
    assert tradeoff.compare_frontiers(frontier, tradeoff.composite_frontier([constants]))[
        "at_or_above"]


def test_exponential_schedule_values():
    values = tradeoff.exponential_schedule(0.99, 0.8, 2.0, 4)
    expected = np.float32(0.8 + 0.19 * np.exp(-np.arange(4) / 2.0))
    np.testing.assert_array_equal(np.float32(values), expected)
    assert tradeoff.exponential_schedule(0.9, 0.9, 5, 3) == (0.9, 0.9, 0.9)


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": 0.5}, r"`budget` 0.5 is below every candidate's mean spike time"),
    ({"budget": -1}, r"`budget` must be a finite number >= 0"),
    ({"levels": [0.9, 1.0]}, r"`levels` must lie strictly between 0 and 1"),
    ({"levels": [0.4, 0.9]}, r"`levels` must be above 0.5"),
    ({"levels": []}, r"`levels` must hold at least one threshold"),
    ({"taus": [0]}, r"`taus` must hold time constants > 0"),
    ({"lengths": [0] * 8}, r"`lengths` must hold one integer in \[1, 5\]"),
])
def test_fitter_refuses_bad_input(kwargs, message):
    probs, y = _noisy_then_sure(8, seed=0, time=5)
    with pytest.raises(ValueError, match=message):
        tradeoff.fit_threshold_schedule(probs, y, **kwargs)


def test_fitter_refuses_bad_shapes_and_labels():
    probs, y = _noisy_then_sure(8, seed=0, time=5)
    with pytest.raises(ValueError, match=r"`step_probabilities` must have shape"):
        tradeoff.fit_threshold_schedule(probs[0], y)
    with pytest.raises(ValueError, match=r"`labels` has 7 labels for 8 sequences"):
        tradeoff.fit_threshold_schedule(probs, y[:7])
    with pytest.raises(ValueError, match=r"`tau` must be a finite number > 0"):
        tradeoff.exponential_schedule(0.9, 0.8, 0, 3)


# ----------------------------------------------------------------------------- export
LEVELS = [0.995, 0.95, 0.85, 0.75, 0.6, 0.9]
EXPECTED = [0, 1, 2, 3, 6, 1]


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_float32_step_model_spikes_at_the_schedule_steps(tmp_path, runtime):
    from rc_keras import export
    x = _constant_levels(LEVELS)
    model = _pass_through(SCHEDULE)
    model.build(x.shape)
    sidecar = export.export_tflite_step(model, tmp_path / "s.tflite")
    assert sidecar["threshold"] == list(model.threshold)
    out = export.run_tflite_stream(tmp_path / "s.tflite", x, runtime=runtime)
    np.testing.assert_array_equal(out["spike_time"], EXPECTED)
    np.testing.assert_array_equal(out["spiked"], [True, True, True, True, False, True])
    # A schedule given at run time overrides the sidecar's (here: a constant 0.9).
    out = export.run_tflite_stream(tmp_path / "s.tflite", x, runtime=runtime, threshold=0.9)
    np.testing.assert_array_equal(out["spike_time"], [0, 0, 6, 6, 6, 0])
    with pytest.raises(ValueError, match=r"`threshold` schedule is empty"):
        export.run_tflite_stream(tmp_path / "s.tflite", x, threshold=[])


def test_saved_model_serves_the_schedule(tmp_path):
    x = _constant_levels(LEVELS)
    model = _pass_through(SCHEDULE)
    model.build(x.shape)
    model.export(tmp_path / "sm")
    served = tf.saved_model.load(str(tmp_path / "sm")).signatures["serve"](x=tf.constant(x))
    np.testing.assert_array_equal(served["spike_time"].numpy(), EXPECTED)
    import json
    assert json.loads((tmp_path / "sm" / "rc_keras.json").read_text())["threshold"] == SCHEDULE


def test_int8_sidecar_has_one_quantized_threshold_per_step(tmp_path):
    from rc_keras import export
    from rc_keras.export.interpreters import StepRunner
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    model = rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=SCHEDULE)
    model.build(x.shape)
    side = export.export_tflite_step(model, tmp_path / "q.tflite", "int8", calibration=x)
    probs = side["outputs"]["probs"]
    highs = [export.quantized_threshold(v, probs["scale"], probs["zero_point"])[0]
             for v in SCHEDULE]
    assert side["threshold"] == SCHEDULE and side["threshold_q"] == highs
    assert len(set(highs)) == len(SCHEDULE)  # distinct steps, so the test below can fail
    runner = StepRunner(tmp_path / "q.tflite")
    for step in range(len(SCHEDULE) + 2):  # the last value holds past the schedule
        high = highs[min(step, len(SCHEDULE) - 1)]
        assert runner.crossed(np.array([high, -128], np.int8), step)
        assert not runner.crossed(np.array([high - 1, -128], np.int8), step)


@pytest.mark.skipif(__import__("shutil").which("gcc") is None, reason="needs gcc")
def test_bundle_carries_the_schedule_into_the_c_header(tmp_path):
    import json
    import subprocess

    from rc_keras import export
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    model = rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=SCHEDULE)
    model.build(x.shape)
    report = export.export_bundle(model, tmp_path / "out", calibration=x, int8=True)
    side = json.loads((tmp_path / "out" / "step_int8.json").read_text())
    assert report["threshold"] == side["threshold"] == SCHEDULE
    main = tmp_path / "main.c"
    main.write_text('''#include <stdio.h>
#include "rc_model_data.h"
int main(void) {
  printf("%d", RC_MODEL_THRESHOLD_STEPS);
  for (int t = 0; t < RC_MODEL_THRESHOLD_STEPS; ++t)
    printf(" %.9g %d %d", rc_model_threshold_steps[t], rc_model_threshold_q_steps[t],
           rc_model_threshold_q_low_steps[t]);
  return 0;
}
''')
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{tmp_path / 'out'}", str(main),
                    str(tmp_path / "out" / "rc_model_data.c"), "-o", str(exe)], check=True)
    values = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert int(values[0]) == len(SCHEDULE)
    rows = np.array(values[1:], float).reshape(len(SCHEDULE), 3)
    np.testing.assert_array_equal(rows[:, 0].astype(np.float32), np.float32(SCHEDULE))
    assert rows[:, 1].astype(int).tolist() == side["threshold_q"]
    assert all(v < -128 for v in rows[:, 2])  # softmax readout: no low threshold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lstm_with_random_schedule_answers_at_the_first_crossing(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 7, 2)).astype("float32") * 3
    keras.utils.set_random_seed(seed)
    model = rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(3, activation="softmax"),
                       threshold=0.9)
    model.build(x.shape)
    probs = model.step_probabilities(x).numpy()
    # Schedule values between observed maxima (never on one: no rounding ties), so
    # crossings happen at varied steps.
    values = np.unique(probs.max(-1))
    schedule = rng.choice((values[:-1] + values[1:]) / 2, size=int(rng.integers(2, 10)))
    model.threshold = schedule.tolist()
    theta = np.float32(schedule)[np.minimum(np.arange(7), len(schedule) - 1)]
    crossed = probs.max(-1) >= theta[None, :]
    expected = np.where(crossed.any(1), crossed.argmax(1), 6)
    out = model.rank_code(x)
    np.testing.assert_array_equal(out.spike_time.numpy(), expected)
    np.testing.assert_array_equal(out.spiked.numpy(), crossed.any(1))
    np.testing.assert_array_equal(tradeoff.first_crossing(probs, model.threshold).spike_time,
                                  expected)


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_rc_training_with_a_schedule_matches_the_full_sequence_reference(mode):
    # Loss, spike steps and every gradient of the halting unroll equal a full-sequence
    # pass gathered at each example's first crossing of theta_t (the helper broadcasts a
    # schedule of one value per step over time).
    from helpers import TIME, assert_rc_matches_reference, rc_setup
    keras.utils.set_random_seed(0)
    model, x, y = rc_setup(keras.layers.LSTMCell(8))
    values = np.unique(model.step_probabilities(x).numpy().max(axis=-1))
    window = np.arange(int(0.5 * len(values)), int(0.95 * len(values)))
    widest = sorted(window[np.argsort(values[window + 1] - values[window])[-3:]], reverse=True)
    mids = [float((values[i] + values[i + 1]) / 2) for i in widest]  # falling over time
    model.threshold = [mids[0]] * 4 + [mids[1]] * 4 + [mids[2]] * (TIME - 8)
    assert len(model.threshold) == TIME
    assert_rc_matches_reference(model, tf.constant(x), y, mode)


# ----------------------------------------------------------------------------- per-step fit
def _noise_then_answer(n, seed, onset=4, time=10):
    """Confidence 0.96 on a random label before ``onset``, 0.9 on the true label from it.

    The best rule within 5 steps read holds theta above 0.96 for steps 0..3 and at or
    below 0.9 from step 4: a drop of 0.06+ in one step that no exponential on the grid
    makes without crossing the noise first.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    after = np.broadcast_to(np.arange(time)[None, :] >= onset, (n, time))
    label = np.where(after, y[:, None], rng.integers(0, 2, (n, time)))
    confidence = np.where(after, 0.9, 0.96)
    p1 = np.where(label == 1, confidence, 1 - confidence).astype("float32")
    return np.stack([1 - p1, p1], axis=-1), y


def test_per_step_fit_finds_the_step_the_exponential_family_cannot_make():
    probs, y = _noise_then_answer(400, seed=0)
    levels = [0.99, 0.95, 0.9, 0.8]
    family = tradeoff.fit_threshold_schedule(probs, y, budget=5, levels=levels)
    assert family["method"] == "exponential" and family["accuracy"] < 0.6
    steps = tradeoff.fit_threshold_schedule(probs, y, budget=5, levels=levels, method="steps")
    assert steps["method"] == "steps"
    assert (steps["accuracy"], steps["mean_spike_time"]) == (1.0, 5.0)
    theta = np.asarray(steps["threshold"])
    assert len(theta) == 10 and np.all(theta[:4] > 0.96) and np.all(theta[4:] <= 0.9)
    assert np.all(np.diff(theta) <= 0)  # monotone by default
    # The reported point is the first-crossing answer with that schedule.
    (check,) = tradeoff.sweep_from_probabilities(probs, y, [steps["threshold"]])
    assert (check["accuracy"], check["mean_spike_time"]) == (1.0, 5.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_step_fit_is_never_worse_than_the_family_on_the_fitting_data(seed):
    probs, y = _noisy_then_sure(600, seed=seed)
    for budget in (5.0, 8.0, 12.0):
        family = tradeoff.fit_threshold_schedule(probs, y, budget=budget)
        steps = tradeoff.fit_threshold_schedule(probs, y, budget=budget, method="steps")
        assert steps["mean_spike_time"] <= budget
        assert steps["accuracy"] >= family["accuracy"]
        assert steps["constant"] == family["constant"]


def test_per_step_fit_needs_a_budget_and_a_known_method():
    probs, y = _noisy_then_sure(8, seed=0, time=5)
    with pytest.raises(ValueError, match=r"method='steps' fits one schedule for one budget: "
                                         r"give a `budget`"):
        tradeoff.fit_threshold_schedule(probs, y, method="steps")
    with pytest.raises(ValueError, match=r"`method` must be one of \['exponential', 'steps'\]"):
        tradeoff.fit_threshold_schedule(probs, y, budget=3, method="knots")
