"""Training objectives as pure functions of per-layer log-probabilities.

Every function takes a :class:`Terms` computed by the model for a batch of
``B`` examples and ``k`` posterior samples each, and returns per-example
tensors ``[B]`` in nats (higher is better). The model turns them into losses
averaged over the global batch and routes gradients to the right variables.

Notation: ``h_0 = x``; ``log w = log p(x, h) - log q(h | x)``.
"""

from typing import NamedTuple, Optional, Sequence

from keras import ops

OBJECTIVES = ("elbo", "iwae", "wake_sleep", "reweighted_wake_sleep")


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

