"""Gradient-estimator diagnostics: research tools for the variance study.

- :func:`elbo_surrogate`: a per-example surrogate whose gradient estimates
  the gradient of the ELBO with respect to the recognition model:
  reparameterised with analytic or Monte Carlo KL, or the score function
  (REINFORCE) with or without a baseline.
- :func:`gradient_moments`: mean and variance, over repeated draws of the
  noise, of those estimators for a fixed batch (:class:`GradientMoments`).

As in :mod:`keras_vae.evaluation`, all noise comes from a
``keras.random.SeedGenerator`` created from ``seed``: results are
reproducible and the model's own seed generator is not advanced.

Example:

```python
from keras_vae import diagnostics

m = diagnostics.gradient_moments(model, x_batch, "score", n_samples=10,
                                 baseline="leave_one_out", repeats=500)
m.mean_variance, m.median_snr
```
"""

import dataclasses
import time
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_vae import objectives
from keras_vae.evaluation import _check_positive_int
from keras_vae.evaluation import _quiet_retracing
from keras_vae.evaluation import _reset
from keras_vae.hierarchy import tile_examples

ESTIMATORS = ("reparam_analytic", "reparam_mc", "score")
BASELINES = (None, "moving_average", "leave_one_out")


def _check_estimator(estimator, n_samples, baseline):
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown estimator {estimator!r}; choose from {ESTIMATORS}.")
    if baseline not in BASELINES:
        raise ValueError(f"Unknown baseline {baseline!r}; choose from {BASELINES}.")
    if baseline is not None and estimator != "score":
        raise ValueError(f"A baseline only applies to the 'score' estimator, not {estimator!r}.")
    if baseline == "leave_one_out" and n_samples < 2:
        raise ValueError("The leave-one-out baseline needs n_samples >= 2.")


def elbo_surrogate(model, x, estimator, n_samples=1, baseline=None, baseline_value=0.0, seed=None):
    """A per-example surrogate whose gradient estimates the ELBO's gradient.

    The value is an ELBO estimate for the reparameterised estimators; for the
    score function it is only a device for the gradient.

    - ``"reparam_analytic"``: ``mean_L log p(x | h) - KL`` with the top layer's
      KL in closed form, ``h = mu + sigma * eps``.
    - ``"reparam_mc"``: ``mean_L log w`` with every term Monte Carlo.
    - ``"score"``: the score-function (REINFORCE) estimator: ``h`` drawn
      without reparameterisation, ``mean_L [sg(log w - b) log q(h | x) + log w]``,
      ``sg`` the stop-gradient. With respect to the recognition parameters
      its gradient is ``mean_L (log w - b) grad log q - grad log q``, unbiased
      for any baseline ``b`` independent of the sample ``h``.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE`` (Gaussian latents for the
            reparameterised estimators).
        x: ``[B, D]``.
        estimator: one of ``ESTIMATORS``.
        n_samples: L samples per example.
        baseline: for ``"score"``: None, ``"moving_average"`` (subtract
            ``baseline_value``, e.g. a running mean of ``log w`` over earlier
            draws) or ``"leave_one_out"`` (for sample l, the mean ``log w`` of
            the other L - 1 samples of the same example; needs L >= 2).
        baseline_value: scalar baseline for ``"moving_average"``.
        seed: ``keras.random.SeedGenerator`` (default: the model's).

    Returns:
        ``(surrogate [B], mean_log_w [B])``.
    """
    _check_estimator(estimator, n_samples, baseline)
    x = tf.cast(x, tf.float32)
    if estimator.startswith("reparam"):
        terms = model.terms(x, n_samples, analytic_kl=estimator == "reparam_analytic", seed=seed)
        log_w = objectives.log_weights(terms._replace(kl_top=None))
        return objectives.elbo(terms)["elbo"], tf.reduce_mean(log_w, axis=0)

    batch = tf.shape(x)[0]
    samples, _, log_q = model.recognize(x, n_samples, stop_gradient=True, seed=seed)
    x_rep = tile_examples(x, n_samples)
    log_px, log_p, _ = model.generative_log_probs(x_rep, samples)
    log_q = tf.reshape(sum(log_q), (n_samples, batch))
    log_w = tf.reshape(log_px + sum(log_p), (n_samples, batch)) - log_q
    if baseline == "leave_one_out":
        b = (tf.reduce_sum(log_w, axis=0, keepdims=True) - log_w) / (n_samples - 1.0)
    elif baseline == "moving_average":
        b = tf.cast(baseline_value, tf.float32)
    else:
        b = 0.0
    surrogate = tf.stop_gradient(log_w - b) * log_q + log_w
    return tf.reduce_mean(surrogate, axis=0), tf.reduce_mean(log_w, axis=0)


@dataclasses.dataclass
class GradientMoments:
    """Mean and variance over ``repeats`` draws of a gradient estimator.

    Attributes:
        mean: ``[P]`` mean estimate of each gradient coordinate (all
            variables flattened and concatenated).
        variance: ``[P]`` unbiased variance of each coordinate over draws.
        repeats: number of draws.
        estimator, n_samples, baseline: the estimator's settings.
        seconds: wall time.
    """

    mean: np.ndarray
    variance: np.ndarray
    repeats: int
    estimator: str
    n_samples: int
    baseline: object
    seconds: float

    @property
    def stderr(self):
        """``[P]`` standard error of ``mean``."""
        return np.sqrt(self.variance / self.repeats)

    @property
    def mean_variance(self):
        """Average per-coordinate variance, ``tr(Cov) / P``."""
        return float(np.mean(self.variance))

    @property
    def snr(self):
        """``[P]`` signal-to-noise ratio ``|mean| / std`` per coordinate."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(self.mean) / np.sqrt(self.variance)

    @property
    def median_snr(self):
        return float(np.nanmedian(self.snr))

    @property
    def norm_snr(self):
        """``||mean||^2 / tr(Cov)``: a whole-vector signal-to-noise ratio."""
        return float(np.sum(np.square(self.mean)) / np.sum(self.variance))

    def as_dict(self):
        return {
            "estimator": self.estimator,
            "n_samples": self.n_samples,
            "baseline": self.baseline,
            "repeats": self.repeats,
            "mean_variance": self.mean_variance,
            "median_snr": self.median_snr,
            "norm_snr": self.norm_snr,
            "gradient_norm": float(np.linalg.norm(self.mean)),
            "seconds": self.seconds,
        }


# model -> {settings: (tf.function, SeedGenerator)}, as for log_likelihood.
_GRADIENT_FNS = weakref.WeakKeyDictionary()


def _gradient_fn(model, estimator, n_samples, baseline, decay, variables):
    """The compiled loop of :func:`gradient_moments` for one model and setting."""
    cache = _GRADIENT_FNS.setdefault(model, {})
    key = (estimator, n_samples, baseline, decay, tuple(id(v) for v in variables))
    if key in cache:
        return cache[key]
    seed_generator = keras.random.SeedGenerator(0, name="gradient_seed")
    model_ref = weakref.ref(model)
    size = int(sum(np.prod(v.shape) for v in variables))

    def flat_gradient(x, b):
        with tf.GradientTape() as tape:
            surrogate, mean_log_w = elbo_surrogate(model_ref(), x, estimator, n_samples, baseline, b, seed_generator)
            loss = tf.reduce_mean(surrogate)
        grads = tape.gradient(loss, variables)
        flat = [
            tf.reshape(tf.cast(tf.zeros_like(v) if g is None else g, tf.float64), [-1])
            for g, v in zip(grads, variables)
        ]
        return tf.concat(flat, axis=0), tf.reduce_mean(mean_log_w)

    def run(x, repeats, b):
        mean = tf.zeros([size], tf.float64)
        m2 = tf.zeros([size], tf.float64)
        for r in tf.range(repeats):
            g, mean_log_w = flat_gradient(x, b)
            delta = g - mean  # Welford's update.
            mean += delta / tf.cast(r + 1, tf.float64)
            m2 += delta * (g - mean)
            b = decay * b + (1.0 - decay) * mean_log_w
        return mean, m2

    cache[key] = (tf.function(run, reduce_retracing=True), seed_generator)
    return cache[key]


def gradient_moments(
    model,
    x,
    estimator="reparam_analytic",
    n_samples=1,
    repeats=100,
    baseline=None,
    decay=0.9,
    seed=0,
    variables=None,
):
    """Mean and variance of a gradient estimator of the batch-mean ELBO.

    For a fixed batch ``x``, the gradient of ``mean_x surrogate`` (see
    :func:`elbo_surrogate`) with respect to ``variables`` (default: the
    recognition model's) is drawn ``repeats`` times with fresh noise; the
    per-coordinate mean and variance are accumulated in float64 (Welford) in
    one compiled loop, so memory is O(number of parameters).

    The ``"moving_average"`` baseline starts at the mean ``log w`` of one
    warm-up draw (not counted) and is updated after each draw as ``b <-
    decay b + (1 - decay) mean_x log w``; it depends only on earlier draws,
    so the estimator stays unbiased.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE``.
        x: ``[B, D]`` fixed batch.
        estimator: ``"reparam_analytic"``, ``"reparam_mc"`` or ``"score"``.
        n_samples: L samples per example in each draw.
        repeats: number of gradient draws (>= 2).
        baseline: None, ``"moving_average"`` or ``"leave_one_out"`` (score only).
        decay: moving-average decay.
        seed: int seed of the noise; the model's generator is not used.
        variables: variables to differentiate (default ``model.recognition_variables``).

    Returns:
        :class:`GradientMoments`. The per-coordinate SNR of a zero-mean
        coordinate estimated from R draws is about ``0.67 / sqrt(R)`` (median).
    """
    repeats = _check_positive_int(repeats, "repeats")
    n_samples = _check_positive_int(n_samples, "n_samples")
    if repeats < 2:
        raise ValueError("repeats must be >= 2 to estimate a variance.")
    _check_estimator(estimator, n_samples, baseline)
    variables = list(model.recognition_variables if variables is None else variables)
    x = tf.constant(np.asarray(x, np.float32))
    run, seed_generator = _gradient_fn(model, estimator, n_samples, baseline, float(decay), variables)
    _reset(seed_generator, seed)
    # One eager warm-up draw (not counted) gives the first moving-average baseline.
    _, warm_log_w = elbo_surrogate(model, x, estimator, n_samples, baseline, 0.0, seed_generator)
    b0 = tf.reduce_mean(warm_log_w)

    start = time.perf_counter()
    with _quiet_retracing():
        mean, m2 = run(x, tf.constant(repeats, tf.int32), b0)
    return GradientMoments(
        mean=mean.numpy(),
        variance=m2.numpy() / (repeats - 1),
        repeats=repeats,
        estimator=estimator,
        n_samples=n_samples,
        baseline=baseline,
        seconds=time.perf_counter() - start,
    )

