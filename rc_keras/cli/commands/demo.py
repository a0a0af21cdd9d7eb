"""``rc-keras demo``: `rc_keras.workflows.run_demo`, the quick-start job."""

from rc_keras.cli.arguments import VERBOSE_HELP, fit_verbosity, non_negative_int
from rc_keras.workflows import CLIError, DEFAULT_DEMO_DIR, REFERENCE_DEMO_DIR, run_demo

HELP = "train, evaluate and export the spotting demo model"


def add_arguments(parser):
    """Adds the flags of ``rc-keras demo``."""
    p = parser
    p.add_argument("--out", default=None, help=f"output directory (default: {DEFAULT_DEMO_DIR}, "
                                               "in the working directory)")
    p.add_argument("--update-reference", action="store_true",
                   help="rewrite the committed reference bundle saved_models/demo of this "
                        "source checkout (maintainers; not with --out)")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    p.add_argument("--seed", type=non_negative_int, default=0, help="run seed")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help=VERBOSE_HELP)


def run(args):
    """Runs the demo into --out (or the reference bundle) and prints its headline."""
    if args.update_reference and args.out is not None:
        raise CLIError(f"--update-reference writes to {REFERENCE_DEMO_DIR}; drop --out.")
    if args.update_reference and not REFERENCE_DEMO_DIR.is_dir():
        raise CLIError(f"--update-reference needs a source checkout: {REFERENCE_DEMO_DIR} "
                       "does not exist.")
    out = REFERENCE_DEMO_DIR if args.update_reference else (args.out or DEFAULT_DEMO_DIR)
    report = run_demo(out, quick=args.quick, seed=args.seed, verbose=fit_verbosity(args.verbose))
    test = report["test"]
    print(f"demo done in {report['wall_seconds']:.1f} s: accuracy {test['accuracy']:.4f}, "
          f"mean spike time {test['mean_spike_time']:.2f} of {test['sequence_length']} steps; "
          f"report {report['report_path']}")
