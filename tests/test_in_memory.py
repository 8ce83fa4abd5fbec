"""Whole compiled epochs from the package's in-memory pipelines (keras_vae.in_memory)."""

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import datasets
from keras_vae import in_memory


def _feed_batches(source, per_call, epochs=1):
    """Every batch ``fit`` would train on, epoch by epoch, through the feed's own functions."""
    feed = in_memory.EpochFeed(source, per_call)
    gather = tf.function(in_memory.gather_batches, jit_compile=True)
    out = []
    for _ in range(epochs):
        batches = []
        for call in range(-(-source.steps // per_call)):
            first, count, epoch = feed.next_call(call)
            for size, start, n in feed.sizes(first, count):
                stacked = gather(
                    feed.x, feed.indices(start, n, size), tf.constant(start), tf.constant(epoch, tf.int64), n, size,
                    feed.steps, feed.dynamic, feed.seed,
                )  # fmt: skip
                batches += list(stacked.numpy())
        out.append(batches)
    return out


def test_the_pipeline_records_its_source_and_a_transformed_one_does_not():
    x = np.random.default_rng(0).random((250, 6)).astype("float32")
    ds = datasets.pipeline(x, batch_size=100, binarization="dynamic", shuffle=True, seed=3)
    source = in_memory.source_of(ds)
    assert (source.batch_size, source.dynamic, source.shuffle, source.seed, source.steps) == (100, True, True, 3, 3)
    np.testing.assert_array_equal(source.x, x)
    assert in_memory.source_of(ds.map(lambda t: t)) is None
    assert in_memory.source_of(x) is None
    static = in_memory.source_of(datasets.pipeline(x, batch_size=100, binarization="static", seed=3))
    np.testing.assert_array_equal(static.x, datasets.binarize(x, "static", seed=3))  # binarised once, before
    assert not static.dynamic
    dropped = datasets.pipeline(x, batch_size=100, drop_remainder=True)
    assert in_memory.source_of(dropped).steps == 2


def test_calls_and_batch_sizes_of_an_epoch():
    source = in_memory.ArraySource(np.zeros((250, 2), "float32"), 100, False, False, 0, False)
    feed = in_memory.EpochFeed(source, per_call=2)
    assert feed.next_call(0) == (0, 2, 0)
    assert feed.sizes(0, 2) == [(100, 0, 2)]
    assert feed.next_call(1) == (2, 1, 0)
    assert feed.sizes(2, 1) == [(50, 2, 1)]  # the last, smaller batch
    assert feed.next_call(0)[2] == 1  # a new epoch
    whole = in_memory.EpochFeed(source, per_call=3)
    assert whole.sizes(*whole.next_call(0)[:2]) == [(100, 0, 2), (50, 2, 1)]
    assert whole.sizes(0, 3, chunk=1) == [(100, 0, 1), (100, 1, 1), (50, 2, 1)]
    even = in_memory.EpochFeed(in_memory.ArraySource(np.zeros((700, 2), "float32"), 100, False, False, 0, False), 7)
    assert even.sizes(0, 7, chunk=3) == [(100, 0, 3), (100, 3, 3), (100, 6, 1)]


def test_each_epoch_is_a_fresh_permutation_of_every_example():
    x = np.arange(250, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    source = in_memory.ArraySource(x, 100, False, True, 7, False)
    epochs = _feed_batches(source, per_call=2, epochs=2)
    orders = []
    for batches in epochs:
        assert [len(b) for b in batches] == [100, 100, 50]
        rows = np.concatenate(batches)[:, 0].astype(int)
        np.testing.assert_array_equal(np.sort(rows), np.arange(250))  # every example once
        orders.append(rows)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled
    assert not np.array_equal(orders[0], np.arange(250))
    again = _feed_batches(source, per_call=2, epochs=2)
    np.testing.assert_array_equal(np.concatenate(again[1])[:, 0], orders[1])  # same seed, same stream


def test_dynamic_binarisation_draws_bernoulli_of_the_intensities_afresh_each_epoch():
    p = np.linspace(0.05, 0.95, 10, dtype="float32")
    x = np.tile(p, (2000, 1))
    source = in_memory.ArraySource(x, 500, True, False, 0, False)
    first, second = (np.concatenate(b) for b in _feed_batches(source, per_call=4, epochs=2))
    assert set(np.unique(first)) == {0.0, 1.0}
    # Column means of 2,000 Bernoulli(p) draws: standard error <= 0.0112.
    np.testing.assert_allclose(first.mean(axis=0), p, atol=0.045)
    np.testing.assert_allclose(second.mean(axis=0), p, atol=0.045)
    assert 0.3 < (first != second).mean() < 0.6  # independent draws: 2 p (1 - p) on average, 0.34 here


#: Examples per test: whole batches only (no program for a smaller last batch; with the
#: slow tests), or a smaller last batch.
BATCH_COUNTS = [
    pytest.param(224, marks=pytest.mark.slow, id="full_batches"),
    pytest.param(250, id="smaller_last_batch"),
]


@pytest.mark.parametrize("n", BATCH_COUNTS)
def test_fit_on_the_pipeline_trains_as_the_fused_loop_on_the_same_batches(binary_digits, n):
    """Without shuffling or dynamic draws both paths see the same batches: the same weights after 2 epochs."""
    x = binary_digits[0][:n]
    ds = datasets.pipeline(x, batch_size=32)
    results = []
    for data in (ds, ds.map(lambda t: t)):
        keras.utils.set_random_seed(0)
        model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=3)
        history = model.fit(data, epochs=2, verbose=0)
        assert int(model.optimizer.iterations) == 2 * -(-n // 32)
        assert model.steps_per_execution == 3
        results.append((model, history.history))
    (fed, h_fed), (piped, h_piped) = results
    assert "_in_memory_programs" in fed.__dict__ and "_in_memory_programs" not in piped.__dict__
    for a, b in zip(fed.get_weights(), piped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "elbo", "kl"):
        np.testing.assert_allclose(h_fed[name], h_piped[name], rtol=1e-5)


@pytest.mark.parametrize("n", BATCH_COUNTS)
def test_fit_on_a_numpy_array_trains_in_memory_as_on_the_same_batches_through_tf_data(binary_digits, n):
    """Unshuffled, a numpy array and a dataset of its batches give the same weights and logs."""
    x = binary_digits[0][:n]
    results = []
    batches = tf.data.Dataset.from_tensor_slices(x).batch(32)
    for data, kwargs in ((x, {"batch_size": 32, "shuffle": False}), (batches, {})):
        keras.utils.set_random_seed(0)
        model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=3)
        history = model.fit(data, epochs=2, verbose=0, **kwargs)
        assert int(model.optimizer.iterations) == 2 * -(-n // 32)
        results.append((model, history.history))
    (fed, h_fed), (piped, h_piped) = results
    assert "_in_memory_programs" in fed.__dict__ and "_in_memory_programs" not in piped.__dict__
    for a, b in zip(fed.get_weights(), piped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_fed["elbo"], h_piped["elbo"], rtol=1e-5)


def test_fit_on_a_numpy_array_shuffles_each_epoch_and_batches_as_keras(binary_digits, monkeypatch):
    """Shuffled (Keras's default): reproducible under one seed, another order under another; Keras's
    batch sizes for training and validation; what is left to Keras's own loop."""
    n = 250
    x = binary_digits[0][:n]
    model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
    model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=3)
    model.build((None, 64))
    model.optimizer.build(model.trainable_variables)
    # One model (one compiled program: the order's seed is an input), reset before each fit.
    state = model.variables + model.optimizer.variables
    initial = [v.numpy() for v in state]
    weights, traces = [], []
    for seed in (1, 1, 2):
        for v, value in zip(state, initial):
            v.assign(value)
        keras.utils.set_random_seed(seed)
        model.fit(x, epochs=2, batch_size=32, verbose=0)
        assert int(model.optimizer.iterations) == 2 * -(-n // 32) and "_in_memory_programs" in model.__dict__
        weights.append(model.get_weights()[0])
        traces.append(model._in_memory_programs["run"].experimental_get_tracing_count())
    assert traces[0] == traces[-1]  # a new seed, the same program
    np.testing.assert_array_equal(weights[0], weights[1])
    assert np.abs(weights[0] - weights[2]).max() > 1e-3
    # Keras's batching and order: batches of batch_size (32 by default), a fresh order every epoch.
    source = in_memory.from_array(x.astype(np.float64), {})
    assert source.x.dtype == np.float32 and source.batch_size == 32 and source.shuffle and not source.dynamic
    feed = in_memory.EpochFeed(source, per_call=3)
    feed.next_call(0)
    first = feed.order.numpy()
    feed.next_call(0)
    assert sorted(first) == sorted(feed.order.numpy()) == list(range(n)) and not np.array_equal(first, feed.order)
    # Validation keeps the fit's batch size, as Keras gives it.
    counted = []
    counter = keras.callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: counted.append(batch))
    valid = np.concatenate([x, x])[:300]
    model.fit(x, epochs=1, batch_size=50, validation_data=valid, callbacks=[counter], verbose=0)
    assert len(counted) == 2  # 300 validation examples in 6 batches of 50, 3 steps per execution (32: 10, 4 calls)
    assert in_memory.eligible(model, x, None, {"validation_split": 0.1}) is None
    assert in_memory.eligible(model, x, None, {"shuffle": "batch"}) is None
    assert in_memory.eligible(model, x, x, {}) is None
    assert in_memory.eligible(model, x, None, {}).batch_size == 32  # Keras's default
    monkeypatch.setattr(in_memory, "MAX_BYTES", 4 * x.size - 1)  # checked before the float32 copy
    assert in_memory.from_array(x.astype(np.uint8), {}) is None


def test_fit_with_dynamic_binarisation_learns_and_keeps_its_program_and_stream_across_calls(digits):
    ds = datasets.pipeline(digits[0], batch_size=100, binarization="dynamic", shuffle=True, seed=0)
    model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(32,), seed=0)
    model.compile(keras.optimizers.Adam(1e-2), jit_compile=True)
    first = model.fit(ds, epochs=1, verbose=0).history["elbo"][-1]
    program = model._in_memory_programs["run"]
    feed = model._in_memory_feeds[in_memory.source_of(ds)]
    order = feed.order.numpy()
    last = model.fit(ds, epochs=5, verbose=0).history["elbo"][-1]
    assert model._in_memory_programs["run"] is program
    assert model._in_memory_feeds[in_memory.source_of(ds)] is feed and feed.epoch == 5  # epochs 0..5
    assert not np.array_equal(feed.order.numpy(), order)  # a second fit call does not replay the first epoch
    del ds, feed
    gc.collect()
    assert len(model._in_memory_feeds) == 0  # the device copy goes with the dataset
    assert int(model.optimizer.iterations) == 6 * 15
    assert last > first + 3  # nats per example
    before = model.evaluate(datasets.binarize(digits[1], "static"), verbose=0, return_dict=True)["elbo"]
    assert np.isfinite(before)


def test_the_tf_data_path_is_kept_without_xla_and_under_a_strategy(binary_digits):
    ds = datasets.pipeline(binary_digits[0][:64], batch_size=32)
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    assert in_memory.eligible(model, ds, None, {}) is None
    model.fit(ds, epochs=1, verbose=0)
    assert "_in_memory_programs" not in model.__dict__
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        mirrored.compile(keras.optimizers.Adam(1e-3), jit_compile=True)
    assert in_memory.eligible(mirrored, ds, None, {}) is None
    xla = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    xla.compile(keras.optimizers.Adam(1e-3), jit_compile=True)
    assert in_memory.eligible(xla, ds, None, {}) is not None
    assert in_memory.eligible(xla, ds, None, {"steps_per_epoch": 1}) is None
