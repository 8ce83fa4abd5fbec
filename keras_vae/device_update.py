"""The optimizer step of a mirrored model as one compiled program per device.

Under ``MirroredStrategy`` and ``MultiWorkerMirroredStrategy`` every weight
and every optimizer slot is a ``MirroredVariable``: one copy per device. Keras's
optimizer updates them through ``tf.distribute``: a cross-replica call per
variable, then one small graph per variable and device, outside XLA. On two
logical CPU devices that update cost more than the forward and backward pass
of the 784-200-200-[50] VAE (benchmarks/distributed_step.py).

:class:`DeviceUpdate` applies the optimizer instead on each device's copies
directly: one program per device sums the replicas' gradients (or takes the
strategy's all-reduce of them, across workers and on GPUs) and runs ``optimizer.apply`` on that
device's copies of the weights and the optimizer state (XLA-compiled when the
model is). Every device applies the same update to the same values, so the
copies stay identical. The arithmetic is Keras's own (``optimizer.apply``
with its clipping, weight decay, EMA and gradient accumulation); gradient
clipping sees the summed gradient, as on one device (Keras's distributed path
clips each replica's gradient before the sum).
"""

import tensorflow as tf

from keras_vae import _keras_compat


class DeviceUpdate:
    """Apply ``optimizer`` to the per-device copies of mirrored variables.

    Args:
        optimizer: a built Keras optimizer whose variables were created under
            ``strategy`` (see :meth:`supports`).
        variables: list of the ``keras.Variable`` s it updates (the model's
            ``trainable_variables``), in the order of the gradients.
        strategy: the ``MirroredStrategy`` or ``MultiWorkerMirroredStrategy``
            the variables were created under.
        jit_compile: bool, whether each device's program is XLA-compiled.

    Call it in cross-replica context (a ``tf.function`` running
    ``strategy.run``) with one gradient per variable: ``None`` or its
    per-replica value: each replica's own gradient where :attr:`sums_locally`,
    else the sum across replicas.

    Example:

    ```python
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras_vae.VAE(784, latent_dim=2)
        model.compile()
    # Inside model.fit, each step runs:
    #   grads = strategy.run(replica_gradients, args=(batch,))
    #   DeviceUpdate(model.optimizer, model.trainable_variables, strategy)(grads)
    ```
    """

    def __init__(self, optimizer, variables, strategy, jit_compile=True):
        self.optimizer = optimizer
        self.variables = list(variables)
        self.strategy = strategy
        self.jit_compile = bool(jit_compile)
        devices = strategy.extended.worker_devices
        #: Whether each device sums the replicas' gradients itself (all replicas on this host's CPU,
        #: where reading another device's tensor is a copy in shared memory), instead of the
        #: strategy's all-reduce before the update.
        self.sums_locally = not _keras_compat.in_multi_worker_mode(strategy) and all(
            tf.DeviceSpec.from_string(d).device_type == "CPU" for d in devices
        )
        self._programs = [self._program(i) for i in range(len(devices))]

    @staticmethod
    def supports(optimizer, variables, strategy):
        """Whether :class:`DeviceUpdate` can update ``variables`` with ``optimizer`` under ``strategy``.

        True for a built optimizer that is not a ``LossScaleOptimizer``,
        under ``MirroredStrategy`` or ``MultiWorkerMirroredStrategy``, when
        every variable and optimizer variable has one copy per local device.
        Otherwise the caller keeps Keras's ``apply_gradients``.
        """
        import keras

        if not isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)):
            return False
        if not getattr(optimizer, "built", False) or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return False
        devices = len(strategy.extended.worker_devices)
        for variable in list(variables) + list(optimizer.variables):
            components = _keras_compat.distributed_components(variable)
            if components is None or len(components) != devices:
                return False
        return True

    def _program(self, index):
        def apply(grads):
            if self.sums_locally:
                # One gradient per replica for each variable, summed here in a fixed order.
                grads = [None if g is None else tf.add_n(list(g)) for g in grads]
            with _keras_compat.device_local_view(self.variables, self.optimizer, index):
                self.optimizer.apply(grads, self.variables)
            return tf.constant(True)

        return tf.function(apply, jit_compile=self.jit_compile, reduce_retracing=True)

    def __call__(self, grads):
        """Run the update on every local device.

        Args:
            grads: list, one per variable: ``None`` (no gradient) or the
                per-replica gradient (``strategy.run``'s output): each
                replica's own where :attr:`sums_locally`, else the sum
                across replicas (each replica holding the same sum).
        """
        if len(grads) != len(self.variables):
            raise ValueError(f"DeviceUpdate got {len(grads)} gradients for {len(self.variables)} variables.")
        local = [None if g is None else self.strategy.experimental_local_results(g) for g in grads]
        for i, device in enumerate(self.strategy.extended.worker_devices):
            with tf.device(device):
                if self.sums_locally:
                    self._programs[i](local)
                else:
                    self._programs[i]([None if g is None else g[i] for g in local])
