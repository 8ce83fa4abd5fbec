"""Shared pytest setup: quiet TensorFlow, small real data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
