"""``rc-keras make-keywords``: `rc_keras.datasets.keyword_synthesis.synthesize_keywords`,
a keyword dataset in the Speech Commands layout."""

from rc_keras.cli.arguments import non_negative_int, positive_int
from rc_keras.workflows import CLIError, check_output_dir

HELP = "synthesize a keyword dataset in the Speech Commands layout"


def add_arguments(parser):
    """Adds the flags of ``rc-keras make-keywords``."""
    from rc_keras.datasets import keyword_synthesis  # noqa: PLC0415 - keeps startup light

    parser.description = (
        "Speaks each word with the voices of every installed TTS engine (espeak-ng accents x "
        "variants, flite, festival; rate, pitch and expressiveness varied per utterance), adds "
        "open-unknown words (wamerican) and real recorded unknown words (ktuberling-data), "
        "converts to 16 kHz with sox and writes <word>/<voice>_nohash_<n>.wav, "
        "_background_noise_/, validation_list.txt and testing_list.txt.")
    p = parser
    p.add_argument("--out", required=True, help="output folder (missing or empty)")
    p.add_argument("--words", default=",".join(keyword_synthesis.DEFAULT_WORDS),
                   help="comma-separated words (default: the 10 keywords and %(default)s)")
    p.add_argument("--voices", type=positive_int, default=90,
                   help="number of voices (default %(default)s, shared among the engines)")
    p.add_argument("--clips-per-voice", type=positive_int, default=1)
    p.add_argument("--noise", type=float, default=0.0, help="max noise peak level in [0, 1]")
    p.add_argument("--short-fraction", type=float, default=0.1,
                   help="share of clips shorter than 1 s")
    p.add_argument("--split-rule", choices=keyword_synthesis.SPLIT_RULES, default="auto")
    p.add_argument("--validation-percentage", type=float, default=10.0)
    p.add_argument("--testing-percentage", type=float, default=10.0)
    p.add_argument("--workers", type=positive_int, default=None)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("--engines", default="all",
                   help="comma-separated engines for the voices (espeak-ng, flite, festival, "
                        "piper) or 'all' (default: every installed one but piper, which is "
                        "used only when named)")
    p.add_argument("--unknown-per-voice", type=non_negative_int, default=8,
                   help="open-unknown words (from wamerican) each voice says (default 8)")
    p.add_argument("--unknown-pool", type=positive_int, default=400,
                   help="number of distinct open-unknown words (default 400)")
    p.add_argument("--real-unknown", type=non_negative_int, default=600,
                   help="real recorded unknown words from ktuberling-data, languages held "
                        "out per split (default 600; 0: none)")


def run(args):
    """Synthesizes the dataset and prints what was written."""
    from rc_keras.datasets import keyword_synthesis  # noqa: PLC0415

    check_output_dir(args.out)
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    try:
        info = keyword_synthesis.synthesize_keywords(
            args.out, words=words, voices=args.voices, clips_per_voice=args.clips_per_voice,
            seed=args.seed, noise=args.noise, short_fraction=args.short_fraction,
            validation_percentage=args.validation_percentage,
            testing_percentage=args.testing_percentage, split_rule=args.split_rule,
            workers=args.workers, overwrite=args.overwrite,
            engines=(None if args.engines.strip() == "all"
                     else [e.strip() for e in args.engines.split(",") if e.strip()]),
            unknown_per_voice=args.unknown_per_voice, unknown_pool=args.unknown_pool,
            real_unknown=args.real_unknown)
    except FileNotFoundError as error:  # espeak-ng or sox missing
        raise CLIError(str(error)) from None
    splits = info["splits"]
    engines = sorted({v["engine"] for v in info["voices"]})
    print(f"wrote {info['num_clips']} clips ({len(info['voices'])} voices of "
          f"{', '.join(engines)} x {len(words)} words + {args.unknown_per_voice} open-unknown "
          f"words each, {sum(info['real_unknown']['clips'].values())} real unknown words) "
          f"to {args.out} in {info['seconds']:.1f} s: train {splits['train']}, validation "
          f"{splits['validation']}, test {splits['test']}")
