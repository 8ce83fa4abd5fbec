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

Where the devices share the host's memory (logical CPU devices of one
process), the update can be split instead (``shard=True``, the default):
each device sums the gradients of, and updates, its share of the variables
(shares balanced by size) and copies the new weights to the other devices'
copies; the optimizer state each device updated is copied to the others at
the end of each ``fit`` execution (:meth:`DeviceUpdate.synchronize`), so
between executions every copy is identical again. On two CPU devices that
halves the update's work per device: a step's gradient and update programs
for the 784-200-200-[50] VAE took 3.29 ms instead of 3.85, and whole
training steps 4.88 ms instead of 5.43 and 3.87 instead of 3.99 in two runs
of ``benchmarks/distributed_step.py`` (whose row with every device updating
every variable gives the second figures); four later runs gave 4.26 and
4.28, 3.80 and 3.87, 4.41 and 4.34, 3.19 and 3.25 ms, within their noise.
Each device still waits for the others twice a step: for their gradients,
then for their new weights.
"""

import numpy as np
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
        shard: bool, whether each device updates only its share of the
            variables where that is possible (:attr:`sharded`); False
            updates every variable on every device.

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

    def __init__(self, optimizer, variables, strategy, jit_compile=True, shard=True):
        self.optimizer = optimizer
        self.variables = list(variables)
        self.strategy = strategy
        self.jit_compile = bool(jit_compile)
        self.shard = bool(shard)
        devices = strategy.extended.worker_devices
        #: Whether each device sums the replicas' gradients itself (all replicas on this host's CPU,
        #: where reading another device's tensor is a copy in shared memory), instead of the
        #: strategy's all-reduce before the update.
        self.sums_locally = not _keras_compat.in_multi_worker_mode(strategy) and all(
            tf.DeviceSpec.from_string(d).device_type == "CPU" for d in devices
        )
        #: Whether each device updates a share of the variables and copies the result to the others:
        #: devices that sum locally, more than one of them, and an optimizer whose step treats each
        #: variable on its own (no global gradient norm, moving average or gradient accumulation,
        #: which read every variable).
        self.sharded = (
            self.shard
            and self.sums_locally
            and len(devices) > 1
            and not optimizer.global_clipnorm
            and not optimizer.use_ema
            and not optimizer.gradient_accumulation_steps
        )
        self._programs = [self._program(i) for i in range(len(devices))]
        self._shard_programs = {}
        # Per shard program: the ids of the resource handles its trace captured (the
        # device's copies of variables it read or wrote); the shards of the last traced call.
        self._captured = {}
        self._last_shards = None

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

    @staticmethod
    def balanced_shards(sizes, n):
        """Split variables into ``n`` shares of about equal total size.

        Args:
            sizes: dict ``{variable index: number of elements}``.
            n: int, the number of shares.

        Returns:
            A list of ``n`` sorted tuples of variable indices: each variable,
            largest first, goes to the share with the fewest elements so far.
        """
        shares, totals = [[] for _ in range(n)], [0] * n
        for k in sorted(sizes, key=lambda k: (-sizes[k], k)):
            i = totals.index(min(totals))
            shares[i].append(k)
            totals[i] += sizes[k]
        return [tuple(sorted(share)) for share in shares]

    def _shard_program(self, index, owned):
        key = (index, owned)
        if key not in self._shard_programs:

            def apply(grads):
                grads = [tf.add_n(list(g)) for g in grads]
                variables = [self.variables[k] for k in owned]
                with _keras_compat.device_local_view(self.variables, self.optimizer, index):
                    self.optimizer.apply(grads, variables)
                    new = [tf.identity(v.value) for v in variables]
                self._captured[key] = _keras_compat.captured_handle_ids()
                return new

            self._shard_programs[key] = tf.function(apply, jit_compile=self.jit_compile, reduce_retracing=True)
        return self._shard_programs[key]

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
        devices = self.strategy.extended.worker_devices
        if self.sharded:
            sizes = {k: int(np.prod(self.variables[k].shape)) for k, g in enumerate(local) if g is not None}
            shards = self.balanced_shards(sizes, len(devices))
            self._last_shards = shards
            new = []
            for i, device in enumerate(devices):
                with tf.device(device):
                    new.append(self._shard_program(i, shards[i])([local[k] for k in shards[i]]))
            # Each device's new weights into the other devices' copies.
            for i, values in enumerate(new):
                for j, device in enumerate(devices):
                    if j == i:
                        continue
                    with tf.device(device):
                        for k, value in zip(shards[i], values):
                            _keras_compat.distributed_components(self.variables[k])[j].assign(value)
            return
        for i, device in enumerate(devices):
            with tf.device(device):
                if self.sums_locally:
                    self._programs[i](local)
                else:
                    self._programs[i]([None if g is None else g[i] for g in local])

    def synchronize(self):
        """Copy the optimizer state each device updated alone to the other devices.

        A sharded update (:attr:`sharded`) leaves each device's share of the
        optimizer state (Adam's moments of the variables it updates, say)
        newer than the other devices' copies of it, which no device reads
        while training; this copies them over, after which every copy of
        every variable is identical. State every device updates (the step
        counter) or none does is left alone. Call it in the same
        cross-replica context as :meth:`__call__`, after the steps (once per
        ``fit`` execution); without a sharded call traced it does nothing.
        """
        if not self.sharded or self._last_shards is None:
            return
        devices = self.strategy.extended.worker_devices
        captured = [self._captured[(i, share)] for i, share in enumerate(self._last_shards)]
        for variable in self.optimizer.variables:
            copies = _keras_compat.distributed_components(variable)
            owners = [i for i, seen in enumerate(captured) if id(copies[i].handle) in seen]
            if len(owners) != 1:
                continue
            (owner,) = owners
            with tf.device(devices[owner]):
                value = copies[owner].read_value()
            for j, device in enumerate(devices):
                if j != owner:
                    with tf.device(device):
                        copies[j].assign(value)
