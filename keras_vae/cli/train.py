"""``keras-vae train``: train a model and write the run's artefacts.

With no options it trains a VAE on scikit-learn's bundled 8x8 digits (no
download) and writes ``model.keras``, ``metrics.json``, ``history.json``,
``samples.png`` and ``reconstructions.png`` to ``--out``. ``--dataset`` also
takes a path: ``.npy``/``.npz`` arrays and image folders train a model of
their example shape (``--preset conv_mnist`` for a convolutional one); a
CSV/Parquet table trains a mixed observation model and writes
``schema.json``, ``samples.csv`` and ``reconstructions.csv`` instead of the
images (see ``keras_vae.cli.data``).
"""

import contextlib
import pathlib

from keras_vae.cli import conditions
from keras_vae.cli import data as cli_data
from keras_vae.cli import logs
from keras_vae.cli import options
from keras_vae.cli import runs

HELP = "train a model and write its artefacts"
ARTEFACTS = ("model.keras", "metrics.json", "history.json", "samples.png", "reconstructions.png")


def add_arguments(parser):
    """Add the options of ``keras-vae train``.

    Args:
        parser: the subcommand's ``argparse`` parser.

    Returns:
        ``parser``.
    """
    options.add_data_arguments(
        parser,
        limit_help="use only the first N training examples",
        batch_size_help="examples per training (and test) batch",
    )
    options.add_model_arguments(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=options.positive_int, default=200, help="passes over the training set")
    group.add_argument("--learning-rate", type=options.positive_float, default=1e-3, help="Adam learning rate")
    group.add_argument("--seed", type=int, default=0, help="seed of the weights, the noise and the data order")
    group.add_argument(
        "--distribute",
        default="none",
        choices=("none", "mirrored", "multi_worker"),
        help="tf.distribute strategy: mirrored (local GPUs or --cpu-devices) or multi_worker (needs TF_CONFIG)",
    )
    group.add_argument(
        "--cpu-devices",
        type=options.positive_int,
        default=None,
        help="split the CPU into N logical devices (N mirrored replicas), each with its share of the cores' threads",
    )
    conditions.add_argument(group)
    run = parser.add_argument_group("run directory")
    run.add_argument(
        "--out",
        default="runs/vae",
        help="output directory; a run cut short resumes from its last finished epoch when the same command "
        "runs again, and a finished run is left as it is",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="discard a finished run or a checkpoint in --out and train afresh"
    )
    options.add_progress_argument(group)
    return parser


#: Options that do not change what a run computes: a checkpoint resumes whatever their values.
NOT_SETTINGS = frozenset(
    {
        "out",
        "overwrite",
        "verbose",
        "quiet",
        "debug",
        "func",
        "command",
        "epochs",
        "distribute",
        "cpu_devices",
        "interrupt_hint",
        options.ARCHITECTURE_GIVEN,
    }
)


def run_settings(args):
    """The options that define a run (a checkpoint resumes only under the same ones).

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        dict of JSON values, e.g. ``{"dataset": "digits", "latent_dims": [16], ...}``.
    """
    return {k: v for k, v in sorted(vars(args).items()) if k not in NOT_SETTINGS}


def check_preset(args):
    """Raise ``ValueError`` when ``--preset`` is given with options that set the architecture it sets."""
    given = getattr(args, options.ARCHITECTURE_GIVEN, None)
    if getattr(args, "preset", None) and given:
        raise ValueError(
            f"--preset {args.preset} sets the architecture; drop {', '.join(given)} "
            "(or drop --preset and give the layers yourself)"
        )


def build_model(args, input_dim=None, input_shape=None, likelihood=None, condition_dim=None):
    """The model ``keras-vae train`` builds from its options.

    With ``--preset``, the preset's architecture (``keras_vae.presets``);
    else a ``VAE`` for one Gaussian layer trained by the ELBO, else a
    ``HelmholtzMachine``.

    Args:
        args: parsed options of :func:`add_arguments`.
        input_dim: number of data columns (flat data).
        input_shape: shape of one example, e.g. ``(28, 28, 1)``, instead of ``input_dim``.
        likelihood: an observation head (a table's mixed head) instead of ``--likelihood``.
        condition_dim: K for a conditional model (``--condition labels``: the number of classes).

    Returns:
        An uncompiled ``keras_vae.VAE`` or ``keras_vae.HelmholtzMachine``.
    """
    from keras_vae import models
    from keras_vae import objectives

    common = dict(
        hidden_dims=args.hidden_dims,
        activation=args.activation,
        covariance=args.covariance,
        likelihood=args.likelihood if likelihood is None else likelihood,
        n_samples=args.n_samples,
        kl=args.kl,
        beta=args.beta,
        kl_warmup_steps=args.kl_warmup_steps,
        eval_samples=args.eval_samples,
        seed=args.seed,
    )
    if input_shape is not None:
        common["input_shape"] = tuple(input_shape)
    if condition_dim is not None:
        common["condition_dim"] = int(condition_dim)
    if getattr(args, "preset", None):
        from keras_vae import presets

        check_preset(args)
        for name in ("hidden_dims", "activation"):  # The preset's architecture.
            common.pop(name)
        return presets.from_preset(args.preset, input_dim, objective=args.objective, **common)
    # The one-layer Gaussian ELBO model is a VAE (the same model, VAE's argument names).
    elbo = type(objectives.get(args.objective)) is objectives.ELBO
    if len(args.latent_dims) == 1 and args.latent == "gaussian" and elbo:
        return models.VAE(input_dim, latent_dim=args.latent_dims[0], **common)
    return models.HelmholtzMachine(
        input_dim, latent_dims=args.latent_dims, latent=args.latent, objective=args.objective, **common
    )


def run(args):
    """Train, evaluate on the test split and write the run's artefacts.

    Everything that can be checked is checked before training: the output
    directory, a finished run or a checkpoint in it, the data and the
    model's settings. The directory is locked for the run; a run cut short
    resumes; the artefacts are written atomically, and only then is the
    checkpoint removed.

    Args:
        args: parsed options of :func:`add_arguments`.

    Returns:
        0.
    """
    say = options.printer(args)
    check_preset(args)
    out = pathlib.Path(args.out)
    settings = run_settings(args)
    artefacts = cli_data.artefacts(args)
    runs.check_writable(out)
    if runs.inspect(out, settings, artefacts, args.overwrite) == "complete":
        say(runs.complete_message(out, artefacts))
        return 0
    logs.import_tensorflow()
    from keras_vae import distribute

    if args.cpu_devices:
        distribute.split_cpu(args.cpu_devices)  # Before any TensorFlow op.
    # Also before any op: a multi-worker strategy configures the process's
    # collective ops when it is created.
    strategy = distribute.get_strategy(args.distribute)
    import keras

    keras.utils.set_random_seed(args.seed)
    condition_dim = None
    if getattr(args, "condition", "none") == "labels":
        train_ds, test_ds, test, condition_dim = conditions.training_data(args)
    else:
        train_ds, test_ds, test = cli_data.training_data(args)
    with strategy.scope():
        model = build_model(args, condition_dim=condition_dim, **cli_data.model_arguments(test))

    runs.make_dir(out)
    # In a multi-worker job every worker runs this command; the chief owns --out.
    # Other workers neither lock nor write it: they follow the chief's
    # checkpoint, which BackupAndRestore reads.
    chief = distribute.is_chief()
    guard = runs.lock(out, say=say) if chief else contextlib.nullcontext()
    with guard:
        state = runs.prepare(out, settings, artefacts, overwrite=args.overwrite) if chief else "train"
        if state == "complete":
            say(runs.complete_message(out, artefacts))
            return 0
        args.interrupt_hint = (
            f"the last finished epoch is saved in {out / runs.BACKUP_DIR}; run the same command again to resume"
        )
        return _train(args, out, say, strategy, model, train_ds, test_ds, test)


def _train(args, out, say, strategy, model, train_ds, test_ds, test):
    import keras

    from keras_vae import callbacks as callbacks_lib
    from keras_vae import distribute

    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))

    # Killed and restarted with the same command, training resumes after the
    # last completed epoch (written atomically, by the chief only). The
    # checkpoint stays until every artefact is written.
    def resumed(epoch):
        if epoch >= args.epochs:
            say(f"resumed after epoch {epoch}: all {args.epochs} epochs are done; evaluating and writing the run")
        else:
            say(f"resumed after epoch {epoch} of {args.epochs} from {out / runs.BACKUP_DIR}")

    # With --overwrite the chief has discarded the old run: no worker may restore it.
    backup = distribute.BackupAndRestore(
        str(out / runs.BACKUP_DIR), delete_checkpoint=False, on_resume=resumed, restore=not args.overwrite
    )
    callbacks = [backup]
    verbose = options.fit_verbosity(args)
    if verbose == 2:  # One plain line per epoch (Keras's verbose=2 prints two).
        verbose = 0
        callbacks.append(callbacks_lib.EpochLogger(args.epochs, print_fn=say))
    model.fit(train_ds, epochs=args.epochs, validation_data=test_ds, verbose=verbose, callbacks=callbacks)
    scores = model.evaluate(test_ds, verbose=0, return_dict=True)

    # Every worker of a multi-worker job gets here; only the chief writes to --out.
    target, final_out = pathlib.Path(distribute.worker_output_dir(out)), out
    metrics = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "train_seconds": round(backup.train_seconds, 2),
        "resumed_from_epoch": backup.resumed_epoch,
        "settings": run_settings(args),
        "test": cli_data.add_bits_per_dim({name: float(value) for name, value in scores.items()}, model),
    }
    runs.write_atomically(target / "model.keras", model.save)
    runs.write_json(target / "metrics.json", metrics)
    runs.write_json(target / "history.json", backup.history)
    writer = cli_data.write_examples if model.condition_dim is None else conditions.write_examples
    writer(model, target, args, test, runs.write_atomically)
    say(
        f"Test ELBO {scores['elbo']:.3f} nats/example "
        f"(reconstruction {scores['reconstruction']:.3f}, KL {scores['kl']:.3f}) after "
        f"{args.epochs} epochs in {backup.train_seconds:.1f}s."
    )
    if target != final_out:
        distribute.remove_worker_output_dir(target, final_out)
        return 0
    runs.finish(out)
    for name in cli_data.artefacts(args):
        say(f"  wrote {out / name}")
    return 0
