"""Options shared by the ``keras-vae`` subcommands, and argument types.

Each option is named after the API argument it sets (``--covariance`` sets
``HelmholtzMachine(covariance=...)``, ``--k`` sets ``log_likelihood(k=...)``);
old names stay accepted as hidden aliases (see :data:`ALIASES`).
"""

import argparse

#: Old flag -> its new name. The old names still parse but are not listed in ``--help``.
ALIASES = {"--posterior": "--covariance", "--samples": "--n-samples", "--hidden": "--hidden-dims"}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with every option's default, and descriptions kept as written."""


def ints(text):
    """An ``argparse`` type: comma-separated integers.

    Args:
        text: e.g. ``"200,200"``; ``""`` is the empty list.

    Returns:
        list of int, e.g. ``[200, 200]``.

    Raises:
        argparse.ArgumentTypeError: a part is not an integer.
    """
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def image_shape(text):
    """An ``argparse`` type: an image shape such as ``"28,28"``.

    Args:
        text: comma-separated positive integers.

    Returns:
        tuple of int, e.g. ``(28, 28)``.
    """
    return tuple(ints(text))


def add_alias(parser, alias, action):
    """Accept ``alias`` as a hidden second name of ``action``.

    Args:
        parser: the parser or argument group ``action`` was added to.
        alias: the old option string, e.g. ``"--posterior"``.
        action: the ``argparse.Action`` returned by ``add_argument``.

    Returns:
        The hidden alias's action (it sets ``action.dest`` and has no default
        of its own, so ``action``'s default stands).
    """
    return parser.add_argument(
        alias,
        dest=action.dest,
        type=action.type,
        choices=action.choices,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def add_data_arguments(
    parser,
    dataset_default="digits",
    binarizations=("none", "static", "dynamic"),
    binarization_help="training-set binarisation; the evaluation set is binarised once "
    "(keras_vae.datasets.binarize_test) unless 'none'",
    limit_help=None,
    batch_size_help=None,
):
    """Add the data options: ``--dataset``, ``--data-path``, ``--data-dir``, ``--binarization``.

    Args:
        parser: an ``argparse`` parser or group.
        dataset_default: default of ``--dataset`` (None: optional).
        binarizations: choices of ``--binarization``.
        binarization_help: its help text.
        limit_help: help of ``--limit`` (first N examples); None: no ``--limit``.
        batch_size_help: help of ``--batch-size`` (default 100); None: no ``--batch-size``.

    Returns:
        The argument group holding them.
    """
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        default=dataset_default,
        help="digits (bundled with scikit-learn, no download), mnist or fashion_mnist",
    )
    group.add_argument(
        "--data-path",
        default=None,
        help="local .npz in the Keras mnist.npz layout (offline use); "
        "or set KERAS_VAE_MNIST_PATH / KERAS_VAE_FASHION_MNIST_PATH",
    )
    group.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    group.add_argument("--binarization", default="none", choices=binarizations, help=binarization_help)
    if limit_help:
        group.add_argument("--limit", type=int, default=None, help=limit_help)
    if batch_size_help:
        group.add_argument("--batch-size", type=int, default=100, help=batch_size_help)
    return group


def data_kwargs(args):
    """``path`` and ``data_dir`` for ``keras_vae.datasets`` from parsed data options.

    Args:
        args: parsed options of :func:`add_data_arguments`.

    Returns:
        dict for ``datasets.load`` / ``datasets.load_arrays`` (which reject
        either for the bundled digits).
    """
    return {"path": args.data_path, "data_dir": args.data_dir}


def add_model_arguments(parser, objectives):
    """Add the options of ``HelmholtzMachine`` / ``VAE``, named after their arguments.

    Args:
        parser: an ``argparse`` parser.
        objectives: the ``--objective`` choices (``keras_vae.objectives.OBJECTIVES``).

    Returns:
        The argument group holding them.
    """
    group = parser.add_argument_group("model")
    group.add_argument(
        "--latent-dims", type=ints, default="16", help="stochastic layer sizes, bottom to top (e.g. 100,50)"
    )
    hidden = group.add_argument(
        "--hidden-dims", type=ints, default="200,200", help="hidden widths between stochastic layers"
    )
    add_alias(group, "--hidden", hidden)
    group.add_argument("--activation", default="tanh", help="activation of the hidden layers")
    group.add_argument(
        "--latent", default="gaussian", choices=("gaussian", "bernoulli"), help="family of the stochastic layers"
    )
    group.add_argument(
        "--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"), help="observation model p(x | h_1)"
    )
    covariance = group.add_argument(
        "--covariance", default="diag", choices=("diag", "full"), help="covariance of Gaussian q(h | x)"
    )
    add_alias(group, "--posterior", covariance)
    group.add_argument("--objective", default="elbo", choices=objectives, help="training objective")
    n_samples = group.add_argument(
        "--n-samples", type=int, default=1, help="posterior samples per example: L (ELBO) or k (IWAE, RWS)"
    )
    add_alias(group, "--samples", n_samples)
    group.add_argument(
        "--kl", default="analytic", choices=("analytic", "mc"), help="top-layer KL in closed form or Monte Carlo"
    )
    group.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (elbo objective)")
    group.add_argument(
        "--kl-warmup-steps",
        type=int,
        default=0,
        help="optimizer steps over which the KL weight rises from 0 to beta (elbo objective)",
    )
    group.add_argument(
        "--eval-samples",
        type=int,
        default=0,
        help="if > 0, the test metrics also report log_px, importance-sampled with this many samples",
    )
    return group
