"""The `rc-keras` command as a newcomer meets it: run in subprocesses, as from a shell.

Each check runs ``python -m rc_keras.cli`` with this checkout on PYTHONPATH and looks at
what a user sees: the exit status, stdout, and a stderr that holds the tool's own text
only (one line for an error, no traceback, no TensorFlow log lines).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Runs ``python -m rc_keras.cli ARGS`` like a shell would; returns the CompletedProcess."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("RC_KERAS_DEBUG", "TF_CPP_MIN_LOG_LEVEL")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "rc_keras.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=environ,
                          timeout=timeout)


def _git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=cwd, capture_output=True, text=True, check=True).stdout


def _fresh_clone(dest):
    """The tracked files of this checkout, committed in a new repository at ``dest``."""
    files = _git("ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _git("init", "-q", cwd=dest)
    _git("add", "-A", cwd=dest)
    _git("commit", "-q", "-m", "clone", cwd=dest)
    return dest


# ---------------------------------------------------------------------- demo
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout")
def test_demo_leaves_a_fresh_clone_clean(tmp_path):
    clone = _fresh_clone(tmp_path / "clone")
    result = run_cli("demo", "--quick", cwd=clone)
    assert result.returncode == 0, result.stderr
    # Progress on a pipe: one plain line per epoch, no colour codes or carriage returns.
    assert "\x1b[" not in result.stdout and "\r" not in result.stdout
    epochs = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"]
    # Training, export, conversion and LiteRT/TFLM verification: not one library log line.
    assert result.stderr == ""
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
    report = json.loads((clone / "runs" / "demo" / "demo_report.json").read_text())
    assert report["quick"] is True and (clone / "runs" / "demo" / "step_int8.tflite").is_file()
    assert "runs/demo" in result.stdout.replace(os.sep, "/")


def test_demo_update_reference_refuses_out(tmp_path):
    result = run_cli("demo", "--update-reference", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rc-keras demo: error: --update-reference writes to "
        f"{ROOT / 'saved_models' / 'demo'}; drop --out."]
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------- lazy package
def run_python(code, timeout=300):
    """Runs ``python -c CODE`` with this checkout on PYTHONPATH; returns the CompletedProcess."""
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=timeout)


def test_import_is_light_and_every_name_loads_on_first_use(quantized_model_path):
    # Keras loads late here (datasets.temporal_mnist): the hook registers rc_keras's classes.
    result = run_python(
        "import sys, importlib, rc_keras as rk\n"
        "from rc_keras import datasets, tuning\n"
        "from rc_keras.datasets import keyword_synthesis\n"
        "x, y = datasets.spotting(3, seed=0)\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules, x.shape, "
        "tuning.DEFAULT_THRESHOLDS[0])\n"
        "names = sorted(n for n in rk.SUBMODULES if getattr(rk, n).__name__ == 'rc_keras.' + n)\n"
        "print(names == sorted(rk.SUBMODULES), rk.RCModel.__module__, "
        "rk.ConfidencePenalty.__name__, rk.RCOutput.__name__, "
        "set(rk.SUBMODULES) <= set(dir(rk)), type(sys.meta_path[0]).__name__)\n"
        "sc = importlib.import_module('rc_keras.datasets.speech_commands')\n"
        "print(datasets.speech_commands is sc.speech_commands, "
        "datasets.temporal_mnist.__name__, tuning.run_search.__name__, "
        "sc.which_set('yes/a_nohash_0.wav') == keyword_synthesis.which_set('yes/a_nohash_0.wav'))\n"
        "try:\n    rk.nope\nexcept AttributeError as e:\n    print(e)\n"
        "import keras\n"
        f"m = keras.models.load_model({str(quantized_model_path)!r})\n"
        "print(type(m).__name__, type(m.cell).__name__, type(m.loss).__name__)")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "False (3, 25, 1) 0.55"
    assert lines[1].startswith("True rc_keras.model ConfidencePenalty RCOutput True ")
    assert "KerasImportHook" not in lines[1]  # removed once the classes are registered
    assert lines[2:] == ["True temporal_mnist run_search True",
                         "module 'rc_keras' has no attribute 'nope'",
                         "RCModel QuantizedLSTMCell ConfidencePenalty"]


def test_the_listed_submodules_are_the_package_s_modules():
    import rc_keras

    on_disk = {p.stem for p in (ROOT / "rc_keras").glob("*.py") if not p.stem.startswith("_")}
    on_disk |= {p.parent.name for p in (ROOT / "rc_keras").glob("*/__init__.py")}
    assert set(rc_keras.SUBMODULES) == on_disk


@pytest.fixture(scope="module")
def quantized_model_path(tmp_path_factory):
    """A saved model made of rc_keras classes: RCModel, a quantized twin's cell, the loss."""
    import rc_keras as rk
    from rc_keras import tasks

    model = tasks.build_model("spotting", units=4)
    x, _ = tasks.get_task("spotting").data("train", 8)
    model.predict(x, verbose=0)  # builds it
    twin = rk.quantization.quantize_aware(model, x)
    twin.compile("adam", rk.ConfidencePenalty(0.1), metrics=[rk.metrics.SpikeAccuracy()])
    path = tmp_path_factory.mktemp("saved") / "m.keras"
    twin.save(path)
    return path


# Keras imported right after rc_keras (the import hook), and by an rc_keras module that
# imports Keras at its top (registration waits until that module has finished). Keras
# imported first is the path of most other test files.
@pytest.mark.parametrize("imports", ["import rc_keras, keras", "import rc_keras.metrics, keras"])
def test_saved_models_load_with_plain_keras_after_import_rc_keras(imports, quantized_model_path):
    path = quantized_model_path
    result = run_python(
        f"{imports}\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        "print(type(m).__name__, type(m.cell).__name__, type(m.loss).__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["RCModel", "QuantizedLSTMCell", "ConfidencePenalty"]


# ---------------------------------------------------------------------- quiet, fast CLI
SUBCOMMANDS = ("train", "evaluate", "sweep", "export", "demo", "make-keywords", "tune",
               "firmware", "listen")


def test_help_and_argument_errors_do_not_import_tensorflow():
    result = run_python(
        "import contextlib, io, sys\n"
        "from rc_keras import cli\n"
        "cli.build_parser()\n"
        f"argvs = [['--help'], *[[c, '--help'] for c in {SUBCOMMANDS!r}],\n"
        "         ['train', '--task', 'nope', '--out', 'x'], ['train', '--epochs', '0'],\n"
        "         ['evaluate', '--model', 'missing.keras', '--task', 'spotting']]\n"
        "codes = []\n"
        "for argv in argvs:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.redirect_stderr(io.StringIO()):\n"
        "        codes.append(cli.main(argv))\n"
        "print(codes, sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') "
        "if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([0] * (1 + len(SUBCOMMANDS)) + [2, 2, 2]) + " []"


@pytest.mark.parametrize("args", [("--help",), ("train", "--help"), ("make-keywords", "--help")])
def test_help_prints_only_the_tool_s_text(args):
    result = run_cli(*args)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: rc-keras")


def test_debug_shows_the_traceback_and_keeps_exit_status_2(tmp_path):
    missing = tmp_path / "missing.keras"
    quiet = run_cli("evaluate", "--model", missing, "--task", "spotting")
    debug = run_cli("evaluate", "--model", missing, "--task", "spotting",
                    env={"RC_KERAS_DEBUG": "1"})
    line = f"rc-keras evaluate: error: model file '{missing}' does not exist."
    assert quiet.returncode == 2 and quiet.stderr.splitlines() == [line]
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == line


# ---------------------------------------------------------------------- the model's task
def test_a_model_records_its_task_and_another_task_is_refused(tmp_path, capsys):
    from rc_keras import cli

    run = tmp_path / "run"
    assert cli.main(["train", "--task", "spotting", "--epochs", "1", "--train-size", "64",
                     "--val-size", "16", "--test-size", "16", "--units", "4", "--verbose", "0",
                     "--no-backup", "--out", str(run)]) == 0
    model = run / "model.keras"
    assert cli.recorded_task(model) == {"task": "spotting", "feature_shape": [1]}
    capsys.readouterr()
    for argv in (["evaluate", "--model", str(model), "--task", "two-sequence"],
                 ["sweep", "--model", str(model), "--task", "two-sequence", "--out",
                  str(tmp_path / "s")],
                 ["export", "--model", str(model), "--task", "two-sequence", "--out",
                  str(tmp_path / "e")]):
        assert cli.main(argv) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"rc-keras {argv[0]}: error: '{model}' was trained on task 'spotting', not "
            "'two-sequence': pass --task spotting (or --allow-task-mismatch to run it on the "
            "other task's data anyway)."]
    assert not (tmp_path / "s").exists() and not (tmp_path / "e").exists()
    # The override runs it (both tasks feed one feature a step).
    assert cli.main(["evaluate", "--model", str(model), "--task", "two-sequence",
                     "--test-size", "16", "--allow-task-mismatch", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "two-sequence" and result["sequence_length"] == 40
    # The exported bundle's model keeps the record.
    assert cli.main(["export", "--model", str(model), "--out", str(tmp_path / "b")]) == 0
    assert cli.recorded_task(tmp_path / "b" / "model.keras")["task"] == "spotting"


# ---------------------------------------------------------------------- bad paths, no TF
def _main_in_fresh_process(argvs, cwd):
    """Runs ``cli.main(argv)`` for each argv in one fresh process.

    Returns ``(results, tensorflow_loaded)``: results are (status, stdout, stderr) triples.
    """
    code = (
        "import contextlib, io, json, sys\n"
        "from rc_keras import cli\n"
        "results = []\n"
        f"for argv in {argvs!r}:\n"
        "    out, err = io.StringIO(), io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "        status = cli.main(argv)\n"
        "    results.append([status, out.getvalue(), err.getvalue()])\n"
        "print(json.dumps([results, 'tensorflow' in sys.modules]))\n")
    environ = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environ, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_output_paths_are_checked_before_any_work(tmp_path):
    (tmp_path / "taken").write_text("a file")
    argvs = [["train", "--task", "spotting", "--out", "taken"],
             ["train", "--task", "spotting", "--out", "taken/run"],
             ["sweep", "--model", "m.keras", "--task", "spotting", "--out", "taken"],
             ["export", "--model", "m.keras", "--out", "taken"],
             ["demo", "--out", "taken"],
             ["make-keywords", "--out", "taken"],
             ["tune", "--task", "spotting", "--directory", "taken"]]
    results, tensorflow_loaded = _main_in_fresh_process(argvs, tmp_path)
    messages = [f"rc-keras {argv[0]}: error: {flag} '{path}' {problem}\n" for argv, flag, path,
                problem in zip(argvs, ["--out"] * 6 + ["--directory"],
                               ["taken", "taken/run", "taken", "taken", "taken", "taken",
                                "taken"],
                               ["is a file; give a directory (created if missing)."]
                               + ["cannot be created: 'taken' is a file."]
                               + ["is a file; give a directory (created if missing)."] * 5)]
    assert results == [[2, "", message] for message in messages]
    assert not tensorflow_loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_unreadable_model_files_say_what_is_wrong(tmp_path):
    import zipfile

    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "text.keras").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "other.zip.keras", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with zipfile.ZipFile(tmp_path / "whole.keras", "w") as archive:
        archive.writestr("config.json", "{}" * 500)
        archive.writestr("model.weights.h5", os.urandom(4000))
    whole = (tmp_path / "whole.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_bytes(whole)
    names = ["empty.keras", "text.keras", "other.zip.keras", "cut.keras", "run", "gone.keras"]
    results, tensorflow_loaded = _main_in_fresh_process(
        [["evaluate", "--model", name, "--task", "spotting"] for name in names], tmp_path)
    prefix = "rc-keras evaluate: error: "
    assert [r[2] for r in results] == [
        prefix + "model file 'empty.keras' is empty (0 bytes): not a Keras archive.\n",
        prefix + "model file 'text.keras' is not a Keras archive: a .keras file is a zip "
                 "archive, and this one (11 bytes) is not, or is truncated.\n",
        prefix + "model file 'other.zip.keras' is a zip archive but not a Keras archive "
                 "(no config.json).\n",
        prefix + f"model file 'cut.keras' is not a Keras archive: a .keras file is a zip "
                 f"archive, and this one ({len(whole) // 2} bytes) is not, or is truncated.\n",
        prefix + "--model 'run' is a directory; give a .keras file, e.g. run/model.keras.\n",
        prefix + "model file 'gone.keras' does not exist.\n"]
    assert {r[0] for r in results} == {2} and not tensorflow_loaded


# ---------------------------------------------------------------------- errors in flags
def test_errors_name_the_flags_not_python_parameters(tmp_path, capsys):
    from rc_keras import cli

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert cli.main(["make-keywords", "--out", str(tmp_path / "full"), "--voices", "3"]) == 2
    assert capsys.readouterr().err == (
        f"rc-keras make-keywords: error: --out '{tmp_path / 'full'}' is not empty; pass "
        "--overwrite to write into it.\n")
    assert cli.main(["train", "--task", "speech-commands", "--data", str(tmp_path / "none"),
                     "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        f"rc-keras train: error: --data '{tmp_path / 'none'}' is not a directory.\n")
    assert cli.main(["tune", "--task", "spotting", "--directory", str(tmp_path / "t"),
                     "--objective", "budget"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rc-keras tune: error: --max-spike-time is required for "
                          "--objective budget") and "`" not in err and "None" not in err


# ---------------------------------------------------------------------- resume
def test_resume_says_so_and_a_finished_run_needs_overwrite(tmp_path, capsys):
    import keras

    from rc_keras import cli

    class Killed(Exception):
        pass

    class KillAfterSecondEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # before the backup of that epoch: one epoch stays done
                raise Killed()

    run = tmp_path / "run"
    sizes = ["--train-size", "64", "--val-size", "16", "--test-size", "16", "--units", "4"]
    argv = ["train", "--task", "spotting", "--epochs", "3", *sizes, "--verbose", "0",
            "--out", str(run)]
    with pytest.raises(Killed):
        cli.train("spotting", run, epochs=3, train_size=64, val_size=16, test_size=16, units=4,
                  verbose=0, callbacks=[KillAfterSecondEpoch()])
    capsys.readouterr()
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"resuming from epoch 2 of 3: 1 epoch(s) done in "
                                   f"{run / 'backup'} (--overwrite starts over)")
    assert json.loads((run / "summary.json").read_text())["resumed_from_epoch"] == 1
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"rc-keras train: error: --out '{run}' holds a finished run (summary.json, "
        "model.keras); pass --overwrite to train again there, or choose another --out.\n")
    assert cli.main(argv + ["--overwrite"]) == 0
    assert "resuming" not in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["resumed_from_epoch"] == 0


# ---------------------------------------------------------------------- help
def _options(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((name, a) for a in sub._actions)
        else:
            yield "rc-keras", action


def test_help_shows_every_default_and_the_task_choices():
    from rc_keras import cli, tasks

    for command, action in _options(cli.build_parser()):
        if not action.option_strings or action.default in (None, False) or \
                action.dest in ("help", "version", "command"):
            continue
        assert "default" in (action.help or ""), (command, action.option_strings)
        if action.dest == "task":
            assert "one of: " + ", ".join(tasks.task_names()) in action.help, command
    parser = cli.build_parser()
    train = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "training epochs; default: the task's (spotting 20, two-sequence 10;" in \
        " ".join(train.split())


# ---------------------------------------------------------------------- export --verify
def _row(model, runtime, class_agreement, step_within_1):
    return {"model": model, "runtime": runtime, "class_agreement": class_agreement,
            "step_within_1": step_within_1}


def test_agreement_hint_names_the_models_below_the_targets():
    from rc_keras import cli

    rows = [_row("keras", "tensorflow", 1.0, 1.0), _row("step_float32.tflite", "litert", 1.0, 1.0),
            _row("step_int8.tflite", "litert", 0.178, 0.41),
            _row("step_int8.tflite", "tflm", 0.2, 0.4)]
    assert cli.agreement_hint(rows) == (
        "note: step_int8.tflite below the targets (exit class and exit step +-1 each >= 99% "
        "of sequences): worst 17.8% class, 41.0% step +-1 (step_int8.tflite, litert); try "
        "--quantization-aware (the int8-exact twin; add --qat-epochs N to fine-tune it) or "
        "--int16x8.")
    rows[2:] = [_row("step_int8.tflite", "litert", 0.995, 0.99),
                _row("step_int16x8.tflite", "tflm", 1.0, 1.0)]
    assert cli.agreement_hint(rows) is None
    rows.append(_row("step_int16x8.tflite", "litert", 0.98, 1.0))
    assert cli.agreement_hint(rows).endswith("(step_int16x8.tflite, litert); try --int16x8.")


def test_quantization_aware_export_shows_progress_and_the_original_beside_the_twin(tmp_path,
                                                                                 capsys):
    import keras
    import numpy as np

    from rc_keras import cli, tasks

    task = tasks.get_task("spotting")
    model = tasks.build_model(task, units=4)
    x, y = task.data("train", 64, seed=3)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    x_held, y_held = task.data("test", 48, seed=5)
    np.savez(tmp_path / "held.npz", x=x_held, y=y_held)
    assert cli.main(["export", "--model", str(tmp_path / "m.keras"), "--out",
                     str(tmp_path / "qat"), "--quantization-aware", "--qat-epochs", "1",
                     "--train-data", str(tmp_path / "train.npz"), "--verify",
                     "--verify-sequences", str(tmp_path / "held.npz"), "--task", "spotting"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("fine-tuning the int8-exact twin: 1 epoch(s) on 64 sequences (beta 0.05, "
                      "learning rate 0.001)")
    assert out[1].startswith("1/1 - ") and "spike_accuracy" in out[1]  # one batch, one epoch
    assert any(line.startswith("n held-out sequences; class agree: exit class") for line in out)
    assert "| model | accuracy % | mean spike time (steps) |" in out
    qat = json.loads((tmp_path / "qat" / "report.json").read_text())["qat"]
    original = cli.evaluate_model(keras.models.load_model(tmp_path / "m.keras"), x_held, y_held)
    twin = cli.evaluate_model(keras.models.load_model(tmp_path / "qat" / "model.keras"), x_held,
                              y_held)
    assert qat["original"] == pytest.approx(original) and qat["twin"] == pytest.approx(twin)
    assert f"| original (Keras, float) | {100 * original['accuracy']:.2f} | " \
           f"{original['mean_spike_time']:.2f} |" in out


# ---------------------------------------------------------------------- smaller ones
def test_early_answer_note_explains_chance_accuracy_at_low_theta():
    from rc_keras import cli

    points = [{"threshold": 0.6, "accuracy": 0.44, "mean_spike_time": 1.0},
              {"threshold": 0.8, "accuracy": 0.52, "mean_spike_time": 2.04},
              {"threshold": 0.9, "accuracy": 0.93, "mean_spike_time": 9.5}]
    assert cli.early_answer_note(points, 2, "before a run can be seen") == (
        "(theta <= 0.8 answers within 2.0 steps on average, before a run can be seen: near "
        "chance (0.50 with 2 classes); a higher theta waits for the evidence.)")
    assert cli.early_answer_note(points[2:], 2) is None


def test_bundle_lists_only_the_files_it_wrote_with_their_sizes(tmp_path):
    from rc_keras import export, tasks

    model = tasks.build_model("spotting", units=4)
    x, _ = tasks.get_task("spotting").data("train", 8)
    model.predict(x, verbose=0)
    (tmp_path / "demo_report.json").write_text("{}")  # left by an earlier run
    report = export.export_bundle(model, tmp_path, int8=False)
    assert report["files"] == {p.name: p.stat().st_size for p in tmp_path.iterdir()
                               if p.is_file() and p.name not in ("report.json",
                                                                 "demo_report.json")}
    assert set(report["files"]) == {"model.keras", "step_float32.tflite", "step_float32.json",
                                    "rc_model_data.c", "rc_model_data.h"}


def test_deferred_task_description_matches_the_registered_task():
    from rc_keras import kws_training, tasks

    # tasks lists speech-commands without importing kws_training (TensorFlow): same text.
    assert tasks._DEFERRED["speech-commands"][2] == kws_training.SPEECH_COMMANDS.description
    assert tasks.get_task("speech-commands") is kws_training.SPEECH_COMMANDS
