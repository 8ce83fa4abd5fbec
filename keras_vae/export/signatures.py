"""The exported object: a ``tf.Module`` of named signatures over a model.

- ``decode`` (= ``serving_default``): ``z [batch, latent_dim]`` -> the
  observation parameters and ``mean`` (lower layers at their conditional means);
- ``encode``: ``x [batch, *input_shape]`` -> the posterior parameters of ``h_M``
  (lower layers at their posterior means);
- ``sample``: ``num_samples``, ``seed`` -> ``z ~ p(h_M)`` and
  ``x_mean = decode(z)["mean"]``;
- ``score``: ``x``, ``seed`` -> ``elbo`` and ``log_px`` ``[batch]`` from ``k``
  posterior samples;
- ``score_from_noise``: ``x``, ``noise_h1..noise_hM`` -> the same, noise given;
- ``ancestral_sample``: ``num_samples``, ``seed`` -> every layer drawn:
  ``h_1..h_{M-1}``, ``z``, ``x``, ``x_mean``;
- ``ancestral_sample_from_noise``: ``noise_hM..noise_h1``, ``noise_x`` -> the
  same, noise given.

Every signature of a conditional model (``condition_dim=K``) also takes the
condition ``condition [batch, K]`` (for the samplers ``[num_samples, K]``; the
``*_from_noise`` ones after ``x``, before the noise), as the model's
``condition=`` argument.

``score`` equals ``keras_vae.scoring.scores(model, x, k, seed)`` and
``ancestral_sample`` equals ``model.sample(n, seed=seed)`` (plus the lower
layers' draws), draw for draw. The ``*_from_noise`` signatures are the
seeded ones with each random draw fed from an input (see
:mod:`keras_vae.export.noise`); they hold no random ops and are what the
TFLite ``scorer`` and ``sampler`` files run.
"""

import tensorflow as tf

from keras_vae import scoring
from keras_vae.export import builtin_ops
from keras_vae.export import noise

#: Signatures whose graphs must hold no random ops.
DETERMINISTIC = ("decode", "encode", "score_from_noise", "ancestral_sample_from_noise")


class ServingModule(tf.Module):
    """The exported signatures of a model (see the module docstring).

    The Keras model is not tracked, only the variables its functions read,
    so the SavedModel needs neither keras_vae nor Keras to load and the TFLite
    converter can freeze every weight.

    Args:
        model: a ``HelmholtzMachine`` or ``VAE``.
        score_k: posterior samples per example of the ``score`` signatures.

    Attributes:
        noise_inputs: signature name -> list of ``(tf.TensorSpec, info)`` of
            its noise inputs, ``info = {"distribution", "doc"}``.

    Example:

    ```python
    module = ServingModule(model, score_k=16)
    module.score(x=tf.constant(x), seed=tf.constant(0, tf.int64))   # {"elbo", "log_px"}
    ```
    """

    def __init__(self, model, score_k=scoring.DEFAULT_K):
        super().__init__(name="keras_vae")
        self.score_k = int(score_k)
        spec = tf.TensorSpec
        z_spec = spec([None, model.latent_dim], tf.float32, name="z")
        x_spec = spec([None, *model.input_shape], tf.float32, name="x")
        n_spec, seed_spec = spec([], tf.int32, name="num_samples"), spec([], tf.int64, name="seed")
        # A conditional model's signatures end with the condition; the others have none.
        conditional = model.condition_dim is not None
        c_specs = [spec([None, model.condition_dim], tf.float32, name="condition")] if conditional else []
        c_names = ["condition"] if conditional else []

        # === Deterministic maps ===

        def decode(z, condition=None):
            """Observation parameters and ``mean`` of p(x | h_1) at top-layer codes ``z``."""
            return dict(model.decode(z, condition))

        def encode(x, condition=None):
            """Posterior parameters of the top layer (lower layers at their means)."""
            return dict(model.encode(x, condition))

        # === Seeded draws ===

        def checked(num_samples, condition=None):
            checks = [tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0")]
            if condition is not None:
                checks.append(
                    tf.debugging.assert_equal(
                        tf.shape(condition)[0], num_samples, message="condition must have num_samples rows"
                    )
                )
            with tf.control_dependencies(checks):
                return tf.identity(num_samples)

        def sample(num_samples, seed, condition=None):
            """``z`` from the prior of ``h_M`` (stateless, seeded) and ``x_mean`` = decode mean."""
            prior = model.prior(tf.zeros(tf.stack([checked(num_samples, condition), 1])))
            # The prior head draws from its own family with a stateless key.
            z = model.prior.sample(prior, tf.stack([seed, tf.constant(0, tf.int64)]))
            return {"z": z, "x_mean": decode(z, condition)["mean"]}

        def score(x, seed, condition=None):
            """Per-example ``elbo`` and ``log_px`` from ``score_k`` posterior samples."""
            return scoring.scores(model, x, self.score_k, seed, condition=condition)

        def ancestral(num_samples, seed, condition=None):
            """Every layer drawn top-down, as ``model.sample(num_samples, seed=seed)``."""
            samples, x, obs = model.dream(num_samples, seed=scoring.SeedSequence(seed), condition=condition)
            out = {f"h_{m + 1}": h for m, h in enumerate(samples[:-1])}
            out.update(z=samples[-1], x=x, x_mean=model.observation.mean(obs))
            return out

        def ancestral_sample(num_samples, seed, condition=None):
            return ancestral(checked(num_samples, condition), seed, condition)

        # === Noise given as inputs ===

        with builtin_ops.builtin_log_probs(model):
            names, docs = _score_noise(model, self.score_k)
            scorer, score_noise = noise.lift(score, [x_spec, seed_spec] + c_specs, ["x"] + c_names, names, docs)
        names, docs = _sample_noise(model)
        sampler, sample_noise = noise.lift(
            ancestral, [n_spec, seed_spec] + c_specs, ["num_samples"] + c_names, names, docs
        )
        self.noise_inputs = {"score_from_noise": score_noise, "ancestral_sample_from_noise": sample_noise}

        def score_from_noise(x, *inputs):
            return scorer(x, *inputs)

        def ancestral_sample_from_noise(*inputs):
            # The number of samples is the number of rows of the first noise input.
            return sampler(tf.shape(inputs[len(c_specs)])[0], *inputs)

        def function(fn, signature):
            if not conditional:
                # Exactly the signature's inputs: the condition=None default is no input.
                fn = _positional(fn)
            return tf.function(fn, input_signature=signature, autograph=False)

        self.decode = function(decode, [z_spec] + c_specs)
        self.encode = function(encode, [x_spec] + c_specs)
        self.sample = function(sample, [n_spec, seed_spec] + c_specs)
        self.score = function(score, [x_spec, seed_spec] + c_specs)
        self.ancestral_sample = function(ancestral_sample, [n_spec, seed_spec] + c_specs)
        self.score_from_noise = function(score_from_noise, [x_spec] + c_specs + [s for s, _ in score_noise])
        self.ancestral_sample_from_noise = function(
            ancestral_sample_from_noise, c_specs + [s for s, _ in sample_noise]
        )
        variables = {}
        for fn in self.signatures().values():
            variables.update({id(v): v for v in fn.variables})
        self.model_variables = list(variables.values())

    def signatures(self):
        """Signature name -> concrete function, ``serving_default`` = ``decode``."""
        names = (
            "decode",
            "encode",
            "sample",
            "score",
            "score_from_noise",
            "ancestral_sample",
            "ancestral_sample_from_noise",
        )
        concrete = {name: getattr(self, name).get_concrete_function() for name in names}
        concrete["serving_default"] = concrete["decode"]
        return concrete


def _score_noise(model, k):
    """Names and docs of the score's draws: one per recognition draw, bottom-up."""
    names, docs = [], []
    widths = [tuple(model.input_shape), *model.latent_dims[:-1]]
    condition = _probe_condition(model)
    for m, head in enumerate(model.recognition_heads, start=1):
        h = noise.zeros(widths[m - 1])
        features = model.recognition_features(m - 1, h, condition)
        count = noise.draws_per_head(head, features)
        names += noise.numbered(f"noise_h{m}", count)
        docs += [
            f"[{k} * batch, ...] noise of the {k} posterior samples of h_{m}, sample-major "
            "(row i * batch + b is sample i of example b)"
        ] * count
    return names, docs


def _sample_noise(model):
    """Names and docs of the ancestral sampler's draws: h_M, ..., h_1, then x."""
    top = model.num_layers
    condition = _probe_condition(model)
    count = noise.draws_per_head(model.prior, noise.zeros(1))
    names = noise.numbered(f"noise_h{top}", count)
    docs = [f"[n, ...] noise of h_{top} ~ p(h_{top}); n = number of samples"] * count
    for i in reversed(range(top - 1)):
        features = model.generative_features(i + 1, noise.zeros(model.latent_dims[i + 1]), condition)
        count = noise.draws_per_head(model.generative_heads[i], features)
        names += noise.numbered(f"noise_h{i + 1}", count)
        docs += [f"[n, ...] noise of h_{i + 1} ~ p(h_{i + 1} | h_{i + 2})"] * count
    features = model.generative_features(0, noise.zeros(model.latent_dims[0]), condition)
    count = noise.draws_per_head(model.observation, features)
    names += noise.numbered("noise_x", count)
    suffix = [f", draw {j} of {count}" if count > 1 else "" for j in range(count)]
    docs += [f"[n, ...] noise of x ~ p(x | h_1){part}" for part in suffix]
    return names, docs


def _positional(fn):
    """``fn`` called with the positional inputs it is given (its defaults are no inputs)."""
    return lambda *inputs: fn(*inputs)


def _probe_condition(model):
    """A ``[1, K]`` zero condition to probe a conditional model's networks with, else None."""
    return None if model.condition_dim is None else noise.zeros(model.condition_dim)
