"""Cost of a converged RC keyword epoch against an EOS epoch, with per-example halting.

A small keyword setup (the quick set of `bench_kws`: espeak-ng voices, paper11 labels,
20 log-mel bands, true clip lengths) trains an RC model (beta 0.1) until it has
converged; then epochs of the same data and batch size are timed interleaved, round
after round: RC with per-example halting (switched on for the timing), EOS (loss at the last valid
frame, the same weights, also with per-example halting: it only helps clips shorter
than the padded length), and RC with ``per_example_halting=False``. Targets (issue 17):
RC epoch / EOS epoch <= 0.6, and the RC compute fraction <= 1.15 x the mean spike
fraction (mean frames read / frames a clip).

    python benchmarks/bench_kws_epoch_cost.py [--train-epochs 20] [--rounds 5] [--quick]

``--quick`` (a smoke run of the whole path in about a minute: LSTM 8, one training epoch,
one timed round) writes ``kws_epoch_cost_quick.json``; its ratios mean nothing.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rc_keras as rk  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kws  # noqa: E402
import provenance  # noqa: E402  (benchmarks/provenance.py: command line, versions, date, load)

RESULTS = Path(__file__).resolve().parent / "results"
# Defaults of the options below (the committed run), and those of --quick.
FULL = {"voices": 24, "units": 64, "train_epochs": 20, "rounds": 5}
QUICK = {"voices": 24, "units": 8, "train_epochs": 1, "rounds": 1}


def compile_model(model, beta, learning_rate):
    model.compile(keras.optimizers.Adam(learning_rate, global_clipnorm=0.25),
                  rk.ConfidencePenalty(beta=beta),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.StepsRun(), rk.metrics.ComputeFraction()])


def copy_as(model, training_mode, per_example_halting, units, num_classes):
    clone = rk.models.kws_lstm(num_classes, units=units, threshold=model.threshold,
                               training_mode=training_mode)
    clone.per_example_halting = per_example_halting
    clone.set_weights(model.get_weights())
    return clone


def run(args):
    config = dict(bench_kws.QUICK, voices=args.voices, units=args.units)
    data_root = Path(args.data or f"/tmp/rc_keras_kws/data_v{config['voices']}")
    info, _ = bench_kws.make_data(data_root, config)
    data, _, _ = bench_kws.load_features(data_root, Path(args.work) / data_root.name)
    x, lengths, y = data["train"]
    inputs = {"inputs": x, "lengths": lengths}
    frames = x.shape[1]
    classes = 11
    keras.utils.set_random_seed(0)
    model = rk.models.kws_lstm(classes, units=args.units, threshold=config["threshold"])
    compile_model(model, 0.1, config["learning_rate"])
    start = time.perf_counter()
    history = model.fit(inputs, y, batch_size=config["batch_size"], epochs=args.train_epochs,
                        verbose=2).history
    train_seconds = time.perf_counter() - start
    # Copies of the converged weights, each traced afresh with its own switch (the trained
    # model's functions were traced with the default, per_example_halting=False).
    variants = {"rc": copy_as(model, "rc", True, args.units, classes),
                "eos": copy_as(model, "eos", True, args.units, classes),
                "rc_no_halting": copy_as(model, "rc", False, args.units, classes)}
    for name, m in variants.items():
        compile_model(m, 0.1 if name.startswith("rc") else 0.0, config["learning_rate"])
    samples = {name: [] for name in variants}
    cpu_samples = {name: [] for name in variants}  # process CPU time: steadier under load
    logs = {name: [] for name in variants}
    for name, m in variants.items():  # trace and warm up
        m.fit(inputs, y, batch_size=config["batch_size"], epochs=1, verbose=0)
    for r in range(args.rounds):
        for name, m in variants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            h = m.fit(inputs, y, batch_size=config["batch_size"], epochs=1, verbose=0).history
            samples[name].append(time.perf_counter() - t0)
            cpu_samples[name].append(time.process_time() - c0)
            logs[name].append({k: float(v[0]) for k, v in h.items()})
        print(f"round {r + 1}/{args.rounds}: "
              + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in samples.items()), flush=True)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    cpu_medians = {name: statistics.median(v) for name, v in cpu_samples.items()}
    rc_last = logs["rc"][-1]
    spike_fraction = statistics.mean(entry["mean_spike_time"] for entry in logs["rc"]) / frames
    compute_fraction = statistics.mean(entry["compute_fraction"] for entry in logs["rc"])
    ratios = {"rc_over_eos": medians["rc"] / medians["eos"],
              "rc_no_halting_over_eos": medians["rc_no_halting"] / medians["eos"],
              "compute_over_spike_fraction": compute_fraction / spike_fraction,
              "cpu_rc_over_eos": cpu_medians["rc"] / cpu_medians["eos"],
              "cpu_rc_no_halting_over_eos": cpu_medians["rc_no_halting"] / cpu_medians["eos"],
              "cpu_rc_over_rc_no_halting": cpu_medians["rc"] / cpu_medians["rc_no_halting"]}
    return {
        "benchmark": "kws_epoch_cost", "quick": bool(args.quick),
        "config": dict(config, train_epochs=args.train_epochs, rounds=args.rounds, beta=0.1),
        "data": {"root": str(data_root), "train_clips": int(len(y)), "frames_per_clip": frames,
                 "mean_train_length": float(np.mean(lengths)), "voices": len(info["voices"])},
        "training": {"seconds": round(train_seconds, 1),
                     "history": {k: [float(v) for v in vs] for k, vs in history.items()}},
        "epoch_seconds_samples": samples, "epoch_seconds_median": medians,
        "epoch_cpu_seconds_samples": cpu_samples, "epoch_cpu_seconds_median": cpu_medians,
        "epoch_logs": logs, "rc_last_epoch": rc_last,
        "mean_spike_fraction": spike_fraction, "compute_fraction": compute_fraction,
        "ratios": ratios,
        "targets": {"rc_over_eos_max": 0.6, "rc_over_eos_met": ratios["rc_over_eos"] <= 0.6,
                    "compute_over_spike_max": 1.15,
                    "compute_over_spike_met": ratios["compute_over_spike_fraction"] <= 1.15},
    }


def markdown(result):
    m, r, t = result["epoch_seconds_median"], result["ratios"], result["targets"]
    p = result["provenance"]  # benchmarks/provenance.py
    c, d = result["config"], result["data"]
    logs = result["epoch_logs"]

    def mean_of(name, key):
        return statistics.mean(entry[key] for entry in logs[name])

    lines = [
        "# Keyword epoch cost with per-example halting",
        "",
        f"{d['train_clips']} training clips ({d['voices']} espeak-ng voices, the quick set of "
        f"`bench_kws`), {d['frames_per_clip']} frames a clip (mean length "
        f"{d['mean_train_length']:.1f}), LSTM {c['units']} + Dense 32 + Dense 11, batch "
        f"{c['batch_size']}, θ {c['threshold']:g}; RC β 0.1 trained {c['train_epochs']} epochs "
        f"first, then {c['rounds']} interleaved rounds of one epoch per variant (medians).",
        "",
        "| variant | s / epoch (median) | train spike accuracy | mean frames read | "
        "loop iterations / batch | compute fraction |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("rc", "RC β 0.1, per-example halting"),
                        ("eos", "EOS, same weights and data"),
                        ("rc_no_halting", "RC β 0.1, per_example_halting=False")):
        lines.append(f"| {label} | {m[name]:.2f} | {mean_of(name, 'spike_accuracy'):.3f} | "
                     f"{mean_of(name, 'mean_spike_time'):.1f} | {mean_of(name, 'steps_run'):.1f} | "
                     f"{mean_of(name, 'compute_fraction'):.3f} |")
    lines += [
        "",
        f"RC / EOS epoch = **{r['rc_over_eos']:.3f}** (target <= 0.6: "
        f"{'met' if t['rc_over_eos_met'] else 'NOT met'}); without per-example halting "
        f"{r['rc_no_halting_over_eos']:.3f}."
        + (f" In process CPU time: RC / EOS {r['cpu_rc_over_eos']:.3f}, without per-example "
           f"halting {r['cpu_rc_no_halting_over_eos']:.3f}; RC with / without it "
           f"{r['cpu_rc_over_rc_no_halting']:.3f}." if "cpu_rc_over_eos" in r else ""),
        f"Compute fraction {result['compute_fraction']:.3f} = **"
        f"{r['compute_over_spike_fraction']:.3f}x** the mean spike fraction "
        f"{result['mean_spike_fraction']:.3f} (target <= 1.15x: "
        f"{'met' if t['compute_over_spike_met'] else 'NOT met'}).",
        "",
        f"{p['machine']}, {p['cpus']} CPUs, load average {p['load_average']} (other jobs "
        f"shared the cores), {p['date']}. `{p['command']}`",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, help=f"default {FULL['voices']}")
    parser.add_argument("--units", type=int, help=f"default {FULL['units']}")
    parser.add_argument("--train-epochs", type=int, help=f"default {FULL['train_epochs']}")
    parser.add_argument("--rounds", type=int, help=f"default {FULL['rounds']}")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK} unless given (kws_epoch_cost_quick.json)")
    parser.add_argument("--data", default=None, help="synthesized set (made if missing)")
    parser.add_argument("--work", default="/tmp/rc_keras_kws/features")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = Path(args.out)
    name = "kws_epoch_cost_quick" if args.quick else "kws_epoch_cost"
    result = provenance.write_json(out / f"{name}.json", run(args), __file__, argv)
    (out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
