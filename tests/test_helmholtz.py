"""Helmholtz machines: shared core with the VAE, IWAE, wake-sleep, routing."""

import itertools
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_test_base import ModelTestBase
from scipy.special import logsumexp

import keras_vae
from keras_vae import objectives

CONFIGS = {
    "elbo_gaussian": dict(objective="elbo"),
    "elbo_kl_warmup": dict(objective="elbo", kl_warmup_steps=5),
    "iwae_gaussian": dict(objective="iwae", n_samples=3),
    "wake_sleep_bernoulli": dict(objective="wake_sleep", latent="bernoulli"),
    "wake_sleep_gaussian": dict(objective="wake_sleep"),
    "rws_bernoulli": dict(objective="reweighted_wake_sleep", latent="bernoulli", n_samples=3),
    "rws_mixed_families_no_sleep": dict(
        objective="reweighted_wake_sleep", latent=["gaussian", "bernoulli"], n_samples=2, sleep_q=False
    ),
}


def _make(name, input_dim=64, **overrides):
    kwargs = dict(latent_dims=(8, 4), hidden_dims=(16,), seed=0)
    kwargs.update(CONFIGS[name])
    kwargs.update(overrides)
    return keras_vae.HelmholtzMachine(input_dim, **kwargs)


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


class TestHelmholtzMachine(ModelTestBase):
    @pytest.mark.parametrize("name", sorted(CONFIGS))
    def test_serialization(self, name):
        self.run_serialization_test(_make(name))

    @pytest.mark.parametrize("name", sorted(CONFIGS))
    def test_fit_predict_save_load(self, name, binary_digits, tmp_path):
        model, x = _make(name), binary_digits[0][:96]
        history = self.run_fit_predict_test(model, x, epochs=1)
        expected = {
            "elbo_gaussian": set(),
            "elbo_kl_warmup": {"kl_weight"},
            "iwae_gaussian": {"iwae_bound"},
            "wake_sleep_bernoulli": {"wake_loss", "sleep_loss"},
            "wake_sleep_gaussian": {"wake_loss", "sleep_loss"},
            "rws_bernoulli": {"wake_p_loss", "wake_q_loss", "sleep_loss"},
            "rws_mixed_families_no_sleep": {"wake_p_loss", "wake_q_loss"},
        }[name]
        assert set(history.history) == {"loss", "elbo", "reconstruction", "kl"} | expected
        self.run_save_load_test(model, x, tmp_path)

    def test_custom_networks_round_trip(self, binary_digits, tmp_path):
        mlp = keras_vae.networks.mlp
        model = keras_vae.HelmholtzMachine(
            64,
            latent_dims=(6, 3),
            recognition_networks=[mlp([12], "relu", name="enc0"), mlp([], name="enc1")],
            generative_networks=[mlp([12], "relu", name="dec0"), mlp([5], name="dec1")],
        )
        self.run_serialization_test(model)
        self.run_save_load_test(model, binary_digits[0][:64], tmp_path)


def test_one_layer_helmholtz_machine_is_the_vae(binary_digits):
    x = binary_digits[0][:32]
    vae = keras_vae.VAE(64, latent_dim=3, hidden_dims=(16,), seed=7, n_samples=2)
    hm = keras_vae.HelmholtzMachine(64, latent_dims=(3,), hidden_dims=(16,), objective="elbo", seed=7, n_samples=2)
    hm.set_weights(vae.get_weights())
    vae_losses, vae_metrics = vae.objective_losses(x)
    hm_losses, hm_metrics = hm.objective_losses(x)
    np.testing.assert_allclose(_numpy(hm_losses["all"]), _numpy(vae_losses["all"]), rtol=1e-6)
    for name in ("elbo", "reconstruction", "kl"):
        np.testing.assert_allclose(_numpy(hm_metrics[name]), _numpy(vae_metrics[name]), rtol=1e-6)


def test_iwae_bound_above_elbo_and_rising_with_k(binary_digits):
    x = binary_digits[1][:100]
    model = keras_vae.HelmholtzMachine(64, latent_dims=(8, 4), hidden_dims=(16,), objective="iwae", seed=0)
    model.compile(optimizer="adam")
    model.fit(binary_digits[0], epochs=2, batch_size=50, verbose=0)
    # 20 independent estimates of each bound's mean over the 100 images, drawn in one call
    # (the images repeated 20 times).
    repeats = 20
    tiled = np.tile(x, (repeats, 1))

    def estimates(values):
        return _numpy(values).reshape(repeats, len(x)).mean(axis=1)

    bounds = {}
    for k in (1, 5, 50):
        values = estimates(objectives.iwae(model.terms(tiled, k, analytic_kl=False)))
        bounds[k] = (np.mean(values), np.std(values) / np.sqrt(repeats))
    elbo = np.mean(estimates(objectives.elbo(model.terms(tiled, 1))["elbo"]))
    # k = 1 is the Monte Carlo ELBO; the analytic-KL ELBO has the same mean.
    assert abs(bounds[1][0] - elbo) < 4 * bounds[1][1] + 0.05
    assert bounds[5][0] > bounds[1][0] + 3 * bounds[1][1]
    assert bounds[50][0] > bounds[5][0] + 3 * bounds[5][1]


def test_gradient_routing_of_wake_and_sleep(binary_digits):
    x = tf.constant(binary_digits[0][:16])
    model = _make("wake_sleep_bernoulli")
    generative = {id(v) for v in model.generative_variables}
    recognition = {id(v) for v in model.recognition_variables}
    assert not generative & recognition
    assert generative | recognition == {id(v) for v in model.trainable_variables}
    with tf.GradientTape(persistent=True) as tape:
        losses, _ = model.objective_losses(x)
        wake, sleep = tf.reduce_mean(losses["generative"]), tf.reduce_mean(losses["recognition"])
    # The wake phase reaches only p's weights, the sleep phase only q's.
    assert all(g is None for g in tape.gradient(wake, model.recognition_variables))
    assert all(g is None for g in tape.gradient(sleep, model.generative_variables))
    assert all(g is not None for g in tape.gradient(wake, model.generative_variables))
    assert all(g is not None for g in tape.gradient(sleep, model.recognition_variables))


def test_reweighted_wake_sleep_routing(binary_digits):
    x = tf.constant(binary_digits[0][:16])
    model = _make("rws_bernoulli")
    with tf.GradientTape(persistent=True) as tape:
        losses, _ = model.objective_losses(x)
        wake_p, q_loss = tf.reduce_mean(losses["generative"]), tf.reduce_mean(losses["recognition"])
    assert all(g is None for g in tape.gradient(wake_p, model.recognition_variables))
    assert all(g is None for g in tape.gradient(q_loss, model.generative_variables))


def _exact_log_px(model, x):
    """log p(x) of a binary Helmholtz machine by enumerating every h."""
    dims = model.latent_dims
    configs = np.array(list(itertools.product([0.0, 1.0], repeat=sum(dims))), "float32")
    n = len(configs)
    samples = np.split(configs, np.cumsum(dims)[:-1], axis=1)
    values = []
    for row in x:
        log_px, log_p, _ = model.generative_log_probs(np.repeat(row[None], n, 0), samples)
        values.append(logsumexp(_numpy(log_px + sum(log_p))))
    return np.array(values)


def test_wake_sleep_raises_the_data_log_likelihood():
    # Data drawn from a small two-layer sigmoid belief network.
    rng = np.random.default_rng(0)
    w2, w1 = rng.normal(0, 3, (2, 4)), rng.normal(0, 3, (4, 10))
    h2 = (rng.random((2000, 2)) < 0.5).astype("float32")
    h1 = (rng.random((2000, 4)) < 1 / (1 + np.exp(-(h2 @ w2 - 1)))).astype("float32")
    x = (rng.random((2000, 10)) < 1 / (1 + np.exp(-(h1 @ w1 - 1)))).astype("float32")

    model = keras_vae.HelmholtzMachine(
        10, latent_dims=(4, 2), hidden_dims=(), latent="bernoulli", objective="wake_sleep", seed=0
    )
    model.compile(keras.optimizers.Adam(0.02))
    before = _exact_log_px(model, x[:200]).mean()
    model.fit(x, epochs=15, batch_size=50, verbose=0)
    after = _exact_log_px(model, x[:200]).mean()
    # Exact log p(x) under the model, by enumeration: about -6.9 nats before.
    assert after > before + 1.0, (before, after)


def test_bernoulli_latents_sample_binary_values():
    model = _make("wake_sleep_bernoulli")
    out = model.sample(20, seed=0)
    assert set(np.unique(_numpy(out["z"]))) <= {0.0, 1.0}
    samples, _, _ = model.recognize(np.full((5, 64), 0.5, "float32"), k=3)
    assert all(set(np.unique(_numpy(h))) <= {0.0, 1.0} for h in samples)
    assert samples[0].shape == (15, 8)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_reparameterised_objectives_reject_bernoulli_layers(objective):
    with pytest.raises(ValueError, match="Bernoulli.*wake_sleep"):
        keras_vae.HelmholtzMachine(64, latent=["gaussian", "bernoulli"], objective=objective)


def test_unknown_objective_and_mismatched_layer_lists():
    with pytest.raises(ValueError, match="Unknown objective"):
        keras_vae.HelmholtzMachine(64, objective="contrastive")
    with pytest.raises(ValueError, match="latent has 3 entries"):
        keras_vae.HelmholtzMachine(64, latent_dims=(4, 2), latent=["gaussian"] * 3)
    with pytest.raises(ValueError, match="recognition_networks needs 2"):
        keras_vae.HelmholtzMachine(64, latent_dims=(4, 2), recognition_networks=[keras_vae.networks.mlp([4])])


def test_evaluate_reports_comparable_metrics_and_log_px(binary_digits):
    model = _make("wake_sleep_bernoulli", eval_samples=20)
    model.compile(optimizer="adam")
    result = model.evaluate(binary_digits[1], verbose=0, return_dict=True)
    assert set(result) == {"loss", "elbo", "reconstruction", "kl", "log_px"}
    assert result["loss"] == pytest.approx(-result["elbo"])
    assert result["log_px"] >= result["elbo"] - 0.5


def test_a_collapsed_layer_is_reported_once_with_advice():
    # A top layer fed by a constant input has no unit that varies with x.
    x = (np.random.default_rng(0).random((200, 16)) < 0.3).astype("float32")
    model = keras_vae.HelmholtzMachine(16, latent_dims=(4, 3), hidden_dims=(8,), objective="wake_sleep", seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    monitor = keras_vae.callbacks.CollapseMonitor(x, start_epoch=1, start_step=0)
    recognition_2 = model.recognition_networks[1]
    for weight in recognition_2.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    recognition_2.trainable = False  # h_2's posterior ignores h_1, hence x
    with pytest.warns(keras_vae.callbacks.LayerCollapseWarning, match=r"layer 2 of 2 \(h_2, 3 units\)") as caught:
        model.fit(x, epochs=3, batch_size=50, verbose=0, callbacks=[monitor])
    collapse = [w for w in caught if issubclass(w.category, keras_vae.callbacks.LayerCollapseWarning)]
    assert len(collapse) == 1  # once, not every epoch
    assert "reweighted_wake_sleep" in str(collapse[0].message)  # the objective's advice
    assert monitor.warned == {2}
    counts = [active for active, _ in monitor.layer_report()]
    assert counts[1] == 0 and counts[0] > 0


def test_the_collapse_monitor_waits_for_start_step():
    # The same collapsed layer, but 12 steps are too few to judge: no warning.
    x = (np.random.default_rng(0).random((200, 16)) < 0.3).astype("float32")
    model = keras_vae.HelmholtzMachine(16, latent_dims=(4, 3), hidden_dims=(8,), objective="wake_sleep", seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    for weight in model.recognition_networks[1].weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    monitor = keras_vae.callbacks.CollapseMonitor(x, start_epoch=1, start_step=13)
    with warnings.catch_warnings():
        warnings.simplefilter("error", keras_vae.callbacks.LayerCollapseWarning)
        model.fit(x, epochs=3, batch_size=50, verbose=0, callbacks=[monitor])  # 12 steps
    assert monitor.warned == set()
    with pytest.warns(keras_vae.callbacks.LayerCollapseWarning, match="layer 2 of 2"):
        model.fit(x, epochs=1, batch_size=50, verbose=0, callbacks=[monitor])  # steps 13-16


@pytest.mark.slow
def test_a_wake_sleep_sigmoid_belief_net_uses_every_layer_and_samples_diversely():
    # MNIST, the two-layer Burda architecture with binary units, 5 epochs of
    # wake-sleep with the default recognition delay. Without the delay the same
    # run ends with h_2 unused (0 active units) and samples about 2.2 apart
    # against 11.2 for test images (benchmarks/wake_sleep_delay.py).
    import os

    from keras_vae import datasets
    from keras_vae import evaluation
    from keras_vae import presets

    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        pytest.skip("needs a local MNIST (KERAS_VAE_MNIST_PATH)")
    model = presets.from_preset("burda_2layer", latent="bernoulli", objective="wake_sleep", seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=True)
    model.fit(datasets.load("mnist", "train", binarization="dynamic", seed=0), epochs=5, verbose=0)
    x_test = datasets.binarize_test(datasets.load_arrays("mnist", "test")[0][:1000])
    counts = evaluation.active_units(model, x_test).counts
    assert min(counts) >= 1, counts  # every stochastic layer varies with the data
    samples = np.asarray(model.sample(200, seed=0)["x_mean"])
    distance = np.sqrt(((samples[:, None] - samples[None]) ** 2).sum(-1)).mean()
    data = np.sqrt(((x_test[:200, None] - x_test[None, :200]) ** 2).sum(-1)).mean()
    assert distance > 0.35 * data, (distance, data)  # samples differ from each other
    elbo = model.evaluate(x_test, verbose=0, return_dict=True)["elbo"]
    assert elbo > -170.0  # without the delay: -187 at this budget


@pytest.mark.slow
@pytest.mark.parametrize("latent", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("objective", ["wake_sleep", "reweighted_wake_sleep"])
def test_wake_sleep_family_uses_both_layers_with_the_defaults(objective, latent):
    # The 8x8 digits, a two-layer machine, 100 epochs (1,500 steps): with the
    # defaults (Glorot kernels for this family, the 1,000-step recognition
    # delay) both layers carry information and samples differ. With fan-in
    # uniform kernels the Gaussian top layer had 0 active units here.
    from keras_vae import datasets
    from keras_vae import evaluation

    x = datasets.binarize(datasets.load_arrays("digits", "train")[0], "threshold")
    x_test = datasets.binarize(datasets.load_arrays("digits", "test")[0], "threshold")
    n_samples = 5 if objective == "reweighted_wake_sleep" else 1
    model = keras_vae.HelmholtzMachine(
        64, latent_dims=(16, 8), hidden_dims=(200, 200), objective=objective, latent=latent, n_samples=n_samples, seed=0
    )
    model.compile(keras.optimizers.Adam(1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", keras_vae.callbacks.LayerCollapseWarning)
        model.fit(x, epochs=100, batch_size=100, verbose=0)
    counts = evaluation.active_units(model, x_test).counts
    assert min(counts) >= 1, counts

    def spread(a):
        a = np.asarray(a).reshape(len(a), -1)
        return np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1)).mean()

    ratio = spread(model.sample(200, seed=0)["x_mean"]) / spread(x_test[:200])
    assert ratio > 0.4, ratio  # 0.55-0.70 in runs of this test; a collapsed model's samples are alike
