"""Distributed and fault-tolerant training: strategies, ``TF_CONFIG``, backups.

keras-vae models train under any ``tf.distribute`` strategy: build and
compile them inside ``strategy.scope()`` and call ``fit`` as usual. Losses are
summed per replica and divided by the *global* batch size, gradients are
summed across replicas, and every replica draws its own noise (the replica id
is folded into each random seed), so ``N`` replicas with a global batch ``B``
follow the same training trajectory in distribution as one device with ``B``.

- :func:`get_strategy`: ``"none"``, ``"mirrored"`` (all local GPUs, or the
  logical CPU devices made by :func:`split_cpu`) or ``"multi_worker"``
  (``MultiWorkerMirroredStrategy``, configured by ``TF_CONFIG``).
- :func:`tf_config`, :func:`free_ports`: the ``TF_CONFIG`` of each worker.
- :func:`is_chief`, :func:`worker_output_dir`: in a multi-worker job every
  worker runs the same program; only the chief writes the real outputs.
- :class:`BackupAndRestore`: ``keras.callbacks.BackupAndRestore`` that writes
  its checkpoint atomically (a process killed while saving leaves the previous
  checkpoint intact) and, in a multi-worker job, from the chief only.
"""

import json
import os
import shutil
import socket
import tempfile
import time

from keras_vae import _keras_compat

STRATEGIES = ("none", "mirrored", "multi_worker")


def split_cpu(n, intra_op_threads="auto"):
    """Split the host CPU into ``n`` logical devices (one replica each).

    For trying ``MirroredStrategy`` without GPUs. Must run before TensorFlow
    initialises its devices (before the first op or device query).

    The logical devices share one pool of intra-op threads (the threads a
    single op, such as an XLA program's matrix product, splits its work
    over). By default each device gets its share of the host's cores:
    the pool is set to ``max(1, cores // n)`` threads, so the replicas'
    matrix products do not each split over every core while the replicas'
    programs already run side by side (on the inter-op threads, which also
    run a program's independent parts at once); on two cores with two devices
    that took the mirrored step of the 784-200-200-[50] VAE from about 5.4 to
    3.8 ms (``benchmarks/distributed_step.py``). The setting holds for the
    whole process, single-device work included.

    Args:
        n: int >= 1, the number of logical CPU devices.
        intra_op_threads: ``"auto"`` (the share above, unless the pool size
            was already set through ``tf.config.threading``), an int (that
            size; 0 is TensorFlow's default, every core) or None (leave
            TensorFlow's setting).

    Raises:
        RuntimeError: TensorFlow's devices are already initialised.
    """
    import tensorflow as tf

    n = int(n)
    if n < 1:
        raise ValueError(f"split_cpu needs n >= 1, got {n}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as err:
        raise RuntimeError(
            f"Cannot split the CPU into {n} devices: TensorFlow has already initialised its "
            "devices. Call split_cpu (or pass --cpu-devices) before any TensorFlow operation."
        ) from err
    if intra_op_threads == "auto":
        if tf.config.threading.get_intra_op_parallelism_threads():
            return  # Set by the caller.
        intra_op_threads = max(1, host_cores() // n)
    if intra_op_threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))


def host_cores():
    """The number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not on every platform.
        return os.cpu_count() or 1


def get_strategy(name="none"):
    """A ``tf.distribute`` strategy by name.

    Args:
        name: ``"none"`` (the default strategy: one device), ``"mirrored"``
            (``MirroredStrategy`` over every local GPU, or over the logical
            CPU devices if there are several and no GPU), or
            ``"multi_worker"`` (``MultiWorkerMirroredStrategy``; each worker
            process needs ``TF_CONFIG``, see :func:`tf_config`).

    Raises:
        ValueError: unknown name, or ``"multi_worker"`` without ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"Unknown distribution strategy {name!r}; choose from {STRATEGIES}.")
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--distribute multi_worker needs the TF_CONFIG environment variable in every "
                'worker, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (see keras_vae.distribute.tf_config).'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def tf_config(workers, index, task_type="worker"):
    """The ``TF_CONFIG`` JSON string of one task of a multi-worker job.

    Args:
        workers: list of ``"host:port"`` of every worker, the same list (in
            the same order) for every worker.
        index: this worker's position in ``workers``; worker 0 is the chief.

    Example:
        >>> os.environ["TF_CONFIG"] = tf_config(["10.0.0.1:2222", "10.0.0.2:2222"], 0)
    """
    return json.dumps({"cluster": {task_type: list(workers)}, "task": {"type": task_type, "index": int(index)}})


def free_ports(n, host="127.0.0.1"):
    """``n`` distinct TCP ports that were free on ``host`` a moment ago."""
    sockets, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def task():
    """``(task_type, task_index)`` from ``TF_CONFIG``, or ``(None, None)``."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    info = config.get("task") or {}
    return info.get("type"), info.get("index")


def is_chief():
    """Whether this process writes the job's outputs.

    True without ``TF_CONFIG``; with it, for the ``chief`` task, or for
    worker 0 when the cluster has no ``chief``.
    """
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task_type, index = task()
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and int(index) == 0 and "chief" not in config.get("cluster", {})


def worker_output_dir(out):
    """``out`` for the chief; a fresh temporary directory for other workers.

    Every worker of a multi-worker job runs the same program and saves the
    same (synchronised) model; non-chief workers write to a scratch
    directory that :func:`remove_worker_output_dir` deletes.
    """
    if is_chief():
        return out
    task_type, index = task()
    return tempfile.mkdtemp(prefix=f"keras_vae_{task_type}_{index}_")


def remove_worker_output_dir(path, out):
    """Delete a non-chief worker's scratch directory (never ``out`` itself)."""
    if os.path.abspath(str(path)) != os.path.abspath(str(out)):
        shutil.rmtree(path, ignore_errors=True)


class BackupAndRestore(_keras_compat.AtomicBackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` for jobs that may be killed at any time.

    Differences from Keras's callback:

    - the weights and the training metadata are written in full to temporary
      files, then moved into place (``os.replace``): a process killed in the
      middle of a save leaves the previous complete checkpoint, never a
      truncated one;
    - the checkpoint also holds the per-epoch logs and the training seconds
      of every epoch so far, so after a resume :attr:`history` and
      :attr:`train_seconds` describe the whole run, not only its last part;
      :attr:`resumed_epoch` says where the run continued;
    - a checkpoint that does not fit the model (written by a run with other
      settings) raises a ``ValueError`` that names the backup directory;
    - in a multi-worker job (``TF_CONFIG``) only the chief writes and deletes
      the backup; every worker restores from it, so ``backup_dir`` must be on
      storage that every worker reads (a shared filesystem across machines).

    On restart with the same ``backup_dir``, ``fit`` resumes after the last
    completed epoch (``save_freq="epoch"``) with the saved weights and
    optimiser state.

    Args:
        backup_dir: directory of the checkpoint.
        on_resume: optional function called with the number of epochs
            restored when a run resumes.
        restore: False: start afresh and ignore a checkpoint in
            ``backup_dir`` (the workers of a multi-worker job whose chief
            discards the old run, which they could otherwise read before the
            chief has removed it).
        **kwargs: the other arguments of ``keras.callbacks.BackupAndRestore``.

    Attributes:
        history: dict, metric name -> list of per-epoch values of the whole run.
        train_seconds: seconds spent in the epochs of the whole run.
        resumed_epoch: epochs restored from the checkpoint (0 for a fresh run).

    Example:
        >>> backup = BackupAndRestore("run/backup")
        >>> model.fit(data, epochs=50, callbacks=[backup])
        >>> len(backup.history["loss"])  # 50, even if the run was resumed
    """

    def __init__(self, backup_dir, on_resume=None, restore=True, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.on_resume = on_resume
        self.restore = bool(restore)
        self.history = {}
        self.train_seconds = 0.0
        self.resumed_epoch = 0
        self._epoch_start = None

    def should_write(self):
        return is_chief()

    def extra_metadata(self):
        return {"history": self.history, "train_seconds": self.train_seconds}

    def on_train_begin(self, logs=None):
        if not self.restore:
            self.history, self.train_seconds, self.resumed_epoch = {}, 0.0, 0
            return
        try:
            super().on_train_begin(logs)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"The checkpoint in {self.backup_dir} does not fit this model: it was written by a run "
                f"with other settings ({err}). Resume with that run's settings, or delete "
                f"{self.backup_dir} to start afresh."
            ) from err
        saved = self.saved_metadata() or {}
        self.resumed_epoch = int(saved.get("epoch", 0))
        self.history = {k: [float(v) for v in vs][: self.resumed_epoch] for k, vs in saved.get("history", {}).items()}
        self.train_seconds = float(saved.get("train_seconds", 0.0))
        if self.resumed_epoch and self.on_resume is not None:
            self.on_resume(self.resumed_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self._epoch_start is not None:
            self.train_seconds += time.perf_counter() - self._epoch_start
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if is_chief():
            super().on_train_end(logs)
