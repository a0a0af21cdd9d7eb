"""``rc-keras tune`` and ``tuning/search_beta_theta.py``: the command line of `run_search`.

```bash
rc-keras tune --task two-sequence --tuner bayesian --max-trials 12 --directory runs/tune \\
    --objective budget --max-spike-time 15
```

Bad arguments exit with status 2 and one line on stderr; a search in which no trial met
the budget prints that clearly and exits with status 1.
"""

import argparse
import sys

# The argument types of every rc-keras subcommand: one check, one message per kind of value.
from rc_keras.cli.arguments import (non_negative_int, positive_float, positive_int,
                                    range_arg, task_arg, task_help, thresholds_arg)

EXIT_NO_TRIAL_MET_BUDGET = 1
EXIT_USAGE = 2


def add_arguments(parser):
    """Adds the search's arguments to an ``argparse`` parser."""
    from rc_keras.tuning.objectives import DEFAULT_THRESHOLDS  # noqa: PLC0415

    parser.add_argument("--task", type=task_arg, required=True, help=task_help())
    parser.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    parser.add_argument("--max-trials", type=positive_int, default=10, help="number of trials")
    parser.add_argument("--directory", required=True,
                        help="search directory; the same directory resumes the search")
    parser.add_argument("--objective", default="weighted",
                        help="budget: best accuracy within --max-spike-time; weighted: "
                             "accuracy - --weight x mean spike fraction (default: %(default)s)")
    parser.add_argument("--max-spike-time",
                        help="mean spike time budget: steps ('12') or ms ('150ms', with "
                             "--step-ms)")
    parser.add_argument("--step-ms", type=positive_float, help="duration of one step in ms")
    parser.add_argument("--weight", type=float, default=0.5,
                        help="lambda of the weighted objective (default: %(default)s)")
    parser.add_argument("--beta-range", type=range_arg, default=(0.0, 0.3),
                        help="low,high of beta (default: 0,0.3)")
    parser.add_argument("--units-range", type=range_arg,
                        help="low,high of the cell width (default: the task's)")
    parser.add_argument("--lr-range", type=range_arg,
                        help="low,high of the learning rate (default: the task's)")
    parser.add_argument("--thresholds", type=thresholds_arg, default=DEFAULT_THRESHOLDS,
                        help="theta grid swept on validation data")
    parser.add_argument("--schedule", action="store_true",
                        help="score each trial by the best of its constant thetas and of "
                             "per-step threshold schedules fitted on the validation data")
    parser.add_argument("--epochs", type=positive_int, default=3,
                        help="epochs per trial (Hyperband: the most for one model)")
    parser.add_argument("--patience", type=positive_int,
                        help="stop a trial once its objective has not improved for N epochs "
                             "(default: every trial trains --epochs)")
    parser.add_argument("--train-size", type=positive_int)
    parser.add_argument("--val-size", type=positive_int)
    parser.add_argument("--test-size", type=positive_int)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="start over instead of resuming a search in --directory")
    parser.add_argument("--no-export", action="store_true", help="do not save the best model")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                        help="Keras fit output inside trials")
    return parser


def run(args, log=print):
    """Runs the search of parsed ``args``; returns the exit status (0, or 1 when no
    trial met the budget). Raises ValueError for bad arguments."""
    from rc_keras import tuning  # noqa: PLC0415 - keeps `rc-keras --help` fast

    space = tuning.SearchSpace(beta=args.beta_range, units=args.units_range,
                               learning_rate=args.lr_range)
    result = tuning.run_search(
        args.task, args.directory, tuner=args.tuner, max_trials=args.max_trials,
        objective=args.objective, max_spike_time=args.max_spike_time, weight=args.weight,
        step_ms=args.step_ms, space=space, thresholds=args.thresholds, epochs=args.epochs,
        train_size=args.train_size, val_size=args.val_size, test_size=args.test_size,
        seed=args.seed, overwrite=args.overwrite, export=not args.no_export,
        verbose=args.verbose, log=log, patience=args.patience, schedule=args.schedule)
    if "worker" in result:
        log(f"worker {result['worker']} done")
        return 0
    log(f"\nPareto front over {result['num_trials']} trials (validation data)\n")
    log(result["front_table"])
    written = [result["json"], result["png"]] + (
        [result["best"]["model_path"]] if result["best"] and "model_path" in result["best"] else [])
    log("\nwrote " + ", ".join(written))
    if result["best"] is None:
        print(f"rc-keras tune: {result['message']}", file=sys.stderr)
        return EXIT_NO_TRIAL_MET_BUDGET
    return 0


def main(argv=None):
    """Entry point of ``tuning/search_beta_theta.py``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="search_beta_theta", description="KerasTuner search over beta and theta."))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"search_beta_theta: error: {str(error).replace('`', '')}", file=sys.stderr)
        return EXIT_USAGE
