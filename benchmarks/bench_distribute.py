"""MirroredStrategy scaling of RC training on 2 logical CPU devices (reported, not asserted).

Splits the CPU into 2 logical devices, trains the same RCModel on the same global batches
on one device and under ``tf.distribute.MirroredStrategy``, interleaving timed rounds,
and writes the throughput ratio to ``benchmarks/results/distribute.{json,md}``.

Two logical devices on one CPU share its cores and thread pools: the ratio measures the
overhead of the strategy (replica split, all-reduce) rather than a speed-up; on machines
with several GPUs or hosts the same code runs one replica per device.

    python benchmarks/bench_distribute.py            # full: 7 rounds of 10 steps each
    python benchmarks/bench_distribute.py --quick    # smoke run
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

# Logical devices must exist before TensorFlow initializes its runtime.
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rc_keras as rk  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def build(units, threshold, seed=0):
    keras.utils.set_random_seed(seed)
    model = rk.RCModel(keras.layers.LSTMCell(units), keras.layers.Dense(2, activation="softmax"),
                       threshold=threshold)
    model.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(beta=0.1),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.StepsRun()])
    return model


class _StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive train batch ends: steady-state steps, no fit setup."""

    def __init__(self):
        super().__init__()
        self.durations = []
        self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.durations.append((now - self._last) * 1000)
        self._last = now


def timed_rounds(models, dataset, rounds, steps):
    """Interleaved rounds of ``steps`` train steps per model; ms per step after the first."""
    timers = {name: _StepTimer() for name in models}
    logs = {}
    for name, model in models.items():  # warm-up: tracing and the first steps
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    for _ in range(rounds):
        for name, model in models.items():
            history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                                callbacks=[timers[name]])
            logs[name] = {k: float(v[-1]) for k, v in history.history.items()}
    return {name: timer.durations for name, timer in timers.items()}, logs


def run(quick=False):
    cfg = dict(batch=128, time=40, units=64, threshold=0.9, rounds=7, steps=10)
    if quick:
        cfg.update(batch=32, units=16, rounds=2, steps=3)
    x, y = rk.datasets.two_sequence(cfg["batch"] * cfg["steps"], seed=0)
    x = x[:, :cfg["time"]]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(cfg["batch"]).repeat()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = build(cfg["units"], cfg["threshold"])
    single = build(cfg["units"], cfg["threshold"])
    load_before = os.getloadavg()
    times, logs = timed_rounds({"one device": single, "MirroredStrategy (2 logical CPUs)": mirrored},
                               dataset, cfg["rounds"], cfg["steps"])
    load_after = os.getloadavg()
    rows = []
    for name, values in times.items():
        ms = statistics.median(values)
        rows.append({"setup": name, "replicas": 2 if "Mirrored" in name else 1,
                     "ms_per_step_median": round(ms, 2),
                     "ms_per_step_min": round(min(values), 2),
                     "sequences_per_s": round(cfg["batch"] * 1000 / ms, 1),
                     "steps_run_last": logs[name].get("steps_run")})
    ratio = rows[1]["sequences_per_s"] / rows[0]["sequences_per_s"]
    # On a shared machine the median carries other jobs' load; the best step of each
    # setup is the least disturbed estimate of what the strategy itself costs.
    ratio_best = rows[0]["ms_per_step_min"] / rows[1]["ms_per_step_min"]
    return {"config": cfg, "rows": rows, "throughput_ratio": round(ratio, 3),
            "throughput_ratio_best": round(ratio_best, 3),
            "load_average_before": [round(v, 1) for v in load_before],
            "load_average_after": [round(v, 1) for v in load_after],
            "cpu_count": os.cpu_count(),
            "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                         "keras": keras.__version__},
            "date": time.strftime("%Y-%m-%d")}


def to_markdown(result):
    cfg = result["config"]
    lines = ["| setup | replicas | ms / train step (median) | min | sequences / s |",
             "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['setup']} | {r['replicas']} | {r['ms_per_step_median']} | "
                     f"{r['ms_per_step_min']} | {r['sequences_per_s']} |")
    lines += ["", f"Throughput ratio MirroredStrategy / one device: **{result['throughput_ratio']}** "
              f"from median step times, **{result['throughput_ratio_best']}** from the best step "
              "of each (reported, not a target). Step times exclude `fit` setup. Both logical devices share the same "
              f"{result['cpu_count']} CPU cores, so this is the strategy's overhead, not a speed-up.",
              f"Global batch {cfg['batch']}, T={cfg['time']}, LSTMCell({cfg['units']}), theta "
              f"{cfg['threshold']}, Adam; {cfg['rounds']} interleaved rounds of {cfg['steps']} steps; "
              f"load average before/after {result['load_average_before'][0]} / "
              f"{result['load_average_after'][0]} (shared machine); TF {result['versions']['tensorflow']}, "
              f"Keras {result['versions']['keras']}, {result['date']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, results not written")
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    table = to_markdown(result)
    print(table)
    if not args.quick:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        provenance.write_json(out / "distribute.json", result, __file__, argv)
        # No heading: benchmarks/update_readme.py gives it one in benchmarks/results/README.md.
        (out / "distribute.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
