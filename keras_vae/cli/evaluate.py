"""``keras-vae evaluate``: test ELBO, importance-sampled log p(x) and active units."""

import json
import pathlib

from keras_vae.cli import loading
from keras_vae.cli import options

HELP = "test ELBO, importance-sampled log p(x) and active units"


def add_arguments(parser):
    """Add the options of ``keras-vae evaluate MODEL``.

    The estimator options are named after the arguments of
    ``keras_vae.evaluation.evaluate_model`` / ``log_likelihood``.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    parser.add_argument("model", help="path to a .keras file saved by keras-vae")
    options.add_evaluation_data_arguments(parser, "evaluate")
    group = parser.add_argument_group("estimator")
    group.add_argument(
        "--k", type=options.positive_int, default=5000, help="importance samples of log p(x) per example"
    )
    group.add_argument(
        "--chunk-size", type=options.positive_int, default=None, help="importance samples per chunk (memory)"
    )
    group.add_argument(
        "--threshold", type=options.non_negative_float, default=0.01, help="active-unit threshold on Cov_x(E_q[u])"
    )
    group.add_argument("--seed", type=int, default=0, help="seed of all the noise")
    parser.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    parser.add_argument(
        "--verbose", type=int, default=None, choices=(0, 1), help="progress bar of log p(x); default 1 on a terminal"
    )
    return parser


def load_data(args, model=None):
    """The evaluation data the options name: a split, limited and binarised.

    Args:
        args: parsed data options (``dataset``, ``split``, ``limit``,
            ``binarization``, ``binarization_seed``, ``data_path``, ``data_dir``,
            ``image_size``, ``color_mode``, ``schema``).
        model: the loaded model: examples are shaped as it takes them, and a
            table is encoded with the ``schema.json`` beside ``args.model``
            (or ``--schema``).

    Returns:
        float32 ``[N, *input_shape]`` array; for a conditional model the pair
        ``(x, one_hot(y) [N, condition_dim])`` of the split's labels.

    Raises:
        ValueError: ``--limit`` below 1, a bad dataset option, or a
            conditional model and data without fitting labels.
    """
    from keras_vae import datasets
    from keras_vae.cli import data as cli_data

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}.")
    model_path = getattr(args, "model", None) if model is not None else None
    data = cli_data.load(args, args.split, model=model, model_path=model_path, limit=args.limit)
    x = data.x
    if args.binarization != "none" and data.kind == "table":
        raise ValueError(f"--binarization {args.binarization} is for images; {args.dataset} is a table.")
    if args.binarization != "none":
        if args.binarization_seed is None:
            x = datasets.binarize_test(x)
        else:
            x = datasets.binarize(x, "static", seed=args.binarization_seed)
    condition_dim = getattr(model, "condition_dim", None)
    if condition_dim is None:
        return x
    from keras_vae.cli import conditions

    return x, conditions.one_hot_labels(data.y, condition_dim, args.dataset)


def run(args):
    """Print the metrics and optionally write them as JSON.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    say = options.printer(args)
    if args.out:
        options.check_output_file(args.out)
    model = loading.load_model(args.model)
    from keras_vae import evaluation

    x = load_data(args, model)
    metrics = evaluation.evaluate_model(
        model,
        x,
        k=args.k,
        seed=args.seed,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        threshold=args.threshold,
        verbose=options.progress_bar(args),
    )
    metrics.update(model=str(args.model), dataset=args.dataset, split=args.split, binarization=args.binarization)
    units = " + ".join(str(c) for c in metrics["active_units"])
    given = " | y" if getattr(model, "condition_dim", None) else ""
    say(
        f"{args.dataset}/{args.split} ({metrics['n_examples']} examples): "
        f"log p(x{given}) {metrics['log_px']:.3f} ± {metrics['log_px_stderr']:.3f} (k={metrics['k']}), "
        f"ELBO {metrics['elbo']:.3f}, active units {units} of "
        f"{' + '.join(str(d) for d in metrics['latent_dims'])}"
    )
    if args.out:
        out = pathlib.Path(args.out)
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        say(f"wrote {out}")
    return 0
