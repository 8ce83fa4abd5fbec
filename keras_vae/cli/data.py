"""The data of the ``keras-vae`` subcommands: any source ``--dataset`` names, shaped for the model.

``--dataset`` is a name (digits, mnist, fashion_mnist), a path (a
``.npy``/``.npz`` file, a folder of images, a CSV/Parquet table) or a
tensorflow-datasets name; ``keras_vae.datasets.load_data`` reads it. A table's
schema is written beside the model as ``schema.json`` and read from there by
``evaluate``, ``score`` and ``plot``.
"""

import pathlib

from keras_vae.cli import options

#: The artefacts of a run on images (or any arrays) and on a table.
IMAGE_ARTEFACTS = ("model.keras", "metrics.json", "history.json", "samples.png", "reconstructions.png")
TABLE_ARTEFACTS = ("model.keras", "metrics.json", "history.json", "schema.json", "samples.csv", "reconstructions.csv")
#: Rows of decoded samples a table run writes.
TABLE_SAMPLES = 100


def is_table(args):
    """Whether ``--dataset`` names a table (by its suffix; nothing is read)."""
    from keras_vae import tables

    return bool(args.dataset) and tables.is_table_path(args.dataset)


def artefacts(args):
    """The files ``keras-vae train`` writes for these options."""
    return TABLE_ARTEFACTS if is_table(args) else IMAGE_ARTEFACTS


def _preset_shape(args):
    """The ``input_shape`` of the ``--preset``, if it has one (convolutional presets)."""
    name = getattr(args, "preset", None)
    if not name:
        return None
    from keras_vae import presets

    return presets.PRESETS[name].get("input_shape")


def model_input_shape(args, data):
    """The model's ``input_shape`` for ``data`` (a ``keras_vae.datasets.Data``).

    The named datasets are flat rows; with a convolutional ``--preset`` they
    become images ``(height, width, 1)``. Other sources keep their shape.
    """
    from keras_vae import datasets

    if data.kind == "named" and _preset_shape(args) is not None:
        return (*datasets.image_shape(args.dataset), 1)
    if _preset_shape(args) is not None and len(data.input_shape) < 2:
        raise ValueError(
            f"--preset {args.preset} is convolutional and needs images; {args.dataset} holds examples of "
            f"shape {data.input_shape}."
        )
    return data.input_shape


def _schema_for(args, model_path):
    """The table schema stored beside a model (or given by ``--schema``)."""
    from keras_vae import tables

    path = getattr(args, "schema", None) or pathlib.Path(model_path).parent / "schema.json"
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(
            f"no table schema at {path}: keras-vae train writes schema.json beside model.keras; "
            "pass its path with --schema."
        )
    return tables.TableSchema.load(path)


def load(args, split, model=None, model_path=None, limit=None):
    """One split of ``--dataset``, shaped as ``model`` takes it.

    Args:
        args: parsed data options (``dataset``, ``data_path``, ``data_dir``,
            ``pixel_scale``, ``image_size``, ``color_mode``).
        split: ``"train"`` or ``"test"``.
        model: a loaded model: flat rows are reshaped to its ``input_shape``.
        model_path: its file; a table is encoded with the ``schema.json`` beside it.
        limit: keep only the first ``limit`` examples.

    Returns:
        ``keras_vae.datasets.Data``.
    """
    from keras_vae import datasets

    schema = _schema_for(args, model_path) if model_path is not None and is_table(args) else None
    data = datasets.load_data(args.dataset, split, schema=schema, limit=limit, **options.source_kwargs(args))
    if model is not None:
        data = reshaped(data, tuple(model.input_shape), args.dataset)
    return data


def reshaped(data, input_shape, name):
    """``data`` with its examples reshaped to ``input_shape`` (same number of values), or a clear error."""
    import dataclasses

    import numpy as np

    if data.input_shape == tuple(input_shape):
        return data
    if int(np.prod(data.input_shape)) != int(np.prod(input_shape)):
        raise ValueError(
            f"{name} holds examples of shape {data.input_shape} but the model takes {tuple(input_shape)}."
        )
    return dataclasses.replace(data, x=data.x.reshape((len(data.x), *input_shape)))


def training_data(args):
    """The training and test pipelines of ``keras-vae train``, and what the model needs to know.

    Args:
        args: parsed options of ``keras-vae train``.

    Returns:
        ``(train_ds, test_ds, test)``: ``tf.data`` pipelines of
        ``[batch, *input_shape]`` batches, and the test split
        (``keras_vae.datasets.Data``, examples shaped for the model; its
        ``schema`` is the table's).

    Raises:
        ValueError: a malformed source, or ``--binarization`` of a table.
    """
    import dataclasses

    from keras_vae import datasets

    train = load(args, "train", limit=args.limit)
    if train.kind == "table" and args.binarization != "none":
        raise ValueError(f"--binarization {args.binarization} is for images; {args.dataset} is a table.")
    test = datasets.load_data(args.dataset, "test", schema=train.schema, **options.source_kwargs(args))
    shape = model_input_shape(args, train)
    train, test = reshaped(train, shape, args.dataset), reshaped(test, shape, args.dataset)
    train_ds = datasets.pipeline(
        train.x, args.batch_size, binarization=args.binarization, shuffle=True, seed=args.seed
    )
    test_binarization = "none" if args.binarization == "none" else "static"
    if test_binarization == "static":
        test = dataclasses.replace(test, x=datasets.binarize_test(test.x))
    test_ds = datasets.pipeline(test.x, args.batch_size)
    return train_ds, test_ds, test


def model_arguments(test):
    """``build_model`` keyword arguments for the data: ``input_shape``, and a table's mixed head."""
    kwargs = {"input_shape": test.input_shape}
    if test.schema is not None:
        kwargs["likelihood"] = test.schema.observation()
    return kwargs


def add_bits_per_dim(metrics, model):
    """Adds ``elbo_bits_per_dim`` (and ``log_px_bits_per_dim``) for a discrete observation model.

    Args:
        metrics: dict of test metrics in nats per example (``elbo``, maybe ``log_px``).
        model: the trained model.

    Returns:
        ``metrics``.
    """
    from keras_vae import evaluation

    if getattr(model.observation, "discrete", False):
        for name in ("elbo", "log_px"):
            if name in metrics:
                metrics[f"{name}_bits_per_dim"] = evaluation.bits_per_dim(metrics[name], model.input_dim)
    return metrics


def write_examples(model, target, args, test, write_atomically):
    """Writes a run's samples and reconstructions: PNG grids of images, or CSV rows of a table.

    Args:
        model: the trained model.
        target: the run directory.
        args: parsed options of ``keras-vae train``.
        test: the test split (``keras_vae.datasets.Data``).
        write_atomically: ``keras_vae.cli.runs.write_atomically``.
    """
    import keras

    from keras_vae import datasets
    from keras_vae import plotting

    target = pathlib.Path(target)
    if test.schema is not None:
        schema = test.schema
        write_atomically(target / "schema.json", schema.save)
        samples = keras.ops.convert_to_numpy(model.sample(TABLE_SAMPLES, seed=args.seed)["x"])
        write_atomically(target / "samples.csv", lambda p: schema.decode(samples).to_csv(p, index=False))
        rows = test.frame.iloc[:10]
        recon = schema.decode(keras.ops.convert_to_numpy(model.reconstruct(test.x[:10])))
        both = recon.add_prefix("reconstructed_")
        both.insert(0, "row", range(len(rows)))
        for name in reversed(rows.columns):
            both.insert(1, name, rows[name].to_numpy())
        write_atomically(target / "reconstructions.csv", lambda p: both.to_csv(p, index=False))
        return
    shape = datasets.image_shape(args.dataset) if test.kind == "named" and len(test.input_shape) == 1 else None
    write_atomically(
        target / "samples.png", lambda p: plotting.plot_samples(model, n=64, image_shape=shape, seed=args.seed, path=p)
    )
    write_atomically(
        target / "reconstructions.png",
        lambda p: plotting.plot_reconstructions(model, test.x[:10], image_shape=shape, path=p),
    )
