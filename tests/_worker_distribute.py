"""Worker process for tests/test_distribute.py (not a test module).

Trains a small keras-vae model for one epoch under a ``tf.distribute``
strategy and writes its final weights, and the latent draws of each replica
for the same input, to an ``.npz`` file. Runs in its own
process because the logical CPU devices must be configured before TensorFlow
initialises, and multi-worker jobs need one process per worker.

    python tests/_worker_distribute.py --strategy mirrored --cpu-devices 2 --out w.npz
    TF_CONFIG=... python tests/_worker_distribute.py --strategy multi_worker --out w0.npz
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="none", choices=("none", "mirrored", "multi_worker"))
    parser.add_argument("--cpu-devices", type=int, default=None)
    parser.add_argument("--models", default="vae,hm", help="comma-separated: vae, hm")
    parser.add_argument("--deterministic", action="store_true", help="latent draws at their mean (mode)")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=100, help="global batch size")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--fixed-batches", action="store_true",
        help="batch with drop_remainder=True: batches of a static size (--examples a multiple of --batch-size)",
    )  # fmt: skip
    parser.add_argument("--compile", default="{}", help="JSON keyword arguments of compile")
    parser.add_argument("--optimizer", default="{}", help="JSON keyword arguments of Adam (learning_rate 1e-2)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    from keras_vae import distribute

    if args.cpu_devices:
        distribute.split_cpu(args.cpu_devices)
    # Before any TensorFlow op: MultiWorkerMirroredStrategy configures the
    # collective ops of the process when it is created.
    strategy = distribute.get_strategy(args.strategy)

    import json

    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    import keras_vae

    keras.utils.set_random_seed(0)
    probs = (load_digits().data[: args.examples] / 16.0).astype("float32")
    x = (np.random.default_rng(0).random(probs.shape) < probs).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(args.batch_size, drop_remainder=args.fixed_batches)
    result = {
        "replicas": np.asarray(strategy.num_replicas_in_sync),
        "intra_op_threads": np.asarray(tf.config.threading.get_intra_op_parallelism_threads()),
    }

    # Noise: the same 8 examples on every replica; their draws must differ.
    with strategy.scope():
        model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(32, 32), seed=0)
    x8 = tf.constant(x[:8])

    def draws():
        return strategy.experimental_local_results(
            tf.function(lambda: strategy.run(lambda: model.recognize(x8)[0][0]))()
        )

    result["draws"] = np.stack([np.asarray(t) for t in draws()])
    # The same without folding the replica id into the seed (what Keras's
    # SeedGenerator alone gives): every replica draws the same noise.
    get_context = tf.distribute.get_replica_context
    tf.distribute.get_replica_context = lambda: None
    try:
        result["draws_without_fold"] = np.stack([np.asarray(t) for t in draws()])
    finally:
        tf.distribute.get_replica_context = get_context

    if args.deterministic:
        # Replace every Gaussian draw by its mean: the sampling noise differs
        # across replica layouts by design, so only the reduction is compared.
        original = keras_vae.GaussianLatent.sample
        keras_vae.GaussianLatent.sample = lambda self, params, seed, mode=False: original(self, params, seed, True)

    # Whether each fit read its training batches in stacks (keras_vae.training.stack_steps).
    stack_steps, stacked = keras_vae.training.stack_steps, []

    def spy(data, steps):
        stacks = stack_steps(data, steps)
        stacked.append(stacks is not None)
        return stacks

    keras_vae.training.stack_steps = spy
    for name in args.models.split(","):
        with strategy.scope():
            if name == "vae":
                model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(32, 32), seed=0)
            else:
                # With KL warm-up: its weight is a scalar metric (logged, averaged per step).
                model = keras_vae.HelmholtzMachine(
                    64, latent_dims=(8, 4), hidden_dims=((32,), (16,)), kl_warmup_steps=3, seed=0
                )
            optimizer = keras.optimizers.Adam(**{"learning_rate": 1e-2, **json.loads(args.optimizer)})
            model.compile(optimizer=optimizer, **json.loads(args.compile))
        # Validated every epoch, then evaluated: the datasets fit repeats (one iterator per fit)
        # and a finite one after them.
        stacked.clear()
        history = model.fit(ds, epochs=args.epochs, validation_data=ds, verbose=0)
        result[f"{name}_stacked"] = np.asarray(any(stacked))
        for metric, value in model.evaluate(ds, verbose=0, return_dict=True).items():
            result[f"{name}_evaluate_{metric}"] = np.asarray(value, "float64")
        for i, v in enumerate(model.get_weights()):
            result[f"{name}_w{i}"] = np.asarray(v)
        result[f"{name}_loss"] = np.asarray(history.history["loss"], "float64")
        for metric, values in history.history.items():
            result[f"{name}_history_{metric}"] = np.asarray(values, "float64")
        result[f"{name}_jit_compile"] = np.asarray(bool(model.jit_compile))
        result[f"{name}_steps_per_execution"] = np.asarray(model.steps_per_execution)
        # Whether the optimizer step ran as one program per device (keras_vae.device_update),
        # and whether every variable's per-device copies (weights and optimizer state) are equal.
        update = model._device_update()
        result[f"{name}_device_update"] = np.asarray(update is not None)
        result[f"{name}_update_sharded"] = np.asarray(update is not None and update.sharded)
        copies = [
            [np.asarray(c) for c in strategy.experimental_local_results(getattr(v, "_value", v))]
            for v in model.trainable_variables + model.optimizer.variables
        ]
        result[f"{name}_copies_equal"] = np.asarray(all(np.array_equal(c[0], o) for c in copies for o in c[1:]))
    np.savez(args.out, **result)
    print("OK", strategy.num_replicas_in_sync, "replicas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
