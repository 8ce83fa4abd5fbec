"""Reproduce Table 1 (MNIST) of Burda, Grosse & Salakhutdinov (2015), IWAE.

Rows: {1, 2} stochastic layers x {VAE, IWAE} x k in {1, 5, 50}:

- 1 layer: 784-200-200-[50]-200-200-784, tanh, Gaussian latent, Bernoulli
  pixels (``keras_vae.presets`` ``"burda_1layer"``);
- 2 layers: 784-200-200-[100]-100-100-[50] (and mirrored generative
  networks; ``"burda_2layer"``);
- VAE rows maximise the ELBO with k samples (``objective="elbo",
  n_samples=k``, analytic KL of the top layer); IWAE rows the k-sample
  importance-weighted bound (``objective="iwae", n_samples=k``).

Training follows the paper: dynamically binarised MNIST training set (a fresh
Bernoulli draw of every image each epoch), Adam(beta1=0.9, beta2=0.999,
epsilon=1e-4), batch 20, and 8 passes i = 0..7 of 3^i epochs at learning
rate 0.001 * 10^(-i/7): 3280 epochs in all. The test set is binarised once
with a fixed seed (``keras_vae.datasets.binarize_test``); each trained model
is scored by the importance-sampled log p(x) with k = 5000
(``keras_vae.evaluation.log_likelihood``), the test ELBO and the number of
active units (Cov_x E_q[u] > 0.01). The markdown table sets the results
beside the paper's.

The defaults are the paper's full schedule (days of CPU; run it unchanged on
a bigger machine)::

    python benchmarks/reproduce_burda.py --data-path mnist.npz --out results/burda.md

A smaller budget, e.g. the first two passes (4 epochs) at batch 100, one-layer
rows, log p(x) on 1000 test images::

    python benchmarks/reproduce_burda.py --passes 2 --batch-size 100 --rows '1L-*' \\
        --limit-test 1000 --out results/burda_small.md

``--rows`` takes comma-separated names or shell patterns (``1L-VAE-k1``,
``'2L-IWAE-*'``, ``all``). Results are written after every row (markdown and a
``.json`` beside it); ``--resume`` keeps the rows already in that JSON (same
budget) and runs only the missing ones, and
``--backup-dir`` lets an interrupted row resume mid-schedule.
"""

import argparse
import fnmatch
import json
import os
import pathlib
import platform
import sys
import time

import keras

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import presets

# Test log-likelihoods (nats) reported in Burda et al. (2015), Table 1, MNIST.
PAPER = {
    (1, "VAE", 1): -86.76, (1, "VAE", 5): -86.47, (1, "VAE", 50): -86.35,
    (1, "IWAE", 1): -86.76, (1, "IWAE", 5): -85.54, (1, "IWAE", 50): -84.78,
    (2, "VAE", 1): -85.33, (2, "VAE", 5): -85.01, (2, "VAE", 50): -84.78,
    (2, "IWAE", 1): -85.33, (2, "IWAE", 5): -83.89, (2, "IWAE", 50): -82.90,
}  # fmt: skip
ROWS = [f"{layers}L-{obj}-k{k}" for layers in (1, 2) for obj in ("VAE", "IWAE") for k in (1, 5, 50)]


def parse_row(name):
    """``"2L-IWAE-k5"`` -> ``(2, "IWAE", 5)``."""
    layers, objective, k = name.split("-")
    return int(layers[:-1]), objective, int(k[1:])


def select_rows(spec):
    """Row names from ``"all"`` or comma-separated names / shell patterns, in table order."""
    if spec.strip().lower() == "all":
        return list(ROWS)
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    chosen = [r for r in ROWS if any(fnmatch.fnmatchcase(r, p) for p in patterns)]
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(r, p) for r in ROWS)]
    if unknown or not chosen:
        raise SystemExit(f"unknown row(s) {unknown or patterns}; rows are: {', '.join(ROWS)}")
    return chosen


def make_model(layers, objective, k, seed):
    """The paper's architecture for one row."""
    return presets.from_preset(
        f"burda_{layers}layer", objective="elbo" if objective == "VAE" else "iwae", n_samples=k, seed=seed
    )


def schedule(passes):
    """Epochs and learning rate per epoch: pass i is 3^i epochs at 0.001 * 10^(-i/7)."""
    rates = []
    for i in range(passes):
        rates += [1e-3 * 10 ** (-i / 7)] * 3**i
    return rates


def load_data(path, batch_size, limit_train, limit_test, seed):
    """``(train dataset, n_train, x_test)``: dynamic binarisation of train, static of test.

    A fresh call gives the same stream of training batches for the same seed,
    so every row sees the same data whatever rows run before it.
    """
    train = datasets.load(
        "mnist", "train", batch_size=batch_size, binarization="dynamic", seed=seed, path=path, limit=limit_train
    )
    x_train, _ = datasets.load_arrays("mnist", "train", path=path)
    x_test, _ = datasets.load_arrays("mnist", "test", path=path)
    x_test = datasets.binarize_test(x_test[:limit_test])
    return train, len(x_train[:limit_train]), x_test


def run_row(name, args, x_test, out_dir):
    layers, objective, k = parse_row(name)
    keras.utils.set_random_seed(args.seed)
    train, _, _ = load_data(args.data_path, args.batch_size, args.limit_train, 1, args.seed)
    model = make_model(layers, objective, k, args.seed)
    rates = schedule(args.passes)
    model.compile(optimizer=keras.optimizers.Adam(rates[0], beta_1=0.9, beta_2=0.999, epsilon=1e-4))
    callbacks = [keras.callbacks.LearningRateScheduler(lambda epoch, lr: rates[epoch])]
    if args.backup_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(str(pathlib.Path(args.backup_dir) / name)))
    start = time.perf_counter()
    history = model.fit(train, epochs=len(rates), callbacks=callbacks, verbose=args.verbose, shuffle=False)
    train_seconds = time.perf_counter() - start
    if args.save_models:
        model.save(out_dir / f"{name}.keras")

    start = time.perf_counter()
    metrics = evaluation.evaluate_model(
        model, x_test, k=args.k_eval, seed=args.seed, batch_size=args.eval_batch_size, verbose=args.verbose
    )
    eval_seconds = time.perf_counter() - start
    paper = PAPER[(layers, objective, k)]
    return {
        "name": name,
        "layers": layers,
        "objective": objective,
        "k": k,
        "epochs": len(rates),
        "log_px": metrics["log_px"],
        "log_px_stderr": metrics["log_px_stderr"],
        "log_px_mc_stderr": metrics["log_px_mc_stderr"],
        "paper_log_px": paper,
        "difference": metrics["log_px"] - paper,
        "elbo": metrics["elbo"],
        "train_elbo_last_epoch": float(history.history["elbo"][-1]),
        "active_units": metrics["active_units"],
        "latent_dims": metrics["latent_dims"],
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "k_eval": args.k_eval,
        "n_test": metrics["n_examples"],
    }


def budget_line(args, n_train, n_test, wall):
    rates = schedule(args.passes)
    full = " (the paper's full schedule)" if args.passes == 8 and args.batch_size == 20 and n_train == 60000 else ""
    return (
        f"Budget: {args.passes} of 8 passes = {len(rates)} epochs{full} over {n_train} dynamically binarised "
        f"training images, batch {args.batch_size}, Adam(0.9, 0.999, eps 1e-4) at lr 1e-3 * 10^(-i/7); "
        f"test log p(x) with k = {args.k_eval} on {n_test} statically binarised test images "
        f"(seed {datasets.TEST_BINARIZATION_SEED}). Machine: {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}, Keras {keras.__version__}. Wall time so far: {wall / 60:.1f} min."
    )


def markdown(rows, args, n_train, n_test, wall):
    lines = [
        "# Burda et al. (2015), Table 1 (MNIST): keras-vae against the paper",
        "",
        budget_line(args, n_train, n_test, wall),
        "",
        "log p(x): mean over test images ± standard error over images; the paper's values are after "
        "3280 epochs at batch 20 with k = 5000 on all 10,000 test images. Active units: per stochastic layer "
        "(bottom + top), Cov_x(E_q[u]) > 0.01.",
        "",
        "| row | layers | objective | k | epochs | test log p(x) | paper | difference | test ELBO | active units "
        "| train (s) | eval (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        units = " + ".join(str(u) for u in r["active_units"])
        lines.append(
            f"| {r['name']} | {r['layers']} | {r['objective']} | {r['k']} | {r['epochs']} | "
            f"{r['log_px']:.2f} ± {r['log_px_stderr']:.2f} | {r['paper_log_px']:.2f} | {r['difference']:+.2f} | "
            f"{r['elbo']:.2f} | {units} | {r['train_seconds']:.0f} | {r['eval_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--passes", type=int, default=8, help="first P passes of the schedule (8 = paper)")
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--rows", default="all", help=f"comma-separated names or patterns; {', '.join(ROWS)}")
    parser.add_argument("--k-eval", type=int, default=5000, help="importance samples of the test log p(x)")
    parser.add_argument("--limit-train", type=int, default=None, help="use the first N training images")
    parser.add_argument("--limit-test", type=int, default=None, help="score the first N test images")
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/reproduce_burda.md")
    parser.add_argument("--resume", action="store_true", help="skip rows already in the output's .json")
    parser.add_argument("--backup-dir", default=None, help="keras BackupAndRestore directory (resume a row)")
    parser.add_argument("--save-models", action="store_true", help="save each trained model beside --out")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    if not 1 <= args.passes <= 8:
        parser.error("--passes must be in 1..8")
    names = select_rows(args.rows)
    try:
        args.data_path = datasets.local_path("mnist", args.data_path, required=True)
    except FileNotFoundError as err:
        parser.error(str(err))

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    rows, previous_wall = [], 0.0
    if args.resume and json_path.exists():
        saved = json.loads(json_path.read_text())
        budget = ("passes", "batch_size", "k_eval", "limit_train", "limit_test", "seed")
        changed = [b for b in budget if saved["args"].get(b) != getattr(args, b)]
        if changed:
            parser.error(f"--resume with a different budget than {json_path}: {', '.join(changed)}")
        rows, previous_wall = saved["rows"], float(saved.get("wall_seconds", 0.0))
    done = {r["name"] for r in rows}

    _, n_train, x_test = load_data(args.data_path, args.batch_size, args.limit_train, args.limit_test, args.seed)
    print(budget_line(args, n_train, len(x_test), 0.0), flush=True)
    start = time.perf_counter()
    for name in names:
        if name in done:
            print(f"{name}: already in {json_path}, skipped", flush=True)
            continue
        row = run_row(name, args, x_test, out.parent)
        rows.append(row)
        rows.sort(key=lambda r: ROWS.index(r["name"]))
        wall = previous_wall + time.perf_counter() - start
        out.write_text(markdown(rows, args, n_train, len(x_test), wall))
        json_path.write_text(json.dumps({"args": vars(args), "wall_seconds": wall, "rows": rows}, indent=2))
        print(
            f"{name}: log p(x) {row['log_px']:.2f} ± {row['log_px_stderr']:.2f} (paper {row['paper_log_px']:.2f}), "
            f"ELBO {row['elbo']:.2f}, active units {row['active_units']}, train {row['train_seconds']:.0f}s, "
            f"eval {row['eval_seconds']:.0f}s",
            flush=True,
        )
    wall = previous_wall + time.perf_counter() - start
    if rows:
        table = markdown(rows, args, n_train, len(x_test), wall)
        out.write_text(table)
        print(table)
        print(f"wrote {out} and {json_path}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
