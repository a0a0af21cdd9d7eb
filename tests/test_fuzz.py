"""Property-based tests (hypothesis): a correct result or a clear error, never a crash,
a hang or a NaN passed on silently.

RCModel with random shapes, thresholds and input scales; the WAV header probe of the
Speech Commands loader with random bytes, truncated files and damaged headers; the
log-mel front end with silent, clipped and non-finite audio of extreme lengths.
"""

import importlib
import io
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rc_keras as rk
from rc_keras import features
# The module, not the function of the same name that rc_keras.datasets exports.
speech_commands = importlib.import_module("rc_keras.datasets.speech_commands")

FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

MODEL_FUZZ = settings(FUZZ, max_examples=15)

_MODELS = {}


def _model(features_, classes):
    """One small model per (features, classes), reused across examples (building is slow)."""
    key = (features_, classes)
    if key not in _MODELS:
        keras.utils.set_random_seed(features_ * 10 + classes)
        if classes == 1:
            head, readout = keras.layers.Dense(1, activation="sigmoid"), "sigmoid"
        else:
            head, readout = keras.layers.Dense(classes, activation="softmax"), "softmax"
        model = rk.RCModel(keras.layers.LSTMCell(3), head, readout=readout)
        model.build((None, None, features_))
        _MODELS[key] = model
    return _MODELS[key]


@st.composite
def rc_cases(draw):
    batch = draw(st.integers(1, 3))
    time = draw(st.integers(1, 6))
    features_ = draw(st.integers(1, 3))
    classes = draw(st.integers(1, 4))
    threshold = draw(st.one_of(
        st.floats(1e-6, 1 - 1e-6),
        st.sampled_from([np.nextafter(0, 1, dtype=np.float32).item(), 0.5,
                         float(np.nextafter(np.float32(1), np.float32(0)))])))
    scale = 10.0 ** draw(st.integers(-3, 4))
    seed = draw(st.integers(0, 2 ** 16))
    x = np.random.default_rng(seed).normal(size=(batch, time, features_)).astype("float32") * scale
    return x, classes, threshold


@MODEL_FUZZ
@given(rc_cases())
def test_rc_model_answers_at_the_first_crossing(case):
    x, classes, threshold = case
    model = _model(x.shape[-1], classes)
    bound = 0.5 if classes == 1 else 1 / classes
    if np.float32(threshold) <= bound:  # every sequence would answer at step 0: refused
        with pytest.raises(ValueError, match=f"must be above {bound:g}"):
            model.threshold = threshold
        return
    model.threshold = threshold
    out = model.rank_code(x)
    probs = model.step_probabilities(x).numpy()  # every step, no halting: the reference
    assert np.all(np.isfinite(probs)) and np.all(np.isfinite(out.probs.numpy()))
    theta = np.float32(model._threshold.numpy())
    if classes == 1:
        crossed = (probs[..., 0] >= theta) | (probs[..., 0] <= 1 - theta)
    else:
        crossed = probs.max(-1) >= theta
    time = x.shape[1]
    expected_time = np.where(crossed.any(1), crossed.argmax(1), time - 1)
    np.testing.assert_array_equal(out.spike_time.numpy(), expected_time)
    np.testing.assert_array_equal(out.spiked.numpy(), crossed.any(1))
    np.testing.assert_allclose(out.probs.numpy(),
                               probs[np.arange(len(x)), expected_time], rtol=1e-5, atol=1e-6)
    assert out.steps_run.numpy() == (expected_time.max() + 1)


@MODEL_FUZZ
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0 < v < 1),
                 st.text(max_size=3), st.none()))
def test_threshold_outside_zero_one_is_refused(value):
    model = _model(1, 2)
    before = model.threshold
    with pytest.raises(ValueError, match="threshold"):
        model.threshold = value
    with pytest.raises(ValueError, match="threshold"):
        rk.RCModel(keras.layers.LSTMCell(1), keras.layers.Dense(2), threshold=value)
    assert model.threshold == before


@FUZZ
@given(st.integers(0, 2), st.integers(0, 4), st.integers(0, 1),
       st.sampled_from([np.nan, np.inf, -np.inf]))
def test_non_finite_inputs_are_refused_by_name(b, t, f, bad):
    model = _model(2, 3)
    x = np.zeros((3, 5, 2), "float32")
    x[b, t, f] = bad
    with pytest.raises(ValueError, match=r"`x` contains 1 NaN or Inf"):
        model.predict(x, verbose=0)


@FUZZ
@given(st.lists(st.integers(0, 4), min_size=0, max_size=4).filter(lambda s: len(s) != 3))
def test_wrong_rank_is_refused_by_name(shape):
    model = _model(2, 3)
    with pytest.raises(ValueError, match=r"`x` must have rank 3"):
        model.predict(np.zeros(shape, "float32"), verbose=0)


# ---------------------------------------------------------------------- audio loader
def _wav_bytes(samples, rate=16000, channels=1):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def _probe_or_error(tmp_path, data):
    """probe_wav's verdict; when it accepts a file, tf.audio.decode_wav must decode it."""
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    try:
        rate, channels, n = speech_commands.probe_wav(path)
    except ValueError as error:
        assert str(path) in str(error)  # the bad file is named
        return None
    audio, decoded_rate = tf.audio.decode_wav(tf.io.read_file(str(path)))
    assert int(decoded_rate) == rate and audio.shape == (n, channels)
    assert np.all(np.isfinite(audio.numpy()))
    return rate, channels, n


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_or_decoded(tmp_path, data):
    _probe_or_error(tmp_path, data)


@FUZZ
@given(st.integers(0, 200), st.integers(1, 3000))
def test_truncated_wav_is_named(tmp_path, cut, samples):
    data = _wav_bytes(np.arange(samples) % 300)
    cut = min(cut, len(data) - 1)
    assert _probe_or_error(tmp_path, data[:cut]) is None  # any truncation is caught


@FUZZ
@given(st.integers(0, 43), st.integers(0, 255))
def test_damaged_header_is_refused_or_decoded(tmp_path, position, value):
    data = bytearray(_wav_bytes(np.arange(100) * 50 - 2500, rate=8000, channels=1))
    data[position] = value
    _probe_or_error(tmp_path, bytes(data))


# ---------------------------------------------------------------------- front end
_PARAMS = features.FrontEndParams(context_frames=1)


@FUZZ
@given(st.integers(0, 2000), st.sampled_from(["silent", "clipped", "loud", "noise"]))
def test_front_end_is_finite_with_the_announced_frame_count(samples, kind):
    rng = np.random.default_rng(samples)
    waveform = {"silent": np.zeros(samples),
                "clipped": np.sign(rng.normal(size=samples)),  # full-scale square wave
                "loud": rng.normal(size=samples) * 1e4,          # far outside [-1, 1]
                "noise": rng.normal(size=samples) * 0.1}[kind].astype("float32")
    frames = features.num_frames(_PARAMS, samples)
    out = features.log_mel(waveform, _PARAMS).numpy()
    assert out.shape == (frames, _PARAMS.num_mel_bins)
    assert np.all(np.isfinite(out))
    if kind == "silent" and frames:
        np.testing.assert_allclose(out, np.log(_PARAMS.log_offset), rtol=1e-6)
    if frames:
        stacked = features.stack_context(out, _PARAMS.context_frames).numpy()
        assert stacked.shape == (frames, _PARAMS.feature_size)


@FUZZ
@given(st.integers(400, 1200), st.sampled_from([np.nan, np.inf]))
def test_non_finite_audio_never_reaches_a_prediction(samples, bad):
    waveform = np.zeros(samples, "float32")
    waveform[samples // 2] = bad
    feats = features.frontend(waveform, _PARAMS).numpy()[None]
    model = _model(_PARAMS.feature_size, 2)
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.predict(feats, verbose=0)


def test_damaged_clip_in_a_dataset_folder_is_named(tmp_path):
    root = tmp_path / "sc"
    for word, payload in (("yes", _wav_bytes(np.zeros(1600))), ("no", b"RIFF\x00\x00")):
        (root / word).mkdir(parents=True)
        (root / word / "aaaa_nohash_0.wav").write_bytes(payload)
    for name in (speech_commands.VALIDATION_LIST, speech_commands.TESTING_LIST):
        (root / name).write_text("")
    with pytest.raises(ValueError, match=r"no/aaaa_nohash_0.wav.*not a RIFF/WAVE file"):
        speech_commands.speech_commands(root, "train")


# ---------------------------------------------------------------------- thresholds, masks
_ROUND_TRIP = {}


def _round_trip_model(classes):
    if classes not in _ROUND_TRIP:
        keras.utils.set_random_seed(classes)
        model = rk.RCModel(keras.layers.SimpleRNNCell(2),
                           keras.layers.Dense(classes, activation="softmax"), threshold=0.99)
        model.build((None, 3, 2))
        _ROUND_TRIP[classes] = model
    return _ROUND_TRIP[classes]


@settings(FUZZ, max_examples=12)
@given(st.one_of(st.floats(0, 1, exclude_min=True, exclude_max=True),
                 st.sampled_from([1 - 1e-9, 1e-46, 0.9999999, 0.125, 0.12500001])),
       st.sampled_from([2, 8]))
def test_any_accepted_threshold_round_trips_exactly(tmp_path_factory, theta, classes):
    """Save, load and export keep the very float32 the spike test uses, for every theta
    the model accepts; a theta it cannot use is refused with a ValueError."""
    from rc_keras import export
    model = _round_trip_model(classes)
    # The oracle: theta must stay inside (0, 1) in float32 and lie above 1/C.
    if not np.float32(1 / classes) < np.float32(theta) < np.float32(1):
        with pytest.raises(ValueError, match="threshold"):
            model.threshold = theta
        return
    model.threshold = theta
    stored = np.float32(model._threshold.numpy())
    assert stored == np.float32(theta) and np.float32(model.threshold) == stored
    folder = tmp_path_factory.mktemp("theta")
    model.save(folder / "m.keras")
    loaded = keras.models.load_model(folder / "m.keras")
    assert loaded.threshold == model.threshold
    assert np.float32(loaded._threshold.numpy()) == stored
    side = export.export_tflite_step(loaded, folder / "step.tflite")
    assert np.float32(side["threshold"]) == stored
    assert np.float32(export.StepRunner(folder / "step.tflite").threshold) == stored


@st.composite
def masked_cases(draw):
    batch, time = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(batch, time, 2)).astype("float32")
    kind = draw(st.sampled_from(["mask", "lengths"]))
    if kind == "mask":
        shape = draw(st.sampled_from([(batch, time), (batch, time), (batch, time + 2),
                                      (batch, max(time - 1, 0)), (time, batch),
                                      (batch, time, 1), (batch,)]))
        value = rng.random(shape) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    else:
        shape = draw(st.sampled_from([(batch,), (batch,), (batch, 1), (batch + 1,), ()]))
        value = rng.integers(-1, time + 2, size=shape).astype(
            draw(st.sampled_from(["int32", "int64", "int32", "float32"])))
    return x, kind, value


def _valid_steps_or_none(kind, value, batch, time):
    """The oracle: which steps are valid, or None where the input must be refused."""
    if kind == "mask":
        if value.shape != (batch, time) or not value.any(axis=1).all():
            return None
        return value
    if value.dtype.kind != "i":
        return None
    lengths = value.reshape(-1) if value.shape in ((batch,), (batch, 1)) else None
    if lengths is None or lengths.min() < 1 or lengths.max() > time:
        return None
    return np.arange(time)[None, :] < lengths[:, None]


@settings(FUZZ, max_examples=60)  # about 30% of the cases are valid; each takes ~20 ms
@given(masked_cases())
def test_masks_and_lengths_are_refused_or_answer_as_the_trimmed_sequences(case):
    from helpers import CumulativeSumCell, RowSoftmax
    x, kind, value = case
    model = rk.RCModel(CumulativeSumCell(2), RowSoftmax(), threshold=0.9)
    valid = _valid_steps_or_none(kind, value, *x.shape[:2])
    if valid is None:
        with pytest.raises(ValueError, match=f"`{kind}` must"):
            model.rank_code({"inputs": x, kind: value})
        return
    out = model.rank_code({"inputs": x, kind: value})
    for row, keep in enumerate(valid):
        steps = np.flatnonzero(keep)
        alone = model.rank_code(x[row:row + 1, steps])
        assert out.spike_time.numpy()[row] == steps[alone.spike_time.numpy()[0]]
        assert out.spiked.numpy()[row] == alone.spiked.numpy()[0]
        np.testing.assert_array_equal(out.probs.numpy()[row], alone.probs.numpy()[0])
