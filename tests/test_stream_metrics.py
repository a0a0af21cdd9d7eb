"""Stream benchmark pieces: the stream generator's ground truth and SNR, and the metrics."""

import json
import shutil

import numpy as np
import pytest

from rc_keras import stream_metrics
from rc_keras.datasets import keyword_streams


def _pool():
    rng = np.random.default_rng(0)
    return [(word, "v1", (0.5 * rng.standard_normal(n)).astype(np.float32))
            for word, n in (("yes", 4000), ("no", 3000), ("bed", 5000), ("cat", 3500))]


def test_stream_events_sit_where_the_truth_says_and_the_snr_is_exact():
    pool = _pool()
    clean, truth = keyword_streams.make_stream(pool, 30, ("yes", "no"), seed=3)
    noise = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.01
    noisy, truth_noisy = keyword_streams.make_stream(pool, 30, ("yes", "no"), snr_db=10,
                                                     noise=noise, seed=3)
    assert truth_noisy["events"] == truth["events"] and truth_noisy["snr_db"] == 10
    events = truth["events"]
    assert len(events) >= 10 and {e["keyword"] for e in events} == {True, False}
    by_word = {w: s for w, _, s in pool}
    powers = []
    for a, b in zip(events, events[1:]):
        assert a["end_s"] + 0.6 - 1e-3 <= b["start_s"]          # the pauses hold
    for e in events:
        assert e["keyword"] == (e["word"] in ("yes", "no"))
        i, j = e["start_sample"], e["end_sample"]
        assert (e["start_s"], e["end_s"]) == (i / 16000, j / 16000)
        segment = clean[i:j]
        assert j - i == len(by_word[e["word"]])
        # The word itself, at its drawn level (one scale factor).
        scale = segment[0] / by_word[e["word"]][0]
        np.testing.assert_allclose(segment, scale * by_word[e["word"]], rtol=1e-4, atol=1e-6)
        powers.append(np.mean(segment.astype(np.float64) ** 2))
    added = (noisy - clean).astype(np.float64)
    snr = 10 * np.log10(np.mean(powers) / np.mean(added ** 2))
    assert snr == pytest.approx(10.0, abs=0.05)
    free, truth_free = keyword_streams.make_stream(pool, 30, ("yes", "no"), keyword_share=0,
                                                   seed=4)
    assert truth_free["events"] and not any(e["keyword"] for e in truth_free["events"])


def test_stream_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`snr_db` needs a `noise` waveform"):
        keyword_streams.make_stream(_pool(), 10, ("yes",), snr_db=10)
    with pytest.raises(ValueError, match="`keyword_share` must lie in"):
        keyword_streams.make_stream(_pool(), 10, ("yes",), keyword_share=2)
    with pytest.raises(ValueError, match="holds none of `keywords`"):
        keyword_streams.make_stream(_pool(), 10, ("up",))


def test_write_stream_saves_the_truth_beside_the_wav(tmp_path):
    wave, truth = keyword_streams.make_stream(_pool(), 5, ("yes",), seed=0)
    path = keyword_streams.write_stream(tmp_path / "s" / "a.wav", wave, truth)
    assert json.loads(path.with_suffix(".json").read_text()) == json.loads(json.dumps(truth))
    assert path.stat().st_size == 44 + 2 * len(wave)


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs espeak-ng and sox")
def test_word_pool_speaks_trimmed_words():
    from rc_keras.datasets.keyword_synthesis import Voice

    pool = keyword_streams.word_pool([Voice("en-us", 160, 50)], ["yes", "bed"], takes=2)
    assert [(w, v) for w, v, _ in pool] == [("yes", Voice("en-us", 160, 50).id)] * 2 + \
        [("bed", Voice("en-us", 160, 50).id)] * 2
    for _, _, samples in pool:
        assert 1600 < len(samples) < 16000
        peak = np.abs(samples).max()
        assert np.abs(samples[:100]).max() < 0.05 * peak   # the 20 ms margin is quiet


def test_score_counts_hits_false_alarms_and_latency():
    truth = {"seconds": 1800.0, "events": [
        {"word": "yes", "keyword": True, "start_s": 1.0, "end_s": 1.5},
        {"word": "no", "keyword": True, "start_s": 4.0, "end_s": 4.4},
        {"word": "bed", "keyword": False, "start_s": 6.0, "end_s": 6.5},
        {"word": "up", "keyword": True, "start_s": 9.0, "end_s": 9.5}]}
    detections = [
        {"keyword": "yes", "spike_time_s": 1.3},     # hit, 0.3 s
        {"keyword": "yes", "spike_time_s": 1.6},     # a second detection: false alarm
        {"keyword": "off", "spike_time_s": 4.2},     # wrong word: false alarm
        {"keyword": "no", "spike_time_s": 4.8},      # hit within the tolerance, 0.8 s
        {"keyword": "up", "spike_time_s": 6.2},      # on a non-keyword: false alarm
        {"keyword": "up", "spike_time_s": 10.1}]     # after end + 0.5 s: false alarm, miss
    s = stream_metrics.score(detections, truth)
    assert (s["keywords"], s["hits"], s["false_alarms"]) == (3, 2, 4)
    assert s["latencies_s"] == pytest.approx([0.3, 0.8])
    pooled = stream_metrics.summarize([s], [(900, 1800.0)])
    assert pooled["hit_rate"] == pytest.approx(2 / 3)
    assert pooled["fa_per_hour"] == pytest.approx(8.0)
    assert pooled["latency_mean_s"] == pytest.approx(0.55)
    assert pooled["latency_p90_s"] == pytest.approx(0.75)
    assert pooled["invocations_per_second"] == pytest.approx(0.5)


def test_operating_point_and_det_plot(tmp_path):
    points = [{"threshold": 0.5, "hit_rate": 0.99, "miss_rate": 0.01, "fa_per_hour": 9.0,
               "latency_mean_s": 0.3},
              {"threshold": 0.9, "hit_rate": 0.95, "miss_rate": 0.05, "fa_per_hour": 2.0,
               "latency_mean_s": 0.4},
              {"threshold": 0.99, "hit_rate": 0.90, "miss_rate": 0.10, "fa_per_hour": 0.0,
               "latency_mean_s": 0.5}]
    assert stream_metrics.operating_point(points)["threshold"] == 0.9
    assert stream_metrics.operating_point(points, max_fa_per_hour=1.0)["threshold"] == 0.99
    assert stream_metrics.operating_point(points[:1]) is None
    path = stream_metrics.plot_det({"rc": points}, tmp_path / "det.png", 2.0)
    assert path.stat().st_size > 1000
