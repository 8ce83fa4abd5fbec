"""``export_model``: checks, the SavedModel, the TFLite files and ``metadata.json`` in one directory."""

import json
import os
import pathlib
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_vae import models
from keras_vae import scoring
from keras_vae.export import metadata as metadata_lib
from keras_vae.export import signatures as signatures_lib
from keras_vae.export import tflite
from keras_vae.export.tflite import QUANTIZATIONS

FORMATS = ("saved_model", "tflite", "both")
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"
#: TFLite file stem of each converted signature.
TFLITE_FILES = {
    "decode": "decoder",
    "encode": "encoder",
    "score_from_noise": "scorer",
    "ancestral_sample_from_noise": "sampler",
}
#: Every name export_model may write (what ``overwrite=True`` replaces).
ARTIFACTS = (SAVED_MODEL_DIR, METADATA_FILE) + tuple(
    f"{stem}{suffix}.tflite"
    for stem in TFLITE_FILES.values()
    for suffix in ("",) + tuple(f"_{q}" for q in QUANTIZATIONS)
)

_RANDOM_OP = re.compile("Random|Rng|Multinomial|TruncatedNormal|Shuffle")


class ExportError(ValueError):
    """The model or the output directory cannot be exported to as asked."""


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


def _quantizations(quantize):
    """``quantize`` (None, a name or a sequence of names) as a tuple of names."""
    if quantize is None:
        return ()
    names = (quantize,) if isinstance(quantize, str) else tuple(quantize)
    for name in names:
        if name not in QUANTIZATIONS:
            raise ExportError(f"Unknown quantize {name!r}; choose None or some of {QUANTIZATIONS}.")
    return tuple(dict.fromkeys(names))


def _check_arguments(model, format, quantize, representative_data, score_k, allow_untrained):
    if format not in FORMATS:
        raise ExportError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    quantize = _quantizations(quantize)
    if quantize and format == "saved_model":
        raise ExportError("quantize applies to TFLite files; use format='tflite' or 'both'.")
    if "int8" in quantize and representative_data is None:
        raise ExportError(
            "quantize='int8' calibrates activation ranges on example data: pass representative_data "
            "(a few hundred training examples, [n, *input_shape]; --dataset on the command line)."
        )
    if "int8" in quantize:
        conditional = getattr(model, "condition_dim", None) is not None
        pair = isinstance(representative_data, (tuple, list)) and len(representative_data) == 2
        if conditional and not pair:
            raise ExportError(
                "quantize='int8' calibrates a conditional model on examples with their conditions: pass "
                f"representative_data=(x, condition), condition [n, {model.condition_dim}] (one-hot labels)."
            )
        if not conditional and isinstance(representative_data, (tuple, list)):
            raise ExportError(
                "representative_data of an unconditional model is one array of examples, not a tuple or list."
            )
    if isinstance(score_k, bool) or not isinstance(score_k, int) or score_k < 1:
        raise ExportError(f"score_k must be a positive integer, got {score_k!r}.")
    if not isinstance(model, models.HelmholtzMachine):
        raise ExportError(f"Expected a keras_vae HelmholtzMachine or VAE, got {type(model).__name__}.")
    optimizer = getattr(model, "optimizer", None)
    if not allow_untrained and (optimizer is None or int(optimizer.iterations) == 0):
        raise ExportError(
            "The model has not been trained (its optimizer has taken no step), so the export would "
            "serve its random initial weights. Train it (model.fit) first, or pass "
            "allow_untrained=True (--allow-untrained) to export it anyway."
        )
    return quantize


def export_model(
    model,
    out_dir,
    format="both",
    quantize=None,
    overwrite=False,
    allow_untrained=False,
    input_scaling=None,
    score_k=scoring.DEFAULT_K,
    representative_data=None,
):
    """Export a trained model's decoder, encoder, scorer and sampler for serving.

    Args:
        model: a ``keras_vae.HelmholtzMachine`` (or ``VAE``), or a path to one
            saved as ``.keras``.
        out_dir: output directory; created if missing, must be empty unless
            ``overwrite``.
        format: ``"saved_model"``, ``"tflite"`` or ``"both"``.
        quantize: None, or one or several of ``"dynamic"``, ``"float16"``,
            ``"int8"``: also write ``<stem>_<quantize>.tflite`` files.
        overwrite: replace the files of a previous export in ``out_dir``
            (only the names in ``ARTIFACTS`` are removed; other files stay).
        allow_untrained: export even if the optimizer has taken no step.
        input_scaling: text for ``metadata.json`` describing how data must be
            scaled before ``encode`` (default: the observation family's support).
        score_k: posterior samples per example of the ``score`` signatures.
        representative_data: ``[n, *input_shape]`` examples (a few hundred
            training examples) calibrating ``quantize="int8"``; for a
            conditional model the pair ``(x, condition)``, ``condition``
            ``[n, condition_dim]`` (one-hot labels).

    Returns:
        dict of written paths: ``"metadata"`` and, per format,
        ``"saved_model"``, ``"decoder"``, ``"encoder"``, ``"scorer"``,
        ``"sampler"`` (and ``"<stem>_<quantize>"`` when quantised).

    Raises:
        ExportError: untrained model, non-empty ``out_dir``, bad arguments.
        RuntimeError: a signature needs ops TFLite has no builtin for.

    Example:

    ```python
    paths = export_model(model, "exported", quantize="float16")
    paths["scorer"]      # 'exported/scorer.tflite'
    ```
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    quantize = _check_arguments(model, format, quantize, representative_data, score_k, allow_untrained)
    out = pathlib.Path(out_dir)
    _check_out_dir(out, overwrite)

    module = signatures_lib.ServingModule(model, score_k=score_k)
    signatures = module.signatures()
    for name in signatures_lib.DETERMINISTIC:
        found = random_op_types(signatures[name])
        if found:
            raise RuntimeError(
                f"The {name!r} graph contains random ops {found}; a network layer samples at "
                "inference (e.g. noise layers that ignore training=False)."
            )
    metadata = metadata_lib.build(model, module, input_scaling)
    calibration = None
    if "int8" in quantize:
        conditional = getattr(model, "condition_dim", None) is not None
        x, condition = representative_data if conditional else (representative_data, None)
        calibration = tflite.calibration_data(module, model, x, condition=condition)

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
                for quantization in (None, *quantize):
                    key = stem if quantization is None else f"{stem}_{quantization}"
                    representative = calibration and calibration[signature]
                    content = tflite.convert(staging / SAVED_MODEL_DIR, signature, quantization, representative)
                    (staging / f"{key}.tflite").write_bytes(content)
                    written[key] = f"{key}.tflite"
                    metadata["tflite"][f"{key}.tflite"] = {
                        "signature": signature,
                        "quantization": quantization or "none",
                        "ops": tflite.tflite_ops(content),
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
