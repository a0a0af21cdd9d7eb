"""Keyword spotting on a continuous stream: when an RC instance starts and stops.

An RC network answers at its first output spike, but on a microphone stream there is no
clip start: something must decide when the recurrent state starts from zero. This module
is the host implementation, frame by frame, of that decision (`Listener`), with its
parameters in one frozen dataclass (`StreamPolicy`). The firmware is meant to run the
same loop on the same parameters.

Policies (``StreamPolicy.mode``):

- ``"onset"``: a causal energy detector (`OnsetDetector`) tracks the noise floor; when a
  frame's energy (`log_mel_energy_q8`: the dB of its mean mel power, in integers, so the
  firmware computes the same numbers) rises ``onset_db`` above it for ``onset_frames``
  frames in a row, one
  instance starts with zero state at the onset minus ``pre_roll_frames`` (the frames
  before the onset come from a ring buffer, so the network sees the quiet lead-in its
  training clips had). It reads until it spikes or until ``max_frames`` (the training
  clip length). A spike of a keyword class is a detection; a spike of an ignored class
  ("silence", "unknown") just ends the instance. A new instance needs a new onset (the
  energy must fall back below the threshold for ``release_frames`` frames first).
  After a detection no instance starts and nothing is detected for ``refractory_frames``.
- ``"staggered"``: a new instance every ``stride_frames`` frames, each reading at most
  ``max_frames`` frames; a detection stops every running instance (they heard the same
  word) and starts the refractory period. No onset detector: the comparison policy.

Cost, in network invocations (one step of the recurrent cell plus head) per second of
audio, at ``F = 1000 / stride_ms`` frames a second (100 at 10 ms):

- onset: ``(pre_roll_frames + frames read) x onsets per second``, at most ``F + F *
  pre_roll / (frames read per onset)``; silence costs only the energy detector (a sum
  over the mel bands, no network). `Listener.invocations` counts what a stream used.
- staggered: ``F * (frames read per instance) / stride_frames``, at most
  ``F * max_frames / stride_frames`` (980/s for 98 frames every 10 frames).
- sliding window (TFLM micro_speech: the whole window re-read every k frames, for a
  recurrent network that cannot forget): ``F * max_frames / k`` (`sliding_window_cost`).

Features must be causal (``context_frames == 0``; stacked context is a look-ahead that
`StreamingFrontEnd` supplies by delaying the output ``context_frames`` frames). The
streaming front end gives the frames of `rc_keras.features.frontend` over the whole
stream; with ``normalization="none"`` a clip placed at a multiple of the frame stride
gets the frames it gets alone, so a stream of clips separated by silence gives exactly
the detections of the clips run one by one (tests/test_streaming.py).

The firmware runs the onset policy too (``firmware/rc_stream_policy.{h,cc}``, parameters
written by `rc_keras.export.firmware.write_policy_source`): energies and the detector are
integers on both sides and, with the fixed-point front end
(``FrontEndParams(fixed_point=True)``), the features are the same float32, so host, TFLite
runner and firmware give identical detections (tests/test_firmware_qemu.py).

```python
from rc_keras import streaming
policy = streaming.StreamPolicy(pre_roll_frames=10, refractory_frames=50)
network = streaming.TFLiteStepNetwork("bundle/step_float32.tflite")
front = streaming.StreamingFrontEnd(params)
listener = streaming.Listener(policy, network, class_names=names)
for chunk in microphone:                       # float samples in [-1, 1]
    feats, energy = front.push(chunk)
    for frame, e in zip(feats, energy):
        for d in listener.push(frame, e):
            print(d.keyword, d.spike_time_s, d.onset_time_s, d.confidence)
```
"""

import dataclasses
import math

import numpy as np

MODES = ("onset", "staggered")
DEFAULT_IGNORED = ("unknown", "silence", "_unknown_", "_silence_")
ENERGY_DB_Q = 256
"""Energies and the onset detector's dB levels are integers in units of 1 / 256 dB."""
DB_PER_LOG2_Q16 = 197284
"""``10 log10(2)`` in Q16: dB = log2 * DB_PER_LOG2_Q16 / 2^16 (the firmware's constant)."""


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamPolicy:
    """When RC instances start and stop on a stream (all keyword-only; immutable).

    Frame counts are front-end frames (10 ms each at the default stride).
    """

    mode: str = "onset"
    """"onset" (start at an energy onset) or "staggered" (start every ``stride_frames``)."""
    max_frames: int = 98
    """Most frames one instance reads: the training clip length (98 for 1 s clips)."""
    refractory_frames: int = 50
    """Frames after a detection during which no instance starts and nothing is
    detected (TFLM micro_speech's "suppression time")."""
    threshold: object = None
    """Spike threshold theta (a float, or a per-step schedule); None: the network's own."""
    ignore_classes: tuple = DEFAULT_IGNORED
    """Class names whose spikes end an instance without a detection."""
    onset_db: float = 4.0
    """Onset mode: dB above the noise floor that a frame's energy must reach. Low on
    purpose: at 10 dB SNR a word 9.5 dB below the loudest (peak 0.3 vs 0.9) sits only
    about 5 dB above the noise; a false onset costs invocations, not a detection."""
    onset_frames: int = 2
    """Onset mode: consecutive frames above ``onset_db`` that make an onset (the onset
    time is the first of them)."""
    release_frames: int = 5
    """Onset mode: consecutive frames below ``onset_db`` that re-arm the detector."""
    pre_roll_frames: int = 10
    """Onset mode: frames before the onset that a new instance reads first (buffered)."""
    floor_rise_db: float = 0.02
    """Onset mode: dB per frame by which the noise floor may rise; it falls at once to a
    quieter frame (a running minimum that forgets slowly)."""
    stride_frames: int = 10
    """Staggered mode: frames between instance starts."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {list(MODES)}; received {self.mode!r}.")
        for name, low in (("max_frames", 1), ("refractory_frames", 0), ("onset_frames", 1),
                          ("release_frames", 1), ("pre_roll_frames", 0), ("stride_frames", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}; received {value!r}.")
        if self.pre_roll_frames >= self.max_frames:
            raise ValueError(f"`pre_roll_frames` must be below `max_frames` ({self.max_frames}); "
                             f"received {self.pre_roll_frames!r}.")
        for name in ("onset_db", "floor_rise_db"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a finite number > 0; received {value!r}.")
            if to_q8(value) < 1:
                raise ValueError(f"`{name}` must be at least 1/256 dB (the onset detector "
                                 f"counts in 1/256 dB); received {value!r}.")
        if isinstance(self.ignore_classes, str) or not isinstance(self.ignore_classes, tuple) \
                or not all(isinstance(c, str) for c in self.ignore_classes):
            raise ValueError("`ignore_classes` must be a tuple of class names; received "
                             f"{self.ignore_classes!r}.")
        if self.threshold is not None:
            from rc_keras import validation  # noqa: PLC0415

            validation.check_threshold_values(self.threshold)

    def invocations_per_second_bound(self, stride_ms=10.0):
        """Most network invocations per second of audio this policy can spend."""
        frames_per_second = 1000.0 / stride_ms
        if self.mode == "staggered":
            return frames_per_second * self.max_frames / self.stride_frames
        # One instance at a time, plus the pre-roll caught up at each onset; onsets are at
        # least onset_frames + release_frames apart.
        per_onset = self.onset_frames + self.release_frames
        return frames_per_second * (1.0 + self.pre_roll_frames / per_onset)


def sliding_window_cost(window_frames=98, hop_frames=10, stride_ms=10.0):
    """Invocations per second of re-reading a ``window_frames`` window every
    ``hop_frames`` frames (micro_speech's scheme for a recurrent network)."""
    return 1000.0 / stride_ms * window_frames / hop_frames


# ---------------------------------------------------------------------- front end
def energy_db(mel):
    """Frame energy in dB from mel magnitudes (..., bands): ``10 log10(mean(E^2) + 1e-12)``.

    (The onset detector uses the same quantity in integers: `log_mel_energy_q8`.)"""
    mel = np.asarray(mel, np.float64)
    return (10.0 * np.log10(np.mean(mel * mel, axis=-1) + 1e-12)).astype(np.float32)


def to_q8(db):
    """dB -> the detector's integer units (1 / 256 dB), rounded half to even."""
    return int(round(float(db) * ENERGY_DB_Q))


def _log2_q8(x):
    """log2(x) * 256, rounded down (truncating squarings), for uint64 x >= 1, exactly as
    ``RcLog2Q8`` in firmware/rc_stream_policy.cc: the integer part from the bit length,
    8 fraction bits by repeated squaring of the mantissa (Q30)."""
    x = np.asarray(x, np.uint64)
    bits = np.zeros(x.shape, np.int64)
    v = x.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = (v >> np.uint64(s)) > 0
        v = np.where(big, v >> np.uint64(s), v)
        bits += np.where(big, s, 0)
    k = bits                                   # floor(log2 x)
    up = np.maximum(30 - k, 0).astype(np.uint64)
    down = np.maximum(k - 30, 0).astype(np.uint64)
    m = (x << up) >> down                      # mantissa in [2^30, 2^31)
    out = k << 8
    for bit in range(7, -1, -1):
        m = (m * m) >> np.uint64(30)           # < 2^62: no overflow
        carry = m >= np.uint64(1 << 31)
        m = np.where(carry, m >> np.uint64(1), m)
        out = out + np.where(carry, 1 << bit, 0)
    return out.astype(np.int64)


def to_pcm16(waveform):
    """Float audio in [-1, 1] -> int16 (``round(x * 32768)``, clipped): WAV samples read as
    ``pcm / 32768`` come back exactly (as `rc_keras.features_fixed.log_mel_float_waveform`)."""
    waveform = np.asarray(waveform, np.float64)
    return np.clip(np.round(waveform * 32768.0), -32768, 32767).astype(np.int16)


LN2_Q16 = np.float32(0.69314718056) / np.float32(65536.0)
"""The fixed-point front end's log2 (Q16) -> natural log factor (float32, as in C)."""
EXP2_BITS = 8


def exp2_table():
    """``round(2^(-j / 256) * 2^30)`` for j = 0 ... 256 (uint32; the firmware's table)."""
    j = np.arange(2 ** EXP2_BITS + 1)
    return np.floor(2.0 ** (-j / 2.0 ** EXP2_BITS) * 2.0 ** 30 + 0.5).astype(np.int64)


def log_mel_energy_q8(log_mel):
    """Each frame's energy for the onset detector, in integers (1 / 256 dB).

    ``10 log10(mean_c (mel_c + log_offset)^2)`` from the log-mel frame ``f_c = log(mel_c +
    log_offset)`` (before any normalization), computed as the firmware does
    (``RcPolicyEnergy``): each channel's log back to the front end's integer log2 in Q16
    (``L_c = round(f_c / LN2_Q16)``, exact for the fixed-point front end's features),
    then a log-sum-exp in integers: ``2^(2 (L_c - L_max))`` by a 257-entry table with
    linear interpolation (Q30), summed, and `_log2_q8` of the sum. The same numbers on the
    host and the device, within 0.05 dB of `energy_db` (digital silence: about -120 dB).

    Args:
        log_mel: float (..., channels) log-mel frames (``normalization="none"`` features).

    Returns:
        int64 array (...,).

    Example:

    ```python
    import numpy as np
    from rc_keras import streaming
    mel = np.full((1, 20), 0.5, np.float32)             # every band at 0.5: -6.02 dB
    energy = streaming.log_mel_energy_q8(np.log(mel)) / 256
    assert abs(energy[0] - streaming.energy_db(mel)[0]) < 0.05
    ```
    """
    f = np.asarray(log_mel, np.float32)
    if f.ndim < 1 or f.shape[-1] < 1:
        raise ValueError(f"`log_mel` must have a channel axis; received shape {f.shape}.")
    if not np.all(np.isfinite(f)):
        raise ValueError("`log_mel` contains NaN or Inf values.")
    levels = np.round(f / LN2_Q16).astype(np.int64)          # log2(mel + offset), Q16
    top = levels.max(axis=-1, keepdims=True)
    e = 2 * (top - levels)                                     # log2 of 1 / power ratio, Q16
    whole, frac = e >> 16, e & 0xFFFF
    table = exp2_table()
    j, low = frac >> (16 - EXP2_BITS), frac & ((1 << (16 - EXP2_BITS)) - 1)
    j1 = np.minimum(j + 1, 2 ** EXP2_BITS)
    value = table[j] - (((table[j] - table[j1]) * low) >> (16 - EXP2_BITS))
    term = np.where(whole < 31, value >> np.minimum(whole, 30), 0)
    total = term.sum(axis=-1)                                  # mean power / max * 2^30 * C
    log2 = (_log2_q8(total.astype(np.uint64)) - (30 << 8) - int(_log2_q8(np.uint64(f.shape[-1])))
            + ((2 * top[..., 0]) >> 8))
    return (log2 * DB_PER_LOG2_Q16) >> 16


class StreamingFrontEnd:
    """`rc_keras.features.frontend`, causally, on audio that arrives in chunks.

    ``push(samples)`` returns the frames completed so far: features
    (n, ``params.feature_size``) and their energies (n,) in dB (`log_mel_energy_q8` / 256
    of the log-mel before normalization, for the onset detector). With
    ``params.fixed_point`` the features are `rc_keras.features_fixed.log_mel_int16`'s
    (the firmware's). With ``context_frames = c``
    frames come out ``c`` frames late (the look-ahead) and `flush` returns the last ``c``.
    Over a whole stream the frames equal ``features.frontend(stream, params)`` (the
    normalization state runs on from the stream's first frame and never resets).

    Args:
        params: `rc_keras.features.FrontEndParams`.
    """

    def __init__(self, params):
        from rc_keras import features  # noqa: PLC0415

        features._check_params(params)
        self.params = params
        self._samples = np.zeros(0, np.float32)
        self._norm_state = None
        self._mels = []        # mel frames not yet emitted (context look-ahead)
        self._history = []     # normalized frames kept for the left context
        self._energies = []
        self.frames = 0        # mel frames computed so far
        self._mel_matrix = self._window = None

    def _mel(self, waveform):
        # numpy, with the mel matrix made once: `features.mel_magnitudes` per chunk would
        # rebuild it each time (most of its cost). Same windows, window function and FFT
        # size; the values agree with it to float32 rounding.
        if self._mel_matrix is None:
            import tensorflow as tf  # noqa: PLC0415

            from rc_keras import features  # noqa: PLC0415

            p = self.params
            self._mel_matrix = features.mel_matrix(self.params).numpy().astype(np.float64)
            self._window = tf.signal.hamming_window(p.window_len).numpy().astype(np.float64)
        p = self.params
        count = 1 + (len(waveform) - p.window_len) // p.stride_len
        frames = np.lib.stride_tricks.sliding_window_view(waveform, p.window_len)[
            ::p.stride_len][:count]
        spectrum = np.abs(np.fft.rfft(frames * self._window, n=p.fft_length))
        return (spectrum @ self._mel_matrix).astype(np.float32)

    def _normalize(self, mel):
        import tensorflow as tf  # noqa: PLC0415

        from rc_keras import features  # noqa: PLC0415

        p = self.params
        if p.normalization == "none":
            return np.log(mel + np.float32(p.log_offset)).astype(np.float32)
        out = np.empty_like(mel)
        state = self._norm_state
        for i, frame in enumerate(mel):
            if state is None:
                state = features.initial_state(frame, p)
            feature, state = features.normalization_step(tf.constant(frame), state, p)
            out[i] = feature.numpy()
        self._norm_state = state
        return out

    def push(self, samples):
        """Adds samples (1-D float in [-1, 1]); returns ``(features, energies)``."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            raise ValueError("`samples` contains NaN or Inf values.")
        self._samples = np.concatenate([self._samples, samples])
        p = self.params
        count = 0 if len(self._samples) < p.window_len else \
            1 + (len(self._samples) - p.window_len) // p.stride_len
        if count == 0:
            return self._emit(np.zeros((0, p.num_mel_bins), np.float32), np.zeros(0, np.float32))
        used = (count - 1) * p.stride_len + p.window_len
        if p.fixed_point:
            from rc_keras import features_fixed  # noqa: PLC0415

            normalized = log_mel = features_fixed.log_mel_int16(to_pcm16(self._samples[:used]), p)
        else:
            mel = self._mel(self._samples[:used])
            log_mel = np.log(mel + np.float32(p.log_offset)).astype(np.float32)
            normalized = log_mel if p.normalization == "none" else self._normalize(mel)
        energies = (log_mel_energy_q8(log_mel) / ENERGY_DB_Q).astype(np.float32)
        self._samples = self._samples[count * p.stride_len:]
        self.frames += count
        return self._emit(normalized, energies)

    def _emit(self, normalized, energies):
        c = self.params.context_frames
        if c == 0:
            return normalized, energies
        self._mels.extend(normalized)
        self._energies.extend(energies)
        out, out_e = [], []
        while len(self._mels) > c:
            out.append(self._stack(0))
            out_e.append(self._energies.pop(0))
            self._history.append(self._mels.pop(0))
            self._history = self._history[-c:]
        return self._pack(out, out_e)

    def _stack(self, index):
        c = self.params.context_frames
        window = self._history + self._mels
        centre = len(self._history) + index
        rows = [window[min(max(centre + k, 0), len(window) - 1)] for k in range(-c, c + 1)]
        return np.concatenate(rows)

    def _pack(self, out, out_e):
        width = self.params.feature_size
        return (np.asarray(out, np.float32).reshape(-1, width),
                np.asarray(out_e, np.float32).reshape(-1))

    def flush(self):
        """The frames held back for look-ahead (the stream's end repeats its last frame)."""
        out, out_e = [], []
        while self._mels:
            out.append(self._stack(0))
            out_e.append(self._energies.pop(0))
            self._history.append(self._mels.pop(0))
            self._history = self._history[-self.params.context_frames:]
        return self._pack(out, out_e)


def stream_features(waveform, params, chunk=16000):
    """Features and energies of a whole waveform through `StreamingFrontEnd` (in chunks)."""
    front = StreamingFrontEnd(params)
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    parts = [front.push(waveform[i:i + chunk]) for i in range(0, len(waveform), chunk)]
    parts.append(front.flush())
    return (np.concatenate([f for f, _ in parts]).astype(np.float32),
            np.concatenate([e for _, e in parts]).astype(np.float32))


# ---------------------------------------------------------------------- onset detector
class OnsetDetector:
    """Causal energy onset detector: a noise floor and a threshold ``onset_db`` above it.

    The floor follows the energy down at once and up by at most ``floor_rise_db`` a frame
    (it starts at the first frame's energy). ``update(e)`` returns the index of the onset
    frame (the first of ``onset_frames`` consecutive frames at or above floor +
    ``onset_db``) on the frame that completes it, else None; after an onset the detector
    waits for ``release_frames`` consecutive frames below the threshold before the next.

    Everything is in integers of 1 / 256 dB (`to_q8`: energies, ``onset_db``,
    ``floor_rise_db``), exactly as ``firmware/rc_stream_policy.cc``.
    """

    def __init__(self, policy):
        self.policy = policy
        self.onset_q = to_q8(policy.onset_db)
        self.rise_q = to_q8(policy.floor_rise_db)
        self.floor = None
        self.t = -1
        self.run = 0          # consecutive frames above
        self.quiet = policy.release_frames   # consecutive frames below (armed at start)
        self.armed = True

    def update(self, energy):
        p = self.policy
        energy = to_q8(energy)
        self.t += 1
        if self.floor is None:
            self.floor = energy
        # The threshold uses the floor before this frame, so a loud frame cannot raise it.
        above = energy >= self.floor + self.onset_q
        self.floor = min(energy, self.floor + self.rise_q)
        if above:
            self.run += 1
            self.quiet = 0
        else:
            self.run = 0
            self.quiet += 1
            if self.quiet >= p.release_frames:
                self.armed = True
        if self.armed and self.run >= p.onset_frames:
            self.armed = False
            return self.t - p.onset_frames + 1
        return None


# ---------------------------------------------------------------------- networks
class _Network:
    """What `Listener` needs of a network: a fresh state, one step, the spike test."""

    readout = "softmax"

    def crossed(self, probs, step):
        theta = self._thetas[min(step, len(self._thetas) - 1)]
        if self.readout == "sigmoid":
            return bool(probs[0] >= theta or probs[0] <= np.float32(1) - theta)
        return bool(np.max(probs) >= theta)

    def set_threshold(self, threshold):
        self._thetas = np.atleast_1d(np.asarray(threshold, np.float32))

    def label(self, probs):
        if self.readout == "sigmoid":
            return int(probs[0] >= 0.5)
        return int(np.argmax(probs))

    def confidence(self, probs):
        if self.readout == "sigmoid":
            return float(max(probs[0], 1.0 - probs[0]))
        return float(np.max(probs))


class TFLiteStepNetwork(_Network):
    """An exported step model (`rc_keras.export.export_tflite_step`) run frame by frame
    in LiteRT or TFLM (`rc_keras.export.interpreters.StepRunner`); each instance keeps
    its own states, so staggered instances share one interpreter."""

    def __init__(self, path, runtime="litert", threshold=None):
        from rc_keras.export.interpreters import StepRunner  # noqa: PLC0415

        self.runner = StepRunner(path, runtime=runtime, threshold=threshold)
        self.readout = self.runner.readout
        self.class_names = self.runner.sidecar.get("class_names")
        self.feature_shape = tuple(self.runner.sidecar["feature_shape"])
        self.set_threshold(self.runner.threshold)

    def set_threshold(self, threshold):
        super().set_threshold(threshold)
        if hasattr(self, "runner"):
            self.runner._thetas = self._thetas
            if self.runner.int8:
                from rc_keras.export.tflite_step import quantized_threshold  # noqa: PLC0415

                spec = self.runner.probs_spec
                pairs = [quantized_threshold(float(v), spec["scale"], spec["zero_point"],
                                             self.readout, self.runner.bits) for v in self._thetas]
                self.runner._q_highs = [q[0] for q in pairs]
                self.runner._q_lows = [q[1] for q in pairs]

    def start(self, start_frame):
        self.runner.reset()
        return list(self.runner._state_values)

    def step(self, state, frame, k):
        self.runner._state_values = state
        raw = self.runner.invoke(self.runner.quantize_frames(frame))
        return raw, list(self.runner._state_values)

    def crossed(self, raw, step):
        # Integer compare for int8 / int16x8 models, as on a board.
        return self.runner.crossed(raw, step)

    def label(self, raw):
        return self.runner.label(raw)

    def confidence(self, raw):
        probs = self.runner.dequantize_probs(raw)
        return super().confidence(probs)


_WINDOW_FUNCTIONS = {}


def _window_function(model, feature_shape):
    """``model.step_probabilities`` as one traced graph per model (shared by every
    stream: the eager while_loop would run the step in Python, and a new function per
    stream would trace again)."""
    key = (id(model), tuple(feature_shape))
    entry = _WINDOW_FUNCTIONS.get(key)
    if entry is None or entry[0] is not model:
        import tensorflow as tf  # noqa: PLC0415

        spec = tf.TensorSpec((None, None) + tuple(feature_shape), tf.float32)
        entry = (model, tf.function(model.step_probabilities, input_signature=[spec]))
        _WINDOW_FUNCTIONS[key] = entry
    return entry[1]


class KerasWindowNetwork(_Network):
    """The Keras model on a stream whose features are all known (files, benchmarks).

    An instance starting at frame s gets ``model.step_probabilities`` of the window
    ``features[s : s + max_frames]`` (computed once per start and cached; `prefetch`
    batches many starts), so a threshold sweep re-runs the policy without the network.
    The outputs equal those of stepping the model frame by frame from a zero state.
    """

    def __init__(self, model, features, max_frames, threshold=None, batch_size=64):
        self.model = model
        self.features = np.asarray(features, np.float32)
        self.max_frames = int(max_frames)
        self.readout = model.readout
        self.batch_size = batch_size
        self.cache = {}
        self._fn = None
        self.set_threshold(model.threshold if threshold is None else threshold)

    def _run(self, x):
        if self._fn is None:
            self._fn = _window_function(self.model, self.features.shape[1:])
        return self._fn(x).numpy()

    def prefetch(self, starts):
        """Computes the windows of many instance starts in batches."""
        starts = sorted({int(s) for s in starts} - set(self.cache))
        for i in range(0, len(starts), self.batch_size):
            batch = starts[i:i + self.batch_size]
            # Windows past the stream's end are zero-padded: a step's output depends only
            # on earlier frames, and the listener never reads past the end.
            x = np.zeros((len(batch), self.max_frames) + self.features.shape[1:], np.float32)
            for j, s in enumerate(batch):
                part = self.features[s:s + self.max_frames]
                x[j, :len(part)] = part
            probs = self._run(x)
            for j, s in enumerate(batch):
                self.cache[s] = probs[j]

    def start(self, start_frame):
        if start_frame not in self.cache:
            self.prefetch([start_frame])
        return start_frame

    def step(self, state, frame, k):
        return self.cache[state][k], state


# ---------------------------------------------------------------------- listener
@dataclasses.dataclass(frozen=True)
class Detection:
    """One keyword detection on a stream."""

    label: int
    """Class index."""
    keyword: str
    """Class name (the index as text when the network has no names)."""
    spike_frame: int
    """Stream frame of the spike (0-based)."""
    onset_frame: int
    """Frame the instance was started for (the energy onset; staggered: its first frame)."""
    start_frame: int
    """First frame the instance read (onset minus the pre-roll)."""
    confidence: float
    """The largest output at the spike (sigmoid: max(p, 1 - p))."""
    spike_time_s: float
    """End of the spike frame's window: when the answer is known, in seconds."""
    onset_time_s: float
    """Start of the onset frame's window, in seconds."""

    def to_dict(self):
        return dataclasses.asdict(self)


class Listener:
    """The stream policy, frame by frame: ``push(frame, energy)`` -> new detections.

    Args:
        policy: a `StreamPolicy`.
        network: `TFLiteStepNetwork`, `KerasWindowNetwork` (or anything with ``start``,
            ``step``, ``crossed``, ``label``, ``confidence``, ``set_threshold``).
        class_names: names of the classes (for ``ignore_classes`` and the output).
        stride_ms, window_ms: the front end's frame stride and window (for times).
    """

    def __init__(self, policy, network, class_names=None, stride_ms=10.0, window_ms=25.0):
        if not isinstance(policy, StreamPolicy):
            raise ValueError(f"`policy` must be a rc_keras.streaming.StreamPolicy; received "
                             f"{type(policy).__name__}.")
        self.policy = policy
        self.network = network
        if policy.threshold is not None:
            network.set_threshold(policy.threshold)
        self.class_names = list(class_names) if class_names is not None else None
        ignored = set(policy.ignore_classes)
        self.ignored = {i for i, name in enumerate(self.class_names or []) if name in ignored}
        self.stride_ms, self.window_ms = float(stride_ms), float(window_ms)
        self.detector = OnsetDetector(policy)
        self.t = -1
        self.instances = []     # dicts: state, read (frames read), start, onset
        self.buffer = []        # the last pre_roll_frames + onset_frames frames
        self.refractory_until = -1
        self.invocations = 0
        self.detections = []

    def _time(self, frame, end=False):
        return round((frame * self.stride_ms + (self.window_ms if end else 0.0)) / 1000.0, 6)

    def _start(self, start, onset):
        self.instances.append({"state": self.network.start(start), "read": 0,
                               "start": start, "onset": onset})

    def _advance(self, instance, frame, t):
        """One step of one instance on ``frame`` (stream frame ``t``); returns "spike",
        "timeout" or None."""
        raw, instance["state"] = self.network.step(instance["state"], frame, instance["read"])
        self.invocations += 1
        k = instance["read"]
        instance["read"] += 1
        if self.network.crossed(raw, k):
            label = self.network.label(raw)
            if label not in self.ignored and t > self.refractory_until:
                name = self.class_names[label] if self.class_names else str(label)
                self.detections.append(Detection(
                    label=label, keyword=name, spike_frame=t, onset_frame=instance["onset"],
                    start_frame=instance["start"], confidence=self.network.confidence(raw),
                    spike_time_s=self._time(t, end=True),
                    onset_time_s=self._time(instance["onset"])))
                self.refractory_until = t + self.policy.refractory_frames
                return "detection"
            return "spike"
        if instance["read"] >= self.policy.max_frames:
            return "timeout"
        return None

    def push(self, frame, energy=None):
        """Processes the next frame; returns the detections it produced (a list)."""
        p = self.policy
        self.t += 1
        self.buffer.append(frame)
        # The onset is found onset_frames - 1 frames after it happened: keep those too.
        if len(self.buffer) > p.pre_roll_frames + p.onset_frames:
            self.buffer.pop(0)
        onset = None
        if p.mode == "onset":
            if energy is None:
                raise ValueError("the onset policy needs each frame's `energy` (dB).")
            onset = self.detector.update(energy)
        return self._process(frame, onset, self.buffer)

    def _process(self, frame, onset, buffer):
        """Frame ``self.t``: running instances read it, then maybe a new one starts."""
        p = self.policy
        t = self.t
        found = len(self.detections)
        alive = []
        for instance in self.instances:
            outcome = self._advance(instance, frame, t)
            if outcome == "detection":
                self.instances = []      # every instance heard the same word
                break
            if outcome is None:
                alive.append(instance)
        else:
            self.instances = alive
        if t <= self.refractory_until:
            return self.detections[found:]
        if p.mode == "staggered":
            if t % p.stride_frames == 0:
                self._start(t, t)
                self._catch_up(self.instances[-1], [frame], t)
        elif onset is not None and not self.instances:
            start = max(onset - p.pre_roll_frames, t - len(buffer) + 1)
            self._start(start, onset)
            self._catch_up(self.instances[-1], buffer[start - t - 1:], t)
        return self.detections[found:]

    def _catch_up(self, instance, frames, t):
        """A new instance reads its buffered frames (the last of them is frame t)."""
        first = t - len(frames) + 1
        for i, frame in enumerate(frames):
            outcome = self._advance(instance, frame, first + i)
            if outcome is not None:
                self.instances.remove(instance)
                if outcome == "detection":
                    self.instances = []
                return

    def run(self, features, energies=None):
        """Pushes every frame of a stream; returns all detections (a list).

        The same as `push` frame by frame; in onset mode a fresh listener skips the idle
        frames (no instance running, no onset), where `push` changes nothing but the
        detector and the pre-roll buffer (rebuilt here from ``features``).
        """
        features = np.asarray(features, np.float32)
        p = self.policy
        if p.mode != "onset" or self.t != -1 or energies is None:
            for i in range(len(features)):
                self.push(features[i], None if energies is None else energies[i])
            return list(self.detections)
        onsets = [self.detector.update(e) for e in energies]
        keep = p.pre_roll_frames + p.onset_frames
        for t, onset in enumerate(onsets):
            if self.instances or onset is not None:
                self.t = t
                self._process(features[t], onset, list(features[max(0, t - keep + 1):t + 1]))
        self.t = len(features) - 1
        self.buffer = list(features[max(0, len(features) - keep):])
        return list(self.detections)

    def invocations_per_second(self):
        """Network invocations per second of the audio pushed so far."""
        seconds = (self.t + 1) * self.stride_ms / 1000.0
        return self.invocations / seconds if seconds > 0 else 0.0


def detect(features, energies, policy, network, class_names=None, stride_ms=10.0,
           window_ms=25.0):
    """Runs `Listener` over a whole stream: ``(detections, invocations_per_second)``."""
    listener = Listener(policy, network, class_names, stride_ms, window_ms)
    if hasattr(network, "prefetch"):   # batch the windows the stream can ask for
        network.prefetch(range(0, len(features), policy.stride_frames)
                         if policy.mode == "staggered" else onset_starts(energies, policy))
    detections = listener.run(features, energies)
    return detections, listener.invocations_per_second()


def onset_starts(energies, policy):
    """Every instance start the onset detector could make on a stream (for
    `KerasWindowNetwork.prefetch`)."""
    detector = OnsetDetector(policy)
    starts = []
    for t, e in enumerate(energies):
        onset = detector.update(e)
        if onset is not None:
            starts.append(max(onset - policy.pre_roll_frames, 0))
    return starts
