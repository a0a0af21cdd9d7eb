"""Log-mel front end for keyword spotting, usable in tf.data and as a Keras layer.

The defaults follow the paper's Speech Commands setup: 16 kHz audio, 25 ms Hamming
windows every 10 ms, 20 log-mel bands, no padding, and 10 context frames on each side
of every frame (20 x 21 = 420 features per frame).

Frame count. With ``W = window_len`` and ``S = stride_len`` samples (400 and 160 at the
defaults), a waveform of ``N >= W`` samples gives ``1 + (N - W) // S`` frames because no
padding is added: one frame for the first full window, then one per full stride that
still fits. A 1 s clip (N = 16000) gives 1 + 15600 // 160 = 98 frames. Context
stacking keeps the frame count (edges repeat the first/last frame).

```python
import tensorflow as tf
from rc_keras import features
params = features.FrontEndParams()                    # paper defaults
features.num_frames(params, 16000)                    # 98
x = features.frontend(tf.zeros([16000]), params)      # (98, 420): log-mel + context
layer = features.LogMelFrontEnd(params)               # the same as a Keras layer
```

Causal normalization (``FrontEndParams.normalization``). Real and synthesized speech
differ in level and spectral tilt; a per-band normalization that only looks back removes
most of that, and still runs frame by frame on a device while audio arrives. With
``E_t`` the mel magnitudes of frame t (``|STFT| @ mel_matrix``, one value per band),
``L_t = log(E_t + log_offset)`` and ``s = norm_smoothing``:

- ``"running_mean"``: ``m_0 = L_0``; ``m_t = m_{t-1} + s * (L_t - m_{t-1})`` for t >= 1;
  the feature is ``L_t - m_t`` (so frame 0 gives zeros).
- ``"pcen"`` (per-channel energy normalization, Wang et al. 2017): ``M_0 = E_0``;
  ``M_t = M_{t-1} + s * (E_t - M_{t-1})``; the feature is
  ``(E_t / (pcen_eps + M_t) ** pcen_alpha + pcen_delta) ** pcen_r - pcen_delta ** pcen_r``.
- ``"none"``: ``L_t``.

The state (``m`` or ``M``, one float per band) starts from the clip's first frame, is
updated before it is used, and never sees a later frame. `normalization_step` is that
recurrence for one frame (the exported TFLite normalization model and firmware run it);
`normalize` runs it over a clip (tf.data, `LogMelFrontEnd`). Context stacking comes
after it.
"""

import dataclasses
import math

import keras
import tensorflow as tf


NORMALIZATIONS = ("none", "running_mean", "pcen")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FrontEndParams:
    """Parameters of the log-mel front end (all keyword-only; the object is immutable)."""

    sample_rate: int = 16000
    """Sample rate in Hz that waveforms are at (the loader resamples other rates to it)."""
    window_ms: float = 25.0
    """Length of the Hamming analysis window in milliseconds (400 samples at 16 kHz)."""
    stride_ms: float = 10.0
    """Hop between frame starts in milliseconds (160 samples at 16 kHz)."""
    num_mel_bins: int = 20
    """Number of mel bands, i.e. features per frame before context stacking."""
    lower_edge_hz: float = 20.0
    """Lower edge of the lowest mel band in Hz."""
    upper_edge_hz: float = 7600.0
    """Upper edge of the highest mel band in Hz; at most half the sample rate."""
    log_offset: float = 1e-6
    """Added to the mel magnitudes before the natural log, so silence maps to log(1e-6)
    instead of -inf."""
    context_frames: int = 10
    """Frames of context stacked on each side of every frame (0: none). A frame's
    features then span ``2 * context_frames + 1`` frames: note that the right context
    is a look-ahead of ``context_frames * stride_ms`` milliseconds."""
    clip_seconds: float = 1.0
    """Clip length in seconds: shorter clips are zero-padded to it, longer ones cut."""
    normalization: str = "none"
    """Causal per-band normalization: "none", "running_mean" (log-mel minus its
    exponential running mean) or "pcen" (see the module docstring for the recurrences)."""
    norm_smoothing: float = 0.04
    """Weight ``s`` of the new frame in the running mean / PCEN smoother (time constant
    about ``stride_ms / s``: 250 ms at the defaults)."""
    pcen_alpha: float = 0.98
    """PCEN gain-normalization exponent."""
    pcen_delta: float = 2.0
    """PCEN bias added before the root compression."""
    pcen_r: float = 0.5
    """PCEN root-compression exponent."""
    pcen_eps: float = 1e-6
    """PCEN floor added to the smoother before the division."""
    fixed_point: bool = False
    """Compute the features in the firmware's integer arithmetic (`rc_keras.features_fixed`:
    int16 audio, a fixed-point FFT, table square root and log2), bit-exact with the device's
    front end; False: float32 ``tf.signal``. Needs ``normalization="none"``."""

    def __post_init__(self):
        for name in ("sample_rate", "num_mel_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
        if isinstance(self.context_frames, bool) or not isinstance(self.context_frames, int) \
                or self.context_frames < 0:
            raise ValueError(
                f"`context_frames` must be an integer >= 0; received {self.context_frames!r}.")
        for name in ("window_ms", "stride_ms", "log_offset", "clip_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a finite number > 0; received {value!r}.")
        if not isinstance(self.fixed_point, bool):
            raise ValueError(f"`fixed_point` must be True or False; received {self.fixed_point!r}.")
        if self.fixed_point and self.normalization != "none":
            raise ValueError(f"`fixed_point=True` has no normalization yet: `normalization` must be "
                             f"'none'; received {self.normalization!r}.")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {list(NORMALIZATIONS)}; "
                             f"received {self.normalization!r}.")
        if not isinstance(self.norm_smoothing, (int, float)) or not 0 < self.norm_smoothing <= 1:
            raise ValueError(f"`norm_smoothing` must be a number in (0, 1]; received "
                             f"{self.norm_smoothing!r}.")
        for name in ("pcen_alpha", "pcen_delta", "pcen_r", "pcen_eps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a finite number > 0; received {value!r}.")
        nyquist = self.sample_rate / 2
        if not 0 <= self.lower_edge_hz < self.upper_edge_hz:
            raise ValueError(
                f"`lower_edge_hz` must satisfy 0 <= lower_edge_hz < upper_edge_hz "
                f"({self.upper_edge_hz}); received {self.lower_edge_hz!r}.")
        if self.upper_edge_hz > nyquist:
            raise ValueError(
                f"`upper_edge_hz` must be at most half the sample rate ({nyquist} Hz); "
                f"received {self.upper_edge_hz!r}.")
        if self.window_len > self.clip_samples:
            raise ValueError(
                f"`window_ms` ({self.window_ms} ms = {self.window_len} samples) must not exceed "
                f"the clip ({self.clip_samples} samples); received window_ms={self.window_ms!r}.")

    @property
    def window_len(self):
        """Window length in samples (400 at the defaults)."""
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def stride_len(self):
        """Hop in samples (160 at the defaults)."""
        return max(1, int(round(self.sample_rate * self.stride_ms / 1000.0)))

    @property
    def fft_length(self):
        """FFT size: the smallest power of two >= the window (512 at the defaults)."""
        return 1 << (self.window_len - 1).bit_length()

    @property
    def clip_samples(self):
        """Samples per padded clip (16000 at the defaults)."""
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def frames_per_clip(self):
        """Frames of a full clip (98 at the defaults)."""
        return num_frames(self, self.clip_samples)

    @property
    def feature_size(self):
        """Features per frame after context stacking (420 at the defaults)."""
        return self.num_mel_bins * (2 * self.context_frames + 1)


def num_frames(params, num_samples):
    """Number of frames the front end makes from ``num_samples`` samples.

    No padding is added, so with ``W = params.window_len`` and ``S = params.stride_len``
    the count is ``1 + (num_samples - W) // S`` for ``num_samples >= W`` and 0 below:
    98 for one second at the defaults (1 + (16000 - 400) // 160).

    Args:
        params: a `FrontEndParams`.
        num_samples: waveform length in samples (int >= 0).

    Returns:
        The frame count, an int.
    """
    _check_params(params)
    if isinstance(num_samples, bool) or int(num_samples) != num_samples or num_samples < 0:
        raise ValueError(f"`num_samples` must be an integer >= 0; received {num_samples!r}.")
    num_samples = int(num_samples)
    if num_samples < params.window_len:
        return 0
    return 1 + (num_samples - params.window_len) // params.stride_len


def num_frames_tensor(params, num_samples):
    """`num_frames` for an integer tensor of sample counts (usable in tf.data)."""
    num_samples = tf.cast(num_samples, tf.int32)
    frames = 1 + (num_samples - params.window_len) // params.stride_len
    return tf.where(num_samples < params.window_len, tf.zeros_like(frames), frames)


def _check_params(params):
    if not isinstance(params, FrontEndParams):
        raise ValueError(
            f"`params` must be a rc_keras.features.FrontEndParams; received {type(params).__name__}.")


def mel_matrix(params, dtype=tf.float32):
    """The (fft_length // 2 + 1, num_mel_bins) linear-to-mel weight matrix."""
    _check_params(params)
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=params.num_mel_bins, num_spectrogram_bins=params.fft_length // 2 + 1,
        sample_rate=params.sample_rate, lower_edge_hertz=params.lower_edge_hz,
        upper_edge_hertz=params.upper_edge_hz, dtype=dtype)


def log_mel(waveform, params):
    """Log-mel features of waveforms, with a Hamming window and no padding, normalized
    causally when ``params.normalization`` says so (`normalize`).

    Pure TensorFlow (``tf.signal``), so it runs inside ``tf.data.Dataset.map``, in a
    Keras layer and in a SavedModel.

    Args:
        waveform: float tensor (..., samples), values in [-1, 1].
        params: a `FrontEndParams`.

    Returns:
        float32 tensor (..., num_frames(params, samples), num_mel_bins):
        ``log(|STFT| @ mel_matrix + log_offset)``, or its causal normalization.
    """
    _check_params(params)
    waveform = tf.convert_to_tensor(waveform)
    if not waveform.dtype.is_floating:
        raise ValueError(f"`waveform` must be a float tensor; received dtype {waveform.dtype.name}.")
    waveform = tf.cast(waveform, tf.float32)
    samples = waveform.shape[-1] if waveform.shape.rank else None
    if samples is not None and samples < params.window_len:
        # No whole window: zero frames, as `num_frames` says (tf.signal.stft would hand
        # an empty frame batch to an RFFT that rejects it).
        return tf.zeros(tuple(waveform.shape[:-1]) + (0, params.num_mel_bins), tf.float32)
    if params.fixed_point:
        return _log_mel_fixed(waveform, params)
    return normalize(mel_magnitudes(waveform, params), params)


def _log_mel_fixed(waveform, params):
    """`rc_keras.features_fixed` on a float waveform tensor (numpy, also inside tf.data)."""
    from rc_keras import features_fixed  # noqa: PLC0415

    out = tf.numpy_function(lambda w: features_fixed.log_mel_float_waveform(w, params),
                            [waveform], tf.float32, stateful=False)
    samples = waveform.shape[-1] if waveform.shape.rank else None
    frames = num_frames(params, samples) if samples is not None else None
    out.set_shape(tuple(waveform.shape[:-1]) + (frames, params.num_mel_bins)
                  if waveform.shape.rank is not None else None)
    return out


def mel_magnitudes(waveform, params):
    """Mel magnitudes ``|STFT| @ mel_matrix`` (..., frames, bands) before the log (the
    ``E_t`` of the normalization recurrences); waveforms of at least one window."""
    _check_params(params)
    if params.fixed_point:
        raise ValueError("mel_magnitudes is the float front end; with fixed_point=True use "
                         "log_mel (rc_keras.features_fixed).")
    waveform = tf.cast(tf.convert_to_tensor(waveform), tf.float32)
    stft = tf.signal.stft(waveform, frame_length=params.window_len,
                          frame_step=params.stride_len, fft_length=params.fft_length,
                          window_fn=tf.signal.hamming_window, pad_end=False)
    return tf.tensordot(tf.abs(stft), mel_matrix(params), axes=1)


def initial_state(mel_frame, params):
    """The normalization state after the first frame: ``L_0`` (running mean) or ``E_0``
    (PCEN), from that frame's mel magnitudes ``E_0`` (..., bands)."""
    mel_frame = tf.convert_to_tensor(mel_frame, tf.float32)
    if params.normalization == "pcen":
        return mel_frame
    return tf.math.log(mel_frame + params.log_offset)


def normalization_step(mel_frame, state, params):
    """One frame of the causal normalization: ``(feature, new_state)``.

    Args:
        mel_frame: mel magnitudes ``E_t`` of one frame, (..., bands).
        state: the state after frame t-1 (`initial_state` of frame 0 for t = 1; for
            t = 0 pass `initial_state` of frame 0 itself: the update leaves it unchanged).
        params: `FrontEndParams` with ``normalization`` "running_mean" or "pcen".

    Returns:
        The normalized frame (..., bands) and the new state (..., bands).
    """
    mel_frame = tf.convert_to_tensor(mel_frame, tf.float32)
    s = params.norm_smoothing
    if params.normalization == "pcen":
        smooth = state + s * (mel_frame - state)
        gain = tf.pow(params.pcen_eps + smooth, params.pcen_alpha)
        out = (tf.pow(mel_frame / gain + params.pcen_delta, params.pcen_r)
               - params.pcen_delta ** params.pcen_r)
        return out, smooth
    if params.normalization == "running_mean":
        log = tf.math.log(mel_frame + params.log_offset)
        mean = state + s * (log - state)
        return log - mean, mean
    raise ValueError(f"`params.normalization` must be 'running_mean' or 'pcen' for a "
                     f"normalization step; received {params.normalization!r}.")


def normalize(mel, params):
    """Features from mel magnitudes (..., frames, bands) as ``params.normalization`` says.

    "none" gives ``log(mel + log_offset)``; the others run `normalization_step` over the
    frames (a ``tf.scan``, strictly causal), starting from `initial_state` of frame 0.
    """
    mel = tf.convert_to_tensor(mel, tf.float32)
    if params.normalization == "none":
        return tf.math.log(mel + params.log_offset)
    rank = mel.shape.rank
    perm = [rank - 2] + list(range(rank - 2)) + [rank - 1]  # frames first for tf.scan
    frames = tf.transpose(mel, perm)

    def step(carry, frame):
        _, state = carry
        return normalization_step(frame, state, params)

    first = initial_state(frames[0], params)
    outputs, _ = tf.scan(step, frames, initializer=(tf.zeros_like(first), first))
    inverse = list(range(1, rank - 1)) + [0, rank - 1]
    return tf.transpose(outputs, inverse)


def stack_context(features, context):
    """Stacks ``context`` frames on each side of every frame.

    Frame t becomes the concatenation of frames t - context, ..., t + context (frame
    major: the first ``F`` values are frame t - context). Frames beyond the edges repeat
    the first or last frame, so the number of frames is unchanged.

    Args:
        features: tensor (..., frames, F) with frames >= 1.
        context: int >= 0.

    Returns:
        Tensor (..., frames, F * (2 * context + 1)); 20 -> 420 features at context 10.
    """
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise ValueError(f"`context` must be an integer >= 0; received {context!r}.")
    features = tf.convert_to_tensor(features)
    if features.shape.rank is not None and features.shape.rank < 2:
        raise ValueError(
            f"`features` must have shape (..., frames, features); received shape {features.shape}.")
    if context == 0:
        return features
    # One gather with clipped indices: the edges repeat the first/last frame. Measured
    # faster in tf.data than tf.signal.frame or concatenating shifted slices.
    frames = tf.shape(features)[-2]
    index = tf.clip_by_value(
        tf.range(frames)[:, None] + tf.range(-context, context + 1)[None, :], 0, frames - 1)
    windows = tf.gather(features, index, axis=-2)  # (..., T, 2c+1, F)
    width = features.shape[-1]
    width = tf.shape(features)[-1] if width is None else width
    new_shape = tf.concat([tf.shape(features)[:-2], [frames, (2 * context + 1) * width]], 0)
    out = tf.reshape(windows, new_shape)
    if features.shape[-1] is not None:
        out = tf.ensure_shape(out, features.shape[:-1].concatenate(
            [features.shape[-1] * (2 * context + 1)]))
    return out


def frontend(waveform, params):
    """The full front end: `log_mel` then `stack_context` with ``params.context_frames``.

    Args:
        waveform: float tensor (..., samples).
        params: a `FrontEndParams`.

    Returns:
        float32 tensor (..., frames, params.feature_size).
    """
    return stack_context(log_mel(waveform, params), params.context_frames)


@keras.saving.register_keras_serializable(package="rc_keras")
class LogMelFrontEnd(keras.layers.Layer):
    """Keras layer: waveforms (batch, samples) -> features (batch, frames, feature_size).

    Computes exactly `frontend` (log-mel and context stacking), so features computed
    in a tf.data pipeline and by this layer agree.

    Args:
        params: a `FrontEndParams` or a dict of its fields; defaults to the paper's.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, params=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if params is None:
            params = FrontEndParams()
        elif isinstance(params, dict):
            params = FrontEndParams(**params)
        _check_params(params)
        self.params = params

    def call(self, inputs):
        return frontend(inputs, self.params)

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else num_frames(self.params, samples)
        return tuple(input_shape[:-1]) + (frames, self.params.feature_size)

    def get_config(self):
        config = super().get_config()
        config.update(params=dataclasses.asdict(self.params))
        return config
