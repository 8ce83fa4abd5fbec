"""Mixed precision: layers compute in float16/bfloat16, distributions and losses in float32."""

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import objectives

POLICIES = ["mixed_float16", "mixed_bfloat16"]


def _build(policy, make):
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        return make()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def _vae():
    return keras_vae.VAE(64, latent_dim=4, hidden_dims=(32, 32), seed=0)


def _hm():
    return keras_vae.HelmholtzMachine(64, latent_dims=(8, 4), hidden_dims=((32,), (16,)), seed=0)


@pytest.mark.parametrize("make", [_vae, _hm], ids=["vae", "hm"])
@pytest.mark.parametrize("policy", POLICIES)
def test_low_precision_layers_float32_terms_and_elbo_matches(policy, make, binary_digits):
    x = binary_digits[1][:200]
    reference = make()
    model = _build(policy, make)
    model.set_weights(reference.get_weights())
    low = policy.split("_")[1]
    dense = model.recognition_networks[0].layers[0]
    assert dense.compute_dtype == low and dense.kernel.dtype == "float32"
    assert model.recognition_heads[0].loc_dense.compute_dtype == low
    assert model.observation.logits_dense.compute_dtype == low

    terms = model.terms(x, k=20)
    for t in [terms.log_px, *terms.log_p, *terms.log_q, terms.kl_top]:
        assert t.dtype == "float32"
    params = model.recognition_heads[0](model.recognition_networks[0](x))
    assert all(v.dtype == "float32" for v in params.values())

    # Same weights, same seed: the ELBO agrees with float32 to low-precision rounding.
    elbo = np.asarray(objectives.elbo(terms)["elbo"])
    elbo32 = np.asarray(objectives.elbo(reference.terms(x, k=20))["elbo"])
    assert np.all(np.isfinite(elbo))
    tolerance = 0.01 if policy == "mixed_float16" else 0.05  # bfloat16 has an 8-bit mantissa
    assert abs(elbo.mean() - elbo32.mean()) < tolerance * abs(elbo32.mean())


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_mixed_float16_training_uses_the_loss_scale(jit_compile, binary_digits):
    """LossScaleOptimizer with the custom train_step: updates match float32 training."""
    x = binary_digits[0][:320]
    reference = _vae()
    reference.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    model = _build("mixed_float16", _vae)
    model.set_weights(reference.get_weights())
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    start = [np.array(w) for w in reference.get_weights()]
    history = model.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0)
    reference.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert int(model.optimizer.iterations) == 20
    assert float(model.optimizer.dynamic_scale) > 1.0
    # The loss was scaled up before differentiation and the gradients scaled
    # back down: the weights moved as in float32 (not 2^15 times less or more).
    moved = [np.array(w) - s for w, s in zip(model.get_weights(), start)]
    moved32 = [np.array(w) - s for w, s in zip(reference.get_weights(), start)]
    ratio = np.linalg.norm(np.concatenate([m.ravel() for m in moved])) / np.linalg.norm(
        np.concatenate([m.ravel() for m in moved32])
    )
    assert 0.8 < ratio < 1.25, ratio
    np.testing.assert_allclose(history.history["loss"][-1], reference.history.history["loss"][-1], rtol=0.02)


def test_mixed_bfloat16_trains_and_evaluates(binary_digits):
    train, test = binary_digits
    model = _build("mixed_bfloat16", _hm)
    model.compile(keras.optimizers.Adam(3e-3))
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = model.evaluate(test, batch_size=100, verbose=0, return_dict=True)
    model.fit(train, epochs=3, batch_size=50, verbose=0)
    after = model.evaluate(test, batch_size=100, verbose=0, return_dict=True)
    assert np.isfinite(after["elbo"]) and after["elbo"] > before["elbo"] + 3.0, (before, after)
