"""Observation heads ``p(x | h_1)``: Bernoulli, Gaussian, discretised logistic, Categorical and mixed columns."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae.heads.base import ObservationHead
from keras_vae.heads.base import event_shape_of
from keras_vae.heads.base import float32
from keras_vae.heads.base import random_normal
from keras_vae.heads.base import random_uniform
from keras_vae.heads.base import raw_for_scale
from keras_vae.heads.base import scale_from_raw
from keras_vae.layers import Dense

tfd = tfp.distributions

# Logit given to padded categories so they carry no probability mass.
_MASKED_LOGIT = -1e9


def _argmax(logits):
    """Index of the largest logit as float32, ``[..., classes] -> [...]``.

    ``tf.argmax`` rather than ``keras.ops.argmax``: the latter adds a
    ``BitwiseAnd`` (for signed zeros) that TFLite has no builtin op for.
    """
    return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.float32)



@keras.saving.register_keras_serializable(package="keras_vae")
class BernoulliObservation(ObservationHead):
    """Binary (or [0, 1]-valued) pixels.

    Args:
        event_shape: int ``D`` or the shape of one example, e.g. ``(28, 28, 1)``.
        event_size: older name of a flat ``event_shape`` (configs saved
            before ``event_shape`` existed use it).

    Call: ``-> {"logits": [batch, *event_shape]}``.

    Example:
        >>> head = BernoulliObservation((8, 8, 1))
        >>> params = head(keras.ops.zeros((2, 8, 8, 4)))   # per-pixel (1x1) projection
        >>> head.log_prob(params, keras.ops.ones((2, 8, 8, 1))).shape
        TensorShape([2])
    """

    discrete = True

    def __init__(self, event_shape=None, event_size=None, **kwargs):
        super().__init__(**kwargs)
        self.event_shape = event_shape_of(event_shape, event_size)
        self.event_size = int(np.prod(self.event_shape))

    def build(self, input_shape):
        self.logits_dense = self.event_dense(input_shape, name="logits")

    def call(self, features):
        return {"logits": self.event_values(self.logits_dense, features)}

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params["logits"], dtype=tf.float32), len(self.event_shape))

    def log_prob(self, params, value):
        # Also valid for intensities in [0, 1] (the continuous Bernoulli
        # cross-entropy without its normaliser), as is common for MNIST.
        logits = params["logits"]
        value = float32(value)
        return ops.sum(value * logits - ops.softplus(logits), axis=self.event_axes)

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

    def describe(self):
        return {
            "family": "bernoulli",
            "distribution": "Bernoulli(sigmoid(logits)) per column",
            "parameters": {"logits": "log-odds that x_d = 1"},
            "input_scaling": "x in [0, 1]: binary values or intensities scaled to [0, 1] "
            "(keras_vae.datasets divides 8-bit pixels by 255, the 8x8 digits by 16)",
            "outputs": {"logits": "log-odds that x_d = 1", "probs": "P(x_d = 1) = sigmoid(logits)"},
        }

    def get_config(self):
        config = super().get_config()
        config.update(event_shape=list(self.event_shape))
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianObservation(ObservationHead):
    """Continuous columns, ``N(loc, scale^2)`` per column.

    Args:
        event_shape: int ``D`` (columns) or the shape of one example.
        scale: ``"learned"`` (one learned scale per value, shared by all
            examples) or ``"per_example"`` (predicted by the network).
        min_scale: floor added to the softplus scale.
        event_size: older name of a flat ``event_shape``.

    Call: ``-> {"loc": [batch, *event_shape], "scale": [batch, *event_shape]}``.

    Example:
        >>> head = GaussianObservation(5, scale="per_example")
        >>> head(keras.ops.zeros((2, 8)))["scale"].shape
        TensorShape([2, 5])
    """

    reparameterized = True

    def __init__(self, event_shape=None, scale="learned", min_scale=1e-3, event_size=None, **kwargs):
        super().__init__(**kwargs)
        if scale not in ("learned", "per_example"):
            raise ValueError(
                f"scale must be 'learned' or 'per_example', got {scale!r}."
            )
        self.event_shape = event_shape_of(event_shape, event_size)
        self.event_size = int(np.prod(self.event_shape))
        self.scale = scale
        self.min_scale = float(min_scale)

    def build(self, input_shape):
        self.loc_dense = self.event_dense(input_shape, name="loc")
        # Scales start at 1 (for zero features when predicted per example).
        unit = raw_for_scale(1.0, self.min_scale)
        if self.scale == "per_example":
            self.scale_dense = self.event_dense(input_shape, name="scale")
            self.scale_dense.bias.assign(np.full(self.scale_dense.bias.shape, unit, dtype="float32"))
        else:
            self.raw_scale = self.add_weight(
                shape=self.event_shape,
                initializer=keras.initializers.Constant(unit),
                name="raw_scale",
            )

    def call(self, features):
        loc = self.event_values(self.loc_dense, features)
        if self.scale == "per_example":
            raw = self.event_values(self.scale_dense, features)
        else:
            raw = ops.broadcast_to(self.raw_scale, ops.shape(loc))
        return {"loc": loc, "scale": scale_from_raw(raw, self.min_scale)}

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(params["loc"], params["scale"]), len(self.event_shape))

    def sample(self, params, seed, mode=False):
        loc = params["loc"]
        if mode:
            return loc
        return loc + params["scale"] * random_normal(ops.shape(loc), seed)

    def mean(self, params):
        return params["loc"]

    def describe(self):
        outputs = {"loc": "mean of each column", "scale": "standard deviation of each column"}
        return {
            "family": "gaussian",
            "distribution": f"N(loc, scale^2) per column, scale {self.scale}",
            "parameters": dict(outputs),
            "input_scaling": "real values on the scale the model was trained on "
            "(the model applies no normalisation)",
            "outputs": outputs,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            event_shape=list(self.event_shape), scale=self.scale, min_scale=self.min_scale
        )
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class CategoricalObservation(ObservationHead):
    """Several categorical columns, column ``j`` taking values ``0..num_classes[j]-1``.

    Values are stored in x as floats holding the class index. Logits for all
    columns are predicted at once and padded to ``max(num_classes)`` with a
    large negative logit, so one batched ``tfd.Categorical`` scores them.

    Call: ``-> {"logits": [batch, sum(num_classes)]}``. ``mean`` returns the
    most probable class of each column (a class index, not an average).

    Example:
        >>> head = CategoricalObservation([3, 4])
        >>> head.mean(head(keras.ops.zeros((2, 8)))).shape
        TensorShape([2, 2])
    """

    discrete = True

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = [int(c) for c in num_classes]
        if not self.num_classes or min(self.num_classes) < 2:
            raise ValueError(
                "num_classes must be a non-empty list of ints >= 2, got "
                f"{num_classes!r}."
            )
        self.event_size = len(self.num_classes)
        self.event_shape = (self.event_size,)
        self.max_classes = max(self.num_classes)
        total = sum(self.num_classes)
        self.logits_dense = Dense(total, name="logits", dtype=self.dtype_policy)
        # Gather map from the flat logits (+ one masked slot) to [columns, max].
        index = np.full((self.event_size, self.max_classes), total, dtype=np.int32)
        start = 0
        for j, c in enumerate(self.num_classes):
            index[j, :c] = np.arange(start, start + c)
            start += c
        self._pad_index = index.reshape(-1)

    def build(self, input_shape):
        self.logits_dense.build((input_shape[0], int(np.prod(input_shape[1:]))))

    def call(self, features):
        if len(features.shape) > 2:
            features = ops.reshape(features, (ops.shape(features)[0], -1))
        return {"logits": float32(self.logits_dense(features))}

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

    def describe(self):
        return {
            "family": "categorical",
            "distribution": "Categorical(softmax(logits)) per column",
            "num_classes": list(self.num_classes),
            "parameters": {"logits": "unnormalised log-probabilities, each column's classes in turn"},
            "input_scaling": "the class index of each column as float32, column j in 0..num_classes[j]-1",
            "outputs": {
                "logits": "[batch, sum(num_classes)] unnormalised log-probabilities, each column's classes in turn",
                "probs": "[batch, columns, max(num_classes)] class probabilities of each column (padding 0)",
            },
        }

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=list(self.num_classes))
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class DiscretizedLogisticObservation(ObservationHead):
    """8-bit (or ``num_bins``-level) values: a discretised logistic mixture per value.

    Each value ``x = j / (num_bins - 1)``, ``j = 0..num_bins-1``, takes the
    mass the mixture of logistics puts on its bin ``[x - h, x + h]``, ``h =
    0.5 / (num_bins - 1)``, with the bins at the ends extended to -inf and
    +inf (Salimans et al., 2017, PixelCNN++), so the masses of all values sum
    to one. Values are independent given ``h_1`` (no coupling of colour
    channels).

    Data are the integer levels scaled to [0, 1], ``x = j / 255`` for 8-bit
    pixels (what ``keras_vae.datasets`` gives for 8-bit images): divide
    ``uint8`` pixels by 255 before ``fit``. ``check_data`` rejects values
    that are not on that grid.

    Args:
        event_shape: int ``D`` or the shape of one example, e.g. ``(32, 32, 3)``.
        num_components: int ``K >= 1`` logistic components per value.
        num_bins: number of levels of a value (256 for 8 bits).
        min_scale: floor added to the softplus scale, in units of [0, 1].

    Call: ``-> {"loc": [batch, *event_shape, K], "scale": [batch, *event_shape, K]}``
    plus ``"logits"`` (same shape, the mixture weights) when ``K > 1``.
    ``mean`` is the mean of the logistic mixture clipped to [0, 1], which
    the discretised mean matches to within a fraction of one level.

    Example:
        >>> head = DiscretizedLogisticObservation((8, 8, 1), num_components=2)
        >>> params = head(keras.ops.zeros((2, 8, 8, 4)))
        >>> params["loc"].shape
        TensorShape([2, 8, 8, 1, 2])
        >>> head.log_prob(params, keras.ops.zeros((2, 8, 8, 1))).shape
        TensorShape([2])
    """

    discrete = True

    def __init__(self, event_shape=None, num_components=1, num_bins=256, min_scale=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.event_shape = event_shape_of(event_shape)
        self.event_size = int(np.prod(self.event_shape))
        self.num_components = int(num_components)
        self.num_bins = int(num_bins)
        self.min_scale = float(min_scale)
        if self.num_components < 1 or self.num_components != num_components:
            raise ValueError(f"num_components must be an integer >= 1, got {num_components!r}.")
        if self.num_bins < 2 or self.num_bins != num_bins:
            raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}.")
        if not self.min_scale > 0:
            raise ValueError(f"min_scale must be > 0, got {min_scale!r}.")

    def build(self, input_shape):
        k = self.num_components
        self.loc_dense = self.event_dense(input_shape, k, name="loc")
        self.scale_dense = self.event_dense(input_shape, k, name="scale")
        if k > 1:
            self.logits_dense = self.event_dense(input_shape, k, name="logits")

    def call(self, features):
        k = self.num_components
        # Locations start at mid-grey; the scale at softplus(0) ~ 0.69.
        params = {
            "loc": 0.5 + self.event_values(self.loc_dense, features, k),
            "scale": scale_from_raw(self.event_values(self.scale_dense, features, k), self.min_scale),
        }
        if k > 1:
            params["logits"] = self.event_values(self.logits_dense, features, k)
        return params

    def _log_weights(self, params):
        """``[batch, *event_shape, K]`` log mixture weights."""
        if "logits" not in params:
            return ops.zeros_like(params["loc"])
        return ops.log_softmax(params["logits"], axis=-1)

    def component_log_probs(self, params, value):
        """``[batch, *event_shape, K]`` log-mass of each value's bin under each component.

        With ``a = (x + h - loc) / scale`` and ``b = (x - h - loc) / scale``:
        ``log P = log(sigmoid(a) - sigmoid(b))`` in the interior,
        ``log sigmoid(a)`` at ``x = 0`` and ``log(1 - sigmoid(b))`` at
        ``x = 1``. The interior difference is evaluated as
        ``-softplus(b) - softplus(-a) + log(-expm1(-(a - b)))``, finite for
        every ``a > b`` (no cancellation of two sigmoids near 0 or 1).
        """
        top = self.num_bins - 1
        x = float32(value)[..., None]
        level = ops.round(x * top)
        half = 0.5 / top
        centered = x - params["loc"]
        inv_scale = 1.0 / params["scale"]
        a = (centered + half) * inv_scale
        b = (centered - half) * inv_scale
        zero = ops.zeros_like(a)
        above_min = level > 0.5
        below_max = level < top - 0.5
        log_p = ops.where(above_min, -ops.softplus(b), zero)
        log_p += ops.where(below_max, -ops.softplus(-a), zero)
        width = (2.0 * half) * inv_scale  # a - b, > 0
        log_p += ops.where(ops.logical_and(above_min, below_max), ops.log(-ops.expm1(-width)), zero)
        return log_p

    def log_prob(self, params, value):
        per_value = ops.logsumexp(self._log_weights(params) + self.component_log_probs(params, value), axis=-1)
        return ops.sum(per_value, axis=self.event_axes)

    def _pick(self, params, seed, mode):
        """``(loc, scale)`` of one component per value: a draw (Gumbel-max) or the heaviest."""
        loc, scale = params["loc"], params["scale"]
        if self.num_components == 1:
            return loc[..., 0], scale[..., 0]
        logits = params["logits"]
        if not mode:
            u = random_uniform(ops.shape(logits), seed)
            logits = logits - ops.log(-ops.log(ops.clip(u, 1e-12, 1.0 - 1e-7)))
        one_hot = tf.one_hot(tf.argmax(logits, axis=-1, output_type=tf.int32), self.num_components)
        return ops.sum(loc * one_hot, axis=-1), ops.sum(scale * one_hot, axis=-1)

    def _quantize(self, y):
        top = float(self.num_bins - 1)
        return ops.round(ops.clip(y, 0.0, 1.0) * top) / top

    def sample(self, params, seed, mode=False):
        """A draw ``j / (num_bins - 1)`` (``mode=True``: the heaviest component's location, quantised)."""
        loc, scale = self._pick(params, seed, mode)
        if mode:
            return self._quantize(loc)
        u = ops.clip(random_uniform(ops.shape(loc), seed), 1e-6, 1.0 - 1e-6)
        return self._quantize(loc + scale * (ops.log(u) - ops.log1p(-u)))

    def mean(self, params):
        # E[clip(Y, 0, 1)] = int_0^1 P(Y > t) dt = s (softplus(mu / s) - softplus((mu - 1) / s)).
        loc, scale = params["loc"], params["scale"]
        clipped = scale * (ops.softplus(loc / scale) - ops.softplus((loc - 1.0) / scale))
        return ops.sum(ops.exp(self._log_weights(params)) * clipped, axis=-1)

    def check_data(self, x):
        top = self.num_bins - 1
        lo, hi = float(np.min(x)), float(np.max(x))
        if lo < 0.0 or hi > 1.0:
            hint = f" (divide 8-bit pixels by {top})" if hi > 1.0 else ""
            raise ValueError(
                f"A discretised logistic likelihood needs values j / {top} in [0, 1]; got values in "
                f"[{lo:g}, {hi:g}]{hint}."
            )
        off = np.abs(x * top - np.round(x * top))
        if np.max(off) > 1e-3:
            bad = x.reshape(-1)[int(np.argmax(off.reshape(-1)))]
            raise ValueError(
                f"A discretised logistic likelihood needs values on the grid j / {top}, j = 0..{top}; "
                f"found {bad!r}. Quantise the data (np.round(x * {top}) / {top}) or use likelihood='gaussian'."
            )

    def describe(self):
        top = self.num_bins - 1
        shape = "[batch, *event_shape, K]"
        parameters = {
            "loc": f"{shape} location of each logistic component, in units of [0, 1]",
            "scale": f"{shape} scale of each logistic component",
        }
        if self.num_components > 1:
            parameters["logits"] = f"{shape} unnormalised log mixture weights"
        return {
            "family": "discretized_logistic",
            "distribution": f"mixture of {self.num_components} logistics per value, discretised to "
            f"{self.num_bins} levels j / {top} (end bins extended to -inf and +inf)",
            "num_components": self.num_components,
            "num_bins": self.num_bins,
            "parameters": parameters,
            "input_scaling": f"integer levels divided by {top}: x = j / {top} in [0, 1]",
            "outputs": dict(parameters),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            event_shape=list(self.event_shape),
            num_components=self.num_components,
            num_bins=self.num_bins,
            min_scale=self.min_scale,
        )
        return config


_OBSERVATIONS = {
    "bernoulli": BernoulliObservation,
    "gaussian": GaussianObservation,
    "discretized_logistic": DiscretizedLogisticObservation,
}


@keras.saving.register_keras_serializable(package="keras_vae")
class MixedObservation(ObservationHead):
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
            if not isinstance(c, ObservationHead) or isinstance(c, MixedObservation):
                raise ValueError(
                    "MixedObservation components must be observation heads "
                    f"(Bernoulli/Gaussian/CategoricalObservation), got {c!r}."
                )
            if len(c.event_shape) != 1:
                raise ValueError(
                    f"MixedObservation components model flat columns; got a component of event_shape {c.event_shape}."
                )
        sizes = [c.event_size for c in self.components]
        self.event_size = int(sum(sizes))
        self.event_shape = (self.event_size,)
        self.discrete = all(c.discrete for c in self.components)
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

    def describe(self):
        components, outputs = [], {}
        for i, component in enumerate(self.components):
            part = component.describe()
            first, last = self._bounds[i], self._bounds[i + 1] - 1
            part["columns"] = [first, last + 1]
            columns = f"column {first}" if first == last else f"columns {first}..{last}"
            for name, doc in part.pop("outputs").items():
                outputs[f"c{i}_{name}"] = f"{columns} ({part['family']}): {doc}"
            components.append(part)
        return {
            "family": "mixed",
            "distribution": "a product of the components' distributions, each over its columns",
            "components": components,
            "parameters": {
                f"c{i}_{name}": doc for i, c in enumerate(components) for name, doc in c["parameters"].items()
            },
            "input_scaling": "per component, see 'components'",
            "outputs": outputs,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            components=[keras.saving.serialize_keras_object(c) for c in self.components]
        )
        return config


def get_observation(likelihood, event_shape):
    """Observation head from a name or a head.

    Args:
        likelihood: ``"bernoulli"``, ``"gaussian"``, ``"discretized_logistic"``,
            an ``ObservationHead`` or its serialised config.
        event_shape: int or tuple, the shape of one example.

    Returns:
        An ``ObservationHead`` over ``event_shape``.

    Example:
        >>> get_observation("discretized_logistic", (28, 28, 1)).event_shape
        (28, 28, 1)
    """
    event_shape = event_shape_of(event_shape)
    if isinstance(likelihood, ObservationHead):
        if tuple(likelihood.event_shape) != event_shape:
            raise ValueError(
                f"The observation head models events of shape {tuple(likelihood.event_shape)} "
                f"but the model's input_shape is {event_shape}; build the head with "
                f"event_shape={event_shape}."
            )
        return likelihood
    if isinstance(likelihood, dict):
        return get_observation(keras.saving.deserialize_keras_object(likelihood), event_shape)
    if likelihood not in _OBSERVATIONS:
        raise ValueError(
            f"Unknown likelihood {likelihood!r}; choose one of "
            f"{sorted(_OBSERVATIONS)} or pass an observation layer "
            "(CategoricalObservation, MixedObservation, ...)."
        )
    return _OBSERVATIONS[likelihood](event_shape, name="observation")
