"""Evaluation as in the literature: importance-sampled log p(x) and active units.

- :func:`log_likelihood`: the importance-sampled estimate
  ``log (1/k) sum_i p(x, h_i) / q(h_i | x)``, ``h_i ~ q(h | x)``, per example
  (Burda et al., 2015, use k = 5000 on the MNIST test set). Samples are drawn
  in chunks with a running logsumexp, so memory is O(chunk x batch) for any
  k, and the per-batch computation is one compiled ``tf.function``.
- :func:`active_units`: per stochastic layer, the units whose posterior mean
  varies across the data, ``Cov_x(E_q[u | x]) > 0.01`` (Burda et al., 2015).
- :func:`bits_per_dim`: a ``log p(x)`` in nats per example as a code length
  in bits per value, for observation models of discrete values.
- :func:`evaluate_model`: the metrics of ``keras-vae evaluate`` (the command
  itself lives in :mod:`keras_vae.cli.evaluate`).

The gradient-estimator diagnostics (``elbo_surrogate``, ``gradient_moments``)
moved to :mod:`keras_vae.diagnostics`; their old names here still work but
emit a ``DeprecationWarning``.

All noise comes from a ``keras.random.SeedGenerator`` created from ``seed``
and passed to ``model.terms(..., seed=...)`` / ``model.recognize(...,
seed=...)``: results are reproducible and the model's own seed generator is
not advanced.
"""

import contextlib
import dataclasses
import importlib
import logging
import math
import sys
import time
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_vae import objectives

# Rows (chunk x batch) of one chunk of importance samples when chunk_size is
# None. On 2 CPU cores throughput was flat from 2k to 10k rows (~220k samples/s
# for the one-layer MNIST model); a [8192, 784] float32 tensor is 26 MB.
_DEFAULT_CHUNK_ROWS = 8192

# ---------------------------------------------------------------------------
# Importance-sampled log-likelihood.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class LogLikelihood:
    """Per-example importance-sampled ``log p(x)`` and diagnostics.

    Attributes:
        values: ``[N]`` estimates ``log (1/k) sum_i w_i`` (nats).
        elbo: ``[N]`` ``(1/k) sum_i log w_i``: the ELBO, estimated from the same
            k samples (an unbiased Monte Carlo estimate).
        ess: ``[N]`` effective sample size ``(sum w)^2 / sum w^2`` in [1, k].
        mc_stderr: ``[N]`` delta-method Monte Carlo standard error of each
            ``values[n]``: ``sqrt(1/ess - 1/k)`` (reliable when the weights
            have finite variance and k is large).
        k: importance samples per example.
        seed: seed of the noise.
        seconds: wall time of the estimate.

    ``np.asarray(result)`` gives ``values``; ``mean`` and ``stderr`` (the
    standard error over examples, ``std / sqrt(N)``) summarise them.
    """

    values: np.ndarray
    elbo: np.ndarray
    ess: np.ndarray
    mc_stderr: np.ndarray
    k: int
    seed: int
    seconds: float

    @property
    def mean(self):
        """Average ``log p(x)`` estimate over the examples."""
        return float(np.mean(self.values))

    @property
    def stderr(self):
        """Standard error of ``mean`` over examples: ``std(values) / sqrt(N)`` (ddof=1)."""
        n = len(self.values)
        return float(np.std(self.values, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")

    @property
    def mc_stderr_of_mean(self):
        """Monte Carlo standard error of ``mean`` for these examples: ``sqrt(sum mc_stderr^2) / N``."""
        return float(np.sqrt(np.sum(np.square(self.mc_stderr))) / len(self.values))

    @property
    def elbo_mean(self):
        """Average of ``elbo`` over the examples."""
        return float(np.mean(self.elbo))

    def __len__(self):
        return len(self.values)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    def as_dict(self):
        """Summary as JSON-ready floats (no per-example arrays)."""
        return {
            "log_px": self.mean,
            "log_px_stderr": self.stderr,
            "log_px_mc_stderr": self.mc_stderr_of_mean,
            "elbo_is": self.elbo_mean,
            "ess_mean": float(np.mean(self.ess)),
            "k": self.k,
            "seed": self.seed,
            "n_examples": len(self.values),
            "seconds": self.seconds,
        }


# model -> {(chunk, jit_compile): (tf.function, SeedGenerator)}. Weak keys so
# a cached function does not keep a discarded model alive.
_LOG_WEIGHT_FNS = weakref.WeakKeyDictionary()


class _DropRetracingWarnings(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    The cached functions here are traced once per setting (chunk size,
    estimator, ...), on purpose; TensorFlow counts every closure of the same
    code as one function and warns after five settings.
    """

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing():
    logger, drop = tf.get_logger(), _DropRetracingWarnings()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _check_positive_int(value, name):
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _log_weight_fn(model, chunk, jit_compile):
    """The compiled per-batch accumulation of ``chunk`` importance samples at a time."""
    cache = _LOG_WEIGHT_FNS.setdefault(model, {})
    key = (chunk, bool(jit_compile))
    if key in cache:
        return cache[key]
    seed_generator = keras.random.SeedGenerator(0, name="log_likelihood_seed")
    model_ref = weakref.ref(model)  # The cache must not keep the model alive.

    def accumulate(x, n_chunks, k):
        # x: the model's inputs, [B, *input_shape] or the pair (x, y [B, K]).
        model = model_ref()
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        neg_inf = tf.fill([batch], tf.constant(-np.inf, tf.float32))
        lse, lse2, total = neg_inf, neg_inf, tf.zeros([batch], tf.float32)
        offsets = tf.range(chunk)
        for i in tf.range(n_chunks):
            terms = model.terms(x, chunk, analytic_kl=False, seed=seed_generator)
            log_w = tf.cast(objectives.log_weights(terms), tf.float32)  # [chunk, B]
            # The last chunk may hold more samples than remain: mask them.
            valid = (i * chunk + offsets < k)[:, None]
            masked = tf.where(valid, log_w, -np.inf)
            lse = tf.reduce_logsumexp(tf.stack([lse, tf.reduce_logsumexp(masked, axis=0)]), axis=0)
            lse2 = tf.reduce_logsumexp(tf.stack([lse2, tf.reduce_logsumexp(2.0 * masked, axis=0)]), axis=0)
            total += tf.reduce_sum(tf.where(valid, log_w, 0.0), axis=0)
        return lse, lse2, total

    fn = tf.function(accumulate, reduce_retracing=True, jit_compile=bool(jit_compile))
    cache[key] = (fn, seed_generator)
    return fn, seed_generator


def _reset(seed_generator, seed):
    """Put a ``SeedGenerator`` in the state ``SeedGenerator(seed)`` starts in."""
    seed_generator.state.assign(np.array([int(seed), 0]).astype(seed_generator.state.dtype))


def bits_per_dim(log_px, input_dim):
    """``-log_px / (input_dim * ln 2)``: nats per example as bits per value.

    The code length of the data under the model, per value (pixel and
    channel). It is a code length only when ``log p(x)`` is a log
    probability mass, i.e. for an observation head with ``discrete = True``
    (Bernoulli, categorical, discretised logistic); :func:`evaluate_model`
    reports it only then.

    Args:
        log_px: float or array of ``log p(x)`` (or an ELBO) in nats per example.
        input_dim: values per example, ``model.input_dim``.

    Returns:
        float (or array) in bits per dimension.

    Example:
        >>> bits_per_dim(-784 * math.log(2), 784)
        1.0
    """
    value = -np.asarray(log_px, np.float64) / (int(input_dim) * math.log(2.0))
    return float(value) if value.ndim == 0 else value


def _input_shape(model):
    return tuple(getattr(model, "input_shape", None) or (model.input_dim,))


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value) if tf.is_tensor(value) else value)


def _conditional(model):
    return getattr(model, "condition_dim", None) is not None


def _as_array(data, model):
    """Numpy ``[N, *input_shape]`` float32 from an array-like, or None for a dataset.

    A conditional model's data are ``(x, y)``: the result is the pair of
    numpy arrays ``(x, y [N, K])`` (``y [K]`` is one condition for every example).
    """
    if isinstance(data, tf.data.Dataset):
        return None
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data) if isinstance(data, tuple) else (data, None, None)
    x = _numpy(x)
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"Data must be numeric, got dtype {x.dtype}.")
    x = x.astype(np.float32, copy=False)
    if x.shape == _input_shape(model):
        x = x[None]  # One example.
    if not _conditional(model):
        return x
    if y is None:
        raise ValueError(f"Got x without a condition. {model._condition_hint()}")
    y = _numpy(y).astype(np.float32)
    if y.shape == (model.condition_dim,):
        y = np.broadcast_to(y, (len(x), model.condition_dim))
    return x, y


def _check_array(model, x):
    x, y = x if isinstance(x, tuple) else (x, None)
    model.check_shape(x.shape, batch="N")
    if len(x) == 0:
        raise ValueError("The data are empty (0 examples).")
    model.check_data(x if y is None else (x, y))


def _inputs(batch, start=None, stop=None):
    """The model inputs ``x`` or ``(x, y)`` of a batch, sliced ``[start:stop]``."""
    if isinstance(batch, tuple):
        return tuple(part[start:stop] for part in batch)
    return batch[start:stop]


def _batches(model, data, batch_size, checked=False):
    """Yield numpy ``[b, *input_shape]`` batches (b <= batch_size) of an array or a dataset.

    A conditional model's batches are pairs ``(x [b, ...], y [b, K])``.
    Arrays are checked whole (unless ``checked``), datasets batch by batch.
    """
    x = _as_array(data, model)
    if x is not None:
        if not checked:
            _check_array(model, x)
        n = len(x[0]) if isinstance(x, tuple) else len(x)
        for start in range(0, n, batch_size):
            yield _inputs(x, start, start + batch_size)
        return
    spec = data.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    rank = len(_input_shape(model))
    if not isinstance(x_spec, tf.TensorSpec) or x_spec.shape.rank not in (rank, rank + 1):
        example = ", ".join(str(s) for s in _input_shape(model))
        raise ValueError(
            f"The dataset must yield x (or (x, y)) with x of shape [batch, {example}] "
            f"or [{example}], got element_spec {spec}."
        )
    if _conditional(model):
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(f"The dataset yields x alone (element_spec {spec}). {model._condition_hint()}")
        ds = data.map(lambda *e: (tf.cast(e[0], tf.float32), tf.cast(e[1], tf.float32)))
        ds = ds.unbatch() if x_spec.shape.rank == rank + 1 else ds
        seen = False
        for x, y in ds.batch(batch_size).as_numpy_iterator():
            if not seen or x.shape[1:] != _input_shape(model):
                _check_array(model, (x, y))
            else:
                model.check_data((x, y))
            seen = True
            yield x, y
        if not seen:
            raise ValueError("The dataset is empty: it yields no examples.")
        return
    ds = data.map(lambda *e: e[0]) if isinstance(spec, tuple) else data
    ds = ds.unbatch() if x_spec.shape.rank == rank + 1 else ds
    seen = False
    for batch in ds.batch(batch_size).as_numpy_iterator():
        batch = np.asarray(batch, np.float32)
        if not seen:
            _check_array(model, batch)
            seen = True
        elif batch.shape[1:] != _input_shape(model):
            model.check_shape(batch.shape)
        else:
            model.check_data(batch)
        yield batch
    if not seen:
        raise ValueError("The dataset is empty: it yields no examples.")


def _verbose(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 0
    return int(verbose)


def log_likelihood(
    model,
    data,
    k=5000,
    chunk_size=None,
    batch_size=100,
    seed=0,
    verbose="auto",
    jit_compile=False,
):
    """Importance-sampled ``log p(x)`` per example.

    ``log p^(x) = log (1/k) sum_i p(x, h_i) / q(h_i | x)`` with ``h_i ~ q(h | x)``
    for a VAE or a Helmholtz machine with any number of stochastic layers and
    any latent or observation family; it is a stochastic lower bound of
    ``log p(x)`` (the IWAE bound) that rises to ``log p(x)`` as k grows.

    Samples are drawn ``chunk_size`` at a time for ``batch_size`` examples,
    keeping a running logsumexp per example, so memory is O(chunk_size x
    batch_size) whatever k. Every batch has the same shape (the last one is
    padded), so the per-batch ``tf.function`` is traced once per model,
    ``chunk_size`` and ``batch_size`` and reused across calls.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE``.
        data: ``[N, *input_shape]`` array-like (or ``(x, y)``), or a ``tf.data.Dataset``
            of ``x`` or ``(x, ...)`` (batched or not; it is re-batched). For a
            conditional model (``condition_dim=K``) the pair ``(x, y [N, K])``
            or a dataset of ``(x, y)``: the estimate is then ``log p(x | y)``.
        k: importance samples per example, >= 1.
        chunk_size: samples per chunk; default ``min(k, 8192 // batch_size)``.
        batch_size: examples per batch (at most N for arrays).
        seed: int; the same seed, data, ``chunk_size`` and ``batch_size`` give
            the same estimates. Other chunk or batch sizes draw other noise.
        verbose: 0, 1 (progress bar) or ``"auto"`` (a bar on a terminal).
        jit_compile: compile the per-batch function with XLA (its random
            stream differs from the default's, so estimates change within
            Monte Carlo error).

    Returns:
        :class:`LogLikelihood`: ``values [N]``, ``mean``, ``stderr`` (over
        examples), ``elbo [N]``, ``ess [N]``, ``mc_stderr [N]``.

    Raises:
        ValueError: k, chunk_size or batch_size not a positive integer; data
            not ``[N, *input_shape]``, empty, non-finite or outside the
            observation model's support.
    """
    k = _check_positive_int(k, "k")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if chunk_size is not None:
        chunk_size = _check_positive_int(chunk_size, "chunk_size")
    x = _as_array(data, model)
    n_known = None if x is None else len(x[0] if isinstance(x, tuple) else x)
    if x is not None:
        _check_array(model, x)
        data = x
        batch_size = min(batch_size, n_known)  # No padding beyond the data.
    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_CHUNK_ROWS // batch_size)
    chunk_size = min(chunk_size, k)
    n_chunks = -(-k // chunk_size)
    fn, seed_generator = _log_weight_fn(model, chunk_size, jit_compile)
    _reset(seed_generator, seed)

    verbose = _verbose(verbose)
    bar = None
    if verbose:
        bar = keras.utils.Progbar(n_known, verbose=verbose, unit_name="example", stateful_metrics=["log_px"])

    start = time.perf_counter()
    lse, lse2, total = [], [], []
    n_chunks_t, k_t = tf.constant(n_chunks, tf.int32), tf.constant(k, tf.int32)
    done, running_sum = 0, 0.0
    for batch in _batches(model, data, batch_size, checked=x is not None):
        parts = batch if isinstance(batch, tuple) else (batch,)
        b = len(parts[0])
        if b < batch_size:  # Pad to the traced shape; padded rows are dropped.
            parts = tuple(np.concatenate([p, np.repeat(p[-1:], batch_size - b, axis=0)]) for p in parts)
        inputs = tuple(tf.constant(p) for p in parts) if isinstance(batch, tuple) else tf.constant(parts[0])
        with _quiet_retracing():
            out = fn(inputs, n_chunks_t, k_t)
        lse.append(out[0].numpy()[:b])
        lse2.append(out[1].numpy()[:b])
        total.append(out[2].numpy()[:b])
        done += b
        running_sum += float(np.sum(lse[-1], dtype=np.float64))
        if bar is not None:
            bar.update(done, values=[("log_px", running_sum / done - math.log(k))], finalize=False)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.update(done, finalize=True)

    lse = np.concatenate(lse).astype(np.float64)
    lse2 = np.concatenate(lse2).astype(np.float64)
    values = lse - math.log(k)
    with np.errstate(invalid="ignore", over="ignore"):
        ess = np.exp(2.0 * lse - lse2)
        mc_stderr = np.sqrt(np.clip(1.0 / ess - 1.0 / k, 0.0, None))
    return LogLikelihood(
        values=values,
        elbo=np.concatenate(total).astype(np.float64) / k,
        ess=ess,
        mc_stderr=mc_stderr,
        k=k,
        seed=int(seed),
        seconds=seconds,
    )


# ---------------------------------------------------------------------------
# Active units.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class ActiveUnits:
    """Active units per stochastic layer (Burda et al., 2015, section 5.2).

    Attributes:
        counts: per layer ``m = 1..M``, the number of units ``u`` with
            ``Cov_x(E_q[u | x]) > threshold``.
        variances: per layer, ``[d_m]`` the variance over the data of each
            unit's posterior mean (computed along the mean path).
        threshold: the activity threshold.
    """

    counts: list
    variances: list
    threshold: float

    @property
    def total(self):
        return int(sum(self.counts))

    def as_dict(self):
        return {
            "active_units": [int(c) for c in self.counts],
            "active_units_total": self.total,
            "active_unit_threshold": self.threshold,
            "latent_dims": [len(v) for v in self.variances],
        }


def active_units(model, data, threshold=0.01, batch_size=1000):
    """Units whose posterior mean varies across the data.

    A unit ``u`` of layer ``m`` is active when ``A_u = Cov_x(E_{q}[u | x])``
    exceeds ``threshold`` (0.01 in Burda et al., 2015). The posterior means
    are taken along the mean path of ``model.recognition_params`` (the layer
    below is set to its mean), ``E_q[u] = head.mean(params)``; ``Cov_x`` is
    the population variance over the examples of ``data``.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE``.
        data: ``[N, *input_shape]`` array-like or a ``tf.data.Dataset`` (see
            :func:`log_likelihood`); ``(x, y)`` for a conditional model, whose
            posterior means are those of ``q(h | x, y)``.
        threshold: activity threshold.
        batch_size: examples per forward pass.

    Returns:
        :class:`ActiveUnits` with ``counts`` and ``variances`` per layer.
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    heads = model.recognition_heads
    sums = [np.zeros(h.units, np.float64) for h in heads]
    squares = [np.zeros(h.units, np.float64) for h in heads]
    n = 0
    for batch in _batches(model, data, batch_size):
        for i, (head, params) in enumerate(zip(heads, model.recognition_params(batch))):
            mean = np.asarray(keras.ops.convert_to_numpy(head.mean(params)), np.float64)
            sums[i] += mean.sum(axis=0)
            squares[i] += np.square(mean).sum(axis=0)
        n += len(batch[0]) if isinstance(batch, tuple) else len(batch)
    variances = [np.clip(sq / n - np.square(s / n), 0.0, None) for s, sq in zip(sums, squares)]
    return ActiveUnits(
        counts=[int(np.sum(v > threshold)) for v in variances],
        variances=variances,
        threshold=float(threshold),
    )


# ---------------------------------------------------------------------------
# Whole-model evaluation.
# ---------------------------------------------------------------------------


def evaluate_model(
    model,
    x,
    k=5000,
    seed=0,
    batch_size=100,
    chunk_size=None,
    threshold=0.01,
    elbo_batch_size=500,
    verbose=0,
):
    """Test metrics of a trained model, as reported in the literature.

    Args:
        model: a trained ``HelmholtzMachine`` or ``VAE``.
        x: ``[N, *input_shape]`` test data (e.g. statically binarised MNIST test images),
            or a finite ``tf.data.Dataset`` of them (read once into memory);
            for a conditional model the pair ``(x, y)`` or a dataset of pairs
            (the metrics are then of ``p(x | y)``).
        k: importance samples of ``log p(x)``.
        seed: seed of all the noise (the model's seed generator is restored).
        batch_size, chunk_size: see :func:`log_likelihood`.
        threshold: see :func:`active_units`.
        elbo_batch_size: batch size of ``model.evaluate``.
        verbose: progress bar of the log p(x) estimate.

    Returns:
        dict with ``elbo``, ``reconstruction``, ``kl`` (``model.evaluate``,
        with the model's own ``n_samples`` and KL setting), ``log_px``,
        ``log_px_stderr`` (over examples), ``log_px_mc_stderr``, ``elbo_is``
        (the ELBO from the k importance samples), ``ess_mean``, ``k``,
        ``seed``, ``n_examples``, ``active_units`` (per layer),
        ``active_units_total``, ``active_unit_threshold``, ``latent_dims`` and
        timings (``seconds_elbo``, ``seconds_log_px``). For observation
        heads of discrete values (``model.observation.discrete``), also
        ``bits_per_dim`` (of ``log_px``) and ``elbo_bits_per_dim``, see
        :func:`bits_per_dim`.
    """
    if isinstance(x, tf.data.Dataset):
        batches = list(_batches(model, x, 1000))
        if _conditional(model):
            x = tuple(np.concatenate(parts) for parts in zip(*batches))
        else:
            x = np.concatenate(batches)
    x = _as_array(x, model)
    _check_array(model, x)
    if not getattr(model, "compiled", False):
        model.compile(optimizer="adam")
    # model.evaluate draws from the model's generator: seed it, then restore.
    saved = model.seed_generator.state.numpy()
    _reset(model.seed_generator, seed)
    try:
        start = time.perf_counter()
        test = model.evaluate(x, batch_size=elbo_batch_size, verbose=0, return_dict=True)
        seconds_elbo = time.perf_counter() - start
    finally:
        model.seed_generator.state.assign(saved)
    ll = log_likelihood(model, x, k=k, chunk_size=chunk_size, batch_size=batch_size, seed=seed, verbose=verbose)
    units = active_units(model, x, threshold=threshold)
    metrics = {name: float(test[name]) for name in ("elbo", "reconstruction", "kl") if name in test}
    metrics.update(ll.as_dict())
    metrics.update(units.as_dict())
    if getattr(model.observation, "discrete", False):
        metrics["bits_per_dim"] = bits_per_dim(metrics["log_px"], model.input_dim)
        if "elbo" in metrics:
            metrics["elbo_bits_per_dim"] = bits_per_dim(metrics["elbo"], model.input_dim)
    metrics["seconds_elbo"] = seconds_elbo
    metrics["seconds_log_px"] = metrics.pop("seconds")
    return metrics



# ---------------------------------------------------------------------------
# Deprecated aliases (PEP 562): the gradient diagnostics moved.
# ---------------------------------------------------------------------------

_MOVED_TO_DIAGNOSTICS = (
    "ESTIMATORS",
    "BASELINES",
    "elbo_surrogate",
    "GradientMoments",
    "gradient_moments",
    "_check_estimator",
    "_gradient_fn",
)


def __getattr__(name):
    """Old names of the gradient diagnostics, now in :mod:`keras_vae.diagnostics`.

    Args:
        name: the attribute looked up on this module.

    Returns:
        The object of the same name in ``keras_vae.diagnostics``, after a
        ``DeprecationWarning``.

    Raises:
        AttributeError: ``name`` is not one of the moved names.
    """
    if name in _MOVED_TO_DIAGNOSTICS:
        warnings.warn(
            f"keras_vae.evaluation.{name} moved to keras_vae.diagnostics.{name}; "
            "import it from there (the old name will be removed).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("keras_vae.diagnostics"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
