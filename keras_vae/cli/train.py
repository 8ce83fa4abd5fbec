"""``keras-vae train``: train a model and write the run's artefacts.

With no options it trains a VAE on scikit-learn's bundled 8x8 digits (no
download) and writes ``model.keras``, ``metrics.json``, ``history.json``,
``samples.png`` and ``reconstructions.png`` to ``--out``.
"""

import json
import pathlib
import time

from keras_vae.cli import options

HELP = "train a model and write its artefacts"
ARTEFACTS = ("model.keras", "metrics.json", "history.json", "samples.png", "reconstructions.png")


def add_arguments(parser):
    """Add the options of ``keras-vae train``.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    from keras_vae import objectives

    options.add_data_arguments(
        parser,
        limit_help="use only the first N training examples",
        batch_size_help="examples per training (and test) batch",
    )
    options.add_model_arguments(parser, objectives.OBJECTIVES)
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=200, help="passes over the training set")
    group.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    group.add_argument("--seed", type=int, default=0, help="seed of the weights, the noise and the data order")
    group.add_argument(
        "--distribute",
        default="none",
        choices=("none", "mirrored", "multi_worker"),
        help="tf.distribute strategy: mirrored (local GPUs or --cpu-devices) or multi_worker (needs TF_CONFIG)",
    )
    group.add_argument(
        "--cpu-devices", type=int, default=None, help="split the CPU into N logical devices (N mirrored replicas)"
    )
    group.add_argument("--out", default="runs/vae", help="output directory")
    group.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    return parser


def build_model(args, input_dim):
    """The model ``keras-vae train`` builds from its options.

    A ``VAE`` for one Gaussian layer trained by the ELBO, else a
    ``HelmholtzMachine``.

    Args:
        args: parsed options of :func:`add_arguments`.
        input_dim: number of data columns.

    Returns:
        An uncompiled ``keras_vae.VAE`` or ``keras_vae.HelmholtzMachine``.
    """
    from keras_vae import models
    from keras_vae import objectives

    common = dict(
        hidden_dims=args.hidden_dims,
        activation=args.activation,
        covariance=args.covariance,
        likelihood=args.likelihood,
        n_samples=args.n_samples,
        kl=args.kl,
        beta=args.beta,
        kl_warmup_steps=args.kl_warmup_steps,
        eval_samples=args.eval_samples,
        seed=args.seed,
    )
    # The one-layer Gaussian ELBO model is a VAE (the same model, VAE's argument names).
    elbo = type(objectives.get(args.objective)) is objectives.ELBO
    if len(args.latent_dims) == 1 and args.latent == "gaussian" and elbo:
        return models.VAE(input_dim, latent_dim=args.latent_dims[0], **common)
    return models.HelmholtzMachine(
        input_dim, latent_dims=args.latent_dims, latent=args.latent, objective=args.objective, **common
    )


def run(args):
    """Train, evaluate on the test split and write the run's artefacts.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
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
    train_ds = datasets.load(
        args.dataset,
        "train",
        batch_size=args.batch_size,
        binarization=args.binarization,
        seed=args.seed,
        limit=args.limit,
        **options.data_kwargs(args),
    )
    test_binarization = "none" if args.binarization == "none" else "static"
    test_ds = datasets.load(
        args.dataset,
        "test",
        batch_size=args.batch_size,
        binarization=test_binarization,
        seed=datasets.TEST_BINARIZATION_SEED,
        **options.data_kwargs(args),
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
    for name in ARTEFACTS:
        print(f"  wrote {out / name}")
    return 0
