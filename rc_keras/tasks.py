"""Tasks the `rc-keras` command trains: data, a default model, default sizes.

A `Task` bundles a seeded array generator with the defaults the paper (or a quick
run) uses for it. Splits draw from distinct seeds, so train, validation and test data
never share a sequence generator state:

```python
from rc_keras import tasks
task = tasks.get_task("spotting")
x, y = task.data("train", seed=0)           # task.default_train_size sequences
model = tasks.build_model(task, beta=0.05)  # compiled RCModel
```

More tasks (Speech Commands, temporal MNIST) register with `register_task`; a task
whose model is not "one cell + dense softmax" passes its own ``model_factory``, and a
task with its own data source or training recipe fills the hooks ``load``,
``compile_model``, ``plan_fit``, ``evaluate``, ``model_data`` and ``step_ms``. Every task
trains, evaluates and sweeps through the same path (`rc_keras.workflows.train`,
``evaluate``, ``sweep``: the same guards, backups and flags); ``options`` names the
task-specific options it takes, and any other is refused.
"""

import dataclasses
import importlib
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

# Keras and the model are imported where a model is built: listing and checking task
# names (`rc-keras --help`, argument errors) must not load TensorFlow.
from rc_keras import datasets, validation

if TYPE_CHECKING:
    from rc_keras.model import RCModel

SPLITS = ("train", "val", "test")
# Splits of one run use seeds seed * _SEED_STRIDE + offset: distinct across splits and runs.
_SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}
_SEED_STRIDE = 1000


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """A classification task for rank-coded networks, with the defaults to train on it."""

    name: str
    """Registry name, used on the command line (``--task``)."""
    description: str
    """One line, shown in ``rc-keras --help``."""
    generate: Callable[..., tuple]
    """``generate(num_sequences, seed=...) -> (x, y)``: float32 (n, time, *features), int (n,)."""
    num_classes: int
    """Number of classes."""
    readout: str = "softmax"
    """"softmax" or "sigmoid"; the default model's readout."""
    units: int = 64
    """Cell width of the default model."""
    threshold: float = 0.9
    """Default spike threshold theta."""
    beta: float = 0.1
    """Default confidence-penalty weight."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    epochs: int = 10
    """Default training epochs."""
    batch_size: int = 64
    """Training and evaluation batch size."""
    train_size: int = 8000
    """Default number of training sequences."""
    val_size: int = 1000
    """Default number of validation sequences."""
    test_size: int = 2000
    """Default number of test sequences."""
    time_unit: str = "steps"
    """Unit of spike times in reports and plots."""
    model_factory: Optional[Callable[..., "RCModel"]] = None
    """Optional ``factory(task, units=, threshold=, training_mode=, input_shape=) -> RCModel``
    (uncompiled; ``input_shape`` is the training data's, or None); default: one LSTMCell
    and a dense softmax (or one sigmoid unit) head."""
    load: Optional[Callable[..., tuple]] = None
    """Optional ``load(task, split, size=, seed=, **options) -> (x, y)`` for data that are
    not generated (a folder): ``size`` None means the whole split; ``x`` may be an
    ``{"inputs", "lengths"}`` dict. Replaces ``generate``."""
    options: tuple = ()
    """Names of the task-specific options it takes (e.g. ``("data_root",)``); see
    `check_options`."""
    compile_model: Optional[Callable[..., "RCModel"]] = None
    """Optional ``compile_model(model, beta=, learning_rate=) -> model``; default: Adam,
    `ConfidencePenalty` and the RC metrics."""
    plan_fit: Optional[Callable[..., "FitPlan"]] = None
    """Optional ``plan_fit(task, out_dir=, y_train=, state_dir=, model=, validation_data=,
    options=) -> FitPlan``: the recipe's callbacks and its step after ``fit``
    (``state_dir``: where a callback may keep what a resumed run needs, None without
    backups; ``options``: the task options of the run)."""
    evaluate: Optional[Callable[..., dict]] = None
    """Optional ``evaluate(model, x, y) -> dict`` of test metrics (at the model's
    threshold); default `rc_keras.workflows.evaluate_model`."""
    model_data: Optional[Callable[..., tuple]] = None
    """Optional ``model_data(task, model, model_path, size=, seed=, data_root=) -> (x, y)``:
    the test split as the saved model at ``model_path`` reads it (e.g. through the front
    end saved beside it), for evaluate and sweep; default ``data("test", size, seed)``. A
    hook that also takes ``split=`` is called with ``split="val"`` for the validation
    split a threshold schedule is fitted on."""
    step_ms: Optional[Callable[..., tuple]] = None
    """Optional ``step_ms(model) -> (stride_ms, window_ms, lookahead_frames)`` for a task
    whose steps are frames of audio: sweeps then report milliseconds too
    (`rc_keras.tradeoff.add_milliseconds`); None: steps only."""

    def split_size(self, split):
        """The default number of sequences of a split ("train", "val" or "test")."""
        validation.check_choice(split, SPLITS, "split")
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}[split]

    def data(self, split, size=None, seed=0, **options):
        """Arrays of one split.

        Args:
            split: "train", "val" or "test".
            size: number of sequences; defaults to the task's size for the split (with a
                ``load`` hook: the whole split).
            seed: run seed; each split derives its own seed from it.
            **options: the task's options (`check_options`), for a ``load`` hook.

        Returns:
            ``(x, y)`` arrays (``x`` may be an ``{"inputs", "lengths"}`` dict).
        """
        self.check_options(**options)
        if size is not None and (isinstance(size, bool) or int(size) != size or size < 1):
            raise ValueError(f"the {split} size must be a positive integer; received {size}.")
        if self.load is not None:
            validation.check_choice(split, SPLITS, "split")
            return self.load(self, split, size=size, seed=seed, **options)
        size = self.split_size(split) if size is None else int(size)
        return self.generate(size, seed=split_seed(split, seed))

    def check_options(self, **options):
        """Refuses a task-specific option this task does not take (None counts as unset).

        Raises:
            ValueError: naming the option, its command-line flag and the tasks that take it.
        """
        for name, value in options.items():
            if value is None or name in self.options:
                continue
            # An error path: loading a deferred task here to name it is fine.
            takers = [t for t in task_names() if name in get_task(t).options]
            flag = OPTION_FLAGS.get(name, name)
            raise ValueError(f"`{name}` ({flag}) does not apply to the {self.name!r} task"
                             + (f"; it applies to: {', '.join(takers)}." if takers else "."))


OPTION_FLAGS = {"data_root": "--data", "context_frames": "--context-frames",
                "cache_dir": "the feature cache", "normalization": "--normalization",
                "augment_copies": "--augment-copies"}
"""Command-line flag of each task-specific option, for the messages."""


@dataclasses.dataclass
class FitPlan:
    """What a task's recipe adds around ``fit`` (see ``Task.plan_fit``)."""

    callbacks: list = dataclasses.field(default_factory=list)
    """Keras callbacks, run before the backup of each epoch."""
    finish: Optional[Callable] = None
    """``finish(model) -> (model, info)`` after ``fit``: e.g. reload the best epoch;
    ``info`` (a JSON-able dict) goes into the run's summary under "recipe"."""


def split_seed(split, seed=0):
    """The data seed of a split for a run seed: distinct for every (split, seed) pair."""
    validation.check_choice(split, SPLITS, "split")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"`seed` must be >= 0; received {seed}.")
    return seed * _SEED_STRIDE + _SPLIT_OFFSETS[split]


_REGISTRY = {}
# Tasks defined in modules that load TensorFlow when imported: name -> (module, attribute
# holding the `Task`, its description). `get_task` imports the module on first use.
_DEFERRED = {
    "speech-commands": ("rc_keras.kws_training", "SPEECH_COMMANDS",
                        "Speech Commands keyword spotting from a folder (--data ROOT), "
                        "paper11 labels"),
}


def register_task(task, overwrite=False):
    """Adds a `Task` to the registry under ``task.name``; returns it."""
    if task.name in _REGISTRY and not overwrite:
        raise ValueError(f"a task named {task.name!r} is already registered.")
    validation.check_choice(task.readout, validation.READOUTS, "readout")
    _REGISTRY[task.name] = task
    return task


def task_names():
    """Names of the registered tasks (and of those registered on first use), sorted."""
    return sorted(set(_REGISTRY) | set(_DEFERRED))


def check_task_name(name):
    """Returns ``name`` if a task of that name exists, without loading it.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in _REGISTRY and name not in _DEFERRED:
        raise ValueError(f"unknown task {name!r}; choose from: {', '.join(task_names())}.")
    return name


def task_description(name):
    """The one-line description of a task, without loading a deferred one."""
    check_task_name(name)
    return _REGISTRY[name].description if name in _REGISTRY else _DEFERRED[name][2]


def get_task(name):
    """The registered `Task` called ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(name, Task):
        return name
    check_task_name(name)
    if name not in _REGISTRY:
        module, attribute, _ = _DEFERRED[name]
        _REGISTRY.setdefault(name, getattr(importlib.import_module(module), attribute))
    return _REGISTRY[name]


def _default_factory(task, units, threshold, training_mode, input_shape=None):
    import keras  # noqa: PLC0415 - see the imports at the top

    from rc_keras.model import RCModel  # noqa: PLC0415

    outputs, activation = (1, "sigmoid") if task.readout == "sigmoid" else (task.num_classes,
                                                                           "softmax")
    return RCModel(cell=keras.layers.LSTMCell(units),
                   head=keras.layers.Dense(outputs, activation=activation),
                   threshold=threshold, readout=task.readout, training_mode=training_mode,
                   name=f"rc_{task.name.replace('-', '_')}")


def rc_metrics():
    """The RC metrics every task reports."""
    from rc_keras import metrics  # noqa: PLC0415 - see the imports at the top

    return [metrics.SpikeAccuracy(), metrics.MeanSpikeTime(), metrics.NoSpikeRate(),
            metrics.StepsRun(), metrics.ComputeFraction()]


def build_model(task, units=None, threshold=None, beta=None, training_mode="rc",
                learning_rate=None, input_shape=None):
    """A compiled `RCModel` for ``task`` (by default Adam, `ConfidencePenalty`, RC metrics;
    a task's ``compile_model`` hook replaces that).

    Args:
        task: a `Task` or a registered name.
        units: cell width; defaults to ``task.units``.
        threshold: theta; defaults to ``task.threshold``.
        beta: confidence-penalty weight; defaults to ``task.beta``.
        training_mode: "rc" or "eos".
        learning_rate: Adam learning rate; defaults to ``task.learning_rate``.
        input_shape: the training inputs' shape, for factories that build the model.

    Returns:
        The compiled, unbuilt model.
    """
    task = get_task(task)
    units = task.units if units is None else int(units)
    if units < 1:
        raise ValueError(f"`units` must be a positive integer; received {units}.")
    threshold = validation.check_threshold(task.threshold if threshold is None else threshold)
    beta = validation.check_beta(task.beta if beta is None else beta)
    validation.check_choice(training_mode, validation.MODES, "training_mode")
    learning_rate = task.learning_rate if learning_rate is None else float(learning_rate)
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0; received {learning_rate}.")
    import keras  # noqa: PLC0415 - see the imports at the top

    from rc_keras import losses  # noqa: PLC0415

    factory = task.model_factory or _default_factory
    model = factory(task, units=units, threshold=threshold, training_mode=training_mode,
                    input_shape=input_shape)
    if task.compile_model is not None:
        return task.compile_model(model, beta=beta, learning_rate=learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=losses.ConfidencePenalty(beta=beta), metrics=rc_metrics())
    return model


register_task(Task(
    name="spotting",
    description="continuous sequence spotting: is there a run of 5 equal bits in 25?",
    generate=datasets.spotting,
    num_classes=2,
    units=32,
    threshold=0.9,
    beta=0.05,
    learning_rate=3e-3,
    epochs=20,
    batch_size=64,
    train_size=8000,
    val_size=1000,
    test_size=2000,
))

register_task(Task(
    name="two-sequence",
    description="the 2-sequence problem: is the mean of 40 noisy samples +0.05 or -0.05?",
    generate=datasets.two_sequence,
    num_classes=2,
    units=125,
    threshold=0.9,
    beta=0.1,
    learning_rate=1e-3,
    epochs=10,
    batch_size=64,
    train_size=10000,
    val_size=1000,
    test_size=2000,
))
