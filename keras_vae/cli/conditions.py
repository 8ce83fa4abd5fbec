"""``keras-vae train --condition labels``: class-conditional models on labelled data.

The model is built with ``condition_dim`` = the number of classes and trained
on ``(x, one_hot(y))`` pairs; its run writes a per-class sample grid
(``samples.png``, one row per class) and reconstructions given the labels.
"""

CONDITIONS = ("none", "labels")


def add_argument(group):
    """Add ``--condition`` to an ``argparse`` group.

    Args:
        group: the group of the training options.
    """
    group.add_argument(
        "--condition",
        default="none",
        choices=CONDITIONS,
        help="'labels': a class-conditional model q(z | x, y), p(x | z, y) of the dataset's one-hot labels",
    )


def num_classes(train, test):
    """The number of classes of two labelled splits (``keras_vae.datasets.Data``)."""
    if train.class_names:
        return len(train.class_names)
    return int(max(train.y.max(), test.y.max())) + 1


def one_hot_labels(y, condition_dim, dataset):
    """A conditional model's condition from a split's labels.

    Args:
        y: ``[N]`` integer class labels, ``[N, condition_dim]`` conditions, or None.
        condition_dim: the model's ``condition_dim``.
        dataset: the dataset's name, for messages.

    Returns:
        float32 ``[N, condition_dim]``.

    Raises:
        ValueError: no labels, or labels that do not fit ``condition_dim``.
    """
    import numpy as np

    if y is None:
        raise ValueError(
            f"The model is conditional (condition_dim={condition_dim}) and {dataset} has no labels to condition on."
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == condition_dim:
        return y.astype("float32")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= condition_dim:
        raise ValueError(
            f"The model is conditional on {condition_dim} classes; {dataset}'s labels "
            f"(shape {list(y.shape)}, values {y.min()}..{y.max()}) are not class indices below {condition_dim}."
        )
    return np.eye(condition_dim, dtype="float32")[y]


def _pairs(x, labels, k, args, binarization, shuffle):
    """A ``tf.data`` pipeline of ``(x, one_hot(y))`` batches, binarised like ``datasets.pipeline``.

    The one-hot labels travel as extra columns of the flattened examples
    through ``keras_vae.datasets.pipeline`` (its shuffle and binarisation
    keep 0 and 1 exactly), and are split off again.
    """
    import numpy as np
    import tensorflow as tf

    from keras_vae import datasets

    shape = x.shape[1:]
    flat = x.reshape(len(x), -1)
    rows = np.concatenate([flat, np.eye(k, dtype=np.float32)[labels]], axis=1)
    ds = datasets.pipeline(rows, args.batch_size, binarization=binarization, shuffle=shuffle, seed=args.seed)
    width = flat.shape[1]
    return ds.map(lambda b: (tf.reshape(b[:, :width], (-1, *shape)), b[:, width:]))


def training_data(args):
    """``cli.data.training_data`` with labels: the pipelines yield ``(x, one_hot(y))``.

    Args:
        args: parsed options of ``keras-vae train``.

    Returns:
        ``(train_ds, test_ds, test, condition_dim)``: the pipelines, the test
        split (examples shaped for the model, static binarisation applied)
        and the number of classes.

    Raises:
        ValueError: a dataset without labels, or a table.
    """
    import dataclasses

    from keras_vae import datasets
    from keras_vae.cli import data as cli_data
    from keras_vae.cli import options

    train = cli_data.load(args, "train", limit=args.limit)
    if train.kind == "table":
        raise ValueError(f"--condition labels needs labelled examples; {args.dataset} is a table.")
    test = datasets.load_data(args.dataset, "test", **options.source_kwargs(args))
    if train.y is None or test.y is None:
        raise ValueError(
            f"--condition labels needs a dataset with labels; {args.dataset} has none "
            "(an .npz with x and y arrays, an image folder with one subfolder per class, or a named dataset)."
        )
    shape = cli_data.model_input_shape(args, train)
    train, test = cli_data.reshaped(train, shape, args.dataset), cli_data.reshaped(test, shape, args.dataset)
    k = num_classes(train, test)
    train_ds = _pairs(train.x, train.y, k, args, args.binarization, shuffle=True)
    if args.binarization != "none":
        test = dataclasses.replace(test, x=datasets.binarize_test(test.x))
    test_ds = _pairs(test.x, test.y, k, args, "none", shuffle=False)
    return train_ds, test_ds, test, k


def write_examples(model, target, args, test, write_atomically):
    """A conditional run's ``samples.png`` (one row per class) and ``reconstructions.png`` (given the labels).

    Args:
        model: the trained conditional model.
        target: the run directory.
        args: parsed options of ``keras-vae train``.
        test: the labelled test split (``keras_vae.datasets.Data``).
        write_atomically: ``keras_vae.cli.runs.write_atomically``.
    """
    import pathlib

    import numpy as np

    from keras_vae import datasets
    from keras_vae import plotting

    target = pathlib.Path(target)
    shape = datasets.image_shape(args.dataset) if test.kind == "named" and len(test.input_shape) == 1 else None
    names = list(test.class_names) if test.class_names else None
    write_atomically(
        target / "samples.png",
        lambda p: plotting.plot_class_samples(
            model, n_per_class=10, class_names=names, image_shape=shape, seed=args.seed, path=p
        ),
    )
    condition = np.eye(model.condition_dim, dtype=np.float32)[test.y[:10]]
    write_atomically(
        target / "reconstructions.png",
        lambda p: plotting.plot_reconstructions(model, test.x[:10], image_shape=shape, path=p, condition=condition),
    )
