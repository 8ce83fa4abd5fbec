"""The README's examples run as written, in a temporary directory, and leave nothing in the repository."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def _commands():
    """Every ``keras-vae`` shell command of the README, continuation lines joined."""
    commands = []
    for block in _blocks("bash"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("keras-vae "):
                commands.append(command.strip())
    return commands


@pytest.mark.slow
def test_the_python_examples_run_in_order(tmp_path):
    # The blocks build on each other (the model trained in the first is evaluated later).
    script = "\n\n".join(_blocks("python"))
    (tmp_path / "readme.py").write_text(script)
    env = dict(os.environ, KERAS_VAE_JIT_COMPILE="0")
    result = subprocess.run(
        [sys.executable, "readme.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "vae.keras").exists()


def test_the_commands_are_known_to_the_parser():
    from keras_vae import cli

    parser = cli.make_parser()
    commands = _commands()
    assert len(commands) >= 8
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])  # exits on an unknown option


@pytest.mark.slow
def test_the_shell_commands_run_as_written(tmp_path):
    mnist = os.environ.get("KERAS_VAE_MNIST_PATH")
    if not mnist:
        pytest.skip("set KERAS_VAE_MNIST_PATH to a local mnist.npz: the README's commands use mnist.npz")
    (tmp_path / "mnist.npz").symlink_to(mnist)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_VAE_MNIST_PATH"}
    before = sorted(p.name for p in REPO.iterdir())
    for command in _commands():
        if "multi_worker" in command:  # needs one machine per worker and their TF_CONFIG
            continue
        result = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=1800)  # fmt: skip
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    for path in ("runs/mnist/grid.png", "runs/mnist/recon.png", "runs/mnist/curves.png", "runs/mnist/eval.json",
                 "runs/mnist/exported/saved_model", "runs/ws/model.keras"):  # fmt: skip
        assert (tmp_path / path).exists(), path
    # Nothing new in the repository's root (grid.png, eval.json, exported/ ... all went under runs/).
    assert sorted(p.name for p in REPO.iterdir()) == before
    _check_wake_sleep_example(tmp_path / "runs" / "ws" / "model.keras")


def _check_wake_sleep_example(path):
    """The README's wake-sleep model uses both layers and its samples differ from each other."""
    import keras
    import numpy as np

    from keras_vae import datasets
    from keras_vae import evaluation

    model = keras.saving.load_model(path)
    x, _ = datasets.load_arrays("digits", "test")
    counts = evaluation.active_units(model, x).counts
    assert min(counts) >= 1, counts
    samples = np.asarray(model.sample(200, seed=0)["x_mean"])

    def spread(a):
        return np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1)).mean()

    # 0.49 of the test images' spread in a run of this command (active units 16 + 7).
    assert spread(samples) > 0.3 * spread(x[:200]), (spread(samples), spread(x[:200]))
