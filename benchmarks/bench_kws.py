"""Keyword spotting on a synthesized Speech Commands set: RC vs. conventional (EOS) training.

The paper's Figure-5 comparison, on the offline stand-in for Google Speech Commands:
`rc_keras.datasets.synthesize_keywords` (espeak-ng voices, each voice in one split by
the official hash rule, background noise mixed in), "paper11" labels (10 keywords +
unknown), log-mel features (`rc_keras.features`, 25 ms window, 10 ms stride, 20 bands),
`rc_keras.models.kws_lstm` (LSTM 128, Dense 32 relu, Dense 11 softmax) trained with the
recipe of `rc_keras.kws_training` (Adam, global L2 clipping 0.25, majority-class stop
rule), each model until its own validation metric stops improving (early stopping with
patience, best epoch kept: RC by its spike accuracy at theta, EOS by its accuracy at the
end of the clip; `rc_keras.convergence`).

Models: RC at beta in {0, 0.1, 0.2, 0.3, 0.4} and EOS (loss at the last valid frame) at
beta in {0, 0.2}, all under the same epoch budget and patience at the same training
threshold.
Each model's threshold sweep comes from one pass of ``RCModel.step_probabilities`` over
the test clips (with their true lengths); composite frontiers combine the betas of each
training mode. Targets (of the issue):

1. the RC composite frontier lies at or above the EOS frontier at every mean spike time
   where both exist;
2. some RC operating point answers with a mean spike time <= 60% of the clip (600 ms of
   audio heard) at an accuracy no more than 2 points below the EOS model read at the end
   of the clip (the better of the two EOS models).

Context stacking is off (``context_frames=0``: 20 features a frame and no look-ahead),
to fit the 2-core time budget, so the ms figures are audio actually heard.

    python benchmarks/bench_kws.py [--quick] [--data DIR] [--epochs N] [--out DIR]
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rc_keras import features as features_lib  # noqa: E402
from rc_keras import kws_training, tradeoff  # noqa: E402
from rc_keras.datasets import speech_commands, synthesize_keywords  # noqa: E402
from rc_keras.datasets.keyword_synthesis import CLOSED_ESPEAK_SET  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995,
              0.998, 0.999]
RUNS = [("rc", 0.0), ("rc", 0.1), ("rc", 0.2), ("rc", 0.3), ("rc", 0.4), ("eos", 0.0),
        ("eos", 0.2)]
QUICK_RUNS = [("rc", 0.0), ("rc", 0.2), ("eos", 0.0)]
# Every model trains until its validation metric (RC: spike accuracy at theta; EOS:
# accuracy at the end of the clip) has not improved for `patience` epochs, at most
# `epochs` (`rc_keras.convergence.fit_to_convergence` through `kws_training.fit_kws`).
FULL = {"voices": 100, "clips_per_voice": 2, "noise": 0.25, "epochs": 30, "patience": 4,
        "batch_size": 64, "learning_rate": 3e-3, "threshold": 0.9, "units": 128,
        "grace_epochs": 3}
QUICK = {"voices": 24, "clips_per_voice": 1, "noise": 0.25, "epochs": 2, "patience": 1,
         "batch_size": 64, "learning_rate": 3e-3, "threshold": 0.9, "units": 16,
         "grace_epochs": 3}
MAX_FRACTION = 0.6      # target 2: mean spike time at most 60% of the clip
MAX_DROP = 0.02         # ... at most 2 accuracy points below EOS at the end of the clip


def make_data(root, config, synthesis=CLOSED_ESPEAK_SET):
    """Synthesizes the keyword set unless ``root`` already holds one made with ``config``
    (``synthesis``: further `synthesize_keywords` arguments)."""
    root = Path(root)
    info_path = root / "synthesis.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if len(info["voices"]) == config["voices"]:
            return info, 0.0
        raise SystemExit(f"{root} holds a different synthesized set; pass another --data.")
    start = time.perf_counter()
    info = synthesize_keywords(root, voices=config["voices"],
                               clips_per_voice=config["clips_per_voice"], seed=0,
                               noise=config["noise"], workers=2, **synthesis)
    return info, time.perf_counter() - start


def load_features(root, cache_dir):
    """Feature arrays of the three splits, plus the feature pipeline's throughput.

    The train split goes through `speech_commands` twice with ``cache=True``: the first
    epoch decodes and computes log-mel features, the second reads the cache; both are
    timed (clips/s). The arrays are cached as .npz for re-runs.
    """
    params = kws_training.front_end(context_frames=0)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data, throughput = {}, {}
    for split in ("train", "validation", "test"):
        path = cache_dir / f"{split}.npz"
        if path.is_file():
            with np.load(path) as arrays:
                data[split] = (arrays["x"], arrays["lengths"], arrays["y"])
            continue
        ds = speech_commands(root, split, label_set="paper11", features=params, cache=True,
                             batch_size=256)
        timings, parts = [], None
        for _ in range(2 if split == "train" else 1):
            start, batches = time.perf_counter(), []
            for inputs, labels in ds.as_numpy_iterator():
                batches.append((inputs["inputs"], inputs["lengths"], labels))
            timings.append(time.perf_counter() - start)
            parts = batches
        x = np.concatenate([b[0] for b in parts]).astype(np.float32)
        lengths = np.concatenate([b[1] for b in parts]).astype(np.int32)
        y = np.concatenate([b[2] for b in parts]).astype(np.int32)
        data[split] = (x, lengths, y)
        np.savez(path, x=x, lengths=lengths, y=y)
        if split == "train":
            throughput = {"clips": int(len(y)),
                          "first_epoch_clips_per_s": round(len(y) / timings[0], 1),
                          "cached_epoch_clips_per_s": round(len(y) / timings[1], 1)}
    return data, throughput, params


def end_of_clip_accuracy(step_probs, lengths, y):
    """Accuracy of the answer at each clip's last valid frame (conventional readout)."""
    last = step_probs[np.arange(len(y)), np.asarray(lengths) - 1]
    return float(np.mean(last.argmax(-1) == y))


def run(args):
    config = dict(QUICK if args.quick else FULL)
    for key in ("epochs", "patience", "voices", "noise"):
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    wall = time.perf_counter()
    data_root = Path(args.data or f"/tmp/rc_keras_kws/data_v{config['voices']}")
    info, synth_seconds = make_data(data_root, config)
    print(f"data: {info['num_clips']} clips {info['splits']} at {data_root} "
          f"(synthesis {synth_seconds:.0f} s)", flush=True)
    data, throughput, params = load_features(data_root, Path(args.work) / "features"
                                             / data_root.name)
    x_te, n_te, y_te = data["test"]
    frames = int(x_te.shape[1])
    clip_ms = params.clip_seconds * 1000
    print(f"features: {throughput}", flush=True)

    groups = {"RC": {}, "EOS": {}}
    models = []
    for mode, beta in (QUICK_RUNS if args.quick else RUNS):
        name = f"{mode}_beta{beta:g}"
        start = time.perf_counter()
        summary = kws_training.train_speech_commands(
            None, Path(args.work) / name, beta=beta, mode=mode, epochs=config["epochs"],
            threshold=config["threshold"], units=config["units"],
            learning_rate=config["learning_rate"], batch_size=config["batch_size"], seed=0,
            verbose=0, data=data, grace_epochs=config["grace_epochs"],
            patience=config["patience"])
        model = keras.models.load_model(summary["model_path"])
        step_probs = tradeoff.all_step_probabilities(model, x_te)
        points = tradeoff.sweep_from_probabilities(step_probs, y_te, THRESHOLDS, lengths=n_te)
        points = tradeoff.add_milliseconds(points)
        groups[mode.upper()][f"beta={beta:g}"] = points
        seconds = summary["epoch_seconds"]
        row = {"name": name, "mode": mode, "beta": beta, "test": summary["test"],
               "end_of_clip_accuracy": end_of_clip_accuracy(step_probs, n_te, y_te),
               "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
               "stopped_epoch": summary["stopped_epoch"],
               "stopped_early": summary["stopped_early"],
               "monitor": summary["config"]["checkpoint_monitor"],
               "train_seconds": summary["train_seconds"], "epoch_seconds": seconds,
               "mean_epoch_seconds": round(float(np.mean(seconds)), 2),
               "history": json.loads((Path(args.work) / name / "history.json").read_text()),
               "seconds": round(time.perf_counter() - start, 1), "sweep": points}
        models.append(row)
        test = summary["test"]
        print(f"{name}: acc {test['accuracy']:.4f} at {test['mean_spike_time']:.1f} frames "
              f"({test['mean_spike_time_ms']:.0f} ms), end-of-clip acc "
              f"{row['end_of_clip_accuracy']:.4f}, s/epoch {seconds}, "
              f"{row['seconds']:.0f} s total", flush=True)

    frontiers = {group: tradeoff.composite_frontier(curves) for group, curves in groups.items()}
    comparison = tradeoff.compare_frontiers(frontiers["RC"], frontiers["EOS"])
    eos_end = max(m["end_of_clip_accuracy"] for m in models if m["mode"] == "eos")
    max_ms = MAX_FRACTION * clip_ms
    rc_points = [dict(p, curve=f"RC {name}") for name, pts in groups["RC"].items() for p in pts]
    fast = [p for p in tradeoff.fast_operating_points(rc_points, np.inf, eos_end - MAX_DROP)
            if p["mean_spike_time_ms"] <= max_ms]
    best_fast = max((p for p in rc_points if p["mean_spike_time_ms"] <= max_ms),
                    key=lambda p: p["accuracy"], default=None)
    targets = {
        "rc_frontier_at_or_above_eos": {
            "met": comparison["at_or_above"], "overlap_frames": comparison["overlap"],
            "worst_difference": comparison["worst_difference"], "checks": comparison["checks"]},
        "fast_rc_point": {
            "met": bool(fast), "max_mean_spike_time_ms": max_ms,
            "eos_end_of_clip_accuracy": eos_end, "min_accuracy": eos_end - MAX_DROP,
            "qualifying_points": fast[:5], "best_rc_point_within_time": best_fast},
    }
    result = {
        "benchmark": "kws", "quick": bool(args.quick), "config": config,
        "command": "python benchmarks/bench_kws.py " + " ".join(sys.argv[1:]),
        "data": {"root": str(data_root), "num_clips": info["num_clips"],
                 "splits": info["splits"], "words": info["words"],
                 "voices": len(info["voices"]), "synthesis_seconds": round(synth_seconds, 1),
                 "test_label_counts": np.bincount(y_te, minlength=11).tolist(),
                 "frames_per_clip": frames, "mean_test_length": float(np.mean(n_te))},
        "feature_throughput": throughput,
        "front_end": {"window_ms": params.window_ms, "stride_ms": params.stride_ms,
                      "num_mel_bins": params.num_mel_bins, "context_frames": 0},
        "thresholds": THRESHOLDS, "models": models, "frontiers": frontiers, "targets": targets,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
                   "(shared)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "kws_quick" if args.quick else "kws"
    provenance.write_json(out / f"{stem}.json", result, __file__)
    tradeoff.plot_comparison(
        groups, out / f"{stem}_tradeoff.png", frontiers=frontiers, time_unit="frames",
        ms_axis=(params.stride_ms, params.window_ms, 0),
        reference_lines={f"EOS at end of clip ({eos_end:.3f})": eos_end},
        title=f"Synthesized keywords (paper11, {len(y_te)} test clips): RC vs EOS")
    plot_learning_curves(result, out / f"{stem}_learning_curves.png")
    (out / f"{stem}.md").write_text(markdown(result) + "\n")
    print(markdown(result), flush=True)
    return result


def plot_learning_curves(result, path):
    """Every model's validation curve: the metric that picked its best epoch."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in result["models"]:
        monitor = m.get("monitor") or ("val_end_of_clip_accuracy" if m["mode"] == "eos"
                                       else "val_spike_accuracy")
        curve = [100 * v for v in m["history"].get(monitor, [])]
        if not curve:
            continue
        line, = ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3,
                        linestyle="--" if m["mode"] == "eos" else "-",
                        label=f"{m['mode'].upper()} β={m['beta']:g} ({monitor})")
        best = int(np.argmax(curve))
        ax.plot(best + 1, curve[best], marker="*", markersize=11, color=line.get_color(),
                linestyle="none")
    ax.set_xlabel("epoch (star: epoch kept)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Keywords: learning curves (RC: spike accuracy at θ; EOS: end of clip)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result):
    """The results as markdown: models, frontiers, targets."""
    config, data = result["config"], result["data"]
    lines = [
        "# Keyword spotting: RC vs. conventional training (synthesized Speech Commands)",
        "",
        f"{data['num_clips']} espeak-ng clips, {data['voices']} voices (train/val/test "
        f"{data['splits']['train']}/{data['splits']['validation']}/{data['splits']['test']} "
        f"clips, voices disjoint), paper11 labels; {data['frames_per_clip']} frames of 20 "
        f"log-mel bands a clip (10 ms stride, no context). LSTM {config['units']} + Dense 32 "
        f"+ Dense 11, Adam {config['learning_rate']:g} with global L2 clipping 0.25, "
        f"at most {config['epochs']} epochs, early stopping with patience "
        f"{config.get('patience', '-')} on each model's own validation metric (RC: spike "
        f"accuracy at θ; EOS: accuracy at the end of the clip), batch "
        f"{config['batch_size']}, trained at θ {config['threshold']:g}; best validation "
        "epoch kept. Test accuracy on "
        f"{sum(data['test_label_counts'])} clips (1 clip = "
        f"{100 / sum(data['test_label_counts']):.2f} points).",
        "",
        "| model | accuracy at θ_train | mean spike time (frames) | (ms) | accuracy at end of clip "
        "| epochs run | best epoch | s/epoch first → last (mean) | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        t, s = m["test"], m["epoch_seconds"]
        lines.append(f"| {m['mode'].upper()} β={m['beta']:g} | {t['accuracy']:.4f} | "
                     f"{t['mean_spike_time']:.1f} | {t['mean_spike_time_ms']:.0f} | "
                     f"{m['end_of_clip_accuracy']:.4f} | {m['epochs_run']} | {m['best_epoch']} | "
                     f"{s[0]:.1f} → {s[-1]:.1f} ({m['mean_epoch_seconds']:.1f}) | "
                     f"{m.get('train_seconds', sum(s)):.0f} |")
    lines += ["", "Composite frontiers (threshold sweeps of all betas of a mode):", "",
              tradeoff.format_comparison_table(
                  {g: [dict(p, curve=p["curve"]) for p in f]
                   for g, f in result["frontiers"].items()}), ""]
    t1 = result["targets"]["rc_frontier_at_or_above_eos"]
    t2 = result["targets"]["fast_rc_point"]
    overlap = t1["overlap_frames"]
    lines.append("Targets:")
    lines.append("")
    if overlap is None:
        lines.append("- RC frontier ≥ EOS frontier: the frontiers do not overlap in time "
                     "(not decided).")
    else:
        lines.append(f"- RC frontier ≥ EOS frontier wherever both exist ({overlap[0]:.1f}–"
                     f"{overlap[1]:.1f} frames): **{'met' if t1['met'] else 'NOT met'}** "
                     f"(worst RC − EOS difference {100 * t1['worst_difference']:+.2f} points).")
    best = t2["best_rc_point_within_time"]
    best_text = ("none" if best is None else
                 f"{best['curve']} θ {best['threshold']:g}: {best['accuracy']:.4f} at "
                 f"{best['mean_spike_time_ms']:.0f} ms")
    lines.append(f"- RC point with mean spike time ≤ {t2['max_mean_spike_time_ms']:.0f} ms at "
                 f"accuracy ≥ EOS end-of-clip {t2['eos_end_of_clip_accuracy']:.4f} − 2 points: "
                 f"**{'met' if t2['met'] else 'NOT met'}** (most accurate RC point within "
                 f"the time: {best_text}).")
    thr = result["feature_throughput"]
    if thr:
        lines.append(f"- Feature pipeline ({thr['clips']} clips): first epoch (decode + "
                     f"log-mel) {thr['first_epoch_clips_per_s']:.0f} clips/s, cached epoch "
                     f"{thr['cached_epoch_clips_per_s']:.0f} clips/s (target ≥ 1000).")
    steps = {m["name"]: m["history"].get("steps_run", [None])[-1] for m in result["models"]}
    if any(v is not None for v in steps.values()):
        lines.append("- Loop iterations per training batch in the last epoch (98 = full clip): "
                     + ", ".join(f"{k} {v:.0f}" for k, v in steps.items() if v is not None)
                     + ". A batch runs until its last example spikes, so RC epochs only get "
                       "cheaper once nearly every clip spikes.")
    load = result.get("load_average")
    lines += ["", f"Wall time {result['wall_seconds'] / 60:.1f} min on {result['machine']}"
              + (f", load average {load:.1f} at the end (other jobs shared the cores; the first "
                 "epoch includes graph tracing, and epoch times vary with the load)"
                 if load is not None else "")
              + f", {result['date']}. Plots: `benchmarks/results/kws_tradeoff.png`, "
              "`benchmarks/results/kws_learning_curves.png`."]
    if result.get("command"):
        lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and 2 epochs (smoke)")
    parser.add_argument("--data", help="synthesized dataset folder (made if missing)")
    parser.add_argument("--epochs", type=int, help="override the epoch budget")
    parser.add_argument("--patience", type=int,
                        help="override the early-stopping patience (epochs without improvement)")
    parser.add_argument("--voices", type=int, help="override the number of voices")
    parser.add_argument("--noise", type=float, help="override the synthesis noise level")
    parser.add_argument("--work", default="/tmp/rc_keras_kws/work",
                        help="models, histories and the feature cache")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--render", help="only rewrite the .md next to this results .json")
    args = parser.parse_args()
    if args.render:
        path = Path(args.render)
        result = json.loads(path.read_text())
        path.with_suffix(".md").write_text(markdown(result) + "\n")
        return
    run(args)


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
