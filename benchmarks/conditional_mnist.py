"""A class-conditional VAE on MNIST: test log p(x | y) and a per-class sample grid.

``VAE(condition_dim=10)`` models ``q(z | x, y)`` and ``p(x | z, y)`` with
``p(z) = N(0, I)`` for one-hot digit labels ``y``; the architecture is the
one-layer model of Burda et al. (2015): 784-200-200-[50] tanh MLPs (the
networks read ``[x, y]`` and ``[z, y]``), Bernoulli pixels. It is trained by
the ELBO (Adam, batch 100, dynamically binarised training images) and scored
on the fixed binary test images (``keras_vae.datasets.binarize_test``): the
ELBO on every test image and the importance-sampled ``log p(x | y)`` with
``--k`` samples on the first ``--limit-eval`` test images. With
``--unconditional`` an unconditional VAE of the same architecture is trained
for the same epochs and scored (``log p(x)``) on the same images, for
comparison: ``log p(x | y) - log p(x)`` estimates ``log p(y | x) - log p(y)``
under the two models, at most ``log 10 = 2.30`` nats for a perfect classifier
with uniform classes when both models fit the data equally well.

The data come from a local ``mnist.npz`` (``--data-path``, else the
environment variable ``KERAS_VAE_MNIST_PATH``). The JSON written records the
budget (epochs, training examples, evaluated images, k) beside every number.

Run::

    KERAS_VAE_MNIST_PATH=mnist.npz python benchmarks/conditional_mnist.py --epochs 100 --unconditional
    KERAS_VAE_MNIST_PATH=mnist.npz python benchmarks/conditional_mnist.py \\
        --epochs 2 --limit-train 10000 --limit-eval 200 --k 500     # a smoke run
"""

import argparse
import json
import os
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import plotting

CLASSES = 10
RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--epochs", type=int, default=100, help="passes over the training images")
    parser.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--limit-eval", type=int, default=1000, help="test images for log p(x | y)")
    parser.add_argument("--k", type=int, default=5000, help="importance samples for log p(x | y)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--unconditional", action="store_true", help="also train and score an unconditional VAE")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=str(RESULTS / "conditional_mnist.json"), help="results file")
    parser.add_argument("--png", default=str(RESULTS / "conditional_mnist_samples.png"), help="sample grid")
    args = parser.parse_args(argv)
    if min(args.epochs, args.limit_eval, args.k, args.batch_size) < 1:
        parser.error("--epochs, --limit-eval, --k and --batch-size must be positive.")
    args.data_path = args.data_path or os.environ.get("KERAS_VAE_MNIST_PATH")
    if not args.data_path:
        parser.error("give a local mnist.npz: --data-path or the environment variable KERAS_VAE_MNIST_PATH.")
    return args


def one_hot(labels):
    return np.eye(CLASSES, dtype="float32")[np.asarray(labels)]


def training_pipeline(x, y, batch_size, seed, conditional):
    """Shuffled batches, binarised afresh each epoch: ``(x, y)`` pairs, or ``x`` alone."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    noise = tf.random.Generator.from_seed(seed)

    def binarise(images, labels):
        images = tf.cast(noise.uniform(tf.shape(images)) < images, tf.float32)
        return (images, labels) if conditional else images

    return ds.map(binarise).prefetch(2)


def train_and_score(args, conditional, train, test):
    x_train, y_train = train
    x_test, y_test = test
    model = keras_vae.VAE(
        784, latent_dim=args.latent_dim, hidden_dims=(200, 200), seed=args.seed,
        condition_dim=CLASSES if conditional else None,
    )
    model.compile(keras.optimizers.Adam(args.learning_rate))
    pipeline = training_pipeline(x_train, y_train, args.batch_size, args.seed, conditional)
    start = time.perf_counter()
    history = model.fit(pipeline, epochs=args.epochs, verbose=2)
    seconds = time.perf_counter() - start
    data = (x_test, y_test) if conditional else x_test
    test_metrics = model.evaluate(data, batch_size=500, verbose=0, return_dict=True)
    n = args.limit_eval
    subset = (x_test[:n], y_test[:n]) if conditional else x_test[:n]
    ll = evaluation.log_likelihood(model, subset, k=args.k, seed=args.seed, verbose=0)
    name = "log_px_given_y" if conditional else "log_px"
    result = {
        "model": "VAE(condition_dim=10)" if conditional else "VAE",
        "train_seconds": round(seconds, 1),
        "train_steps": int(model.optimizer.iterations),
        "final_train_elbo": float(history.history["elbo"][-1]),
        "test_elbo": float(test_metrics["elbo"]),
        "test_kl": float(test_metrics["kl"]),
        name: float(ll.mean),
        f"{name}_stderr": float(ll.stderr),
        "elbo_is": float(np.mean(ll.elbo)),
        "ess_mean": float(np.mean(ll.ess)),
    }
    print(json.dumps(result), flush=True)
    return model, result


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    x_train, labels_train = datasets.load_arrays("mnist", "train", path=args.data_path)
    x_test, labels_test = datasets.load_arrays("mnist", "test", path=args.data_path)
    if args.limit_train:
        x_train, labels_train = x_train[: args.limit_train], labels_train[: args.limit_train]
    x_test = datasets.binarize_test(x_test)
    train, test = (x_train, one_hot(labels_train)), (x_test, one_hot(labels_test))
    model, conditional = train_and_score(args, True, train, test)
    results = {
        "benchmark": "conditional_mnist",
        "budget": {
            "epochs": args.epochs,
            "train_images": len(x_train),
            "eval_images": min(args.limit_eval, len(x_test)),
            "elbo_images": len(x_test),
            "k": args.k,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "latent_dim": args.latent_dim,
            "seed": args.seed,
        },
        "conditional": conditional,
    }
    if args.unconditional:
        _, unconditional = train_and_score(args, False, train, test)
        results["unconditional"] = unconditional
        results["log_px_given_y_minus_log_px"] = conditional["log_px_given_y"] - unconditional["log_px"]
    budget = results["budget"]
    results["budget_label"] = (
        f"{budget['epochs']} epochs on {budget['train_images']} training images; log p(x | y) on "
        f"{budget['eval_images']} test images with k = {budget['k']}"
    )
    results["versions"] = {"keras_vae": keras_vae.__version__, "tensorflow": tf.__version__}
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    title = f"Conditional VAE, p(x | z, y) per class y, same z per column ({results['budget_label']})"
    plotting.plot_class_samples(model, n_per_class=10, image_shape=(28, 28), seed=args.seed, path=args.png, title=title)
    print(f"wrote {path} and {args.png}")
    return results


if __name__ == "__main__":
    main()
