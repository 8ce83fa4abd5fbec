"""Tests for keras_vae.plotting, with a small deterministic numpy fake model."""

import importlib.util
import json
import math
import pathlib
import statistics
import types

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

try:
    from keras_vae import plotting
except ImportError:  # Package __init__ not there yet: load the file directly.
    _PATH = pathlib.Path(__file__).resolve().parents[1] / "keras_vae" / "plotting.py"
    _SPEC = importlib.util.spec_from_file_location("_kv_plotting", _PATH)
    plotting = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(plotting)


class FakeModel:
    """Numpy stand-in for the VAE API; records every decode/sample input."""

    def __init__(self, input_dim=64, latent_dim=2, seed=0):
        rng = np.random.default_rng(seed)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.w_dec = rng.normal(size=(latent_dim, input_dim))
        self.b_dec = rng.normal(size=input_dim)
        self.w_enc = rng.normal(size=(input_dim, latent_dim)) / math.sqrt(input_dim)
        self.decoded = []
        self.sample_calls = []

    def decode(self, z):
        z = np.asarray(z)
        assert z.dtype == np.float32 and z.shape[1] == self.latent_dim
        self.decoded.append(z.copy())
        return {"mean": 1.0 / (1.0 + np.exp(-(z @ self.w_dec + self.b_dec)))}

    def encode(self, x):
        x = np.asarray(x, np.float64)
        loc = (x - 0.5) @ self.w_enc
        return {"loc": loc, "scale": np.ones_like(loc)}

    def posterior_mean(self, x):
        return self.encode(x)["loc"]

    def reconstruct(self, x):
        return self.decode(self.posterior_mean(x).astype(np.float32))["mean"]

    def sample(self, n, seed=None):
        self.sample_calls.append((n, seed))
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, self.latent_dim)).astype(np.float32)
        x_mean = self.decode(z)["mean"]
        return {"x_mean": x_mean, "x": (rng.uniform(size=x_mean.shape) < x_mean)
                .astype(np.float32), "z": z}


def _pixels(ax):
    return np.asarray(ax.images[0].get_array())


def _data(n=12, d=64, seed=1):
    return np.random.default_rng(seed).uniform(size=(n, d)).astype(np.float32)


def _quantiles(n):
    nd = statistics.NormalDist()
    return np.array([nd.inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])


# ---------------------------------------------------------------- image_grid


def test_image_grid_pixels_equal_input():
    imgs = _data(7)
    fig = plotting.image_grid(imgs, ncols=3, title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7  # 3x3 grid, two unused cells removed
    for i, ax in enumerate(fig.axes):
        np.testing.assert_allclose(_pixels(ax), imgs[i].reshape(8, 8))
        assert ax.images[0].get_clim() == (0.0, 1.0)
        assert ax.images[0].get_cmap().name == "gray"
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert fig._suptitle.get_text() == "t"


def test_image_grid_3d_input_clipped_and_non_square_shape():
    imgs = np.linspace(-1.0, 2.0, 3 * 4 * 16).reshape(3, 4, 16)
    fig = plotting.image_grid(imgs)
    assert _pixels(fig.axes[2]).shape == (4, 16)
    np.testing.assert_allclose(_pixels(fig.axes[0]), np.clip(imgs[0], 0, 1))
    flat = imgs.reshape(3, -1)
    fig = plotting.image_grid(flat, image_shape=(4, 16), ncols=1)
    np.testing.assert_allclose(_pixels(fig.axes[1]), np.clip(imgs[1], 0, 1))


def test_bad_image_shape_raises():
    with pytest.raises(ValueError, match="image_shape"):
        plotting.image_grid(np.zeros((2, 10)))  # 10 is not a perfect square
    with pytest.raises(ValueError, match="image_shape"):
        plotting.image_grid(np.zeros((2, 64)), image_shape=(3, 3))
    with pytest.raises(ValueError, match="image_shape"):
        plotting.plot_samples(FakeModel(input_dim=12))


def test_image_grid_converts_keras_tensors():
    keras = pytest.importorskip("keras")
    imgs = _data(2, 16)
    fig = plotting.image_grid(keras.ops.convert_to_tensor(imgs))
    np.testing.assert_allclose(_pixels(fig.axes[1]), imgs[1].reshape(4, 4))


# ------------------------------------------------------------- model plots


def test_plot_samples_shows_x_mean():
    model = FakeModel()
    fig = plotting.plot_samples(model, n=10, seed=3)
    assert model.sample_calls == [(10, 3)]
    expected = model.sample(10, seed=3)["x_mean"]
    assert len(fig.axes) == 10
    for i, ax in enumerate(fig.axes):
        np.testing.assert_allclose(_pixels(ax), expected[i].reshape(8, 8), rtol=1e-6)
    assert "p(x|z)" in fig._suptitle.get_text()


@pytest.mark.parametrize("n,n_axes", [(4, 8), (13, 26)])
def test_plot_reconstructions_rows(n, n_axes):
    model, x = FakeModel(), _data(20)
    fig = plotting.plot_reconstructions(model, x, n=n)
    assert len(fig.axes) == n_axes
    recon = model.reconstruct(x[:n])
    ncols = min(n, 10)
    # Row pairs of `ncols` cells; the last pair may be short.
    inputs, recons = [], []
    axes = list(fig.axes)
    while axes:
        k = min(ncols, len(axes) // 2)
        inputs += axes[:k]
        recons += axes[k:2 * k]
        assert axes[0].get_ylabel() == "input"
        assert axes[k].get_ylabel() == "reconstruction"
        axes = axes[2 * k:]
    for i in range(n):
        np.testing.assert_allclose(_pixels(inputs[i]), x[i].reshape(8, 8))
        np.testing.assert_allclose(_pixels(recons[i]), recon[i].reshape(8, 8),
                                   rtol=1e-6)


def test_plot_manifold_decodes_normal_quantile_grid():
    model, n = FakeModel(), 5
    fig = plotting.plot_manifold(model, n=n)
    z = np.concatenate(model.decoded)
    q = _quantiles(n)
    assert z.shape == (n * n, 2)
    np.testing.assert_allclose(z[0], [q[0], q[0]], rtol=1e-6)
    np.testing.assert_allclose(z[-1], [q[-1], q[-1]], rtol=1e-6)
    assert q[0] == pytest.approx(-1.644854, abs=1e-5)
    np.testing.assert_allclose(np.unique(z[:, 0]), q.astype(np.float32))
    np.testing.assert_allclose(np.unique(z[:, 1]), q.astype(np.float32))
    ax = fig.axes[0]
    canvas = _pixels(ax)
    assert canvas.shape == (n * 8, n * 8)
    # Top-left tile: smallest z1, largest z2; bottom-right: largest z1, smallest z2.
    top_left = model.decode(np.array([[q[0], q[-1]]], np.float32))["mean"]
    bottom_right = model.decode(np.array([[q[-1], q[0]]], np.float32))["mean"]
    np.testing.assert_allclose(canvas[:8, :8], top_left.reshape(8, 8), rtol=1e-5)
    np.testing.assert_allclose(canvas[-8:, -8:], bottom_right.reshape(8, 8),
                               rtol=1e-5)
    assert ax.get_xlabel() == "z1" and ax.get_ylabel() == "z2"
    xt = [t.get_text() for t in ax.get_xticklabels()]
    yt = [t.get_text() for t in ax.get_yticklabels()]
    assert xt[0] == "-1.64" and xt[-1] == "1.64"
    assert yt[0] == "-1.64" and yt[-1] == "1.64"
    assert ax.get_yticks()[0] > ax.get_yticks()[-1]  # z2 grows upwards


def test_plot_manifold_requires_2d_latent():
    with pytest.raises(ValueError, match="latent_dim"):
        plotting.plot_manifold(FakeModel(latent_dim=3))


def test_plot_latent_space_2d_with_labels():
    model, x = FakeModel(), _data(30)
    y = np.arange(30) % 3
    loc = model.encode(x)["loc"]
    fig = plotting.plot_latent_space(model, x)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), loc)
    assert "z1" in ax.get_xlabel() and "z2" in ax.get_ylabel()

    fig = plotting.plot_latent_space(model, x, y=y)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    for c, coll in enumerate(ax.collections):
        np.testing.assert_allclose(coll.get_offsets(), loc[y == c])

    fig = plotting.plot_latent_space(model, x, y=np.linspace(0, 1, 30))
    assert len(fig.axes) == 2  # scatter + colour bar


def test_plot_latent_space_uses_pca_above_2d():
    model, x = FakeModel(latent_dim=5), _data(40)
    loc = model.encode(x)["loc"]
    fig = plotting.plot_latent_space(model, x)
    ax = fig.axes[0]
    assert "PC1" in ax.get_xlabel() and "PC2" in ax.get_ylabel()
    assert "PCA" in ax.get_title()
    pts = np.asarray(ax.collections[0].get_offsets())
    centred = loc - loc.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    for k in range(2):  # equal up to the sign of each component
        sign = np.sign(pts[:, k] @ ref[:, k])
        np.testing.assert_allclose(pts[:, k], sign * ref[:, k], atol=1e-10)
    pct = 100 * s[0] ** 2 / np.sum(s ** 2)
    assert f"({pct:.0f}% of variance)" in ax.get_xlabel()


def test_plot_latent_space_pca_of_one_example_says_why():
    with pytest.raises(ValueError, match="at least 2 examples; got 1"):
        plotting.plot_latent_space(FakeModel(latent_dim=5), _data(1))


def test_plot_traversal_varies_one_dim_per_row():
    model = FakeModel(latent_dim=3)
    base = np.array([0.5, -1.0, 2.0], np.float32)
    fig = plotting.plot_traversal(model, z=base)
    z = np.concatenate(model.decoded)
    values = np.linspace(-3, 3, 9)
    assert z.shape == (27, 3) and len(fig.axes) == 27
    for d in range(3):
        rows = z[9 * d:9 * (d + 1)]
        np.testing.assert_allclose(rows[:, d], values, rtol=1e-6)
        others = [k for k in range(3) if k != d]
        np.testing.assert_allclose(rows[:, others], np.tile(base[others], (9, 1)))
        assert fig.axes[9 * d].get_ylabel() == f"z[{d}]"
    expected = model.decode(z[9:10])["mean"].reshape(8, 8)
    np.testing.assert_allclose(_pixels(fig.axes[9]), expected, rtol=1e-6)


def test_plot_traversal_base_from_x_or_zeros_and_default_dims():
    model, x = FakeModel(latent_dim=12), _data(3)
    plotting.plot_traversal(model, x=x, dims=[4], values=[1.0, 2.0])
    z = model.decoded[-1]
    base = model.encode(x[:1])["loc"][0]
    np.testing.assert_allclose(z[:, 4], [1.0, 2.0])
    np.testing.assert_allclose(z[:, :4], np.tile(base[:4], (2, 1)), rtol=1e-6)
    fig = plotting.plot_traversal(model, values=[0.0])
    z = model.decoded[-1]
    assert z.shape == (10, 12) and np.all(z == 0)  # first min(12, 10) dims
    assert [ax.get_ylabel() for ax in fig.axes] == [f"z[{d}]" for d in range(10)]


# ----------------------------------------------------------- training curves


def _history():
    return {"elbo": [-120.0, -110.0, -105.0], "val_elbo": [-121.0, -112.0, -108.0],
            "kl": [10.0, 12.0, 13.0], "loss": [120.0, 110.0, 105.0]}


def test_plot_history_skips_missing_metrics(tmp_path):
    h = _history()
    for src in (h, types.SimpleNamespace(history=h)):
        fig = plotting.plot_history(src)
        assert [ax.get_title() for ax in fig.axes] == ["elbo", "kl"]
        ax = fig.axes[0]
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "nats per example"
        (train, val) = ax.lines
        np.testing.assert_allclose(train.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(train.get_ydata(), h["elbo"])
        np.testing.assert_allclose(val.get_ydata(), h["val_elbo"])
        assert len(fig.axes[1].lines) == 1  # no val_kl
    path = tmp_path / "history.json"
    path.write_text(json.dumps(h))
    fig = plotting.plot_history(str(path), metrics=("kl",))
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), h["kl"])


def test_plot_history_raises_without_metrics():
    with pytest.raises(ValueError, match="available keys"):
        plotting.plot_history({"loss": [1.0, 2.0]})


def test_plot_comparison_x_values_and_skips():
    h1, h2 = _history(), {"val_elbo": [-130.0, -125.0]}
    fig = plotting.plot_comparison({"aevb": h1, "wake_sleep": h2, "other": {}})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["aevb", "wake_sleep"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [-130.0, -125.0])

    x = {"aevb": [1e4, 1e5, 1e6], "wake_sleep": [1e5, 1e6]}
    fig = plotting.plot_comparison({"aevb": h1, "wake_sleep": h2}, x=x)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training examples seen"
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), x["aevb"])
    with pytest.raises(ValueError, match="metric"):
        plotting.plot_comparison({"a": h1}, metric="val_nll")
    with pytest.raises(ValueError, match="x"):
        plotting.plot_comparison({"aevb": h1}, x={"aevb": [1, 2]})


# ----------------------------------------------------------------- saving

_MODEL2 = FakeModel()
_PLOTS = {
    "image_grid": lambda p: plotting.image_grid(_data(5), path=p),
    "samples": lambda p: plotting.plot_samples(_MODEL2, n=9, path=p),
    "reconstructions": lambda p: plotting.plot_reconstructions(_MODEL2, _data(), path=p),
    "manifold": lambda p: plotting.plot_manifold(_MODEL2, n=6, path=p),
    "latent_space": lambda p: plotting.plot_latent_space(
        _MODEL2, _data(30), y=np.arange(30) % 4, path=p),
    "traversal": lambda p: plotting.plot_traversal(_MODEL2, path=p),
    "history": lambda p: plotting.plot_history(_history(), path=p),
    "comparison": lambda p: plotting.plot_comparison(
        {"a": _history(), "b": _history()}, path=p),
}


@pytest.mark.parametrize("name", sorted(_PLOTS))
def test_saves_readable_png(tmp_path, name):
    path = tmp_path / "nested" / "dir" / f"{name}.png"
    fig = _PLOTS[name](path)
    assert isinstance(fig, Figure)
    assert path.exists() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size[0] > 50 and img.size[1] > 50


def test_epoch_axes_have_whole_number_ticks():
    h = {"elbo": [-120.0, -110.0, -105.0], "val_elbo": [-121.0, -112.0, -108.0]}
    for fig in (plotting.plot_history(h, metrics=("elbo",)), plotting.plot_comparison({"a": h})):
        ax = fig.axes[0]
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2
        np.testing.assert_array_equal(ticks, np.round(ticks))


def test_latent_space_of_binary_units_uses_the_head_mean():
    # A Bernoulli top layer has no "loc": the plot asks the recognition head.
    import keras_vae

    model = keras_vae.HelmholtzMachine(64, latent_dims=(2,), hidden_dims=(8,), latent="bernoulli",
                                       objective="wake_sleep", seed=0)
    x = _data(20)
    fig = plotting.plot_latent_space(model, x)
    probs = np.asarray(model.posterior_mean(x))
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), probs, rtol=1e-6)
    assert probs.min() > 0.0 and probs.max() < 1.0
