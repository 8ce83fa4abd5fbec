"""Latent heads: ``q(h_m | h_{m-1})`` and ``p(h_m | h_{m+1})`` of a stochastic layer."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae.heads.base import DistributionHead
from keras_vae.heads.base import float32
from keras_vae.heads.base import random_normal
from keras_vae.heads.base import random_uniform
from keras_vae.heads.base import raw_for_scale
from keras_vae.heads.base import scale_from_raw
from keras_vae.layers import Dense

tfd = tfp.distributions

@keras.saving.register_keras_serializable(package="keras_vae")
class GaussianLatent(DistributionHead):
    """Gaussian stochastic layer, diagonal or full covariance.

    Args:
        units: int, size of the stochastic layer.
        covariance: ``"diag"`` (a softplus scale per unit) or ``"full"`` (the
            network predicts the lower-triangular ``Sigma^1/2`` with a
            softplus diagonal).
        min_scale: float, floor added to every diagonal scale.

    The scale layer's bias starts where ``Sigma^1/2`` is the identity for
    zero features, so every unit starts as wide as the prior ``N(0, I)``.

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
        self.loc_dense = Dense(self.units, name="loc", dtype=self.dtype_policy)
        n_scale = self.units if covariance == "diag" else self.units * (self.units + 1) // 2
        self.scale_dense = Dense(n_scale, name="scale", dtype=self.dtype_policy)
        if covariance == "full":
            self._tril_index, self._diag_mask = _tril_gather_index(self.units)

    def build(self, input_shape):
        self.loc_dense.build(input_shape)
        self.scale_dense.build(input_shape)
        self.scale_dense.bias.assign(self._identity_scale_bias())

    def _identity_scale_bias(self):
        """The scale layer's bias for which ``Sigma^1/2 = I`` at zero features."""
        unit = raw_for_scale(1.0, self.min_scale)
        if self.covariance == "diag":
            return np.full((self.units,), unit, dtype="float32")
        bias = np.zeros((self.units * (self.units + 1) // 2,), dtype="float32")
        diagonal = self._tril_index.reshape(self.units, self.units).diagonal()
        bias[diagonal] = unit
        return bias

    def call(self, features):
        loc = float32(self.loc_dense(features))
        raw = float32(self.scale_dense(features))
        if self.covariance == "diag":
            return {"loc": loc, "scale": scale_from_raw(raw, self.min_scale)}
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

    def describe(self):
        scale = (
            {"scale": "standard deviation of each unit (diagonal covariance)"}
            if self.covariance == "diag"
            else {"scale_tril": "lower-triangular Sigma^1/2 of the covariance (Sigma = L L^T)"}
        )
        return {
            "family": "gaussian",
            "distribution": f"N(loc, Sigma), {self.covariance} covariance",
            "covariance": self.covariance,
            "parameters": {"loc": "mean of each unit", **scale},
        }

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
class BernoulliLatent(DistributionHead):
    """Binary stochastic layer (sigmoid belief network units).

    Call: ``features [batch, f] -> {"logits": [batch, units]}``. Samples are
    in {0, 1} and carry no gradient (the family cannot be reparameterised).
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.logits_dense = Dense(self.units, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.logits_dense.build(input_shape)

    def call(self, features):
        return {"logits": float32(self.logits_dense(features))}

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

    def describe(self):
        return {
            "family": "bernoulli",
            "distribution": "Bernoulli(sigmoid(logits)) per unit",
            "parameters": {"logits": "log-odds that each binary unit is 1"},
        }

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


