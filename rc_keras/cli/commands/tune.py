"""``rc-keras tune``: the KerasTuner search of `rc_keras.tuning` (flags in
`rc_keras.tuning.cli`, shared with ``tuning/search_beta_theta.py``)."""

from rc_keras.workflows import check_output_dir

HELP = "KerasTuner search over beta and theta (Pareto front)"


def add_arguments(parser):
    """Adds the flags of ``rc-keras tune``."""
    from rc_keras.tuning import cli as tuning_cli  # noqa: PLC0415 - it imports rc_keras.cli

    parser.description = ("Each trial trains once for its beta and sweeps theta on validation "
                          "data. The same --directory resumes a search.")
    tuning_cli.add_arguments(parser)


def run(args):
    """Runs the search; returns 1 when no trial met the budget."""
    from rc_keras.tuning import cli as tuning_cli  # noqa: PLC0415

    check_output_dir(args.directory, "--directory")
    return tuning_cli.run(args)
