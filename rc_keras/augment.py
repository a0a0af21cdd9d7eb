"""Seeded audio augmentation for keyword training (training split only).

A keyword model trained on synthesized voices must not learn the voices: every
training clip is also presented as ``AugmentParams.copies`` altered copies, each drawn
from a generator seeded by (seed, copy, clip), so a run is reproducible and the
validation and test splits are never touched (`rc_keras.kws_training` applies it to
the "train" split only). The chain, each step with its own probability:

1. speed perturbation (resampling: tempo and pitch together),
2. pitch shift (time-stretch by overlap-add, then resampling back to the duration),
3. spectral tilt / EQ: a low shelf, a high shelf and a peaking band, each +-``eq_db``,
4. room reverberation: exponentially decaying noise impulse responses (below),
5. gain, 6. time shift, 7. additive noise (the dataset's ``_background_noise_`` files
   or coloured 1/f^a noise) at a random SNR,

then, on the log-mel features (`spec_augment`), vocal-tract-length perturbation (VTLP,
Jaitly & Hinton 2013: the mel bands read the spectrum at frequencies warped by a random
factor, as a shorter or longer vocal tract would move the formants) and SpecAugment-style
time and frequency masks. Pure numpy, no extra dependency.

Reverb model (Schroeder/Polack's statistical room model): the late impulse response
is white Gaussian noise under an exponential envelope whose energy falls by 60 dB
in ``rt60`` seconds, ``h[n] = g[n] * 10 ** (-3 * n / (rt60 * fs))`` after a direct
path of 1 at n = 0 and a pre-delay of 5-20 ms; the wet signal is mixed with the dry
one at a random direct-to-reverberant ratio.

```python
from rc_keras import augment
params = augment.AugmentParams()                 # the defaults of `rc-keras train`
rng = np.random.default_rng(0)
wave2 = augment.augment_waveform(wave, params, rng, noises=[noise_clip])
```
"""

import dataclasses
import math

import numpy as np

__all__ = ["AugmentParams", "NO_AUGMENTATION", "speed_perturb", "time_stretch", "pitch_shift",
           "equalize", "shelf_db", "peak_db", "exponential_rir", "reverberate", "add_noise",
           "coloured_noise", "time_shift", "augment_waveform", "spec_augment", "mel_band_centres",
           "vtlp_warp", "warp_mel_bands"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AugmentParams:
    """What the augmentation chain does (all keyword-only; ``copies=0`` turns it off)."""

    copies: int = 2
    """Augmented copies of every training clip, added to the clean clip (0: off)."""
    speed_probability: float = 0.5
    """Chance of a speed perturbation (tempo and pitch together)."""
    speed_range: tuple = (0.85, 1.15)
    """Speed factors drawn uniformly (1.1 plays 10% faster)."""
    pitch_probability: float = 0.5
    """Chance of a pitch shift at constant duration."""
    pitch_semitones: float = 3.0
    """Pitch shifts drawn uniformly in +-pitch_semitones."""
    eq_probability: float = 0.8
    """Chance of the EQ (low shelf, high shelf and peaking band)."""
    eq_db: float = 12.0
    """Each EQ gain drawn uniformly in +-eq_db decibels."""
    reverb_probability: float = 0.4
    """Chance of room reverberation."""
    rt60_range: tuple = (0.1, 0.7)
    """Reverberation times (s, 60 dB decay) drawn uniformly."""
    gain_db_range: tuple = (-12.0, 6.0)
    """Gain drawn uniformly in dB (the result is clipped to [-1, 1])."""
    shift_ms: float = 100.0
    """Time shift drawn uniformly in +-shift_ms (zeros fill the gap)."""
    noise_probability: float = 0.7
    """Chance of additive noise."""
    snr_db_range: tuple = (5.0, 30.0)
    """Signal-to-noise ratios drawn uniformly, in dB."""
    background_share: float = 0.5
    """Share of the noisy copies whose noise comes from the background files (when the
    dataset has any); the rest get coloured noise."""
    vtlp_probability: float = 0.0
    """Chance of a vocal-tract-length perturbation of the mel bands (`warp_mel_bands`).
    Off by default: in benchmarks/results/kws_transfer.md (held-out flite) p=0.5 moved
    end-of-clip accuracy 0.678 -> 0.687 but the accuracy at the validation θ 0.647 -> 0.557."""
    vtlp_range: tuple = (0.88, 1.12)
    """VTLP warp factors drawn uniformly (1.1 moves formants 10% up: a shorter tract)."""
    time_masks: int = 2
    """SpecAugment time masks per copy."""
    time_mask_frames: int = 8
    """Longest time mask, in frames."""
    freq_masks: int = 2
    """SpecAugment frequency masks per copy."""
    freq_mask_bins: int = 3
    """Widest frequency mask, in mel bands."""

    def __post_init__(self):
        for name in ("copies", "time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0; received {value!r}.")
        for name in ("speed_probability", "pitch_probability", "eq_probability",
                     "reverb_probability", "noise_probability", "background_share",
                     "vtlp_probability"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"`{name}` must be a number in [0, 1]; received {value!r}.")
        for name, low in (("speed_range", 1e-3), ("rt60_range", 1e-3),
                          ("gain_db_range", -math.inf), ("snr_db_range", -math.inf),
                          ("vtlp_range", 0.5)):
            value = getattr(self, name)
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(isinstance(v, (int, float)) for v in value)
                    or not low <= value[0] <= value[1]):
                raise ValueError(f"`{name}` must be a pair (low, high) with {low} <= low <= high; "
                                 f"received {value!r}.")
        for name in ("pitch_semitones", "eq_db", "shift_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"`{name}` must be a finite number >= 0; received {value!r}.")

    @property
    def enabled(self):
        """True when the chain produces copies."""
        return self.copies > 0


NO_AUGMENTATION = AugmentParams(copies=0)
"""The off switch (``rc-keras train --no-augment``)."""


# ---------------------------------------------------------------------- transforms
def speed_perturb(wave, factor):
    """Plays ``wave`` ``factor`` times faster by linear-interpolation resampling.

    Duration becomes len / factor and every frequency is multiplied by ``factor``.
    """
    wave = np.asarray(wave, np.float32)
    if factor <= 0:
        raise ValueError(f"`factor` must be > 0; received {factor!r}.")
    n_out = max(1, int(round(len(wave) / factor)))
    positions = np.arange(n_out) * factor
    return np.interp(positions, np.arange(len(wave)), wave, right=0.0).astype(np.float32)


def time_stretch(wave, rate, window=512, hop=128):
    """Changes the duration by 1 / ``rate`` at the same pitch (overlap-add of Hann frames).

    Frames are read every ``hop * rate`` samples and written every ``hop``; a
    waveform-similarity search (+-hop/2) aligns each frame with the output so far,
    which keeps voiced sounds from phasing (WSOLA).
    """
    wave = np.asarray(wave, np.float32)
    if rate <= 0:
        raise ValueError(f"`rate` must be > 0; received {rate!r}.")
    n_out = int(round(len(wave) / rate))
    if len(wave) < window or n_out < window:
        return speed_perturb(wave, len(wave) / max(n_out, 1))
    padded = np.concatenate([wave, np.zeros(window + hop, np.float32)])
    win = np.hanning(window).astype(np.float32)
    out = np.zeros(n_out + window, np.float32)
    norm = np.zeros(n_out + window, np.float32)
    tolerance = hop // 2
    previous = None
    for k, start_out in enumerate(range(0, n_out, hop)):
        start_in = int(round(k * hop * rate))
        if previous is not None:
            # Pick the input offset whose frame best continues the last one read.
            lo, hi = max(0, start_in - tolerance), min(len(padded) - window, start_in + tolerance)
            if hi > lo:
                target = padded[previous + hop:previous + hop + window]
                candidates = np.lib.stride_tricks.sliding_window_view(
                    padded[lo:hi + window], window)
                start_in = lo + int(np.argmax(candidates @ target))
        start_in = min(start_in, len(padded) - window)
        out[start_out:start_out + window] += padded[start_in:start_in + window] * win
        norm[start_out:start_out + window] += win
        previous = start_in
    return (out / np.maximum(norm, 1e-3))[:n_out]


def pitch_shift(wave, semitones):
    """Shifts the pitch by ``semitones`` at the same duration (stretch, then resample)."""
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(wave, 1.0 / ratio)
    shifted = speed_perturb(stretched, ratio)
    out = np.zeros(len(wave), np.float32)
    out[:min(len(wave), len(shifted))] = shifted[:len(wave)]
    return out


def shelf_db(freqs, corner_hz, gain_db, high=True, slope=4.0):
    """A shelf's gain curve in dB: ``gain_db`` far beyond the corner, 0 far before.

    A logistic step in log-frequency (``slope`` per octave) centred on the corner;
    one octave past it the shelf has reached 98% of its gain.
    """
    octaves = np.log2(np.maximum(freqs, 1e-3) / corner_hz)
    step = 1.0 / (1.0 + np.exp(-slope * (octaves if high else -octaves)))
    return gain_db * step


def peak_db(freqs, centre_hz, gain_db, octaves=1.0):
    """A peaking band's gain curve in dB: Gaussian in log-frequency, ``octaves`` wide
    (full width at half the dB gain)."""
    distance = np.log2(np.maximum(freqs, 1e-3) / centre_hz)
    sigma = octaves / 2.3548
    return gain_db * np.exp(-0.5 * (distance / sigma) ** 2)


def equalize(wave, gain_db_curve, sample_rate=16000):
    """Applies a zero-phase EQ given as ``gain_db_curve(freqs_hz) -> dB`` (FFT domain).

    The waveform is zero-padded to twice its length first, so the filter's ringing
    does not wrap around.
    """
    wave = np.asarray(wave, np.float32)
    n = len(wave)
    size = 1 << int(2 * n - 1).bit_length()
    spectrum = np.fft.rfft(wave, size)
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    spectrum *= 10.0 ** (np.asarray(gain_db_curve(freqs)) / 20.0)
    return np.fft.irfft(spectrum, size)[:n].astype(np.float32)


def exponential_rir(rt60, rng, sample_rate=16000, predelay_s=0.01):
    """A room impulse response: direct path, pre-delay, exponentially decaying noise.

    The envelope falls by 60 dB in ``rt60`` seconds (energy ``10 ** (-6 t / rt60)``);
    the tail is normalised to unit energy, the direct path is 1.
    """
    if rt60 <= 0:
        raise ValueError(f"`rt60` must be > 0; received {rt60!r}.")
    length = int(sample_rate * rt60 * 1.2)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / rt60)
    tail /= max(np.sqrt(np.sum(tail ** 2)), 1e-9)
    delay = int(predelay_s * sample_rate)
    rir = np.zeros(delay + length, np.float32)
    rir[0] = 1.0
    rir[delay:] += tail
    return rir


def reverberate(wave, rir, wet=1.0):
    """Convolves ``wave`` with ``rir`` (kept to the input length) and mixes ``wet`` of it
    with the dry signal; the result has the dry signal's peak level."""
    wave = np.asarray(wave, np.float32)
    size = 1 << int(len(wave) + len(rir) - 1).bit_length()
    wet_signal = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(rir, size), size)[:len(wave)]
    out = (1 - wet) * wave + wet * wet_signal
    peak = np.abs(out).max()
    return (out * (np.abs(wave).max() / peak) if peak > 0 else out).astype(np.float32)


def coloured_noise(num_samples, exponent, rng):
    """Noise with power spectrum 1/f^``exponent`` (0 white, 1 pink, 2 brown), unit RMS."""
    white = rng.standard_normal(num_samples)
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(num_samples), 1.0 / num_samples)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n=num_samples)
    noise -= noise.mean()
    return (noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)).astype(np.float32)


def add_noise(wave, noise, snr_db, length=None):
    """Adds ``noise`` scaled so that signal power / noise power is ``snr_db`` dB.

    Powers are mean squares over the first ``length`` samples (the clip's true length;
    default all). Silent signals are returned unchanged.
    """
    wave = np.asarray(wave, np.float32)
    length = len(wave) if length is None else int(length)
    noise = np.asarray(noise, np.float32)[:len(wave)]
    if len(noise) < len(wave):
        noise = np.resize(noise, len(wave))
    p_signal = float(np.mean(wave[:length].astype(np.float64) ** 2))
    p_noise = float(np.mean(noise[:length].astype(np.float64) ** 2))
    if p_signal == 0 or p_noise == 0:
        return wave.copy()
    scale = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    out = wave.copy()
    out[:length] += scale * noise[:length]
    return out


def time_shift(wave, samples, length=None):
    """Shifts the first ``length`` samples by ``samples`` (positive: later), zero-filled."""
    wave = np.asarray(wave, np.float32)
    length = len(wave) if length is None else int(length)
    out = np.zeros_like(wave)
    body = wave[:length]
    if samples >= 0:
        out[samples:length] = body[:max(0, length - samples)]
    else:
        out[:max(0, length + samples)] = body[-samples:]
    return out


# ---------------------------------------------------------------------- the chain
def augment_waveform(wave, params, rng, length=None, noises=(), sample_rate=16000):
    """One augmented copy of ``wave`` (same array length), drawn with ``rng``.

    Args:
        wave: float waveform (samples,), zero-padded after ``length``.
        params: `AugmentParams`.
        rng: a ``numpy.random.Generator`` (seed it per clip and copy).
        length: true samples of the clip (default all); the copy keeps its padding.
        noises: background noise waveforms (at ``sample_rate``) to draw from.
        sample_rate: Hz.

    Returns:
        ``(copy, new_length)``: float32 (samples,) in [-1, 1] and its true length.
    """
    wave = np.asarray(wave, np.float32)
    size = len(wave)
    length = size if length is None else int(length)
    x = wave[:length]
    if rng.random() < params.speed_probability:
        x = speed_perturb(x, rng.uniform(*params.speed_range))
    if rng.random() < params.pitch_probability:
        x = pitch_shift(x, rng.uniform(-params.pitch_semitones, params.pitch_semitones))
    if rng.random() < params.eq_probability:
        gains = rng.uniform(-params.eq_db, params.eq_db, size=3)
        low_hz, high_hz = rng.uniform(150, 600), rng.uniform(1500, 5000)
        peak_hz, width = math.exp(rng.uniform(math.log(300), math.log(4000))), rng.uniform(0.5, 2)
        x = equalize(x, lambda f: (shelf_db(f, low_hz, gains[0], high=False)
                                   + shelf_db(f, high_hz, gains[1])
                                   + peak_db(f, peak_hz, gains[2], width)), sample_rate)
    if rng.random() < params.reverb_probability:
        rir = exponential_rir(rng.uniform(*params.rt60_range), rng, sample_rate,
                              rng.uniform(0.005, 0.02))
        x = reverberate(x, rir, wet=rng.uniform(0.3, 1.0))
    length = min(len(x), size)
    out = np.zeros(size, np.float32)
    out[:length] = x[:length]
    out *= 10.0 ** (rng.uniform(*params.gain_db_range) / 20.0)
    shift = int(round(rng.uniform(-params.shift_ms, params.shift_ms) * sample_rate / 1000))
    out = time_shift(out, shift, length)
    if rng.random() < params.noise_probability:
        if noises and rng.random() < params.background_share:
            source = noises[int(rng.integers(len(noises)))]
            at = int(rng.integers(0, max(1, len(source) - size + 1)))
            noise = np.resize(np.asarray(source[at:at + size], np.float32), size)
        else:
            noise = coloured_noise(size, rng.uniform(0.0, 2.0), rng)
        out = add_noise(out, noise, rng.uniform(*params.snr_db_range), length)
    return np.clip(out, -1.0, 1.0), length


def mel_band_centres(num_bins=20, lower_hz=20.0, upper_hz=7600.0):
    """Centre frequencies (Hz) of ``num_bins`` HTK mel bands between the edges, as
    ``tf.signal.linear_to_mel_weight_matrix`` (the front end's filterbank) places them."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)  # noqa: E731
    points = np.linspace(mel(lower_hz), mel(upper_hz), num_bins + 2)[1:-1]
    return 700.0 * np.expm1(points / 1127.0)


def vtlp_warp(freqs, alpha, nyquist_hz=8000.0, boundary_hz=4800.0):
    """VTLP's piecewise-linear frequency warp (Jaitly & Hinton 2013).

    ``f -> alpha * f`` below ``boundary_hz * min(alpha, 1) / alpha``; above it a straight
    line to the Nyquist frequency, so the warped axis still ends at Nyquist.
    """
    freqs = np.asarray(freqs, np.float64)
    knee = boundary_hz * min(alpha, 1.0) / alpha
    top = nyquist_hz - alpha * knee
    return np.where(freqs <= knee, alpha * freqs,
                    alpha * knee + top * (freqs - knee) / (nyquist_hz - knee))


def warp_mel_bands(features, alpha, band_hz, nyquist_hz=8000.0):
    """Log-mel features (frames, bands) as a vocal tract ``alpha`` times shorter says them.

    Band ``b`` (centre ``band_hz[b]``) takes the value the original spectrum has at the
    frequency that the warp `vtlp_warp` sends to ``band_hz[b]``, interpolated linearly
    between band centres on the mel scale (held at the edge bands beyond them). With
    ``alpha > 1`` spectral features move up (formants of a shorter vocal tract).
    """
    features = np.asarray(features, np.float32)
    band_hz = np.asarray(band_hz, np.float64)
    grid = np.linspace(0.0, nyquist_hz, 2049)
    source = np.interp(band_hz, vtlp_warp(grid, alpha, nyquist_hz), grid)  # warp^-1
    mel = lambda f: np.log1p(f / 700.0)  # noqa: E731
    pos = np.interp(mel(source), mel(band_hz), np.arange(len(band_hz), dtype=np.float64))
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, len(band_hz) - 1)
    weight = (pos - low).astype(np.float32)
    return features[:, low] * (1.0 - weight) + features[:, high] * weight


def spec_augment(features, params, rng, num_frames=None, band_hz=None):
    """VTLP and SpecAugment masks on one clip's log-mel features (frames, bands); a copy.

    Masked cells take the clip's mean log-mel value over its valid frames (a neutral
    level for unnormalized log-mel features).

    Args:
        features: float (frames, bands).
        params: `AugmentParams`.
        rng: a ``numpy.random.Generator``.
        num_frames: valid frames (default all).
        band_hz: the bands' centre frequencies for VTLP (default `mel_band_centres` of
            the front end's default 20-7600 Hz filterbank with this many bands).
    """
    out = np.array(features, np.float32, copy=True)
    frames, bands = out.shape
    valid = frames if num_frames is None else max(1, int(num_frames))
    if rng.random() < params.vtlp_probability:
        centres = mel_band_centres(bands) if band_hz is None else band_hz
        out = warp_mel_bands(out, rng.uniform(*params.vtlp_range), centres)
    fill = float(out[:valid].mean())
    for _ in range(params.time_masks):
        width = int(rng.integers(0, params.time_mask_frames + 1))
        if width and valid > width:
            start = int(rng.integers(0, valid - width + 1))
            out[start:start + width] = fill
    for _ in range(params.freq_masks):
        width = int(rng.integers(0, params.freq_mask_bins + 1))
        if width and bands > width:
            start = int(rng.integers(0, bands - width + 1))
            out[:, start:start + width] = fill
    return out
