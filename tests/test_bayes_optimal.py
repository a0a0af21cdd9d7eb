"""The Bayes-optimal 2-sequence reader against direct numerical integration."""

import numpy as np
import pytest
from scipy import integrate, stats

from rc_keras import bayes_optimal as bo
from rc_keras.datasets import two_sequence


def test_posterior_matches_direct_integration():
    x, _ = two_sequence(3, seed=4, steps=6)
    post = bo.two_sequence_posterior(x, grid=2000)
    for row in range(3):
        for t in (1, 3, 6):
            def joint(s, sign):
                return np.prod(stats.norm.pdf(x[row, :t, 0], sign * 0.05, s))
            plus = integrate.quad(joint, 0.05, 0.25, args=(1,))[0]
            minus = integrate.quad(joint, 0.05, 0.25, args=(-1,))[0]
            assert post[row, t - 1] == pytest.approx(plus / (plus + minus), abs=1e-6)


def test_known_noise_level_reduces_to_a_logistic_of_the_sum():
    x = np.array([[0.1, -0.02, 0.3]])
    post = bo.two_sequence_posterior(x, sigma_range=(0.1, 0.1), grid=1)
    expected = 1 / (1 + np.exp(-2 * 0.05 * np.cumsum(x) / 0.1**2))
    np.testing.assert_allclose(post[0], expected, rtol=1e-10)


def test_frontier_is_monotone_and_interpolates():
    x, y = two_sequence(2000, seed=1)
    frontier = bo.bayes_frontier(x, y)
    steps = [p["mean_steps"] for p in frontier]
    assert steps == sorted(steps) and steps[0] >= 1 and steps[-1] <= 40
    envelope = np.maximum.accumulate([p["accuracy"] for p in frontier])
    assert envelope[-1] > 0.94  # reading everything is nearly always right
    assert bo.frontier_accuracy_at(frontier, steps[-1]) == pytest.approx(envelope[-1])
    mid = 0.5 * (steps[10] + steps[11])
    assert envelope[10] <= bo.frontier_accuracy_at(frontier, mid) <= envelope[11]


def test_first_confident_step():
    post = np.array([[0.5, 0.8, 0.99], [0.5, 0.4, 0.3], [0.1, 0.5, 0.5]])
    np.testing.assert_array_equal(bo.first_confident_step(post, 0.9), [2, 2, 0])


def test_posterior_is_antisymmetric_in_the_sign_of_the_input():
    x, _ = two_sequence(5, seed=2, steps=8)
    post = bo.two_sequence_posterior(x)
    np.testing.assert_allclose(bo.two_sequence_posterior(-x), 1 - post, atol=1e-12)
    assert np.all((post > 0) & (post < 1))


def test_posterior_converges_with_the_grid():
    x, _ = two_sequence(20, seed=3, steps=40)
    coarse = bo.two_sequence_posterior(x, grid=400)
    fine = bo.two_sequence_posterior(x, grid=4000)
    np.testing.assert_allclose(coarse, fine, atol=1e-4)


def test_frontier_end_points():
    x, y = two_sequence(300, seed=5, steps=12)
    post = bo.two_sequence_posterior(x)
    first, last = bo.bayes_frontier(x, y, levels=[0.5, 1.0], posterior=post)
    # Level 0.5 answers at once; level 1 is never reached, so all samples are read.
    assert first["mean_steps"] == 1.0 and last["mean_steps"] == 12.0
    assert last["accuracy"] == pytest.approx(np.mean((post[:, -1] >= 0.5) == (y == 1)))
    assert bo.frontier_accuracy_at([first, last], 0.0) == first["accuracy"]
    assert bo.frontier_accuracy_at([first, last], 99.0) == last["accuracy"]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="sigma_range"):
        bo.two_sequence_posterior(np.zeros((1, 3)), sigma_range=(0.0, 0.2))
    with pytest.raises(ValueError, match="grid"):
        bo.two_sequence_posterior(np.zeros((1, 3)), grid=0)
