"""Training objectives: pure functions of log-probabilities, and the objects that use them.

The functions take a :class:`Terms` computed by the model for a batch of
``B`` examples and ``k`` posterior samples each, and return per-example
tensors ``[B]`` in nats (higher is better).

The classes (:class:`Objective` and its subclasses) are what a model trains
with: each knows its variable groups, its metric names, whether it needs
reparameterised layers, and turns the model's terms into per-example losses.
Models ask their objective and never compare objective names. A new
objective is one new subclass, registered with :func:`register`; see
:class:`Objective`.

Notation: ``h_0 = x``; ``log w = log p(x, h) - log q(h | x)``.
"""

from typing import NamedTuple
from typing import Optional
from typing import Sequence

import keras
from keras import ops

from keras_vae.initializers import FanInUniform


class Terms(NamedTuple):
    """Log-probability terms of a stochastic hierarchy, each ``[k, B]``.

    Attributes:
        log_px: ``log p(x | h_1)``.
        log_p: per layer ``m = 1..M``, ``log p(h_m | h_{m+1})``; the last
            entry is the prior ``log p(h_M)``.
        log_q: per layer, ``log q(h_m | h_{m-1})``.
        kl_top: analytic ``KL(q(h_M | h_{M-1}) || p(h_M))`` or ``None``.
    """

    log_px: object
    log_p: Sequence[object]
    log_q: Sequence[object]
    kl_top: Optional[object] = None


def log_joint(terms):
    """``log p(x, h)``, ``[k, B]``."""
    return terms.log_px + sum(terms.log_p)


def log_posterior(terms):
    """``log q(h | x)``, ``[k, B]``."""
    return sum(terms.log_q)


def log_weights(terms):
    """Importance log-weights ``log p(x, h) - log q(h | x)``, ``[k, B]``."""
    return log_joint(terms) - log_posterior(terms)


def elbo(terms):
    """The ELBO and its parts, each ``[B]``, averaged over the ``k`` samples.

    ``reconstruction = E_q[log p(x | h_1)]`` and ``kl = reconstruction - elbo``:
    for one stochastic layer, ``KL(q(z | x) || p(z))``; in a hierarchy, the
    sum over layers of ``E_q[log q(h_m | .) - log p(h_m | .)]``. With
    ``terms.kl_top`` the top layer's KL is analytic, Monte Carlo otherwise.

    Returns:
        dict with ``"elbo"``, ``"reconstruction"``, ``"kl"``.
    """
    if terms.kl_top is None:
        kl = log_posterior(terms) - sum(terms.log_p)
    else:
        kl = sum(terms.log_q[:-1]) - sum(terms.log_p[:-1]) + terms.kl_top
    reconstruction = ops.mean(terms.log_px, axis=0)
    kl = ops.mean(kl, axis=0)
    return {"elbo": reconstruction - kl, "reconstruction": reconstruction, "kl": kl}


def log_mean_exp(log_w, axis=0):
    """``log mean exp(log_w)`` along ``axis`` through ``logsumexp``."""
    k = ops.shape(log_w)[axis]
    return ops.logsumexp(log_w, axis=axis) - ops.log(ops.cast(k, log_w.dtype))


def iwae(terms):
    """Importance-weighted bound ``log 1/k sum_i w_i`` (Burda et al. 2015), ``[B]``.

    Equals the Monte Carlo ELBO for ``k = 1`` and rises towards ``log p(x)``
    with ``k``.
    """
    return log_mean_exp(log_weights(terms))


def wake(terms):
    """Wake phase: ``mean_k log p(x, h)`` for ``h ~ q`` held fixed, ``[B]``.

    Ascended w.r.t. the generative parameters only.
    """
    return ops.mean(log_joint(terms), axis=0)


def sleep(dream_log_q):
    """Sleep phase: ``log q(h | x~)`` on dreams ``(h, x~) ~ p``, ``[B]``.

    Args:
        dream_log_q: list of ``[B]`` tensors ``log q(h_m | h_{m-1})`` evaluated
            on a dream; ascended w.r.t. the recognition parameters only.
    """
    return sum(dream_log_q)


def reweighted_wake(terms):
    """Reweighted wake updates (Bornschein & Bengio 2015), each ``[B]``.

    The normalised weights ``softmax_k(log w)`` are held constant, so
    ``wake_p = sum_k w~_k log p(x, h_k)`` and ``wake_q = sum_k w~_k log q(h_k | x)``
    have the importance-sampled gradients of ``log p(x)`` (w.r.t. p) and of
    ``-KL(p(h | x) || q(h | x))`` (w.r.t. q).

    Returns:
        dict with ``"wake_p"`` and ``"wake_q"``.
    """
    w = ops.stop_gradient(ops.softmax(log_weights(terms), axis=0))
    return {
        "wake_p": ops.sum(w * log_joint(terms), axis=0),
        "wake_q": ops.sum(w * log_posterior(terms), axis=0),
    }



# ---------------------------------------------------------------------------
# Objective objects.
# ---------------------------------------------------------------------------

_REGISTRY = {}


def register(cls):
    """Class decorator: make an :class:`Objective` subclass available by its ``name``.

    The class is also registered with Keras's serialisation (package
    ``"keras_vae"``), so models trained with it save and load.
    """
    if not (isinstance(cls, type) and issubclass(cls, Objective)) or not cls.name:
        raise TypeError(f"register needs an Objective subclass with a name, got {cls!r}.")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"An objective named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__}).")
    _REGISTRY[cls.name] = cls
    return keras.saving.register_keras_serializable(package="keras_vae")(cls)


def available():
    """Names of the registered objectives, in registration order."""
    return tuple(_REGISTRY)


def get(identifier):
    """An :class:`Objective` from a registered name, an instance or a serialised dict.

    Args:
        identifier: ``"elbo"``, ``"iwae"``, ... (see :func:`available`), an
            ``Objective`` instance (returned as is) or the dict
            :func:`serialize` made of one.

    Returns:
        An ``Objective``.

    Raises:
        ValueError: unknown name or object.
    """
    if isinstance(identifier, Objective):
        return identifier
    if isinstance(identifier, dict):
        return get(keras.saving.deserialize_keras_object(identifier))
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]()
    raise ValueError(
        f"Unknown objective {identifier!r}; choose from {available()} or pass a keras_vae.objectives.Objective."
    )


def serialize(objective):
    """The registered name of a built-in objective with its defaults, else Keras's serialised dict."""
    cls = _REGISTRY.get(objective.name)
    if cls is type(objective) and objective.get_config() == cls().get_config():
        return objective.name
    return keras.saving.serialize_keras_object(objective)


class Objective:
    """Base class of training objectives.

    A subclass sets the class attributes and implements :meth:`losses`:

    - ``name``: the registry name (also the ``objective`` string a model takes);
    - ``variable_groups``: the groups :meth:`losses` returns a loss for, each
      differentiated w.r.t. the model's variables of that group only:
      ``"all"``, ``"generative"`` (``p(x, h)``) or ``"recognition"``
      (``q(h | x)``); a model with one group uses a non-persistent tape;
    - ``needs_reparameterized``: every latent layer must be reparameterisable
      (Gaussian) for the gradients to be right;
    - ``uses_kl_weight``: the loss weights its KL term by the model's ``beta``
      and ``kl_warmup_steps`` schedule;
    - ``collapse_advice``: what to try when a stochastic layer collapses
      (``keras_vae.callbacks.CollapseMonitor`` says it);
    - :meth:`kernel_initializer`: the initializer of the kernels of the
      dense layers a model builds when it trains by this objective.

    Every objective reports the ELBO and its parts (``elbo``,
    ``reconstruction``, ``kl``) besides its own metrics, so models trained
    differently compare on the same figures.

    Example: a free-bits ELBO (Kingma et al., 2016) as one class:

    ```python
    @keras_vae.objectives.register
    class FreeBitsELBO(keras_vae.objectives.Objective):
        name = "free_bits_elbo"
        def __init__(self, free_bits=1.0):
            self.free_bits = free_bits
        def losses(self, model, x, training=True):
            terms = model.terms(x, model.n_samples, training=training)
            metrics = keras_vae.objectives.elbo(terms)
            kl = keras.ops.maximum(metrics["kl"], self.free_bits)
            metrics["loss"] = kl - metrics["reconstruction"]
            return {"all": metrics["loss"]}, metrics
        def get_config(self):
            return {"free_bits": self.free_bits}

    model = keras_vae.HelmholtzMachine(784, latent_dims=(16,), objective=FreeBitsELBO(2.0))
    ```
    """

    name = None
    variable_groups = ("all",)
    needs_reparameterized = True
    uses_kl_weight = False
    collapse_advice = "fewer units in that layer, or a lower learning rate."

    def metric_names(self, model):
        """Training metrics besides ``loss``, ``elbo``, ``reconstruction``, ``kl``."""
        return []

    def kernel_initializer(self):
        """A new initializer for the kernels of the ``keras_vae.layers.Dense`` layers of a model.

        The default, ``U(+-1/sqrt(fan_in))`` (``FanInUniform``): trained by
        the ELBO, the two-layer MNIST model uses its top layer in every seed
        with it and in none with Glorot-uniform kernels (README, "Results").
        """
        return FanInUniform()

    def losses(self, model, x, training=True):
        """Per-example losses and metrics for a batch ``x [B, ...]``.

        Args:
            model: the ``HelmholtzMachine`` being trained (its ``terms``,
                ``dream`` and settings such as ``n_samples``).
            x: the batch: ``x``, or ``(x, y)`` for a conditional model
                (``model.split_inputs`` separates them; ``model.terms`` takes either).
            training: passed to the networks.

        Returns:
            ``(losses, metrics)``: ``losses`` maps each of ``variable_groups``
            to ``[B]`` losses; ``metrics`` maps every name of
            :meth:`metric_names` and ``loss``, ``elbo``, ``reconstruction``,
            ``kl`` to ``[B]`` values (or scalars).
        """
        raise NotImplementedError

    def get_config(self):
        """Constructor arguments (none for the built-in objectives)."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config() or ''})"


@register
class ELBO(Objective):
    """The reparameterised ELBO with ``n_samples`` draws: ``E_q[log p(x | h)] - beta * KL``.

    The KL weight is the model's ``beta``, ramped up from 0 over
    ``kl_warmup_steps`` optimizer steps when that is set (KL warm-up).
    """

    name = "elbo"
    uses_kl_weight = True
    collapse_advice = (
        "KL warm-up (kl_warmup_steps, e.g. 10 epochs of steps), objective='iwae' with n_samples >= 5, "
        "or fewer units in that layer."
    )

    def metric_names(self, model):
        return ["kl_weight"] if model.kl_warmup_steps else []

    def losses(self, model, x, training=True):
        parts = elbo(model.terms(x, model.n_samples, training=training))
        metrics = dict(parts)
        weight = model.beta
        if model.kl_warmup_steps and training and getattr(model, "optimizer", None) is not None:
            step = ops.cast(model.optimizer.iterations, "float32")
            weight = model.beta * ops.minimum(1.0, step / float(model.kl_warmup_steps))
            metrics["kl_weight"] = weight
        loss = -(parts["reconstruction"] - weight * parts["kl"])
        metrics["loss"] = loss
        return {"all": loss}, metrics


@register
class IWAE(Objective):
    """The importance-weighted bound with ``k = n_samples`` (Burda et al., 2015)."""

    name = "iwae"
    collapse_advice = "more importance samples (n_samples >= 5), fewer units in that layer, or a lower learning rate."

    def metric_names(self, model):
        return ["iwae_bound"]

    def losses(self, model, x, training=True):
        terms = model.terms(x, model.n_samples, training=training)
        metrics = dict(elbo(terms))
        # The bound needs per-sample weights: Monte Carlo top layer.
        bound = iwae(terms._replace(kl_top=None))
        metrics["iwae_bound"] = bound
        metrics["loss"] = -bound
        return {"all": -bound}, metrics


def _sleep_loss(model, x, training):
    """``-log q(h | x~)`` on dreams ``(h, x~) ~ p`` held constant, ``[B]``.

    A conditional model dreams one example per condition of the batch.
    """
    x, condition = model.split_inputs(x)
    samples, x_dream, _ = model.dream(ops.shape(x)[0], training=training, condition=condition)
    samples = [ops.stop_gradient(h) for h in samples]
    return -sleep(model.recognition_log_probs(ops.stop_gradient(x_dream), samples, training, condition))


class _WakeSleepFamily(Objective):
    """Wake-sleep-like objectives: generative and recognition updates, the latter delayed.

    Args:
        recognition_delay_steps: int >= 0. For the first
            ``recognition_delay_steps`` optimizer steps only the generative
            model learns: the recognition network keeps its random
            initialisation, a random projection of ``x`` that ``p`` learns to
            decode. Started at once, the sleep phase fits ``q`` to dreams of
            a ``p`` that still ignores its latents, ``q`` becomes the prior,
            and the pair settles in a collapsed state that wake-sleep does
            not leave (on MNIST, a 2-layer Gaussian model at KL 2.8 nats and
            test ELBO -183 after 5 epochs, against KL 9.9 and -141 with a
            1,200-step delay; README, "Wake-sleep"). The delay zeroes the
            recognition loss, so an optimizer with decoupled weight decay
            (``AdamW``, ``weight_decay=``) still shrinks the recognition
            weights meanwhile.
    """

    variable_groups = ("generative", "recognition")
    needs_reparameterized = False
    default_recognition_delay_steps = 1000

    def __init__(self, recognition_delay_steps=None):
        if recognition_delay_steps is None:
            recognition_delay_steps = self.default_recognition_delay_steps
        if int(recognition_delay_steps) != recognition_delay_steps or recognition_delay_steps < 0:
            raise ValueError(
                f"recognition_delay_steps must be a non-negative integer, got {recognition_delay_steps!r}."
            )
        self.recognition_delay_steps = int(recognition_delay_steps)

    def kernel_initializer(self):
        """Glorot-uniform kernels.

        Wake-sleep has no gradient that makes ``q`` informative: the random
        recognition network must already carry ``x`` to the top layer. With
        the smaller fan-in uniform kernels (the reparameterised objectives'
        default) the top layer of a two-layer model stayed unused under
        wake-sleep, Gaussian and binary alike; with Glorot's it is used.
        """
        return keras.initializers.GlorotUniform()

    def _delayed(self, model, loss, training):
        """``loss`` times 0 before the delay has passed (zero gradients), else ``loss``."""
        if not (training and self.recognition_delay_steps and getattr(model, "optimizer", None) is not None):
            return loss
        started = ops.cast(model.optimizer.iterations >= self.recognition_delay_steps, loss.dtype)
        return loss * started

    def get_config(self):
        return {"recognition_delay_steps": self.recognition_delay_steps}


@register
class WakeSleep(_WakeSleepFamily):
    """Wake-sleep (Hinton et al., 1995): wake updates p on ``h ~ q``, sleep updates q on dreams.

    See ``_WakeSleepFamily`` for ``recognition_delay_steps`` (default 1000).

    Example:
        >>> model = keras_vae.HelmholtzMachine(784, objective=WakeSleep(recognition_delay_steps=3000))
    """

    name = "wake_sleep"
    collapse_advice = (
        "a longer recognition delay (objectives.WakeSleep(recognition_delay_steps=...)), "
        "objective='reweighted_wake_sleep' with n_samples >= 5, or objective='elbo' for Gaussian layers."
    )

    def metric_names(self, model):
        return ["wake_loss", "sleep_loss"]

    def losses(self, model, x, training=True):
        terms = model.terms(x, model.n_samples, training=training, stop_gradient=True)
        metrics = elbo(terms)
        wake_loss = -wake(terms)
        sleep_loss = _sleep_loss(model, x, training)
        metrics.update(wake_loss=wake_loss, sleep_loss=sleep_loss, loss=wake_loss + sleep_loss)
        return {"generative": wake_loss, "recognition": self._delayed(model, sleep_loss, training)}, metrics


@register
class ReweightedWakeSleep(_WakeSleepFamily):
    """Reweighted wake-sleep (Bornschein & Bengio, 2015) with ``k = n_samples``.

    Wake-p and wake-q updates with normalised importance weights; with the
    model's ``sleep_q`` also the sleep-phase q update. See
    ``_WakeSleepFamily`` for ``recognition_delay_steps`` (default 1000).
    """

    name = "reweighted_wake_sleep"
    collapse_advice = (
        "more importance samples (n_samples), a longer recognition delay "
        "(objectives.ReweightedWakeSleep(recognition_delay_steps=...)), or a lower learning rate."
    )

    def metric_names(self, model):
        return ["wake_p_loss", "wake_q_loss"] + (["sleep_loss"] if model.sleep_q else [])

    def losses(self, model, x, training=True):
        terms = model.terms(x, model.n_samples, training=training, stop_gradient=True)
        metrics = elbo(terms)
        parts = reweighted_wake(terms._replace(kl_top=None))
        losses = {"generative": -parts["wake_p"], "recognition": -parts["wake_q"]}
        metrics.update(wake_p_loss=losses["generative"], wake_q_loss=losses["recognition"])
        if model.sleep_q:
            metrics["sleep_loss"] = _sleep_loss(model, x, training)
            losses["recognition"] = losses["recognition"] + metrics["sleep_loss"]
        metrics["loss"] = losses["generative"] + losses["recognition"]
        losses["recognition"] = self._delayed(model, losses["recognition"], training)
        return losses, metrics


#: Names of the built-in objectives (see :func:`available` for all registered ones).
OBJECTIVES = available()
