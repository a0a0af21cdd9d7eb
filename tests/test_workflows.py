"""The library path under ``rc-keras``: one train / evaluate / sweep path for every task,
whose special cases enter through `rc_keras.tasks.Task` hooks."""

import dataclasses

import numpy as np
import pytest

from rc_keras import tasks, workflows

TINY = dict(epochs=1, train_size=64, val_size=16, test_size=32, units=4, verbose=0,
            backup=False)


@pytest.fixture(scope="module")
def spotting_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    workflows.train("spotting", out, **TINY)
    return out / "model.keras"


@pytest.fixture
def hooked_task():
    """Spotting with a ``model_data`` hook (variable lengths) and ``step_ms`` (audio frames)."""
    calls = []

    def model_data(task, model, model_path, size=None, seed=0, data_root=None):
        calls.append((model_path, size, seed, data_root))
        x, y = tasks.get_task("spotting").data("test", size, seed)
        lengths = np.full(len(y), x.shape[1] - 5, dtype=np.int32)
        return {"inputs": x, "lengths": lengths}, y

    task = dataclasses.replace(tasks.get_task("spotting"), name="spotting-hooked",
                               model_data=model_data, step_ms=lambda model: (10.0, 25.0, 2))
    tasks.register_task(task)
    yield task, calls
    tasks._REGISTRY.pop(task.name)


def test_evaluate_and_sweep_read_the_task_s_hooks(spotting_model, hooked_task, tmp_path):
    task, calls = hooked_task
    model = workflows.load_model(spotting_model)
    result = workflows.evaluate(spotting_model, task.name, test_size=32, seed=3,
                                data_root=None, allow_task_mismatch=True)
    assert calls == [(spotting_model, 32, 3, None)]
    x, y = task.model_data(task, model, spotting_model, size=32, seed=3)
    assert result == {"task": task.name, "model": str(spotting_model),
                      **workflows.evaluate_model(model, x, y)}
    sweep = workflows.sweep(spotting_model, task.name, [0.6, 0.9], test_size=32, seed=3,
                            allow_task_mismatch=True)
    plain = workflows.sweep(spotting_model, "spotting", [0.6, 0.9], test_size=32, seed=3)
    (points,), (plain_points,) = sweep["curves"].values(), plain["curves"].values()
    for point in points:  # frames -> ms with 2 look-ahead frames, capped at the clip's end
        assert point["mean_spike_time_ms"] <= 25.0 + 10.0 * (x["inputs"].shape[1] - 5 - 1)
    assert all("mean_spike_time_ms" not in p for p in plain_points)
    # The lengths the hook gave cut the sequences: no answer after step 20 of 25.
    assert max(p["mean_spike_time"] for p in points) <= 20
    with pytest.raises(workflows.CLIError, match="--schedule is not supported for --task "
                                                 "spotting-hooked"):
        workflows.sweep(spotting_model, task.name, [0.9], test_size=32, schedule=True,
                        allow_task_mismatch=True)


def test_a_finished_run_is_not_overwritten(spotting_model):
    with pytest.raises(workflows.CLIError, match="holds a finished run"):
        workflows.train("spotting", spotting_model.parent, **TINY)


def test_importing_the_cli_and_the_workflows_loads_no_tensorflow():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, rc_keras.cli, rc_keras.workflows, rc_keras.tuning.cli\n"
            "rc_keras.cli.build_parser()\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))")
    environ = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=environ, check=True).stdout
    assert out.strip() == "[]"
