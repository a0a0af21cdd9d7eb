"""Build the rank-coded firmware for a step model and run it on emulated Cortex-M boards.

The firmware (``firmware/`` in the repository: Makefile, startup, linker script, the RC loop
over TensorFlow Lite Micro) is compiled with the GNU Arm toolchain against an exported TFLM
source tree and run in ``qemu-system-arm`` with semihosting. Clips go in through a file that
the firmware reads frame by frame; it prints every frame's integer outputs, each clip's class
and spike frame, and instruction counts (SysTick under ``-icount shift=0``).

```python
from rc_keras import streaming
from rc_keras.export import firmware
tree = firmware.tflm_tree("cmsis_nn")                     # extracted once into a cache
build = firmware.build_firmware("out/step_int8.tflite", "build/m4", board="mps2-an386", tree=tree)
result = firmware.run_firmware(build, frames_q)           # (clips, time, *features) integers
result["clips"][0]["label"], result["frames"][0]["outputs"], build["memory"]["flash_bytes"]
# Always listening: the stream policy of rc_keras.streaming on one long int16 recording.
listen = firmware.build_firmware("out/step_int8.tflite", "build/listen", tree=tree, frontend=True,
                                 policy=streaming.StreamPolicy())
firmware.run_stream_firmware(listen, pcm)["detections"]   # rc_keras.streaming.Detection list
```
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile

import numpy as np

BOARDS = {"mps2-an386": "Cortex-M4", "mps3-an547": "Cortex-M55 (Helium)"}
KERNELS = ("ref", "cmsis_nn")
# Sections that live in flash (code, constants, the .data image) and in RAM.
_FLASH_SECTIONS = (".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array",
                   ".fini_array", ".data")
_RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")
_INPUT_MAGIC = 0x4E494352  # "RCIN"
# The Python interpreter's smallest arena plus this margin (and a quarter): CMSIS-NN kernels ask
# for scratch buffers the reference kernels of the Python interpreter do not (int16x8 LSTM).
ARENA_MARGIN_BYTES = 1024


def firmware_dir():
    """The firmware sources: ``$RC_KERAS_FIRMWARE_DIR`` or ``firmware/`` beside the package."""
    path = pathlib.Path(os.environ.get("RC_KERAS_FIRMWARE_DIR")
                        or pathlib.Path(__file__).resolve().parents[2] / "firmware")
    if not (path / "Makefile").exists():
        raise FileNotFoundError(f"no firmware Makefile in {path}: set RC_KERAS_FIRMWARE_DIR to the "
                                "repository's firmware/ folder.")
    return path


def missing_tools():
    """Names of the tools the firmware needs that are not on PATH (empty when all are)."""
    return [tool for tool in ("make", "arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm")
            if shutil.which(tool) is None]


def cache_dir():
    """Where extracted TFLM trees and built TFLM libraries are kept between runs."""
    return pathlib.Path(os.environ.get("RC_KERAS_CACHE") or pathlib.Path.home() / ".cache" / "rc_keras")


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock file: one extraction / library build at a time (tests run in parallel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tree_root(folder):
    for candidate in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        if (candidate / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").exists():
            return candidate
    raise ValueError(f"{folder} holds no exported TFLM tree (tensorflow/lite/micro/...).")


def tflm_tree(kernels="cmsis_nn", archives=None):
    """An extracted TFLM source tree with the given kernels, from a ``tflm-tree-*.tar.gz``.

    Args:
        kernels: "cmsis_nn" or "ref".
        archives: folder holding ``tflm-tree-<kernels>-*.tar.gz``; default
            ``$RC_KERAS_TFLM_ARCHIVES``, else ``../shared/tflm`` beside the repository.

    Returns:
        The tree's root (holds tensorflow/, signal/, third_party/), extracted once under
        `cache_dir()` ``/tflm``.
    """
    if kernels not in KERNELS:
        raise ValueError(f"`kernels` must be one of {KERNELS}; received {kernels!r}.")
    folder = pathlib.Path(archives or os.environ.get("RC_KERAS_TFLM_ARCHIVES")
                          or pathlib.Path(__file__).resolve().parents[3] / "shared" / "tflm")
    found = sorted(folder.glob(f"tflm-tree-{kernels}-*.tar.gz"))
    if not found:
        raise FileNotFoundError(f"no tflm-tree-{kernels}-*.tar.gz in {folder}: pass a TFLM tree "
                                "(--tflm-tree) or set RC_KERAS_TFLM_ARCHIVES.")
    archive = found[-1]
    target = cache_dir() / "tflm" / archive.name[:-len(".tar.gz")]
    with _locked(cache_dir() / "tflm" / (target.name + ".lock")):
        if not (target / ".extracted").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
            (target / ".extracted").write_text(archive.name)
    return _tree_root(target)


def tree_kernels(tree):
    """"cmsis_nn" when the exported tree carries CMSIS-NN, else "ref"."""
    return "cmsis_nn" if (pathlib.Path(tree) / "third_party" / "cmsis_nn").is_dir() else "ref"


def _make(args, cwd, timeout):
    done = subprocess.run(["make", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"make {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def _lib_args(tree, board, kernel_set):
    return [f"TFLM_TREE={tree}", f"BOARD={board}", f"TFLM_LIB_CACHE={cache_dir() / 'tflm-lib'}",
            f"TFLM_KERNELS={kernel_set}"]


def build_tflm_library(tree, board="mps2-an386", kernel_set="rc", jobs=None, timeout=3600):
    """Compiles the TFLM tree into a static library for ``board`` once (cached; minutes).

    ``kernel_set`` "rc" compiles the op kernels rank-coded step models use (see the
    Makefile's RC_KERNELS) besides TFLM's core; "all" every kernel of the tree.
    """
    check_board(board)
    if kernel_set not in ("rc", "all"):
        raise ValueError(f"`kernel_set` must be 'rc' or 'all'; received {kernel_set!r}.")
    tree = pathlib.Path(tree).resolve()
    digest = hashlib.md5(str(tree).encode()).hexdigest()[:8]
    with _locked(cache_dir() / "tflm-lib" / f"{tree.name}-{digest}-{board}-{kernel_set}.lock"):
        _make(["lib", f"-j{jobs or os.cpu_count() or 1}", *_lib_args(tree, board, kernel_set)],
              firmware_dir(), timeout)


def check_board(board):
    if board not in BOARDS:
        raise ValueError(f"`board` must be one of {', '.join(BOARDS)}; received {board!r}.")
    return board


def write_model_source(step_path, out_dir, arena_bytes=None, lut=False):
    """Writes ``rc_model_data.{c,h}`` for a quantized step model into ``out_dir``.

    ``arena_bytes`` defaults to the smallest arena the TFLM Python interpreter allocates
    the model in, plus a quarter and `ARENA_MARGIN_BYTES` (the firmware prints what it
    really used). With ``lut`` the int8 LOGISTIC / TANH ops become table lookups
    (`rc_keras.export.lut_activations`; same integers, a tenth of the instructions) and the
    clips that cannot change an int8 value are dropped (`rc_keras.export.identity_clamps`).
    """
    from rc_keras.export.c_array import write_c_array  # noqa: PLC0415
    from rc_keras.export.interpreters import tflm_arena  # noqa: PLC0415
    from rc_keras.export.tflite_step import load_sidecar  # noqa: PLC0415

    step_path = pathlib.Path(step_path)
    sidecar = load_sidecar(step_path)
    if sidecar["quantization"] not in ("int8", "int16x8"):
        raise ValueError(f"the firmware runs int8 or int16x8 step models; {step_path.name} is "
                         f"{sidecar['quantization']}.")
    data = step_path.read_bytes()
    if lut:
        from rc_keras.export import _flatbuffer  # noqa: PLC0415
        from rc_keras.export.identity_clamps import drop_identity_clamps  # noqa: PLC0415
        from rc_keras.export.lut_activations import lut_activations  # noqa: PLC0415

        if sidecar["quantization"] != "int8":
            raise ValueError("lut=True rewrites int8 activations; the model is int16x8.")
        data, _ = lut_activations(data)
        data, _ = drop_identity_clamps(data)
        sidecar = dict(sidecar, ops=_flatbuffer.describe(data)["op_names"], model_bytes=len(data))
    if arena_bytes is None:
        smallest = tflm_arena(data)["min_arena_bytes"]
        arena_bytes = (smallest + smallest // 4 + ARENA_MARGIN_BYTES + 15) // 16 * 16
    write_c_array(data, sidecar, out_dir, arena_bytes=arena_bytes)
    return sidecar


def memory_figures(build_dir):
    """Flash and RAM of a linked firmware from ``arm-none-eabi-size -A`` (bytes).

    flash = code + constants (the model) + the .data image; ram = .data + .bss (the arena
    is in .bss) + the heap and stack the linker script reserves.
    """
    text = (pathlib.Path(build_dir) / "size.txt").read_text()
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", text, re.M)}
    return {"sections": sections,
            "flash_bytes": sum(sections.get(s, 0) for s in _FLASH_SECTIONS),
            "ram_bytes": sum(sections.get(s, 0) for s in _RAM_SECTIONS)}


def build_firmware(step_path, build_dir, board="mps2-an386", tree=None, frontend=None,
                   per_state_copy=False, arena_bytes=None, model_dir=None, kernel_set="rc",
                   profile=False, lut=False, jobs=None, stack_bytes=None, heap_bytes=None,
                   policy=None):
    """Builds the firmware ELF for a quantized step model.

    Args:
        step_path: the step .tflite (int8 or int16x8) with its sidecar.
        build_dir: where the C array, objects, ELF and map go.
        board: "mps2-an386" (Cortex-M4) or "mps3-an547" (Cortex-M55).
        tree: an exported TFLM tree (default: `tflm_tree` ("cmsis_nn")). Its kernels are
            what it was exported with (`tree_kernels`).
        frontend: compile the audio front end (PCM input clips): True for the sidecar's
            ``feature_params``, or a `rc_keras.features.FrontEndParams` / dict.
        per_state_copy: the old state-by-state feedback (only to show the aliasing bug).
        arena_bytes: TFLM arena (default: measured minimum + margin).
        model_dir: use this folder's ``rc_model_data.{c,h}`` (a bundle's) instead of
            writing them from ``step_path``.
        kernel_set: "rc" (the kernels of RC step models) or "all" (`build_tflm_library`).
        profile: time every op; `run_firmware` then returns "ops" (instructions per op type).
        lut: int8 LOGISTIC / TANH as table lookups, identity clips dropped (`write_model_source`).
        stack_bytes, heap_bytes: stack and heap the linker script reserves (default 4096
            each; `build_fitted` sizes them from a run).
        policy: a `rc_keras.streaming.StreamPolicy` (onset mode): compile the stream policy
            (``firmware/rc_stream_policy.cc``, ``STREAM=1``; needs ``frontend``) so
            `run_stream_firmware` can run a long recording through it.

    Returns:
        dict with "elf", "board", "kernels", "tree", "memory" (`memory_figures`), "sidecar".
    """
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"the firmware build needs {', '.join(missing)}: apt-get install "
                           "make gcc-arm-none-eabi libnewlib-arm-none-eabi "
                           "libstdc++-arm-none-eabi-newlib qemu-system-arm")
    check_board(board)
    tree = pathlib.Path(tree or tflm_tree("cmsis_nn")).resolve()
    build_dir = pathlib.Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    from rc_keras.export.tflite_step import load_sidecar  # noqa: PLC0415

    sidecar = load_sidecar(step_path)
    if model_dir is None:
        model_dir = build_dir / "model"
        write_model_source(step_path, model_dir, arena_bytes, lut)
    # frontend: True, parameters (FrontEndParams or dict; may be empty), or None / False.
    with_frontend = frontend is not None and frontend is not False
    if with_frontend:
        params = sidecar.get("feature_params") if frontend is True else frontend
        if not params:
            raise ValueError("frontend=True needs a step model whose sidecar has feature_params.")
        write_frontend_source(params, model_dir)
    if policy is not None:
        if not with_frontend:
            raise ValueError("`policy` needs `frontend`: the stream policy reads PCM audio.")
        write_policy_source(policy, model_dir, sidecar, params)
    build_tflm_library(tree, board, kernel_set, jobs)
    try:
        _make(["all", *_lib_args(tree, board, kernel_set), f"MODEL_DIR={model_dir}",
               f"BUILD_DIR={build_dir}", f"FRONTEND={int(with_frontend)}",
               f"PER_STATE_COPY={int(bool(per_state_copy))}", f"PROFILE={int(bool(profile))}",
               f"STREAM={int(policy is not None)}",
               *([f"STACK_SIZE={int(stack_bytes)}"] if stack_bytes else []),
               *([f"HEAP_SIZE={int(heap_bytes)}"] if heap_bytes else [])],
              firmware_dir(), timeout=1800)
    except RuntimeError as error:
        missing = sorted(set(re.findall(r"undefined reference to `tflite::(Register_\w+)", str(error))))
        if missing and kernel_set == "rc":
            raise RuntimeError(f"the model needs kernels outside the 'rc' set ({', '.join(missing)}): "
                               "build with kernel_set='all'.") from None
        raise
    return {"elf": build_dir / "firmware.elf", "board": board, "kernels": tree_kernels(tree),
            "tree": str(tree), "memory": memory_figures(build_dir), "sidecar": sidecar,
            "frontend": with_frontend, "policy": policy}


def build_fitted(step_path, build_dir, clips, kind="frames", stack_margin=256, **kwargs):
    """`build_firmware`, run once on ``clips`` (whole clips), then rebuilt with the arena,
    stack and heap that run measured: the arena exactly as TFLM used it, the stack's
    high-water mark plus ``stack_margin`` bytes, the heap newlib took.

    Returns:
        The second build's dict, with "fitted_from" (the measuring run's figures).
    """
    first = build_firmware(step_path, build_dir, **kwargs)
    probe = run_firmware(first, clips, kind=kind, whole_clip=True)
    sizes = {"arena_bytes": (probe["arena_used_bytes"] + 15) // 16 * 16,
             "stack_bytes": (probe["stack_used_bytes"] + stack_margin + 7) // 8 * 8,
             "heap_bytes": max(8, (probe["heap_used_bytes"] + 7) // 8 * 8)}
    # Kernels' Prepare takes temporary arena space beyond what stays allocated
    # (arena_used_bytes): grow the arena by steps of 256 B until AllocateTensors succeeds.
    # Short of that space, TFLM 90b983c2 either fails AllocateTensors or (CMSIS-NN's Helium
    # kernels on the M55) complains that temp buffers were not freed and then faults.
    too_small = ("AllocateTensors failed", "temp buffers must be freed")
    for _ in range(16):
        build = build_firmware(step_path, build_dir, **{**kwargs, **sizes})
        try:
            run_firmware(build, clips[:1], kind=kind)
            break
        except RuntimeError as error:
            if not any(sign in str(error) for sign in too_small):
                raise
            sizes["arena_bytes"] += 256
    build["fitted_from"] = {key: probe[key] for key in
                            ("arena_used_bytes", "stack_used_bytes", "heap_used_bytes")}
    return build


_KINDS = {"frames": 0, "pcm": 1, "stream": 2}


def write_input(path, clips, kind="frames", whole_clip=False, frame_size=None, energies=False):
    """Writes the firmware's input file (format in firmware/main.cc).

    Args:
        clips: list of integer arrays: quantized frames (time, *features) for "frames",
            int16 samples (n,) for "pcm" and "stream" (one long recording).
        kind: "frames", "pcm" or "stream" (through the stream policy; `run_stream_firmware`).
        whole_clip: run every frame of every clip (report the first spike, don't stop).
        energies: "stream": print every frame's energy too.
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {list(_KINDS)}; received {kind!r}.")
    clips = [np.ascontiguousarray(c) for c in clips]
    if not clips:
        raise ValueError("`clips` is empty.")
    dtype = clips[0].dtype
    if kind in ("pcm", "stream") and dtype != np.int16:
        raise ValueError(f"pcm clips must be int16; received {dtype}.")
    if kind == "stream" and len(clips) != 1:
        raise ValueError(f"kind 'stream' takes one recording; received {len(clips)}.")
    if dtype not in (np.int8, np.int16) or any(c.dtype != dtype for c in clips):
        raise ValueError("clips must all be int8 or all int16 arrays.")
    if frame_size is None:
        frame_size = 1 if kind != "frames" else int(np.prod(clips[0].shape[1:]))
    with open(path, "wb") as out:
        out.write(struct.pack("<8i", _INPUT_MAGIC, 1, _KINDS[kind], len(clips), frame_size,
                              dtype.itemsize, int(bool(whole_clip)) | 2 * int(bool(energies)), 0))
        for clip in clips:
            if len(clip) < 1:
                raise ValueError("every clip needs at least one frame / sample.")
            out.write(struct.pack("<i", len(clip)))
            out.write(clip.astype(dtype.newbyteorder("<")).tobytes())


def parse_output(text):
    """Parses the firmware's output lines (see firmware/main.cc) into a dict."""
    result = {"frames": [], "clips": [], "features": [], "ops": {}, "errors": [],
              "detections": [], "energies": []}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        tag, values = parts[0], parts[1:]
        if tag == "F":
            clip, frame, net, fe, *outputs = (int(v) for v in values)
            result["frames"].append({"clip": clip, "frame": frame, "net_ticks": net,
                                     "frontend_ticks": fe, "outputs": outputs})
        elif tag == "P":
            bits = np.array([int(v, 16) for v in values[2:]], np.uint32)
            result["features"].append({"clip": int(values[0]), "frame": int(values[1]),
                                       "values": bits.view(np.float32)})
        elif tag == "C":
            clip, label, spike, spiked, run, net, fe = (int(v) for v in values)
            result["clips"].append({"clip": clip, "label": label, "spike_frame": spike,
                                    "spiked": bool(spiked), "frames_run": run, "net_ticks": net,
                                    "frontend_ticks": fe})
        elif tag == "D":
            label, spike, onset, start, confidence = (int(v) for v in values)
            result["detections"].append({"label": label, "spike_frame": spike,
                                         "onset_frame": onset, "start_frame": start,
                                         "confidence_q": confidence})
        elif tag == "E":
            result["energies"].append(int(values[1]))
        elif tag == "L":
            frames, invocations, net, fe = (int(v) for v in values)
            result["stream"] = {"frames": frames, "invocations": invocations, "net_ticks": net,
                                "frontend_ticks": fe}
        elif tag == "O":
            result["ops"][values[0]] = {"ticks": int(values[1]), "invokes": int(values[2])}
        elif tag == "A":
            result["arena_used_bytes"], result["arena_bytes"] = int(values[0]), int(values[1])
        elif tag == "K":
            result["ticks_per_instruction"] = int(values[0]) / int(values[1])
        elif tag == "S":
            result["stack_used_bytes"], result["stack_bytes"] = int(values[0]), int(values[1])
        elif tag == "H":
            result["heap_used_bytes"], result["heap_bytes"] = int(values[0]), int(values[1])
        elif tag == "RC":
            result["errors"].append(line)
    return result


def run_firmware(build, clips, kind="frames", whole_clip=False, timeout=600, energies=False):
    """Runs a built firmware in QEMU on ``clips`` and returns its parsed output.

    Instruction counts are added: "net_instructions" / "frontend_instructions" per frame
    and per clip (ticks divided by the board's measured ticks per instruction).

    Raises:
        RuntimeError: when the firmware exits non-zero or prints an error.
    """
    with tempfile.TemporaryDirectory() as folder:
        write_input(pathlib.Path(folder) / "rc_input.bin", clips, kind, whole_clip,
                    energies=energies)
        command = ["qemu-system-arm", "-machine", build["board"], "-nographic", "-monitor", "none",
                   "-serial", "none", "-semihosting-config", "enable=on,target=native",
                   "-icount", "shift=0", "-kernel", str(build["elf"])]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)
    result = parse_output(done.stdout)
    result["returncode"] = done.returncode
    if done.returncode != 0 or result["errors"]:
        log = "\n".join(line for line in done.stdout.splitlines()[-12:]
                        if line[:2] not in ("F ", "P ", "E "))
        if "fully_connected.cc" in log and "is_per_channel" in log:
            raise RuntimeError("CMSIS-NN's fully connected kernel refuses this model's per-channel "
                               "int16 weights (16x8 models; TFLM 90b983c2): build it with the "
                               "reference kernels (kernels='ref', --kernels ref).\n" + log)
        raise RuntimeError(f"firmware exited with {done.returncode}: "
                           f"{' '.join(result['errors']) or done.stderr[-2000:]}\n{log}")
    per = result["ticks_per_instruction"]
    for row in result["frames"] + result["clips"]:
        row["net_instructions"] = round(row["net_ticks"] / per)
        row["frontend_instructions"] = round(row["frontend_ticks"] / per)
    frames = max(len(result["frames"]), 1)
    for op in result["ops"].values():
        op["instructions_per_frame"] = op["ticks"] / per / frames
    return result


def outputs_by_clip(result):
    """Per clip, the (frames run, outputs) integer array of every frame the firmware ran."""
    by_clip = {}
    for row in result["frames"]:
        by_clip.setdefault(row["clip"], []).append(row["outputs"])
    return [np.array(by_clip[c["clip"]]) for c in result["clips"]]


def host_reference(step_path, clips_q, whole_clip=False):
    """The TFLM Python interpreter on the same quantized clips, frame by frame.

    Returns:
        list per clip of {"outputs": (frames run, outputs) ints, "label", "spike_frame",
        "spiked"}; with early exit a clip stops at its first spike, as on the board.
    """
    from rc_keras.export.interpreters import StepRunner  # noqa: PLC0415

    runner = StepRunner(step_path, runtime="tflm")
    results = []
    for clip in clips_q:
        runner.reset()
        outputs, spike, label = [], None, None
        for t in range(len(clip)):
            raw = runner.invoke(np.asarray(clip[t]))
            outputs.append(np.array(raw).astype(int))
            if spike is None:
                label = runner.label(raw)
                if runner.crossed(raw, t):
                    spike = t
                    if not whole_clip:
                        break
        results.append({"outputs": np.array(outputs), "label": label,
                        "spike_frame": len(clip) - 1 if spike is None else spike,
                        "spiked": spike is not None})
    return results


def compare_with_host(build, step_path, clips_q, whole_clip=False):
    """Runs the firmware and the TFLM Python interpreter on the same quantized clips.

    Returns:
        (firmware result, agreement dict: "class_agreement", "spike_frame_agreement" and
        "outputs_bit_exact", the share of clips whose every frame's outputs are equal).
    """
    result = run_firmware(build, clips_q, whole_clip=whole_clip)
    host = host_reference(step_path, clips_q, whole_clip=whole_clip)
    device = outputs_by_clip(result)
    pairs = list(zip(result["clips"], host))
    return result, {
        "reference": "tflm (Python)",
        "class_agreement": float(np.mean([c["label"] == h["label"] for c, h in pairs])),
        "spike_frame_agreement": float(np.mean([c["spike_frame"] == h["spike_frame"]
                                                for c, h in pairs])),
        "outputs_bit_exact": float(np.mean([np.array_equal(d, h["outputs"])
                                            for d, h in zip(device, host)])),
    }


def summary(build, result, sequence_length=None):
    """Device figures for report.json: memory, arena, instructions per frame and per clip."""
    clips = result["clips"]
    frames = result["frames"]
    net = np.array([f["net_instructions"] for f in frames], float)
    fe = np.array([f["frontend_instructions"] for f in frames], float)
    per_frame = float(net.mean() + fe.mean())
    mean_run = float(np.mean([c["frames_run"] for c in clips]))
    memory = build["memory"]
    row = {"board": build["board"], "cpu": BOARDS[build["board"]], "kernels": build["kernels"],
           "clips": len(clips),
           "flash_bytes": memory["flash_bytes"], "ram_bytes": memory["ram_bytes"],
           "arena_bytes": result["arena_bytes"], "arena_used_bytes": result["arena_used_bytes"],
           "stack_used_bytes": result["stack_used_bytes"],
           "stack_bytes": result.get("stack_bytes"), "heap_used_bytes": result.get("heap_used_bytes"),
           "heap_bytes": result.get("heap_bytes"),
           "network_instructions_per_frame": float(net.mean()),
           "network_instructions_per_frame_max": float(net.max()),
           "frontend_instructions_per_frame": float(fe.mean()),
           "mean_frames_run": mean_run,
           "instructions_per_clip_rc": float(np.mean([c["net_instructions"] + c["frontend_instructions"]
                                                      for c in clips]))}
    if sequence_length:
        row["frames_per_clip"] = int(sequence_length)
        row["instructions_per_clip_whole"] = per_frame * sequence_length
    return row


def save_json(path, data):
    pathlib.Path(path).write_text(json.dumps(data, indent=2, default=str))


def write_frontend_source(params, out_dir):
    """Writes ``rc_frontend_data.h``: the device front end's tables and constants.

    They are `rc_keras.features_fixed.tables`, the same numbers the host's fixed-point
    front end uses, so both compute identical features from the same audio.

    Args:
        params: a `rc_keras.features.FrontEndParams` (or its dict, e.g. a sidecar's
            ``feature_params``) with ``context_frames == 0`` (the firmware feeds each frame
            as it is computed: context stacking would need look-ahead) and no normalization.
        out_dir: folder (the model's C array goes there too).

    Returns:
        The header's path.
    """
    from rc_keras import features, features_fixed  # noqa: PLC0415

    if isinstance(params, dict):
        params = features.FrontEndParams(**params)
    if params.context_frames != 0:
        raise ValueError(f"the device front end feeds frames as they come: feature_params needs "
                         f"context_frames=0; received {params.context_frames}.")
    t = features_fixed.tables(params)

    def array(ctype, name, values):
        values = [int(v) for v in values]
        rows = [", ".join(str(v) for v in values[i:i + 16]) for i in range(0, len(values), 16)]
        return [f"static const {ctype} {name}[{len(values)}] = {{", *(f"  {r}," for r in rows), "};"]

    lines = [
        "/* Generated by rc_keras.export.firmware from the bundle's feature_params "
        "(rc_keras.features_fixed.tables). Do not edit. */",
        "#ifndef RC_FRONTEND_DATA_H_", "#define RC_FRONTEND_DATA_H_", "", "#include <stdint.h>", "",
        f"#define RC_FE_SAMPLE_RATE {params.sample_rate}",
        f"#define RC_FE_WINDOW {params.window_len}",
        f"#define RC_FE_STRIDE {params.stride_len}",
        f"#define RC_FE_FFT {params.fft_length}",
        f"#define RC_FE_CHANNELS {params.num_mel_bins}",
        f"#define RC_FE_FIRST_BIN {t['first_bin']}",
        f"#define RC_FE_LAST_BIN {t['last_bin']}",
        "/* mel (Q15 window, Q8 magnitudes, Q15 weights, DFT / FFT) * 2^-EXPONENT",
        "   = the mel energy of the waveform pcm / 32768, as rc_keras.features.log_mel sees it. */",
        f"#define RC_FE_MEL_EXPONENT {t['mel_exponent']}",
        "/* log_offset in the units of the integer mel energies (2^-EXPONENT). */",
        f"#define RC_FE_LOG_OFFSET_Q {t['log_offset_q']}ull",
        "/* Normalization after the log (0: none); see rc_frontend.h. */",
        "#define RC_FE_NORMALIZATION 0", "",
        "/* Hamming window (periodic), Q15. */",
        *array("int16_t", "rc_fe_window", t["window"]), "",
        "/* W^k = exp(-2 pi i k / FFT), k = 0 ... FFT / 2: cos (low half), -sin (high half), Q15. */",
        *array("int32_t", "rc_fe_twiddle", t["twiddle_packed"]), "",
        "/* Bit reversal over FFT / 2 positions. */",
        *array("uint8_t" if params.fft_length <= 512 else "uint16_t", "rc_fe_bit_reverse",
               t["bit_reverse"]), "",
        "/* Mel channel c: weights[sum(lengths[:c]) ...] over bins start[c] ... start[c] + length[c]. */",
        *array("uint16_t", "rc_fe_channel_start", t["channel_start"]),
        *array("uint16_t", "rc_fe_channel_length", t["channel_length"]),
        *array("uint16_t", "rc_fe_weights", t["weights"]), "",
        "/* sqrt(i * 2^24) * 2^8, i = 64 ... 256; log2(1 + i / 256) * 2^16, i = 0 ... 256. */",
        *array("uint32_t", "rc_fe_sqrt_table", t["sqrt_table"]),
        *array("int32_t", "rc_fe_log2_table", t["log2_table"]), "",
        "#endif  /* RC_FRONTEND_DATA_H_ */", ""]
    path = pathlib.Path(out_dir) / "rc_frontend_data.h"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def write_policy_source(policy, out_dir, sidecar, feature_params=None):
    """Writes ``rc_policy_data.h``: a stream policy's parameters for the firmware.

    ``firmware/rc_stream_policy.cc`` runs the onset policy of `rc_keras.streaming` with
    these numbers; the dB levels become the integers (1/256 dB) the host's
    `rc_keras.streaming.OnsetDetector` compares, so both decide alike.

    Args:
        policy: a `rc_keras.streaming.StreamPolicy` with ``mode="onset"`` (staggered
            instances would need one set of recurrent states each; the firmware has one).
            Its ``threshold`` must be None or the step model's (the firmware's spike test
            uses the model header's thresholds: export the step model with the threshold).
        out_dir: folder (the model's C array goes there too).
        sidecar: the step model's sidecar dict (`rc_keras.export.tflite_step.load_sidecar`):
            class names (for ``ignore_classes``), number of classes, threshold.
        feature_params: the front end's `rc_keras.features.FrontEndParams` (or dict): its
            mel channels are the energy's; default the sidecar's ``feature_params``.

    Returns:
        The header's path.

    Example:

    ```python
    from rc_keras import streaming
    from rc_keras.export import firmware
    sidecar = {"num_classes": 3, "class_names": ["yes", "no", "unknown"],   # load_sidecar(step)
               "threshold": 0.9, "feature_params": {"context_frames": 0}}
    path = firmware.write_policy_source(streaming.StreamPolicy(), "model_dir", sidecar)
    assert "#define RC_POLICY_ONSET_Q8 1024" in path.read_text()        # onset_db 4.0
    ```
    """
    from rc_keras import features, streaming  # noqa: PLC0415

    if not isinstance(policy, streaming.StreamPolicy):
        raise ValueError(f"`policy` must be a rc_keras.streaming.StreamPolicy; received "
                         f"{type(policy).__name__}.")
    if policy.mode != "onset":
        raise ValueError(f"the firmware runs the onset policy (one set of recurrent states): "
                         f"`policy.mode` must be 'onset'; received {policy.mode!r}.")
    if policy.threshold is not None and not np.array_equal(
            np.atleast_1d(np.asarray(policy.threshold, np.float32)),
            np.atleast_1d(np.asarray(sidecar.get("threshold"), np.float32))):
        raise ValueError(f"`policy.threshold` ({policy.threshold!r}) differs from the step "
                         f"model's ({sidecar.get('threshold')!r}): the firmware's spike test "
                         "uses the model header's; export the step model with that threshold.")
    params = feature_params if feature_params is not None else sidecar.get("feature_params")
    if not params:
        raise ValueError("`feature_params` is needed (the sidecar has none): the energy is "
                         "the front end's mel power.")
    if isinstance(params, dict):
        params = features.FrontEndParams(**params)
    num_classes = int(sidecar.get("num_classes") or sidecar["num_outputs"])
    names = list(sidecar.get("class_names") or [])
    ignored = [int(i < len(names) and names[i] in policy.ignore_classes)
               for i in range(num_classes)]
    channels = params.num_mel_bins
    table = streaming.exp2_table()
    lines = [
        "/* Generated by rc_keras.export.firmware.write_policy_source from a "
        "rc_keras.streaming.StreamPolicy. Do not edit. */",
        "#ifndef RC_POLICY_DATA_H_", "#define RC_POLICY_DATA_H_", "", "#include <stdint.h>", "",
        f"/* {policy!r} */",
        f"#define RC_POLICY_MAX_FRAMES {policy.max_frames}",
        f"#define RC_POLICY_REFRACTORY_FRAMES {policy.refractory_frames}",
        f"#define RC_POLICY_ONSET_FRAMES {policy.onset_frames}",
        f"#define RC_POLICY_RELEASE_FRAMES {policy.release_frames}",
        f"#define RC_POLICY_PRE_ROLL_FRAMES {policy.pre_roll_frames}",
        "/* onset_db and floor_rise_db in 1/256 dB (rc_keras.streaming.to_q8). */",
        f"#define RC_POLICY_ONSET_Q8 {streaming.to_q8(policy.onset_db)}",
        f"#define RC_POLICY_FLOOR_RISE_Q8 {streaming.to_q8(policy.floor_rise_db)}",
        "/* Frame energy (rc_keras.streaming.log_mel_energy_q8): the log-mel channels, the",
        "   front end's log2 (Q16) -> log factor (float32), log2(channels) in Q8, dB per log2",
        "   in Q16, and 2^(-j / 256) in Q30 for j = 0 ... 256. */",
        f"#define RC_POLICY_CHANNELS {channels}",
        f"#define RC_POLICY_LN2_Q16 {float(streaming.LN2_Q16).hex()}f",
        f"#define RC_POLICY_LOG2_CHANNELS_Q8 {int(streaming._log2_q8(np.uint64(channels)))}",
        f"#define RC_POLICY_DB_PER_LOG2_Q16 {streaming.DB_PER_LOG2_Q16}",
        f"static const uint32_t rc_policy_exp2[{len(table)}] = {{",
        *(f"  {', '.join(str(int(v)) for v in table[i:i + 8])}," for i in range(0, len(table), 8)),
        "};",
        "", f"#define RC_POLICY_NUM_CLASSES {num_classes}",
        "/* 1: a spike of this class ends the instance without a detection (ignore_classes"
        + "".join(f", {n}" for n, i in zip(names, ignored) if i) + "). */",
        f"static const uint8_t rc_policy_ignored[{num_classes}] = {{"
        + ", ".join(str(i) for i in ignored) + "};",
        "", "#endif  /* RC_POLICY_DATA_H_ */", ""]
    path = pathlib.Path(out_dir) / "rc_policy_data.h"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def run_stream_firmware(build, pcm, energies=False, timeout=600):
    """Runs a long recording through the firmware's stream policy (a ``policy`` build).

    Args:
        build: `build_firmware` result built with ``frontend`` and ``policy``.
        pcm: int16 samples (1-D) at the front end's rate.
        energies: also return every frame's energy (1/256 dB).

    Returns:
        dict: "detections" (`rc_keras.streaming.Detection` list, times from the front end's
        stride and window, confidence dequantized as the host's `TFLiteStepNetwork` does,
        the integer in "confidence_q" of "raw_detections"), "frames", "invocations",
        "instructions_per_frame" (front end + energy, and policy + network, on average),
        "energies" (with ``energies``).
    """
    from rc_keras import features, streaming  # noqa: PLC0415

    if not build.get("policy"):
        raise ValueError("`build` has no stream policy: build_firmware(..., frontend=True, "
                         "policy=StreamPolicy(...)).")
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"`pcm` must be a 1-D int16 array; received {pcm.dtype} {pcm.shape}.")
    result = run_firmware(build, [pcm], kind="stream", timeout=timeout, energies=energies)
    sidecar = build["sidecar"]
    params = build["frontend"] if not isinstance(build["frontend"], bool) else None
    params = params or sidecar["feature_params"]
    if isinstance(params, dict):
        params = features.FrontEndParams(**params)
    spec = sidecar["outputs"]["probs"]
    names = sidecar.get("class_names")
    def seconds(frame, end=False):   # as rc_keras.streaming.Listener reports times
        return round((frame * float(params.stride_ms)
                      + (float(params.window_ms) if end else 0.0)) / 1000.0, 6)

    detections = []
    for d in result["detections"]:
        p = (np.float32(d["confidence_q"]) - spec["zero_point"]) * np.float32(spec["scale"])
        if sidecar["readout"] == "sigmoid":
            p = max(p, np.float32(1) - p)
        confidence = float(p)
        detections.append(streaming.Detection(
            label=d["label"], keyword=names[d["label"]] if names else str(d["label"]),
            spike_frame=d["spike_frame"], onset_frame=d["onset_frame"],
            start_frame=d["start_frame"], confidence=confidence,
            spike_time_s=seconds(d["spike_frame"], end=True),
            onset_time_s=seconds(d["onset_frame"])))
    stream = result["stream"]
    per = result["ticks_per_instruction"]
    frames = max(stream["frames"], 1)
    out = {"detections": detections, "raw_detections": result["detections"],
           "frames": stream["frames"], "invocations": stream["invocations"],
           "instructions_per_frame": {"frontend": stream["frontend_ticks"] / per / frames,
                                      "policy_and_network": stream["net_ticks"] / per / frames}}
    if energies:
        out["energies"] = np.array(result["energies"], np.int64)
    return out


def _bundle_step(bundle_dir, quantization):
    bundle_dir = pathlib.Path(bundle_dir)
    report_path = bundle_dir / "report.json"
    if not bundle_dir.is_dir():
        raise ValueError(f"bundle directory {bundle_dir} does not exist (rc-keras export writes it).")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if quantization is None:
        quantization = report.get("c_array", {}).get("model") or "int8"
    if quantization not in ("int8", "int16x8"):
        raise ValueError(f"the firmware runs an int8 or int16x8 step model; the bundle's C array "
                         f"is {quantization} (pick one with --model int8|int16x8).")
    step = bundle_dir / f"step_{quantization}.tflite"
    if not step.exists():
        raise ValueError(f"bundle {bundle_dir} has no {step.name}: export it (--{quantization}).")
    return report, step


def device_report(bundle_dir, board="mps2-an386", kernels="cmsis_nn", tree=None, quantization=None,
                  sequences=None, lengths=None, build_dir=None, run=True, update_report=True,
                  lut=False):
    """Builds the firmware for a bundle and, with ``run``, checks it in QEMU against TFLM.

    Args:
        bundle_dir: an `rc_keras.export.export_bundle` directory.
        board: "mps2-an386" or "mps3-an547".
        kernels: "cmsis_nn" or "ref" (used to pick the TFLM tree when ``tree`` is None).
        tree: an exported TFLM tree (a user's own checkout export).
        quantization: "int8" or "int16x8"; default the bundle's C array model.
        sequences: float (clips, time, *features) held-out sequences for ``run``.
        lengths: optional valid frames per clip.
        build_dir: default ``<bundle>/firmware/<board>-<kernels>-<quantization>``.
        update_report: add the row to the bundle's ``report.json`` under "device".
        lut: int8 LOGISTIC / TANH as table lookups, identity clips dropped (`build_firmware`).

    Returns:
        dict: the build's memory figures, and with ``run`` the agreement with the TFLM
        Python interpreter (class, spike frame, every frame's outputs) and instructions.
    """
    report, step = _bundle_step(bundle_dir, quantization)
    quantization = step.stem.split("_", 1)[1]
    tree = pathlib.Path(tree) if tree else tflm_tree(kernels)
    kernels = tree_kernels(tree)
    build_dir = build_dir or pathlib.Path(bundle_dir) / "firmware" / (
        f"{board}-{kernels}-{quantization}" + ("-lut" if lut else ""))
    arena = report.get("c_array", {}).get("arena_bytes") \
        if report.get("c_array", {}).get("model") == quantization else None
    build = build_firmware(step, build_dir, board=board, tree=tree, arena_bytes=None if lut else arena,
                           lut=lut)
    row = {"model": step.name + (" (LUT activations)" if lut else ""), "board": board, "cpu": BOARDS[board], "kernels": kernels,
           "elf": str(build["elf"]), **{k: v for k, v in build["memory"].items() if k != "sections"}}
    if run:
        if sequences is None:
            raise ValueError("running the firmware needs held-out sequences (--verify-sequences "
                             "FILE or --task).")
        from rc_keras.export.interpreters import StepRunner  # noqa: PLC0415

        x = np.asarray(sequences, np.float32)
        runner = StepRunner(step, runtime="tflm")
        n = lengths if lengths is not None else [x.shape[1]] * len(x)
        clips_q = [runner.quantize_frames(clip[:int(k)]) for clip, k in zip(x, n)]
        result, agreement = compare_with_host(build, step, clips_q)
        row.update(summary(build, result, float(np.mean(n))))
        row.update(agreement)
    if update_report and (pathlib.Path(bundle_dir) / "report.json").exists():
        rows = [r for r in report.get("device", [])
                if (r.get("model"), r.get("board"), r.get("kernels")) != (row["model"], board, kernels)]
        report["device"] = rows + [row]
        save_json(pathlib.Path(bundle_dir) / "report.json", report)
    return row


def format_device_table(rows):
    """Device rows (`device_report`) as a markdown table."""
    head = ["model", "board", "kernels", "flash KB", "RAM KB", "arena used", "net instr/frame",
            "front end instr/frame", "class agree %", "spike agree %", "outputs exact %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        def pct(key):
            return f"{100 * r[key]:.1f}" if key in r else "-"
        lines.append("| " + " | ".join([
            r["model"], r["board"], r["kernels"], f"{r['flash_bytes'] / 1024:.1f}",
            f"{r['ram_bytes'] / 1024:.1f}", str(r.get("arena_used_bytes", "-")),
            f"{r['network_instructions_per_frame']:.0f}" if "network_instructions_per_frame" in r else "-",
            f"{r['frontend_instructions_per_frame']:.0f}" if "frontend_instructions_per_frame" in r else "-",
            pct("class_agreement"), pct("spike_frame_agreement"), pct("outputs_bit_exact")]) + " |")
    return "\n".join(lines)


def pcm_clips(root, split, clip_samples=16000, limit=None):
    """16 kHz int16 clips of a Speech Commands-layout folder, zero-padded or cut to
    ``clip_samples`` (the front end's clip), in `speech_commands.list_split` order.

    Returns:
        (int16 array (clips, clip_samples), list of the clips' relative paths).
    """
    import wave  # noqa: PLC0415

    from rc_keras.datasets.speech_commands import list_split  # noqa: PLC0415

    paths = list_split(root, split)[:limit]
    clips = np.zeros((len(paths), clip_samples), np.int16)
    for k, rel in enumerate(paths):
        with wave.open(str(pathlib.Path(root) / rel)) as handle:
            if (handle.getframerate(), handle.getsampwidth(), handle.getnchannels()) != (16000, 2, 1):
                raise ValueError(f"{rel}: the device front end takes 16 kHz 16-bit mono WAV.")
            pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")[:clip_samples]
        clips[k, :len(pcm)] = pcm
    return clips, paths
