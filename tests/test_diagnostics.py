"""Gradient-estimator diagnostics: unbiasedness against the closed-form ELBO
gradient of a linear-Gaussian model, variance ordering, bad settings."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from _linear_gaussian import LinearGaussian
from _linear_gaussian import to_numpy

import keras_vae
from keras_vae import diagnostics


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return keras_vae.VAE(64, latent_dim=4, hidden_dims=(32,), seed=0)


# ---------------------------------------------------------------------------
# Gradient estimators.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gradient_setup():
    linear = LinearGaussian(dim=3, latent=2, sigma=0.7, seed=2)
    linear.set_posterior(loc_shift=0.4, scale_factor=1.6)  # away from the optimum
    x = linear.sample(4, seed=5)
    variables = linear.model.recognition_variables
    with tf.GradientTape() as tape:
        elbo = tf.reduce_mean(linear.elbo(x))
    exact = np.concatenate([to_numpy(g).ravel() for g in tape.gradient(elbo, variables)])
    return linear, x, exact


@pytest.mark.parametrize(
    "estimator, n_samples, baseline, repeats",
    [
        ("reparam_analytic", 1, None, 400),
        ("reparam_mc", 1, None, 400),
        ("score", 1, None, 3000),
        ("score", 1, "moving_average", 3000),
        ("score", 10, "leave_one_out", 1000),
    ],
)
def test_gradient_estimators_are_unbiased(gradient_setup, estimator, n_samples, baseline, repeats):
    linear, x, exact = gradient_setup
    m = diagnostics.gradient_moments(
        linear.model, x, estimator, n_samples=n_samples, repeats=repeats, baseline=baseline, seed=1
    )
    assert m.mean.shape == exact.shape == (16,)
    live = m.variance > 0
    z = (m.mean[live] - exact[live]) / m.stderr[live]
    assert np.max(np.abs(z)) < 5, z
    np.testing.assert_allclose(m.mean[~live], exact[~live], atol=1e-5)
    assert np.linalg.norm(m.mean - exact) < 0.2 * np.linalg.norm(exact) + 5 * np.sqrt(np.sum(m.stderr**2))


def test_reparameterisation_has_lower_variance_than_the_score_function(gradient_setup):
    linear, x, _ = gradient_setup
    runs = {
        name: diagnostics.gradient_moments(linear.model, x, est, n_samples=L, repeats=300, baseline=base, seed=2)
        for name, est, L, base in [
            ("analytic", "reparam_analytic", 1, None),
            ("mc", "reparam_mc", 1, None),
            ("score", "score", 10, None),
            ("loo", "score", 10, "leave_one_out"),
        ]
    }
    v = {name: r.mean_variance for name, r in runs.items()}
    assert v["analytic"] < v["mc"] < v["score"], v
    assert v["loo"] < v["score"] / 2, v
    assert runs["analytic"].median_snr > runs["score"].median_snr


def test_surrogate_rejects_bad_settings(small_model, binary_digits):
    x = binary_digits[1][:4]
    with pytest.raises(ValueError, match="Unknown estimator"):
        diagnostics.elbo_surrogate(small_model, x, "reinforce")
    with pytest.raises(ValueError, match="only applies to the 'score'"):
        diagnostics.elbo_surrogate(small_model, x, "reparam_mc", baseline="moving_average")
    with pytest.raises(ValueError, match="n_samples >= 2"):
        diagnostics.elbo_surrogate(small_model, x, "score", n_samples=1, baseline="leave_one_out")
