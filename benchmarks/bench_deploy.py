"""Deployment benchmark: agreement of the exported models, sizes, TFLM arena, latency, MACs.

Run: ``python benchmarks/bench_deploy.py [--quick]``. Writes benchmarks/results/deploy.json
and deploy.md. Latencies are host (x86 CPU) figures, not microcontroller figures.
"""

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import numpy as np

import rc_keras as rk
from rc_keras import export
from rc_keras.export.interpreters import StepRunner

RESULTS = pathlib.Path(__file__).parent / "results"
QUANTIZATIONS = ("float32", "int8", "int16x8", "int8-qat")
# Quantization-aware fine-tuning of the keyword network's int8-exact twin.
KEYWORD_QAT_EPOCHS, KEYWORD_QAT_LR = 5, 1e-3


def export_steps(model, quantizations, calibration, tmp, prefix):
    """Writes ``<prefix>_step_<q>.tflite`` for each quantization; returns their paths."""
    paths = []
    for q in quantizations:
        path = tmp / f"{prefix}_step_{q}.tflite"
        export.export_tflite_step(model, path, q, calibration=None if q == "float32" else calibration)
        paths.append(path)
    return paths


def twin_agreement(model, calibration, fine_tune, x, y, tmp, name, lengths=None):
    """Agreement of the int8-exact twin (`rc_keras.quantization.quantize_aware`) with its
    int8 and float32 step models in LiteRT (with and without its XNNPACK delegate) and
    TFLM; ``fine_tune(twin)`` trains it first (or None)."""
    from rc_keras.export.bundle import verify_agreement

    twin = rk.quantization.quantize_aware(model, calibration)
    if fine_tune is not None:
        fine_tune(twin)
    paths = export_steps(twin, ("float32", "int8"), calibration, tmp, f"{name}_qat")
    return verify_agreement(twin, x, y, step_models=paths, lengths=lengths,
                            runtimes=("litert", "litert-builtin", "tflm"))


def train_task_model(epochs, n_train, seed=0):
    """An LSTM RC model trained on the 2-sequence problem (T=40, 1 feature)."""
    keras.utils.set_random_seed(seed)
    x, y = rk.datasets.two_sequence(n_train, seed=seed)
    model = rk.RCModel(keras.layers.LSTMCell(64),
                       keras.Sequential([keras.layers.Dense(2, activation="softmax")]),
                       threshold=0.9)
    model.compile(keras.optimizers.Adam(3e-3), rk.ConfidencePenalty(0.1))
    model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
    return model, x, y


def keyword_model(features, seed=0):
    """The paper's keyword network: LSTM 128, Dense 32 relu, Dense 12 softmax (briefly trained
    on random frames: enough for size and arena figures)."""
    keras.utils.set_random_seed(seed)
    model = rk.RCModel(keras.layers.LSTMCell(128),
                       keras.Sequential([keras.layers.Dense(32, activation="relu"),
                                         keras.layers.Dense(12, activation="softmax")]),
                       threshold=0.95)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 20, features)).astype(np.float32)
    y = rng.integers(0, 12, size=256)
    model.compile("adam", rk.ConfidencePenalty(0.1))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model, x


def keyword_agreement(root, epochs, tmp, voices=120, seed=0):
    """Trains the paper's keyword network on synthesized keywords, exports its step model
    (float32, int8, int16x8) and compares exit class and step with Keras on the held-out
    voices (validation + test splits), clips ending at their true length."""
    from rc_keras import kws_training, models
    from rc_keras.datasets import synthesize_keywords
    from rc_keras.datasets.keyword_synthesis import CLOSED_ESPEAK_SET
    from rc_keras.export.bundle import verify_agreement
    from rc_keras.features import FrontEndParams

    root = pathlib.Path(root)
    if not (root / "testing_list.txt").exists():
        synthesize_keywords(root, voices=voices, seed=0, noise=0.05, **CLOSED_ESPEAK_SET)
    # A folder made elsewhere (--keywords) may hold another number of voices: report its own.
    info_path = root / "synthesis.json"
    if info_path.is_file():
        voices = len(json.loads(info_path.read_text())["voices"])
    params = FrontEndParams(context_frames=0)
    x, n, y = kws_training.load_split_arrays(root, "train", features=params)
    held = [kws_training.load_split_arrays(root, split, features=params)
            for split in ("validation", "test")]
    xh, nh, yh = (np.concatenate(parts) for parts in zip(*held))
    keras.utils.set_random_seed(seed)
    model = models.kws_lstm(11, num_features=20, threshold=0.9)
    kws_training.compile_kws(model, beta=0.2, learning_rate=3e-3)
    started = time.time()
    model.fit({"inputs": x, "lengths": n}, y, epochs=epochs, batch_size=64, shuffle=True,
              verbose=0)
    train_s = time.time() - started
    paths = export_steps(model, ("float32", "int8", "int16x8"), x, tmp, "kws")
    rows = verify_agreement(model, xh, yh, step_models=paths, lengths=nh)
    qat_epochs = 2 if epochs < 30 else KEYWORD_QAT_EPOCHS

    def fine_tune(twin):
        # Same loss as the float model; a lower learning rate: it starts trained.
        kws_training.compile_kws(twin, beta=0.2, learning_rate=KEYWORD_QAT_LR)
        keras.utils.set_random_seed(seed + 1)
        twin.fit({"inputs": x, "lengths": n}, y, epochs=qat_epochs, batch_size=64, shuffle=True,
                 verbose=0)

    return {"name": f"synthesized keywords ({voices} voices, paper11, 20 log-mel bands, "
                    "98 frames)", "cell": "kws_lstm (LSTM 128, Dense 32 relu, Dense 11)",
            "epochs": epochs, "train_clips": int(len(y)), "train_seconds": train_s,
            "threshold": model.threshold, "test_sequences": int(len(yh)), "agreement": rows,
            "qat_epochs": qat_epochs,
            "qat0_agreement": twin_agreement(model, x, None, xh, yh, tmp, "kws0", nh),
            "qat_agreement": twin_agreement(model, x, fine_tune, xh, yh, tmp, "kws", nh)}


def keyword_sizes(features, calls, tmp):
    """File size, TFLM arena, MACs and host latency of the keyword network's step models."""
    kw_model, kw_x = keyword_model(features)
    kw = export.export_bundle(kw_model, tmp / f"kw{features}", int8=True, int16x8=True,
                              calibration=kw_x[:128])
    twin = rk.quantization.quantize_aware(kw_model, kw_x[:128])
    qat = export.export_bundle(twin, tmp / f"kw{features}_qat", int8=True, calibration=kw_x[:128])
    kw["models"]["int8-qat"] = qat["models"]["int8"]
    entry = {"features_per_frame": features}
    for q in QUANTIZATIONS:
        folder, name = (f"kw{features}_qat", "int8") if q == "int8-qat" else (f"kw{features}", q)
        path = tmp / folder / f"step_{name}.tflite"
        info = kw["models"][q]
        # The bundle's report already holds size, arena and MACs of each step model.
        entry[q] = {"kb": info["kb"], "bytes": info["bytes"], "tflm_arena": info["tflm_arena"],
                    "macs_per_frame": info["macs_per_frame"],
                    "latency": {rt: latency(path, rt, calls, kw_x[0, 0])
                                for rt in ("litert", "tflm")}}
    return entry


def latency(path, runtime, calls, frame):
    runner = StepRunner(path, runtime=runtime)
    q = runner.quantize_frames(frame)
    for _ in range(50):
        runner.invoke(q)
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        runner.invoke(q)
        times.append(time.perf_counter_ns() - start)
    invoke_only = []
    interp = runner._interp
    for _ in range(calls):
        start = time.perf_counter_ns()
        interp.invoke()
        invoke_only.append(time.perf_counter_ns() - start)
    return {"median_us_step": float(np.median(times)) / 1e3,
            "median_us_invoke": float(np.median(invoke_only)) / 1e3, "calls": calls}


def main():
    global RESULTS  # noqa: PLW0603 - `write` and --sizes-only read the results folder (--out)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and sequences")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--keywords", default="/tmp/rc_keras_bench_keywords_120",
                        help="synthesized keyword folder (made on the first run)")
    parser.add_argument("--sizes-only", action="store_true",
                        help="redo only the keyword network's size/arena/latency table, "
                             "keeping the agreement results of deploy.json")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS,
                        help="results folder (default: benchmarks/results)")
    args = parser.parse_args()
    RESULTS = args.out
    if args.sizes_only:
        results = json.loads((RESULTS / "deploy.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            for features in (20, 420):
                results["keyword"][str(features)] = keyword_sizes(features, args.calls,
                                                                  pathlib.Path(tmp))
        results["load_average_1min"] = round(os.getloadavg()[0], 2)
        write(results)
        return
    epochs, n_train, n_test = (3, 4096, 200) if args.quick else (12, 16384, 1000)
    results = {"host": platform.processor() or platform.machine(),
               "note": "latencies are host (x86 CPU, Python interpreters) figures, not board figures",
               "keyword": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        started = time.time()
        model, x_train, y_train = train_task_model(epochs, n_train)
        train_s = time.time() - started
        print(f"trained in {train_s:.0f} s", flush=True)
        x_test, y_test = rk.datasets.two_sequence(n_test, seed=99)
        report = export.export_bundle(model, tmp / "task", int8=True, int16x8=True,
                                      calibration=x_train[:512], verify=True,
                                      verify_sequences=(x_test, y_test))
        print(f"task bundle done at {time.time() - started:.0f} s", flush=True)
        qat_epochs = 1 if args.quick else 2

        def fine_tune(twin):
            twin.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(0.1))
            twin.fit(x_train, y_train, epochs=qat_epochs, batch_size=128, verbose=0)

        results["task"] = {"name": "two_sequence (T=40, 1 feature)", "cell": "LSTMCell(64)",
                           "epochs": epochs, "train_sequences": n_train, "train_seconds": train_s,
                           "threshold": model.threshold, "test_sequences": n_test,
                           "agreement": report["verify"]["rows"],
                           "models": report["models"], "qat_epochs": qat_epochs,
                           "qat_agreement": twin_agreement(model, x_train[:512], fine_tune,
                                                           x_test, y_test, tmp, "task")}
        results["keyword_agreement"] = keyword_agreement(args.keywords, 5 if args.quick else 30,
                                                         tmp)
        print(f"keyword agreement done at {time.time() - started:.0f} s", flush=True)
        for features in (20, 420):
            results["keyword"][str(features)] = keyword_sizes(features, args.calls, tmp)
    results["versions"] = report["versions"]
    # The machine is shared: the load average says how busy it was while latencies ran.
    results["load_average_1min"] = round(os.getloadavg()[0], 2)
    write(results)


def write(results):
    RESULTS.mkdir(parents=True, exist_ok=True)
    provenance.write_json(RESULTS / "deploy.json", results, __file__)
    (RESULTS / "deploy.md").write_text(markdown(results))
    print(markdown(results))


def int8_verdict(rows):
    """One line: the issue's int8 targets (class >= 99%, step within +-1 >= 99%) per row."""
    parts = []
    for r in rows:
        if "int8" in r["model"] or "int16x8" in r["model"]:
            met = r["class_agreement"] >= 0.99 and r["step_within_1"] >= 0.99
            parts.append(f"{r['model']} in {r['runtime']}: {'met' if met else '**not met**'}")
    return "Quantized targets (exit class >= 99% and exit step within +-1 >= 99%): " + \
        "; ".join(parts) + "."


def markdown(results):
    task = results["task"]
    lines = ["# Deployment benchmark", "",
             f"Agreement with Keras on {task['test_sequences']} held-out sequences of "
             f"{task['name']}, {task['cell']} trained {task['epochs']} epochs (RC, beta 0.1), "
             f"theta {task['threshold']}:", "",
             export.format_agreement_table(task["agreement"]), "",
             int8_verdict(task["agreement"]), ""]
    if "qat_agreement" in task:
        lines += [f"Its int8-exact twin (`rc_keras.quantization.quantize_aware`, calibrated on "
                  f"the same 512 training sequences, fine-tuned {task['qat_epochs']} epochs; the "
                  "twin is the Keras model the rows compare with). `litert-builtin` is LiteRT "
                  "with its own kernels instead of the default XNNPACK delegate, whose int8 MUL "
                  "rounds about 1% of products differently from the TFLite reference kernels "
                  "that TFLM also follows:", "",
                  export.format_agreement_table(task["qat_agreement"]), "",
                  int8_verdict(task["qat_agreement"]), ""]
    kw = results.get("keyword_agreement")
    if kw:
        lines += [f"Agreement with Keras on {kw['test_sequences']} held-out clips (voices never "
                  f"seen in training) of {kw['name']}, {kw['cell']} trained {kw['epochs']} epochs "
                  f"(RC, beta 0.2), theta {kw['threshold']}; clips end at their true length:", "",
                  export.format_agreement_table(kw["agreement"]), "",
                  int8_verdict(kw["agreement"]), ""]
        if "qat_agreement" in kw:
            lines += ["Its int8-exact twin (`rc_keras.quantization.quantize_aware`, calibrated on "
                      "the training clips) as built, before any training:", "",
                      export.format_agreement_table(kw["qat0_agreement"]), "",
                      int8_verdict(kw["qat0_agreement"]), "",
                      f"The twin after {kw['qat_epochs']} epochs of quantization-aware fine-tuning "
                      f"(same loss, learning rate {KEYWORD_QAT_LR}); the Keras row is the twin, "
                      "the model that is deployed:", "",
                      export.format_agreement_table(kw["qat_agreement"]), "",
                      int8_verdict(kw["qat_agreement"]), ""]
    lines += [
             "Keyword network (LSTM 128, Dense 32 relu, Dense 12 softmax), per-frame step model. "
             f"Latency: median of the calls shown, **host figures** ({results['host']}, Python "
             "interpreters; `step` includes setting inputs and reading outputs, `invoke` is "
             "Invoke alone); they do not predict microcontroller speed.", "",
             "`int8-qat` is the int8 model of the quantization-aware twin.", "",
             "| features/frame | model | size KB | TFLM arena (min / recorded) B | MACs/frame | "
             "LiteRT step us | LiteRT invoke us | TFLM step us | TFLM invoke us |",
             "|---|---|---|---|---|---|---|---|---|"]
    for features, entry in results["keyword"].items():
        for q in QUANTIZATIONS:
            if q not in entry:
                continue
            e = entry[q]
            lat = e["latency"]
            lines.append(
                f"| {features} | {q} | {e['kb']} | {e['tflm_arena']['min_arena_bytes']} / "
                f"{e['tflm_arena']['used_bytes']} | {e['macs_per_frame']['total']} | "
                f"{lat['litert']['median_us_step']:.1f} | {lat['litert']['median_us_invoke']:.1f} | "
                f"{lat['tflm']['median_us_step']:.1f} | {lat['tflm']['median_us_invoke']:.1f} |")
    lines += ["", f"Versions: {json.dumps(results['versions'])}. Load average (1 min) at the "
              f"end of the run: {results.get('load_average_1min', 'n/a')} on 2 cores.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
