"""Speech Commands loader and keyword synthesizer, on a small synthesized fixture."""

import hashlib
import importlib
import json
import re
import shutil
import subprocess
import tarfile
import wave

import keras
import numpy as np
import pytest

from rc_keras import RCModel, cli, features
from rc_keras.datasets import keyword_synthesis, speech_commands, synthesize_keywords

# The module, not the function of the same name that rc_keras.datasets exports.
sc = importlib.import_module("rc_keras.datasets.speech_commands")
speech_commands_module = sc

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                reason="needs espeak-ng and sox (Debian packages)")

WORDS = ["yes", "no", "bed"]  # "bed" is an unknown word


@pytest.fixture(scope="session")
def kws_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kws") / "data"
    synthesize_keywords(root, words=WORDS, voices=5, clips_per_voice=2, seed=0, noise=0.05,
                        short_fraction=0.4, background_seconds=3, workers=2,
                        **keyword_synthesis.CLOSED_ESPEAK_SET)
    return root


@pytest.fixture
def kws_copy(kws_root, tmp_path):
    """A private copy for tests that damage files."""
    return shutil.copytree(kws_root, tmp_path / "copy")


def _read_wav(path):
    with wave.open(str(path), "rb") as handle:
        rate = handle.getframerate()
        data = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    return rate, data.astype(np.float32) / 32768.0


def _list_file(root, name):
    return sorted(line for line in (root / name).read_text().splitlines() if line)


def _all_clips(root):
    return sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*.wav")
                  if not p.parent.name.startswith("_"))


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _unbatched(ds):
    xs, lengths, ys = [], [], []
    for x, y in ds.as_numpy_iterator():
        xs.append(x["inputs"])
        lengths.append(int(x["lengths"]))
        ys.append(int(y))
    return np.stack(xs), np.array(lengths), np.array(ys)


# ---------------------------------------------------------------------- synthesizer
def test_synthesized_layout(kws_root):
    info = json.loads((kws_root / "synthesis.json").read_text())
    clips = _all_clips(kws_root)
    assert len(clips) == info["num_clips"] == 5 * 3 * 2
    assert sorted({c.split("/")[0] for c in clips}) == sorted(WORDS)
    for clip in clips:
        assert re.fullmatch(r"[a-z]+/[0-9a-f]{8}_nohash_[01]\.wav", clip)
        with wave.open(str(kws_root / clip), "rb") as handle:
            assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (
                16000, 1, 2)
            assert 0 < handle.getnframes() <= 16000
        assert np.abs(_read_wav(kws_root / clip)[1]).max() > 0.2  # speech, not silence
    noise = sorted(p.name for p in (kws_root / "_background_noise_").glob("*.wav"))
    assert noise == sorted(f"{n}.wav" for n in keyword_synthesis.NOISE_FILES)
    # Each voice lies in one split, and every split has a voice.
    split_of = {"validation": set(_list_file(kws_root, "validation_list.txt")),
                "test": set(_list_file(kws_root, "testing_list.txt"))}
    voice_splits = {}
    for clip in clips:
        split = next((s for s, members in split_of.items() if clip in members), "train")
        voice_splits.setdefault(clip.split("/")[1][:8], set()).add(split)
    assert all(len(s) == 1 for s in voice_splits.values())
    assert set.union(*voice_splits.values()) == {"train", "validation", "test"}
    assert {v["id"]: {v["split"].replace("training", "train").replace("testing", "test")}
            for v in info["voices"]} == voice_splits


def test_synthesis_is_deterministic_and_refuses_nonempty_root(tmp_path):
    voices = keyword_synthesis.voice_catalog(3, seed=1, engines=["espeak-ng"])
    kwargs = dict(voices=voices, seed=1, noise=0.1, unknown_per_voice=1, unknown_pool=20,
                  real_unknown=0)
    a = synthesize_keywords(tmp_path / "a", ["go"], workers=1, **kwargs)
    b = synthesize_keywords(tmp_path / "b", ["go"], workers=2, **kwargs)
    assert _digest(tmp_path / "a").keys() == _digest(tmp_path / "b").keys()
    strip = {k: v for k, v in _digest(tmp_path / "a").items() if k != "synthesis.json"}
    assert strip == {k: v for k, v in _digest(tmp_path / "b").items() if k != "synthesis.json"}
    assert a["voices"] == b["voices"] and a["open_unknown_words"] == b["open_unknown_words"]
    with pytest.raises(ValueError, match="root"):
        synthesize_keywords(tmp_path / "a", ["go"], voices=voices)


def _engine_param(name):
    from rc_keras.datasets import tts_engines  # noqa: PLC0415

    engine = tts_engines.ENGINES[name]
    return pytest.param(name, marks=pytest.mark.skipif(
        not engine.available(), reason=f"needs the {name} engine (install: {engine.package})"))


@pytest.mark.parametrize("engine", [_engine_param(n)
                                    for n in ("espeak-ng", "flite", "festival", "piper")])
def test_each_engine_speaks_clips_in_the_layout(tmp_path, engine):
    from rc_keras.datasets import tts_engines  # noqa: PLC0415

    voices = keyword_synthesis.voice_catalog(3, seed=0, engines=[engine])
    assert {v.engine for v in voices} == {engine}
    assert {v.name for v in voices} <= set(tts_engines.ENGINES[engine].voices())
    info = synthesize_keywords(tmp_path / "e", ["stop", "bed"], voices=voices, clips_per_voice=2,
                               workers=2, short_fraction=0.0, unknown_per_voice=0,
                               real_unknown=0)
    assert [v["engine"] for v in info["voices"]] == [engine] * 3
    clips = _all_clips(tmp_path / "e")
    assert len(clips) == 3 * 2 * 2 and set(info["clips"].values()) == {engine}
    spoken = {}
    for clip in clips:
        assert re.fullmatch(r"(stop|bed)/[0-9a-f]{8}_nohash_[01]\.wav", clip)
        rate, samples = _read_wav(tmp_path / "e" / clip)
        assert rate == 16000 and len(samples) == 16000 and np.abs(samples).max() > 0.2
        loud = np.flatnonzero(np.abs(samples) > 0.02)
        spoken[clip] = loud[-1] - loud[0]
        assert 1600 < spoken[clip] < 16000  # a word: 0.1-1 s of sound
    # Each utterance draws its own rate: a voice's two takes of a word differ in length.
    pairs = [(spoken[c], spoken[c.replace("_0.wav", "_1.wav")]) for c in clips
             if c.endswith("_0.wav")]
    assert any(a != b for a, b in pairs)


def _frequency_scale(low, high, rate=16000):
    """Factor by which ``high``'s long-term spectrum is ``low``'s stretched in frequency
    (best correlation of log spectra at 80-3500 Hz over factors 0.5-2)."""
    def spectrum(x):
        frames = np.lib.stride_tricks.sliding_window_view(x, 1024)[::256] * np.hanning(1024)
        return np.log(np.abs(np.fft.rfft(frames, axis=-1)).mean(0) + 1e-6)

    freqs = np.fft.rfftfreq(1024, 1 / rate)
    band = (freqs > 80) & (freqs < 3500)
    a, b = spectrum(low), spectrum(high)
    scales = np.arange(0.5, 2.0, 0.01)
    scores = [np.corrcoef(np.interp(freqs[band] / s, freqs, a), b[band])[0, 1] for s in scales]
    return float(scales[int(np.argmax(scores))])


@_engine_param("piper").marks[0]
def test_piper_parameters_change_the_audio():
    from rc_keras.datasets import tts_engines  # noqa: PLC0415

    piper, voice = tts_engines.PIPER, tts_engines.PIPER.voices()[0]
    slow = tts_engines.Utterance(speed=100, pitch=50)
    fast = tts_engines.Utterance(speed=220, pitch=50)
    # Piper's own flags: length scale 160 / speed, noises grow with expressiveness.
    assert piper.arguments(slow)[:2] == ["--length-scale", "1.600"]
    flat, lively = (piper.arguments(tts_engines.Utterance(expressiveness=e)) for e in (0, 1))
    assert float(flat[3]) < 0.667 * 0.75 < 0.667 * 1.25 < float(lively[3])
    assert float(flat[5]) < float(lively[5])
    words = ["yes", "seven", "marvin"]
    lengths = {}
    for name, utterance in (("slow", slow), ("fast", fast)):
        clips = [keyword_synthesis._to_samples(w) for w in piper.speak_many(words, voice, utterance)]
        assert len(clips) == 3 and all(np.abs(c).max() > 0.2 for c in clips)
        lengths[name] = sum(len(c) for c in clips)
    assert lengths["slow"] > 1.5 * lengths["fast"]  # 220 / 100 wpm, minus the fixed edges
    # Pitch: a sox shift of (pitch - 50) * 12 cents of the network's output (the same take
    # shifted both ways, since each Piper run draws its own noise): 600 cents, x 1.41.
    wav = piper.speak("seven", voice, tts_engines.Utterance(pitch=50))
    low, high = (keyword_synthesis._to_samples(tts_engines._piper_pitch_shift(
        wav, tts_engines.Utterance(pitch=p))) for p in (25, 75))
    assert 1.3 < _frequency_scale(low, high) < 1.55
    with pytest.raises(ValueError, match="voice"):
        piper.model_files("nope")


def test_all_installed_engines_are_the_default(tmp_path):
    from rc_keras.datasets import tts_engines  # noqa: PLC0415

    engines = tts_engines.available_engines()
    assert "piper" not in engines  # opt-in: only when named
    assert set(engines) <= set(tts_engines.available_engines(include_opt_in=True))
    voices = keyword_synthesis.voice_catalog(2 * len(engines), seed=0)
    # The engines take turns: each gives the same number of voices.
    assert [v.engine for v in voices] == list(engines) * 2
    with pytest.raises(ValueError, match="engines"):
        keyword_synthesis.voice_catalog(3, engines=["nope"])


@pytest.mark.skipif(not keyword_synthesis.unknown_words.Path(
    keyword_synthesis.unknown_words.WORD_LIST).is_file(), reason="needs wamerican (Debian)")
def test_open_unknown_words_avoid_keywords_and_rhymes():
    from rc_keras.datasets import unknown_words  # noqa: PLC0415

    words = unknown_words.open_unknown_words(300, seed=0)
    assert len(words) == len(set(words)) == 300
    assert words == unknown_words.open_unknown_words(300, seed=0)
    assert words != unknown_words.open_unknown_words(300, seed=1)
    for word in words:
        assert not any(k in word for k in speech_commands_module.KEYWORDS), word
        assert not word.endswith(("ight", "ess", "own", "eft", "op")), word
    assert unknown_words.is_keyword_like("tonight") and unknown_words.is_keyword_like("dress")
    assert not unknown_words.is_keyword_like("table")
    with pytest.raises(ValueError, match="count"):
        unknown_words.open_unknown_words(10 ** 7)


@pytest.mark.skipif(not keyword_synthesis.unknown_words.Path(
    keyword_synthesis.unknown_words.KTUBERLING_SOUNDS).is_dir(),
    reason="needs ktuberling-data (Debian)")
def test_open_and_real_unknown_words_in_the_layout(tmp_path):
    voices = keyword_synthesis.voice_catalog(4, seed=0, engines=["espeak-ng"])
    info = synthesize_keywords(tmp_path / "u", ["yes"], voices=voices, workers=2,
                               unknown_per_voice=2, unknown_pool=30, real_unknown=24,
                               split_rule="quota")
    tts = [p for p, s in info["clips"].items() if s == "espeak-ng"]
    real = [p for p, s in info["clips"].items() if s.startswith("ktuberling:")]
    assert len(tts) == 4 * 3 and len(real) == 24
    assert {p.split("/")[0] for p in tts} - {"yes"} <= set(info["open_unknown_words"])
    assert not {p.split("/")[0] for p in real} & set(speech_commands_module.KEYWORDS)
    # Whole languages in one split: a test language never appears in training.
    languages = info["real_unknown"]["languages"]
    assert {"training", "validation", "testing"} <= set(languages.values())
    test_clips = set(speech_commands_module.list_split(tmp_path / "u", "test"))
    for path in real:
        language = info["clips"][path].split(":", 1)[1]
        assert (path in test_clips) == (languages[language] == "testing"), path
        rate, samples = _read_wav(tmp_path / "u" / path)
        assert rate == 16000 and np.abs(samples).max() > 0.2
    assert sum(info["real_unknown"]["clips"].values()) == 24
    labels = speech_commands_module.label_names("paper11")
    ds = speech_commands(tmp_path / "u", "test", features=None)
    for _, label in ds.as_numpy_iterator():
        assert labels[label] in ("yes", "unknown")


@pytest.mark.parametrize("kwargs, name", [
    (dict(words=[]), "words"), (dict(words=["a/b"]), "words"), (dict(voices=0), "voices"),
    (dict(split_rule="random"), "split_rule"), (dict(noise=2.0), "noise"),
    (dict(clips_per_voice=0), "clips_per_voice"), (dict(voices=2, split_rule="quota"), "voices"),
    (dict(engines=["nope"]), "engines"), (dict(unknown_per_voice=-1), "unknown_per_voice"),
    (dict(unknown_per_voice=5, unknown_pool=2), "unknown_pool"),
    (dict(real_unknown=1.5), "real_unknown")])
def test_synthesis_bad_arguments(tmp_path, kwargs, name):
    kwargs = {"words": ["go"], "voices": 3, **keyword_synthesis.CLOSED_ESPEAK_SET, **kwargs}
    with pytest.raises(ValueError, match=name):
        synthesize_keywords(tmp_path / "x", **kwargs)


def test_make_keywords_command(tmp_path, capsys):
    out = tmp_path / "cli"
    assert cli.main(["make-keywords", "--out", str(out), "--words", "up,down", "--voices", "3",
                     "--workers", "2", "--unknown-per-voice", "1", "--real-unknown", "0",
                     "--engines", "espeak-ng"]) == 0
    assert "wrote 9 clips" in capsys.readouterr().out
    assert len(_all_clips(out)) == 9 and (out / "validation_list.txt").is_file()
    assert cli.main(["make-keywords", "--out", str(out), "--voices", "3"]) == 2
    assert "not empty" in capsys.readouterr().err


# ---------------------------------------------------------------------- official split rule
def test_which_set_hash_rule():
    # The split depends on the speaker part only, so all clips of a speaker stay together.
    assert {sc.which_set(f"yes/abcd1234_nohash_{n}.wav") for n in range(5)} == {
        sc.which_set("no/abcd1234_nohash_0.wav")}
    rng = np.random.default_rng(0)
    names = [f"{rng.integers(16 ** 8):08x}_nohash_0.wav" for _ in range(4000)]
    shares = {s: np.mean([sc.which_set(n, 10, 20) == s for n in names])
              for s in ("training", "validation", "testing")}
    assert abs(shares["validation"] - 0.1) < 0.02 and abs(shares["testing"] - 0.2) < 0.02
    assert {sc.which_set(n, 0, 0) for n in names[:50]} == {"training"}
    with pytest.raises(ValueError, match="validation_percentage"):
        sc.which_set("a_nohash_0.wav", 120, 0)


# ---------------------------------------------------------------------- loader
def test_split_membership_follows_list_files(kws_root):
    val, test = _list_file(kws_root, "validation_list.txt"), _list_file(kws_root, "testing_list.txt")
    assert sc.list_split(kws_root, "validation") == val
    assert sc.list_split(kws_root, "val") == val
    assert sc.list_split(kws_root, "test") == test
    train = sc.list_split(kws_root, "train")
    assert train == sorted(set(_all_clips(kws_root)) - set(val) - set(test))
    assert len(train) + len(val) + len(test) == len(_all_clips(kws_root))

    # The dataset yields exactly the listed clips, in list order, zero-padded to 1 s.
    waves, lengths, labels = _unbatched(speech_commands(kws_root, "validation", features=None,
                                                        cache=False))
    assert len(waves) == len(val)
    for wave_out, length, label, clip in zip(waves, lengths, labels, val):
        rate, samples = _read_wav(kws_root / clip)
        assert rate == 16000 and length == len(samples)
        np.testing.assert_array_equal(wave_out[:length], samples)
        assert not wave_out[length:].any()
        assert sc.label_names("paper11")[label] == (
            clip.split("/")[0] if clip.split("/")[0] in sc.KEYWORDS else "unknown")


def test_label_sets(kws_root):
    assert sc.label_names("paper11") == (
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "unknown")
    assert sc.label_names("standard12") == sc.label_names("paper11") + ("silence",)
    train = sc.list_split(kws_root, "train")
    expected = [{"yes": 0, "no": 1, "bed": 10}[c.split("/")[0]] for c in train]
    _, _, labels = _unbatched(speech_commands(kws_root, "train", features=None, cache=False))
    np.testing.assert_array_equal(labels, expected)
    _, _, known = _unbatched(speech_commands(kws_root, "train", features=None, cache=False,
                                             unknown_fraction=0.0))
    np.testing.assert_array_equal(known, [lab for lab in expected if lab != 10])

    x, lengths, labels12 = _unbatched(speech_commands(kws_root, "train", "standard12",
                                                      features=None, silence_fraction=0.25))
    silence = int(round(0.25 * len(train)))
    np.testing.assert_array_equal(labels12, expected + [11] * silence)
    assert np.all(lengths[-silence:] == 16000)
    # Silence is background noise, at a volume in [0, 1].
    assert np.abs(x[-silence:]).max() <= 0.5 + 1e-6
    with pytest.raises(ValueError, match="label_set"):
        sc.label_names("paper12")


def test_padding_lengths_kept_and_model_never_spikes_in_padding(kws_root):
    params = features.FrontEndParams()
    ds = speech_commands(kws_root, "train", batch_size=32)
    (x, y), = list(ds.as_numpy_iterator())
    assert x["inputs"].shape == (len(y), 98, 420) and x["inputs"].dtype == np.float32
    true_samples = [len(_read_wav(kws_root / c)[1]) for c in sc.list_split(kws_root, "train")]
    expected = [min(98, max(1, features.num_frames(params, n))) for n in true_samples]
    np.testing.assert_array_equal(x["lengths"], expected)
    assert min(expected) < 98  # the fixture has short clips

    # A model that never crosses theta answers at its last valid frame, not in padding.
    model = RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(11, activation="softmax"),
                    threshold=0.999)
    out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(out["spike_time"], np.array(expected) - 1)


def test_corrupt_empty_and_truncated_wavs_are_named(kws_copy):
    clip = sc.list_split(kws_copy, "test")[0]
    (kws_copy / clip).write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(ValueError, match=re.escape(clip.split("/")[1]) + ".*not a RIFF"):
        speech_commands(kws_copy, "test")
    (kws_copy / clip).write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(clip.split("/")[1]) + ".*empty"):
        speech_commands(kws_copy, "test")
    good = sc.list_split(kws_copy, "test")[1]
    (kws_copy / clip).write_bytes((kws_copy / good).read_bytes()[:1000])
    with pytest.raises(ValueError, match=re.escape(clip.split("/")[1]) + ".*truncated"):
        speech_commands(kws_copy, "test")
    # 3 channels: sox writes WAVE_FORMAT_EXTENSIBLE, which tf.audio.decode_wav cannot read.
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "3", "-b", "16", str(kws_copy / clip),
                    "synth", "0.1", "sine", "440"], check=True)
    with pytest.raises(ValueError, match=re.escape(clip.split("/")[1]) + ".*'fmt ' chunk"):
        speech_commands(kws_copy, "test")


@pytest.mark.parametrize("rate_in", [8000, 22050])
def test_resample_matches_the_tone_at_the_new_rate(rate_in):
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(rate_in) / rate_in)
    out = sc.resample(tone.astype("float32"), rate_in, 16000).numpy()
    assert out.shape == (16000,)
    expected = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(16000) / 16000)
    np.testing.assert_allclose(out[1000:15000], expected[1000:15000], atol=2e-3)


def test_wrong_rate_is_resampled_or_refused(kws_copy):
    t = np.arange(8000) / 8000.0
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    # Stereo whose channel mean is the tone: the loader averages channels.
    stereo = np.stack([tone + 0.2, tone - 0.2], axis=1)
    with wave.open(str(kws_copy / "yes" / "ffffffff_nohash_0.wav"), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(np.round(stereo * 32767).astype("<i2").tobytes())
    with pytest.raises(ValueError, match="ffffffff_nohash_0.wav.*8000 Hz"):
        speech_commands(kws_copy, "train", features=None, resample_audio=False)
    train = sc.list_split(kws_copy, "train")
    waves, lengths, _ = _unbatched(speech_commands(kws_copy, "train", features=None))
    i = train.index("yes/ffffffff_nohash_0.wav")
    assert lengths[i] == 16000
    t16 = np.arange(16000) / 16000.0
    np.testing.assert_allclose(waves[i][1000:15000], 0.5 * np.sin(2 * np.pi * 440.0 * t16)[1000:15000],
                               atol=2e-3)


def test_cache_avoids_recompute_and_files_are_never_modified(kws_copy, tmp_path):
    before = _digest(kws_copy)
    params = features.FrontEndParams(context_frames=0)
    in_memory = speech_commands(kws_copy, "validation", label_set="standard12", features=params)
    on_disk = speech_commands(kws_copy, "validation", features=params,
                              cache=tmp_path / "cache" / "val")
    first, first_disk = _unbatched(in_memory), _unbatched(on_disk)
    assert _digest(kws_copy) == before  # the loader only reads
    assert list((tmp_path / "cache").iterdir())  # the file cache lives where it was told
    # Another configuration on the same cache path gets its own files, not stale values.
    other = features.FrontEndParams(context_frames=0, num_mel_bins=10)
    from_cache = _unbatched(speech_commands(kws_copy, "validation", features=other,
                                            cache=tmp_path / "cache" / "val"))[0]
    assert from_cache.shape[-1] == 10
    np.testing.assert_array_equal(from_cache, _unbatched(
        speech_commands(kws_copy, "validation", features=other, cache=False))[0])
    for clip in sc.list_split(kws_copy, "validation"):
        (kws_copy / clip).unlink()  # a second epoch must not read the audio again
    for again, ref in ((_unbatched(in_memory), first), (_unbatched(on_disk), first_disk)):
        for a, b in zip(again, ref):
            np.testing.assert_array_equal(a, b)


def test_download_from_file_archive(kws_root, tmp_path):
    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # files at the top level, like the official one
        for path in sorted(kws_root.iterdir()):
            tar.add(path, arcname=path.name)
    target = tmp_path / "downloaded"
    ds = speech_commands(target, "test", features=None, cache=False, download=True,
                         origin=archive.as_uri())
    reference = _unbatched(speech_commands(kws_root, "test", features=None, cache=False))
    for a, b in zip(_unbatched(ds), reference):
        np.testing.assert_array_equal(a, b)
    archive.unlink()  # a second call finds the unpacked copy and fetches nothing
    again = speech_commands(target, "test", features=None, cache=False, download=True,
                            origin=archive.as_uri())
    np.testing.assert_array_equal(_unbatched(again)[2], reference[2])


def test_loader_bad_arguments(kws_copy, tmp_path):
    with pytest.raises(ValueError, match="split"):
        speech_commands(kws_copy, "dev")
    with pytest.raises(ValueError, match="label_set"):
        speech_commands(kws_copy, "train", label_set="paper10")
    with pytest.raises(ValueError, match="features"):
        speech_commands(kws_copy, "train", features={"num_mel_bins": 20})
    with pytest.raises(ValueError, match="batch_size"):
        speech_commands(kws_copy, "train", batch_size=0)
    with pytest.raises(FileNotFoundError, match="root"):
        speech_commands(tmp_path / "nowhere", "train")
    with open(kws_copy / "testing_list.txt", "a") as handle:
        handle.write("yes/00000000_nohash_9.wav\n")
    with pytest.raises(FileNotFoundError, match="00000000_nohash_9.wav"):
        speech_commands(kws_copy, "test")


def test_upper_case_wav_extension_is_read(kws_copy):
    before = sc.list_split(kws_copy, "train")
    clip = next(c for c in before if c.startswith("yes/"))
    renamed = clip[:-4] + ".WAV"
    (kws_copy / clip).rename(kws_copy / renamed)
    after = sc.list_split(kws_copy, "train")
    assert renamed in after and clip not in after and len(after) == len(before)
    x, _, y = _unbatched(speech_commands(kws_copy, "train", cache=False))
    assert len(y) == len(after)


def test_cache_that_cannot_be_written_fails_up_front(kws_root, tmp_path):
    # /proc accepts no new files, even from root; a file in place of a folder neither.
    blocker = tmp_path / "file"
    blocker.write_text("")
    for cache in ("/proc/rc_keras_cache", blocker / "cache"):
        with pytest.raises(ValueError, match=r"`cache` '.*' cannot be written"):
            speech_commands(kws_root, "train", cache=str(cache))


def test_augmentation_adds_seeded_copies_to_the_training_split_only(kws_root, tmp_path):
    from rc_keras import augment, kws_training  # noqa: PLC0415

    params = features.FrontEndParams(context_frames=0)
    clean = kws_training.load_split_arrays(kws_root, "train", features=params, cache=False)
    aug = augment.AugmentParams(copies=2)
    x, n, y = kws_training.load_split_arrays(kws_root, "train", features=params, cache=False,
                                             augment=aug, augment_seed=3)
    count = len(clean[2])
    assert x.shape == (3 * count,) + clean[0].shape[1:]
    assert np.array_equal(y, np.tile(clean[2], 3))
    # The first block is the clean split, computed the same way as the loader's.
    np.testing.assert_allclose(x[:count], clean[0], atol=1e-4)
    assert np.array_equal(n[:count], clean[1])
    assert not np.allclose(x[count:2 * count], clean[0], atol=1e-2)
    again = kws_training.load_split_arrays(kws_root, "train", features=params, cache=False,
                                           augment=aug, augment_seed=3)
    assert np.array_equal(again[0], x)
    other = kws_training.load_split_arrays(kws_root, "train", features=params, cache=False,
                                           augment=aug, augment_seed=4)
    assert not np.array_equal(other[0], x)
    # Thinning "unknown": keywords appear in every block, unknown clips in a seeded share.
    _, _, thin = kws_training.load_split_arrays(kws_root, "train", features=params, cache=False,
                                                augment=aug, augment_seed=3, unknown_keep=0.5)
    keywords = np.sum(clean[2] != 10)
    assert np.sum(thin != 10) == 3 * keywords
    assert 0 < np.sum(thin == 10) < 3 * np.sum(clean[2] == 10)
    # Validation and test are never augmented.
    for split in ("validation", "test"):
        plain = kws_training.load_split_arrays(kws_root, split, features=params, cache=False)
        with_aug = kws_training.load_split_arrays(kws_root, split, features=params, cache=False,
                                                  augment=aug)
        assert np.array_equal(plain[0], with_aug[0])
