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
