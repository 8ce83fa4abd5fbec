"""The ``keras-vae`` command line: artefacts of a run, every subcommand, the
renamed flags and their aliases, the one model loader's errors."""

import argparse
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_vae import cli
from keras_vae import datasets
from keras_vae import objectives
from keras_vae.cli import options

REPO = pathlib.Path(__file__).resolve().parents[1]


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
    args = ["train", "--epochs", "1", "--latent-dims", "8,4", "--hidden-dims", "16", "--objective", "wake_sleep",
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
    out = tmp_path / "never"
    assert cli.main(["train", "--objective", "contrastive", "--out", str(out)]) == 2
    assert "Unknown objective 'contrastive'" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden-dims", "a,b"])
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden", "a,b"])
    assert cli.main(["sample", str(tmp_path / "missing.keras")]) == 2
    assert "no model file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, alias, value, key, vae, helmholtz",
    [
        ("--covariance", "--posterior", "full", "covariance", "full", "full"),
        ("--n-samples", "--samples", "3", "n_samples", 3, 3),
        ("--hidden-dims", "--hidden", "8,8", "hidden_dims", [8, 8], [[8, 8], [8, 8]]),  # one list per layer
    ],
)
def test_renamed_flags_and_their_old_aliases_reach_the_model(flag, alias, value, key, vae, helmholtz):
    for name in (flag, alias):
        args = cli.make_parser().parse_args(["train", name, value])
        assert cli.build_model(args, 64).get_config()[key] == vae, name
        args = cli.make_parser().parse_args(["train", "--latent-dims", "4,2", name, value])
        assert cli.build_model(args, 64).get_config()[key] == helmholtz, name
    args = cli.make_parser().parse_args(["train", "--eval-samples", "7"])
    assert cli.build_model(args, 64).eval_samples == 7


def _subparsers():
    action = next(a for a in cli.make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_has_help_with_its_default_and_aliases_are_hidden():
    subparsers = _subparsers()
    assert set(subparsers) == {"train", "evaluate", "export", "sample", "plot", "score"}
    for name, parser in subparsers.items():
        text = parser.format_help()
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                assert action.option_strings[0] in ("--posterior", "--samples", "--hidden"), action
                assert not re.search(re.escape(action.option_strings[0]) + r"\b(?!-)", text), action
            elif action.option_strings and action.dest != "help":
                assert action.help, (name, action.dest)
        assert "(default:" in text, name
    train = subparsers["train"]
    objective = next(a for a in train._actions if a.dest == "objective")
    # Named in the help without importing TensorFlow, and the same as the registry's built-ins.
    assert options.OBJECTIVES == objectives.OBJECTIVES
    from keras_vae import export
    from keras_vae import scoring

    assert (options.EXPORT_FORMATS, options.QUANTIZATIONS, options.SCORE_K) == (
        export.FORMATS, export.QUANTIZATIONS, scoring.DEFAULT_K
    )
    assert all(name in objective.help for name in objectives.OBJECTIVES)
    assert "--covariance" in train.format_help() and "--n-samples" in train.format_help()


@pytest.fixture(scope="module")
def not_vae_files(tmp_path_factory):
    """A plain keras.Sequential saved as .keras, and a text file."""
    tmp = tmp_path_factory.mktemp("foreign")
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    sequential.save(tmp / "sequential.keras")
    (tmp / "notes.txt").write_text("not a model")
    (tmp / "fake.keras").write_text("not a zip archive")
    return tmp


@pytest.mark.parametrize(
    "command", [["evaluate"], ["sample"], ["plot"], ["export", "--out", "{tmp}/exported"]], ids=lambda c: c[0]
)
def test_the_one_loader_rejects_what_is_not_a_keras_vae_model(command, not_vae_files, tmp_path, capsys):
    name, *rest = command
    rest = [r.format(tmp=tmp_path) for r in rest]
    cases = [
        (tmp_path / "missing.keras", "no model file at"),
        (tmp_path, "is not a .keras file"),
        (not_vae_files / "notes.txt", "is not a .keras file"),
        (not_vae_files / "fake.keras", "is not a .keras file"),
        (not_vae_files / "sequential.keras", "holds a Sequential, not a keras-vae model"),
    ]
    for path, message in cases:
        assert cli.main([name, str(path), *rest]) == 2, (name, path)
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], (name, path, err)
        assert not (tmp_path / "exported").exists()


def test_evaluate_command(run_dir, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(run_dir / "model.keras"), "--dataset", "digits", "--binarization", "static",
            "--limit", "40", "--k", "20", "--out", str(out), "--verbose", "0"]
    assert cli.main(args) == 0
    written = json.loads(out.read_text())
    assert written["n_examples"] == 40 and written["k"] == 20 and written["dataset"] == "digits"
    assert written["log_px"] > written["elbo"] - 1.0
    assert "log p(x)" in capsys.readouterr().out
    # The evaluation set is binarised by the one test-set rule.
    parsed = cli.make_parser().parse_args(args)
    x, _ = datasets.load_arrays("digits", "test")
    np.testing.assert_array_equal(cli.evaluate.load_data(parsed), datasets.binarize_test(x[:40]))
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args[:-4], "--limit", "0"])
    assert exit_info.value.code == 2
    assert "--limit: expected an integer >= 1, got '0'" in capsys.readouterr().err


def test_export_command_and_script(run_dir, tmp_path, capsys):
    out = tmp_path / "exported"
    args = ["export", str(run_dir / "model.keras"), "--out", str(out), "--format", "saved_model"]
    assert cli.main(args) == 0
    assert f"wrote {out / 'saved_model'}" in capsys.readouterr().out
    assert json.loads((out / "metadata.json").read_text())["model_class"] == "VAE"
    assert cli.main(args) == 2
    assert capsys.readouterr().err.startswith("error: The output directory")
    # export/export_model.py is a thin wrapper of the same command.
    spec = importlib.util.spec_from_file_location("export_model", REPO / "export" / "export_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(args[1:]) == 2
    assert "error: The output directory" in capsys.readouterr().err


def test_python_dash_m_and_help():
    result = subprocess.run(
        [sys.executable, "-m", "keras_vae.cli", "train", "--help"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--hidden-dims" in result.stdout and "--posterior" not in result.stdout and "--samples" not in result.stdout


@pytest.mark.skipif(shutil.which("keras-vae") is None, reason="console script not installed")
def test_console_script(tmp_path):
    # The installed script reaches the parser (end-to-end runs of the command
    # are the slow test_cli_reliability.py::test_a_logged_run_...).
    result = subprocess.run(["keras-vae", "train", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--epochs" in result.stdout, result.stderr[-2000:]
    result = subprocess.run(
        ["keras-vae", "train", "--epochs", "0", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "--epochs: expected an integer >= 1" in result.stderr
    assert not (tmp_path / "run").exists()
