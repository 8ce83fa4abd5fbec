"""The Colab notebooks in colab/: built from colab/src/, committed clean, and run top to bottom.

Each notebook is executed in quick mode (``KERAS_VAE_QUICK=1``) by nbclient
with the ``python3`` kernel, in a temporary working directory, offline: the
data are the bundled 8x8 digits, or a slice of MNIST when
``KERAS_VAE_MNIST_PATH`` names a local copy (CI sets it). Any cell error fails
the test; the printed results are then checked.
"""

import importlib.util
import math
import os
import pathlib
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = (
    "01_vae_mnist.ipynb", "02_helmholtz_wake_sleep.ipynb", "03_export_and_serve.ipynb", "04_your_data.ipynb",
)
CELL_TIMEOUT = 600  # seconds per cell
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?|nan|-?inf)"


def _read(name):
    return nbformat.read(COLAB / name, as_version=4)


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


# ---------------------------------------------------------------------------
# The committed files.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.outputs == [], f"{name}: code cell {i} has outputs; clear them before committing"
        assert cell.execution_count is None, f"{name}: code cell {i} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_badge_install_and_parameters(name):
    nb = _read(name)
    url = f"https://colab.research.google.com/github/keras-vae/keras-vae/blob/main/colab/{name}"
    assert nb.cells[0].cell_type == "markdown" and f"]({url})" in nb.cells[0].source

    installs = [c for c in _code_cells(nb) if "%pip install" in c.source]
    assert len(installs) == 1, "one install cell"
    assert 'IN_COLAB = "google.colab" in sys.modules' in installs[0].source
    assert "if IN_COLAB and importlib.util.find_spec(\"keras_vae\") is None:" in installs[0].source
    assert "git+https://github.com/keras-vae/keras-vae" in installs[0].source

    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    assert 'QUICK = os.environ.get("KERAS_VAE_QUICK", "1") == "1"' in params[0].source
    assert 'os.environ.get("KERAS_VAE_MNIST_PATH")' in params[0].source
    assert nb.cells.index(installs[0]) < nb.cells.index(params[0])

    text = "\n".join(cell.source for cell in nb.cells)
    assert "shared/data" not in text and "/work/" not in text, "no hard-coded data path"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 5, "the method is explained in prose"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", COLAB / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return _load_builder()


def _cells(nb):
    return [(cell.cell_type, cell.get("id"), dict(cell.metadata), cell.source) for cell in nb.cells]


def test_every_notebook_has_a_source(builder):
    assert set(builder.NOTEBOOKS) == set(NOTEBOOKS), "one colab/src/<name>.py per notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_in_sync_with_its_source(name, builder):
    """Rebuild from colab/src/ in memory; the committed cells must be the same."""
    stale = f"colab/{name} differs from colab/src/{name[:-len('.ipynb')]}.py: run python colab/build_notebooks.py"
    built, committed = builder.build(name), _read(name)
    assert committed.metadata == built.metadata, f"{stale} (notebook metadata)"
    built_cells, committed_cells = _cells(built), _cells(committed)
    for i, (want, got) in enumerate(zip(built_cells, committed_cells)):
        assert got == want, f"{stale} (cell {i}: {got[0]} cell {got[1]})"
    count = f"{len(committed_cells)} cells, the source has {len(built_cells)}"
    assert len(committed_cells) == len(built_cells), f"{stale} ({count})"


def test_shared_cells_are_the_same_in_every_notebook(builder):
    """The sources repeat the install and data cells: one rule, so they must not drift apart."""

    def cell_with(nb, text):
        (cell,) = [c.source for c in _code_cells(nb) if text in c.source]
        return cell

    notebooks = [builder.build(name) for name in NOTEBOOKS]
    installs = {cell_with(nb, "%pip install").replace("keras-vae[export]", "keras-vae") for nb in notebooks}
    assert len(installs) == 1, "the install cells differ"
    data = {cell_with(nb, "datasets.load_arrays(DATASET") for nb in notebooks}
    assert len(data) == 1, "the data cells differ"
    assert "datasets.binarize_test(x_test)" in data.pop()


def test_source_format(tmp_path, builder):
    """Percent format: markers, tags, markdown comments, commented magics, source-only lines."""
    source = tmp_path / "99_demo.py"
    source.write_text(
        "# header, not a cell\n"
        "\n"
        "# %% [markdown]\n"
        "# # Title\n"
        "#\n"
        "# text\n"
        "\n"
        '# %% tags=["parameters", "x"]\n'
        "A = 1  # a comment\n"
        "\n"
        "\n"
        "# %%\n"
        "# %matplotlib inline\n"
        "if A:\n"
        '    # %pip install -q "pkg"\n'
        "    pass  # source only: the notebook runs the magic above\n"
        "\n"
        "# %%\n"
        "# %%writefile f.py\n"
        "print(1)\n",
        encoding="utf-8",
    )
    assert builder.read_source(source) == [
        ("markdown", "# Title\n\ntext", {}),
        ("code", "A = 1  # a comment", {"tags": ["parameters", "x"]}),
        ("code", '%matplotlib inline\nif A:\n    %pip install -q "pkg"', {}),
        ("code", "%%writefile f.py\nprint(1)", {}),
    ]


# ---------------------------------------------------------------------------
# Running them.
# ---------------------------------------------------------------------------


def _execute(name, tmp_path, monkeypatch):
    """Run a notebook in quick mode in ``tmp_path``; return (notebook, stdout text, #images)."""
    monkeypatch.setenv("KERAS_VAE_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    nb = _read(name)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # Raises CellExecutionError, with the traceback, on any cell error.
    stdout, images = [], 0
    for cell in _code_cells(nb):
        for output in cell.outputs:
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            if output.output_type == "stream" and output.name == "stdout":
                stdout.append(output.text)
            elif "image/png" in output.get("data", {}):
                images += 1
    return nb, "".join(stdout), images


def _number(pattern, text):
    match = re.search(pattern.replace("{N}", NUMBER), text)
    assert match, f"{pattern!r} not printed; stdout was:\n{text}"
    values = [float(v) for v in match.groups()]
    return values[0] if len(values) == 1 else values


def _check_data_line(text):
    if os.environ.get("KERAS_VAE_MNIST_PATH"):
        assert "mnist: 10000 training and 1000 test images of (28, 28) pixels" in text
    else:
        assert "digits: 1437 training and 360 test images of (8, 8) pixels" in text


def test_01_vae_mnist_runs(tmp_path, monkeypatch):
    _, text, images = _execute("01_vae_mnist.ipynb", tmp_path, monkeypatch)
    _check_data_line(text)
    # Data, history, samples, reconstructions, manifold, latent space, gap histogram.
    assert images == 7, text
    elbo = _number(r"test ELBO: {N} nats per example", text)
    log_px = _number(r"test log p\(x\): {N} \+- {N} nats per example", text)
    assert math.isfinite(elbo) and elbo < 0
    assert all(math.isfinite(v) for v in log_px)
    # The importance-sampled estimate tightens the bound (up to Monte Carlo noise).
    assert log_px[0] > elbo - 0.5, (log_px, elbo)
    # The hand-written reparameterised ELBO agrees with the package's.
    by_hand = _number(r"ELBO estimate\s+:\s+{N}", text)
    package = _number(r"package, k=100, analytic_kl=True : ELBO {N}", text)
    assert abs(by_hand - package) < 0.1 * abs(package) + 1.0
    units = _number(r"active units \(Cov_x E_q\[z\] > 0.01\): {N} of 2", text)
    assert 0 <= units <= 2


@pytest.mark.slow  # runs in CI's slow suite; 01 keeps a notebook in the default one
def test_02_helmholtz_wake_sleep_runs(tmp_path, monkeypatch):
    _, text, images = _execute("02_helmholtz_wake_sleep.ipynb", tmp_path, monkeypatch)
    _check_data_line(text)
    assert images == 3, text  # plot_comparison, wake-sleep phase losses, samples side by side
    results = {}
    for objective in ("elbo", "wake_sleep"):
        results[objective] = _number(rf"\n{objective}\s+{{N}}\s+{{N}}\s+{{N}}\n", text)
        elbo, log_px, stderr = results[objective]
        assert all(math.isfinite(v) for v in (elbo, log_px, stderr)), (objective, results)
        assert elbo < 0 and log_px > elbo - 0.5 and stderr > 0
        val = _number(rf"{objective}: \d+ epochs in {{N}} s, final val ELBO {{N}}", text)[1]
        assert math.isfinite(val)
    # Wake-sleep uses both stochastic layers and its samples differ from each other.
    found = re.search(r"wake_sleep: active units per layer \[(\d+), (\d+)\], sample spread (\S+) \(test images (\S+)\)",
                      text)  # fmt: skip
    assert found, text
    units, (spread, data) = [int(found[1]), int(found[2])], (float(found[3]), float(found[4]))
    assert min(units) >= 1, units
    assert spread > 0.3 * data, (spread, data)


@pytest.mark.slow  # runs in CI's slow suite; 01 keeps a notebook in the default one
def test_03_export_and_serve_runs(tmp_path, monkeypatch):
    _, text, images = _execute("03_export_and_serve.ipynb", tmp_path, monkeypatch)
    _check_data_line(text)
    assert images == 2, text
    for name in ("SavedModel decode", "TFLite decode", "SavedModel encode", "TFLite encode"):
        diff = _number(rf"max abs diff {name} vs Keras: {{N}}", text)
        assert diff < 1e-5, (name, diff)
    # int8 weights: close, but not to rounding error.
    assert _number(r"max abs diff TFLite int8-weight decode vs Keras: {N}", text) < 0.1
    # A separate process that cannot import keras_vae or keras decodes the same.
    assert "decoded 256 codes without keras_vae or keras" in text
    for name in ("saved_model", "tflite"):
        assert _number(rf"separate process, {name}: max abs diff vs Keras {{N}}", text) < 1e-5
    export_dir = tmp_path / "vae_export"
    for file in ("saved_model/saved_model.pb", "decoder.tflite", "encoder.tflite", "metadata.json"):
        assert (export_dir / file).stat().st_size > 0, file
    for runner in ("Keras (eager)", "SavedModel", "TFLite float32"):
        one, batch = _number(rf"{re.escape(runner)}\s+{{N}}\s+{{N}}\n", text)
        assert 0 < one and 0 < batch, runner


@pytest.mark.slow  # runs in CI's slow suite; 01 keeps a notebook in the default one
def test_04_your_data_runs(tmp_path, monkeypatch):
    _, text, images = _execute("04_your_data.ipynb", tmp_path, monkeypatch)
    _check_data_line(text)
    assert images == 4, text  # the folder's images, samples, reconstructions, per-class samples
    # Part 1: the folder written by the notebook, read back with its class subfolders and split 80/20.
    assert "classes: ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')" in text
    n_train, n_test = _number(r"folder: {N} training and {N} test images", text)
    assert n_test == round(0.2 * (n_train + n_test)), (n_train, n_test)
    elbo, elbo_bits = _number(r"image test ELBO: {N} nats per image = {N} bits per dimension", text)
    log_px, bits = _number(r"image test log p\(x\): {N} nats per image = {N} bits per dimension", text)
    assert elbo < 0 and 0 < bits < 8 and 0 < elbo_bits < 8, (elbo_bits, bits)
    assert log_px > elbo - 5.0, (log_px, elbo)  # importance sampling tightens the bound (k = 10: noisy)
    # Part 2: the table's binary and text columns come back far better than the majority guess.
    for column, kind in (("diagnosis", "binary"), ("size", "categorical")):
        accuracy, majority = _number(rf"{column} \({kind}\): held-out accuracy {{N}}, majority class {{N}}", text)
        assert accuracy > majority + 0.1, (column, accuracy, majority)
    assert _number(r"numeric columns: RMSE / std {N} on average", text) < 0.8
    assert "sampled columns and dtypes match the table's: True" in text
    assert (tmp_path / "your_data" / "tumours.csv").stat().st_size > 0
    # Part 3: the labels make the test images more probable, and the conditional model classifies.
    conditional = _number(r"(?m)^test log p\(x \| y\): {N} \+- {N} nats per image", text)
    unconditional = _number(r"(?m)^test log p\(x\): {N} \+- {N} nats per image", text)
    assert all(math.isfinite(v) for v in (*conditional, *unconditional))
    assert conditional[0] > unconditional[0], (conditional, unconditional)
    assert _number(r"classifies {N}% of 200 test images correctly", text) > 30
