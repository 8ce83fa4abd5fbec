"""Serving formats: TF Serving's REST predict bodies and ``saved_model_cli run``, for every signature.

TF Serving itself is not started here. Its REST predict API is emulated
from its documentation (tensorflow/serving ``api_rest.md``): the request
bodies ``export/rest_client.py`` builds (row ``instances`` and columnar
``inputs``) are decoded as TF Serving decodes them, the SavedModel's
signature runs on them, and its outputs are serialised as TF Serving
serialises them (``predictions`` per example, ``outputs`` per name, a bare
value for a single output); the client parses that back. The slow test runs
the ``saved_model_cli run`` commands of export/README.md as written.
"""

import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_vae
from keras_vae import export

REPO = pathlib.Path(__file__).resolve().parents[1]
#: Signatures whose inputs share one batch size: the ones the row format serves (export/README.md).
ROW_SIGNATURES = {"decode", "serving_default", "encode", "ancestral_sample_from_noise"}


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rest_client = _module(REPO / "export" / "rest_client.py", "rest_client")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A two-layer binary-latent Helmholtz machine exported as a SavedModel: ``(loaded, metadata)``.

    Binary top units make ``encode`` a single-output signature (``logits``),
    the case where TF Serving drops the output names.
    """
    model = keras_vae.HelmholtzMachine(
        12, latent_dims=(6, 3), hidden_dims=(8,), latent="bernoulli", objective="wake_sleep", seed=0
    )
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(v.numpy() + rng.normal(scale=0.3, size=v.shape).astype("float32"))
    out = tmp_path_factory.mktemp("served")
    paths = export.export_model(model, out, format="saved_model", allow_untrained=True, score_k=3)
    metadata = json.loads(pathlib.Path(paths["metadata"]).read_text())
    return tf.saved_model.load(paths["saved_model"]), metadata


def tf_serving_predict(loaded, request_text):
    """What TF Serving's ``:predict`` answers to ``request_text`` (JSON), as JSON text.

    Row format: ``instances`` is a list of per-example objects, or of bare
    values when the signature has one input; each input is the stack of its
    rows. Columnar: ``inputs`` is an object of named tensors, or a bare value
    for a single input. Values are cast to the signature's dtypes; a shape the
    signature does not accept is an error. The response mirrors the request's
    format.
    """
    request = json.loads(request_text)
    function = loaded.signatures[request.get("signature_name", "serving_default")]
    specs = function.structured_input_signature[1]
    if "instances" in request:
        instances = request["instances"]
        if len(specs) == 1 and not isinstance(instances[0], dict):
            values = {next(iter(specs)): instances}
        else:
            if any(set(instance) != set(specs) for instance in instances):
                return json.dumps({"error": "every instance must name every input"})
            values = {name: [instance[name] for instance in instances] for name in specs}
    else:
        given = request["inputs"]
        values = given if isinstance(given, dict) and set(given) <= set(specs) else {next(iter(specs)): given}
    if set(values) != set(specs):
        return json.dumps({"error": f"inputs {sorted(values)} are not {sorted(specs)}"})
    tensors = {}
    for name, spec in specs.items():
        tensor = tf.constant(np.asarray(values[name], dtype=spec.dtype.as_numpy_dtype))
        if not spec.shape.is_compatible_with(tensor.shape):
            return json.dumps({"error": f"input {name} has shape {tensor.shape}, expected {spec.shape}"})
        tensors[name] = tensor
    outputs = {name: value.numpy() for name, value in function(**tensors).items()}
    if "instances" in request:
        sizes = {len(value) for value in outputs.values()}
        assert len(sizes) == 1, "row-format outputs share the 0-th dimension"
        if len(outputs) == 1:
            (value,) = outputs.values()
            return json.dumps({"predictions": value.tolist()})
        rows = [{name: value[i].tolist() for name, value in outputs.items()} for i in range(sizes.pop())]
        return json.dumps({"predictions": rows})
    if len(outputs) == 1:
        (value,) = outputs.values()
        return json.dumps({"outputs": value.tolist()})
    return json.dumps({"outputs": {name: value.tolist() for name, value in outputs.items()}})


def test_rest_request_bodies_round_trip_every_signature(served):
    loaded, metadata = served
    assert set(metadata["signatures"]) == set(loaded.signatures)
    row_served = set()
    for signature, info in metadata["signatures"].items():
        inputs = rest_client.example_inputs(metadata, signature, batch=3, seed=5)
        assert set(inputs) == set(info["inputs"]), signature
        function = loaded.signatures[signature]
        expected = {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
        assert set(expected) == set(info["outputs"]), signature
        formats = ["columnar"]
        if rest_client.row_format_applies(inputs):
            formats.append("row")
            row_served.add(signature)
        else:
            with pytest.raises(ValueError, match="row format needs every input.*same batch size"):
                rest_client.request_body(signature, inputs, "row")
        for format in formats:
            body = rest_client.request_body(signature, inputs, format)
            assert body["signature_name"] == signature
            assert ("instances" if format == "row" else "inputs") in body
            response = json.loads(tf_serving_predict(loaded, json.dumps(body)))
            assert "error" not in response, (signature, format, response)
            got = rest_client.parse_response(response, info["outputs"])
            assert set(got) == set(expected), (signature, format)
            for name, value in expected.items():
                assert got[name].dtype == value.dtype, (signature, format, name)
                # JSON carries float32 values exactly (as doubles).
                np.testing.assert_array_equal(got[name], value, err_msg=f"{signature}/{format}/{name}")
    assert row_served == ROW_SIGNATURES


def test_rest_bodies_and_responses_have_tf_servings_layout(served):
    loaded, metadata = served
    z = np.array([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], np.float32)
    # One input: bare rows; several outputs: one object per example.
    body = rest_client.request_body("decode", {"z": z}, "row")
    assert body == {"signature_name": "decode", "instances": [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]}
    response = json.loads(tf_serving_predict(loaded, json.dumps(body)))
    assert [sorted(p) for p in response["predictions"]] == [["logits", "mean", "probs"]] * 2
    # One output (binary top layer: logits only): bare values, in both formats.
    x = np.zeros((2, 12), np.float32)
    for format, key in (("row", "predictions"), ("columnar", "outputs")):
        response = json.loads(
            tf_serving_predict(loaded, json.dumps(rest_client.request_body("encode", {"x": x}, format)))
        )
        assert np.shape(response[key]) == (2, 3), format
    # Scalars in the columnar format.
    body = rest_client.request_body("sample", {"num_samples": np.int32(4), "seed": np.int64(0)})
    assert body == {"signature_name": "sample", "inputs": {"num_samples": 4, "seed": 0}}
    # A wrong width is refused by the server and raised by the client.
    bad = rest_client.request_body("decode", {"z": np.zeros((2, 4), np.float32)})
    response = json.loads(tf_serving_predict(loaded, json.dumps(bad)))
    with pytest.raises(RuntimeError, match="TF Serving answered: input z has shape"):
        rest_client.parse_response(response, metadata["signatures"]["decode"]["outputs"])
    with pytest.raises(ValueError, match="Unknown format"):
        rest_client.request_body("decode", {"z": z}, "rows")


def _readme_block(language, containing):
    """The one fenced ``language`` block of export/README.md containing ``containing``."""
    text = (REPO / "export" / "README.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


@pytest.mark.slow
def test_saved_model_cli_runs_every_signature_as_documented(digits, tmp_path):
    """The README's input files and ``saved_model_cli run`` commands, on a trained digits VAE."""
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(64, latent_dim=2, hidden_dims=(16,), seed=0)
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(digits[0][:300], epochs=1, batch_size=100, verbose=0)
    export.export_model(model, tmp_path / "exported", format="saved_model", score_k=4)
    # The README's snippet writes the input files next to the export.
    snippet = _readme_block("python", "np.savez")
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands = [
        line
        for line in _readme_block("bash", "saved_model_cli run").splitlines()
        if line.startswith("saved_model_cli run")
    ]
    loaded = tf.saved_model.load(str(tmp_path / "exported" / "saved_model"))
    ran = set()
    for command in commands:
        argv = shlex.split(command)
        signature = argv[argv.index("--signature_def") + 1]
        out = tmp_path / f"out_{signature}"
        proc = subprocess.run(
            [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *argv[1:], "--outdir", str(out)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        assert proc.returncode == 0, (command, proc.stderr[-3000:])
        got = {path.stem: np.load(path) for path in out.glob("*.npy")}
        # The same inputs through the loaded SavedModel.
        function = loaded.signatures[signature]
        inputs = _cli_inputs(argv, tmp_path, function.structured_input_signature[1])
        expected = {k: v.numpy() for k, v in function(**inputs).items()}
        assert set(got) == set(expected), signature
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-6, atol=1e-6, err_msg=f"{signature}/{name}")
        ran.add(signature)
    assert ran == set(loaded.signatures)


def _cli_inputs(argv, cwd, specs):
    """The tensors ``saved_model_cli run`` feeds for ``--inputs`` and ``--input_exprs``."""
    values = {}
    for flag in ("--inputs", "--input_exprs"):
        if flag not in argv:
            continue
        for item in filter(None, argv[argv.index(flag) + 1].split(";")):
            name, value = item.split("=", 1)
            if flag == "--input_exprs":
                values[name] = json.loads(value)
            else:
                match = re.fullmatch(r"(.*?)(?:\[(.*)\])?", value)
                data = np.load(cwd / match[1])
                values[name] = data[match[2]] if match[2] else data
    return {name: tf.constant(np.asarray(values[name], spec.dtype.as_numpy_dtype)) for name, spec in specs.items()}
