"""keras_vae.device_update: the optimizer step of mirrored variables, one program per device.

In-process tests use ``MirroredStrategy`` over the one CPU device (logical
devices cannot be added once TensorFlow has started); tests/test_distribute.py
checks two replicas and two workers against one device.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import device_update

SHAPES = [(5, 3), (3,), (3, 2)]


def _variables():
    rng = np.random.default_rng(0)
    return [keras.Variable(rng.normal(size=s).astype("float32"), name=f"v{i}") for i, s in enumerate(SHAPES)]


def _gradients(step):
    rng = np.random.default_rng(100 + step)
    return [tf.constant(rng.normal(size=s).astype("float32")) for s in SHAPES]


OPTIMIZERS = {
    "adam_ema_clip": lambda: keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9, global_clipnorm=1.0),
    "adamw": lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1),
    "sgd_momentum_accumulate": lambda: keras.optimizers.SGD(0.1, momentum=0.9, gradient_accumulation_steps=2),
    "rmsprop_schedule": lambda: keras.optimizers.RMSprop(keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("jit_compile", [True, False])
def test_device_update_equals_the_optimizer_on_one_device(name, jit_compile):
    """Four steps of DeviceUpdate under a strategy against ``optimizer.apply`` without one."""
    reference_vars, reference = _variables(), OPTIMIZERS[name]()
    reference.build(reference_vars)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        mirrored_vars, optimizer = _variables(), OPTIMIZERS[name]()
        optimizer.build(mirrored_vars)
    assert device_update.DeviceUpdate.supports(optimizer, mirrored_vars, strategy)
    update = device_update.DeviceUpdate(optimizer, mirrored_vars, strategy, jit_compile=jit_compile)
    step = tf.function(lambda grads: update(grads))
    for i in range(4):
        reference.apply(_gradients(i), reference_vars)
        with strategy.scope():
            step(_gradients(i))
    for a, b in zip(reference_vars + reference.variables, mirrored_vars + optimizer.variables):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-6, atol=1e-7, err_msg=a.path)
    assert int(optimizer.iterations.numpy()) == int(reference.iterations.numpy()) > 0
    # The variables are the strategy's again after tracing.
    assert isinstance(mirrored_vars[0]._value, tf.distribute.DistributedValues)
    assert "_backend_update_step" not in optimizer.__dict__


def test_a_missing_gradient_leaves_its_variable():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        variables, optimizer = _variables(), keras.optimizers.SGD(0.1)
        optimizer.build(variables)
    before = [np.asarray(v) for v in variables]
    update = device_update.DeviceUpdate(optimizer, variables, strategy)
    grads = _gradients(0)
    with strategy.scope(), pytest.warns(UserWarning, match="Gradients do not exist for variables"):
        tf.function(lambda g0, g2: update([g0, None, g2]))(grads[0], grads[2])
    np.testing.assert_allclose(np.asarray(variables[0]), before[0] - 0.1 * grads[0].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(variables[1]), before[1])
    with pytest.raises(ValueError, match="2 gradients for 3 variables"):
        update(grads[:2])


def test_supports_only_built_mirrored_variables():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        variables, optimizer = _variables(), keras.optimizers.Adam()
        assert not device_update.DeviceUpdate.supports(optimizer, variables, strategy)  # not built
        optimizer.build(variables)
        scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
        scaled.build(variables)
    assert device_update.DeviceUpdate.supports(optimizer, variables, strategy)
    assert not device_update.DeviceUpdate.supports(scaled, variables, strategy)
    # Variables made outside the strategy, or no mirrored strategy at all.
    plain, plain_optimizer = _variables(), keras.optimizers.Adam()
    plain_optimizer.build(plain)
    assert not device_update.DeviceUpdate.supports(plain_optimizer, plain, strategy)
    assert not device_update.DeviceUpdate.supports(optimizer, variables, tf.distribute.OneDeviceStrategy("/cpu:0"))

