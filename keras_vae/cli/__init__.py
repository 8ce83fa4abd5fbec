"""Command-line interface: ``keras-vae train | evaluate | export | sample | plot``.

Every subcommand is a module of this package with ``HELP``,
``add_arguments(parser)`` and ``run(args)``; shared options are in
:mod:`keras_vae.cli.options` and the one model loader in
:mod:`keras_vae.cli.loading`. Argument parsing lives only here.

Errors end with one ``error: ...`` line on stderr and exit status 2 for bad
input (a missing or foreign model file, a bad option value, a diverging
run) or 1 for a fault of the environment (a missing optional package, an
unwritable path, an unexpected failure); ``argparse`` usage errors also exit
with 2. Ctrl-C ends with one line (and, for ``train``, how to resume), exit
status 130. ``--debug`` shows TensorFlow's log and the traceback instead;
``--quiet`` prints nothing but errors. Parsing and ``--help`` do not import
TensorFlow.

Example:

```
keras-vae train --dataset digits --epochs 50 --out runs/vae
keras-vae evaluate runs/vae/model.keras --k 1000
```
"""

import argparse
import sys
import traceback

from keras_vae.cli import evaluate
from keras_vae.cli import export
from keras_vae.cli import logs
from keras_vae.cli import options
from keras_vae.cli import plot
from keras_vae.cli import sample
from keras_vae.cli import score
from keras_vae.cli import train
from keras_vae.cli.train import build_model

__all__ = ["COMMANDS", "build_model", "main", "make_parser"]

#: Subcommand name -> its module.
COMMANDS = {"train": train, "evaluate": evaluate, "export": export, "sample": sample, "score": score, "plot": plot}

# Exit status 2: the input (options, files, data) is at fault; the message says what to change.
_BAD_INPUT = (ValueError, FileNotFoundError, RuntimeError, FloatingPointError)
# Exit status 1: the environment is at fault.
_FAULT = (ImportError, OSError, MemoryError)


def make_parser():
    """The ``keras-vae`` argument parser with every subcommand.

    Returns:
        ``argparse.ArgumentParser``; parsed arguments carry ``func``, the
        subcommand's ``run``.

    Example:

    ```python
    args = make_parser().parse_args(["train", "--beta", "0.5"])
    model = build_model(args, input_dim=64)
    ```
    """
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description="Variational autoencoders and Helmholtz machines for Keras 3.",
        formatter_class=options.HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        p = sub.add_parser(
            name, help=module.HELP, description=module.__doc__, formatter_class=options.HelpFormatter
        )
        module.add_arguments(p)
        options.add_common_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv=None):
    """Run ``keras-vae`` with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: list of command-line arguments.

    Returns:
        Exit status: 0 on success, 2 for bad input, 1 for a fault of the
        environment or an unexpected error, 130 when interrupted
        (``argparse`` exits with 2 itself on usage errors).
    """
    args = make_parser().parse_args(argv)
    logs.configure(debug=args.debug)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", None)
        _error(args, "interrupted" + (f"; {hint}" if hint else ""))
        return 130
    except _BAD_INPUT as err:
        _error(args, str(err) or type(err).__name__)
        return 2
    except _FAULT as err:
        _error(args, str(err) or type(err).__name__)
        return 1
    except Exception as err:  # noqa: BLE001  (anything else still ends in one line)
        first = (str(err).strip().splitlines() or [""])[0]
        _error(args, f"{type(err).__name__}: {first} (run with --debug for the traceback)")
        return 1


def _error(args, message):
    if args.debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr, flush=True)
