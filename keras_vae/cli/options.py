"""Options shared by the ``keras-vae`` subcommands, and argument types.

Each option is named after the API argument it sets (``--covariance`` sets
``HelmholtzMachine(covariance=...)``, ``--k`` sets ``log_likelihood(k=...)``);
old names stay accepted as hidden aliases (see :data:`ALIASES`).
"""

import argparse
import pathlib
import sys

from keras_vae.cli import runs

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
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def _number(kind, low, inclusive, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or (value < low if inclusive else value <= low):  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


#: ``argparse`` types: an integer >= 1, an integer >= 0, a float > 0, a float >= 0.
positive_int = _number(int, 1, True, "an integer >= 1")
non_negative_int = _number(int, 0, True, "an integer >= 0")
positive_float = _number(float, 0.0, False, "a number > 0")
non_negative_float = _number(float, 0.0, True, "a number >= 0")


def pixel_scale(text):
    """An ``argparse`` type: ``"auto"``, ``"255"`` or ``"1"`` (``keras_vae.datasets.PIXEL_SCALES``)."""
    if text in ("auto", "255", "1"):
        return text if text == "auto" else int(text)
    raise argparse.ArgumentTypeError(f"expected auto, 255 or 1, got {text!r}")


def image_shape(text):
    """An ``argparse`` type: an image shape such as ``"28,28"``.

    Args:
        text: comma-separated positive integers.

    Returns:
        tuple of int, e.g. ``(28, 28)``.
    """
    shape = tuple(ints(text))
    if not shape:
        raise argparse.ArgumentTypeError("expected an image shape such as 28,28")
    return shape


def image_size(text):
    """An ``argparse`` type: ``"HEIGHT,WIDTH"``, e.g. ``"64,64"`` -> ``[64, 64]`` (a list: run settings are JSON)."""
    size = ints(text)
    if len(size) != 2:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH such as 64,64, got {text!r}")
    return size


#: Namespace attribute listing the architecture options given on the command line
#: (``--latent-dims``, ``--hidden-dims``, ``--activation``, ``--latent``), which a ``--preset`` sets itself.
ARCHITECTURE_GIVEN = "architecture_given"


class ArchitectureOption(argparse.Action):
    """Store the value and note the option in ``ARCHITECTURE_GIVEN`` (a preset must not silently ignore it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        given = list(getattr(namespace, ARCHITECTURE_GIVEN, None) or [])
        if option_string not in given:
            given.append(option_string)
        setattr(namespace, ARCHITECTURE_GIVEN, given)


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
        action=type(action),
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
        help="digits (bundled with scikit-learn, no download), mnist or fashion_mnist; or a path: a .npy/.npz "
        "array file (any example shape, e.g. [N, H, W, C] images), a folder of images (class subfolders give "
        "labels), a .csv/.tsv/.parquet table (a mixed observation model, column by column); or any "
        "tensorflow-datasets image dataset name (with --data-dir)",
    )
    group.add_argument(
        "--data-path",
        default=None,
        help="local .npz in the Keras mnist.npz layout (offline use); "
        "or set KERAS_VAE_MNIST_PATH / KERAS_VAE_FASHION_MNIST_PATH",
    )
    group.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    group.add_argument(
        "--pixel-scale",
        default="auto",
        type=pixel_scale,
        help="pixel values of --data-path: 255 (0..255), 1 (already in [0, 1]) or auto (uint8 as 0..255, "
        "floats within [0, 1] as they are; anything else is refused as ambiguous)",
    )
    group.add_argument(
        "--image-size",
        type=image_size,
        default=None,
        help="HEIGHT,WIDTH to resize the images of a folder to (needed when their sizes differ)",
    )
    group.add_argument(
        "--color-mode",
        default=None,
        choices=("grayscale", "rgb", "rgba"),
        help="channels of a folder's images; default grayscale when all images are, else rgb",
    )
    group.add_argument("--binarization", default="none", choices=binarizations, help=binarization_help)
    if limit_help:
        group.add_argument("--limit", type=positive_int, default=None, help=limit_help)
    if batch_size_help:
        group.add_argument("--batch-size", type=positive_int, default=100, help=batch_size_help)
    return group


def add_evaluation_data_arguments(parser, verb):
    """Add the data options of commands that read one split, binarised once: evaluate, score.

    ``--split`` and ``--binarization-seed`` besides :func:`add_data_arguments`'s
    (read them with ``keras_vae.cli.evaluate.load_data``).

    Args:
        parser: the subcommand's ``argparse`` parser.
        verb: what the command does to the examples ("evaluate", "score").

    Returns:
        The argument group holding them.
    """
    group = add_data_arguments(
        parser,
        binarization_help="'static' or 'dynamic' (the training setting) both binarise the data once, "
        "as keras-vae train does for its test set",
        limit_help=f"{verb} only the first N examples",
        batch_size_help="examples per batch",
    )
    group.add_argument("--split", default="test", choices=("train", "test"), help=f"split to {verb}")
    group.add_argument(
        "--binarization-seed",
        type=int,
        default=None,
        help="seed of that binarisation; None: keras_vae.datasets.TEST_BINARIZATION_SEED, as keras-vae train uses",
    )
    group.add_argument(
        "--schema",
        default=None,
        help="a table's schema.json (default: the one keras-vae train wrote beside the model)",
    )
    return group


def data_kwargs(args):
    """``path`` and ``data_dir`` for ``keras_vae.datasets`` from parsed data options.

    Args:
        args: parsed options of :func:`add_data_arguments`.

    Returns:
        dict for ``datasets.load`` / ``datasets.load_arrays`` (which reject
        either for the bundled digits).
    """
    return {"path": args.data_path, "data_dir": args.data_dir, "pixel_scale": getattr(args, "pixel_scale", "auto")}


def source_kwargs(args):
    """Keyword arguments of ``keras_vae.datasets.load_data`` from parsed data options.

    Args:
        args: parsed options of :func:`add_data_arguments`.

    Returns:
        dict: :func:`data_kwargs`'s plus ``image_size`` and ``color_mode``.
    """
    return dict(
        data_kwargs(args), image_size=getattr(args, "image_size", None), color_mode=getattr(args, "color_mode", None)
    )


#: Export formats, TFLite quantisations and the default k of the score signatures
#: (``keras_vae.export.FORMATS``, ``keras_vae.export.QUANTIZATIONS``,
#: ``keras_vae.scoring.DEFAULT_K``), named here so ``--help`` needs no TensorFlow.
EXPORT_FORMATS = ("saved_model", "tflite", "both")
QUANTIZATIONS = ("dynamic", "float16", "int8")
SCORE_K = 16

#: The built-in objectives (``keras_vae.objectives.OBJECTIVES``, named here so ``--help`` needs no TensorFlow).
OBJECTIVES = ("elbo", "iwae", "wake_sleep", "reweighted_wake_sleep")
#: The presets (``keras_vae.presets.PRESETS``), named here so ``--help`` needs no TensorFlow.
PRESETS = ("burda_1layer", "burda_2layer", "conv_mnist")
#: Observation models by name (``keras_vae.heads.observations``).
LIKELIHOODS = ("bernoulli", "gaussian", "discretized_logistic")


def add_model_arguments(parser):
    """Add the options of ``HelmholtzMachine`` / ``VAE``, named after their arguments.

    Args:
        parser: an ``argparse`` parser.

    Returns:
        The argument group holding them.
    """
    group = parser.add_argument_group("model")
    group.add_argument(
        "--latent-dims",
        type=ints,
        default="16",
        action=ArchitectureOption,
        help="stochastic layer sizes, bottom to top (e.g. 100,50)",
    )
    hidden = group.add_argument(
        "--hidden-dims",
        type=ints,
        default="200,200",
        action=ArchitectureOption,
        help="hidden widths between stochastic layers",
    )
    add_alias(group, "--hidden", hidden)
    group.add_argument(
        "--activation", default="tanh", action=ArchitectureOption, help="activation of the hidden layers"
    )
    group.add_argument(
        "--latent",
        default="gaussian",
        choices=("gaussian", "bernoulli"),
        action=ArchitectureOption,
        help="family of the stochastic layers",
    )
    group.add_argument(
        "--likelihood",
        default="bernoulli",
        choices=LIKELIHOODS,
        help="observation model p(x | h_1) (discretized_logistic: 8-bit images; a table's columns always get "
        "their own mixed model)",
    )
    group.add_argument(
        "--preset",
        default=None,
        choices=PRESETS,
        help="a named architecture (keras_vae.presets): it sets the layers, widths, activation and networks "
        "(conv_mnist: convolutional, for images of any size), so --latent-dims, --hidden-dims, --activation "
        "and --latent cannot be given with it; the other model options still apply",
    )
    covariance = group.add_argument(
        "--covariance", default="diag", choices=("diag", "full"), help="covariance of Gaussian q(h | x)"
    )
    add_alias(group, "--posterior", covariance)
    group.add_argument(
        "--objective",
        default="elbo",
        help=f"training objective: {', '.join(OBJECTIVES)}, or another name registered in keras_vae.objectives",
    )
    n_samples = group.add_argument(
        "--n-samples", type=positive_int, default=1, help="posterior samples per example: L (ELBO) or k (IWAE, RWS)"
    )
    add_alias(group, "--samples", n_samples)
    group.add_argument(
        "--kl", default="analytic", choices=("analytic", "mc"), help="top-layer KL in closed form or Monte Carlo"
    )
    group.add_argument(
        "--beta", type=non_negative_float, default=1.0, help="weight of the KL term (elbo objective)"
    )
    group.add_argument(
        "--kl-warmup-steps",
        type=non_negative_int,
        default=0,
        help="optimizer steps over which the KL weight rises from 0 to beta (elbo objective)",
    )
    group.add_argument(
        "--eval-samples",
        type=non_negative_int,
        default=0,
        help="if > 0, the test metrics also report log_px, importance-sampled with this many samples",
    )
    return group


def add_common_arguments(parser):
    """Add the options every subcommand has: ``--quiet`` and ``--debug``.

    Args:
        parser: an ``argparse`` parser.

    Returns:
        ``parser``.
    """
    group = parser.add_argument_group("output")
    group.add_argument("--quiet", action="store_true", help="print nothing but errors")
    group.add_argument(
        "--debug", action="store_true", help="show TensorFlow's log and the traceback of an error"
    )
    return parser


def add_progress_argument(parser):
    """Add ``--verbose`` to a subcommand with a progress display.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        The added action.
    """
    return parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        choices=(0, 1, 2),
        help="progress: 0 none, 1 a progress bar, 2 one line per epoch; default 1 on a terminal, else 2",
    )


def printer(args):
    """``print`` unless ``--quiet``: the function commands report through."""
    if getattr(args, "quiet", False):
        return lambda *a, **k: None
    return lambda *a, **k: print(*a, **k, flush=True)


def fit_verbosity(args):
    """Keras ``verbose`` for the options: 0 when quiet, else ``--verbose`` or 1 on a terminal, 2 otherwise."""
    if getattr(args, "quiet", False):
        return 0
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2


def progress_bar(args):
    """Whether to show a progress bar: ``--verbose`` if given, else on a terminal only; never with ``--quiet``."""
    if getattr(args, "quiet", False):
        return 0
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    return int(sys.stdout.isatty())


def check_output_file(path, option="--out"):
    """Check, before any heavy work, that a file can be written at ``path``.

    Args:
        path: the file a command will write (its directory is created).
        option: how messages name it.

    Raises:
        ValueError: ``path`` is a directory, a parent is a file, or the
            directory cannot be created or written.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name such as {path / 'out.png'}.")
    runs.check_writable(path.parent, option=f"the directory of {option}")
