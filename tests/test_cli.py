"""The ``keras-vae`` command line: artefacts of a run, sample/plot, errors."""

import json
import shutil
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

from keras_vae import cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--epochs", "3", "--out", str(out), "--verbose", "0"]) == 0
    return out


def test_train_writes_the_four_artefacts(run_dir):
    for name in ("model.keras", "metrics.json", "samples.png", "reconstructions.png", "history.json"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    assert np.isfinite(test["elbo"]) and test["elbo"] < 0
    assert test["elbo"] == pytest.approx(test["reconstruction"] - test["kl"], abs=1e-3)
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["elbo"]) == 3 and len(history["val_elbo"]) == 3
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.input_dim == 64 and model.latent_dim == 16
    with Image.open(run_dir / "samples.png") as image:
        assert min(image.size) > 200
    assert not (run_dir / "backup").exists()  # removed once training completes


def test_sample_and_plot_commands(run_dir, tmp_path):
    model = str(run_dir / "model.keras")
    assert cli.main(["sample", model, "--n", "9", "--out", str(tmp_path / "s.png")]) == 0
    for kind in ("samples", "reconstructions", "latent", "traversal"):
        out = tmp_path / f"{kind}.png"
        assert cli.main(["plot", model, "--kind", kind, "--dataset", "digits", "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    out = tmp_path / "history.png"
    assert cli.main(["plot", str(run_dir / "history.json"), "--kind", "history", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_manifold_needs_two_latent_dimensions(run_dir, tmp_path, capsys):
    assert cli.main(["plot", str(run_dir / "model.keras"), "--kind", "manifold", "--out", str(tmp_path / "m.png")]) == 2
    assert "latent_dim" in capsys.readouterr().err


def test_helmholtz_machine_from_the_cli(tmp_path):
    args = ["train", "--epochs", "1", "--latent-dims", "8,4", "--hidden", "16", "--objective", "wake_sleep",
            "--latent", "bernoulli", "--binarization", "static", "--out", str(tmp_path), "--verbose", "0"]
    assert cli.main(args) == 0
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.latent_dims == [8, 4] and model.objective == "wake_sleep"


def test_model_options_reach_the_model():
    args = cli.make_parser().parse_args(["train", "--beta", "0.5", "--kl-warmup-steps", "300"])
    model = cli.build_model(args, 64)
    assert (model.beta, model.kl_warmup_steps) == (0.5, 300)
    args = cli.make_parser().parse_args(["train", "--latent-dims", "8,4", "--kl-warmup-steps", "30"])
    assert cli.build_model(args, 64).kl_warmup_steps == 30


def test_bad_options_give_clear_errors(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "cifar", "--out", str(tmp_path)]) == 2
    assert "cifar" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--objective", "contrastive"])
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden", "a,b"])
    assert cli.main(["sample", str(tmp_path / "missing.keras")]) == 2
    assert "no model file" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("keras-vae") is None, reason="console script not installed")
def test_console_script(tmp_path):
    result = subprocess.run(
        ["keras-vae", "train", "--epochs", "1", "--out", str(tmp_path), "--verbose", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Test ELBO" in result.stdout and (tmp_path / "model.keras").exists()
