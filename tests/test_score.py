"""Anomaly scores: ``scoring.scores`` against closed forms, ``threshold``, and ``keras-vae score``."""

import json

import keras
import numpy as np
import pytest
from _linear_gaussian import LinearGaussian

import keras_vae
from keras_vae import cli
from keras_vae import scoring


def _numpy(outputs):
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in outputs.items()}


def test_exact_posterior_scores_are_log_px():
    """With q = the exact posterior every weight is p(x): ELBO = log p(x) = the closed form, any k."""
    lg = LinearGaussian()
    x = lg.sample(20)
    out = _numpy(scoring.scores(lg.model, x, k=3, seed=0))
    np.testing.assert_allclose(out["log_px"], lg.log_px(x), atol=2e-4)
    np.testing.assert_allclose(out["elbo"], lg.log_px(x), atol=2e-4)


def test_approximate_posterior_elbo_and_bound():
    """A widened, shifted posterior: elbo averages to the closed-form ELBO; log_px tightens with k."""
    lg = LinearGaussian()
    lg.set_posterior(loc_shift=0.3, scale_factor=1.5)
    x = lg.sample(50)
    exact_elbo = keras.ops.convert_to_numpy(lg.elbo(x))
    big = _numpy(scoring.scores(lg.model, x, k=2000, seed=1))
    # Monte Carlo means of 2000 samples (standard error ~0.05 per example): within ~5 standard
    # errors per example, and their average over 50 examples within ~5 of its standard errors.
    np.testing.assert_allclose(big["elbo"], exact_elbo, atol=0.25)
    assert abs(np.mean(big["elbo"] - exact_elbo)) < 0.04
    np.testing.assert_allclose(big["log_px"], lg.log_px(x), atol=0.15)
    assert abs(np.mean(big["log_px"] - lg.log_px(x))) < 0.03
    small = _numpy(scoring.scores(lg.model, x, k=2, seed=1))
    assert np.mean(small["log_px"]) < np.mean(big["log_px"]) <= np.mean(lg.log_px(x)) + 0.01
    assert np.all(big["log_px"] >= big["elbo"])


def test_scores_are_seeded_and_sample_major():
    model = keras_vae.VAE(6, latent_dim=2, hidden_dims=(8,), seed=0)
    x = np.random.default_rng(0).random((4, 6)).astype("float32")
    a, b, c = (_numpy(scoring.scores(model, x, k=5, seed=s)) for s in (3, 3, 4))
    np.testing.assert_array_equal(a["log_px"], b["log_px"])
    assert not np.array_equal(a["log_px"], c["log_px"])
    # The same draws as model.terms(x, k): k samples per example, sample-major.
    terms = model.terms(x, 5, analytic_kl=False, seed=scoring.SeedSequence(3))
    log_w = keras.ops.convert_to_numpy(keras_vae.objectives.log_weights(terms))
    np.testing.assert_allclose(a["elbo"], log_w.mean(axis=0), rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        scoring.scores(model, x, k=0)


def test_threshold():
    assert scoring.threshold([-90.0, -80.0, -85.0, -100.0], quantile=0.25) == pytest.approx(-92.5)
    with pytest.raises(ValueError, match="quantile"):
        scoring.threshold([1.0], quantile=1.0)
    with pytest.raises(ValueError, match="finite"):
        scoring.threshold([1.0, np.nan])


@pytest.fixture(scope="module")
def saved_model_path(trained_vae_path):
    return trained_vae_path


def test_cli_score_writes_per_example_scores(saved_model_path, tmp_path, capsys):
    out = tmp_path / "scores"
    argv = ["score", str(saved_model_path), "--dataset", "digits", "--split", "test", "--limit", "40"]
    assert cli.main([*argv, "--k", "8", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    table = np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1)
    assert (out / "scores.csv").read_text().splitlines()[0] == "index,elbo,log_px,log_px_mc_stderr,ess"
    assert table.shape == (40, 5) and np.array_equal(table[:, 0], np.arange(40))
    assert np.all(table[:, 2] >= table[:, 1] - 1e-4)  # log p(x) estimate >= ELBO, per example
    assert np.all((table[:, 4] >= 1.0 - 1e-3) & (table[:, 4] <= 8.0 + 1e-3))  # ESS in [1, k]
    # The same estimator as keras_vae.evaluation.log_likelihood.
    model = keras.saving.load_model(saved_model_path)
    x, _ = keras_vae.datasets.load_arrays("digits", "test")
    expected = keras_vae.evaluation.log_likelihood(model, x[:40], k=8, seed=0, verbose=0)
    np.testing.assert_allclose(table[:, 2], expected.values, atol=2e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_examples"] == 40 and summary["k"] == 8
    assert summary["log_px"]["quantiles"]["0.01"] == pytest.approx(np.quantile(table[:, 2], 0.01), abs=1e-5)
    # A previous --out is never overwritten silently.
    assert cli.main([*argv, "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(out), "--overwrite", "--seed", "1"]) == 0
    assert not np.array_equal(np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1)[:, 2], table[:, 2])
