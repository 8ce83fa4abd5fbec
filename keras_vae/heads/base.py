"""The distribution-head protocol and the random draws every head uses.

A *head* is a Keras layer that turns features into the parameters of a
distribution and knows everything about its family. Models, evaluation,
export and plotting only talk to heads through this protocol:

- ``call(features) -> params``: a dict of float32 tensors;
- ``distribution(params)``: a ``tfp.distributions`` object whose ``log_prob``
  sums over the event dimensions;
- ``log_prob(params, value)``: ``[batch]`` log-density in nats;
- ``sample(params, seed, mode=False)``: a draw (reparameterised where the
  family allows it, ``reparameterized = True``), or the mode;
- ``mean(params)``: the mean (for categorical columns, the most probable
  class);
- ``describe()``: a JSON-ready dict of what export, metadata and plotting
  need: ``family`` and ``parameters`` (name -> meaning) for every head, and
  for observation heads also ``outputs`` (the names ``decode`` returns beside
  ``mean``) and ``input_scaling``.

A new family is a new subclass: implement ``call``, ``distribution`` (or
``log_prob``), ``sample``, ``mean`` and ``describe``, store every
constructor argument and return it from ``get_config``. Observation heads
(:class:`ObservationHead`) also have ``event_size`` and ``check_data``.
"""

import math

import keras
import tensorflow as tf
from keras import ops

from keras_vae.layers import Dense


def float32(x):
    """``x`` cast to float32: distributions and losses stay float32 under mixed precision."""
    return ops.cast(x, "float32")


def draw_seed(seed):
    """An int32 ``[2]`` seed for a stateless random op, one per call.

    Args:
        seed: a ``keras.random.SeedGenerator`` (its state advances), an int,
            a ``[2]`` integer tensor, or None (Keras's global generator).

    Returns:
        int32 ``[2]`` tensor.

    Under ``tf.distribute`` with several replicas in sync, the replica id is
    folded into the seed: every replica reads the same (mirrored) generator
    state, and without the fold all replicas would draw the same noise for
    their different examples.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    elif seed is None:
        # Unseeded, as keras.random: from Keras's global seed generator.
        seed = keras.random.randint((2,), 0, tf.int32.max - 1, dtype="int32")
    elif isinstance(seed, int):
        seed = tf.constant([seed, 0], dtype=tf.int64)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype != tf.int32:
        # As keras.random does: stateless ops under XLA want int32 seeds.
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        seed = tf.random.experimental.stateless_fold_in(seed, ctx.replica_id_in_sync_group, alg="philox")
    return seed


# Both draws use Philox explicitly: it is what "auto_select" picks for CPU/GPU
# kernels (so eager and graph draws are unchanged), but under XLA on CPU
# "auto_select" means ThreeFry, which is ~10x slower and was the largest cost
# of a jit-compiled VAE training step.
def random_normal(shape, seed):
    """``N(0, 1)`` draws of ``shape`` (float32) from ``draw_seed(seed)``."""
    return tf.random.stateless_normal(shape, seed=draw_seed(seed), dtype=tf.float32, alg="philox")


def random_uniform(shape, seed):
    """``U[0, 1)`` draws of ``shape`` (float32) from ``draw_seed(seed)``."""
    return tf.random.stateless_uniform(shape, seed=draw_seed(seed), dtype=tf.float32, alg="philox")


def scale_from_raw(raw, min_scale):
    """Positive scale through softplus plus a floor (stable for any raw value)."""
    return ops.softplus(float32(raw)) + min_scale


def raw_for_scale(scale, min_scale):
    """The raw value that :func:`scale_from_raw` maps to ``scale`` (a Python float).

    ``softplus^-1(scale - min_scale) = log(expm1(scale - min_scale))``; the
    bias that makes a Gaussian head's scale start at ``scale``.

    Example:
        >>> raw_for_scale(1.0, 1e-4)   # softplus(0.54115...) + 1e-4 = 1
        0.5411...
    """
    if not scale > min_scale:
        raise ValueError(f"scale must exceed min_scale ({min_scale}), got {scale}.")
    return math.log(math.expm1(scale - min_scale))


class DistributionHead(keras.layers.Layer):
    """Base class of every distribution head (see the module docstring).

    Subclasses implement ``call`` and ``sample``, ``distribution`` unless
    they override both ``log_prob`` and ``mean``, and ``describe`` so that
    exports document their parameters (the default names only the class).

    Example:
        >>> head = keras_vae.heads.GaussianLatent(4)
        >>> params = head(keras.ops.zeros((2, 8)))   # {"loc": [2, 4], "scale": [2, 4]}
        >>> z = head.sample(params, seed=0)           # [2, 4]
        >>> head.log_prob(params, z).shape
        TensorShape([2])
    """

    #: Whether ``sample`` is differentiable w.r.t. the parameters.
    reparameterized = False

    def distribution(self, params):
        """A ``tfd.Distribution`` with event dimensions summed by ``log_prob``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement distribution().")

    def log_prob(self, params, value):
        """``[batch]`` log-density of ``value`` in nats."""
        return self.distribution(params).log_prob(float32(value))

    def sample(self, params, seed, mode=False):
        """A draw from the distribution (``mode=True``: its mode)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample().")

    def mean(self, params):
        """The mean of the distribution."""
        return self.distribution(params).mean()

    def describe(self):
        """``{"family": str, "distribution": str, "parameters": {name: meaning}}`` and family details.

        The default names the class only; built-in heads say more.
        """
        name = type(self).__name__
        return {"family": name, "distribution": name, "parameters": {}}


def event_shape_of(event_shape, event_size=None):
    """The event shape of an observation head as a tuple of positive ints.

    Args:
        event_shape: an int ``D`` (flat columns, the same as ``(D,)``) or a
            shape such as ``(28, 28, 1)``; None to use ``event_size``.
        event_size: the older name of a flat ``event_shape`` (an int).

    Returns:
        tuple of ints.
    """
    if event_shape is None:
        event_shape = event_size
    if event_shape is None:
        raise ValueError("Give the event_shape of the observations, e.g. 784 or (28, 28, 1).")
    if isinstance(event_shape, (int, float)) or hasattr(event_shape, "__index__"):
        event_shape = (event_shape,)
    try:
        shape = tuple(int(s) for s in event_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(s < 1 for s in shape) or any(int(s) != s for s in event_shape):
        raise ValueError(f"event_shape must be a positive int or a tuple of positive ints, got {event_shape!r}.")
    return shape


class ObservationHead(DistributionHead):
    """Base of observation heads ``p(x | h_1)`` over events of ``event_shape``.

    ``event_shape`` is the shape of one example (``(D,)`` for flat columns,
    ``(H, W, C)`` for images) and ``event_size`` its number of values;
    ``log_prob`` sums over every event dimension.

    Parameters computed by :meth:`event_dense` / :meth:`event_values` come
    out shaped ``[batch, *event_shape]`` (plus a trailing axis when a value
    has several parameters). Flat features ``[batch, f]`` go through one
    ``Dense`` over all values; spatial features ``[batch, H, W, f]`` on the
    event's pixel grid (a convolutional decoder; see :meth:`spatial`) go
    through a ``Dense`` on the channel axis, a 1x1 convolution: per-pixel
    parameters with ``f * C`` weights, whatever the image size.

    ``describe()`` also returns ``outputs`` (the parameters ``decode`` returns,
    besides ``mean``, with their meaning) and ``input_scaling`` (how data
    must be scaled before ``encode``).
    """

    #: Whether ``log_prob`` is a log probability *mass* (discrete values), so
    #: that ``-log p(x) / (event_size * ln 2)`` is a code length in bits per
    #: dimension (evaluation reports it for such heads).
    discrete = False

    @property
    def event_axes(self):
        """The axes of one event in a ``[batch, *event_shape]`` tensor."""
        return tuple(range(1, 1 + len(self.event_shape)))

    def spatial(self, features_shape):
        """Values per pixel when ``features_shape`` is per-pixel maps of the event's grid, else None.

        Features ``[batch, H, W, f]`` are per-pixel maps of an event
        ``(H, W, C)`` (``C`` values per pixel), or of a flat event of
        ``H * W * C`` values (a flattened image, row-major).
        """
        shape = tuple(features_shape)
        if len(shape) < 3:
            return None
        if len(shape) == len(self.event_shape) + 1 and tuple(shape[1:-1]) == tuple(self.event_shape[:-1]):
            return self.event_shape[-1]
        pixels = math.prod(shape[1:-1])
        if len(self.event_shape) == 1 and self.event_size % pixels == 0:
            return self.event_size // pixels
        return None

    def event_dense(self, features_shape, per_value=None, name=None):
        """A built ``Dense`` producing parameters for every value of the event.

        Args:
            features_shape: the shape of the features the head is called on.
            per_value: None for one parameter per value, or an int ``K``
                (e.g. mixture components) for ``K`` per value.
            name: the layer's name.

        Returns:
            ``keras_vae.layers.Dense``; apply it with :meth:`event_values`.
        """
        k = 1 if per_value is None else int(per_value)
        channels = self.spatial(features_shape)
        if channels:
            units, built = channels * k, tuple(features_shape)
        else:
            units = self.event_size * k
            built = (features_shape[0], math.prod(features_shape[1:]))
        dense = Dense(units, name=name, dtype=self.dtype_policy)
        dense.build(built)
        return dense

    def event_values(self, dense, features, per_value=None):
        """``dense`` (from :meth:`event_dense`) applied to ``features``, as float32.

        Returns:
            ``[batch, *event_shape]``, or ``[batch, *event_shape, K]`` with
            ``per_value=K``.
        """
        trailing = () if per_value is None else (int(per_value),)
        if len(features.shape) > 2 and not self.spatial(features.shape):
            features = ops.reshape(features, (ops.shape(features)[0], -1))
        out = float32(dense(features))
        if len(self.event_shape) == 1 and not trailing and len(out.shape) == 2:
            return out
        return ops.reshape(out, (-1,) + tuple(self.event_shape) + trailing)

    def check_data(self, x):
        """Raise ``ValueError`` if numpy ``x [n, *event_shape]`` is outside the support."""

    def describe(self):
        return dict(super().describe(), input_scaling="as in training", outputs={})

    def decode_outputs(self, params):
        """Parameters plus ``"mean"``: what ``decode`` and export return."""
        out = dict(params)
        out["mean"] = self.mean(params)
        return out
