"""Tests for keras_vae.presets: the Burda et al. (2015) architectures, defined once."""

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import presets

BURDA_1LAYER = {"latent_dims": (50,), "hidden_dims": ((200, 200),), "activation": "tanh", "likelihood": "bernoulli"}
BURDA_2LAYER = {
    "latent_dims": (100, 50),
    "hidden_dims": ((200, 200), (100, 100)),
    "activation": "tanh",
    "likelihood": "bernoulli",
}


BURDA = ("burda_1layer", "burda_2layer")


def test_preset_contents():
    assert set(presets.PRESETS) == {"burda_1layer", "burda_2layer", "conv_mnist"}
    assert {k: presets.PRESETS[k] for k in BURDA} == {"burda_1layer": BURDA_1LAYER, "burda_2layer": BURDA_2LAYER}
    assert presets.get_preset("burda_2layer") == BURDA_2LAYER


def test_get_preset_returns_a_copy():
    preset = presets.get_preset("burda_2layer")
    preset["latent_dims"] = (7,)
    assert presets.PRESETS["burda_2layer"]["latent_dims"] == (100, 50)
    assert presets.get_preset("burda_2layer") is not presets.get_preset("burda_2layer")


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown preset 'burda_3layer'; choose from burda_1layer, burda_2layer"):
        presets.get_preset("burda_3layer")
    with pytest.raises(ValueError, match="Unknown preset"):
        presets.from_preset("vae")


@pytest.mark.parametrize(
    "name, latent_dims, hidden_dims, params",
    [
        # 784-200-200-[50]-200-200-784: encoder 197,200, q 20,100, decoder 50,400, pixels 157,584.
        ("burda_1layer", [50], [[200, 200]], 425_284),
        # 784-200-200-[100]-100-100-[50] and the mirrored generative networks.
        ("burda_2layer", [100, 50], [[200, 200], [100, 100]], 521_084),
    ],
)
def test_from_preset_builds_the_documented_model(name, latent_dims, hidden_dims, params):
    model = presets.from_preset(name, seed=0)
    assert isinstance(model, keras_vae.HelmholtzMachine)
    assert model.input_dim == 784
    assert model.latent_dims == latent_dims
    assert model.hidden_dims == hidden_dims
    assert model.activation == "tanh" and model.likelihood == "bernoulli"
    assert model.objective == "elbo" and model.n_samples == 1
    assert model.count_params() == params


def test_from_preset_overrides():
    model = presets.from_preset("burda_2layer", input_dim=64, objective="iwae", n_samples=5, seed=3)
    assert (model.input_dim, model.objective, model.n_samples, model.seed) == (64, "iwae", 5, 3)
    assert model.latent_dims == [100, 50]
    # An override of a preset's own argument wins, and leaves the preset alone.
    model = presets.from_preset("burda_1layer", latent_dims=(2,), activation="relu")
    assert model.latent_dims == [2] and model.activation == "relu"
    assert model.hidden_dims == [[200, 200]]
    assert presets.PRESETS["burda_1layer"] == BURDA_1LAYER


def test_from_preset_is_the_explicit_model():
    """Same weights as the constructor call it replaces (in the benchmarks), for one global seed."""
    keras.utils.set_random_seed(0)
    explicit = keras_vae.HelmholtzMachine(
        784, latent_dims=(100, 50), hidden_dims=((200, 200), (100, 100)), activation="tanh", seed=0
    )
    keras.utils.set_random_seed(0)
    preset = presets.from_preset("burda_2layer", seed=0)
    assert len(explicit.weights) == len(preset.weights)
    for a, b in zip(explicit.weights, preset.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
