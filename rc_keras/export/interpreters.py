"""Host reference loop for step models in LiteRT (ai-edge-litert) and TFLM (tflite-micro).

The loop is the one a board runs: feed a frame with the current states, invoke, feed
the new states back, stop at the first output crossing, reset the states between clips.
"""

import contextlib
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

from rc_keras import validation
from rc_keras.export import _flatbuffer
from rc_keras.export.tflite_step import _QUANT_BITS, load_sidecar, quantized_threshold

# "litert": ai-edge-litert as a server runs it (its default XNNPACK delegate);
# "litert-builtin": LiteRT's own kernels, without the delegate. XNNPACK requantizes int8
# MUL in float and rounds about 1% of products differently from the TFLite kernels
# (measured on random inputs); "litert-builtin" and TFLM follow the TFLite reference.
RUNTIMES = ("litert", "litert-builtin", "tflm")
# Ops the TFLM Python interpreter cannot run usefully even when registered.
_TFLM_UNUSABLE = {"WHILE": "WHILE loops (Keras LSTM layers) hang in TFLM; export the per-frame step",
                  "RFFT2D": "TFLM has no RFFT2D kernel; compute the FFT in C on the board"}


@contextlib.contextmanager
def captured_output():
    """Captures what C++ code writes to fds 1 and 2; yields a list that gets the text."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    result = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield result
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            result.append(sink.read().decode(errors="replace"))


def tflm_interpreter(data, arena_size=None):
    """A tflite-micro Python interpreter; ``ValueError`` naming the op TFLM refuses."""
    data = bytes(data)
    ops = _flatbuffer.describe(data)["op_names"]
    for op in ops:
        if op in _TFLM_UNUSABLE:
            raise ValueError(f"TFLM cannot run this model: op {op} ({_TFLM_UNUSABLE[op]}).")
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as error:
        raise ImportError("runtime='tflm' needs the tflite-micro package: "
                          "pip install 'tflite-micro>=0.dev20250101'") from error
    with captured_output() as text:
        try:
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            error = None
        except RuntimeError as caught:
            error = caught
    if error is not None:
        log = text[0]
        missing = re.findall(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'", log)
        if missing:
            raise ValueError(f"TFLM refused op {', '.join(sorted(set(missing)))}: it has no "
                             f"kernel for it (model ops: {', '.join(ops)}).") from None
        raise RuntimeError(f"TFLM could not load the model: {error}\n{log.strip()}") from None
    return interpreter


# Tries arena sizes from argv[2] upwards in argv[3]-byte steps up to argv[4]; prints each.
_ARENA_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
size, step, limit = (int(a) for a in sys.argv[2:5])
while size <= limit:
    try:
        runtime.Interpreter.from_bytes(data, arena_size=size)
        print("fits", size, flush=True)
        break
    except RuntimeError:
        print("fails", size, flush=True)
    size += step
"""


def _smallest_arena(data, start, step=256, limit=64 * 1024 * 1024):
    """Smallest arena (start + k * step) that TFLM allocates the model in.

    Runs in a child process: for some sizes just below what a graph needs, TFLM aborts
    the whole process instead of failing ("All temp buffers must be freed", seen with
    CONCATENATION); such a size counts as too small and probing goes on after it.
    """
    with tempfile.TemporaryDirectory() as folder:
        model = pathlib.Path(folder) / "model.tflite"
        model.write_bytes(data)
        size = start
        while size <= limit:
            done = subprocess.run([sys.executable, "-c", _ARENA_PROBE, str(model), str(size),
                                   str(step), str(limit)], capture_output=True, text=True)
            results = [line.split() for line in done.stdout.splitlines() if line.strip()]
            fitting = [int(value) for word, value in results if word == "fits"]
            if fitting:
                return fitting[0]
            if done.returncode == 0:
                break
            size += (len(results) + 1) * step   # skip the size that killed the child
    raise RuntimeError(f"TFLM did not allocate this model even with a {limit >> 20} MB arena.")


def tflm_arena(data, start=1024):
    """TFLM arena figures: bytes the allocator records, and the smallest arena that loads.

    Returns:
        {"used_bytes": from the recording allocator's report (Python interpreter),
         "min_arena_bytes": smallest ``arena_size`` that allocates, probed upwards from
        the recorded total in 256-byte steps}.
    """
    data = bytes(data)
    interpreter = tflm_interpreter(data, arena_size=max(len(data) * 10, 1 << 16))
    with captured_output() as text:
        interpreter.print_allocations()
    match = re.search(r"Arena allocation total (\d+) bytes", text[0])
    used = int(match.group(1)) if match else None

    # Probe upwards from the recorded total only: an arena far too small can hang the
    # TFLM Python interpreter (seen with float LSTM models).
    high = _smallest_arena(data, max(start, (used or start) // 16 * 16))
    return {"used_bytes": used, "min_arena_bytes": int(high)}


class StepRunner:
    """Runs a step model frame by frame in LiteRT or TFLM, keeping its states.

    Args:
        path: the step .tflite (its .json sidecar next to it).
        runtime: "litert", "litert-builtin" (LiteRT without its XNNPACK delegate) or "tflm".
        threshold: theta; defaults to the sidecar's.
        arena_size: TFLM arena in bytes (default: the interpreter's heuristic).
    """

    def __init__(self, path, runtime="litert", threshold=None, arena_size=None):
        validation.check_choice(runtime, RUNTIMES, "runtime")
        path = pathlib.Path(path)
        if not path.exists():
            raise ValueError(f"step model {path} does not exist.")
        self.sidecar = load_sidecar(path)
        self.runtime = runtime
        # "int8" is kept as the name of "quantized" (int8 or int16x8) for callers.
        self.int8 = self.sidecar["quantization"] in _QUANT_BITS
        self.bits = _QUANT_BITS.get(self.sidecar["quantization"])
        self.readout = self.sidecar["readout"]
        self.threshold = validation.check_threshold_values(
            self.sidecar["threshold"] if threshold is None else threshold, self.readout,
            self.sidecar.get("num_outputs"))
        # Per-step thresholds: step t uses index min(t, len - 1); a scalar is one step.
        self._thetas = np.atleast_1d(np.asarray(self.threshold, np.float32))
        probs = self.sidecar["outputs"]["probs"]
        if self.int8:
            pairs = [quantized_threshold(float(v), probs["scale"], probs["zero_point"],
                                         self.readout, self.bits)
                     for v in np.atleast_1d(self.threshold)]
            self._q_highs = [p[0] for p in pairs]
            self._q_lows = [p[1] for p in pairs]
            self.q_high, self.q_low = self._q_highs[0], self._q_lows[0]
        self.frame_spec = self.sidecar["inputs"]["frame"]
        self.probs_spec = probs
        self.states = self.sidecar["states"]
        self.dtype = {"int8": np.int8, "int16x8": np.int16}.get(self.sidecar["quantization"],
                                                               np.float32)
        data = path.read_bytes()
        if runtime.startswith("litert"):
            try:
                from ai_edge_litert.interpreter import Interpreter, OpResolverType
            except ImportError as error:
                raise ImportError("runtime='litert' needs ai-edge-litert: "
                                  "pip install ai-edge-litert") from error
            options = {}
            if runtime == "litert-builtin":
                options["experimental_op_resolver_type"] = (
                    OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self._interp = Interpreter(model_content=data, **options)
            self._interp.allocate_tensors()
            ins = [d["index"] for d in self._interp.get_input_details()]
            outs = [d["index"] for d in self._interp.get_output_details()]
            self._in = lambda pos: ins[pos]
            self._out = lambda pos: outs[pos]
        else:
            self._interp = tflm_interpreter(data, arena_size)
        self._frame_pos = self.frame_spec["position"]
        self._probs_pos = self.probs_spec["position"]
        self.reset()

    def reset(self):
        """Sets every state to its initial value (zeros; the zero point in int8)."""
        self._state_values = []
        for spec in self.states:
            value = spec.get("initial_value_q", 0) if self.int8 else 0.0
            self._state_values.append(np.full([1] + spec["shape"], value, self.dtype))

    def quantize_frames(self, frames):
        """Float frames -> the model's input dtype (int8 / int16 with the input scale).

        Raises:
            ValueError: on NaN or Inf (rounding would turn them into arbitrary integers).
        """
        frames = np.asarray(frames, np.float32)
        validation.check_finite(frames, "frames")
        if not self.int8:
            return frames
        q = np.round(frames / self.frame_spec["scale"]) + self.frame_spec["zero_point"]
        return np.clip(q, *self.bits).astype(self.dtype)

    def dequantize_probs(self, raw):
        if not self.int8:
            return np.asarray(raw, np.float32)
        return ((raw.astype(np.float32) - self.probs_spec["zero_point"])
                * np.float32(self.probs_spec["scale"]))

    def invoke(self, frame):
        """One step on an already quantized frame (shape ``feature_shape``); raw probs.

        Raises:
            ValueError: for a float model, on a frame with NaN or Inf (the interpreters
                would answer NaN without a word). Quantized frames are integers; give
                float frames to `quantize_frames`, which checks them.
        """
        frame = np.asarray(frame)
        if frame.dtype.kind == "f" and not np.all(np.isfinite(frame)):
            raise ValueError("`frame` contains NaN or Inf values; frames must be finite.")
        frame = frame.reshape([1] + list(frame.shape))
        interp = self._interp
        if self.runtime.startswith("litert"):
            interp.set_tensor(self._in(self._frame_pos), frame)
            for spec, value in zip(self.states, self._state_values):
                interp.set_tensor(self._in(spec["input_position"]), value)
            interp.invoke()
            raw = interp.get_tensor(self._out(self._probs_pos))[0]
            new = [interp.get_tensor(self._out(s["output_position"])) for s in self.states]
        else:
            interp.set_input(frame, self._frame_pos)
            for spec, value in zip(self.states, self._state_values):
                interp.set_input(value, spec["input_position"])
            interp.invoke()
            raw = np.array(interp.get_output(self._probs_pos))[0]
            new = [np.array(interp.get_output(s["output_position"])) for s in self.states]
        self._state_values = [self._feed_back(spec, value) for spec, value in zip(self.states, new)]
        return raw

    def _feed_back(self, spec, value):
        if not self.int8 or spec.get("feedback", "direct") == "direct":
            return value.astype(self.dtype, copy=True)
        real = (value.astype(np.float32) - spec["output_zero_point"]) * spec["output_scale"]
        q = np.round(real / spec["scale"]) + spec["zero_point"]
        return np.clip(q, *self.bits).astype(self.dtype)

    def crossed(self, raw, step=0):
        """The spike test on raw outputs at ``step`` (integer compare in int8, as on a board).

        A per-step schedule uses its value at ``min(step, len - 1)``.
        """
        index = min(step, len(self._thetas) - 1)
        if self.int8:
            high, low = self._q_highs[index], self._q_lows[index]
            if self.readout == "sigmoid":
                return bool(raw[0] >= high or raw[0] <= low)
            return bool(int(raw.max()) >= high)
        # In float32, as the model: theta and 1 - theta are float32 values there.
        theta = self._thetas[index]
        if self.readout == "sigmoid":
            return bool(raw[0] >= theta or raw[0] <= np.float32(1) - theta)
        return bool(raw.max() >= theta)

    def label(self, raw):
        if self.readout == "sigmoid":
            return int(self.dequantize_probs(raw)[0] >= 0.5)
        return int(np.argmax(raw))

    def run_clip(self, frames):
        """Early-exit loop over one clip (time, *features) of float frames."""
        frames = self.quantize_frames(frames)
        self.reset()
        raw = None
        for t in range(len(frames)):
            raw = self.invoke(frames[t])
            if self.crossed(raw, t):
                return {"label": self.label(raw), "spike_time": t, "spiked": True,
                        "probs": self.dequantize_probs(raw), "frames_run": t + 1}
        return {"label": self.label(raw), "spike_time": len(frames) - 1, "spiked": False,
                "probs": self.dequantize_probs(raw), "frames_run": len(frames)}


def run_tflite_stream(path, frames, threshold=None, runtime="litert", arena_size=None,
                      lengths=None):
    """The reference host loop: frames in, stop at the first crossing, reset between clips.

    Args:
        path: a step model from `export_tflite_step` (float32 or int8), sidecar beside it.
        frames: float frames of one clip (time, *features) or of many clips
            (clips, time, *features); int8 models quantize them with the sidecar's scale.
        threshold: theta in (0, 1), or a per-step schedule (step t uses
            ``threshold[min(t, len - 1)]``); defaults to the sidecar's threshold.
        runtime: "litert" (ai-edge-litert, default delegates), "litert-builtin" (its own
            kernels, no XNNPACK delegate) or "tflm" (tflite-micro Python interpreter).
        arena_size: TFLM arena bytes (default: 10x the model size).
        lengths: optional (clips,) valid frame counts of padded clips: clip ``i`` ends
            after ``lengths[i]`` frames (the padding is never fed), as ``RCModel``'s
            ``{"inputs", "lengths"}`` input.

    Returns:
        dict: "label", "spike_time" (0-based), "probs" (float, at the answer), "frames_run",
        "spiked"; scalars for one clip, arrays (one row per clip) for many.
    """
    runner = StepRunner(path, runtime=runtime, threshold=threshold, arena_size=arena_size)
    frames = np.asarray(frames, np.float32)
    feature_shape = tuple(runner.sidecar["feature_shape"])
    rank = len(feature_shape)
    if frames.ndim not in (rank + 1, rank + 2) or tuple(frames.shape[frames.ndim - rank:]) != feature_shape:
        raise ValueError(f"`frames` must have shape (time, *{feature_shape}) or (clips, time, "
                         f"*{feature_shape}) for this model; received {frames.shape}.")
    if frames.shape[-rank - 1] < 1:
        raise ValueError("`frames` holds no frames.")
    validation.check_finite(frames, "frames")
    if frames.ndim == rank + 1:
        if lengths is not None:
            raise ValueError("`lengths` needs a batch of clips (clips, time, *features).")
        return runner.run_clip(frames)
    if lengths is None:
        lengths = np.full(len(frames), frames.shape[1])
    lengths = np.asarray(lengths)
    if (lengths.shape != (len(frames),) or not np.issubdtype(lengths.dtype, np.integer)
            or lengths.min() < 1 or lengths.max() > frames.shape[1]):
        raise ValueError(f"`lengths` must hold one integer in [1, {frames.shape[1]}] per clip "
                         f"({len(frames)} clips); received {lengths!r}.")
    results = [runner.run_clip(clip[:n]) for clip, n in zip(frames, lengths)]
    return {key: np.array([r[key] for r in results]) for key in results[0]}
