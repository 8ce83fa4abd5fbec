"""Any tensorflow-datasets image dataset by name (``"cifar10"``, ``"kmnist"``, ``"emnist/letters"``, ...).

The examples are the dataset's image feature (its supervised input, or its
first ``Image`` feature), 8-bit values divided by 255; the labels are its
supervised label (or a ``label`` feature), if any. A dataset already in
``data_dir`` is read without the network; otherwise it is downloaded, and
without a reachable download host the error says so at once.
"""

import numpy as np


def _split_names(builder):
    try:
        return sorted(builder.info.splits.keys())
    except Exception:  # noqa: BLE001  (info of an unprepared dataset may be partial)
        return []


def _keys(info):
    """``(image key, label key or None)`` of a dataset's features."""
    import tensorflow_datasets as tfds

    features = info.features
    supervised = info.supervised_keys
    if supervised and len(supervised) == 2 and isinstance(supervised[0], str):
        x_key, y_key = supervised
    else:
        images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
        if not images:
            raise ValueError(
                f"tensorflow-datasets {info.name!r} has no image feature ({', '.join(features.keys())}); "
                "keras-vae reads image datasets by name (save other data as .npy or a table)."
            )
        x_key = images[0]
        y_key = "label" if "label" in features.keys() else None
    if y_key is not None and not isinstance(features[y_key], tfds.features.ClassLabel):
        y_key = None
    return x_key, y_key


def load_tfds(name, split="train", data_dir=None, limit=None):
    """One split of a tensorflow-datasets image dataset as arrays.

    Args:
        name: a tensorflow-datasets name, e.g. ``"cifar10"`` or ``"mnist:3.*.*"``.
        split: a split name (``"train"``, ``"test"``, or tfds slicing such
            as ``"train[:10%]"``).
        data_dir: tensorflow-datasets data directory.
        limit: read only the first ``limit`` examples.

    Returns:
        dict: ``"x"`` float32 ``[N, height, width, channels]`` in [0, 1],
        ``"y"`` int32 ``[N]`` labels or None.

    Raises:
        ValueError: an unknown name or split, or a dataset without images.
        RuntimeError: the dataset is not in ``data_dir`` and cannot be
            downloaded (offline) or prepared.

    Example:
        >>> load_tfds("cifar10", "test", data_dir="~/tensorflow_datasets")["x"].shape
        (10000, 32, 32, 3)
    """
    import tensorflow_datasets as tfds

    from keras_vae import datasets

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (DatasetNotFoundError and others)
        first = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(
            f"{name!r} is neither a file, a folder nor a tensorflow-datasets name ({first})."
        ) from None
    x_key, y_key = _keys(builder.info)
    read = split if limit is None else f"{split}[:{int(limit)}]"
    try:
        ds = tfds.load(name, split=read, data_dir=data_dir, download=False)
    except Exception as err:  # noqa: BLE001
        if "split" in str(err).lower() and _split_names(builder):
            raise ValueError(
                f"tensorflow-datasets {name!r} has no split {split!r}; it has {', '.join(_split_names(builder))}."
            ) from None
        if not datasets._reachable():
            raise RuntimeError(
                f"{name!r} is not in the tensorflow-datasets data directory ({data_dir or 'the default'}) and its "
                "download host cannot be reached (offline?). Download it once online with --data-dir, or save the "
                "images as .npy/.npz or as a folder and pass that path."
            ) from None
        try:
            ds = tfds.load(name, split=read, data_dir=data_dir, download=True)
        except Exception as err2:
            raise RuntimeError(
                f"Could not download or prepare {name!r} with tensorflow-datasets ({type(err2).__name__}: {err2})."
            ) from err2
    xs, ys = [], []
    for example in tfds.as_numpy(ds):
        xs.append(example[x_key])
        if y_key is not None:
            ys.append(example[y_key])
    if not xs:
        raise ValueError(f"tensorflow-datasets {name}/{split} holds no examples.")
    x = np.stack(xs)
    x = x.astype(np.float32) / np.float32(255.0) if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)
    y = np.asarray(ys).astype(np.int32) if ys else None
    return {"x": x, "y": y}
