"""KL warm-up on a two-stochastic-layer VAE: with and without, several seeds.

The two-layer model of Burda et al. (784-200-200-[100]-100-100-[50], tanh,
Gaussian layers, Bernoulli pixels: ``keras_vae.presets`` ``"burda_2layer"``)
is trained on dynamically binarised MNIST by the ELBO, once with the KL
weight fixed at 1 and once with ``kl_warmup_steps`` (the weight rising
linearly from 0 to 1), for the same number of epochs and the same seeds.
Printed per run and as means over seeds: the test ELBO, an
importance-sampled test log p(x) and the active units of each stochastic
layer.

The test images are binarised by the package's shared rule,
``keras_vae.datasets.binarize_test`` (seed
``keras_vae.datasets.TEST_BINARIZATION_SEED``), as in every other benchmark.
Results recorded before that change (benchmarks/results/kl_warmup.*) used a
static binarisation with seed 1: a different draw of the same test images.

Run::

    python benchmarks/kl_warmup.py --data-path mnist.npz
    python benchmarks/kl_warmup.py --data-path mnist.npz --epochs 50 --warmup-epochs 10 --seeds 1,2,3
"""

import argparse
import json
import statistics
import time

import keras
import numpy as np

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import presets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH or tfds)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--warmup-epochs", type=float, default=5.0, help="length of the warm-up, in epochs")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated model seeds")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--limit-train", type=int, default=None, help="first N training images only")
    parser.add_argument("--limit-test", type=int, default=2000, help="test images for the ELBO and active units")
    parser.add_argument("--k-eval", type=int, default=1000, help="importance samples for log p(x)")
    parser.add_argument("--limit-eval", type=int, default=500, help="test images for log p(x)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.epochs < 1 or args.warmup_epochs < 0 or not args.seeds:
        parser.error("--epochs must be >= 1, --warmup-epochs >= 0 and --seeds non-empty.")
    return args


def run(args, warmup_steps, seed, train, x_test):
    model = presets.from_preset("burda_2layer", kl_warmup_steps=warmup_steps, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(train, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, batch_size=500, verbose=0, return_dict=True)
    ll = evaluation.log_likelihood(model, x_test[: args.limit_eval], k=args.k_eval, seed=0)
    active = evaluation.active_units(model, x_test)
    return {
        "seed": seed,
        "kl_warmup_steps": warmup_steps,
        "test_elbo": float(test["elbo"]),
        "test_log_px": float(np.mean(ll.values)),
        "active_units": [int(c) for c in active.counts],
        "train_seconds": seconds,
    }


def main(argv=None):
    args = parse_args(argv)
    train = datasets.load(
        "mnist", "train", batch_size=args.batch_size, binarization="dynamic", path=args.data_path,
        limit=args.limit_train,
    )
    x_test, _ = datasets.load_arrays("mnist", "test", path=args.data_path)
    x_test = datasets.binarize_test(x_test[: args.limit_test])
    steps_per_epoch = int(train.cardinality())
    warmup_steps = int(round(args.warmup_epochs * steps_per_epoch))
    print(
        f"Two-layer VAE on MNIST, {args.epochs} epochs of {steps_per_epoch} steps; warm-up "
        f"{warmup_steps} steps ({args.warmup_epochs:g} epochs); test ELBO and active units on "
        f"{len(x_test)} images, log p(x) with k={args.k_eval} on {min(args.limit_eval, len(x_test))}."
    )
    results = []
    print("| KL warm-up | seed | test ELBO | test log p(x) | active units (h1, h2) | train s |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for seed in args.seeds:
        for steps in (0, warmup_steps):
            r = run(args, steps, seed, train, x_test)
            results.append(r)
            label = f"{steps} steps" if steps else "none"
            print(
                f"| {label} | {seed} | {r['test_elbo']:.2f} | {r['test_log_px']:.2f} | "
                f"{r['active_units']} | {r['train_seconds']:.0f} |",
                flush=True,
            )
    print("\nMeans over seeds:")
    print("| KL warm-up | test ELBO | test log p(x) | active units (h1, h2) |")
    print("| --- | ---: | ---: | --- |")
    for steps in (0, warmup_steps):
        rows = [r for r in results if r["kl_warmup_steps"] == steps]
        active = [statistics.mean(r["active_units"][i] for r in rows) for i in range(2)]
        print(
            f"| {f'{steps} steps' if steps else 'none'} | {statistics.mean(r['test_elbo'] for r in rows):.2f} | "
            f"{statistics.mean(r['test_log_px'] for r in rows):.2f} | {active[0]:.1f}, {active[1]:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
