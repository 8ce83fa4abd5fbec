"""``keras-vae export``: a trained model for TF Serving and TFLite/LiteRT.

``--quantize int8`` calibrates on training examples named by the data
options (``--dataset``, ``--limit``; a conditional model's with their
labels), e.g.

```
keras-vae export runs/vae/model.keras --out exported --quantize float16 int8 --dataset digits
```
"""

from keras_vae.cli import loading
from keras_vae.cli import options

#: Training examples calibrating int8 quantisation when --limit is not given.
CALIBRATION_EXAMPLES = 500

HELP = "export a trained model for TF Serving and TFLite/LiteRT"


def add_arguments(parser):
    """Add the options of ``keras-vae export MODEL --out DIR``.

    They set the arguments of ``keras_vae.export.export_model`` (``--out``
    is its ``out_dir``).

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    parser.add_argument("model", help="a trained model saved as .keras")
    parser.add_argument("--out", required=True, help="output directory (must be empty unless --overwrite)")
    parser.add_argument("--format", default="both", choices=options.EXPORT_FORMATS, help="what to write")
    parser.add_argument(
        "--quantize",
        default=None,
        nargs="+",
        choices=options.QUANTIZATIONS,
        help="also write quantised .tflite files: dynamic-range (int8 weights), float16 weights, "
        "or full-integer int8 (needs --dataset for calibration)",
    )
    parser.add_argument(
        "--score-k",
        type=options.positive_int,
        default=options.SCORE_K,
        help="posterior samples per example of the score signatures",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a previous export in --out")
    parser.add_argument(
        "--allow-untrained", action="store_true", help="export a model whose optimizer has taken no step"
    )
    parser.add_argument("--input-scaling", default=None, help="how to scale data for encode, recorded in metadata.json")
    options.add_data_arguments(
        parser,
        dataset_default=None,
        binarization_help="binarise the calibration data as in training",
        limit_help=f"calibration examples for --quantize int8 (default {CALIBRATION_EXAMPLES})",
    )
    return parser


def calibration_data(args, model=None):
    """The first ``--limit`` training examples of ``--dataset`` (binarised as asked), or None without --dataset.

    For a conditional ``model`` the pair ``(x, one-hot labels)``.
    """
    if args.dataset is None:
        return None
    from keras_vae import datasets

    limit = CALIBRATION_EXAMPLES if args.limit is None else args.limit
    if limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}.")
    x, y = datasets.load_arrays(args.dataset, "train", **options.data_kwargs(args))
    x = x[:limit]
    if args.binarization != "none":
        x = datasets.binarize(x, "static", seed=0)
    condition_dim = getattr(model, "condition_dim", None)
    if condition_dim is not None:
        from keras_vae.cli import conditions

        return x, conditions.one_hot_labels(None if y is None else y[:limit], condition_dim, args.dataset)
    return x


def run(args):
    """Export the model and print the written paths.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    model = loading.load_model(args.model)
    from keras_vae import export

    written = export.export_model(
        model,
        args.out,
        format=args.format,
        quantize=args.quantize,
        overwrite=args.overwrite,
        allow_untrained=args.allow_untrained,
        input_scaling=args.input_scaling,
        score_k=args.score_k,
        representative_data=calibration_data(args, model),
    )
    say = options.printer(args)
    for path in written.values():
        say(f"  wrote {path}")
    return 0
