"""Image-shaped data: models over [N, H, W, C], per-pixel heads, the discretised logistic."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_test_base import ModelTestBase
from scipy import special
from scipy import stats

import keras_vae
from keras_vae import evaluation
from keras_vae import heads
from keras_vae import networks
from keras_vae import plotting
from keras_vae import presets

SHAPE = (8, 8, 1)


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


# === The discretised logistic ===


def _reference_log_prob(x, loc, scale, log_weights, bins=256):
    """log P(x) of a discretised logistic mixture, in float64 with scipy (last axis: components)."""
    top = bins - 1
    x = np.asarray(x, np.float64)[..., None]
    hi = np.where(x >= 1.0, np.inf, x + 0.5 / top)
    lo = np.where(x <= 0.0, -np.inf, x - 0.5 / top)
    # The bin's mass from the lower tail (cdf) or, above the location, the upper tail (sf).
    low_side = stats.logistic.cdf(hi, loc, scale) - stats.logistic.cdf(lo, loc, scale)
    high_side = stats.logistic.sf(lo, loc, scale) - stats.logistic.sf(hi, loc, scale)
    mass = np.where(lo > loc, high_side, low_side)
    return special.logsumexp(log_weights + np.log(mass), axis=-1)


def _params(loc, scale, logits=None):
    params = {"loc": tf.constant(loc, tf.float32), "scale": tf.constant(scale, tf.float32)}
    if logits is not None:
        params["logits"] = tf.constant(logits, tf.float32)
    return params


# (loc, scale) per component, mixture logits (None: one component).
CASES = {
    "centre": ([0.5], [0.1], None),
    "narrow_at_edge": ([0.0], [1e-3], None),
    "wide": ([0.3], [5.0], None),
    "outside": ([1.4], [0.05], None),
    "mixture": ([0.1, 0.7, 0.95], [0.02, 0.2, 0.004], [0.0, 1.0, -0.5]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_discretized_logistic_masses_sum_to_one(name):
    loc, scale, logits = CASES[name]
    k = len(loc)
    head = heads.DiscretizedLogisticObservation(1, num_components=k)
    values = (np.arange(256, dtype=np.float32) / 255.0)[:, None]  # every level, one per row
    tile = lambda v: np.tile(np.asarray(v, np.float32)[None, None], (256, 1, 1))  # noqa: E731
    params = _params(tile(loc), tile(scale), None if logits is None else tile(logits))
    log_p = _numpy(head.log_prob(params, values)).astype(np.float64)
    assert np.all(np.isfinite(log_p))
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-5
    log_w = np.log(special.softmax(np.asarray(logits if logits is not None else [0.0])))
    expected = _reference_log_prob(values[:, 0], np.asarray(loc), np.asarray(scale), log_w)
    # Compare where the mass is not vanishingly small (float32 vs float64 tails).
    mask = expected > -30.0
    np.testing.assert_allclose(log_p[mask], expected[mask], rtol=1e-4, atol=2e-4)


def test_discretized_logistic_log_prob_matches_scipy_on_random_params():
    rng = np.random.default_rng(0)
    shape = (6, 4, 4, 3, 2)  # batch, event (4, 4, 3), two components
    loc = rng.uniform(-0.2, 1.2, shape)
    scale = np.exp(rng.uniform(np.log(2e-3), np.log(2.0), shape))
    logits = rng.normal(size=shape)
    x = rng.integers(0, 256, shape[:-1]) / 255.0
    x[0, 0, 0] = [0.0, 1.0, 0.0]  # both ends
    head = heads.DiscretizedLogisticObservation((4, 4, 3), num_components=2)
    got = _numpy(head.log_prob(_params(loc, scale, logits), x.astype(np.float32)))
    expected = _reference_log_prob(x, loc, scale, special.log_softmax(logits, axis=-1)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_discretized_logistic_gradients_are_finite_at_extremes():
    head = heads.DiscretizedLogisticObservation(4)
    loc = tf.Variable([[[-3.0], [0.5], [0.5], [4.0]]])
    scale = tf.Variable([[[1e-3], [1e-3], [50.0], [1e-3]]])
    x = tf.constant([[1.0, 0.0, 128 / 255, 0.0]])
    with tf.GradientTape() as tape:
        log_p = head.log_prob({"loc": loc, "scale": scale}, x)
    grads = tape.gradient(log_p, [loc, scale])
    assert np.isfinite(_numpy(log_p)).all()
    assert all(np.isfinite(_numpy(g)).all() for g in grads)


def test_discretized_logistic_samples_follow_the_pmf():
    loc, scale, logits = [0.2, 0.75], [0.05, 0.1], [0.3, -0.2]
    n = 40000
    head = heads.DiscretizedLogisticObservation(1, num_components=2)
    tile = lambda v: np.tile(np.asarray(v, np.float32)[None, None], (n, 1, 1))  # noqa: E731
    params = _params(tile(loc), tile(scale), tile(logits))
    draws = _numpy(head.sample(params, seed=keras.random.SeedGenerator(3)))[:, 0]
    levels = np.round(draws * 255).astype(int)
    np.testing.assert_allclose(draws, levels / 255.0, atol=1e-6)  # on the grid
    grid = np.arange(256) / 255.0
    pmf = np.exp(_reference_log_prob(grid, np.array(loc), np.array(scale), special.log_softmax(logits)))
    counts = np.bincount(levels, minlength=256)
    # Histogram in 16 groups of 16 levels: chi-square test at the 0.1% level.
    observed, expected = counts.reshape(16, 16).sum(1), n * pmf.reshape(16, 16).sum(1)
    keep = expected > 5
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1), chi2
    mean, std = float(grid @ pmf), math.sqrt(float(grid**2 @ pmf) - float(grid @ pmf) ** 2)
    assert abs(draws.mean() - mean) < 4 * std / math.sqrt(n)
    # The head's mean (the clipped continuous mean) is within a fraction of a level.
    assert abs(float(_numpy(head.mean(params))[0, 0]) - mean) < 0.5 / 255


def test_discretized_logistic_checks_data():
    head = heads.DiscretizedLogisticObservation(3)
    head.check_data(np.array([[0.0, 1.0, 17 / 255]], np.float32))
    with pytest.raises(ValueError, match="divide 8-bit pixels by 255"):
        head.check_data(np.array([[0.0, 255.0, 3.0]]))
    with pytest.raises(ValueError, match="grid j / 255"):
        head.check_data(np.array([[0.5, 0.0, 0.0]]))


def test_spatial_features_get_a_per_pixel_projection():
    # The head's weights do not grow with the image: a 1x1 projection of the features.
    for size in (8, 64):
        head = heads.BernoulliObservation((size, size, 3))
        params = head(keras.ops.zeros((2, size, size, 5)))
        assert params["logits"].shape == (2, size, size, 3)
        assert [tuple(w.shape) for w in head.weights] == [(5, 3), (3,)]
    # A flat event of a flattened image gets the same per-pixel projection.
    head = heads.BernoulliObservation(64 * 3)
    assert head(keras.ops.zeros((2, 8, 8, 5)))["logits"].shape == (2, 192)
    assert [tuple(w.shape) for w in head.weights] == [(5, 3), (3,)]
    # Flat features: one Dense over all values, reshaped.
    head = heads.GaussianObservation((4, 4, 2), scale="per_example")
    assert head(keras.ops.zeros((2, 7)))["scale"].shape == (2, 4, 4, 2)


def test_old_flat_configs_still_load():
    head = heads.BernoulliObservation.from_config({"name": "observation", "event_size": 64})
    assert head.event_shape == (64,) and head.event_size == 64
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    config = model.get_config()
    assert config["input_shape"] == [64]
    del config["input_shape"]
    assert keras_vae.VAE.from_config(config).input_shape == (64,)
    with pytest.raises(ValueError, match="does not match input_shape"):
        keras_vae.VAE(63, input_shape=(8, 8, 1))


# === Image-shaped models ===


def _conv(likelihood):
    return keras_vae.VAE(
        input_shape=SHAPE,
        latent_dim=3,
        likelihood=likelihood,
        encoder=networks.conv_encoder(SHAPE, filters=(4,), dense=16),
        decoder=networks.conv_decoder(SHAPE, filters=(4,), out_channels=4),
        seed=0,
    )


CONFIGS = {
    "mlp_bernoulli": lambda: keras_vae.VAE(input_shape=SHAPE, latent_dim=3, hidden_dims=(16,), seed=0),
    "conv_logistic_mixture": lambda: _conv(heads.DiscretizedLogisticObservation(SHAPE, num_components=2)),
    "hm_gaussian": lambda: keras_vae.HelmholtzMachine(
        input_shape=SHAPE, latent_dims=(4, 2), hidden_dims=(8,), likelihood="gaussian", seed=0
    ),
}


@pytest.fixture(scope="module")
def images(digits):
    """The 8x8 digits as [N, 8, 8, 1] images on the 8-bit grid j / 255."""
    return (np.round(digits[0][:64] * 255) / 255).astype("float32").reshape(-1, *SHAPE)


class TestImageModels(ModelTestBase):
    @pytest.mark.parametrize("name", sorted(CONFIGS))
    def test_serialization(self, name):
        self.run_serialization_test(CONFIGS[name]())

    @pytest.mark.parametrize(
        "name", ["conv_logistic_mixture", "mlp_bernoulli", pytest.param("hm_gaussian", marks=pytest.mark.slow)]
    )
    def test_save_load(self, name, images, tmp_path):
        self.run_save_load_test(CONFIGS[name](), images, tmp_path)

    def test_fit_predict(self, images):
        self.run_fit_predict_test(CONFIGS["mlp_bernoulli"](), images, epochs=1)


def test_shapes_of_every_output(images):
    model = CONFIGS["conv_logistic_mixture"]()
    drawn = model.sample(5, seed=0)
    assert drawn["x_mean"].shape == (5, *SHAPE) and drawn["x"].shape == (5, *SHAPE)
    assert model.reconstruct(images[:3]).shape == (3, *SHAPE)
    assert model.decode(np.zeros((2, 3), "float32"))["loc"].shape == (2, *SHAPE, 2)
    ll = evaluation.log_likelihood(model, images[:6], k=4, batch_size=3, verbose=0)
    assert ll.values.shape == (6,) and np.all(np.isfinite(ll.values))
    ds = tf.data.Dataset.from_tensor_slices(images[:6]).batch(4)
    ll_ds = evaluation.log_likelihood(model, ds, k=4, batch_size=3, verbose=0)
    np.testing.assert_allclose(ll_ds.values, ll.values, rtol=1e-5)
    metrics = evaluation.evaluate_model(model, images[:6], k=4, batch_size=3)
    np.testing.assert_allclose(metrics["bits_per_dim"], -metrics["log_px"] / (64 * math.log(2)))
    with pytest.raises(ValueError, match=r"x.reshape\(\(-1, 8, 8, 1\)\)"):
        model.check_data(images.reshape(len(images), -1))


def test_plots_of_an_image_model(images):
    model = CONFIGS["mlp_bernoulli"]()
    fig = plotting.plot_reconstructions(model, images, n=4)
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    assert len(plotting.plot_samples(model, n=4).axes) == 4


def test_export_signatures_take_images():
    from keras_vae.export.signatures import ServingModule

    model = CONFIGS["mlp_bernoulli"]()
    signatures = ServingModule(model, score_k=2).signatures()
    assert signatures["encode"].structured_input_signature[0][0].shape.as_list() == [None, *SHAPE]
    assert signatures["score"].structured_input_signature[0][0].shape.as_list() == [None, *SHAPE]
    assert signatures["decode"].structured_outputs["mean"].shape.as_list() == [None, *SHAPE]
    out = signatures["score"](x=tf.zeros((3, *SHAPE)), seed=tf.constant(0, tf.int64))
    assert out["log_px"].shape == (3,)


def test_conv_mnist_preset(monkeypatch):
    monkeypatch.delenv("KERAS_VAE_JIT_COMPILE", raising=False)
    model = presets.from_preset("conv_mnist", seed=0)
    if not tf.config.list_physical_devices("GPU"):  # XLA's CPU convolutions are slow: "auto" leaves them out.
        model.compile(keras.optimizers.Adam(1e-3))
        assert model.jit_compile is False
        mlp = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=2, hidden_dims=(8,))
        mlp.compile(keras.optimizers.Adam(1e-3))
        assert mlp.jit_compile is True
    assert model.input_shape == (28, 28, 1)
    assert model.sample(2, seed=0)["x_mean"].shape == (2, 28, 28, 1)
    # No dense layer over all pixels: the observation head is a 1x1 projection.
    assert [tuple(w.shape) for w in model.observation.weights] == [(32, 1), (1,)]
    small = presets.from_preset("conv_mnist", input_shape=(8, 8, 1), latent_dims=(2,), seed=0)
    assert small.reconstruct(np.zeros((1, 8, 8, 1), "float32")).shape == (1, 8, 8, 1)


@pytest.mark.slow
def test_tflite_of_a_convolutional_discretized_logistic_model_equals_keras(tmp_path):
    """Decoder, encoder and scorer of an 8x8x1 image model with a 2-component discretised logistic in LiteRT."""
    import pathlib

    from ai_edge_litert.interpreter import Interpreter

    from keras_vae import export
    from keras_vae import scoring
    from keras_vae.export import tflite

    shape = (8, 8, 1)
    model = keras_vae.VAE(
        input_shape=shape,
        latent_dim=2,
        encoder=networks.conv_encoder(shape, filters=(4,), dense=16),
        decoder=networks.conv_decoder(shape, filters=(4,), out_channels=2),
        likelihood=heads.DiscretizedLogisticObservation(shape, num_components=2),
        seed=0,
    )
    rng = np.random.default_rng(0)
    for v in model.weights:  # Off the initial values: non-zero biases, varied scales.
        v.assign(v.numpy() + rng.normal(scale=0.3, size=v.shape).astype("float32"))
    x = keras.ops.convert_to_numpy(model.sample(5, seed=0)["x"])
    z = rng.normal(size=(5, 2)).astype("float32")
    paths = export.export_model(model, tmp_path / "export", allow_untrained=True, score_k=4)

    def run(file, signature, **inputs):
        return Interpreter(model_path=paths[file]).get_signature_runner(signature)(**inputs)

    for file, signature, inputs, expected in (
        ("decoder", "decode", {"z": z}, model.decode(z)),
        ("encoder", "encode", {"x": x}, model.encode(x)),
    ):
        got = run(file, signature, **inputs)
        assert set(got) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], keras.ops.convert_to_numpy(value), atol=1e-5, err_msg=key)
    assert run("decoder", "decode", z=z)["mean"].shape == (5, *shape)

    inputs = json_metadata(paths)["signatures"]["score_from_noise"]["inputs"]
    noise = tflite.seeded_noise(inputs, 4 * len(x), 7)
    scored = run("scorer", "score_from_noise", x=x, **noise)
    for key, value in scoring.scores(model, x, 4, 7).items():
        np.testing.assert_allclose(scored[key], keras.ops.convert_to_numpy(value), rtol=1e-5, atol=1e-3, err_msg=key)
    ops = export.tflite_ops(pathlib.Path(paths["scorer"]).read_bytes())
    assert "CONV_2D" in ops and not any(op.startswith("CUSTOM") or "FLEX" in op for op in ops)


def json_metadata(paths):
    import json
    import pathlib

    return json.loads(pathlib.Path(paths["metadata"]).read_text())
