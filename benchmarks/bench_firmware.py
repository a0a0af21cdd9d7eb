"""Firmware benchmark: the RC loop on emulated Cortex-M4 / Cortex-M55 (QEMU) against TFLM.

Run: ``python benchmarks/bench_firmware.py [--quick] [--keywords DIR] [--targets B:K ...]
[--no-demo] [--no-int16]``. Writes
benchmarks/results/firmware.json and firmware.md. Needs the GNU Arm toolchain, qemu-system-arm
and the TFLM trees of ../shared/tflm (see firmware/README.md).

Instructions are counted by SysTick under QEMU's ``-icount shift=0`` (one instruction per virtual
nanosecond; calibrated on a loop of known length): executed instructions, not cycles. Flash is
code + constants + the .data image, RAM is .data + .bss (the arena is there) + the heap and
stack the linker script reserves; "stack used" is the measured high-water mark.

Models: the demo's step models (spotting, LSTM 32); the paper's keyword network (LSTM 128,
Dense 32 relu, Dense 11; 20 log-mel features, no context) trained briefly on synthesized
keywords, fed frames and, with the on-device front end, 16 kHz audio.
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import numpy as np

from rc_keras import tasks
from rc_keras.export import firmware
from rc_keras.export.interpreters import StepRunner

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEMO = ROOT / "saved_models" / "demo"
TARGETS = [("mps2-an386", "cmsis_nn"), ("mps2-an386", "ref"), ("mps3-an547", "cmsis_nn")]
# CMSIS-NN's fully connected kernel refuses the per-channel int16 weights of 16x8 models
# (TFLM 90b983c2): those run with the reference kernels.
INT16_TARGETS = [("mps2-an386", "ref")]
# The targets for the keyword network (int8, CMSIS-NN, Cortex-M4).
TARGET = {"network_instructions_per_frame": 150_000, "frontend_instructions_per_frame": 50_000,
          "flash_bytes": 256 * 1024, "ram_bytes": 32 * 1024}
MICRO_SPEECH_KB = 18.8   # TFLM's micro_speech model, int8 (cited anchor)


def device_row(name, step, build, clips_q, frames_per_clip, kind="frames", host=None):
    """Runs ``clips_q`` on the board; the row with the agreement against TFLM (Python)."""
    if kind == "frames":
        result, agreement = firmware.compare_with_host(build, step, clips_q)
    else:
        result = firmware.run_firmware(build, clips_q, kind="pcm")
        agreement = audio_agreement(result, host)
    row = {"model": name, "input": kind, **firmware.summary(build, result, frames_per_clip),
           **agreement}
    return row, result


def audio_agreement(result, host):
    pairs = list(zip(result["clips"], host))
    return {"reference": "host pipeline (rc_keras.features + TFLM Python)",
            "class_agreement": float(np.mean([c["label"] == h["label"] for c, h in pairs])),
            "spike_frame_agreement": float(np.mean([c["spike_frame"] == h["spike_frame"]
                                                    for c, h in pairs])),
            "class_and_spike_agreement": float(np.mean([
                (c["label"], c["spike_frame"]) == (h["label"], h["spike_frame"]) for c, h in pairs])),
            "spike_within_1": float(np.mean([abs(c["spike_frame"] - h["spike_frame"]) <= 1
                                             for c, h in pairs]))}


def demo_rows(tmp, clips, targets_run, int16=True):
    x, _ = tasks.get_task("spotting").data("test", clips, seed=11)
    rows = []
    for q in ("int8", "int16x8") if int16 else ("int8",):
        step = DEMO / f"step_{q}.tflite"
        runner = StepRunner(step, runtime="tflm")
        clips_q = [runner.quantize_frames(c) for c in x]
        for board, kernels in targets_run if q == "int8" else INT16_TARGETS:
            build = firmware.build_firmware(step, tmp / f"demo-{q}-{board}-{kernels}", board=board,
                                            tree=firmware.tflm_tree(kernels))
            rows.append(device_row(f"demo spotting LSTM 32 {q}", step, build, clips_q, x.shape[1])[0])
    return rows


def keyword_assets(root, tmp, voices, epochs, test_clips):
    """Trains the paper's keyword network briefly on synthesized keywords; exports int8 and
    int16x8 step models with the front end's parameters; returns them with test audio."""
    import keras

    from rc_keras import features, kws_training, models
    from rc_keras.datasets import keyword_synthesis

    if not (root / "testing_list.txt").exists():
        keyword_synthesis.synthesize_keywords(root, voices=voices, seed=0, noise=0.05,
                                              testing_percentage=30.0)
    # The fixed-point front end: the host computes the device's features exactly.
    params = features.FrontEndParams(context_frames=0, fixed_point=True)
    keras.utils.set_random_seed(0)
    x, n, y = kws_training.load_split_arrays(root, "train", features=params)
    model = models.kws_lstm(11, num_features=20, threshold=0.9)
    kws_training.compile_kws(model, beta=0.2, learning_rate=3e-3)
    model.fit({"inputs": x, "lengths": n}, y, epochs=epochs, batch_size=64, verbose=0)
    steps = {}
    for q in ("int8", "int16x8"):
        steps[q] = tmp / f"kws_step_{q}.tflite"
        from rc_keras import export
        # theta 0.6: the briefly trained network's probabilities rarely reach the paper's 0.9.
        export.export_tflite_step(model, steps[q], q, calibration=x[:500], feature_params=params,
                                  threshold=0.6)
    pcm, _ = firmware.pcm_clips(root, "test", params.clip_samples, test_clips)
    host_features = features.log_mel(pcm.astype(np.float32) / 32768.0, params).numpy()
    float_features = features.log_mel(pcm.astype(np.float32) / 32768.0,
                                      features.FrontEndParams(context_frames=0)).numpy()
    diff = np.abs(host_features - float_features)
    float_error = {"max_abs": float(diff.max()), "p99_abs": float(np.percentile(diff, 99)),
                   "mean_abs": float(diff.mean()), "values": int(diff.size)}
    return steps, pcm, host_features, params, float_error


def keyword_rows(root, tmp, voices, epochs, test_clips, targets_run, int16=True):
    steps, pcm, host_features, params, float_error = keyword_assets(root, tmp, voices, epochs,
                                                                    test_clips)
    if not int16:
        steps.pop("int16x8")
    frames = host_features.shape[1]
    rows, feature_error, ops = [], {}, {}
    for q, step in steps.items():
        runner = StepRunner(step, runtime="tflm")
        clips_q = [runner.quantize_frames(c) for c in host_features]
        host = firmware.host_reference(step, clips_q)
        for board, kernels in targets_run if q == "int8" else INT16_TARGETS:
            tree = firmware.tflm_tree(kernels)
            build = firmware.build_firmware(step, tmp / f"kws-{q}-{board}-{kernels}", board=board,
                                            tree=tree)
            rows.append(device_row(f"keyword LSTM 128 {q}", step, build, clips_q, frames)[0])
            if kernels != "cmsis_nn" or q != "int8":
                continue
            if board == "mps2-an386":
                # Where the instructions go: every op timed (a separate build: timing adds its own).
                profiled = firmware.build_firmware(step, tmp / f"kws-prof-{board}", board=board,
                                                   tree=tree, profile=True)
                result = firmware.run_firmware(profiled, clips_q[:5])
                ops[board] = {op: round(v["instructions_per_frame"])
                              for op, v in result["ops"].items()}
            # LOGISTIC / TANH as table lookups (rc_keras.export.lut_activations): compared with
            # the original model's outputs in the TFLM Python interpreter.
            build = firmware.build_firmware(step, tmp / f"kws-lut-{board}", board=board, tree=tree,
                                            lut=True)
            rows.append(device_row(f"keyword LSTM 128 {q} LUT", step, build, clips_q, frames)[0])
            if board == "mps2-an386":
                # The front end's stages, timed (a separate build).
                profiled = firmware.build_firmware(step, tmp / f"kws-audio-prof-{board}", board=board,
                                                   tree=tree, frontend=True, lut=True, profile=True)
                result = firmware.run_firmware(profiled, list(pcm[:5]), kind="pcm")
                ops[f"{board} front end"] = {op: round(v["instructions_per_frame"])
                                             for op, v in result["ops"].items() if op.startswith("fe_")}
            # Audio in, keyword out: the front end on the device (LUT activations); arena,
            # stack and heap sized from a first run (firmware.build_fitted).
            build = firmware.build_fitted(step, tmp / f"kws-audio-{board}", list(pcm[:3]),
                                          kind="pcm", board=board, tree=tree, frontend=True,
                                          lut=True)
            row, result = device_row(f"keyword LSTM 128 {q} LUT", step, build, list(pcm), frames,
                                     kind="pcm", host=host)
            rows.append(row)
            feature_error[f"{q} {board}"] = frontend_error(result, host_features)
    feature_error["host fixed point vs float"] = float_error
    return rows, feature_error, {"voices": voices, "epochs": epochs, "test_clips": len(pcm),
                                 "frames_per_clip": frames, "threshold": 0.6,
                                 "instructions_per_op_per_frame": ops}


def frontend_error(result, host_features):
    """The device features (float32 bits) against the host's fixed-point front end."""
    errors, equal = [], []
    for row in result.get("features", []):
        host = host_features[row["clip"], row["frame"]]
        errors.append(np.abs(np.asarray(row["values"]) - host))
        equal.append(np.asarray(row["values"]) == host)
    errors = np.concatenate(errors) if errors else np.zeros(1)
    return {"max_abs": float(errors.max()), "mean_abs": float(errors.mean()),
            "p99_abs": float(np.percentile(errors, 99)), "values": int(errors.size),
            "bit_equal_share": float(np.concatenate(equal).mean()) if equal else 0.0}


def markdown(results):
    lines = ["# Firmware on emulated Cortex-M (QEMU, TFLM)", "", f"Command: `{results['command']}`", "",
             f"Instructions counted with SysTick under `-icount shift=0`; {results['note']}", "",
             "| model | input | board | kernels | flash KB | RAM KB | arena used B | stack used B "
             "| net instr/frame | front end instr/frame | mean frames run | instr/clip RC "
             "| instr/clip whole | class agree % | spike agree % | outputs exact % | run |",
             "|" + "---|" * 17]
    for r in results["rows"]:
        lines.append("| " + " | ".join([
            r["model"], r["input"], r["board"], r["kernels"], f"{r['flash_bytes'] / 1024:.1f}",
            f"{r['ram_bytes'] / 1024:.1f}", str(r["arena_used_bytes"]), str(r["stack_used_bytes"]),
            f"{r['network_instructions_per_frame']:,.0f}",
            f"{r['frontend_instructions_per_frame']:,.0f}", f"{r['mean_frames_run']:.1f}",
            f"{r['instructions_per_clip_rc']:,.0f}", f"{r['instructions_per_clip_whole']:,.0f}",
            f"{100 * r['class_agreement']:.1f}", f"{100 * r['spike_frame_agreement']:.1f}",
            f"{100 * r['outputs_bit_exact']:.1f}" if "outputs_bit_exact" in r else "-",
            r.get("run", "-")]) + " |")
    if results.get("targets"):
        lines += ["", "Targets (keyword network, int8, CMSIS-NN, Cortex-M4):", "",
                  "| figure | measured | target | met |", "|---|---|---|---|"]
        for t in results["targets"]:
            bound = ">=" if t.get("higher_is_better") else "<="
            lines.append(f"| {t['figure']} | {t['measured']:,.1f} | {bound} {t['target']:,} | "
                         f"{'yes' if t['met'] else 'NOT met'} |")
    for board, ops in results["keyword"].get("instructions_per_op_per_frame", {}).items():
        lines += ["", f"Keyword network int8 (CMSIS-NN, {board}): instructions per frame by op type "
                  "or front-end stage (timed builds):", "", "| op | instructions / frame |", "|---|---|"]
        lines += [f"| {op} | {n:,} |" for op, n in sorted(ops.items(), key=lambda kv: -kv[1])]
    if results.get("frontend_error"):
        lines += ["", "Front end features (log-mel units): the device against the host's fixed-point "
                  "front end (`FrontEndParams(fixed_point=True)`), and that against the float one:",
                  "", "| comparison | max abs | p99 abs | mean abs | values | bit-equal % |",
                  "|---|---|---|---|---|---|"]
        for key, e in results["frontend_error"].items():
            share = f"{100 * e['bit_equal_share']:.1f}" if "bit_equal_share" in e else "-"
            lines.append(f"| {key} | {e['max_abs']:.4f} | {e['p99_abs']:.4f} | {e['mean_abs']:.5f} "
                         f"| {e['values']} | {share} |")
    return "\n".join(lines) + "\n"


def carried_rows(rows):
    """Rows of the previous results file for (model, input, board, kernels) this run did not
    measure (a run restricted with --targets / --no-demo / --no-int16), marked as such."""
    path = RESULTS / "firmware.json"
    if not path.exists():
        return []
    previous = json.loads(path.read_text())
    done = {(r["model"], r["input"], r["board"], r["kernels"]) for r in rows}
    carried = []
    for row in previous.get("rows", []):
        if (row["model"], row["input"], row["board"], row["kernels"]) not in done:
            if row.get("run", "this run") == "this run":
                row["run"] = "previous: " + previous.get("command", "an earlier run")
            carried.append(row)
    return carried


def targets(rows):
    def pick(model, kind):
        return next(r for r in rows if r["model"] == model and r["input"] == kind
                    and r["board"] == "mps2-an386" and r["kernels"] == "cmsis_nn")

    plain, lut = pick("keyword LSTM 128 int8", "frames"), pick("keyword LSTM 128 int8 LUT", "frames")
    audio = pick("keyword LSTM 128 int8 LUT", "pcm")
    checks = [(plain, "network_instructions_per_frame", "network instructions / frame (TFLM's LOGISTIC, TANH)"),
              (lut, "network_instructions_per_frame",
               "network instructions / frame (LUT activations, identity clips dropped)"),
              (audio, "frontend_instructions_per_frame", "front end instructions / frame"),
              (audio, "flash_bytes", "flash bytes (audio-in firmware)"),
              (audio, "ram_bytes", "RAM bytes (audio-in firmware: arena as used, stack high water "
                                   "+ 256 B, heap as used)")]
    out = [{"figure": figure, "measured": r[key], "target": TARGET[key], "met": r[key] <= TARGET[key]}
           for r, key, figure in checks]
    out.append({"figure": "audio in: class and spike frame as the host pipeline (%)",
                "measured": 100 * audio["class_and_spike_agreement"], "target": 99,
                "met": audio["class_and_spike_agreement"] >= 0.99, "higher_is_better": True})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer clips, a smaller keyword set")
    parser.add_argument("--keywords", type=pathlib.Path,
                        help="synthesized keyword folder (made here when missing)")
    parser.add_argument("--targets", nargs="+", default=[f"{b}:{k}" for b, k in TARGETS],
                        help="BOARD:KERNELS pairs for the int8 models (default: all three)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's models")
    parser.add_argument("--no-int16", action="store_true", help="skip the int16x8 models")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS,
                        help="results folder (default: benchmarks/results)")
    args = parser.parse_args()
    targets_run = [tuple(t.split(":", 1)) for t in args.targets]
    for board, kernels in targets_run:
        firmware.check_board(board)
        if kernels not in firmware.KERNELS:
            raise SystemExit(f"--targets: kernels must be one of {firmware.KERNELS}; received {kernels!r}")
    if firmware.missing_tools():
        raise SystemExit(f"needs {', '.join(firmware.missing_tools())}")
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        tmp = pathlib.Path(folder)
        rows = [] if args.no_demo else demo_rows(tmp, 50 if args.quick else 100, targets_run,
                                                 not args.no_int16)
        root = args.keywords or tmp / "keywords"
        kw_rows, fe_error, kw_info = keyword_rows(root, tmp, 12 if args.quick else 40,
                                                   2 if args.quick else 8,
                                                   60 if args.quick else 100, targets_run,
                                                   not args.no_int16)
        rows += kw_rows
    for row in rows:
        row["run"] = "this run"
    rows += carried_rows(rows)
    results = {"command": " ".join(["python", *sys.argv]),
               "note": "one instruction per virtual ns; QEMU has no cycle model.",
               "host": platform.machine(), "rows": rows, "keyword": kw_info,
               "frontend_error": fe_error, "targets": targets(rows),
               "micro_speech_model_kb": MICRO_SPEECH_KB,
               "seconds": round(time.time() - started, 1),
               "load_average_1min": round(os.getloadavg()[0], 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    provenance.write_json(args.out / "firmware.json", results, __file__)
    (args.out / "firmware.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
