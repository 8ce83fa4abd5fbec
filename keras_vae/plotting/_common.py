"""Helpers shared by the plotting modules: figures, image grids, chunked model calls."""

import json
import math
import os
import pathlib

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 120
# Rows encoded/decoded per model call, to bound memory on large inputs.
_CHUNK = 2048
# At most this many distinct integer labels get a discrete legend.
_MAX_LEGEND_CLASSES = 20


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def _to_numpy(t):
    """Converts a tensor, array or nested list to a numpy array."""
    if isinstance(t, (np.ndarray, np.generic, list, tuple, int, float)):
        return np.asarray(t)
    import keras  # Imported lazily: plain numpy input needs no backend.

    return np.asarray(keras.ops.convert_to_numpy(t))


def _new_figure(width, height):
    """A pyplot-free figure with an Agg canvas, size in inches."""
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _finish(fig, path):
    """Saves ``fig`` to ``path`` (PNG unless the suffix says otherwise)."""
    if path is not None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = path.suffix.lstrip(".").lower() or "png"
        fig.savefig(path, dpi=_DPI, bbox_inches="tight", format=fmt)
    return fig


def _resolve_image_shape(dim, image_shape):
    """Returns an image shape ``(H, W)`` or ``(H, W, C)`` for ``dim`` features.

    Raises:
        ValueError: if ``image_shape`` does not match ``dim``, or is None and
            ``dim`` is not a perfect square.
    """
    if image_shape is None:
        side = math.isqrt(dim)
        if side * side != dim:
            raise ValueError(
                f"Cannot infer a square image shape for {dim} features; pass "
                "image_shape=(height, width), e.g. (28, 28) for MNIST."
            )
        return (side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) "
            f"with 1 or 3 channels, got {image_shape!r}."
        )
    if math.prod(shape) != dim:
        raise ValueError(
            f"image_shape {image_shape!r} has {math.prod(shape)} pixels but the "
            f"data have {dim} features per example."
        )
    return shape


def _as_images(images, image_shape=None):
    """Converts ``[N, D]`` or ``[N, H, W(, C)]`` data to clipped images.

    Returns:
        float array ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB) in [0, 1].
    """
    arr = _to_numpy(images).astype(np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    n = arr.shape[0]
    if arr.ndim == 2 or image_shape is not None:
        shape = _resolve_image_shape(int(np.prod(arr.shape[1:])), image_shape)
        arr = arr.reshape((n,) + shape)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise ValueError(
            "Expected images of shape [N, D], [N, H, W], [N, H, W, 1] or "
            f"[N, H, W, 3]; got {tuple(_to_numpy(images).shape)}."
        )
    return np.clip(arr, 0.0, 1.0)


def _image_grid_figure(nrows, ncols, hw, cell=None, gap=0.06, left=0.0,
                       top=0.0, max_width=12.0):
    """Figure with an ``nrows x ncols`` grid of tick-free image axes.

    Args:
        nrows, ncols: grid size.
        hw: ``(H, W)`` of one image, sets each cell's aspect ratio.
        cell: width of one cell in inches (default: fits ``max_width``).
        gap: space between cells as a fraction of the cell size.
        left, top: extra margins in inches (for row labels and titles).

    Returns:
        ``(fig, axes)`` with ``axes`` an object array ``[nrows, ncols]``.
    """
    if cell is None:
        cell = min(1.0, max_width / ncols)
    cell_w = cell
    cell_h = cell * hw[0] / hw[1]
    grid_w = ncols * cell_w + (ncols - 1) * gap * cell_w
    grid_h = nrows * cell_h + (nrows - 1) * gap * cell_h
    width, height = left + grid_w + 0.05, top + grid_h + 0.05
    fig = _new_figure(width, height)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(
        left=left / width,
        right=(left + grid_w) / width,
        bottom=0.05 / height,
        top=(0.05 + grid_h) / height,
        wspace=gap,
        hspace=gap,
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    return fig, axes


def _show(ax, image):
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")


def _model_inputs(model, x):
    """Data as float32 numpy ``[N, *model.input_shape]`` (flat rows are reshaped)."""
    x = _to_numpy(x).astype(np.float32)
    shape = tuple(getattr(model, "input_shape", None) or (-1,))
    return x.reshape((x.shape[0],) + shape)


def _model_image_shape(model, image_shape):
    """``image_shape``, or the model's ``input_shape`` when that is an image shape."""
    if image_shape is not None:
        return image_shape
    shape = tuple(getattr(model, "input_shape", None) or ())
    return shape if len(shape) in (2, 3) else None


def _encode_loc(model, x):
    """``posterior_mean(x)`` as numpy ``[N, L]``, in chunks of ``_CHUNK``."""
    x = _model_inputs(model, x)
    parts = [_to_numpy(model.posterior_mean(x[i:i + _CHUNK]))
             for i in range(0, x.shape[0], _CHUNK)]
    return np.concatenate(parts, axis=0).reshape(x.shape[0], -1)


def _decode_mean(model, z):
    """``decode(z)["mean"]`` as numpy ``[N, D]``, in chunks of ``_CHUNK``."""
    z = np.asarray(z, dtype=np.float32)
    parts = [_to_numpy(model.decode(z[i:i + _CHUNK])["mean"])
             for i in range(0, z.shape[0], _CHUNK)]
    return np.concatenate(parts, axis=0).reshape(z.shape[0], -1)


def _history_dict(history):
    """Returns the ``{name: [values per epoch]}`` dict behind ``history``.

    Accepts a keras ``History`` (``.history``), a dict, or a path to a JSON
    file holding such a dict (optionally under a ``"history"`` key).
    """
    source = None
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    elif isinstance(history, (str, os.PathLike)):
        source = history
        try:
            with open(history, encoding="utf-8") as f:
                history = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(
                f"{source} is not a JSON history file; give the history.json that keras-vae train wrote "
                "(a dict of per-epoch metric lists)."
            ) from None
        if isinstance(history, dict) and isinstance(history.get("history"), dict):
            history = history["history"]
    if not isinstance(history, dict):
        raise TypeError(
            "history must be a keras History, a dict of lists or a path to a "
            f"JSON file, got {type(history).__name__}."
        )
    try:
        return {k: np.asarray(_to_numpy(v), dtype=np.float64).reshape(-1)
                for k, v in history.items()}
    except (TypeError, ValueError):
        where = f"{source} holds" if source else "history has"
        raise ValueError(
            f"{where} values that are not per-epoch numbers (is it a metrics.json?); give a dict of "
            "metric name -> list of numbers, such as the history.json that keras-vae train wrote."
        ) from None


def _line_style(n_points):
    return {"marker": "o", "markersize": 3} if n_points <= 30 else {}
