"""One serialization harness for every class registered under ``rc_keras>``.

Like keras-hub's ``TestCase.run_serialization_test``: for each registered class an
example instance, and the same checks for all of them:

- config round trip: ``from_config(get_config())`` has the same config, and so does
  ``deserialize_keras_object(serialize_keras_object(obj))``;
- ``.keras`` round trip (layers, cells, models, losses and metrics, inside a model),
  loaded with ``safe_mode=True`` (no lambdas or pickled code needed);
- identical outputs: the loaded model predicts exactly what the saved one did (losses and
  metrics: the clone computes exactly the same values).

`EXAMPLES` must name every registered class: a new class without an example fails
`test_every_registered_class_has_an_example`.
"""

import json

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import cells, metrics, quantization
from rc_keras import kws_training  # noqa: F401 - registers MajorityClassStop
from rc_keras.callbacks import BetaSchedule
from rc_keras.datasets.temporal_mnist import TemporalEncoding
from rc_keras.features import FrontEndParams, LogMelFrontEnd


def _rc_model(cell, head=None, threshold=0.7, **kwargs):
    head = head or keras.layers.Dense(3, activation="softmax")
    return rk.RCModel(cell=cell, head=head, threshold=threshold, **kwargs)


def _sequences(*shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _wrapped_layer(layer, input_shape):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


# name -> () -> (the object, a model holding it or None, inputs of that model)
EXAMPLES = {
    "RCModel": lambda: (_rc_model(keras.layers.LSTMCell(4), threshold=(0.9, 0.8, 0.7)), None,
                        _sequences(5, 6, 2)),
    "SpikingLIFCell": lambda: _in_rc_model(
        cells.SpikingLIFCell(5, output_bits=2, forget_bias=0.5, reset="none",
                             recurrent_initializer="zeros",
                             kernel_regularizer=keras.regularizers.L2(1e-3), name="lif"),
        _sequences(4, 7, 2)),
    "ConvLSTM2DCell": lambda: _in_rc_model(
        cells.ConvLSTM2DCell(2, kernel_size=3), _sequences(3, 4, 5, 5, 1),
        head=keras.Sequential([keras.layers.Flatten(),
                               keras.layers.Dense(3, activation="softmax")])),
    "QuantizedLSTMCell": lambda: _in_rc_model(
        quantization.QuantizedLSTMCell(4, input_range=(-2.0, 3.0), input_divisor=3.0,
                                       gate_clip=6.0, cell_clip=5.0),
        _sequences(4, 6, 2)),
    "QuantizedDense": lambda: _as_head(
        quantization.QuantizedDense(3, activation="softmax", output_range=(-4.0, 5.0)),
        _sequences(4, 6, 2)),
    "LogMelFrontEnd": lambda: _in_functional(
        LogMelFrontEnd(FrontEndParams(context_frames=1)),
        _sequences(2, 4000)),
    "TemporalEncoding": lambda: _in_functional(
        TemporalEncoding(num_steps=4, max_value=1.0, flatten=True),
        np.random.default_rng(0).uniform(size=(2, 6, 6)).astype(np.float32)),
    "ConfidencePenalty": lambda: _compiled(rk.ConfidencePenalty(beta=0.2, label_smoothing=0.1)),
    "SpikeAccuracy": lambda: _compiled(metrics.SpikeAccuracy()),
    "MeanSpikeTime": lambda: _compiled(metrics.MeanSpikeTime()),
    "NoSpikeRate": lambda: _compiled(metrics.NoSpikeRate()),
    "StepsRun": lambda: _compiled(metrics.StepsRun()),
    # Callbacks are not part of a .keras file: config round trip only.
    "BetaSchedule": lambda: (BetaSchedule({0: 0.3, 5: 0.02}), None, None),
    "MajorityClassStop": lambda: (kws_training.MajorityClassStop(0.4, grace_epochs=3), None, None),
}


def _in_rc_model(cell, x, head=None):
    return cell, _rc_model(cell, head=head), x


def _as_head(head, x):
    return head, _rc_model(keras.layers.LSTMCell(4), head=head), x


def _in_functional(layer, x):
    return layer, _wrapped_layer(layer, x.shape[1:]), x


def _compiled(loss_or_metric):
    """A trained RC model compiled with ``loss_or_metric`` (the .keras file keeps it in
    the compile config)."""
    model = _rc_model(keras.layers.LSTMCell(4))
    if isinstance(loss_or_metric, keras.losses.Loss):
        model.compile("adam", loss_or_metric)
    else:
        model.compile("adam", rk.ConfidencePenalty(0.1), metrics=[loss_or_metric])
    return loss_or_metric, model, _sequences(4, 6, 2)


def _registered():
    return sorted(name.split(">", 1)[1] for name in keras.saving.get_custom_objects()
                  if name.startswith("rc_keras>"))


def test_every_registered_class_has_an_example():
    assert _registered() == sorted(EXAMPLES)


def _same_values(before, after):
    if isinstance(before, dict):
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    else:
        np.testing.assert_array_equal(before, after)


def _as_saved(config):
    """A config as the .keras file holds it (JSON: tuples become lists)."""
    return json.loads(json.dumps(config))


def _outputs(model, x):
    return model.predict(x, verbose=0)


def _check_same_computation(obj, clone):
    """A loss or metric and its clone compute the same values on the same answers."""
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 1])
    if isinstance(obj, keras.losses.Loss):
        np.testing.assert_array_equal(obj(labels, probs), clone(labels, probs))
        return
    if isinstance(obj, metrics.RCMetric):
        prediction = {"probs": probs, "spike_time": np.array([2, 5], np.int32),
                      "spiked": np.array([True, False]), "steps_run": np.array(6, np.int32)}
        for metric in (obj, clone):
            metric.reset_state()
            metric.update_state(labels, prediction)
        np.testing.assert_array_equal(obj.result(), clone.result())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_serialization(name, tmp_path):
    obj, model, x = EXAMPLES[name]()
    config = obj.get_config()
    # As keras.saving does: ``from_config`` where the class has one (callbacks need not).
    cls = type(obj)
    clone = cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    assert type(restored) is type(obj) and restored.get_config() == config
    _check_same_computation(obj, clone)
    if x is None:
        return
    model = obj if model is None else model
    if isinstance(model, rk.RCModel) and getattr(model, "optimizer", None) is None:
        model.compile("adam", rk.ConfidencePenalty(0.1), metrics=[metrics.SpikeAccuracy()])
    if isinstance(model, rk.RCModel):
        model.fit(x, np.arange(len(x)) % 3, epochs=1, verbose=0)  # built, trained weights
    before = _outputs(model, x)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert _as_saved(loaded.get_config()) == _as_saved(model.get_config())
    if getattr(model, "optimizer", None) is not None:
        assert _as_saved(loaded.get_compile_config()) == _as_saved(model.get_compile_config())
    _same_values(before, _outputs(loaded, x))
