"""The causal feature normalization as a per-frame TFLite model (host check, devices).

`rc_keras.features.normalization_step` maps ``(mel frame E_t, state)`` to
``(feature, new state)``; this module converts exactly that function to a float
TFLite model with batch 1 and runs it frame by frame, so the numbers a device gets
can be compared with tf.data and the Keras layer. The first frame's state is
`rc_keras.features.initial_state` (``log(E_0 + log_offset)`` for the running mean,
``E_0`` for PCEN), written into the sidecar as a formula for firmware.

```python
from rc_keras import features
from rc_keras.export import normalization_step as ns
params = features.FrontEndParams(normalization="pcen")
sidecar = ns.export_normalization_step(params, "norm_step.tflite")
feats = ns.run_normalization_tflite("norm_step.tflite", mel_frames, params)   # (T, bands)
```
"""

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["export_normalization_step", "run_normalization_tflite", "initial_state_numpy"]


def _check(params):
    from rc_keras import features  # noqa: PLC0415

    if not isinstance(params, features.FrontEndParams):
        raise ValueError("`params` must be a rc_keras.features.FrontEndParams; received "
                         f"{type(params).__name__}.")
    if params.normalization == "none":
        raise ValueError("`params.normalization` is 'none': there is no normalization step "
                         "to export (use 'running_mean' or 'pcen').")


def export_normalization_step(params, path):
    """Writes the per-frame normalization as a float32 TFLite model plus a JSON sidecar.

    Inputs ``mel`` (1, bands) and ``state`` (1, bands); outputs ``feature`` (1, bands) and
    ``state`` (1, bands). The sidecar (``path`` with ``.json``) holds the front-end
    parameters, the tensor order and the first-frame state rule.

    Returns:
        The sidecar dict.
    """
    import tensorflow as tf  # noqa: PLC0415

    from rc_keras import features  # noqa: PLC0415

    _check(params)
    bands = params.num_mel_bins
    spec = tf.TensorSpec((1, bands), tf.float32)

    module = tf.Module()

    @tf.function(input_signature=[spec, spec])
    def step(mel, state):
        feature, new_state = features.normalization_step(mel, state, params)
        return {"feature": feature, "state": new_state}

    module.step = step
    # Through a SavedModel, so the TFLite model keeps a named signature (mel, state).
    with tempfile.TemporaryDirectory(prefix="rc_keras_norm_") as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": step})
        flat = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flat)
    sidecar = {
        "kind": "causal_normalization_step",
        "front_end": dataclasses.asdict(params),
        "inputs": ["mel", "state"],
        "outputs": ["feature", "state"],
        "initial_state": ("E_0" if params.normalization == "pcen"
                          else "log(E_0 + log_offset)"),
        "recurrence": features.__doc__.split("Causal normalization", 1)[1].split(
            "The state", 1)[0].strip(),
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def initial_state_numpy(mel_frame, params):
    """`rc_keras.features.initial_state` in numpy float32 (what a host or device runs)."""
    mel_frame = np.asarray(mel_frame, np.float32)
    if params.normalization == "pcen":
        return mel_frame.copy()
    return np.log(mel_frame + np.float32(params.log_offset)).astype(np.float32)


def run_normalization_tflite(path, mel_frames, params):
    """Runs the exported step over ``mel_frames`` (frames, bands): returns (frames, bands).

    Uses LiteRT (``ai_edge_litert``) when installed, else ``tf.lite.Interpreter``.
    """
    _check(params)
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError:  # pragma: no cover - LiteRT is a declared dependency
        import tensorflow as tf  # noqa: PLC0415

        Interpreter = tf.lite.Interpreter  # noqa: N806
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    mel_frames = np.asarray(mel_frames, np.float32)
    state = initial_state_numpy(mel_frames[0], params)[None]
    out = np.zeros_like(mel_frames)
    for t, frame in enumerate(mel_frames):
        result = runner(mel=frame[None], state=state)
        out[t], state = result["feature"][0], result["state"]
    return out
