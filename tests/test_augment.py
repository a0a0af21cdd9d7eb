"""Audio augmentation: each transform does what it says; the chain is seeded."""

import numpy as np
import pytest

from rc_keras import augment

RATE = 16000


def _band_db(wave, low, high):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / RATE)
    return 10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum())


def _tone(freq, seconds=1.0):
    return np.sin(2 * np.pi * freq * np.arange(int(RATE * seconds)) / RATE).astype(np.float32)


def _dominant_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / RATE)[np.argmax(spectrum)]


def test_chain_is_deterministic_under_a_seed():
    wave = 0.5 * _tone(300) * np.hanning(RATE).astype(np.float32)
    noises = [augment.coloured_noise(3 * RATE, 1.0, np.random.default_rng(9))]
    params = augment.AugmentParams(speed_probability=1, pitch_probability=1, eq_probability=1,
                                   reverb_probability=1, noise_probability=1)
    a, na = augment.augment_waveform(wave, params, np.random.default_rng([3, 1, 0]),
                                     length=12000, noises=noises)
    b, nb = augment.augment_waveform(wave, params, np.random.default_rng([3, 1, 0]),
                                     length=12000, noises=noises)
    c, _ = augment.augment_waveform(wave, params, np.random.default_rng([4, 1, 0]),
                                    length=12000, noises=noises)
    assert na == nb and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == wave.shape and np.abs(a).max() <= 1.0
    assert np.all(a[na:] == 0)  # padding stays padding
    feats = np.random.default_rng(0).standard_normal((98, 20)).astype(np.float32)
    m1 = augment.spec_augment(feats, params, np.random.default_rng(5))
    m2 = augment.spec_augment(feats, params, np.random.default_rng(5))
    assert np.array_equal(m1, m2) and not np.array_equal(m1, feats)


@pytest.mark.parametrize("gain", [12.0, -12.0])
def test_shelf_changes_band_energy_by_the_set_decibels(gain):
    noise = augment.coloured_noise(RATE, 0.0, np.random.default_rng(0))
    out = augment.equalize(noise, lambda f: augment.shelf_db(f, 1000.0, gain), RATE)
    # Two octaves past the corner the shelf is at its gain; two octaves below at 0 dB.
    assert _band_db(out, 4000, 8000) - _band_db(noise, 4000, 8000) == pytest.approx(gain, abs=0.3)
    assert _band_db(out, 50, 250) - _band_db(noise, 50, 250) == pytest.approx(0.0, abs=0.3)
    low = augment.equalize(noise, lambda f: augment.shelf_db(f, 1000.0, gain, high=False), RATE)
    assert _band_db(low, 50, 250) - _band_db(noise, 50, 250) == pytest.approx(gain, abs=0.3)
    peak = augment.equalize(noise, lambda f: augment.peak_db(f, 1000.0, gain, 0.5), RATE)
    assert _band_db(peak, 950, 1050) - _band_db(noise, 950, 1050) == pytest.approx(gain, abs=0.3)


def _rt60(rir):
    """Reverberation time from Schroeder's backward integral (slope of -5..-25 dB)."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0])
    t = np.arange(len(rir)) / RATE
    fit = (edc <= -5) & (edc >= -25)
    slope = np.polyfit(t[fit], edc[fit], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.2, 0.5])
def test_reverb_decays_at_the_set_rate_and_lengthens_the_sound(rt60):
    rir = augment.exponential_rir(rt60, np.random.default_rng(1), RATE, predelay_s=0.0)
    rir[0] = 0.0  # the tail alone: its decay is the model's
    assert _rt60(rir) == pytest.approx(rt60, rel=0.15)
    burst = np.zeros(RATE, np.float32)
    burst[1000:1800] = _tone(500, 0.05)
    wet = augment.reverberate(burst, augment.exponential_rir(rt60, np.random.default_rng(2)))

    def last_loud(wave):  # last sample above -40 dB of the peak
        return np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max())[-1]

    assert last_loud(burst) < 1800
    assert last_loud(wet) - last_loud(burst) > 0.25 * rt60 * RATE


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_requested_snr(snr):
    rng = np.random.default_rng(0)
    wave = np.zeros(RATE, np.float32)
    wave[:12000] = 0.3 * _tone(440)[:12000]
    noise = augment.coloured_noise(RATE, 1.0, rng)
    out = augment.add_noise(wave, noise, snr, length=12000)
    added = (out - wave)[:12000]
    measured = 10 * np.log10(np.mean(wave[:12000] ** 2) / np.mean(added ** 2))
    assert abs(measured - snr) < 1.0
    assert np.all(out[12000:] == 0)


def test_speed_pitch_and_stretch():
    tone = _tone(200)
    fast = augment.speed_perturb(tone, 1.25)
    assert len(fast) == 12800 and _dominant_hz(fast) == pytest.approx(250, abs=3)
    shifted = augment.pitch_shift(tone, 12.0)
    assert len(shifted) == len(tone) and _dominant_hz(shifted[2000:14000]) == pytest.approx(
        400, abs=6)
    slow = augment.time_stretch(tone, 0.8)
    assert len(slow) == 20000 and _dominant_hz(slow[2000:18000]) == pytest.approx(200, abs=3)
    shifted_left = augment.time_shift(np.arange(1, 11, dtype=np.float32), -3, length=8)
    assert shifted_left.tolist() == [4, 5, 6, 7, 8, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("kwargs, name", [
    (dict(copies=-1), "copies"), (dict(eq_probability=2.0), "eq_probability"),
    (dict(speed_range=(1.2, 0.9)), "speed_range"), (dict(eq_db=-1.0), "eq_db"),
    (dict(snr_db_range=(5,)), "snr_db_range"), (dict(vtlp_range=(0.2, 1.1)), "vtlp_range"),
    (dict(vtlp_probability=-0.1), "vtlp_probability")])
def test_bad_parameters_name_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        augment.AugmentParams(**kwargs)
    assert not augment.NO_AUGMENTATION.enabled and augment.AugmentParams().enabled


def test_mel_band_centres_are_the_front_end_filterbank_peaks():
    import tensorflow as tf

    matrix = tf.signal.linear_to_mel_weight_matrix(20, 4097, RATE, 20.0, 7600.0).numpy()
    peaks = np.fft.rfftfreq(8192, 1 / RATE)[np.argmax(matrix, axis=0)]
    assert np.allclose(augment.mel_band_centres(20, 20.0, 7600.0), peaks, atol=2.0)


@pytest.mark.parametrize("alpha", [0.9, 1.12])
def test_vtlp_moves_a_tone_as_a_scaled_vocal_tract_would(alpha):
    from rc_keras import features

    params = features.FrontEndParams(context_frames=0)
    centres = augment.mel_band_centres(20, 20.0, 7600.0)
    # Between bands 9 and 10, well below the warp's knee: the band energies of a tone at
    # f warped by alpha look like those of a tone at alpha * f.
    f = float(np.sqrt(centres[9] * centres[10]))
    mel = lambda hz: features.log_mel(_tone(hz)[None], params).numpy()[0].mean(0)  # noqa: E731
    warped = augment.warp_mel_bands(mel(f)[None], alpha, centres)[0]
    target, before = mel(alpha * f), mel(f)
    assert np.argmax(warped) == np.argmax(target)
    centroid = lambda m: np.sum(np.exp(m) * np.arange(20)) / np.sum(np.exp(m))  # noqa: E731
    assert np.sign(centroid(warped) - centroid(before)) == np.sign(alpha - 1.0)
    top = np.argsort(target)[-3:]
    assert np.abs(warped[top] - target[top]).max() < np.abs(before[top] - target[top]).max()
    assert np.array_equal(augment.warp_mel_bands(before[None], 1.0, centres)[0], before)
    assert augment.vtlp_warp(8000.0, alpha) == pytest.approx(8000.0)  # ends at Nyquist


def test_spec_augment_vtlp_is_seeded_and_switchable():
    feats = np.random.default_rng(1).standard_normal((50, 20)).astype(np.float32)
    only_vtlp = augment.AugmentParams(vtlp_probability=1.0, time_masks=0, freq_masks=0)
    a = augment.spec_augment(feats, only_vtlp, np.random.default_rng(3))
    assert np.array_equal(a, augment.spec_augment(feats, only_vtlp, np.random.default_rng(3)))
    assert not np.array_equal(a, augment.spec_augment(feats, only_vtlp, np.random.default_rng(4)))
    off = augment.AugmentParams(vtlp_probability=0.0, time_masks=0, freq_masks=0)
    assert np.array_equal(augment.spec_augment(feats, off, np.random.default_rng(3)), feats)
