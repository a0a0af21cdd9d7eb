"""Causal feature normalization: one recurrence in tf.data, the Keras layer and TFLite."""

import numpy as np
import pytest
import tensorflow as tf

from rc_keras import features
from rc_keras.export import normalization_step

MODES = ["running_mean", "pcen"]


def _wave(seed=0, seconds=0.5):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    envelope = np.where(t < seconds / 2, 0.05, 0.6)  # a level step the normalization follows
    return (envelope * (np.sin(2 * np.pi * 300 * t) + 0.3 * rng.standard_normal(len(t)))
            ).astype(np.float32)


def _reference(mel, params):
    """The docstring's recurrence, written out in numpy float64."""
    mel = np.asarray(mel, np.float64)
    s, out = params.norm_smoothing, np.zeros_like(mel)
    if params.normalization == "running_mean":
        log = np.log(mel + params.log_offset)
        m = log[0]
        for t in range(len(mel)):
            m = m + s * (log[t] - m)
            out[t] = log[t] - m
        return out
    m = mel[0]
    for t in range(len(mel)):
        m = m + s * (mel[t] - m)
        out[t] = ((mel[t] / (params.pcen_eps + m) ** params.pcen_alpha + params.pcen_delta)
                  ** params.pcen_r - params.pcen_delta ** params.pcen_r)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_same_numbers_in_tf_data_the_layer_and_the_tflite_step(mode, tmp_path):
    params = features.FrontEndParams(normalization=mode, context_frames=0, clip_seconds=0.5)
    wave = _wave()
    direct = features.log_mel(wave, params).numpy()
    layer = features.LogMelFrontEnd(params)(wave[None])[0].numpy()
    piped = next(iter(tf.data.Dataset.from_tensors(wave).map(
        lambda w: features.log_mel(w, params)))).numpy()
    mel = features.mel_magnitudes(wave, params).numpy()
    np.testing.assert_allclose(direct, _reference(mel, params), atol=1e-5, rtol=1e-5)
    sidecar = normalization_step.export_normalization_step(params, tmp_path / "norm.tflite")
    device = normalization_step.run_normalization_tflite(tmp_path / "norm.tflite", mel, params)
    assert direct.shape == (params.frames_per_clip, 20)
    np.testing.assert_allclose(layer, direct, atol=1e-5)
    np.testing.assert_allclose(piped, direct, atol=1e-5)
    np.testing.assert_allclose(device, direct, atol=1e-5)
    assert sidecar["front_end"]["normalization"] == mode
    assert sidecar["front_end"]["norm_smoothing"] == params.norm_smoothing
    # With context stacking the layer and the function still agree.
    stacked = features.FrontEndParams(normalization=mode, context_frames=2, clip_seconds=0.5)
    np.testing.assert_allclose(features.LogMelFrontEnd(stacked)(wave[None])[0].numpy(),
                               features.frontend(wave, stacked).numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_normalization_is_causal_and_removes_the_level(mode):
    params = features.FrontEndParams(normalization=mode, context_frames=0, clip_seconds=0.5)
    wave = _wave(1)
    changed = wave.copy()
    changed[4000:] = _wave(2)[4000:]
    a, b = features.log_mel(wave, params).numpy(), features.log_mel(changed, params).numpy()
    # Frames that end before sample 4000 never see the change.
    last_unchanged = (4000 - params.window_len) // params.stride_len
    np.testing.assert_array_equal(a[:last_unchanged + 1], b[:last_unchanged + 1])
    assert not np.allclose(a[last_unchanged + 2:], b[last_unchanged + 2:])
    # A 20 dB louder clip gives (nearly) the same features; unnormalized ones shift by log 10.
    louder = features.log_mel(10 * wave, params).numpy()
    assert np.max(np.abs(louder - a)) < (1e-3 if mode == "running_mean" else 0.2)
    plain = features.FrontEndParams(context_frames=0, clip_seconds=0.5)
    shift = features.log_mel(10 * wave, plain).numpy() - features.log_mel(wave, plain).numpy()
    assert np.median(shift) == pytest.approx(np.log(10), abs=0.01)


def test_bad_normalization_parameters():
    with pytest.raises(ValueError, match="normalization"):
        features.FrontEndParams(normalization="cmvn")
    with pytest.raises(ValueError, match="norm_smoothing"):
        features.FrontEndParams(norm_smoothing=0.0)
    with pytest.raises(ValueError, match="pcen_r"):
        features.FrontEndParams(pcen_r=-1.0)
    with pytest.raises(ValueError, match="normalization"):
        normalization_step.export_normalization_step(features.FrontEndParams(), "x.tflite")
