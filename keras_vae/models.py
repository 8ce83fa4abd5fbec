"""Helmholtz machines and variational autoencoders as Keras models.

``HelmholtzMachine`` is the general model: M stochastic layers ``h_1..h_M``
with a generative model ``p(x, h) = p(h_M) prod_m p(h_m | h_{m+1})`` (``h_0 = x``)
and a recognition model ``q(h | x) = prod_m q(h_m | h_{m-1})``, trained by an
objective from ``keras_vae.objectives``. ``VAE`` is its one-layer, Gaussian,
ELBO-trained special case with VAE-style argument names.

The model class builds the layers and holds the configuration; the math of
the hierarchy is in ``keras_vae.hierarchy`` and the training machinery in
``keras_vae.training`` (both mixins of the class).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_vae import _keras_compat
from keras_vae import heads
from keras_vae import in_memory
from keras_vae import layers
from keras_vae import networks
from keras_vae import objectives
from keras_vae._validation import whole
from keras_vae.hierarchy import StochasticHierarchy
from keras_vae.training import DEFAULT_STEPS_PER_EXECUTION  # noqa: F401  (public, re-exported)
from keras_vae.training import DISTRIBUTED_STEPS_PER_EXECUTION  # noqa: F401  (public, re-exported)
from keras_vae.training import Trainer
from keras_vae.training import features

LATENT_FAMILIES = ("gaussian", "bernoulli")
KL_ESTIMATORS = ("analytic", "mc")


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


def _deserialize_list(values):
    if values is None:
        return None
    return [_deserialize(v) for v in values]


def _serialize(value):
    if isinstance(value, keras.layers.Layer):
        return keras.saving.serialize_keras_object(value)
    return value


def _input_shape(input_dim, input_shape):
    """The model's ``input_shape`` from ``input_dim`` and/or ``input_shape`` (they must agree)."""
    if input_shape is None:
        if input_dim is None:
            raise ValueError("Give the shape of one example: input_shape=(28, 28, 1) for images or input_dim=D.")
        return (whole("input_dim", input_dim, 1),)
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") or not len(input_shape):
        raise ValueError(f"input_shape must be a non-empty tuple of sizes, e.g. (28, 28, 1), got {input_shape!r}.")
    shape = tuple(whole("every input_shape size", s, 1) for s in input_shape)
    if input_dim is not None and whole("input_dim", input_dim, 1) != int(np.prod(shape)):
        raise ValueError(
            f"input_dim={input_dim} does not match input_shape={shape} ({int(np.prod(shape))} values); "
            "give input_shape alone."
        )
    return shape


def _build(layer, input_shape):
    """Build ``layer`` for ``input_shape`` (once); return its output shape if it has one."""
    if not layer.built:
        layer.build(input_shape)
    if isinstance(layer, heads.DistributionHead):
        return None
    return layer.compute_output_shape(input_shape)


@keras.saving.register_keras_serializable(package="keras_vae")
class HelmholtzMachine(StochasticHierarchy, Trainer, keras.Model):
    """A Helmholtz machine with M stochastic layers.

    Args:
        input_dim: int, number of columns D of flat data ``x [batch, D]``
            (the same as ``input_shape=(D,)``). After construction,
            ``input_dim`` is the number of values of one example,
            ``prod(input_shape)``.
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
            from ``keras_vae.heads`` (e.g. ``CategoricalObservation``,
            ``MixedObservation``).
        objective: ``"elbo"``, ``"iwae"``, ``"wake_sleep"``,
            ``"reweighted_wake_sleep"`` (any name of
            ``keras_vae.objectives.available()``) or a
            ``keras_vae.objectives.Objective`` instance.
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
        seed: int or None. Fixes the initial weights of the networks and
            heads the model builds and the noise of its ``SeedGenerator``:
            the same seed and data give the same training run (up to
            floating-point reduction order). None: both are random.
        input_shape: shape of one example, e.g. ``(28, 28, 1)`` for
            images ``x [batch, 28, 28, 1]``; instead of ``input_dim``. The
            default networks flatten images; ``sample``, ``reconstruct``
            and ``decode`` return ``[batch, *input_shape]``.
        condition_dim: int K or None. With K, a conditional model of
            ``p(x, h | y)`` and ``q(h | x, y)`` for a float condition
            ``y [batch, K]`` (one-hot labels or any features): every
            recognition and generative network reads its input with ``y``
            appended (the bottom recognition network the flattened ``x``
            with ``y``; a custom ``recognition_networks[0]`` reads ``x``
            alone and ``y`` joins its output features). The prior stays ``N(0, I)`` (or
            the Bernoulli prior): it does not depend on ``y``. Data are
            pairs: ``fit((x, y))`` or a ``tf.data.Dataset`` of ``(x, y)``;
            ``sample``, ``encode``, ``decode``, ``reconstruct`` and
            ``posterior_mean`` take ``condition=y``. A conditional model
            trains without a ``tf.distribute`` strategy. None (default): an
            unconditional model, which ignores the ``y`` of ``(x, y)`` data.

    ``fit``/``evaluate`` report nats per example: ``elbo``, ``reconstruction``
    (``E_q log p(x | h_1)``) and ``kl`` with ``elbo = reconstruction - kl``.
    ``evaluate``'s ``loss`` is always ``-elbo`` so that models trained by
    different objectives are comparable; training-only metrics are named after
    the objective (``iwae_bound``, ``wake_loss``, ``sleep_loss``, ...).
    """

    def __init__(
        self,
        input_dim=None,
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
        input_shape=None,
        condition_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.input_shape = _input_shape(input_dim, input_shape)
        self.input_dim = int(np.prod(self.input_shape))
        if isinstance(latent_dims, (str, bytes)) or not hasattr(latent_dims, "__len__") or not len(latent_dims):
            raise ValueError(f"latent_dims must be a non-empty list of layer sizes, got {latent_dims!r}.")
        self.latent_dims = [whole("every latent size", d, 1) for d in latent_dims]
        m = len(self.latent_dims)
        hidden_dims = list(hidden_dims)
        if not hidden_dims or not isinstance(hidden_dims[0], (list, tuple)):
            hidden_dims = [hidden_dims] * m  # One set of widths for every layer.
        self.hidden_dims = [
            [whole("every hidden width", w, 1) for w in h] for h in _per_layer(list(hidden_dims), m, "hidden_dims")
        ]
        self.activation = activation
        self.latent = _per_layer(latent, m, "latent")
        self.covariance = covariance
        self.likelihood = _deserialize(likelihood)
        self.training_objective = objectives.get(objective)
        self.objective = self.training_objective.name
        self.n_samples = whole("n_samples", n_samples, 1)
        self.kl = kl
        self.beta = float(beta)
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}.")
        self.kl_warmup_steps = kl_warmup_steps
        self.sleep_q = bool(sleep_q)
        self.eval_samples = whole("eval_samples", eval_samples, 0)
        self.seed = seed
        self.condition_dim = None if condition_dim is None else whole("condition_dim", condition_dim, 1)
        self._check_config()
        self.kl_warmup_steps = int(kl_warmup_steps)

        # === Layers ===
        # A seed fixes the initial weights of the layers built here as well as the noise.
        # The objective picks the dense layers' kernel initializer.
        kernels = layers.default_kernel_initializer(self.training_objective.kernel_initializer)
        with _keras_compat.seeded_initializers(seed), kernels:
            self.recognition_networks = self._networks(
                _deserialize_list(recognition_networks), self.hidden_dims, "recognition"
            )
            self.generative_networks = self._networks(
                _deserialize_list(generative_networks),
                [list(reversed(h)) for h in self.hidden_dims],
                "generative",
            )
            # The model's bottom recognition network reads flattened x with y
            # appended; a custom encoder reads x alone and y joins its features.
            self._condition_joins_features = recognition_networks is not None
            self.recognition_heads = [self._latent_head(i, self.covariance, f"q{i + 1}") for i in range(m)]
            self.generative_heads = [self._latent_head(i, "diag", f"p{i + 1}") for i in range(m - 1)]
            top = self.latent_dims[-1]
            if self.latent[-1] == "gaussian":
                self.prior = heads.StandardNormalPrior(top, name="prior")
            else:
                self.prior = heads.BernoulliPrior(top, name="prior")
            self.observation = heads.get_observation(self.likelihood, self.input_shape)
            self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
            self._trackers = {name: keras.metrics.Mean(name=name) for name in self._metric_names()}
            # Heads create their layers when built, for the features they receive.
            self.build((None, *self.input_shape))

    def _check_config(self):
        """Raise ``ValueError`` naming the first setting that cannot be used."""
        for family in self.latent:
            if family not in LATENT_FAMILIES:
                raise ValueError(f"Unknown latent family {family!r}; choose from {LATENT_FAMILIES}.")
        objective = self.training_objective
        if objective.needs_reparameterized and "bernoulli" in self.latent:
            raise ValueError(
                f"objective={objective.name!r} needs reparameterised (Gaussian) latent layers, "
                f"but layer {self.latent.index('bernoulli') + 1} is Bernoulli. Train "
                "binary latent layers with 'wake_sleep' or 'reweighted_wake_sleep'."
            )
        if self.covariance not in ("diag", "full"):
            raise ValueError(f"covariance must be 'diag' or 'full', got {self.covariance!r}.")
        if self.kl not in KL_ESTIMATORS:
            raise ValueError(f"kl must be 'analytic' or 'mc', got {self.kl!r}.")
        steps = self.kl_warmup_steps
        if int(steps) != steps or steps < 0:
            raise ValueError(f"kl_warmup_steps must be a non-negative integer, got {steps!r}.")
        if steps and not objective.uses_kl_weight:
            raise ValueError(
                f"kl_warmup_steps weights the KL term of the 'elbo' objective; objective={objective.name!r} has none."
            )

    def _networks(self, given, widths, kind):
        m = len(self.latent_dims)
        if given is not None:
            if len(given) != m:
                raise ValueError(f"{kind}_networks needs {m} networks, got {len(given)}.")
            return list(given)
        # Images reach the first recognition network, which flattens them.
        flatten = kind == "recognition" and len(self.input_shape) > 1
        return [
            networks.mlp(w, self.activation, name=f"{kind}_net_{i}", flatten=flatten and i == 0)
            for i, w in enumerate(widths)
        ]

    def _latent_head(self, i, covariance, name):
        if self.latent[i] == "gaussian":
            return heads.GaussianLatent(self.latent_dims[i], covariance=covariance, name=name)
        return heads.BernoulliLatent(self.latent_dims[i], name=name)

    def _joined_shape(self, shape):
        """The shape of ``join_condition(h, y)`` for ``h`` of ``shape``."""
        if self.condition_dim is None:
            return shape
        return (None, int(np.prod(shape[1:])) + self.condition_dim)

    def build(self, input_shape):
        if self.built:
            return
        shape = (None, *self.input_shape)
        for i, (net, head, dim) in enumerate(zip(self.recognition_networks, self.recognition_heads, self.latent_dims)):
            if i == 0 and self._condition_joins_features:
                _build(head, self._joined_shape(_build(net, shape)))
            else:
                _build(head, _build(net, self._joined_shape(shape)))
            shape = (None, dim)
        latent_shape = [self._joined_shape((None, d)) for d in self.latent_dims]
        _build(self.observation, _build(self.generative_networks[0], latent_shape[0]))
        for i, head in enumerate(self.generative_heads):
            _build(head, _build(self.generative_networks[i + 1], latent_shape[i + 1]))
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

    def check_data(self, data):
        """Raise ``ValueError`` naming the problem if ``data`` cannot be modelled.

        Checks: non-empty, shape ``[batch, *input_shape]``, finite values and the
        observation model's support (e.g. [0, 1] for Bernoulli); for a
        conditional model also that ``data`` holds a finite condition
        ``y [batch, condition_dim]`` beside ``x``.

        Returns:
            The checked examples as a numpy array (a dataset's first batch),
            or None for generators and ``PyDataset``s, which Keras checks, and
            for conditional models (whose checks need the condition).
        """
        source = in_memory.source_of(data)
        if source is not None:
            data = source.first_batch()
        elif isinstance(data, tf.data.Dataset):
            first = next(iter(data.take(1)), None)
            if first is None:
                raise ValueError("The dataset is empty: it yields no batches.")
            data = first
        elif data is None or not hasattr(data, "shape") and not isinstance(data, (list, tuple)):
            return None  # Generators and PyDatasets are checked by Keras.
        if isinstance(data, list) and not all(hasattr(item, "shape") for item in data):
            raise ValueError(
                f"Got a Python list (of {len(data)} items); pass the examples as one array of shape "
                f"{self._batch_shape_text()}, e.g. np.asarray(rows, dtype='float32'), or a tf.data.Dataset."
            )
        if self.condition_dim is not None:
            if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
                raise ValueError(f"Got x without a condition. {self._condition_hint()}")
            self._check_condition_data(self._check_examples(data[0]), data[1])
            return None
        x = features(data)
        if isinstance(x, (tuple, list)) and x and hasattr(x[0], "shape"):
            x = x[0]  # fit((x, y)): Keras's x is the pair; the labels are ignored.
        return self._check_examples(x)

    def _check_examples(self, x):
        """``check_data``'s checks of the examples ``x``; returns them as numpy."""
        x = np.asarray(keras.ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x)
        if x.size == 0:
            raise ValueError(f"The data are empty (shape {x.shape}).")
        self.check_shape(x.shape)
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"Data must be numeric, got dtype {x.dtype}.")
        finite = np.isfinite(x)
        if not finite.all():
            row, *where = (int(i) for i in np.argwhere(~finite)[0])
            place = f"column {where[0]}" if len(where) == 1 else f"index {tuple(where)}"
            raise ValueError(
                f"The data contain {int((~finite).sum())} NaN/inf values "
                f"(first at row {row}, {place})."
            )
        self.observation.check_data(x)
        return x

    def _check_condition_data(self, x, y):
        """Raise ``ValueError`` unless ``y`` is a finite ``[len(x), condition_dim]`` condition."""
        dim = self.condition_dim
        y = np.asarray(keras.ops.convert_to_numpy(y) if not isinstance(y, np.ndarray) else y)
        if not np.issubdtype(y.dtype, np.number) or y.shape != (len(x), dim):
            raise ValueError(
                f"The condition y must be numeric of shape [{len(x)}, {dim}] (condition_dim={dim}, one row "
                f"per example), got shape {y.shape} and dtype {y.dtype}. One-hot labels: "
                f"keras.utils.to_categorical(labels, {dim})."
            )
        if not np.isfinite(y).all():
            raise ValueError(f"The condition y contains {int((~np.isfinite(y)).sum())} NaN/inf values.")

    def step_inputs(self, data):
        """The batch's model inputs: ``x``, or ``(x, y)`` for a conditional model.

        Keras gives ``fit((x, y))``'s batches as ``((x, y),)`` and a dataset's
        as ``(x, y)``; both become the model's inputs. An unconditional model
        ignores labels.

        Args:
            data: a batch as Keras gives it.

        Returns:
            ``x [B, *input_shape]``, or ``(x, y [B, K])`` when ``condition_dim`` is set.
        """
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)):
            x, y = x[0], (x[1] if len(x) > 1 else None)
        return (x, y) if self.condition_dim is not None else x

    def predict_step(self, data):
        """Reconstructions of the batch (given its ``y`` for a conditional model)."""
        return self(self.step_inputs(data))

    def fit(self, x=None, y=None, **kwargs):
        """``Trainer.fit``; a conditional model's data are ``(x, y)`` pairs.

        Args:
            x: ``[N, *input_shape]`` examples or a ``tf.data.Dataset``; for a
                conditional model the pair ``(x, y [N, K])`` or a dataset of
                ``(x, y)`` batches. An unconditional model ignores labels.
            y: for a conditional model, the condition may also come here
                (``fit(x, y)`` is ``fit((x, y))``); otherwise ignored.
            **kwargs: ``keras.Model.fit``'s other arguments.

        Returns:
            The ``History``.
        """
        if self.condition_dim is not None and y is not None and not isinstance(x, tf.data.Dataset):
            x, y = (x, y), None
        return super().fit(x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """``Trainer.evaluate``; data as for :meth:`fit`."""
        if self.condition_dim is not None and y is not None and not isinstance(x, tf.data.Dataset):
            x, y = (x, y), None
        return super().evaluate(x, y, **kwargs)

    def _batch_shape_text(self, batch="batch"):
        return f"[{batch}, " + ", ".join(str(s) for s in self.input_shape) + "]"

    def check_shape(self, shape, batch="batch"):
        """Raise ``ValueError`` unless ``shape`` is ``[batch, *input_shape]`` (saying how to reshape).

        Args:
            shape: the shape of a batch of data.
            batch: the name of the batch axis in the message.
        """
        shape = tuple(shape)
        if len(shape) == len(self.input_shape) + 1 and tuple(shape[1:]) == self.input_shape:
            return
        flat = len(self.input_shape) == 1
        hint = "Flatten images, e.g. x.reshape(len(x), -1)." if flat else (
            f"Reshape the data, e.g. x.reshape((-1, {', '.join(str(s) for s in self.input_shape)}))."
        )
        kind = "flat features" if flat else "one example per row"
        raise ValueError(
            f"Expected data of shape {self._batch_shape_text(batch)} ({kind}), got shape {shape}. {hint}"
        )

    # === Serialisation ===

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            input_shape=list(self.input_shape),
            latent_dims=list(self.latent_dims),
            hidden_dims=[list(h) for h in self.hidden_dims],
            activation=self.activation,
            latent=list(self.latent),
            covariance=self.covariance,
            likelihood=_serialize(self.likelihood),
            objective=objectives.serialize(self.training_objective),
            n_samples=self.n_samples,
            kl=self.kl,
            beta=self.beta,
            kl_warmup_steps=self.kl_warmup_steps,
            sleep_q=self.sleep_q,
            eval_samples=self.eval_samples,
            recognition_networks=self._user_networks(self.recognition_networks, "recognition"),
            generative_networks=self._user_networks(self.generative_networks, "generative"),
            seed=self.seed,
            condition_dim=self.condition_dim,
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
        input_dim: int, number of columns D of ``x [batch, D]`` (or give
            ``input_shape``).
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
        encoder: optional Keras layer ``x [batch, *input_shape] -> features``.
        decoder: optional Keras layer ``z [batch, latent_dim] -> features``:
            flat ``[batch, f]``, or per-pixel ``[batch, H, W, f]`` maps for
            images (e.g. ``keras_vae.networks.conv_decoder``), from which the
            observation head predicts each pixel's parameters.
        seed: int or None: the initial weights and the noise (see
            :class:`HelmholtzMachine`).
        input_shape: shape of one example, e.g. ``(28, 28, 1)``; instead of
            ``input_dim``.
        condition_dim: int K or None: a conditional VAE ``q(z | x, y)``,
            ``p(x | z, y)`` with ``p(z) = N(0, I)`` for a condition
            ``y [batch, K]`` (see :class:`HelmholtzMachine`).

    Example:
        >>> model = keras_vae.VAE(input_dim=64, latent_dim=2)
        >>> model.compile(keras.optimizers.Adam(1e-3))
        >>> model.fit(x_train, epochs=10, batch_size=100)
        >>> model.sample(16, seed=0)["x_mean"].shape
        TensorShape([16, 64])

        Images, with a convolutional encoder and a per-pixel decoder:

        >>> model = keras_vae.VAE(
        ...     input_shape=(28, 28, 1), latent_dim=16,
        ...     encoder=keras_vae.networks.conv_encoder((28, 28, 1)),
        ...     decoder=keras_vae.networks.conv_decoder((28, 28, 1)))
        >>> model.sample(4, seed=0)["x_mean"].shape
        TensorShape([4, 28, 28, 1])

        Conditional on one-hot labels ``y [batch, 10]``:

        >>> model = keras_vae.VAE(input_dim=784, latent_dim=16, condition_dim=10)
        >>> model.compile(keras.optimizers.Adam(1e-3))
        >>> model.fit((x_train, keras.utils.to_categorical(labels, 10)), epochs=10, batch_size=100)
        >>> model.sample(10, condition=keras.ops.eye(10), seed=0)["x_mean"].shape  # one per class
        TensorShape([10, 784])
    """

    def __init__(
        self,
        input_dim=None,
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
        input_shape=None,
        condition_dim=None,
        **kwargs,
    ):
        encoder, decoder = _deserialize(encoder), _deserialize(decoder)
        super().__init__(
            input_dim=input_dim,
            input_shape=input_shape,
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
            condition_dim=condition_dim,
            **kwargs,
        )
        self.encoder = encoder
        self.decoder = decoder

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(
            input_dim=self.input_dim,
            input_shape=list(self.input_shape),
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
            condition_dim=self.condition_dim,
        )
        return config
