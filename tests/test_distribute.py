"""tf.distribute: strategies, replica equivalence and noise, multi-worker, fast defaults.

Strategies with several replicas need their own processes (logical CPU
devices must be set before TensorFlow initialises; a multi-worker job is one
process per worker), so those tests run ``tests/_worker_distribute.py``.
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import weakref
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import distribute

WORKER = pathlib.Path(__file__).with_name("_worker_distribute.py")
ROOT = WORKER.parent.parent


#: Five global batches of 100: two executions of two steps, then one step alone,
#: each replica's step an XLA program.
EXAMPLES = ("--examples", "500")
#: The same five batches with a static size: under a strategy, fit reads each
#: execution's batches as one stack (keras_vae.training.stack_steps).
FIXED_BATCHES = ("--fixed-batches",)
TWO_STEPS = ("--compile", '{"steps_per_execution": 2, "jit_compile": true}')


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_VAE_JIT_COMPILE="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _start(out, *args, **env):
    return subprocess.Popen(
        [sys.executable, str(WORKER), "--out", str(out), *args],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc, timeout=300):
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError("worker timed out:\n" + output[-3000:]) from None
    assert proc.returncode == 0, output[-3000:]
    return output


def _weights(result, model):
    keys = sorted((k for k in result.files if k.startswith(f"{model}_w")), key=lambda k: int(k.split("_w")[1]))
    return [result[k] for k in keys]


def _assert_same_weights(a, b, model, atol=2e-5):
    wa, wb = _weights(a, model), _weights(b, model)
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One epoch of a VAE and a Helmholtz machine, on 1 device and on 2 mirrored CPU devices.

    Both runs replace the Gaussian draws by their means (``--deterministic``):
    replicas draw different noise by design, so with sampling on, 1 and 2
    replicas are only equal in distribution. What is compared is the
    reduction: losses summed per replica and divided by the global batch,
    gradients summed across replicas. (The latent draws recorded for the
    noise test are taken before the patch.)
    """
    tmp = tmp_path_factory.mktemp("distribute")
    procs = {
        # The reference: Keras's own step loop, no XLA, one device.
        "single": _start(tmp / "single.npz", "--strategy", "none", "--deterministic", *EXAMPLES),
        # XLA per replica and several steps per execution under a strategy.
        "mirrored": _start(
            tmp / "mirrored.npz",
            "--strategy",
            "mirrored",
            "--cpu-devices",
            "2",
            "--deterministic",
            *EXAMPLES,
            *TWO_STEPS,
            *FIXED_BATCHES,
        ),
    }
    for proc in procs.values():
        _finish(proc)
    return {name: np.load(tmp / f"{name}.npz") for name in procs}


@pytest.mark.slow  # Two worker processes, one compiling XLA per replica.
@pytest.mark.parametrize("model", ["vae", "hm"])
def test_two_mirrored_replicas_match_one_device(runs, model):
    single, mirrored = runs["single"], runs["mirrored"]
    assert int(single["replicas"]) == 1 and int(mirrored["replicas"]) == 2
    _assert_same_weights(single, mirrored, model)
    np.testing.assert_allclose(single[f"{model}_loss"], mirrored[f"{model}_loss"], rtol=1e-5)
    # Every logged metric (read once per execution under the strategy), kl_weight (a scalar) too.
    logged = sorted(k for k in single.files if k.startswith(f"{model}_history_"))
    assert logged == sorted(k for k in mirrored.files if k.startswith(f"{model}_history_"))
    assert (f"{model}_history_kl_weight" in logged) == (model == "hm")
    assert f"{model}_history_val_elbo" in logged
    for key in logged:
        np.testing.assert_allclose(single[key], mirrored[key], rtol=1e-5, err_msg=key)
    # evaluate after fit: every metric, the same values.
    scores = sorted(k for k in single.files if k.startswith(f"{model}_evaluate_"))
    assert f"{model}_evaluate_elbo" in scores
    assert scores == sorted(k for k in mirrored.files if k.startswith(f"{model}_evaluate_"))
    for key in scores:
        np.testing.assert_allclose(single[key], mirrored[key], rtol=1e-5, err_msg=key)
    # split_cpu gave each of the 2 devices its share of the cores' intra-op threads.
    assert int(mirrored["intra_op_threads"]) == max(1, distribute.host_cores() // 2)
    # Under the strategy each replica's step was one XLA program, two steps per execution,
    # and the optimizer step one program per device, each updating its share of the
    # variables (Adam), leaving the copies identical after fit.
    assert int(mirrored[f"{model}_steps_per_execution"]) == 2
    assert bool(mirrored[f"{model}_jit_compile"])
    assert bool(mirrored[f"{model}_device_update"]) and bool(mirrored[f"{model}_update_sharded"])
    assert bool(mirrored[f"{model}_copies_equal"])
    # Its batches (a static size) were read one stack of two steps per execution.
    assert bool(mirrored[f"{model}_stacked"]) and not bool(single[f"{model}_stacked"])


@pytest.mark.slow  # Two worker processes.
def test_mirrored_clips_the_summed_gradient_as_one_device(tmp_path):
    """Gradient clipping under two replicas clips the global gradient, as one device does.

    ``global_clipnorm=0.05`` clips every step of this run (its gradients' norms
    are far larger). Keras's own distributed update clips each replica's
    gradient before the sum, which does not match one device.
    """
    clip = ("--optimizer", '{"global_clipnorm": 0.05}', "--models", "vae")
    procs = {
        "single": _start(tmp_path / "single.npz", "--strategy", "none", "--deterministic", *EXAMPLES, *clip),
        "mirrored": _start(
            tmp_path / "mirrored.npz", "--strategy", "mirrored", "--cpu-devices", "2", "--deterministic",
            *EXAMPLES, *TWO_STEPS, *clip,
        ),
    }
    for proc in procs.values():
        _finish(proc)
    single, mirrored = (np.load(tmp_path / f"{name}.npz") for name in procs)
    assert bool(mirrored["vae_device_update"]) and bool(mirrored["vae_copies_equal"])
    assert not bool(mirrored["vae_update_sharded"])  # the global norm reads every gradient
    _assert_same_weights(single, mirrored, "vae")


@pytest.mark.slow
def test_replicas_draw_different_noise(runs):
    draws = runs["mirrored"]["draws"]  # [replica, 8 examples, latent]
    assert draws.shape == (2, 8, 4)
    # The same input on both replicas, different draws...
    assert np.abs(draws[0] - draws[1]).min() > 1e-6
    # ...where the model's SeedGenerator alone gives every replica the same eps.
    without = runs["mirrored"]["draws_without_fold"]
    np.testing.assert_array_equal(without[0], without[1])
    # Without the fold, replica 0 draws what a single device draws.
    np.testing.assert_allclose(without[0], runs["single"]["draws_without_fold"][0], atol=1e-6)


@pytest.mark.slow
def test_multi_worker_matches_one_device_and_workers_agree(runs, tmp_path):
    """Two worker processes on 127.0.0.1 (``TF_CONFIG``, ports chosen now)."""
    workers = [f"127.0.0.1:{port}" for port in distribute.free_ports(2)]
    procs = [
        _start(
            tmp_path / f"worker{i}.npz",
            "--strategy",
            "multi_worker",
            "--deterministic",
            *EXAMPLES,
            *TWO_STEPS,
            *FIXED_BATCHES,
            TF_CONFIG=distribute.tf_config(workers, i),
        )
        for i in range(2)
    ]
    for proc in procs:
        _finish(proc)
    results = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    for model in ("vae", "hm"):
        _assert_same_weights(results[0], results[1], model, atol=0.0)  # Identical on both workers.
        _assert_same_weights(results[0], runs["single"], model)
        single_elbo = runs["single"][f"{model}_evaluate_elbo"]
        for result in results:
            np.testing.assert_allclose(result[f"{model}_evaluate_elbo"], single_elbo, rtol=1e-5)
        assert bool(results[0][f"{model}_device_update"]) and bool(results[0][f"{model}_copies_equal"])
        assert not bool(results[0][f"{model}_update_sharded"])  # the update reads the all-reduced sum
        assert not bool(results[0][f"{model}_stacked"])  # each worker reads its shard a batch at a time
    assert int(results[0]["replicas"]) == 2
    # Each worker's replica draws its own noise.
    assert np.abs(results[0]["draws"][0] - results[1]["draws"][0]).min() > 1e-6


# ---------------------------------------------------------------------------
# In-process: strategy helpers.
# ---------------------------------------------------------------------------


def test_get_strategy_by_name(monkeypatch):
    import tensorflow as tf

    assert distribute.get_strategy("none") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="Unknown distribution strategy"):
        distribute.get_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_split_cpu_after_initialisation_says_why():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # Devices are initialised by now.
    if len(tf.config.list_logical_devices("CPU")) == 3:
        pytest.skip("another test already split the CPU into 3 devices")
    with pytest.raises(RuntimeError, match="before any TensorFlow operation"):
        distribute.split_cpu(3)


def test_tf_config_free_ports_and_chief(monkeypatch, tmp_path):
    ports = distribute.free_ports(3)
    assert len(set(ports)) == 3 and all(p > 0 for p in ports)
    workers = [f"127.0.0.1:{p}" for p in ports]
    config = json.loads(distribute.tf_config(workers, 1))
    assert config == {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1}}

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief() and distribute.worker_output_dir(tmp_path) == tmp_path
    monkeypatch.setenv("TF_CONFIG", distribute.tf_config(workers, 0))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", distribute.tf_config(workers, 1))
    assert not distribute.is_chief()
    scratch = distribute.worker_output_dir(tmp_path)
    assert pathlib.Path(scratch) != tmp_path and os.path.isdir(scratch)
    distribute.remove_worker_output_dir(scratch, tmp_path)
    assert not os.path.exists(scratch) and tmp_path.exists()
    chief_cluster = {"cluster": {"chief": workers[:1], "worker": workers[1:]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(chief_cluster))
    assert not distribute.is_chief()


# ---------------------------------------------------------------------------
# In-process: the fast defaults of compile.
# ---------------------------------------------------------------------------


def test_compile_defaults_xla_and_steps_per_execution(monkeypatch, binary_digits, tmp_path):
    monkeypatch.delenv("KERAS_VAE_JIT_COMPILE", raising=False)
    x = binary_digits[0][:250]  # 8 batches of 32, the last of 26.
    model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(32,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    assert model.jit_compile is True
    assert model.steps_per_execution == keras_vae.models.DEFAULT_STEPS_PER_EXECUTION > 1
    history = model.fit(x, epochs=2, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert int(model.optimizer.iterations) == 16  # Every step ran, 32 per call.

    # The saved compile config keeps "auto", and loading recompiles with it.
    assert model.get_compile_config()["jit_compile"] == "auto"
    model.save(tmp_path / "m.keras")
    monkeypatch.setenv("KERAS_VAE_JIT_COMPILE", "0")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.compiled and loaded.jit_compile is False  # "auto" resolved where it loads.
    assert loaded.steps_per_execution == model.steps_per_execution
    assert int(loaded.optimizer.iterations) == 16
    loaded.fit(x, epochs=1, batch_size=32, verbose=0)
    assert int(loaded.optimizer.iterations) == 24


def test_a_short_epoch_keeps_its_compiled_function_across_fit_calls(binary_digits):
    """Epochs of 3 steps with 32 steps per execution: one function of 3 steps, built once.

    Through tf.data (a dataset of batches) and in memory (the numpy array itself).
    """
    x = binary_digits[0][:96]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=32)
    functions = []
    for _ in range(3):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0)
        functions.append(model._short_epoch_functions[3])
        assert model.steps_per_execution == 32
    assert functions[0] is functions[1] is functions[2]
    assert int(model.optimizer.iterations) == 9
    for _ in range(3):
        model.fit(x, epochs=1, batch_size=32, verbose=0)
        assert model.steps_per_execution == 32
    assert model._in_memory_programs["run"].experimental_get_tracing_count() == 1
    assert int(model.optimizer.iterations) == 18
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=32)
    assert not hasattr(model, "_short_epoch_functions")  # A new optimizer: built afresh.


def test_fused_xla_steps_match_keras_step_loop(binary_digits):
    """Several steps in one XLA program train as Keras's loop of one XLA call per step.

    224 examples in batches of 32 with 5 steps per execution: a full run of
    5 steps and one of 2 (padded to 5). test_compile_defaults_... covers a
    smaller last batch.
    """
    x = binary_digits[0][:224]
    results = []
    # (Both with XLA: XLA's Philox draws a different stream from TF's kernels.)
    for steps, jit_compile in ((1, True), (5, True)):
        keras.utils.set_random_seed(0)
        model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=jit_compile, steps_per_execution=steps)
        history = model.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0)
        assert int(model.optimizer.iterations) == 14
        results.append((model.get_weights(), history.history))
    (w1, h1), (w5, h5) = results
    for a, b in zip(w1, w5):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "elbo", "kl"):
        np.testing.assert_allclose(h1[name], h5[name], rtol=1e-5)


def test_an_execution_of_large_batches_runs_as_several_xla_calls(binary_digits, monkeypatch):
    """Batches of 32 x 64 floats (8 KiB) under a 20 KiB cap: 2 steps per call, trained as one step per call."""
    from keras_vae import training

    x = binary_digits[0][:224]
    results = []
    for steps, cap in ((1, None), (5, 20 * 1024)):
        if cap:
            monkeypatch.setattr(training, "MAX_STACKED_BYTES", cap)
            assert training.steps_per_call(32 * 64 * 4, steps) == 2
        keras.utils.set_random_seed(0)
        model = keras_vae.VAE(64, latent_dim=4, hidden_dims=(16,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=steps)
        model.fit(x, epochs=2, batch_size=32, shuffle=False, verbose=0)
        assert int(model.optimizer.iterations) == 14
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_compile_defaults_under_a_strategy_xla_and_unrolled_steps(monkeypatch, binary_digits):
    monkeypatch.delenv("KERAS_VAE_JIT_COMPILE", raising=False)
    x = binary_digits[0][:200]  # 7 batches of 32: one call of 4 steps, then 3 one by one.
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=4)
        default = keras_vae.VAE(8, latent_dim=2, hidden_dims=(4,), seed=0)
        default.compile(keras.optimizers.Adam(1e-3))
    assert default.jit_compile is True
    assert default.steps_per_execution == keras_vae.models.DISTRIBUTED_STEPS_PER_EXECUTION > 1
    history = model.fit(x, epochs=2, batch_size=32, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 14 and model._device_update() is not None
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_one_iterator_per_fit_repeats_finite_datasets_only():
    finite = tf.data.Dataset.range(10).batch(4)  # 3 batches.
    kwargs = {}
    repeated, steps = keras_vae.training.one_iterator_per_fit(finite, kwargs, "steps_per_epoch")
    assert steps == 3 and kwargs == {"steps_per_epoch": 3}
    assert int(repeated.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    assert [b.numpy().tolist() for b in repeated.take(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9], [0, 1, 2, 3]]
    # Left as they are: steps given, unknown length, infinite, not a dataset.
    given = {"steps_per_epoch": 2}
    assert keras_vae.training.one_iterator_per_fit(finite, given, "steps_per_epoch") == (finite, None)
    unknown = finite.filter(lambda b: True)
    for data in (unknown, finite.repeat(), np.zeros((4, 2)), None):
        kwargs = {}
        assert keras_vae.training.one_iterator_per_fit(data, kwargs, "validation_steps") == (data, None)
        assert kwargs == {}


def test_stack_steps_groups_each_passes_batches():
    x = np.arange(20 * 3, dtype="float32").reshape(20, 3)
    y = np.arange(20)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4, drop_remainder=True)  # 5 batches
    stacks = keras_vae.training.stack_steps(data, 2)
    batches = list(data.as_numpy_iterator())
    got = list(stacks.as_numpy_iterator())
    # Per pass: two stacks of 2 steps, then the last step; the batch axis first.
    assert [s[0].shape for s in got] == [(4, 2, 3), (4, 2, 3), (4, 1, 3)]
    assert [s[1].shape for s in got] == [(4, 2), (4, 2), (4, 1)]
    steps = [tuple(a[:, t] for a in s) for s in got for t in range(s[0].shape[1])]
    assert len(steps) == len(batches) == 5
    for (sx, sy), (bx, by) in zip(steps, batches):
        np.testing.assert_array_equal(sx, bx)
        np.testing.assert_array_equal(sy, by)
    # A single tensor per element stays a single tensor.
    single = keras_vae.training.stack_steps(tf.data.Dataset.from_tensor_slices(x).batch(5, drop_remainder=True), 3)
    assert [s.shape for s in single.as_numpy_iterator()] == [(5, 3, 3), (5, 1, 3)]
    # Not stacked: a batch size not fixed in the shape, one step per execution, unknown or
    # infinite length, not a dataset, components of different batch sizes.
    mixed = tf.data.Dataset.zip(
        (tf.data.Dataset.from_tensor_slices(x).batch(4, drop_remainder=True),
         tf.data.Dataset.from_tensor_slices(y).batch(2, drop_remainder=True))
    )  # fmt: skip
    for data_, steps_ in (
        (tf.data.Dataset.from_tensor_slices(x).batch(4), 2),
        (data, 1),
        (data.filter(lambda a, b: True), 2),
        (data.repeat(), 2),
        (x, 2),
        (mixed, 2),
    ):
        assert keras_vae.training.stack_steps(data_, steps_) is None


def test_stack_steps_keeps_stacks_under_the_byte_limit(monkeypatch):
    data = tf.data.Dataset.from_tensor_slices(np.zeros((8, 10), "float32")).batch(2, drop_remainder=True)
    # 2 steps of 2 x 10 float32: 160 bytes.
    monkeypatch.setattr(keras_vae.training, "MAX_STACKED_BYTES", 159)
    assert keras_vae.training.stack_steps(data, 2) is None
    monkeypatch.setattr(keras_vae.training, "MAX_STACKED_BYTES", 160)
    assert keras_vae.training.stack_steps(data, 2) is not None


def test_under_a_strategy_stacked_batches_train_as_one_batch_per_step(binary_digits):
    """Batches of a static size are read one stack per execution (2, 2, then 1 step of each epoch's 5),
    with the same weights and logs as one pull per step; labels ride along in the stacks."""
    x = binary_digits[0][:500]
    labels = np.arange(500) % 10
    train = tf.data.Dataset.from_tensor_slices((x, labels)).batch(100, drop_remainder=True)
    valid = tf.data.Dataset.from_tensor_slices(x[:300]).batch(100, drop_remainder=True)
    original, results = keras_vae.training.stack_steps, {}
    for stack in (True, False):
        used = []

        def spy(data, steps, stack=stack, used=used):
            stacks = original(data, steps) if stack else None
            used.append(stacks is not None)
            return stacks

        with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
            model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
            model.compile(keras.optimizers.Adam(1e-2), steps_per_execution=2, jit_compile=False)
        with mock.patch.object(keras_vae.training, "stack_steps", spy):
            history = model.fit(train, epochs=3, validation_data=valid, verbose=0)
        assert used == [stack]
        assert int(model.optimizer.iterations.numpy()) == 15
        results[stack] = (model.get_weights(), history.history)
    (w_stacked, h_stacked), (w_steps, h_steps) = results[True], results[False]
    for a, b in zip(w_stacked, w_steps):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert set(h_stacked) == set(h_steps)
    for name in h_steps:
        np.testing.assert_allclose(h_stacked[name], h_steps[name], rtol=1e-6, err_msg=name)


def test_under_a_strategy_fit_keeps_one_iterator_and_runs_each_epoch_exactly(binary_digits):
    """A finite dataset is read through one iterator per fit (repeated), with the same results as Keras's
    iterator per epoch: 5 batches per epoch in executions of 2 steps (2, 2, 1), 3 validation batches."""
    x = binary_digits[0][:500]
    train = tf.data.Dataset.from_tensor_slices(x).batch(100)
    valid = tf.data.Dataset.from_tensor_slices(x[:300]).batch(100)
    results = []
    for repeat in (True, False):
        with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
            model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
            model.compile(keras.optimizers.Adam(1e-2), steps_per_execution=2, jit_compile=False)
        identity = (lambda data, kwargs, key: (data, None)) if not repeat else keras_vae.training.one_iterator_per_fit
        with mock.patch.object(keras_vae.training, "one_iterator_per_fit", identity):
            history = model.fit(train, epochs=3, validation_data=valid, verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 15
        assert len(history.history["val_elbo"]) == 3
        # A finite dataset after an infinite one: every batch read, none past its end.
        scores = model.evaluate(valid, verbose=0, return_dict=True)
        assert set(scores) >= {"elbo", "kl", "reconstruction"}
        results.append((model.get_weights(), history.history))
    (w_repeat, h_repeat), (w_keras, h_keras) = results
    for a, b in zip(w_repeat, w_keras):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name in ("loss", "val_elbo"):
        np.testing.assert_allclose(h_repeat[name], h_keras[name], rtol=1e-5)


@pytest.mark.slow  # Five fit/evaluate calls under a strategy, each traced anew (16 s).
@pytest.mark.filterwarnings("ignore:Your input ran out of data")  # Keras, on the dataset of unknown length.
def test_under_a_strategy_fit_and_evaluate_leave_their_iterators_to_a_release_thread(binary_digits):
    """Deleting a distributed iterator can wait seconds for tf.data's autotuning threads: fit and
    evaluate hand the iterators they read to a thread that drops them, and return.

    An iterator is released when the next one of its kind replaces it (Keras's new one for each
    validation pass, and for each epoch of a dataset of unknown length) and when fit or evaluate
    ends. Each is deleted in the release thread (a weak reference's callback records where), so
    nothing else kept it alive.
    """
    x = binary_digits[0][:300]
    train = tf.data.Dataset.from_tensor_slices(x).batch(100)
    valid = tf.data.Dataset.from_tensor_slices(x[:200]).batch(100)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        model.compile(keras.optimizers.Adam(1e-2), steps_per_execution=2, jit_compile=False)
    release = keras_vae.training.release_in_background
    calls, deleted_in = [], []

    def spy(objects):
        calls.append([weakref.ref(o, lambda _: deleted_in.append(threading.current_thread().name)) for o in objects])
        thread = release(objects)
        calls[-1].append(thread)
        return thread

    def released():
        return [len(call) - 1 for call in calls]

    with mock.patch.object(keras_vae.training, "release_in_background", spy):
        model.fit(train, epochs=2, validation_data=valid, verbose=0)
        # Keras reads each validation pass through a new iterator: the first is released when the
        # second replaces it; the training iterator and the last validation one when fit ends.
        assert released() == [1, 2]
        model.evaluate(valid, verbose=0)
        assert released() == [1, 2, 1]
        # A dataset of unknown length: Keras's new iterator every epoch replaces the last one,
        # which is released then (epochs 2 and 3), and the last one when fit ends.
        model.fit(train.filter(lambda batch: True), epochs=3, verbose=0)
        assert released() == [1, 2, 1, 1, 1, 1]
    for *refs, thread in calls:
        thread.join(60)
        assert not thread.is_alive()
        assert all(ref() is None for ref in refs)
    assert deleted_in == ["keras-vae-release"] * 7


def test_explicit_compile_settings_are_kept(tmp_path, binary_digits):
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=3, jit_compile=False)
    assert (model.steps_per_execution, model.jit_compile) == (3, False)
    model.fit(binary_digits[0][:64], epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert (loaded.steps_per_execution, loaded.jit_compile) == (3, False)


def test_nan_loss_ends_the_xla_steps_of_an_execution():
    """With many steps in one XLA call, no step runs after a non-finite loss.

    (Keras's graph loop, without XLA, skips the failing step's update: see
    test_vae's NaN test.)
    """
    model = keras_vae.VAE(4, latent_dim=2, hidden_dims=(4,), likelihood="gaussian", seed=0)
    model.compile(optimizer="adam", steps_per_execution=8, jit_compile=True)
    with pytest.raises(FloatingPointError, match="loss became"):
        model.fit(np.full((64, 4), 1e25, "float32"), epochs=3, batch_size=8, verbose=0)
    assert int(model.optimizer.iterations) == 1


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_trains_mirrored_on_two_cpu_devices(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_vae.cli", "train", "--distribute", "mirrored", "--cpu-devices", "2",
         "--epochs", "2", "--out", str(tmp_path), "--verbose", "0"],
        env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "model.keras")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["elbo"]) and model.latent_dim == 16


def test_collapse_monitor_reads_the_step_counter_under_a_strategy(binary_digits):
    # Under a strategy the optimizer's step counter is a MirroredVariable.
    x = binary_digits[0][:200]
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        model.compile(optimizer="adam")
    monitor = keras_vae.callbacks.CollapseMonitor(x, start_epoch=1, start_step=0)
    seen = []
    monitor.active_counts = lambda: seen.append(1) or [1]  # the check ran past the step test
    model.fit(x, epochs=2, batch_size=100, verbose=0, callbacks=[monitor])
    assert seen == [1, 1]
