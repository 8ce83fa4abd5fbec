"""``keras-vae export``: a trained model for TF Serving and TFLite/LiteRT."""

from keras_vae.cli import loading

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
    from keras_vae import export

    parser.add_argument("model", help="a trained model saved as .keras")
    parser.add_argument("--out", required=True, help="output directory (must be empty unless --overwrite)")
    parser.add_argument("--format", default="both", choices=export.FORMATS, help="what to write")
    parser.add_argument(
        "--quantize",
        default=None,
        choices=export.QUANTIZATIONS,
        help="also write dynamic-range quantised .tflite files",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a previous export in --out")
    parser.add_argument(
        "--allow-untrained", action="store_true", help="export a model whose optimizer has taken no step"
    )
    parser.add_argument("--input-scaling", default=None, help="how to scale data for encode, recorded in metadata.json")
    return parser


def run(args):
    """Export the model and print the written paths.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    from keras_vae import export

    written = export.export_model(
        loading.load_model(args.model),
        args.out,
        format=args.format,
        quantize=args.quantize,
        overwrite=args.overwrite,
        allow_untrained=args.allow_untrained,
        input_scaling=args.input_scaling,
    )
    for path in written.values():
        print(f"  wrote {path}")
    return 0
