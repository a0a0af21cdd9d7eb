"""RCModel: a keras.Model that trains and answers with rank coding."""

import keras
import numpy as np
import tensorflow as tf

# Keras internals (keras.src, private attributes) only through this seam: see its notes.
from rc_keras import _keras_compat, rank_coding, validation
# Keras scales the loss by the number of replicas under tf.distribute; its own train_step
# undoes that for the loss tracker, and so do we.
from rc_keras._keras_compat import (MetricsList, no_automatic_dependency_tracking,
                                    unscale_loss_for_distribution)
from rc_keras.metrics import RCMetric, predicted_labels


def _flat_states(states):
    return [tf.convert_to_tensor(s) for s in tf.nest.flatten(states)]


@keras.saving.register_keras_serializable(package="rc_keras")
class RCModel(_keras_compat.LocalReplicaSymbolicBuild, keras.Model):
    """A recurrent classifier that answers at its first output spike.

    The model runs ``cell`` over the input one step at a time and applies ``head`` to
    the cell output at every step. The answer of an example is the head output at the
    first step where it crosses ``threshold`` (its *spike*); an example that never
    crosses answers at its last valid step. Training backpropagates from that step only
    (``training_mode="rc"``), or from the last valid step (``"eos"``, the conventional
    baseline, on the same code path).

    Args:
        cell: a Keras RNN cell (``keras.layers.LSTMCell``, ``GRUCell``,
            ``SimpleRNNCell``, a cell of `rc_keras.cells`) or a list of cells, stacked.
        head: a layer or ``keras.Sequential`` mapping the cell output to probabilities
            (end it with a softmax, or with one sigmoid unit for ``readout="sigmoid"``).
        threshold: theta in (0, 1), or a per-step schedule: a 1-D sequence of thetas, step
            t using ``schedule[min(t, len - 1)]`` (see
            `rc_keras.tradeoff.fit_threshold_schedule`). Stored in a variable: it is saved
            with the model and can be changed after training (``model.threshold = 0.9`` or
            ``= [0.99, 0.97, 0.95]``) without rebuilding; training uses it too.
        readout: "softmax" (spike when the largest probability >= theta) or "sigmoid"
            (one output p; spike when p >= theta or p <= 1 - theta).
        training_mode: "rc" (loss at each example's spike) or "eos" (loss at the last
            valid step).
        inference_mode: "rc" (answer at the first spike) or "eos" (answer at the last
            valid step); used by ``evaluate`` and ``predict``.
        mask_value: if set, a step whose features all equal this value is padding, as
            with ``keras.layers.Masking``. Explicit lengths can also be passed by giving
            ``x`` as a dict ``{"inputs": x, "lengths": lengths}`` (or ``"mask"``).
        per_example_halting: stop computing each example at its own answer, in
            ``fit``, ``evaluate`` and ``predict`` (the batch shrinks as examples answer;
            see `rc_keras.rank_coding.rank_code`), so a batch computes about the sum of
            its answer steps rather than batch x its latest one. Answers and gradients
            are the same either way; False (the default) runs every row to the batch's
            last answer. Time falls less than computation: every loop step costs a
            fixed overhead whatever its rows, the staged graph takes about four times
            as long to trace, and small cells or batches gain nothing. With an LSTM 128,
            batch 128 and answers spread evenly over 81 steps it computed 0.58 of the
            cell evaluations in 0.73x the time of the single loop, and cost the same
            when nobody answered early (benchmarks/results/train_speed.md); worth
            turning on for wide cells and large batches whose answers spread out.
            Under XLA (``jit_compile=True``) it is off, with a warning.
        **kwargs: passed to ``keras.Model`` (``name``...).

    Example:

    ```python
    model = rc_keras.RCModel(keras.layers.LSTMCell(64),
                             keras.layers.Dense(2, activation="softmax"))
    model.compile("adam", rc_keras.ConfidencePenalty(beta=0.1),
                  metrics=[rc_keras.metrics.SpikeAccuracy(), rc_keras.metrics.MeanSpikeTime()])
    model.fit(x, y)
    out = model.predict(x)   # {"probs", "spike_time", "spiked", "label"}
    ```
    """

    def __init__(self, cell, head, threshold=0.95, readout="softmax", training_mode="rc",
                 inference_mode="rc", mask_value=None, per_example_halting=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = keras.layers.StackedRNNCells(list(cell))
        if not hasattr(cell, "state_size"):
            raise ValueError(f"`cell` must be a Keras RNN cell with a `state_size`; received {cell!r}.")
        if not callable(head):
            raise ValueError(f"`head` must be a Keras layer; received {head!r}.")
        self.cell = cell
        self.head = head
        self.readout = validation.check_choice(readout, validation.READOUTS, "readout")
        self.training_mode = validation.check_choice(training_mode, validation.MODES, "training_mode")
        self.inference_mode = validation.check_choice(inference_mode, validation.MODES, "inference_mode")
        self.mask_value = None if mask_value is None else float(mask_value)
        if not isinstance(per_example_halting, (bool, np.bool_)):
            raise ValueError("`per_example_halting` must be True or False; received "
                             f"{per_example_halting!r}.")
        self.per_example_halting = bool(per_example_halting)
        theta = validation.check_threshold_values(threshold, self.readout)
        # The scalar weight keeps `.keras` weight files as they were (one variable);
        # it holds the first value of a schedule. The halting loop reads `_threshold_steps`,
        # a 1-D variable of any length (a scalar is a schedule of one value), so a traced
        # predict or train function follows a later change from scalar to schedule or to a
        # schedule of another length without retracing.
        self._threshold = self.add_weight(
            name="threshold", shape=(), trainable=False, dtype="float32",
            initializer=keras.initializers.Constant(np.atleast_1d(theta)[0]))
        self._threshold_steps = tf.Variable(
            np.atleast_1d(np.asarray(theta, np.float32)), shape=tf.TensorShape([None]),
            trainable=False, dtype=tf.float32, name="threshold_steps")
        # Scalar or schedule, in a variable too: a tf.function that sets a schedule and
        # runs again without retracing leaves the Python flag as it was at trace time.
        self._threshold_rank = tf.Variable(int(isinstance(theta, tuple)), trainable=False,
                                           dtype=tf.int32, name="threshold_rank")
        self._threshold_is_schedule = isinstance(theta, tuple)
        self.feature_shape = None
        self.num_outputs = None
        self._init_rc_metrics()

    @no_automatic_dependency_tracking
    def _init_rc_metrics(self):
        # RC metrics are tracked by hand in the model's own metrics (see `compile`), not by
        # attribute tracking, so that re-compiling a built model replaces them.
        self._rc_metric_lists = []

    @property
    def _rc_metrics(self):
        """Every compiled RC metric, unweighted ones first."""
        return [m for group in self._rc_metric_lists for m in group.metrics]

    # ------------------------------------------------------------------ threshold
    @property
    def threshold(self):
        """The spike threshold theta: a Python float, or a tuple of floats for a per-step
        schedule (in graph code, a float32 tensor of rank 0 or 1).

        Set it in eager or graph code (``model.threshold = 0.9``, a scalar tensor inside a
        ``tf.function``, or a schedule ``model.threshold = [0.99, 0.97, 0.95]``: step t
        uses ``schedule[min(t, len - 1)]``, the last value holds for longer inputs); a
        value outside (0, 1) is refused, in graph code by an assertion.
        """
        if not tf.executing_eagerly():
            return self._threshold_steps.value() if self._threshold_is_schedule \
                else self._threshold.value
        # The shortest decimal of the stored float32: 0.9 reads back as 0.9, and every
        # value reads back (and saves) as exactly the float32 the spike test uses.
        if self.threshold_is_schedule:
            return tuple(validation.float32_value(v) for v in self._threshold_steps.numpy())
        return validation.float32_value(self._threshold.numpy())

    @threshold.setter
    def threshold(self, value):
        if tf.is_tensor(value) and not tf.executing_eagerly():
            theta = self._checked_threshold_tensor(value)
            steps = tf.reshape(theta, [-1])
            self._threshold.assign(steps[0])
            self._threshold_steps.assign(steps)
            self._threshold_rank.assign(theta.shape.rank)
            self._threshold_is_schedule = theta.shape.rank == 1  # for graph code reading it
            return
        if tf.is_tensor(value):
            value = value.numpy()
        theta = validation.check_threshold_values(value, self.readout, self.num_outputs)
        steps = np.atleast_1d(np.asarray(theta, np.float32))
        self._threshold.assign(steps[0])
        self._threshold_steps.assign(steps)
        self._threshold_rank.assign(int(isinstance(theta, tuple)))
        self._threshold_is_schedule = isinstance(theta, tuple)

    @property
    def threshold_is_schedule(self):
        """True when ``threshold`` is a per-step schedule, False for one scalar theta."""
        if tf.executing_eagerly():
            self._threshold_is_schedule = bool(self._threshold_rank.numpy())
        return self._threshold_is_schedule

    def _checked_threshold_tensor(self, value):
        """A symbolic threshold as float32, with the checks of `check_threshold` in the graph."""
        if value.shape.rank not in (None, 0, 1) or not (value.dtype.is_floating
                                                       or value.dtype.is_integer):
            raise ValueError(f"`threshold` must be a scalar number in (0, 1) or a 1-D schedule; "
                             f"received a {value.dtype.name} tensor of shape "
                             f"{tuple(value.shape)}.")
        if value.shape.rank is None:
            raise ValueError("`threshold` must have a known rank (0: one theta, 1: a schedule) "
                             "in graph code.")
        theta = tf.cast(value, tf.float32)
        checks = [tf.debugging.assert_equal(
            tf.reduce_all((theta > 0.0) & (theta < 1.0)), True,
            message="`threshold` must lie strictly between 0 and 1 (in float32)")]
        if theta.shape.rank == 1:
            checks.append(tf.debugging.assert_positive(
                tf.size(theta), message="`threshold` schedule is empty"))
        bound = validation.lowest_useful_threshold(self.readout, self.num_outputs)
        if bound is not None:
            checks.append(tf.debugging.assert_greater(
                theta, tf.constant(bound, tf.float32),  # float32, as the host check
                message=f"`threshold` must be above {bound:g} for this model: at or below it "
                        "every sequence would answer at its first step"))
        with tf.control_dependencies(checks):
            return tf.identity(theta)

    # ------------------------------------------------------------------ building
    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["inputs"]
        input_shape = tuple(input_shape)
        if len(input_shape) < 3:
            raise ValueError(
                f"RCModel inputs must have shape (batch, time, *features); received {input_shape}.")
        self.feature_shape = tuple(input_shape[2:])
        step_shape = (input_shape[0],) + self.feature_shape
        if not self.cell.built:
            self.cell.build(step_shape)
        output_size = getattr(self.cell, "output_size", None)
        if output_size is None:
            output_size = tf.nest.flatten(self.cell.state_size)[0]
        output_shape = (input_shape[0],) + (tuple(output_size) if isinstance(output_size, (tuple, list))
                                            else (int(output_size),))
        if not self.head.built:
            self.head.build(output_shape)
        self.num_outputs = int(self.head.compute_output_shape(output_shape)[-1])
        if self.readout == "sigmoid" and self.num_outputs != 1:
            raise ValueError(f"readout='sigmoid' needs a head with one output; this head has "
                             f"{self.num_outputs}.")
        with tf.init_scope():  # build may run while predict traces: read the value eagerly
            theta = [validation.float32_value(v) for v in self._threshold_steps.numpy()]
            scheduled = self.threshold_is_schedule
        validation.check_threshold_values(theta if scheduled else theta[0],
                                          self.readout, self.num_outputs)
        self.built = True

    @property
    def num_classes(self):
        """Number of classes: the head's width, or 2 for a single sigmoid output."""
        return 2 if self.readout == "sigmoid" else self.num_outputs

    # ------------------------------------------------------------------ forward
    def _split_inputs(self, inputs):
        """Returns (x, step_mask or None, whether the mask comes from lengths) from a tensor
        or an {"inputs", "lengths"|"mask"} dict."""
        lengths = mask = None
        if isinstance(inputs, dict):
            unknown = set(inputs) - {"inputs", "lengths", "mask"}
            if "inputs" not in inputs or unknown:
                raise ValueError("a dict input must have the key 'inputs' and optionally 'lengths' "
                                 f"or 'mask'; received keys {sorted(inputs)}.")
            lengths, mask = inputs.get("lengths"), inputs.get("mask")
            inputs = inputs["inputs"]
        x = tf.convert_to_tensor(inputs)
        if not x.dtype.is_floating:
            x = tf.cast(x, self.compute_dtype)
        if not self.built:
            self.build(tuple(x.shape))
        validation.check_sequences(_StaticShape(x.shape), self.feature_shape, name="inputs")
        x = tf.debugging.check_numerics(x, "RCModel inputs contain NaN or Inf values")
        if x.shape[1] is None:
            with tf.control_dependencies([tf.debugging.assert_positive(
                    tf.shape(x)[1], message="`inputs` must hold at least one time step")]):
                x = tf.identity(x)
        if tf.executing_eagerly():  # concrete values: a ValueError naming the argument
            self._check_step_mask_arrays(x.shape, lengths, mask)
            if mask is None and lengths is None:
                self._check_padding_rows(x)
        if mask is None and lengths is None and self.mask_value is not None:
            axes = list(range(2, x.shape.rank))
            mask = tf.reduce_any(tf.not_equal(x, self.mask_value), axis=axes)
        if mask is None and lengths is None:
            return x, None, False
        return x, rank_coding.step_mask_from(x, lengths=lengths, mask=mask), mask is None

    def _check_padding_rows(self, inputs):
        """With ``mask_value``: every sequence needs a step that is not padding."""
        if self.mask_value is None:
            return
        values = np.asarray(inputs)
        padding = np.all(values.reshape(values.shape[:2] + (-1,)) == self.mask_value, axis=2)
        empty = np.flatnonzero(padding.all(axis=1))
        if empty.size:
            raise ValueError(f"sequence {empty[0]} of `x` is all padding (every step equals "
                             f"mask_value={self.mask_value}); every sequence needs at least "
                             "one valid step.")

    @staticmethod
    def _check_step_mask_arrays(shape, lengths, mask):
        """Host-side check of explicit lengths or a mask against an input of ``shape``."""
        batch, time = shape[0], shape[1]
        if lengths is not None and mask is not None:
            raise ValueError("give `lengths` or `mask`, not both.")
        if lengths is not None:
            validation.check_lengths(lengths, batch, time)
        if mask is not None:
            validation.check_step_mask(mask, batch, time)

    def _initial_states(self, x):
        batch = tf.shape(x)[0]
        if hasattr(self.cell, "get_initial_state"):
            states = self.cell.get_initial_state(batch_size=batch)
        else:
            states = [tf.zeros(tf.concat([[batch], tf.reshape(size, [-1])], 0), self.compute_dtype)
                      for size in tf.nest.flatten(self.cell.state_size)]
        return states

    def _step_fn(self, structure, training):
        def step(x_t, flat_states):
            states = tf.nest.pack_sequence_as(structure, flat_states)
            output, new_states = self.cell(x_t, states, training=training)
            probs = self.head(output, training=training)
            return probs, _flat_states(new_states)
        return step

    def rank_code(self, inputs, training=False, mode=None):
        """Runs the halting unroll and returns an `rc_keras.rank_coding.RCOutput`.

        Args:
            inputs: (batch, time, *features), or a dict with "inputs" and "lengths"/"mask".
            training: whether layers run in training mode.
            mode: "rc" or "eos"; defaults to ``training_mode`` when training, else
                ``inference_mode``.
        """
        x, step_mask, prefix = self._split_inputs(inputs)
        mode = mode or (self.training_mode if training else self.inference_mode)
        structure = self._initial_states(x)
        self._prime_dropout_masks(x, structure, training)
        step = self._step_fn(structure, training)
        try:
            # In training nobody reads the final states, so they need not be frozen.
            return rank_coding.rank_code(step, x, _flat_states(structure), self.num_outputs,
                                         self._threshold_steps.value(), self.readout, mode,
                                         step_mask,
                                         freeze_states=not training,
                                         per_example=self.per_example_halting,
                                         rows_step_fn=self._rows_step_fn(structure, training),
                                         mask_is_prefix=prefix)
        finally:
            self._reset_dropout_masks()

    def step_probabilities(self, inputs, training=False):
        """Probabilities at every step, no halting: (batch, time, outputs), float32.

        One pass serves a whole threshold sweep (see `rc_keras.tradeoff`).
        """
        x, step_mask, _ = self._split_inputs(inputs)
        structure = self._initial_states(x)
        # float32, as the spike test of `rank_code`: sweeps over these match predict.
        return rank_coding.step_probabilities(self._step_fn(structure, training), x,
                                              _flat_states(structure), dtype=tf.float32,
                                              step_mask=step_mask)

    def _rows_step_fn(self, structure, training):
        """Step functions for subsets of the batch: each cell's dropout masks, made for the
        whole batch, are gathered to the rows, so every example keeps its own mask."""
        cells = [c for c in self._dropout_cells() if training]
        full = [(getattr(c, "_dropout_mask", None), getattr(c, "_recurrent_dropout_mask", None))
                for c in cells]

        def for_rows(rows):
            gather = lambda masks: tf.nest.map_structure(  # noqa: E731 - a mask or a list
                lambda m: tf.gather(m, rows), masks)
            for cell, (mask, recurrent) in zip(cells, full):
                if mask is not None:
                    cell._dropout_mask = gather(mask)
                if recurrent is not None:
                    cell._recurrent_dropout_mask = gather(recurrent)
            return self._step_fn(structure, training)
        return for_rows

    def _dropout_cells(self):
        cells = getattr(self.cell, "cells", [self.cell])
        return [c for c in cells if hasattr(c, "get_dropout_mask")]

    def _prime_dropout_masks(self, x, states, training):
        # Keras cells cache their dropout masks on first use; creating them inside the
        # while_loop body would leak loop tensors, so create them here, once per batch.
        if not training:
            return
        step_input = x[:, 0]
        for index, cell in enumerate(getattr(self.cell, "cells", [self.cell])):
            if not hasattr(cell, "get_dropout_mask"):
                step_input = None
                continue
            if step_input is not None and getattr(cell, "dropout", 0) > 0:
                cell.get_dropout_mask(step_input)
            if getattr(cell, "recurrent_dropout", 0) > 0:
                cell_states = states[index] if hasattr(self.cell, "cells") else states
                cell.get_recurrent_dropout_mask(tf.nest.flatten(cell_states)[0])
            size = getattr(cell, "output_size", None)
            step_input = tf.zeros((tf.shape(x)[0], size), x.dtype) if isinstance(size, int) else None

    def _reset_dropout_masks(self):
        for cell in self._dropout_cells():
            cell.reset_dropout_mask()
            cell.reset_recurrent_dropout_mask()

    def call(self, inputs, training=False):
        return self.rank_code(inputs, training=training).probs

    # ------------------------------------------------------------------ training
    @no_automatic_dependency_tracking
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Like ``keras.Model.compile``; RC metrics (`rc_keras.metrics`) may be listed
        in ``metrics`` and ``weighted_metrics`` next to ordinary Keras metrics.

        As in Keras, ``sample_weight`` and ``class_weight`` weigh the metrics of
        ``weighted_metrics`` only; those of ``metrics`` count every example once.
        """
        metrics = list(metrics or [])
        weighted = list(weighted_metrics or [])
        super().compile(optimizer=optimizer, loss=loss,
                        metrics=[m for m in metrics if not isinstance(m, RCMetric)] or None,
                        weighted_metrics=[m for m in weighted if not isinstance(m, RCMetric)]
                        or None, **kwargs)
        # Keep the user's full metric lists in the saved compile config.
        _keras_compat.set_compile_config_entry(self, "metrics", metrics or None)
        _keras_compat.set_compile_config_entry(self, "weighted_metrics", weighted or None)
        own = _keras_compat.own_metrics(self)
        for old in self._rc_metric_lists:
            if old in own:
                own.remove(old)
        plain = _RCMetricsList([m for m in metrics if isinstance(m, RCMetric)], weighted=False)
        self._rc_metric_lists = [plain, _RCMetricsList(
            [m for m in weighted if isinstance(m, RCMetric)], weighted=True,
            taken={m.name for m in plain.metrics})]
        own.extend(self._rc_metric_lists)

    def compile_from_config(self, config):
        """Re-compiles a loaded model from ``get_compile_config()`` (RC metrics included)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _rc_prediction(self, out, x):
        inputs = x["inputs"] if isinstance(x, dict) else x
        return {"probs": out.probs, "spike_time": out.spike_time, "spiked": out.spiked,
                "steps_run": out.steps_run, "cell_evaluations": out.cell_evaluations,
                "time_steps": tf.shape(inputs)[1]}

    def _check_labels_in_graph(self, y):
        """The rules of `validation.check_labels`, as graph assertions (tf.data input)."""
        if y is None or self.num_classes is None:
            return y
        y = tf.convert_to_tensor(y)
        if self.readout == "sigmoid":
            if y.shape.rank is not None and (y.shape.rank > 2 or y.shape.rank == 2
                                             and y.shape[1] not in (1, None)):
                raise ValueError(validation.sigmoid_labels_message()
                                 + f"; received shape {tuple(y.shape)}.")
        elif y.shape.rank == 2 and y.shape[-1] == self.num_outputs and self.num_outputs > 1:
            return y
        if not (y.dtype.is_integer or y.dtype.is_floating):
            return y
        values = tf.cast(y, tf.float32)
        top = 1.0 if self.readout == "sigmoid" else float(self.num_classes - 1)
        checks = [tf.debugging.assert_less_equal(
                      values, top, message=f"labels must be < number of classes "
                                           f"({self.num_classes})"),
                  tf.debugging.assert_non_negative(values, message="labels must be >= 0")]
        if y.dtype.is_floating and self.readout == "softmax":
            # Sparse cross-entropy casts 1.5 to 1 silently: refuse it, as for arrays.
            checks.append(tf.debugging.assert_equal(
                values, tf.round(values), message="class labels must be integers"))
        with tf.control_dependencies(checks):
            return tf.identity(y)

    def _loss_and_metrics(self, x, y, sample_weight, training):
        out = self.rank_code(x, training=training)
        loss = self.compute_loss(x=x, y=y, y_pred=out.probs, sample_weight=sample_weight,
                                  training=training)
        _keras_compat.loss_tracker(self).update_state(
            unscale_loss_for_distribution(loss),
            sample_weight=tf.shape(out.probs)[0])
        return out, loss

    def _metric_results(self, x, y, out, sample_weight):
        prediction = self._rc_prediction(out, x)
        for group in self._rc_metric_lists:
            group.update_state(y, prediction, sample_weight=sample_weight)
        results = self.compute_metrics(x, y, out.probs, sample_weight=sample_weight)
        if _multi_worker(self.distribute_strategy):
            # Keras averages logs across workers with strategy.reduce(..., axis=0),
            # which rejects scalars (keras-team/keras#20585): give each a length-1 axis.
            results = {key: tf.reshape(value, [1]) for key, value in results.items()}
        return results

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y = self._check_labels_in_graph(y)
        with tf.GradientTape() as tape:
            out, loss = self._loss_and_metrics(x, y, sample_weight, training=True)
            if self.optimizer is not None:
                loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._metric_results(x, y, out, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y = self._check_labels_in_graph(y)
        out, _ = self._loss_and_metrics(x, y, sample_weight, training=False)
        return self._metric_results(x, y, out, sample_weight)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        out = self.rank_code(x, training=False)
        return {"probs": out.probs, "spike_time": out.spike_time, "spiked": out.spiked,
                "label": predicted_labels(out.probs)}

    # ------------------------------------------------------------------ array checks
    def _check_arrays(self, x, y=None):
        inputs = x["inputs"] if isinstance(x, dict) else x
        if isinstance(inputs, (np.ndarray, list)) or tf.is_tensor(inputs) and tf.executing_eagerly():
            validation.check_sequences(inputs, self.feature_shape, name="x")
            if isinstance(x, dict) and ("lengths" in x or "mask" in x):
                self._check_step_mask_arrays(np.shape(inputs), x.get("lengths"), x.get("mask"))
            else:
                self._check_padding_rows(inputs)
            if y is not None and self.built:
                validation.check_labels(y, self.num_classes, name="y", readout=self.readout)

    @staticmethod
    def _check_not_empty(x, what):
        inputs = x["inputs"] if isinstance(x, dict) else x
        if isinstance(inputs, (np.ndarray, list)) and len(inputs) == 0:
            raise ValueError(f"`x` holds no sequences: {what} needs at least one.")

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_arrays(x, y)
        self._check_not_empty(x, "fit")
        if y is not None and not self.built and isinstance(x, (np.ndarray, dict)):
            self.build(np.shape(x["inputs"] if isinstance(x, dict) else x))
            validation.check_labels(y, self.num_classes, name="y", readout=self.readout)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, tuple) and len(validation_data) >= 2:
            self._check_arrays(validation_data[0], validation_data[1])
        self._check_sample_weight(x, kwargs.get("sample_weight"))
        return super().fit(x, y, *args, **kwargs)

    def _check_sample_weight(self, x, sample_weight):
        # An infinite or negative weight turns the loss non-finite several steps later.
        inputs = x["inputs"] if isinstance(x, dict) else x
        if sample_weight is not None and isinstance(inputs, (np.ndarray, list)):
            validation.check_sample_weight(sample_weight, len(inputs))

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_arrays(x, y)
        self._check_not_empty(x, "evaluate")
        self._check_sample_weight(x, kwargs.get("sample_weight"))
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_arrays(x)
        inputs = x["inputs"] if isinstance(x, dict) else x
        if isinstance(inputs, (np.ndarray, list)) or tf.is_tensor(inputs):
            if np.shape(inputs)[0] == 0:  # Keras's predict loop fails on zero batches
                return self._empty_prediction(np.shape(inputs))
        return super().predict(x, *args, **kwargs)

    def _empty_prediction(self, shape):
        if not self.built:
            self.build(tuple(shape))
        return {"probs": np.zeros((0, self.num_outputs), np.float32),
                "spike_time": np.zeros((0,), np.int32), "spiked": np.zeros((0,), bool),
                "label": np.zeros((0,), np.int32)}

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Exports for serving. ``format="tf_saved_model"`` writes the RC SavedModel of
        `rc_keras.export.export_saved_model` (endpoints ``serve``, with spike times, and
        ``step``); other formats go to ``keras.Model.export``."""
        if format == "tf_saved_model" and not kwargs:
            from rc_keras.export import export_saved_model  # export imports this module
            return export_saved_model(self, filepath)
        return super().export(filepath, format=format, verbose=verbose, **kwargs)

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            head=keras.saving.serialize_keras_object(self.head),
            threshold=list(self.threshold) if self.threshold_is_schedule else self.threshold,
            readout=self.readout,
            training_mode=self.training_mode,
            inference_mode=self.inference_mode,
            mask_value=self.mask_value,
            per_example_halting=self.per_example_halting,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)


class _RCMetricsList(MetricsList):
    """The RC metrics of ``metrics`` (unweighted) or of ``weighted_metrics``.

    A Keras ``MetricsList`` so that callbacks with ``mode="auto"`` find each metric and
    its direction, as they do for compiled Keras metrics. A weighted metric whose name
    an unweighted one already has is logged as ``weighted_<name>``, as in Keras.
    """

    def __init__(self, metrics, weighted, taken=()):
        super().__init__(list(metrics), name="rc_weighted_metrics" if weighted else "rc_metrics")
        self.weighted = weighted
        self._log_names = [f"weighted_{m.name}" if m.name in taken else m.name
                           for m in self.metrics]

    def update_state(self, y_true, y_pred, sample_weight=None):
        for metric in self.metrics:
            metric.update_state(y_true, y_pred,
                                sample_weight=sample_weight if self.weighted else None)

    def result(self):
        return {name: m.result() for name, m in zip(self._log_names, self.metrics)}

    get_result = result


def _multi_worker(strategy):
    """True under a MultiWorkerMirroredStrategy with more than one worker."""
    return _keras_compat.in_multi_worker_mode(strategy)


class _StaticShape:
    """Wraps a static TensorShape so the array checks see its shape but no values."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __array__(self, *args, **kwargs):
        raise TypeError("symbolic")
