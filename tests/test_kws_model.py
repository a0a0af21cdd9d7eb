"""The keyword-spotting network factory and its training recipe (random frames, tiny sizes)."""

import json

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import kws_training, models, tasks, tradeoff


def _frames(n=12, time=7, features=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, time, features)).astype(np.float32)
    lengths = rng.integers(3, time + 1, size=n).astype(np.int32)
    y = rng.integers(0, 3, size=n).astype(np.int32)
    return x, lengths, y


# ---------------------------------------------------------------------- kws_lstm
def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_kws_lstm_paper_parameter_count():
    model = models.kws_lstm(11)
    # LSTM: 4 * 128 * (20 + 128 + 1); head: 128*32 + 32 and 32*11 + 11.
    assert _trainable(model) == 76288 + 4128 + 363 == 80779
    assert model.count_params() == 80779 + 1  # + the non-trainable threshold variable
    assert models.kws_lstm_param_count(11) == 80779
    assert model.cell.units == 128
    assert [layer.units for layer in model.head.layers] == [32, 11]
    assert model.head.layers[0].activation.__name__ == "relu"
    assert model.readout == "softmax" and model.training_mode == "rc"


@pytest.mark.parametrize("sizes", [dict(num_classes=12, num_features=420, units=16, hidden=8),
                                   dict(num_classes=2, num_features=3, units=5, hidden=4)])
def test_kws_lstm_param_count_matches_hand_count(sizes):
    assert _trainable(models.kws_lstm(**sizes)) == models.kws_lstm_param_count(**sizes)


def test_kws_lstm_predicts_within_lengths_and_round_trips(tmp_path):
    x, lengths, y = _frames()
    model = models.kws_lstm(3, units=8, hidden=4, threshold=0.4, training_mode="eos")
    out = model.predict({"inputs": x, "lengths": lengths}, verbose=0)
    assert out["probs"].shape == (12, 3)
    np.testing.assert_allclose(out["probs"].sum(-1), 1.0, atol=1e-5)
    assert np.all(out["spike_time"] < lengths)
    # Unspiked examples answer at their last valid frame, never in padding.
    np.testing.assert_array_equal(out["spike_time"][~out["spiked"]], lengths[~out["spiked"]] - 1)
    path = tmp_path / "kws.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.training_mode == "eos" and loaded.threshold == pytest.approx(0.4)
    again = loaded.predict({"inputs": x, "lengths": lengths}, verbose=0)
    np.testing.assert_allclose(again["probs"], out["probs"], atol=1e-6)
    np.testing.assert_array_equal(again["spike_time"], out["spike_time"])


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_classes=1), "num_classes"),
    (dict(num_classes=11, units=0), "units"),
    (dict(num_classes=11, hidden=2.5), "hidden"),
    (dict(num_classes=11, num_features="20"), "num_features"),
    (dict(num_classes=11, threshold=1.0), "threshold"),
    (dict(num_classes=11, training_mode="fast"), "training_mode"),
    (dict(num_classes=11, dropout=1.0), "dropout"),
])
def test_kws_lstm_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        models.kws_lstm(**kwargs)


# ---------------------------------------------------------------------- stop rule
def _callback_with_model(callback):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    callback.set_model(model)
    model.stop_training = False
    return model


def test_majority_class_stop_on_constructed_logs():
    stop = kws_training.MajorityClassStop(0.4, monitor="spike_accuracy", grace_epochs=1)
    model = _callback_with_model(stop)
    stop.on_train_begin()
    stop.on_epoch_end(0, {"spike_accuracy": 0.1})     # grace epoch: not checked
    assert not model.stop_training and stop.stopped_epoch is None
    stop.on_epoch_end(1, {"spike_accuracy": 0.4})     # equal to the share: keeps going
    assert not model.stop_training
    stop.on_epoch_end(2, {"spike_accuracy": 0.39})    # below: collapsed
    assert model.stop_training and stop.stopped_epoch == 2


def test_majority_class_stop_bad_input():
    with pytest.raises(ValueError, match="`share`"):
        kws_training.MajorityClassStop(0.0)
    with pytest.raises(ValueError, match="`share`"):
        kws_training.MajorityClassStop("half")
    with pytest.raises(ValueError, match="`grace_epochs`"):
        kws_training.MajorityClassStop(0.5, grace_epochs=-1)
    stop = kws_training.MajorityClassStop(0.5, monitor="val_spike_accuracy")
    _callback_with_model(stop)
    with pytest.raises(ValueError, match="val_spike_accuracy"):
        stop.on_epoch_end(3, {"loss": 1.0})
    config = stop.get_config()
    assert kws_training.MajorityClassStop(**config).get_config() == config


def test_majority_share_and_frames_to_ms():
    assert kws_training.majority_share([0, 0, 1, 2]) == 0.5
    assert kws_training.majority_share(np.eye(3)[[2, 2, 2, 0]]) == 0.75
    with pytest.raises(ValueError, match="`labels`"):
        kws_training.majority_share([])
    assert kws_training.frames_to_ms(1) == 25.0
    assert kws_training.frames_to_ms(98) == 995.0
    assert kws_training.frames_to_ms(1, lookahead_frames=10) == 125.0
    np.testing.assert_allclose(kws_training.frames_to_ms(np.array([1.0, 2.5])), [25.0, 40.0])


# ---------------------------------------------------------------------- training recipe
def test_compile_kws_clips_the_global_norm():
    model = kws_training.compile_kws(models.kws_lstm(3, units=4, hidden=4), beta=0.3)
    assert model.optimizer.global_clipnorm == 0.25
    assert model.optimizer.clipnorm is None
    assert model.loss.beta == 0.3
    with pytest.raises(ValueError, match="`beta`"):
        kws_training.compile_kws(model, beta=-1)
    with pytest.raises(ValueError, match="`clipnorm`"):
        kws_training.compile_kws(model, clipnorm=0)


def test_train_speech_commands_keeps_the_best_validation_epoch(tmp_path):
    splits = {"train": _frames(n=32), "validation": _frames(n=16, seed=1),
              "test": _frames(n=8, seed=2)}
    summary = kws_training.train_speech_commands(
        None, tmp_path / "run", beta=0.1, mode="eos", epochs=3, units=8, hidden=4,
        threshold=0.5, learning_rate=0.05, label_set="custom", batch_size=8, verbose=0,
        data=splits)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    # An EOS model is chosen by its accuracy at the end of the clip, not at theta.
    val_acc = history["val_end_of_clip_accuracy"]
    assert summary["config"]["checkpoint_monitor"] == "val_end_of_clip_accuracy"
    assert len(val_acc) == 3 and len(summary["epoch_seconds"]) == 3
    assert summary["best_epoch"] == int(np.argmax(val_acc)) and summary["stopped_epoch"] is None
    # The saved model is the best checkpoint: it scores the best validation accuracy.
    best = keras.models.load_model(tmp_path / "run" / "model.keras")
    xv, nv, yv = splits["validation"]
    probs = tradeoff.all_step_probabilities(best, xv)
    assert kws_training.end_of_clip_accuracy(probs, nv, yv) == pytest.approx(max(val_acc))
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["config"]["mode"] == "eos" and saved["config"]["global_clipnorm"] == 0.25
    test = summary["test"]
    assert test["num_sequences"] == 8 and test["sequence_length"] == 7
    assert test["mean_spike_time_ms"] == pytest.approx(25 + 10 * (test["mean_spike_time"] - 1))
    assert 1 <= test["mean_spike_time"] <= splits["test"][1].max()
    assert 0 <= test["end_of_clip_accuracy"] <= 1 and test["training_mode"] == "eos"
    # With a look-ahead no answer is reported later than its clip lasts.
    xt, nt, yt = splits["test"]
    best.threshold = 0.999999  # nothing crosses: every clip answers at its last frame
    capped = kws_training.evaluate_kws(best, xt, nt, yt, lookahead_frames=10)
    assert capped["no_spike_rate"] == 1.0
    assert capped["mean_spike_time_ms"] == pytest.approx(
        np.mean(kws_training.frames_to_ms(nt)))
    points = tradeoff.sweep_from_probabilities(tradeoff.all_step_probabilities(best, xt), yt,
                                               [0.999999], lengths=nt, lookahead_frames=10)
    ms = tradeoff.add_milliseconds(points, lookahead_frames=10)[0]["mean_spike_time_ms"]
    assert ms == pytest.approx(capped["mean_spike_time_ms"])


def test_train_speech_commands_needs_a_data_root(tmp_path):
    with pytest.raises(ValueError, match="`data_root`"):
        kws_training.train_speech_commands(None, tmp_path)
    with pytest.raises(FileNotFoundError, match="`data_root`"):
        kws_training.train_speech_commands(tmp_path / "missing", tmp_path)
    assert "speech-commands" in tasks.task_names()
    with pytest.raises(ValueError, match="`data_root`"):
        tasks.get_task("speech-commands").data("test", 4)


def test_kws_model_compiles_with_rc_metrics():
    model = kws_training.compile_kws(models.kws_lstm(3, units=4, hidden=4))
    names = {type(m) for m in model._rc_metrics}
    assert rk.metrics.SpikeAccuracy in names and rk.metrics.MeanSpikeTime in names


def test_the_task_recipe_checkpoints_eos_models_by_end_of_clip_accuracy(tmp_path):
    """The speech-commands task (cli.train) and fit_kws pick the best epoch alike."""
    x = {"inputs": np.zeros((4, 5, 3), "float32"), "lengths": np.array([5, 3, 4, 2])}
    y = np.array([0, 1, 2, 0])
    for mode, monitor in (("rc", "val_spike_accuracy"), ("eos", "val_end_of_clip_accuracy")):
        model = models.kws_lstm(3, num_features=3, units=4, hidden=2, training_mode=mode)
        assert kws_training.checkpoint_monitor(model, (x, y))[0] == monitor
        plan = kws_training.SPEECH_COMMANDS.plan_fit(
            kws_training.SPEECH_COMMANDS, out_dir=tmp_path / mode, y_train=y, model=model,
            validation_data=(x, y), options={"context_frames": 0})
        kinds = [type(c).__name__ for c in plan.callbacks]
        assert plan.callbacks[-1].monitor == monitor
        assert ("EndOfClipAccuracy" in kinds) == (mode == "eos")
    # Without validation data any model is judged by its spike accuracy.
    assert kws_training.checkpoint_monitor(model, None) == ("val_spike_accuracy", None)
