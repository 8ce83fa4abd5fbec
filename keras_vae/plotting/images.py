"""Image plots: grids, samples, reconstructions, the 2-D manifold and latent traversals."""

import math
import statistics

import numpy as np

from keras_vae.plotting._common import _as_images
from keras_vae.plotting._common import _decode_mean
from keras_vae.plotting._common import _encode_loc
from keras_vae.plotting._common import _finish
from keras_vae.plotting._common import _image_grid_figure
from keras_vae.plotting._common import _model_image_shape
from keras_vae.plotting._common import _model_inputs
from keras_vae.plotting._common import _new_figure
from keras_vae.plotting._common import _show
from keras_vae.plotting._common import _to_numpy


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


def plot_samples(model, n=64, image_shape=None, seed=0, path=None, condition=None):
    """Grid of generated means ``E[p(x|z)]`` for ``z ~ p(z)``.

    Args:
        model: object with ``sample(n, seed)`` returning ``{"x_mean": [n, D]}``.
        n: number of samples.
        image_shape: ``(H, W)``; inferred as square if None.
        seed: seed passed to ``model.sample``.
        path: if given, save a PNG there.
        condition: for a conditional model, ``y`` ``[K]`` (every sample) or
            ``[n, K]``, passed to ``model.sample``. A conditional model
            without one draws :func:`plot_class_samples`, ``ceil(n / K)``
            samples for each one-hot condition.

    Returns:
        The ``Figure``.
    """
    k = getattr(model, "condition_dim", None)
    if condition is None and k is not None:
        # A conditional model without a condition: one row per one-hot condition.
        return plot_class_samples(model, n_per_class=max(1, math.ceil(n / k)), image_shape=image_shape,
                                  seed=seed, path=path)
    if condition is None:
        x_mean = model.sample(n, seed=seed)["x_mean"]
        title = "Samples from p(x|z), z ~ p(z)"
    else:
        x_mean = model.sample(n, seed=seed, condition=np.asarray(condition, np.float32))["x_mean"]
        title = "Samples from p(x|z, y), z ~ p(z)"
    return image_grid(x_mean, image_shape=_model_image_shape(model, image_shape),
                      title=title, path=path)


def plot_class_samples(model, n_per_class=10, class_names=None, image_shape=None, seed=0, path=None, title=None):
    """Samples of a class-conditional model, one row per class.

    Row ``c`` decodes ``n_per_class`` codes ``z ~ p(z)`` with the one-hot
    condition ``y = e_c``; column ``j`` uses the same ``z`` in every row, so a
    column shows one "style" across the classes. The images are the means
    ``decode(z, condition=y)["mean"]`` (in a hierarchy, lower layers at their
    conditional means).

    Args:
        model: a conditional model (``condition_dim = K`` classes) with
            ``sample(n, seed=, condition=)`` and ``decode(z, condition=)``.
        n_per_class: samples (columns) per class.
        class_names: K row labels (default ``0..K-1``).
        image_shape: ``(H, W)``; the model's image shape or square if None.
        seed: seed of the codes.
        path: if given, save a PNG there.
        title: figure title (default: what the grid shows).

    Returns:
        The ``Figure``; ``fig.axes`` row-major, ``K x n_per_class`` images.

    Raises:
        ValueError: an unconditional model or ``class_names`` not K long.

    Example:
        >>> fig = plot_class_samples(model, n_per_class=8, class_names=[str(d) for d in range(10)])
    """
    k = getattr(model, "condition_dim", None)
    if k is None:
        raise ValueError("plot_class_samples needs a conditional model (condition_dim=K); use plot_samples.")
    n = int(n_per_class)
    if n < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}.")
    names = [str(c) for c in range(k)] if class_names is None else [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names for condition_dim={k} classes.")
    eye = np.eye(k, dtype=np.float32)
    z = _to_numpy(model.sample(n, seed=seed, condition=eye[0])["z"])  # p(z) does not depend on y.
    codes = np.tile(z, (k, 1)).astype(np.float32)
    conditions = np.repeat(eye, n, axis=0)
    means = _to_numpy(model.decode(codes, condition=conditions)["mean"]).reshape(k * n, -1)
    images = _as_images(means, _model_image_shape(model, image_shape))
    fig, axes = _image_grid_figure(k, n, images.shape[1:3], left=0.8, top=0.45)
    for c in range(k):
        for j in range(n):
            _show(axes[c, j], images[c * n + j])
        axes[c, 0].set_ylabel(names[c], rotation=0, ha="right", va="center", labelpad=6)
    fig.suptitle(title or "Samples from p(x|z, y) per class y, same z per column",
                 y=1.0 - 0.08 / fig.get_figheight(), va="top")
    return _finish(fig, path)


def plot_reconstructions(model, x, n=10, image_shape=None, path=None, condition=None):
    """Inputs and their reconstructions, in paired rows.

    Rows alternate "input" / "reconstruction"; more than 10 examples wrap
    into further row pairs.

    Args:
        model: object with ``reconstruct(x)`` returning ``[n, D]`` means.
        x: data ``[N, D]``; the first ``n`` rows are used.
        n: number of examples.
        image_shape: ``(H, W)``; inferred as square if None.
        path: if given, save a PNG there.
        condition: for a conditional model, ``y`` ``[N, K]`` of the rows of
            ``x`` (the first ``n`` are used), passed to ``model.reconstruct``.

    Returns:
        The ``Figure``; the axes of row pair ``b`` are ``fig.axes`` in
        row-major order (inputs first, then reconstructions).
    """
    x = _model_inputs(model, _to_numpy(x)[:n])
    n = x.shape[0]
    image_shape = _model_image_shape(model, image_shape)
    if condition is None:
        recon = _to_numpy(model.reconstruct(x)).reshape(n, -1)
    else:
        condition = np.asarray(condition, np.float32)[:n]
        recon = _to_numpy(model.reconstruct(x, condition=condition)).reshape(n, -1)
    x = x.reshape(n, -1)
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
    tiles = _as_images(_decode_mean(model, z), _model_image_shape(model, image_shape))
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

    Starting from a base latent (``z``, else ``posterior_mean(x[:1])``, else
    zeros), row ``r`` sets dimension ``dims[r]`` to each of ``values`` while
    holding the others, and shows ``decode(z)["mean"]``.

    Args:
        model: object with ``latent_dim``, ``decode`` and (if ``x``) ``posterior_mean``.
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
    imgs = _as_images(_decode_mean(model, zs), _model_image_shape(model, image_shape))

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
