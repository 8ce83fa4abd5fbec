"""Whole epochs in compiled programs for data held in memory.

A pipeline built by :func:`keras_vae.datasets.pipeline` (and so by
:func:`keras_vae.datasets.load`) carries an :class:`ArraySource`: the array it
slices, its batch size, shuffling and binarisation. When ``fit`` gets such a
pipeline and runs its steps with XLA outside any ``tf.distribute`` strategy,
it does not pull batches through ``tf.data``: the array is copied once to the
compute device and each compiled call gathers its batches from it by an index
permutation of the epoch, draws their dynamic binarisation and runs
``steps_per_execution`` training steps (:class:`EpochFeed`). The data the
model sees follow the same law as the pipeline's (every example once per
epoch in a fresh order, a fresh Bernoulli draw of every batch each epoch,
the same batch sizes), not the same random stream.

A numpy array of examples passed to ``fit`` (``model.fit(x, batch_size=100)``)
takes the same path (:func:`from_array`): batches of ``batch_size`` (Keras's
default 32) in a fresh order every epoch unless ``shuffle=False``, as Keras
gives them, with the order drawn from a seed taken from numpy's global
generator (so ``keras.utils.set_random_seed`` makes it reproducible). It is
copied to the device at every ``fit`` call, and each call starts a new
stream of orders. With ``validation_split``, ``shuffle="batch"``, labels,
weights, ``steps_per_epoch``, more than ``MAX_BYTES`` as float32, without
XLA or under a strategy, ``fit`` keeps Keras's own handling.

Any transformation of the pipeline (``.map``, ``.prefetch``, ...) gives a
dataset without a source, which ``fit`` reads through ``tf.data`` as usual.
"""

import dataclasses

import numpy as np
import tensorflow as tf

#: Arrays larger than this stay in ``tf.data``: the copy on the compute device doubles their memory.
MAX_BYTES = 2 * 1024**3
#: Keras's batch size when ``fit`` is given arrays and no ``batch_size``.
KERAS_BATCH_SIZE = 32

_ATTRIBUTE = "_keras_vae_source"


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySource:
    """What a ``tf.data`` pipeline of batches was made from.

    Attributes:
        x: float32 ``[N, *input_shape]`` examples (already binarised for a
            static binarisation).
        batch_size: examples per batch.
        dynamic: a fresh Bernoulli draw of every batch each epoch.
        shuffle: a fresh order of the examples each epoch.
        seed: seed of the order and of the draws.
        drop_remainder: drop a last batch smaller than ``batch_size``.
    """

    x: np.ndarray
    batch_size: int
    dynamic: bool
    shuffle: bool
    seed: int
    drop_remainder: bool

    def first_batch(self):
        """A batch like the pipeline's first (its first examples, with a Bernoulli draw if dynamic), as numpy.

        For checks of the data without starting the pipeline, whose first
        batch waits for its shuffle buffer to hold the whole array (about
        50 ms for MNIST, on every ``fit`` call).
        """
        batch = self.x[: self.batch_size]
        if self.dynamic:
            batch = (np.random.default_rng(self.seed).random(batch.shape) < batch).astype(np.float32)
        return batch

    @property
    def steps(self):
        """Batches per epoch."""
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (1 if rest and not self.drop_remainder else 0)


def attach(dataset, source):
    """Records ``source`` on ``dataset`` and returns the dataset."""
    setattr(dataset, _ATTRIBUTE, source)
    return dataset


def source_of(dataset):
    """The :class:`ArraySource` of a dataset built by ``datasets.pipeline``, else None."""
    return getattr(dataset, _ATTRIBUTE, None) if isinstance(dataset, tf.data.Dataset) else None


class EpochFeed:
    """The batches of an :class:`ArraySource`, produced inside compiled programs.

    ``fit`` is given :meth:`dataset` (one small element per step, so that
    Keras counts the steps of an epoch); each call of the training function
    takes one element, the index of its execution in the epoch, and runs
    the steps ``[index * per_call, ...)`` of that epoch.

    Args:
        source: the :class:`ArraySource`.
        per_call: steps per compiled call (``steps_per_execution``).

    Example:
        >>> feed = EpochFeed(source, per_call=32)
        >>> first, count, epoch = feed.next_call(0)      # start of an epoch: new order
        >>> [(size, start, n)] = feed.sizes(first, count)  # runs of equal batch sizes
        >>> feed.indices(start, n, size)                 # int32 [n * size], the examples they hold
    """

    def __init__(self, source, per_call):
        # The source's settings, not the source: fit keeps feeds in a
        # WeakKeyDictionary keyed by their source, which a value holding the
        # key would keep alive.
        self.examples, self.batch_size, self.steps = len(source.x), source.batch_size, source.steps
        self.dynamic, self.shuffle, self.seed = source.dynamic, source.shuffle, source.seed
        self.batch_bytes = source.x[:1].nbytes * source.batch_size
        self.per_call = max(1, min(int(per_call), source.steps))
        # Once on the compute device (a GPU if there is one).
        self.x = tf.identity(tf.constant(source.x))
        self.order = None
        self.epoch = -1

    def dataset(self):
        """``tf.data.Dataset`` of the step indices of an epoch, as ``fit``'s data."""
        # Without tf.data's autotuner, whose thread took half a second to
        # stop at the end of every other fit call.
        options = tf.data.Options()
        options.autotune.enabled = False
        return tf.data.Dataset.range(self.steps).with_options(options)

    def next_call(self, index):
        """``(first step, step count, epoch)`` of the call ``index`` of an epoch; call 0 starts a new epoch."""
        if index == 0 or self.order is None:
            self.epoch += 1
            n = self.examples
            if self.shuffle:
                seed = tf.constant([self.seed, self.epoch], tf.int64)
                self.order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int32), seed=seed)
            else:
                self.order = tf.range(n, dtype=tf.int32)
        first = index * self.per_call
        return first, min(self.per_call, self.steps - first), self.epoch

    def indices(self, first, count, size):
        """int32 ``[count * size]``: the examples of batches ``first ..`` of the current epoch, in order."""
        start = first * self.batch_size
        return self.order[start : start + count * size]

    def sizes(self, first, count, chunk=None):
        """``[(size, first, count)]``: runs of equal-sized batches among steps ``[first, first + count)``.

        The last batch of an epoch may be smaller; ``chunk`` (default: no
        limit) caps the steps of a run.
        """
        last = self.examples - (self.steps - 1) * self.batch_size
        end = first + count - (1 if first + count == self.steps and last != self.batch_size else 0)
        chunk = chunk or count
        runs = [(self.batch_size, start, min(chunk, end - start)) for start in range(first, end, chunk)]
        if end < first + count:
            runs.append((last, self.steps - 1, 1))
        return runs


def gather_batches(x, indices, first, epoch, count, size, steps, dynamic, seed):
    """Batches ``first .. first + count - 1`` of ``epoch`` of an :class:`ArraySource`, stacked.

    XLA code: the draws use the Threefry generator, which TensorFlow's own
    CPU kernels lack; call it inside a ``tf.function(jit_compile=True)``.

    Args:
        x: the examples on the device, ``[N, *input_shape]``.
        indices: int32 ``[count * size]``, the examples of these batches in
            order (a slice of the epoch's order, cut outside the compiled
            program: XLA takes a slice's start as a compile-time constant).
        first: int32 scalar, the index of the first batch in the epoch.
        epoch: int64 scalar.
        count, size: batches and examples per batch (Python ints: static for
            XLA; ``size`` is the source's batch size except for a smaller
            last batch).
        steps, dynamic: the source's batches per epoch and dynamic
            binarisation (Python values).
        seed: int64 scalar, the source's seed (a tensor: a new seed does not
            compile a new program).

    Returns:
        float32 ``[count, size, *input_shape]``: the examples ``x[indices]``,
        binarised if ``dynamic`` by a draw seeded by ``(seed, epoch * steps +
        first)``.
    """
    batches = tf.gather(x, indices)
    batches = tf.reshape(batches, tf.concat([[count, size], tf.shape(x)[1:]], axis=0))
    if dynamic:
        draw = tf.cast(epoch, tf.int64) * steps + tf.cast(first, tf.int64)
        key = tf.stack([tf.cast(seed, tf.int64) + 1, draw])
        # Threefry: XLA's CPU code for it ran 3.4x faster than Philox and 35x faster than "auto_select"
        # (3.5 ms against 11.9 and 124 for 2.5 million draws).
        uniform = tf.random.stateless_uniform(tf.shape(batches), seed=key, alg="threefry")
        batches = tf.cast(uniform < batches, batches.dtype)
    return batches


def from_array(x, kwargs):
    """The :class:`ArraySource` of a numpy array given to ``fit``, batched as Keras would batch it.

    Args:
        x: numpy ``[N, *input_shape]`` examples (numbers).
        kwargs: ``fit``'s keyword arguments: ``batch_size`` (default 32) and
            ``shuffle`` (default True) are read.

    Returns:
        An :class:`ArraySource` (float32, no binarisation, the last batch
        kept even if smaller, its seed drawn from numpy's global generator),
        or None where Keras's own handling is needed (not a numeric array,
        ``validation_split``, ``shuffle="batch"``, more than ``MAX_BYTES`` as
        float32).
    """
    if not isinstance(x, np.ndarray) or x.ndim < 2 or x.dtype.kind not in "biuf":
        return None
    shuffle = kwargs.get("shuffle", True)
    if kwargs.get("validation_split") or not isinstance(shuffle, bool) or 4 * x.size > MAX_BYTES:
        return None  # (the size checked before a float32 copy is made)
    return ArraySource(
        x=np.asarray(x, np.float32),
        batch_size=int(kwargs.get("batch_size") or KERAS_BATCH_SIZE),
        dynamic=False,
        shuffle=shuffle,
        seed=int(np.random.randint(2**31 - 1)),
        drop_remainder=False,
    )


def eligible(model, x, y, kwargs):
    """The :class:`ArraySource` of ``x`` if ``fit`` can run it as whole compiled epochs, else None.

    ``x`` qualifies when it is a pipeline of :func:`keras_vae.datasets.pipeline`
    or a numpy array (:func:`from_array`) and the model trains with XLA
    outside any strategy, without ``y``, ``steps_per_epoch`` or weights.
    """
    if y is not None or any(kwargs.get(k) is not None for k in ("steps_per_epoch", "class_weight", "sample_weight")):
        return None
    if not model.jit_compile or model.run_eagerly or model._distributed():
        return None
    source = source_of(x) or from_array(x, kwargs)
    if source is None or source.x.nbytes > MAX_BYTES:
        return None
    return source
