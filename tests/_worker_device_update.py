"""Worker process for tests/test_device_update.py (not a test module).

On two logical CPU devices (configured before TensorFlow starts, hence a
process of its own), runs four steps of ``DeviceUpdate`` for each optimizer
of ``optimizers()``, with a different gradient on each replica, and of the
same optimizer on plain variables with the summed gradients. Writes to an
``.npz`` file, per optimizer: both results, whether the update was sharded,
and whether the devices' copies were equal before and after
``synchronize``.

    python tests/_worker_device_update.py --out update.npz
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPES = [(40, 30), (30,), (30, 20), (20,), (20, 50)]


def optimizers():
    import keras

    return {
        "adam": lambda: keras.optimizers.Adam(1e-2),
        "adamw_clipnorm": lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1, clipnorm=0.5),
        "rmsprop_schedule": lambda: keras.optimizers.RMSprop(keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5)),
        "adam_global_clipnorm": lambda: keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
        "sgd_momentum_ema": lambda: keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True, ema_momentum=0.9),
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from keras_vae import distribute

    distribute.split_cpu(2)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_vae import device_update

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def variables():
        rng = np.random.default_rng(0)
        return [keras.Variable(rng.normal(size=s).astype("float32"), name=f"v{i}") for i, s in enumerate(SHAPES)]

    def replica_gradients(step):
        # Replica r's gradients for step `step`; the 4th variable gets none.
        rng = np.random.default_rng(100 + step)
        grads = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(2)]
        for g in grads:
            g[3] = None
        return grads

    def run(name, make):
        """Four steps of ``make()`` on plain variables and through ``DeviceUpdate``; results into ``result``."""
        reference_vars, reference = variables(), make()
        reference.build(reference_vars)
        with strategy.scope():
            mirrored_vars, optimizer = variables(), make()
            optimizer.build(mirrored_vars)
        update = device_update.DeviceUpdate(optimizer, mirrored_vars, strategy)

        def copies_equal():
            copies = [[np.asarray(c) for c in strategy.experimental_local_results(v._value)]
                      for v in mirrored_vars + optimizer.variables]  # fmt: skip
            return all(np.array_equal(c[0], c[1]) for c in copies)

        def distributed(grads, k):
            # Variable k's gradient: replica r's is grads[r][k].
            if grads[0][k] is None:
                return None
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: tf.constant(grads[ctx.replica_id_in_sync_group][k])
            )

        step = tf.function(lambda grads: update(grads))
        for i in range(4):
            grads = replica_gradients(i)
            reference.apply([None if a is None else a + b for a, b in zip(*grads)], reference_vars)
            with strategy.scope():
                step([distributed(grads, k) for k in range(len(SHAPES))])
        result[f"{name}_sharded"] = np.asarray(update.sharded)
        result[f"{name}_equal_before_sync"] = np.asarray(copies_equal())
        with strategy.scope():
            tf.function(update.synchronize)()
        result[f"{name}_equal_after_sync"] = np.asarray(copies_equal())
        for i, (a, b) in enumerate(zip(reference_vars + reference.variables, mirrored_vars + optimizer.variables)):
            result[f"{name}_reference_{i}"] = np.asarray(a)
            result[f"{name}_mirrored_{i}"] = np.asarray(b)

    result = {}
    for name, make in optimizers().items():
        run(name, make)
    np.savez(args.out, **result)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
