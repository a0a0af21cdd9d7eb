"""Start-up time of the ``rc-keras`` command where no TensorFlow is needed.

Times, as a shell would run them, ``rc-keras --help``, each subcommand's ``--help`` and two
argument errors (an unknown task, a missing model file), each in a fresh process, and
records whether TensorFlow was imported (``python -X importtime``).

Target: ``rc-keras --help`` under 1 s (median wall time), and no TensorFlow import for any
of these commands.

    python benchmarks/bench_cli_startup.py [--repeats 5]
"""

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.0
SUBCOMMANDS = ("train", "evaluate", "sweep", "export", "demo", "make-keywords", "tune",
               "firmware")
CASES = ([("--help",)] + [(command, "--help") for command in SUBCOMMANDS]
         + [("train", "--task", "nope", "--out", "x"),
            ("evaluate", "--model", "missing.keras", "--task", "spotting")])


def _command(args, console_script):
    if console_script:
        return [console_script, *args]
    return [sys.executable, "-m", "rc_keras.cli", *args]


def _environ():
    environ = {k: v for k, v in os.environ.items() if k != "RC_KERAS_DEBUG"}
    environ["PYTHONPATH"] = str(ROOT)
    return environ


def time_case(args, repeats, console_script=None, cwd=None):
    """Median and min wall seconds of a command, its exit status and TensorFlow use."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(_command(args, console_script), capture_output=True, text=True,
                                env=_environ(), cwd=cwd)
        seconds.append(time.perf_counter() - start)
    traced = subprocess.run([sys.executable, "-X", "importtime", "-m", "rc_keras.cli", *args],
                            capture_output=True, text=True, env=_environ(), cwd=cwd)
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines()
                if line.startswith("import time:")}
    return {
        "command": "rc-keras " + " ".join(args),
        "exit_status": result.returncode,
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "imports_tensorflow": "tensorflow" in imported,
        "imports_keras": "keras" in imported,
        "stderr_lines": len(result.stderr.splitlines()),
    }


def run(repeats=5, log=print, cwd=None):
    """Times every case; returns the result dict."""
    console_script = shutil.which("rc-keras")
    baseline = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=_environ(), check=True)
        baseline.append(time.perf_counter() - start)
    rows = []
    for args in CASES:
        row = time_case(args, repeats, cwd=cwd)
        rows.append(row)
        log(f"{row['command']}: median {row['median_s']:.3f} s, tensorflow "
            f"{row['imports_tensorflow']}, exit {row['exit_status']}")
    console = None
    if console_script:
        console = time_case(("--help",), repeats, console_script=console_script, cwd=cwd)
        console["command"] = "rc-keras --help (console script)"
        log(f"console script --help: median {console['median_s']:.3f} s")
    help_row = console or rows[0]
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "benchmark": "cli_startup",
        "date": datetime.date.today().isoformat(),
        "repeats": repeats,
        "python_startup_median_s": round(statistics.median(baseline), 3),
        "rows": rows,
        "console_script": console,
        "target_help_seconds": TARGET_SECONDS,
        "help_seconds": help_row["median_s"],
        "help_target_met": help_row["median_s"] < TARGET_SECONDS,
        "no_tensorflow_target_met": not any(r["imports_tensorflow"] for r in rows),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1min": load,
    }


def to_markdown(result):
    lines = ["| command | exit | median s | min s | imports TensorFlow | stderr lines |",
             "|---|---|---|---|---|---|"]
    rows = result["rows"] + ([result["console_script"]] if result["console_script"] else [])
    for r in rows:
        lines.append(f"| `{r['command']}` | {r['exit_status']} | {r['median_s']:.3f} | "
                     f"{r['min_s']:.3f} | {'yes' if r['imports_tensorflow'] else 'no'} | "
                     f"{r['stderr_lines']} |")
    met = "met" if result["help_target_met"] else "**not met**"
    no_tf = "met" if result["no_tensorflow_target_met"] else "**not met**"
    lines += ["", f"Target `rc-keras --help` < {result['target_help_seconds']:g} s: {met} "
                  f"({result['help_seconds']:.3f} s median of {result['repeats']}). "
                  f"No TensorFlow import for help and argument errors: {no_tf}. "
                  f"Bare `python -c pass`: {result['python_startup_median_s']:.3f} s. "
                  f"Python {result['python']}, {result['cpus']} CPUs, load average (1 min) "
                  f"{result['load_average_1min']}, {result['date']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = run(args.repeats, cwd=out)
    provenance.write_json(out / "cli_startup.json", result, __file__, argv)
    (out / "cli_startup.md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
