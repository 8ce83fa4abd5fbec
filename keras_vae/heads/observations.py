"""Observation heads ``p(x | h_1)``: Bernoulli, Gaussian, Categorical and mixed columns."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae.heads.base import ObservationHead
from keras_vae.heads.base import float32
from keras_vae.heads.base import random_normal
from keras_vae.heads.base import random_uniform
from keras_vae.heads.base import scale_from_raw

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
    """Binary (or [0, 1]-valued) pixels. Call: ``-> {"logits": [batch, event_size]}``."""

    def __init__(self, event_size, **kwargs):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.logits_dense = keras.layers.Dense(self.event_size, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.logits_dense.build(input_shape)

    def call(self, features):
        return {"logits": float32(self.logits_dense(features))}

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params["logits"], dtype=tf.float32), 1)

    def log_prob(self, params, value):
        # Also valid for intensities in [0, 1] (the continuous Bernoulli
        # cross-entropy without its normaliser), as is common for MNIST.
        logits = params["logits"]
        value = float32(value)
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
        config.update(event_size=self.event_size)
        return config


@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianObservation(ObservationHead):
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
        loc = float32(self.loc_dense(features))
        if self.scale == "per_example":
            raw = self.scale_dense(features)
        else:
            raw = ops.broadcast_to(self.raw_scale, ops.shape(loc))
        return {"loc": loc, "scale": scale_from_raw(raw, self.min_scale)}

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(params["loc"], params["scale"]), 1)

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
            event_size=self.event_size, scale=self.scale, min_scale=self.min_scale
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


_OBSERVATIONS = {"bernoulli": BernoulliObservation, "gaussian": GaussianObservation}


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


def get_observation(likelihood, event_size):
    """Observation head from a name (``"bernoulli"``, ``"gaussian"``) or a head."""
    if isinstance(likelihood, ObservationHead):
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

