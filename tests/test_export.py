"""Export: SavedModel signatures checked in a TensorFlow-only process, TFLite
files run through LiteRT with builtin ops only, metadata, bad input, examples.

``score`` and ``ancestral_sample`` are checked against Keras
(``scoring.scores``, ``model.sample``) draw for draw; their ``*_from_noise``
versions (SavedModel and the TFLite scorer and sampler) are fed the very
noise the seeded versions draw, ``heads.random_normal(shape, [seed, i])``.

The default suite checks every signature and every TFLite file on one
model: a small VAE trained on the 8x8 digits, exported once (module fixture
``representative``). The slow suite repeats those checks on every model
configuration of ``CONFIGS`` (each exported once with perturbed initial
weights, ``allow_untrained=True``) and measures the float16 and int8 files.
"""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

import keras_vae
from keras_vae import export
from keras_vae import heads
from keras_vae import scoring
from keras_vae.export import tflite

REPO = pathlib.Path(__file__).resolve().parents[1]
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

#: Float .tflite vs Keras.
FLOAT_ATOL = 1e-5
#: Dynamic-range quantised .tflite vs Keras (int8 weights: ~5e-3 measured).
QUANTIZED_TOL = 5e-2
#: Posterior samples of the exported score signatures in these tests.
K = 4
SCORE_SEED, SAMPLE_SEED, N_SAMPLES = 7, 3, 6
SIGNATURES = [
    "ancestral_sample",
    "ancestral_sample_from_noise",
    "decode",
    "encode",
    "sample",
    "score",
    "score_from_noise",
    "serving_default",
]
TFLITE = {
    "decoder": "decode",
    "encoder": "encode",
    "scorer": "score_from_noise",
    "sampler": "ancestral_sample_from_noise",
}


def assert_scores_close(actual, expected, err_msg=""):
    """Scores are sums over hundreds of terms: float32 rounding grows with their size."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4, err_msg=err_msg)


def _mixed():
    return keras_vae.MixedObservation(
        [keras_vae.BernoulliObservation(4), keras_vae.GaussianObservation(3), keras_vae.CategoricalObservation([3])]
    )


# name -> (model factory, decode outputs, encode outputs)
CONFIGS = {
    "vae_diag": (
        lambda: keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,), seed=0),
        {"logits", "probs", "mean"},
        {"loc", "scale"},
    ),
    "vae_full": (
        lambda: keras_vae.VAE(16, latent_dim=3, hidden_dims=(16,), covariance="full", seed=0),
        {"logits", "probs", "mean"},
        {"loc", "scale_tril"},
    ),
    "vae_gaussian": (
        lambda: keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,), likelihood="gaussian", seed=0),
        {"loc", "scale", "mean"},
        {"loc", "scale"},
    ),
    "vae_categorical": (
        lambda: keras_vae.VAE(
            2, latent_dim=2, hidden_dims=(16,), likelihood=keras_vae.CategoricalObservation([3, 4]), seed=0
        ),
        {"logits", "probs", "mean"},
        {"loc", "scale"},
    ),
    "vae_mixed": (
        lambda: keras_vae.VAE(8, latent_dim=2, hidden_dims=(16,), likelihood=_mixed(), seed=0),
        {"c0_logits", "c0_probs", "c1_loc", "c1_scale", "c2_logits", "c2_probs", "mean"},
        {"loc", "scale"},
    ),
    "vae_conv": (
        lambda: keras_vae.VAE(
            64,
            latent_dim=2,
            encoder=keras_vae.networks.conv_encoder((8, 8), filters=(4,), dense=16),
            decoder=keras_vae.networks.conv_decoder((8, 8), filters=(4,), out_channels=2),
            seed=0,
        ),
        {"logits", "probs", "mean"},
        {"loc", "scale"},
    ),
    "hm_two_layer": (
        lambda: keras_vae.HelmholtzMachine(16, latent_dims=(8, 4), hidden_dims=(16,), seed=0),
        {"logits", "probs", "mean"},
        {"loc", "scale"},
    ),
    "hm_bernoulli_wake_sleep": (
        lambda: keras_vae.HelmholtzMachine(
            16, latent_dims=(8, 4), hidden_dims=(16,), latent="bernoulli", objective="wake_sleep", seed=0
        ),
        {"logits", "probs", "mean"},
        {"logits"},
    ),
}
NAMES = sorted(CONFIGS)


def _numpy(outputs):
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in outputs.items()}


def seeded_noise(inputs, rows, seed):
    """The draws of a seeded signature, in order: draw ``i`` is ``heads.random_*(shape, [seed, i])``.

    Args:
        inputs: the signature's inputs from metadata.json (noise inputs in draw order).
        rows: the batch of every noise input.
        seed: the seed of the seeded signature.
    """
    noise = {}
    for i, (name, info) in enumerate((n, v) for n, v in inputs.items() if n.startswith("noise_")):
        draw = heads.random_uniform if info["distribution"].startswith("uniform") else heads.random_normal
        key = tf.constant([seed, i], tf.int64)
        noise[name] = draw([rows, *info["shape"][1:]], key).numpy()
    return noise


def _perturbed(factory):
    """A model whose every float weight is moved off its initial value (non-zero biases)."""
    model = factory()
    rng = np.random.default_rng(0)
    for v in model.weights:
        if "float" in str(v.dtype):
            v.assign(v.numpy() + rng.normal(scale=0.3, size=v.shape).astype("float32"))
    return model


class Exported:
    """One exported model: the model, inputs, Keras outputs and paths.

    Args:
        name: the case's name (its export is ``root / name``).
        model: the model to export.
        decode_keys: the outputs ``decode`` must have.
        encode_keys: the outputs ``encode`` must have.
        root: directory of the exports and of the inputs (``root / f"{name}.npz"``).
    """

    def __init__(self, name, model, decode_keys, encode_keys, root):
        self.name, self.model, self.root = name, model, root
        self.decode_keys, self.encode_keys = decode_keys, encode_keys
        rng = np.random.default_rng(1)
        self.z = rng.normal(size=(5, self.model.latent_dim)).astype("float32")
        self.x = _numpy(self.model.sample(5, seed=0))["x"]  # Valid data of every family.
        self.decoded = _numpy(self.model.decode(self.z))
        self.encoded = _numpy(self.model.encode(self.x))
        self.scores = _numpy(scoring.scores(self.model, self.x, K, SCORE_SEED))
        samples, _, _ = self.model.dream(N_SAMPLES, seed=keras.random.SeedGenerator(SAMPLE_SEED))
        self.drawn = dict(_numpy(self.model.sample(N_SAMPLES, seed=SAMPLE_SEED)))
        self.drawn.update({f"h_{m + 1}": keras.ops.convert_to_numpy(h) for m, h in enumerate(samples[:-1])})
        self.paths = export.export_model(self.model, root / name, allow_untrained=True, score_k=K)
        self.metadata = json.loads(pathlib.Path(self.paths["metadata"]).read_text())
        sigs = self.metadata["signatures"]
        self.score_noise = seeded_noise(sigs["score_from_noise"]["inputs"], K * len(self.x), SCORE_SEED)
        self.sample_noise = seeded_noise(sigs["ancestral_sample_from_noise"]["inputs"], N_SAMPLES, SAMPLE_SEED)
        np.savez(
            root / f"{name}.npz",
            z=self.z,
            x=self.x,
            **{f"score_{k}": v for k, v in self.score_noise.items()},
            **{f"sample_{k}": v for k, v in self.sample_noise.items()},
        )


REPRESENTATIVE = "digits_vae"


@pytest.fixture(scope="module")
def trained(trained_vae_path):
    """A VAE trained for 3 steps on the 8x8 digits: ``(.keras path, the model reloaded from it)``."""
    return trained_vae_path, export.load_model(trained_vae_path)


@pytest.fixture(scope="module")
def representative(trained, tmp_path_factory):
    """The trained VAE exported once (both formats, ``score_k=K``): the default suite's model."""
    root = tmp_path_factory.mktemp("representative")
    return Exported(REPRESENTATIVE, trained[1], {"logits", "probs", "mean"}, {"loc", "scale"}, root)


@pytest.fixture(scope="module")
def configurations(tmp_path_factory):
    """Every configuration of ``CONFIGS`` exported once (slow tests only)."""
    root = tmp_path_factory.mktemp("exports")
    return {
        name: Exported(name, _perturbed(factory), decode_keys, encode_keys, root)
        for name, (factory, decode_keys, encode_keys) in CONFIGS.items()
    }


#: The representative in the default suite, every configuration in the slow one.
CASES = [REPRESENTATIVE, *(pytest.param(name, marks=pytest.mark.slow) for name in NAMES)]


@pytest.fixture(params=CASES)
def case(request):
    """One exported model: the representative, or (slow) a configuration."""
    if request.param == REPRESENTATIVE:
        return request.getfixturevalue("representative")
    return request.getfixturevalue("configurations")[request.param]


# Runs with TensorFlow only: loads each SavedModel and records its outputs.
_TF_ONLY_CHECKS = textwrap.dedent(
    """
    import json, pathlib, sys
    import numpy as np
    import tensorflow as tf

    def op_types(fn):
        graph_def = fn.graph.as_graph_def()
        types = {n.op for n in graph_def.node}
        for f in graph_def.library.function:
            types.update(n.op for n in f.node_def)
        return types

    def rejects(fn, **inputs):
        try:
            fn(**inputs)
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as err:
            return type(err).__name__
        return None

    def numpy(outputs):
        return {k: v.numpy().tolist() for k, v in outputs.items()}

    root, names, out = pathlib.Path(sys.argv[1]), sys.argv[2].split(","), {}
    for name in names:
        data = np.load(root / f"{name}.npz")
        noise = {p: {k[len(p) + 1:]: tf.constant(data[k]) for k in data.files if k.startswith(p + "_")}
                 for p in ("score", "sample")}
        loaded = tf.saved_model.load(str(root / name / "saved_model"))
        sigs = loaded.signatures
        decode, encode, sample = sigs["decode"], sigs["encode"], sigs["sample"]
        z, x = tf.constant(data["z"]), tf.constant(data["x"])
        draw = lambda n, seed: {k: v.numpy() for k, v in sample(
            num_samples=tf.constant(n), seed=tf.constant(seed, tf.int64)).items()}
        a, b, c = draw(16, 7), draw(16, 7), draw(16, 8)
        bad_z = tf.zeros([2, z.shape[1] + 1])
        out[name] = {
            "signatures": sorted(sigs.keys()),
            "decode": {k: v.numpy().tolist() for k, v in decode(z=z).items()},
            "serving_default": {k: v.numpy().tolist() for k, v in sigs["serving_default"](z=z).items()},
            "encode": {k: v.numpy().tolist() for k, v in encode(x=x).items()},
            "sample_keys": sorted(a),
            "sample_shapes": {k: list(v.shape) for k, v in a.items()},
            "sample_repeatable": all(np.array_equal(a[k], b[k]) for k in a),
            "sample_seeds_differ": not np.array_equal(a["z"], c["z"]),
            "sample_z_values": sorted(set(np.unique(a["z"]).round(6).tolist()))[:3],
            "sample_x_mean_error": float(np.abs(decode(z=tf.constant(a["z"]))["mean"].numpy() - a["x_mean"]).max()),
            "score": numpy(sigs["score"](x=x, seed=tf.constant(7, tf.int64))),
            "score_from_noise": numpy(sigs["score_from_noise"](x=x, **noise["score"])),
            "ancestral_sample": numpy(sigs["ancestral_sample"](
                num_samples=tf.constant(6), seed=tf.constant(3, tf.int64))),
            "ancestral_sample_from_noise": numpy(sigs["ancestral_sample_from_noise"](**noise["sample"])),
            "random_ops": {s: sorted(t for t in op_types(sigs[s]) if "Random" in t) for s in sigs.keys()},
            "rejects": {
                "decode_wrong_width": rejects(decode, z=bad_z),
                "decode_float64": rejects(decode, z=tf.cast(z, tf.float64)),
                "decode_rank_1": rejects(decode, z=z[0]),
                "encode_wrong_width": rejects(encode, x=tf.zeros([2, x.shape[1] + 1])),
                "sample_vector_seed": rejects(sample, num_samples=tf.constant(2), seed=tf.constant([1, 2], tf.int64)),
                "sample_negative": rejects(sample, num_samples=tf.constant(-1), seed=tf.constant(0, tf.int64)),
                "ancestral_negative": rejects(
                    sigs["ancestral_sample"], num_samples=tf.constant(-1), seed=tf.constant(0, tf.int64)),
                "score_wrong_width": rejects(
                    sigs["score"], x=tf.zeros([2, x.shape[1] + 1]), seed=tf.constant(0, tf.int64)),
            },
        }
    out["keras_vae_imported"] = "keras_vae" in sys.modules
    print("RESULTS" + json.dumps(out))
    """
)


def _tf_only_checks(cases):
    """Results of ``_TF_ONLY_CHECKS`` for ``cases`` (exported under one root), from one subprocess."""
    root = cases[0].root
    proc = subprocess.run(
        [sys.executable, "-c", _TF_ONLY_CHECKS, str(root), ",".join(c.name for c in cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env=_ENV,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULTS"))
    return json.loads(line[len("RESULTS") :])


@pytest.fixture(scope="module")
def tf_only_representative(representative):
    return _tf_only_checks([representative])


@pytest.fixture(scope="module")
def tf_only_configurations(configurations):
    return _tf_only_checks(list(configurations.values()))


@pytest.fixture
def tf_only(case, request):
    """``_TF_ONLY_CHECKS``' results of ``case``."""
    group = "tf_only_representative" if case.name == REPRESENTATIVE else "tf_only_configurations"
    return request.getfixturevalue(group)[case.name]


# ---------------------------------------------------------------------------
# SavedModel.
# ---------------------------------------------------------------------------


def test_saved_model_loads_without_keras_vae(tf_only_representative):
    assert tf_only_representative["keras_vae_imported"] is False


def test_saved_model_matches_keras(case, tf_only):
    result = tf_only
    assert result["signatures"] == SIGNATURES
    assert set(case.decoded) == case.decode_keys and set(case.encoded) == case.encode_keys
    for signature, expected in (("decode", case.decoded), ("serving_default", case.decoded), ("encode", case.encoded)):
        assert set(result[signature]) == set(expected), signature
        for key, value in expected.items():
            np.testing.assert_allclose(result[signature][key], value, atol=1e-5, err_msg=f"{signature}/{key}")


def test_saved_model_scores_equal_keras(case, tf_only):
    """score(x, seed) = scoring.scores(model, x, k, seed); score_from_noise fed those draws gives the same."""
    result = tf_only
    for signature in ("score", "score_from_noise"):
        assert set(result[signature]) == {"elbo", "log_px"}
        for key, value in case.scores.items():
            assert_scores_close(result[signature][key], value, err_msg=f"{signature}/{key}")
    # log p(x) >= ELBO (Jensen), strictly for random weights.
    assert np.all(case.scores["log_px"] > case.scores["elbo"])


def test_saved_model_ancestral_sample_equals_model_sample(case, tf_only):
    """Every layer is drawn: ancestral_sample(n, seed) = model.sample(n, seed=seed), lower layers included."""
    result = tf_only
    expected = {"z", "x", "x_mean"} | {f"h_{m}" for m in range(1, case.model.num_layers)}
    for signature in ("ancestral_sample", "ancestral_sample_from_noise"):
        assert set(result[signature]) == expected == set(case.drawn)
        for key, value in case.drawn.items():
            np.testing.assert_allclose(result[signature][key], value, atol=1e-6, err_msg=f"{signature}/{key}")
    if case.model.num_layers > 1:
        # Not the conditional mean of h_1 (what decode and sample use): a draw.
        h1_mean = case.model.generative_heads[0].mean(
            case.model.generative_heads[0](case.model.generative_networks[1](case.drawn["z"]))
        )
        assert np.abs(case.drawn["h_1"] - keras.ops.convert_to_numpy(h1_mean)).max() > 0.1


def test_sample_is_seeded_and_decodes_its_codes(case, tf_only):
    model, result = case.model, tf_only
    assert result["sample_keys"] == ["x_mean", "z"]
    assert result["sample_shapes"] == {"z": [16, model.latent_dim], "x_mean": [16, model.input_dim]}
    assert result["sample_repeatable"] and result["sample_seeds_differ"]
    assert result["sample_x_mean_error"] < 1e-6
    if model.latent[-1] == "bernoulli":
        assert result["sample_z_values"] == [0.0, 1.0]


def test_signatures_reject_wrong_inputs(tf_only):
    rejected = tf_only["rejects"]
    assert all(rejected.values()), rejected


DETERMINISTIC = ("decode", "encode", "serving_default", "score_from_noise", "ancestral_sample_from_noise")


@pytest.mark.slow
def test_random_op_scanner(configurations):
    signatures = export.ServingModule(configurations["hm_bernoulli_wake_sleep"].model, score_k=2).signatures()
    for signature in DETERMINISTIC:
        assert export.random_op_types(signatures[signature]) == [], signature
    # The scanner does see random ops where they are: the seeded stateless draws.
    for signature in ("sample", "score", "ancestral_sample"):
        assert any(t.startswith("Stateless") for t in export.random_op_types(signatures[signature])), signature


def test_only_seeded_signatures_have_random_ops(tf_only):
    """A TensorFlow-only scan of the reloaded SavedModel."""
    deterministic = DETERMINISTIC
    loaded = tf_only["random_ops"]
    assert all(loaded[s] == [] for s in deterministic), loaded
    assert all(loaded[s] != [] for s in ("sample", "score", "ancestral_sample")), loaded


@pytest.mark.slow
def test_saved_model_cli_lists_named_signatures(configurations):
    path = configurations["vae_mixed"].paths["saved_model"]
    proc = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir", path, "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_ENV,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    blocks = {}
    for block in proc.stdout.split("signature_def['")[1:]:
        blocks[block.split("'", 1)[0]] = block
    assert set(SIGNATURES) <= set(blocks)
    expected = {
        "decode": (["z"], CONFIGS["vae_mixed"][1]),
        "serving_default": (["z"], CONFIGS["vae_mixed"][1]),
        "encode": (["x"], {"loc", "scale"}),
        "sample": (["num_samples", "seed"], {"x_mean", "z"}),
        "score": (["x", "seed"], {"elbo", "log_px"}),
        "score_from_noise": (["x", "noise_h1"], {"elbo", "log_px"}),
        "ancestral_sample": (["num_samples", "seed"], {"z", "x", "x_mean"}),
        "ancestral_sample_from_noise": (["noise_h1", "noise_x_0", "noise_x_1", "noise_x_2"], {"z", "x", "x_mean"}),
    }
    for name, (inputs, outputs) in expected.items():
        given, returned = blocks[name].split("The given SavedModel SignatureDef contains the following output(s):")
        for key in inputs:
            assert f"inputs['{key}'] tensor_info:" in given, (name, key)
        for key in outputs:
            assert f"outputs['{key}'] tensor_info:" in returned, (name, key)
    assert "shape: (-1, 2)" in blocks["decode"] and "dtype: DT_INT64" in blocks["sample"]


# ---------------------------------------------------------------------------
# TFLite / LiteRT.
# ---------------------------------------------------------------------------


def _run(path, signature, **inputs):
    return Interpreter(model_path=path).get_signature_runner(signature)(**inputs)


def test_tflite_matches_keras(case):
    for signature, file, inputs, expected in (
        ("decode", "decoder", {"z": case.z}, case.decoded),
        ("encode", "encoder", {"x": case.x}, case.encoded),
    ):
        outputs = _run(case.paths[file], signature, **inputs)
        assert set(outputs) == set(expected), signature
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[key], value, atol=FLOAT_ATOL, err_msg=f"{signature}/{key}")
        # The batch dimension is dynamic: one example works too.
        one = _run(case.paths[file], signature, **{k: v[:1] for k, v in inputs.items()})
        for key, value in expected.items():
            np.testing.assert_allclose(one[key], value[:1], atol=FLOAT_ATOL, err_msg=f"{signature}/{key}")


def test_tflite_scorer_and_sampler_equal_keras(case):
    """Fed the seeded draws, scorer.tflite = scoring.scores and sampler.tflite = model.sample (LiteRT)."""
    scored = _run(case.paths["scorer"], "score_from_noise", x=case.x, **case.score_noise)
    assert set(scored) == {"elbo", "log_px"}
    for key, value in case.scores.items():
        assert_scores_close(scored[key], value, err_msg=key)
    drawn = _run(case.paths["sampler"], "ancestral_sample_from_noise", **case.sample_noise)
    assert set(drawn) == set(case.drawn)
    for key, value in case.drawn.items():
        np.testing.assert_allclose(drawn[key], value, atol=FLOAT_ATOL, err_msg=key)
    # Any number of samples: the batch of the noise.
    one = _run(case.paths["sampler"], "ancestral_sample_from_noise", **{k: v[:1] for k, v in case.sample_noise.items()})
    np.testing.assert_allclose(one["x_mean"], case.drawn["x_mean"][:1], atol=FLOAT_ATOL)


def test_seeded_noise_is_the_seeded_signatures_draws(representative):
    """tflite.seeded_noise from metadata.json gives the draws score and ancestral_sample make (checked above)."""
    case = representative
    sigs = case.metadata["signatures"]
    for signature, rows, seed, expected in (
        ("score_from_noise", K * len(case.x), SCORE_SEED, case.score_noise),
        ("ancestral_sample_from_noise", N_SAMPLES, SAMPLE_SEED, case.sample_noise),
    ):
        got = tflite.seeded_noise(sigs[signature]["inputs"], rows, seed)
        assert list(got) == list(expected), signature
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"{signature}/{name}")
    other = tflite.seeded_noise(sigs["score_from_noise"]["inputs"], K * len(case.x), SCORE_SEED + 1)
    assert not np.array_equal(other["noise_h1"], case.score_noise["noise_h1"])


def test_tflite_uses_builtin_ops_only(case):
    builtin = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")} - {"CUSTOM"}
    for file in TFLITE:
        content = pathlib.Path(case.paths[file]).read_bytes()
        model = schema.Model.GetRootAsModel(content, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        custom = [
            c.CustomCode()
            for c in codes
            if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == schema.BuiltinOperator.CUSTOM
        ]
        assert custom == [], (file, custom)
        assert b"Flex" not in content
        ops = export.tflite_ops(content)
        assert set(ops) <= builtin and "VAR_HANDLE" not in ops  # Weights are frozen in.
        assert case.metadata["tflite"][f"{file}.tflite"]["ops"] == ops


@pytest.mark.slow
def test_dynamic_quantization_within_documented_tolerance(tmp_path):
    model = _perturbed(lambda: keras_vae.VAE(64, latent_dim=2, hidden_dims=(64,), seed=0))
    paths = export.export_model(model, tmp_path, format="tflite", quantize="dynamic", allow_untrained=True)
    assert set(paths) == set(TFLITE) | {f"{stem}_dynamic" for stem in TFLITE} | {"metadata"}
    assert not (tmp_path / "saved_model").exists()
    rng = np.random.default_rng(0)
    z, x = rng.normal(size=(8, 2)).astype("float32"), rng.random((8, 64)).astype("float32")
    for file, signature, inputs, expected in (
        ("decoder", "decode", {"z": z}, _numpy(model.decode(z))),
        ("encoder", "encode", {"x": x}, _numpy(model.encode(x))),
    ):
        quantized = pathlib.Path(paths[f"{file}_dynamic"])
        assert quantized.stat().st_size < 0.6 * pathlib.Path(paths[file]).stat().st_size
        outputs = _run(str(quantized), signature, **inputs)
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[key], value, rtol=QUANTIZED_TOL, atol=QUANTIZED_TOL, err_msg=key)
    metadata = json.loads(pathlib.Path(paths["metadata"]).read_text())
    assert metadata["tflite"]["decoder_dynamic.tflite"]["quantization"] == "dynamic"
    assert metadata["files"] == {k: pathlib.Path(v).name for k, v in paths.items()}


# ---------------------------------------------------------------------------
# Metadata.
# ---------------------------------------------------------------------------


def test_metadata_describes_the_export(case):
    meta, model = case.metadata, case.model
    assert meta["latent_dim"] == model.latent_dim and meta["input_dim"] == model.input_dim
    assert meta["latent_families"] == model.latent and meta["versions"]["tensorflow"] == tf.__version__
    assert meta["versions"]["keras_vae"] == keras_vae.__version__ and meta["input_scaling"]
    family = type(model.observation).__name__.replace("Observation", "").lower()
    assert meta["observation"]["family"] == family
    sigs = meta["signatures"]
    assert sorted(sigs) == SIGNATURES
    assert meta["score_k"] == K
    assert sigs["decode"]["inputs"] == {
        "z": {"shape": [None, model.latent_dim], "dtype": "float32", "doc": sigs["decode"]["inputs"]["z"]["doc"]}
    }
    assert set(sigs["decode"]["outputs"]) == set(case.decoded) and set(sigs["encode"]["outputs"]) == set(case.encoded)
    assert set(sigs["sample"]["inputs"]) == {"num_samples", "seed"}
    # Noise inputs say what to draw, and appear in draw order (top layer first when sampling).
    noise = [n for n in sigs["ancestral_sample_from_noise"]["inputs"]]
    assert noise[0] == f"noise_h{model.num_layers}" and noise[-1].startswith("noise_x")
    assert list(sigs["score_from_noise"]["inputs"])[:2] == ["x", "noise_h1"]
    for info in list(sigs["score_from_noise"]["inputs"].values())[1:]:
        assert info["distribution"] in ("standard normal N(0, 1)", "uniform U[0, 1)")
    assert all(o["doc"] for s in sigs.values() for o in s["outputs"].values())
    if model.num_layers > 1:
        assert "conditional means" in sigs["decode"]["doc"]
    # The SavedModel carries the same file.
    copy = pathlib.Path(case.paths["saved_model"], "assets", "metadata.json").read_text()
    assert json.loads(copy) == meta


# ---------------------------------------------------------------------------
# Bad input, trained models, the CLI helpers and the examples.
# ---------------------------------------------------------------------------


def test_untrained_model_is_rejected(tmp_path):
    model = keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,))
    with pytest.raises(export.ExportError, match="has not been trained"):
        export.export_model(model, tmp_path / "a")
    model.compile(keras.optimizers.Adam())
    with pytest.raises(export.ExportError, match="allow_untrained=True"):
        export.export_model(model, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_non_empty_directory_needs_overwrite(trained, tmp_path):
    model = trained[1]
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(export.ExportError, match="not empty.*overwrite=True"):
        export.export_model(model, tmp_path, format="saved_model")
    (tmp_path / "scorer_int8.tflite").write_bytes(b"an earlier export")
    paths = export.export_model(model, tmp_path, format="saved_model", overwrite=True)
    assert set(paths) == {"saved_model", "metadata"}
    assert not (tmp_path / "scorer_int8.tflite").exists()  # The earlier export was replaced...
    assert (tmp_path / "notes.txt").read_text() == "keep me"  # ...other files were not.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "notes.txt", "saved_model"]
    (tmp_path / "file").write_text("")
    with pytest.raises(export.ExportError, match="not a directory"):
        export.export_model(model, tmp_path / "file", format="saved_model")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(format="onnx"), "Unknown format"),
        (dict(quantize="int4"), "Unknown quantize"),
        (dict(quantize=("float16", "int8")), "pass representative_data"),
        (dict(score_k=0), "score_k must be a positive integer"),
        (dict(format="saved_model", quantize="dynamic"), "quantize applies to TFLite"),
    ],
)
def test_bad_arguments(kwargs, message, trained, tmp_path):
    with pytest.raises(export.ExportError, match=message):
        export.export_model(trained[1], tmp_path, **kwargs)


def test_not_a_keras_vae_model(tmp_path):
    with pytest.raises(export.ExportError, match="HelmholtzMachine or VAE"):
        export.export_model(keras.Sequential([keras.layers.Dense(2)]), tmp_path)
    with pytest.raises(FileNotFoundError, match="no model file"):
        export.export_model(tmp_path / "missing.keras", tmp_path / "out")


class _BitwiseAnd(keras.layers.Layer):
    """Uses an op TFLite has no builtin kernel for."""

    def call(self, x):
        return x + tf.cast(tf.bitwise.bitwise_and(tf.cast(x, tf.int32), 1), x.dtype)


class _Noise(keras.layers.Layer):
    """Samples at inference."""

    def call(self, x):
        return x + tf.random.normal(tf.shape(x))


@pytest.mark.parametrize(
    "layer, message",
    [(_BitwiseAnd, r"builtin ops only failed \(TF Select ops: BitwiseAnd\)"), (_Noise, "contains random ops")],
)
def test_decoders_that_cannot_be_served_fail_clearly(layer, message, tmp_path):
    decoder = keras.Sequential([keras.layers.Dense(16, activation="tanh"), layer()])
    model = keras_vae.VAE(16, latent_dim=2, hidden_dims=(16,), decoder=decoder)
    with pytest.raises(RuntimeError, match=message):
        export.export_model(model, tmp_path / "out", format="tflite", allow_untrained=True)
    assert not (tmp_path / "out").exists()


def _without_ai_edge_litert(monkeypatch):
    """Make every ``import ai_edge_litert...`` fail, as after ``pip install keras-vae`` alone."""
    for module in ("ai_edge_litert", "ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError):
        import ai_edge_litert.interpreter  # noqa: F401


def test_tflite_without_ai_edge_litert(representative, monkeypatch):
    """TensorFlow alone lists a file's ops, converts (here with dynamic-range quantisation) and runs it."""
    case = representative
    _without_ai_edge_litert(monkeypatch)
    # The op lists come from TensorFlow's copy of the schema and agree with ai-edge-litert's.
    for file in TFLITE:
        ops = tflite.tflite_ops(pathlib.Path(case.paths[file]).read_bytes())
        assert case.metadata["tflite"][f"{file}.tflite"]["ops"] == ops, file
    runner = tflite.interpreter(case.paths["decoder"])
    assert type(runner).__module__.startswith("tensorflow")
    decoded = runner.get_signature_runner("decode")(z=case.z)
    np.testing.assert_allclose(decoded["probs"], case.decoded["probs"], atol=FLOAT_ATOL)
    content = tflite.convert(case.paths["saved_model"], "decode", "dynamic")
    assert "FULLY_CONNECTED" in tflite.tflite_ops(content)
    assert len(content) < pathlib.Path(case.paths["decoder"]).stat().st_size  # 16 x 64 weights in int8
    path = pathlib.Path(case.root, "decoder_dynamic.tflite")
    path.write_bytes(content)
    quantized = tflite.interpreter(path).get_signature_runner("decode")(z=case.z)
    error = np.abs(quantized["probs"] - case.decoded["probs"]).max()
    assert 0 < error < QUANTIZED_TOL, error


@pytest.mark.slow
def test_cli_exports_both_formats_without_ai_edge_litert(trained, representative, tmp_path, capsys, monkeypatch):
    path, model = trained
    from keras_vae import cli

    _without_ai_edge_litert(monkeypatch)
    out = tmp_path / "exported"
    assert cli.main(["export", str(path), "--out", str(out), "--format", "both", "--score-k", str(K)]) == 0
    printed = capsys.readouterr().out
    for name in ("saved_model", *(f"{f}.tflite" for f in TFLITE), "metadata.json"):
        assert f"wrote {out / name}" in printed, name
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["training_steps"] == 3 and metadata["model_class"] == "VAE" and metadata["score_k"] == K
    # The op lists (TensorFlow's schema) are those of the export made with ai-edge-litert installed.
    for file in TFLITE:
        assert metadata["tflite"][f"{file}.tflite"]["ops"] == representative.metadata["tflite"][f"{file}.tflite"]["ops"]
    # tf.lite's interpreter runs the files.
    z = np.zeros((3, 2), "float32")
    runner = tflite.interpreter(out / "decoder.tflite")
    assert type(runner).__module__.startswith("tensorflow")
    decoded = runner.get_signature_runner("decode")(z=z)
    np.testing.assert_allclose(decoded["probs"], _numpy(model.decode(z))["probs"], atol=FLOAT_ATOL)


@pytest.mark.slow
def test_float16_and_int8_quantization_measured(representative, digits):
    """float16 weights: ~1e-3 relative; full-integer int8: coarser, still ordering examples by score."""
    model, paths = representative.model, representative.paths
    saved_model = paths["saved_model"]
    module = export.ServingModule(model, score_k=K)
    # 70 examples: batches of 32, the last 6 left out (the scorer's inputs must share a batch size).
    calibration = tflite.calibration_data(module, model, digits[0][:70])
    # The module's noise specs give the same seeded draws as metadata.json's inputs.
    sigs = representative.metadata["signatures"]
    for signature in ("score_from_noise", "ancestral_sample_from_noise"):
        from_module = tflite.seeded_noise(module.noise_inputs[signature], 8, 3)
        from_metadata = tflite.seeded_noise(sigs[signature]["inputs"], 8, 3)
        assert list(from_module) == list(from_metadata)
        for name, value in from_metadata.items():
            np.testing.assert_array_equal(from_module[name], value)
    assert [len(inputs["x"]) for inputs in calibration["score_from_noise"]] == [32, 32]
    x = digits[1][:32]
    noise = seeded_noise(
        json.loads(pathlib.Path(paths["metadata"]).read_text())["signatures"]["score_from_noise"]["inputs"],
        K * len(x),
        SCORE_SEED,
    )
    expected = _numpy(scoring.scores(model, x, K, SCORE_SEED))
    z = _numpy(model.encode(x))["loc"]
    probs = _numpy(model.decode(z))["probs"]
    errors = {}
    for quantization in ("float16", "int8"):
        for signature in ("decode", "score_from_noise"):
            content = tflite.convert(saved_model, signature, quantization, calibration[signature])
            assert set(tflite.tflite_ops(content)) <= tflite.builtin_names()
            run = Interpreter(model_content=content).get_signature_runner(signature)
            if signature == "decode":
                errors[quantization, signature] = np.abs(run(z=z)["probs"] - probs).max()
            else:
                got = run(x=x, **noise)["log_px"]
                errors[quantization, signature] = np.abs(got - expected["log_px"]).max()
                # Scores still rank the examples as Keras does.
                assert np.corrcoef(got, expected["log_px"])[0, 1] > (0.999 if quantization == "float16" else 0.9)
    assert errors["float16", "decode"] < 1e-2 and errors["float16", "score_from_noise"] < 0.5, errors
    assert errors["int8", "decode"] < 0.1, errors


def _example(name):
    """Import one of the ``export/`` scripts as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "export" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_examples(representative, tmp_path, capsys):
    """The clients in export/ on the representative export (export_model.py: tests/test_cli.py)."""
    out = pathlib.Path(representative.paths["metadata"]).parent
    assert _example("saved_model_client").main([str(out), "--out", str(tmp_path / "grid.png"), "--n", "4"]) == 0
    with Image.open(tmp_path / "grid.png") as image:
        assert image.size == (32, 32)  # 4 x 4 digits of 8 x 8 pixels.
    printed = capsys.readouterr().out
    assert "ancestral_sample: x [4, 64], x_mean [4, 64], z [4, 2]" in printed
    # The seeded signatures are Keras's draws and scores: model.sample(4, seed=0), scoring.scores(..., seed=0).
    drawn = representative.model.sample(4, seed=0)["x"]
    expected = _numpy(scoring.scores(representative.model, drawn, K, 0))
    for name in ("elbo", "log_px"):
        printed_mean = float(re.search(rf"score {name} \(k = {K}\): mean (\S+),", printed)[1])
        assert printed_mean == pytest.approx(expected[name].mean(), abs=0.006), name
    assert _example("tflite_client").main([str(out), "--n", "3"]) == 0
    printed = capsys.readouterr().out
    assert "probs" in printed and "(3, 64)" in printed and "scale" in printed
    assert re.search(r"ancestral_sample_from_noise:\n(  .*\n)*  x +\(3, 64\)", printed)
    match = re.search(rf"score_from_noise \(k = {K}\):\n  elbo +\(3,\) +\[(.*)\]\n  log_px +\(3,\) +\[(.*)\]", printed)
    elbo, log_px = (np.array(group.split(), float) for group in match.groups())
    assert np.all(log_px >= elbo) and np.all(elbo < 0), (elbo, log_px)


@pytest.mark.slow
def test_export_examples_run_as_scripts(trained, tmp_path):
    def run(name, *args):
        proc = subprocess.run(
            [sys.executable, str(REPO / "export" / name), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(_ENV, MPLBACKEND="Agg"),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    out = tmp_path / "exported"
    assert "wrote" in run("export_model.py", trained[0], "--out", out, "--quantize", "dynamic")
    assert "wrote" in run("saved_model_client.py", out, "--out", tmp_path / "grid.png")
    assert "(4, 64)" in run("tflite_client.py", out, "--quantization", "dynamic")
