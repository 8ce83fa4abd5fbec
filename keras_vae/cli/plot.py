"""``keras-vae plot``: the package's figures for a saved model (or a run's history)."""

import pathlib

from keras_vae.cli import data as cli_data
from keras_vae.cli import loading
from keras_vae.cli import logs
from keras_vae.cli import options

PLOTS = ("samples", "reconstructions", "manifold", "latent", "traversal", "history")
HELP = "figures of a saved model: " + ", ".join(PLOTS)


def add_arguments(parser):
    """Add the options of ``keras-vae plot MODEL --kind KIND``.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    parser.add_argument("model", help="a .keras file (for --kind history: a history.json)")
    parser.add_argument("--kind", default="samples", choices=PLOTS, help="which figure")
    options.add_data_arguments(
        parser,
        dataset_default=None,
        binarizations=("none", "static"),
        binarization_help="'static': binarise the test examples once (keras_vae.datasets.binarize_test)",
    )
    parser.add_argument("--image-shape", type=options.image_shape, default=None, help="e.g. 28,28")
    parser.add_argument("--n", type=options.positive_int, default=16, help="images for samples/reconstructions")
    parser.add_argument(
        "--max-points", type=options.positive_int, default=2000, help="points in the latent scatter"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--out", default="plot.png", help="image file to write")
    return parser


def run(args):
    """Draw the figure.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.

    Raises:
        ValueError: ``--kind reconstructions`` or ``latent`` without ``--dataset``.
    """
    say = options.printer(args)
    options.check_output_file(args.out)
    if args.kind == "history":
        if not pathlib.Path(args.model).is_file():
            raise FileNotFoundError(f"no history file at {args.model}")
        logs.import_tensorflow()
        from keras_vae import plotting

        plotting.plot_history(args.model, path=args.out)
        say(f"wrote {args.out}")
        return 0
    if args.kind in ("reconstructions", "latent") and not args.dataset:
        raise ValueError(f"--kind {args.kind} needs --dataset to draw test examples from.")
    model = loading.load_model(args.model)
    from keras_vae import datasets
    from keras_vae import plotting

    named = args.dataset in datasets.DATASETS and len(model.input_shape) == 1
    shape = args.image_shape or (datasets.image_shape(args.dataset) if named else None)
    if args.kind == "samples":
        plotting.plot_samples(model, n=args.n, image_shape=shape, seed=args.seed, path=args.out)
    elif args.kind == "manifold":
        plotting.plot_manifold(model, image_shape=shape, path=args.out)
    elif args.kind == "traversal":
        plotting.plot_traversal(model, image_shape=shape, path=args.out)
    else:
        data = cli_data.load(args, "test", model=model, model_path=args.model)
        x, y = data.x, data.y
        if args.kind == "reconstructions" and data.kind == "table":
            raise ValueError(
                f"{args.dataset} is a table: its reconstructions are rows, written by keras-vae train as "
                "reconstructions.csv, not an image."
            )
        if args.binarization != "none":
            x = datasets.binarize_test(x)
        if args.kind == "reconstructions":
            plotting.plot_reconstructions(model, x, n=args.n, image_shape=shape, path=args.out)
        else:
            labels = None if y is None else y[: args.max_points]
            plotting.plot_latent_space(model, x[: args.max_points], labels, path=args.out)
    say(f"wrote {args.out}")
    return 0
