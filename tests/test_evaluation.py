"""Evaluation: importance-sampled log p(x) against closed forms, active units,
unbiased gradient estimators, the evaluate command and the Burda harness."""

import argparse
import importlib.util
import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import keras_vae
from keras_vae import evaluation

REPO = pathlib.Path(__file__).resolve().parents[1]


def _softplus_inv(y):
    return np.log(np.expm1(y))


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


class LinearGaussian:
    """``z ~ N(0, I_d)``, ``x = W z + b + sigma eps`` as a keras-vae VAE.

    ``W`` has orthogonal columns, so the exact posterior ``q*(z | x) =
    N(A (x - b), Sigma)``, ``Sigma = (I + W^T W / sigma^2)^-1``, is diagonal
    and the encoder (identity network, one Dense head) can represent it.
    """

    def __init__(self, dim=4, latent=2, sigma=0.5, seed=0):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(dim, latent)))
        self.w = q * np.linspace(2.0, 1.0, latent)  # [D, d], orthogonal columns
        self.b = rng.normal(size=dim)
        self.sigma = sigma
        self.sigma_post = np.linalg.inv(np.eye(latent) + self.w.T @ self.w / sigma**2)
        assert np.allclose(self.sigma_post, np.diag(np.diag(self.sigma_post)))
        self.a = self.sigma_post @ self.w.T / sigma**2  # [d, D]
        self.model = keras_vae.VAE(dim, latent_dim=latent, hidden_dims=(), likelihood="gaussian", seed=0)
        obs = self.model.observation
        obs.loc_dense.kernel.assign(self.w.T.astype("float32"))
        obs.loc_dense.bias.assign(self.b.astype("float32"))
        obs.raw_scale.assign(np.full(dim, _softplus_inv(sigma - obs.min_scale), "float32"))
        self.set_posterior()

    def set_posterior(self, loc_shift=0.0, scale_factor=1.0):
        """Encoder = the exact posterior, optionally shifted and widened."""
        head = self.model.recognition_heads[0]
        scale = np.sqrt(np.diag(self.sigma_post)) * scale_factor
        head.loc_dense.kernel.assign(self.a.T.astype("float32"))
        head.loc_dense.bias.assign((-self.a @ self.b + loc_shift).astype("float32"))
        head.scale_dense.kernel.assign(np.zeros_like(_numpy(head.scale_dense.kernel)))
        head.scale_dense.bias.assign(_softplus_inv(scale - head.min_scale).astype("float32"))

    def sample(self, n, seed=1):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, self.w.shape[1]))
        return (z @ self.w.T + self.b + self.sigma * rng.normal(size=(n, len(self.b)))).astype("float32")

    def log_px(self, x):
        cov = self.w @ self.w.T + self.sigma**2 * np.eye(len(self.b))
        return multivariate_normal(self.b, cov).logpdf(x)

    def elbo(self, x):
        """Closed-form ELBO of the model's current encoder (TF, differentiable)."""
        model = self.model
        params = model.recognition_heads[0](model.recognition_networks[0](x))
        mu, s = params["loc"], params["scale"]
        obs = model.observation
        w, b = obs.loc_dense.kernel, obs.loc_dense.bias
        sigma = tf.nn.softplus(obs.raw_scale) + obs.min_scale
        mean = mu @ w + b
        spread = (s**2) @ (w**2)  # E_q (x - Wz - b)^2 = (x - W mu - b)^2 + sum_i s_i^2 W_ij^2
        rec = tf.reduce_sum(
            -0.5 * np.log(2 * np.pi) - tf.math.log(sigma) - 0.5 * ((x - mean) ** 2 + spread) / sigma**2, axis=-1
        )
        kl = 0.5 * tf.reduce_sum(mu**2 + s**2 - 1.0 - 2.0 * tf.math.log(s), axis=-1)
        return rec - kl


@pytest.fixture(scope="module")
def linear():
    return LinearGaussian()


@pytest.fixture(scope="module")
def linear_data(linear):
    return linear.sample(300)


# ---------------------------------------------------------------------------
# log_likelihood against closed forms.
# ---------------------------------------------------------------------------


def test_exact_posterior_gives_exact_log_likelihood(linear, linear_data):
    linear.set_posterior()
    exact = linear.log_px(linear_data)
    # k=10 in chunks of 4: the last chunk is partly masked; ess == k checks
    # that exactly k weights were summed.
    result = evaluation.log_likelihood(linear.model, linear_data, k=10, chunk_size=4, batch_size=64, verbose=0)
    assert result.values.shape == (300,)
    np.testing.assert_allclose(result.values, exact, atol=2e-4)
    np.testing.assert_allclose(result.elbo, exact, atol=2e-4)
    np.testing.assert_allclose(result.ess, 10.0, rtol=1e-3)
    assert result.mean == pytest.approx(exact.mean(), abs=1e-4)
    assert result.stderr == pytest.approx(exact.std(ddof=1) / np.sqrt(300), rel=1e-3)
    np.testing.assert_allclose(np.asarray(result), result.values)


def test_estimate_matches_exact_log_likelihood_within_standard_errors(linear, linear_data):
    linear.set_posterior(loc_shift=0.3, scale_factor=1.5)  # a wrong but wider q
    try:
        exact = linear.log_px(linear_data)
        result = evaluation.log_likelihood(linear.model, linear_data, k=1000, verbose=0)
        # Monte Carlo error of the mean over these 300 examples (delta method).
        assert 0 < result.mc_stderr_of_mean < 0.01
        assert abs(result.mean - exact.mean()) < 4 * result.mc_stderr_of_mean
        # ... and hence well within the standard error over examples.
        assert abs(result.mean - exact.mean()) < result.stderr
        z = (result.values - exact) / result.mc_stderr
        assert np.mean(np.abs(z) < 3) > 0.95, np.sort(np.abs(z))[-10:]
        assert np.all(result.ess < 1000) and np.all(result.ess > 100)
        # The same k samples estimate the closed-form ELBO.
        elbo = _numpy(linear.elbo(linear_data))
        assert abs(result.elbo_mean - elbo.mean()) < 0.01
    finally:
        linear.set_posterior()


def test_estimate_rises_with_k_from_the_elbo(linear, linear_data):
    linear.set_posterior(loc_shift=0.5, scale_factor=1.3)
    try:
        x = linear_data
        exact, elbo = linear.log_px(x), _numpy(linear.elbo(x))
        assert exact.mean() - elbo.mean() > 0.1  # a real gap to close
        results = {k: evaluation.log_likelihood(linear.model, x, k=k, seed=k, verbose=0) for k in (1, 10, 100, 1000)}
        # k = 1 is the ELBO (Monte Carlo): equal within its standard error.
        diff = results[1].values - elbo
        assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(x))
        means = [results[k].mean for k in (1, 10, 100, 1000)]
        for (k1, k2) in [(1, 10), (10, 100), (100, 1000)]:
            d = results[k2].values - results[k1].values  # paired over examples
            assert d.mean() > -3 * d.std() / np.sqrt(len(x)), (k1, k2, means)
        assert means[-1] > means[0] + 0.1
        assert means[-1] <= exact.mean() + 4 * results[1000].mc_stderr_of_mean
        # >= the ELBO, also the one keras reports (analytic KL, MC reconstruction).
        linear.model.compile(optimizer="adam")
        # 20 one-sample draws per example: standard error ~0.04.
        reported = linear.model.evaluate(np.tile(x, (20, 1)), batch_size=1000, verbose=0, return_dict=True)["elbo"]
        assert abs(reported - elbo.mean()) < 0.2
        for k in (10, 100, 1000):
            assert results[k].mean > elbo.mean()
            assert results[k].mean > reported
    finally:
        linear.set_posterior()


def _exact_binary_log_px(model, x):
    """log p(x) of a binary Helmholtz machine by enumerating every h."""
    import itertools

    dims = model.latent_dims
    configs = np.array(list(itertools.product([0.0, 1.0], repeat=sum(dims))), "float32")
    samples = np.split(configs, np.cumsum(dims)[:-1], axis=1)
    out = []
    for row in x:
        log_px, log_p, _ = model.generative_log_probs(np.repeat(row[None], len(configs), 0), samples)
        out.append(logsumexp(_numpy(log_px + sum(log_p))))
    return np.array(out)


def test_two_binary_layers_match_enumeration():
    # Any number of layers and families: 10 binary pixels, h1 (3 bits), h2 (2 bits).
    keras.utils.set_random_seed(0)
    model = keras_vae.HelmholtzMachine(
        10, latent_dims=(3, 2), hidden_dims=(), latent="bernoulli", objective="wake_sleep", seed=0
    )
    rng = np.random.default_rng(0)
    for v in model.generative_variables:
        v.assign(rng.normal(0, 1.5, v.shape).astype("float32"))
    x = _numpy(model.sample(60, seed=1)["x"])
    exact = _exact_binary_log_px(model, x)
    result = evaluation.log_likelihood(model, x, k=2000, batch_size=32, verbose=0)
    assert abs(result.mean - exact.mean()) < 4 * result.mc_stderr_of_mean + 1e-3
    z = (result.values - exact) / result.mc_stderr
    assert np.mean(np.abs(z) < 3) > 0.9
    assert np.all(result.values <= exact + 4 * result.mc_stderr + 1e-3)


def test_gaussian_hierarchy_bound_rises_with_k(binary_digits):
    keras.utils.set_random_seed(0)
    model = keras_vae.HelmholtzMachine(64, latent_dims=(8, 4), hidden_dims=(32,), seed=0)
    model.compile(optimizer="adam")
    x = binary_digits[1][:60]
    small = evaluation.log_likelihood(model, x, k=1, verbose=0)
    large = evaluation.log_likelihood(model, x, k=300, verbose=0)
    d = large.values - small.values
    assert d.mean() > 3 * d.std() / np.sqrt(len(x))
    assert large.mean > large.elbo_mean + 1.0
    elbo = model.evaluate(x, verbose=0, return_dict=True)["elbo"]
    assert large.mean > elbo
    assert np.all(np.isfinite(large.values)) and np.all(large.ess >= 1) and np.all(large.ess <= 500)


def test_categorical_and_mixed_observations():
    keras.utils.set_random_seed(0)
    obs = keras_vae.MixedObservation(
        [keras_vae.CategoricalObservation([3, 4]), keras_vae.GaussianObservation(2), keras_vae.BernoulliObservation(3)]
    )
    model = keras_vae.VAE(7, latent_dim=2, hidden_dims=(8,), likelihood=obs, seed=0)
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.integers(0, 3, (200, 1)), rng.integers(0, 4, (200, 1)), rng.normal(size=(200, 2)), rng.random((200, 3)) < 0.5],
        axis=1,
    ).astype("float32")
    small = evaluation.log_likelihood(model, x, k=1, verbose=0)
    large = evaluation.log_likelihood(model, x, k=200, verbose=0)
    assert np.all(np.isfinite(large.values))
    d = large.values - small.values
    assert d.mean() > 3 * d.std() / np.sqrt(len(x))
    with pytest.raises(ValueError, match="Categorical column 0"):
        evaluation.log_likelihood(model, np.where(np.arange(7) == 0, 5.0, x), k=2)


# ---------------------------------------------------------------------------
# Determinism, chunking, inputs and errors.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(binary_digits):
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(32,), seed=0)
    model.compile(keras.optimizers.Adam(3e-3))
    model.optimizer.build(model.trainable_variables)  # so a saved copy reloads cleanly
    return model


def test_deterministic_for_a_seed_and_chunk_size(small_model, binary_digits):
    x = binary_digits[1][:70]
    state = small_model.seed_generator.state.numpy().copy()
    a = evaluation.log_likelihood(small_model, x, k=300, chunk_size=64, batch_size=32, seed=3, verbose=0)
    b = evaluation.log_likelihood(small_model, x, k=300, chunk_size=64, batch_size=32, seed=3, verbose=0)
    c = evaluation.log_likelihood(small_model, x, k=300, chunk_size=64, batch_size=32, seed=4, verbose=0)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    # The model's own seed generator is not advanced.
    np.testing.assert_array_equal(small_model.seed_generator.state.numpy(), state)


def test_chunk_and_batch_sizes_agree_within_monte_carlo_error(small_model, binary_digits):
    x = binary_digits[1][:70]
    ref = evaluation.log_likelihood(small_model, x, k=600, chunk_size=600, batch_size=70, verbose=0)
    for chunk, batch in [(1, 70), (7, 16), (250, 100)]:
        other = evaluation.log_likelihood(small_model, x, k=600, chunk_size=chunk, batch_size=batch, verbose=0)
        se = np.sqrt(ref.mc_stderr**2 + other.mc_stderr**2)
        z = (other.values - ref.values) / se
        assert abs(np.mean(z)) < 4 / np.sqrt(len(x)), (chunk, batch)
        assert np.mean(np.abs(z) < 3) > 0.9, (chunk, batch)


def test_dataset_input_matches_arrays(small_model, binary_digits):
    x = binary_digits[1][:45]
    arrays = evaluation.log_likelihood(small_model, x, k=50, batch_size=20, verbose=0)
    labelled = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(13)
    from_ds = evaluation.log_likelihood(small_model, labelled, k=50, batch_size=20, verbose=0)
    np.testing.assert_allclose(from_ds.values, arrays.values, rtol=1e-6)
    unbatched = tf.data.Dataset.from_tensor_slices(x)
    np.testing.assert_allclose(
        evaluation.log_likelihood(small_model, unbatched, k=50, batch_size=20, verbose=0).values,
        arrays.values,
        rtol=1e-6,
    )


def test_progress_bar(small_model, binary_digits, capsys):
    evaluation.log_likelihood(small_model, binary_digits[1][:30], k=5, batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "30/30" in out and "log_px" in out


def test_bad_inputs_raise_clear_errors(small_model, binary_digits):
    x = binary_digits[1][:10]
    for k in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            evaluation.log_likelihood(small_model, x, k=k)
    with pytest.raises(ValueError, match="chunk_size"):
        evaluation.log_likelihood(small_model, x, k=5, chunk_size=0)
    with pytest.raises(ValueError, match=r"shape \[N, 64\].*\(10, 63\)"):
        evaluation.log_likelihood(small_model, x[:, :63], k=5)
    with pytest.raises(ValueError, match=r"shape \[N, 64\]"):
        evaluation.log_likelihood(small_model, tf.data.Dataset.from_tensor_slices(x[:, :60]).batch(4), k=5)
    with pytest.raises(ValueError, match="empty"):
        evaluation.log_likelihood(small_model, x[:0], k=5)
    with pytest.raises(ValueError, match="NaN"):
        evaluation.log_likelihood(small_model, np.where(np.eye(10, 64) > 0, np.nan, x), k=5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluation.log_likelihood(small_model, x * 3.0, k=5)
    with pytest.raises(ValueError, match="threshold|batch_size"):
        evaluation.active_units(small_model, x, batch_size=0)


# ---------------------------------------------------------------------------
# Active units.
# ---------------------------------------------------------------------------


def test_active_units_count_dead_and_weak_dimensions():
    rng = np.random.default_rng(0)
    x = rng.random((500, 8)).astype("float32")  # per-pixel variance 1/12
    model = keras_vae.VAE(8, latent_dim=6, hidden_dims=(), seed=0)
    head = model.recognition_heads[0]
    kernel = rng.normal(0, 2.0, (8, 6))
    kernel[:, [1, 4]] = 0.0  # dead: the mean ignores x
    kernel[:, 5] = 0.0
    kernel[0, 5] = 0.2  # weak: variance 0.04 / 12 = 0.0033
    head.loc_dense.kernel.assign(kernel.astype("float32"))
    head.loc_dense.bias.assign(rng.normal(size=6).astype("float32"))
    result = evaluation.active_units(model, x, batch_size=128)
    expected = np.var(x @ kernel, axis=0)
    np.testing.assert_allclose(result.variances[0], expected, rtol=1e-4, atol=1e-7)
    assert result.variances[0][1] == result.variances[0][4] == 0.0
    assert result.counts == [3] and result.total == 3
    assert evaluation.active_units(model, x, threshold=1e-3).counts == [4]
    assert result.as_dict()["active_units"] == [3]


def test_active_units_per_layer_of_a_hierarchy(binary_digits):
    model = keras_vae.HelmholtzMachine(
        64, latent_dims=(6, 3), hidden_dims=(), latent=["gaussian", "bernoulli"], objective="wake_sleep", seed=0
    )
    rng = np.random.default_rng(1)
    q1, q2 = model.recognition_heads
    k1 = rng.normal(0, 1.0, (64, 6))
    k1[:, :2] = 0.0  # two dead Gaussian units
    q1.loc_dense.kernel.assign(k1.astype("float32"))
    k2 = rng.normal(0, 3.0, (6, 3))
    k2[:, 0] = 0.0  # one dead Bernoulli unit; the others see the live h1 means
    q2.logits_dense.kernel.assign(k2.astype("float32"))
    result = evaluation.active_units(model, binary_digits[1])
    assert result.counts == [4, 2]
    assert [v.shape for v in result.variances] == [(6,), (3,)]
    # Bernoulli means are probabilities: variances at most 1/4.
    assert result.variances[1].max() <= 0.25


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
    exact = np.concatenate([_numpy(g).ravel() for g in tape.gradient(elbo, variables)])
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
    m = evaluation.gradient_moments(
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
        name: evaluation.gradient_moments(linear.model, x, est, n_samples=L, repeats=300, baseline=base, seed=2)
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
        evaluation.elbo_surrogate(small_model, x, "reinforce")
    with pytest.raises(ValueError, match="only applies to the 'score'"):
        evaluation.elbo_surrogate(small_model, x, "reparam_mc", baseline="moving_average")
    with pytest.raises(ValueError, match="n_samples >= 2"):
        evaluation.elbo_surrogate(small_model, x, "score", n_samples=1, baseline="leave_one_out")


# ---------------------------------------------------------------------------
# evaluate_model and the CLI.
# ---------------------------------------------------------------------------


def test_evaluate_model_and_cli(small_model, binary_digits, tmp_path, capsys):
    x = binary_digits[1][:80]
    metrics = evaluation.evaluate_model(small_model, x, k=50, seed=0)
    again = evaluation.evaluate_model(small_model, x, k=50, seed=0)
    assert metrics["elbo"] == again["elbo"] and metrics["log_px"] == again["log_px"]
    assert metrics["n_examples"] == 80 and metrics["k"] == 50
    assert metrics["log_px"] > metrics["elbo"]
    assert metrics["elbo"] == pytest.approx(metrics["reconstruction"] - metrics["kl"], abs=1e-3)
    assert len(metrics["active_units"]) == 1 and 0 <= metrics["active_units"][0] <= 4
    json.dumps(metrics)

    path = tmp_path / "model.keras"
    small_model.save(path)
    parser = evaluation.add_cli_arguments(argparse.ArgumentParser())
    out = tmp_path / "metrics.json"
    args = parser.parse_args(
        [str(path), "--dataset", "digits", "--binarization", "static", "--limit", "40", "--k", "20",
         "--out", str(out), "--verbose", "0"]
    )
    assert evaluation.run_cli(args) == 0
    written = json.loads(out.read_text())
    assert written["n_examples"] == 40 and written["k"] == 20 and written["dataset"] == "digits"
    assert written["log_px"] > written["elbo"] - 1.0
    assert "log p(x)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        evaluation.run_cli(parser.parse_args([str(tmp_path / "missing.keras")]))


# ---------------------------------------------------------------------------
# The Burda et al. harness at a tiny budget.
# ---------------------------------------------------------------------------


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_reproduce_burda_harness_tiny_budget(tmp_path):
    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        pytest.skip("set KERAS_VAE_MNIST_PATH to a local mnist.npz to run the Burda et al. harness")
    harness = _load_benchmark("reproduce_burda")
    out = tmp_path / "results.md"
    rows = harness.main(
        ["--passes", "1", "--limit-train", "500", "--limit-test", "100", "--k-eval", "50",
         "--rows", "1L-IWAE-k5", "--batch-size", "50", "--out", str(out)]
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "1L-IWAE-k5" and row["epochs"] == 1
    assert -400 < row["log_px"] < -80 and row["log_px"] >= row["elbo"] - 1.0
    table = out.read_text()
    assert "1L-IWAE-k5" in table and "-85.54" in table
    assert json.loads(out.with_suffix(".json").read_text())["rows"][0]["name"] == "1L-IWAE-k5"
