"""Keyword transfer to voices never heard: leave-one-engine-out, real unknown words, ablation.

A keyword model trained on synthesized speech must work on voices it has never heard
(the first release scored 95% on held-out espeak-ng voices but 50% on a flite voice).
This benchmark measures that on the robust recipe (`rc-keras make-keywords` defaults:
every installed TTS engine, open unknown words, real recorded unknown words; and
`rc_keras.kws_training` with augmentation and causal normalization):

1. Leave-one-engine-out (LOEO): for every engine E, train on the other engines' voices
   (their train split; their validation split for the checkpoint and theta) and test on
   every clip E spoke. RC (beta 0.2) and EOS (beta 0), with each causal normalization.
   theta is chosen on validation: the most accurate threshold whose mean spike time is at
   most 60% of the clip there; the test accuracy is read at that theta.
2. Real recorded unknown words (Debian ktuberling-data) of languages held out of
   training: share classified "unknown" by each model.
3. RC vs. EOS frontiers on the synthesized test split (all engines, voices held out).
4. Ablation, with E = flite held out: without augmentation, without VTLP, LSTM 64
   instead of 128, a sixth of the clips (a third of the voices, one take each), without
   the open unknown class (closed words only), with one engine (espeak-ng) only.

Sizes are set for a shared 2-core machine (see CONFIG; stated in the results). Runs are
cached in --work (one folder each), so several processes with disjoint --only lists can
train in parallel and a last call without --only collects them all.

    python benchmarks/bench_kws_transfer.py [--quick] [--data DIR] [--work DIR] [--only NAMES]
        [--set KEY=JSON ...] [--workers N]
"""

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995,
              0.998, 0.999]
CONFIG = {"voices_per_engine": {"espeak-ng": 80, "flite": 40, "festival": 24},
          "clips_per_voice": 2, "unknown_per_voice": 6, "real_unknown": 600, "units": 128,
          "hidden": 32, "epochs": 12, "batch_size": 64, "learning_rate": 3e-3,
          "threshold": 0.9, "beta_rc": 0.2, "beta_eos": 0.0, "augment_copies": 1,
          "grace_epochs": 12, "context_frames": 0, "unknown_keep": 0.3, "vtlp_probability": 0.5}
QUICK = dict(CONFIG, voices_per_engine={"espeak-ng": 3, "flite": 3, "festival": 3},
             clips_per_voice=1, unknown_per_voice=2, real_unknown=60, units=8, epochs=1,
             augment_copies=1, grace_epochs=1)
MAX_FRACTION = 0.6   # RC answers within 60% of the clip
TARGET_LOEO = 0.90
TARGET_REAL_UNKNOWN = 0.90
ABLATION_ENGINE = "flite"


# ---------------------------------------------------------------------- data
def make_data(root, config):
    from rc_keras.datasets import synthesize_keywords  # noqa: PLC0415
    from rc_keras.datasets.keyword_synthesis import voice_catalog  # noqa: PLC0415

    root = Path(root)
    if (root / "synthesis.json").is_file():
        return json.loads((root / "synthesis.json").read_text()), 0.0
    start = time.perf_counter()
    # Voices per engine set explicitly: festival costs ~20x espeak-ng per clip.
    voices = [v for engine, count in config["voices_per_engine"].items()
              for v in voice_catalog(count, 0, [engine])]
    info = synthesize_keywords(root, voices=voices, clips_per_voice=config["clips_per_voice"],
                               unknown_per_voice=config["unknown_per_voice"],
                               real_unknown=config["real_unknown"], seed=0, workers=2)
    return info, time.perf_counter() - start


def load_waves(root, info):
    """Clean waveforms of every split, with labels, sources and words."""
    from rc_keras.datasets import speech_commands  # noqa: PLC0415
    from rc_keras.datasets.speech_commands import _label_index, list_split  # noqa: PLC0415

    out = {}
    for split in ("train", "validation", "test"):
        paths = list_split(root, split)
        waves, lengths = [], []
        for inputs, _ in speech_commands(root, split, features=None).batch(512) \
                .as_numpy_iterator():
            waves.append(inputs["inputs"])
            lengths.append(inputs["lengths"])
        out[split] = {
            "waves": np.concatenate(waves).astype(np.float32),
            "samples": np.concatenate(lengths).astype(np.int64),
            "y": np.array([_label_index(p, "paper11") for p in paths], np.int32),
            "source": np.array([info["clips"][p] for p in paths]),
            "word": np.array([p.split("/")[0] for p in paths]),
            "take": np.array([int(p.rsplit("_", 1)[-1].split(".")[0]) for p in paths]),
            "voice": np.array([p.split("/")[-1].split("_")[0] for p in paths]),
        }
    return out


def _augment_slice(args):
    """Augmented copies of clips ``lo:hi`` (one worker's share; seeds depend on the clip
    index only, so the result is the same for any number of workers)."""
    waves, samples, copies, seed, lo, noises = args
    from rc_keras import augment  # noqa: PLC0415

    params = augment.AugmentParams(copies=copies)
    out = []
    for copy in range(1, copies + 1):
        w, n = np.empty_like(waves), np.empty_like(samples)
        for j in range(len(waves)):
            w[j], n[j] = augment.augment_waveform(
                waves[j], params, np.random.default_rng([seed, copy, lo + j]),
                length=samples[j], noises=noises)
        out.append((w, n))
    return out


def augmented_waves(part, copies, seed=0, workers=1):
    """``copies`` seeded augmented versions of a split's waveforms (train split only),
    computed by ``workers`` processes."""
    import concurrent.futures  # noqa: PLC0415
    import multiprocessing  # noqa: PLC0415

    from rc_keras import augment  # noqa: PLC0415
    from rc_keras.kws_training.arrays import _background_noises  # noqa: PLC0415

    params = augment.AugmentParams(copies=copies)
    noises = _background_noises(DATA_ROOT, 16000)
    bounds = np.linspace(0, len(part["waves"]), workers + 1).astype(int)
    jobs = [(part["waves"][lo:hi], part["samples"][lo:hi], copies, seed, lo, noises)
            for lo, hi in zip(bounds[:-1], bounds[1:])]
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pieces = list(pool.map(_augment_slice, jobs))
    return params, [(np.concatenate([p[c][0] for p in pieces]),
                     np.concatenate([p[c][1] for p in pieces])) for c in range(copies)]


class Features:
    """Feature arrays per (normalization, block), computed once."""

    def __init__(self, data, augmented, augment_params, context_frames):
        self.data, self.augmented, self.augment_params = data, augmented, augment_params
        self.context_frames = context_frames
        self.cache = {}

    def params(self, normalization):
        from rc_keras import kws_training  # noqa: PLC0415

        return kws_training.front_end(self.context_frames, normalization=normalization)

    def get(self, normalization, block, vtlp=True):
        """block: a split name, or ("aug", copy) for the train split's augmented copy
        (``vtlp`` False: without the vocal-tract-length perturbation)."""
        import dataclasses  # noqa: PLC0415

        from rc_keras import kws_training  # noqa: PLC0415

        key = (normalization, block, vtlp or not isinstance(block, tuple))
        if key not in self.cache:
            params = self.params(normalization)
            if isinstance(block, tuple):
                copy = block[1]
                waves, samples = self.augmented[copy - 1]
                rngs = [np.random.default_rng([0, copy, i, 77]) for i in range(len(waves))]
                augment = (self.augment_params if vtlp else
                           dataclasses.replace(self.augment_params, vtlp_probability=0.0))
                self.cache[key] = kws_training.waveform_features(
                    waves, samples, params, augment, lambda i: rngs[i])
            else:
                part = self.data[block]
                self.cache[key] = kws_training.waveform_features(
                    part["waves"], part["samples"], params)
        return self.cache[key]


# ---------------------------------------------------------------------- runs
def select(data, split, keep):
    part = data[split]
    return np.array([keep(s, w) for s, w in zip(part["source"], part["word"])], bool)


def assemble(feats, data, normalization, masks, copies, unknown_keep=1.0, vtlp=True):
    """Arrays of the train blocks (clean + ``copies`` augmented copies), filtered.

    Each block keeps its own seeded ``unknown_keep`` share of the "unknown" clips, so the
    majority class does not swamp the keywords while every unknown clip still appears
    in some block.
    """
    xs, ns, ys = [], [], []
    blocks = ["train"] + [("aug", c) for c in range(1, copies + 1)]
    unknown = data["train"]["y"] == 10
    for b, block in enumerate(blocks):
        x, n = feats.get(normalization, block, vtlp)
        keep = np.random.default_rng([0, b, 41]).random(len(unknown)) < unknown_keep
        m = masks & (~unknown | keep)
        xs.append(x[m])
        ns.append(n[m])
        ys.append(data["train"]["y"][m])
    return np.concatenate(xs), np.concatenate(ns), np.concatenate(ys)


def sweep(model, x, n, y):
    from rc_keras import kws_training, tradeoff  # noqa: PLC0415

    probs = tradeoff.all_step_probabilities(model, x)
    points = tradeoff.sweep_from_probabilities(probs, y, THRESHOLDS, lengths=n,
                                               lookahead_frames=0)
    points = tradeoff.add_milliseconds(points)
    return points, kws_training.end_of_clip_accuracy(probs, n, y), probs


def choose_threshold(points, frames):
    """The most accurate validation point answering within MAX_FRACTION of the clip."""
    fast = [p for p in points if p["mean_spike_time"] <= MAX_FRACTION * frames]
    return max(fast, key=lambda p: (p["accuracy"], -p["mean_spike_time"]), default=None)


def unknown_share(probs, n, threshold, unknown=10):
    from rc_keras import tradeoff  # noqa: PLC0415

    crossing = tradeoff.first_crossing(probs, threshold, "softmax", lengths=n)
    return float(np.mean(crossing.probs.argmax(-1) == unknown))


def run_one(name, spec, feats, data, config, work):
    """Trains one model as ``spec`` says and evaluates it; cached as JSON in ``work``."""
    from rc_keras import kws_training  # noqa: PLC0415

    out_file = Path(work) / name / "result.json"
    if out_file.is_file():
        return json.loads(out_file.read_text())
    start = time.perf_counter()
    norm, copies = spec["normalization"], spec["copies"]
    train_mask = select(data, "train", spec["train_keep"])
    if spec.get("train_subset"):
        train_mask &= spec["train_subset"](data["train"])
    val_mask = select(data, "validation", spec["train_keep"])
    x_tr, n_tr, y_tr = assemble(feats, data, norm, train_mask, copies,
                                config.get("unknown_keep", 1.0), spec.get("vtlp", True))
    units = spec.get("units", config["units"])
    x_va, n_va = (a[val_mask] for a in feats.get(norm, "validation"))
    y_va = data["validation"]["y"][val_mask]
    if not len(y_va):
        print(f"{name}: skipped (no validation clips left)", flush=True)
        return None
    # The summary's test split is a placeholder (the real tests follow below).
    summary = kws_training.train_speech_commands(
        None, Path(work) / name, beta=spec["beta"], mode=spec["mode"], epochs=config["epochs"],
        threshold=config["threshold"], units=units, hidden=config["hidden"],
        learning_rate=config["learning_rate"], batch_size=config["batch_size"], seed=0,
        verbose=0, grace_epochs=config["grace_epochs"],
        data={"train": (x_tr, n_tr, y_tr), "validation": (x_va, n_va, y_va),
              "test": (x_tr[:8], n_tr[:8], y_tr[:8])})
    import keras  # noqa: PLC0415

    model = keras.models.load_model(summary["model_path"])
    frames = x_va.shape[1]
    val_points, val_end, _ = sweep(model, x_va, n_va, y_va)
    chosen = choose_threshold(val_points, frames)
    result = {"name": name, "mode": spec["mode"], "beta": spec["beta"],
              "normalization": norm, "augment_copies": copies, "held_out": spec.get("held_out"),
              "units": units, "vtlp": spec.get("vtlp", True) and copies > 0,
              "train_clips": int(len(y_tr)), "validation_clips": int(len(y_va)),
              "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
              "epoch_seconds": summary["epoch_seconds"],
              "last_train_spike_accuracy": json.loads(
                  (Path(work) / name / "history.json").read_text())["spike_accuracy"][-1],
              "validation": {"points": val_points, "end_of_clip_accuracy": val_end,
                             "chosen": chosen}, "tests": {}}
    for test_name, blocks in spec["tests"].items():
        xs, ns, ys = [], [], []
        for split, keep in blocks:
            mask = select(data, split, keep)
            x, n = feats.get(norm, split)
            xs.append(x[mask])
            ns.append(n[mask])
            ys.append(data[split]["y"][mask])
        x, n, y = np.concatenate(xs), np.concatenate(ns), np.concatenate(ys)
        if not len(y):
            continue
        points, end, probs = sweep(model, x, n, y)
        at = next(p for p in points if chosen and p["threshold"] == chosen["threshold"]) \
            if chosen else None
        entry = {"clips": int(len(y)), "points": points, "end_of_clip_accuracy": end,
                 "at_chosen_threshold": at,
                 "unknown_share_at_chosen": (unknown_share(probs, n, chosen["threshold"])
                                             if chosen else None),
                 "unknown_share_at_end": float(np.mean(
                     probs[np.arange(len(n)), n - 1].argmax(-1) == 10))}
        result["tests"][test_name] = entry
    result["seconds"] = round(time.perf_counter() - start, 1)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def specs(engines, config, open_words, norms):
    """Every run of the benchmark, by name."""
    real = lambda s, w: s.startswith("ktuberling:")  # noqa: E731
    runs = {}

    def held_out_tests(engine):
        return {"held_out_engine": [(split, lambda s, w, e=engine: s == e)
                                    for split in ("train", "validation", "test")],
                "real_unknown_held_out_languages": [("test", real)]}

    for engine in engines:
        runs[f"loeo_{engine}_rc_{norms[0]}"] = dict(
            mode="rc", beta=config["beta_rc"], normalization=norms[0],
            copies=config["augment_copies"], train_keep=lambda s, w, e=engine: s != e,
            held_out=engine, tests=held_out_tests(engine))
    for engine in engines:
        runs[f"loeo_{engine}_eos_{norms[0]}"] = dict(
            mode="eos", beta=config["beta_eos"], normalization=norms[0],
            copies=config["augment_copies"], train_keep=lambda s, w, e=engine: s != e,
            held_out=engine, tests=held_out_tests(engine))
    synth_tests = {"synthesized_test_split": [("test", lambda s, w: True)],
                   "real_unknown_held_out_languages": [("test", real)]}
    for mode, beta in (("rc", config["beta_rc"]), ("eos", config["beta_eos"])):
        runs[f"all_engines_{mode}_{norms[0]}"] = dict(
            mode=mode, beta=beta, normalization=norms[0], copies=config["augment_copies"],
            train_keep=lambda s, w: True, tests=synth_tests)
    if ABLATION_ENGINE in engines:
        e = ABLATION_ENGINE
        base = dict(mode="rc", beta=config["beta_rc"], normalization=norms[0],
                    copies=config["augment_copies"], train_keep=lambda s, w: s != e,
                    held_out=e, tests=held_out_tests(e))
        runs[f"ablation_{e}_no_augmentation"] = dict(base, copies=0)
        runs[f"ablation_{e}_no_vtlp"] = dict(base, vtlp=False)
        runs[f"ablation_{e}_lstm64"] = dict(base, units=64)
        # A third of the clips: every voice's first take, two voices in three dropped.
        runs[f"ablation_{e}_third_of_the_data"] = dict(
            base, train_subset=lambda part: (part["take"] == 0) & np.array(
                [int(v, 16) % 3 == 0 if len(v) == 8 else True for v in part["voice"]]))
        if norms[0] != "none":
            runs[f"ablation_{e}_no_normalization"] = dict(base, normalization="none")
        runs[f"ablation_{e}_closed_unknown"] = dict(
            base, train_keep=lambda s, w: s != e and not s.startswith("ktuberling:")
            and w not in open_words)
        runs[f"ablation_{e}_espeak_only"] = dict(base, train_keep=lambda s, w: s == "espeak-ng")
    for norm in norms[1:]:
        for engine in engines:
            runs[f"loeo_{engine}_rc_{norm}"] = dict(
                mode="rc", beta=config["beta_rc"], normalization=norm,
                copies=config["augment_copies"], train_keep=lambda s, w, e=engine: s != e,
                held_out=engine, tests=held_out_tests(engine))
    return runs


# ---------------------------------------------------------------------- report
def headline(result):
    """Accuracy at the validation-chosen theta (and its ms) of a run's main test."""
    test = result["tests"].get("held_out_engine") or result["tests"].get("synthesized_test_split")
    at = test["at_chosen_threshold"]
    return test, at


def _real_cell(real):
    """Share of real unknown words answered "unknown": at the chosen θ / at the clip end."""
    if not real:
        return ""
    at = real.get("unknown_share_at_chosen")
    return (f"{at:.3f}" if at is not None else "–") + f" / {real['unknown_share_at_end']:.3f}"


def markdown(res):
    cfg = res["config"]
    lines = ["# Keyword transfer to unheard voices (leave-one-engine-out, real unknown words)", "",
             f"Data: `rc-keras make-keywords` recipe, {res['data']['voices']} voices "
             f"({', '.join(f'{e} {c}' for e, c in res['data']['voices_per_engine'].items())}), "
             f"16 words + {cfg['unknown_per_voice']} open-unknown words (wamerican) per voice, "
             f"{cfg.get('clips_per_voice', 1)} take(s) of each (rate, pitch, expressiveness "
             "drawn per take), "
             f"{res['data']['real_unknown']} real recorded unknown words (ktuberling-data; test "
             f"languages {', '.join(res['data']['test_languages'])} never in training); "
             f"{res['data']['num_clips']} clips. Model: LSTM {cfg['units']} + Dense "
             f"{cfg['hidden']} + Dense 11, 20 log-mel bands, no context (no look-ahead), "
             f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, Adam {cfg['learning_rate']:g}, "
             f"trained at θ {cfg['threshold']:g}; RC β {cfg['beta_rc']:g}, EOS β "
             f"{cfg['beta_eos']:g}; {cfg['augment_copies']} augmented copies of each training "
             "clip (speed, pitch, EQ, reverb, gain, shift, noise; on the log-mel features "
             f"VTLP with probability {cfg.get('vtlp_probability', 0):g} and SpecAugment), each "
             f"copy keeping a different {cfg.get('unknown_keep', 1):.0%} of the "
             "unknown clips. θ is chosen on validation (other engines' validation voices): the most "
             f"accurate θ answering within {int(MAX_FRACTION * 100)}% of the clip there; test "
             "accuracies are read at that θ."
             + (f" Data note: {res['data']['note']}." if res["data"].get("note") else ""), "",
             "## Leave one engine out (test: every clip of the held-out engine)", "",
             "| held out | model | normalization | θ (val) | accuracy | mean spike time (ms) | "
             "end-of-clip accuracy | real unknown → unknown (at θ / at end) | train clips | "
             "train accuracy, last epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["runs"].values():
        if not r["name"].startswith("loeo_"):
            continue
        test, at = headline(r)
        real = r["tests"].get("real_unknown_held_out_languages", {})
        lines.append(
            f"| {r['held_out']} | {r['mode'].upper()} β={r['beta']:g} | {r['normalization']} | "
            + (f"{at['threshold']:g} | {at['accuracy']:.3f} | {at['mean_spike_time_ms']:.0f} | "
               if at else "none within 60% | | | ")
            + f"{test['end_of_clip_accuracy']:.3f} | " + _real_cell(real)
            + f" | {r['train_clips']} | {r.get('last_train_spike_accuracy', float('nan')):.3f} |")
    lines += ["", "## All engines: RC vs. EOS on the synthesized test split", "",
              "| model | θ (val) | accuracy | mean spike time (ms) | end-of-clip accuracy | "
              "real unknown → unknown (at θ / at end) |", "|---|---|---|---|---|---|"]
    for r in res["runs"].values():
        if not r["name"].startswith("all_engines_"):
            continue
        test, at = headline(r)
        real = r["tests"].get("real_unknown_held_out_languages", {})
        lines.append(f"| {r['mode'].upper()} β={r['beta']:g} ({r['normalization']}) | "
                     + (f"{at['threshold']:g} | {at['accuracy']:.3f} | "
                        f"{at['mean_spike_time_ms']:.0f} | " if at else "| | | ")
                     + f"{test['end_of_clip_accuracy']:.3f} | " + _real_cell(real) + " |")
    if res.get("frontier"):
        fr = res["frontier"]
        overlap = ("none" if fr["overlap"] is None else
                   f"{fr['overlap'][0]:.1f}–{fr['overlap'][1]:.1f} frames")
        lines += ["", f"RC frontier vs EOS frontier (threshold sweeps on the synthesized test "
                      f"split): overlap {overlap}, worst RC − EOS "
                      f"{100 * (fr['worst_difference'] or 0):+.1f} points."]
    lines += ["", f"## Ablation (held out: {ABLATION_ENGINE}, RC)", "",
              "| variant | accuracy at θ (val) | mean spike time (ms) | end-of-clip accuracy | "
              "real unknown → unknown (at θ / at end) |", "|---|---|---|---|---|"]
    for label, r in res.get("ablation", {}).items():
        test, at = headline(r)
        real = r["tests"].get("real_unknown_held_out_languages", {})
        lines.append(f"| {label} | " + (f"{at['accuracy']:.3f} (θ {at['threshold']:g}) | "
                                        f"{at['mean_spike_time_ms']:.0f} | " if at else "| | ")
                     + f"{test['end_of_clip_accuracy']:.3f} | " + _real_cell(real) + " |")
    lines += ["", "## Targets", ""]
    for t in res["targets"]:
        lines.append(f"- {t['text']}: **{'met' if t['met'] else 'NOT met'}** ({t['detail']})")
    lines += ["", f"Training and evaluation {res.get('run_seconds_total', 0) / 60:.1f} min "
                  "summed over the runs (runs cached in --work are collected, not re-run); "
                  f"this call's wall time {res['wall_seconds'] / 60:.1f} min on {res['machine']}, "
                  f"{res['date']}. Command: `{res['command']}`."]
    return "\n".join(lines)


def targets(res, norms):
    from rc_keras import tradeoff  # noqa: PLC0415

    out = []
    loeo = [r for r in res["runs"].values()
            if r["name"].startswith("loeo_") and r["mode"] == "rc"]
    for norm in norms:
        rows = [r for r in loeo if r["normalization"] == norm]
        if not rows:
            continue
        accs = {r["held_out"]: (headline(r)[1] or {}).get("accuracy", 0.0) for r in rows}
        out.append({"text": f"LOEO RC ({norm}) ≥ {TARGET_LOEO:.0%} for every held-out engine "
                            f"at the θ chosen on validation within "
                            f"{int(MAX_FRACTION * 100)}% of the clip",
                    "met": all(a >= TARGET_LOEO for a in accs.values()),
                    "detail": ", ".join(f"{e} {a:.3f}" for e, a in accs.items())})
    shares = {r["name"]: r["tests"]["real_unknown_held_out_languages"]["unknown_share_at_chosen"]
              for r in res["runs"].values()
              if r["tests"].get("real_unknown_held_out_languages", {}).get(
                  "unknown_share_at_chosen") is not None and not r["name"].startswith("abl")}
    if shares:
        main = [v for k, v in shares.items() if k.startswith("all_engines_rc")]
        out.append({"text": f"real unknown words of held-out languages → unknown ≥ "
                            f"{TARGET_REAL_UNKNOWN:.0%} (the all-engines RC model at its "
                            "validation θ; every model listed, a model that always answers "
                            "unknown scores 1.000)",
                    "met": bool(main) and min(main) >= TARGET_REAL_UNKNOWN,
                    "detail": ", ".join(f"{k} {v:.3f}" for k, v in shares.items())})
        if not main:
            out[-1]["met"] = False
    rc = next((r for r in res["runs"].values() if r["name"].startswith("all_engines_rc")), None)
    eos = next((r for r in res["runs"].values() if r["name"].startswith("all_engines_eos")), None)
    if rc and eos:
        f_rc = tradeoff.composite_frontier({"rc": rc["tests"]["synthesized_test_split"]["points"]})
        f_eos = tradeoff.composite_frontier(
            {"eos": eos["tests"]["synthesized_test_split"]["points"]})
        cmp = tradeoff.compare_frontiers(f_rc, f_eos)
        res["frontier"] = {"overlap": cmp["overlap"], "worst_difference": cmp["worst_difference"],
                           "at_or_above": cmp["at_or_above"]}
        overlap = ("no overlap" if cmp["overlap"] is None else
                   f"overlap {cmp['overlap'][0]:.1f}–{cmp['overlap'][1]:.1f} frames")
        out.append({"text": "RC frontier at or above EOS on the synthesized test split",
                    "met": bool(cmp["at_or_above"]),
                    "detail": f"worst RC − EOS {100 * (cmp['worst_difference'] or 0):+.1f} "
                              f"points, {overlap}"})
    return out


DATA_ROOT = None


def prepare(args, config, info):
    """Waveforms of every split and the train split's augmented copies (cached in --work)."""
    data = load_waves(DATA_ROOT, info)
    print(f"data: {info['num_clips']} clips {info['splits']}", flush=True)
    start = time.perf_counter()
    cached = Path(args.work) / f"augmented_{DATA_ROOT.name}_{config['augment_copies']}.npz"
    if cached.is_file():
        from rc_keras import augment  # noqa: PLC0415

        aug_params = augment.AugmentParams(copies=config["augment_copies"])
        with np.load(cached) as arrays:
            augmented = [(arrays[f"w{c}"], arrays[f"n{c}"])
                         for c in range(config["augment_copies"])]
    else:
        aug_params, augmented = augmented_waves(data["train"], config["augment_copies"],
                                                workers=args.workers)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **{f"w{c}": w for c, (w, _) in enumerate(augmented)},
                 **{f"n{c}": n for c, (_, n) in enumerate(augmented)})
    print(f"augmented {config['augment_copies']} copies of {len(data['train']['y'])} clips in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    import dataclasses  # noqa: PLC0415

    aug_params = dataclasses.replace(aug_params, vtlp_probability=config["vtlp_probability"])
    return data, Features(data, augmented, aug_params, config["context_frames"])


def main():
    global DATA_ROOT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, 1 epoch (smoke)")
    parser.add_argument("--data", help="dataset folder (made with the recipe if missing)")
    parser.add_argument("--work", default="/tmp/rc_keras_kws_transfer/work")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--only", help="comma-separated run names (others are skipped)")
    parser.add_argument("--norms", default="none,running_mean,pcen",
                        help="normalizations for the RC LOEO runs; the first is used "
                             "elsewhere")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the waveform augmentation (default: CPUs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a CONFIG entry (JSON value), e.g. --set units=64")
    parser.add_argument("--stem", help="results file name (default kws_transfer)")
    parser.add_argument("--render", help="only rewrite the .json's targets and the .md next "
                                         "to this results .json")
    args = parser.parse_args()
    if args.render:
        path = Path(args.render)
        res = json.loads(path.read_text())
        norms = [n.strip() for n in args.norms.split(",") if n.strip()]
        res["targets"] = targets(res, norms)
        path.write_text(json.dumps(res, indent=2, default=str) + "\n")
        path.with_suffix(".md").write_text(markdown(res) + "\n")
        return
    config = dict(QUICK if args.quick else CONFIG)
    if args.epochs:
        config["epochs"] = args.epochs
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in config:
            parser.error(f"--set: unknown CONFIG key {key!r}; expected one of {sorted(config)}")
        config[key] = json.loads(value)
    wall = time.perf_counter()
    voices = sum(config["voices_per_engine"].values())
    DATA_ROOT = Path(args.data or f"/tmp/rc_keras_kws_transfer/data_v{voices}x"
                                  f"{config['clips_per_voice']}")
    info, synth_seconds = make_data(DATA_ROOT, config)
    engines = sorted({v["engine"] for v in info["voices"]})
    norms = [n.strip() for n in args.norms.split(",") if n.strip()]
    runs = specs(engines, config, set(info["open_unknown_words"]), norms)
    only = set(args.only.split(",")) if args.only else None
    todo = [n for n in runs if (not only or n in only)
            and not (Path(args.work) / n / "result.json").is_file()]
    data = feats = None
    if todo:  # (with every selected run cached in --work, the report needs no audio)
        data, feats = prepare(args, config, info)
    results = {}
    for name, spec in runs.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        result = run_one(name, spec, feats, data, config, args.work)
        if result is None:
            continue
        results[name] = result
        test, at = headline(results[name])
        print(f"{name}: " + (f"acc {at['accuracy']:.3f} at θ {at['threshold']:g} "
                             f"({at['mean_spike_time_ms']:.0f} ms)" if at else "no θ within 60%")
              + f", end-of-clip {test['end_of_clip_accuracy']:.3f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    e = ABLATION_ENGINE
    ablation = {label: results[key] for label, key in (
        ("full recipe", f"loeo_{e}_rc_{norms[0]}"),
        ("without augmentation", f"ablation_{e}_no_augmentation"),
        ("without VTLP (other augmentation kept)", f"ablation_{e}_no_vtlp"),
        ("LSTM 64 instead of 128", f"ablation_{e}_lstm64"),
        ("a third of the voices, one take each (1/6 of the clips)",
         f"ablation_{e}_third_of_the_data"),
        ("without normalization", f"ablation_{e}_no_normalization"),
        *((f"with {n} normalization", f"loeo_{e}_rc_{n}") for n in norms[1:]),
        ("closed unknown (no open/real unknown words)", f"ablation_{e}_closed_unknown"),
        ("one engine (espeak-ng only)", f"ablation_{e}_espeak_only")) if key in results}
    voices_per_engine = {}
    for v in info["voices"]:
        voices_per_engine[v["engine"]] = voices_per_engine.get(v["engine"], 0) + 1
    res = {
        "benchmark": "kws_transfer", "quick": bool(args.quick), "config": config,
        "data": {"root": str(DATA_ROOT), "num_clips": info["num_clips"], "splits": info["splits"],
                 "voices": len(info["voices"]), "voices_per_engine": voices_per_engine,
                 "real_unknown": sum(info["real_unknown"]["clips"].values()),
                 "test_languages": sorted(k for k, v in info["real_unknown"]["languages"].items()
                                          if v == "testing"),
                 "synthesis_seconds": round(synth_seconds, 1), "note": info.get("note")},
        "thresholds": THRESHOLDS, "runs": results, "ablation": ablation,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "run_seconds_total": round(sum(r.get("seconds", 0) for r in results.values()), 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_kws_transfer.py " + " ".join(
            a for a in os.sys.argv[1:]),
    }
    res["targets"] = targets(res, norms)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.stem or ("kws_transfer_quick" if args.quick else "kws_transfer")
    provenance.write_json(out / f"{stem}.json", res, __file__, default=str)
    (out / f"{stem}.md").write_text(markdown(res) + "\n")
    print(markdown(res), flush=True)


if __name__ == "__main__":
    main()
