"""The halting unroll: one ``tf.while_loop`` over time that stops at the first spike.

An example "spikes" at the first valid step where its output crosses the threshold.
From then on its answer and its recurrent state are frozen, and the loop ends as soon
as every example in the batch has answered, so both the forward pass and the
backward pass (which replays the same loop) skip the rest of the sequence.
"""

import logging
from typing import NamedTuple

import numpy as np
import tensorflow as tf
# The one public-enough test of "being traced for XLA": tf.function(jit_compile=True)
# enters an XLA control-flow context while it traces.
from tensorflow.python.ops import control_flow_util

from rc_keras import validation

# Per-example halting (see `rank_code`): a stage ends when the rows still running fall to
# this fraction of the rows it computes. 3/4 keeps the computed rows within about 1.15x of
# the rows that are needed when spike times are spread evenly (1 / (1 + f) of batch x time
# against 1/2), and each compaction costs only a few gathers.
COMPACT_FRACTION = 0.75
# Below this many rows a stage runs on to the end: a smaller batch no longer costs less.
COMPACT_MIN_ROWS = 4
# Stages are built in Python (each is its own while loop, so gradients flow as through
# any sequence of ops; a loop over stages would nest loops whose shapes change, which
# TensorFlow's while-loop gradient got wrong here). A batch of unknown size is planned
# as this many rows, and no unroll has more than COMPACT_MAX_STAGES stages: each adds a
# copy of the step to the graph (tracing time), and after 7 compactions by 3/4 the last
# stage holds at most 13% of the batch, whose tail costs little.
COMPACT_PLAN_BATCH = 128
COMPACT_MAX_STAGES = 8


class RCOutput(NamedTuple):
    """Result of a rank-coded unroll.

    Attributes:
        probs: (batch, outputs) readout at each example's answer step.
        spike_time: (batch,) int32, 0-based step at which each example answered.
        spiked: (batch,) bool, True where the output crossed the threshold; False
            where the example reached its last valid step without crossing.
        steps_run: scalar int32, time steps the unroll ran for the batch (its latest
            answer step + 1).
        states: flat list of the recurrent states, frozen at each answer step.
        cell_evaluations: scalar int32, rows times steps for which ``step_fn`` actually
            ran: ``steps_run * batch`` without per-example halting, about the sum of the
            examples' answer steps with it.
    """

    probs: tf.Tensor
    spike_time: tf.Tensor
    spiked: tf.Tensor
    steps_run: tf.Tensor
    states: list
    cell_evaluations: tf.Tensor = None


def crosses_threshold(probs, threshold, readout):
    """Spike test for one step.

    Args:
        probs: (batch, outputs) probabilities.
        threshold: scalar theta in (0, 1).
        readout: "softmax" (max probability >= theta) or "sigmoid" (a single
            output p with p >= theta or p <= 1 - theta).

    Returns:
        (batch,) bool tensor.
    """
    if readout == "softmax":
        return tf.reduce_max(probs, axis=-1) >= threshold
    p = probs[:, 0]
    return (p >= threshold) | (p <= 1.0 - threshold)


def step_mask_from(inputs, lengths=None, mask=None):
    """Returns the (batch, time) bool mask of valid steps, checked against ``inputs``.

    Shapes known while tracing are checked at once (``ValueError``); values, and
    shapes known only at run time, by graph assertions with the same message
    (``InvalidArgumentError``). Every sequence needs at least one valid step: a
    sequence without one would answer from padding.

    Args:
        inputs: (batch, time, ...) tensor.
        lengths: optional (batch,) or (batch, 1) integer valid lengths in [1, time]
            (padding at the end).
        mask: optional (batch, time) bool or 0/1 Keras-style mask; invalid steps may
            sit anywhere and are skipped.

    Raises:
        ValueError: for both ``lengths`` and ``mask``, a wrong rank, dtype or static shape.
    """
    if lengths is not None and mask is not None:
        raise ValueError("give `lengths` or `mask`, not both.")
    batch, time = tf.shape(inputs)[0], tf.shape(inputs)[1]
    static = (inputs.shape[0], inputs.shape[1])
    if mask is not None:
        mask = tf.convert_to_tensor(mask)
        message = validation.mask_message(*static)
        if not mask.shape.is_compatible_with(static):
            raise ValueError(f"{message}; received shape {tuple(mask.shape)}.")
        if not (mask.dtype == tf.bool or mask.dtype.is_integer or mask.dtype.is_floating):
            raise ValueError(f"{message}; received dtype {mask.dtype.name}.")
        checks = [tf.debugging.assert_equal(tf.shape(mask), tf.stack([batch, time]),
                                            message=message)]
        if mask.dtype != tf.bool:
            checks.append(tf.debugging.assert_equal(
                tf.reduce_all(tf.equal(mask, 0) | tf.equal(mask, 1)), True, message=message))
            mask = tf.not_equal(mask, 0)
        checks.append(tf.debugging.assert_equal(tf.reduce_all(tf.reduce_any(mask, axis=1)),
                                                True, message=message))
        with tf.control_dependencies(checks):
            return tf.identity(mask)
    if lengths is not None:
        lengths = tf.convert_to_tensor(lengths)
        message = validation.lengths_message(*static)
        if not lengths.dtype.is_integer:
            raise ValueError(f"{message}; received dtype {lengths.dtype.name}.")
        if lengths.shape.rank == 2 and lengths.shape[1] == 1:
            lengths = lengths[:, 0]
        if not lengths.shape.is_compatible_with(static[:1]):
            raise ValueError(f"{message}; received shape {tuple(lengths.shape)}.")
        lengths = tf.cast(lengths, tf.int32)
        checks = [tf.debugging.assert_equal(tf.shape(lengths), batch[tf.newaxis], message=message),
                  tf.debugging.assert_greater_equal(lengths, 1, message=message),
                  tf.debugging.assert_less_equal(lengths, time, message=message)]
        with tf.control_dependencies(checks):
            return tf.sequence_mask(lengths, maxlen=time)
    return tf.ones((batch, time), dtype=tf.bool)


def last_valid_step(step_mask):
    """(batch,) int32 index of each row's last valid step (0 for an empty row)."""
    time = tf.shape(step_mask)[1]
    steps = tf.range(time, dtype=tf.int32)[tf.newaxis, :]
    return tf.reduce_max(tf.where(step_mask, steps, tf.zeros_like(steps)), axis=1)


def swap_batch_time(x):
    """Transposes (batch, time, ...) to (time, batch, ...) and back."""
    perm = [1, 0] + list(range(2, x.shape.rank))
    return tf.transpose(x, perm)


def _where_rows(rows, new, old):
    """Selects ``new`` where the (batch,) mask ``rows`` is True, ``old`` elsewhere."""
    # A static reshape: no shape arithmetic inside the loop.
    return tf.where(tf.reshape(rows, [-1] + [1] * (new.shape.rank - 1)), new, old)


def in_xla_context():
    """True while tracing code to be compiled by XLA (``tf.function(jit_compile=True)``)."""
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


_warned_xla = []


def _warn_xla_fallback():
    if not _warned_xla:
        _warned_xla.append(True)
        logging.getLogger("rc_keras").warning(
            "rc_keras: per-example halting needs dynamic shapes, which XLA lacks; under "
            "jit_compile=True every row runs until the batch's last answer.")


def rank_code(step_fn, inputs, initial_states, num_outputs, threshold,
              readout="softmax", mode="rc", step_mask=None, freeze_states=True,
              per_example=False, rows_step_fn=None, mask_is_prefix=False):
    """Unrolls ``step_fn`` over time and halts each example at its first spike.

    Args:
        step_fn: callable ``(x_t, states) -> (probs, new_states)`` with ``states``
            a flat list of tensors whose leading dimension is the batch.
        inputs: (batch, time, *features) tensor.
        initial_states: flat list of initial state tensors.
        num_outputs: static size of the readout.
        threshold: scalar threshold theta, or a 1-D per-step schedule: step t uses
            ``threshold[min(t, len - 1)]``.
        readout: "softmax" or "sigmoid", see `crosses_threshold`.
        mode: "rc" answers at the first spike (or the last valid step); "eos"
            answers at the last valid step.
        step_mask: optional (batch, time) bool mask of valid steps; a spike never
            lands on an invalid step and states are not updated there.
        freeze_states: keep each example's state as it was at its answer step. The
            answer itself is frozen either way, so this only matters to callers that
            read ``states``; training passes False and saves a select per state and
            step, forward and backward (gradients are identical).
        per_example: stop computing each example at its own answer. The unroll then
            runs in stages: a stage ends when the examples still running fall to
            `COMPACT_FRACTION` of its rows, and the next one runs on those examples
            alone (gathered; answers are scattered back in the original order). The
            results and their gradients are those of the single loop; only the cost
            changes, to about the sum of the answer steps instead of batch x the
            latest one. With a batch size known while tracing, stage sizes are fixed
            in advance (each `COMPACT_FRACTION` of the one before; the rows still
            running, padded with rows that already answered), so every stage's loop
            and gradient have static shapes; `RCOutput.cell_evaluations` counts the
            padded rows, which are computed. Under XLA it falls back to the single
            loop, with a warning.
        rows_step_fn: optional callable ``rows -> step_fn`` giving the step function
            for a subset of the batch (original row indices), for a step function that
            holds per-row tensors such as dropout masks. Defaults to ``step_fn``.
        mask_is_prefix: ``step_mask`` is True up to each row's last valid step and False
            after it (as made from lengths). A row still waiting is then always on a valid
            step, so the body skips the per-step mask tests: the masked loop costs what
            the unmasked one does. Results are the same either way.

    Returns:
        An `RCOutput`.
    """
    inputs_tm = swap_batch_time(inputs)
    batch = tf.shape(inputs)[0]
    time = tf.shape(inputs)[1]
    # The spike test runs in float32 whatever the input or compute dtype: a threshold
    # rounded to bfloat16 (0.95 -> 0.949) would let p = 0.948 spike, and the answer
    # would depend on the dtype the caller happened to feed.
    probs_dtype = tf.float32
    theta = tf.cast(threshold, probs_dtype)
    if theta.shape.rank not in (0, 1):
        raise ValueError("`threshold` must be a scalar or a 1-D per-step schedule; received "
                         f"shape {tuple(theta.shape)}.")
    scheduled = theta.shape.rank == 1
    last_theta = tf.shape(theta)[0] - 1 if scheduled else None
    # Every op in the body runs once per step forward and again backward, so the
    # unmasked case (the common one) skips the mask bookkeeping altogether.
    masked = step_mask is not None
    # With a prefix mask a waiting row is on a valid step (it answers at its last one at
    # the latest), so only the answer-at-the-end test needs the per-row last step.
    mask_in_body = masked and not mask_is_prefix
    if masked:
        mask_tm = tf.transpose(step_mask)
        last = last_valid_step(step_mask)
    else:
        mask_tm = None
        last = time - 1

    def make_body(step, x_tm, valid_tm, last_step):
        """The loop body over one set of rows (the whole batch, or a stage's rows)."""
        def body(t, done, spike_time, spiked, probs, states):
            step_probs, new_states = step(x_tm[t], states)
            step_probs = tf.cast(step_probs, probs_dtype)
            waiting = tf.logical_not(done)
            # A schedule: step t uses theta[min(t, len - 1)] (the last value holds on).
            theta_t = theta[tf.minimum(t, last_theta)] if scheduled else theta
            crossed = crosses_threshold(step_probs, theta_t, readout)
            running = waiting
            if mask_in_body:
                valid = valid_tm[t]
                crossed = crossed & valid
                running = waiting & valid
            # Examples that already answered keep their state, so the returned state is
            # the one at the answer step (what a streaming server would hold).
            if freeze_states:
                states = [_where_rows(running, n, o) for n, o in zip(new_states, states)]
            elif mask_in_body:
                states = [_where_rows(valid, n, o) for n, o in zip(new_states, states)]
            else:
                states = list(new_states)
            at_end = tf.equal(t, last_step)
            answer = waiting & ((crossed | at_end) if mode == "rc" else at_end)
            probs = _where_rows(answer, step_probs, probs)
            spike_time = tf.where(answer, t, spike_time)
            spiked = spiked | (answer & crossed)
            return t + 1, done | answer, spike_time, spiked, probs, states
        return body

    def answers_init(rows):
        return (tf.zeros((rows,), tf.bool), tf.zeros((rows,), tf.int32),
                tf.zeros((rows,), tf.bool), tf.zeros((rows, num_outputs), probs_dtype))

    if per_example and in_xla_context():
        _warn_xla_fallback()
        per_example = False
    if not per_example:
        def cond(t, done, *_):
            return (t < time) & tf.logical_not(tf.reduce_all(done))

        loop_vars = (tf.constant(0, tf.int32),) + answers_init(batch) + (list(initial_states),)
        steps_run, _, spike_time, spiked, probs, states = tf.while_loop(
            cond, make_body(step_fn, inputs_tm, mask_tm, last), loop_vars,
            maximum_iterations=time)
        return RCOutput(probs, spike_time, spiked, steps_run, states, steps_run * batch)
    return _rank_code_in_stages(
        rows_step_fn or (lambda rows: step_fn), make_body, answers_init, inputs_tm,
        mask_tm if mask_in_body else None, last, list(initial_states), batch, time,
        num_outputs, probs_dtype)


def _stage_count(batch):
    """How many stages the per-example unroll is built with (see `_rank_code_in_stages`).

    Enough for the batch to shrink, by `COMPACT_FRACTION` a stage, to `COMPACT_MIN_ROWS`;
    a batch size unknown while tracing (``fit``'s last, smaller batch shares the trace)
    gets the count of `COMPACT_PLAN_BATCH`. Each stage adds a copy of the step to the graph.
    """
    rows = COMPACT_PLAN_BATCH if batch is None else batch
    count = 1
    while rows > COMPACT_MIN_ROWS and count < COMPACT_MAX_STAGES:
        rows = int(COMPACT_FRACTION * rows)
        count += 1
    return count


def _next_stage_size(count, index, stages):
    """Rows still running when stage ``index`` of ``count`` rows ends, at most: `limit`
    if it compacts, else none (it ran to the end). Mirrors the stage's own test."""
    if count > COMPACT_MIN_ROWS and index < stages - 1:
        return int(np.floor(np.float32(COMPACT_FRACTION) * np.float32(count)))
    return 0


def _rank_code_in_stages(rows_step_fn, make_body, answers_init, inputs_tm, mask_tm, last,
                         initial_states, batch, time, num_outputs, probs_dtype):
    """Per-example halting: stages built in Python, each a time loop over fewer rows.

    A stage runs the rows still waiting (their indices in ``rows``) from the current
    step until those still running fall to `COMPACT_FRACTION` of them (the last stage
    runs to the end); its answers are then added into batch-sized results at their rows
    (each row answers in exactly one stage, so the sum places it), and the rows still
    running go on alone. Only gathers, scatters and wheres stand between a row's answer
    and the loop: the gradient reaching each row is the one of the single loop. The
    returned states are each row's at the end of the stage it answered in (its answer
    step when the body freezes states).

    (Putting each later stage under a ``tf.cond`` on "some row still runs" was measured:
    it saved nothing measurable when nobody answers early, the stages' loops then
    running zero steps, and it doubled the tracing time.)
    """
    masked = mask_tm is not None
    per_row_last = last.shape.rank == 1
    # The batch size if known while tracing (tf.shape's value is not, inside a function).
    size = inputs_tm.shape[1]
    stages = _stage_count(size)

    def run_stage(index, t, rows, states, accumulated, padding=None):
        count = tf.size(rows)
        x_tm = tf.gather(inputs_tm, rows, axis=1) if index else inputs_tm
        valid_tm = (tf.gather(mask_tm, rows, axis=1) if index else mask_tm) if masked else None
        last_step = tf.gather(last, rows) if index and per_row_last else last
        # Compact once at most `limit` rows still run, unless the stage is already small.
        limit = tf.cast(tf.floor(COMPACT_FRACTION * tf.cast(count, tf.float32)), tf.int32)
        compacting = (count > COMPACT_MIN_ROWS) & (index < stages - 1)
        # The stage ends once this many of its rows have answered: all of them, or, when
        # it compacts, enough to leave at most `limit` running. One count per step.
        stop_at = tf.where(compacting, count - limit, count)

        def cond(t, done, *_):
            return (t < time) & (tf.reduce_sum(tf.cast(done, tf.int32)) < stop_at)

        answers = answers_init(count)
        if padding is not None:  # rows that answered before, there to fix the stage's size
            answers = (padding,) + answers[1:]
        t_end, done, spike_time, spiked, probs, states = tf.while_loop(
            cond, make_body(rows_step_fn(rows), x_tm, valid_tm, last_step),
            (t,) + answers + (states,), maximum_iterations=time - t)
        answered = done if padding is None else done & tf.logical_not(padding)
        answered_states = [_where_rows(answered, s, tf.zeros_like(s)) for s in states]
        if index == 0:
            # Rows in batch order: the stage's answers are the results so far (rows
            # that did not answer hold zeros).
            probs_acc, time_acc = probs, spike_time
            spiked_acc, states_acc = tf.cast(spiked, tf.int32), answered_states
            evaluations = t_end * count
        else:
            # Rows that did not answer here hold zeros, so adding every row is exact.
            probs_acc, time_acc, spiked_acc, states_acc, evaluations = accumulated
            at = rows[:, tf.newaxis]
            probs_acc = tf.tensor_scatter_nd_add(probs_acc, at, probs)
            time_acc = tf.tensor_scatter_nd_add(time_acc, at, spike_time)
            spiked_acc = tf.tensor_scatter_nd_add(spiked_acc, at, tf.cast(spiked, tf.int32))
            states_acc = [tf.tensor_scatter_nd_add(acc, at, s)
                          for acc, s in zip(states_acc, answered_states)]
            evaluations = evaluations + (t_end - t) * count
        return (t_end, rows, done, states,
                (probs_acc, time_acc, spiked_acc, states_acc, evaluations))

    carry = run_stage(0, tf.constant(0, tf.int32), tf.range(batch, dtype=tf.int32),
                      list(initial_states), None)
    for index in range(1, stages):
        t, rows, done, states, accumulated = carry
        if size is None:
            keep = tf.reshape(tf.where(tf.logical_not(done)), [-1])
            padding = None
        else:
            # A batch size known while tracing: each stage gets a size known too (the
            # rows still running, which are at most `limit`, then rows that answered
            # before as padding), so its loop and gradient have static shapes and skip
            # the shape arithmetic of dynamic ones (broadcast-gradient reductions).
            size = _next_stage_size(size, index - 1, stages)
            keep = tf.argsort(tf.cast(done, tf.int32), stable=True)[:size]
            padding = tf.gather(done, keep)
        carry = run_stage(index, t, tf.gather(rows, keep), [tf.gather(s, keep) for s in states],
                          accumulated, padding)
    t, _, _, _, (probs_acc, time_acc, spiked_acc, states_acc, evaluations) = carry
    return RCOutput(probs_acc, time_acc, spiked_acc > 0, t, states_acc, evaluations)


def step_probabilities(step_fn, inputs, initial_states, dtype=tf.float32, step_mask=None):
    """Runs ``step_fn`` over every step (no halting) and stacks the readouts.

    Used for threshold sweeps, where one full pass serves every threshold, and as the
    full-sequence reference in tests.

    Args:
        step_fn, inputs, initial_states: as for `rank_code`.
        dtype: dtype of the readout.
        step_mask: optional (batch, time) bool mask; on invalid steps the state is
            carried over unchanged, as in `rank_code` (the readout there is not used).

    Returns:
        (batch, time, outputs) probabilities.
    """
    inputs_tm = swap_batch_time(inputs)
    time = tf.shape(inputs)[1]
    if step_mask is None:
        step_mask = tf.ones((tf.shape(inputs)[0], time), dtype=tf.bool)
    mask_tm = tf.transpose(step_mask)
    out = tf.TensorArray(dtype, size=time)

    def body(t, out, states):
        probs, new_states = step_fn(inputs_tm[t], states)
        states = [_where_rows(mask_tm[t], n, o) for n, o in zip(new_states, states)]
        return t + 1, out.write(t, tf.cast(probs, dtype)), states

    _, out, _ = tf.while_loop(lambda t, *_: t < time, body,
                              (tf.constant(0), out, list(initial_states)))
    return swap_batch_time(out.stack())


# The readout at every step has one public name, `step_probabilities` (here on a step
# function, `RCModel.step_probabilities` on a model, `rc_keras.tradeoff.step_probabilities`
# on arrays in batches); the old name stays for existing code.
unroll_all_steps = step_probabilities
