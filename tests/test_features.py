import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from rc_keras import features
from rc_keras.features import FrontEndParams


def _mel(hz):
    # The HTK mel scale that tf.signal.linear_to_mel_weight_matrix uses.
    return 1127.0 * np.log1p(np.asarray(hz) / 700.0)


def _hz(mel):
    return 700.0 * np.expm1(np.asarray(mel) / 1127.0)


def test_defaults_are_the_papers():
    p = FrontEndParams()
    assert (p.sample_rate, p.window_ms, p.stride_ms, p.num_mel_bins, p.context_frames) == (
        16000, 25.0, 10.0, 20, 10)
    assert (p.window_len, p.stride_len, p.fft_length, p.clip_samples) == (400, 160, 512, 16000)
    assert p.frames_per_clip == 98  # 1 + (16000 - 400) // 160
    assert p.feature_size == 420  # 20 bands x 21 frames


def test_params_frozen_and_keyword_only():
    p = FrontEndParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.num_mel_bins = 40
    with pytest.raises(TypeError):
        FrontEndParams(16000)


@pytest.mark.parametrize("field, value", [
    ("num_mel_bins", 0), ("sample_rate", 16000.5), ("context_frames", -1), ("window_ms", 0),
    ("stride_ms", float("nan")), ("upper_edge_hz", 9000.0), ("lower_edge_hz", 8000.0),
    ("log_offset", 0.0), ("window_ms", 2000.0)])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        FrontEndParams(**{field: value})


@pytest.mark.parametrize("num_samples, expected", [(0, 0), (399, 0), (400, 1), (559, 1),
                                                   (560, 2), (16000, 98)])
def test_num_frames_by_hand(num_samples, expected):
    assert features.num_frames(FrontEndParams(), num_samples) == expected
    assert int(features.num_frames_tensor(FrontEndParams(), num_samples)) == expected


def test_num_frames_bad_input():
    with pytest.raises(ValueError, match="num_samples"):
        features.num_frames(FrontEndParams(), -1)
    with pytest.raises(ValueError, match="params"):
        features.num_frames({"sample_rate": 16000}, 100)


@pytest.mark.parametrize("kwargs, samples", [
    ({}, 16000), ({}, 12345),
    # 8 kHz, 20 ms / 15 ms: window 160, stride 120, 1 + (8000 - 160) // 120 = 66 frames.
    (dict(sample_rate=8000, window_ms=20.0, stride_ms=15.0, num_mel_bins=13, upper_edge_hz=4000.0,
          context_frames=2), 8000)])
def test_shapes_follow_from_parameters(kwargs, samples):
    p = FrontEndParams(**kwargs)
    frames = features.num_frames(p, samples)
    x = tf.random.stateless_normal([3, samples], seed=[1, 2]) * 0.1
    assert tuple(features.log_mel(x, p).shape) == (3, frames, p.num_mel_bins)
    assert tuple(features.frontend(x, p).shape) == (3, frames, p.feature_size)
    if kwargs:
        assert frames == 66 and p.feature_size == 13 * 5


def test_silence_maps_to_log_offset():
    p = FrontEndParams(context_frames=0)
    out = features.frontend(tf.zeros([16000]), p).numpy()
    np.testing.assert_allclose(out, np.full((98, 20), math.log(p.log_offset)), rtol=1e-6)


def test_stack_context_by_hand():
    x = tf.reshape(tf.range(12.0), [4, 3])  # 4 frames of 3 features: frame t = [3t, 3t+1, 3t+2]
    out = features.stack_context(x, 1).numpy()
    expected = np.array([[0, 1, 2, 0, 1, 2, 3, 4, 5],        # edge repeats frame 0
                         [0, 1, 2, 3, 4, 5, 6, 7, 8],
                         [3, 4, 5, 6, 7, 8, 9, 10, 11],
                         [6, 7, 8, 9, 10, 11, 9, 10, 11]])   # edge repeats frame 3
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(features.stack_context(x, 0).numpy(), x.numpy())
    batched = features.stack_context(tf.stack([x, x + 100]), 1).numpy()
    np.testing.assert_array_equal(batched[1], expected + 100)
    assert features.stack_context(tf.zeros([2, 98, 20]), 10).shape == (2, 98, 420)
    with pytest.raises(ValueError, match="context"):
        features.stack_context(x, -1)


@pytest.mark.parametrize("band", [2, 9, 17])
def test_pure_tone_peaks_in_its_mel_band(band):
    p = FrontEndParams(context_frames=0)
    edges = np.linspace(_mel(p.lower_edge_hz), _mel(p.upper_edge_hz), p.num_mel_bins + 2)
    freq = float(_hz(edges[band + 1]))  # the centre of mel band `band`
    t = np.arange(p.clip_samples) / p.sample_rate
    tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype("float32")
    mel = features.log_mel(tone, p).numpy()
    assert np.all(np.argmax(mel, axis=1) == band)
    # Bands three or more away are far weaker (log units).
    far = [b for b in range(p.num_mel_bins) if abs(b - band) >= 3]
    assert np.all(mel[:, band] - mel[:, far].max(axis=1) > 3.0)


def test_tf_data_and_layer_agree_and_layer_round_trips(tmp_path):
    p = FrontEndParams(context_frames=3)
    waves = tf.random.stateless_normal([4, 4000], seed=[3, 4]) * 0.2
    ds = tf.data.Dataset.from_tensor_slices(waves).map(lambda w: features.frontend(w, p))
    from_data = np.stack(list(ds.as_numpy_iterator()))
    layer = features.LogMelFrontEnd(p)
    from_layer = keras.ops.convert_to_numpy(layer(waves))
    np.testing.assert_allclose(from_data, from_layer, rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape((None, 4000)) == (None, 23, 140)

    model = keras.Sequential([keras.Input((4000,)), layer])
    model.save(tmp_path / "front.keras")
    loaded = keras.models.load_model(tmp_path / "front.keras")
    assert loaded.layers[0].params == p
    np.testing.assert_allclose(loaded.predict(waves.numpy(), verbose=0), from_layer, atol=1e-6)


def test_log_mel_rejects_integer_audio():
    with pytest.raises(ValueError, match="waveform"):
        features.log_mel(tf.zeros([1000], tf.int16), FrontEndParams())
