"""RC training under MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).parent / "scripts" / "multiworker_train.py"
TIMEOUT = 300  # seconds for the whole run; the workers are killed after it


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_train_like_one_device_on_the_global_batch():
    ports = ",".join(map(str, _free_ports(2)))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    env.pop("TF_CONFIG", None)
    workers = [subprocess.Popen([sys.executable, str(SCRIPT), str(i), ports], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    deadline = time.monotonic() + TIMEOUT
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert worker.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:  # a worker left waiting for its peer must not outlive the test
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert [r["index"] for r in results] == [0, 1]
    for r in results:
        assert r["replicas"] == 2
        assert r["steps"] == 3
        assert r["moved"] > 1e-2  # training really changed the weights
        assert r["weight_diff"] < 1e-5
        for key in ("loss", "spike_accuracy", "mean_spike_time", "no_spike_rate"):
            assert abs(r["distributed"][key] - r["single"][key]) < 1e-5, key
    assert results[0]["distributed"] == results[1]["distributed"]
