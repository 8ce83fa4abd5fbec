"""Training machinery of keras-vae models: steps, the fused XLA loop, compile defaults.

``Trainer`` is a mixin of ``HelmholtzMachine``. It asks the model's
``training_objective`` (a ``keras_vae.objectives.Objective``) for per-example
losses, averages them over the *global* batch, routes each loss's gradients
to the variables of its group, and runs several steps per compiled call:

- ``train_step``/``test_step``: what ``fit``/``evaluate`` run;
- ``make_train_function``: with XLA and several steps per execution, one XLA
  program runs all the steps of an execution;
- ``_in_memory_function``: for the package's own pipelines of in-memory
  arrays and numpy arrays given to ``fit`` (``keras_vae.in_memory``), each
  XLA program also gathers and binarises its batches, without ``tf.data``;
- ``compile``: XLA and ``DEFAULT_STEPS_PER_EXECUTION`` steps by default;
- ``fit``/``evaluate``: check the data first and stop on a NaN loss.
"""

import os
import threading
import weakref

import keras
import tensorflow as tf
from keras import ops

from keras_vae import _keras_compat
from keras_vae import callbacks as callbacks_lib
from keras_vae import device_update
from keras_vae import in_memory
from keras_vae import objectives

#: Training/evaluation steps per compiled call when ``compile`` is not told.
DEFAULT_STEPS_PER_EXECUTION = 100
#: Steps per call under a ``tf.distribute`` strategy when ``compile`` is not
#: told: the steps are unrolled in one graph (``_distributed_function``), so
#: tracing grows with it. On two logical CPU devices 16 steps per call with XLA
#: took 4.88 ms per global step against 7.79 for one step without XLA
#: (``benchmarks/distributed_step.py``, a slow day of a shared machine).
DISTRIBUTED_STEPS_PER_EXECUTION = 16
#: At most this many bytes of batches go into one XLA call of the fused loops;
#: an execution of larger batches runs as several calls.
MAX_STACKED_BYTES = 256 * 1024**2


def steps_per_call(batch_bytes, steps):
    """Steps of one XLA call of a fused loop: ``steps``, fewer if their batches exceed ``MAX_STACKED_BYTES``."""
    return max(1, min(int(steps), MAX_STACKED_BYTES // max(1, int(batch_bytes))))


def auto_jit_allowed():
    """``KERAS_VAE_JIT_COMPILE=0`` turns the XLA default off (e.g. for test suites).

    XLA makes every step faster but costs a few seconds of compilation per
    model, which only short runs (unit tests) notice.
    """
    value = os.environ.get("KERAS_VAE_JIT_COMPILE", "auto").strip().lower()
    return value not in ("0", "false", "off", "no")


def features(data):
    """The x of ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


def global_mean(per_example):
    """Sum over the local batch divided by the *global* batch size."""
    local = ops.cast(ops.shape(per_example)[0], "float32")
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
    else:
        total = local
    return ops.sum(per_example) / total


def _multi_worker():
    """Whether the current strategy is a multi-worker (collective) one."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return _keras_compat.in_multi_worker_mode(strategy)


#: Layers XLA runs slower than TensorFlow's own kernels on a CPU.
_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def _convolutional(layers):
    """Whether any of ``layers`` is a convolution."""
    return any(isinstance(layer, _CONVOLUTIONS) for layer in layers)


def _steps_per_epoch(x, fit_kwargs):
    """Batches in one epoch of ``fit(x, **fit_kwargs)``, or None if unknown."""
    if fit_kwargs.get("steps_per_epoch"):
        return int(fit_kwargs["steps_per_epoch"])
    if isinstance(x, tf.data.Dataset):
        n = int(x.cardinality())
        return n if n > 0 else None
    if hasattr(x, "shape") and len(x.shape):
        batch_size = fit_kwargs.get("batch_size") or in_memory.KERAS_BATCH_SIZE
        return -(-int(x.shape[0]) // int(batch_size))
    return None


def one_iterator_per_fit(data, kwargs, steps_key):
    """A finite dataset as ``fit`` reads it under a ``tf.distribute`` strategy: repeated, its length given.

    Keras makes a new iterator of the distributed dataset every epoch (and
    for every validation). Under ``MirroredStrategy`` each is a
    multi-device iterator whose per-device ``tf.data`` pipelines run
    autotuning threads, and deleting one took 0.5 to 2 seconds on two CPU
    devices (TensorFlow 2.21), more than an epoch of 256 steps of the
    784-200-200-[50] VAE (``benchmarks/distributed_step.py``). Given
    ``data.repeat()`` and the epoch's length, Keras keeps one iterator for
    the whole ``fit``; each epoch still reads every batch of one pass over
    ``data`` in that pass's order (a dataset that reshuffles each iteration
    reshuffles each pass), and the last execution of an epoch runs only the
    epoch's remaining steps (``Trainer._distributed_function``). That one
    iterator is deleted in another thread when ``fit`` returns
    (``release_in_background``). Validation still starts a new iterator
    every pass (Keras resets its evaluation iterator each time); the
    repeated dataset gives each pass its length, and each iterator a new
    one replaces is deleted in that thread too.

    Args:
        data: ``fit``'s ``x`` or ``validation_data``.
        kwargs: ``fit``'s keyword arguments; ``kwargs[steps_key]`` is set
            to the dataset's batches when it is repeated.
        steps_key: ``"steps_per_epoch"`` or ``"validation_steps"``.

    Returns:
        ``(data.repeat(), batches)`` for a ``tf.data.Dataset`` of known,
        finite, non-zero length when ``kwargs`` does not set ``steps_key``;
        else ``(data, None)``.
    """
    if not isinstance(data, tf.data.Dataset) or kwargs.get(steps_key) is not None:
        return data, None
    batches = int(data.cardinality())
    if batches <= 0:  # Unknown, infinite or empty.
        return data, None
    kwargs[steps_key] = batches
    return data.repeat(), batches


def stack_steps(data, steps):
    """A finite dataset's batches, ``steps`` at a time, stacked along a second axis.

    Under ``MirroredStrategy`` each execution of ``steps`` training steps
    then pulls one element from the distributed iterator instead of one per
    step: each replica's share of every batch arrives at once, and step
    ``t`` reads ``[:, t]`` of it. On two CPU devices the per-step pulls cost
    0.2-0.4 ms of a 4 ms step of the 784-200-200-[50] VAE
    (``benchmarks/distributed_step.py`` and one-process comparisons). The
    stacks follow each pass over ``data``: ``batches // steps`` full ones,
    then the rest.

    Args:
        data: ``fit``'s ``x``.
        steps: int, the steps of one execution.

    Returns:
        The dataset of stacks, or None where stacking does not apply: not a
        ``tf.data.Dataset`` of known, finite length; ``steps < 2``; a
        component whose shape is not fully known (batches of different
        sizes, say a last smaller batch: ``batch(..., drop_remainder=True)``
        gives fully known shapes), or components of different batch sizes;
        or ``steps`` batches over ``MAX_STACKED_BYTES``.

    Example:

    ```python
    data = tf.data.Dataset.from_tensor_slices(x).batch(100, drop_remainder=True)
    stacks = stack_steps(data, 16)  # elements [100, 16, 784]
    ```
    """
    if not isinstance(data, tf.data.Dataset) or int(steps) < 2 or int(data.cardinality()) <= 0:
        return None
    specs = tf.nest.flatten(data.element_spec)
    fixed = [isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined() and s.shape.rank for s in specs]
    if not specs or not all(fixed):
        return None
    if len({int(s.shape[0]) for s in specs}) != 1:
        return None
    batch_bytes = sum(s.shape.num_elements() * s.dtype.size for s in specs)
    if steps_per_call(batch_bytes, steps) < int(steps):
        return None

    def batch_axis_first(*stack):
        # A tuple element arrives as several arguments.
        stack = tf.nest.map_structure(lambda t: tf.experimental.numpy.swapaxes(t, 0, 1), stack)
        return stack if len(stack) > 1 else stack[0]

    return data.batch(int(steps)).map(batch_axis_first, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def release_in_background(objects):
    """Drop the references in ``objects`` (a list, emptied here) from a new thread.

    Deleting a ``tf.distribute`` iterator waits for the ``tf.data``
    autotuning threads of its pipelines to stop, which can take seconds:
    after ``fit`` under ``MirroredStrategy`` on two CPU devices (TensorFlow
    2.21) it took from a few milliseconds to 25 s, at random. The wait
    releases Python's lock, so deleting the iterators in another thread
    lets ``fit`` and ``evaluate`` return at once. The thread is not a
    daemon: the interpreter waits for it before it exits, as it waited for
    the deletion before.

    Args:
        objects: list of the objects to drop; whatever else still refers
            to one of them keeps it alive.

    Returns:
        The started ``threading.Thread``.
    """
    held = list(objects)
    objects.clear()
    thread = threading.Thread(target=held.clear, name="keras-vae-release", daemon=False)
    thread.start()
    return thread


class Trainer:
    """``train_step``, ``test_step``, the fused loop and compile/fit defaults."""

    def _metric_names(self):
        names = ["loss", "elbo", "reconstruction", "kl"]
        names += self.training_objective.metric_names(self)
        return names + (["log_px"] if self.eval_samples else [])

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _record(self, values):
        """Add ``{name: [B] values}`` to the metric trackers; returns their logs."""
        self._update_trackers(values)
        return self._results(values)

    def _update_trackers(self, values):
        for name, value in values.items():
            self._trackers[name].update_state(value)

    def _results(self, names):
        """The logs of the metrics ``names``: their trackers' results."""
        logs = {name: self._trackers[name].result() for name in names}
        if _multi_worker():
            # Keras reduces the per-replica logs of a multi-worker job with
            # strategy.reduce("MEAN", v, axis=0), which needs a batch axis.
            logs = {name: ops.reshape(v, (1,)) for name, v in logs.items()}
        return logs

    @staticmethod
    def _global_mean(per_example):
        return global_mean(per_example)

    def variable_group(self, group):
        """Trainable variables of a group: ``"all"``, ``"generative"`` or ``"recognition"``."""
        groups = {
            "all": lambda: self.trainable_variables,
            "generative": lambda: self.generative_variables,
            "recognition": lambda: self.recognition_variables,
        }
        if group not in groups:
            raise ValueError(f"Unknown variable group {group!r}; choose from {sorted(groups)}.")
        return groups[group]()

    def objective_losses(self, x, training=True):
        """Per-example losses of the training objective and metric values.

        Returns:
            ``(losses, metrics)``: ``losses`` maps a variable group
            (``"all"``, ``"generative"``, ``"recognition"``) to ``[B]`` losses;
            ``metrics`` maps names to ``[B]`` values.
        """
        return self.training_objective.losses(self, x, training=training)

    def step_inputs(self, data):
        """The model inputs of a batch of ``fit``/``evaluate`` data.

        Args:
            data: a batch as Keras gives it: ``x``, ``(x,)``, ``(x, y)`` or
                ``(x, y, sample_weight)``.

        Returns:
            What ``objective_losses`` and ``terms`` take: here ``x`` (labels
            are ignored); a conditional model overrides this to return
            ``(x, y)``.
        """
        return features(data)

    def train_step(self, data):
        return self._train_step(data, skip_nonfinite=True)[0]

    def _gradients(self, x, global_batch=None):
        """Gradients of the training objective on this replica's batch.

        Each loss is the sum over the local batch divided by the *global*
        batch size, so summing gradients across replicas gives the gradient
        of the global-batch mean.

        Args:
            x: the local batch's model inputs (``step_inputs``):
                ``[B, *input_shape]``, or ``(x, y)`` for a conditional model.
            global_batch: float scalar, the global batch size; ``None`` sums
                the local sizes across replicas here (a cross-replica op,
                which an XLA-compiled step must receive as an input instead).

        Returns:
            ``(grads, metrics, means)``: one gradient per variable of
            ``trainable_variables`` (``None`` where a variable gets none),
            metric values ``{name: [B]}`` and the global-mean losses
            ``{group: scalar}``.
        """
        # One loss for all variables (ELBO, IWAE): a non-persistent tape
        # frees the forward activations as it goes.
        persistent = len(self.training_objective.variable_groups) > 1
        with tf.GradientTape(persistent=persistent) as tape:
            losses, metrics = self.objective_losses(x, training=True)
            if global_batch is None:
                means = {g: global_mean(loss) for g, loss in losses.items()}
            else:
                means = {g: ops.sum(loss) / global_batch for g, loss in losses.items()}
            scaled = {g: self.optimizer.scale_loss(m) for g, m in means.items()}
        routed = {}
        for group, loss in scaled.items():
            variables = self.variable_group(group)
            for var, grad in zip(variables, tape.gradient(loss, variables)):
                routed[id(var)] = grad
        del tape
        # In trainable_variables order, the order the optimizer's slots are
        # restored in when a saved model is loaded.
        return [routed.get(id(v)) for v in self.trainable_variables], metrics, means

    def _train_step(self, data, skip_nonfinite):
        """One update; returns ``(logs, finite)``, ``finite`` whether every loss was finite."""
        grads, metrics, means = self._gradients(self.step_inputs(data))
        variables = self.trainable_variables

        def apply():
            self.optimizer.apply_gradients(zip(grads, variables))
            return tf.constant(True)

        finite = tf.reduce_all(tf.stack([tf.math.is_finite(m) for m in means.values()]))
        if not skip_nonfinite or tf.distribute.has_strategy():
            # Under a strategy (even of one replica) the update's gradient
            # aggregation cannot sit inside a tf.cond, and replicas see
            # different local losses: no local skip decision.
            apply()
        else:
            # Keras's loop: a step whose loss is NaN/inf leaves the weights
            # and optimizer state as they were; the loss metric reports it
            # and StopOnNaN ends fit (after the execution).
            tf.cond(finite, apply, lambda: tf.constant(False))
        return self._record(metrics), finite

    def make_train_function(self, force=False):
        """The function ``fit`` calls once per ``steps_per_execution`` steps.

        - Under a ``tf.distribute`` strategy: ``_distributed_function``,
          each replica's forward and backward pass one XLA program, the
          optimizer step one program per device (``DeviceUpdate``) where the
          optimizer allows.
        - With XLA on and several steps per execution: the steps of one
          execution run as a single XLA loop over the stacked batches instead
          of Keras's graph loop of one XLA call per step (whose per-step
          dispatch cost about as much as a small model's step itself).
        - Otherwise, Keras's own function.
        """
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if self._distributed():
            update = self._device_update()
            self.train_function = self._distributed_function(
                self._replica_train_step(update), "train", update, global_batch=True
            )
            return self.train_function
        if not (
            self.jit_compile
            and not self.run_eagerly
            and int(self.steps_per_execution) > 1
        ):
            return self.train_function
        keras_function = self.train_function
        n = int(self.steps_per_execution)
        names = [name for name in self._metric_names() if name != "log_px"]

        @tf.function(jit_compile=True, reduce_retracing=True)
        def run_steps(batches, count):
            # The loop ends after a step with a non-finite loss and StopOnNaN
            # ends fit. That step's update is applied, as Keras itself does:
            # a conditional update (train_step's) cost 10% of the 784-200-
            # 200-50 VAE's throughput under XLA (34k vs 37.5k examples/s).
            # Epoch checkpoints keep the last good weights.
            i, finite = tf.constant(0), tf.constant(True)
            while i < count and finite:
                step = tf.nest.map_structure(lambda t, i=i: t[i], batches)
                _, finite = self._train_step(step, skip_nonfinite=False)
                i += 1
            return {name: self._trackers[name].result() for name in names}

        def function(iterator):
            if not isinstance(iterator, tf.data.Iterator):
                return keras_function(iterator)
            group, pulled, chunk = [], 0, n

            def shapes(batch):
                return [t.shape for t in tf.nest.flatten(batch)]

            def run(group):
                # Padded to `chunk` steps so XLA compiles one program per
                # batch shape (the last batch of an epoch may be smaller);
                # only the first len(group) steps run.
                padding = [tf.nest.map_structure(tf.zeros_like, group[0])] * (chunk - len(group))
                stacked = tf.nest.map_structure(lambda *ts: tf.stack(ts), *(group + padding))
                return run_steps(stacked, tf.constant(len(group), tf.int32))

            while pulled < n:
                optional = iterator.get_next_as_optional()
                if not optional.has_value():
                    break
                batch = tf.nest.map_structure(ops.convert_to_tensor, self.step_inputs(optional.get_value()))
                if not pulled:
                    size = sum(t.shape.num_elements() * t.dtype.size for t in tf.nest.flatten(batch))
                    chunk = steps_per_call(size, n)
                pulled += 1
                if group and (shapes(batch) != shapes(group[0]) or len(group) == chunk):
                    run(group)
                    group = []
                group.append(batch)
            if not pulled:
                raise StopIteration
            return run(group)

        self.train_function = function
        return function


    def _distributed(self):
        """Whether the model runs under a ``tf.distribute`` strategy."""
        return _keras_compat.distribute_strategy(self) is not None or tf.distribute.has_strategy()

    def _replica_function(self, fn):
        """``fn`` as the per-replica program: XLA-compiled when ``jit_compile`` is on."""
        if self.run_eagerly:
            return fn
        return tf.function(fn, jit_compile=bool(self.jit_compile), reduce_retracing=True)

    def _device_update(self):
        """A ``DeviceUpdate`` of the model's optimizer under its strategy, or None where it cannot run."""
        strategy = self.distribute_strategy
        if self.run_eagerly or not device_update.DeviceUpdate.supports(
            self.optimizer, self.trainable_variables, strategy
        ):
            return None
        return device_update.DeviceUpdate(
            self.optimizer, self.trainable_variables, strategy, jit_compile=bool(self.jit_compile)
        )

    def _replica_train_step(self, update=None):
        """One training step on one replica, for ``strategy.run``.

        The gradients come from one compiled program per replica; the global
        batch size it divides by is an argument (``global_batch``, float
        scalar) or, without one, summed across replicas outside it. The
        program also adds the step's metrics to the trackers (the caller
        reads their results after the execution's steps). With ``update`` (a
        ``DeviceUpdate``) the step returns the gradients, summed across
        replicas unless ``update.sums_locally``: the caller applies them on
        each device. Without, Keras's optimizer sums and applies them here
        through ``tf.distribute`` (cross-replica work XLA cannot hold).
        """
        def gradients_and_trackers(x, global_batch):
            # The metric trackers (this replica's copies) are updated inside the replica's
            # program: as separate ops they cost about 0.3-0.7 ms of a 4.5 ms mirrored step
            # on two CPU devices.
            grads, metrics, _ = self._gradients(x, global_batch)
            step.names = list(metrics)  # What the step logs (known when traced).
            self._update_trackers(metrics)
            return grads

        gradients = self._replica_function(gradients_and_trackers)

        def step(data, global_batch=None):
            x = self.step_inputs(data)
            context = tf.distribute.get_replica_context()
            if global_batch is None:
                local = ops.cast(ops.shape(tf.nest.flatten(x)[0])[0], "float32")
                global_batch = context.all_reduce(tf.distribute.ReduceOp.SUM, local)
            grads = gradients(x, global_batch)
            if update is None:
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                return None
            # Which variables get a gradient, for the caller (known when traced).
            step.has_gradient = [g is not None for g in grads]
            present = [g for g in grads if g is not None]
            if not update.sums_locally:
                present = context.all_reduce(tf.distribute.ReduceOp.SUM, present)
            return present

        return step

    def _replica_test_step(self):
        """One evaluation step on one replica, for ``strategy.run``."""
        def metrics_and_trackers(x):
            metrics = self._test_metrics(x)
            step.names = list(metrics)
            self._update_trackers(metrics)
            return tf.constant(True)

        program = self._replica_function(metrics_and_trackers)

        def step(data):
            program(self.step_inputs(data))

        return step

    def _distributed_function(self, replica_step, kind, update=None, global_batch=False):
        """A ``fit``/``evaluate`` function running ``replica_step`` under the model's strategy.

        One call runs ``steps_per_execution`` steps as one graph, which also
        pulls their batches from the (distributed) iterator: each step runs
        if its batch exists, so the last execution of an epoch may run
        fewer (where every batch is known to exist, from a repeated dataset
        within its epoch, the steps run without a condition each; where
        ``fit`` stacked the batches, ``stack_steps``, one pull brings all of
        a call's batches). Pulling the batches in Python instead cost about
        a millisecond per step on two CPU devices, and its hand-offs between
        Python and TensorFlow's threads made whole epochs several times
        slower at random. The steps are unrolled in the graph, not looped: the
        gradient all-reduce is a cross-replica call, which cannot sit in the
        body of a graph loop (why Keras's own multi-step loop fails under
        strategies, keras-team/keras issue 19246).

        Args:
            replica_step: ``data -> None`` run on each replica, adding to
                the metric trackers; with ``update``, ``data -> gradients``.
                Its ``names`` attribute, set when it is traced, lists the
                metrics it logs.
            kind: ``"train"`` or ``"test"``: which of the datasets ``fit``
                repeated (``one_iterator_per_fit``) the function reads; a call
                runs at most the steps left in that dataset's epoch.
            update: None, or the ``DeviceUpdate`` applying each step's
                gradients on every device after the replicas' step (and
                synchronising the devices' optimizer state after the
                execution's steps).
            global_batch: bool, pass ``replica_step`` the global batch size
                as its second argument where every replica is local (one
                worker): the sum of the local batches' sizes, which spares a
                cross-replica sum per step (0.74 ms of a 2.8 ms mirrored step
                on two CPU devices). Across workers the step sums it itself.

        Returns:
            ``iterator -> logs``, as Keras's ``train_function``; it raises
            ``StopIteration`` when the iterator has no batch left.
        """
        strategy = self.distribute_strategy
        n = int(self.steps_per_execution or 1)
        local_batch = global_batch and not _keras_compat.in_multi_worker_mode(strategy)

        def run_step(data):
            args = (data,)
            if local_batch:
                sizes = [
                    ops.shape(tf.nest.flatten(self.step_inputs(d))[0])[0]
                    for d in strategy.experimental_local_results(data)
                ]
                args = (data, ops.cast(ops.sum(ops.stack(sizes)), "float32"))
            summed = strategy.run(replica_step, args=args)
            if update is not None:
                summed = iter(summed)
                update([next(summed) if has else None for has in replica_step.has_gradient])

        def logs():
            # After the execution's steps: the optimizer state a sharded update left on
            # one device is copied to the others, so callbacks see identical copies.
            if update is not None:
                update.synchronize()
            return _keras_compat.reduce_per_replica(
                strategy.run(lambda: self._results(replica_step.names)), strategy, "auto"
            )

        def pull_and_run(iterator, limit):
            ran = tf.constant(0)
            for i in range(n):

                def step():
                    optional = iterator.get_next_as_optional()

                    def run():
                        run_step(optional.get_value())
                        return tf.constant(1)

                    return tf.cond(optional.has_value(), run, lambda: tf.constant(0))

                # No batch is pulled past the limit: it belongs to the next epoch.
                ran += step() if i == 0 else tf.cond(i < limit, step, lambda: tf.constant(0))
            return ran, logs()

        def run_all(iterator):
            # Every step's batch exists (an infinite dataset, the epoch not ending in this
            # execution): no conditional per step, which cost about 0.8 ms of a 5.4 ms
            # mirrored step on two CPU devices (one comparison).
            for _ in range(n):
                run_step(iterator.get_next())
            return tf.constant(n), logs()

        def run_stack(iterator, steps):
            # One element holds each replica's share of `steps` batches (`stack_steps`):
            # step t reads [:, t] of it.
            stack = iterator.get_next()
            for t in range(steps):
                run_step(strategy.run(lambda s, t=t: tf.nest.map_structure(lambda a: a[:, t], s), args=(stack,)))
            return tf.constant(steps), logs()

        eager = self.run_eagerly
        step_function = run_step if eager else tf.function(run_step, reduce_retracing=True)
        logs_function = logs if eager else tf.function(logs)
        # One program for iterators of infinite datasets, one for the others
        # (their batches are pulled differently).
        pull_and_run = {infinite: tf.function(pull_and_run, reduce_retracing=True) for infinite in (False, True)}
        run_all = tf.function(run_all, reduce_retracing=True)
        # Traced once per number of steps (a full stack, the epoch's last).
        run_stack = tf.function(run_stack)
        position = {"iterator": lambda: None, "steps": 0}

        def steps_left(iterator):
            # Steps of this execution: n, or the rest of the epoch of a repeated dataset,
            # counted from the first call with this iterator.
            epoch = self.__dict__.get("_repeated_epoch_steps", {}).get(kind)
            if not epoch:
                return n
            if position["iterator"]() is not iterator:
                position["iterator"], position["steps"] = weakref.ref(iterator), 0
            limit = min(n, epoch - position["steps"] % epoch)
            position["steps"] += limit
            return limit

        def function(iterator):
            if not eager and isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
                # Held until fit or evaluate returns, or until a new iterator replaces it
                # (Keras's one per epoch, for a dataset of unknown length), then deleted in
                # another thread (`release_in_background`).
                held = self.__dict__.setdefault("_held_iterators", {})
                if held.get(kind) is not None and held[kind] is not iterator:
                    release_in_background([held.pop(kind)])
                held[kind] = iterator
                infinite, limit = _keras_compat.iterator_is_infinite(iterator), steps_left(iterator)
                if infinite and self.__dict__.get("_stacked_steps", {}).get(kind):
                    # The stacks follow the epochs: this one holds exactly `limit` steps.
                    _, values = run_stack(iterator, limit)
                    return values
                if infinite and limit == n:
                    ran, values = run_all(iterator)
                else:
                    ran, values = pull_and_run[infinite](iterator, tf.constant(limit, tf.int32))
                if not int(ran):
                    raise StopIteration
                return values
            # Eagerly, or from another iterator: one step at a time.
            ran = 0
            for _, data in zip(range(steps_left(iterator)), iterator):
                step_function(data)
                ran += 1
            if not ran:
                raise StopIteration
            return logs_function()

        return function

    def make_test_function(self, force=False):
        """Keras's evaluation function, or ``_distributed_function`` under a strategy."""
        if self.test_function is not None and not force:
            return self.test_function
        super().make_test_function(force=True)
        if self._distributed():
            self.test_function = self._distributed_function(self._replica_test_step(), "test")
        return self.test_function

    def _test_metrics(self, x):
        """ELBO, its parts and (with ``eval_samples``) log p(x) per example of the inputs ``x``: ``{name: [B]}``."""
        metrics = objectives.elbo(self.terms(x, self.n_samples))
        metrics["loss"] = -metrics["elbo"]
        if self.eval_samples:
            metrics["log_px"] = objectives.iwae(self.terms(x, self.eval_samples, analytic_kl=False))
        return metrics

    def test_step(self, data):
        return self._record(self._test_metrics(self.step_inputs(data)))

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution="auto",
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        """``keras.Model.compile`` with fast defaults for these models.

        The model computes its own losses and metrics: pass an optimizer and
        leave ``loss``/``metrics`` unset.

        Args:
            steps_per_execution: training/evaluation steps per call of the
                compiled function. ``"auto"`` (default) runs
                ``DEFAULT_STEPS_PER_EXECUTION`` steps per call, which removes
                most of the per-batch Python and dispatch overhead of small
                models; callbacks' batch hooks then run once per call. Under
                a ``tf.distribute`` strategy ``"auto"`` means
                ``DISTRIBUTED_STEPS_PER_EXECUTION`` (16), unrolled in one graph.
            jit_compile: ``"auto"`` (default) compiles the training and test
                steps with XLA whenever every layer supports it, on CPU too
                (Keras's own ``"auto"`` turns XLA off on CPU-only machines and
                under ``tf.distribute`` strategies), except for models with
                convolutions on a machine without GPUs (XLA's CPU convolutions
                ran 6.7x slower than TensorFlow's here: 5.7 s against 0.85 s
                per epoch of 18 batches of 32 8x8 images, ``conv_mnist``). With
                XLA under a strategy, each replica's step is
                one XLA program, the cross-replica sums run between them
                (``_distributed_function``) and the optimizer step is one XLA
                program per device (``keras_vae.device_update``). The
                environment variable ``KERAS_VAE_JIT_COMPILE=0`` makes
                ``"auto"`` mean no XLA (compilation takes a few seconds per
                model, which only very short runs such as unit tests notice).
        """
        requested = {"steps_per_execution": steps_per_execution, "jit_compile": jit_compile}
        self.__dict__.pop("_short_epoch_functions", None)  # Built for the previous optimizer.
        self.__dict__.pop("_in_memory_programs", None)
        distributed = self._distributed()
        if steps_per_execution == "auto":
            steps_per_execution = DISTRIBUTED_STEPS_PER_EXECUTION if distributed else DEFAULT_STEPS_PER_EXECUTION
        if jit_compile == "auto":
            layers = _keras_compat.flatten_layers(self)
            jit_compile = (
                auto_jit_allowed()
                and not run_eagerly
                and all(layer.supports_jit for layer in layers)
                and not (_convolutional(layers) and not tf.config.list_physical_devices("GPU"))
            )
        super().compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=loss_weights,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            auto_scale_loss=auto_scale_loss,
        )
        # Save "auto" as "auto": a model trained under a strategy and loaded
        # without one (or the reverse) gets the defaults of where it loads.
        config = _keras_compat.compile_config(self)
        if config is not None:
            config.config.update({k: v for k, v in requested.items() if v == "auto"})

    def compile_from_config(self, config):
        """Recompile a loaded model with its saved compile settings.

        Keras skips this for models that override ``compile``; the saved
        config holds every argument of ``compile``, so it is replayed here.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, validation_data=None, callbacks=None, **kwargs):
        """``keras.Model.fit`` after checking the data; stops on a NaN loss.

        The data are ``[batch, *input_shape]`` arrays or a ``tf.data.Dataset``
        of them (labels, if any, are ignored). Numpy data are checked in full,
        datasets on their first batch. With XLA (the default) a numpy array
        or a ``keras_vae.datasets`` pipeline trains in whole compiled epochs
        (``keras_vae.in_memory``, which lists when Keras's own handling is
        kept instead). A non-finite loss raises
        ``FloatingPointError`` (see ``keras_vae.callbacks.StopOnNaN``); a
        stochastic layer that collapses is reported once with a
        ``keras_vae.callbacks.LayerCollapseWarning`` (see ``CollapseMonitor``,
        checked on the examples ``check_data`` saw; pass your own monitor to
        change its settings).
        """
        checked = self.check_data(x)
        if validation_data is not None:
            self.check_data(validation_data)
        callbacks = list(callbacks or [])
        if not any(isinstance(c, callbacks_lib.StopOnNaN) for c in callbacks):
            callbacks.append(callbacks_lib.StopOnNaN())
        if checked is not None and not any(isinstance(c, callbacks_lib.CollapseMonitor) for c in callbacks):
            # The examples just checked (a dataset's first batch): no extra pass over the data.
            callbacks.append(callbacks_lib.CollapseMonitor(checked[:500]))
        if isinstance(x, tf.data.Dataset):
            # A dataset shuffles itself; Keras would warn that shuffle is ignored.
            kwargs.setdefault("shuffle", False)
        source = in_memory.eligible(self, x, y, kwargs)
        if source is not None:
            return self._fit_in_memory(source, validation_data, callbacks, kwargs)
        repeated, stacked = {}, {}
        if self._distributed():
            n = int(self.steps_per_execution or 1)
            stacks = None
            one_worker = not _keras_compat.in_multi_worker_mode(self.distribute_strategy)
            if kwargs.get("steps_per_epoch") is None and not self.run_eagerly and one_worker:
                stacks = stack_steps(x, n)
            x, repeated["train"] = one_iterator_per_fit(x, kwargs, "steps_per_epoch")
            if stacks is not None and (repeated["train"] or 0) >= n:
                x, stacked["train"] = stacks.repeat(), True
            validation_data, repeated["test"] = one_iterator_per_fit(validation_data, kwargs, "validation_steps")
        # Read by the distributed functions (not tracked by Keras).
        self.__dict__["_repeated_epoch_steps"] = repeated
        self.__dict__["_stacked_steps"] = stacked
        self.__dict__["_in_fit"] = True
        try:
            return self._fit_keras(x, y, validation_data, callbacks, kwargs)
        finally:
            self.__dict__["_repeated_epoch_steps"] = {}
            self.__dict__["_stacked_steps"] = {}
            self.__dict__["_in_fit"] = False
            self._release_iterators()

    def _release_iterators(self):
        """Delete the iterators the distributed functions read in another thread (``release_in_background``).

        Returns:
            The ``threading.Thread`` deleting them, or None if none was held.
        """
        held = self.__dict__.pop("_held_iterators", None)
        if not held:
            return None
        iterators = list(held.values())
        held.clear()
        return release_in_background(iterators)

    def _fit_keras(self, x, y, validation_data, callbacks, kwargs):
        """``keras.Model.fit``, an epoch shorter than one execution run in one execution."""
        per_execution = int(self.steps_per_execution or 1)
        steps = _steps_per_epoch(x, kwargs)
        if steps is None or steps >= per_execution:
            return super().fit(x, y, validation_data=validation_data, callbacks=callbacks, **kwargs)
        # An epoch shorter than one execution: run it in one execution of
        # exactly its steps (else Keras's progress bar counts past the epoch).
        # Each such function is kept, so calling fit again does not retrace
        # and recompile it.
        short = self.__dict__.setdefault("_short_epoch_functions", {})
        full_function = self.train_function
        self.steps_per_execution, self.train_function = steps, short.get(steps)
        try:
            return super().fit(x, y, validation_data=validation_data, callbacks=callbacks, **kwargs)
        finally:
            short[steps] = self.train_function
            self.steps_per_execution, self.train_function = per_execution, full_function

    def _fit_in_memory(self, source, validation_data, callbacks, kwargs):
        """``fit`` on an ``in_memory.ArraySource``: Keras's loop over ``_in_memory_function``'s calls."""
        per_execution = int(self.steps_per_execution or 1)
        # One feed per source and model: the device copy is made once, and
        # each fit call continues the source's stream of epochs (a fresh
        # order and draw every epoch, as the pipeline itself gives). A numpy
        # array is a new source at every call (in_memory.from_array).
        feeds = self.__dict__.setdefault("_in_memory_feeds", weakref.WeakKeyDictionary())
        feed = feeds.get(source)
        if feed is None:
            feed = feeds[source] = in_memory.EpochFeed(source, per_execution)
        feed.per_call = max(1, min(per_execution, source.steps))
        # The source batches and shuffles; Keras would warn about these with a
        # dataset. Validation keeps the batch size Keras would give it.
        kwargs = dict(kwargs)
        batch_size = kwargs.pop("batch_size", None)
        if kwargs.get("validation_batch_size") is None and batch_size is not None:
            kwargs["validation_batch_size"] = batch_size
        kwargs["shuffle"] = False
        full_function = self.train_function
        self.steps_per_execution, self.train_function = feed.per_call, self._in_memory_function(feed)
        try:
            return super().fit(feed.dataset(), validation_data=validation_data, callbacks=callbacks, **kwargs)
        finally:
            self.steps_per_execution, self.train_function = per_execution, full_function

    def _in_memory_function(self, feed):
        """The training function of ``fit`` on an ``EpochFeed``: each call runs the steps of one execution.

        One XLA program (compiled once per model, number of steps and batch
        size, kept across ``fit`` calls) gathers the call's batches from the
        examples on the device, draws their binarisation and runs the
        training steps, as the fused loop of ``make_train_function`` does
        with batches from ``tf.data``; a last smaller batch runs in a program
        of its own.
        """
        programs = self.__dict__.setdefault("_in_memory_programs", {})
        if "run" not in programs:
            names = [name for name in self._metric_names() if name != "log_px"]

            @tf.function(jit_compile=True, reduce_retracing=True)
            def run(x, indices, first, epoch, count, size, steps, dynamic, seed):
                batches = in_memory.gather_batches(x, indices, first, epoch, count, size, steps, dynamic, seed)
                # The loop ends after a non-finite step, as the fused loop does.
                i, finite = tf.constant(0), tf.constant(True)
                while i < count and finite:
                    _, finite = self._train_step(batches[i], skip_nonfinite=False)
                    i += 1
                return {name: self._trackers[name].result() for name in names}

            programs["run"] = run
        run = programs["run"]
        def function(iterator):
            optional = iterator.get_next_as_optional()
            if not optional.has_value():
                raise StopIteration
            first, count, epoch = feed.next_call(int(optional.get_value()))
            logs = None
            for size, start, n in feed.sizes(first, count, steps_per_call(feed.batch_bytes, feed.per_call)):
                logs = run(
                    feed.x, feed.indices(start, n, size), tf.constant(start, tf.int32), tf.constant(epoch, tf.int64),
                    n, size, feed.steps, feed.dynamic, tf.constant(feed.seed, tf.int64),
                )  # fmt: skip
            return logs

        return function

    def evaluate(self, x=None, y=None, **kwargs):
        """``keras.Model.evaluate`` after checking the data (see ``fit``)."""
        self.check_data(x)
        try:
            return super().evaluate(x, y, **kwargs)
        finally:
            # Within fit (its validation) the iterator lasts until fit returns.
            if not self.__dict__.get("_in_fit"):
                self._release_iterators()

