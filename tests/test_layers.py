"""keras_vae.layers.Dense and its fan-in uniform initialisation."""

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae.initializers import FanInUniform
from keras_vae.layers import Dense


def test_fan_in_uniform_matches_the_uniform_law():
    # U(-b, b) with b = 1/sqrt(fan_in): max near b, variance b^2 / 3.
    w = np.asarray(FanInUniform(seed=0)((400, 300)))
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    np.testing.assert_allclose(w.var(), bound**2 / 3, rtol=0.02)
    np.testing.assert_allclose(w.mean(), 0.0, atol=bound / 50)
    # A convolution kernel's fan-in is kh * kw * c_in.
    k = np.asarray(FanInUniform(seed=1)((3, 3, 8, 16)))
    assert np.abs(k).max() <= 1 / np.sqrt(72)
    assert np.abs(k).max() > 0.95 / np.sqrt(72)


def test_fan_in_uniform_needs_fan_in_for_biases():
    with pytest.raises(ValueError, match="needs fan_in"):
        FanInUniform()((10,))
    b = np.asarray(FanInUniform(fan_in=25, seed=0)((1000,)))
    assert 0.19 < np.abs(b).max() <= 0.2
    with pytest.raises(ValueError, match="positive"):
        FanInUniform(fan_in=0)


def test_fan_in_uniform_config_round_trip():
    init = FanInUniform(fan_in=7, seed=3)
    again = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert isinstance(again, FanInUniform) and again.fan_in == 7
    np.testing.assert_array_equal(np.asarray(init((5,))), np.asarray(again((5,))))


def test_dense_kernel_and_bias_start_within_the_fan_in_bound():
    layer = Dense(64)
    layer.build((None, 100))
    for w in (layer.kernel, layer.bias):
        values = np.asarray(w)
        assert np.abs(values).max() <= 0.1
        assert values.std() > 0.05  # spread over the interval, not zeros
    # Explicit initializers are kept.
    zeros = Dense(3, bias_initializer="zeros")
    zeros.build((None, 4))
    np.testing.assert_array_equal(np.asarray(zeros.bias), 0.0)


def test_every_dense_layer_of_a_model_uses_the_fan_in_initialisation():
    model = keras_vae.presets.from_preset("burda_2layer", seed=0)
    dense = [layer for layer in keras_vae._keras_compat.flatten_layers(model) if isinstance(layer, keras.layers.Dense)]
    assert len(dense) >= 10
    for layer in dense:
        assert isinstance(layer, Dense), layer.name
        bound = 1 / np.sqrt(layer.kernel.shape[0])
        assert np.abs(np.asarray(layer.kernel)).max() <= bound
        if layer.name != "scale":  # scale biases start at softplus^-1(1 - floor)
            assert np.abs(np.asarray(layer.bias)).max() <= bound


def test_same_seed_same_initial_weights():
    a = keras_vae.presets.from_preset("burda_1layer", seed=5)
    b = keras_vae.presets.from_preset("burda_1layer", seed=5)
    c = keras_vae.presets.from_preset("burda_1layer", seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_the_objective_picks_the_kernel_initializer():
    from keras_vae.layers import default_kernel_initializer

    with default_kernel_initializer(keras.initializers.GlorotUniform):
        glorot = Dense(4)
    assert isinstance(glorot.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(glorot.bias_initializer, FanInUniform)
    assert isinstance(Dense(4).kernel_initializer, FanInUniform)  # the block is closed
    for objective, kind in [("elbo", FanInUniform), ("iwae", FanInUniform),
                            ("wake_sleep", keras.initializers.GlorotUniform),
                            ("reweighted_wake_sleep", keras.initializers.GlorotUniform)]:  # fmt: skip
        model = keras_vae.presets.from_preset("burda_2layer", objective=objective, seed=0)
        dense = [lay for lay in keras_vae._keras_compat.flatten_layers(model) if isinstance(lay, keras.layers.Dense)]
        assert all(isinstance(lay.kernel_initializer, kind) for lay in dense), objective
    # Glorot's interval for a 784 -> 200 kernel is wider than 1/sqrt(784).
    model = keras_vae.presets.from_preset("burda_1layer", objective="wake_sleep", seed=0)
    kernel = np.asarray(model.recognition_networks[0].layers[0].kernel)
    assert kernel.shape == (784, 200) and np.abs(kernel).max() > 1.5 / np.sqrt(784)
