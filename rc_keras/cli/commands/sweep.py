"""``rc-keras sweep``: `rc_keras.workflows.sweep` over thresholds, tables printed."""

from rc_keras import tasks
from rc_keras.cli.arguments import (DATA_HELP, non_negative_int, per_task, positive_int,
                                    task_arg, task_help, thresholds_arg)
from rc_keras.workflows import DEFAULT_THRESHOLDS, format_sweep, sweep

HELP = "accuracy vs. mean spike time over thresholds"


def add_arguments(parser):
    """Adds the flags of ``rc-keras sweep``."""
    parser.description = ("One forward pass per model serves every threshold. Repeat --model "
                          "(e.g. one per beta) for a composite frontier.")
    p = parser
    p.add_argument("--model", action="append", required=True,
                   help="a .keras file; repeat for several models")
    p.add_argument("--task", type=task_arg, required=True,
                   help=task_help() + "; the models' own task unless --allow-task-mismatch")
    p.add_argument("--thresholds", type=thresholds_arg, default=list(DEFAULT_THRESHOLDS),
                   help="comma-separated theta values (default: "
                        f"{','.join(f'{t:g}' for t in DEFAULT_THRESHOLDS)})")
    p.add_argument("--test-size", type=positive_int,
                   help="fresh test sequences; " + per_task("test_size"))
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the test split")
    p.add_argument("--out", required=True, help="output directory for sweep.json, sweep.png")
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="sweep models that record another --task (same feature shape)")
    p.add_argument("--data", help=DATA_HELP)
    p.add_argument("--schedule", action="store_true",
                   help="also fit per-step threshold schedules on the validation split and "
                        "show them on the test split beside the constant thresholds")


def run(args):
    """Sweeps and prints each curve's table and the files written."""
    result = sweep(args.model, args.task, args.thresholds, out_dir=args.out,
                   test_size=args.test_size, seed=args.seed, data_root=args.data,
                   allow_task_mismatch=args.allow_task_mismatch, schedule=args.schedule)
    print(format_sweep(result, tasks.get_task(args.task).time_unit))
    print(f"\nwrote {result['json']} and {result['png']}")
