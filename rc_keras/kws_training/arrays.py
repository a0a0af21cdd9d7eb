"""Speech Commands splits as feature arrays, computed once and cached as ``.npz`` files.

`load_split_arrays` runs a split of a Speech Commands folder (real or synthesized)
through the front end once and stacks it into ``(x, lengths, y)`` arrays, so every epoch
and every model of a beta sweep reads the same features without recomputing them; the
train split can carry seeded augmented copies (`rc_keras.augment`). `waveform_features`
is the front end on padded waveforms, `test_arrays_for` a split read with the front end a
trained model expects, `check_data_root` the check every entry point makes on the folder.

Part of `rc_keras.kws_training`, which re-exports every name here.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from rc_keras import validation
from rc_keras.kws_training.front_end_params import context_frames_of, front_end

__all__ = ["load_split_arrays", "waveform_features", "test_arrays_for", "check_data_root",
           "speech_commands_module"]


def check_data_root(data_root, usage="rc-keras --data ROOT", missing=FileNotFoundError):
    """Raises unless ``data_root`` names a folder (the speech-commands task has no
    generated data).

    Args:
        data_root: the dataset folder, or None.
        usage: how a command-line user passes it, quoted in the error.
        missing: the exception class raised for a path that is not a folder.

    Raises:
        ValueError: ``data_root`` is None.
        FileNotFoundError: (or ``missing``) ``data_root`` is not a directory.

    ```python
    from rc_keras.kws_training import check_data_root
    check_data_root(".")  # a folder: passes
    try:
        check_data_root("no/such/folder")
    except FileNotFoundError as error:
        print(error)  # `data_root` 'no/such/folder' is not a directory.
    ```
    """
    if data_root is None:
        raise ValueError(f"`data_root` is required for the speech-commands task ({usage}).")
    if not Path(data_root).is_dir():
        raise missing(f"`data_root` {str(data_root)!r} is not a directory.")


def _cache_key(root, split, label_set, options):
    text = json.dumps({"root": str(Path(root).resolve()), "split": split,
                       "label_set": label_set, "options": options}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _cache_file(cache_dir, name, root, split, label_set, options):
    """``cache_dir/<name>_<label_set>_<key>.npz`` (None without ``cache_dir``)."""
    if cache_dir is None:
        return None
    key = _cache_key(root, split, label_set, options)
    return Path(cache_dir) / f"{name}_{label_set}_{key}.npz"


def _read_cache(cache):
    """``(x, lengths, y)`` from the ``.npz`` file ``cache``, or None when there is none."""
    if cache is None or not cache.is_file():
        return None
    with np.load(cache) as data:
        return data["x"], data["lengths"], data["y"]


def _write_cache(cache, x, lengths, y):
    """Writes ``(x, lengths, y)`` to ``cache`` (nothing when it is None); returns them."""
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x, lengths=lengths, y=y)
    return x, lengths, y


def _stack(dataset, root, split, limit=None):
    """The ``({"inputs", "lengths"}, labels)`` batches of ``dataset`` concatenated:
    ``(inputs, lengths, labels)``, at most ``limit`` clips (reading stops there)."""
    xs, ns, ys = [], [], []
    count = 0
    for inputs, labels in dataset.batch(256).as_numpy_iterator():
        xs.append(inputs["inputs"])
        ns.append(inputs["lengths"])
        ys.append(labels)
        count += len(labels)
        if limit is not None and count >= limit:
            break
    if not xs:
        raise ValueError(f"the {split} split of {root} holds no clips.")
    x, n, y = np.concatenate(xs), np.concatenate(ns), np.concatenate(ys)
    return (x, n, y) if limit is None else (x[:limit], n[:limit], y[:limit])


def load_split_arrays(root, split, label_set="paper11", cache_dir=None, limit=None,
                      augment=None, augment_seed=0, unknown_keep=1.0, **options):
    """One split of a Speech Commands folder as feature arrays, cached.

    Runs `rc_keras.datasets.speech_commands` (log-mel features with true lengths) once
    and stacks the result into arrays; with ``cache_dir`` the arrays are written to an
    ``.npz`` there (keyed by root, split, label set and options) and read back next time.

    Args:
        root: the dataset folder (``<word>/<hash>_nohash_<n>.wav`` and list files).
        split: "train", "validation" (or "val") or "test".
        label_set: "paper11" or "standard12".
        cache_dir: optional folder for the cached arrays.
        limit: optional maximum number of clips (the first ones in loader order).
        augment: an `rc_keras.augment.AugmentParams`; for the "train" split only, each
            clip is followed by ``augment.copies`` augmented copies (ignored for other
            splits, so validation and test stay clean). None or ``copies=0``: off.
        augment_seed: seed of the augmentation (each copy of each clip draws from
            ``default_rng([augment_seed, copy, clip])``).
        unknown_keep: with ``augment``, the share of "unknown" clips each block (the
            clean split and every copy) keeps, each block its own seeded draw: the
            majority class is thinned without dropping any unknown clip from all blocks.
        **options: passed to `rc_keras.datasets.speech_commands`.

    Returns:
        ``(x, lengths, y)``: float32 (n, frames, features), int32 (n,), int32 (n,).
    """
    from rc_keras.datasets import speech_commands  # noqa: PLC0415 - the loader pulls in audio code

    split = {"val": "validation"}.get(split, split)
    validation.check_choice(split, ("train", "validation", "test"), "split")
    if augment is not None and split == "train" and augment.enabled:
        return _augmented_split(root, label_set, cache_dir, limit, augment, augment_seed,
                                options, unknown_keep)
    cache = _cache_file(cache_dir, f"speech_commands_{split}", root, split, label_set,
                        dict(options, limit=limit))
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    x, lengths, y = _stack(speech_commands(root, split, label_set=label_set, **options),
                           root, split, limit)
    return _write_cache(cache, x.astype(np.float32), lengths.astype(np.int32).reshape(-1),
                        y.astype(np.int32).reshape(-1))


def _background_noises(root, sample_rate):
    """The dataset's ``_background_noise_`` waveforms (decoded, at ``sample_rate``)."""
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras.datasets.speech_commands import probe_wav, resample  # noqa: PLC0415

    folder = Path(root) / "_background_noise_"
    noises = []
    for path in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        rate, _, _ = probe_wav(path)
        audio, _ = tf.audio.decode_wav(tf.io.read_file(str(path)))
        wave = tf.reduce_mean(audio, axis=-1)
        if rate != sample_rate:
            wave = resample(wave, rate, sample_rate)
        noises.append(wave.numpy().astype(np.float32))
    return noises


def waveform_features(waves, lengths, params, augment=None, rng_for=None):
    """Front-end features of padded waveforms, with optional SpecAugment masks.

    Args:
        waves: float32 (n, clip_samples).
        lengths: true samples per clip.
        params: `rc_keras.features.FrontEndParams`.
        augment: `rc_keras.augment.AugmentParams` whose masks to apply, or None.
        rng_for: ``i -> numpy Generator`` for clip i's masks (with ``augment``).

    Returns:
        ``(x, frames)``: float32 (n, frames, params.feature_size), int32 (n,) valid frames.
    """
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras import augment as augment_lib  # noqa: PLC0415
    from rc_keras import features as features_lib  # noqa: PLC0415

    frames_per_clip = params.frames_per_clip
    band_hz = augment_lib.mel_band_centres(params.num_mel_bins, params.lower_edge_hz,
                                           params.upper_edge_hz)
    frames = np.clip([features_lib.num_frames(params, int(n)) for n in lengths], 1,
                     frames_per_clip).astype(np.int32)
    out = []
    for start in range(0, len(waves), 256):
        mel = features_lib.log_mel(tf.constant(waves[start:start + 256]), params).numpy()
        if augment is not None:
            mel = np.stack([augment_lib.spec_augment(m, augment, rng_for(start + i),
                                                     frames[start + i], band_hz)
                            for i, m in enumerate(mel)])
        out.append(features_lib.stack_context(tf.constant(mel), params.context_frames).numpy()
                   if params.context_frames else mel)
    return np.concatenate(out).astype(np.float32), frames


def speech_commands_module():
    """`rc_keras.datasets.speech_commands` the module (the package exports a function of
    the same name)."""
    import importlib  # noqa: PLC0415

    return importlib.import_module("rc_keras.datasets.speech_commands")


def _augmented_split(root, label_set, cache_dir, limit, augment, seed, options,
                     unknown_keep=1.0):
    """The train split plus ``augment.copies`` augmented copies of every clip (each block
    keeping a seeded ``unknown_keep`` share of the "unknown" clips)."""
    from rc_keras import augment as augment_lib  # noqa: PLC0415
    from rc_keras import features as features_lib  # noqa: PLC0415
    from rc_keras.datasets import speech_commands  # noqa: PLC0415

    params = options.get("features") or features_lib.FrontEndParams()
    cache = _cache_file(cache_dir, "speech_commands_train_aug", root, "train", label_set, dict(
        options, limit=limit, augment=dataclasses.asdict(augment), augment_seed=seed,
        unknown_keep=unknown_keep))
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    wave_options = {k: v for k, v in options.items() if k not in ("features", "cache")}
    waves, samples, y = _stack(speech_commands(root, "train", label_set=label_set,
                                               features=None, cache=False, **wave_options),
                               root, "train", limit)
    waves, samples, y = waves.astype(np.float32), samples.astype(np.int64), y.astype(np.int32)
    noises = _background_noises(root, params.sample_rate)
    xs, ns = [], []
    x, n = waveform_features(waves, samples, params)
    xs.append(x)
    ns.append(n)
    for copy in range(1, augment.copies + 1):
        rngs = [np.random.default_rng([int(seed), copy, i]) for i in range(len(y))]
        altered = np.empty_like(waves)
        lengths = np.empty_like(samples)
        for i in range(len(y)):
            altered[i], lengths[i] = augment_lib.augment_waveform(
                waves[i], augment, rngs[i], length=samples[i], noises=noises,
                sample_rate=params.sample_rate)
        x, n = waveform_features(altered, lengths, params, augment, lambda i: rngs[i])
        xs.append(x)
        ns.append(n)
    unknown = np.isin(y, [speech_commands_module().LABEL_SETS[label_set].index("unknown")])
    keeps = [~unknown | (np.random.default_rng([int(seed), block, 41]).random(len(y))
                         < unknown_keep) for block in range(augment.copies + 1)]
    x = np.concatenate([x[k] for x, k in zip(xs, keeps)])
    lengths = np.concatenate([n[k] for n, k in zip(ns, keeps)])
    y = np.concatenate([y[k] for k in keeps])
    return _write_cache(cache, x, lengths, y)


def test_arrays_for(data_root, model, size=None, label_set="paper11", params=None,
                    split="test"):
    """The test split of ``data_root`` with the front end ``model`` was trained on
    (``params``, e.g. `saved_front_end`; default: the paper's with the model's context).
    ``split="validation"`` reads the validation split the same way (what a threshold
    schedule is fitted on).

    Returns:
        ``(x, lengths, y)`` arrays, at most ``size`` clips.
    """
    check_data_root(data_root)
    if params is None:
        params = front_end(context_frames_of(model))
    return load_split_arrays(data_root, split, label_set, limit=size, features=params,
                             cache=False)
