"""The one-layer VAE of Burda et al. (2015) in plain JAX, on ``reproduce_burda.py``'s fast schedule.

An independent implementation of the row ``1L-VAE-k1`` of
``reproduce_burda.py --schedule fast``, to set beside keras-vae at the same
budget. The model, its loss and the importance-sampled log p(x) are those of
``_jax_reference.py`` (``init_params("vae")``, ``loss``, ``vae_log_weights``
through ``JaxEvaluator``): 784-200-200-[50]-200-200-784, tanh, Gaussian
latent with ``softplus(raw) + 1e-4`` scales, Bernoulli pixels, one latent
sample and the analytic KL per image.

Training: optax Adam(b1 0.9, b2 0.999, eps 1e-4) with its learning rate as an
argument of the step (``optax.inject_hyperparams``), one ``jax.jit``-compiled
``lax.scan`` per epoch (shuffle, a fresh Bernoulli draw of every batch, the
steps), the learning rate of each epoch from ``reproduce_burda.fast_schedule``
(``--lr-start`` held for the first ``--lr-hold`` fraction of the epochs, then
decayed exponentially to ``--lr-end`` at the last). With ``--ema M`` an
exponential moving average of the parameters is kept after every step as
Keras's optimizer ``use_ema`` keeps it (``average = M * average + (1 - M) *
params``, equal to the params after the first step), and the average is the
model evaluated. Data: ``keras_vae.datasets``, the training images as
intensities (binarised per batch), the test images binarised once
(``datasets.binarize_test``), as in ``reproduce_burda.load_data``.

Run beside keras-vae at the same budget::

    python benchmarks/reproduce_burda.py --schedule fast --rows 1L-VAE-k1 --epochs 930 --batch-size 50 \\
        --lr-hold 0.3 --lr-end 3e-5 --ema 0.999
    python benchmarks/burda_fast_jax.py --epochs 930 --batch-size 50 --lr-hold 0.3 --lr-end 3e-5 --ema 0.999

(the defaults of this script are that budget). Files, beside ``--out``
(default ``benchmarks/results/burda_fast_jax.json``):

- ``<out>``: a JSON list, one row per run ``{row, impl, layers, k, epochs,
  batch_size, lr_start, lr_end, lr_hold, ema, seed, train_seconds,
  first_epoch_seconds, test_log_px, test_log_px_stderr, test_elbo,
  test_images, k_eval, machine_gflops, jax_version, ...}``, rewritten
  atomically; a run whose settings are already there is skipped;
- ``<out stem>_curve.jsonl``: the test ELBO (all test images, k = 1, the
  trained parameters, not the average) every ``--curve-every`` epochs and at
  the last, against minutes of training;
- ``<out stem>_backup/state.npz``: parameters, optimizer state, average and
  epoch every ``--save-every`` epochs and at the last, written atomically; a
  rerun with the same training arguments continues from it (a backup of other
  arguments is discarded) and counts the training seconds of the earlier
  attempts; removed once the row is written.

``train_seconds`` is the wall time of all the epochs (the first one's
compilation included, and a recompilation in each resumed attempt), without
the test ELBO of the curve; ``first_epoch_seconds`` is the first epoch alone.
``machine_gflops`` is ``reproduce_burda.matmul_gflops`` measured before
training. log p(x): importance sampling with ``--k-eval`` samples on every
test image (``--limit-test N``: the first N), mean ± standard error over images
(std with ddof 1 / sqrt(N)). Needs ``pip install jax optax``.
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import time

import numpy as np

from keras_vae import datasets

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _jax_reference  # noqa: E402
from reproduce_burda import _append_jsonl  # noqa: E402
from reproduce_burda import budget_of  # noqa: E402
from reproduce_burda import fast_schedule  # noqa: E402
from reproduce_burda import load_data  # noqa: E402
from reproduce_burda import matmul_gflops  # noqa: E402

ROW = "1L-VAE-k1"
# Samples per jitted call of the log p(x) (fewer if --k-eval is smaller); --k-eval is rounded up to a multiple.
EVAL_CHUNK = 100
# Test images per jitted call of the log p(x).
EVAL_IMAGES = 100


def make_optimizer(lr_start):
    """optax Adam whose learning rate is a hyperparameter in its state, replaced each epoch."""
    import optax

    return optax.inject_hyperparams(optax.adam)(learning_rate=lr_start, b1=0.9, b2=0.999, eps=1e-4)


def initial_state(seed, optimizer, ema):
    """``{params, opt, ema, step}``: fresh parameters, Adam's state, the average (None without EMA), steps done."""
    import jax.numpy as jnp

    params = _jax_reference.init_params("vae", seed)
    return {
        "params": params,
        "opt": optimizer.init(params),
        "ema": params if ema else None,
        "step": jnp.zeros((), jnp.int32),
    }


def epoch_function(n, batch_size, optimizer, ema):
    """A jitted ``epoch(state, x, key, lr) -> (state, mean loss)`` over the first ``n // batch_size`` batches."""
    import jax
    import jax.numpy as jnp
    import optax

    steps = n // batch_size
    grad_fn = jax.value_and_grad(lambda p, x, k: _jax_reference.loss("vae", p, x, k))

    def step(state, inputs):
        x, key = inputs
        k_bin, k_noise = jax.random.split(key)
        x = jax.random.bernoulli(k_bin, x).astype(x.dtype)
        value, grads = grad_fn(state["params"], x, k_noise)
        updates, opt = optimizer.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        average = state["ema"]
        if ema:
            # Keras's use_ema: the average is the parameters after the first step, then a moving average.
            momentum = jnp.where(state["step"] == 0, 0.0, ema)
            average = jax.tree_util.tree_map(lambda a, p: momentum * a + (1 - momentum) * p, average, params)
        return {"params": params, "opt": opt, "ema": average, "step": state["step"] + 1}, value

    @jax.jit
    def epoch(state, x, key, lr):
        opt = state["opt"]
        state = {**state, "opt": opt._replace(hyperparams={**opt.hyperparams, "learning_rate": lr})}
        k_perm, k_steps = jax.random.split(key)
        order = jax.random.permutation(k_perm, x.shape[0])[: steps * batch_size]
        batches = x[order].reshape(steps, batch_size, x.shape[-1])
        state, losses = jax.lax.scan(step, state, (batches, jax.random.split(k_steps, steps)))
        return state, losses.mean()

    return epoch


def save_backup(directory, state, meta):
    """The state's leaves and ``meta`` (JSON) in ``directory/state.npz``, replaced atomically."""
    import jax

    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i:04d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.asarray(json.dumps(meta)), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / "state.npz")


def load_backup(directory, template, budget):
    """``(state, meta)`` from ``directory/state.npz`` if it holds a run of ``budget`` shaped as ``template``;
    else None (and an unusable backup is deleted)."""
    import jax
    import jax.numpy as jnp

    path = directory / "state.npz"
    if not path.exists():
        return None
    leaves, treedef = jax.tree_util.tree_flatten(template)
    try:
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            restored = [saved[f"leaf_{i:04d}"] for i in range(len(leaves))]
    except (OSError, KeyError, ValueError) as err:
        print(f"{ROW} jax: unreadable backup in {directory} ({err}); starting afresh", flush=True)
        shutil.rmtree(directory)
        return None
    same_shapes = all(a.shape == np.shape(b) and a.dtype == b.dtype for a, b in zip(restored, leaves))
    if meta.get("budget") != budget or not same_shapes:
        print(f"{ROW} jax: the backup in {directory} is of other arguments; starting afresh", flush=True)
        shutil.rmtree(directory)
        return None
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in restored]), meta


def test_elbo_function():
    """A jitted mean ELBO (one sample per image) of ``params`` on ``x``."""
    import jax

    return jax.jit(lambda params, x, key: -_jax_reference.loss("vae", params, x, key))


def read_rows(path):
    return json.loads(path.read_text()) if path.exists() else []


def write_rows(path, rows):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=2))
    os.replace(tmp, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--epochs", type=int, default=930, help="epochs (default 930)")
    parser.add_argument("--lr-start", type=float, default=1e-3, help="first learning rate (default 1e-3)")
    parser.add_argument("--lr-end", type=float, default=3e-5, help="last learning rate (default 3e-5)")
    parser.add_argument(
        "--lr-hold", type=float, default=0.3, help="fraction of the epochs at --lr-start before decaying (0.3)"
    )
    parser.add_argument("--batch-size", type=int, default=50, help="default 50")
    parser.add_argument(
        "--ema", type=float, default=0.0,
        help="evaluate an exponential moving average of the parameters with this momentum (e.g. 0.999); 0 = off",
    )  # fmt: skip
    parser.add_argument("--k-eval", type=int, default=5000, help="importance samples of the test log p(x)")
    parser.add_argument("--limit-train", type=int, default=None, help="train on the first N training images")
    parser.add_argument("--limit-test", type=int, default=None, help="score the first N test images")
    parser.add_argument("--curve-every", type=int, default=25, help="epochs between test-ELBO points; 0 = none")
    parser.add_argument("--print-every", type=int, default=25, help="epochs between progress lines")
    parser.add_argument("--save-every", type=int, default=25, help="epochs between backups")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/burda_fast_jax.json", help="JSON list of rows")
    args = parser.parse_args(argv)
    # reproduce_burda's budget keys (what a backup and a finished row must share): its fast schedule.
    args.schedule, args.passes = "fast", None
    if not 0 <= args.lr_hold < 1:
        parser.error("--lr-hold must be in [0, 1)")
    if not 0 <= args.ema < 1:
        parser.error("--ema must be in [0, 1)")
    if min(args.epochs, args.batch_size, args.k_eval, args.print_every, args.save_every) < 1 or args.curve_every < 0:
        parser.error("--epochs, --batch-size, --k-eval, --print-every, --save-every must be >= 1, --curve-every >= 0")
    for name in ("limit_train", "limit_test"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    try:
        args.data_path = datasets.local_path("mnist", args.data_path, required=True)
    except FileNotFoundError as err:
        parser.error(str(err))
    return args


def main(argv=None):
    args = parse_args(argv)
    if not _jax_reference.available():
        print("error: jax and optax are not installed (pip install jax optax)", flush=True)
        return 2
    import jax
    import jax.numpy as jnp

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curve_path = out.parent / f"{out.stem}_curve.jsonl"
    backup = out.parent / f"{out.stem}_backup"
    budget = budget_of(args)

    x_train, _ = datasets.load_arrays("mnist", "train", path=args.data_path)
    x_train = x_train[: args.limit_train]
    _, _, x_test = load_data(args.data_path, args.batch_size, 1, args.limit_test, args.seed)
    chunk = min(args.k_eval, EVAL_CHUNK)
    k_eval = -(-args.k_eval // chunk) * chunk
    if len(x_train) < args.batch_size:
        raise SystemExit(f"error: {len(x_train)} training images give no batch of {args.batch_size}")
    settings = {"budget": budget, "k_eval": k_eval, "test_images": len(x_test)}
    rows = read_rows(out)
    if any({key: r.get(key) for key in settings} == settings for r in rows):
        print(f"{ROW} jax: already in {out} with these settings, skipped", flush=True)
        return 0

    rates = fast_schedule(args.epochs, args.lr_start, args.lr_end, args.lr_hold)
    gflops = matmul_gflops()
    print(
        f"{ROW} jax {jax.__version__}: {len(x_train)} dynamically binarised training images, batch "
        f"{args.batch_size}, {args.epochs} epochs, lr {args.lr_start:g} for {args.lr_hold:.0%} then -> "
        f"{args.lr_end:g}, EMA {args.ema:g}; test log p(x) with k = {k_eval} on {len(x_test)} images; "
        f"machine {gflops:.0f} GFLOP/s",
        flush=True,
    )

    optimizer = make_optimizer(args.lr_start)
    state = initial_state(args.seed, optimizer, args.ema)
    meta = {"budget": budget, "epoch": 0, "train_seconds": 0.0, "first_epoch_seconds": None}
    restored = load_backup(backup, state, budget)
    if restored is not None:
        state, meta = restored
        print(f"{ROW} jax: resumed after epoch {meta['epoch']} ({meta['train_seconds']:.0f} s of training)", flush=True)
    # Leaves through numpy: the same (non-weak) types on every call, so the epoch compiles once.
    state = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), state)

    x = jnp.asarray(x_train)
    x_eval = jnp.asarray(x_test)
    epoch_fn = epoch_function(len(x_train), args.batch_size, optimizer, args.ema)
    elbo_fn = test_elbo_function()
    train_key = jax.random.PRNGKey(args.seed + 1)
    curve_key = jax.random.PRNGKey(args.seed + 3)
    for epoch in range(meta["epoch"], args.epochs):
        start = time.perf_counter()
        # The key of an epoch depends on its index alone, so a resumed run draws what an unbroken one would.
        state, mean_loss = epoch_fn(state, x, jax.random.fold_in(train_key, epoch), np.float32(rates[epoch]))
        jax.block_until_ready(state)
        seconds = time.perf_counter() - start
        meta["train_seconds"] += seconds
        meta["epoch"] = done = epoch + 1
        if epoch == 0:
            meta["first_epoch_seconds"] = seconds
        minutes = meta["train_seconds"] / 60
        last = done == args.epochs
        if done == 1 or done % args.print_every == 0 or last:
            print(
                f"{ROW} jax epoch {done}/{args.epochs}: train ELBO {-float(mean_loss):.2f}, "
                f"lr {rates[epoch]:.2e}, {minutes:.1f} min",
                flush=True,
            )
        if args.curve_every and (done % args.curve_every == 0 or last):
            elbo = float(elbo_fn(state["params"], x_eval, jax.random.fold_in(curve_key, epoch)))
            point = {
                "row": ROW, "impl": "jax", "epoch": done, "train_minutes": round(minutes, 3),
                "test_elbo": elbo, "budget": budget,
            }  # fmt: skip
            _append_jsonl(curve_path, point)
            print(f"{ROW} jax epoch {done}: test ELBO {elbo:.2f}", flush=True)
        if done % args.save_every == 0 or last:
            save_backup(backup, state, meta)

    params = state["ema"] if args.ema else state["params"]
    final_key = jax.random.PRNGKey(args.seed + 4)
    test_elbo = float(elbo_fn(params, x_eval, final_key))
    test_elbo_raw = float(elbo_fn(state["params"], x_eval, final_key))
    start = time.perf_counter()
    evaluator = _jax_reference.JaxEvaluator(x_test, k_eval, args.seed, images=EVAL_IMAGES, chunk=chunk)
    evaluator.params = params
    evaluator.run(len(x_test))
    eval_seconds = time.perf_counter() - start
    log_px = evaluator.last.astype(np.float64)
    stderr = float(np.std(log_px, ddof=1) / np.sqrt(len(log_px))) if len(log_px) > 1 else float("nan")
    first = meta["first_epoch_seconds"]
    row = {
        "row": ROW, "impl": "jax", "layers": 1, "k": 1, "epochs": args.epochs, "batch_size": args.batch_size,
        "lr_start": args.lr_start, "lr_end": args.lr_end, "lr_hold": args.lr_hold, "ema": args.ema,
        "seed": args.seed, "train_seconds": round(meta["train_seconds"], 3),
        "first_epoch_seconds": None if first is None else round(first, 3),
        "test_log_px": float(log_px.mean()), "test_log_px_stderr": stderr, "test_elbo": test_elbo,
        "test_elbo_raw": test_elbo_raw, "test_images": len(x_test), "k_eval": k_eval,
        "train_images": len(x_train), "eval_seconds": round(eval_seconds, 1),
        "test_binarization": f"static, seed {datasets.TEST_BINARIZATION_SEED}",
        "machine_gflops": round(gflops, 1), "jax_version": jax.__version__, "budget": budget,
    }  # fmt: skip
    write_rows(out, read_rows(out) + [row])
    shutil.rmtree(backup, ignore_errors=True)
    print(
        f"{ROW} jax: test log p(x) {row['test_log_px']:.2f} ± {stderr:.2f} (k = {k_eval}, {len(x_test)} images), "
        f"test ELBO {test_elbo:.2f} (trained params {test_elbo_raw:.2f}), train {meta['train_seconds'] / 60:.1f} min "
        f"(first epoch {first or float('nan'):.1f} s), eval {eval_seconds:.0f} s",
        flush=True,
    )
    print(f"wrote {out} and {curve_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
