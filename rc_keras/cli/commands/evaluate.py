"""``rc-keras evaluate``: `rc_keras.workflows.evaluate` of a saved model, one line or JSON."""

import json

from rc_keras import tasks
from rc_keras.workflows import schedules
from rc_keras.cli.arguments import (DATA_HELP, non_negative_int, per_task, positive_int,
                                    task_arg, task_help, threshold_arg)
from rc_keras.workflows import evaluate, format_summary

HELP = "evaluate a saved model on fresh test data"


def add_arguments(parser):
    """Adds the flags of ``rc-keras evaluate``."""
    p = parser
    p.add_argument("--model", required=True, help="a .keras file from 'rc-keras train'")
    p.add_argument("--task", type=task_arg, required=True,
                   help=task_help() + "; the model's own task unless --allow-task-mismatch")
    p.add_argument("--threshold", type=threshold_arg,
                   help="spike threshold theta in (0, 1) (default: the saved model's)")
    p.add_argument("--test-size", type=positive_int,
                   help="fresh test sequences; " + per_task("test_size"))
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the test split")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="evaluate a model that records another --task (same feature shape)")
    p.add_argument("--data", help=DATA_HELP)
    schedules.add_evaluate_arguments(p)


def run(args):
    """Evaluates and prints the result."""
    result = evaluate(args.model, args.task, threshold=args.threshold,
                      test_size=args.test_size, seed=args.seed, data_root=args.data,
                      allow_task_mismatch=args.allow_task_mismatch,
                      threshold_schedule=args.threshold_schedule,
                      fit_schedule=args.fit_schedule, save_schedule=args.save_schedule)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']} on {result['task']}: "
              + format_summary(result, tasks.get_task(args.task).time_unit))
