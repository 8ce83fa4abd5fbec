"""The stochastic hierarchy of a Helmholtz machine: its passes, terms and samples.

``StochasticHierarchy`` is a mixin of ``HelmholtzMachine``: it holds the math
of M stochastic layers ``h_1..h_M`` (``h_0 = x``) and reads only the layers
the model builds (``recognition_networks``/``recognition_heads``,
``generative_networks``/``generative_heads``, ``prior``, ``observation``) and
its ``seed_generator``:

- recognition, bottom-up: ``h_1 ~ q(h_1 | x)``, ``h_m ~ q(h_m | h_{m-1})``;
- generation, top-down: ``h_M ~ p(h_M)``, ``h_m ~ p(h_m | h_{m+1})``,
  ``x ~ p(x | h_1)``;
- :meth:`terms`: every ``log q`` and ``log p`` for ``k`` samples per example,
  the one input of every objective and of the importance-sampled evaluator.
"""

import keras
import tensorflow_probability as tfp
from keras import ops

from keras_vae import objectives
from keras_vae._validation import whole

tfd = tfp.distributions


def tile_examples(x, k):
    """``k`` copies of a batch ``[B, ...]`` stacked sample-major: ``[k*B, ...]``."""
    if k == 1:
        return x
    return ops.tile(x, (k,) + (1,) * (len(x.shape) - 1))


def _tile(params, k):
    """Repeat every tensor of a parameter dict ``k`` times along the batch."""
    if k == 1:
        return params
    return {
        name: ops.tile(t, (k,) + (1,) * (len(t.shape) - 1)) for name, t in params.items()
    }


class StochasticHierarchy:
    """Recognition and generative passes, terms, encoding, decoding and sampling."""

    @property
    def latent_dim(self):
        """Size of the top stochastic layer ``h_M`` (the code fed to ``decode``)."""
        return self.latent_dims[-1]

    @property
    def num_layers(self):
        """Number of stochastic layers M."""
        return len(self.latent_dims)

    def recognize(self, x, k=1, training=False, stop_gradient=False, seed=None):
        """Sample ``h ~ q(h | x)`` with ``k`` samples per example.

        Args:
            x: ``[B, *input_shape]``.
            k: samples per example; results are sample-major, ``[k*B, ...]``.
            stop_gradient: treat the samples as constants (wake phases).
            seed: a ``keras.random.SeedGenerator`` to draw from instead of the
                model's own (e.g. for reproducible evaluation).

        Returns:
            ``(samples, params, log_q)``: per layer, ``[k*B, d_m]`` samples,
            the parameter dicts and ``[k*B]`` ``log q(h_m | h_{m-1})``.
        """
        seed = self.seed_generator if seed is None else seed
        samples, params, log_q = [], [], []
        h = x
        for i, (net, head) in enumerate(zip(self.recognition_networks, self.recognition_heads)):
            p = head(net(h, training=training))
            if i == 0:
                # q(h_1 | x) is the same for the k copies of x: compute it once.
                p = _tile(p, k)
            z = head.sample(p, seed)
            if stop_gradient:
                z = ops.stop_gradient(z)
            samples.append(z)
            params.append(p)
            log_q.append(head.log_prob(p, z))
            h = z
        return samples, params, log_q

    def generative_log_probs(self, x, samples, training=False):
        """``log p(x | h_1)`` and ``log p(h_m | h_{m+1})`` for given samples.

        Args:
            x: ``[N, *input_shape]`` data (already repeated to match the samples).
            samples: per layer ``[N, d_m]``.

        Returns:
            ``(log_px [N], log_p list of [N], prior_params)``.
        """
        prior_params = self.prior(samples[-1])
        log_p = [None] * self.num_layers
        log_p[-1] = self.prior.log_prob(prior_params, samples[-1])
        for i, head in enumerate(self.generative_heads):
            p = head(self.generative_networks[i + 1](samples[i + 1], training=training))
            log_p[i] = head.log_prob(p, samples[i])
        obs = self.observation(self.generative_networks[0](samples[0], training=training))
        return self.observation.log_prob(obs, x), log_p, prior_params

    def terms(self, x, k=1, training=False, stop_gradient=False, analytic_kl=None, seed=None):
        """All log-probability terms for ``x [B, *input_shape]`` and ``k`` samples.

        Returns:
            ``objectives.Terms`` with ``[k, B]`` tensors; ``kl_top`` is the
            analytic top-layer KL when ``analytic_kl`` (default: ``kl ==
            "analytic"``), else None. ``seed`` is passed to ``recognize``.
        """
        x = ops.cast(x, "float32")
        batch = ops.shape(x)[0]
        samples, q_params, log_q = self.recognize(x, k, training, stop_gradient, seed)
        log_px, log_p, prior_params = self.generative_log_probs(
            tile_examples(x, k), samples, training
        )
        if analytic_kl is None:
            analytic_kl = self.kl == "analytic"
        kl_top = None
        if analytic_kl:
            kl_top = tfd.kl_divergence(
                self.recognition_heads[-1].distribution(q_params[-1]),
                self.prior.distribution(prior_params),
            )
        shape = lambda t: None if t is None else ops.reshape(t, (k, batch))  # noqa: E731
        return objectives.Terms(
            log_px=shape(log_px),
            log_p=[shape(t) for t in log_p],
            log_q=[shape(t) for t in log_q],
            kl_top=shape(kl_top),
        )

    def dream(self, n, seed=None, training=False):
        """Ancestral sample ``h_M ~ p(h_M)``, ..., ``x ~ p(x | h_1)``.

        Returns:
            ``(samples, x, obs_params)``: per layer ``[n, d_m]``, ``x [n, *input_shape]``
            and the observation parameters.
        """
        seed = self.seed_generator if seed is None else seed
        ref = ops.zeros((n, 1))
        h = self.prior.sample(self.prior(ref), seed)
        samples = [h]
        for i in reversed(range(self.num_layers - 1)):
            head = self.generative_heads[i]
            h = head.sample(head(self.generative_networks[i + 1](h, training=training)), seed)
            samples.insert(0, h)
        obs = self.observation(self.generative_networks[0](h, training=training))
        return samples, self.observation.sample(obs, seed), obs

    def recognition_log_probs(self, x, samples, training=False):
        """``log q(h_m | h_{m-1})`` for given samples (e.g. a dream): list of ``[N]``."""
        log_q, h = [], x
        for net, head, z in zip(self.recognition_networks, self.recognition_heads, samples):
            log_q.append(head.log_prob(head(net(h, training=training)), z))
            h = z
        return log_q

    # === Inference API ===

    def recognition_params(self, x):
        """Posterior parameters of every layer along the mean path.

        ``h_m`` is set to the mean of ``q(h_m | h_{m-1})`` before computing the
        next layer. Returns a list of M parameter dicts.
        """
        params, h = [], ops.cast(x, "float32")
        for net, head in zip(self.recognition_networks, self.recognition_heads):
            p = head(net(h))
            params.append(p)
            h = head.mean(p)
        return params

    def encode(self, x):
        """Posterior parameters of the top layer ``q(h_M | .)``.

        Args:
            x: ``[batch, *input_shape]``.

        Returns:
            dict: ``{"loc", "scale"}`` (diagonal), ``{"loc", "scale_tril"}``
            (full covariance) or ``{"logits"}`` (Bernoulli), each
            ``[batch, latent_dim(, latent_dim)]``. Lower layers use their means.
        """
        return self.recognition_params(x)[-1]

    def decode(self, z):
        """Observation parameters for top-layer codes ``z [batch, latent_dim]``.

        Lower stochastic layers are set to their conditional means. Returns
        the observation head's parameters plus ``"mean"`` ``[batch, *input_shape]``.
        """
        h = ops.cast(z, "float32")
        for i in reversed(range(self.num_layers - 1)):
            head = self.generative_heads[i]
            h = head.mean(head(self.generative_networks[i + 1](h)))
        obs = self.observation(self.generative_networks[0](h))
        return self.observation.decode_outputs(obs)

    def posterior_mean(self, x):
        """Mean of the top layer's posterior ``q(h_M | .)``, ``[batch, latent_dim]``.

        Lower layers are set to their posterior means. For Gaussian layers it
        is ``encode(x)["loc"]``; for binary units the firing probabilities.
        """
        return self.recognition_heads[-1].mean(self.encode(x))

    def reconstruct(self, x):
        """Mean of ``p(x | h)`` at the posterior mean of ``h``: ``[batch, *input_shape]``."""
        return self.decode(self.posterior_mean(x))["mean"]

    def sample(self, n, seed=None):
        """Generate ``n`` examples: ``z ~ p(z)`` then ``x ~ p(x | z)``.

        Args:
            n: number of samples.
            seed: int for reproducible draws, or None to use the model's
                seed generator.

        Returns:
            dict with ``"z"`` (top layer, ``[n, latent_dim]``), ``"x"`` (a draw)
            and ``"x_mean"`` (the mean of ``p(x | h_1)``), ``[n, *input_shape]``.
        """
        n = whole("n", n, 0)
        if seed is not None:
            seed = keras.random.SeedGenerator(seed)
        samples, x, obs = self.dream(n, seed=seed)
        return {"z": samples[-1], "x": x, "x_mean": self.observation.mean(obs)}

    def call(self, x):
        """Reconstruction mean, so ``predict`` returns reconstructions."""
        return self.reconstruct(x)
