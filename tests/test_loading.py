"""Loading: .keras files load in Keras safe mode; exports carry a format version that is checked."""

import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import cells, export
from rc_keras.export import versioning

DEMO = Path(__file__).parents[1] / "saved_models" / "demo"


def _lstm():
    return rk.RCModel(keras.layers.LSTMCell(4), keras.layers.Dense(3, activation="softmax"),
                      threshold=0.4)


def _stacked_gru_simple():
    head = keras.Sequential([keras.layers.Dense(5, activation="relu"), keras.layers.Dropout(0.1),
                             keras.layers.Dense(3, activation="softmax")])
    return rk.RCModel([keras.layers.GRUCell(4), keras.layers.SimpleRNNCell(3, dropout=0.2)],
                      head, threshold=0.5, training_mode="eos", mask_value=0.0)


def _sigmoid_lif():
    return rk.RCModel(cells.SpikingLIFCell(4), keras.layers.Dense(1, activation="sigmoid"),
                      threshold=0.6, readout="sigmoid")


def _kws():
    from rc_keras import models  # noqa: PLC0415
    return models.kws_lstm(3, num_features=2, units=4, hidden=3)


def _conv_lstm():
    if not hasattr(cells, "ConvLSTM2DCell"):
        pytest.skip("rc_keras.cells.ConvLSTM2DCell is not available")
    return rk.RCModel(cells.ConvLSTM2DCell(2, kernel_size=3),
                      keras.Sequential([keras.layers.Flatten(),
                                        keras.layers.Dense(3, activation="softmax")]),
                      threshold=0.4)


def _unsafe_entries(config, found=None):
    """Config entries that only load with safe_mode=False (lambdas, pickled functions)."""
    found = [] if found is None else found
    if isinstance(config, dict):
        if config.get("class_name") in ("__lambda__", "Lambda", "function"):
            found.append(config["class_name"])
        for value in config.values():
            _unsafe_entries(value, found)
    elif isinstance(config, list):
        for value in config:
            _unsafe_entries(value, found)
    return found


@pytest.mark.parametrize("factory, input_shape", [
    (_lstm, (2, 4, 2)), (_stacked_gru_simple, (2, 4, 2)), (_sigmoid_lif, (2, 4, 2)),
    (_kws, (2, 4, 2)), (_conv_lstm, (2, 3, 5, 5, 1)),
])
def test_rc_keras_models_load_in_safe_mode(factory, input_shape, tmp_path):
    model = factory()
    model.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(beta=0.3),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.NoSpikeRate(), rk.metrics.StepsRun()])
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    expected = model.rank_code(x)
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(archive.read("config.json"))
    assert _unsafe_entries(config) == []
    loaded = keras.models.load_model(path, safe_mode=True)
    got = loaded.rank_code(x)
    np.testing.assert_array_equal(got.probs.numpy(), expected.probs.numpy())
    np.testing.assert_array_equal(got.spike_time.numpy(), expected.spike_time.numpy())
    assert loaded.threshold == model.threshold
    assert loaded.loss.beta == 0.3
    assert [m.name for m in loaded._rc_metrics] == [m.name for m in model._rc_metrics]


def test_the_check_catches_a_lambda(tmp_path):
    model = rk.RCModel(keras.layers.LSTMCell(2), keras.Sequential(
        [keras.layers.Dense(2), keras.layers.Lambda(lambda t: keras.ops.softmax(t))]))
    model(np.zeros((1, 3, 1), "float32"))
    model.save(tmp_path / "lambda.keras")
    with zipfile.ZipFile(tmp_path / "lambda.keras") as archive:
        assert _unsafe_entries(json.loads(archive.read("config.json"))) == ["Lambda", "__lambda__"]
    with pytest.raises(ValueError, match="safe_mode"):
        keras.models.load_model(tmp_path / "lambda.keras", safe_mode=True)


def test_demo_model_loads_in_safe_mode():
    model = keras.models.load_model(DEMO / "model.keras", safe_mode=True)
    assert isinstance(model, rk.RCModel) and model.threshold == 0.9


# ---------------------------------------------------------------------- format versions
def _copy_step_model(tmp_path):
    for name in ("step_float32.tflite", "step_float32.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    return tmp_path / "step_float32.tflite"


def _set_version(path, version, written_by=None):
    sidecar = json.loads(path.read_text())
    sidecar["format_version"] = version
    if written_by:
        sidecar["rc_keras_version"] = written_by
    path.write_text(json.dumps(sidecar))


def test_step_model_from_another_format_version_raises(tmp_path):
    step = _copy_step_model(tmp_path)
    frames = np.zeros((1, 5, 1), "float32")
    result = export.run_tflite_stream(step, frames, runtime="litert")  # current version runs
    assert result["spike_time"].shape == (1,)
    _set_version(step.with_suffix(".json"), export.FORMAT_VERSION + 1, written_by="9.0.0")
    with pytest.raises(export.IncompatibleExportError,
                       match=r"step_float32.json has format_version 2 \(written by rc_keras "
                             r"9.0.0, newer than this reader\); rc_keras .* reads format_version 1"):
        export.run_tflite_stream(step, frames, runtime="litert")
    _set_version(step.with_suffix(".json"), None)
    with pytest.raises(ValueError, match="has no format_version"):
        export.load_sidecar(step)


def test_saved_model_sidecar_round_trip_and_version_check(tmp_path):
    model = _lstm()
    x = np.random.default_rng(1).normal(size=(3, 4, 2)).astype("float32")
    expected = model.predict(x, verbose=0)
    directory = tmp_path / "sm"
    export.export_saved_model(model, directory)
    sidecar = json.loads((directory / versioning.SAVED_MODEL_SIDECAR).read_text())
    assert sidecar["format_version"] == export.FORMAT_VERSION
    assert sidecar["rc_keras_version"] == rk.__version__
    assert (sidecar["threshold"], sidecar["feature_shape"], sidecar["num_classes"]) == (0.4, [2], 3)
    out = export.load_saved_model(directory).signatures["serve"](x=keras.ops.convert_to_tensor(x))
    np.testing.assert_array_equal(out["spike_time"].numpy(), expected["spike_time"])

    _set_version(directory / versioning.SAVED_MODEL_SIDECAR, 0, written_by="0.0.1")
    with pytest.raises(export.IncompatibleExportError,
                       match=r"format_version 0 \(written by rc_keras 0.0.1\).*reads format_version 1"):
        export.load_saved_model(directory)
    (directory / versioning.SAVED_MODEL_SIDECAR).unlink()
    with pytest.raises(FileNotFoundError, match="no rc_keras sidecar"):
        export.load_saved_model(directory)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.load_saved_model(tmp_path / "missing")


def test_demo_saved_model_carries_the_current_version():
    assert versioning.read_sidecar(DEMO / "saved_model" / versioning.SAVED_MODEL_SIDECAR)[
        "format_version"] == export.FORMAT_VERSION
