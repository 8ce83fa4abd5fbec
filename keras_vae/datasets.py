"""Image datasets as flat float32 arrays and ``tf.data`` pipelines.

``digits`` is scikit-learn's bundled 8x8 digits (no download). ``mnist`` and
``fashion_mnist`` come from a local ``.npz`` in the Keras ``mnist.npz`` layout
(``path=`` or the environment variables ``KERAS_VAE_MNIST_PATH`` /
``KERAS_VAE_FASHION_MNIST_PATH``) or else from tensorflow-datasets. Pixels are
scaled to [0, 1]; :func:`load` can binarise them statically (once, seeded) or
dynamically (a fresh Bernoulli draw every epoch, as in Burda et al., 2015).

:func:`load_data` is the one entry for any source: these names, a
``.npy``/``.npz`` file of any example shape (:mod:`keras_vae.arrays`), a folder
of images with class subfolders (:mod:`keras_vae.images`), a CSV or Parquet
table (:mod:`keras_vae.tables`) or any tensorflow-datasets image dataset
(:mod:`keras_vae.catalog`).
"""

import dataclasses
import functools
import os
import socket
import zipfile

import numpy as np
import tensorflow as tf

from keras_vae import in_memory

DATASETS = ("digits", "mnist", "fashion_mnist")
SPLITS = ("train", "test")
BINARIZATIONS = ("none", "static", "dynamic")

#: ``pixel_scale`` values: ``"auto"`` (uint8 0..255, or floats already in [0, 1]), or the value of a white pixel.
PIXEL_SCALES = ("auto", 255, 1)

_IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion_mnist": (28, 28)}
_NPZ_LAYOUT = (
    "a .npz in the Keras mnist.npz layout: x_train [N, 28, 28] and x_test [M, 28, 28] "
    "with pixel values 0..255 (uint8) or floats in [0, 1], y_train [N] and y_test [M] integer labels"
)
#: Seed of the static binarisation of every evaluation (test) set: the
#: command line, the evaluation helpers, the benchmarks and the notebooks all
#: score the same binary test images through :func:`binarize_test`.
TEST_BINARIZATION_SEED = 1234

#: Environment variables naming local copies of the datasets, by name.
LOCAL_PATH_VARIABLES = {"mnist": "KERAS_VAE_MNIST_PATH", "fashion_mnist": "KERAS_VAE_FASHION_MNIST_PATH"}

_DIGITS_TEST_FRACTION = 0.2
_DIGITS_RANDOM_STATE = 0


def _check_name(name):
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}.")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected 'train' or 'test'.")


def image_shape(name):
    """Image shape of a dataset, to reshape its flat rows for display.

    Args:
        name: one of ``DATASETS``.

    Returns:
        ``(height, width)``: ``(8, 8)`` for digits, ``(28, 28)`` for mnist and
        fashion_mnist.

    Raises:
        ValueError: unknown ``name``.
    """
    _check_name(name)
    return _IMAGE_SHAPES[name]


def load_arrays(name, split="train", path=None, data_dir=None, pixel_scale="auto"):
    """Loads one split of a dataset as flat numpy arrays.

    Results are cached in-process per (name, split, file or data_dir); a local
    file is re-read when its modification time or size changes. The returned
    arrays are read-only views of the cache: copy them to modify.

    Args:
        name: one of ``DATASETS``.
        split: ``"train"`` or ``"test"``. For digits, a fixed stratified
            80/20 split of the 1797 images (1437 train, 360 test).
        path: local ``.npz`` in the Keras ``mnist.npz`` layout (mnist and
            fashion_mnist only). Defaults to the environment variable
            ``KERAS_VAE_MNIST_PATH`` / ``KERAS_VAE_FASHION_MNIST_PATH``, and
            without either, tensorflow-datasets is used.
        data_dir: tensorflow-datasets data directory (when no file is used).
        pixel_scale: how a local file's pixel values map to [0, 1]: 255
            (0..255 intensities, divided by 255), 1 (already in [0, 1]), or
            ``"auto"``: integer images with values above 1 are 0..255, float
            images within [0, 1] are already scaled, and anything else (for
            example float images with values above 1, or integer images of
            only 0 and 1) is refused as ambiguous.

    Returns:
        ``(x, y)``: ``x`` float32 ``[N, D]`` pixel intensities in [0, 1]
        (``D`` = 64 for digits, 784 for mnist and fashion_mnist), ``y`` int32
        ``[N]`` class labels.

    Raises:
        ValueError: unknown name or split, a path for digits, or a malformed file.
        FileNotFoundError: ``path`` (or the environment variable) names no file.
        RuntimeError: tensorflow-datasets could not download or prepare the data.
    """
    _check_name(name)
    _check_split(split)
    if pixel_scale not in PIXEL_SCALES:
        raise ValueError(f"pixel_scale must be one of {PIXEL_SCALES}, got {pixel_scale!r}.")
    if name == "digits":
        if path is not None or data_dir is not None:
            raise ValueError("The digits dataset is bundled with scikit-learn; it takes no path or data_dir.")
        x, y = _cached_arrays(name, split, None, None, None)
    else:
        path = _resolve_path(name, path)
        if path is None:
            x, y = _cached_arrays(name, split, None, None, data_dir)
        else:
            stat = os.stat(path)
            x, y = _cached_arrays(name, split, path, (stat.st_mtime_ns, stat.st_size), None, pixel_scale)
    return x.view(), y.view()


def _resolve_path(name, path):
    """Absolute path of the local file for ``name``, or None to use tfds."""
    origin = "path="
    if path is None:
        path = os.environ.get(LOCAL_PATH_VARIABLES[name]) or None
        origin = f"environment variable {LOCAL_PATH_VARIABLES[name]}"
    if path is None:
        return None
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path} (from {origin}); expected {_NPZ_LAYOUT}.")
    return path


@functools.lru_cache(maxsize=8)
def _cached_arrays(name, split, path, file_stamp, data_dir, pixel_scale="auto"):
    """Loads and freezes ``(x, y)``; ``file_stamp`` only keys the cache."""
    if name == "digits":
        x, y = _digits(split)
    elif path is not None:
        x, y = _read_npz(name, split, path, pixel_scale)
    else:
        x, y = _tfds(name, split, data_dir)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _digits(split):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=_DIGITS_TEST_FRACTION, stratify=y, random_state=_DIGITS_RANDOM_STATE
    )
    return (x_train, y_train) if split == "train" else (x_test, y_test)


def _read_npz(name, split, path, pixel_scale="auto"):
    keys = (f"x_{split}", f"y_{split}")
    if not zipfile.is_zipfile(path):
        what = "empty" if os.path.getsize(path) == 0 else "not a .npz (zip) archive"
        raise ValueError(f"{path} is {what}; expected {_NPZ_LAYOUT}.")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise ValueError(
                    f"{path} lacks key(s) {', '.join(missing)} (has {', '.join(data.files) or 'none'}); "
                    f"expected {_NPZ_LAYOUT}."
                )
            x, y = data[keys[0]], data[keys[1]]
    except (EOFError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} could not be read as a .npz archive ({err}); expected {_NPZ_LAYOUT}.") from None
    except ValueError as err:
        if "lacks key" in str(err):
            raise
        raise ValueError(f"{path}: {err}; expected {_NPZ_LAYOUT} (no pickled objects).") from None
    return _to_flat(name, x, y, source=path, pixel_scale=pixel_scale)


def _reachable(host="storage.googleapis.com", port=443, timeout=3.0):
    """Whether a TCP connection to tensorflow-datasets' download host opens within ``timeout`` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds(name, split, data_dir):
    env_var = LOCAL_PATH_VARIABLES[name]
    offline_hint = (
        f"pass a local file with path=... (--data-path on the command line) or set the environment variable "
        f"{env_var}; the file must be {_NPZ_LAYOUT}."
    )
    try:
        import tensorflow_datasets as tfds

        prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001  (tfds raises many kinds; the load below reports them)
        prepared = False
    if not prepared and not _reachable():
        # tensorflow-datasets would retry its download for minutes.
        raise RuntimeError(
            f"{name!r} is not in the tensorflow-datasets data directory and its download host cannot be "
            f"reached (offline?). Download it once online, or {offline_hint}"
        )
    try:
        x, y = tfds.as_numpy(
            tfds.load(name, split=split, data_dir=data_dir, batch_size=-1, as_supervised=True)
        )
    except Exception as exc:
        raise RuntimeError(
            f"Could not download or prepare {name!r} with tensorflow-datasets ({type(exc).__name__}: {exc}). "
            f"Offline, {offline_hint}"
        ) from exc
    return _to_flat(name, x, y, source=f"tensorflow-datasets {name}/{split}", pixel_scale=255)


def _pixel_scale(x, source, pixel_scale):
    """The value of a white pixel in ``x`` (255 or 1), checked; see ``load_arrays``."""
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{source}: pixel values must be finite.")
    low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    choose = "pass pixel_scale=255 (--pixel-scale 255) for 0..255 intensities or 1 for values already in [0, 1]"
    if pixel_scale == "auto":
        integer = np.issubdtype(x.dtype, np.integer)
        if integer and high > 1:
            pixel_scale = 255
        elif not integer and high <= 1:
            pixel_scale = 1
        else:
            kind = f"{x.dtype}"
            raise ValueError(
                f"{source}: {kind} pixel values in [{low:g}, {high:g}] are ambiguous (uint8 0..255 or floats in "
                f"[0, 1] are read without asking); {choose}."
            )
    if low < 0 or high > pixel_scale:
        raise ValueError(f"{source}: pixel values in [{low:g}, {high:g}] exceed [0, {pixel_scale}]; {choose}.")
    return pixel_scale


def _to_flat(name, x, y, source, pixel_scale="auto"):
    """Checks images and labels; returns float32 [N, D] in [0, 1] and int32 [N]."""
    x, y = np.asarray(x), np.asarray(y)
    dim = int(np.prod(_IMAGE_SHAPES[name]))
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != dim:
        raise ValueError(f"{source}: images have shape {x.shape}; expected [N, {dim}] pixels per image.")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{source}: labels have shape {y.shape}; expected ({x.shape[0]},).")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"{source}: need numeric images and integer labels, got {x.dtype} and {y.dtype}.")
    scale = _pixel_scale(x, source, pixel_scale)
    x = x.reshape(x.shape[0], dim).astype(np.float32)
    return x / np.float32(scale), y.astype(np.int32)


def binarize(x, method="static", seed=0):
    """Binarises intensities in [0, 1].

    Args:
        x: array of probabilities in [0, 1], any shape.
        method: ``"static"``: one Bernoulli(x) draw per entry from
            ``np.random.default_rng(seed)`` (so a fixed seed gives a fixed
            result); ``"threshold"``: ``x > 0.5``.
        seed: seed of the static draw.

    Returns:
        float32 array of 0s and 1s with the shape of ``x``.

    Raises:
        ValueError: unknown ``method`` or values outside [0, 1] (or NaN).
    """
    if method not in ("static", "threshold"):
        raise ValueError(f"Unknown binarization method {method!r}; expected 'static' or 'threshold'.")
    x = np.asarray(x, dtype=np.float32)
    if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # NaN fails both comparisons
        raise ValueError("binarize needs values in [0, 1].")
    if method == "threshold":
        return (x > 0.5).astype(np.float32)
    return (np.random.default_rng(seed).random(x.shape) < x).astype(np.float32)


def binarize_test(x):
    """The fixed binary version of an evaluation set.

    One seeded Bernoulli draw (:func:`binarize` with ``"static"`` and
    :data:`TEST_BINARIZATION_SEED`), so every evaluation of a model, in
    any process, scores the same binary images.

    Args:
        x: intensities in [0, 1], ``[N, ...]``.

    Returns:
        float32 array of 0s and 1s, the shape of ``x``.

    Example:
        >>> x_test, _ = load_arrays("digits", "test")
        >>> x_bin = binarize_test(x_test)   # [360, 64], the same every call
    """
    return binarize(x, "static", seed=TEST_BINARIZATION_SEED)


def local_path(name, path=None, *, required=False):
    """The local file of ``name``: ``path`` if given, else its environment variable.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        path: an explicit file, or None.
        required: if True, a missing file is an error (for scripts that do
            not fall back to tensorflow-datasets) rather than None.

    Returns:
        The absolute path of an existing file, or None when neither ``path``
        nor the environment variable (:data:`LOCAL_PATH_VARIABLES`) is set
        and ``required`` is False.

    Raises:
        ValueError: ``name`` has no local-file form.
        FileNotFoundError: the path given (or the variable's) names no file,
            or ``required`` and neither is set; the message says what to pass.

    Example:
        >>> path = local_path("mnist", args.data_path, required=True)
    """
    if name not in LOCAL_PATH_VARIABLES:
        raise ValueError(f"{name!r} has no local file; local files exist for {', '.join(LOCAL_PATH_VARIABLES)}.")
    resolved = _resolve_path(name, path)
    if resolved is None and required:
        raise FileNotFoundError(
            f"No local {name} file: pass one with path=... (--data-path on the command line) or set the "
            f"environment variable {LOCAL_PATH_VARIABLES[name]}; the file must be {_NPZ_LAYOUT}."
        )
    return resolved


def load(
    name,
    split="train",
    batch_size=100,
    binarization="none",
    shuffle=None,
    seed=0,
    path=None,
    data_dir=None,
    drop_remainder=False,
    limit=None,
    pixel_scale="auto",
):
    """A ``tf.data`` pipeline of flat image batches (no labels).

    Args:
        name: one of ``DATASETS``.
        split: ``"train"`` or ``"test"``.
        batch_size: examples per batch, >= 1.
        binarization: ``"none"`` (intensities in [0, 1]); ``"static"`` (one
            seeded Bernoulli draw, :func:`binarize`, before batching);
            ``"dynamic"`` (a fresh Bernoulli draw of every batch each time it
            is produced, so each epoch differs; reproducible for a seed).
        shuffle: shuffle the whole split, afresh each epoch; defaults to True
            for ``"train"`` and False otherwise.
        seed: seed of the shuffle and of the binarisation.
        path: local ``.npz`` file, see :func:`load_arrays`.
        data_dir: tensorflow-datasets data directory, see :func:`load_arrays`.
        drop_remainder: drop a last batch smaller than ``batch_size``.
        limit: keep only the first ``limit`` examples of the split.
        pixel_scale: see :func:`load_arrays`.

    Returns:
        ``tf.data.Dataset`` of float32 ``[batch, D]`` tensors.

    Raises:
        ValueError: unknown name, split or binarization, ``batch_size < 1``,
            negative ``limit``, or no data (``limit=0``, or fewer examples than
            ``batch_size`` with ``drop_remainder``); see also :func:`load_arrays`.
    """
    _check_name(name)
    _check_split(split)
    if binarization not in BINARIZATIONS:
        raise ValueError(f"Unknown binarization {binarization!r}; options: {', '.join(BINARIZATIONS)}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if limit is not None and (int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}.")
    batch_size = int(batch_size)
    x, _ = load_arrays(name, split, path=path, data_dir=data_dir, pixel_scale=pixel_scale)
    if limit is not None:
        x = x[: int(limit)]
    if len(x) == 0 or (drop_remainder and len(x) < batch_size):
        raise ValueError(
            f"empty dataset: {len(x)} examples of {name}/{split} (limit={limit}) "
            f"give no batch of {batch_size} (drop_remainder={drop_remainder})."
        )
    if shuffle is None:
        shuffle = split == "train"
    return pipeline(x, batch_size, binarization=binarization, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder)


def pipeline(x, batch_size=100, binarization="none", shuffle=False, seed=0, drop_remainder=False):
    """A ``tf.data`` pipeline of batches of an array of examples of any shape.

    Args:
        x: float32 ``[N, *input_shape]`` values (in [0, 1] to binarise).
        batch_size: examples per batch, >= 1.
        binarization: ``"none"``, ``"static"`` or ``"dynamic"``, see :func:`load`.
        shuffle: shuffle all the examples afresh each epoch.
        seed: seed of the shuffle and of the binarisation.
        drop_remainder: drop a last batch smaller than ``batch_size``.

    Returns:
        ``tf.data.Dataset`` of float32 ``[batch, *input_shape]`` tensors. It
        records what it was made from (``keras_vae.in_memory.ArraySource``):
        a model's ``fit`` with XLA runs its epochs from the array in compiled
        programs, without ``tf.data``.

    Example:
        >>> ds = pipeline(np.zeros((10, 28, 28, 1), "float32"), batch_size=4)   # batches [4, 28, 28, 1]
    """
    if binarization not in BINARIZATIONS:
        raise ValueError(f"Unknown binarization {binarization!r}; options: {', '.join(BINARIZATIONS)}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    batch_size = int(batch_size)
    x = np.asarray(x, np.float32)
    if binarization == "static":
        x = binarize(x, "static", seed=seed)

    ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    # Where batch_size divides N no batch is dropped either way, and the batches get a
    # fixed (static) size, with which a mirrored fit pulls an execution's batches at
    # once (keras_vae.training.stack_steps).
    ds = ds.batch(batch_size, drop_remainder=drop_remainder or len(x) % batch_size == 0)
    if binarization == "dynamic":
        # One [2] stateless seed per batch, from a stream that differs every
        # epoch but is fixed by `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(_bernoulli, num_parallel_calls=tf.data.AUTOTUNE)
    # The pipeline is cheap (well under a millisecond a batch); tf.data's
    # autotuner, left on, competes with the training step for the cores and
    # on a 2-core CPU cut training throughput by up to 40% in about half of
    # the epochs (benchmarks/throughput.py). Off, AUTOTUNE parallelism is a
    # fixed min(16, CPU cores).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.prefetch(tf.data.AUTOTUNE).with_options(options)
    # With XLA, `fit` runs this pipeline's epochs from the array itself (keras_vae.in_memory).
    source = in_memory.ArraySource(x, batch_size, binarization == "dynamic", bool(shuffle), int(seed), drop_remainder)
    return in_memory.attach(ds, source)


def _bernoulli(probs, seed):
    """One Bernoulli(probs) draw of a whole batch; uniform in [0, 1) so 0 and 1 are exact."""
    return tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed=seed) < probs, tf.float32)


# ------------------------------------------------------------ any data source

#: Fraction of the rows of a source without splits (one array, a folder, a table) held out as "test".
TEST_FRACTION = 0.2
#: Seed of that split, fixed so that train, evaluate and score see the same rows.
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Data:
    """One split of a data source, ready for a model.

    Attributes:
        x: float32 ``[N, *input_shape]``: values in [0, 1] for images and
            arrays, the encoded matrix ``[N, schema.width]`` for a table.
        y: int32 ``[N]`` labels, or None.
        kind: ``"named"`` (digits, mnist, fashion_mnist: flat rows),
            ``"arrays"`` (.npy/.npz), ``"images"`` (a folder or a
            tensorflow-datasets name) or ``"table"`` (CSV/Parquet).
        schema: the ``keras_vae.tables.TableSchema`` of a table, else None.
        class_names: names of the labels (an image folder's subfolders), or None.
        frame: the split's rows as a ``pandas.DataFrame`` (tables only).
    """

    x: np.ndarray
    y: np.ndarray = None
    kind: str = "arrays"
    schema: object = None
    class_names: tuple = None
    frame: object = None

    @property
    def input_shape(self):
        """Shape of one example, ``x.shape[1:]``."""
        return tuple(self.x.shape[1:])

    @property
    def image_shape(self):
        """``(height, width)`` or ``(height, width, channels)`` to draw an example as an image, or None."""
        if self.kind == "named":
            return None
        shape = self.input_shape
        if len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3)):
            return shape
        return None


def source_kind(dataset):
    """What ``dataset`` names: ``"named"``, ``"arrays"``, ``"images"``, ``"table"`` or ``"tfds"``.

    Args:
        dataset: a name of :data:`DATASETS`, a ``.npy``/``.npz`` file, a
            folder of images, a ``.csv``/``.tsv``/``.parquet`` table, or a
            tensorflow-datasets name.

    Returns:
        str. Decided by the name alone (no file is read).

    Example:
        >>> source_kind("data/train.csv")
        'table'
    """
    from keras_vae import arrays
    from keras_vae import tables

    text = os.fspath(dataset)
    if text in DATASETS:
        return "named"
    if tables.is_table_path(text):
        return "table"
    if text.lower().endswith(arrays.ARRAY_SUFFIXES):
        return "arrays"
    if os.path.isdir(text):
        return "images"
    if os.path.exists(text):
        raise ValueError(
            f"{text}: unknown data file type; expected .npy, .npz, .csv, .tsv, .parquet, or a folder of images."
        )
    return "tfds"


def split_rows(n, split, test_fraction=TEST_FRACTION, seed=SPLIT_SEED, source=None):
    """Row indices of ``split`` in a fixed shuffle of ``n`` rows.

    Args:
        n: number of rows, >= 2.
        split: ``"train"`` or ``"test"``.
        test_fraction: fraction of the rows (at least one) in ``"test"``.
        seed: seed of the shuffle.
        source: what the rows come from, named in the error.

    Returns:
        int array of sorted row indices; the two splits partition ``range(n)``.

    Example:
        >>> len(split_rows(10, "test"))
        2
    """
    _check_split(split)
    if n < 2:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}{n} example(s); need at least 2 to hold some out for testing.")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


def load_data(
    dataset,
    split="train",
    *,
    data_dir=None,
    path=None,
    pixel_scale="auto",
    image_size=None,
    color_mode=None,
    schema=None,
    limit=None,
):
    """One split of any data source: a name, a file, a folder or a tensorflow-datasets name.

    Sources without splits (one array, a folder, a table) are split once,
    :data:`TEST_FRACTION` of the rows held out as ``"test"`` by a fixed
    shuffle (:func:`split_rows`), so every call sees the same rows.

    Args:
        dataset: one of :data:`DATASETS` (flat rows, :func:`load_arrays`);
            a ``.npy``/``.npz`` file (:mod:`keras_vae.arrays`, values scaled
            by ``pixel_scale``); a folder of images, class subfolders giving
            labels (:mod:`keras_vae.images`); a ``.csv``, ``.tsv`` or
            ``.parquet`` table (:mod:`keras_vae.tables`); or a
            tensorflow-datasets image dataset name (:mod:`keras_vae.catalog`).
        split: ``"train"`` or ``"test"``.
        data_dir: tensorflow-datasets data directory.
        path: local ``.npz`` of a named dataset (see :func:`load_arrays`).
        pixel_scale: ``"auto"``, 255 or 1, see :func:`load_arrays`
            (named datasets and ``.npy``/``.npz`` files).
        image_size: ``(height, width)`` to resize a folder's images to.
        color_mode: ``"grayscale"``, ``"rgb"``, ``"rgba"`` or None (a folder's images).
        schema: a table's ``TableSchema`` (e.g. the one stored with a
            model); None: inferred from the training rows.
        limit: keep only the first ``limit`` examples of the split.

    Returns:
        :class:`Data`.

    Raises:
        ValueError: a malformed file or folder (the message names the file
            and what was expected), an unknown name or split.
        FileNotFoundError: a path that names nothing.
        RuntimeError: a tensorflow-datasets name that is neither prepared
            nor downloadable.

    Example:
        >>> data = load_data("images.npz")          # x_train [N, 32, 32, 3] uint8
        >>> data.x.shape, data.input_shape
        ((N, 32, 32, 3), (32, 32, 3))
        >>> table = load_data("patients.csv", "test")
        >>> table.schema.decode(table.x).equals(table.frame)
        True
    """
    _check_split(split)
    if pixel_scale not in PIXEL_SCALES:
        raise ValueError(f"pixel_scale must be one of {PIXEL_SCALES}, got {pixel_scale!r}.")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    kind = source_kind(dataset)
    text = os.fspath(dataset)
    if kind == "named":
        x, y = load_arrays(text, split, path=path, data_dir=data_dir, pixel_scale=pixel_scale)
        data = Data(x, y, kind="named")
    elif kind == "tfds":
        from keras_vae import catalog

        found = catalog.load_tfds(text, split, data_dir=data_dir, limit=limit)
        data = Data(found["x"], found["y"], kind="images")
    elif kind == "arrays":
        from keras_vae import arrays

        found = arrays.read_arrays(text)
        found = found[split] if "train" in found else _take(found, split_rows(len(found["x"]), split, source=text))
        x = found["x"]
        scale = _pixel_scale(x, text, pixel_scale)
        data = Data((x.astype(np.float32) / np.float32(scale)), found["y"], kind="arrays")
    elif kind == "images":
        from keras_vae import images

        found = images.load_image_folder(text, image_size=image_size, color_mode=color_mode)
        rows = split_rows(len(found["x"]), split, source=text)
        y = None if found["y"] is None else found["y"][rows]
        data = Data(found["x"][rows], y, kind="images", class_names=tuple(found["class_names"]) or None)
    else:
        from keras_vae import tables

        frame = tables.read_table(text)
        if schema is None:
            # Kinds and labels from every row (no category unknown to a split); the
            # numeric columns standardised with the training rows' mean and std.
            train_frame = frame.iloc[split_rows(len(frame), "train", source=text)]
            schema = tables.TableSchema.infer(frame, source=text).refit(train_frame)
        part = frame.iloc[split_rows(len(frame), split, source=text)].reset_index(drop=True)
        data = Data(schema.encode(part), None, kind="table", schema=schema, frame=part)
    if limit is not None and len(data.x) > limit:
        frame = None if data.frame is None else data.frame.iloc[:limit]
        y = None if data.y is None else data.y[:limit]
        data = dataclasses.replace(data, x=data.x[:limit], y=y, frame=frame)
    return data


def _take(found, rows):
    return {"x": found["x"][rows], "y": None if found["y"] is None else found["y"][rows]}
