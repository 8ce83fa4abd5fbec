"""Reweighted wake-sleep on MNIST against Bornschein & Bengio (2015), "Reweighted Wake-Sleep" (ICLR 2015).

Trains keras-vae's ``HelmholtzMachine`` as the sigmoid belief net (SBN/SBN) of
the paper and its code (github.com/jbornschein/reweighted-ws, ``mnist/run-mnist``
and ``learning/``): every stochastic layer is binary, every conditional of the
generative model ``p`` and of the inference network ``q`` is a single sigmoid
layer (``hidden_dims=()``: no deterministic hidden layer), the top layer has a
factorised Bernoulli prior with learned biases, and the pixels are Bernoulli.
Training is reweighted wake-sleep with K samples per example: wake-p and wake-q
updates with normalised importance weights plus the sleep-phase q update
(``objectives.ReweightedWakeSleep``, ``sleep_q=True``).

Architectures are written as in the paper, top layer first: ``10-200-200`` is
``x (784) <- h1 (200) <- h2 (200) <- h3 (10)``, the default of
``run-mnist`` (``layer_sizes="200,200,10"``, given there bottom first). Rows
are ``<architecture>-k<K>``.

The paper's settings (from ``mnist/run-mnist`` and ``learning/training.py``,
``learning/models/rws.py``, ``learning/models/sbn.py`` of their repository):

- data: the fixed binarisation of Murray & Salakhutdinov (2008)
  (``mnist_salakhutdinov.pkl.gz``, Larochelle's file): the first 50,000
  training images, 10,000 for validation, the 10,000 test images;
- K = 10 training samples (``--samples`` default), batch 100, sleep phase
  every 2nd step on 2 x 100 dreams (``--sleep-interleave 2``);
- SGD with momentum in exponential-average form,
  ``d <- 0.95 d + 0.05 * lr * g`` and ``theta <- theta + d``, where ``g`` is
  the gradient *summed* over the batch and lr = 1e-3 for p, q and sleep;
- weights ``U(+-sqrt(6 / (fan_in + fan_out))) / fan_in``, every bias -1;
- early stopping on the validation log-likelihood (K = 100), 10 epochs
  without improvement, at most 1000 epochs; the final test estimates use up
  to K = 100,000 samples.

How keras-vae expresses them here (what differs is said):

- optimizer: ``keras.optimizers.SGD(learning_rate=(1 - momentum) * lr * batch,
  momentum=momentum)``. keras-vae averages the loss over the batch and Keras's
  momentum is ``v <- m v - eta g``, so this is the same update as theirs
  (for batch 100: SGD(0.005, momentum=0.95)). Their wake-q and sleep updates
  are separate steps sharing the momentum; here they are one loss per step,
  and the sleep term uses B dreams every step instead of 2B every 2nd step
  (the same expected gradient). Their NaN guard (reuse the last momentum) has
  no equivalent: keras-vae stops on a non-finite loss.
- data: no copy of the Murray & Salakhutdinov file here. MNIST comes from
  ``keras_vae.datasets`` (``KERAS_VAE_MNIST_PATH`` or ``--data-path``),
  binarised the same way (one Bernoulli draw per pixel, fixed): training
  images ``datasets.load(..., binarization="static", seed=--seed)``, test
  images ``datasets.binarize_test`` as in every keras-vae benchmark. Other
  draws than the paper's; ``--binarization dynamic`` redraws every epoch.
- initialisation: ``--init paper`` (default) sets every weight and bias as
  above; ``--init keras`` keeps keras-vae's defaults for this objective
  (Glorot-uniform kernels, biases U(+-1/sqrt(fan_in))).
- recognition delay: the paper trains q from the first step; keras-vae's
  ``ReweightedWakeSleep`` waits 1000 steps by default. ``--recognition-delay``
  (default 0, the paper's).
- stopping: no early stopping; training runs ``--epochs`` epochs or until
  ``--minutes`` of training have passed, whichever comes first (checked at the
  end of each epoch, so the last epoch may end past the limit). The
  validation log p(x) (K = ``--k-valid`` on ``--valid-images`` held-out
  training images) is printed and logged after every epoch.
- test log p(x): ``keras_vae.evaluation`` with ``--k-eval`` samples (default
  5000; the paper's 100,000 costs 20 times as long) on ``--limit-test`` test
  images, with its standard error over images, the test ELBO and the active
  units (Cov_x E_q[u] > 0.01) of each layer, bottom first.

The paper's numbers (``PAPER`` below) could not be checked against the paper's
text when this script was written: each row carries ``paper_verified`` and the
table marks unverified numbers with "?". ``--paper-log-px`` sets the number for
the rows of a run.

Examples::

    KERAS_VAE_MNIST_PATH=mnist.npz python benchmarks/rws_bornschein.py --minutes 600
    python benchmarks/rws_bornschein.py --rows 10-200-200,10-100-200-300-400 --k-train 10 --minutes 600
    python benchmarks/rws_bornschein.py --epochs 1 --limit-train 2000 --limit-test 100 --k-eval 100 \\
        --out /tmp/rws_smoke.json

Files, beside ``--out`` (default ``benchmarks/results/rws_bornschein.json``):

- ``<out>.json``: the finished rows, rewritten after every row;
- ``<out>.md``: the table beside the paper's numbers;
- ``<out>.log``: one JSON line per epoch (training metrics, validation log p(x));
- ``<out>_curve.png``: validation log p(x) against minutes of training, the
  test log p(x) of each finished row and the paper's figure;
- ``<out>_backup/<row>/``: weights, optimizer state and training seconds of
  the row in progress (written atomically at every epoch end).

Every run resumes: rows already in the JSON with the same budget and
evaluation are skipped; a row cut during training continues from its last
finished epoch (its training seconds carry over, so ``--minutes`` counts the
whole row); a row cut during evaluation is evaluated again without retraining.
A row stopped by ``--minutes`` keeps its backup: the same command with a
larger ``--minutes`` continues it from where it stopped (the learning rate is
constant, so the longer row is the shorter one trained on) and adds a row; a
row cut during training continues under a changed ``--minutes`` too.
``--valid-every N`` scores the validation images every N epochs only (each
scoring costs about as much as a training epoch of the deep models).
"""

import argparse
import json
import math
import os
import pathlib
import platform
import shutil
import sys
import time

import keras
import numpy as np

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import objectives
from keras_vae._keras_compat import AtomicBackupAndRestore
from keras_vae.models import HelmholtzMachine

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from reproduce_burda import _append_jsonl  # noqa: E402
from reproduce_burda import _read_jsonl  # noqa: E402
from reproduce_burda import matmul_gflops  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"

# Test log p(x) (nats) of SBN/SBN models trained by RWS in Bornschein & Bengio
# (2015), by architecture (top layer first). NOT checked against the paper's
# text: the value was recalled as its best SBN/SBN result on MNIST (arXiv
# 1406.2751v4); check it (and add the other architectures) before quoting a gap.
PAPER = {
    "10-100-200-300-400": {
        "log_px": -85.48,
        "verified": False,
        "source": "Bornschein & Bengio (2015), arXiv:1406.2751v4, MNIST results table (recalled, unverified)",
    },
}
# What must match for a saved row (or a backup) to count as the same run.
BUDGET = (
    "epochs", "minutes", "batch_size", "lr", "momentum", "limit_train", "binarization", "init",
    "recognition_delay", "seed",
)  # fmt: skip


def parse_architecture(text):
    """``"10-200-200"`` (top first) -> ``[200, 200, 10]``, the latent sizes bottom first."""
    try:
        sizes = [int(s) for s in text.split("-")]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"architecture {text!r} is not layer sizes joined by '-', top layer first (e.g. 10-200-200)")
    return sizes[::-1]


def row_name(architecture, k):
    return f"{architecture}-k{k}"


def budget_of(args):
    return {key: getattr(args, key) for key in BUDGET}


def sgd_learning_rate(args):
    """Keras's SGD learning rate equal to the paper's update (see the module docstring)."""
    return (1.0 - args.momentum) * args.lr * args.batch_size


def make_model(architecture, k, args):
    """The SBN/SBN Helmholtz machine of ``architecture`` trained by RWS with ``k`` samples."""
    return HelmholtzMachine(
        input_dim=784,
        latent_dims=parse_architecture(architecture),
        hidden_dims=(),
        latent="bernoulli",
        likelihood="bernoulli",
        objective=objectives.ReweightedWakeSleep(recognition_delay_steps=args.recognition_delay),
        n_samples=k,
        sleep_q=True,
        seed=args.seed,
    )


def paper_init(model, seed):
    """Their initialisation: kernels ``U(+-sqrt(6 / (fan_in + fan_out))) / fan_in``, all biases -1.

    (``default_weights`` in their ``learning/model.py``; ``b``, ``a`` default to
    -1 in ``learning/models/sbn.py``, for p and q layers alike.)
    """
    rng = np.random.default_rng(seed)

    def dense(layer):
        fan_in, fan_out = layer.kernel.shape
        scale = math.sqrt(6.0) / math.sqrt(fan_in + fan_out)
        layer.kernel.assign((scale * rng.uniform(-1.0, 1.0, (fan_in, fan_out)) / fan_in).astype("float32"))
        layer.bias.assign(np.full((fan_out,), -1.0, "float32"))

    for head in model.recognition_heads + model.generative_heads:
        dense(head.logits_dense)
    dense(model.observation.logits_dense)
    model.prior.bias.assign(np.full((model.prior.units,), -1.0, "float32"))


def load_data(args):
    """``(train dataset, n_train, x_valid or None, x_test)``.

    Training images: the first ``--limit-train``, binarised once with
    ``--seed`` (or every epoch with ``--binarization dynamic``). Validation:
    the next ``--valid-images`` training images, binarised by the same draw.
    Test: ``datasets.binarize_test`` of the first ``--limit-test`` test images.
    """
    train = datasets.load(
        "mnist", "train", batch_size=args.batch_size, binarization=args.binarization, seed=args.seed,
        path=args.data_path, limit=args.limit_train,
    )  # fmt: skip
    x_train, _ = datasets.load_arrays("mnist", "train", path=args.data_path)
    n_train = len(x_train[: args.limit_train])
    x_valid = None
    if args.valid_images and n_train < len(x_train):
        # The prefix of one fixed draw over all training images, as datasets.load draws its part.
        x_valid = datasets.binarize(x_train[: n_train + args.valid_images], "static", seed=args.seed)[n_train:]
    x_test, _ = datasets.load_arrays("mnist", "test", path=args.data_path)
    return train, n_train, x_valid, datasets.binarize_test(x_test[: args.limit_test])


def _write_json(path, value):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)


def _value(logs, name):
    value = logs.get(name)
    return None if value is None else round(float(value), 3)


class Progress(keras.callbacks.Callback):
    """Training seconds, one log line per epoch (with the validation log p(x)) and the ``--minutes`` limit.

    Args:
        row: the row's name, in every record.
        log_path: the ``.log`` file of JSON lines.
        epochs: epochs of the budget.
        seconds_limit: stop after the first epoch that ends with this many
            seconds of training (earlier attempts included); None: no limit.
        x_valid: ``[N, 784]`` validation images, or None.
        k_valid: importance samples of the validation log p(x).
        valid_every: score the validation images after every this many epochs (and after the last).
        budget: dict written with every record.
    """

    def __init__(self, row, log_path, epochs, seconds_limit, x_valid, k_valid, budget, valid_every=1):
        super().__init__()
        self.valid_every = valid_every
        self.row, self.log_path, self.epochs, self.seconds_limit = row, log_path, epochs, seconds_limit
        self.x_valid, self.k_valid, self.budget = x_valid, k_valid, budget
        self.train_seconds, self.epochs_done, self.valid_log_px = 0.0, 0, None

    def out_of_time(self):
        return self.seconds_limit is not None and self.train_seconds >= self.seconds_limit

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self._start
        self.epochs_done = epoch + 1
        logs = logs or {}
        last = self.epochs_done >= self.epochs or self.out_of_time()
        scored = None  # This epoch's validation log p(x), if scored.
        if self.x_valid is not None and (self.epochs_done % self.valid_every == 0 or last):
            scored = evaluation.log_likelihood(self.model, self.x_valid, k=self.k_valid, verbose=0).mean
            self.valid_log_px = scored
        record = {
            "row": self.row, "epoch": self.epochs_done, "train_seconds": round(self.train_seconds, 2),
            "valid_log_px": None if scored is None else round(scored, 3),
            **{name: _value(logs, name) for name in ("elbo", "wake_p_loss", "wake_q_loss", "sleep_loss")},
            "budget": self.budget,
        }  # fmt: skip
        _append_jsonl(self.log_path, record)
        valid = "" if scored is None else f", valid log p(x) (k={self.k_valid}) {scored:.2f}"
        print(
            f"{self.row} epoch {self.epochs_done}/{self.epochs}: train ELBO {record['elbo']}, "
            f"wake-p loss {record['wake_p_loss']}{valid}, {self.train_seconds / 60:.1f} min of training",
            flush=True,
        )
        if self.out_of_time() and self.epochs_done < self.epochs:
            print(f"{self.row}: {self.seconds_limit / 60:g} minutes of training reached, stopping", flush=True)
            self.model.stop_training = True


class Backup(AtomicBackupAndRestore):
    """The atomic epoch-end checkpoint, with the row's training seconds in its metadata."""

    def __init__(self, backup_dir, progress):
        super().__init__(backup_dir)
        self.progress = progress

    def extra_metadata(self):
        return {"train_seconds": self.progress.train_seconds, "valid_log_px": self.progress.valid_log_px}


def _load_weights(model, path):
    """Weights (and optimizer state) saved by ``save_weights``/the backup, into a compiled model."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _same_but_minutes(earlier, budget):
    """Whether two budgets differ at most in ``--minutes``."""
    return all(earlier.get(key) == budget.get(key) for key in BUDGET if key != "minutes")


def _extends(earlier, budget):
    """Whether ``budget`` continues ``earlier``: the same run with a larger ``--minutes`` (or none)."""
    if not _same_but_minutes(earlier, budget) or earlier.get("minutes") is None:
        return False
    return budget.get("minutes") is None or budget["minutes"] > earlier["minutes"]


def _continue_from_trained(checkpoint, trained_info, trained_weights):
    """Turn a row stopped by its time limit into the epoch-end checkpoint ``fit`` resumes from.

    The constant learning rate and the ``--epochs`` limit make the longer run
    the continuation of the shorter one: its weights, optimizer state,
    finished epochs and training seconds carry over.
    """
    info = json.loads(trained_info.read_text())
    os.makedirs(checkpoint.backup_dir, exist_ok=True)
    shutil.copyfile(trained_weights, checkpoint._weights_path + ".tmp.weights.h5")
    os.replace(checkpoint._weights_path + ".tmp.weights.h5", checkpoint._weights_path)
    meta = {
        "epoch": info["epochs_done"], "batch": 0,
        "train_seconds": info["train_seconds"], "valid_log_px": info["valid_log_px"],
    }  # fmt: skip
    _write_json(pathlib.Path(checkpoint._training_metadata_path), meta)
    trained_info.unlink()
    trained_weights.unlink()


def train_row(name, architecture, k, args, data, paths):
    """Train (or resume, or reload) one row; returns ``(model, train info)``."""
    train, _, x_valid, _ = data
    budget = budget_of(args)
    keras.utils.set_random_seed(args.seed)
    model = make_model(architecture, k, args)
    if args.init == "paper":
        paper_init(model, args.seed)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=sgd_learning_rate(args), momentum=args.momentum))

    backup = paths["backup"] / name
    stamp = backup / "budget.json"
    trained_info, trained_weights = backup / "trained.json", backup / "trained.weights.h5"
    limit = None if args.minutes is None else 60.0 * args.minutes
    progress = Progress(name, paths["log"], args.epochs, limit, x_valid, args.k_valid, budget, args.valid_every)
    checkpoint = Backup(str(backup / "checkpoint"), progress)
    earlier = json.loads(stamp.read_text()) if stamp.exists() else None
    if backup.exists() and earlier != budget:
        finished = trained_info.exists() and trained_weights.exists()
        if earlier is not None and not finished and _same_but_minutes(earlier, budget):
            # Cut during training: the checkpoint continues under the new time limit.
            print(f"{name}: continuing the row cut during training, now for {args.minutes} minutes", flush=True)
        elif earlier is not None and finished and _extends(earlier, budget):
            _continue_from_trained(checkpoint, trained_info, trained_weights)
            print(f"{name}: extending the row trained for {earlier['minutes']:g} minutes", flush=True)
        else:
            print(f"{name}: the backup in {backup} is of another budget; starting the row afresh", flush=True)
            shutil.rmtree(backup)
    backup.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(budget))
    if trained_info.exists() and trained_weights.exists():
        info = json.loads(trained_info.read_text())
        _load_weights(model, str(trained_weights))
        print(f"{name}: trained earlier ({info['epochs_done']} epochs), evaluating again", flush=True)
        return model, info

    saved = checkpoint.saved_metadata()
    if saved:
        progress.train_seconds = float(saved.get("train_seconds", 0.0))
        progress.epochs_done = int(saved["epoch"])
        progress.valid_log_px = saved.get("valid_log_px")
        print(f"{name}: resumed after epoch {progress.epochs_done} ({progress.train_seconds / 60:.1f} min)", flush=True)
    if saved and (progress.epochs_done >= args.epochs or progress.out_of_time()):
        _load_weights(model, checkpoint._weights_path)  # Cut between its last epoch and the end of fit.
    else:
        model.fit(train, epochs=args.epochs, callbacks=[progress, checkpoint], verbose=0)
    info = {
        "epochs_done": progress.epochs_done,
        "train_seconds": progress.train_seconds,
        "valid_log_px": progress.valid_log_px,
    }
    tmp = backup / "trained.tmp.weights.h5"
    model.save_weights(str(tmp))
    os.replace(tmp, trained_weights)
    _write_json(trained_info, info)
    return model, info


def run_row(name, architecture, k, args, data, paths):
    gflops = matmul_gflops()
    model, info = train_row(name, architecture, k, args, data, paths)
    if args.save_models:
        model.save(paths["json"].parent / f"{paths['json'].stem}_{name}.keras")
    x_test = data[3]
    print(f"{name}: test log p(x) with k = {args.k_eval} on {len(x_test)} images ...", flush=True)
    start = time.perf_counter()
    metrics = evaluation.evaluate_model(
        model, x_test, k=args.k_eval, seed=args.seed, batch_size=args.eval_batch_size, verbose=args.verbose
    )
    eval_seconds = time.perf_counter() - start
    paper = PAPER.get(architecture, {})
    paper_log_px = args.paper_log_px if args.paper_log_px is not None else paper.get("log_px")
    verified = args.paper_log_px is not None or paper.get("verified", False)
    return {
        "row": name,
        "architecture": architecture,
        "latent_dims": metrics["latent_dims"],
        "k_train": k,
        "epochs_done": info["epochs_done"],
        "train_seconds": info["train_seconds"],
        "valid_log_px": info["valid_log_px"],
        "test_log_px": metrics["log_px"],
        "test_log_px_stderr": metrics["log_px_stderr"],
        "test_log_px_mc_stderr": metrics["log_px_mc_stderr"],
        "test_images": metrics["n_examples"],
        "k_eval": args.k_eval,
        "test_binarization": f"static, seed {datasets.TEST_BINARIZATION_SEED}",
        "test_elbo": metrics["elbo"],
        "active_units": metrics["active_units"],
        "paper_log_px": paper_log_px,
        "paper_verified": bool(verified),
        "paper_source": "--paper-log-px" if args.paper_log_px is not None else paper.get("source"),
        "gap": None if paper_log_px is None else metrics["log_px"] - paper_log_px,
        "sgd_learning_rate": sgd_learning_rate(args),
        "eval_seconds": eval_seconds,
        "machine_gflops": round(gflops, 1),
        "budget": budget_of(args),
    }


def budget_line(args, n_train, n_valid, n_test):
    limit = f" or {args.minutes:g} minutes of training, whichever comes first" if args.minutes is not None else ""
    return (
        f"Budget: {args.epochs} epochs{limit}; {n_train} training images ({args.binarization} binarisation, "
        f"seed {args.seed}), batch {args.batch_size}, SGD(learning rate {sgd_learning_rate(args):g}, momentum "
        f"{args.momentum:g}) = the paper's lr {args.lr:g} on batch-summed gradients; {args.init} initialisation; "
        f"recognition delay {args.recognition_delay} steps; validation log p(x) with k = {args.k_valid} on "
        f"{n_valid} held-out training images; test log p(x) with k = {args.k_eval} on {n_test} test images "
        f"(static binarisation, seed {datasets.TEST_BINARIZATION_SEED}). Machine: {os.cpu_count()} CPUs, "
        f"{platform.machine()}, Python {platform.python_version()}, Keras {keras.__version__}."
    )


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def markdown(rows, header):
    lines = [
        "# Reweighted wake-sleep on MNIST: keras-vae against Bornschein & Bengio (2015)",
        "",
        header,
        "",
        "SBN/SBN: every conditional of p and q is one sigmoid layer; architecture top layer first. log p(x): mean "
        "over test images ± standard error over images. Active units per layer, bottom first "
        "(Cov_x E_q[u] > 0.01). Paper numbers marked ? are not verified against the paper's text.",
        "",
        "| row | K | epochs | test log p(x) | k eval | test images | paper | gap | test ELBO | active units "
        "| valid log p(x) | train (min) | eval (s) | machine GFLOP/s |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        paper = _fmt(r["paper_log_px"], ".2f") + ("" if r["paper_verified"] or r["paper_log_px"] is None else " ?")
        lines.append(
            f"| {r['row']} | {r['k_train']} | {r['epochs_done']} | {r['test_log_px']:.2f} ± "
            f"{r['test_log_px_stderr']:.2f} | {r['k_eval']} | {r['test_images']} | {paper} | {_fmt(r['gap'], '+.2f')} "
            f"| {r['test_elbo']:.2f} | {', '.join(str(u) for u in r['active_units'])} | "
            f"{_fmt(r['valid_log_px'], '.2f')} | {r['train_seconds'] / 60:.1f} | {r['eval_seconds']:.0f} | "
            f"{r['machine_gflops']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def training_runs(records, row):
    """The log's runs of ``row``: lists of records by epoch, a new run at every fresh start (epoch 1).

    A run cut and resumed, or extended by a larger ``--minutes``, stays one
    run (its later records carry the new budget); a record repeated by a
    resume replaces the earlier one of its epoch.
    """
    runs = []
    for record in records:
        if record.get("row") != row:
            continue
        if record["epoch"] == 1 or not runs:
            runs.append({})
        runs[-1][record["epoch"]] = record
    return [[run[e] for e in sorted(run)] for run in runs]


def plot_curve(log_path, png_path, rows, k_valid):
    """Validation log p(x) against minutes of training for the run of each of ``rows``, their test log p(x) as
    markers and the paper's figure as a dotted line; written to ``png_path``.

    Args:
        log_path: the ``.log`` of per-epoch records.
        png_path: the image to write.
        rows: finished rows (of one configuration; their time limits may differ).
        k_valid: importance samples of the logged validation log p(x).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = _read_jsonl(log_path)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    plotted = False
    for name in sorted({r["row"] for r in rows}):
        finals = sorted((r for r in rows if r["row"] == name), key=lambda r: r["train_seconds"])
        runs = training_runs(records, name)
        if not runs:
            continue
        run = runs[-1]  # the run the latest rows come from
        scored = [r for r in run if r.get("valid_log_px") is not None]
        line = ax.plot(
            [r["train_seconds"] / 60 for r in scored], [r["valid_log_px"] for r in scored], lw=1,
            label=f"{name}: validation log p(x), k = {k_valid}",
        )  # fmt: skip
        color = line[0].get_color()
        for r in finals:
            if r["epochs_done"] <= run[-1]["epoch"]:
                ax.errorbar(r["train_seconds"] / 60, r["test_log_px"], yerr=r["test_log_px_stderr"], fmt="o",
                            color=color, ms=4, capsize=2)  # fmt: skip
        ax.plot([], [], "o", color=color, label=f"{name}: test log p(x), k = {finals[-1]['k_eval']}")
        paper = finals[-1].get("paper_log_px")
        if paper is not None:
            mark = "" if finals[-1].get("paper_verified") else " (unverified)"
            ax.axhline(paper, color="gray", ls=":", lw=1)
            ax.annotate(f"paper {paper:.2f}{mark}", (0, paper), fontsize=8, color="gray", va="bottom")
        plotted = True
    if not plotted:
        plt.close(fig)
        return
    ax.set_xlabel("training time (minutes, this machine)")
    ax.set_ylabel("nats per image")
    ax.set_ylim(bottom=max(ax.get_ylim()[0], -110))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--rows", default="10-200-200", help="comma-separated architectures, top layer first")
    parser.add_argument("--k-train", default="10", help="training samples K, comma-separated for several rows")
    parser.add_argument("--epochs", type=int, default=1000, help="epochs per row (their cap: 1000)")
    parser.add_argument("--minutes", type=float, default=None, help="stop a row after this much training time")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3, help="the paper's learning rate (batch-summed gradients)")
    parser.add_argument("--momentum", type=float, default=0.95)
    parser.add_argument("--init", choices=("paper", "keras"), default="paper")
    parser.add_argument("--recognition-delay", type=int, default=0, help="steps before q learns (paper: 0)")
    parser.add_argument("--binarization", choices=("static", "dynamic"), default="static")
    parser.add_argument("--limit-train", type=int, default=50000, help="first N training images (paper: 50000)")
    parser.add_argument("--valid-images", type=int, default=1000, help="held-out training images for validation")
    parser.add_argument("--k-valid", type=int, default=100, help="importance samples of the validation log p(x)")
    parser.add_argument(
        "--valid-every", type=int, default=1, help="score the validation images every this many epochs (and the last)"
    )
    parser.add_argument("--k-eval", type=int, default=5000, help="importance samples of the test log p(x)")
    parser.add_argument("--limit-test", type=int, default=None, help="score the first N test images (all: 10000)")
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--paper-log-px", type=float, default=None, help="the paper's test log p(x) for these rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "rws_bornschein.json"), help="rows (JSON); .md etc. beside")
    parser.add_argument("--save-models", action="store_true", help="save each trained model beside --out")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help="progress of the log p(x)")
    args = parser.parse_args(argv)
    try:
        architectures = [a.strip() for a in args.rows.split(",") if a.strip()]
        for architecture in architectures:
            parse_architecture(architecture)
        ks = [int(k) for k in args.k_train.split(",") if k.strip()]
    except ValueError as err:
        parser.error(str(err))
    if not architectures or not ks or min(ks) < 1:
        parser.error("--rows and --k-train need at least one architecture and K >= 1")
    positive = ("epochs", "batch_size", "k_valid", "k_eval", "eval_batch_size", "valid_every")
    if any(getattr(args, name) < 1 for name in positive) or args.valid_images < 0 or args.recognition_delay < 0:
        parser.error("--epochs, --batch-size, --k-valid, --k-eval must be >= 1; --valid-images, "
                     "--recognition-delay >= 0")  # fmt: skip
    if args.minutes is not None and args.minutes <= 0:
        parser.error("--minutes must be > 0")
    if not 0 <= args.momentum < 1 or args.lr <= 0:
        parser.error("--momentum must be in [0, 1) and --lr > 0")
    try:
        args.data_path = datasets.local_path("mnist", args.data_path, required=True)
        data = load_data(args)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out.with_suffix(".json"),
        "md": out.with_suffix(".md"),
        "log": out.with_suffix(".log"),
        "png": out.parent / f"{out.stem}_curve.png",
        "backup": out.parent / f"{out.stem}_backup",
    }
    rows = json.loads(paths["json"].read_text()) if paths["json"].exists() else []
    budget = budget_of(args)
    _, n_train, x_valid, x_test = data
    header = budget_line(args, n_train, 0 if x_valid is None else len(x_valid), len(x_test))
    print(header, flush=True)
    failed = []
    for architecture in architectures:
        for k in ks:
            name = row_name(architecture, k)
            same = [
                r for r in rows
                if r["row"] == name and r.get("budget") == budget
                and r.get("k_eval") == args.k_eval and r.get("test_images") == len(x_test)
            ]  # fmt: skip
            if same:
                print(f"{name}: already in {paths['json']} with this budget, skipped", flush=True)
                continue
            print(f"{name}: latent layers {parse_architecture(architecture)} (bottom first), K = {k}", flush=True)
            try:
                row = run_row(name, architecture, k, args, data, paths)
            except FloatingPointError as err:  # keras-vae's StopOnNaN: the row is not recorded.
                print(f"{name}: failed, {err}", flush=True)
                failed.append(name)
                continue
            rows = [
                r for r in rows
                if not (r["row"] == name and r.get("budget") == budget and r.get("k_eval") == args.k_eval
                        and r.get("test_images") == len(x_test))
            ] + [row]  # fmt: skip
            _write_json(paths["json"], rows)
            if row["epochs_done"] >= args.epochs:  # A row stopped by --minutes is kept to be extended.
                shutil.rmtree(paths["backup"] / name, ignore_errors=True)
            paper = "" if row["paper_log_px"] is None else f" (paper {row['paper_log_px']:.2f}, gap {row['gap']:+.2f})"
            print(
                f"{name}: test log p(x) {row['test_log_px']:.2f} ± {row['test_log_px_stderr']:.2f}{paper}, "
                f"ELBO {row['test_elbo']:.2f}, active units {row['active_units']}, {row['epochs_done']} epochs in "
                f"{row['train_seconds'] / 60:.1f} min, eval {row['eval_seconds']:.0f} s",
                flush=True,
            )
    if paths["backup"].exists() and not any(paths["backup"].iterdir()):
        paths["backup"].rmdir()
    current = [r for r in rows if r.get("budget") == budget]  # The table is of this run's budget.
    if current:
        table = markdown(current, header)
        paths["md"].write_text(table)
        print(table)
        # The curve: this configuration's rows, whatever their time limits.
        plot_curve(paths["log"], paths["png"], [r for r in rows if _same_but_minutes(r["budget"], budget)],
                   args.k_valid)  # fmt: skip
        print(f"wrote {paths['json']}, {paths['md']}, {paths['png']} and {paths['log']}")
    if failed:
        print(f"failed rows (not recorded): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
