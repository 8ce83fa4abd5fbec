"""Log-densities written with TFLite builtin ops, for the scorer.

Two heads' ``log_prob`` lower (through TensorFlow Probability) to ops
TFLite has no builtin kernel for:

- ``CategoricalObservation``: ``SparseSoftmaxCrossEntropyWithLogits``;
- ``GaussianLatent(covariance="full")``: ``MatrixTriangularSolve`` and
  ``MatrixDiagPartV3``.

:func:`builtin_log_probs` swaps in the same densities written with
``LOG_SOFTMAX``/``ONE_HOT`` and forward substitution while a signature that
is converted to TFLite is traced; ``tests/test_export.py`` checks them
against the heads' own ``log_prob``.
"""

import contextlib
import math

import tensorflow as tf

from keras_vae import heads


def categorical_log_prob(head, params, value):
    """``log p(x)`` of a ``CategoricalObservation``: ``sum_j log softmax(logits_j)[x_j]``, ``[batch]``."""
    log_probs = tf.nn.log_softmax(head.padded_logits(params), axis=-1)  # [batch, columns, classes]
    one_hot = tf.one_hot(tf.cast(value, tf.int32), head.max_classes, dtype=log_probs.dtype)
    # Padded classes have log-probability ~ -1e9 and a zero indicator: no NaN from 0 * -inf.
    return tf.reduce_sum(one_hot * log_probs, axis=[1, 2])


def tril_gaussian_log_prob(loc, scale_tril, value):
    """``log N(value; loc, L L^T)`` with ``L`` lower-triangular, by forward substitution, ``[batch]``.

    Args:
        loc: ``[batch, d]``.
        scale_tril: ``[batch, d, d]`` with a positive diagonal.
        value: ``[batch, d]``.
    """
    d = int(loc.shape[-1])
    residual = tf.cast(value, tf.float32) - loc
    diag = tf.reduce_sum(scale_tril * tf.eye(d, dtype=scale_tril.dtype), axis=-1)  # [batch, d]
    # Solve L y = residual row by row: y_i = (r_i - sum_{j<i} L_ij y_j) / L_ii.
    solved = []
    for i in range(d):
        row = residual[:, i]
        if i:
            row = row - tf.reduce_sum(scale_tril[:, i, :i] * tf.stack(solved, axis=-1), axis=-1)
        solved.append(row / diag[:, i])
    y = tf.stack(solved, axis=-1)
    return -0.5 * tf.reduce_sum(tf.square(y), axis=-1) - tf.reduce_sum(tf.math.log(diag), axis=-1) - (
        0.5 * d * math.log(2.0 * math.pi)
    )


def _gaussian_latent(head, original):
    def log_prob(params, value):
        if "scale_tril" in params:
            return tril_gaussian_log_prob(params["loc"], params["scale_tril"], value)
        return original(params, value)

    return log_prob


def _categorical(head, original):
    return lambda params, value: categorical_log_prob(head, params, value)


#: Head class -> (head, its own log_prob) -> a replacement log_prob.
REPLACEMENTS = {heads.CategoricalObservation: _categorical, heads.GaussianLatent: _gaussian_latent}


def _all_heads(model):
    found = [*model.recognition_heads, *model.generative_heads, model.prior, model.observation]
    for head in list(found):
        found.extend(getattr(head, "components", ()))
    return found


@contextlib.contextmanager
def builtin_log_probs(model):
    """Within the block, heads listed in ``REPLACEMENTS`` use their builtin-op ``log_prob``.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE`` (its heads and mixed
            observations' components are patched, then restored).

    Example:

    ```python
    with builtin_log_probs(model):
        concrete = tf.function(score).get_concrete_function(spec)   # traced with the replacements
    ```
    """
    patched = []
    try:
        for head in _all_heads(model):
            for cls, replacement in REPLACEMENTS.items():
                if isinstance(head, cls):
                    # An instance attribute shadows the method; removed on exit.
                    object.__setattr__(head, "log_prob", replacement(head, head.log_prob))
                    patched.append(head)
                    break
        yield
    finally:
        for head in patched:
            object.__delattr__(head, "log_prob")
