"""RCModel as a Keras model: fit/evaluate/predict, cells, masks, saving, resuming, bad input."""

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import tradeoff

T, F = 9, 3


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, F)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
    return x, y


def _model(cell=None, **kwargs):
    model = rk.RCModel(cell or keras.layers.LSTMCell(8),
                       keras.Sequential([keras.layers.Dense(8, activation="relu"),
                                         keras.layers.Dense(2, activation="softmax")]),
                       threshold=0.8, **kwargs)
    model.compile(keras.optimizers.Adam(1e-2), rk.ConfidencePenalty(beta=0.1),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.NoSpikeRate(), rk.metrics.StepsRun()])
    return model


def test_fit_reports_rc_metrics_and_learns():
    x, y = _data(256)
    model = _model()
    history = model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    for name in ("loss", "spike_accuracy", "mean_spike_time", "no_spike_rate", "steps_run"):
        assert name in history.history
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    out = model.predict(x, verbose=0)
    assert set(out) == {"probs", "spike_time", "spiked", "label"}
    assert out["spike_time"].dtype == np.int32 and out["spiked"].dtype == bool
    np.testing.assert_allclose(result["spike_accuracy"], np.mean(out["label"] == y), atol=1e-6)
    np.testing.assert_allclose(result["mean_spike_time"], np.mean(out["spike_time"] + 1), atol=1e-4)
    np.testing.assert_allclose(result["no_spike_rate"], 1 - np.mean(out["spiked"]), atol=1e-6)


@pytest.mark.parametrize("cell", [
    lambda: keras.layers.GRUCell(6),
    lambda: keras.layers.SimpleRNNCell(6),
    lambda: [keras.layers.LSTMCell(6), keras.layers.LSTMCell(4)],
    lambda: keras.layers.LSTMCell(6, dropout=0.2, recurrent_dropout=0.2),
])
def test_trains_with_any_keras_cell(cell):
    x, y = _data()
    model = _model(cell())
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert model.predict(x[:4], verbose=0)["probs"].shape == (4, 2)


def test_tf_data_with_lengths_never_spikes_in_padding():
    import tensorflow as tf
    x, y = _data(32)
    lengths = np.random.default_rng(1).integers(1, T + 1, size=32).astype("int32")
    x[np.arange(T)[None, :] >= lengths[:, None]] = 50.0  # garbage in the padding
    model = _model()
    model.threshold = 0.5000001  # nearly every valid step crosses
    ds = tf.data.Dataset.from_tensor_slices(({"inputs": x, "lengths": lengths}, y)).batch(8)
    model.fit(ds, epochs=1, verbose=0)
    out = model.predict({"inputs": x, "lengths": lengths}, verbose=0)
    assert np.all(out["spike_time"] < lengths)


def test_save_load_round_trip_and_resume(tmp_path):
    x, y = _data(128)
    model = _model()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.threshold = 0.7
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects
    assert isinstance(loaded, rk.RCModel) and loaded.threshold == pytest.approx(0.7)
    a, b = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    np.testing.assert_array_equal(a["spike_time"], b["spike_time"])
    np.testing.assert_array_equal(a["label"], b["label"])
    np.testing.assert_allclose(a["probs"], b["probs"], atol=1e-7)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 8
    # Training resumes with the optimizer state: one more epoch gives identical weights.
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for w1, w2 in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(w1.numpy(), w2.numpy(), atol=1e-6)


def test_sigmoid_readout_with_binary_penalty():
    x, y = _data(128)
    model = rk.RCModel(keras.layers.GRUCell(8), keras.layers.Dense(1, activation="sigmoid"),
                       threshold=0.8, readout="sigmoid")
    model.compile("adam", rk.ConfidencePenalty(beta=0.1), metrics=[rk.metrics.SpikeAccuracy()])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    out = model.predict(x, verbose=0)
    assert out["probs"].shape == (128, 1) and set(np.unique(out["label"])) <= {0, 1}


def test_inference_mode_eos_reads_the_last_step():
    x, _ = _data(16)
    model = _model(inference_mode="eos")
    assert np.all(model.predict(x, verbose=0)["spike_time"] == T - 1)


# ----------------------------------------------------------------------------- bad input
def test_bad_constructor_arguments():
    cell, head = keras.layers.LSTMCell(4), keras.layers.Dense(2, activation="softmax")
    for theta in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            rk.RCModel(cell, head, threshold=theta)
    with pytest.raises(ValueError, match="readout"):
        rk.RCModel(cell, head, readout="argmax")
    with pytest.raises(ValueError, match="training_mode"):
        rk.RCModel(cell, head, training_mode="bptt")
    with pytest.raises(ValueError, match="beta"):
        rk.ConfidencePenalty(beta=-0.1)
    model = rk.RCModel(cell, head)
    with pytest.raises(ValueError, match="threshold"):
        model.threshold = 1.0


def test_bad_inputs_name_the_problem():
    x, y = _data(16)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="rank"):
        model.predict(x[:, :, 0], verbose=0)
    with pytest.raises(ValueError, match=r"feature shape \(5,\).*built for \(3,\)"):
        model.predict(np.zeros((2, T, 5), "float32"), verbose=0)
    bad = x.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.fit(bad, y, verbose=0)
    bad[0, 1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.predict(bad, verbose=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 2\].*2 classes"):
        model.fit(x, np.where(y == 1, 2, 0), verbose=0)
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(x, -np.ones_like(y), verbose=0)


def test_labels_out_of_range_fail_in_graph_for_tf_data():
    import tensorflow as tf
    x, y = _data(16)
    model = _model()
    ds = tf.data.Dataset.from_tensor_slices((x, y + 5)).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < number of classes"):
        model.fit(ds, epochs=1, verbose=0)


def test_model_export_writes_the_rc_serving_endpoint(tmp_path):
    import tensorflow as tf
    x, y = _data(32)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    model.export(tmp_path / "sm")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    served = loaded.serve(tf.constant(x))
    np.testing.assert_array_equal(served["spike_time"].numpy(),
                                  model.predict(x, verbose=0)["spike_time"])


# ----------------------------------------------------------------------------- threshold
@pytest.mark.parametrize("theta", [0.9, 0.9999999, float(np.nextafter(np.float32(1), 0)),
                                   0.7000001])
def test_threshold_round_trips_exactly_through_save_load_and_export(theta, tmp_path):
    import tensorflow as tf
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(2, activation="softmax"),
                       threshold=theta)
    model.build((None, 3, 1))
    stored = np.float32(model._threshold.numpy())
    assert stored == np.float32(theta) and np.float32(model.threshold) == stored
    assert model.get_config()["threshold"] == model.threshold
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.threshold == model.threshold
    assert np.float32(loaded._threshold.numpy()) == stored
    model.export(tmp_path / "sm")  # checks the threshold again before writing
    saved = tf.saved_model.load(str(tmp_path / "sm"))
    assert saved.serve(tf.zeros((1, 3, 1)))["spike_time"].shape == (1,)


@pytest.mark.parametrize("theta", [1 - 1e-9, 1e-46])
def test_threshold_that_float32_rounds_to_zero_or_one_is_refused(theta):
    with pytest.raises(ValueError, match=r"`threshold` is stored in float32, where .* becomes"):
        rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(2, activation="softmax"),
                   threshold=theta)


# ----------------------------------------------------------------------------- masks, lengths
def _small(**kwargs):
    model = rk.RCModel(keras.layers.SimpleRNNCell(3), keras.layers.Dense(3, activation="softmax"),
                       threshold=0.5, **kwargs)
    model.compile("sgd", rk.ConfidencePenalty(beta=0.1))
    return model


@pytest.mark.parametrize("shape", [(4, 8), (4, 4), (6, 4), (4, 6, 1), (4,)])
def test_mask_of_the_wrong_shape_is_refused(shape):
    import tensorflow as tf
    x = np.random.default_rng(0).normal(size=(4, 6, 1)).astype("float32")
    y = np.array([0, 1, 2, 0])
    mask = np.ones(shape, bool)
    model = _small()
    match = r"`mask` must be a \(batch, time\) = \(4, 6\) array.*received shape"
    with pytest.raises(ValueError, match=match):
        model.predict({"inputs": x, "mask": mask}, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.evaluate({"inputs": x, "mask": mask}, y, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.rank_code({"inputs": x, "mask": mask})
    if shape[0] == 4:  # a tf.data pipeline: the static shapes disagree while tracing
        ds = tf.data.Dataset.from_tensor_slices(({"inputs": x, "mask": mask}, y)).batch(2)
        with pytest.raises(ValueError, match=r"`mask` must be a \(batch, time\)"):
            model.evaluate(ds, verbose=0)


def test_mask_row_without_a_valid_step_is_refused():
    import tensorflow as tf
    x = np.ones((2, 3, 1), "float32")
    mask = np.array([[1, 1, 0], [0, 0, 0]], bool)
    model = _small()
    with pytest.raises(ValueError, match="sequence 1 has no valid step"):
        model.predict({"inputs": x, "mask": mask}, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices({"inputs": x, "mask": mask}).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one valid step"):
        model.predict(ds, verbose=0)
    masked = _small(mask_value=0.0)
    with pytest.raises(ValueError, match=r"sequence 1 of `x` is all padding \(every step equals "
                                         r"mask_value=0.0\)"):
        masked.predict(np.stack([np.ones((3, 1)), np.zeros((3, 1))]).astype("float32"), verbose=0)


@pytest.mark.parametrize("lengths", [[0, -3, 6, 2], [6, 6, 7, 1], [0, 0, 0, 0]])
def test_lengths_outside_one_to_t_are_refused_everywhere(lengths):
    import tensorflow as tf
    x = np.random.default_rng(0).normal(size=(4, 6, 1)).astype("float32")
    y = np.array([0, 1, 2, 0])
    model = _small()
    model.build(x.shape)
    before = [w.numpy() for w in model.weights]
    inputs = {"inputs": x, "lengths": np.array(lengths, "int32")}
    match = r"`lengths` must hold one integer in \[1, 6\] per sequence \(4 sequences\)"
    with pytest.raises(ValueError, match=match):
        model.predict(inputs, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.fit(inputs, y, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.rank_code(inputs)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    ds = tf.data.Dataset.from_tensor_slices((inputs, y)).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`lengths` must hold one integer"):
        model.fit(ds, verbose=0)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_lengths_of_the_wrong_count_or_dtype_and_empty_time_are_refused():
    x = np.zeros((4, 6, 1), "float32")
    model = _small()
    with pytest.raises(ValueError, match=r"`lengths` must hold .*received shape \(3,\)"):
        model.predict({"inputs": x, "lengths": np.array([1, 2, 3])}, verbose=0)
    with pytest.raises(ValueError, match=r"`lengths` must hold .*received dtype float"):
        model.predict({"inputs": x, "lengths": np.array([1.0, 2.0, 3.0, 4.0])}, verbose=0)
    with pytest.raises(ValueError, match="give `lengths` or `mask`, not both"):
        model.predict({"inputs": x, "lengths": np.ones(4, "int32"),
                       "mask": np.ones((4, 6), bool)}, verbose=0)
    with pytest.raises(ValueError, match=r"`x` must hold at least one time step; received shape "
                                         r"\(4, 0, 1\)"):
        model.predict(np.zeros((4, 0, 1), "float32"), verbose=0)
    with pytest.raises(ValueError, match="at least one time step"):
        model.fit(np.zeros((4, 0, 1), "float32"), np.zeros(4, "int32"), verbose=0)


# ----------------------------------------------------------------------------- dtypes
def test_spike_test_runs_in_float32_for_bfloat16_inputs():
    import tensorflow as tf
    from helpers import PassThroughCell, identity_head
    # bfloat16(0.948) = 0.94921875 < 0.95, but bfloat16(0.95) is 0.94921875 too: compared in
    # bfloat16 it spiked; in float32 (the threshold's own precision) it must not.
    x = np.array([[[0.948, 0.052]] * 3], "float32")
    model = rk.RCModel(PassThroughCell(2), identity_head(), threshold=0.95)
    out = model.rank_code(tf.constant(x, tf.bfloat16))
    assert out.probs.dtype == tf.float32 and not out.spiked.numpy()[0]
    predicted = model.predict(tf.constant(x, tf.bfloat16), verbose=0)
    assert predicted["probs"].dtype == np.float32 and not predicted["spiked"][0]
    assert predicted["spike_time"][0] == 2


def test_mixed_bfloat16_answers_the_same_for_int_and_float_inputs():
    import tensorflow as tf
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        rng = np.random.default_rng(0)
        x = rng.integers(-3, 4, size=(32, 8, 3))
        for seed in range(4):
            keras.utils.set_random_seed(seed)
            model = rk.RCModel(keras.layers.LSTMCell(4),
                               keras.layers.Dense(2, activation="softmax"), threshold=0.6)
            a = model.rank_code(tf.constant(x, tf.int32))
            b = model.rank_code(tf.constant(x, tf.float32))
            assert a.probs.dtype == b.probs.dtype == tf.float32
            np.testing.assert_array_equal(a.spike_time.numpy(), b.spike_time.numpy())
            np.testing.assert_array_equal(a.spiked.numpy(), b.spiked.numpy())
            np.testing.assert_array_equal(a.probs.numpy(), b.probs.numpy())
    finally:
        keras.config.set_dtype_policy(previous)


def test_threshold_can_be_set_inside_a_tf_function():
    import tensorflow as tf
    model = _small()
    x = np.random.default_rng(0).normal(size=(4, 6, 1)).astype("float32")
    model.build(x.shape)

    @tf.function
    def predict_at(theta):
        model.threshold = theta
        return model.rank_code(x).spike_time, model.threshold

    times, read = predict_at(tf.constant(0.7))
    assert model.threshold == pytest.approx(0.7) and float(read) == np.float32(0.7)
    model.threshold = 0.7
    np.testing.assert_array_equal(times.numpy(), model.rank_code(x).spike_time.numpy())

    @tf.function
    def set_python_float():
        model.threshold = 0.85
        return model.threshold

    assert float(set_python_float()) == np.float32(0.85) and model.threshold == 0.85
    with pytest.raises(tf.errors.InvalidArgumentError, match="strictly between 0 and 1"):
        predict_at(tf.constant(1.5))
    assert model.threshold == 0.85  # the bad value was never assigned


# ----------------------------------------------------------------------------- degenerate theta
@pytest.mark.parametrize("theta", [0.5, 0.3, 1e-6])
def test_sigmoid_threshold_at_or_below_one_half_is_refused(theta):
    head = keras.layers.Dense(1, activation="sigmoid")
    with pytest.raises(ValueError, match=r"`threshold` must be above 0.5 for this model; received "
                                         r".*readout='sigmoid'.*every sequence would answer"):
        rk.RCModel(keras.layers.SimpleRNNCell(2), head, threshold=theta, readout="sigmoid")
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), head, threshold=0.9, readout="sigmoid")
    with pytest.raises(ValueError, match="must be above 0.5"):
        model.threshold = theta
    assert model.threshold == 0.9


@pytest.mark.parametrize("classes, theta", [(2, 0.5), (3, 1 / 3), (4, 0.2)])
def test_softmax_threshold_at_or_below_one_over_c_is_refused(classes, theta):
    import tensorflow as tf
    head = keras.layers.Dense(classes, activation="softmax")
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), head, threshold=theta)  # C unknown yet
    with pytest.raises(ValueError, match=rf"`threshold` must be above {1 / classes:g} for this "
                                         rf"model.*{classes} softmax probabilities"):
        model.build((None, 3, 1))
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), head, threshold=0.99)
    model.build((None, 3, 1))
    with pytest.raises(ValueError, match=rf"must be above {1 / classes:g}"):
        model.threshold = theta
    with pytest.raises(ValueError, match=rf"must be above {1 / classes:g}"):
        tradeoff.first_crossing(np.full((1, 3, classes), 1 / classes, "float32"), theta)

    @tf.function
    def set_in_graph(value):
        model.threshold = value

    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"must be above {1 / classes:g}"):
        set_in_graph(tf.constant(theta, tf.float32))
    assert model.threshold == 0.99
    model.threshold = float(np.nextafter(np.float32(1 / classes), np.float32(1)))  # just above
