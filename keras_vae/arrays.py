"""Local ``.npy`` / ``.npz`` arrays of any example shape (e.g. images ``[N, H, W, C]``).

A ``.npy`` holds one array ``x [N, ...]``. A ``.npz`` holds either the Keras
layout ``x_train`` / ``x_test`` (with optional ``y_train`` / ``y_test``
integer labels), whose splits are used as they are, or one array (or ``x``,
with optional ``y``), which :func:`keras_vae.datasets.load_data` splits
into train and test rows. Values are scaled to [0, 1] by the pixel-scale
rules of :func:`keras_vae.datasets.load_arrays` (``pixel_scale``).
"""

import os
import zipfile

import numpy as np

#: File suffixes read by :func:`read_arrays`.
ARRAY_SUFFIXES = (".npy", ".npz")
_EXPECTED = (
    "a .npy array [N, ...] of N examples, or a .npz with x_train and x_test (and optional y_train, y_test "
    "integer labels) or with one array (or x, and optional y)"
)


def read_arrays(path):
    """The examples and labels of a ``.npy`` or ``.npz`` file, by split when the file has splits.

    Args:
        path: a ``.npy`` or ``.npz`` file.

    Returns:
        dict with ``"x"`` and ``"y"`` (None without labels), or with
        ``"train"`` and ``"test"``, each such a dict, when the file has the
        Keras ``x_train`` / ``x_test`` layout. ``x`` keeps its dtype and shape.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an empty, unreadable or pickled file, no arrays, labels
            that are not one integer per example, or fewer than 2 dimensions.

    Example:
        >>> read_arrays("images.npy")["x"].shape   # e.g. (N, 32, 32, 3)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}; expected {_EXPECTED}.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty; expected {_EXPECTED}.")
    if path.lower().endswith(".npz"):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not a .npz (zip) archive; expected {_EXPECTED}.")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{path} could not be read as a .npz of numeric arrays ({err}); expected {_EXPECTED}."
            ) from None
        if "x_train" in arrays or "x_test" in arrays:
            missing = [k for k in ("x_train", "x_test") if k not in arrays]
            if missing:
                raise ValueError(f"{path} has no {missing[0]}; expected {_EXPECTED}.")
            return {
                split: _checked(path, arrays[f"x_{split}"], arrays.get(f"y_{split}"), f"x_{split}")
                for split in ("train", "test")
            }
        if "x" in arrays:
            return _checked(path, arrays["x"], arrays.get("y"), "x")
        if len(arrays) == 1:
            (key, x), = arrays.items()
            return _checked(path, x, None, key)
        raise ValueError(
            f"{path} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}) and none is named x or x_train; "
            f"expected {_EXPECTED}."
        )
    try:
        x = np.load(path, allow_pickle=False)
    except (EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path} could not be read as a .npy array ({err}); expected {_EXPECTED}.") from None
    return _checked(path, x, None, "the array")


def _checked(path, x, y, what):
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(f"{path}: {what} has shape {x.shape}; expected [N, ...] with N >= 1 examples of >= 1 value.")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{path}: {what} has dtype {x.dtype}; expected real numbers.")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{path}: labels of {what} have shape {y.shape} and dtype {y.dtype}; expected {x.shape[0]} integers."
            )
        y = y.astype(np.int32)
    return {"x": x, "y": y}
