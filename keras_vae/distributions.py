"""Distribution layers: Keras 3 layers that map features to parameter tensors.

Every layer here is a *head*: ``call(features)`` returns a dict of float32
parameter tensors, and the methods below turn those tensors into
``tfp.distributions`` objects, log-densities and samples:

- ``distribution(params)``: a ``tfd.Distribution`` whose ``log_prob`` sums over
  the event dimensions (shape ``[batch]``).
- ``log_prob(params, value)``: ``[batch]`` log-density in nats.
- ``sample(params, seed)``: a draw, reparameterised where the family allows it
  (``z = loc + scale_tril @ eps``), using a ``keras.random.SeedGenerator``.
- ``mean(params)``: the mean (or, for categorical columns, the mode).

Latent heads (``GaussianLatent``, ``BernoulliLatent``) parameterise
``q(h_m | h_{m-1})`` and ``p(h_m | h_{m+1})``; priors (``StandardNormalPrior``,
``BernoulliPrior``) parameterise the top layer ``p(h_M)``; observation heads
(``BernoulliObservation``, ``GaussianObservation``, ``CategoricalObservation``,
``MixedObservation``) parameterise ``p(x | h_1)``. Parameters are computed in
the layer's compute dtype and cast to float32, so distributions and losses are
float32 under mixed precision.
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

tfd = tfp.distributions

# Logit given to padded categories so they carry no probability mass.
_MASKED_LOGIT = -1e9


def _float32(x):
    return ops.cast(x, "float32")


def draw_seed(seed):
    """An int32 ``[2]`` seed for a stateless random op, one per call.

    Args:
        seed: a ``keras.random.SeedGenerator`` (its state advances), an int,
            or a ``[2]`` integer tensor.

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


def _argmax(logits):
    """Index of the largest logit as float32, ``[..., classes] -> [...]``.

    ``tf.argmax`` rather than ``keras.ops.argmax``: the latter adds a
    ``BitwiseAnd`` (for signed zeros) that TFLite has no builtin op for.
    """
    return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.float32)


def _scale_from_raw(raw, min_scale):
    """Positive scale through softplus plus a floor (stable for any raw value)."""
    return ops.softplus(_float32(raw)) + min_scale


class _Head(keras.layers.Layer):
    """Base class of every distribution head."""

    #: Whether ``sample`` is differentiable w.r.t. the parameters.
    reparameterized = False

    def distribution(self, params):
        raise NotImplementedError

    def log_prob(self, params, value):
        return self.distribution(params).log_prob(_float32(value))

    def mean(self, params):
        return self.distribution(params).mean()


# ---------------------------------------------------------------------------
# Latent layers.
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianLatent(_Head):
    """Gaussian stochastic layer, diagonal or full covariance.

    Args:
        units: int, size of the stochastic layer.
        covariance: ``"diag"`` (a softplus scale per unit) or ``"full"`` (the
            network predicts the lower-triangular ``Sigma^1/2`` with a
            softplus diagonal).
        min_scale: float, floor added to every diagonal scale.

    Call: ``features [batch, f] -> {"loc": [batch, units], "scale": [batch, units]}``
    or ``{"loc", "scale_tril": [batch, units, units]}``.
    """

    reparameterized = True

    def __init__(self, units, covariance="diag", min_scale=1e-4, **kwargs):
        super().__init__(**kwargs)
        if covariance not in ("diag", "full"):
            raise ValueError(
                f"covariance must be 'diag' or 'full', got {covariance!r}."
            )
        self.units = int(units)
        self.covariance = covariance
        self.min_scale = float(min_scale)
        self.loc_dense = keras.layers.Dense(self.units, name="loc", dtype=self.dtype_policy)
        n_scale = self.units if covariance == "diag" else self.units * (self.units + 1) // 2
        self.scale_dense = keras.layers.Dense(n_scale, name="scale", dtype=self.dtype_policy)
        if covariance == "full":
            self._tril_index, self._diag_mask = _tril_gather_index(self.units)

    def build(self, input_shape):
        self.loc_dense.build(input_shape)
        self.scale_dense.build(input_shape)

    def call(self, features):
        loc = _float32(self.loc_dense(features))
        raw = _float32(self.scale_dense(features))
        if self.covariance == "diag":
            return {"loc": loc, "scale": _scale_from_raw(raw, self.min_scale)}
        return {"loc": loc, "scale_tril": self._fill_tril(raw)}

    def _fill_tril(self, raw):
        """[batch, n(n+1)/2] -> lower-triangular [batch, n, n], softplus diagonal."""
        padded = ops.concatenate([raw, ops.zeros_like(raw[:, :1])], axis=-1)
        flat = ops.take(padded, self._tril_index, axis=-1)
        tril = ops.reshape(flat, (-1, self.units, self.units))
        diag = self._diag_mask
        return tril * (1.0 - diag) + diag * (ops.softplus(tril) + self.min_scale)

    def scale_matrix(self, params):
        """``Sigma^1/2`` as a dense lower-triangular matrix ``[batch, units, units]``."""
        if "scale_tril" in params:
            return params["scale_tril"]
        return tf.linalg.diag(params["scale"])

    def distribution(self, params):
        if "scale_tril" in params:
            return tfd.MultivariateNormalTriL(params["loc"], params["scale_tril"])
        return tfd.MultivariateNormalDiag(params["loc"], params["scale"])

    def sample(self, params, seed, mode=False):
        """Reparameterised draw ``loc + Sigma^1/2 eps``, ``eps ~ N(0, I)``."""
        loc = params["loc"]
        if mode:
            return loc
        eps = random_normal(ops.shape(loc), seed)
        if "scale_tril" in params:
            return loc + ops.einsum("bij,bj->bi", params["scale_tril"], eps)
        return loc + params["scale"] * eps

    def mean(self, params):
        return params["loc"]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, covariance=self.covariance, min_scale=self.min_scale
        )
        return config


def _tril_gather_index(n):
    """Gather indices that place n(n+1)/2 values in a row-major [n, n] tril.

    Upper-triangle entries point at an appended zero (index n(n+1)/2).
    Returns ``(index [n*n] int32, diag_mask [n, n] float32)``.
    """
    size = n * (n + 1) // 2
    index = np.full((n, n), size, dtype=np.int32)
    rows, cols = np.tril_indices(n)
    index[rows, cols] = np.arange(size, dtype=np.int32)
    return index.reshape(-1), np.eye(n, dtype=np.float32)


@keras.saving.register_keras_serializable(package="keras_vae")
class BernoulliLatent(_Head):
    """Binary stochastic layer (sigmoid belief network units).

    Call: ``features [batch, f] -> {"logits": [batch, units]}``. Samples are
    in {0, 1} and carry no gradient (the family cannot be reparameterised).
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.logits_dense = keras.layers.Dense(self.units, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.logits_dense.build(input_shape)

    def call(self, features):
        return {"logits": _float32(self.logits_dense(features))}

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params["logits"], dtype=tf.float32), 1)

    def sample(self, params, seed, mode=False):
        logits = params["logits"]
        if mode:
            return ops.cast(logits > 0.0, "float32")
        u = random_uniform(ops.shape(logits), seed)
        return ops.stop_gradient(ops.cast(u < ops.sigmoid(logits), "float32"))

    def mean(self, params):
        return ops.sigmoid(params["logits"])

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormalPrior(_Head):
    """``p(h_M) = N(0, I)``. Call: ``reference [batch, ...] -> {"loc", "scale"}``."""

    reparameterized = True

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def call(self, reference):
        zeros = ops.zeros((ops.shape(reference)[0], self.units), dtype="float32")
        return {"loc": zeros, "scale": zeros + 1.0}

    def distribution(self, params):
        return tfd.MultivariateNormalDiag(params["loc"], params["scale"])

    def sample(self, params, seed, mode=False):
        loc = params["loc"]
        if mode:
            return loc
        return loc + random_normal(ops.shape(loc), seed)

    def mean(self, params):
        return params["loc"]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class BernoulliPrior(BernoulliLatent):
    """Top-layer ``p(h_M) = prod Bernoulli(sigmoid(b))`` with learned biases ``b``.

    Call: ``reference [batch, ...] -> {"logits": [batch, units]}``.
    """

    def build(self, input_shape):
        self.bias = self.add_weight(
            shape=(self.units,), initializer="zeros", name="bias"
        )

    def call(self, reference):
        batch = ops.shape(reference)[0]
        return {"logits": ops.broadcast_to(_float32(self.bias), (batch, self.units))}


# ---------------------------------------------------------------------------
# Observation models p(x | h_1).
# ---------------------------------------------------------------------------


class _Observation(_Head):
    """Base of observation heads. ``event_size`` is the number of x columns."""

    def check_data(self, x):
        """Raise ``ValueError`` if numpy ``x [n, event_size]`` is outside the support."""

    def decode_outputs(self, params):
        """Parameters plus ``"mean"``: what ``decode`` and export return."""
        out = dict(params)
        out["mean"] = self.mean(params)
        return out


@keras.saving.register_keras_serializable(package="keras_vae")
class BernoulliObservation(_Observation):
    """Binary (or [0, 1]-valued) pixels. Call: ``-> {"logits": [batch, event_size]}``."""

    def __init__(self, event_size, **kwargs):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.logits_dense = keras.layers.Dense(self.event_size, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.logits_dense.build(input_shape)

    def call(self, features):
        return {"logits": _float32(self.logits_dense(features))}

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params["logits"], dtype=tf.float32), 1)

    def log_prob(self, params, value):
        # Also valid for intensities in [0, 1] (the continuous Bernoulli
        # cross-entropy without its normaliser), as is common for MNIST.
        logits = params["logits"]
        value = _float32(value)
        return ops.sum(value * logits - ops.softplus(logits), axis=-1)

    def sample(self, params, seed, mode=False):
        logits = params["logits"]
        if mode:
            return ops.cast(logits > 0.0, "float32")
        u = random_uniform(ops.shape(logits), seed)
        return ops.cast(u < ops.sigmoid(logits), "float32")

    def mean(self, params):
        return ops.sigmoid(params["logits"])

    def decode_outputs(self, params):
        probs = self.mean(params)
        return {"logits": params["logits"], "probs": probs, "mean": probs}

    def check_data(self, x):
        lo, hi = float(np.min(x)), float(np.max(x))
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                "A Bernoulli likelihood needs data in [0, 1]; got values in "
                f"[{lo:g}, {hi:g}]. Scale the data (e.g. divide pixels by 255) "
                "or use likelihood='gaussian'."
            )

    def get_config(self):
        config = super().get_config()
        config.update(event_size=self.event_size)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianObservation(_Observation):
    """Continuous columns, ``N(loc, scale^2)`` per column.

    Args:
        event_size: number of columns.
        scale: ``"learned"`` (one learned scale per column, shared by all
            examples) or ``"per_example"`` (predicted by the network).
        min_scale: floor added to the softplus scale.

    Call: ``-> {"loc": [batch, event_size], "scale": [batch, event_size]}``.
    """

    reparameterized = True

    def __init__(self, event_size, scale="learned", min_scale=1e-3, **kwargs):
        super().__init__(**kwargs)
        if scale not in ("learned", "per_example"):
            raise ValueError(
                f"scale must be 'learned' or 'per_example', got {scale!r}."
            )
        self.event_size = int(event_size)
        self.scale = scale
        self.min_scale = float(min_scale)
        self.loc_dense = keras.layers.Dense(self.event_size, name="loc", dtype=self.dtype_policy)
        if scale == "per_example":
            self.scale_dense = keras.layers.Dense(self.event_size, name="scale", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.loc_dense.build(input_shape)
        if self.scale == "per_example":
            self.scale_dense.build(input_shape)
        else:
            # softplus(0.5413) = 1: unit scale at initialisation.
            self.raw_scale = self.add_weight(
                shape=(self.event_size,),
                initializer=keras.initializers.Constant(0.5413),
                name="raw_scale",
            )

    def call(self, features):
        loc = _float32(self.loc_dense(features))
        if self.scale == "per_example":
            raw = self.scale_dense(features)
        else:
            raw = ops.broadcast_to(self.raw_scale, ops.shape(loc))
        return {"loc": loc, "scale": _scale_from_raw(raw, self.min_scale)}

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(params["loc"], params["scale"]), 1)

    def sample(self, params, seed, mode=False):
        loc = params["loc"]
        if mode:
            return loc
        return loc + params["scale"] * random_normal(ops.shape(loc), seed)

    def mean(self, params):
        return params["loc"]

    def get_config(self):
        config = super().get_config()
        config.update(
            event_size=self.event_size, scale=self.scale, min_scale=self.min_scale
        )
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class CategoricalObservation(_Observation):
    """Several categorical columns, column ``j`` taking values ``0..num_classes[j]-1``.

    Values are stored in x as floats holding the class index. Logits for all
    columns are predicted at once and padded to ``max(num_classes)`` with a
    large negative logit, so one batched ``tfd.Categorical`` scores them.

    Call: ``-> {"logits": [batch, sum(num_classes)]}``. ``mean`` returns the
    most probable class of each column (a class index, not an average).
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = [int(c) for c in num_classes]
        if not self.num_classes or min(self.num_classes) < 2:
            raise ValueError(
                "num_classes must be a non-empty list of ints >= 2, got "
                f"{num_classes!r}."
            )
        self.event_size = len(self.num_classes)
        self.max_classes = max(self.num_classes)
        total = sum(self.num_classes)
        self.logits_dense = keras.layers.Dense(total, name="logits", dtype=self.dtype_policy)
        # Gather map from the flat logits (+ one masked slot) to [columns, max].
        index = np.full((self.event_size, self.max_classes), total, dtype=np.int32)
        start = 0
        for j, c in enumerate(self.num_classes):
            index[j, :c] = np.arange(start, start + c)
            start += c
        self._pad_index = index.reshape(-1)

    def build(self, input_shape):
        self.logits_dense.build(input_shape)

    def call(self, features):
        return {"logits": _float32(self.logits_dense(features))}

    def padded_logits(self, params):
        """``[batch, event_size, max_classes]`` logits, padding masked."""
        flat = params["logits"]
        masked = ops.full_like(flat[:, :1], _MASKED_LOGIT)
        padded = ops.take(ops.concatenate([flat, masked], axis=-1), self._pad_index, axis=-1)
        return ops.reshape(padded, (-1, self.event_size, self.max_classes))

    def distribution(self, params):
        return tfd.Independent(tfd.Categorical(logits=self.padded_logits(params)), 1)

    def log_prob(self, params, value):
        return self.distribution(params).log_prob(ops.cast(value, "int32"))

    def sample(self, params, seed, mode=False):
        logits = self.padded_logits(params)
        if mode:
            return _argmax(logits)
        # Gumbel-max: argmax(logits + Gumbel noise) ~ Categorical(logits).
        u = random_uniform(ops.shape(logits), seed)
        gumbel = -ops.log(-ops.log(ops.clip(u, 1e-12, 1.0 - 1e-7)))
        return _argmax(logits + gumbel)

    def mean(self, params):
        return _argmax(self.padded_logits(params))

    def decode_outputs(self, params):
        probs = ops.softmax(self.padded_logits(params), axis=-1)
        return {"logits": params["logits"], "probs": probs, "mean": self.mean(params)}

    def check_data(self, x):
        limits = np.asarray(self.num_classes)
        bad = (x < 0) | (x >= limits) | (x != np.round(x))
        if np.any(bad):
            col = int(np.argwhere(bad)[0][1])
            raise ValueError(
                f"Categorical column {col} needs integer class indices in "
                f"[0, {self.num_classes[col] - 1}]; found {x[bad][0]!r}."
            )

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=list(self.num_classes))
        return config


_OBSERVATIONS = {"bernoulli": BernoulliObservation, "gaussian": GaussianObservation}


@keras.saving.register_keras_serializable(package="keras_vae")
class MixedObservation(_Observation):
    """Data whose columns form groups, each group with its own family.

    Args:
        components: list of observation heads, taken in column order: the
            first ``components[0].event_size`` columns of x belong to the
            first head, and so on.

    Call: ``-> {"c{i}_{name}": tensor}`` for every parameter of every component.
    ``log_prob`` is the sum of the components' log-densities.
    """

    def __init__(self, components, **kwargs):
        super().__init__(**kwargs)
        self.components = [
            c if isinstance(c, keras.layers.Layer) else keras.saving.deserialize_keras_object(c)
            for c in components
        ]
        if not self.components:
            raise ValueError("MixedObservation needs at least one component.")
        for c in self.components:
            if not isinstance(c, _Observation) or isinstance(c, MixedObservation):
                raise ValueError(
                    "MixedObservation components must be observation heads "
                    f"(Bernoulli/Gaussian/CategoricalObservation), got {c!r}."
                )
        sizes = [c.event_size for c in self.components]
        self.event_size = int(sum(sizes))
        self._bounds = np.cumsum([0] + sizes).tolist()

    def build(self, input_shape):
        for c in self.components:
            if not c.built:
                c.build(input_shape)

    def _split_params(self, params):
        return [
            {k.split("_", 1)[1]: v for k, v in params.items() if k.startswith(f"c{i}_")}
            for i in range(len(self.components))
        ]

    def _columns(self, x, i):
        return x[:, self._bounds[i] : self._bounds[i + 1]]

    def call(self, features):
        out = {}
        for i, c in enumerate(self.components):
            for k, v in c(features).items():
                out[f"c{i}_{k}"] = v
        return out

    def distribution(self, params):
        raise NotImplementedError(
            "MixedObservation has no single tfd.Distribution; use log_prob, "
            "sample and mean, or each component's distribution."
        )

    def log_prob(self, params, value):
        parts = self._split_params(params)
        return sum(
            c.log_prob(p, self._columns(value, i))
            for i, (c, p) in enumerate(zip(self.components, parts))
        )

    def sample(self, params, seed, mode=False):
        parts = self._split_params(params)
        return ops.concatenate(
            [c.sample(p, seed, mode=mode) for c, p in zip(self.components, parts)], axis=-1
        )

    def mean(self, params):
        parts = self._split_params(params)
        return ops.concatenate(
            [c.mean(p) for c, p in zip(self.components, parts)], axis=-1
        )

    def decode_outputs(self, params):
        out = {}
        for i, (c, p) in enumerate(zip(self.components, self._split_params(params))):
            for k, v in c.decode_outputs(p).items():
                if k != "mean":
                    out[f"c{i}_{k}"] = v
        out["mean"] = self.mean(params)
        return out

    def check_data(self, x):
        for i, c in enumerate(self.components):
            try:
                c.check_data(x[:, self._bounds[i] : self._bounds[i + 1]])
            except ValueError as err:
                raise ValueError(
                    f"Columns {self._bounds[i]}..{self._bounds[i + 1] - 1} "
                    f"(component {i}): {err}"
                ) from None

    def get_config(self):
        config = super().get_config()
        config.update(
            components=[keras.saving.serialize_keras_object(c) for c in self.components]
        )
        return config


def get_observation(likelihood, event_size):
    """Observation head from a name (``"bernoulli"``, ``"gaussian"``) or a head."""
    if isinstance(likelihood, _Observation):
        if likelihood.event_size != event_size:
            raise ValueError(
                f"The observation head models {likelihood.event_size} columns "
                f"but input_dim is {event_size}."
            )
        return likelihood
    if isinstance(likelihood, dict):
        return get_observation(keras.saving.deserialize_keras_object(likelihood), event_size)
    if likelihood not in _OBSERVATIONS:
        raise ValueError(
            f"Unknown likelihood {likelihood!r}; choose one of "
            f"{sorted(_OBSERVATIONS)} or pass an observation layer "
            "(CategoricalObservation, MixedObservation, ...)."
        )
    return _OBSERVATIONS[likelihood](event_size, name="observation")

