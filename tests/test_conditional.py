"""Conditional models (condition_dim=K): q(h | x, y), p(x | h, y), data as (x, y) pairs."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from _linear_gaussian import softplus_inv
from _linear_gaussian import to_numpy
from model_test_base import ModelTestBase
from scipy.stats import multivariate_normal

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import scoring

K = 3


def _labelled(n=384, dim=16, seed=0):
    """Binary x that depends strongly on a label: each class flips pixels of its own prototype."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    prototypes = rng.random((K, dim)) > 0.5
    x = (rng.random((n, dim)) < np.where(prototypes[labels], 0.95, 0.05)).astype("float32")
    return x, np.eye(K, dtype="float32")[labels]


def _vae(**kwargs):
    kwargs = {"latent_dim": 2, "hidden_dims": (16,), "seed": 0, "condition_dim": K, **kwargs}
    return keras_vae.VAE(16, **kwargs)


def _helmholtz(**kwargs):
    kwargs = {
        "latent_dims": (4, 2), "hidden_dims": (16,), "seed": 0, "condition_dim": K,
        "objective": "reweighted_wake_sleep", "n_samples": 2, **kwargs,
    }
    return keras_vae.HelmholtzMachine(16, **kwargs)


class TestConditional(ModelTestBase):
    @pytest.mark.parametrize("make", [_vae, _helmholtz], ids=["vae", "helmholtz"])
    def test_serialization(self, make):
        model = make()
        assert model.get_config()["condition_dim"] == K
        self.run_serialization_test(model)

    @pytest.mark.parametrize(
        "make, train",
        [(_vae, True), (_helmholtz, False), pytest.param(_helmholtz, True, marks=pytest.mark.slow)],
        ids=["vae-trained", "helmholtz", "helmholtz-trained"],
    )
    def test_save_load_identical_outputs(self, make, train, tmp_path):
        x, y = _labelled(128)
        model = make()
        if train:
            model.compile(keras.optimizers.Adam(1e-2))
            model.fit((x, y), epochs=1, batch_size=32, verbose=0)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert type(loaded) is type(model) and loaded.condition_dim == K
        z = np.random.default_rng(0).normal(size=(5, model.latent_dim)).astype("float32")
        for name, value in model.decode(z, condition=y[:5]).items():
            np.testing.assert_array_equal(to_numpy(loaded.decode(z, condition=y[:5])[name]), to_numpy(value))
        for name, value in model.encode(x[:5], condition=y[:5]).items():
            np.testing.assert_array_equal(to_numpy(loaded.encode(x[:5], condition=y[:5])[name]), to_numpy(value))
        a, b = model.sample(4, condition=y[0], seed=3), loaded.sample(4, condition=y[0], seed=3)
        np.testing.assert_array_equal(to_numpy(a["x_mean"]), to_numpy(b["x_mean"]))
        if not train or make is _vae:
            return  # The trained Helmholtz case (slow) also resumes training.
        # Training resumes from the restored optimizer state.
        history = loaded.fit((x, y), epochs=1, batch_size=32, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert int(loaded.optimizer.iterations) > int(model.optimizer.iterations)

    def test_condition_lowers_the_loss_and_changes_the_decoder(self):
        x, y = _labelled(384)
        results = {}
        for condition_dim in (None, K):
            model = _vae(condition_dim=condition_dim, latent_dim=1)
            model.compile(keras.optimizers.Adam(2e-2))
            # The same (x, y) pairs: the unconditional model ignores the labels (as it always has).
            history = model.fit((x, y), epochs=15, batch_size=64, verbose=0)
            results[condition_dim] = np.mean(history.history["loss"][-3:])
            if condition_dim:
                z = np.zeros((1, 1), "float32")
                means = [to_numpy(model.decode(z, condition=np.eye(K)[i])["mean"])[0] for i in range(K)]
        # Three prototypes of 16 pixels: knowing the class is worth several nats.
        assert results[K] < results[None] - 1.0, results
        # Each class decodes to (near) its own prototype, which differ.
        for i in range(K):
            for j in range(i):
                assert np.abs(means[i] - means[j]).max() > 0.5

    def test_dataset_tuple_and_fit_xy_agree(self):
        x, y = _labelled(64)
        losses = []
        for data in ((x, y), tf.data.Dataset.from_tensor_slices((x, y)).batch(64)):
            model = _vae()
            model.compile(keras.optimizers.Adam(1e-2))
            losses.append(model.evaluate(data, batch_size=64, verbose=0, return_dict=True)["reconstruction"])
        assert np.isfinite(losses).all()
        # The model's own noise differs between the two calls; the same data gives a close reconstruction term.
        np.testing.assert_allclose(losses[0], losses[1], rtol=0.05)

    def test_sample_broadcasts_the_condition(self):
        model = _helmholtz()
        one = model.sample(4, condition=np.eye(K)[1], seed=5)
        rows = model.sample(4, condition=np.tile(np.eye(K)[1], (4, 1)), seed=5)
        np.testing.assert_array_equal(to_numpy(one["x_mean"]), to_numpy(rows["x_mean"]))
        other = model.sample(4, condition=np.eye(K)[2], seed=5)
        np.testing.assert_array_equal(to_numpy(one["z"]), to_numpy(other["z"]))  # Prior N(0, I): y-free.
        assert not np.allclose(to_numpy(one["x_mean"]), to_numpy(other["x_mean"]))

    def test_reconstruct_and_posterior_mean_take_the_condition(self):
        x, y = _labelled(8)
        model = _vae()
        pair = to_numpy(model.reconstruct((x, y)))
        np.testing.assert_array_equal(pair, to_numpy(model.reconstruct(x, condition=y)))
        # predict runs a compiled function: equal up to float32 rounding.
        np.testing.assert_allclose(pair, model.predict((x, y), verbose=0), rtol=1e-5, atol=1e-6)
        mean = to_numpy(model.posterior_mean(x, condition=y))
        np.testing.assert_array_equal(mean, to_numpy(model.encode(x, condition=y)["loc"]))
        assert not np.allclose(mean, to_numpy(model.posterior_mean(x, condition=np.roll(y, 1, axis=1))))

    def test_images_default_and_convolutional_encoder(self):
        rng = np.random.default_rng(0)
        x = (rng.random((32, 8, 8, 1)) > 0.5).astype("float32")
        y = np.eye(K, dtype="float32")[rng.integers(0, K, 32)]
        mlp = keras_vae.VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(8,), condition_dim=K, seed=0)
        conv = keras_vae.VAE(
            input_shape=(8, 8, 1), latent_dim=2, condition_dim=K, seed=0,
            encoder=keras_vae.networks.conv_encoder((8, 8, 1), filters=(4,), dense=8),
        )
        for model in (mlp, conv):
            assert model.sample(3, condition=np.eye(K)[0], seed=0)["x_mean"].shape == (3, 8, 8, 1)
            assert np.isfinite(to_numpy(model.terms((x, y), 2).log_px)).all()
            assert model.reconstruct(x[:2], condition=y[:2]).shape == (2, 8, 8, 1)
        # The default network reads the flattened image and y; y joins a custom encoder's features.
        assert mlp.recognition_networks[0].layers[-1].kernel.shape[0] == 64 + K
        assert conv.recognition_heads[0].loc_dense.kernel.shape[0] == 8 + K


class TestConditionalLogLikelihood:
    """A linear-Gaussian conditional VAE: x = W z + V y + b + sigma eps, exact posterior."""

    def _model(self, dim=4, latent=2, sigma=0.5):
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.normal(size=(dim, latent)))
        w = q * np.linspace(2.0, 1.0, latent)
        v, b = rng.normal(size=(dim, K)) * 2.0, rng.normal(size=dim)
        cov_post = np.linalg.inv(np.eye(latent) + w.T @ w / sigma**2)
        a = cov_post @ w.T / sigma**2
        model = keras_vae.VAE(
            dim, latent_dim=latent, hidden_dims=(), likelihood="gaussian", condition_dim=K, seed=0
        )
        obs, head = model.observation, model.recognition_heads[0]
        # Decoder input [z, y]; encoder input [x, y].
        obs.loc_dense.kernel.assign(np.concatenate([w.T, v.T]).astype("float32"))
        obs.loc_dense.bias.assign(b.astype("float32"))
        obs.raw_scale.assign(np.full(dim, softplus_inv(sigma - obs.min_scale), "float32"))
        head.loc_dense.kernel.assign(np.concatenate([a.T, -(a @ v).T]).astype("float32"))
        head.loc_dense.bias.assign((-a @ b).astype("float32"))
        head.scale_dense.kernel.assign(np.zeros(head.scale_dense.kernel.shape, "float32"))
        scale = np.sqrt(np.diag(cov_post))
        head.scale_dense.bias.assign(softplus_inv(scale - head.min_scale).astype("float32"))
        cov = w @ w.T + sigma**2 * np.eye(dim)

        def exact(x, y):
            return np.array([multivariate_normal(b + v @ yi, cov).logpdf(xi) for xi, yi in zip(x, y)])

        def draw(n):
            labels = rng.integers(0, K, n)
            y = np.eye(K, dtype="float32")[labels]
            z = rng.normal(size=(n, latent))
            x = z @ w.T + y @ v.T + b + sigma * rng.normal(size=(n, dim))
            return x.astype("float32"), y

        return model, exact, draw

    def test_log_likelihood_is_the_closed_form(self):
        model, exact, draw = self._model()
        x, y = draw(20)
        # The encoder is the exact posterior: every importance weight is p(x | y).
        ll = evaluation.log_likelihood(model, (x, y), k=16, verbose=0)
        np.testing.assert_allclose(ll.values, exact(x, y), atol=1e-3)
        np.testing.assert_allclose(ll.elbo, exact(x, y), atol=1e-3)
        wrong = np.roll(y, 1, axis=1)
        ds = tf.data.Dataset.from_tensor_slices((x, wrong)).batch(7)
        from_dataset = evaluation.log_likelihood(model, ds, k=16, batch_size=20, verbose=0).values  # One trace.
        np.testing.assert_allclose(from_dataset, exact(x, wrong), atol=1e-3)
        assert exact(x, wrong).mean() < exact(x, y).mean() - 1.0
        out = scoring.scores(model, x, k=8, condition=y)
        np.testing.assert_allclose(to_numpy(out["log_px"]), exact(x, y), atol=1e-3)
        units = evaluation.active_units(model, (x, y))
        assert units.counts == [2]

    def test_importance_sampling_tightens_the_elbo(self):
        model, exact, draw = self._model()
        x, y = draw(50)
        head = model.recognition_heads[0]
        head.scale_dense.bias.assign(head.scale_dense.bias + 1.0)  # A wider q than the posterior.
        ll = evaluation.log_likelihood(model, (x, y), k=200, verbose=0)
        truth = exact(x, y).mean()
        assert ll.elbo.mean() < ll.mean - 0.1
        assert ll.mean <= truth + 0.05 and abs(ll.mean - truth) < abs(ll.elbo.mean() - truth)


class TestConditionalSteps:
    @pytest.mark.slow
    def test_fused_xla_steps_and_strategy_steps_train_on_the_pairs(self):
        """The fused multi-step XLA loop trains as Keras's per-step loop; a strategy's steps take (x, y) too.

        96 examples in batches of 32 with 2 steps per execution: one run of 2
        steps and one of 1 (padded to 2) per epoch.
        """
        x, y = _labelled(96)
        results = []
        for steps in (1, 2):
            keras.utils.set_random_seed(0)
            model = _vae()
            model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=steps)
            history = model.fit((x, y), epochs=2, batch_size=32, shuffle=False, verbose=0)
            assert int(model.optimizer.iterations) == 6
            results.append((model.get_weights(), history.history["loss"]))
        (w1, loss1), (w2, loss2) = results
        for a, b in zip(w1, w2):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(loss1, loss2, rtol=1e-5)

        # Under a strategy (each replica draws its own noise, so only the training is compared).
        with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
            model = _vae()
            model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=2)
        history = model.fit((x, y), epochs=3, batch_size=32, shuffle=False, verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 9
        assert np.isfinite(history.history["loss"]).all()
        assert history.history["loss"][-1] < history.history["loss"][0]
        assert np.isfinite(model.evaluate((x, y), batch_size=32, verbose=0, return_dict=True)["elbo"])


class TestConditionalErrors:
    def test_cli_conditions_from_labels(self):
        from keras_vae.cli import conditions

        np.testing.assert_array_equal(conditions.one_hot_labels(np.array([2, 0]), 3, "d"), np.eye(3)[[2, 0]])
        given = np.eye(3, dtype="float32")[[1, 1]]
        np.testing.assert_array_equal(conditions.one_hot_labels(given, 3, "d"), given)
        with pytest.raises(ValueError, match="condition_dim=3\\) and d has no labels"):
            conditions.one_hot_labels(None, 3, "d")
        with pytest.raises(ValueError, match="values 0..5\\) are not class indices below 3"):
            conditions.one_hot_labels(np.array([0, 5]), 3, "d")

    def test_x_alone_names_condition_dim(self):
        x, y = _labelled(32)
        model = _vae()
        model.compile(keras.optimizers.Adam(1e-3))
        for call in (
            lambda: model.fit(x, verbose=0),
            lambda: model.evaluate(tf.data.Dataset.from_tensor_slices(x).batch(8), verbose=0),
            lambda: model.sample(2),
            lambda: model.encode(x),
            lambda: model.decode(np.zeros((2, 2), "float32")),
            lambda: model.recognize(x),  # The lower-level passes check too.
            lambda: evaluation.log_likelihood(model, x, k=2, verbose=0),
            lambda: evaluation.log_likelihood(model, tf.data.Dataset.from_tensor_slices(x), k=2, verbose=0),
        ):
            with pytest.raises(ValueError, match="condition_dim=3"):
                call()

    def test_bad_conditions(self):
        x, y = _labelled(32)
        model = _vae()
        model.compile(keras.optimizers.Adam(1e-3))
        with pytest.raises(ValueError, match=r"shape \[32, 3\]"):
            model.fit((x, y[:, :2]), verbose=0)
        with pytest.raises(ValueError, match="NaN"):
            model.fit((x, np.full_like(y, np.nan)), verbose=0)
        with pytest.raises(ValueError, match=r"\[batch, 3\]"):
            model.sample(2, condition=np.ones(5))
        with pytest.raises(ValueError, match="2 rows for 4 examples"):
            model.sample(4, condition=np.eye(K)[:2])
        with pytest.raises(ValueError, match="condition_dim"):
            keras_vae.VAE(16, condition_dim=0)

    def test_unconditional_model_ignores_labels(self):
        x, y = _labelled(64)
        model = keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,), seed=0)
        with pytest.raises(ValueError, match="not conditional"):
            model.sample(2, condition=y[0])
        # Fitting (x, y) pairs ignores the labels: see test_condition_lowers_the_loss_and_changes_the_decoder.
        np.testing.assert_array_equal(to_numpy(model.reconstruct((x, y))), to_numpy(model.reconstruct(x)))
        ll = evaluation.log_likelihood(model, (x, y), k=4, verbose=0)
        np.testing.assert_array_equal(ll.values, evaluation.log_likelihood(model, x, k=4, verbose=0).values)


def _exported(model, out, format):
    """Export ``model`` and return (paths, metadata, SavedModel or None)."""
    import json

    from keras_vae import export

    paths = export.export_model(model, out, format=format, allow_untrained=True, score_k=4)
    metadata = json.loads(open(paths["metadata"]).read())
    loaded = tf.saved_model.load(paths["saved_model"]) if "saved_model" in paths else None
    return paths, metadata, loaded


def _perturbed_helmholtz():
    """A 2-layer conditional model with every weight moved off its initial value."""
    model = _helmholtz(objective="elbo", n_samples=1)
    rng = np.random.default_rng(0)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(to_numpy(v) + rng.normal(scale=0.3, size=v.shape).astype("float32"))
    return model


class TestConditionalExport:
    def _expected(self, model):
        rng = np.random.default_rng(1)
        x, y = _labelled(5)
        z = rng.normal(size=(5, model.latent_dim)).astype("float32")
        return {
            "x": x, "y": y, "z": z,
            "decode": {k: to_numpy(v) for k, v in model.decode(z, condition=y).items()},
            "encode": {k: to_numpy(v) for k, v in model.encode(x, condition=y).items()},
            "score": {k: to_numpy(v) for k, v in scoring.scores(model, x, 4, seed=7, condition=y).items()},
            "sample": {k: to_numpy(v) for k, v in model.sample(5, seed=3, condition=y).items()},
        }

    def test_saved_model_signatures_take_the_condition(self, tmp_path):
        model = _perturbed_helmholtz()
        want = self._expected(model)
        _, metadata, loaded = _exported(model, tmp_path / "export", "saved_model")
        assert metadata["condition_dim"] == K
        for name, info in metadata["signatures"].items():
            assert info["inputs"]["condition"]["shape"] == [None, K], name
        y = tf.constant(want["y"])
        got = loaded.signatures["decode"](z=tf.constant(want["z"]), condition=y)
        for key, value in want["decode"].items():
            np.testing.assert_allclose(got[key].numpy(), value, atol=1e-5)
        got = loaded.signatures["encode"](x=tf.constant(want["x"]), condition=y)
        for key, value in want["encode"].items():
            np.testing.assert_allclose(got[key].numpy(), value, atol=1e-5)
        got = loaded.signatures["score"](x=tf.constant(want["x"]), seed=tf.constant(7, tf.int64), condition=y)
        for key, value in want["score"].items():
            np.testing.assert_allclose(got[key].numpy(), value, atol=1e-4, rtol=1e-5)
        n, seed = tf.constant(5), tf.constant(3, tf.int64)
        got = loaded.signatures["ancestral_sample"](num_samples=n, seed=seed, condition=y)
        for key in ("z", "x", "x_mean"):
            np.testing.assert_allclose(got[key].numpy(), want["sample"][key], atol=1e-5)
        # Given the same noise, the noise-input signature repeats the seeded one.
        from keras_vae.export import tflite

        noise = tflite.seeded_noise(metadata["signatures"]["ancestral_sample_from_noise"]["inputs"], 5, 3)
        again = loaded.signatures["ancestral_sample_from_noise"](condition=y, **noise)
        np.testing.assert_allclose(again["x_mean"].numpy(), want["sample"]["x_mean"], atol=1e-5)
        with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples rows"):
            loaded.signatures["sample"](num_samples=tf.constant(4), seed=seed, condition=y)

    @pytest.mark.slow
    def test_tflite_files_take_the_condition(self, tmp_path):
        from ai_edge_litert.interpreter import Interpreter

        from keras_vae.export import tflite

        model = _perturbed_helmholtz()
        want = self._expected(model)
        paths, metadata, _ = _exported(model, tmp_path / "export", "tflite")
        sigs = metadata["signatures"]

        def run(file, signature, **inputs):
            return Interpreter(model_path=paths[file]).get_signature_runner(signature)(**inputs)

        y = want["y"]
        got = run("decoder", "decode", z=want["z"], condition=y)
        for key, value in want["decode"].items():
            np.testing.assert_allclose(got[key], value, atol=1e-5)
        got = run("encoder", "encode", x=want["x"], condition=y)
        for key, value in want["encode"].items():
            np.testing.assert_allclose(got[key], value, atol=1e-5)
        noise = tflite.seeded_noise(sigs["score_from_noise"]["inputs"], 4 * 5, 7)
        got = run("scorer", "score_from_noise", x=want["x"], condition=y, **noise)
        for key, value in want["score"].items():
            np.testing.assert_allclose(got[key], value, atol=1e-4, rtol=1e-5)
        noise = tflite.seeded_noise(sigs["ancestral_sample_from_noise"]["inputs"], 5, 3)
        got = run("sampler", "ancestral_sample_from_noise", condition=y, **noise)
        for key in ("z", "x", "x_mean"):
            np.testing.assert_allclose(got[key], want["sample"][key], atol=1e-5)

    def test_int8_needs_the_conditions_of_its_calibration_examples(self, tmp_path):
        from keras_vae import export

        x, y = _labelled(8)
        with pytest.raises(export.ExportError, match=r"representative_data=\(x, condition\), condition \[n, 3\]"):
            export.export_model(_vae(), tmp_path / "e", quantize="int8", allow_untrained=True, representative_data=x)
        with pytest.raises(export.ExportError, match="not a tuple or list"):
            export.export_model(keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,)), tmp_path / "e", quantize="int8",
                                allow_untrained=True, representative_data=(x, y))  # fmt: skip
        with pytest.raises(ValueError, match=r"the condition must be \[8, 3\]"):
            export.export_model(_vae(), tmp_path / "e", quantize="int8", allow_untrained=True,
                                representative_data=(x, y[:, :2]))  # fmt: skip
        assert not (tmp_path / "e").exists()

    @pytest.mark.slow
    def test_int8_tflite_of_a_conditional_model_measured(self, tmp_path):
        """Full-integer files calibrated on (x, labels): close to Keras, and the condition still steers them."""
        from ai_edge_litert.interpreter import Interpreter

        from keras_vae import export
        from keras_vae.export import tflite

        x, y = _labelled(384)
        keras.utils.set_random_seed(0)
        model = _vae()
        model.compile(keras.optimizers.Adam(1e-2))
        model.fit((x, y), epochs=15, batch_size=64, verbose=0)
        paths = export.export_model(model, tmp_path / "e", format="tflite", quantize="int8", score_k=4,
                                    representative_data=(x[:256], y[:256]))  # fmt: skip
        metadata = json.loads(pathlib.Path(paths["metadata"]).read_text())
        assert metadata["tflite"]["decoder_int8.tflite"]["quantization"] == "int8"

        def run(file, signature, **inputs):
            return Interpreter(model_path=paths[file]).get_signature_runner(signature)(**inputs)

        xt, yt = _labelled(64, seed=1)
        z = to_numpy(model.encode(xt, yt)["loc"])
        probs = to_numpy(model.decode(z, yt)["probs"])
        got = run("decoder_int8", "decode", z=z, condition=yt)["probs"]
        assert np.abs(got - probs).max() < 0.1
        # Another class's condition moves the int8 decoder's output as it moves Keras's.
        other = np.roll(yt, 1, axis=1)
        moved, moved_int8 = to_numpy(model.decode(z, other)["probs"]) - probs, run(
            "decoder_int8", "decode", z=z, condition=other)["probs"] - got  # fmt: skip
        assert np.corrcoef(moved.ravel(), moved_int8.ravel())[0, 1] > 0.95
        loc = run("encoder_int8", "encode", x=xt, condition=yt)["loc"]
        # The int8 posterior means are off by a fraction of the posterior's own spread.
        scale = to_numpy(model.encode(xt, yt)["scale"])
        assert (np.abs(loc - z) / scale).max() < 0.5, (np.abs(loc - z) / scale).max()
        noise = tflite.seeded_noise(metadata["signatures"]["score_from_noise"]["inputs"], 4 * len(xt), 7)
        expected = to_numpy(scoring.scores(model, xt, 4, 7, condition=yt)["log_px"])
        scored = run("scorer_int8", "score_from_noise", x=xt, condition=yt, **noise)["log_px"]
        # int8 log-densities are coarse: 7.8 nats from Keras's on average here (the float16 and dynamic
        # scorers are the ones to score with); finite, and within the bound seen.
        assert np.all(np.isfinite(scored)) and np.abs(scored - expected).mean() < 15


class TestConditionalPlotsAndCli:
    def test_export_calibrates_a_conditional_model_on_examples_with_their_labels(self):
        from keras_vae import cli
        from keras_vae.cli import export as cli_export

        args = cli.make_parser().parse_args(["export", "m.keras", "--out", "e", "--dataset", "digits", "--limit", "20"])
        x, condition = cli_export.calibration_data(args, keras_vae.VAE(64, latent_dim=2, condition_dim=10))
        _, labels = datasets.load_arrays("digits", "train")
        assert x.shape == (20, 64) and condition.shape == (20, 10)
        np.testing.assert_array_equal(condition, np.eye(10)[labels[:20]])
        assert cli_export.calibration_data(args, keras_vae.VAE(64, latent_dim=2)).shape == (20, 64)
        with pytest.raises(ValueError, match="not class indices below 3"):
            cli_export.calibration_data(args, keras_vae.VAE(64, latent_dim=2, condition_dim=3))

    def test_plot_class_samples_one_row_per_class(self, tmp_path):
        from keras_vae import plotting

        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), condition_dim=K, seed=0)
        fig = plotting.plot_class_samples(model, n_per_class=4, class_names=["a", "b", "c"], path=tmp_path / "g.png")
        assert len(fig.axes) == K * 4 and (tmp_path / "g.png").is_file()
        assert [fig.axes[4 * c].get_ylabel() for c in range(K)] == ["a", "b", "c"]
        # Column j shares z across rows; rows differ by the condition.
        rows = [fig.axes[4 * c].images[0].get_array() for c in range(K)]
        assert not np.allclose(rows[0], rows[1])
        # plot_samples of a conditional model without a condition draws the class grid.
        assert len(plotting.plot_samples(model, n=6).axes) == K * 2
        with pytest.raises(ValueError, match="conditional model"):
            plotting.plot_class_samples(keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,)))

    def test_train_condition_labels_needs_labels(self, tmp_path, capsys):
        from keras_vae import cli

        path = tmp_path / "unlabelled.npy"
        np.save(path, np.random.default_rng(0).random((20, 16)).astype("float32"))
        args = ["train", "--condition", "labels", "--dataset", str(path), "--out", str(tmp_path / "run"), "--quiet"]
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --condition labels needs a dataset with labels")

    @pytest.mark.slow
    def test_train_condition_labels_writes_a_conditional_run(self, tmp_path):
        import json

        from keras_vae import cli

        out = tmp_path / "run"
        args = ["train", "--condition", "labels", "--epochs", "2", "--limit", "300", "--out", str(out), "--quiet"]
        assert cli.main(args) == 0
        model = keras.saving.load_model(out / "model.keras", safe_mode=True)
        assert model.condition_dim == 10
        assert json.loads((out / "metrics.json").read_text())["settings"]["condition"] == "labels"
        assert (out / "samples.png").is_file() and (out / "reconstructions.png").is_file()
        assert cli.main(["sample", str(out / "model.keras"), "--n", "20", "--out", str(tmp_path / "s.png")]) == 0

        # score and evaluate condition on the split's labels: log p(x | y) as the API computes it.
        score = ["score", str(out / "model.keras"), "--limit", "40", "--k", "16", "--seed", "3",
                 "--batch-size", "20", "--out", str(tmp_path / "scores"), "--quiet"]  # fmt: skip
        assert cli.main(score) == 0
        test = datasets.load_data("digits", "test", limit=40)
        pairs = (test.x, np.eye(10, dtype="float32")[test.y])
        expected = evaluation.log_likelihood(model, pairs, k=16, seed=3, batch_size=20, verbose=0)
        summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
        assert summary["n_examples"] == 40
        np.testing.assert_allclose(summary["log_px"]["mean"], expected.mean, rtol=1e-5)
        shuffled = (pairs[0], pairs[1][::-1])  # mostly wrong labels: a lower likelihood
        assert evaluation.log_likelihood(model, shuffled, k=16, seed=3, batch_size=20, verbose=0).mean < expected.mean
        evaluate = ["evaluate", str(out / "model.keras"), "--limit", "40", "--k", "16"]
        assert cli.main(evaluate + ["--out", str(tmp_path / "e.json"), "--quiet"]) == 0
        assert np.isfinite(json.loads((tmp_path / "e.json").read_text())["log_px"])
