"""A convolutional VAE on MNIST images against the MLP VAE, at equal training time.

Two one-stochastic-layer VAEs with 50 Gaussian latent units and Bernoulli
pixels (``keras_vae.presets``):

- ``burda_1layer``: flat images ``[N, 784]``, 784-200-200-[50] tanh MLPs;
- ``conv_mnist``: images ``[N, 28, 28, 1]``, a convolutional encoder and a
  decoder whose observation head predicts each pixel from 32 per-pixel
  features (no dense layer over all pixels).

Each is trained by the ELBO (Adam 1e-3, batch 100, dynamically binarised
training images) for the same wall-clock budget (counted from the end of the first compiled
execution, so XLA compilation is not part of it), then scored on the fixed
binary test images (``keras_vae.datasets.binarize_test``): the ELBO on
``--limit-test`` images and the importance-sampled log p(x) with
``--k-eval`` samples (5000 as in Burda et al., 2015) on ``--limit-eval``
images, in nats and bits per dimension. Training time is measured in this
process: on a machine shared with other jobs both models get the same
budget, not the same compute.

Run::

    python benchmarks/conv_vs_mlp.py --data-path mnist.npz --budget-seconds 600
    python benchmarks/conv_vs_mlp.py --budget-seconds 60 --limit-eval 20 --k-eval 100   # a smoke run
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import presets

IMAGE_SHAPE = (28, 28, 1)
MODELS = {"mlp": "burda_1layer", "conv": "conv_mnist"}


class TimeBudget(keras.callbacks.Callback):
    """Stops ``fit`` once ``seconds`` of training have passed (checked after every execution).

    The clock starts when the first execution ends: its time, mostly XLA
    compilation (long for convolutions on a CPU), is reported apart as
    ``warmup_seconds`` and its steps count as training steps.
    """

    def __init__(self, seconds):
        super().__init__()
        self.seconds = float(seconds)
        self.begin = None
        self.start = None
        self.warmup_seconds = None
        self.steps = 0
        self.epochs = 0

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.steps = int(self.model.optimizer.iterations)
        if self.start is None:
            self.start, self.warmup_seconds = now, now - self.begin
        elif now - self.start >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1

    @property
    def train_seconds(self):
        """Seconds of training after the first execution."""
        return 0.0 if self.start is None else time.perf_counter() - self.start


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--budget-seconds", type=float, default=600.0, help="training time of each model")
    parser.add_argument("--models", default="mlp,conv", help="comma-separated, from: " + ", ".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--limit-test", type=int, default=10000, help="test images for the ELBO")
    parser.add_argument("--limit-eval", type=int, default=500, help="test images for log p(x)")
    parser.add_argument("--k-eval", type=int, default=5000, help="importance samples for log p(x)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown or not args.models or args.budget_seconds <= 0:
        parser.error(f"--models must name some of {', '.join(MODELS)}; --budget-seconds must be > 0.")
    return args


def as_images(x):
    """Flat MNIST ``[N, 784]`` as ``[N, 28, 28, 1]``."""
    return np.reshape(x, (-1, *IMAGE_SHAPE))


def run(args, name, train, x_test):
    images = name == "conv"
    model = presets.from_preset(MODELS[name], seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    if images:
        train = train.map(lambda x: tf.reshape(x, (-1, *IMAGE_SHAPE)))
        x_test = as_images(x_test)
    budget = TimeBudget(args.budget_seconds)
    model.fit(train, epochs=10**6, verbose=0, callbacks=[budget])
    seconds = budget.train_seconds
    test = model.evaluate(x_test[: args.limit_test], batch_size=500, verbose=0, return_dict=True)
    ll = evaluation.log_likelihood(model, x_test[: args.limit_eval], k=args.k_eval, batch_size=20, seed=0, verbose=0)
    return {
        "model": name,
        "preset": MODELS[name],
        "input_shape": list(model.input_shape),
        "parameters": int(model.count_params()),
        "observation_head_parameters": int(sum(np.prod(w.shape) for w in model.observation.weights)),
        "train_seconds": seconds,
        "warmup_seconds": budget.warmup_seconds,
        "train_steps": budget.steps,
        "train_epochs": budget.steps * args.batch_size / 60000,
        "test_elbo": float(test["elbo"]),
        "test_log_px": ll.mean,
        "test_log_px_stderr": ll.stderr,
        "test_bits_per_dim": evaluation.bits_per_dim(ll.mean, model.input_dim),
        "log_px_seconds": ll.seconds,
    }


def main(argv=None):
    args = parse_args(argv)
    path = datasets.local_path("mnist", args.data_path, required=True)
    train = datasets.load("mnist", "train", batch_size=args.batch_size, binarization="dynamic", path=path)
    x_test, _ = datasets.load_arrays("mnist", "test", path=path)
    x_test = datasets.binarize_test(x_test)
    print(
        f"VAEs on MNIST, {args.budget_seconds:g} s of training each (batch {args.batch_size}); test ELBO on "
        f"{min(args.limit_test, len(x_test))} images, log p(x) with k={args.k_eval} on "
        f"{min(args.limit_eval, len(x_test))}; {os.cpu_count()} CPUs."
    )
    print("| model | input | parameters (head) | steps (epochs) | test ELBO | test log p(x) | bits/dim |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    results = []
    for name in args.models:
        r = run(args, name, train, x_test)
        results.append(r)
        print(
            f"| {r['preset']} | {r['input_shape']} | {r['parameters']:,} ({r['observation_head_parameters']:,}) | "
            f"{r['train_steps']} ({r['train_epochs']:.1f}) | {r['test_elbo']:.2f} | "
            f"{r['test_log_px']:.2f} +- {r['test_log_px_stderr']:.2f} | {r['test_bits_per_dim']:.4f} |",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
