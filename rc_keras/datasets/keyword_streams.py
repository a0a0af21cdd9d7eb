"""Long recordings for stream keyword spotting, with ground truth (`rc_keras.streaming`).

A stream is a sequence of spoken words (keywords and non-keyword words) separated by
pauses, over a looped background noise at a known SNR (or none: "clean"). Words come
from a pool spoken by chosen voices (`word_pool`; for a benchmark, the voices of a
synthesized set's test split, so the model never heard them). The ground truth records
each word's start and end in seconds, the voice and whether it is a keyword;
`write_stream` saves it as JSON beside the WAV. A keyword-free stream
(``keyword_share=0``) measures false alarms per hour.

```python
from rc_keras.datasets import keyword_streams as ks
pool = ks.word_pool(voices, ["yes", "no", "bed", "cat"], takes=2, seed=0)
wave, truth = ks.make_stream(pool, seconds=120, keywords=("yes", "no"), snr_db=10,
                             noise=noise_wave, seed=1)
ks.write_stream("streams/s1.wav", wave, truth)       # + streams/s1.json
```
"""

import json
from pathlib import Path

import numpy as np

from rc_keras.datasets import keyword_synthesis as synth

SAMPLE_RATE = synth.SAMPLE_RATE


def word_pool(voices, words, takes=1, seed=0):
    """Trimmed single words: ``[(word, voice id, samples), ...]``.

    Each voice says each word ``takes`` times with the per-utterance variation of
    `rc_keras.datasets.synthesize_keywords` (rate, pitch, expressiveness, punctuation),
    trimmed to the speech (leading/trailing silence cut at 2% of the peak, 20 ms kept).

    Args:
        voices: `rc_keras.datasets.keyword_synthesis.Voice` objects (or dicts with name,
            speed, pitch, engine, as in ``synthesis.json``).
        words: words to say.
        takes: utterances per voice and word.
        seed: seed of the variation.
    """
    from rc_keras.datasets import tts_engines  # noqa: PLC0415

    pool = []
    for voice in voices:
        if isinstance(voice, dict):
            voice = synth.Voice(name=voice["name"], speed=voice["speed"], pitch=voice["pitch"],
                                engine=voice.get("engine", "espeak-ng"))
        for word in words:
            for n in range(takes):
                rng = np.random.default_rng([int(seed), int(voice.id, 16), synth._word_key(word),
                                             n, 11])
                speed = int(round(voice.speed * rng.uniform(0.88, 1.12)))
                pitch = int(np.clip(voice.pitch + rng.integers(-8, 9), 0, 99))
                punctuation = str(rng.choice(tts_engines.PUNCTUATION, p=[0.35, 0.35, 0.2, 0.1]))
                speech = synth._speak(word, voice.name, speed, pitch, voice.engine,
                                      float(rng.uniform(0, 1)), punctuation)
                pool.append((word, voice.id, synth._trim(speech)))
    return pool


def _power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def make_stream(pool, seconds, keywords, keyword_share=0.5, snr_db=None, noise=None,
                gap_seconds=(0.6, 2.5), seed=0, sample_rate=SAMPLE_RATE):
    """A stream of words from ``pool`` with pauses, over background noise.

    Args:
        pool: `word_pool` output.
        seconds: stream length.
        keywords: words that count as keywords (the others in the pool are non-keywords).
        keyword_share: chance that each word is a keyword (0: a keyword-free stream).
        snr_db: speech-to-noise ratio in dB (mean power of the words, over their samples,
            to the noise's power); None: no noise (clean).
        noise: background waveform (looped from a random start), needed with ``snr_db``.
        gap_seconds: (min, max) pause between words, drawn uniformly.
        seed: seed of the draw.

    Returns:
        ``(wave, truth)``: float32 samples in [-1, 1] and a dict with "seconds",
        "sample_rate", "snr_db", "keywords", "events" (word, keyword, voice, start_s,
        end_s, start_sample, end_sample, each word once).
    """
    if not pool:
        raise ValueError("`pool` holds no words.")
    if not 0 <= keyword_share <= 1:
        raise ValueError(f"`keyword_share` must lie in [0, 1]; received {keyword_share!r}.")
    if snr_db is not None and noise is None:
        raise ValueError("`snr_db` needs a `noise` waveform.")
    keywords = tuple(keywords)
    kw = [p for p in pool if p[0] in keywords]
    other = [p for p in pool if p[0] not in keywords]
    if keyword_share > 0 and not kw:
        raise ValueError("`pool` holds none of `keywords`.")
    if keyword_share < 1 and not other:
        raise ValueError("`pool` holds no non-keyword words.")
    rng = np.random.default_rng([int(seed), 17])
    total = int(round(seconds * sample_rate))
    wave = np.zeros(total, np.float32)
    events, speech_power, at = [], [], int(rng.uniform(*gap_seconds) * sample_rate)
    while True:
        choices = kw if rng.random() < keyword_share else other
        word, voice, samples = choices[int(rng.integers(len(choices)))]
        if at + len(samples) > total:
            break
        samples = samples * (rng.uniform(0.3, 0.9) / max(np.abs(samples).max(), 1e-9))
        wave[at:at + len(samples)] += samples
        speech_power.append(_power(samples))
        events.append({"word": word, "keyword": word in keywords, "voice": voice,
                       "start_s": at / sample_rate, "end_s": (at + len(samples)) / sample_rate,
                       "start_sample": at, "end_sample": at + len(samples)})
        at += len(samples) + int(rng.uniform(*gap_seconds) * sample_rate)
    if snr_db is not None:
        noise = np.asarray(noise, np.float32)
        start = int(rng.integers(len(noise)))
        looped = np.resize(np.roll(noise, -start), total)
        scale = np.sqrt(np.mean(speech_power) / (_power(looped) * 10 ** (snr_db / 10)))
        wave += scale * looped
    truth = {"seconds": total / sample_rate, "sample_rate": sample_rate, "snr_db": snr_db,
             "keywords": list(keywords), "events": events}
    return np.clip(wave, -1, 1).astype(np.float32), truth


def write_stream(path, wave, truth):
    """Writes ``path`` (16-bit WAV) and the ground truth beside it (``.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_wav(path, wave)
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1) + "\n")
    return path
