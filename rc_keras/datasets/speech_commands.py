"""Google Speech Commands (v0.02 layout) as a tf.data pipeline of log-mel features.

The folder layout is the official one::

    ROOT/<word>/<speakerhash>_nohash_<n>.wav      16 kHz mono 16-bit PCM, at most 1 s
    ROOT/_background_noise_/*.wav                 long noise recordings
    ROOT/validation_list.txt, ROOT/testing_list.txt   "<word>/<file>.wav" per line

"train" is every clip listed in neither file. `rc_keras.datasets.synthesize_keywords`
writes the same layout with a text-to-speech engine (the offline stand-in).

```python
from rc_keras.datasets import speech_commands
train = speech_commands("data/speech_commands", "train", batch_size=64, shuffle=True)
for x, y in train.take(1):
    x["inputs"].shape     # (64, 98, 420): frames x (20 mel bands x 21 context frames)
    x["lengths"].shape    # (64,): valid frames; RCModel never spikes beyond them
```

Label sets: "paper11" is the ten keywords yes/no/up/down/left/right/on/off/stop/go plus
"unknown" (every other word); "standard12" adds "silence", clips cut deterministically
from the background-noise files (disjoint regions of each file per split).

The loader only reads ``root``: caches and downloads go where the arguments say.
"""

import concurrent.futures
import hashlib
import tempfile
import os
import struct
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rc_keras import features as features_lib
from rc_keras import validation
# The layout and the official split rule live in a module without TensorFlow (the keyword
# synthesizer and `rc-keras make-keywords --help` use them); their names stay here too.
from rc_keras.datasets.speech_commands_layout import (  # noqa: F401
    _SPLIT_ALIASES, BACKGROUND_DIR, DEFAULT_ORIGIN, KEYWORDS, LABEL_SETS, MAX_NUM_WAVS_PER_CLASS,
    SILENCE, SPLITS, TESTING_LIST, UNKNOWN, VALIDATION_LIST, speaker_percentage, which_set)

# ---------------------------------------------------------------------- layout helpers
def label_names(label_set="paper11"):
    """Class names of a label set, in label-index order.

    Args:
        label_set: "paper11" (10 keywords + "unknown") or "standard12" (+ "silence").

    Returns:
        Tuple of names; label ``i`` of the loader is ``label_names(label_set)[i]``.
    """
    validation.check_choice(label_set, tuple(LABEL_SETS), "label_set")
    return LABEL_SETS[label_set]


def _path_fraction(relpath):
    """A fixed pseudo-random number in [0, 1) per clip path (deterministic subsampling)."""
    return int(hashlib.sha1(relpath.encode("utf-8")).hexdigest(), 16) % 1000003 / 1000003.0


def _check_split(split):
    if split not in _SPLIT_ALIASES:
        raise ValueError(f"`split` must be one of {list(SPLITS)}; received {split!r}.")
    return _SPLIT_ALIASES[split]


def _check_root(root):
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"`root` must be a Speech Commands folder; '{root}' does not exist.")
    missing = [name for name in (VALIDATION_LIST, TESTING_LIST) if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"`root` '{root}' is not in the Speech Commands layout: missing {', '.join(missing)} "
            "(pass download=True to fetch the official archive).")
    return root


def _all_clips(root):
    clips = []
    for word_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        clips.extend(f"{word_dir.name}/{f.name}" for f in sorted(_wav_files(word_dir)))
    return clips


def _wav_files(folder):
    """The WAV files of a folder, whatever the case of their extension (.wav, .WAV)."""
    return [f for f in folder.iterdir() if f.suffix.lower() == ".wav" and f.is_file()]


def _check_cache_folder(cache):
    """Fails now, naming ``cache``, when its folder cannot be created or written: tf.data
    would fail only at the first iteration, deep inside training."""
    folder = Path(cache).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rc_keras_probe_"):
            pass
    except OSError as error:
        raise ValueError(f"`cache` '{cache}' cannot be written: {error.strerror or error} "
                         f"('{folder}'); pass a writable path, True (memory) or False.") from None


def _read_list(root, name):
    entries = []
    for line in (root / name).read_text().splitlines():
        entry = line.strip().replace("\\", "/")
        if entry:
            entries.append(entry)
    return entries


def list_split(root, split):
    """Clips of one split, as sorted "word/file.wav" paths relative to ``root``.

    "validation" and "test" are exactly the entries of ``validation_list.txt`` and
    ``testing_list.txt``; "train" is every ``<word>/*.wav`` in neither list (folders
    starting with "_", such as ``_background_noise_``, are not words).

    Args:
        root: the dataset folder.
        split: "train", "validation" or "test" ("val", "training", "testing" accepted).

    Returns:
        Sorted list of relative paths with "/" separators.

    Raises:
        FileNotFoundError: if a list file is missing or names a clip that does not exist.
    """
    root = _check_root(root)
    split = _check_split(split)
    if split == "train":
        held_out = set(_read_list(root, VALIDATION_LIST)) | set(_read_list(root, TESTING_LIST))
        return [clip for clip in _all_clips(root) if clip not in held_out]
    name = VALIDATION_LIST if split == "validation" else TESTING_LIST
    entries = sorted(set(_read_list(root, name)))
    for entry in entries:
        if not (root / entry).is_file():
            raise FileNotFoundError(f"'{root / name}' lists '{entry}', which does not exist.")
    return entries


def _label_index(relpath, label_set):
    word = relpath.split("/", 1)[0]
    names = LABEL_SETS[label_set]
    return names.index(word) if word in KEYWORDS else names.index(UNKNOWN)


# ---------------------------------------------------------------------- WAV probing
def probe_wav(path):
    """Reads a WAV header: ``(sample_rate, channels, num_samples)``.

    Walks the file exactly as ``tf.audio.decode_wav`` does (RIFF/WAVE then the 'fmt '
    chunk, PCM 16-bit with a consistent block align and byte rate, every chunk after
    it, one complete data chunk), so a clip that would fail inside a tf.data pipeline
    is reported by name before any training starts.

    Raises:
        ValueError: naming the file, when it is empty, truncated, not a WAV file, not
            16-bit PCM, or has a header that tf.audio.decode_wav rejects.
    """
    path = Path(path)

    def fail(reason):
        raise ValueError(f"cannot decode audio file '{path}': {reason}.")

    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size

            def read_at(offset, count):
                handle.seek(offset)
                return handle.read(count)

            if size == 0:
                fail("the file is empty")
            head = read_at(0, 20)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                fail("not a RIFF/WAVE file")
            if len(head) < 20 or head[12:16] != b"fmt ":
                fail("the 'fmt ' chunk must directly follow the RIFF/WAVE header "
                     "(the only layout tf.audio.decode_wav reads)")
            fmt_size = struct.unpack("<I", head[16:20])[0]
            if fmt_size not in (16, 18):  # tf.audio.decode_wav reads no other size
                fail(f"unsupported 'fmt ' chunk of {fmt_size} bytes (WAVE_FORMAT_EXTENSIBLE?); "
                     "re-save as plain 16-bit PCM")
            fmt = read_at(20, 16)
            if len(fmt) < 16:
                fail("truncated 'fmt ' chunk")
            audio_format, channels, rate, byte_rate, block_align, bits = struct.unpack(
                "<HHIIHH", fmt)
            if audio_format != 1 or bits != 16:
                fail(f"only 16-bit PCM is supported (format {audio_format}, {bits} bits)")
            if channels < 1 or not 1 <= rate <= 2 ** 31 - 1:  # decode_wav returns int32
                fail(f"invalid header ({channels} channels, {rate} Hz)")
            if block_align != 2 * channels:
                fail(f"inconsistent header: block align {block_align} for {channels} "
                     f"channel(s) of 16 bits (expected {2 * channels})")
            if byte_rate != (block_align * rate) & 0xFFFFFFFF:
                fail(f"inconsistent header: {byte_rate} bytes per second at {rate} Hz and "
                     f"{block_align} bytes per frame (expected {block_align * rate})")
            offset = 36 + (2 if fmt_size == 18 else 0)
            num_samples = None
            # Like the decoder: every chunk to the end of the file is walked, the data
            # chunk's body is read as whole frames and parsing continues right after them.
            while offset < size:
                header = read_at(offset, 8)
                if len(header) < 8:
                    fail(f"truncated chunk header at byte {offset}")
                chunk_id, chunk_size = struct.unpack("<4sI", header)
                body = offset + 8
                if chunk_size > 2 ** 31 - 1:
                    fail(f"chunk {chunk_id!r} declares {chunk_size} bytes")
                if chunk_id != b"data":
                    offset = body + chunk_size
                    continue
                if num_samples is not None:
                    fail("more than one 'data' chunk")
                num_samples = chunk_size // block_align
                if body + num_samples * block_align > size:
                    fail(f"truncated: the data chunk declares {chunk_size} bytes but only "
                         f"{size - body} follow")
                offset = body + num_samples * block_align
    except OSError as error:
        raise ValueError(f"cannot read audio file '{path}': {error}") from None
    if num_samples is None:
        fail("no 'data' chunk found")
    if num_samples == 0:
        fail("no audio samples")
    return rate, channels, num_samples


def _probe_all(paths, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(probe_wav, paths))


# ---------------------------------------------------------------------- resampling
_TFIO_RESAMPLE = []


def _tfio_resample_fn():
    """tensorflow-io's resampler when its native ops load (they do not on TF 2.21)."""
    if not _TFIO_RESAMPLE:
        fn = None
        try:
            import tensorflow_io as tfio  # noqa: PLC0415 - optional dependency

            tfio.audio.resample(tf.zeros([16, 1]), rate_in=16000, rate_out=8000)
            fn = tfio.audio.resample
        except Exception:  # noqa: BLE001 - missing package or native library
            fn = None
        _TFIO_RESAMPLE.append(fn)
    return _TFIO_RESAMPLE[0]


def resample_backend():
    """Name of the resampler in use: "tensorflow-io" or "tf.signal (FFT)"."""
    return "tensorflow-io" if _tfio_resample_fn() is not None else "tf.signal (FFT)"


def resample(waveform, rate_in, rate_out):
    """Resamples a 1-D waveform from ``rate_in`` to ``rate_out`` Hz (graph-safe).

    Uses tensorflow-io when its native ops load; otherwise a pure-TF band-limited FFT
    resampler (like ``scipy.signal.resample``: the spectrum is cut or zero-extended).

    Args:
        waveform: float tensor (samples,).
        rate_in, rate_out: sample rates (int or int tensor).

    Returns:
        float32 tensor (round(samples * rate_out / rate_in),).
    """
    waveform = tf.cast(waveform, tf.float32)
    tfio_fn = _tfio_resample_fn()
    if tfio_fn is not None:
        return tfio_fn(waveform[:, None], rate_in=tf.cast(rate_in, tf.int64),
                       rate_out=tf.cast(rate_out, tf.int64))[:, 0]
    n = tf.cast(tf.shape(waveform)[0], tf.int64)
    rate_in, rate_out = tf.cast(rate_in, tf.int64), tf.cast(rate_out, tf.int64)
    n_out = (n * rate_out + rate_in // 2) // rate_in
    spectrum = tf.signal.rfft(waveform)
    bins_out = tf.cast(n_out // 2 + 1, tf.int32)
    kept = spectrum[:bins_out]
    spectrum = tf.pad(kept, [[0, bins_out - tf.shape(kept)[0]]])
    out = tf.signal.irfft(spectrum, fft_length=tf.cast(n_out, tf.int32)[None])
    return out * tf.cast(n_out, tf.float32) / tf.cast(n, tf.float32)


# ---------------------------------------------------------------------- download
def _download(root, origin):
    """Fetches and unpacks ``origin`` into ``root``; returns the folder with the layout."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fname = os.path.basename(origin.rstrip("/")) or "speech_commands.tar.gz"
    extracted = Path(keras.utils.get_file(fname=fname, origin=origin, extract=True,
                                          cache_dir=str(root), cache_subdir=""))
    for candidate in [extracted] + sorted(p for p in extracted.iterdir() if p.is_dir()):
        if (candidate / VALIDATION_LIST).is_file():
            return candidate
    raise FileNotFoundError(
        f"the archive from `origin` '{origin}' unpacked to '{extracted}' but holds no "
        f"{VALIDATION_LIST}: not a Speech Commands archive.")


def _find_downloaded(root):
    root = Path(root)
    if (root / VALIDATION_LIST).is_file() or not root.is_dir():
        return root
    for extracted in sorted(root.glob("*_extracted")):
        for candidate in [extracted] + sorted(p for p in extracted.iterdir() if p.is_dir()):
            if (candidate / VALIDATION_LIST).is_file():
                return candidate
    return root


# ---------------------------------------------------------------------- silence
def _silence_clips(root, split, count, clip_samples, sample_rate, seed):
    """(noise, starts, offsets, volumes) for ``count`` silence clips of ``split``.

    Each background file is divided in time: the first 80% serves "train", the next
    10% "validation", the last 10% "test" (the whole file when a region is shorter
    than a clip), so splits never share noise. Offsets and volumes come from a
    generator seeded by ``seed`` and the split.
    """
    noise_dir = root / BACKGROUND_DIR
    files = sorted(_wav_files(noise_dir)) if noise_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"label_set 'standard12' needs background noise in '{noise_dir}'; none found.")
    waves = []
    for path in files:
        rate, channels, _ = probe_wav(path)
        audio, _ = tf.audio.decode_wav(tf.io.read_file(str(path)))
        audio = tf.reduce_mean(audio, axis=-1)
        if rate != sample_rate:
            audio = resample(audio, rate, sample_rate)
        audio = audio.numpy()
        if len(audio) < clip_samples:
            audio = np.pad(audio, (0, clip_samples - len(audio)))
        waves.append(audio.astype(np.float32))
    lows, highs = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}[split]
    rng = np.random.default_rng([int(seed), SPLITS.index(split), 12])
    starts = np.cumsum([0] + [len(w) for w in waves[:-1]])
    file_index = np.arange(count) % len(waves)
    offsets = np.zeros(count, np.int64)
    for i, f in enumerate(file_index):
        length = len(waves[f])
        lo, hi = int(lows * length), int(highs * length) - clip_samples
        if hi < lo:
            lo, hi = 0, length - clip_samples
        offsets[i] = starts[f] + rng.integers(lo, hi + 1)
    volumes = rng.uniform(0.0, 1.0, size=count).astype(np.float32)
    return np.concatenate(waves), offsets, volumes


# ---------------------------------------------------------------------- the loader
def speech_commands(root, split, label_set="paper11", features=features_lib.FrontEndParams(),
                    cache=True, batch_size=None, shuffle=False, shuffle_buffer=10000, seed=0,
                    resample_audio=True, silence_fraction=0.1, unknown_fraction=1.0,
                    download=False, origin=DEFAULT_ORIGIN, num_parallel_calls=tf.data.AUTOTUNE):
    """Speech Commands clips of one split as a ``tf.data.Dataset`` of ``(x, label)``.

    Every clip is decoded with ``tf.audio.decode_wav`` (channels averaged), resampled to
    ``features.sample_rate`` if needed, cut or zero-padded to ``features.clip_seconds``
    and turned into log-mel features with context (`rc_keras.features.frontend`). ``x``
    is the dict input `rc_keras.RCModel` accepts::

        {"inputs": (frames, feature_size) float32, "lengths": () int32 valid frames}

    ``lengths`` is ``num_frames(features, true_samples)`` (at least 1, at most the clip's
    frames), so a model never answers inside the padding of a short clip. With
    ``features=None`` ``x["inputs"]`` is the padded waveform (clip_samples,) at 16 kHz
    and ``x["lengths"]`` the true sample count.

    Args:
        root: dataset folder in the official layout (or where to download it).
        split: "train", "validation" or "test" ("val", "training", "testing" accepted).
        label_set: "paper11" or "standard12" (see `label_names`).
        features: a `rc_keras.features.FrontEndParams`, or None for waveforms.
        cache: True caches decoded log-mel features in memory, a path caches them in
            tf.data cache files named ``<path>_<fingerprint>*``, False recomputes every
            epoch. The fingerprint hashes the clip list and every setting that changes
            the cached values, so another configuration never reads a stale cache.
            Context stacking runs after the cache, so it stores 20 rather than 420
            values a frame.
        batch_size: if set, the dataset is batched (the last batch may be smaller).
        shuffle: shuffle clips each epoch (seeded by ``seed``), after the cache.
        shuffle_buffer: shuffle buffer size in clips.
        seed: seed of the shuffling and of the silence clips.
        resample_audio: resample clips at other rates; if False such a clip raises.
        silence_fraction: "standard12" only: silence clips per word clip of the split.
        unknown_fraction: share of "unknown" clips kept (deterministic, hash of the path).
        download: fetch and unpack ``origin`` into ``root`` first (with
            ``keras.utils.get_file``) unless ``root`` already holds the layout.
        origin: archive URL; a file:// URL works.
        num_parallel_calls: parallelism of decoding and feature computation.

    Returns:
        ``tf.data.Dataset`` of ``({"inputs", "lengths"}, label int32)``.

    Raises:
        ValueError: bad arguments, an undecodable clip (named), or a clip at another
            sample rate with ``resample_audio=False`` (named).
        FileNotFoundError: ``root`` without the layout, or missing listed clips.
    """
    split = _check_split(split)
    label_names(label_set)
    if features is not None and not isinstance(features, features_lib.FrontEndParams):
        raise ValueError("`features` must be a rc_keras.features.FrontEndParams or None; "
                         f"received {type(features).__name__}.")
    for name, value, high in (("silence_fraction", silence_fraction, 10.0),
                              ("unknown_fraction", unknown_fraction, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise ValueError(f"`{name}` must be a number in [0, {high:g}]; received {value!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer or None; received {batch_size!r}.")
    if download:
        root = _find_downloaded(root)
        if not (Path(root) / VALIDATION_LIST).is_file():
            root = _download(root, origin)
    root = _check_root(root)
    if cache is not True and cache:
        _check_cache_folder(cache)
    params = features if features is not None else features_lib.FrontEndParams()
    clip_samples, rate_out = params.clip_samples, params.sample_rate

    clips = list_split(root, split)
    labels = [_label_index(c, label_set) for c in clips]
    unknown = LABEL_SETS[label_set].index(UNKNOWN)
    if unknown_fraction < 1:
        keep = [lab != unknown or _path_fraction(c) < unknown_fraction
                for c, lab in zip(clips, labels)]
        clips = [c for c, k in zip(clips, keep) if k]
        labels = [lab for lab, k in zip(labels, keep) if k]
    paths = [str(root / c) for c in clips]
    infos = _probe_all(paths)
    if not resample_audio:
        for path, (rate, _, _) in zip(paths, infos):
            if rate != rate_out:
                raise ValueError(
                    f"audio file '{path}' has sample rate {rate} Hz but {rate_out} Hz is expected "
                    "and `resample_audio` is False.")

    def load(path, label):
        audio, rate = tf.audio.decode_wav(tf.io.read_file(path))
        wave = tf.reduce_mean(audio, axis=-1)
        wave = tf.cond(tf.equal(rate, rate_out), lambda: wave,
                       lambda: resample(wave, rate, rate_out))
        wave = wave[:clip_samples]
        length = tf.shape(wave)[0]
        wave = tf.pad(wave, [[0, clip_samples - length]])
        wave = tf.ensure_shape(wave, [clip_samples])
        return wave, length, label

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, tf.string), tf.constant(labels, tf.int32)))
    ds = ds.map(load, num_parallel_calls=num_parallel_calls, deterministic=True)

    if label_set == "standard12" and silence_fraction > 0 and clips:
        count = max(1, int(round(silence_fraction * len(clips))))
        noise, offsets, volumes = _silence_clips(root, split, count, clip_samples, rate_out, seed)
        noise = tf.constant(noise)
        silence_label = LABEL_SETS[label_set].index(SILENCE)

        def cut(offset, volume):
            wave = tf.ensure_shape(tf.slice(noise, [offset], [clip_samples]) * volume,
                                   [clip_samples])
            return wave, tf.constant(clip_samples, tf.int32), tf.constant(silence_label, tf.int32)

        ds = ds.concatenate(tf.data.Dataset.from_tensor_slices((offsets, volumes)).map(
            cut, num_parallel_calls=num_parallel_calls))

    if features is not None:
        frames = params.frames_per_clip

        def to_features(wave, length, label):
            valid = tf.clip_by_value(features_lib.num_frames_tensor(params, length), 1, frames)
            return features_lib.log_mel(wave, params), valid, label

        ds = ds.map(to_features, num_parallel_calls=num_parallel_calls, deterministic=True)
    if cache is True:
        ds = ds.cache()
    elif cache:
        fingerprint = hashlib.sha1(repr((
            str(Path(root).resolve()), split, label_set, clips, features, silence_fraction,
            seed if label_set == "standard12" else None, resample_audio)).encode()).hexdigest()
        ds = ds.cache(f"{cache}_{fingerprint[:12]}")
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)

    context = params.context_frames if features is not None else 0

    def pack(x, length, label):
        if context:
            x = features_lib.stack_context(x, context)
        return {"inputs": x, "lengths": length}, label

    ds = ds.map(pack, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
