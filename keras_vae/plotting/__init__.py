"""Plots for variational autoencoders and Helmholtz machines.

Every function builds a fresh ``matplotlib.figure.Figure`` (with an Agg canvas,
so nothing touches pyplot's global state and it works headless, in scripts and
in notebooks), returns it, and, when ``path`` is given, also saves it as a PNG
(parent directories are created).

The functions consume a duck-typed model with:

- ``model.input_dim`` (values per example ``D``), optionally
  ``model.input_shape`` (the shape of one example, e.g. ``(28, 28, 1)``),
  and ``model.latent_dim`` (size ``L`` of the top latent layer);
- ``model.sample(n, seed=None)`` -> dict with ``"x_mean"`` ``[n, D]``;
- ``model.decode(z)`` with ``z`` ``[n, L]`` float32 -> dict with ``"mean"``
  ``[n, D]``;
- ``model.posterior_mean(x)`` with ``x`` ``[n, D]`` -> ``[n, L]``, the mean
  of the top layer's posterior (the model's recognition head computes it, so
  Gaussian and binary latents both work);
- ``model.reconstruct(x)`` -> ``[n, D]`` reconstruction mean;
- for a conditional model (``model.condition_dim = K``), ``sample`` and
  ``decode`` also take ``condition=y``: :func:`plot_class_samples` draws one
  row per class, ``plot_samples(..., condition=y)`` samples given ``y``.

Data are flat ``[n, D]`` arrays or ``[n, *input_shape]`` images (flat rows
are reshaped to the model's ``input_shape``); images are drawn with
``image_shape`` (e.g. ``(8, 8)`` for sklearn digits, ``(28, 28)`` for MNIST).
When ``image_shape`` is None, the model's ``input_shape`` is used if it is
an image shape, else a square shape is inferred if ``D`` is a perfect
square. Pixel values are clipped to ``[0, 1]`` and drawn grey (1 channel)
or in colour (3 channels).
"""

from keras_vae.plotting.curves import plot_comparison
from keras_vae.plotting.curves import plot_history
from keras_vae.plotting.images import image_grid
from keras_vae.plotting.images import plot_class_samples
from keras_vae.plotting.images import plot_manifold
from keras_vae.plotting.images import plot_reconstructions
from keras_vae.plotting.images import plot_samples
from keras_vae.plotting.images import plot_traversal
from keras_vae.plotting.latent import plot_latent_space

__all__ = [
    "image_grid",
    "plot_class_samples",
    "plot_comparison",
    "plot_history",
    "plot_latent_space",
    "plot_manifold",
    "plot_reconstructions",
    "plot_samples",
    "plot_traversal",
]
