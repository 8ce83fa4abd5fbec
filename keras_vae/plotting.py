"""Plots for variational autoencoders and Helmholtz machines.

Every function builds a fresh ``matplotlib.figure.Figure`` (with an Agg canvas,
so nothing touches pyplot's global state and it works headless, in scripts and
in notebooks), returns it, and, when ``path`` is given, also saves it as a PNG
(parent directories are created).

The functions consume a duck-typed model with:

- ``model.input_dim`` (flat feature size ``D``) and ``model.latent_dim``
  (size ``L`` of the top latent layer);
- ``model.sample(n, seed=None)`` -> dict with ``"x_mean"`` ``[n, D]``;
- ``model.decode(z)`` with ``z`` ``[n, L]`` float32 -> dict with ``"mean"``
  ``[n, D]``;
- ``model.encode(x)`` with ``x`` ``[n, D]`` -> dict with ``"loc"`` ``[n, L]``;
- ``model.reconstruct(x)`` -> ``[n, D]`` reconstruction mean.

Data are flat ``[n, D]`` arrays; images are recovered with ``image_shape``
(e.g. ``(8, 8)`` for sklearn digits, ``(28, 28)`` for MNIST). When
``image_shape`` is None a square shape is inferred if ``D`` is a perfect
square. Pixel values are clipped to ``[0, 1]`` and drawn in grey.
"""

import json
import math
import os
import pathlib
import statistics

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "image_grid",
    "plot_samples",
    "plot_reconstructions",
    "plot_manifold",
    "plot_latent_space",
    "plot_traversal",
    "plot_history",
    "plot_comparison",
]

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


def _encode_loc(model, x):
    """``encode(x)["loc"]`` as numpy ``[N, L]``, in chunks of ``_CHUNK``."""
    x = _to_numpy(x).astype(np.float32)
    x = x.reshape(x.shape[0], -1)
    parts = [_to_numpy(model.encode(x[i:i + _CHUNK])["loc"])
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
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    elif isinstance(history, (str, os.PathLike)):
        with open(history, encoding="utf-8") as f:
            history = json.load(f)
        if isinstance(history.get("history"), dict):
            history = history["history"]
    if not isinstance(history, dict):
        raise TypeError(
            "history must be a keras History, a dict of lists or a path to a "
            f"JSON file, got {type(history).__name__}."
        )
    return {k: np.asarray(_to_numpy(v), dtype=np.float64).reshape(-1)
            for k, v in history.items()}


def _line_style(n_points):
    return {"marker": "o", "markersize": 3} if n_points <= 30 else {}


# ----------------------------------------------------------------------------
# Image plots
# ----------------------------------------------------------------------------


def image_grid(images, image_shape=None, ncols=None, title=None, path=None):
    """Draws images in a grid, one tick-free axes per image.

    Args:
        images: ``[N, D]`` flat images or ``[N, H, W]`` (also ``[N, H, W, 1]``
            or RGB ``[N, H, W, 3]``), values in [0, 1] (clipped for display).
        image_shape: ``(H, W)`` for flat images; inferred as square if None.
        ncols: columns in the grid (default ``ceil(sqrt(N))``).
        title: optional figure title.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[i]`` shows image ``i`` (row-major).

    Raises:
        ValueError: if the image shape cannot be inferred or does not match.
    """
    imgs = _as_images(images, image_shape)
    n = imgs.shape[0]
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    ncols = int(ncols) if ncols else math.ceil(math.sqrt(n))
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = _image_grid_figure(nrows, ncols, imgs.shape[1:3],
                                   top=0.45 if title else 0.0)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _show(ax, imgs[i])
        else:
            fig.delaxes(ax)
    if title:
        fig.suptitle(title, y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return _finish(fig, path)


def plot_samples(model, n=64, image_shape=None, seed=0, path=None):
    """Grid of generated means ``E[p(x|z)]`` for ``z ~ p(z)``.

    Args:
        model: object with ``sample(n, seed)`` returning ``{"x_mean": [n, D]}``.
        n: number of samples.
        image_shape: ``(H, W)``; inferred as square if None.
        seed: seed passed to ``model.sample``.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``.
    """
    x_mean = model.sample(n, seed=seed)["x_mean"]
    return image_grid(x_mean, image_shape=image_shape,
                      title="Samples from p(x|z), z ~ p(z)", path=path)


def plot_reconstructions(model, x, n=10, image_shape=None, path=None):
    """Inputs and their reconstructions, in paired rows.

    Rows alternate "input" / "reconstruction"; more than 10 examples wrap
    into further row pairs.

    Args:
        model: object with ``reconstruct(x)`` returning ``[n, D]`` means.
        x: data ``[N, D]``; the first ``n`` rows are used.
        n: number of examples.
        image_shape: ``(H, W)``; inferred as square if None.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; the axes of row pair ``b`` are ``fig.axes`` in
        row-major order (inputs first, then reconstructions).
    """
    x = _to_numpy(x)[:n].astype(np.float32)
    x = x.reshape(x.shape[0], -1)
    n = x.shape[0]
    recon = _to_numpy(model.reconstruct(x)).reshape(n, -1)
    inputs = _as_images(x, image_shape)
    recons = _as_images(recon, image_shape)
    ncols = min(n, 10)
    nblocks = math.ceil(n / ncols)
    fig, axes = _image_grid_figure(2 * nblocks, ncols, inputs.shape[1:3],
                                   left=1.3, top=0.45)
    for b in range(nblocks):
        for j in range(ncols):
            i = b * ncols + j
            top_ax, bottom_ax = axes[2 * b, j], axes[2 * b + 1, j]
            if i >= n:
                fig.delaxes(top_ax)
                fig.delaxes(bottom_ax)
                continue
            _show(top_ax, inputs[i])
            _show(bottom_ax, recons[i])
        for row, label in ((2 * b, "input"), (2 * b + 1, "reconstruction")):
            axes[row, 0].set_ylabel(label, rotation=0, ha="right",
                                    va="center", labelpad=6)
    fig.suptitle("Inputs and their reconstructions",
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return _finish(fig, path)


def plot_manifold(model, n=20, image_shape=None, path=None):
    """Learned 2-D data manifold (Kingma & Welling 2014, Figure 4).

    Latents are a ``n x n`` grid of standard-normal quantiles at probabilities
    ``linspace(0.05, 0.95, n)``, so equal areas of the grid carry equal prior
    mass. Each grid point is decoded to ``decode(z)["mean"]`` and the tiles are
    tiled into one image, ``z1`` increasing left to right and ``z2`` bottom to
    top. The decoder is called once (per 2048 latents) on ``[n*n, 2]``
    latents ordered with ``z1`` varying fastest, both ascending.

    Args:
        model: object with ``latent_dim == 2`` and ``decode(z)``.
        n: grid points per latent axis.
        image_shape: ``(H, W)``; inferred as square if None.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[0].images[0]`` is the ``[n*H, n*W]`` canvas.

    Raises:
        ValueError: if ``model.latent_dim != 2``.
    """
    if int(model.latent_dim) != 2:
        raise ValueError(
            "plot_manifold needs a 2-D latent space, but model.latent_dim is "
            f"{model.latent_dim}; use plot_traversal for other sizes."
        )
    normal = statistics.NormalDist()
    q = np.array([normal.inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
    z1, z2 = np.meshgrid(q, q)  # z1 varies along columns (fastest).
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)
    tiles = _as_images(_decode_mean(model, z), image_shape)
    h, w = tiles.shape[1:3]
    tiles = tiles.reshape((n, n) + tiles.shape[1:])  # [i (z2), j (z1), ...]
    tiles = tiles[::-1]  # Largest z2 in the top row.
    canvas = np.concatenate(
        [np.concatenate(list(row), axis=1) for row in tiles], axis=0)

    size = min(8.0, max(4.0, 0.4 * n))
    fig = _new_figure(size + 0.9, size * h / w + 0.9)
    ax = fig.add_subplot()
    _show(ax, canvas)
    step = max(1, math.ceil(n / 9))
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx[-1] = n - 1
    ax.set_xticks([(j + 0.5) * w - 0.5 for j in idx])
    ax.set_xticklabels([f"{q[j]:.2f}" for j in idx])
    ax.set_yticks([(n - 1 - i + 0.5) * h - 0.5 for i in idx])
    ax.set_yticklabels([f"{q[i]:.2f}" for i in idx])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title("Learned manifold: E[p(x|z)] on a grid of N(0, 1) quantiles")
    fig.set_layout_engine("constrained")
    return _finish(fig, path)


def plot_traversal(model, x=None, z=None, dims=None, values=None,
                   image_shape=None, path=None):
    """Latent traversals: vary one latent dimension at a time.

    Starting from a base latent (``z``, else ``encode(x[:1])["loc"]``, else
    zeros), row ``r`` sets dimension ``dims[r]`` to each of ``values`` while
    holding the others, and shows ``decode(z)["mean"]``.

    Args:
        model: object with ``latent_dim``, ``decode`` and (if ``x``) ``encode``.
        x: optional data ``[N, D]``; the first row is encoded as the base.
        z: optional base latent ``[L]`` or ``[1, L]``; takes precedence.
        dims: latent dimensions to traverse (default first
            ``min(latent_dim, 10)``).
        values: values to set each dimension to (default
            ``linspace(-3, 3, 9)``).
        image_shape: ``(H, W)``; inferred as square if None.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; row ``r`` of ``fig.axes`` (row-major,
        ``len(values)`` per row) traverses ``dims[r]``.
    """
    latent_dim = int(model.latent_dim)
    if z is not None:
        base = _to_numpy(z).astype(np.float32).reshape(-1, latent_dim)[0]
        origin = "given z"
    elif x is not None:
        base = _encode_loc(model, _to_numpy(x)[:1])[0].astype(np.float32)
        origin = "E[q(z|x)] of the first input"
    else:
        base = np.zeros(latent_dim, np.float32)
        origin = "z = 0"
    dims = list(range(min(latent_dim, 10))) if dims is None else \
        [int(d) for d in np.atleast_1d(dims)]
    for d in dims:
        if not 0 <= d < latent_dim:
            raise ValueError(f"dims entry {d} is outside [0, {latent_dim}).")
    values = np.linspace(-3.0, 3.0, 9) if values is None else \
        np.asarray(values, dtype=np.float64).reshape(-1)
    if not dims or values.size == 0:
        raise ValueError("plot_traversal needs at least one dim and value.")

    zs = np.repeat(base[None], len(dims) * values.size, axis=0)
    for r, d in enumerate(dims):
        zs[r * values.size:(r + 1) * values.size, d] = values
    imgs = _as_images(_decode_mean(model, zs), image_shape)

    fig, axes = _image_grid_figure(len(dims), values.size, imgs.shape[1:3],
                                   left=0.6, top=0.75)
    for r, d in enumerate(dims):
        for c in range(values.size):
            _show(axes[r, c], imgs[r * values.size + c])
        axes[r, 0].set_ylabel(f"z[{d}]", rotation=0, ha="right", va="center",
                              labelpad=6)
    for c, v in enumerate(values):
        axes[0, c].set_title(f"{v:.3g}", fontsize=9)
    fig.suptitle(f"Latent traversals from {origin}; columns: value of z[i]",
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return _finish(fig, path)


# ----------------------------------------------------------------------------
# Latent space
# ----------------------------------------------------------------------------


def _pca_2d(z):
    """Projects ``z`` ``[N, L]`` on its top two principal components.

    Returns:
        ``(projection [N, 2], explained variance ratios [2])``; component signs
        are fixed so each component's largest-magnitude loading is positive.
    """
    zc = z - z.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return zc @ vt.T, ratio


def plot_latent_space(model, x, y=None, path=None):
    """Scatter of the posterior means ``E[q(z|x)] = encode(x)["loc"]``.

    With ``latent_dim == 2`` the means are plotted directly; with more
    dimensions they are projected on their first two principal components
    (numpy SVD; the axis labels say so); with one dimension they are plotted
    against a small jitter.

    Args:
        model: object with ``encode(x)`` returning ``{"loc": [N, L]}``.
        x: data ``[N, D]``.
        y: optional labels ``[N]``: integer classes (at most 20) get one colour
            each and a legend; other values get a colour bar.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[0]`` holds the scatter(s).
    """
    z = _encode_loc(model, x).astype(np.float64)
    latent_dim = z.shape[1]
    if latent_dim == 2:
        pts = z
        xlabel, ylabel = "z1 = E[q(z|x)][0]", "z2 = E[q(z|x)][1]"
        title = "Latent space: posterior means"
    elif latent_dim > 2:
        pts, ratio = _pca_2d(z)
        xlabel = f"PC1 of E[q(z|x)] ({100 * ratio[0]:.0f}% of variance)"
        ylabel = f"PC2 of E[q(z|x)] ({100 * ratio[1]:.0f}% of variance)"
        title = f"Latent space: PCA projection of {latent_dim}-d posterior means"
    else:
        jitter = np.random.default_rng(0).uniform(-0.5, 0.5, z.shape[0])
        pts = np.stack([z[:, 0], jitter], axis=1)
        xlabel, ylabel = "z = E[q(z|x)]", "random jitter"
        title = "Latent space: posterior means (1-d)"

    fig = _new_figure(6.4, 5.4)
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    size = float(np.clip(6000.0 / max(len(pts), 1), 3.0, 30.0))
    if y is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=size, alpha=0.7, linewidths=0)
    else:
        y = _to_numpy(y).reshape(-1)
        if y.shape[0] != pts.shape[0]:
            raise ValueError(
                f"y has {y.shape[0]} labels but x has {pts.shape[0]} rows.")
        classes = np.unique(y)
        integer = np.issubdtype(y.dtype, np.integer) or np.issubdtype(
            y.dtype, np.bool_) or (np.issubdtype(y.dtype, np.floating)
                                   and np.all(np.mod(y, 1) == 0))
        if integer and classes.size <= _MAX_LEGEND_CLASSES:
            cmap = "tab10" if classes.size <= 10 else "tab20"
            colours = matplotlib.colormaps[cmap]
            for k, c in enumerate(classes):
                m = y == c
                label = str(int(c)) if np.issubdtype(
                    np.asarray(c).dtype, np.number) else str(c)
                ax.scatter(pts[m, 0], pts[m, 1], s=size, alpha=0.7,
                           linewidths=0, color=colours(k), label=label)
            ax.legend(title="label", loc="center left",
                      bbox_to_anchor=(1.01, 0.5), markerscale=max(
                          1.0, 5.0 / math.sqrt(size)), frameon=False)
        else:
            sc = ax.scatter(pts[:, 0], pts[:, 1], c=y.astype(np.float64),
                            s=size, alpha=0.8, linewidths=0, cmap="viridis")
            fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


# ----------------------------------------------------------------------------
# Training curves
# ----------------------------------------------------------------------------


def plot_history(history, metrics=("elbo", "reconstruction", "kl"), path=None):
    """Training curves, one subplot per metric, train and validation.

    Args:
        history: keras ``History``, dict ``{name: [value per epoch]}``, or a
            path to a JSON file holding such a dict.
        metrics: metric names; each is drawn from ``history[name]`` (train,
            solid) and ``history["val_" + name]`` (validation, dashed).
            Metrics with neither key are skipped.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[k]`` is the k-th metric present.

    Raises:
        ValueError: if none of ``metrics`` is in the history.
    """
    h = _history_dict(history)
    if isinstance(metrics, str):
        metrics = (metrics,)
    present = [m for m in metrics if m in h or f"val_{m}" in h]
    if not present:
        raise ValueError(
            f"None of the metrics {tuple(metrics)} is in the history; "
            f"available keys: {sorted(h)}.")
    fig = _new_figure(4.2 * len(present), 3.4)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, m in zip(axes, present):
        for key, label, style in ((m, "train", "-"), (f"val_{m}", "validation",
                                                      "--")):
            if key in h:
                vals = h[key]
                ax.plot(np.arange(1, vals.size + 1), vals, style, label=label,
                        **_line_style(vals.size))
        ax.set_title(m)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel("nats per example")
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def plot_comparison(histories, metric="val_elbo", x=None, path=None):
    """One metric for several training runs on shared axes.

    For AEVB-vs-wake-sleep curves in the style of Kingma & Welling (2014),
    Figure 2. When ``x`` is given and spans at least two orders of magnitude,
    the x axis is logarithmic.

    Args:
        histories: dict ``name -> History | dict | JSON path``, e.g.
            ``{"elbo": h1, "wake_sleep": h2}``. Runs without ``metric`` are
            skipped.
        metric: history key to plot, e.g. ``"val_elbo"``.
        x: optional dict ``name -> [x value per epoch]`` (e.g. training
            examples seen); needed for every plotted run when given.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[0].lines`` has one line per plotted run.

    Raises:
        ValueError: if no run has ``metric``, or an ``x`` entry is missing or
            has the wrong length.
    """
    runs = {name: _history_dict(h) for name, h in histories.items()}
    runs = {name: h[metric] for name, h in runs.items() if metric in h}
    if not runs:
        raise ValueError(f"No history contains the metric {metric!r}.")
    xs = {}
    for name, vals in runs.items():
        if x is None:
            xs[name] = np.arange(1, vals.size + 1)
            continue
        if name not in x:
            raise ValueError(f"x has no entry for run {name!r}.")
        xs[name] = np.asarray(_to_numpy(x[name]), np.float64).reshape(-1)
        if xs[name].size != vals.size:
            raise ValueError(
                f"x[{name!r}] has {xs[name].size} values but the run has "
                f"{vals.size} values of {metric!r}.")
    fig = _new_figure(6.4, 4.4)
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    for name, vals in runs.items():
        ax.plot(xs[name], vals, label=name, **_line_style(vals.size))
    if x is not None:
        ax.set_xlabel("training examples seen")
        all_x = np.concatenate(list(xs.values()))
        if np.all(all_x > 0) and all_x.max() >= 100 * all_x.min():
            ax.set_xscale("log")
    else:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} (nats per example)")
    ax.set_title(f"{metric} by training method")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _finish(fig, path)
