import itertools

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import tradeoff


def _softmax_probs(max_probs):
    """(batch, time, 2) probabilities whose class-1 probability is ``max_probs``."""
    p = np.asarray(max_probs, dtype=np.float32)
    return np.stack([1.0 - p, p], axis=-1)


# ---------------------------------------------------------------------- first_crossing
def test_first_crossing_softmax_exact_steps():
    probs = _softmax_probs([
        [0.6, 0.7, 0.96, 0.99, 0.5],   # crosses at 2
        [0.97, 0.5, 0.5, 0.5, 0.5],    # crosses at 0
        [0.6, 0.6, 0.6, 0.6, 0.94],    # never: answers at the last step
        [0.5, 0.5, 0.5, 0.5, 0.95],    # exactly theta counts: crosses at 4
    ])
    probs[1] = probs[1][:, ::-1]  # class 0 confident: the max probability is what counts
    out = tradeoff.first_crossing(probs, 0.95)
    np.testing.assert_array_equal(out.spike_time, [2, 0, 4, 4])
    np.testing.assert_array_equal(out.spiked, [True, True, False, True])
    np.testing.assert_allclose(out.probs[:, 1], [0.96, 0.03, 0.94, 0.95], atol=1e-6)
    assert out.spike_time.dtype == np.int32


def test_first_crossing_lengths_never_spike_in_padding():
    probs = _softmax_probs([
        [0.6, 0.7, 0.8, 0.99, 0.99],   # length 3: the crossing at 3 is padding
        [0.6, 0.97, 0.8, 0.99, 0.99],  # length 3: crosses at 1
        [0.99, 0.99, 0.99, 0.99, 0.99],  # length 1: spikes at 0
        [0.6, 0.6, 0.6, 0.6, 0.99],    # length 5 = time: all steps valid
    ])
    out = tradeoff.first_crossing(probs, 0.95, lengths=[3, 3, 1, 5])
    np.testing.assert_array_equal(out.spike_time, [2, 1, 0, 4])
    np.testing.assert_array_equal(out.spiked, [False, True, True, True])
    np.testing.assert_allclose(out.probs[0, 1], 0.8, atol=1e-6)
    # The model's rule: a length of 0 (an answer from padding) or beyond the input is refused.
    for lengths in ([3, 3, 0, 5], [3, 3, 1, 9]):
        with pytest.raises(ValueError, match=r"`lengths` must hold one integer in \[1, 5\]"):
            tradeoff.first_crossing(probs, 0.95, lengths=lengths)


def test_first_crossing_mask_matches_lengths():
    rng = np.random.default_rng(0)
    probs = _softmax_probs(rng.uniform(0.5, 1.0, size=(20, 7)))
    lengths = rng.integers(1, 8, size=20)
    mask = np.arange(7)[None, :] < lengths[:, None]
    a = tradeoff.first_crossing(probs, 0.9, lengths=lengths)
    b = tradeoff.first_crossing(probs, 0.9, mask=mask)
    np.testing.assert_array_equal(a.spike_time, b.spike_time)
    np.testing.assert_array_equal(a.spiked, b.spiked)


def test_first_crossing_sigmoid_both_sides():
    p = np.array([
        [0.5, 0.6, 0.95, 0.5],   # p >= theta at 2
        [0.5, 0.04, 0.99, 0.5],  # p <= 1 - theta at 1
        [0.5, 0.4, 0.6, 0.7],    # never: last step
        [0.5, 0.5, 0.05, 0.5],   # p == 1 - theta (in float32) at 2
    ], dtype=np.float32)[..., None]
    out = tradeoff.first_crossing(p, 0.95, readout="sigmoid", lengths=[4, 4, 4, 4])
    np.testing.assert_array_equal(out.spike_time, [2, 1, 3, 2])
    np.testing.assert_array_equal(out.spiked, [True, True, False, True])
    np.testing.assert_allclose(out.probs[:, 0], [0.95, 0.04, 0.7, 0.05], atol=1e-6)


def test_first_crossing_bad_arguments():
    probs = _softmax_probs([[0.6, 0.7]])
    with pytest.raises(ValueError, match="between 0 and 1"):
        tradeoff.first_crossing(probs, 1.0)
    with pytest.raises(ValueError, match="sigmoid"):
        tradeoff.first_crossing(probs, 0.9, readout="sigmoid")
    with pytest.raises(ValueError, match="shape"):
        tradeoff.first_crossing(probs[0], 0.9)
    with pytest.raises(ValueError, match="lengths"):
        tradeoff.first_crossing(probs, 0.9, lengths=[1, 2])


def test_first_crossing_matches_the_model_unroll():
    """Same rules as `rank_coding.rank_code` on random per-step probabilities."""
    import tensorflow as tf

    from rc_keras import rank_coding

    rng = np.random.default_rng(3)
    for readout, outputs in (("softmax", 3), ("sigmoid", 1)):
        if readout == "softmax":
            logits = rng.normal(scale=2.0, size=(32, 9, outputs))
            probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        else:
            probs = rng.uniform(size=(32, 9, 1))
        probs = probs.astype(np.float32)
        lengths = rng.integers(1, 10, size=32)
        x = tf.constant(probs)
        step_mask = rank_coding.step_mask_from(x, lengths=tf.constant(lengths))
        out = rank_coding.rank_code(lambda x_t, s: (x_t, s), x, [tf.zeros((32, 1))], outputs,
                                    0.8, readout, "rc", step_mask)
        mine = tradeoff.first_crossing(probs, 0.8, readout, lengths=lengths)
        np.testing.assert_array_equal(mine.spike_time, out.spike_time.numpy())
        np.testing.assert_array_equal(mine.spiked, out.spiked.numpy())
        np.testing.assert_array_equal(mine.probs, out.probs.numpy())


# ---------------------------------------------------------------------- threshold_sweep
@pytest.fixture(scope="module")
def trained_spotting():
    keras.utils.set_random_seed(7)
    x, y = rk.datasets.spotting(600, seed=11)
    model = rk.RCModel(keras.layers.LSTMCell(16), keras.layers.Dense(2, activation="softmax"),
                       threshold=0.9)
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=rk.ConfidencePenalty(beta=0.05))
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    x_test, y_test = rk.datasets.spotting(300, seed=12)
    return model, x_test, y_test


def test_threshold_sweep_agrees_with_predict(trained_spotting):
    model, x, y = trained_spotting
    thresholds = [0.55, 0.7, 0.9]
    points = tradeoff.threshold_sweep(model, x, y, thresholds, batch_size=128)
    step_probs = tradeoff.all_step_probabilities(model, x, batch_size=100)
    assert step_probs.shape == (len(x), x.shape[1], 2)
    spike_times = set()
    for theta, point in zip(thresholds, points):
        model.threshold = theta
        out = model.predict(x, batch_size=128, verbose=0)
        crossing = tradeoff.first_crossing(step_probs, theta)
        np.testing.assert_array_equal(crossing.spike_time, out["spike_time"])
        np.testing.assert_array_equal(crossing.spiked, out["spiked"])
        np.testing.assert_allclose(crossing.probs, out["probs"], atol=1e-5)
        assert point["threshold"] == theta
        assert point["accuracy"] == pytest.approx(np.mean(out["label"] == y))
        assert point["mean_spike_time"] == pytest.approx(np.mean(out["spike_time"] + 1))
        assert point["no_spike_rate"] == pytest.approx(1.0 - np.mean(out["spiked"]))
        spike_times.add(round(point["mean_spike_time"], 3))
    # The test is only meaningful if the thresholds lead to different answers.
    assert len(spike_times) > 1
    model.threshold = 0.9


def test_threshold_sweep_with_lengths_agrees_with_predict(trained_spotting):
    model, x, y = trained_spotting
    lengths = np.random.default_rng(0).integers(1, x.shape[1] + 1, size=len(x)).astype(np.int32)
    (point,) = tradeoff.threshold_sweep(model, x, y, [0.6], lengths=lengths)
    model.threshold = 0.6
    out = model.predict({"inputs": x, "lengths": lengths}, batch_size=128, verbose=0)
    model.threshold = 0.9
    assert np.all(out["spike_time"] < lengths)
    assert point["mean_spike_time"] == pytest.approx(np.mean(out["spike_time"] + 1))
    assert point["accuracy"] == pytest.approx(np.mean(out["label"] == y))


def test_sweep_from_probabilities_sigmoid_and_one_hot():
    p = np.array([[0.5, 0.97, 0.5], [0.5, 0.5, 0.02], [0.4, 0.3, 0.6]], np.float32)[..., None]
    y = np.array([1, 0, 0])
    (point,) = tradeoff.sweep_from_probabilities(p, y, [0.95], readout="sigmoid")
    # Answers 0.97 (label 1, right) at 2 steps, 0.02 (label 0, right) at 3, 0.6 (label 1,
    # wrong) at 3 without a spike.
    assert point == {"threshold": 0.95, "accuracy": pytest.approx(2 / 3),
                     "mean_spike_time": pytest.approx(8 / 3), "no_spike_rate": pytest.approx(1 / 3)}
    probs = _softmax_probs([[0.6, 0.96], [0.3, 0.2]])
    (a,) = tradeoff.sweep_from_probabilities(probs, [1, 0], [0.9])
    (b,) = tradeoff.sweep_from_probabilities(probs, np.eye(2)[[1, 0]], [0.9])
    assert a == b and a["accuracy"] == 1.0


# ---------------------------------------------------------------------- frontier
def _dominated(p, q):
    """True when q dominates p: at least as fast and accurate, strictly better in one."""
    return (q["mean_spike_time"] <= p["mean_spike_time"] and q["accuracy"] >= p["accuracy"]
            and (q["mean_spike_time"] < p["mean_spike_time"] or q["accuracy"] > p["accuracy"]))


def test_composite_frontier_against_brute_force():
    rng = np.random.default_rng(5)
    for trial in range(30):
        curves = {}
        for beta in range(rng.integers(1, 5)):
            n = int(rng.integers(1, 8))
            # Coarse values, so ties in time and in accuracy occur.
            curves[f"beta={beta}"] = [
                {"threshold": 0.5 + 0.05 * i, "accuracy": float(rng.integers(0, 10)) / 10,
                 "mean_spike_time": float(rng.integers(1, 10)), "no_spike_rate": 0.0}
                for i in range(n)]
        frontier = tradeoff.composite_frontier(curves)
        everything = [dict(p, curve=name) for name, pts in curves.items() for p in pts]
        expected = {(p["mean_spike_time"], p["accuracy"]) for p in everything
                    if not any(_dominated(p, q) for q in everything)}
        got = [(p["mean_spike_time"], p["accuracy"]) for p in frontier]
        assert len(got) == len(set(got)), "duplicate frontier point"
        assert set(got) == expected, f"trial {trial}"
        assert got == sorted(got)
        for p in frontier:
            assert p in everything  # carries its curve name and threshold
        for p, q in itertools.permutations(frontier, 2):
            assert not _dominated(p, q)


def test_composite_frontier_list_input_and_empty():
    a = [{"accuracy": 0.9, "mean_spike_time": 10.0}, {"accuracy": 0.8, "mean_spike_time": 5.0}]
    b = [{"accuracy": 0.85, "mean_spike_time": 4.0}]
    frontier = tradeoff.composite_frontier([a, b])
    assert [(p["curve"], p["accuracy"]) for p in frontier] == [("1", 0.85), ("0", 0.9)]
    assert tradeoff.composite_frontier({}) == []


# ---------------------------------------------------------------------- plot, table
def test_plot_tradeoff_writes_png(tmp_path):
    curves = {"beta=0": [{"threshold": 0.9, "accuracy": 0.9, "mean_spike_time": 10.0},
                         {"threshold": 0.6, "accuracy": 0.7, "mean_spike_time": 3.0}],
              "beta=0.1": [{"threshold": 0.9, "accuracy": 0.88, "mean_spike_time": 6.0}]}
    path = tradeoff.plot_tradeoff(curves, tmp_path / "t.png",
                                  frontier=tradeoff.composite_frontier(curves), time_unit="ms")
    data = (tmp_path / "t.png").read_bytes()
    assert path == str(tmp_path / "t.png")
    assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_format_table():
    points = [{"threshold": 0.9, "accuracy": 0.91234, "mean_spike_time": 12.345,
               "no_spike_rate": 0.05}]
    table = tradeoff.format_table(points)
    lines = table.splitlines()
    assert lines[0] == "| θ | accuracy | mean spike time (steps read) | no-spike rate |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| 0.9 | 0.9123 | 12.35 | 0.0500 |"
    with_curve = tradeoff.format_table(tradeoff.composite_frontier({"b": points}))
    assert with_curve.splitlines()[0].startswith("| curve | θ |")
    assert "| b | 0.9 |" in with_curve
