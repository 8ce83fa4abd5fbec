"""Checks every keras-vae model's tests reuse.

``ModelTestBase`` gives a test class three checks: the config round trip,
fit-then-predict, and the ``.keras`` save/load round trip
(``safe_mode=True``) of the fitted model with resumed training.
"""

import keras
import numpy as np

import keras_vae  # noqa: F401  (registers the serialisable classes)


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


class ModelTestBase:
    """Mixin of model checks; ``x`` is a small float32 ``[n, *input_shape]`` array."""

    def run_serialization_test(self, model):
        """``from_config(get_config())`` rebuilds an equal config and equal shapes."""
        config = model.get_config()
        clone = model.__class__.from_config(config)
        assert clone.get_config() == config
        assert [v.shape for v in clone.weights] == [v.shape for v in model.weights]
        # Serialising through Keras's registry gives the same class back.
        revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        assert type(revived) is type(model)

    def run_save_load_test(self, model, x, tmp_path):
        """Save a trained model, reload it under safe mode, compare and resume.

        A model not trained yet is first trained for an epoch; a model that
        ``run_fit_predict_test`` trained is saved as it is (one compiled
        training program fewer per test).
        """
        if getattr(model, "optimizer", None) is None or int(model.optimizer.iterations) == 0:
            model.compile(keras.optimizers.Adam(1e-3))
            model.fit(x, epochs=1, batch_size=32, verbose=0)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert type(loaded) is type(model)
        z = np.random.default_rng(0).normal(size=(5, model.latent_dim)).astype("float32")
        for name, value in model.decode(z).items():
            np.testing.assert_allclose(_numpy(loaded.decode(z)[name]), _numpy(value), atol=1e-6)
        for name, value in model.encode(x[:5]).items():
            np.testing.assert_allclose(_numpy(loaded.encode(x[:5])[name]), _numpy(value), atol=1e-6)
        # The optimiser state came back too, and training resumes from it.
        assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
        history = loaded.fit(x, epochs=1, batch_size=32, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        assert int(loaded.optimizer.iterations) > int(model.optimizer.iterations)
        return loaded

    def run_fit_predict_test(self, model, x, epochs=2):
        """``fit`` reports finite documented metrics; ``predict`` reconstructs."""
        model.compile(keras.optimizers.Adam(1e-3))
        history = model.fit(x, epochs=epochs, batch_size=32, verbose=0)
        logs = {k: v[-1] for k, v in history.history.items()}
        for name in ("loss", "elbo", "reconstruction", "kl"):
            assert np.isfinite(logs[name]), (name, logs)
        np.testing.assert_allclose(logs["elbo"], logs["reconstruction"] - logs["kl"], rtol=1e-4, atol=1e-3)
        recon = model.predict(x[:7], verbose=0)
        assert recon.shape == (7, *getattr(model, "input_shape", (model.input_dim,)))
        assert np.all(np.isfinite(recon))
        return history
