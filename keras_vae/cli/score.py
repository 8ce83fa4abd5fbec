"""``keras-vae score``: per-example ELBO and log p(x), for anomaly and out-of-distribution detection.

Writes to ``--out``:

- ``scores.csv``: one row per example, ``index,elbo,log_px,log_px_mc_stderr,ess``
  (nats; higher is more typical);
- ``summary.json``: the settings, and the mean, standard deviation and
  low quantiles (0.1%, 1%, 5%, 50%) of ``elbo`` and ``log_px``: a threshold
  at the 1% quantile of training scores flags about 1% of typical data.

Example:

```
keras-vae score runs/vae/model.keras --dataset mnist --split train --out scores/train
keras-vae score runs/vae/model.keras --dataset mnist --split test --out scores/test
```
"""

import json
import pathlib

from keras_vae.cli import evaluate
from keras_vae.cli import loading
from keras_vae.cli import options
from keras_vae.cli import runs

HELP = "per-example ELBO and log p(x) (anomaly scores) written to a directory"

#: The files ``keras-vae score`` writes (what ``--overwrite`` replaces).
FILES = ("scores.csv", "summary.json")
#: Quantiles of the scores reported in summary.json (thresholds for a false-positive rate).
QUANTILES = (0.001, 0.01, 0.05, 0.5)


def add_arguments(parser):
    """Add the options of ``keras-vae score MODEL --out DIR``.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    parser.add_argument("model", help="path to a .keras file saved by keras-vae")
    options.add_evaluation_data_arguments(parser, "score")
    group = parser.add_argument_group("estimator")
    group.add_argument(
        "--k",
        type=options.positive_int,
        default=options.SCORE_K,
        help="posterior samples per example (use the exported score signature's k to compare with it)",
    )
    group.add_argument("--chunk-size", type=options.positive_int, default=None, help="samples per chunk (memory)")
    group.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--out", required=True, help="output directory (must be empty or new unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of a previous score run in --out")
    parser.add_argument(
        "--verbose", type=int, default=None, choices=(0, 1), help="progress bar; default 1 on a terminal"
    )
    return parser


def _check_out(out, overwrite):
    runs.check_writable(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out} is not empty; choose a new directory or pass --overwrite.")


def summarize(values):
    """Mean, standard deviation and :data:`QUANTILES` of ``[n]`` scores (JSON-ready floats)."""
    import numpy as np

    values = np.asarray(values, np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "quantiles": {str(q): float(np.quantile(values, q)) for q in QUANTILES},
    }


def run(args):
    """Score the data and write ``scores.csv`` and ``summary.json``.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    import numpy as np

    say = options.printer(args)
    out = pathlib.Path(args.out)
    _check_out(out, args.overwrite)
    model = loading.load_model(args.model)
    from keras_vae import evaluation

    x = evaluate.load_data(args, model)
    n = len(x[0]) if isinstance(x, tuple) else len(x)  # (x, y) for a conditional model
    result = evaluation.log_likelihood(
        model,
        x,
        k=args.k,
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=options.progress_bar(args),
    )
    runs.make_dir(out)
    table = np.column_stack([np.arange(n), result.elbo, result.values, result.mc_stderr, result.ess])
    np.savetxt(
        out / "scores.csv",
        table,
        delimiter=",",
        fmt=["%d", "%.6f", "%.6f", "%.6f", "%.3f"],
        header="index,elbo,log_px,log_px_mc_stderr,ess",
        comments="",
    )
    summary = {
        "model": str(args.model),
        "dataset": args.dataset,
        "split": args.split,
        "binarization": args.binarization,
        "n_examples": n,
        "k": args.k,
        "seed": args.seed,
        "elbo": summarize(result.elbo),
        "log_px": summarize(result.values),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(
        f"{args.dataset}/{args.split} ({n} examples, k={args.k}): mean ELBO {summary['elbo']['mean']:.3f}, "
        f"mean log p(x) {summary['log_px']['mean']:.3f}, 1% quantile of log p(x) "
        f"{summary['log_px']['quantiles']['0.01']:.3f}"
    )
    for name in FILES:
        say(f"  wrote {out / name}")
    return 0
