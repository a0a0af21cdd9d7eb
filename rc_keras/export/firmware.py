"""Build the rank-coded firmware for a step model and run it on emulated Cortex-M boards.

The firmware (``firmware/`` in the repository: Makefile, startup, linker script, the RC loop
over TensorFlow Lite Micro) is compiled with the GNU Arm toolchain against an exported TFLM
source tree and run in ``qemu-system-arm`` with semihosting. Clips go in through a file that
the firmware reads frame by frame; it prints every frame's integer outputs, each clip's class
and spike frame, and instruction counts (SysTick under ``-icount shift=0``).

```python
from rc_keras.export import firmware
tree = firmware.tflm_tree("cmsis_nn")                     # extracted once into a cache
build = firmware.build_firmware("out/step_int8.tflite", "build/m4", board="mps2-an386", tree=tree)
result = firmware.run_firmware(build, frames_q)           # (clips, time, *features) integers
result["clips"][0]["label"], result["frames"][0]["outputs"], build["memory"]["flash_bytes"]
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
ARENA_MARGIN_BYTES = 256


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


def _lib_args(tree, board):
    return [f"TFLM_TREE={tree}", f"BOARD={board}", f"TFLM_LIB_CACHE={cache_dir() / 'tflm-lib'}"]


def build_tflm_library(tree, board="mps2-an386", jobs=None, timeout=3600):
    """Compiles the TFLM tree into a static library for ``board`` once (cached; minutes)."""
    check_board(board)
    tree = pathlib.Path(tree).resolve()
    digest = hashlib.md5(str(tree).encode()).hexdigest()[:8]
    with _locked(cache_dir() / "tflm-lib" / f"{tree.name}-{digest}-{board}.lock"):
        _make(["lib", f"-j{jobs or os.cpu_count() or 1}", *_lib_args(tree, board)],
              firmware_dir(), timeout)


def check_board(board):
    if board not in BOARDS:
        raise ValueError(f"`board` must be one of {', '.join(BOARDS)}; received {board!r}.")
    return board


def write_model_source(step_path, out_dir, arena_bytes=None):
    """Writes ``rc_model_data.{c,h}`` for a quantized step model into ``out_dir``.

    ``arena_bytes`` defaults to the smallest arena the TFLM Python interpreter allocates
    the model in, plus `ARENA_MARGIN_BYTES` (the firmware prints what it really used).
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
    if arena_bytes is None:
        arena_bytes = (tflm_arena(data)["min_arena_bytes"] + ARENA_MARGIN_BYTES + 15) // 16 * 16
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


def build_firmware(step_path, build_dir, board="mps2-an386", tree=None, frontend=False,
                   per_state_copy=False, arena_bytes=None, model_dir=None, jobs=None):
    """Builds the firmware ELF for a quantized step model.

    Args:
        step_path: the step .tflite (int8 or int16x8) with its sidecar.
        build_dir: where the C array, objects, ELF and map go.
        board: "mps2-an386" (Cortex-M4) or "mps3-an547" (Cortex-M55).
        tree: an exported TFLM tree (default: `tflm_tree` ("cmsis_nn")). Its kernels are
            what it was exported with (`tree_kernels`).
        frontend: compile the audio front end (PCM input clips).
        per_state_copy: the old state-by-state feedback (only to show the aliasing bug).
        arena_bytes: TFLM arena (default: measured minimum + margin).
        model_dir: use this folder's ``rc_model_data.{c,h}`` (a bundle's) instead of
            writing them from ``step_path``.

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
        write_model_source(step_path, model_dir, arena_bytes)
    build_tflm_library(tree, board, jobs)
    _make(["all", *_lib_args(tree, board), f"MODEL_DIR={model_dir}", f"BUILD_DIR={build_dir}",
           f"FRONTEND={int(bool(frontend))}", f"PER_STATE_COPY={int(bool(per_state_copy))}"],
          firmware_dir(), timeout=1800)
    return {"elf": build_dir / "firmware.elf", "board": board, "kernels": tree_kernels(tree),
            "tree": str(tree), "memory": memory_figures(build_dir), "sidecar": sidecar,
            "frontend": bool(frontend)}


def write_input(path, clips, kind="frames", whole_clip=False, frame_size=None):
    """Writes the firmware's input file (format in firmware/main.cc).

    Args:
        clips: list of integer arrays: quantized frames (time, *features) for "frames",
            int16 samples (n,) for "pcm".
        kind: "frames" or "pcm".
        whole_clip: run every frame of every clip (report the first spike, don't stop).
    """
    if kind not in ("frames", "pcm"):
        raise ValueError(f"`kind` must be 'frames' or 'pcm'; received {kind!r}.")
    clips = [np.ascontiguousarray(c) for c in clips]
    if not clips:
        raise ValueError("`clips` is empty.")
    dtype = clips[0].dtype
    if kind == "pcm" and dtype != np.int16:
        raise ValueError(f"pcm clips must be int16; received {dtype}.")
    if dtype not in (np.int8, np.int16) or any(c.dtype != dtype for c in clips):
        raise ValueError("clips must all be int8 or all int16 arrays.")
    if frame_size is None:
        frame_size = 1 if kind == "pcm" else int(np.prod(clips[0].shape[1:]))
    with open(path, "wb") as out:
        out.write(struct.pack("<8i", _INPUT_MAGIC, 1, 0 if kind == "frames" else 1, len(clips),
                              frame_size, dtype.itemsize, int(bool(whole_clip)), 0))
        for clip in clips:
            if len(clip) < 1:
                raise ValueError("every clip needs at least one frame / sample.")
            out.write(struct.pack("<i", len(clip)))
            out.write(clip.astype(dtype.newbyteorder("<")).tobytes())


def parse_output(text):
    """Parses the firmware's output lines (see firmware/main.cc) into a dict."""
    result = {"frames": [], "clips": [], "errors": []}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        tag, values = parts[0], parts[1:]
        if tag == "F":
            clip, frame, net, fe, *outputs = (int(v) for v in values)
            result["frames"].append({"clip": clip, "frame": frame, "net_ticks": net,
                                     "frontend_ticks": fe, "outputs": outputs})
        elif tag == "C":
            clip, label, spike, spiked, run, net, fe = (int(v) for v in values)
            result["clips"].append({"clip": clip, "label": label, "spike_frame": spike,
                                    "spiked": bool(spiked), "frames_run": run, "net_ticks": net,
                                    "frontend_ticks": fe})
        elif tag == "A":
            result["arena_used_bytes"], result["arena_bytes"] = int(values[0]), int(values[1])
        elif tag == "K":
            result["ticks_per_instruction"] = int(values[0]) / int(values[1])
        elif tag == "S":
            result["stack_used_bytes"], result["stack_bytes"] = int(values[0]), int(values[1])
        elif tag == "RC":
            result["errors"].append(line)
    return result


def run_firmware(build, clips, kind="frames", whole_clip=False, timeout=600):
    """Runs a built firmware in QEMU on ``clips`` and returns its parsed output.

    Instruction counts are added: "net_instructions" / "frontend_instructions" per frame
    and per clip (ticks divided by the board's measured ticks per instruction).

    Raises:
        RuntimeError: when the firmware exits non-zero or prints an error.
    """
    with tempfile.TemporaryDirectory() as folder:
        write_input(pathlib.Path(folder) / "rc_input.bin", clips, kind, whole_clip)
        command = ["qemu-system-arm", "-machine", build["board"], "-nographic", "-monitor", "none",
                   "-serial", "none", "-semihosting-config", "enable=on,target=native",
                   "-icount", "shift=0", "-kernel", str(build["elf"])]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)
    result = parse_output(done.stdout)
    result["returncode"] = done.returncode
    if done.returncode != 0 or result["errors"]:
        raise RuntimeError(f"firmware exited with {done.returncode}: "
                           f"{' '.join(result['errors']) or done.stderr[-2000:]}")
    per = result["ticks_per_instruction"]
    for row in result["frames"] + result["clips"]:
        row["net_instructions"] = round(row["net_ticks"] / per)
        row["frontend_instructions"] = round(row["frontend_ticks"] / per)
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
                if runner.crossed(raw):
                    spike = t
                    if not whole_clip:
                        break
        results.append({"outputs": np.array(outputs), "label": label,
                        "spike_frame": len(clip) - 1 if spike is None else spike,
                        "spiked": spike is not None})
    return results


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
