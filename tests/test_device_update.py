"""keras_vae.device_update: the optimizer step of mirrored variables, one program per device.

In-process tests use ``MirroredStrategy`` over the one CPU device (logical
devices cannot be added once TensorFlow has started); the sharded update of
two devices runs in a process of its own (tests/_worker_device_update.py), and
tests/test_distribute.py checks two replicas and two workers against one device.
"""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_vae import device_update

ROOT = pathlib.Path(__file__).resolve().parents[1]
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



def test_balanced_shards_split_by_size():
    shards = device_update.DeviceUpdate.balanced_shards({0: 100, 1: 10, 2: 60, 4: 45}, 2)
    assert shards == [(0, 1), (2, 4)]
    assert device_update.DeviceUpdate.balanced_shards({0: 5}, 3) == [(0,), (), ()]


@pytest.mark.slow  # A process of its own with two logical devices.
def test_sharded_update_on_two_devices_equals_one_device(tmp_path):
    """Each of two CPU devices updates its share; after ``synchronize`` every copy is equal.

    Two replicas with different gradients (one variable without any) against
    the optimizer on plain variables with the summed gradients, in a process
    of its own (logical devices are set before TensorFlow starts).
    """
    out = tmp_path / "update.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_worker_device_update.py"), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = np.load(out)
    # The optimizers whose step reads every variable keep the whole update on each device.
    expect_sharded = {"adam": True, "adamw_clipnorm": True, "rmsprop_schedule": True,
                      "adam_global_clipnorm": False, "sgd_momentum_ema": False}  # fmt: skip
    for name, sharded in expect_sharded.items():
        assert bool(result[f"{name}_sharded"]) is sharded, name
        # Sharded, the optimizer state of each share lives on its device until synchronize.
        assert bool(result[f"{name}_equal_before_sync"]) is (not sharded), name
        assert bool(result[f"{name}_equal_after_sync"]), name
        count = len([k for k in result.files if k.startswith(f"{name}_reference_")])
        assert count > len(SHAPES)
        for i in range(count):
            np.testing.assert_allclose(
                result[f"{name}_mirrored_{i}"], result[f"{name}_reference_{i}"], rtol=2e-6, atol=1e-6,
                err_msg=f"{name} variable {i}",
            )  # fmt: skip
