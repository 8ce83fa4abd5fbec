"""Evaluation: importance-sampled log p(x) against closed forms, active units,
evaluate_model, the deprecated diagnostics aliases and the Burda harness."""

import importlib.util
import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from _linear_gaussian import LinearGaussian
from _linear_gaussian import to_numpy as _numpy
from scipy.special import logsumexp

import keras_vae
from keras_vae import evaluation

REPO = pathlib.Path(__file__).resolve().parents[1]


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
    # k = 1 is one importance weight per image (std ~100 nats on an untrained
    # model): average ten independent draws so the test has the power to see
    # the rise, not a coin flip on the initial weights.
    small = np.mean([evaluation.log_likelihood(model, x, k=1, seed=s, verbose=0).values for s in range(10)], axis=0)
    large = evaluation.log_likelihood(model, x, k=300, verbose=0)
    d = large.values - small
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
        [
            rng.integers(0, 3, (200, 1)),
            rng.integers(0, 4, (200, 1)),
            rng.normal(size=(200, 2)),
            rng.random((200, 3)) < 0.5,
        ],
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
# evaluate_model; the deprecated diagnostics aliases.
# ---------------------------------------------------------------------------


def test_evaluate_model(small_model, binary_digits):
    x = binary_digits[1][:80]
    metrics = evaluation.evaluate_model(small_model, x, k=50, seed=0)
    again = evaluation.evaluate_model(small_model, x, k=50, seed=0)
    assert metrics["elbo"] == again["elbo"] and metrics["log_px"] == again["log_px"]
    assert metrics["n_examples"] == 80 and metrics["k"] == 50
    assert metrics["log_px"] > metrics["elbo"]
    assert metrics["elbo"] == pytest.approx(metrics["reconstruction"] - metrics["kl"], abs=1e-3)
    assert len(metrics["active_units"]) == 1 and 0 <= metrics["active_units"][0] <= 4
    json.dumps(metrics)


@pytest.mark.parametrize(
    "name", ["elbo_surrogate", "gradient_moments", "GradientMoments", "ESTIMATORS", "BASELINES"]
)
def test_moved_diagnostics_are_deprecated_aliases(name):
    from keras_vae import diagnostics

    with pytest.warns(DeprecationWarning, match=f"keras_vae.diagnostics.{name}"):
        old = getattr(evaluation, name)
    assert old is getattr(diagnostics, name)


def test_from_import_of_a_moved_name_warns():
    from keras_vae import diagnostics

    with pytest.warns(DeprecationWarning, match="moved to keras_vae.diagnostics"):
        from keras_vae.evaluation import gradient_moments
    assert gradient_moments is diagnostics.gradient_moments


def test_no_cli_and_no_other_names_in_evaluation():
    for name in ("add_cli_arguments", "run_cli", "no_such_name"):
        with pytest.raises(AttributeError, match=name):
            getattr(evaluation, name)


# ---------------------------------------------------------------------------
# The Burda et al. harness at a tiny budget.
# ---------------------------------------------------------------------------


def _load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cut_in_second_epoch(progress_class, run):
    """``run()`` killed (``KeyboardInterrupt``) when ``progress_class.on_epoch_end`` ends epoch 2.

    The progress callback runs before the checkpoint callback, so the last
    checkpoint is that of epoch 1.
    """
    original = progress_class.on_epoch_end

    def killed_in_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    progress_class.on_epoch_end = killed_in_second_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            run()
    finally:
        progress_class.on_epoch_end = original


@pytest.mark.slow
def test_reproduce_burda_harness_tiny_budget(tmp_path):
    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        pytest.skip("set KERAS_VAE_MNIST_PATH to a local mnist.npz to run the Burda et al. harness")
    harness = _load_benchmark("reproduce_burda")
    out = tmp_path / "results.md"
    argv = ["--schedule", "fast", "--epochs", "2", "--curve-every", "1", "--limit-train", "500",
            "--limit-test", "100", "--k-eval", "50", "--rows", "1L-IWAE-k5", "--batch-size", "50", "--out", str(out)]
    rows = harness.main(argv)
    assert len(rows) == 1
    row = rows[0]
    assert row["row"] == "1L-IWAE-k5" and row["epochs"] == 2 and row["test_images"] == 100 and row["k_eval"] == 50
    assert -400 < row["test_log_px"] < -80 and row["test_log_px"] >= row["test_elbo"] - 1.0
    assert row["train_seconds"] > 0
    table = out.read_text()
    assert "1L-IWAE-k5" in table and "-85.54" in table
    assert json.loads(out.with_suffix(".json").read_text())[0]["row"] == "1L-IWAE-k5"
    curve = [json.loads(line) for line in (tmp_path / "results_curve.jsonl").read_text().splitlines()]
    assert [p["epoch"] for p in curve] == [1, 2] and all(p["test_elbo"] < 0 for p in curve)
    assert (tmp_path / "results_curve.png").exists()
    assert not (tmp_path / "results_backup" / "1L-IWAE-k5").exists()  # removed once the row is done
    # A second run with the same budget skips the finished row.
    assert harness.main(argv)[0]["train_seconds"] == row["train_seconds"]


@pytest.mark.slow
def test_reproduce_burda_resumes_a_cut_row(tmp_path, capsys):
    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        pytest.skip("set KERAS_VAE_MNIST_PATH to a local mnist.npz to run the Burda et al. harness")
    harness = _load_benchmark("reproduce_burda")
    out = tmp_path / "results.md"
    common = ["--schedule", "fast", "--curve-every", "0", "--limit-train", "300", "--limit-test", "50",
              "--k-eval", "10", "--rows", "1L-VAE-k1", "--batch-size", "100", "--out", str(out)]

    _cut_in_second_epoch(harness.RowProgress, lambda: harness.main(common + ["--epochs", "3"]))
    assert not out.with_suffix(".json").exists()
    capsys.readouterr()
    rows = harness.main(common + ["--epochs", "3"])
    assert "1L-VAE-k1: resumed after epoch 1" in capsys.readouterr().out
    log = [json.loads(line) for line in out.with_suffix(".log").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 2, 3]
    # The row's training time continues from the first attempt's epoch 1.
    assert log[2]["train_seconds"] > log[0]["train_seconds"]
    assert rows[0]["train_seconds"] == pytest.approx(log[3]["train_seconds"], abs=1e-3) and rows[0]["epochs"] == 3


@pytest.mark.slow
def test_rws_bornschein_continues_a_row_under_a_larger_time_limit(tmp_path, capsys):
    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        pytest.skip("set KERAS_VAE_MNIST_PATH to a local mnist.npz to run the Bornschein & Bengio harness")
    harness = _load_benchmark("rws_bornschein")
    out = tmp_path / "rws.json"
    common = ["--rows", "5-20", "--k-train", "2", "--epochs", "4", "--limit-train", "300", "--valid-images", "50",
              "--k-valid", "5", "--limit-test", "20", "--k-eval", "10", "--out", str(out)]  # fmt: skip

    _cut_in_second_epoch(harness.Progress, lambda: harness.main(common + ["--minutes", "5"]))
    capsys.readouterr()
    # Cut during training: a new time limit continues the checkpoint (here already out of time: 1 epoch).
    assert harness.main(common + ["--minutes", "1e-6"]) == 0
    printed = capsys.readouterr().out
    assert "continuing the row cut during training" in printed and "resumed after epoch 1" in printed
    first = json.loads(out.read_text())
    assert [r["epochs_done"] for r in first] == [1]
    assert (tmp_path / "rws_backup" / "5-20-k2" / "trained.weights.h5").exists()  # kept to be extended
    # A larger limit extends the finished row from its last epoch; the full row's backup is removed.
    assert harness.main(common + ["--minutes", "5", "--valid-every", "2"]) == 0
    printed = capsys.readouterr().out
    assert "extending the row trained for 1e-06 minutes" in printed and "resumed after epoch 1" in printed
    rows = json.loads(out.read_text())
    assert [r["epochs_done"] for r in rows] == [1, 4] and rows[1]["train_seconds"] > rows[0]["train_seconds"]
    assert [r["budget"]["minutes"] for r in rows] == [1e-6, 5]
    log = [json.loads(line) for line in out.with_suffix(".log").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 2, 3, 4]
    # Validation every 2 epochs (and at a row's last epoch).
    assert [r["valid_log_px"] is not None for r in log] == [True, True, True, False, True]
    assert not (tmp_path / "rws_backup" / "5-20-k2").exists()
