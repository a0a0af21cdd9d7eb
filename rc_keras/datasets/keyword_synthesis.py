"""Synthesized keyword datasets in the exact Google Speech Commands layout.

The offline stand-in for Speech Commands in tests, CI and benchmarks: every clip is
spoken by a real text-to-speech engine (`rc_keras.datasets.tts_engines`: espeak-ng,
flite and festival, each used when installed; the neural piper only when named) and
converted to 16 kHz mono 16-bit PCM by sox (Debian package ``sox``). A "voice" is an
engine voice (for espeak-ng an accent with a voice variant) with a base speed and pitch;
its id plays the role of the speaker hash, so a voice's clips all land in one split.
Every utterance varies the rate, pitch, expressiveness (pitch range) and final
punctuation around the voice's base.

The "unknown" class is open: besides ``words`` (spoken by every voice) each voice says
``unknown_per_voice`` words drawn from a pool of non-keyword English words
(`rc_keras.datasets.unknown_words.open_unknown_words`), and ``real_unknown`` adds real
recorded words in many languages (Debian ``ktuberling-data``), each language held in one
split::

    ROOT/<word>/<voiceid>_nohash_<n>.wav
    ROOT/_background_noise_/{white,pink,brown}_noise.wav, hum.wav
    ROOT/validation_list.txt, ROOT/testing_list.txt, ROOT/synthesis.json

```python
from rc_keras.datasets import synthesize_keywords, speech_commands
info = synthesize_keywords("data/kws", words=["yes", "no", "bed"], voices=12, seed=0)
train = speech_commands("data/kws", "train")
```

or ``rc-keras make-keywords --out data/kws`` (every installed engine, open unknown
words and real unknown words by default).
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from rc_keras.datasets import tts_engines, unknown_words
from rc_keras.datasets.speech_commands_layout import (BACKGROUND_DIR, KEYWORDS, TESTING_LIST,
                                                      VALIDATION_LIST, speaker_percentage,
                                                      which_set)

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
DEFAULT_UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "house", "tree")
DEFAULT_WORDS = KEYWORDS + DEFAULT_UNKNOWN_WORDS
ENGINES = tuple(tts_engines.ENGINES)
"""Engine names `voice_catalog` knows (each used only when installed)."""
SPEEDS = (120, 140, 160, 180)
PITCHES = (25, 35, 45, 55, 65, 75)
CLOSED_ESPEAK_SET = {"engines": ("espeak-ng",), "unknown_per_voice": 0, "real_unknown": 0}
"""`synthesize_keywords` arguments of the first release's data (espeak-ng voices only,
the closed "unknown" words of ``words``), which older benchmarks keep for comparison."""
NOISE_FILES = ("white_noise", "pink_noise", "brown_noise", "hum")
SPLIT_RULES = ("auto", "hash", "quota")


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine voice, a base speed and a base pitch."""

    name: str
    """The engine's voice: espeak-ng ``-v`` argument (e.g. "en-us+f3"), a flite voice
    ("slt") or a festival voice ("kal_diphone")."""
    speed: int = 160
    """Words per minute (espeak-ng ``-s``)."""
    pitch: int = 50
    """Pitch 0-99 (see `rc_keras.datasets.tts_engines.Utterance`)."""
    engine: str = "espeak-ng"
    """Text-to-speech engine, a key of `rc_keras.datasets.tts_engines.ENGINES`."""

    @property
    def id(self):
        """8 hex digits naming the voice in file names (the "speaker hash")."""
        spec = f"{self.name}|{self.speed}|{self.pitch}"
        if self.engine != "espeak-ng":
            spec = f"{self.engine}:{spec}"
        return hashlib.sha1(spec.encode("utf-8")).hexdigest()[:8]


def voice_catalog(count, seed=0, engines=None):
    """``count`` distinct voices, drawn deterministically from the engines' voices.

    The engines take turns (so 30 voices from three engines are 10 of each, whatever
    their number of base voices); within an engine its base voices (espeak-ng: accents x
    variants; flite and festival: their voices) are used round-robin in a seeded order,
    so 60 espeak-ng voices use 60 different accent/variant pairs. Speed and pitch are
    drawn per voice.

    Args:
        count: number of voices.
        seed: the draw's seed.
        engines: engine names; None: every installed default engine
            (`available_engines`; piper only when named).
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`voices` must be a positive integer or a list of Voice; received {count!r}.")
    engines = _check_engines(engines)
    rng = np.random.default_rng([int(seed), 7])
    pools = []
    for engine in engines:
        names = tts_engines.get_engine(engine).voices()
        if not names:
            raise FileNotFoundError(
                f"engine '{engine}' has no voices here (Debian: apt-get install "
                f"{tts_engines.get_engine(engine).package}).")
        pools.append([(engine, names[i]) for i in rng.permutation(len(names))])
    limit = sum(len(p) for p in pools) * len(SPEEDS) * len(PITCHES)
    if count > limit:
        raise ValueError(f"`voices` must be at most {limit}; received {count}.")
    voices, seen = [], set()
    i = 0
    while len(voices) < count:
        pool = pools[i % len(pools)]
        engine, name = pool[(i // len(pools)) % len(pool)]
        voice = Voice(name, int(rng.choice(SPEEDS)), int(rng.choice(PITCHES)), engine)
        i += 1
        if voice not in seen:
            seen.add(voice)
            voices.append(voice)
    return voices


def available_engines():
    """Names of the TTS engines installed here (see `rc_keras.datasets.tts_engines`)."""
    return tts_engines.available_engines()


def _require(program, package):
    if shutil.which(program) is None:
        raise FileNotFoundError(
            f"keyword synthesis needs the program '{program}' (Debian: apt-get install {package}).")


def _check_engines(engines):
    if engines is None:
        engines = available_engines()
        if not engines:
            raise FileNotFoundError(
                "keyword synthesis needs a text-to-speech engine: none of "
                f"{list(ENGINES)} is installed (Debian: apt-get install espeak-ng flite "
                "festival festvox-kallpc16k).")
        return engines
    engines = (engines,) if isinstance(engines, str) else tuple(engines)
    if not engines or any(e not in ENGINES for e in engines) or len(set(engines)) != len(engines):
        raise ValueError(f"`engines` must be a non-empty subset of {list(ENGINES)}; "
                         f"received {engines!r}.")
    return engines


def _to_samples(audio_bytes, kind="wav"):
    """16 kHz mono float samples of audio bytes of type ``kind``, resampled by sox."""
    raw = subprocess.run(
        # -D -R: no dither and a fixed random seed, so the output is reproducible.
        ["sox", "-V1", "-D", "-R", "-t", kind, "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed",
         "-b", "16", "-c", "1", "-"],
        input=audio_bytes, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def _speak(word, voice, speed, pitch, engine="espeak-ng", expressiveness=0.5, punctuation=""):
    """16 kHz mono float samples of ``word`` spoken by an engine's voice."""
    utterance = tts_engines.Utterance(speed=int(speed), pitch=int(pitch),
                                      expressiveness=float(expressiveness),
                                      punctuation=punctuation)
    return _to_samples(tts_engines.get_engine(engine).speak(word, voice, utterance))


def _decode(path):
    """16 kHz mono float samples of an audio file (sox reads .ogg and .wav)."""
    return _to_samples(Path(path).read_bytes(), Path(path).suffix.lstrip(".").lower())


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


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0; received {value!r}.")
    return value


def _real_unknown_plan(count, seed, sounds):
    """(language, word, path, split) of ``count`` real recorded words, languages balanced.

    Clips are taken round-robin over language groups (each group's clips in a seeded
    order), so a small ``count`` still covers every language; each language group lies
    in one split (`unknown_words.split_languages`).
    """
    clips = unknown_words.ktuberling_clips(sounds)
    clips = [c for c in clips if Path(c[2]).suffix.lower() in (".ogg", ".wav")]  # sox formats
    by_language = {}
    for language, word, path in clips:
        by_language.setdefault(language, []).append((word, path))
    splits = unknown_words.split_languages(by_language)
    rng = np.random.default_rng([int(seed), 23])
    queues = {lang: [items[i] for i in rng.permutation(len(items))]
              for lang, items in sorted(by_language.items())}
    plan, depth = [], 0
    while len(plan) < count and any(depth < len(q) for q in queues.values()):
        for lang, queue in queues.items():
            if depth < len(queue) and len(plan) < count:
                plan.append((lang, *queue[depth], splits[lang]))
        depth += 1
    return plan, splits


def synthesize_keywords(root, words=DEFAULT_WORDS, voices=60, clips_per_voice=1, seed=0,
                        noise=0.0, short_fraction=0.1, background_seconds=10.0,
                        validation_percentage=10.0, testing_percentage=10.0, split_rule="auto",
                        workers=None, overwrite=False, engines=None, unknown_per_voice=8,
                        unknown_pool=400, real_unknown=600,
                        real_unknown_dir=unknown_words.KTUBERLING_SOUNDS):
    """Builds a keyword dataset in the Speech Commands layout with TTS engines and sox.

    Each (voice, word, n) clip is synthesized with a per-utterance rate, pitch,
    expressiveness and punctuation drawn around the voice's base, trimmed of
    leading/trailing silence, given a random peak level in [0.3, 0.9], placed at a
    random offset in a 1 s clip (``short_fraction`` of the clips end right after the
    word instead, as short real clips do) and optionally mixed with background noise.
    Everything random comes from generators seeded by ``seed`` and the clip, so the
    output is identical for the same arguments whatever the thread scheduling.

    Splits keep each voice in one split: by the official hash rule on the voice id
    (`rc_keras.datasets.speech_commands.which_set`), or, when that leaves a split empty
    (small sets) and ``split_rule="auto"``, by quotas in hash order. Real recorded
    words keep each language in one split (about 30% of the languages test, 15%
    validation).

    Args:
        root: output folder; must be missing or empty unless ``overwrite``.
        words: words every voice speaks; those not among the ten keywords are "unknown".
        voices: number of voices (see `voice_catalog`) or a list of `Voice`.
        clips_per_voice: clips per voice and word (``_nohash_0`` ... ``_nohash_{k-1}``).
        seed: random seed.
        noise: maximum noise peak level mixed into a clip (0: clean); each clip draws a
            level in [0, noise] and a noise type.
        short_fraction: share of clips saved shorter than 1 s.
        background_seconds: length of each ``_background_noise_`` file.
        validation_percentage, testing_percentage: split shares, in percent of voices.
        split_rule: "auto", "hash" (official rule only) or "quota".
        workers: synthesis threads (each runs an engine and sox); default min(8, CPUs).
        overwrite: allow a non-empty ``root`` (files of the same names are replaced).
        engines: engines an integer ``voices`` draws from (names in `ENGINES`); None:
            every installed engine.
        unknown_per_voice: open-unknown words each voice says besides ``words``, drawn
            per voice from the pool (0: none).
        unknown_pool: size of the open-unknown pool (`unknown_words.open_unknown_words`,
            Debian ``wamerican``; words in ``words`` are left out of it).
        real_unknown: number of real recorded words (Debian ``ktuberling-data``) added
            as "unknown" clips (0: none); at most what the package holds.
        real_unknown_dir: where the recorded words are.

    Returns:
        Dict (also written to ``root/synthesis.json``): "root", "words",
        "unknown_words", "open_unknown_words", "voices" (id, engine, name, speed, pitch,
        split), "real_unknown" (languages -> split, clips per split), "clips" (path ->
        engine or "ktuberling:<language>"), "num_clips", "splits" (clips per split),
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
    _check_count("unknown_per_voice", unknown_per_voice)
    _check_count("real_unknown", real_unknown)
    if unknown_per_voice:
        _check_count("unknown_pool", unknown_pool)
        if unknown_pool < unknown_per_voice:
            raise ValueError(f"`unknown_pool` must be at least `unknown_per_voice` "
                             f"({unknown_per_voice}); received {unknown_pool!r}.")
    splits = _assign_splits(voice_list, split_rule, validation_percentage, testing_percentage)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"`root` '{root}' is not empty; pass overwrite=True to write into it.")
    for engine in sorted({v.engine for v in voice_list}):
        if engine not in ENGINES:
            raise ValueError(f"`voices` use engine {engine!r}; expected one of {list(ENGINES)}.")
        tts_engines.get_engine(engine).require()
    _require("sox", "sox")
    pool = (unknown_words.open_unknown_words(unknown_pool, seed, exclude=words)
            if unknown_per_voice else [])
    real_plan, language_splits = (_real_unknown_plan(real_unknown, seed, real_unknown_dir)
                                  if real_unknown else ([], {}))
    workers = min(8, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"`workers` must be a positive integer; received {workers!r}.")

    root.mkdir(parents=True, exist_ok=True)
    noise_dir = root / BACKGROUND_DIR
    noise_dir.mkdir(exist_ok=True)
    background_samples = int(background_seconds * SAMPLE_RATE)
    backgrounds = {}
    for i, kind in enumerate(NOISE_FILES):
        backgrounds[kind] = make_noise(kind, background_samples,
                                       np.random.default_rng([int(seed), 99, i]))
        write_wav(noise_dir / f"{kind}.wav", backgrounds[kind])

    # Jobs: (voice index, word, n) for TTS clips; real clips carry their plan entry.
    jobs = []
    for vi, voice in enumerate(voice_list):
        said = list(words)
        if unknown_per_voice:
            rng = np.random.default_rng([int(seed), int(voice.id, 16), 5])
            said += [pool[i] for i in sorted(rng.choice(len(pool), unknown_per_voice,
                                                        replace=False))]
        jobs += [("tts", vi, word, n) for word in said for n in range(clips_per_voice)]
    taken = {}
    for lang, word, path, split in real_plan:
        folder = re.sub(r"[^a-z0-9]+", "", word.lower()) or "word"
        if folder in KEYWORDS or folder in words:
            folder += "x"  # never the folder of a keyword: these are all "unknown"
        n = taken.get((lang, folder), 0)
        taken[(lang, folder)] = n + 1
        jobs.append(("real", lang, folder, n, path, split))

    def place(speech, rng):
        speech = _trim(speech)[:CLIP_SAMPLES]
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
        return np.clip(clip, -1.0, 1.0)

    def make_clip(job):
        if job[0] == "real":
            _, lang, folder, n, source, split = job
            rng = np.random.default_rng([int(seed), int(unknown_words.voice_id(lang), 16),
                                         _word_key(folder), n])
            path = f"{folder}/{unknown_words.voice_id(lang)}_nohash_{n}.wav"
            (root / folder).mkdir(exist_ok=True)
            write_wav(root / path, place(_decode(source), rng))
            return path, split, f"ktuberling:{lang}"
        _, vi, word, n = job
        voice = voice_list[vi]
        rng = np.random.default_rng([int(seed), int(voice.id, 16), _word_key(word), n])
        # Per utterance: rate +-12%, pitch +-8, expressiveness and punctuation drawn.
        speed = int(round(voice.speed * rng.uniform(0.88, 1.12)))
        pitch = int(np.clip(voice.pitch + rng.integers(-8, 9), 0, 99))
        expressiveness = float(rng.uniform(0.0, 1.0))
        punctuation = str(rng.choice(tts_engines.PUNCTUATION, p=[0.35, 0.35, 0.2, 0.1]))
        speech = _speak(word, voice.name, speed, pitch, voice.engine, expressiveness,
                        punctuation)
        path = f"{word}/{voice.id}_nohash_{n}.wav"
        (root / word).mkdir(exist_ok=True)
        write_wav(root / path, place(speech, rng))
        return path, splits[voice.id], voice.engine

    for word in words:
        (root / word).mkdir(exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool_:
        results = list(pool_.map(make_clip, jobs))
    lists = {"validation": [], "testing": []}
    counts = {"training": 0, "validation": 0, "testing": 0}
    real_counts = {"training": 0, "validation": 0, "testing": 0}
    for path, split, source in results:
        counts[split] += 1
        if source.startswith("ktuberling:"):
            real_counts[split] += 1
        if split in lists:
            lists[split].append(path)
    (root / VALIDATION_LIST).write_text("".join(p + "\n" for p in sorted(lists["validation"])))
    (root / TESTING_LIST).write_text("".join(p + "\n" for p in sorted(lists["testing"])))
    info = {
        "root": str(root),
        "words": words,
        "unknown_words": [w for w in words if w not in KEYWORDS],
        "open_unknown_words": pool,
        "unknown_per_voice": int(unknown_per_voice),
        "voices": [dict(id=v.id, engine=v.engine, name=v.name, speed=v.speed, pitch=v.pitch,
                        split=splits[v.id])
                   for v in voice_list],
        "real_unknown": {"source": str(real_unknown_dir) if real_unknown else None,
                         "languages": language_splits,
                         "clips": {"train": real_counts["training"],
                                   "validation": real_counts["validation"],
                                   "test": real_counts["testing"]}},
        "clips": {path: source for path, _, source in sorted(results)},
        "num_clips": len(results),
        "splits": {"train": counts["training"], "validation": counts["validation"],
                   "test": counts["testing"]},
        "seed": int(seed),
        "noise": float(noise),
        "seconds": round(time.perf_counter() - start, 2),
    }
    (root / "synthesis.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _word_key(word):
    return int(hashlib.sha1(word.encode("utf-8")).hexdigest()[:8], 16)
