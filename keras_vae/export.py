"""Export trained models for serving: SavedModel, TFLite/LiteRT and metadata.

:func:`export_model` writes to ``out_dir``:

- ``saved_model/``: a SavedModel with three named signatures (and
  ``serving_default`` = ``decode``), loadable by ``tf.saved_model.load`` and TF
  Serving without importing keras_vae:

  - ``decode``: ``z`` float32 ``[batch, latent_dim]`` -> the observation
    model's parameters (e.g. ``logits``/``probs`` for Bernoulli, ``loc``/``scale``
    for Gaussian) and ``mean``. ``z`` is the top stochastic layer ``h_M``;
    lower layers are set to their conditional means.
  - ``encode``: ``x`` float32 ``[batch, input_dim]`` -> the posterior parameters
    of ``h_M`` (``loc`` and ``scale`` or ``scale_tril``; ``logits`` for binary
    units), lower layers at their posterior means.
  - ``sample``: ``num_samples`` int32 and ``seed`` int64 scalars -> ``z`` drawn
    from the prior of ``h_M`` with stateless random ops (the same seed gives
    the same draw) and ``x_mean``, the ``decode`` mean at ``z``.

  Input shapes and dtypes are fixed (batch dynamic): other inputs are
  rejected. ``decode`` and ``encode`` contain no random ops.
- ``decoder.tflite``, ``encoder.tflite``: the ``decode`` and ``encode``
  signatures in float32 with TFLite builtin ops only (conversion fails rather
  than fall back to Flex ops); with ``quantize="dynamic"`` also
  ``decoder_dynamic.tflite`` and ``encoder_dynamic.tflite`` (int8 weights,
  float activations; TFLite leaves weight tensors under 1024 values in float).
- ``metadata.json``: latent size, observation family, input scaling, versions
  and every signature's documented inputs and outputs (a copy is in
  ``saved_model/assets/``).

The command line (``keras-vae export MODEL --out DIR``) is in
:mod:`keras_vae.cli.export`.
"""

import datetime
import json
import os
import pathlib
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_vae import models

FORMATS = ("saved_model", "tflite", "both")
QUANTIZATIONS = ("dynamic",)
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"
#: TFLite file stem of each converted signature.
TFLITE_FILES = {"decode": "decoder", "encode": "encoder"}
#: Every name export_model may write (what ``overwrite=True`` replaces).
ARTIFACTS = (SAVED_MODEL_DIR, METADATA_FILE) + tuple(
    f"{stem}{suffix}.tflite" for stem in TFLITE_FILES.values() for suffix in ("", "_dynamic")
)

_RANDOM_OP = re.compile("Random|Rng|Multinomial|TruncatedNormal|Shuffle")


class ExportError(ValueError):
    """The model or the output directory cannot be exported to as asked."""


# ---------------------------------------------------------------------------
# Signatures.
# ---------------------------------------------------------------------------


class ServingModule(tf.Module):
    """The exported object: ``decode``, ``encode`` and ``sample`` tf.functions.

    The Keras model is not tracked, only the variables its functions read,
    so the SavedModel needs neither keras_vae nor Keras to load and the TFLite
    converter can freeze every weight.
    """

    def __init__(self, model):
        super().__init__(name="keras_vae")

        def decode(z):
            """Observation parameters and ``mean`` of p(x | h_1) at top-layer codes ``z``."""
            return dict(model.decode(z))

        def encode(x):
            """Posterior parameters of the top layer (lower layers at their means)."""
            return dict(model.encode(x))

        def sample(num_samples, seed):
            """``z`` from the prior of ``h_M`` (stateless, seeded) and ``x_mean`` = decode mean."""
            check = tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0")
            with tf.control_dependencies([check]):
                prior = model.prior(tf.zeros(tf.stack([num_samples, 1])))
            # The prior head draws from its own family with a stateless key.
            key = tf.stack([seed, tf.constant(0, tf.int64)])
            z = model.prior.sample(prior, key)
            return {"z": z, "x_mean": decode(z)["mean"]}

        spec = tf.TensorSpec
        self.decode = tf.function(
            decode, input_signature=[spec([None, model.latent_dim], tf.float32, name="z")], autograph=False
        )
        self.encode = tf.function(
            encode, input_signature=[spec([None, model.input_dim], tf.float32, name="x")], autograph=False
        )
        self.sample = tf.function(
            sample,
            input_signature=[spec([], tf.int32, name="num_samples"), spec([], tf.int64, name="seed")],
            autograph=False,
        )
        variables = {}
        for fn in self.signatures().values():
            variables.update({id(v): v for v in fn.variables})
        self.model_variables = list(variables.values())

    def signatures(self):
        """Signature name -> concrete function, ``serving_default`` = ``decode``."""
        decode = self.decode.get_concrete_function()
        return {
            "decode": decode,
            "sample": self.sample.get_concrete_function(),
            "encode": self.encode.get_concrete_function(),
            "serving_default": decode,
        }


def op_types(concrete_function):
    """Set of op types in a concrete function's graph, nested functions included."""
    graph_def = concrete_function.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types.update(node.op for node in function.node_def)
    return types


def random_op_types(concrete_function):
    """The random-number op types in a concrete function's graph."""
    return sorted(t for t in op_types(concrete_function) if _RANDOM_OP.search(t))


# ---------------------------------------------------------------------------
# TFLite.
# ---------------------------------------------------------------------------


def _schema():
    """The TFLite flatbuffer schema shipped with ai-edge-litert."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:
        raise ImportError(
            "TFLite export checks the converted files with ai-edge-litert: pip install 'keras-vae[export]'."
        ) from err
    return schema_py_generated


def tflite_ops(content):
    """Operator names of a ``.tflite`` flatbuffer (bytes): builtin names, custom codes.

    Flex ops appear as custom codes starting with ``"Flex"``.
    """
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(content, 0)
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(code.CustomCode().decode())
        else:
            ops.add(names[builtin])
    return sorted(ops)


def _builtin_names():
    return {k for k in vars(_schema().BuiltinOperator) if not k.startswith("_")} - {"CUSTOM"}


def _convert(saved_model_dir, signature, quantize):
    """One SavedModel signature as ``.tflite`` bytes, TFLite builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[signature])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        content = converter.convert()
    except Exception as err:  # The converter raises its own ConverterError.
        lines = [line.strip() for line in str(err).splitlines()]
        detail = next((line for line in lines if line.startswith("TF Select ops:")), lines[0][:500])
        raise RuntimeError(
            f"Converting the {signature!r} signature to TFLite with builtin ops only failed "
            f"({detail}). The model uses TensorFlow ops that TFLite has no builtin kernel for; "
            "export with format='saved_model' or replace those layers."
        ) from err
    custom = [op for op in tflite_ops(content) if op not in _builtin_names()]
    if custom:
        raise RuntimeError(f"The {signature!r} TFLite model contains non-builtin ops {custom}.")
    return content


# ---------------------------------------------------------------------------
# Metadata.
# ---------------------------------------------------------------------------

def _observation_info(observation):
    """What the observation head says of itself, with the columns it models."""
    info = {"columns": [0, observation.event_size]}
    info.update(observation.describe())
    info.pop("parameters", None)
    info.pop("distribution", None)
    for component in info.get("components", ()):
        component.pop("parameters", None)
        component.pop("distribution", None)
    return info


def _spec(tensor_or_spec):
    return {"shape": tensor_or_spec.shape.as_list(), "dtype": tensor_or_spec.dtype.name}


def _signature_info(function, doc, input_docs, output_docs):
    specs = function.structured_input_signature[0]
    inputs = {spec.name: dict(_spec(spec), doc=input_docs[spec.name]) for spec in specs}
    outputs = {
        name: dict(_spec(tensor), doc=output_docs[name]) for name, tensor in sorted(function.structured_outputs.items())
    }
    return {"doc": doc, "inputs": inputs, "outputs": outputs}


def _metadata(model, module, input_scaling):
    import keras_vae

    observation = _observation_info(model.observation)
    obs_outputs = dict(observation.pop("outputs"), mean=(
        "[batch, input_dim] mean of p(x | h_1) (for categorical columns the most probable class index)"
    ))
    lower = (
        f"; the lower stochastic layers h_{model.num_layers - 1}..h_1 are set to their conditional means"
        if model.num_layers > 1
        else ""
    )
    fns = module.signatures()
    prior = model.prior.describe()["distribution"]
    posterior = model.recognition_heads[-1].describe()
    signatures = {
        "decode": _signature_info(
            fns["decode"],
            "Observation model p(x | h_1) at top-layer codes z: its parameters and mean" + lower + ". Deterministic.",
            {"z": "top stochastic layer h_M, [batch, latent_dim]"},
            obs_outputs,
        ),
        "encode": _signature_info(
            fns["encode"],
            "Posterior q(h_M | x) of the top stochastic layer"
            + (", lower layers at their posterior means" if model.num_layers > 1 else "")
            + ". Deterministic.",
            {"x": f"data [batch, input_dim], scaled as in training: {observation['input_scaling']}"},
            {name: f"{doc} of h_M" for name, doc in posterior["parameters"].items()},
        ),
        "sample": _signature_info(
            fns["sample"],
            f"Generation: z ~ p(h_M) = {prior} drawn with stateless random ops seeded by 'seed' "
            "(same seed, same draw), then decode(z). Outputs the codes and the decode mean.",
            {"num_samples": "number of samples n >= 0", "seed": "seed of the draw"},
            {"z": "[n, latent_dim] the sampled codes h_M", "x_mean": "[n, input_dim] decode(z)['mean']"},
        ),
    }
    signatures["serving_default"] = dict(signatures["decode"], doc="Alias of 'decode'.")
    optimizer = getattr(model, "optimizer", None)
    return {
        "format_version": 1,
        "model_class": type(model).__name__,
        "input_dim": model.input_dim,
        "latent_dim": model.latent_dim,
        "latent_dims": list(model.latent_dims),
        "latent_families": list(model.latent),
        "posterior_covariance": posterior.get("covariance"),
        "prior": prior,
        "objective": model.objective,
        "observation": observation,
        "input_scaling": input_scaling or observation["input_scaling"],
        "training_steps": 0 if optimizer is None else int(optimizer.iterations),
        "versions": {"keras_vae": keras_vae.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signatures": signatures,
    }


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------


def load_model(path):
    """Load a ``.keras`` file saved by keras_vae (its classes are registered by this module's imports)."""
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    return keras.saving.load_model(path)


def _check_out_dir(out, overwrite):
    if out.exists() and not out.is_dir():
        raise ExportError(f"The output path {out} exists and is not a directory.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(
            f"The output directory {out} is not empty. Choose an empty or new directory, "
            "or pass overwrite=True (--overwrite) to replace a previous export."
        )


def export_model(
    model,
    out_dir,
    format="both",
    quantize=None,
    overwrite=False,
    allow_untrained=False,
    input_scaling=None,
):
    """Export a trained model's decoder and encoder for serving.

    Args:
        model: a ``keras_vae.HelmholtzMachine`` (or ``VAE``), or a path to one
            saved as ``.keras``.
        out_dir: output directory; created if missing, must be empty unless
            ``overwrite``.
        format: ``"saved_model"``, ``"tflite"`` or ``"both"``.
        quantize: None, or ``"dynamic"`` to also write dynamic-range quantised
            ``.tflite`` files.
        overwrite: replace the files of a previous export in ``out_dir``
            (only the names in ``ARTIFACTS`` are removed; other files stay).
        allow_untrained: export even if the optimizer has taken no step.
        input_scaling: text for ``metadata.json`` describing how data must be
            scaled before ``encode`` (default: the observation family's support).

    Returns:
        dict of written paths: ``"metadata"`` and, per format,
        ``"saved_model"``, ``"decoder"``, ``"encoder"`` (and
        ``"decoder_dynamic"``, ``"encoder_dynamic"`` when quantised).

    Raises:
        ExportError: untrained model, non-empty ``out_dir``, bad arguments.
        RuntimeError: a signature needs ops TFLite has no builtin for.
    """
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantize {quantize!r}; choose None or one of {QUANTIZATIONS}.")
    if quantize and format == "saved_model":
        raise ExportError("quantize applies to TFLite files; use format='tflite' or 'both'.")
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(model, models.HelmholtzMachine):
        raise ExportError(f"Expected a keras_vae HelmholtzMachine or VAE, got {type(model).__name__}.")
    optimizer = getattr(model, "optimizer", None)
    if not allow_untrained and (optimizer is None or int(optimizer.iterations) == 0):
        raise ExportError(
            "The model has not been trained (its optimizer has taken no step), so the export would "
            "serve its random initial weights. Train it (model.fit) first, or pass "
            "allow_untrained=True (--allow-untrained) to export it anyway."
        )
    out = pathlib.Path(out_dir)
    _check_out_dir(out, overwrite)

    module = ServingModule(model)
    signatures = module.signatures()
    for name in ("decode", "encode"):
        found = random_op_types(signatures[name])
        if found:
            raise RuntimeError(
                f"The {name!r} graph contains random ops {found}; a network layer samples at "
                "inference (e.g. noise layers that ignore training=False)."
            )
    metadata = _metadata(model, module, input_scaling)

    with tempfile.TemporaryDirectory(prefix="keras-vae-export-") as tmp:
        staging = pathlib.Path(tmp)
        metadata_path = staging / METADATA_FILE
        metadata_path.write_text(json.dumps(metadata, indent=2))
        module.metadata = tf.saved_model.Asset(str(metadata_path))
        tf.saved_model.save(module, str(staging / SAVED_MODEL_DIR), signatures=signatures)

        written = {}
        if format in ("saved_model", "both"):
            written["saved_model"] = SAVED_MODEL_DIR
        if format in ("tflite", "both"):
            metadata["tflite"] = {}
            for signature, stem in TFLITE_FILES.items():
                for quantization in (None, quantize) if quantize else (None,):
                    key = stem if quantization is None else f"{stem}_{quantization}"
                    content = _convert(staging / SAVED_MODEL_DIR, signature, quantization)
                    (staging / f"{key}.tflite").write_bytes(content)
                    written[key] = f"{key}.tflite"
                    metadata["tflite"][f"{key}.tflite"] = {
                        "signature": signature,
                        "quantization": quantization or "none",
                        "ops": tflite_ops(content),
                        "size_bytes": len(content),
                    }
        metadata["files"] = dict(written, metadata=METADATA_FILE)
        text = json.dumps(metadata, indent=2)
        metadata_path.write_text(text)
        # The asset copied into the SavedModel gets the final text too.
        (staging / SAVED_MODEL_DIR / "assets" / METADATA_FILE).write_text(text)
        written["metadata"] = METADATA_FILE

        out.mkdir(parents=True, exist_ok=True)
        for name in ARTIFACTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for name in written.values():
            shutil.move(str(staging / name), str(out / name))
    return {key: str(out / name) for key, name in written.items()}

