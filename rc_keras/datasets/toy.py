"""The paper's two toy tasks: continuous sequence spotting and the 2-sequence problem.

Each task has an array generator (numpy, seeded) and a ``*_dataset`` wrapper that returns
a batched ``tf.data.Dataset`` of ``(x, y)`` with ``x`` of shape (batch, time, 1).
"""

import numpy as np


def _rng(seed):
    return np.random.default_rng(seed)


def spotting(num_sequences, seed=0, steps=25, run_length=5, rate=0.5):
    """Continuous sequence spotting: is there a run of ``run_length`` equal inputs?

    Inputs are binary, each step 1 with probability ``rate`` (a Poisson spike train
    discretized in time). The label is 1 when some run of at least ``run_length``
    equal consecutive values (all 0 or all 1) occurs, else 0. A perfect rank-coded
    reader can answer "yes" as soon as the first run completes.

    Args:
        num_sequences: number of sequences.
        seed: random seed.
        steps: sequence length.
        run_length: length of the run to spot.
        rate: probability of a 1 at each step.

    Returns:
        ``(x, y)``: float32 (num_sequences, steps, 1) and int32 (num_sequences,).
    """
    if num_sequences < 1 or steps < 1 or run_length < 1:
        raise ValueError("`num_sequences`, `steps` and `run_length` must be positive integers.")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"`rate` must lie in [0, 1]; received {rate}.")
    bits = (_rng(seed).random((num_sequences, steps)) < rate).astype(np.float32)
    labels = (run_completion_step(bits, run_length) >= 0).astype(np.int32)
    return bits[..., None], labels


def run_completion_step(bits, run_length=5):
    """0-based step at which the first run of ``run_length`` equal values completes.

    Args:
        bits: (num_sequences, steps) or (num_sequences, steps, 1) binary array.
        run_length: run length.

    Returns:
        (num_sequences,) int array, -1 where no run occurs.
    """
    bits = np.asarray(bits).reshape(len(bits), -1)
    count = np.ones(len(bits), dtype=np.int64)
    done = np.full(len(bits), -1, dtype=np.int64)
    if run_length == 1:
        done[:] = 0
        return done
    for t in range(1, bits.shape[1]):
        count = np.where(bits[:, t] == bits[:, t - 1], count + 1, 1)
        done = np.where((done < 0) & (count >= run_length), t, done)
    return done


def two_sequence(num_sequences, seed=0, steps=40, mean=0.05, sigma_range=(0.05, 0.25)):
    """The 2-sequence problem: is the mean of a noisy sequence +mean or -mean?

    Each sequence draws a class c (+1 or -1 with equal probability) and a noise level
    s ~ U(sigma_range), then ``steps`` samples x_t ~ N(c * mean, s). Evidence arrives
    one sample at a time, so the optimal answer time depends on s: the task measures
    how well a network trades speed for accuracy.

    Args:
        num_sequences: number of sequences.
        seed: random seed.
        steps: sequence length (40 in the paper).
        mean: absolute mean of the two classes.
        sigma_range: (low, high) of the uniform prior on the noise level.

    Returns:
        ``(x, y)``: float32 (num_sequences, steps, 1); int32 (num_sequences,) with
        1 for the positive class and 0 for the negative one.
    """
    if num_sequences < 1 or steps < 1:
        raise ValueError("`num_sequences` and `steps` must be positive integers.")
    low, high = sigma_range
    if not 0 < low <= high:
        raise ValueError(f"`sigma_range` must satisfy 0 < low <= high; received {sigma_range}.")
    rng = _rng(seed)
    labels = rng.integers(0, 2, size=num_sequences).astype(np.int32)
    sigma = rng.uniform(low, high, size=(num_sequences, 1))
    signs = (2 * labels - 1)[:, None]
    x = signs * mean + sigma * rng.standard_normal((num_sequences, steps))
    return x.astype(np.float32)[..., None], labels


def _dataset(arrays, batch_size, shuffle, seed):
    import tensorflow as tf  # noqa: PLC0415 - the array generators (the CLI's tasks) do not need it

    x, y = arrays
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def spotting_dataset(num_sequences, batch_size=128, seed=0, shuffle=False, **kwargs):
    """`spotting` as a batched ``tf.data.Dataset`` of ``(x, y)``."""
    return _dataset(spotting(num_sequences, seed=seed, **kwargs), batch_size, shuffle, seed)


def two_sequence_dataset(num_sequences, batch_size=128, seed=0, shuffle=False, **kwargs):
    """`two_sequence` as a batched ``tf.data.Dataset`` of ``(x, y)``."""
    return _dataset(two_sequence(num_sequences, seed=seed, **kwargs), batch_size, shuffle, seed)
