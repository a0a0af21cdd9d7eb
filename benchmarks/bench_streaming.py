"""Keyword spotting in a continuous stream: hits, false alarms per hour, latency, cost.

Stages (each cached under ``--work``, so a re-run reuses what is done):

1. data: a synthesized keyword set (`rc_keras.datasets.synthesize_keywords`, espeak-ng
   voices, open "unknown" words, ``_background_noise_``), voices split by the official
   hash rule;
2. models: one RC and one EOS keyword model (`rc_keras.kws_training.train_speech_commands`,
   "standard12" labels so background-only windows have a class of their own, no context
   stacking so every frame is causal);
3. streams: long recordings built from the *test* voices only
   (`rc_keras.streaming_bench.make_stream`): keywords and non-keyword words at known
   times, background noise at a known SNR (clean and 10 dB), plus keyword-free streams
   of non-keyword speech and noise for false alarms; ground truth JSON beside each;
4. evaluation: the onset policy of `rc_keras.streaming` over every stream for a sweep of
   thresholds (network outputs cached per instance start, so the sweep runs the network
   once), hit rate, false alarms per hour, latency from word onset, invocations per
   second beside the staggered policy and a sliding-window baseline; DET plot.

    python benchmarks/bench_streaming.py [--quick] [--work DIR]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import provenance  # noqa: E402  (benchmarks/provenance.py: command line, versions, date, load)

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"voices": 60, "clips_per_voice": 1, "unknown_per_voice": 4, "noise": 0.1, "epochs": 16, "batch_size": 64,
        "learning_rate": 3e-3, "threshold": 0.9, "units": 128, "grace_epochs": 3,
        "runs": [["rc", 0.1], ["eos", 0.2]]}
QUICK = dict(FULL, voices=16, epochs=2, units=16)
THRESHOLDS = [0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995]
# (name, split, keyword share, seconds, SNR dB or None): keyword streams for hits and
# latency, keyword-free streams (non-keyword words and noise) for false alarms.
STREAMS = [("val_kw_clean", "validation", 0.5, 120, None), ("val_kw_10db", "validation", 0.5, 120, 10),
           ("val_free_clean", "validation", 0.0, 300, None), ("val_free_10db", "validation", 0.0, 300, 10),
           ("test_kw_clean", "testing", 0.5, 240, None), ("test_kw_10db", "testing", 0.5, 240, 10),
           ("test_free_clean", "testing", 0.0, 900, None), ("test_free_10db", "testing", 0.0, 900, 10)]
QUICK_STREAMS = [(n, sp, k, s // 6, snr) for n, sp, k, s, snr in STREAMS]
MAX_FA_PER_HOUR = 2.0
TARGET_HIT_RATE = 0.95
TARGET_LATENCY_CUT = 0.30
POLICY = dict(mode="onset", max_frames=98, refractory_frames=50, onset_db=4.0, onset_frames=2,
              release_frames=5, pre_roll_frames=10)


def make_data(root, config):
    """The synthesized set (`bench_kws.make_data`): espeak-ng voices, open unknown words."""
    from bench_kws import make_data as make_kws_data  # noqa: PLC0415 - benchmarks/ is on the path

    return make_kws_data(root, config, synthesis={
        "engines": ("espeak-ng",), "unknown_per_voice": config["unknown_per_voice"],
        "real_unknown": 0})


def train_models(data_root, work, config):
    """Trains (or reloads) the RC and EOS models; returns {name: summary}."""
    from rc_keras import kws_training  # noqa: PLC0415

    summaries = {}
    for mode, beta in config["runs"]:
        name = f"{mode}_beta{beta:g}"
        out = Path(work) / "models" / name
        done = out / "summary.json"
        if done.is_file():
            summaries[name] = json.loads(done.read_text())
            continue
        summaries[name] = kws_training.train_speech_commands(
            data_root, out, beta=beta, mode=mode, epochs=config["epochs"],
            threshold=config["threshold"], units=config["units"],
            learning_rate=config["learning_rate"], batch_size=config["batch_size"], seed=0,
            verbose=2, label_set="standard12", context_frames=0,
            grace_epochs=config["grace_epochs"], cache_dir=Path(work) / "cache")
        print(f"{name}: {summaries[name]['test']}", flush=True)
    return summaries


def make_streams(work, info, streams):
    """Word pools of the validation and test voices, then the streams (WAV + JSON)."""
    from rc_keras.datasets import keyword_streams as ks  # noqa: PLC0415
    from rc_keras.datasets.keyword_synthesis import KEYWORDS  # noqa: PLC0415

    folder = Path(work) / "streams"
    noise_dir = Path(info["root"]) / "_background_noise_"
    noises = {p.stem: _read(p) for p in sorted(noise_dir.glob("*.wav"))}
    others = list(info["unknown_words"]) + list(info["open_unknown_words"][:10])
    pools, made = {}, {}
    for name, split, share, seconds, snr in streams:
        wav = folder / f"{name}.wav"
        if wav.is_file():
            made[name] = (wav, json.loads(wav.with_suffix(".json").read_text()))
            continue
        if split not in pools:
            voices = [v for v in info["voices"] if v["split"] == split]
            pools[split] = (ks.word_pool(voices, KEYWORDS, takes=2, seed=1)
                            + ks.word_pool(voices, others, takes=1, seed=1))
        seed = sum(map(ord, name))
        noise_name = sorted(noises)[seed % len(noises)]
        wave, truth = ks.make_stream(pools[split], seconds, KEYWORDS, share, snr,
                                     noises[noise_name] if snr is not None else None, seed=seed)
        truth.update(split=split, noise=noise_name if snr is not None else None)
        ks.write_stream(wav, wave, truth)
        made[name] = (wav, truth)
    return made


def _truncate(truth, seconds):
    """The ground truth of the first ``seconds`` of a stream (words wholly inside)."""
    if seconds >= truth["seconds"]:
        return truth
    return dict(truth, seconds=float(seconds),
                events=[e for e in truth["events"] if e["end_s"] <= seconds])


def _read(path):
    import wave  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    with wave.open(str(path)) as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    return pcm.astype(np.float32) / 32768.0


def evaluate(model, streams, features_of, policy_values, thresholds):
    """Threshold sweep of one model over the streams: {stream: [per-threshold results]}."""
    from rc_keras import stream_metrics, streaming  # noqa: PLC0415
    from rc_keras.datasets.speech_commands_layout import LABEL_SETS  # noqa: PLC0415

    names = LABEL_SETS["standard12"]
    out = {}
    for name, (wav, truth) in streams.items():
        feats, energies = features_of(name)
        network = streaming.KerasWindowNetwork(model, feats, policy_values["max_frames"])
        rows = []
        for theta in thresholds:
            policy = streaming.StreamPolicy(threshold=theta, **policy_values)
            listener = streaming.Listener(policy, network, names)
            if not network.cache:
                network.prefetch(streaming.onset_starts(energies, policy))
            detections = listener.run(feats, energies)
            rows.append({"threshold": theta,
                         "score": stream_metrics.score(detections, truth),
                         "invocations": listener.invocations,
                         "seconds": truth["seconds"]})
        out[name] = rows
    return out


def sweep_points(results, prefix, thresholds):
    """Pooled points per threshold: hits and latency from ``prefix``_kw_* streams, false
    alarms from ``prefix``_free_* streams."""
    from rc_keras import stream_metrics  # noqa: PLC0415

    points = []
    for i, theta in enumerate(thresholds):
        kw = [r[i] for n, r in results.items() if n.startswith(prefix + "_kw")]
        free = [r[i] for n, r in results.items() if n.startswith(prefix + "_free")]
        hits = stream_metrics.summarize([r["score"] for r in kw],
                                        [(r["invocations"], r["seconds"]) for r in kw + free])
        fa = stream_metrics.summarize([r["score"] for r in free])
        points.append({"threshold": theta, "hit_rate": hits["hit_rate"],
                       "miss_rate": hits["miss_rate"], "keywords": hits["keywords"],
                       "false_alarms_free": fa["false_alarms"],
                       "false_alarms_kw_streams": hits["false_alarms"],
                       "free_hours": fa["hours"], "fa_per_hour": fa["fa_per_hour"],
                       "latency_mean_s": hits["latency_mean_s"],
                       "latency_p90_s": hits["latency_p90_s"],
                       "invocations_per_second": hits["invocations_per_second"]})
    return points


def onset_recall(streams, features_of, policy_values):
    """Share of keyword events with a detector onset between 0.2 s before their start
    and their end (what the onset policy can hit at best)."""
    from rc_keras import streaming  # noqa: PLC0415

    found = total = 0
    policy = streaming.StreamPolicy(**policy_values)
    for name, (_, truth) in streams.items():
        _, energies = features_of(name)
        onsets = [s + policy.pre_roll_frames for s in streaming.onset_starts(energies, policy)]
        times = [0.01 * o for o in onsets]
        for e in truth["events"]:
            if e["keyword"]:
                total += 1
                found += any(e["start_s"] - 0.2 <= t <= e["end_s"] for t in times)
    return found / total if total else None


def staggered_cost(model, streams, features_of, theta, stride=10):
    """Hit rate and invocations/s of the staggered policy on the test keyword streams."""
    from rc_keras import stream_metrics, streaming  # noqa: PLC0415
    from rc_keras.datasets.speech_commands_layout import LABEL_SETS  # noqa: PLC0415

    policy = streaming.StreamPolicy(mode="staggered", stride_frames=stride, threshold=theta,
                                    max_frames=POLICY["max_frames"],
                                    refractory_frames=POLICY["refractory_frames"])
    scores, calls = [], []
    for name, (_, truth) in streams.items():
        if name != "test_kw_clean":
            continue
        feats, energies = features_of(name)
        network = streaming.KerasWindowNetwork(model, feats, policy.max_frames)
        network.prefetch(range(0, len(feats), stride))
        listener = streaming.Listener(policy, network, LABEL_SETS["standard12"])
        scores.append(stream_metrics.score(listener.run(feats, energies), truth))
        calls.append((listener.invocations, truth["seconds"]))
    return dict(stream_metrics.summarize(scores, calls), stride_frames=stride, threshold=theta)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", default="/tmp/rc_keras_streaming")
    parser.add_argument("--models-only", action="store_true",
                        help="stop after training (stages 1-2)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--free-seconds", type=float,
                        help="use only the first SECONDS of each keyword-free stream (a "
                             "shorter run on a loaded machine; coarser FA/h)")
    args = parser.parse_args(argv)
    config = dict(QUICK if args.quick else FULL)
    if args.epochs:
        config["epochs"] = args.epochs
    wall = time.perf_counter()
    work = Path(args.work)
    info, synth_seconds = make_data(work / "data", config)
    print(f"data: {info['num_clips']} clips {info['splits']} ({synth_seconds:.0f} s)", flush=True)
    summaries = train_models(work / "data", work, config)
    if args.models_only:
        return summaries

    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from rc_keras import features as features_lib  # noqa: PLC0415
    from rc_keras import stream_metrics, streaming  # noqa: PLC0415

    stream_specs = QUICK_STREAMS if args.quick else STREAMS
    started = time.perf_counter()
    streams = make_streams(work, info, stream_specs)
    stream_seconds = time.perf_counter() - started
    print(f"streams: {len(streams)} ({stream_seconds:.0f} s)", flush=True)
    if args.free_seconds:
        streams = {n: (w, _truncate(t, args.free_seconds) if "_free_" in n else t)
                   for n, (w, t) in streams.items()}
    params = features_lib.FrontEndParams(context_frames=0)
    cache = {}

    def features_of(name):
        if name not in cache:
            samples = int(round(streams[name][1]["seconds"] * params.sample_rate))
            # "_q8": energies in 1/256 dB (streaming.log_mel_energy_q8, as the firmware's);
            # older caches held float energies.
            path = work / "features" / f"{name}_{samples}_q8.npz"
            if path.is_file():
                with np.load(path) as saved:
                    cache[name] = (saved["features"], saved["energies"])
            else:
                cache[name] = streaming.stream_features(_read(streams[name][0])[:samples], params)
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, features=cache[name][0], energies=cache[name][1])
        return cache[name]

    recall = onset_recall({n: s for n, s in streams.items() if n.startswith("test")},
                          features_of, POLICY)
    models = {}
    for name, summary in summaries.items():
        model = keras.models.load_model(summary["model_path"])
        t0 = time.perf_counter()
        results = evaluate(model, streams, features_of, POLICY, THRESHOLDS)
        val_points = sweep_points(results, "val", THRESHOLDS)
        test_points = sweep_points(results, "test", THRESHOLDS)
        chosen = stream_metrics.operating_point(val_points, MAX_FA_PER_HOUR)
        theta = chosen["threshold"] if chosen else max(THRESHOLDS)
        at_test = next(p for p in test_points if p["threshold"] == theta)
        models[name] = {"mode": summary["config"]["mode"], "beta": summary["config"]["beta"],
                        "clip_test": summary["test"], "val_points": val_points,
                        "test_points": test_points, "theta_from_validation": theta,
                        "test_at_theta": at_test,
                        "test_best_within_fa": stream_metrics.operating_point(test_points,
                                                                              MAX_FA_PER_HOUR),
                        "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name}: theta {theta} (validation) -> test {at_test}", flush=True)
        if summary["config"]["mode"] == "rc":
            models[name]["staggered"] = staggered_cost(model, streams, features_of, theta)
            print(f"  staggered: {models[name]['staggered']}", flush=True)

    rc = next(m for m in models.values() if m["mode"] == "rc")
    eos = next(m for m in models.values() if m["mode"] == "eos")
    rc_t, eos_t = rc["test_at_theta"], eos["test_at_theta"]
    # Matched operating point: the lower of the two test hit rates; each model's fastest
    # threshold reaching it within the false-alarm budget.
    matched_hit = min(rc_t["hit_rate"], eos_t["hit_rate"])

    def fastest(points):
        ok = [p for p in points if p["hit_rate"] >= matched_hit and p["fa_per_hour"] is not None
              and p["fa_per_hour"] <= max(MAX_FA_PER_HOUR, rc_t["fa_per_hour"],
                                          eos_t["fa_per_hour"])
              and p["latency_mean_s"] is not None]
        return min(ok, key=lambda p: p["latency_mean_s"]) if ok else None

    rc_m, eos_m = fastest(rc["test_points"]), fastest(eos["test_points"])
    cut = (1 - rc_m["latency_mean_s"] / eos_m["latency_mean_s"]) if rc_m and eos_m else None
    sliding = streaming.sliding_window_cost(POLICY["max_frames"], 10)
    targets = {
        "hit_rate_at_2_fa_per_hour": {
            "met": bool(rc_t["hit_rate"] >= TARGET_HIT_RATE and rc_t["fa_per_hour"] <= MAX_FA_PER_HOUR),
            "rc": {k: rc_t[k] for k in ("threshold", "hit_rate", "fa_per_hour")},
            "eos": {k: eos_t[k] for k in ("threshold", "hit_rate", "fa_per_hour")}},
        "rc_latency_30pct_below_eos": {
            "met": bool(cut is not None and cut >= TARGET_LATENCY_CUT), "cut": cut,
            "matched_hit_rate": matched_hit, "rc_point": rc_m, "eos_point": eos_m},
        "invocations_per_second": {
            "rc_onset": rc_t["invocations_per_second"],
            "rc_staggered_every_10_frames": rc["staggered"]["invocations_per_second"],
            "sliding_window_98_every_10_frames": sliding},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot = stream_metrics.plot_det(
        {f"{n} ({m['mode'].upper()}), test": m["test_points"] for n, m in models.items()},
        out / "streaming_det.png", MAX_FA_PER_HOUR)
    result = {
        "benchmark": "streaming",
        "quick": bool(args.quick), "config": config, "policy": POLICY,
        "free_seconds": args.free_seconds,
        "thresholds": THRESHOLDS, "max_fa_per_hour": MAX_FA_PER_HOUR,
        "streams": {n: {"seconds": t["seconds"], "split": t["split"], "snr_db": t["snr_db"],
                        "noise": t["noise"], "keywords": sum(e["keyword"] for e in t["events"]),
                        "words": len(t["events"])} for n, (_, t) in streams.items()},
        "onset_recall_test": recall, "models": models, "targets": targets,
        "data": {"splits": info["splits"], "voices": len(info["voices"]),
                 "test_voices": sum(v["split"] == "testing" for v in info["voices"]),
                 "validation_voices": sum(v["split"] == "validation" for v in info["voices"])},
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }
    name = "streaming_quick" if args.quick else "streaming"
    result = provenance.write_json(out / f"{name}.json", result, __file__, argv, indent=1,
                                   default=float)
    (out / f"{name}.md").write_text(markdown(result, plot.name))
    print(markdown(result, plot.name))
    return result


def _f(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result, plot_name):
    """The results as a markdown section."""
    lines = ["### Keyword spotting in a stream (`benchmarks/bench_streaming.py`)", ""]
    s = result["streams"]
    kw = sum(v["seconds"] for n, v in s.items() if n.startswith("test_kw"))
    free = sum(v["seconds"] for n, v in s.items() if n.startswith("test_free"))
    lines.append(
        f"Test streams from {result['data']['test_voices']} held-out espeak-ng voices: "
        f"{kw / 60:.0f} min with keywords ({sum(v['keywords'] for n, v in s.items() if n.startswith('test_kw'))} "
        f"keywords among non-keyword words), {free / 60:.0f} min keyword-free (non-keyword words "
        f"and noise); half clean, half at 10 dB SNR over `_background_noise_`. Threshold chosen "
        f"on validation streams ({result['data']['validation_voices']} other voices) as the "
        f"highest hit rate at <= {result['max_fa_per_hour']:g} FA/h. Onset policy {result['policy']}. "
        f"Onset detector recall on test keywords: {_f(result['onset_recall_test'])}.")
    lines += ["", "| model | θ (val) | hit rate | FA/h | latency mean s | p90 s | invocations/s | clip test acc |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        p = m["test_at_theta"]
        lines.append(f"| {name} | {m['theta_from_validation']} | {_f(p['hit_rate'])} | "
                     f"{_f(p['fa_per_hour'], 1)} | {_f(p['latency_mean_s'])} | "
                     f"{_f(p['latency_p90_s'])} | {_f(p['invocations_per_second'], 1)} | "
                     f"{_f(m['clip_test']['accuracy'])} |")
    t = result["targets"]
    h = t["hit_rate_at_2_fa_per_hour"]
    lat = t["rc_latency_30pct_below_eos"]
    inv = t["invocations_per_second"]
    lines += ["", "Targets:", "",
              f"- hit rate >= 95% at <= 2 FA/h (RC, θ from validation): "
              f"**{'met' if h['met'] else 'NOT met'}** (RC {_f(h['rc']['hit_rate'])} at "
              f"{_f(h['rc']['fa_per_hour'], 1)} FA/h; EOS {_f(h['eos']['hit_rate'])} at "
              f"{_f(h['eos']['fa_per_hour'], 1)} FA/h).",
              f"- RC mean latency >= 30% below EOS at the same hit rate ({_f(lat['matched_hit_rate'])}) "
              f"and false-alarm budget: **{'met' if lat['met'] else 'NOT met'}** (cut "
              f"{_f(lat['cut'])}; RC {_f((lat['rc_point'] or {}).get('latency_mean_s'))} s, "
              f"EOS {_f((lat['eos_point'] or {}).get('latency_mean_s'))} s).",
              f"- network invocations per second of audio: RC onset policy {_f(inv['rc_onset'], 1)}, "
              f"RC staggered (new instance every 10 frames, clean test keyword stream) {_f(inv['rc_staggered_every_10_frames'], 1)}, "
              f"sliding window (98 frames re-read every 10 frames) {inv['sliding_window_98_every_10_frames']:.0f}.",
              "", "Sweep (test streams):", "",
              "| model | θ | hit rate | FA/h | latency mean s | p90 s | invocations/s |",
              "|---|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        for p in m["test_points"]:
            lines.append(f"| {name} | {p['threshold']} | {_f(p['hit_rate'])} | "
                         f"{_f(p['fa_per_hour'], 1)} | {_f(p['latency_mean_s'])} | "
                         f"{_f(p['latency_p90_s'])} | {_f(p['invocations_per_second'], 1)} |")
    p = result["provenance"]  # benchmarks/provenance.py
    lines += ["", f"DET plot: `benchmarks/results/{plot_name}`. Wall time "
              f"{result['wall_seconds'] / 60:.1f} min, load average {p['load_average']} on "
              f"{p['machine']}, {p['cpus']} CPUs (shared), {p['date']}.", "",
              f"Command: `{p['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
