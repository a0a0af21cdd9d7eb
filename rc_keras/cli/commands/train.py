"""``rc-keras train``: `rc_keras.workflows.train` on a task, with its summary printed."""

from pathlib import Path

from rc_keras import tasks
from rc_keras.cli.arguments import (DATA_HELP, VERBOSE_HELP, beta_arg, fit_verbosity,
                                    non_negative_int, per_task, positive_float, positive_int,
                                    task_arg, task_help, threshold_arg)
from rc_keras.workflows import check_output_dir, format_summary, train

HELP = "train a task's default RC model and save it"


def add_arguments(parser):
    """Adds the flags of ``rc-keras train``."""
    parser.description = "Tasks: " + "; ".join(
        f"{t}: {tasks.task_description(t)}" for t in tasks.task_names()) + "."
    p = parser
    p.add_argument("--task", type=task_arg, required=True, help=task_help())
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--context-frames", type=non_negative_int,
                   help="speech-commands: frames of context stacked each side (default 10)")
    p.add_argument("--normalization", choices=("none", "running_mean", "pcen"),
                   help="speech-commands: causal feature normalization (default none)")
    p.add_argument("--augment-copies", type=non_negative_int,
                   help="speech-commands: augmented copies of each training clip (speed, "
                        "pitch, EQ, reverb, noise, gain, shift, SpecAugment; default 2, "
                        "0: off)")
    p.add_argument("--beta", type=beta_arg,
                   help="confidence penalty weight (>= 0); " + per_task("beta"))
    p.add_argument("--threshold", type=threshold_arg,
                   help="spike threshold theta in (0, 1); " + per_task("threshold"))
    p.add_argument("--mode", choices=("rc", "eos"), default="rc",
                   help="rc: loss at the spike; eos: conventional, loss at the last step")
    p.add_argument("--epochs", type=positive_int, help="training epochs; " + per_task("epochs"))
    p.add_argument("--train-size", type=positive_int,
                   help="training sequences; " + per_task("train_size"))
    p.add_argument("--val-size", type=positive_int,
                   help="validation sequences; " + per_task("val_size"))
    p.add_argument("--test-size", type=positive_int,
                   help="test sequences; " + per_task("test_size"))
    p.add_argument("--units", type=positive_int, help="LSTM cell width; " + per_task("units"))
    p.add_argument("--learning-rate", type=positive_float,
                   help="Adam learning rate; " + per_task("learning_rate"))
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the weights, the data order and the data splits")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help=VERBOSE_HELP)
    p.add_argument("--no-backup", action="store_true",
                   help="do not back up each epoch into OUT/backup (default: back up, "
                        "and resume from it when the same command runs again)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow kernels: bit-identical reruns, slower")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="train again into an --out that holds a finished run, and start over "
                        "instead of resuming")


def run(args):
    """Trains, then prints the time, the recipe's best epoch, the test line and the files."""
    check_output_dir(args.out)
    summary = train(args.task, args.out, beta=args.beta, threshold=args.threshold,
                    mode=args.mode, epochs=args.epochs, train_size=args.train_size,
                    units=args.units, seed=args.seed, learning_rate=args.learning_rate,
                    val_size=args.val_size, test_size=args.test_size,
                    verbose=fit_verbosity(args.verbose),
                    backup=not args.no_backup, deterministic=args.deterministic,
                    data_root=args.data, context_frames=args.context_frames,
                    normalization=args.normalization, augment_copies=args.augment_copies,
                    overwrite=args.overwrite)
    task = tasks.get_task(args.task)
    recipe = summary.get("recipe") or {}
    # The recipe counts epochs from 0 (as Keras does); people count from 1.
    best = (f"; best epoch {recipe['best_epoch'] + 1}" if recipe.get("best_epoch") is not None
            else "")
    if recipe.get("stopped_epoch") is not None:
        best += (f", stopped after epoch {recipe['stopped_epoch'] + 1} "
                 "(below the majority-class share)")
    print(f"trained {task.name} ({summary['config']['mode']}, beta "
          f"{summary['config']['beta']:g}) in {summary['train_seconds']:.1f} s{best}")
    print("test: " + format_summary(summary["test"], task.time_unit))
    print(f"saved {summary['model_path']} and {Path(args.out) / 'history.json'}")
