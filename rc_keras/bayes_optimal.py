"""The Bayes-optimal sequential answer to the 2-sequence problem: the physical limit.

After t samples the exact posterior of the positive class, integrating the unknown noise
level s over its uniform prior, is

    P(+ | x_1..t) = Z+ / (Z+ + Z-),   Z± = ∫ prod_i N(x_i; ±mean, s) ds / (high - low),

computed here with the midpoint rule on a fine grid of s, in log space (log-likelihoods
combined with logsumexp, so that 40 samples of a small s do not underflow).
Answering at the first step where max(P, 1 - P) reaches a level, for a sweep of levels,
traces the best achievable accuracy for each mean number of steps read: no network can
lie above that frontier.
"""

import numpy as np


def two_sequence_posterior(x, mean=0.05, sigma_range=(0.05, 0.25), grid=400, chunk=2000):
    """Exact posterior P(class = 1 | x_1..x_t) for every prefix of every sequence.

    Args:
        x: (n, T) or (n, T, 1) samples.
        mean: absolute class mean.
        sigma_range: (low, high) of the uniform prior on the noise level s.
        grid: number of midpoint-rule nodes in s.
        chunk: sequences per block (bounds memory at chunk * T * grid doubles).

    Returns:
        (n, T) float64 posteriors; column t - 1 conditions on the first t samples.

    Raises:
        ValueError: if ``sigma_range`` is not 0 < low <= high or ``grid`` < 1.
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    low, high = sigma_range
    if not 0 < low <= high:
        raise ValueError(f"`sigma_range` must satisfy 0 < low <= high; received {sigma_range}.")
    if int(grid) < 1 or int(chunk) < 1:
        raise ValueError(f"`grid` and `chunk` must be positive; received {grid}, {chunk}.")
    grid, chunk = int(grid), int(chunk)
    edges = np.linspace(low, high, grid + 1)
    sigma = 0.5 * (edges[1:] + edges[:-1])  # equal weights: uniform prior
    t = np.arange(1, x.shape[1] + 1, dtype=np.float64)[None, :, None]
    inv_var = 1.0 / (2.0 * sigma**2)[None, None, :]
    log_norm = -t * np.log(sigma)[None, None, :]
    out = np.empty(x.shape, np.float64)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        s1 = np.cumsum(block, axis=1)[..., None]
        s2 = np.cumsum(block**2, axis=1)[..., None]
        log_plus = _logsumexp(log_norm - (s2 - 2 * mean * s1 + t * mean**2) * inv_var)
        log_minus = _logsumexp(log_norm - (s2 + 2 * mean * s1 + t * mean**2) * inv_var)
        out[start:start + chunk] = 1.0 / (1.0 + np.exp(np.clip(log_minus - log_plus, -700, 700)))
    return out


def _logsumexp(values):
    peak = values.max(axis=-1, keepdims=True)
    return (peak + np.log(np.exp(values - peak).sum(axis=-1, keepdims=True)))[..., 0]


def first_confident_step(posterior, level):
    """When the Bayes-optimal reader answers at a confidence level.

    Args:
        posterior: (n, T) posteriors of the positive class.
        level: confidence level in [0.5, 1].

    Returns:
        (n,) 0-based step of the first max(P, 1 - P) >= level; the last step if none.
    """
    confident = np.maximum(posterior, 1.0 - posterior) >= level
    return np.where(confident.any(axis=1), confident.argmax(axis=1), posterior.shape[1] - 1)


def bayes_frontier(x, y, levels=None, posterior=None, **kwargs):
    """Accuracy vs mean steps read of the Bayes-optimal reader over confidence levels.

    For each level the reader answers at the first step where max(P, 1 - P) >= level
    (at the last step if that never happens), with the more probable class.

    Args:
        x: (n, T) or (n, T, 1) sequences.
        y: (n,) labels (1 positive, 0 negative).
        levels: confidence levels in [0.5, 1]; default a dense sweep.
        posterior: precomputed `two_sequence_posterior(x)` (optional; saves the
            integration when several frontiers share a test set).
        **kwargs: passed to `two_sequence_posterior`.

    Returns:
        List of dicts ``{"level", "accuracy", "mean_steps"}`` sorted by mean_steps;
        accuracy is a fraction, mean_steps counts samples read (0-based step + 1).
    """
    post = two_sequence_posterior(x, **kwargs) if posterior is None else posterior
    y = np.asarray(y).reshape(-1)
    if levels is None:
        levels = np.concatenate([np.linspace(0.5, 0.99, 50), 1 - np.geomspace(1e-2, 1e-7, 30)])
    points = []
    for level in levels:
        steps = first_confident_step(post, level)
        answer = post[np.arange(len(y)), steps] >= 0.5
        points.append({"level": float(level), "accuracy": float(np.mean(answer == (y == 1))),
                       "mean_steps": float(np.mean(steps + 1))})
    return sorted(points, key=lambda p: p["mean_steps"])


def frontier_accuracy_at(frontier, mean_steps):
    """Optimal accuracy at a given mean number of steps read.

    Linear interpolation between frontier points of the upper envelope (the best
    accuracy of any point at most that slow), clamped at the ends of the frontier.

    Args:
        frontier: points of `bayes_frontier` (dicts with "accuracy" and "mean_steps").
        mean_steps: mean samples read (1-based), e.g. a network's mean spike step.

    Returns:
        Accuracy as a fraction.
    """
    steps = np.array([p["mean_steps"] for p in frontier])
    envelope = np.maximum.accumulate(np.array([p["accuracy"] for p in frontier]))
    return float(np.interp(mean_steps, steps, envelope))
