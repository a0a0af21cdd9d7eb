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
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"voices": 60, "unknown_per_voice": 4, "noise": 0.1, "epochs": 16, "batch_size": 64,
        "learning_rate": 3e-3, "threshold": 0.9, "units": 128, "grace_epochs": 3,
        "runs": [["rc", 0.1], ["eos", 0.2]]}
QUICK = dict(FULL, voices=16, epochs=2, units=16)


def make_data(root, config):
    """Synthesizes the keyword set unless ``root`` already holds one made with ``config``."""
    from rc_keras.datasets import synthesize_keywords  # noqa: PLC0415

    root = Path(root)
    info_path = root / "synthesis.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if len(info["voices"]) == config["voices"]:
            return info, 0.0
        raise SystemExit(f"{root} holds a different synthesized set; pass another --work.")
    start = time.perf_counter()
    info = synthesize_keywords(root, voices=config["voices"], seed=0, noise=config["noise"],
                               workers=2, engines=("espeak-ng",),
                               unknown_per_voice=config["unknown_per_voice"], real_unknown=0)
    return info, time.perf_counter() - start


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", default="/tmp/rc_keras_streaming")
    parser.add_argument("--models-only", action="store_true",
                        help="stop after training (stages 1-2)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    args = parser.parse_args(argv)
    config = dict(QUICK if args.quick else FULL)
    if args.epochs:
        config["epochs"] = args.epochs
    work = Path(args.work)
    info, synth_seconds = make_data(work / "data", config)
    print(f"data: {info['num_clips']} clips {info['splits']} ({synth_seconds:.0f} s)", flush=True)
    summaries = train_models(work / "data", work, config)
    if args.models_only:
        return summaries
    raise SystemExit("evaluation stage not written yet")


if __name__ == "__main__":
    main()
