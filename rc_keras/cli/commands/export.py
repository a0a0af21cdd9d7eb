"""``rc-keras export``: `rc_keras.workflows.export_command`, the deployment bundle of a
saved model, with its agreement table printed."""

from rc_keras import tasks
from rc_keras.cli.arguments import non_negative_int, task_arg, task_help
from rc_keras.workflows import export_command, format_verify

HELP = "write the deployment bundle of a trained model"


def add_arguments(parser):
    """Adds the flags of ``rc-keras export``."""
    parser.description = ("Writes model.keras, saved_model/, step_float32.tflite, "
                          "step_int8.tflite (with --int8), the C array and report.json.")
    p = parser
    p.add_argument("--model", required=True, help="a .keras file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--int8", action="store_true", help="also write the full-integer model")
    p.add_argument("--int16x8", action="store_true",
                   help="also write the 16x8 integer model (int16 activations and states, int8 "
                        "weights): tracks the float model's exits where int8 does not")
    p.add_argument("--c-array", choices=["int8", "int16x8", "float32"], default=None,
                   help="the step model in rc_model_data.{c,h} (default: int8 with --int8, "
                        "else float32); int16x8 needs --int16x8")
    p.add_argument("--quantization-aware", action="store_true",
                   help="export the model's int8-exact twin (rc_keras.quantization."
                        "quantize_aware; implies --int8): the int8 model then agrees with the "
                        "exported Keras model")
    p.add_argument("--qat-epochs", type=non_negative_int, default=0,
                   help="fine-tune the twin this many epochs with the model's loss "
                        "(quantization-aware training) on --train-data or the task's training "
                        "data (default: %(default)s)")
    p.add_argument("--qat-learning-rate", type=float, default=1e-3,
                   help="Adam learning rate of that fine-tuning (default: %(default)s)")
    p.add_argument("--train-data", help="training sequences for --qat-epochs (.npz with x and y)")
    p.add_argument("--calibration", help="calibration sequences for --int8 (.npy, or .npz with x); "
                                         "default with --task: the task's validation data")
    p.add_argument("--verify", action="store_true",
                   help="run held-out sequences through Keras, LiteRT and TFLM")
    p.add_argument("--verify-sequences", help="held-out sequences (.npz with x and y, or .npy); "
                                              "default with --task: the task's test data")
    p.add_argument("--task", type=task_arg,
                   help="task whose data serve as defaults: " + task_help())
    p.add_argument("--allow-task-mismatch", action="store_true",
                   help="use --task's data for a model that records another task")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the --task data splits")


def run(args):
    """Exports and prints the verification table (with --verify) and where the bundle is."""
    report = export_command(args.model, args.out, int8=args.int8, calibration=args.calibration,
                            verify=args.verify, verify_sequences=args.verify_sequences,
                            task=args.task, seed=args.seed, int16x8=args.int16x8,
                            c_array=args.c_array, quantization_aware=args.quantization_aware,
                            qat_epochs=args.qat_epochs, train_data=args.train_data,
                            qat_learning_rate=args.qat_learning_rate,
                            allow_task_mismatch=args.allow_task_mismatch)
    if "verify" in report:
        time_unit = tasks.get_task(args.task).time_unit if args.task else "steps"
        print(format_verify(report, time_unit))
    print(f"wrote the bundle to {args.out} (report.json)")
