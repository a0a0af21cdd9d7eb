"""The ``rc-keras`` subcommands, one module each.

Each module holds ``HELP`` (its line in ``rc-keras --help``), ``add_arguments(parser)``
and ``run(args)``; ``run`` converts the parsed flags to plain parameters of a library
function (`rc_keras.workflows`, `rc_keras.datasets`, `rc_keras.export`, `rc_keras.tuning`)
and prints its result. `rc_keras.cli.SUBCOMMANDS` registers them. None imports
TensorFlow, Keras or KerasTuner at module level: ``--help`` and argument errors answer
without them.
"""
