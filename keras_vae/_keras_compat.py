"""The private Keras (and TensorFlow) APIs keras-vae relies on, gathered in one place.

Keras has no public API for these; each is read defensively and used only
here. Tested with Keras 3.15.1 on TensorFlow 2.21 (``setup.py`` admits Keras
3.8 to 3.15); a Keras upgrade that renames one of them needs a change in this
module only.
"""

import contextlib
import json
import os
import random
import shutil

import keras

#: Keras versions this module's private API uses were tested with.
TESTED_KERAS_VERSIONS = ("3.15.1",)


def distribute_strategy(model):
    """The ``tf.distribute`` strategy a model was built under, or None (``Model._distribute_strategy``)."""
    return getattr(model, "_distribute_strategy", None)


def flatten_layers(model):
    """Every layer of ``model``, nested ones included (``Layer._flatten_layers``)."""
    return list(model._flatten_layers())


def compile_config(model):
    """The ``SerializableDict`` of a compiled model's ``compile`` arguments, or None (``Model._compile_config``)."""
    return getattr(model, "_compile_config", None)


def reduce_per_replica(values, strategy, reduction="auto"):
    """Keras's reduction of per-replica step outputs (``backend.tensorflow.trainer.reduce_per_replica``)."""
    from keras.src.backend.tensorflow import trainer

    return trainer.reduce_per_replica(values, strategy, reduction=reduction)


def iterator_is_infinite(iterator):
    """Whether a (distributed) dataset iterator is known never to end.

    A ``tf.distribute`` iterator of an infinite dataset builds its
    ``get_next_as_optional`` as a plain ``get_next``, and its type spec does
    not say so: a ``tf.function`` traced with one must not be reused for a
    finite one. Reads ``DistributedIterator._cardinality`` (TensorFlow's);
    False for iterators without it.
    """
    import tensorflow as tf

    cardinality = getattr(iterator, "_cardinality", None)
    return cardinality is not None and int(cardinality) == int(tf.data.INFINITE_CARDINALITY)


def captured_handle_ids():
    """Ids of the outside tensors the ``tf.function`` being traced has captured so far.

    Among them are the resource handles (``tf.Variable.handle``) of every
    variable the trace read or wrote. Reads TensorFlow's
    ``FuncGraph.external_captures``; call it while tracing.
    """
    import tensorflow as tf

    return {id(t) for t in tf.compat.v1.get_default_graph().external_captures}


def in_multi_worker_mode(strategy):
    """Whether a strategy spans several workers (``extended._in_multi_worker_mode``), the
    check Keras's trainer uses to pick its multi-worker reduction."""
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)())


@contextlib.contextmanager
def seeded_initializers(seed):
    """Within the block, Keras initializers created without a seed get seeds derived from ``seed``.

    Keras gives an unseeded initializer the seed
    ``random.randint(1, 10**9)`` from Python's global ``random`` module when
    the initializer is created (``keras.src.backend.random.make_default_seed``).
    The block seeds that module from ``seed`` and restores its state after,
    so layers built inside get the same initial weights for the same
    ``seed`` and the global random state is left as it was.
    """
    if seed is None:
        yield
        return
    state = random.getstate()
    random.seed(f"keras_vae:{seed}")
    try:
        yield
    finally:
        random.setstate(state)


#: ``BaseOptimizer`` methods the TensorFlow optimizer overrides with
#: ``tf.distribute`` cross-replica calls; :func:`device_local_view` restores
#: the plain versions, which update whatever variables they are given.
_CROSS_REPLICA_OPTIMIZER_METHODS = (
    "_backend_update_step",
    "_apply_weight_decay",
    "_overwrite_model_variables_with_average_value",
    "_backend_increment_gradient_accumulators",
)


def distributed_components(variable):
    """The per-device ``tf.Variable`` copies behind a Keras variable, or None if it is not distributed.

    Reads ``keras.Variable._value`` (the backend ``tf.Variable``; a
    ``MirroredVariable`` when created under a mirrored strategy).
    """
    import tensorflow as tf

    value = getattr(variable, "_value", None)
    if not isinstance(value, tf.distribute.DistributedValues):
        return None
    return tuple(value.values)


@contextlib.contextmanager
def device_local_view(variables, optimizer, index):
    """Within the block, ``variables`` and ``optimizer`` act on device ``index``'s copies only.

    Each Keras variable's backend variable (``_value``, a ``MirroredVariable``)
    is replaced by its ``index``-th component, a plain ``tf.Variable`` on that
    device, and the optimizer's ``tf.distribute`` overrides (every one of
    :data:`_CROSS_REPLICA_OPTIMIZER_METHODS`) by ``BaseOptimizer``'s plain
    versions, so ``optimizer.apply`` traced inside updates that device's
    copies of the weights and the optimizer state as one program, with no
    cross-replica call. Meant for tracing only: everything is restored on
    exit. Every one of ``variables`` and ``optimizer.variables`` must be
    distributed (:func:`distributed_components`).
    """
    from keras.src.optimizers import base_optimizer

    keras_variables = list(variables) + list(optimizer.variables)
    saved = [v._value for v in keras_variables]
    try:
        for v in keras_variables:
            v._value = distributed_components(v)[index]
        for name in _CROSS_REPLICA_OPTIMIZER_METHODS:
            setattr(optimizer, name, getattr(base_optimizer.BaseOptimizer, name).__get__(optimizer))
        yield
    finally:
        for v, value in zip(keras_variables, saved):
            v._value = value
        for name in _CROSS_REPLICA_OPTIMIZER_METHODS:
            optimizer.__dict__.pop(name, None)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose checkpoint is written atomically.

    The weights and the training metadata are written in full to temporary
    files, then moved into place (``os.replace``): a process killed in the
    middle of a save leaves the previous complete checkpoint, never a
    truncated one. Overrides Keras's private ``_save_model`` and reads its
    private path attributes. Subclasses may override :meth:`should_write`.
    """

    def should_write(self):
        """Whether this process writes (and deletes) the backup."""
        return True

    def extra_metadata(self):
        """JSON-serialisable dict saved with each checkpoint's epoch and batch (none by default)."""
        return {}

    def saved_metadata(self):
        """The metadata of the checkpoint in ``backup_dir`` (a dict), or None without one."""
        if not os.path.exists(self._training_metadata_path):
            return None
        with open(self._training_metadata_path) as f:
            return json.load(f)

    def _save_model(self):
        if not self.should_write():
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path, prev in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(path):
                    shutil.copyfile(path, prev + ".tmp")
                    os.replace(prev + ".tmp", prev)
        tmp_weights = self._weights_path + ".tmp.weights.h5"
        self.model.save_weights(filepath=tmp_weights, overwrite=True)
        tmp_meta = self._training_metadata_path + ".tmp"
        with open(tmp_meta, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen, **self.extra_metadata()}, f)
            f.flush()
            os.fsync(f.fileno())
        # Both files are complete before either replaces the last checkpoint.
        os.replace(tmp_weights, self._weights_path)
        os.replace(tmp_meta, self._training_metadata_path)
