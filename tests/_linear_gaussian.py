"""A linear-Gaussian VAE with closed-form log p(x), posterior and ELBO (test helper)."""

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import multivariate_normal

import keras_vae


def softplus_inv(y):
    """Inverse of softplus: the raw value a softplus-parameterised scale needs."""
    return np.log(np.expm1(y))


def to_numpy(t):
    """A tensor (or array) as a numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(t))


class LinearGaussian:
    """``z ~ N(0, I_d)``, ``x = W z + b + sigma eps`` as a keras-vae VAE.

    ``W`` has orthogonal columns, so the exact posterior ``q*(z | x) =
    N(A (x - b), Sigma)``, ``Sigma = (I + W^T W / sigma^2)^-1``, is diagonal
    and the encoder (identity network, one Dense head) can represent it.
    """

    def __init__(self, dim=4, latent=2, sigma=0.5, seed=0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(dim, latent)))
        self.w = q * np.linspace(2.0, 1.0, latent)  # [D, d], orthogonal columns
        self.b = rng.normal(size=dim)
        self.sigma = sigma
        self.sigma_post = np.linalg.inv(np.eye(latent) + self.w.T @ self.w / sigma**2)
        assert np.allclose(self.sigma_post, np.diag(np.diag(self.sigma_post)))
        self.a = self.sigma_post @ self.w.T / sigma**2  # [d, D]
        self.model = keras_vae.VAE(dim, latent_dim=latent, hidden_dims=(), likelihood="gaussian", seed=0)
        obs = self.model.observation
        obs.loc_dense.kernel.assign(self.w.T.astype("float32"))
        obs.loc_dense.bias.assign(self.b.astype("float32"))
        obs.raw_scale.assign(np.full(dim, softplus_inv(sigma - obs.min_scale), "float32"))
        self.set_posterior()

    def set_posterior(self, loc_shift=0.0, scale_factor=1.0):
        """Encoder = the exact posterior, optionally shifted and widened."""
        head = self.model.recognition_heads[0]
        scale = np.sqrt(np.diag(self.sigma_post)) * scale_factor
        head.loc_dense.kernel.assign(self.a.T.astype("float32"))
        head.loc_dense.bias.assign((-self.a @ self.b + loc_shift).astype("float32"))
        head.scale_dense.kernel.assign(np.zeros_like(to_numpy(head.scale_dense.kernel)))
        head.scale_dense.bias.assign(softplus_inv(scale - head.min_scale).astype("float32"))

    def sample(self, n, seed=1):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, self.w.shape[1]))
        return (z @ self.w.T + self.b + self.sigma * rng.normal(size=(n, len(self.b)))).astype("float32")

    def log_px(self, x):
        cov = self.w @ self.w.T + self.sigma**2 * np.eye(len(self.b))
        return multivariate_normal(self.b, cov).logpdf(x)

    def elbo(self, x):
        """Closed-form ELBO of the model's current encoder (TF, differentiable)."""
        model = self.model
        params = model.recognition_heads[0](model.recognition_networks[0](x))
        mu, s = params["loc"], params["scale"]
        obs = model.observation
        w, b = obs.loc_dense.kernel, obs.loc_dense.bias
        sigma = tf.nn.softplus(obs.raw_scale) + obs.min_scale
        mean = mu @ w + b
        spread = (s**2) @ (w**2)  # E_q (x - Wz - b)^2 = (x - W mu - b)^2 + sum_i s_i^2 W_ij^2
        rec = tf.reduce_sum(
            -0.5 * np.log(2 * np.pi) - tf.math.log(sigma) - 0.5 * ((x - mean) ** 2 + spread) / sigma**2, axis=-1
        )
        kl = 0.5 * tf.reduce_sum(mu**2 + s**2 - 1.0 - 2.0 * tf.math.log(s), axis=-1)
        return rec - kl
