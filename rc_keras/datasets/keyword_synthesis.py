"""Synthesized keyword datasets in the exact Google Speech Commands layout.

The offline stand-in for Speech Commands in tests, CI and benchmarks: every clip is
spoken by a real text-to-speech engine (espeak-ng, Debian package ``espeak-ng``) and
converted to 16 kHz mono 16-bit PCM by sox (Debian package ``sox``). A "voice" is an
espeak-ng accent with a voice variant, a speed and a pitch; its id plays the role of
the speaker hash, so a voice's clips all land in one split::

    ROOT/<word>/<voiceid>_nohash_<n>.wav
    ROOT/_background_noise_/{white,pink,brown}_noise.wav, hum.wav
    ROOT/validation_list.txt, ROOT/testing_list.txt, ROOT/synthesis.json

```python
from rc_keras.datasets import synthesize_keywords, speech_commands
info = synthesize_keywords("data/kws", words=["yes", "no", "bed"], voices=12, seed=0)
train = speech_commands("data/kws", "train")
```

or ``rc-keras make-keywords --out data/kws --voices 60``.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from rc_keras.datasets.speech_commands_layout import (BACKGROUND_DIR, KEYWORDS, TESTING_LIST,
                                                      VALIDATION_LIST, speaker_percentage,
                                                      which_set)

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
DEFAULT_UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "house", "tree")
DEFAULT_WORDS = KEYWORDS + DEFAULT_UNKNOWN_WORDS
# espeak-ng's English accents (built-in voices; the mbrola ones need extra packages).
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Voice variants that change formants, breathiness and pitch contour (espeak-ng/voices/!v).
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "Annie", "aunty", "boris", "david", "edward", "linda",
            "max", "michael", "paul", "quincy", "robert", "steph", "travis", "grandma", "norbert")
# flite's voices (Debian package ``flite``), used when engines include "flite".
FLITE_VOICES = ("kal16", "awb", "rms", "slt", "kal")
ENGINES = ("espeak-ng", "flite")
SPEEDS = (120, 140, 160, 180)
PITCHES = (25, 35, 45, 55, 65, 75)
NOISE_FILES = ("white_noise", "pink_noise", "brown_noise", "hum")
SPLIT_RULES = ("auto", "hash", "quota")


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice (accent+variant), speed and pitch."""

    name: str
    """espeak-ng ``-v`` argument, e.g. "en-us+f3"."""
    speed: int = 160
    """Words per minute (espeak-ng ``-s``)."""
    pitch: int = 50
    """Pitch 0-99 (espeak-ng ``-p``; flite: mean F0 of 60 + 2 * pitch Hz)."""
    engine: str = "espeak-ng"
    """Text-to-speech engine: "espeak-ng" or "flite" (then ``name`` is a flite voice)."""

    @property
    def id(self):
        """8 hex digits naming the voice in file names (the "speaker hash")."""
        spec = f"{self.name}|{self.speed}|{self.pitch}"
        if self.engine != "espeak-ng":
            spec = f"{self.engine}:{spec}"
        return hashlib.sha1(spec.encode("utf-8")).hexdigest()[:8]


def voice_catalog(count, seed=0, engines=("espeak-ng",)):
    """``count`` distinct voices, drawn deterministically from the engines' voices.

    espeak-ng contributes its accents x variants (240), flite its voices. These base
    voices are used round-robin in a seeded order (so 60 espeak-ng voices use 60
    different accent/variant pairs); speed and pitch are drawn per voice.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`voices` must be a positive integer or a list of Voice; received {count!r}.")
    engines = _check_engines(engines)
    rng = np.random.default_rng([int(seed), 7])
    pairs = []
    if "espeak-ng" in engines:
        pairs += [("espeak-ng", f"{accent}+{variant}") for accent in ACCENTS for variant in VARIANTS]
    if "flite" in engines:
        pairs += [("flite", name) for name in FLITE_VOICES]
    order = rng.permutation(len(pairs))
    voices, seen = [], set()
    limit = len(pairs) * len(SPEEDS) * len(PITCHES)
    if count > limit:
        raise ValueError(f"`voices` must be at most {limit}; received {count}.")
    i = 0
    while len(voices) < count:
        engine, name = pairs[order[i % len(pairs)]]
        voice = Voice(name, int(rng.choice(SPEEDS)), int(rng.choice(PITCHES)), engine)
        i += 1
        if voice not in seen:
            seen.add(voice)
            voices.append(voice)
    return voices


def _require(program, package):
    if shutil.which(program) is None:
        raise FileNotFoundError(
            f"keyword synthesis needs the program '{program}' (Debian: apt-get install {package}).")


def _check_engines(engines):
    engines = (engines,) if isinstance(engines, str) else tuple(engines)
    if not engines or any(e not in ENGINES for e in engines):
        raise ValueError(f"`engines` must be a non-empty subset of {list(ENGINES)}; "
                         f"received {engines!r}.")
    return engines


def _speak(word, voice, speed, pitch, engine="espeak-ng"):
    """16 kHz mono float samples of ``word`` from the engine, resampled by sox."""
    if engine == "flite":
        # flite writes no WAV to stdout: go through a temporary file.
        with tempfile.TemporaryDirectory(prefix="rc_keras_flite_") as tmp:
            out = os.path.join(tmp, "word.wav")
            subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={160 / speed:.3f}",
                            "--setf", f"int_f0_target_mean={60 + 2 * pitch}", "-t", word, "-o", out],
                           capture_output=True, check=True)
            with open(out, "rb") as handle:
                spoken = handle.read()
    else:
        spoken = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
            capture_output=True, check=True).stdout
    raw = subprocess.run(
        # -D -R: no dither and a fixed random seed, so the output is reproducible.
        ["sox", "-V1", "-D", "-R", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed",
         "-b", "16", "-c", "1", "-"], input=spoken, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _trim(samples, margin=320, level=0.02):
    loud = np.flatnonzero(np.abs(samples) > level * max(np.abs(samples).max(), 1e-9))
    if loud.size == 0:
        return samples
    return samples[max(0, loud[0] - margin):loud[-1] + 1 + margin]


def write_wav(path, samples, sample_rate=SAMPLE_RATE):
    """Writes float samples in [-1, 1] as mono 16-bit PCM."""
    pcm = np.clip(np.round(np.asarray(samples) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())


def make_noise(kind, num_samples, rng):
    """Background noise of a kind in NOISE_FILES, peak-normalized to 0.5."""
    white = rng.standard_normal(num_samples)
    if kind == "white_noise":
        noise = white
    elif kind in ("pink_noise", "brown_noise"):
        spectrum = np.fft.rfft(white)
        freqs = np.maximum(np.fft.rfftfreq(num_samples), 1.0 / num_samples)
        spectrum /= freqs ** (0.5 if kind == "pink_noise" else 1.0)
        noise = np.fft.irfft(spectrum, n=num_samples)
    elif kind == "hum":
        t = np.arange(num_samples) / SAMPLE_RATE
        noise = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k
                    for k in range(1, 6)) + 0.1 * white
    else:
        raise ValueError(f"`kind` must be one of {list(NOISE_FILES)}; received {kind!r}.")
    noise = noise - noise.mean()
    return (0.5 * noise / np.abs(noise).max()).astype(np.float32)


def _assign_splits(voices, rule, validation_percentage, testing_percentage):
    """Maps voice id -> "training" | "validation" | "testing"."""
    ids = [v.id for v in voices]
    by_hash = {vid: which_set(f"{vid}_nohash_0.wav", validation_percentage, testing_percentage)
               for vid in ids}
    wanted = {"training"} | ({"validation"} if validation_percentage > 0 else set()) | (
        {"testing"} if testing_percentage > 0 else set())
    if rule == "hash" or (rule == "auto" and set(by_hash.values()) >= wanted):
        return by_hash
    # Quota: voices in hash order; the first shares go to validation then testing, so a
    # small set still gets every split and the assignment is as close to the rule as can be.
    ordered = sorted(ids, key=lambda vid: speaker_percentage(f"{vid}_nohash_0.wav"))
    n_val = max(1, round(len(ids) * validation_percentage / 100)) if validation_percentage else 0
    n_test = max(1, round(len(ids) * testing_percentage / 100)) if testing_percentage else 0
    if n_val + n_test >= len(ids):
        raise ValueError(f"`voices` must be at least {n_val + n_test + 1} to fill the training, "
                         f"validation and test splits; received {len(ids)}.")
    splits = {}
    for i, vid in enumerate(ordered):
        splits[vid] = ("validation" if i < n_val else "testing" if i < n_val + n_test
                       else "training")
    return splits


def synthesize_keywords(root, words=DEFAULT_WORDS, voices=60, clips_per_voice=1, seed=0,
                        noise=0.0, short_fraction=0.1, background_seconds=10.0,
                        validation_percentage=10.0, testing_percentage=10.0, split_rule="auto",
                        workers=None, overwrite=False, engines=("espeak-ng",)):
    """Builds a keyword dataset in the Speech Commands layout with espeak-ng and sox.

    Each (voice, word, n) clip is synthesized, trimmed of leading/trailing silence,
    given a random peak level in [0.3, 0.9], placed at a random offset in a 1 s clip
    (``short_fraction`` of the clips end right after the word instead, as short
    real clips do) and optionally mixed with background noise. Everything random
    comes from generators seeded by ``seed`` and the clip, so the output is identical
    for the same arguments whatever the thread scheduling.

    Splits keep each voice in one split: by the official hash rule on the voice id
    (`rc_keras.datasets.speech_commands.which_set`), or, when that leaves a split empty
    (small sets) and ``split_rule="auto"``, by quotas in hash order.

    Args:
        root: output folder; must be missing or empty unless ``overwrite``.
        words: words to speak; those not among the ten keywords form "unknown".
        voices: number of voices (see `voice_catalog`) or a list of `Voice`.
        clips_per_voice: clips per voice and word (``_nohash_0`` ... ``_nohash_{k-1}``),
            each with a small speed/pitch jitter.
        seed: random seed.
        noise: maximum noise peak level mixed into a clip (0: clean); each clip draws a
            level in [0, noise] and a noise type.
        short_fraction: share of clips saved shorter than 1 s.
        background_seconds: length of each ``_background_noise_`` file.
        validation_percentage, testing_percentage: split shares, in percent of voices.
        split_rule: "auto", "hash" (official rule only) or "quota".
        workers: synthesis threads (each runs espeak-ng and sox); default min(8, CPUs).
        overwrite: allow a non-empty ``root`` (files of the same names are replaced).
        engines: engines whose voices an integer ``voices`` draws from: "espeak-ng"
            and/or "flite" (Debian package ``flite``).

    Returns:
        Dict (also written to ``root/synthesis.json``): "root", "words", "voices"
        (id, name, speed, pitch, split), "num_clips", "splits" (clips per split),
        "seconds".
    """
    start = time.perf_counter()
    root = Path(root)
    words = [words] if isinstance(words, str) else list(words)
    if not words or any(not isinstance(w, str) or not w.strip() or "/" in w or w.startswith("_")
                        for w in words):
        raise ValueError(f"`words` must be a non-empty list of words (no '/', not starting "
                         f"with '_'); received {words!r}.")
    if len(set(words)) != len(words):
        raise ValueError(f"`words` must not repeat a word; received {words!r}.")
    voice_list = (voice_catalog(voices, seed, engines) if isinstance(voices, int)
                  else list(voices))
    if not voice_list or not all(isinstance(v, Voice) for v in voice_list):
        raise ValueError(f"`voices` must be a positive integer or a list of Voice; received {voices!r}.")
    if len({v.id for v in voice_list}) != len(voice_list):
        raise ValueError("`voices` must be distinct voices (distinct ids).")
    if isinstance(clips_per_voice, bool) or not isinstance(clips_per_voice, int) or clips_per_voice < 1:
        raise ValueError(f"`clips_per_voice` must be a positive integer; received {clips_per_voice!r}.")
    for name, value, high in (("noise", noise, 1.0), ("short_fraction", short_fraction, 1.0)):
        if not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise ValueError(f"`{name}` must be a number in [0, {high}]; received {value!r}.")
    if not isinstance(background_seconds, (int, float)) or background_seconds < 1:
        raise ValueError(f"`background_seconds` must be a number >= 1; received {background_seconds!r}.")
    if split_rule not in SPLIT_RULES:
        raise ValueError(f"`split_rule` must be one of {list(SPLIT_RULES)}; received {split_rule!r}.")
    splits = _assign_splits(voice_list, split_rule, validation_percentage, testing_percentage)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"`root` '{root}' is not empty; pass overwrite=True to write into it.")
    for engine in sorted({v.engine for v in voice_list}):
        if engine not in ENGINES:
            raise ValueError(f"`voices` use engine {engine!r}; expected one of {list(ENGINES)}.")
        _require(engine, engine)
    _require("sox", "sox")
    workers = min(8, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"`workers` must be a positive integer; received {workers!r}.")

    root.mkdir(parents=True, exist_ok=True)
    for word in words:
        (root / word).mkdir(exist_ok=True)
    noise_dir = root / BACKGROUND_DIR
    noise_dir.mkdir(exist_ok=True)
    background_samples = int(background_seconds * SAMPLE_RATE)
    backgrounds = {}
    for i, kind in enumerate(NOISE_FILES):
        backgrounds[kind] = make_noise(kind, background_samples,
                                       np.random.default_rng([int(seed), 99, i]))
        write_wav(noise_dir / f"{kind}.wav", backgrounds[kind])

    jobs = [(vi, wi, n) for vi in range(len(voice_list)) for wi in range(len(words))
            for n in range(clips_per_voice)]

    def make_clip(job):
        vi, wi, n = job
        voice, word = voice_list[vi], words[wi]
        word_key = int(hashlib.sha1(word.encode("utf-8")).hexdigest()[:8], 16)
        rng = np.random.default_rng([int(seed), int(voice.id, 16), word_key, n])
        speed = voice.speed if n == 0 else int(voice.speed + rng.integers(-15, 16))
        pitch = voice.pitch if n == 0 else int(np.clip(voice.pitch + rng.integers(-6, 7), 0, 99))
        speech = _trim(_speak(word, voice.name, speed, pitch, voice.engine))[:CLIP_SAMPLES]
        speech = speech * (rng.uniform(0.3, 0.9) / max(np.abs(speech).max(), 1e-9))
        offset = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
        short = rng.random() < short_fraction
        length = min(CLIP_SAMPLES, offset + len(speech) + 160) if short else CLIP_SAMPLES
        clip = np.zeros(length, np.float32)
        clip[offset:offset + len(speech)] = speech
        if noise > 0:
            kind = NOISE_FILES[int(rng.integers(len(NOISE_FILES)))]
            at = int(rng.integers(0, background_samples - length + 1))
            clip += rng.uniform(0, noise) / 0.5 * backgrounds[kind][at:at + length]
        path = f"{word}/{voice.id}_nohash_{n}.wav"
        write_wav(root / path, np.clip(clip, -1.0, 1.0))
        return path, splits[voice.id]

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(make_clip, jobs))
    lists = {"validation": [], "testing": []}
    counts = {"training": 0, "validation": 0, "testing": 0}
    for path, split in results:
        counts[split] += 1
        if split in lists:
            lists[split].append(path)
    (root / VALIDATION_LIST).write_text("".join(p + "\n" for p in sorted(lists["validation"])))
    (root / TESTING_LIST).write_text("".join(p + "\n" for p in sorted(lists["testing"])))
    info = {
        "root": str(root),
        "words": words,
        "unknown_words": [w for w in words if w not in KEYWORDS],
        "voices": [dict(id=v.id, engine=v.engine, name=v.name, speed=v.speed, pitch=v.pitch,
                        split=splits[v.id])
                   for v in voice_list],
        "num_clips": len(results),
        "splits": {"train": counts["training"], "validation": counts["validation"],
                   "test": counts["testing"]},
        "seed": int(seed),
        "noise": float(noise),
        "seconds": round(time.perf_counter() - start, 2),
    }
    (root / "synthesis.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
