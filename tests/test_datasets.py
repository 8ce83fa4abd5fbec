"""Tests for keras_vae.datasets: bundled digits, local .npz files, binarisation, tf.data pipelines.

Never touches the network: tensorflow-datasets is only reached through a
monkeypatched ``tfds.load``. The real-MNIST test reads KERAS_VAE_MNIST_PATH.
"""

import importlib.util
import os
import pathlib

import numpy as np
import pytest

try:
    from keras_vae import datasets
except ImportError:  # Package __init__ not there yet: load the file directly.
    _PATH = pathlib.Path(__file__).resolve().parents[1] / "keras_vae" / "datasets.py"
    _SPEC = importlib.util.spec_from_file_location("_kv_datasets", _PATH)
    datasets = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(datasets)

ENV_VARS = ("KERAS_VAE_MNIST_PATH", "KERAS_VAE_FASHION_MNIST_PATH")


@pytest.fixture
def no_env(monkeypatch):
    """Unset the local-file environment variables (the CI may set them)."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _epoch(ds):
    return [b.numpy() for b in ds]


def _sorted_rows(a):
    """Rows in lexicographic order, to compare arrays as multisets of rows."""
    return a[np.lexsort(a.T[::-1])]


def _fake_npz(path, n_train=30, n_test=12, seed=0, **overrides):
    """Keras mnist.npz layout, uint8 images; returns the raw arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


# ------------------------------------------------------------------ names


def test_image_shape():
    assert datasets.DATASETS == ("digits", "mnist", "fashion_mnist")
    assert datasets.image_shape("digits") == (8, 8)
    assert datasets.image_shape("mnist") == (28, 28)
    assert datasets.image_shape("fashion_mnist") == (28, 28)
    with pytest.raises(ValueError, match="known datasets: digits, mnist, fashion_mnist"):
        datasets.image_shape("cifar10")


# ------------------------------------------------------------------ digits


def test_digits_arrays():
    from sklearn.datasets import load_digits

    x_tr, y_tr = datasets.load_arrays("digits", "train")
    x_te, y_te = datasets.load_arrays("digits", "test")
    assert x_tr.shape == (1437, 64) and x_te.shape == (360, 64)
    assert y_tr.shape == (1437,) and y_te.shape == (360,)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0 and x_te.min() == 0.0 and x_te.max() == 1.0
    # Intensities, not binarised: the 17 levels k / 16.
    np.testing.assert_array_equal(np.unique(x_tr), np.arange(17, dtype=np.float32) / 16)
    ref = load_digits()
    # Stratified: every class in both splits, in proportion (counts 174..183 overall).
    counts_tr, counts_te = np.bincount(y_tr, minlength=10), np.bincount(y_te, minlength=10)
    np.testing.assert_array_equal(counts_tr + counts_te, np.bincount(ref.target))
    assert counts_tr.min() >= 139 and counts_te.min() >= 35
    np.testing.assert_allclose(counts_te / (counts_tr + counts_te), 0.2, atol=0.01)


def test_digits_split_deterministic_and_disjoint():
    from sklearn.datasets import load_digits

    x1, y1 = datasets.load_arrays("digits", "train")
    datasets._cached_arrays.cache_clear()
    x2, y2 = datasets.load_arrays("digits", "train")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    # A partition: the rows of train and test together are the bundled set
    # exactly once (compared as multisets, since a few digits images repeat).
    x_te, _ = datasets.load_arrays("digits", "test")
    ref = load_digits().data.astype(np.int64)
    ours = (np.concatenate([x1, x_te]) * 16).astype(np.int64)
    np.testing.assert_array_equal(_sorted_rows(ours), _sorted_rows(ref))


def test_digits_takes_no_path():
    with pytest.raises(ValueError, match="bundled"):
        datasets.load_arrays("digits", path="x.npz")


def test_arrays_are_read_only_and_cache_intact():
    x, y = datasets.load_arrays("digits", "test")
    before = x.copy()
    with pytest.raises(ValueError):
        x[0, 0] = 5.0
    with pytest.raises(ValueError):
        x.flags.writeable = True
    with pytest.raises(ValueError):
        y[0] = 3
    np.testing.assert_array_equal(datasets.load_arrays("digits", "test")[0], before)


# ------------------------------------------------------------------ local npz


def test_npz_via_path(tmp_path, no_env):
    raw = _fake_npz(tmp_path / "m.npz")
    for split, n in (("train", 30), ("test", 12)):
        x, y = datasets.load_arrays("mnist", split, path=tmp_path / "m.npz")
        assert x.shape == (n, 784) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        np.testing.assert_allclose(x, raw[f"x_{split}"].reshape(n, 784) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(y, raw[f"y_{split}"])
    # A str path works too.
    x_str, _ = datasets.load_arrays("mnist", "test", path=str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(x_str, x)


def test_npz_scaling_extremes(tmp_path, no_env):
    x_train = np.zeros((2, 28, 28), np.uint8)
    x_train[1] = 255
    x_train[0, 0, :3] = (1, 51, 128)
    _fake_npz(tmp_path / "m.npz", x_train=x_train, y_train=np.array([3, 7], np.uint8))
    x, y = datasets.load_arrays("mnist", "train", path=tmp_path / "m.npz")
    assert x[1].min() == 1.0 and x[1].max() == 1.0
    np.testing.assert_allclose(x[0, :4], [1 / 255, 0.2, 128 / 255, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(y, [3, 7])


def test_npz_via_env_var(tmp_path, monkeypatch, no_env):
    raw = _fake_npz(tmp_path / "f.npz", seed=3)
    monkeypatch.setenv("KERAS_VAE_FASHION_MNIST_PATH", str(tmp_path / "f.npz"))
    x, y = datasets.load_arrays("fashion_mnist", "test")
    np.testing.assert_allclose(x * 255.0, raw["x_test"].reshape(12, 784), atol=1e-4)
    np.testing.assert_array_equal(y, raw["y_test"])
    # Per-dataset variable: mnist does not read the fashion file.
    monkeypatch.setenv("KERAS_VAE_MNIST_PATH", str(tmp_path / "absent.npz"))
    with pytest.raises(FileNotFoundError, match="KERAS_VAE_MNIST_PATH"):
        datasets.load_arrays("mnist", "test")
    # An explicit path beats the variable.
    np.testing.assert_array_equal(datasets.load_arrays("mnist", "test", path=tmp_path / "f.npz")[1], y)


def test_npz_reloaded_when_file_changes(tmp_path, no_env):
    path = tmp_path / "m.npz"
    _fake_npz(path, seed=0)
    first = datasets.load_arrays("mnist", "train", path=path)[0].copy()
    raw = _fake_npz(path, seed=1)
    os.utime(path, ns=(1, 1))  # different stamp even on coarse-clock file systems
    second = datasets.load_arrays("mnist", "train", path=path)[0]
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(second, raw["x_train"].reshape(30, 784) / 255.0, rtol=1e-6)


def test_missing_file(tmp_path, no_env):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        datasets.load_arrays("mnist", "train", path=tmp_path / "nope.npz")


def test_npz_missing_keys(tmp_path, no_env):
    _fake_npz(tmp_path / "m.npz", y_test=None)
    with pytest.raises(ValueError, match="lacks key\\(s\\) y_test"):
        datasets.load_arrays("mnist", "test", path=tmp_path / "m.npz")
    assert datasets.load_arrays("mnist", "train", path=tmp_path / "m.npz")[0].shape == (30, 784)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"x_train": np.zeros((30, 27, 27), np.uint8)}, "expected \\[N, 784\\]"),
        ({"y_train": np.zeros(29, np.uint8)}, "labels have shape"),
        ({"x_train": np.full((30, 28, 28), 300, np.int16)}, "exceed \\[0, 255\\]"),
        ({"x_train": np.full((30, 28, 28), 3.0)}, "ambiguous"),
        ({"x_train": np.full((30, 28, 28), np.nan)}, "finite"),
    ],
)
def test_npz_malformed(tmp_path, no_env, overrides, match):
    _fake_npz(tmp_path / "m.npz", **overrides)
    with pytest.raises(ValueError, match=match):
        datasets.load_arrays("mnist", "train", path=tmp_path / "m.npz")


def test_real_mnist():
    path = os.environ.get("KERAS_VAE_MNIST_PATH")
    if not path or not os.path.isfile(path):
        pytest.skip("real MNIST not available: set KERAS_VAE_MNIST_PATH to a Keras-layout mnist.npz")
    x_tr, y_tr = datasets.load_arrays("mnist", "train")
    x_te, y_te = datasets.load_arrays("mnist", "test")
    assert x_tr.shape == (60000, 784) and x_te.shape == (10000, 784)
    assert y_tr.shape == (60000,) and y_te.shape == (10000,)
    np.testing.assert_array_equal(
        np.bincount(y_te, minlength=10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert abs(float(np.mean(x_tr, dtype=np.float64)) * 255.0 - 33.318) < 1e-2


# ------------------------------------------------------------------ tfds fallback


def test_tfds_offline_error(monkeypatch, tmp_path, no_env):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(datasets, "_reachable", lambda *a, **k: True)  # the host answers; the download fails
    with pytest.raises(RuntimeError) as info:
        datasets.load_arrays("mnist", "train", data_dir=str(tmp_path))
    message = str(info.value)
    for needle in ("download", "path=", "--data-path", "KERAS_VAE_MNIST_PATH", "x_train", "y_test", "no network"):
        assert needle in message
    assert isinstance(info.value.__cause__, ConnectionError)
    with pytest.raises(RuntimeError, match="KERAS_VAE_FASHION_MNIST_PATH"):
        datasets.load("fashion_mnist", "test", data_dir=str(tmp_path))


def test_tfds_success_is_flattened(monkeypatch, tmp_path, no_env):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    calls = []
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28, 1) % 256
    labels = np.array([4, 0, 9], np.int64)

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        return tf.constant(images, tf.uint8), tf.constant(labels)  # what batch_size=-1 gives

    monkeypatch.setattr(tfds, "load", fake_load)
    monkeypatch.setattr(datasets, "_reachable", lambda *a, **k: True)
    x, y = datasets.load_arrays("fashion_mnist", "test", data_dir=str(tmp_path))
    assert calls == [
        ("fashion_mnist", dict(split="test", data_dir=str(tmp_path), batch_size=-1, as_supervised=True))
    ]
    assert x.shape == (3, 784) and y.dtype == np.int32
    np.testing.assert_allclose(x, images.reshape(3, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


# ------------------------------------------------------------------ binarize


def test_binarize_static():
    x, _ = datasets.load_arrays("digits", "train")
    a = datasets.binarize(x, "static", seed=7)
    b = datasets.binarize(x, "static", seed=7)
    c = datasets.binarize(x, "static", seed=8)
    assert a.dtype == np.float32 and a.shape == x.shape
    assert set(np.unique(a)) == {0.0, 1.0}
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.05
    # 92k Bernoulli draws: the mean is within 0.01 of the mean intensity (sd ~0.0014).
    assert abs(a.mean() - x.mean()) < 0.01
    # Exact zeros stay 0, exact ones stay 1.
    assert (a[x == 0] == 0).all() and (a[x == 1] == 1).all()
    # Same draw as the obvious numpy formula (and as tests/conftest.py's binary_digits).
    np.testing.assert_array_equal(a, np.random.default_rng(7).random(x.shape) < x)


def test_binarize_threshold_and_errors():
    x = np.array([[0.0, 0.5, 0.51, 1.0]])
    np.testing.assert_array_equal(datasets.binarize(x, "threshold"), [[0, 0, 1, 1]])
    assert datasets.binarize(x, "threshold").dtype == np.float32
    with pytest.raises(ValueError, match="'static' or 'threshold'"):
        datasets.binarize(x, "dynamic")
    for bad in (np.array([1.5]), np.array([-0.1]), np.array([np.nan])):
        with pytest.raises(ValueError, match="\\[0, 1\\]"):
            datasets.binarize(bad)


def test_binarize_test_is_the_shared_static_draw():
    x, _ = datasets.load_arrays("digits", "test")
    a = datasets.binarize_test(x)
    assert datasets.TEST_BINARIZATION_SEED == 1234
    np.testing.assert_array_equal(a, datasets.binarize(x, "static", seed=datasets.TEST_BINARIZATION_SEED))
    np.testing.assert_array_equal(a, datasets.binarize_test(x.copy()))  # the same images on every call
    assert a.dtype == np.float32 and a.shape == x.shape and set(np.unique(a)) == {0.0, 1.0}
    # The first rows of the test set are binarised alike whether or not the
    # set is cut first (x_test[:limit] in the benchmarks and notebooks).
    np.testing.assert_array_equal(datasets.binarize_test(x[:10]), a[:10])
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        datasets.binarize_test(np.array([2.0]))


# ------------------------------------------------------------------ local_path


def test_local_path(tmp_path, monkeypatch, no_env):
    file = tmp_path / "mnist.npz"
    _fake_npz(file)
    assert datasets.LOCAL_PATH_VARIABLES == {
        "mnist": "KERAS_VAE_MNIST_PATH",
        "fashion_mnist": "KERAS_VAE_FASHION_MNIST_PATH",
    }
    # Neither a path nor the variable: None (load_arrays then uses tfds) ...
    assert datasets.local_path("mnist") is None
    assert datasets.local_path("mnist", None) is None
    # ... an explicit path, absolute whatever was given ...
    monkeypatch.chdir(tmp_path)
    assert datasets.local_path("mnist", "mnist.npz") == str(file)
    assert datasets.local_path("mnist", pathlib.Path("mnist.npz")) == str(file)
    # ... else the variable of that dataset only; an explicit path wins over it.
    monkeypatch.setenv("KERAS_VAE_FASHION_MNIST_PATH", str(file))
    assert datasets.local_path("mnist") is None
    assert datasets.local_path("fashion_mnist") == str(file)
    monkeypatch.setenv("KERAS_VAE_MNIST_PATH", str(tmp_path / "other.npz"))
    assert datasets.local_path("mnist", file) == str(file)


def test_local_path_errors(tmp_path, monkeypatch, no_env):
    with pytest.raises(FileNotFoundError, match="nope.npz \\(from path=\\)"):
        datasets.local_path("mnist", tmp_path / "nope.npz")
    monkeypatch.setenv("KERAS_VAE_MNIST_PATH", str(tmp_path / "gone.npz"))
    with pytest.raises(FileNotFoundError, match="gone.npz \\(from environment variable KERAS_VAE_MNIST_PATH\\)"):
        datasets.local_path("mnist")
    monkeypatch.delenv("KERAS_VAE_MNIST_PATH")
    # required: the message says what to pass, for scripts that do not download.
    for name, var in datasets.LOCAL_PATH_VARIABLES.items():
        with pytest.raises(FileNotFoundError, match=f"No local {name} file: .*--data-path.* {var}; .*mnist.npz layout"):
            datasets.local_path(name, required=True)
    with pytest.raises(ValueError, match="'digits' has no local file; local files exist for mnist, fashion_mnist"):
        datasets.local_path("digits")


# ------------------------------------------------------------------ load: pipeline


def test_load_test_split_order_and_batches():
    x, _ = datasets.load_arrays("digits", "test")
    ds = datasets.load("digits", "test", batch_size=100)
    assert ds.element_spec.shape.as_list() == [None, 64]
    batches = _epoch(ds)
    assert [b.shape for b in batches] == [(100, 64)] * 3 + [(60, 64)]
    assert all(b.dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), x)  # not shuffled, not binarised


def test_load_drop_remainder_and_limit():
    ds = datasets.load("digits", "test", batch_size=100, drop_remainder=True)
    assert ds.element_spec.shape.as_list() == [100, 64]
    assert [b.shape[0] for b in _epoch(ds)] == [100] * 3
    limited = _epoch(datasets.load("digits", "test", batch_size=16, limit=40))
    assert [b.shape[0] for b in limited] == [16, 16, 8]
    np.testing.assert_array_equal(np.concatenate(limited), datasets.load_arrays("digits", "test")[0][:40])
    # limit beyond the split size keeps everything.
    assert sum(b.shape[0] for b in _epoch(datasets.load("digits", "test", limit=10**6))) == 360


def test_load_train_shuffled_each_epoch():
    x, _ = datasets.load_arrays("digits", "train")
    ds = datasets.load("digits", "train", batch_size=500, seed=3)
    e1, e2 = np.concatenate(_epoch(ds)), np.concatenate(_epoch(ds))
    assert e1.shape == (1437, 64)
    assert not np.array_equal(e1, x) and not np.array_equal(e1, e2)
    np.testing.assert_array_equal(_sorted_rows(e1), _sorted_rows(x))  # a permutation of the split
    np.testing.assert_array_equal(_sorted_rows(e2), _sorted_rows(x))
    # Reproducible for a seed; shuffle=False keeps the order for train too.
    np.testing.assert_array_equal(np.concatenate(_epoch(datasets.load("digits", "train", batch_size=500, seed=3))), e1)
    np.testing.assert_array_equal(np.concatenate(_epoch(datasets.load("digits", "train", shuffle=False))), x)


def test_load_static_binarization():
    x, _ = datasets.load_arrays("digits", "test")
    ds = datasets.load("digits", "test", binarization="static", seed=5)
    e1, e2 = np.concatenate(_epoch(ds)), np.concatenate(_epoch(ds))
    np.testing.assert_array_equal(e1, datasets.binarize(x, "static", seed=5))
    np.testing.assert_array_equal(e1, e2)  # fixed across epochs
    # limit binarises the same leading rows the same way.
    limited = np.concatenate(_epoch(datasets.load("digits", "test", binarization="static", seed=5, limit=50)))
    np.testing.assert_array_equal(limited, e1[:50])


def test_load_dynamic_binarization():
    x, _ = datasets.load_arrays("digits", "test")
    ds = datasets.load("digits", "test", batch_size=64, binarization="dynamic", seed=11)
    e1, e2 = _epoch(ds), _epoch(ds)
    for b in e1 + e2:
        assert b.dtype == np.float32 and set(np.unique(b)) <= {0.0, 1.0}
    e1, e2 = np.concatenate(e1), np.concatenate(e2)
    assert e1.shape == x.shape
    assert np.mean(e1 != e2) > 0.05  # fresh draw every epoch
    assert (e1[x == 0] == 0).all() and (e1[x == 1] == 1).all()
    # Same seed => same first (and second) epoch from a new dataset; other seed => different.
    again = datasets.load("digits", "test", batch_size=64, binarization="dynamic", seed=11)
    np.testing.assert_array_equal(np.concatenate(_epoch(again)), e1)
    np.testing.assert_array_equal(np.concatenate(_epoch(again)), e2)
    other = datasets.load("digits", "test", batch_size=64, binarization="dynamic", seed=12)
    assert not np.array_equal(np.concatenate(_epoch(other)), e1)


def test_load_dynamic_mean_matches_intensity():
    n, epochs = 20, 200
    x, _ = datasets.load_arrays("digits", "test")
    x = x[:n]
    ds = datasets.load("digits", "test", batch_size=8, binarization="dynamic", limit=n, seed=0)
    draws = np.stack([np.concatenate(_epoch(ds)) for _ in range(epochs)])
    assert draws.shape == (epochs, n, 64)
    mean = draws.mean(axis=0)
    # Per pixel: within 5 standard errors (sd <= 0.5 / sqrt(200) = 0.035).
    se = np.sqrt(x * (1 - x) / epochs)
    assert (np.abs(mean - x) <= 5 * se + 1e-6).all()
    assert abs(mean.mean() - x.mean()) < 0.01
    # Draws are independent across epochs: no two epochs identical.
    flat = draws.reshape(epochs, -1)
    assert len({row.tobytes() for row in flat}) == epochs


def test_load_shuffled_dynamic_is_a_permutation_of_binary_draws():
    ds = datasets.load("digits", "train", batch_size=128, binarization="dynamic", limit=300, seed=2)
    batches = _epoch(ds)
    assert [b.shape[0] for b in batches] == [128, 128, 44]
    assert all(set(np.unique(b)) <= {0.0, 1.0} for b in batches)


def test_load_fits_a_keras_model():
    """model.fit takes the x-only dataset directly (an unsupervised loss, no targets)."""
    import keras

    class Reconstruction(keras.layers.Layer):
        def call(self, x):
            self.add_loss(keras.ops.mean(keras.ops.square(self.dense(x) - x)))
            return x

        def build(self, shape):
            self.dense = keras.layers.Dense(shape[-1])

    inputs = keras.Input((64,))
    model = keras.Model(inputs, Reconstruction()(inputs))
    model.compile(optimizer="adam")
    ds = datasets.load("digits", "train", batch_size=256, binarization="dynamic", limit=512)
    history = model.fit(ds, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


# ------------------------------------------------------------------ load: errors


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(name="cifar10"), ValueError, "known datasets: digits, mnist, fashion_mnist"),
        (dict(split="validation"), ValueError, "expected 'train' or 'test'"),
        (dict(binarization="bernoulli"), ValueError, "options: none, static, dynamic"),
        (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
        (dict(batch_size=2.5), ValueError, "batch_size must be a positive integer"),
        (dict(limit=0), ValueError, "empty dataset"),
        (dict(limit=-1), ValueError, "limit must be"),
        (dict(limit=10, batch_size=20, drop_remainder=True), ValueError, "empty dataset"),
    ],
)
def test_load_errors(kwargs, error, match):
    kwargs = dict(dict(name="digits", split="test"), **kwargs)
    with pytest.raises(error, match=match):
        datasets.load(**kwargs)


def test_load_arrays_errors(tmp_path, no_env):
    with pytest.raises(ValueError, match="known datasets"):
        datasets.load_arrays("emnist")
    with pytest.raises(ValueError, match="expected 'train' or 'test'"):
        datasets.load_arrays("digits", "valid")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        datasets.load("mnist", path=tmp_path / "missing.npz")
