"""Helmholtz machines and variational autoencoders as Keras models.

``HelmholtzMachine`` is the general model: M stochastic layers ``h_1..h_M``
with a generative model ``p(x, h) = p(h_M) prod_m p(h_m | h_{m+1})`` (``h_0 = x``)
and a recognition model ``q(h | x) = prod_m q(h_m | h_{m-1})``, trained by one
of the objectives in ``keras_vae.objectives``. ``VAE`` is its one-layer,
Gaussian, ELBO-trained special case with VAE-style argument names.
"""

import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from keras_vae import callbacks as callbacks_lib
from keras_vae import distributions
from keras_vae import networks
from keras_vae import objectives

tfd = tfp.distributions

LATENT_FAMILIES = ("gaussian", "bernoulli")

#: Training/evaluation steps per compiled call when ``compile`` is not told.
DEFAULT_STEPS_PER_EXECUTION = 32


def _auto_jit_allowed():
    """``KERAS_VAE_JIT_COMPILE=0`` turns the XLA default off (e.g. for test suites).

    XLA makes every step faster but costs a few seconds of compilation per
    model, which only short runs (unit tests) notice.
    """
    value = os.environ.get("KERAS_VAE_JIT_COMPILE", "auto").strip().lower()
    return value not in ("0", "false", "off", "no")


def _tile(params, k):
    """Repeat every tensor of a parameter dict ``k`` times along the batch."""
    if k == 1:
        return params
    return {
        name: ops.tile(t, (k,) + (1,) * (len(t.shape) - 1)) for name, t in params.items()
    }


def _per_layer(value, m, name):
    """Broadcast a single setting to a list of ``m`` settings."""
    if isinstance(value, (list, tuple)):
        if len(value) != m:
            raise ValueError(f"{name} has {len(value)} entries for {m} stochastic layers.")
        return list(value)
    return [value] * m


def _deserialize(value):
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value)
    return value


def _serialize(value):
    if isinstance(value, keras.layers.Layer):
        return keras.saving.serialize_keras_object(value)
    return value


@keras.saving.register_keras_serializable(package="keras_vae")
class HelmholtzMachine(keras.Model):
    """A Helmholtz machine with M stochastic layers.

    Args:
        input_dim: int, number of columns D of the (flat) data ``x [batch, D]``.
        latent_dims: sizes of ``h_1..h_M``, bottom to top.
        hidden_dims: per stochastic layer, the hidden widths of the
            deterministic network between ``h_{m-1}`` and ``h_m``; the
            recognition network uses them bottom-up, the generative one
            top-down (reversed). One sequence is used for every layer.
        activation: activation of the hidden layers.
        latent: ``"gaussian"`` or ``"bernoulli"``, or one per layer.
        covariance: ``"diag"`` or ``"full"`` covariance of Gaussian
            recognition layers (the generative conditionals are diagonal).
        likelihood: ``"bernoulli"``, ``"gaussian"`` or an observation head
            from ``keras_vae.distributions`` (e.g. ``CategoricalObservation``,
            ``MixedObservation``).
        objective: one of ``"elbo"``, ``"iwae"``, ``"wake_sleep"``,
            ``"reweighted_wake_sleep"``.
        n_samples: posterior samples per example (L for the ELBO, k for the
            importance-weighted objectives).
        kl: ``"analytic"`` (closed-form KL for the top layer) or ``"mc"``.
        beta: weight of the KL term in the ``"elbo"`` loss.
        kl_warmup_steps: int >= 0; with ``"elbo"``, the KL weight rises
            linearly from 0 to ``beta`` over the first ``kl_warmup_steps``
            optimizer steps (KL warm-up, Sønderby et al. 2016), computed from
            ``optimizer.iterations`` so a resumed run continues the schedule.
            Training then also reports ``kl_weight``. 0 (default): no warm-up.
        sleep_q: for ``"reweighted_wake_sleep"``, add the sleep-phase q update.
        eval_samples: if > 0, ``evaluate`` also reports ``log_px``, the
            importance-sampled ``log p(x)`` with this many samples.
        recognition_networks: optional list of M Keras layers, network ``m``
            mapping ``h_{m-1} -> features`` (``h_0 = x``).
        generative_networks: optional list of M Keras layers, network ``m``
            mapping ``h_{m+1} -> features`` for ``p(h_m | h_{m+1})``
            (network 0 feeds the observation model).
        seed: int or None, seed of the model's ``SeedGenerator``.

    ``fit``/``evaluate`` report nats per example: ``elbo``, ``reconstruction``
    (``E_q log p(x | h_1)``) and ``kl`` with ``elbo = reconstruction - kl``.
    ``evaluate``'s ``loss`` is always ``-elbo`` so that models trained by
    different objectives are comparable; training-only metrics are named after
    the objective (``iwae_bound``, ``wake_loss``, ``sleep_loss``, ...).
    """

    def __init__(
        self,
        input_dim,
        latent_dims=(100, 50),
        hidden_dims=(200, 200),
        activation="tanh",
        latent="gaussian",
        covariance="diag",
        likelihood="bernoulli",
        objective="elbo",
        n_samples=1,
        kl="analytic",
        beta=1.0,
        kl_warmup_steps=0,
        sleep_q=True,
        eval_samples=0,
        recognition_networks=None,
        generative_networks=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.latent_dims = [int(d) for d in latent_dims]
        m = len(self.latent_dims)
        if m < 1 or min(self.latent_dims) < 1 or self.input_dim < 1:
            raise ValueError(
                "input_dim and every latent size must be positive and there must be "
                f"at least one stochastic layer; got input_dim={input_dim}, latent_dims={latent_dims}."
            )
        hidden_dims = list(hidden_dims)
        if not hidden_dims or not isinstance(hidden_dims[0], (list, tuple)):
            hidden_dims = [hidden_dims] * m  # One set of widths for every layer.
        self.hidden_dims = [list(h) for h in _per_layer(list(hidden_dims), m, "hidden_dims")]
        self.activation = activation
        self.latent = _per_layer(latent, m, "latent")
        for family in self.latent:
            if family not in LATENT_FAMILIES:
                raise ValueError(f"Unknown latent family {family!r}; choose from {LATENT_FAMILIES}.")
        self.covariance = covariance
        if objective not in objectives.OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}; choose from {objectives.OBJECTIVES}.")
        if objective in ("elbo", "iwae") and "bernoulli" in self.latent:
            raise ValueError(
                f"objective={objective!r} needs reparameterised (Gaussian) latent layers, "
                f"but layer {self.latent.index('bernoulli') + 1} is Bernoulli. Train "
                "binary latent layers with 'wake_sleep' or 'reweighted_wake_sleep'."
            )
        self.objective = objective
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        self.n_samples = int(n_samples)
        if kl not in ("analytic", "mc"):
            raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}.")
        self.kl = kl
        self.beta = float(beta)
        if int(kl_warmup_steps) != kl_warmup_steps or kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be a non-negative integer, got {kl_warmup_steps!r}.")
        self.kl_warmup_steps = int(kl_warmup_steps)
        if self.kl_warmup_steps and objective != "elbo":
            raise ValueError(
                f"kl_warmup_steps weights the KL term of the 'elbo' objective; objective={objective!r} has none."
            )
        self.sleep_q = bool(sleep_q)
        self.eval_samples = int(eval_samples)
        self.likelihood = _deserialize(likelihood)
        self.seed = seed

        self.recognition_networks = self._networks(
            _deserialize_list(recognition_networks), self.hidden_dims, "recognition"
        )
        self.generative_networks = self._networks(
            _deserialize_list(generative_networks),
            [list(reversed(h)) for h in self.hidden_dims],
            "generative",
        )
        self.recognition_heads = [
            self._latent_head(i, self.covariance, f"q{i + 1}") for i in range(m)
        ]
        self.generative_heads = [
            self._latent_head(i, "diag", f"p{i + 1}") for i in range(m - 1)
        ]
        top = self.latent_dims[-1]
        if self.latent[-1] == "gaussian":
            self.prior = distributions.StandardNormalPrior(top, name="prior")
        else:
            self.prior = distributions.BernoulliPrior(top, name="prior")
        self.observation = distributions.get_observation(self.likelihood, self.input_dim)
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self._metric_names()}
        self.build((None, self.input_dim))

    # ------------------------------------------------------------------
    # Construction.
    # ------------------------------------------------------------------

    def _networks(self, given, widths, kind):
        m = len(self.latent_dims)
        if given is not None:
            if len(given) != m:
                raise ValueError(f"{kind}_networks needs {m} networks, got {len(given)}.")
            return list(given)
        return [
            networks.mlp(w, self.activation, name=f"{kind}_net_{i}") for i, w in enumerate(widths)
        ]

    def _latent_head(self, i, covariance, name):
        if self.latent[i] == "gaussian":
            return distributions.GaussianLatent(self.latent_dims[i], covariance=covariance, name=name)
        return distributions.BernoulliLatent(self.latent_dims[i], name=name)

    def build(self, input_shape):
        if self.built:
            return
        shape = (None, self.input_dim)
        for net, head, dim in zip(self.recognition_networks, self.recognition_heads, self.latent_dims):
            _build(head, _build(net, shape))
            shape = (None, dim)
        _build(self.observation, _build(self.generative_networks[0], (None, self.latent_dims[0])))
        for i, head in enumerate(self.generative_heads):
            _build(head, _build(self.generative_networks[i + 1], (None, self.latent_dims[i + 1])))
        _build(self.prior, (None, self.latent_dims[-1]))
        self.built = True

    @property
    def generative_variables(self):
        """Trainable variables of ``p(x, h)``: networks, heads and prior."""
        layers = self.generative_networks + self.generative_heads + [self.observation, self.prior]
        return [v for layer in layers for v in layer.trainable_variables]

    @property
    def recognition_variables(self):
        """Trainable variables of ``q(h | x)``."""
        layers = self.recognition_networks + self.recognition_heads
        return [v for layer in layers for v in layer.trainable_variables]

    @property
    def latent_dim(self):
        """Size of the top stochastic layer ``h_M`` (the code fed to ``decode``)."""
        return self.latent_dims[-1]

    @property
    def num_layers(self):
        """Number of stochastic layers M."""
        return len(self.latent_dims)

    # ------------------------------------------------------------------
    # The stochastic hierarchy.
    # ------------------------------------------------------------------

    def recognize(self, x, k=1, training=False, stop_gradient=False, seed=None):
        """Sample ``h ~ q(h | x)`` with ``k`` samples per example.

        Args:
            x: ``[B, D]``.
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
            x: ``[N, D]`` data (already repeated to match the samples).
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
        """All log-probability terms for ``x [B, D]`` and ``k`` samples.

        Returns:
            ``objectives.Terms`` with ``[k, B]`` tensors; ``kl_top`` is the
            analytic top-layer KL when ``analytic_kl`` (default: ``kl ==
            "analytic"``), else None. ``seed`` is passed to ``recognize``.
        """
        x = ops.cast(x, "float32")
        batch = ops.shape(x)[0]
        samples, q_params, log_q = self.recognize(x, k, training, stop_gradient, seed)
        log_px, log_p, prior_params = self.generative_log_probs(
            ops.tile(x, (k, 1)) if k > 1 else x, samples, training
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
            ``(samples, x, obs_params)``: per layer ``[n, d_m]``, ``x [n, D]``
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

    # ------------------------------------------------------------------
    # Inference API.
    # ------------------------------------------------------------------

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
            x: ``[batch, D]``.

        Returns:
            dict: ``{"loc", "scale"}`` (diagonal), ``{"loc", "scale_tril"}``
            (full covariance) or ``{"logits"}`` (Bernoulli), each
            ``[batch, latent_dim(, latent_dim)]``. Lower layers use their means.
        """
        return self.recognition_params(x)[-1]

    def decode(self, z):
        """Observation parameters for top-layer codes ``z [batch, latent_dim]``.

        Lower stochastic layers are set to their conditional means. Returns
        the observation head's parameters plus ``"mean"`` ``[batch, D]``.
        """
        h = ops.cast(z, "float32")
        for i in reversed(range(self.num_layers - 1)):
            head = self.generative_heads[i]
            h = head.mean(head(self.generative_networks[i + 1](h)))
        obs = self.observation(self.generative_networks[0](h))
        return self.observation.decode_outputs(obs)

    def reconstruct(self, x):
        """Mean of ``p(x | h)`` at the posterior mean of ``h``: ``[batch, D]``."""
        top = self.recognition_heads[-1]
        return self.decode(top.mean(self.encode(x)))["mean"]

    def sample(self, n, seed=None):
        """Generate ``n`` examples: ``z ~ p(z)`` then ``x ~ p(x | z)``.

        Args:
            n: number of samples.
            seed: int for reproducible draws, or None to use the model's
                seed generator.

        Returns:
            dict with ``"z"`` (top layer, ``[n, latent_dim]``), ``"x"`` (a draw)
            and ``"x_mean"`` (the mean of ``p(x | h_1)``), ``[n, D]``.
        """
        if seed is not None:
            seed = keras.random.SeedGenerator(seed)
        samples, x, obs = self.dream(int(n), seed=seed)
        return {"z": samples[-1], "x": x, "x_mean": self.observation.mean(obs)}

    def call(self, x):
        """Reconstruction mean, so ``predict`` returns reconstructions."""
        return self.reconstruct(x)

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------

    def _metric_names(self):
        names = ["loss", "elbo", "reconstruction", "kl"]
        names += ["kl_weight"] if self.kl_warmup_steps else []
        names += {
            "elbo": [],
            "iwae": ["iwae_bound"],
            "wake_sleep": ["wake_loss", "sleep_loss"],
            "reweighted_wake_sleep": ["wake_p_loss", "wake_q_loss"]
            + (["sleep_loss"] if self.sleep_q else []),
        }[self.objective]
        return names + (["log_px"] if self.eval_samples else [])

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _record(self, values):
        for name, value in values.items():
            self._trackers[name].update_state(value)
        logs = {name: self._trackers[name].result() for name in values}
        if _multi_worker():
            # Keras reduces the per-replica logs of a multi-worker job with
            # strategy.reduce("MEAN", v, axis=0), which needs a batch axis.
            logs = {name: ops.reshape(v, (1,)) for name, v in logs.items()}
        return logs

    @staticmethod
    def _global_mean(per_example):
        """Sum over the local batch divided by the *global* batch size."""
        local = ops.cast(ops.shape(per_example)[0], "float32")
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
        else:
            total = local
        return ops.sum(per_example) / total

    def objective_losses(self, x, training=True):
        """Per-example losses of the training objective and metric values.

        Returns:
            ``(losses, metrics)``: ``losses`` maps a variable group
            (``"all"``, ``"generative"``, ``"recognition"``) to ``[B]`` losses;
            ``metrics`` maps names to ``[B]`` values.
        """
        k = self.n_samples
        if self.objective in ("elbo", "iwae"):
            terms = self.terms(x, k, training=training)
            parts = objectives.elbo(terms)
            metrics = dict(parts)
            if self.objective == "elbo":
                weight = self.beta
                if self.kl_warmup_steps and training and getattr(self, "optimizer", None) is not None:
                    step = ops.cast(self.optimizer.iterations, "float32")
                    weight = self.beta * ops.minimum(1.0, step / float(self.kl_warmup_steps))
                    metrics["kl_weight"] = weight
                loss = -(parts["reconstruction"] - weight * parts["kl"])
            else:
                # The bound needs per-sample weights: Monte Carlo top layer.
                bound = objectives.iwae(terms._replace(kl_top=None))
                metrics["iwae_bound"] = bound
                loss = -bound
            metrics["loss"] = loss
            return {"all": loss}, metrics

        terms = self.terms(x, k, training=training, stop_gradient=True)
        metrics = objectives.elbo(terms)
        if self.objective == "wake_sleep":
            losses = {"generative": -objectives.wake(terms)}
            metrics["wake_loss"] = losses["generative"]
        else:
            parts = objectives.reweighted_wake(terms._replace(kl_top=None))
            losses = {"generative": -parts["wake_p"], "recognition": -parts["wake_q"]}
            metrics["wake_p_loss"] = losses["generative"]
            metrics["wake_q_loss"] = losses["recognition"]
        if self.objective == "wake_sleep" or self.sleep_q:
            samples, x_dream, _ = self.dream(ops.shape(x)[0], training=training)
            samples = [ops.stop_gradient(h) for h in samples]
            sleep = -objectives.sleep(
                self.recognition_log_probs(ops.stop_gradient(x_dream), samples, training)
            )
            losses["recognition"] = losses.get("recognition", 0.0) + sleep
            metrics["sleep_loss"] = sleep
        metrics["loss"] = losses["generative"] + losses["recognition"]
        return losses, metrics

    def train_step(self, data):
        return self._train_step(data, skip_nonfinite=True)[0]

    def _train_step(self, data, skip_nonfinite):
        """One update; returns ``(logs, finite)``, ``finite`` whether every loss was finite."""
        x = _features(data)
        groups = {
            "all": self.trainable_variables,
            "generative": self.generative_variables,
            "recognition": self.recognition_variables,
        }
        # The ELBO and IWAE objectives have one loss for all variables: a
        # non-persistent tape frees the forward activations as it goes.
        persistent = self.objective not in ("elbo", "iwae")
        with tf.GradientTape(persistent=persistent) as tape:
            losses, metrics = self.objective_losses(x, training=True)
            means = {g: self._global_mean(l) for g, l in losses.items()}
            scaled = {g: self.optimizer.scale_loss(m) for g, m in means.items()}
        routed = {}
        for group, loss in scaled.items():
            for var, grad in zip(groups[group], tape.gradient(loss, groups[group])):
                routed[id(var)] = grad
        del tape
        # Apply in trainable_variables order, the order the optimizer's slots
        # are restored in when a saved model is loaded.
        variables = self.trainable_variables
        grads = [routed.get(id(v)) for v in variables]

        def apply():
            self.optimizer.apply_gradients(zip(grads, variables))
            return tf.constant(True)

        finite = tf.reduce_all(tf.stack([tf.math.is_finite(m) for m in means.values()]))
        ctx = tf.distribute.get_replica_context()
        if not skip_nonfinite or (ctx is not None and ctx.num_replicas_in_sync > 1):
            # (Replicas see different local losses: no local skip decision.)
            apply()
        else:
            # Keras's loop: a step whose loss is NaN/inf leaves the weights
            # and optimizer state as they were; the loss metric reports it
            # and StopOnNaN ends fit (after the execution).
            tf.cond(finite, apply, lambda: tf.constant(False))
        return self._record(metrics), finite

    def make_train_function(self, force=False):
        """Keras's training function, or one XLA program per ``steps_per_execution`` steps.

        With XLA on, several steps per execution and no ``tf.distribute``
        strategy, the steps of one execution run as a single XLA loop over
        the stacked batches instead of Keras's graph loop of one XLA call per
        step (whose per-step dispatch cost about as much as a small model's
        step itself). Otherwise, Keras's own function.
        """
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if not (
            self.jit_compile
            and not self.run_eagerly
            and int(self.steps_per_execution) > 1
            and self._distribute_strategy is None
            and not tf.distribute.has_strategy()
        ):
            return self.train_function
        keras_function = self.train_function
        n = int(self.steps_per_execution)
        names = [name for name in self._metric_names() if name != "log_px"]

        @tf.function(jit_compile=True, reduce_retracing=True)
        def run_steps(batches, count):
            # The loop ends after a step with a non-finite loss and StopOnNaN
            # ends fit. That step's update is applied, as Keras itself does:
            # a conditional update (train_step's) cost 10% of the 784-200-
            # 200-50 VAE's throughput under XLA (34k vs 37.5k examples/s).
            # Epoch checkpoints keep the last good weights.
            i, finite = tf.constant(0), tf.constant(True)
            while i < count and finite:
                _, finite = self._train_step(batches[i], skip_nonfinite=False)
                i += 1
            return {name: self._trackers[name].result() for name in names}

        def function(iterator):
            if not isinstance(iterator, tf.data.Iterator):
                return keras_function(iterator)
            batches = []
            for _ in range(n):
                optional = iterator.get_next_as_optional()
                if not optional.has_value():
                    break
                batches.append(ops.convert_to_tensor(_features(optional.get_value())))
            if not batches:
                raise StopIteration
            logs = None
            # Runs of same-shaped batches (the last batch of an epoch may be
            # smaller), each padded to n steps so XLA compiles one program
            # per batch shape; only the first `count` steps run.
            while batches:
                shape = batches[0].shape
                same = 1
                while same < len(batches) and batches[same].shape == shape:
                    same += 1
                group, batches = batches[:same], batches[same:]
                padding = [tf.zeros_like(group[0])] * (n - len(group))
                logs = run_steps(tf.stack(group + padding), tf.constant(len(group), tf.int32))
            return logs

        self.train_function = function
        return function

    def test_step(self, data):
        x = _features(data)
        terms = self.terms(x, self.n_samples)
        metrics = objectives.elbo(terms)
        metrics["loss"] = -metrics["elbo"]
        if self.eval_samples:
            metrics["log_px"] = objectives.iwae(self.terms(x, self.eval_samples, analytic_kl=False))
        return self._record(metrics)

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution="auto",
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """``keras.Model.compile`` with fast defaults for these models.

        The model computes its own losses and metrics: pass an optimizer and
        leave ``loss``/``metrics`` unset.

        Args:
            steps_per_execution: training/evaluation steps per call of the
                compiled function. ``"auto"`` (default) runs
                ``DEFAULT_STEPS_PER_EXECUTION`` steps per call, which removes
                most of the per-batch Python and dispatch overhead of small
                models; callbacks' batch hooks then run once per call. Under
                a ``tf.distribute`` strategy it means 1 (Keras's multi-step
                loop does not run there).
            jit_compile: ``"auto"`` (default) compiles the training and test
                steps with XLA whenever every layer supports it and the model
                is not under a ``tf.distribute`` strategy, on CPU too (Keras's
                own ``"auto"`` turns XLA off on CPU-only machines). The
                environment variable ``KERAS_VAE_JIT_COMPILE=0`` makes
                ``"auto"`` mean no XLA (compilation takes a few seconds per
                model, which only very short runs such as unit tests notice).
        """
        requested = {"steps_per_execution": steps_per_execution, "jit_compile": jit_compile}
        if steps_per_execution == "auto":
            # Keras's multi-step loop fails under tf.distribute strategies
            # ("You must feed a value for placeholder tensor", keras-team/keras
            # issue 19246): one step per call there.
            steps_per_execution = 1 if self._distribute_strategy is not None else DEFAULT_STEPS_PER_EXECUTION
        if jit_compile == "auto":
            jit_compile = (
                _auto_jit_allowed()
                and not run_eagerly
                and self._distribute_strategy is None
                and all(layer.supports_jit for layer in self._flatten_layers())
            )
        super().compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=loss_weights,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            auto_scale_loss=auto_scale_loss,
        )
        # Save "auto" as "auto": a model trained under a strategy and loaded
        # without one (or the reverse) gets the defaults of where it loads.
        config = getattr(self, "_compile_config", None)
        if config is not None:
            config.config.update({k: v for k, v in requested.items() if v == "auto"})

    def compile_from_config(self, config):
        """Recompile a loaded model with its saved compile settings.

        Keras skips this for models that override ``compile``; the saved
        config holds every argument of ``compile``, so it is replayed here.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, **kwargs):
        """``keras.Model.fit`` after checking the data; stops on a NaN loss.

        The data are flat ``[batch, input_dim]`` arrays or a ``tf.data.Dataset``
        of them (labels, if any, are ignored). Numpy data are checked in full,
        datasets on their first batch. A non-finite loss raises
        ``FloatingPointError`` (see ``keras_vae.callbacks.StopOnNaN``).
        """
        self.check_data(x)
        if validation_data is not None:
            self.check_data(validation_data)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, callbacks_lib.StopOnNaN) for c in callbacks):
            callbacks.append(callbacks_lib.StopOnNaN())
        if isinstance(x, tf.data.Dataset):
            # A dataset shuffles itself; Keras would warn that shuffle is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, validation_data=validation_data, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """``keras.Model.evaluate`` after checking the data (see ``fit``)."""
        self.check_data(x)
        return super().evaluate(x, y, **kwargs)

    def check_data(self, data):
        """Raise ``ValueError`` naming the problem if ``data`` cannot be modelled.

        Checks: non-empty, shape ``[batch, input_dim]``, finite values and the
        observation model's support (e.g. [0, 1] for Bernoulli).
        """
        if isinstance(data, tf.data.Dataset):
            first = next(iter(data.take(1)), None)
            if first is None:
                raise ValueError("The dataset is empty: it yields no batches.")
            data = first
        elif data is None or not hasattr(data, "shape") and not isinstance(data, (list, tuple)):
            return  # Generators and PyDatasets are checked by Keras.
        x = _features(data)
        x = np.asarray(keras.ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x)
        if x.size == 0:
            raise ValueError(f"The data are empty (shape {x.shape}).")
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"Expected data of shape [batch, {self.input_dim}] (flat features), got "
                f"shape {tuple(x.shape)}. Flatten images, e.g. x.reshape(len(x), -1)."
            )
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"Data must be numeric, got dtype {x.dtype}.")
        finite = np.isfinite(x)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise ValueError(
                f"The data contain {int((~finite).sum())} NaN/inf values "
                f"(first at row {row}, column {col})."
            )
        self.observation.check_data(x)

    # ------------------------------------------------------------------
    # Serialisation.
    # ------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            latent_dims=list(self.latent_dims),
            hidden_dims=[list(h) for h in self.hidden_dims],
            activation=self.activation,
            latent=list(self.latent),
            covariance=self.covariance,
            likelihood=_serialize(self.likelihood),
            objective=self.objective,
            n_samples=self.n_samples,
            kl=self.kl,
            beta=self.beta,
            kl_warmup_steps=self.kl_warmup_steps,
            sleep_q=self.sleep_q,
            eval_samples=self.eval_samples,
            recognition_networks=self._user_networks(self.recognition_networks, "recognition"),
            generative_networks=self._user_networks(self.generative_networks, "generative"),
            seed=self.seed,
        )
        return config

    def _user_networks(self, nets, kind):
        if all(net.name == f"{kind}_net_{i}" for i, net in enumerate(nets)):
            return None  # Built from hidden_dims: rebuilt the same way.
        return [_serialize(net) for net in nets]


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(HelmholtzMachine):
    """Variational autoencoder (Kingma & Welling, 2013).

    One Gaussian stochastic layer ``z``, ``p(z) = N(0, I)``, trained by the
    reparameterised ELBO ``E_q[log p(x | z)] - beta * KL(q(z | x) || p(z))``
    estimated with ``n_samples`` draws ``z = mu + Sigma^1/2 eps``. It is the
    ``M = 1`` case of :class:`HelmholtzMachine` and shares its code.

    Args:
        input_dim: int, number of columns D of ``x [batch, D]``.
        latent_dim: size of ``z``.
        hidden_dims: hidden widths of the encoder (the decoder mirrors them).
        activation: hidden activation.
        covariance: ``"diag"`` or ``"full"`` (the encoder predicts the
            lower-triangular ``Sigma^1/2``).
        likelihood: ``"bernoulli"``, ``"gaussian"`` or an observation head.
        n_samples: L, samples of z per example.
        kl: ``"analytic"`` or ``"mc"``.
        beta: KL weight (1 is the ELBO).
        kl_warmup_steps: optimizer steps over which the KL weight rises
            linearly from 0 to ``beta`` (see :class:`HelmholtzMachine`).
        eval_samples: if > 0, ``evaluate`` reports importance-sampled ``log_px``.
        encoder: optional Keras layer ``x [batch, D] -> features``.
        decoder: optional Keras layer ``z [batch, latent_dim] -> features``.
        seed: int or None.

    Example:
        >>> model = keras_vae.VAE(input_dim=64, latent_dim=2)
        >>> model.compile(keras.optimizers.Adam(1e-3))
        >>> model.fit(x_train, epochs=10, batch_size=100)
        >>> model.sample(16, seed=0)["x_mean"].shape
        TensorShape([16, 64])
    """

    def __init__(
        self,
        input_dim,
        latent_dim=16,
        hidden_dims=(200, 200),
        activation="tanh",
        covariance="diag",
        likelihood="bernoulli",
        n_samples=1,
        kl="analytic",
        beta=1.0,
        kl_warmup_steps=0,
        eval_samples=0,
        encoder=None,
        decoder=None,
        seed=None,
        **kwargs,
    ):
        encoder, decoder = _deserialize(encoder), _deserialize(decoder)
        super().__init__(
            input_dim=input_dim,
            latent_dims=(latent_dim,),
            hidden_dims=(list(hidden_dims),),
            activation=activation,
            covariance=covariance,
            likelihood=likelihood,
            objective="elbo",
            n_samples=n_samples,
            kl=kl,
            beta=beta,
            kl_warmup_steps=kl_warmup_steps,
            eval_samples=eval_samples,
            recognition_networks=None if encoder is None else [encoder],
            generative_networks=None if decoder is None else [decoder],
            seed=seed,
            **kwargs,
        )
        self.encoder = encoder
        self.decoder = decoder

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(
            input_dim=self.input_dim,
            latent_dim=self.latent_dim,
            hidden_dims=list(self.hidden_dims[0]),
            activation=self.activation,
            covariance=self.covariance,
            likelihood=_serialize(self.likelihood),
            n_samples=self.n_samples,
            kl=self.kl,
            beta=self.beta,
            kl_warmup_steps=self.kl_warmup_steps,
            eval_samples=self.eval_samples,
            encoder=_serialize(self.encoder),
            decoder=_serialize(self.decoder),
            seed=self.seed,
        )
        return config


def _multi_worker():
    """Whether the current strategy is a multi-worker (collective) one."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    # The check Keras's trainer uses to pick its multi-worker reduction.
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


def _deserialize_list(values):
    if values is None:
        return None
    return [_deserialize(v) for v in values]


def _build(layer, input_shape):
    """Build ``layer`` for ``input_shape`` (once); return its output shape if it has one."""
    if not layer.built:
        layer.build(input_shape)
    if isinstance(layer, distributions._Head):
        return None
    return layer.compute_output_shape(input_shape)


def _features(data):
    """The x of ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x
