"""RC training under tf.distribute.MirroredStrategy equals training on one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "scripts" / "mirrored_vs_single.py"


def test_mirrored_strategy_matches_single_device():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3  # the step really changed the weights
    assert result["weight_diff"] < 1e-5
    assert abs(result["loss_mirrored"] - result["loss_single"]) < 1e-5
    assert abs(result["mst_mirrored"] - result["mst_single"]) < 1e-5
    # Every RC metric is reduced across replicas to the one-device value...
    for key in ("spike_accuracy", "mean_spike_time", "no_spike_rate"):
        assert abs(result["metrics_mirrored"][key] - result["metrics_single"][key]) < 1e-5, key
    assert result["distinct_spikes"] > 2  # spikes at several steps: the test can tell apart
    # ...except the loop length, the cost actually run: the mean over replicas.
    assert result["metrics_single"]["steps_run"] == result["steps_run_expected_single"]
    assert result["metrics_mirrored"]["steps_run"] == result["steps_run_expected_mirrored"]
    # Per-example halting compacts each replica's rows: the summed count is exact too.
    for where in ("single", "mirrored"):
        assert abs(result[f"metrics_{where}"]["compute_fraction"]
                   - result[f"compute_fraction_expected_{where}"]) < 1e-6, where
    assert result["compute_fraction_expected_single"] < result["metrics_single"]["steps_run"] / 10
