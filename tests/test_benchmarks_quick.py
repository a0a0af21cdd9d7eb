"""Every benchmark runs in its --quick mode and records how it was run (tens of minutes).

Marked ``benchmarks``, not ``large``: the runs together take longer than CI's budget allows
beside the large tests, so they run by hand with ``python -m pytest -m benchmarks``.

Each ``benchmarks/bench_*.py`` writes into a temporary folder (never the committed
benchmarks/results/), and each results JSON it writes carries the ``"provenance"`` of
benchmarks/provenance.py: the exact command line, versions, date and load.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# script -> its quick arguments; "{tmp}" is the test's temporary folder, "{keywords}" the
# keyword set every keyword benchmark shares (see `keyword_set`).
QUICK = {
    "bench_cli_startup.py": ["--repeats", "1", "--out", "{tmp}/out"],
    "bench_deploy.py": ["--quick", "--out", "{tmp}/out", "--keywords", "{keywords}"],
    "bench_distribute.py": ["--quick", "--out", "{tmp}/out"],
    "bench_features.py": ["--quick", "--out", "{tmp}/out", "--data-dir", "{tmp}/data"],
    "bench_firmware.py": ["--quick", "--out", "{tmp}/out", "--keywords", "{tmp}/keywords"],
    "bench_kws.py": ["--quick", "--out", "{tmp}/out", "--work", "{tmp}/work", "--data",
                     "{keywords}"],
    "bench_kws_epoch_cost.py": ["--quick", "--out", "{tmp}/out", "--work", "{tmp}/work",
                                "--data", "{keywords}"],
    "bench_kws_piper.py": ["--quick", "--out", "{tmp}/out", "--work", "{tmp}/work",
                           "--data", "{tmp}/data"],
    "bench_kws_transfer.py": ["--quick", "--out", "{tmp}/out", "--work", "{tmp}/work",
                              "--data", "{tmp}/data"],
    "bench_schedule_fit.py": ["--quick", "--out", "{tmp}/out"],
    "bench_spiking.py": ["--quick", "--out", "{tmp}/out"],
    "bench_streaming.py": ["--quick", "--out", "{tmp}/out", "--work", "{tmp}/work"],
    "bench_temporal_mnist.py": ["--quick", "--out", "{tmp}/out"],
    "bench_threshold_schedule.py": ["--quick", "--out", "{tmp}/out", "--kws-data", "{keywords}",
                                    "--kws-work", "{tmp}/work"],
    "bench_toy_tasks.py": ["--quick", "--out", "{tmp}/out"],
    "bench_train_speed.py": ["--quick", "--out", "{tmp}/out"],
    "bench_tuning.py": ["--quick", "--out", "{tmp}/out", "--directory", "{tmp}/search"],
}
# Benchmarks whose --quick run checks without writing results.
WRITES_NOTHING_WHEN_QUICK = {"bench_distribute.py"}


@pytest.fixture(scope="module")
def keyword_set(tmp_path_factory):
    """The keyword set of ``bench_kws --quick`` (its own `make_data` and `QUICK` recipe:
    24 espeak-ng voices, seed 0), synthesized once for every script given "{keywords}"."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_kws  # noqa: PLC0415 - benchmarks/ is not a package
    finally:
        sys.path.remove(str(BENCHMARKS))
    root = tmp_path_factory.mktemp("keywords") / "data"
    bench_kws.make_data(root, bench_kws.QUICK)
    return root


def listing(root):
    """Every file under ``root`` with its size and modification time."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


@pytest.mark.benchmarks
def test_every_benchmark_has_a_quick_run():
    # Large with the runs: a benchmark added on another branch gets its entry when merged.
    assert sorted(QUICK) == sorted(p.name for p in BENCHMARKS.glob("bench_*.py"))


@pytest.mark.benchmarks
@pytest.mark.parametrize("script", sorted(QUICK))
def test_quick_run_records_its_command(script, tmp_path, request):
    if script == "bench_firmware.py" and not all(
            shutil.which(tool) for tool in ("make", "arm-none-eabi-gcc", "qemu-system-arm")):
        pytest.skip("the firmware benchmark needs the Arm toolchain and QEMU (.ci/run)")
    if script == "bench_kws_piper.py":
        from rc_keras.datasets import tts_engines  # noqa: PLC0415

        if not tts_engines.PIPER.available():
            pytest.skip("the Piper check needs the neural-tts extra (pip install .[test])")
    shared = (request.getfixturevalue("keyword_set")
              if any("{keywords}" in a for a in QUICK[script]) else None)
    before = listing(shared) if shared else None
    argv = [a.format(tmp=tmp_path, keywords=shared) for a in QUICK[script]]
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *argv], cwd=ROOT,
                            env=environ, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    # The shared set serves the next script only if this one left it as it was.
    assert shared is None or listing(shared) == before, f"{script} changed {shared}"
    written = sorted((tmp_path / "out").glob("*.json"))
    if script in WRITES_NOTHING_WHEN_QUICK:
        return
    assert written, f"{script} wrote no results JSON"
    for path in written:
        record = json.loads(path.read_text())["provenance"]
        assert record["command"] == shlex.join(["python", f"benchmarks/{script}", *argv])
        assert {"python", "keras"} <= set(record["versions"]) and record["date"]
        assert record["load_average"] is None or len(record["load_average"]) == 3
