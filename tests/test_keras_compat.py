"""Every use of Keras internals, in one place (`rc_keras._keras_compat`): a Keras upgrade
that moves one of them fails here."""

import configparser
import inspect
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk
from rc_keras import _keras_compat, metrics

ROOT = Path(__file__).resolve().parents[1]


def test_every_seam_name_resolves():
    for name in _keras_compat.__all__:
        assert getattr(_keras_compat, name) is not None, name


def test_installed_keras_is_the_range_setup_cfg_pins():
    low, high = _keras_compat.KERAS_TESTED
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requires = [r.strip() for r in config["options"]["install_requires"].splitlines()]
    assert f"keras>={low},<{high}" in requires
    version = tuple(int(p) for p in keras.__version__.split(".")[:2])
    assert tuple(int(p) for p in low.split(".")) <= version < tuple(
        int(p) for p in high.split("."))


def test_the_keras_hooks_the_seam_overrides_or_calls_still_exist():
    build = inspect.signature(keras.Model._maybe_symbolic_build)
    assert list(build.parameters) == ["self", "iterator", "data_batch"]
    assert callable(keras.Model._symbolic_build)
    assert "training" in inspect.signature(keras.Model.compute_loss).parameters


def test_unscaling_matches_keras_s_own_helper():
    from keras.src.losses.loss import unscale_loss_for_distribution as keras_unscale

    loss = tf.constant(0.25)
    assert float(_keras_compat.unscale_loss_for_distribution(loss)) == float(
        keras_unscale(loss)) == 0.25
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert float(_keras_compat.unscale_loss_for_distribution(loss)) == 0.25
    assert not _keras_compat.in_multi_worker_mode(tf.distribute.get_strategy())


def test_a_compiled_model_s_private_parts_are_where_the_seam_looks():
    model = rk.RCModel(cell=keras.layers.LSTMCell(3), head=keras.layers.Dense(2, "softmax"))
    model.compile("adam", rk.ConfidencePenalty(0.1), metrics=[metrics.SpikeAccuracy()])
    x = np.zeros((4, 5, 1), np.float32)
    model.fit(x, np.zeros(4, np.int32), epochs=1, verbose=0)
    tracker = _keras_compat.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean) and tracker is model.metrics[0]
    own = _keras_compat.own_metrics(model)
    assert all(isinstance(group, _keras_compat.MetricsList) for group in own)
    assert [m.name for group in own for m in group.metrics] == ["spike_accuracy"]
    assert all(group in model.metrics for group in own)
    saved = model.get_compile_config()["metrics"]
    assert [entry["class_name"] for entry in saved] == ["SpikeAccuracy"]
    # Re-compiling replaces the RC metrics instead of adding a second set.
    model.compile("adam", rk.ConfidencePenalty(0.1), metrics=[metrics.MeanSpikeTime()])
    assert [m.name for group in _keras_compat.own_metrics(model)
            for m in group.metrics] == ["mean_spike_time"]


@pytest.mark.parametrize("name", ["MetricsList", "no_automatic_dependency_tracking"])
def test_the_keras_src_names_are_keras_s_own(name):
    value = getattr(_keras_compat, name)
    assert value.__module__.startswith("keras.src.")
