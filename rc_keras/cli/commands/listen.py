"""``rc-keras listen``: keyword detections on a long recording (`rc_keras.streaming`).

``add_arguments`` builds the flags without TensorFlow, ``run`` does the work.

    rc-keras listen --model runs/kws/model.keras recording.wav [--json]
    rc-keras listen --model runs/kws/model.keras --bundle runs/kws/bundle recording.wav
"""

import dataclasses
import json
import time
from pathlib import Path

from rc_keras import streaming

HELP = "keyword detections in a long recording (stream policy of rc_keras.streaming)"

# StreamPolicy field -> flag, so a policy error names the flag the user typed.
_POLICY_FLAGS = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(
    streaming.StreamPolicy) if f.name not in ("ignore_classes",)}
_POLICY_FLAGS["ignore_classes"] = "--ignore"


def add_arguments(parser):
    """The ``listen`` flags (no TensorFlow import)."""
    defaults = streaming.StreamPolicy()
    parser.add_argument("file", metavar="FILE.wav", help="16-bit PCM WAV recording (any length)")
    parser.add_argument("--model", required=True, help="trained keyword model (.keras); its "
                        "front_end.json beside it gives the front end")
    parser.add_argument("--bundle", help="deployment bundle ('rc-keras export'): run its TFLite "
                        "step model frame by frame instead of the Keras model")
    parser.add_argument("--quantization", choices=["float32", "int8", "int16x8"],
                        default="float32", help="which step model of --bundle (default: %(default)s)")
    parser.add_argument("--runtime", choices=["litert", "litert-builtin", "tflm"],
                        default="litert", help="interpreter for --bundle (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--mode", choices=list(streaming.MODES), default=defaults.mode,
                        help="onset: start an instance at each energy onset; staggered: every "
                             "--stride-frames frames (default: %(default)s)")
    parser.add_argument("--threshold", type=float, help="spike threshold (default: the model's)")
    for name, help_text in (
            ("max_frames", "most frames an instance reads (default: the training clip's)"),
            ("refractory_frames", "frames after a detection with no new instance"),
            ("pre_roll_frames", "frames before the onset a new instance reads first"),
            ("onset_frames", "consecutive loud frames that make an onset"),
            ("release_frames", "consecutive quiet frames that re-arm the onset detector"),
            ("stride_frames", "staggered mode: frames between instance starts")):
        default = getattr(defaults, name)
        parser.add_argument(_POLICY_FLAGS[name], type=int,
                            default=None if name == "max_frames" else default,
                            help=help_text + ("" if name == "max_frames"
                                              else f" (default: {default})"))
    parser.add_argument("--onset-db", type=float, default=defaults.onset_db,
                        help="dB above the noise floor that starts an onset (default: "
                             "%(default)s)")
    parser.add_argument("--ignore", default=",".join(defaults.ignore_classes),
                        help="comma-separated classes whose spikes are not detections "
                             "(default: %(default)s)")


def _policy(args, params):
    values = {name: getattr(args, name) for name in (
        "mode", "threshold", "refractory_frames", "pre_roll_frames", "onset_frames",
        "release_frames", "stride_frames", "onset_db")}
    values["max_frames"] = (params.frames_per_clip if args.max_frames is None
                            else args.max_frames)
    values["ignore_classes"] = tuple(c for c in args.ignore.split(",") if c)
    try:
        return streaming.StreamPolicy(**values)
    except ValueError as error:
        message = str(error)
        for name, flag in _POLICY_FLAGS.items():
            message = message.replace(f"`{name}`", flag)
        raise ValueError(message) from None


def _read_wav(path, sample_rate):
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras.kws_training import speech_commands_module  # noqa: PLC0415

    sc = speech_commands_module()

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"FILE.wav '{path}' does not exist.")
    rate, _, _ = sc.probe_wav(path)       # a clear error for files decode_wav rejects
    audio, _ = tf.audio.decode_wav(tf.io.read_file(str(path)))
    wave = tf.reduce_mean(audio, axis=-1)
    if rate != sample_rate:
        wave = sc.resample(wave, rate, sample_rate)
    return np.asarray(wave, np.float32)


def listen(model_path, wav_path, policy_args=None, bundle=None, quantization="float32",
           runtime="litert"):
    """Detections of ``wav_path`` (a dict, what ``--json`` prints); see `run`."""
    import keras  # noqa: PLC0415

    import rc_keras  # noqa: F401, PLC0415  (registers the Keras classes)
    from rc_keras import kws_training  # noqa: PLC0415
    from rc_keras.datasets.speech_commands_layout import LABEL_SETS  # noqa: PLC0415
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    started = time.perf_counter()
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ValueError(f"--model '{model_path}' does not exist.")
    model = keras.models.load_model(model_path)
    params = kws_training.saved_front_end(model_path) or FrontEndParams(
        context_frames=kws_training.context_frames_of(model))
    policy = _policy(policy_args, params)
    names = {11: LABEL_SETS["paper11"], 12: LABEL_SETS["standard12"]}.get(int(model.num_classes))
    wave = _read_wav(wav_path, params.sample_rate)
    feats, energies = streaming.stream_features(wave, params)
    if bundle is not None:
        step = Path(bundle) / f"step_{quantization}.tflite"
        if not step.is_file():
            raise ValueError(f"--bundle '{bundle}' holds no {step.name} (export it with "
                             f"rc-keras export{' --' + quantization if quantization != 'float32' else ''}).")
        network = streaming.TFLiteStepNetwork(step, runtime=runtime)
        names = network.class_names or names
        runner = f"{step.name} in {runtime}"
    else:
        network = streaming.KerasWindowNetwork(model, feats, policy.max_frames)
        runner = "keras"
    detections, rate = streaming.detect(feats, energies, policy, network, names,
                                        params.stride_ms, params.window_ms)
    return {"file": str(wav_path), "model": str(model_path), "runner": runner,
            "audio_seconds": round(len(wave) / params.sample_rate, 3),
            "policy": dataclasses.asdict(policy),
            "detections": [d.to_dict() for d in detections],
            "invocations_per_second": round(rate, 2),
            "seconds": round(time.perf_counter() - started, 2)}


def run(args):
    """Runs ``listen`` and prints the detections (or one JSON object with ``--json``)."""
    result = listen(args.model, args.file, args, bundle=args.bundle,
                    quantization=args.quantization, runtime=args.runtime)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['file']}: {result['audio_seconds']:.2f} s, {len(result['detections'])} "
          f"detection(s) ({result['runner']}, {result['policy']['mode']} policy, "
          f"{result['invocations_per_second']:.1f} network invocations per second)")
    if result["detections"]:
        print(f"{'keyword':<10} {'spike s':>8} {'onset s':>8} {'confidence':>10}")
    for d in result["detections"]:
        print(f"{d['keyword']:<10} {d['spike_time_s']:>8.3f} {d['onset_time_s']:>8.3f} "
              f"{d['confidence']:>10.3f}")
    return 0
