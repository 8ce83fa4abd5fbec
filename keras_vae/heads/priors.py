"""Priors ``p(h_M)`` of the top stochastic layer: weightless or with learned biases."""

import keras
import tensorflow_probability as tfp
from keras import ops

from keras_vae.heads.base import DistributionHead
from keras_vae.heads.base import float32
from keras_vae.heads.base import random_normal
from keras_vae.heads.latent import BernoulliLatent

tfd = tfp.distributions

@keras.saving.register_keras_serializable(package="keras_vae")
class StandardNormalPrior(DistributionHead):
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

    def describe(self):
        return {
            "family": "gaussian",
            "distribution": "N(0, I)",
            "parameters": {"loc": "zeros", "scale": "ones"},
        }

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
        return {"logits": ops.broadcast_to(float32(self.bias), (batch, self.units))}

    def describe(self):
        return {
            "family": "bernoulli",
            "distribution": "Bernoulli(sigmoid(prior bias))",
            "parameters": {"logits": "the learned prior bias of each unit"},
        }


