"""Feature pipeline throughput: Speech Commands loader on a synthesized keyword set.

Synthesizes a keyword set in the Speech Commands layout (espeak-ng + sox), then times
`rc_keras.datasets.speech_commands` with the paper's front end (16 kHz, 25 ms Hamming
window, 10 ms stride, 20 log-mel bands, 10 context frames each side: 98 x 420 per clip):

  * first epoch: decode + log-mel + cache fill (what happens once per run);
  * cached epochs: what every later training epoch costs (shuffle, batch 64, context
    stacking after the cache), median over epochs.

Target: >= 1000 clips/s after caching on 2 cores, so training is never input-bound.

    python benchmarks/bench_features.py [--voices 60] [--epochs 5] [--quick]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import tensorflow as tf

from rc_keras import features
from rc_keras.datasets import speech_commands, synthesize_keywords
from rc_keras.datasets.keyword_synthesis import CLOSED_ESPEAK_SET, DEFAULT_WORDS

TARGET = 1000.0  # clips/s after caching


def _epoch(ds):
    """(clips, wall seconds, process CPU seconds of all threads) of one pass."""
    start, cpu = time.perf_counter(), time.process_time()
    clips = 0
    for x, _ in ds:
        clips += int(x["lengths"].shape[0])
    return clips, time.perf_counter() - start, time.process_time() - cpu


def time_pipeline(root, split, params, epochs, batch_size, log):
    """Times one loader configuration; returns a dict of clips/s figures."""
    start = time.perf_counter()
    ds = speech_commands(root, split, features=params, batch_size=batch_size, shuffle=True,
                         seed=0)
    build = time.perf_counter() - start
    clips, first, _ = _epoch(ds)
    runs = [_epoch(ds) for _ in range(epochs)]
    cached = [r[1] for r in runs]
    median = statistics.median(cached)
    cpu = statistics.median(r[2] for r in runs)
    row = {
        "context_frames": params.context_frames,
        "feature_shape": [params.frames_per_clip, params.feature_size],
        "clips": clips,
        "batch_size": batch_size,
        "build_seconds": round(build, 3),
        "first_epoch_seconds": round(first, 3),
        "first_epoch_clips_per_s": round(clips / first, 1),
        "cached_epoch_seconds": [round(s, 4) for s in cached],
        "cached_clips_per_s": round(clips / median, 1),
        # The machine is shared: CPU time says what the pipeline itself costs.
        "cached_cpu_seconds": round(cpu, 4),
        "cached_clips_per_cpu_s": round(clips / max(cpu, 1e-9), 1),
    }
    log(f"context {params.context_frames}: first epoch {row['first_epoch_clips_per_s']:.0f} "
        f"clips/s, cached {row['cached_clips_per_s']:.0f} clips/s, "
        f"{row['cached_clips_per_cpu_s']:.0f} clips per CPU-second ({clips} clips)")
    return row


def run(voices=60, epochs=5, batch_size=64, data_dir=None, log=print):
    """Synthesizes the data (unless present) and measures the pipelines."""
    keras.utils.set_random_seed(0)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_features_")
        data_dir = tmp.name
    root = Path(data_dir) / "kws"
    if (root / "synthesis.json").is_file():
        synthesis = json.loads((root / "synthesis.json").read_text())
    else:
        synthesis = synthesize_keywords(root, words=DEFAULT_WORDS, voices=voices, seed=0,
                                        noise=0.05, workers=os.cpu_count(),
                                        **CLOSED_ESPEAK_SET)
    log(f"data: {synthesis['num_clips']} clips, {len(synthesis['voices'])} voices x "
        f"{len(synthesis['words'])} words, synthesized in {synthesis['seconds']} s")
    rows = [time_pipeline(root, "train", features.FrontEndParams(), epochs, batch_size, log),
            time_pipeline(root, "train", features.FrontEndParams(context_frames=0), epochs,
                          batch_size, log)]
    paper = rows[0]["cached_clips_per_s"]
    result = {
        "benchmark": "features",
        "target_clips_per_s": TARGET,
        "paper_front_end_cached_clips_per_s": paper,
        "target_met": paper >= TARGET,
        "synthesis": {"num_clips": synthesis["num_clips"], "voices": len(synthesis["voices"]),
                      "words": len(synthesis["words"]), "seconds": synthesis["seconds"],
                      "clips_per_s": round(synthesis["num_clips"] / synthesis["seconds"], 1)},
        "rows": rows,
        "epochs": epochs,
        "environment": {
            "date": datetime.date.today().isoformat(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()]},
    }
    if tmp is not None:
        tmp.cleanup()
    return result


def to_markdown(result):
    lines = ["# Feature pipeline throughput", "",
             "| front end | features / clip | first epoch (decode + log-mel), clips/s | "
             "cached epochs, clips/s (median) | cached, clips per CPU-second |",
             "|---|---|---|---|---|"]
    for row in result["rows"]:
        name = (f"log-mel 20 + context {row['context_frames']}" if row["context_frames"]
                else "log-mel 20, no context")
        lines.append(f"| {name} | {row['feature_shape'][0]} x {row['feature_shape'][1]} | "
                     f"{row['first_epoch_clips_per_s']:.0f} | {row['cached_clips_per_s']:.0f} | "
                     f"{row['cached_clips_per_cpu_s']:.0f} |")
    env, syn = result["environment"], result["synthesis"]
    verdict = "met" if result["target_met"] else "NOT met"
    cpu_rate = result["rows"][0]["cached_clips_per_cpu_s"]
    lines += ["", f"Paper front end after caching: **{result['paper_front_end_cached_clips_per_s']:.0f}"
              f" clips/s** wall clock (target >= {result['target_clips_per_s']:.0f}: {verdict} in "
              f"this run). Its CPU cost is {cpu_rate:.0f} clips per CPU-second, i.e. "
              f"{1000 / cpu_rate:.2f} CPU-seconds per 1000 clips, so on 2 cores that nothing else "
              "uses 1000 clips/s should need a fraction of one core (an inference, not measured "
              "here); the wall-clock figure is bounded by the other processes on the machine "
              "(load average below).",
              f"Train split of a synthesized set ({syn['num_clips']} clips: {syn['voices']} "
              f"espeak-ng voices x {syn['words']} words; synthesis {syn['clips_per_s']:.0f} clips/s), "
              f"shuffled, batch {result['rows'][0]['batch_size']}, {result['epochs']} cached epochs; "
              f"TF {env['tensorflow']}, Keras {env['keras']}, {env['date']}, {env['cpus']}-core CPU "
              f"(load average {env['load_average'][0]} during the run: the machine was shared).", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", help="keep the synthesized set here (reused if present)")
    parser.add_argument("--quick", action="store_true", help="8 voices, 2 epochs (smoke run)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    voices, epochs = (8, 2) if args.quick else (args.voices, args.epochs)
    result = run(voices, epochs, args.batch_size, args.data_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    provenance.write_json(out / "features.json", result, __file__, argv)
    (out / "features.md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
