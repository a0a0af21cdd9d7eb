"""``rc-keras firmware``: `rc_keras.export.firmware.device_report`, a bundle's Cortex-M
firmware built (TFLM) and run in QEMU."""

from rc_keras import tasks
from rc_keras.cli.arguments import non_negative_int, positive_int, task_arg
from rc_keras.workflows import CLIError

HELP = "build a bundle's Cortex-M firmware (TFLM) and run it in QEMU"


def add_arguments(parser):
    """Adds the flags of ``rc-keras firmware``."""
    parser.description = (
        "Compiles firmware/ against a TFLM tree for an emulated board and, with --run, checks "
        "it against the TFLM Python interpreter on held-out sequences; adds a row (flash, RAM, "
        "arena, instructions per frame and per clip, agreement) to BUNDLE/report.json under "
        "'device'.")
    p = parser
    p.add_argument("--bundle", required=True, help="directory written by 'rc-keras export'")
    p.add_argument("--board", choices=["mps2-an386", "mps3-an547"], default="mps2-an386",
                   help="mps2-an386: Cortex-M4; mps3-an547: Cortex-M55 with Helium")
    p.add_argument("--kernels", choices=["cmsis_nn", "ref"], default="cmsis_nn")
    p.add_argument("--tflm-tree", help="an exported TFLM source tree (default: the cached "
                                       "extract of ../shared/tflm/tflm-tree-KERNELS-*.tar.gz)")
    p.add_argument("--model", choices=["int8", "int16x8"], help="step model (default: the C array's)")
    p.add_argument("--lut-activations", action="store_true",
                   help="int8 LOGISTIC/TANH as table lookups and identity clips dropped: the same "
                        "integers, far fewer instructions (rc_keras.export.lut_activations, identity_clamps)")
    p.add_argument("--run", action="store_true", help="run held-out sequences in QEMU")
    p.add_argument("--verify-sequences", help="held-out sequences (.npz with x, or .npy)")
    p.add_argument("--task", type=task_arg, help="task whose test data serve as sequences")
    p.add_argument("--sequences-count", type=positive_int, default=100,
                   help="sequences from --task (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0)


def run(args):
    """Builds (and with --run, runs) the firmware and prints its device row."""
    from rc_keras.export import bundle, firmware  # noqa: PLC0415

    x = None
    if args.run:
        if args.verify_sequences:
            x, _ = bundle.load_sequences(args.verify_sequences, "verify_sequences")
        elif args.task is not None:
            x = tasks.get_task(args.task).data("test", args.sequences_count, args.seed)[0]
        else:
            raise CLIError("--run needs --verify-sequences FILE or --task.")
    missing = firmware.missing_tools()
    if missing:
        raise CLIError(f"--board builds need {', '.join(missing)} on PATH (Debian: make "
                       "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
                       "qemu-system-arm).")
    try:
        row = firmware.device_report(args.bundle, board=args.board, kernels=args.kernels,
                                     tree=args.tflm_tree, quantization=args.model, sequences=x,
                                     run=args.run, lut=args.lut_activations)
    except FileNotFoundError as error:
        raise CLIError(str(error)) from None
    print(firmware.format_device_table([row]))
    print(f"firmware {row['elf']}; row added to {args.bundle}/report.json ('device')")
