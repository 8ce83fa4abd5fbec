"""The command line under bad input and faults: one ``error:`` line, runs never lost or mixed, quiet output.

Each test is one case of what a user may do wrong (or what may go wrong
around them) and checks the exit status, the one-line message and that
nothing was written or lost.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import cli
from keras_vae import datasets
from keras_vae import distribute
from keras_vae.cli import runs

# A tiny, fast run: 100 digits, 2 epochs, a small network.
TINY = ["--limit", "100", "--latent-dims", "2", "--hidden-dims", "8", "--batch-size", "50"]


def _train(out, *extra, epochs=2):
    return cli.main(["train", *TINY, "--epochs", str(epochs), "--out", str(out), "--verbose", "0", *extra])


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    assert _train(out) == 0
    return out


# --- Bad input files --------------------------------------------------------------------------------


def _mnist_like(path, x_train, x_test):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=x_train, y_train=rng.integers(0, 10, len(x_train)),
             x_test=x_test, y_test=rng.integers(0, 10, len(x_test)))  # fmt: skip
    return path


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"not an archive", "not a .npz (zip) archive")])
def test_a_broken_npz_file_gets_one_error_line(tmp_path, capsys, content, message):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    out = tmp_path / "run"
    assert _train(out, "--dataset", "mnist", "--data-path", str(path)) == 2
    line = _one_error_line(capsys)
    assert message in line and str(path) in line
    assert not out.exists()


def test_float_images_in_0_1_are_not_divided_again_and_ambiguous_ones_are_refused(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    as_bytes = _mnist_like(tmp_path / "bytes.npz", images, images[:5])
    as_unit = _mnist_like(tmp_path / "unit.npz", images / np.float32(255), images[:5] / np.float32(255))
    as_float_bytes = _mnist_like(tmp_path / "floats.npz", images.astype(np.float32), images[:5].astype(np.float32))
    expected, _ = datasets.load_arrays("mnist", "train", path=as_bytes)
    unit, _ = datasets.load_arrays("mnist", "train", path=as_unit)
    np.testing.assert_allclose(unit, expected, atol=1e-6)
    assert unit.max() > 0.9  # Not divided by 255 a second time.
    with pytest.raises(ValueError, match="ambiguous.*pixel_scale=255"):
        datasets.load_arrays("mnist", "train", path=as_float_bytes)
    explicit, _ = datasets.load_arrays("mnist", "train", path=as_float_bytes, pixel_scale=255)
    np.testing.assert_allclose(explicit, expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"exceed \[0, 1\]"):
        datasets.load_arrays("mnist", "train", path=as_float_bytes, pixel_scale=1)


def test_an_offline_download_fails_within_seconds(monkeypatch):
    monkeypatch.delenv("KERAS_VAE_MNIST_PATH", raising=False)  # no local copy: tensorflow-datasets
    monkeypatch.setattr(datasets, "_reachable", lambda *a, **k: False)
    datasets._cached_arrays.cache_clear()
    with pytest.raises(RuntimeError, match="cannot be reached.*KERAS_VAE_MNIST_PATH"):
        datasets.load_arrays("mnist", "test", data_dir="/nonexistent-tfds-dir")


# --- Bad options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "0"],
        ["train", "--epochs", "-1"],
        ["train", "--latent-dims", "2.7"],
        ["train", "--beta", "-1"],
        ["train", "--eval-samples", "-5"],
        ["train", "--learning-rate", "0"],
        ["sample", "model.keras", "--n", "-5"],
        ["plot", "model.keras", "--kind", "reconstructions", "--n", "0"],
        ["evaluate", "model.keras", "--k", "0"],
    ],
)
def test_out_of_range_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_the_api_range_checks_its_arguments():
    for kwargs, message in [
        ({"latent_dim": 2.7}, "integer"),
        ({"latent_dim": True}, "integer"),
        ({"beta": -1}, "beta"),
        ({"eval_samples": -5}, "eval_samples"),
        ({"n_samples": 0}, "n_samples"),
        ({"covariance": "dense"}, "covariance"),
    ]:
        with pytest.raises(ValueError, match=message):
            keras_vae.VAE(8, **kwargs)
    model = keras_vae.VAE(8, latent_dim=2, hidden_dims=(4,))
    with pytest.raises(ValueError, match="n must be >= 0"):
        model.sample(-1)
    assert model.sample(0)["x_mean"].shape == (0, 8)
    model.compile(optimizer="adam")
    rows = [[0.5] * 8 for _ in range(5000)]
    with pytest.raises(ValueError, match="Python list") as info:
        model.fit(rows, epochs=1, verbose=0)
    assert len(str(info.value)) < 300


def test_a_history_plot_of_the_wrong_file_is_one_error_line(finished, tmp_path, capsys):
    for wrong, message in [("model.keras", "not a JSON history file"), ("metrics.json", "not per-epoch numbers")]:
        assert cli.main(["plot", str(finished / wrong), "--kind", "history", "--out", str(tmp_path / "h.png")]) == 2
        assert message in _one_error_line(capsys)


def test_a_preset_with_architecture_options_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "burda_1layer", "--latent-dims", "8", "--hidden", "16", "--out", str(out)]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert "--preset burda_1layer sets the architecture; drop --latent-dims, --hidden" in line
    assert not out.exists()
    # The same options without --preset, or --preset alone, are fine for the builder.
    args = cli.make_parser().parse_args(["train", "--preset", "burda_1layer", "--beta", "0.5"])
    assert list(cli.build_model(args, input_dim=784).latent_dims) == [50]
    args = cli.make_parser().parse_args(["train", "--latent-dims", "8", "--activation", "relu"])
    assert list(cli.build_model(args, input_dim=64).latent_dims) == [8]


# --- Output paths ----------------------------------------------------------------------------------


def test_bad_output_paths_are_refused_before_any_work(tmp_path, capsys, finished):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in [(a_file, "is a file, not a directory"), (a_file / "run", "a parent of --out")]:
        assert _train(out) == 2
        assert message in _one_error_line(capsys)
    model = str(finished / "model.keras")
    assert cli.main(["sample", model, "--out", str(tmp_path)]) == 2  # a directory, not an image file
    assert "is a directory" in _one_error_line(capsys)
    assert cli.main(["evaluate", model, "--out", str(a_file / "m.json")]) == 2
    assert "is a file" in _one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_an_unwritable_output_directory_is_refused_before_training(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert _train(locked / "run") == 2
        assert "permission denied" in _one_error_line(capsys)
    finally:
        locked.chmod(0o700)


# --- Runs never lost or mixed ----------------------------------------------------------------------


def test_a_finished_run_is_left_as_it_is_unless_overwrite(finished, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in finished.iterdir()}
    assert _train(finished) == 0
    assert "holds a finished run" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in finished.iterdir()} == before


@pytest.mark.slow
def test_overwrite_trains_afresh(tmp_path):
    out = tmp_path / "run"
    assert _train(out) == 0
    first = (out / "model.keras").stat().st_mtime_ns
    assert _train(out, "--overwrite", epochs=1) == 0
    assert (out / "model.keras").stat().st_mtime_ns != first
    assert len(json.loads((out / "history.json").read_text())["elbo"]) == 1


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.train, "_train", interrupted)
    out = tmp_path / "run"
    assert _train(out) == 130
    line = _one_error_line(capsys)
    assert line.startswith("error: interrupted") and "run the same command again to resume" in line
    assert not (out / runs.LOCK_FILE).exists()  # the lock goes with the run


def test_the_checkpoint_stays_until_every_artefact_is_written(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    original = runs.write_atomically

    def fail_on_samples(path, write):
        if path.name == "samples.png":
            raise OSError("disk full")
        return original(path, write)

    monkeypatch.setattr(runs, "write_atomically", fail_on_samples)
    assert _train(out) == 1
    assert "disk full" in _one_error_line(capsys)
    assert (out / "backup").exists()  # the run is not lost
    monkeypatch.setattr(runs, "write_atomically", original)
    assert _train(out) == 0
    assert "resumed after epoch 2: all 2 epochs are done" in capsys.readouterr().out
    assert (out / "samples.png").exists() and not (out / "backup").exists()
    history = json.loads((out / "history.json").read_text())
    assert len(history["elbo"]) == 2  # the whole run's history, from the checkpoint
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["latent_dims"] == [2] and "interrupt_hint" not in settings  # options only


def test_a_checkpoint_of_other_settings_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    settings = cli.train.run_settings(cli.make_parser().parse_args(["train", *TINY]))
    runs.write_json(out / "backup" / runs.SETTINGS_FILE, dict(settings, latent_dims=[3]))
    assert _train(out) == 2
    line = _one_error_line(capsys)
    assert "backup holds the checkpoint of a run with other settings" in line
    assert "latent_dims: [3] then, [2] now" in line and "--overwrite" in line


def test_a_second_run_on_the_same_out_is_refused_and_a_stale_lock_replaced(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": sleeper.pid, "host": runs.socket.gethostname(), "started": "now"}
        (out / runs.LOCK_FILE).write_text(json.dumps(holder))
        assert _train(out) == 2
        assert f"in use by another keras-vae train (process {sleeper.pid}" in _one_error_line(capsys)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert _train(out) == 0  # the lock of a process that has ended is stale
    assert f"removed the stale lock of process {sleeper.pid}" in capsys.readouterr().out
    assert not (out / runs.LOCK_FILE).exists()


def test_backup_keeps_the_whole_history_and_time_across_a_resume(tmp_path, binary_digits):
    x = binary_digits[0][:200]
    backup_dir = str(tmp_path / "backup")

    def fit(epochs, stop_after=None):
        model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
        model.compile(optimizer="adam")
        backup = distribute.BackupAndRestore(backup_dir, delete_checkpoint=False, on_resume=resumed.append)
        callbacks = [backup]
        if stop_after:
            callbacks.append(keras.callbacks.LambdaCallback(
                on_epoch_end=lambda e, logs: setattr(model, "stop_training", e + 1 >= stop_after)))  # fmt: skip
        model.fit(x, epochs=epochs, batch_size=100, verbose=0, callbacks=callbacks)
        return backup

    resumed = []
    first = fit(5, stop_after=2)
    assert len(first.history["elbo"]) == 2 and resumed == []
    second = fit(5)
    assert resumed == [2] and second.resumed_epoch == 2
    assert len(second.history["elbo"]) == 5
    assert second.history["elbo"][:2] == first.history["elbo"]
    assert second.train_seconds > first.train_seconds


# --- Quiet, one line per epoch ---------------------------------------------------------------------


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from keras_vae.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['export', '--help'], ['score', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_a_logged_run_has_one_plain_line_per_epoch_and_no_tensorflow_noise(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command quiets TensorFlow itself
    command = [sys.executable, "-m", "keras_vae.cli", "train", *TINY, "--epochs", "3", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "\x1b" not in result.stdout and "\x08" not in result.stdout
    assert result.stderr.strip() == "", result.stderr[-3000:]
    quiet = subprocess.run([*command, "--overwrite", "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr.strip() == "", quiet.stderr[-3000:]


def test_an_epoch_shorter_than_one_execution_shows_its_own_step_count(binary_digits):
    x = binary_digits[0][:150]
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(8,), seed=0)
    model.compile(optimizer="adam", steps_per_execution=32)
    seen = []
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    model.fit(x, epochs=1, batch_size=50, verbose=0, callbacks=[callback])
    assert seen == [2]  # 3 batches in one execution: the last batch index is 2, not 31
    assert int(model.steps_per_execution) == 32  # restored for later fits
