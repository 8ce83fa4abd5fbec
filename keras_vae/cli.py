"""Command-line interface: ``keras-vae train | evaluate | export | sample | plot``.

``keras-vae train`` with no options trains a VAE on scikit-learn's bundled 8x8
digits (no download) and writes ``model.keras``, ``metrics.json``,
``history.json``, ``samples.png`` and ``reconstructions.png`` to ``--out``.
"""

import argparse
import json
import os
import pathlib
import sys
import time


def _ints(text):
    """``"200,200"`` -> ``[200, 200]``; ``""`` -> ``[]``."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_data_arguments(parser):
    parser.add_argument("--dataset", default="digits", help="digits (bundled, default), mnist or fashion_mnist")
    parser.add_argument(
        "--data-path",
        default=None,
        help="local .npz in the Keras mnist.npz layout (offline use); "
        "or set KERAS_VAE_MNIST_PATH / KERAS_VAE_FASHION_MNIST_PATH",
    )
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    parser.add_argument(
        "--binarization",
        default="none",
        choices=("none", "static", "dynamic"),
        help="training-set binarisation; the test set is binarised once (seeded) unless 'none'",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training examples")


def _add_train_arguments(parser):
    _add_data_arguments(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--latent-dims", type=_ints, default=[16], help="stochastic layer sizes, bottom to top (e.g. 100,50)")
    model.add_argument("--hidden", type=_ints, default=[200, 200], help="hidden widths between stochastic layers")
    model.add_argument("--activation", default="tanh")
    model.add_argument("--latent", default="gaussian", choices=("gaussian", "bernoulli"))
    model.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"))
    model.add_argument("--posterior", default="diag", choices=("diag", "full"), help="covariance of q")
    model.add_argument(
        "--objective", default="elbo", choices=("elbo", "iwae", "wake_sleep", "reweighted_wake_sleep")
    )
    model.add_argument("--samples", type=int, default=1, help="L (ELBO) or k (IWAE, RWS) samples per example")
    model.add_argument("--kl", default="analytic", choices=("analytic", "mc"))
    model.add_argument("--beta", type=float, default=1.0)
    model.add_argument(
        "--kl-warmup-steps", type=int, default=0,
        help="optimizer steps over which the KL weight rises from 0 to beta (elbo objective)",
    )
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=200)
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--distribute",
        default="none",
        choices=("none", "mirrored", "multi_worker"),
        help="tf.distribute strategy: mirrored (local GPUs or --cpu-devices) or multi_worker (needs TF_CONFIG)",
    )
    train.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="split the CPU into N logical devices (N mirrored replicas without GPUs)",
    )
    train.add_argument("--out", default="runs/vae", help="output directory")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))


def build_model(args, input_dim):
    """The model ``keras-vae train`` builds from its options."""
    from keras_vae import models

    if len(args.latent_dims) == 1 and args.latent == "gaussian" and args.objective == "elbo":
        return models.VAE(
            input_dim,
            latent_dim=args.latent_dims[0],
            hidden_dims=args.hidden,
            activation=args.activation,
            covariance=args.posterior,
            likelihood=args.likelihood,
            n_samples=args.samples,
            kl=args.kl,
            beta=args.beta,
            kl_warmup_steps=args.kl_warmup_steps,
            seed=args.seed,
        )
    return models.HelmholtzMachine(
        input_dim,
        latent_dims=args.latent_dims,
        hidden_dims=args.hidden,
        activation=args.activation,
        latent=args.latent,
        covariance=args.posterior,
        likelihood=args.likelihood,
        objective=args.objective,
        n_samples=args.samples,
        kl=args.kl,
        beta=args.beta,
        kl_warmup_steps=args.kl_warmup_steps,
        seed=args.seed,
    )


def train(args):
    """Train, evaluate on the test split and write the run's artefacts."""
    import keras

    from keras_vae import datasets
    from keras_vae import distribute
    from keras_vae import plotting

    if args.cpu_devices:
        distribute.split_cpu(args.cpu_devices)  # Before any TensorFlow op.
    # Also before any op: a multi-worker strategy configures the process's
    # collective ops when it is created.
    strategy = distribute.get_strategy(args.distribute)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    data_kwargs = dict(path=args.data_path, data_dir=args.data_dir)
    train_ds = datasets.load(
        args.dataset,
        "train",
        batch_size=args.batch_size,
        binarization=args.binarization,
        seed=args.seed,
        limit=args.limit,
        **data_kwargs,
    )
    test_binarization = "none" if args.binarization == "none" else "static"
    test_ds = datasets.load(
        args.dataset, "test", batch_size=args.batch_size, binarization=test_binarization, seed=1234, **data_kwargs
    )
    input_dim = int(train_ds.element_spec.shape[-1])

    with strategy.scope():
        model = build_model(args, input_dim)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))

    start = time.time()
    history = model.fit(
        train_ds,
        epochs=args.epochs,
        validation_data=test_ds,
        verbose=args.verbose,
        # Killed and restarted with the same command, training resumes after
        # the last completed epoch (written atomically, by the chief only).
        callbacks=[distribute.BackupAndRestore(str(out / "backup"))],
    )
    train_seconds = time.time() - start
    test = model.evaluate(test_ds, verbose=0, return_dict=True)

    # Every worker of a multi-worker job gets here; only the chief writes to --out.
    out, final_out = pathlib.Path(distribute.worker_output_dir(out)), out
    model.save(out / "model.keras")
    metrics = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "train_seconds": round(train_seconds, 2),
        "test": {name: float(value) for name, value in test.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "history.json").write_text(
        json.dumps({k: [float(v) for v in vs] for k, vs in history.history.items()}, indent=2)
    )
    shape = datasets.image_shape(args.dataset)
    plotting.plot_samples(model, n=64, image_shape=shape, seed=args.seed, path=out / "samples.png")
    x_test = next(iter(test_ds))
    plotting.plot_reconstructions(model, x_test[:10], image_shape=shape, path=out / "reconstructions.png")

    print(
        f"Test ELBO {test['elbo']:.3f} nats/example "
        f"(reconstruction {test['reconstruction']:.3f}, KL {test['kl']:.3f}) after "
        f"{args.epochs} epochs in {train_seconds:.1f}s."
    )
    if out != final_out:
        distribute.remove_worker_output_dir(out, final_out)
        return 0
    for name in ("model.keras", "metrics.json", "history.json", "samples.png", "reconstructions.png"):
        print(f"  wrote {out / name}")
    return 0


def _load(path):
    import keras

    import keras_vae  # noqa: F401  (registers the serialisable classes)

    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    return keras.saving.load_model(path)


def sample(args):
    """Write a grid of generated samples from a saved model."""
    from keras_vae import plotting

    model = _load(args.model)
    plotting.plot_samples(model, n=args.n, image_shape=args.image_shape, seed=args.seed, path=args.out)
    print(f"wrote {args.out}")
    return 0


def _image_shape(text):
    return tuple(_ints(text))


PLOTS = ("samples", "reconstructions", "manifold", "latent", "traversal", "history")


def plot(args):
    """Draw one of the package's figures for a saved model (or a run's history)."""
    from keras_vae import datasets
    from keras_vae import plotting

    if args.kind == "history":
        plotting.plot_history(args.model, path=args.out)
        print(f"wrote {args.out}")
        return 0
    model = _load(args.model)
    shape = args.image_shape or (datasets.image_shape(args.dataset) if args.dataset else None)
    if args.kind == "samples":
        plotting.plot_samples(model, n=args.n, image_shape=shape, seed=args.seed, path=args.out)
    elif args.kind == "manifold":
        plotting.plot_manifold(model, image_shape=shape, path=args.out)
    elif args.kind == "traversal":
        plotting.plot_traversal(model, image_shape=shape, path=args.out)
    else:
        if not args.dataset:
            raise ValueError(f"--kind {args.kind} needs --dataset to draw test examples from.")
        x, y = datasets.load_arrays(args.dataset, "test", path=args.data_path, data_dir=args.data_dir)
        if args.binarization != "none":
            x = datasets.binarize(x, "static", seed=1234)
        if args.kind == "reconstructions":
            plotting.plot_reconstructions(model, x, n=args.n, image_shape=shape, path=args.out)
        else:
            plotting.plot_latent_space(model, x[: args.max_points], y[: args.max_points], path=args.out)
    print(f"wrote {args.out}")
    return 0


def make_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae", description="Variational autoencoders and Helmholtz machines for Keras 3."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model and write its artefacts")
    _add_train_arguments(p)
    p.set_defaults(func=train)

    p = sub.add_parser("sample", help="grid of samples from a saved model")
    p.add_argument("model", help="path to a .keras file")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-shape", type=_image_shape, default=None, help="e.g. 28,28 (default: square)")
    p.add_argument("--out", default="samples.png")
    p.set_defaults(func=sample)

    from keras_vae import evaluation
    from keras_vae import export

    p = sub.add_parser("evaluate", help="test ELBO, importance-sampled log p(x) and active units")
    evaluation.add_cli_arguments(p)
    p.set_defaults(func=evaluation.run_cli)

    p = sub.add_parser("export", help="export a trained model for TF Serving and TFLite/LiteRT")
    export.add_cli_arguments(p)
    p.set_defaults(func=export.run_cli)

    p = sub.add_parser("plot", help="figures of a saved model: " + ", ".join(PLOTS))
    p.add_argument("model", help="a .keras file (for --kind history: a history.json)")
    p.add_argument("--kind", default="samples", choices=PLOTS)
    p.add_argument("--dataset", default=None, help="dataset for image shape and test examples (e.g. digits)")
    p.add_argument("--data-path", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--binarization", default="none", choices=("none", "static"))
    p.add_argument("--image-shape", type=_image_shape, default=None, help="e.g. 28,28")
    p.add_argument("--n", type=int, default=16, help="images for samples/reconstructions")
    p.add_argument("--max-points", type=int, default=2000, help="points in the latent scatter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="plot.png")
    p.set_defaults(func=plot)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
