"""Reproduce Table 1 (MNIST) of Burda, Grosse & Salakhutdinov (2015), IWAE.

Rows: {1, 2} stochastic layers x {VAE, IWAE} x k in {1, 5, 50}:

- 1 layer: 784-200-200-[50]-200-200-784, tanh, Gaussian latent, Bernoulli
  pixels (``keras_vae.presets`` ``"burda_1layer"``);
- 2 layers: 784-200-200-[100]-100-100-[50] (and mirrored generative
  networks; ``"burda_2layer"``);
- VAE rows maximise the ELBO with k samples (``objective="elbo",
  n_samples=k``, analytic KL of the top layer); IWAE rows the k-sample
  importance-weighted bound (``objective="iwae", n_samples=k``).

Data: the dynamically binarised MNIST training set (a fresh Bernoulli draw of
every image each epoch); the test set binarised once with a fixed seed
(``keras_vae.datasets.binarize_test``). Every trained model is scored by the
importance-sampled log p(x) with k = 5000 (``keras_vae.evaluation``), the
test ELBO and the active units (Cov_x E_q[u] > 0.01) of each layer.

Two schedules, both Adam(beta1=0.9, beta2=0.999, epsilon=1e-4):

- ``--schedule paper`` (default): the paper's, batch 20, 8 passes i = 0..7 of
  3^i epochs at learning rate 0.001 * 10^(-i/7), 3280 epochs in all (days of
  CPU; ``--passes P`` keeps the first P passes);
- ``--schedule fast``: batch 100, the learning rate held at ``--lr-start``
  (1e-3) for the first ``--lr-hold`` fraction of the ``--epochs`` epochs
  (default 0), then decayed exponentially to ``--lr-end`` (1e-4) at the last.
  ``--batch-size 100,50@0.5,25@0.8`` changes the batch size during training
  (here 100, then 50 from half the epochs, 25 from 80%).

Either schedule can evaluate an exponential moving average of the weights
(``--ema 0.999``: Keras's optimizer ``use_ema``; training itself is unchanged),
and the VAE rows can warm the KL term up (``--kl-warmup 100``: its weight rises
linearly from 0 to 1 over the first 100 epochs, the model's
``kl_warmup_steps``; the paper has none). Two-layer runs need it: without, the
data stream alone decided whether training stalled early (training ELBO after
10 epochs from -124.8 to -165.0 over three data seeds; with a 5-epoch warm-up
-122.4 and -123.0 after 12 epochs on the two streams that stalled).

Examples::

    python benchmarks/reproduce_burda.py --schedule fast --rows 1L-VAE-k1 --epochs 800
    python benchmarks/reproduce_burda.py --schedule fast --rows 1L-VAE-k1 --epochs 1100 --lr-hold 0.3 --lr-end 3e-5
    python benchmarks/reproduce_burda.py --schedule fast --rows 1L-VAE-k1 --epochs 1100 --batch-size 50 \
        --lr-hold 0.3 --lr-end 3e-5 --ema 0.999
    python benchmarks/reproduce_burda.py --schedule fast --rows 1L-VAE-k1 --epochs 900 --batch-size 100,50@0.5,25@0.8 \
        --lr-hold 0.3 --lr-end 3e-5 --ema 0.999
    python benchmarks/reproduce_burda.py --schedule fast --rows 2L-VAE-k1 --epochs 2800 --lr-hold 0.3 --lr-end 3e-5 \
        --kl-warmup 100
    python benchmarks/reproduce_burda.py --passes 2 --batch-size 100 --rows '1L-*' --limit-test 1000

``--rows`` takes comma-separated names or shell patterns (``1L-VAE-k1``,
``'2L-IWAE-*'``, ``all``). Files, beside ``--out`` (default
``benchmarks/results/reproduce_burda.md`` or ``burda_fast.md``):

- ``<out>.json``: a list of rows ``{row, layers, objective, k, epochs,
  train_seconds, test_log_px, test_log_px_stderr, test_images, k_eval, ...}``,
  rewritten after every row;
- ``<out>.md``: the table beside the paper's numbers;
- ``<out>.log``: one line per epoch (training ELBO, learning rate, seconds);
- ``<out>_curve.jsonl`` and ``<out>_curve.png``: test ELBO (all test images,
  k = 1) every ``--curve-every`` epochs against minutes of training.

Every run resumes: rows already in the JSON with the same budget are skipped,
and a row cut in the middle continues from its last finished epoch (weights
and optimizer in ``<out>_backup/<row>/``, written atomically), counting the
training seconds of the earlier attempts. Training time excludes the test ELBO
of the learning curve; the row records ``machine_gflops``, a float32 matrix
multiply measured before it, because this machine's speed varies by a factor
of three from day to day.
"""

import argparse
import fnmatch
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
from keras_vae import presets
from keras_vae._keras_compat import AtomicBackupAndRestore

# Test log-likelihoods (nats) reported in Burda et al. (2015), Table 1, MNIST.
PAPER = {
    (1, "VAE", 1): -86.76, (1, "VAE", 5): -86.47, (1, "VAE", 50): -86.35,
    (1, "IWAE", 1): -86.76, (1, "IWAE", 5): -85.54, (1, "IWAE", 50): -84.78,
    (2, "VAE", 1): -85.33, (2, "VAE", 5): -85.01, (2, "VAE", 50): -84.78,
    (2, "IWAE", 1): -85.33, (2, "IWAE", 5): -83.89, (2, "IWAE", 50): -82.90,
}  # fmt: skip
ROWS = [f"{layers}L-{obj}-k{k}" for layers in (1, 2) for obj in ("VAE", "IWAE") for k in (1, 5, 50)]
# What must match for a saved row (or a backup) to count as the same run.
BUDGET = (
    "schedule", "passes", "epochs", "lr_start", "lr_end", "lr_hold", "batch_size", "ema", "kl_warmup", "limit_train",
    "seed",
)  # fmt: skip
#: Budget keys recorded only when set (rows run before they existed stay the same budget).
OPTIONAL_BUDGET = ("kl_warmup",)
#: MNIST training images.
N_TRAIN = 60000


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


def make_model(layers, objective, k, seed, kl_warmup_steps=0):
    """The paper's architecture for one row (a VAE row's KL weight rising from 0 to 1 over ``kl_warmup_steps``)."""
    extra = {"kl_warmup_steps": kl_warmup_steps} if kl_warmup_steps else {}
    return presets.from_preset(
        f"burda_{layers}layer", objective="elbo" if objective == "VAE" else "iwae", n_samples=k, seed=seed, **extra
    )


def schedule(passes):
    """The paper's learning rate per epoch: pass i is 3^i epochs at 0.001 * 10^(-i/7)."""
    rates = []
    for i in range(passes):
        rates += [1e-3 * 10 ** (-i / 7)] * 3**i
    return rates


def fast_schedule(epochs, lr_start=1e-3, lr_end=1e-4, lr_hold=0.0):
    """Learning rate per epoch: ``lr_start`` for the first ``lr_hold`` fraction of the epochs, then decayed
    exponentially to ``lr_end`` at the last epoch."""
    held = min(int(round(lr_hold * epochs)), epochs - 1)
    decay = epochs - held
    if decay == 1:
        return [lr_start] * held + [lr_end if epochs > 1 else lr_start]
    return [lr_start] * held + [lr_start * (lr_end / lr_start) ** (e / (decay - 1)) for e in range(decay)]


def learning_rates(args):
    if args.schedule == "fast":
        return fast_schedule(args.epochs, args.lr_start, args.lr_end, args.lr_hold)
    return schedule(args.passes)


def budget_of(args):
    return {key: getattr(args, key) for key in BUDGET if key not in OPTIONAL_BUDGET or getattr(args, key)}


def kl_warmup_steps(args):
    """``--kl-warmup`` epochs in optimizer steps, at the first batch size."""
    if not args.kl_warmup:
        return 0
    size = parse_batch_sizes(args.batch_size)[0][0]
    return int(round(args.kl_warmup * math.ceil((args.limit_train or N_TRAIN) / size)))


def matmul_gflops(n=1000, repeats=20):
    """Float32 matrix-multiply speed of this machine now (GFLOP/s), a yardstick for the timings."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def parse_batch_sizes(text):
    """``"100"`` -> ``[(100, 0.0)]``; ``"100,50@0.5,25@0.8"`` -> ``[(100, 0.0), (50, 0.5), (25, 0.8)]``.

    Each entry after the first is a batch size and the fraction of the epochs
    at which it takes over. Raises ValueError for anything else, or for sizes
    that do not each divide the ones before them (the small batches of the
    pipeline are grouped into the larger ones).
    """
    phases = []
    for i, part in enumerate(str(text).split(",")):
        size, _, start = part.partition("@")
        if (i == 0) != (start == ""):
            raise ValueError(f"--batch-size {text!r}: the first size has no @fraction, every later one has one")
        try:
            phase = (int(size), float(start or 0))
        except ValueError:
            raise ValueError(f"--batch-size {text!r}: {part!r} is not SIZE or SIZE@FRACTION") from None
        if phase[0] < 1 or not 0 <= phase[1] < 1 or (phases and phase[1] <= phases[-1][1]):
            raise ValueError(f"--batch-size {text!r}: sizes >= 1, fractions in (0, 1) and increasing")
        if phases and phases[-1][0] % phase[0]:
            raise ValueError(f"--batch-size {text!r}: each size must divide the one before it")
        phases.append(phase)
    return phases


def phase_epochs(phases, epochs):
    """``[(batch size, first epoch, end epoch)]`` of each phase with epochs (end exclusive)."""
    starts = [round(start * epochs) for _, start in phases] + [epochs]
    return [(size, starts[i], starts[i + 1]) for i, (size, _) in enumerate(phases) if starts[i + 1] > starts[i]]


class KeepTrainedWeights(keras.callbacks.Callback):
    """Keeps ``fit`` from replacing the trained weights by their moving average at its end.

    ``fit`` ends by writing the optimizer's moving average (``use_ema``) into
    the model; a training phase followed by another must hand on the trained
    weights instead. After the phase's last epoch the average is switched
    off; switch it back on (``optimizer.use_ema = True``) before the next
    ``fit``.
    """

    def __init__(self, end_epoch):
        super().__init__()
        self.end_epoch = end_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.end_epoch:
            self.model.optimizer.use_ema = False


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


def _read_jsonl(path):
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            continue
    return rows


def _append_jsonl(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


class RowProgress(keras.callbacks.Callback):
    """Training seconds (kept across resumes), one log line per epoch, and the test-ELBO curve.

    Args:
        row: row name, written in every record.
        log_path: ``.log`` file, one JSON line per finished epoch with the
            training seconds of the whole row so far.
        curve_path: ``_curve.jsonl`` file of test-ELBO points.
        x_test: ``[N, 784]`` test images for the curve.
        curve_every: epochs between curve points (and at the last epoch); 0 = none.
        epochs: epochs of the row.
        budget: dict stored with every record; earlier records of another
            budget are ignored.
    """

    def __init__(self, row, log_path, curve_path, x_test, curve_every, epochs, budget):
        super().__init__()
        self.row, self.log_path, self.curve_path = row, log_path, curve_path
        self.x_test, self.curve_every, self.epochs, self.budget = x_test, curve_every, epochs, budget
        self.train_seconds = 0.0

    def _previous(self, path):
        return [r for r in _read_jsonl(path) if r.get("row") == self.row and r.get("budget") == self.budget]

    def restore(self, finished):
        """Continue the training seconds of a row whose checkpoint holds ``finished`` epochs."""
        earlier = [r for r in self._previous(self.log_path) if r["epoch"] == finished]
        self.train_seconds = earlier[-1]["train_seconds"] if earlier and finished else 0.0
        if finished:
            print(f"{self.row}: resumed after epoch {finished} ({self.train_seconds:.0f} s of training)", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self._start
        logs = logs or {}
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        record = {
            "row": self.row, "epoch": epoch + 1, "train_seconds": round(self.train_seconds, 3),
            "train_elbo": float(logs.get("elbo", logs.get("iwae_bound", float("nan")))),
            "learning_rate": lr, "steps": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "budget": self.budget,
        }  # fmt: skip
        _append_jsonl(self.log_path, record)
        print(
            f"{self.row} epoch {epoch + 1}/{self.epochs}: train ELBO {record['train_elbo']:.2f}, "
            f"lr {lr:.2e}, {self.train_seconds / 60:.1f} min",
            flush=True,
        )
        last = epoch + 1 == self.epochs
        if self.curve_every and ((epoch + 1) % self.curve_every == 0 or last):
            metrics = self.model.evaluate(self.x_test, batch_size=1000, verbose=0, return_dict=True)
            point = {
                "row": self.row, "epoch": epoch + 1, "train_minutes": round(self.train_seconds / 60, 3),
                "test_elbo": float(metrics["elbo"]), "budget": self.budget,
            }  # fmt: skip
            _append_jsonl(self.curve_path, point)
            print(f"{self.row} epoch {epoch + 1}: test ELBO {point['test_elbo']:.2f}", flush=True)


def run_row(name, args, x_test, paths):
    layers, objective, k = parse_row(name)
    budget = budget_of(args)
    keras.utils.set_random_seed(args.seed)
    gflops = matmul_gflops()
    model = make_model(layers, objective, k, args.seed, kl_warmup_steps(args))
    rates = learning_rates(args)
    averaged = {"use_ema": True, "ema_momentum": args.ema} if args.ema else {}
    model.compile(optimizer=keras.optimizers.Adam(rates[0], beta_1=0.9, beta_2=0.999, epsilon=1e-4, **averaged))
    backup = paths["backup"] / name
    stamp = backup / "budget.json"
    if backup.exists() and (not stamp.exists() or json.loads(stamp.read_text()) != budget):
        print(f"{name}: the backup in {backup} is of another budget; starting the row afresh", flush=True)
        shutil.rmtree(backup)
    backup.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(budget))
    progress = RowProgress(name, paths["log"], paths["curve"], x_test, args.curve_every, len(rates), budget)
    # One fit per batch size: a phase ended before a cut is not run again, the
    # checkpoint (kept to the end of the row) restores the one in progress.
    checkpoint = str(backup / "checkpoint")
    finished = (AtomicBackupAndRestore(checkpoint).saved_metadata() or {}).get("epoch", 0)
    progress.restore(finished)
    phases = phase_epochs(parse_batch_sizes(args.batch_size), len(rates))
    for i, (size, first, end) in enumerate(phases):
        last = i == len(phases) - 1
        if end <= finished and not last:
            continue
        train, _, _ = load_data(args.data_path, size, args.limit_train, 1, args.seed + i)
        callbacks = [
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: rates[epoch]),
            progress,
            AtomicBackupAndRestore(checkpoint, delete_checkpoint=False),
        ]
        if not last and args.ema:
            callbacks.append(KeepTrainedWeights(end))
        model.fit(train, initial_epoch=first, epochs=end, callbacks=callbacks, verbose=0, shuffle=False)
        model.optimizer.use_ema = bool(args.ema)
    if args.save_models:
        model.save(paths["out"].parent / f"{paths['out'].stem}_{name}.keras")

    start = time.perf_counter()
    metrics = evaluation.evaluate_model(
        model, x_test, k=args.k_eval, seed=args.seed, batch_size=args.eval_batch_size, verbose=args.verbose
    )
    eval_seconds = time.perf_counter() - start
    shutil.rmtree(backup, ignore_errors=True)
    paper = PAPER[(layers, objective, k)]
    return {
        "row": name,
        "layers": layers,
        "objective": objective,
        "k": k,
        "epochs": len(rates),
        "train_seconds": progress.train_seconds,
        "test_log_px": metrics["log_px"],
        "test_log_px_stderr": metrics["log_px_stderr"],
        "test_log_px_mc_stderr": metrics["log_px_mc_stderr"],
        "test_images": metrics["n_examples"],
        "k_eval": args.k_eval,
        "test_binarization": f"static, seed {datasets.TEST_BINARIZATION_SEED}",
        "paper_log_px": paper,
        "difference": metrics["log_px"] - paper,
        "test_elbo": metrics["elbo"],
        "active_units": metrics["active_units"],
        "latent_dims": metrics["latent_dims"],
        "eval_seconds": eval_seconds,
        "machine_gflops": round(gflops, 1),
        "budget": budget,
    }


def batch_tag(batch_size):
    """``"100,50@0.5"`` -> ``"100, 50 from 50%"``."""
    phases = parse_batch_sizes(batch_size)
    return ", ".join([str(phases[0][0])] + [f"{size} from {start:.0%}" for size, start in phases[1:]])


def budget_tag(budget):
    """One row's training budget in a few words (the table's "schedule" column and the curve's legend)."""
    if budget["schedule"] == "paper":
        text = f"{budget['passes']} of 8 passes, batch {budget['batch_size']}"
    else:
        hold = budget.get("lr_hold") or 0
        held = f"{budget['lr_start']:g} for {hold:.0%}, then " if hold else ""
        text = f"batch {batch_tag(budget['batch_size'])}, lr {held}{budget['lr_start']:g} -> {budget['lr_end']:g}"
    if budget.get("ema"):
        text += f", EMA {budget['ema']:g}"
    if budget.get("kl_warmup"):
        text += f", KL warm-up {budget['kl_warmup']:g} epochs"
    return text


def budget_line(args, n_train, n_test):
    if args.schedule == "fast":
        plan = (
            "the epochs of each row, learning rate held at its first value for a fraction of them (the "
            "schedule column), then decayed exponentially to its last value at the last epoch; EMA: the "
            "weights evaluated are an exponential moving average of the trained ones with that momentum"
        )
    else:
        plan = "pass i of 3^i epochs at learning rate 1e-3 * 10^(-i/7); 8 passes = 3280 epochs, the paper's"
    return (
        f"Budget ({args.schedule} schedule): {plan}; {n_train} dynamically binarised training images, "
        f"Adam(0.9, 0.999, eps 1e-4); test log p(x) with k = {args.k_eval} on "
        f"{n_test} statically binarised test images (seed {datasets.TEST_BINARIZATION_SEED}). Machine: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, Keras {keras.__version__}."
    )


def markdown(rows, args, n_train, n_test):
    lines = [
        "# Burda et al. (2015), Table 1 (MNIST): keras-vae against the paper",
        "",
        budget_line(args, n_train, n_test),
        "",
        "log p(x): mean over test images ± standard error over images; the paper's values are after "
        "3280 epochs at batch 20 with k = 5000 on all 10,000 test images. Active units: per stochastic layer "
        "(bottom + top), Cov_x(E_q[u]) > 0.01. Machine speed: float32 matrix multiply before the row.",
        "",
        "| row | epochs | schedule | test log p(x) | paper | difference | test ELBO | active units | train (min) "
        "| eval (s) | machine GFLOP/s |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        units = " + ".join(str(u) for u in r["active_units"])
        lines.append(
            f"| {r['row']} | {r['epochs']} | {budget_tag(r['budget'])} | "
            f"{r['test_log_px']:.2f} ± {r['test_log_px_stderr']:.2f} | "
            f"{r['paper_log_px']:.2f} | {r['difference']:+.2f} | {r['test_elbo']:.2f} | {units} | "
            f"{r['train_seconds'] / 60:.1f} | {r['eval_seconds']:.0f} | {r.get('machine_gflops', float('nan')):.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_curve(curve_path, png_path, rows, current=None):
    """Test ELBO against minutes of training, one line per finished row (and per row of the ``current`` budget, in
    progress), final log p(x) as markers, the paper's figures as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _read_jsonl(curve_path)
    if not points:
        return
    fig, ax = plt.subplots(figsize=(8, 7))
    shown = {json.dumps(r.get("budget"), sort_keys=True) for r in rows} | {json.dumps(current, sort_keys=True)}
    runs = {(p["row"], json.dumps(p.get("budget"), sort_keys=True)) for p in points}
    runs = {run for run in runs if run[1] in shown}
    for name, key in sorted(runs, key=lambda run: (ROWS.index(run[0]), run[1])):
        mine = [p for p in points if p["row"] == name and json.dumps(p.get("budget"), sort_keys=True) == key]
        mine = list({p["epoch"]: p for p in mine}.values())  # last record of each epoch
        mine.sort(key=lambda p: p["epoch"])
        budget = mine[-1].get("budget") or {}
        tag = f"{name}, {budget['epochs']} ep, {budget_tag(budget)}" if budget.get("schedule") == "fast" else name
        minutes, elbos = [p["train_minutes"] for p in mine], [p["test_elbo"] for p in mine]
        line = ax.plot(minutes, elbos, lw=1, label=f"{tag}: test ELBO")
        done = [r for r in rows if r["row"] == name and json.dumps(r.get("budget"), sort_keys=True) == key]
        if done:
            color = line[0].get_color()
            r = done[-1]
            label = f"{tag}: log p(x), k={r['k_eval']}"
            ax.plot(r["train_seconds"] / 60, r["test_log_px"], "o", color=color, label=label)
    for name in sorted({p["row"] for p in points}, key=ROWS.index):
        ax.axhline(PAPER[parse_row(name)], color="gray", ls=":", lw=1)
        ax.annotate(f"paper {name}", (0, PAPER[parse_row(name)]), fontsize=7, color="gray", va="bottom")
    ax.set_xlabel("training time (minutes, this machine)")
    ax.set_ylabel("nats per test image")
    ax.set_ylim(bottom=max(ax.get_ylim()[0], -100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def write_tables(rows, args, n_train, n_test, paths):
    """The markdown table and the learning-curve plot of every row of this schedule; returns the table."""
    same = [
        r for r in rows
        if r["budget"]["schedule"] == args.schedule and r["budget"].get("seed") == args.seed
    ]  # fmt: skip
    table = markdown(same, args, n_train, n_test)
    paths["out"].write_text(table)
    plot_curve(paths["curve"], paths["png"], same, current=budget_of(args))
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--schedule", choices=("paper", "fast"), default="paper", help="see above; default paper")
    parser.add_argument("--passes", type=int, default=8, help="paper schedule: first P passes (8 = paper)")
    parser.add_argument("--epochs", type=int, default=800, help="fast schedule: epochs (default 800)")
    parser.add_argument("--lr-start", type=float, default=1e-3, help="fast schedule: first learning rate")
    parser.add_argument("--lr-end", type=float, default=1e-4, help="fast schedule: last learning rate")
    parser.add_argument(
        "--lr-hold", type=float, default=0.0, help="fast schedule: fraction of epochs at --lr-start before decaying"
    )
    parser.add_argument(
        "--batch-size", default=None,
        help="default 20 (paper) or 100 (fast); or a schedule SIZE,SIZE@FRACTION,... such as 100,50@0.5,25@0.8 "
        "(50 from half the epochs, 25 from 80%%)",
    )  # fmt: skip
    parser.add_argument(
        "--ema", type=float, default=0.0,
        help="evaluate an exponential moving average of the weights with this momentum (e.g. 0.999); 0 = off",
    )  # fmt: skip
    parser.add_argument(
        "--kl-warmup", type=float, default=0.0,
        help="VAE rows: the KL weight rises linearly from 0 to 1 over this many epochs (kl_warmup_steps); 0 = off",
    )  # fmt: skip
    parser.add_argument("--rows", default="all", help=f"comma-separated names or patterns; {', '.join(ROWS)}")
    parser.add_argument("--k-eval", type=int, default=5000, help="importance samples of the test log p(x)")
    parser.add_argument("--limit-train", type=int, default=None, help="use the first N training images")
    parser.add_argument("--limit-test", type=int, default=None, help="score the first N test images")
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--curve-every", type=int, default=None, help="epochs between test-ELBO points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="markdown table; the other files go beside it")
    parser.add_argument("--save-models", action="store_true", help="save each trained model beside --out")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help="progress of the log p(x)")
    args = parser.parse_args(argv)
    fast = args.schedule == "fast"
    if args.batch_size is None:
        args.batch_size = 100 if fast else 20
    try:
        phases = parse_batch_sizes(args.batch_size)
    except ValueError as err:
        parser.error(str(err))
    # A single size stays an int (the budget of the rows before schedules existed).
    args.batch_size = phases[0][0] if len(phases) == 1 else args.batch_size
    if args.curve_every is None:
        args.curve_every = 25 if fast else 0
    if args.out is None:
        args.out = f"benchmarks/results/{'burda_fast' if fast else 'reproduce_burda'}.md"
    if not 0 <= args.lr_hold < 1:
        parser.error("--lr-hold must be in [0, 1)")
    if not 0 <= args.ema < 1:
        parser.error("--ema must be in [0, 1)")
    if not 1 <= args.passes <= 8:
        parser.error("--passes must be in 1..8")
    if args.epochs < 1 or args.k_eval < 1 or args.curve_every < 0:
        parser.error("--epochs, --batch-size and --k-eval must be >= 1, --curve-every >= 0")
    if not fast:
        args.epochs, args.lr_start, args.lr_end, args.lr_hold = None, None, None, None
    else:
        args.passes = None
    names = select_rows(args.rows)
    if args.kl_warmup < 0:
        parser.error("--kl-warmup must be >= 0")
    if args.kl_warmup and any(parse_row(n)[1] != "VAE" for n in names):
        parser.error("--kl-warmup weights the KL term of the VAE rows; leave it out for IWAE rows")
    try:
        args.data_path = datasets.local_path("mnist", args.data_path, required=True)
    except FileNotFoundError as err:
        parser.error(str(err))

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "out": out,
        "json": out.with_suffix(".json"),
        "log": out.with_suffix(".log"),
        "curve": out.parent / f"{out.stem}_curve.jsonl",
        "png": out.parent / f"{out.stem}_curve.png",
        "backup": out.parent / f"{out.stem}_backup",
    }
    rows = json.loads(paths["json"].read_text()) if paths["json"].exists() else []
    budget = budget_of(args)
    evaluation_budget = {"k_eval": args.k_eval, "limit_test": args.limit_test}

    first_size = parse_batch_sizes(args.batch_size)[0][0]
    _, n_train, x_test = load_data(args.data_path, first_size, args.limit_train, args.limit_test, args.seed)
    print(budget_line(args, n_train, len(x_test)), flush=True)
    for name in names:
        same = [
            r for r in rows
            if r["row"] == name and r.get("budget") == budget
            and r.get("k_eval") == args.k_eval and r.get("test_images") == len(x_test)
        ]  # fmt: skip
        if same:
            print(f"{name}: already in {paths['json']} with this budget, skipped", flush=True)
            continue
        row = run_row(name, args, x_test, paths)
        row["evaluation"] = evaluation_budget
        rows = [r for r in rows if not (r["row"] == name and r.get("budget") == budget)] + [row]
        rows.sort(key=lambda r: (ROWS.index(r["row"]), json.dumps(r.get("budget"), sort_keys=True)))
        tmp = paths["json"].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(rows, indent=2))
        os.replace(tmp, paths["json"])
        write_tables(rows, args, n_train, len(x_test), paths)
        print(
            f"{name}: test log p(x) {row['test_log_px']:.2f} ± {row['test_log_px_stderr']:.2f} "
            f"(paper {row['paper_log_px']:.2f}), ELBO {row['test_elbo']:.2f}, active units {row['active_units']}, "
            f"train {row['train_seconds'] / 60:.1f} min, eval {row['eval_seconds']:.0f} s",
            flush=True,
        )
    if rows:
        print(write_tables(rows, args, n_train, len(x_test), paths))
        print(f"wrote {out}, {paths['json']}, {paths['log']} and {paths['curve']}")
    return [r for r in rows if r.get("budget") == budget]


if __name__ == "__main__":
    main(sys.argv[1:])
