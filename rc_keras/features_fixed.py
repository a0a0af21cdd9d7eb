"""The fixed-point log-mel front end: the device's integer arithmetic, mirrored in numpy.

``FrontEndParams(fixed_point=True)`` makes `rc_keras.features.log_mel` compute its
features this way, so a keyword model trained and checked on the host sees exactly the
features the firmware (``firmware/rc_frontend.cc``) computes from the same 16-bit audio:
equal float32 values, frame for frame (tested against the firmware in QEMU).

The arithmetic, for 16 kHz int16 PCM and ``N = fft_length`` (512 at the defaults):

1. window: ``x[n] = pcm[n] * w[n]`` with the periodic Hamming window in Q15 (int32);
2. real FFT as an ``N/2``-point complex FFT of ``x[2n] + j x[2n+1]`` (radix 2, decimation
   in time, bit-reversed input) and a split into the ``N/2 + 1`` real-input bins. Every
   butterfly halves (``a >> 1 +- b * w``, twiddles in Q15 multiplied as the Cortex-M
   ``SMULWB`` does: ``(b * w) >> 16``, floor), so the result is ``DFT(x) / N`` and no
   stage can overflow int32;
3. ``|X| * 2^8`` by a square-root table with linear interpolation (uint64);
4. mel energies: triangular weights in Q15 over each channel's bins (uint64 sums);
5. ``log2(mel + log_offset)`` in Q16 by a table with interpolation, then one float32
   multiply by ``ln 2 / 2^16``: the natural log, as `rc_keras.features.log_mel`.

Against the float front end (`rc_keras.features.log_mel` with ``fixed_point=False``) the
features differ by at most `FLOAT_TOLERANCE` (log units) on speech-like audio: quiet bands
err most (the twiddles' Q15 rounding leaks loud bins into them).

```python
from rc_keras import features, features_fixed
params = features.FrontEndParams(context_frames=0, fixed_point=True)
feats = features_fixed.log_mel_int16(pcm_int16, params)    # (..., frames, 20) float32
tables = features_fixed.tables(params)                     # what rc_frontend_data.h holds
```
"""

import functools

import numpy as np

# Max |fixed - float| log-mel difference the tests allow: measured max 0.013 (on a 1-LSB
# dither, the quietest audio), 0.0006 on speech-like audio (tests/test_features_fixed.py);
# benchmarks/results/firmware.md has it on synthesized keywords.
FLOAT_TOLERANCE = 0.02
SQRT_TABLE_SIZE = 193   # sqrt(i * 2^24) * 2^8 for i = 64 ... 256
LOG2_TABLE_SIZE = 257   # log2(1 + i / 256) * 2^16 for i = 0 ... 256
LN2_Q16 = np.float32(0.69314718056) / np.float32(65536.0)   # as the C literal's float32


def _check(params):
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    if not isinstance(params, FrontEndParams):
        raise ValueError(f"`params` must be a rc_keras.features.FrontEndParams; received "
                         f"{type(params).__name__}.")
    if params.normalization != "none":
        raise ValueError(f"the fixed-point front end has no normalization yet: "
                         f"`normalization` must be 'none' with fixed_point=True; received "
                         f"{params.normalization!r}.")
    if params.fft_length < 4:
        raise ValueError(f"the fixed-point front end needs fft_length >= 4; received "
                         f"{params.fft_length}.")


def _key(params):
    return (params.sample_rate, params.window_len, params.fft_length, params.num_mel_bins,
            params.lower_edge_hz, params.upper_edge_hz, params.log_offset)


def tables(params):
    """The front end's constants for ``params``: window, twiddles, bit reversal, mel
    weights (per channel: first bin, length, Q15 weights), square-root and log2 tables,
    and the scale constants (``mel_exponent``, ``log_offset_q``). `write_frontend_source`
    puts exactly these into the firmware's header.
    """
    _check(params)
    return _tables(_key(params))


@functools.lru_cache(maxsize=8)
def _tables(key):
    sample_rate, window_len, fft, bins, lower, upper, log_offset = key
    half = fft // 2
    n = np.arange(window_len)
    window = 0.54 - 0.46 * np.cos(2 * np.pi * n / window_len)     # tf.signal.hamming_window
    k = np.arange(half + 1)
    wr = np.clip(np.round(np.cos(2 * np.pi * k / fft) * 32768), -32768, 32767).astype(np.int64)
    wi = np.clip(np.round(-np.sin(2 * np.pi * k / fft) * 32768), -32768, 32767).astype(np.int64)
    stages = half.bit_length() - 1
    rev = np.array([int(format(i, f"0{stages}b")[::-1], 2) if stages else 0 for i in range(half)])
    mel = _mel_matrix(sample_rate, fft, bins, lower, upper)
    starts, lengths, weights = [], [], []
    for c in range(mel.shape[1]):
        nonzero = np.flatnonzero(mel[:, c] > 0)
        first, last = (int(nonzero[0]), int(nonzero[-1]) + 1) if len(nonzero) else (0, 0)
        starts.append(first)
        lengths.append(last - first)
        weights += [int(v) for v in np.clip(np.round(mel[first:last, c] * 32768), 0, 65535)]
    used = [(s, s + ln) for s, ln in zip(starts, lengths) if ln]
    exponent = 53 - int(np.log2(fft))
    i = np.arange(SQRT_TABLE_SIZE)
    return {
        "window": np.clip(np.round(window * 32768), 0, 32767).astype(np.int64),
        "twiddle_re": wr, "twiddle_im": wi,
        "twiddle_packed": ((wi << 16) | (wr & 0xFFFF)).astype(np.uint32).view(np.int32),
        "bit_reverse": rev.astype(np.int64),
        "channel_start": np.array(starts, np.int64), "channel_length": np.array(lengths, np.int64),
        "weights": np.array(weights, np.int64),
        "first_bin": min(s for s, _ in used) if used else 0,
        "last_bin": max(e for _, e in used) if used else 1,
        "sqrt_table": np.floor(np.sqrt((i + 64.0) * 16777216.0) * 256.0 + 0.5).astype(np.int64),
        "log2_table": np.floor(np.log2(1.0 + np.arange(LOG2_TABLE_SIZE) / 256.0) * 65536.0
                               + 0.5).astype(np.int64),
        # mel (Q15 window, Q8 magnitudes, Q15 weights, DFT / N) * 2^-exponent = the mel
        # energy of the waveform pcm / 32768, as rc_keras.features.log_mel sees it.
        "mel_exponent": exponent,
        "log_offset_q": max(1, round(log_offset * 2.0 ** exponent)),
    }


def _mel_matrix(sample_rate, fft, bins, lower, upper):
    from rc_keras import features  # noqa: PLC0415 - TensorFlow, for the mel matrix

    params = features.FrontEndParams(sample_rate=sample_rate, num_mel_bins=bins,
                                     lower_edge_hz=lower, upper_edge_hz=upper,
                                     window_ms=fft * 1000.0 / sample_rate, context_frames=0)
    return features.mel_matrix(params).numpy()


def _bit_length(v):
    """Bits of each uint64 value (0 for 0), exactly."""
    v = v.astype(np.uint64)
    bits = np.zeros(v.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = (v >> np.uint64(s)) > 0
        v = np.where(big, v >> np.uint64(s), v)
        bits += np.where(big, s, 0)
    return bits + (v > 0)


def _sqrt_q8(x, table):
    """sqrt(x) * 2^8 rounded, for uint64 x, as Sqrt() in rc_frontend.cc."""
    x = x.astype(np.uint64)
    zero = x == 0
    clz = 64 - _bit_length(x)
    shift = np.where(zero, 0, clz & ~1).astype(np.uint64)
    t = (x << shift) >> np.uint64(32)
    i = (t >> np.uint64(24)).astype(np.int64) - 64
    i = np.where(zero, 0, i)
    frac = ((t >> np.uint64(8)) & np.uint64(0xFFFF)).astype(np.int64)
    r = table[i] + (((table[np.minimum(i + 1, SQRT_TABLE_SIZE - 1)] - table[i]) * frac) >> 16)
    s = shift.astype(np.int64) // 2 - 16
    rounded = (r + (np.int64(1) << np.maximum(s - 1, 0))) >> np.maximum(s, 0)
    out = np.where(s > 0, rounded, r << np.maximum(-s, 0))
    return np.where(zero, 0, out).astype(np.uint64)


def _log2_q16(x, table):
    """log2(x) * 2^16 for uint64 x > 0, as Log2Q16() in rc_frontend.cc."""
    x = x.astype(np.uint64)
    lz = 64 - _bit_length(x)
    top = (x << lz.astype(np.uint64)) >> np.uint64(32)
    i = ((top >> np.uint64(23)) & np.uint64(0xFF)).astype(np.int64)
    frac = ((top >> np.uint64(7)) & np.uint64(0xFFFF)).astype(np.int64)
    return ((63 - lz) << 16) + table[i] + (((table[i + 1] - table[i]) * frac) >> 16)


def _mul(x, w):
    """SMULWB: (int32 x * int16 w) >> 16, floor."""
    return (x * w) >> 16


def _fft_bins(x, t):
    """Real FFT / N of int32 frames x (..., N), bins first_bin ... last_bin - 1, as
    (re, im) int64 arrays: the butterflies of rc_frontend.cc, vectorized."""
    half = x.shape[-1] // 2
    re = x[..., 0::2][..., t["bit_reverse"]]
    im = x[..., 1::2][..., t["bit_reverse"]]
    fft = 2 * half
    span = 1
    while span < half:
        shape = re.shape[:-1] + (half // (2 * span), 2, span)
        re, im = re.reshape(shape), im.reshape(shape)
        ar, ai, br, bi = re[..., 0, :] >> 1, im[..., 0, :] >> 1, re[..., 1, :], im[..., 1, :]
        index = np.arange(span) * (fft // (2 * span))
        wr, wi = t["twiddle_re"][index], t["twiddle_im"][index]
        tr = _mul(br, wr) - _mul(bi, wi)
        ti = _mul(br, wi) + _mul(bi, wr)
        tr[..., 0], ti[..., 0] = br[..., 0] >> 1, bi[..., 0] >> 1   # w = 1: an exact halving
        re = np.stack([ar + tr, ar - tr], -2).reshape(x.shape[:-1] + (half,))
        im = np.stack([ai + ti, ai - ti], -2).reshape(x.shape[:-1] + (half,))
        span *= 2
    k = np.arange(t["first_bin"], t["last_bin"])
    zkr, zki = re[..., k % half] >> 1, im[..., k % half] >> 1
    zmr, zmi = re[..., (half - k) % half] >> 1, im[..., (half - k) % half] >> 1
    er, ei = zkr + zmr, zki - zmi
    orr, oi = zki + zmi, zmr - zkr
    wr, wi = t["twiddle_re"][k], t["twiddle_im"][k]
    tr = _mul(orr, wr) - _mul(oi, wi)
    ti = _mul(orr, wi) + _mul(oi, wr)
    return (er >> 1) + tr, (ei >> 1) + ti


def log_mel_int16(pcm, params):
    """Log-mel features of int16 audio in the device's fixed-point arithmetic.

    Args:
        pcm: int16 array (..., samples), 16-bit PCM at ``params.sample_rate``.
        params: a `rc_keras.features.FrontEndParams` (normalization "none").

    Returns:
        float32 array (..., frames, num_mel_bins), equal to the firmware's features.
    """
    _check(params)
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        raise ValueError(f"`pcm` must be an int16 array; received dtype {pcm.dtype}.")
    t = tables(params)
    samples = pcm.shape[-1]
    frames = 0 if samples < params.window_len else \
        1 + (samples - params.window_len) // params.stride_len
    out_shape = pcm.shape[:-1] + (frames, params.num_mel_bins)
    if frames == 0:
        return np.zeros(out_shape, np.float32)
    starts = np.arange(frames)[:, None] * params.stride_len + np.arange(params.window_len)
    x = np.zeros(pcm.shape[:-1] + (frames, params.fft_length), np.int64)
    x[..., :params.window_len] = pcm[..., starts].astype(np.int64) * t["window"]
    xr, xi = _fft_bins(x, t)
    magnitude = _sqrt_q8((xr * xr + xi * xi).astype(np.uint64), t["sqrt_table"])
    dense = np.zeros((t["last_bin"] - t["first_bin"], params.num_mel_bins), np.uint64)
    offset = 0
    for c, (start, length) in enumerate(zip(t["channel_start"], t["channel_length"])):
        rows = np.arange(start, start + length) - t["first_bin"]
        dense[rows, c] = t["weights"][offset:offset + length]
        offset += length
    mel = magnitude @ dense
    log2 = _log2_q16(mel + np.uint64(t["log_offset_q"]), t["log2_table"]) \
        - (t["mel_exponent"] << 16)
    return (log2.astype(np.float32) * LN2_Q16).astype(np.float32).reshape(out_shape)


def log_mel_float_waveform(waveform, params):
    """`log_mel_int16` of float audio in [-1, 1] (rounded to int16 first: WAV samples
    read as ``pcm / 32768`` come back exactly)."""
    waveform = np.asarray(waveform, np.float64)
    pcm = np.clip(np.round(waveform * 32768.0), -32768, 32767).astype(np.int16)
    return log_mel_int16(pcm, params)
