"""Stream policy: front end, onset detector, detections on concatenated clips, refractory,
bad policies, and host vs. TFLite step runner on one stream."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras import features, streaming

PRE_ROLL = 6
GAP_FRAMES = 40          # silence between clips, in frames
PARAMS = features.FrontEndParams(context_frames=0)
THETA = 0.93             # the random network below spikes on most clips, not all, at it


def _model(threshold):
    head = keras.Sequential([keras.layers.Dense(
        3, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=3.0, seed=1))])
    cell = keras.layers.LSTMCell(
        8, kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=2))
    model = rk.RCModel(cell, head, threshold=threshold)
    model.predict(np.zeros((1, 4, 20), np.float32), verbose=0)
    return model


def _clip(i, rng):
    """A 1 s clip: a quiet lead of PRE_ROLL frames + 240 samples, then a tone sweep.

    The first loud sample is sample 160 * PRE_ROLL + 240 of the clip, so the first frame
    whose window reaches it is clip frame PRE_ROLL: with ``pre_roll_frames=PRE_ROLL`` and
    ``onset_frames=1`` an instance starts exactly at the clip's first frame.
    """
    lead = 160 * PRE_ROLL + 240
    n = 16000 - lead
    t = np.arange(n) / 16000
    f = (300, 900, 2500, 5000, 150, 1200)[i % 6] * (1 + 0.3 * (i // 6))
    sig = 0.5 * np.sin(2 * np.pi * f * t * (1 + 0.5 * t)) + 0.05 * rng.standard_normal(n)
    return np.concatenate([_quiet(lead, rng), sig]).astype(np.float32)


def _quiet(n, rng):
    """Low noise (about -60 dB): digital zeros would give log-mel features far outside
    those of sound, which a random network answers with full confidence."""
    return (0.003 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    return [_clip(i, rng) for i in range(8)]


def _stream(clips, gap_frames=GAP_FRAMES):
    """Clips separated by silence; returns (waveform, clip start frames)."""
    rng = np.random.default_rng(5)
    parts, starts, at = [_quiet(160 * gap_frames, rng)], [], gap_frames
    for clip in clips:
        starts.append(at)
        parts += [clip, _quiet(160 * gap_frames, rng)]
        at += len(clip) // 160 + gap_frames
    return np.concatenate(parts), starts


def _onset_policy(**kwargs):
    values = dict(pre_roll_frames=PRE_ROLL, onset_frames=1, release_frames=3,
                  refractory_frames=0, ignore_classes=())
    values.update(kwargs)
    return streaming.StreamPolicy(**values)


@pytest.mark.parametrize("normalization, context", [("none", 0), ("running_mean", 0),
                                                    ("pcen", 0), ("none", 3)])
def test_streaming_front_end_gives_the_clip_front_end_frames(normalization, context):
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(24000)).astype(np.float32)
    params = features.FrontEndParams(normalization=normalization, context_frames=context)
    reference = features.frontend(tf.constant(wave), params).numpy()
    # Odd chunk sizes: frames straddle chunk boundaries.
    got, energy = streaming.stream_features(wave, params, chunk=2999)
    assert got.shape == reference.shape == (features.num_frames(params, 24000),
                                            params.feature_size)
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
    # Energies: the mean mel power in dB, in integers of 1/256 dB (the firmware's numbers).
    mel = features.mel_magnitudes(tf.constant(wave), params).numpy()
    np.testing.assert_allclose(energy, streaming.energy_db(mel), atol=0.05)
    assert np.all(energy * 256 == np.round(energy * 256))


def test_fixed_point_streaming_front_end_gives_the_device_features():
    from rc_keras import features_fixed

    rng = np.random.default_rng(2)
    pcm = (3000 * rng.standard_normal(20000)).astype(np.int16)
    params = features.FrontEndParams(context_frames=0, fixed_point=True)
    got, energy = streaming.stream_features(pcm / 32768.0, params, chunk=2999)
    want = features_fixed.log_mel_int16(pcm, params)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(energy * 256, streaming.log_mel_energy_q8(want))


def test_energy_log2_is_the_integer_floor_of_log2():
    # floor(log2(x) * 256), checked exactly with Python integers on awkward values.
    values = [1, 2, 3, 255, 256, 257, (1 << 30) - 1, 1 << 30, (1 << 31) + 12345, 3 ** 25,
              (1 << 40) - 1]
    got = streaming._log2_q8(np.array(values, np.uint64))
    for x, q in zip(values, got):
        assert (1 << int(q)) <= x ** 256 < (1 << (int(q) + 1)) or x == 1 and q == 0, x


def test_onset_detector_fires_once_per_rise_after_release():
    policy = streaming.StreamPolicy(onset_db=10.0, onset_frames=2, release_frames=3,
                                    floor_rise_db=0.5)
    energy = [-60] * 5 + [-30] * 6 + [-60] * 2 + [-30] * 3 + [-60] * 3 + [-30] * 2
    detector = streaming.OnsetDetector(policy)
    fired = {t: detector.update(e) for t, e in enumerate(energy)}
    onsets = {t: o for t, o in fired.items() if o is not None}
    # Rise at 5 (fires at 6); the dip at 11-12 is shorter than release_frames, so the
    # rise at 13 is the same event; the dip 16-18 re-arms, rise at 19 fires at 20.
    assert onsets == {6: 5, 20: 19}


def test_stream_of_clips_gives_the_detections_of_the_clips_one_by_one(clips):
    model = _model(threshold=THETA)
    x = features.frontend(tf.constant(np.stack(clips)), PARAMS).numpy()
    ref = model.predict(x, verbose=0)
    spiked = np.flatnonzero(ref["spiked"])
    # The setup must exercise both outcomes, at several steps.
    assert 2 <= len(spiked) < len(clips)
    assert len(set(ref["spike_time"][spiked].tolist())) >= 3
    wave, starts = _stream(clips)
    feats, energy = streaming.stream_features(wave, PARAMS)
    network = streaming.KerasWindowNetwork(model, feats, max_frames=PARAMS.frames_per_clip)
    detections, rate = streaming.detect(feats, energy, _onset_policy(), network)
    expected = [(int(ref["label"][i]), starts[i] + int(ref["spike_time"][i])) for i in spiked]
    assert [(d.label, d.spike_frame) for d in detections] == expected
    # Frame by frame (`push`) and the whole stream at once (`run`, idle frames skipped).
    listener = streaming.Listener(_onset_policy(), network)
    pushed = [d for t in range(len(feats)) for d in listener.push(feats[t], energy[t])]
    assert pushed == detections
    assert [d.start_frame for d in detections] == [starts[i] for i in spiked]
    assert [d.onset_frame for d in detections] == [starts[i] + PRE_ROLL for i in spiked]
    # Cost: every clip's instance reads to its spike or its end, nothing in silence.
    frames_read = sum(int(ref["spike_time"][i]) + 1 if ref["spiked"][i] else len(x[i])
                      for i in range(len(clips)))
    assert rate == pytest.approx(frames_read / (len(feats) * 0.01))
    first = detections[0]
    assert first.spike_time_s == pytest.approx((first.spike_frame * 160 + 400) / 16000)
    assert first.onset_time_s == pytest.approx(first.onset_frame * 160 / 16000)


def test_ignored_classes_end_an_instance_without_a_detection(clips):
    model = _model(threshold=THETA)
    wave, _ = _stream(clips)
    feats, energy = streaming.stream_features(wave, PARAMS)
    network = streaming.KerasWindowNetwork(model, feats, max_frames=PARAMS.frames_per_clip)
    every, _ = streaming.detect(feats, energy, _onset_policy(), network, ["a", "b", "c"])
    kept, _ = streaming.detect(feats, energy, _onset_policy(ignore_classes=("a",)), network,
                               ["a", "b", "c"])
    assert any(d.keyword == "a" for d in every)
    assert kept == [d for d in every if d.keyword != "a"]


def test_refractory_period_suppresses_a_second_detection_of_the_same_word(clips):
    model = _model(threshold=THETA)
    wave, _ = _stream(clips[2:3], gap_frames=20)   # a clip the network spikes on early
    feats, energy = streaming.stream_features(wave, PARAMS)
    network = streaming.KerasWindowNetwork(model, feats, max_frames=PARAMS.frames_per_clip)
    # Staggered instances 2 frames apart all hear the same word: without a refractory
    # period several of them detect it.
    policy = streaming.StreamPolicy(mode="staggered", stride_frames=2, refractory_frames=0,
                                    ignore_classes=())
    many, _ = streaming.detect(feats, energy, policy, network)
    assert len(many) >= 2
    second = many[1].spike_frame - many[0].spike_frame
    one, _ = streaming.detect(feats, energy, dataclasses.replace(
        policy, refractory_frames=second + 5), network)
    assert one[0] == many[0]
    assert all(d.spike_frame > many[0].spike_frame + second + 5 for d in one[1:])
    assert len(one) < len(many)


@pytest.mark.parametrize("field, value, message", [
    ("mode", "always", "`mode` must be one of"),
    ("max_frames", 0, "`max_frames` must be an integer >= 1"),
    ("max_frames", 9.5, "`max_frames` must be an integer >= 1"),
    ("refractory_frames", -1, "`refractory_frames` must be an integer >= 0"),
    ("onset_frames", True, "`onset_frames` must be an integer >= 1"),
    ("release_frames", 0, "`release_frames` must be an integer >= 1"),
    ("stride_frames", 0, "`stride_frames` must be an integer >= 1"),
    ("pre_roll_frames", 98, "`pre_roll_frames` must be below `max_frames`"),
    ("onset_db", float("nan"), "`onset_db` must be a finite number > 0"),
    ("floor_rise_db", 0, "`floor_rise_db` must be a finite number > 0"),
    ("ignore_classes", "unknown", "`ignore_classes` must be a tuple of class names"),
    ("threshold", 1.5, "threshold"),
])
def test_policy_rejects_bad_values_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        streaming.StreamPolicy(**{field: value})


def test_policy_is_frozen_and_documents_its_cost():
    policy = streaming.StreamPolicy(mode="staggered", stride_frames=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_frames = 5
    assert policy.invocations_per_second_bound() == pytest.approx(980.0)
    assert streaming.sliding_window_cost(98, 10) == pytest.approx(980.0)


def test_onset_policy_needs_energies():
    model = _model(threshold=THETA)
    feats = np.zeros((5, 20), np.float32)
    listener = streaming.Listener(_onset_policy(), streaming.KerasWindowNetwork(model, feats, 98))
    with pytest.raises(ValueError, match="needs each frame's `energy`"):
        listener.push(feats[0])


def test_host_and_tflite_step_runner_give_identical_detections(clips, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from rc_keras.export import export_tflite_step

    model = _model(threshold=THETA)
    path = tmp_path / "step_float32.tflite"
    export_tflite_step(model, path, class_names=["a", "b", "c"])
    wave, _ = _stream(clips[:5])
    feats, energy = streaming.stream_features(wave, PARAMS)
    for policy in (_onset_policy(), streaming.StreamPolicy(
            mode="staggered", stride_frames=7, refractory_frames=30, ignore_classes=("c",))):
        host, host_rate = streaming.detect(
            feats, energy, policy, streaming.KerasWindowNetwork(model, feats, 98), ["a", "b", "c"])
        network = streaming.TFLiteStepNetwork(path, runtime="litert-builtin")
        device, device_rate = streaming.detect(feats, energy, policy, network,
                                               network.class_names)
        assert host, "the stream must produce detections"
        assert [(d.label, d.spike_frame, d.onset_frame, d.start_frame) for d in device] == \
            [(d.label, d.spike_frame, d.onset_frame, d.start_frame) for d in host]
        assert [d.confidence for d in device] == pytest.approx([d.confidence for d in host],
                                                               abs=1e-5)
        assert device_rate == host_rate


def _write_wav(path, wave):
    from rc_keras.datasets.keyword_synthesis import write_wav

    write_wav(path, wave)
    # The file holds 16-bit samples: what the listener reads back.
    return np.round(np.clip(wave, -1, 1) * 32767) / 32768


def test_listen_cli_prints_the_detections_of_the_stream(clips, tmp_path, capsys):
    from rc_keras import cli
    from rc_keras.export import export_tflite_step

    model = _model(threshold=THETA)
    model.save(tmp_path / "model.keras")
    wave, _ = _stream(clips[:4])
    heard = _write_wav(tmp_path / "stream.wav", wave)
    feats, energy = streaming.stream_features(heard.astype(np.float32), PARAMS)
    policy = _onset_policy(refractory_frames=50)
    expected, _ = streaming.detect(feats, energy, policy,
                                   streaming.KerasWindowNetwork(model, feats, 98))
    assert expected
    flags = ["--pre-roll-frames", str(PRE_ROLL), "--onset-frames", "1", "--release-frames", "3",
             "--refractory-frames", "50", "--ignore", ""]
    assert cli.main(["listen", "--model", str(tmp_path / "model.keras"),
                     str(tmp_path / "stream.wav"), "--json"] + flags) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["detections"] == [d.to_dict() for d in expected]
    assert result["policy"]["max_frames"] == 98
    assert result["audio_seconds"] == pytest.approx(len(wave) / 16000)
    # The bundle's step model, frame by frame: the same detections; a table for people.
    export_tflite_step(model, tmp_path / "bundle" / "step_float32.tflite")
    assert cli.main(["listen", "--model", str(tmp_path / "model.keras"), "--bundle",
                     str(tmp_path / "bundle"), str(tmp_path / "stream.wav")] + flags) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"{len(expected)} detection(s)" in lines[0] and "step_float32.tflite" in lines[0]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], float(r[1]), float(r[2])) for r in rows] == \
        [(d.keyword, round(d.spike_time_s, 3), round(d.onset_time_s, 3)) for d in expected]


def test_listen_cli_names_the_flag_of_a_bad_value(tmp_path, capsys):
    from rc_keras import cli

    _model(threshold=THETA).save(tmp_path / "model.keras")
    _write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    assert cli.main(["listen", "--model", str(tmp_path / "model.keras"), str(tmp_path / "a.wav"),
                     "--max-frames", "0"]) == 2
    assert "--max-frames must be an integer >= 1; received 0" in capsys.readouterr().err
    assert cli.main(["listen", "--model", str(tmp_path / "model.keras"),
                     str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav' does not exist" in capsys.readouterr().err
    assert cli.main(["listen", "--model", str(tmp_path / "model.keras"), str(tmp_path / "a.wav"),
                     "--bundle", str(tmp_path)]) == 2
    assert "holds no step_float32.tflite" in capsys.readouterr().err
