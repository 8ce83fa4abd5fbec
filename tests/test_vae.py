"""VAE: training raises the ELBO, metrics add up, round trips, bad input."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_test_base import ModelTestBase

import keras_vae

CONFIGS = {
    "diag_bernoulli": dict(likelihood="bernoulli"),
    "full_bernoulli": dict(covariance="full"),
    "gaussian": dict(likelihood="gaussian", kl="mc", n_samples=2),
    "categorical": dict(likelihood="categorical"),
    "mixed": dict(likelihood="mixed"),
    "conv": dict(conv=True),
}


def _make(config, input_dim=64):
    config = dict(config)
    if config.pop("conv", False):
        config["encoder"] = keras_vae.networks.conv_encoder((8, 8), filters=(4,), dense=16)
        config["decoder"] = keras_vae.networks.conv_decoder((8, 8), filters=(4,), out_channels=2)
    if config.get("likelihood") == "categorical":
        config["likelihood"] = keras_vae.CategoricalObservation([3] * input_dim)
    if config.get("likelihood") == "mixed":
        half = input_dim // 2
        config["likelihood"] = keras_vae.MixedObservation(
            [keras_vae.BernoulliObservation(half), keras_vae.GaussianObservation(input_dim - half - 2),
             keras_vae.CategoricalObservation([3, 4])]
        )
    return keras_vae.VAE(input_dim, latent_dim=3, hidden_dims=(16,), seed=0, **config)


def _data(config, x):
    likelihood = config.get("likelihood")
    if likelihood == "categorical":
        return np.round(x * 2).astype("float32")
    if likelihood == "mixed":
        x = x.copy()
        x[:, -2] = np.round(x[:, -2] * 2)
        x[:, -1] = np.round(x[:, -1] * 3)
        return x
    return x


class TestVAE(ModelTestBase):
    @pytest.mark.parametrize("name", sorted(CONFIGS))
    def test_serialization(self, name):
        self.run_serialization_test(_make(CONFIGS[name]))

    @pytest.mark.parametrize("name", sorted(CONFIGS))
    def test_fit_predict_save_load(self, name, digits, tmp_path):
        model, x = _make(CONFIGS[name]), _data(CONFIGS[name], digits[0][:96])
        self.run_fit_predict_test(model, x, epochs=1)
        self.run_save_load_test(model, x, tmp_path)

    def test_fit_raises_test_elbo(self, binary_digits):
        train, test = binary_digits
        model = keras_vae.VAE(64, latent_dim=8, hidden_dims=(64,), seed=0)
        model.compile(keras.optimizers.Adam(3e-3))
        before = model.evaluate(test, batch_size=100, verbose=0, return_dict=True)
        model.fit(train, epochs=15, batch_size=50, verbose=0)
        after = model.evaluate(test, batch_size=100, verbose=0, return_dict=True)
        # At initialisation the ELBO is about -45 nats; trained, about -28.
        assert after["elbo"] > before["elbo"] + 10.0, (before, after)
        np.testing.assert_allclose(after["elbo"], after["reconstruction"] - after["kl"], rtol=1e-5)
        assert after["kl"] > 1.0
        assert after["loss"] == pytest.approx(-after["elbo"])


def test_loss_is_negative_elbo_averaged_over_examples(digits):
    x = digits[0][:40]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0, n_samples=3, beta=1.0)
    terms = model.terms(x, k=3)
    losses, metrics = model.objective_losses(x)
    parts = keras_vae.objectives.elbo(terms)
    assert losses["all"].shape == (40,)
    # Same seed state is not reused, so compare the structure: loss = rec - kl per example.
    np.testing.assert_allclose(metrics["loss"], -(metrics["reconstruction"] - metrics["kl"]), rtol=1e-5)
    assert parts["elbo"].shape == (40,)


def test_beta_weights_the_kl_in_the_loss_only(digits):
    x = digits[0][:20]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0, beta=4.0)
    _, metrics = model.objective_losses(x)
    np.testing.assert_allclose(metrics["loss"], -(metrics["reconstruction"] - 4.0 * metrics["kl"]), rtol=1e-5)


def test_kl_warmup_raises_the_kl_weight_linearly_per_step(digits):
    x = digits[0][:20]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0, beta=2.0, kl_warmup_steps=4)
    model.compile(keras.optimizers.Adam(1e-3))
    for step in range(6):
        logs = model.train_on_batch(x, return_dict=True)
        weight = 2.0 * min(1.0, step / 4)
        assert logs["kl_weight"] == pytest.approx(weight)
        assert logs["loss"] == pytest.approx(-(logs["reconstruction"] - weight * logs["kl"]), rel=1e-5)
    # Evaluation reports the ELBO whatever the weight.
    result = model.evaluate(x, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(-result["elbo"])
    assert "kl_weight" not in result


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla_fused"])
def test_kl_warmup_follows_the_optimizer_step_inside_an_execution(digits, jit_compile):
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0, kl_warmup_steps=8)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile, steps_per_execution=4)
    history = model.fit(digits[0][:64], batch_size=4, epochs=2, shuffle=False, verbose=0)
    # Epoch means of min(1, i / 8) over steps i = 0..15, then 16..31.
    assert history.history["kl_weight"] == pytest.approx([(28 / 8 + 8) / 16, 1.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kl_warmup_steps=-1), "non-negative integer"),
        (dict(kl_warmup_steps=2.5), "non-negative integer"),
        (dict(kl_warmup_steps=10, objective="iwae", n_samples=2), "'elbo' objective"),
    ],
)
def test_kl_warmup_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_vae.HelmholtzMachine(64, latent_dims=(4,), hidden_dims=(8,), **kwargs)


def test_sample_is_reproducible_with_a_seed():
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    a, b, c = model.sample(5, seed=3), model.sample(5, seed=3), model.sample(5, seed=4)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(a["z"], c["z"])
    assert a["x_mean"].shape == (5, 64) and set(np.unique(a["x"])) <= {0.0, 1.0}


def test_mc_and_analytic_kl_agree_in_expectation(digits):
    x = digits[0][:200]
    model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
    analytic = keras_vae.objectives.elbo(model.terms(x, k=500))["kl"]
    mc = keras_vae.objectives.elbo(model.terms(x, k=500, analytic_kl=False))["kl"]
    np.testing.assert_allclose(np.mean(mc), np.mean(analytic), rtol=0.02)


def test_load_in_fresh_process_gives_same_decode(digits, tmp_path):
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(optimizer="adam")
    model.fit(digits[0][:64], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    z = np.linspace(-2, 2, 10, dtype="float32").reshape(5, 2)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "expected.npy", keras.ops.convert_to_numpy(model.decode(z)["mean"]))
    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import keras_vae
        m = keras.saving.load_model(r"{tmp_path / 'm.keras'}", safe_mode=True)
        out = keras.ops.convert_to_numpy(m.decode(np.load(r"{tmp_path / 'z.npy'}"))["mean"])
        np.testing.assert_allclose(out, np.load(r"{tmp_path / 'expected.npy'}"), atol=1e-6)
        m.fit(np.full((8, 64), 0.5, "float32"), epochs=1, verbose=0)
        print("OK", type(m).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK VAE" in result.stdout


class TestBadInput:
    @pytest.fixture
    def model(self):
        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        model.compile(optimizer="adam")
        return model

    def test_wrong_feature_size(self, model):
        with pytest.raises(ValueError, match=r"shape \[batch, 64\]"):
            model.fit(np.zeros((10, 63), "float32"), verbose=0)

    def test_images_not_flattened(self, model):
        with pytest.raises(ValueError, match="Flatten"):
            model.fit(np.zeros((10, 8, 8), "float32"), verbose=0)

    def test_nan_values(self, model):
        x = np.zeros((10, 64), "float32")
        x[3, 5] = np.nan
        with pytest.raises(ValueError, match="NaN/inf.*row 3, column 5"):
            model.fit(x, verbose=0)

    def test_out_of_range_for_bernoulli(self, model):
        with pytest.raises(ValueError, match="Bernoulli likelihood needs data in \\[0, 1\\]"):
            model.fit(np.full((10, 64), 255.0, "float32"), verbose=0)

    def test_empty_array(self, model):
        with pytest.raises(ValueError, match="empty"):
            model.fit(np.zeros((0, 64), "float32"), verbose=0)

    def test_empty_dataset(self, model):
        ds = tf.data.Dataset.from_tensor_slices(np.zeros((0, 64), "float32")).batch(4)
        with pytest.raises(ValueError, match="dataset is empty"):
            model.fit(ds, verbose=0)

    def test_bad_dataset_batch_checked(self, model):
        ds = tf.data.Dataset.from_tensor_slices(np.full((8, 64), 2.0, "float32")).batch(4)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            model.fit(ds, verbose=0)

    def test_validation_data_checked(self, model):
        with pytest.raises(ValueError, match="NaN"):
            model.fit(np.zeros((8, 64), "float32"), validation_data=np.full((4, 64), np.inf, "float32"), verbose=0)

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(likelihood="poisson"), "Unknown likelihood"),
            (dict(covariance="banded"), "covariance"),
            (dict(kl="exact"), "kl must be"),
            (dict(n_samples=0), "n_samples"),
            (dict(latent_dim=0), "latent"),
        ],
    )
    def test_unknown_options(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            keras_vae.VAE(64, **kwargs)

    def test_nan_loss_stops_training(self):
        model = keras_vae.VAE(4, latent_dim=2, hidden_dims=(4,), likelihood="gaussian", seed=0)
        model.compile(optimizer="adam")
        with pytest.raises(FloatingPointError, match="loss became"):
            model.fit(np.full((64, 4), 1e25, "float32"), epochs=3, batch_size=16, verbose=0)
        assert model.optimizer.iterations.numpy() <= 1


def test_a_seed_fixes_the_initial_weights_and_leaves_global_random_state_alone():
    import random

    state = random.getstate()
    a = keras_vae.HelmholtzMachine(16, latent_dims=(4, 2), hidden_dims=(8,), seed=3)
    assert random.getstate() == state
    b = keras_vae.HelmholtzMachine(16, latent_dims=(4, 2), hidden_dims=(8,), seed=3)
    c = keras_vae.HelmholtzMachine(16, latent_dims=(4, 2), hidden_dims=(8,), seed=4)
    unseeded = [keras_vae.VAE(16, latent_dim=2, hidden_dims=(8,)) for _ in range(2)]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    kernels = [w for w in a.get_weights() if w.ndim == 2]
    assert all(not np.array_equal(wa, wc) for wa, wc in zip(kernels, [w for w in c.get_weights() if w.ndim == 2]))
    # Layers of the same shape inside one model get different initial weights.
    assert not np.array_equal(a.recognition_heads[1].loc_dense.kernel.numpy(),
                              a.generative_heads[0].loc_dense.kernel.numpy()[:, :2])
    assert not np.array_equal(unseeded[0].get_weights()[0], unseeded[1].get_weights()[0])


@pytest.mark.slow
def test_the_same_seed_trains_the_same_weights(digits):
    from keras_vae import datasets

    def train():
        model = keras_vae.HelmholtzMachine(64, latent_dims=(8, 4), hidden_dims=(16,), seed=7)
        model.compile(keras.optimizers.Adam(1e-3), jit_compile=True)
        model.fit(datasets.load("digits", "train", batch_size=100, binarization="dynamic", seed=7), epochs=2, verbose=0)
        return model.get_weights()

    first, second = train(), train()
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
