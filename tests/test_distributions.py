"""Distribution heads: analytic KL vs Monte Carlo, sample moments, supports."""

import keras
import numpy as np
import pytest
import tensorflow_probability as tfp

import keras_vae
from keras_vae import heads

tfd = tfp.distributions


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _gaussian_params(covariance, units=3, batch=2, seed=0):
    head = keras_vae.GaussianLatent(units, covariance=covariance)
    features = np.random.default_rng(seed).normal(size=(batch, 5)).astype("float32")
    head.build(features.shape)
    return head, head(features)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_analytic_kl_matches_monte_carlo(covariance):
    head, params = _gaussian_params(covariance)
    prior = keras_vae.StandardNormalPrior(3)
    q = head.distribution(params)
    p = prior.distribution(prior(params["loc"]))
    analytic = _numpy(tfd.kl_divergence(q, p))

    n = 200_000
    tiled = {k: keras.ops.repeat(v, n, axis=0) for k, v in params.items()}
    z = head.sample(tiled, keras.random.SeedGenerator(1))
    log_ratio = _numpy(head.log_prob(tiled, z) - prior.log_prob(prior(z), z)).reshape(2, n)
    mc, stderr = log_ratio.mean(axis=1), log_ratio.std(axis=1) / np.sqrt(n)
    assert np.all(np.abs(mc - analytic) < 4 * stderr + 1e-4), (mc, analytic, stderr)
    assert np.all(analytic > 0)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_reparameterised_sample_moments(covariance):
    head, params = _gaussian_params(covariance, units=3, batch=1)
    n = 100_000
    tiled = {k: keras.ops.repeat(v, n, axis=0) for k, v in params.items()}
    z = _numpy(head.sample(tiled, keras.random.SeedGenerator(3)))
    scale = _numpy(head.scale_matrix(params))[0]
    cov = scale @ scale.T
    np.testing.assert_allclose(z.mean(axis=0), _numpy(params["loc"])[0], atol=4 * np.sqrt(np.diag(cov).max() / n))
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.02)
    # Deterministic mode returns the mean.
    np.testing.assert_array_equal(_numpy(head.sample(params, None, mode=True)), _numpy(params["loc"]))


def test_full_covariance_scale_is_lower_triangular_with_positive_diagonal():
    head, params = _gaussian_params("full", units=4, batch=8)
    tril = _numpy(params["scale_tril"])
    assert tril.shape == (8, 4, 4)
    np.testing.assert_array_equal(np.triu(tril, k=1), 0.0)
    assert np.all(np.diagonal(tril, axis1=1, axis2=2) > 0)
    # Every lower-triangular entry is free: 4*5/2 = 10 distinct values.
    assert len(np.unique(tril[0][np.tril_indices(4)])) == 10


def test_reparameterised_gradient_flows_through_sample():
    import tensorflow as tf

    head, _ = _gaussian_params("diag")
    features = tf.constant(np.ones((2, 5), "float32"))
    with tf.GradientTape() as tape:
        z = head.sample(head(features), keras.random.SeedGenerator(0))
        loss = tf.reduce_sum(z**2)
    grads = tape.gradient(loss, head.trainable_variables)
    assert all(g is not None and np.any(_numpy(g) != 0) for g in grads)


def test_bernoulli_latent_samples_are_binary_without_gradient():
    import tensorflow as tf

    head = keras_vae.BernoulliLatent(6)
    features = tf.constant(np.random.default_rng(0).normal(size=(50, 3)).astype("float32"))
    head.build(features.shape)
    with tf.GradientTape() as tape:
        h = head.sample(head(features), keras.random.SeedGenerator(0))
        loss = tf.reduce_sum(h)
    assert set(np.unique(_numpy(h))) <= {0.0, 1.0}
    assert all(g is None for g in tape.gradient(loss, head.trainable_variables))


def test_bernoulli_observation_log_prob_matches_tfp():
    head = keras_vae.BernoulliObservation(5)
    head.build((None, 3))
    params = head(np.ones((4, 3), "float32"))
    x = (np.random.default_rng(0).random((4, 5)) < 0.5).astype("float32")
    expected = tfd.Independent(tfd.Bernoulli(logits=params["logits"]), 1).log_prob(x)
    np.testing.assert_allclose(_numpy(head.log_prob(params, x)), _numpy(expected), rtol=1e-5)


def test_gaussian_observation_learned_scale_is_shared():
    head = keras_vae.GaussianObservation(3)
    head.build((None, 2))
    params = head(np.random.default_rng(0).normal(size=(4, 2)).astype("float32"))
    scale = _numpy(params["scale"])
    np.testing.assert_allclose(scale, np.broadcast_to(scale[0], scale.shape))
    np.testing.assert_allclose(scale[0], 1.0, rtol=1e-6)  # starts at 1 (floor included)


def test_categorical_observation_log_prob_and_padding():
    head = keras_vae.CategoricalObservation([2, 4])
    head.build((None, 3))
    params = head(np.random.default_rng(0).normal(size=(5, 3)).astype("float32"))
    logits = _numpy(params["logits"])
    x = np.array([[1, 3], [0, 0], [1, 2], [0, 1], [1, 0]], "float32")
    log_softmax = lambda a: a - np.log(np.exp(a).sum(-1, keepdims=True))  # noqa: E731
    expected = log_softmax(logits[:, :2])[np.arange(5), x[:, 0].astype(int)] + log_softmax(logits[:, 2:])[
        np.arange(5), x[:, 1].astype(int)
    ]
    np.testing.assert_allclose(_numpy(head.log_prob(params, x)), expected, rtol=1e-5)
    draws = _numpy(head.sample({"logits": keras.ops.repeat(params["logits"], 200, 0)}, keras.random.SeedGenerator(0)))
    assert draws[:, 0].max() <= 1 and draws[:, 1].max() <= 3 and draws.min() >= 0
    probs = _numpy(head.decode_outputs(params)["probs"])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[:, 0, 2:], 0.0)  # padded classes carry no mass


def test_mixed_observation_sums_components():
    parts = [keras_vae.BernoulliObservation(2), keras_vae.GaussianObservation(1), keras_vae.CategoricalObservation([3])]
    mixed = keras_vae.MixedObservation(parts)
    assert mixed.event_size == 4
    mixed.build((None, 3))
    params = mixed(np.ones((2, 3), "float32"))
    x = np.array([[1, 0, 0.5, 2], [0, 1, -1.0, 0]], "float32")
    expected = (
        parts[0].log_prob(parts[0](np.ones((2, 3), "float32")), x[:, :2])
        + parts[1].log_prob(parts[1](np.ones((2, 3), "float32")), x[:, 2:3])
        + parts[2].log_prob(parts[2](np.ones((2, 3), "float32")), x[:, 3:])
    )
    np.testing.assert_allclose(_numpy(mixed.log_prob(params, x)), _numpy(expected), rtol=1e-5)
    assert _numpy(mixed.sample(params, keras.random.SeedGenerator(0))).shape == (2, 4)
    assert _numpy(mixed.decode_outputs(params)["mean"]).shape == (2, 4)


def test_check_data_names_the_problem():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        keras_vae.BernoulliObservation(2).check_data(np.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="Categorical column 1"):
        keras_vae.CategoricalObservation([2, 3]).check_data(np.array([[1.0, 3.0]]))
    mixed = keras_vae.MixedObservation([keras_vae.GaussianObservation(1), keras_vae.BernoulliObservation(1)])
    with pytest.raises(ValueError, match="Columns 1..1"):
        mixed.check_data(np.array([[5.0, 2.0]]))


@pytest.mark.parametrize(
    "layer",
    [
        keras_vae.GaussianLatent(3, covariance="full", min_scale=1e-3),
        keras_vae.BernoulliLatent(2),
        keras_vae.GaussianObservation(4, scale="per_example"),
        keras_vae.CategoricalObservation([2, 5]),
        keras_vae.MixedObservation([keras_vae.BernoulliObservation(2), keras_vae.CategoricalObservation([3])]),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_round_trip_through_config(layer):
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer)
    assert revived.get_config() == layer.get_config()


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="covariance"):
        keras_vae.GaussianLatent(2, covariance="banded")
    with pytest.raises(ValueError, match="Unknown likelihood"):
        heads.get_observation("poisson", 3)
    with pytest.raises(ValueError, match=r"events of shape \(4,\) but the model's input_shape is \(3,\)"):
        heads.get_observation(keras_vae.BernoulliObservation(4), 3)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_gaussian_latent_scale_starts_at_identity(covariance):
    # Zero features leave only the biases: Sigma^1/2 must be exactly I (floor
    # included), whatever the random kernel.
    head = keras_vae.GaussianLatent(4, covariance=covariance, min_scale=1e-3)
    params = head(np.zeros((2, 6), dtype="float32"))
    np.testing.assert_allclose(_numpy(head.scale_matrix(params)), np.broadcast_to(np.eye(4), (2, 4, 4)), atol=1e-6)
    # ... so the KL to N(0, I) is the location term only.
    loc = _numpy(params["loc"])
    prior = tfd.MultivariateNormalDiag(np.zeros(4, "float32"), np.ones(4, "float32"))
    kl = tfd.kl_divergence(head.distribution(params), prior)
    np.testing.assert_allclose(_numpy(kl), 0.5 * np.sum(loc**2, axis=-1), rtol=1e-4, atol=1e-6)


def test_gaussian_observation_per_example_scale_starts_at_one():
    head = keras_vae.GaussianObservation(3, scale="per_example")
    params = head(np.zeros((2, 5), dtype="float32"))
    np.testing.assert_allclose(_numpy(params["scale"]), np.ones((2, 3)), rtol=1e-6)


def test_raw_for_scale_inverts_scale_from_raw():
    from keras_vae.heads.base import raw_for_scale
    from keras_vae.heads.base import scale_from_raw

    for scale, floor in [(1.0, 1e-4), (0.3, 1e-3), (5.0, 0.0)]:
        raw = raw_for_scale(scale, floor)
        np.testing.assert_allclose(_numpy(scale_from_raw(np.float32(raw), floor)), scale, rtol=1e-6)
    with pytest.raises(ValueError, match="exceed min_scale"):
        raw_for_scale(1e-4, 1e-3)
