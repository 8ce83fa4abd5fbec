"""The latent space: a scatter of posterior means (PCA when the latent has more than two units)."""

import math

import matplotlib
import numpy as np

from keras_vae.plotting._common import _MAX_LEGEND_CLASSES
from keras_vae.plotting._common import _encode_loc
from keras_vae.plotting._common import _finish
from keras_vae.plotting._common import _new_figure
from keras_vae.plotting._common import _to_numpy


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
    """Scatter of the posterior means ``E[q(z|x)] = posterior_mean(x)``.

    With ``latent_dim == 2`` the means are plotted directly; with more
    dimensions they are projected on their first two principal components
    (numpy SVD; the axis labels say so); with one dimension they are plotted
    against a small jitter.

    Args:
        model: object with ``posterior_mean(x)`` returning ``[N, L]``.
        x: data ``[N, D]`` (N >= 2 when the latent has more than two units).
        y: optional labels ``[N]``: integer classes (at most 20) get one colour
            each and a legend; other values get a colour bar.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[0]`` holds the scatter(s).
    """
    z = _encode_loc(model, x).astype(np.float64)
    latent_dim = z.shape[1]
    if latent_dim > 2 and len(z) < 2:
        raise ValueError(
            f"The latent space plot projects {latent_dim}-d posterior means on their principal components, "
            f"which needs at least 2 examples; got {len(z)}.")
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
