"""SavedModel export: a `serve` endpoint (whole sequences, early exit) and a `step` endpoint."""

import keras
import tensorflow as tf

from rc_keras.export import step_model
from rc_keras.export.versioning import write_saved_model_sidecar
from rc_keras.metrics import predicted_labels


def export_saved_model(model, directory):
    """Writes a SavedModel that loads with plain ``tf.saved_model.load`` (no rc_keras needed).

    Signatures:
        ``serve(x)``: ``x`` float32 (batch, time, *features), batch and time dynamic.
            Returns ``probs`` (batch, outputs) at the spike, ``spike_time`` (batch,) int32
            0-based, ``spiked`` (batch,) bool, ``label`` (batch,) int32; same as
            ``RCModel.predict`` at the model's threshold.
        ``serve_lengths(x, lengths)``: the same for padded batches of clips of different
            lengths: ``lengths`` int32 (batch,) valid steps; no answer lands in padding.
        ``step(frame, state_0, ...)``: one frame (batch, *features) and the flat states
            (see `state_layout`; zeros to start a stream). Returns ``probs`` and the new
            ``state_0, ...`` to feed back: for streaming servers that run the early-exit
            loop themselves.

    Args:
        model: a built `rc_keras.RCModel`.
        directory: output directory.

    Returns:
        The directory, as a string.
    """
    step_model.check_model(model)
    features = tuple(model.feature_shape)
    layout = step_model.state_layout(model)
    step = step_model.build_step_model(model, batch_size=None)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(step)

    def serve(x):
        out = model.rank_code(x, training=False)
        return {"probs": out.probs, "spike_time": out.spike_time, "spiked": out.spiked,
                "label": predicted_labels(out.probs)}

    def serve_lengths(x, lengths):
        return serve({"inputs": x, "lengths": lengths})

    def step_fn(frame, *states):
        outputs = step([frame] + list(states), training=False)
        return {key: tf.identity(value) for key, value in outputs.items()}

    archive.add_endpoint(
        "serve", serve,
        input_signature=[tf.TensorSpec((None, None) + features, tf.float32, name="x")])
    archive.add_endpoint(
        "serve_lengths", serve_lengths,
        input_signature=[tf.TensorSpec((None, None) + features, tf.float32, name="x"),
                         tf.TensorSpec((None,), tf.int32, name="lengths")])
    archive.add_endpoint(
        "step", step_fn,
        input_signature=[tf.TensorSpec((None,) + features, tf.float32, name="frame")]
        + [tf.TensorSpec((None,) + tuple(s["shape"]), tf.float32, name=s["name"])
           for s in layout])
    directory = str(directory)
    archive.write_out(directory, verbose=False)
    # Format version and model facts: `load_saved_model` checks them before loading.
    write_saved_model_sidecar(model, directory)
    return directory
