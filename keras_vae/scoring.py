"""Per-example scores for anomaly and out-of-distribution detection.

A VAE scores an example by how probable the model finds it: the ELBO or the
importance-sampled ``log p(x)``, both in nats, higher meaning more typical.
:func:`scores` computes both from ``k`` posterior samples drawn with a seed;
it is the function the exported ``score`` signature runs, so Keras and an
export give the same numbers for the same ``x``, ``k`` and ``seed``.
:func:`threshold` turns scores of typical (training) data into a decision
threshold.

For large ``k`` over whole data sets, ``keras_vae.evaluation.log_likelihood``
(chunked, with effective sample sizes) gives the same estimator; ``keras-vae
score`` writes its per-example values.

Example:

```python
from keras_vae import scoring

train = scoring.scores(model, x_train[:1000], k=16, seed=0)["log_px"]
cut = scoring.threshold(train, quantile=0.01)        # 1% of training data below
is_anomaly = scoring.scores(model, x_new, k=16, seed=0)["log_px"] < cut
```
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_vae import objectives

#: Posterior samples per example of :func:`scores` and of the exported ``score`` signature.
DEFAULT_K = 16


class SeedSequence(keras.random.SeedGenerator):
    """A seed generator whose ``i``-th draw uses the seed ``[seed, i]``.

    It draws exactly what ``keras.random.SeedGenerator(seed)`` draws from its
    initial state, but ``seed`` may be a tensor and no variable is created,
    so a traced function (an exported signature) can take the seed as an
    input and repeat ``model.sample(n, seed=seed)`` draw for draw.

    Args:
        seed: int or integer scalar tensor.

    Example:

    ```python
    samples, x, _ = model.dream(8, seed=SeedSequence(3))   # = model.sample(8, seed=3)
    ```
    """

    def __init__(self, seed):
        # No variable: SeedGenerator.__init__ would create the state variable.
        self.name = "seed_sequence"
        self._seed = tf.cast(seed, tf.int64)
        self.count = 0

    def next(self, ordered=True):
        """The next ``[2]`` int64 seed, ``[seed, number of earlier draws]``."""
        value = tf.stack([self._seed, tf.constant(self.count, tf.int64)])
        self.count += 1
        return value


def scores(model, x, k=DEFAULT_K, seed=0, condition=None):
    """Per-example ELBO and importance-sampled ``log p(x)`` from ``k`` samples.

    With ``log w_i = log p(x, h_i) - log q(h_i | x)`` for ``h_i ~ q(h | x)``,
    ``i = 1..k`` (every stochastic layer sampled, Monte Carlo KL):

    - ``elbo = (1/k) sum_i log w_i``, an unbiased estimate of the ELBO;
    - ``log_px = log (1/k) sum_i exp(log w_i)`` (through logsumexp), the
      importance-weighted bound that rises to ``log p(x)`` as ``k`` grows.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE``.
        x: ``[batch, *input_shape]`` data, scaled as in training.
        k: posterior samples per example, >= 1 (fixed when exporting).
        seed: int or integer scalar tensor; the same seed draws the same noise.
        condition: for a conditional model, ``y [batch, K]`` (or ``[K]``):
            the scores are then of ``log p(x | y)``.

    Returns:
        dict of float32 ``[batch]`` tensors ``"elbo"`` and ``"log_px"`` (nats).

    Example:

    ```python
    out = scores(model, x_test[:5], k=100)
    out["log_px"].shape    # (5,)
    ```
    """
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    x = ops.cast(x, "float32")
    condition = model.check_condition(condition, ops.shape(x)[0])
    k = int(k)
    # k copies of x, sample-major, scored with one sample each: the same draws as
    # model.terms(x, k) (one [k * batch, d] draw per layer), and a graph the TFLite
    # converter keeps intact (it folds a Tile feeding a Mul into a broadcast, which
    # is wrong for a dynamic batch).
    copies = ops.concatenate([x] * k, axis=0) if k > 1 else x
    if condition is not None:
        copies = (copies, ops.concatenate([condition] * k, axis=0) if k > 1 else condition)
    terms = model.terms(copies, 1, analytic_kl=False, seed=SeedSequence(seed))
    log_w = ops.reshape(ops.cast(objectives.log_weights(terms), "float32"), (k, ops.shape(x)[0]))  # [k, batch]
    return {"elbo": ops.mean(log_w, axis=0), "log_px": objectives.log_mean_exp(log_w, axis=0)}


def threshold(typical_scores, quantile=0.01):
    """The score below which a fraction ``quantile`` of typical examples fall.

    Flag an example as anomalous when its score is below the threshold: on
    data like ``typical_scores`` (e.g. the training set, scored with the same
    ``k``) that flags about ``quantile`` of the examples.

    Args:
        typical_scores: ``[n]`` scores (ELBO or log p(x)) of typical data.
        quantile: false-positive rate to aim at, in (0, 1).

    Returns:
        float threshold.

    Example:

    ```python
    threshold(np.array([-90.0, -80.0, -85.0, -100.0]), quantile=0.25)   # -92.5
    ```
    """
    values = np.asarray(typical_scores, np.float64).reshape(-1)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}.")
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("typical_scores must be a non-empty array of finite numbers.")
    return float(np.quantile(values, quantile))
