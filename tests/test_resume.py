"""Surviving faults: SIGKILL and restart resumes; a NaN loss stops and keeps the last checkpoint.

``keras-vae train`` backs up the weights, optimiser state and epoch to
``<out>/backup`` at the end of every epoch (``keras_vae.distribute.
BackupAndRestore``: atomic writes, chief only); run again with the same
command, it resumes after the last completed epoch.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import cli
from keras_vae import distribute

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPOCHS = 6


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_VAE_JIT_COMPILE="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _train_command(out, *extra):
    # Small batches make an epoch last long enough (~1 s) to be killed in.
    return [sys.executable, "-m", "keras_vae.cli", "train", "--epochs", str(EPOCHS), "--batch-size", "10",
            "--hidden", "128,128", "--out", str(out), "--verbose", "2", *extra]


def _start(command, log, **env):
    return subprocess.Popen(command, env=_env(**env), stdout=log, stderr=subprocess.STDOUT, text=True)


def _backup_epoch(out):
    path = out / "backup" / "training_metadata.json"
    try:
        return json.loads(path.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _wait_for_epoch(out, epoch, procs, timeout=240):
    deadline = time.time() + timeout
    while _backup_epoch(out) < epoch:
        if time.time() > deadline:
            raise AssertionError(f"no backup of epoch {epoch} after {timeout}s")
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"training ended (exit {proc.returncode}) before epoch {epoch} was backed up")
        time.sleep(0.05)


def _epochs_and_losses(text):
    """``[(epoch, loss)]`` from ``--verbose 2`` output (one line per epoch; loss = -ELBO)."""
    epochs = [int(e) for e in re.findall(rf"^epoch (\d+)/{EPOCHS}:", text, re.M)]
    losses = [-float(v) for v in re.findall(rf"^epoch \d+/{EPOCHS}: elbo ([-\d.e+]+)", text, re.M)]
    return list(zip(epochs, losses))


def _check_finished(out, resumed_from):
    model = keras.saving.load_model(out / "model.keras")
    assert isinstance(model, keras_vae.VAE)
    assert int(model.optimizer.iterations) > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["elbo"])
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == EPOCHS  # The whole run's epochs, before and after the kill.
    assert metrics["resumed_from_epoch"] == resumed_from
    assert not (out / "backup").exists()  # Removed once training completes.
    assert not (out / ".lock").exists()


def test_sigkilled_training_resumes_from_the_last_completed_epoch(tmp_path):
    out = tmp_path / "run"
    with open(tmp_path / "first.log", "w") as log:
        proc = _start(_train_command(out), log)
        _wait_for_epoch(out, 2, [proc])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    killed_at = _backup_epoch(out)
    assert 2 <= killed_at < EPOCHS, killed_at
    assert not (out / "model.keras").exists()
    first = _epochs_and_losses((tmp_path / "first.log").read_text())

    result = subprocess.run(_train_command(out), env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    second = _epochs_and_losses(result.stdout + result.stderr)
    assert f"resumed after epoch {killed_at} of {EPOCHS}" in result.stdout
    # Resumed after the last backed-up epoch, ran exactly the remaining ones...
    assert [e for e, _ in second] == list(range(killed_at + 1, EPOCHS + 1)), second
    # ...from the trained weights, not from scratch.
    assert second[0][1] < first[0][1] - 1.0, (first, second)
    _check_finished(out, killed_at)


def test_backup_written_atomically_keeps_previous_checkpoint(tmp_path, binary_digits):
    """A save that dies half-way (here: save_weights raising) leaves the last full checkpoint."""
    x = binary_digits[0][:200]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    backup = distribute.BackupAndRestore(str(tmp_path / "backup"))

    class DieOnThirdSave(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                def broken(filepath, overwrite=True):
                    pathlib.Path(filepath).write_bytes(b"partial")
                    raise OSError("disk full")

                self.model.save_weights = broken

    with pytest.raises(OSError, match="disk full"):
        model.fit(x, epochs=5, batch_size=50, verbose=0, callbacks=[DieOnThirdSave(), backup])
    assert _backup_epoch(tmp_path) == 2
    restored = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=1)
    restored.compile(keras.optimizers.Adam(1e-3))
    restored.fit(x, epochs=3, batch_size=50, verbose=0,
                 callbacks=[distribute.BackupAndRestore(str(tmp_path / "backup"))])
    assert int(restored.optimizer.iterations) == 12  # 2 epochs restored + 1 run, 4 steps each.


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla_fused"])
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, digits, jit_compile):
    """Keras's graph loop skips the NaN step; the fused XLA loop applies it and ends."""
    x = digits[0][:256]
    scale = tf.Variable(1.0)
    data = tf.data.Dataset.from_tensor_slices(x).batch(32).map(lambda b: b * scale)
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(16,), likelihood="gaussian", seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit_compile, steps_per_execution=4)
    saved = {}

    class Poison(keras.callbacks.Callback):
        """Records the weights at each epoch end; the third epoch's data are extreme."""

        def on_epoch_end(self, epoch, logs=None):
            saved[epoch] = [np.array(w) for w in self.model.get_weights()]

        def on_epoch_begin(self, epoch, logs=None):
            scale.assign(1e25 if epoch == 2 else 1.0)

    backup_dir = tmp_path / "backup"
    with pytest.raises(FloatingPointError, match=r"loss became (nan|inf) at epoch 3"):
        model.fit(data, epochs=5, verbose=0, callbacks=[Poison(), distribute.BackupAndRestore(str(backup_dir))])
    assert sorted(saved) == [0, 1]
    assert _backup_epoch(tmp_path) == 2
    if jit_compile:
        # One step of epoch 3 ran (8 steps an epoch) and its update is non-finite.
        assert int(model.optimizer.iterations) == 17
        assert not all(np.isfinite(w).all() for w in model.get_weights())
    else:
        # The weights in memory are still the last good ones (the NaN step was skipped).
        for a, b in zip(saved[1], model.get_weights()):
            np.testing.assert_array_equal(a, b)
    # The checkpoint holds the last good weights: a fresh model restores them and resumes at epoch 3.
    fresh = keras_vae.VAE(64, latent_dim=2, hidden_dims=(16,), likelihood="gaussian", seed=5)
    fresh.compile(keras.optimizers.Adam(1e-3))
    restore = distribute.BackupAndRestore(str(backup_dir), delete_checkpoint=False)
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 2
    for a, b in zip(saved[1], fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in fresh.get_weights())


def test_a_backup_that_must_not_restore_trains_afresh(tmp_path, binary_digits):
    """restore=False (a worker of a job whose chief discards the old run) ignores the checkpoint there."""
    x = binary_digits[0][:200]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=2, batch_size=50, verbose=0,
              callbacks=[distribute.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)])
    assert _backup_epoch(tmp_path) == 2
    for restore, iterations, resumed in ((False, 12, 0), (True, 12, 3)):
        again = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=1)
        again.compile(keras.optimizers.Adam(1e-3))
        backup = distribute.BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False, restore=restore)
        again.fit(x, epochs=3, batch_size=50, verbose=0, callbacks=[backup])
        assert int(again.optimizer.iterations) == iterations and backup.resumed_epoch == resumed
        assert len(backup.history["loss"]) == 3
        if not restore:
            assert _backup_epoch(tmp_path) == 3  # the fresh run's own checkpoint replaces the old one


def test_cli_reports_a_nan_loss_as_an_error(tmp_path, capsys):
    args = ["train", "--epochs", "2", "--learning-rate", "1e30", "--likelihood", "gaussian",
            "--out", str(tmp_path), "--verbose", "0"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "error: Training stopped: the loss became" in err and "learning rate" in err
    assert not (tmp_path / "model.keras").exists()


@pytest.mark.slow
def test_multi_worker_job_resumes_after_a_worker_is_killed(tmp_path):
    """Two workers on 127.0.0.1; worker 1 is SIGKILLed, the job is killed and restarted."""
    out = tmp_path / "run"
    workers = [f"127.0.0.1:{port}" for port in distribute.free_ports(2)]
    command = _train_command(out, "--distribute", "multi_worker")
    configs = [distribute.tf_config(workers, i) for i in range(2)]

    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    try:
        procs = [_start(command, logs[i], TF_CONFIG=configs[i]) for i in range(2)]
        _wait_for_epoch(out, 2, procs)
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(timeout=60)
        # The chief cannot go on without its peer: it fails or hangs in a
        # collective. Give it a moment, then end the job as a scheduler would.
        try:
            procs[0].wait(timeout=20)
        except subprocess.TimeoutExpired:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(timeout=60)
    finally:
        for log in logs:
            log.close()
    killed_at = _backup_epoch(out)
    assert 2 <= killed_at < EPOCHS and not (out / "model.keras").exists()
    scratch = tmp_path / "scratch"  # Where the non-chief worker writes its copy.
    scratch.mkdir()

    # The same two commands again (fresh ports if the old ones are still held).
    workers = [f"127.0.0.1:{port}" for port in distribute.free_ports(2)]
    configs = [distribute.tf_config(workers, i) for i in range(2)]
    procs = [
        subprocess.Popen(command, env=_env(TF_CONFIG=configs[i], TMPDIR=str(scratch)), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        assert proc.returncode == 0, output[-3000:]
        outputs.append(output)
    for output in outputs:
        epochs = [e for e, _ in _epochs_and_losses(output)]
        assert epochs == list(range(killed_at + 1, EPOCHS + 1)), epochs
    _check_finished(out, killed_at)
    assert not list(scratch.glob("keras_vae_worker_*"))  # Removed by the worker.
