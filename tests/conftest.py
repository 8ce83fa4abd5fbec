"""Shared pytest setup: quiet TensorFlow, small real data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA compilation costs seconds per model, more than the tests' tiny fits
# gain from it; tests of the XLA default (test_distribute.py) turn it back on.
os.environ.setdefault("KERAS_VAE_JIT_COMPILE", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled 8x8 digits, flat, scaled to [0, 1]: (train, test)."""
    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0).astype("float32")
    return x[:1500], x[1500:]


@pytest.fixture(scope="session")
def binary_digits(digits):
    """The digits binarised once with a fixed seed."""
    rng = np.random.default_rng(0)
    return tuple((rng.random(x.shape) < x).astype("float32") for x in digits)


@pytest.fixture(scope="session")
def trained_vae_path(tmp_path_factory, digits):
    """A small VAE (64-[16]-2) trained for 3 steps on the digits, saved as ``.keras``: its path."""
    import keras

    import keras_vae

    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(16,), seed=0)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(digits[0][:300], epochs=1, batch_size=100, verbose=0)
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    model.save(path)
    return path
