"""``keras-vae sample``: a grid of generated samples from a saved model."""

from keras_vae.cli import loading
from keras_vae.cli import options

HELP = "grid of samples from a saved model"


def add_arguments(parser):
    """Add the options of ``keras-vae sample MODEL``, named after ``plotting.plot_samples``'s arguments.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    parser.add_argument("model", help="path to a .keras file")
    parser.add_argument("--n", type=options.positive_int, default=64, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument(
        "--image-shape", type=options.image_shape, default=None, help="e.g. 28,28 (None: square images)"
    )
    parser.add_argument("--out", default="samples.png", help="image file to write")
    return parser


def run(args):
    """Write the grid of samples.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    options.check_output_file(args.out)
    model = loading.load_model(args.model)
    from keras_vae import plotting

    plotting.plot_samples(model, n=args.n, image_shape=args.image_shape, seed=args.seed, path=args.out)
    options.printer(args)(f"wrote {args.out}")
    return 0
