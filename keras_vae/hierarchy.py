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

A conditional model (``condition_dim=K``) models ``q(h | x, y)`` and
``p(x, h | y)`` for a condition ``y [batch, K]``: every recognition and
generative network reads ``join_condition(h, y)``, its usual input with ``y``
appended (a custom bottom encoder reads ``x`` alone and ``y`` joins its
features); the prior stays ``N(0, I)`` (or the Bernoulli prior). Its inputs
(what ``terms`` and the objectives receive) are the pair ``(x, y)``; an
unconditional model's inputs are ``x`` (a pair's ``y`` is ignored).
"""

import keras
import numpy as np
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


def join_condition(h, condition):
    """A network's input: ``h`` (flattened) with the condition ``y`` appended; ``h`` when ``y`` is None.

    Args:
        h: ``[B, d]`` or ``[B, *shape]`` (flattened to ``[B, prod(shape)]``).
        condition: ``[B, K]`` float condition, or None.

    Returns:
        ``[B, d + K]``.

    Example:
        >>> join_condition(ops.zeros((2, 3)), ops.ones((2, 10))).shape
        TensorShape([2, 13])
    """
    if condition is None:
        return h
    if len(h.shape) > 2:
        h = ops.reshape(h, (-1, int(np.prod(h.shape[1:]))))
    return ops.concatenate([h, ops.cast(condition, h.dtype)], axis=-1)


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

    # === Conditions ===

    def _condition_hint(self):
        return (
            f"This model is conditional (condition_dim={self.condition_dim}): give the condition y "
            f"[batch, {self.condition_dim}] with the data, as fit((x, y)), a tf.data.Dataset of (x, y) "
            "pairs, or condition=y."
        )

    def split_inputs(self, inputs):
        """``(x, condition)`` of the model's inputs.

        Args:
            inputs: ``x`` or a pair ``(x, y)``. A conditional model needs the
                pair; an unconditional one ignores its ``y``.

        Returns:
            ``(x, condition)``, ``condition`` a float32 ``[B, K]`` tensor or None.

        Raises:
            ValueError: a conditional model without ``y``, or ``y`` not ``[B, K]``.
        """
        x, y = inputs, None
        if isinstance(inputs, (tuple, list)):
            x, y = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        if self.condition_dim is None:
            return x, None
        if y is None:
            raise ValueError(f"Got x without a condition. {self._condition_hint()}")
        return x, self.check_condition(y, ops.shape(x)[0])

    def check_condition(self, condition, batch=None):
        """The condition as float32 ``[batch, K]``, or None for an unconditional model.

        Args:
            condition: ``[K]`` (one condition for every example, broadcast to
                ``batch``) or ``[batch, K]``; None for an unconditional model.
            batch: the number of examples, when ``condition`` is ``[K]``.

        Raises:
            ValueError: a missing condition, a condition given to an
                unconditional model, or a shape other than ``[K]``/``[batch, K]``.
        """
        if self.condition_dim is None:
            if condition is not None:
                raise ValueError(
                    "This model is not conditional (condition_dim=None) and takes no condition; "
                    "build it with condition_dim=K to model p(x | y)."
                )
            return None
        if condition is None:
            raise ValueError(f"Missing condition. {self._condition_hint()}")
        condition = ops.cast(ops.convert_to_tensor(condition), "float32")
        k = self.condition_dim
        if len(condition.shape) == 1 and condition.shape[0] == k and batch is not None:
            condition = ops.broadcast_to(condition[None], (batch, k))
        rows = condition.shape[0] if len(condition.shape) == 2 else None
        if isinstance(batch, int) and isinstance(rows, int) and rows != batch:
            raise ValueError(f"The condition has {rows} rows for {batch} examples; give [{batch}, {k}] or [{k}].")
        if len(condition.shape) != 2 or condition.shape[-1] != k:
            raise ValueError(
                f"The condition must have shape [batch, {k}] (condition_dim={k}) or [{k}], "
                f"got shape {tuple(condition.shape)}. One-hot labels: keras.utils.to_categorical(labels, {k})."
            )
        return condition

    def recognition_features(self, m, h, condition=None, training=False):
        """Features of recognition network ``m`` (0-based) for ``q(h_{m+1} | h_m, y)``.

        Args:
            m: layer index, 0 for the bottom network reading ``x``.
            h: ``[B, *input_shape]`` for ``m = 0``, else ``[B, d_m]``.
            condition: ``[B, K]`` or None.

        Returns:
            the features the recognition head ``m`` reads. The model's own
            bottom network reads the flattened ``x`` with ``y``; a custom
            encoder (which may expect images) reads ``x`` and ``y`` joins its
            features.
        """
        self._check_given(condition)
        net = self.recognition_networks[m]
        if m == 0 and self._condition_joins_features:
            return join_condition(net(h, training=training), condition)
        return net(join_condition(h, condition), training=training)

    def generative_features(self, m, h, condition=None, training=False):
        """Features of generative network ``m`` (0-based): ``[h_{m+1}, y]`` -> features.

        Network 0 feeds the observation head ``p(x | h_1, y)``, network ``m``
        the head of ``p(h_m | h_{m+1}, y)``.
        """
        self._check_given(condition)
        return self.generative_networks[m](join_condition(h, condition), training=training)

    def _check_given(self, condition):
        """A clear error for a network input without the condition its model needs (or the reverse)."""
        if (condition is None) != (self.condition_dim is None):
            self.check_condition(condition)

    # === Passes ===

    def recognize(self, x, k=1, training=False, stop_gradient=False, seed=None, condition=None):
        """Sample ``h ~ q(h | x)`` (``q(h | x, y)``) with ``k`` samples per example.

        Args:
            x: ``[B, *input_shape]``.
            k: samples per example; results are sample-major, ``[k*B, ...]``.
            stop_gradient: treat the samples as constants (wake phases).
            seed: a ``keras.random.SeedGenerator`` to draw from instead of the
                model's own (e.g. for reproducible evaluation).
            condition: ``[B, K]`` condition of a conditional model, else None.

        Returns:
            ``(samples, params, log_q)``: per layer, ``[k*B, d_m]`` samples,
            the parameter dicts and ``[k*B]`` ``log q(h_m | h_{m-1})``.
        """
        seed = self.seed_generator if seed is None else seed
        samples, params, log_q = [], [], []
        h = x
        tiled = None if condition is None else tile_examples(condition, k)
        for i, head in enumerate(self.recognition_heads):
            if i == 0:
                # q(h_1 | x) is the same for the k copies of x: compute it once.
                p = _tile(head(self.recognition_features(0, h, condition, training)), k)
            else:
                p = head(self.recognition_features(i, h, tiled, training))
            z = head.sample(p, seed)
            if stop_gradient:
                z = ops.stop_gradient(z)
            samples.append(z)
            params.append(p)
            log_q.append(head.log_prob(p, z))
            h = z
        return samples, params, log_q

    def generative_log_probs(self, x, samples, training=False, condition=None):
        """``log p(x | h_1)`` and ``log p(h_m | h_{m+1})`` for given samples.

        Args:
            x: ``[N, *input_shape]`` data (already repeated to match the samples).
            samples: per layer ``[N, d_m]``.
            condition: ``[N, K]`` (repeated like ``x``) or None.

        Returns:
            ``(log_px [N], log_p list of [N], prior_params)``.
        """
        prior_params = self.prior(samples[-1])
        log_p = [None] * self.num_layers
        log_p[-1] = self.prior.log_prob(prior_params, samples[-1])
        for i, head in enumerate(self.generative_heads):
            p = head(self.generative_features(i + 1, samples[i + 1], condition, training))
            log_p[i] = head.log_prob(p, samples[i])
        obs = self.observation(self.generative_features(0, samples[0], condition, training))
        return self.observation.log_prob(obs, x), log_p, prior_params

    def terms(self, x, k=1, training=False, stop_gradient=False, analytic_kl=None, seed=None):
        """All log-probability terms for ``k`` samples per example.

        Args:
            x: the inputs: ``x [B, *input_shape]``, or ``(x, y)`` with
                ``y [B, K]`` for a conditional model.

        Returns:
            ``objectives.Terms`` with ``[k, B]`` tensors; ``kl_top`` is the
            analytic top-layer KL when ``analytic_kl`` (default: ``kl ==
            "analytic"``), else None. ``seed`` is passed to ``recognize``.
        """
        x, condition = self.split_inputs(x)
        x = ops.cast(x, "float32")
        batch = ops.shape(x)[0]
        samples, q_params, log_q = self.recognize(x, k, training, stop_gradient, seed, condition)
        log_px, log_p, prior_params = self.generative_log_probs(
            tile_examples(x, k), samples, training, None if condition is None else tile_examples(condition, k)
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

    def dream(self, n, seed=None, training=False, condition=None):
        """Ancestral sample ``h_M ~ p(h_M)``, ..., ``x ~ p(x | h_1)`` (given ``y``).

        Args:
            n: number of samples.
            condition: ``[n, K]`` condition of a conditional model, else None.

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
            h = head.sample(head(self.generative_features(i + 1, h, condition, training)), seed)
            samples.insert(0, h)
        obs = self.observation(self.generative_features(0, h, condition, training))
        return samples, self.observation.sample(obs, seed), obs

    def recognition_log_probs(self, x, samples, training=False, condition=None):
        """``log q(h_m | h_{m-1})`` for given samples (e.g. a dream): list of ``[N]``."""
        log_q, h = [], x
        for i, (head, z) in enumerate(zip(self.recognition_heads, samples)):
            log_q.append(head.log_prob(head(self.recognition_features(i, h, condition, training)), z))
            h = z
        return log_q

    # === Inference API ===

    def recognition_params(self, x, condition=None):
        """Posterior parameters of every layer along the mean path.

        ``h_m`` is set to the mean of ``q(h_m | h_{m-1})`` before computing the
        next layer. Returns a list of M parameter dicts.

        Args:
            x: ``[batch, *input_shape]``, or the pair ``(x, y)``.
            condition: ``[batch, K]`` or ``[K]`` condition of a conditional
                model (instead of the pair).
        """
        x, condition = self._with_condition(x, condition)
        params, h = [], x
        for i, head in enumerate(self.recognition_heads):
            p = head(self.recognition_features(i, h, condition))
            params.append(p)
            h = head.mean(p)
        return params

    def _with_condition(self, x, condition):
        """``(x float32, condition)`` from ``x`` or ``(x, y)`` and an optional ``condition``."""
        if condition is not None or not isinstance(x, (tuple, list)):
            x = ops.cast(x[0] if isinstance(x, (tuple, list)) else x, "float32")
            return x, self.check_condition(condition, ops.shape(x)[0])
        x, condition = self.split_inputs(x)
        return ops.cast(x, "float32"), condition

    def encode(self, x, condition=None):
        """Posterior parameters of the top layer ``q(h_M | .)``.

        Args:
            x: ``[batch, *input_shape]``.
            condition: ``[batch, K]`` or ``[K]``; required by (and only by)
                a conditional model.

        Returns:
            dict: ``{"loc", "scale"}`` (diagonal), ``{"loc", "scale_tril"}``
            (full covariance) or ``{"logits"}`` (Bernoulli), each
            ``[batch, latent_dim(, latent_dim)]``. Lower layers use their means.
        """
        return self.recognition_params(x, condition)[-1]

    def decode(self, z, condition=None):
        """Observation parameters for top-layer codes ``z [batch, latent_dim]``.

        Lower stochastic layers are set to their conditional means.

        Args:
            z: ``[batch, latent_dim]``.
            condition: ``[batch, K]`` or ``[K]``; required by (and only by)
                a conditional model.

        Returns:
            the observation head's parameters plus ``"mean"`` ``[batch, *input_shape]``.
        """
        h = ops.cast(z, "float32")
        condition = self.check_condition(condition, ops.shape(h)[0])
        for i in reversed(range(self.num_layers - 1)):
            head = self.generative_heads[i]
            h = head.mean(head(self.generative_features(i + 1, h, condition)))
        obs = self.observation(self.generative_features(0, h, condition))
        return self.observation.decode_outputs(obs)

    def posterior_mean(self, x, condition=None):
        """Mean of the top layer's posterior ``q(h_M | .)``, ``[batch, latent_dim]``.

        Lower layers are set to their posterior means. For Gaussian layers it
        is ``encode(x)["loc"]``; for binary units the firing probabilities.
        ``condition``: as for :meth:`encode`.
        """
        return self.recognition_heads[-1].mean(self.encode(x, condition))

    def reconstruct(self, x, condition=None):
        """Mean of ``p(x | h)`` at the posterior mean of ``h``: ``[batch, *input_shape]``.

        ``x`` may be the pair ``(x, y)`` of a conditional model, or give ``condition``.
        """
        x, condition = self._with_condition(x, condition)
        return self.decode(self.posterior_mean(x, condition), condition)["mean"]

    def sample(self, n, seed=None, condition=None):
        """Generate ``n`` examples: ``z ~ p(z)`` then ``x ~ p(x | z)`` (``p(x | z, y)``).

        Args:
            n: number of samples.
            seed: int for reproducible draws, or None to use the model's
                seed generator.
            condition: for a conditional model, ``[K]`` (one condition for
                all ``n``) or ``[n, K]``.

        Returns:
            dict with ``"z"`` (top layer, ``[n, latent_dim]``), ``"x"`` (a draw)
            and ``"x_mean"`` (the mean of ``p(x | h_1)``), ``[n, *input_shape]``.

        Example:
            >>> model.sample(10, condition=keras.ops.eye(10), seed=0)["x_mean"].shape  # one per class
            TensorShape([10, 784])
        """
        n = whole("n", n, 0)
        condition = self.check_condition(condition, n)
        if seed is not None:
            seed = keras.random.SeedGenerator(seed)
        samples, x, obs = self.dream(n, seed=seed, condition=condition)
        return {"z": samples[-1], "x": x, "x_mean": self.observation.mean(obs)}

    def call(self, x):
        """Reconstruction mean, so ``predict`` returns reconstructions (``x`` or ``(x, y)``)."""
        return self.reconstruct(x)
