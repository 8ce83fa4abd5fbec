"""TFLite conversion with builtin ops only, quantisation, and reading ``.tflite`` files.

:func:`convert` turns one SavedModel signature into ``.tflite`` bytes:

- ``None``: float32;
- ``"dynamic"``: dynamic-range quantisation (int8 weights, float
  activations; TFLite leaves weight tensors under 1024 values in float);
- ``"float16"``: float16 weights, dequantised to float32 when loaded;
- ``"int8"``: full-integer quantisation, every op int8 with activation
  ranges calibrated on a representative dataset; inputs and outputs stay
  float32 (quantised and dequantised at the edges).

The flatbuffer schema and interpreter come from ai-edge-litert when it is
installed and from TensorFlow (``tf.lite``) otherwise, so exporting needs
only ``pip install keras-vae``.
"""

import numpy as np
import tensorflow as tf

from keras_vae import heads

QUANTIZATIONS = ("dynamic", "float16", "int8")


def schema():
    """The TFLite flatbuffer schema module: ai-edge-litert's, else TensorFlow's copy."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        from tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def interpreter(path):
    """A TFLite interpreter of the file at ``path``: LiteRT's, else ``tf.lite.Interpreter``.

    Args:
        path: a ``.tflite`` file.

    Returns:
        an interpreter; ``interpreter(path).get_signature_runner("decode")(z=z)``
        runs a signature by its input and output names.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def tflite_ops(content):
    """Operator names of a ``.tflite`` flatbuffer (bytes): builtin names, custom codes.

    Flex ops appear as custom codes starting with ``"Flex"``.
    """
    module = schema()
    names = {v: k for k, v in vars(module.BuiltinOperator).items() if not k.startswith("_")}
    model = module.Model.GetRootAsModel(content, 0)
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == module.BuiltinOperator.CUSTOM:
            ops.add(code.CustomCode().decode())
        else:
            ops.add(names[builtin])
    return sorted(ops)


def builtin_names():
    """Every TFLite builtin operator name."""
    return {k for k in vars(schema().BuiltinOperator) if not k.startswith("_")} - {"CUSTOM"}


def convert(saved_model_dir, signature, quantization=None, representative=None):
    """One SavedModel signature as ``.tflite`` bytes, TFLite builtin ops only.

    Args:
        saved_model_dir: the SavedModel directory.
        signature: the signature key.
        quantization: None or one of ``QUANTIZATIONS``.
        representative: for ``"int8"``, a list of input dicts (name -> numpy
            array) of the signature, the calibration data.

    Returns:
        bytes.

    Raises:
        RuntimeError: the signature needs ops TFLite has no builtin (or, for
            int8, no integer) kernel for.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[signature])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if not representative:
            raise ValueError("int8 quantisation needs representative data (representative_data=...).")
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: (dict(inputs) for inputs in representative)
    try:
        content = converter.convert()
    except Exception as err:  # The converter raises its own ConverterError.
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if line.startswith("TF Select ops:")), lines[0][:500] if lines else "")
        kind = "int8 kernels" if quantization == "int8" else "builtin ops only"
        raise RuntimeError(
            f"Converting the {signature!r} signature to TFLite with {kind} failed ({detail}). "
            "The model uses TensorFlow ops that TFLite has no such kernel for; export with "
            "format='saved_model', another quantisation, or replace those layers."
        ) from err
    custom = [op for op in tflite_ops(content) if op not in builtin_names()]
    if custom:
        raise RuntimeError(f"The {signature!r} TFLite model contains non-builtin ops {custom}.")
    return content


def noise_like(specs, rows, rng):
    """Noise inputs of the ``*_from_noise`` signatures: name -> ``[rows, ...]`` float32 array.

    Args:
        specs: ``ServingModule.noise_inputs[signature]``.
        rows: the batch of every noise input.
        rng: a ``numpy.random.Generator``.
    """
    out = {}
    for spec, info in specs:
        shape = (rows, *spec.shape[1:])
        if info["distribution"].startswith("uniform"):
            out[spec.name] = rng.random(shape, dtype=np.float32)
        else:
            out[spec.name] = rng.standard_normal(shape, dtype=np.float32)
    return out


def seeded_noise(inputs, rows, seed):
    """The noise the seeded signature draws: what makes ``*_from_noise`` repeat it exactly.

    Draw ``i`` (in the order of the noise inputs) is
    ``keras_vae.heads.random_normal(shape, [seed, i])`` (or ``random_uniform``),
    the draw of ``score(x, seed)`` or ``ancestral_sample(n, seed)``; so
    ``score_from_noise(x, **seeded_noise(inputs, k * batch, seed))`` equals
    ``score(x, seed)`` and ``keras_vae.scoring.scores(model, x, k, seed)``.

    Args:
        inputs: the signature's inputs as ``metadata.json`` lists them
            (``metadata["signatures"][name]["inputs"]``; inputs without a
            ``distribution``, such as ``x``, are skipped), or
            ``ServingModule.noise_inputs[name]``.
        rows: the batch of every noise input (``k * batch`` for the scorer).
        seed: the seed of the seeded signature.

    Returns:
        dict name -> float32 ``[rows, ...]`` numpy array.

    Example:

    ```python
    inputs = metadata["signatures"]["score_from_noise"]["inputs"]
    scorer(x=x, **seeded_noise(inputs, k * len(x), seed=0))   # = scoring.scores(model, x, k, seed=0)
    ```
    """
    if isinstance(inputs, dict):
        noise = [(name, info["shape"], info) for name, info in inputs.items() if "distribution" in info]
    else:
        noise = [(spec.name, spec.shape.as_list(), info) for spec, info in inputs]
    out = {}
    for i, (name, shape, info) in enumerate(noise):
        draw = heads.random_uniform if info["distribution"].startswith("uniform") else heads.random_normal
        out[name] = draw([rows, *shape[1:]], tf.constant([seed, i], tf.int64)).numpy()
    return out


def calibration_data(module, model, x, batch_size=32, seed=0, condition=None):
    """Representative inputs of every converted signature, from data ``x``.

    ``encode`` and ``score_from_noise`` see ``x`` (with noise drawn as the
    signature documents); ``decode`` sees the codes it serves, posterior
    means of ``x`` and draws from the prior; the sampler sees its noise.
    A conditional model's signatures also see each example's condition.
    Every batch has ``batch_size`` examples (the last ``len(x) % batch_size``
    are left out; all of ``x`` when it is shorter): TFLite's calibrator
    fails on the scorer when its inputs change batch size from one
    calibration batch to the next.

    Args:
        module: the ``ServingModule``.
        model: its model.
        x: ``[n, *input_shape]`` float32 data, scaled as in training.
        batch_size: examples per calibration batch.
        seed: seed of the noise.
        condition: ``[n, condition_dim]`` float32 conditions of ``x`` (one-hot
            labels), for a conditional model only.

    Returns:
        signature name -> list of input dicts.
    """
    x = np.asarray(x, np.float32)
    if x.shape[1:] != tuple(model.input_shape) or not len(x):
        shape = ", ".join(str(s) for s in model.input_shape)
        raise ValueError(f"representative_data must be [n, {shape}] with n >= 1, got shape {x.shape}.")
    k_cond = getattr(model, "condition_dim", None)
    if (k_cond is None) != (condition is None):
        raise ValueError(
            "a conditional model calibrates on (x, condition) pairs, an unconditional one on x alone; "
            f"the model's condition_dim is {k_cond} and a condition was {'not ' if condition is None else ''}given."
        )
    if condition is not None:
        condition = np.asarray(condition, np.float32)
        if condition.shape != (len(x), k_cond):
            raise ValueError(
                f"the condition must be [{len(x)}, {k_cond}] for x of {len(x)} rows, got {condition.shape}."
            )
    rng = np.random.default_rng(seed)
    data = {name: [] for name in ("decode", "encode", "score_from_noise", "ancestral_sample_from_noise")}
    k = module.score_k
    if len(x) > batch_size:
        x = x[: len(x) - len(x) % batch_size]
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        b = len(batch)
        c = {} if condition is None else {"condition": condition[start : start + b]}
        data["encode"].append({"x": batch, **c})
        means = np.asarray(model.posterior_mean(batch, c.get("condition")), np.float32)
        drawn = module.sample(tf.constant(b), tf.constant(seed + start, tf.int64), *c.values())
        data["decode"] += [{"z": means, **c}, {"z": drawn["z"].numpy(), **c}]
        data["score_from_noise"].append(
            {"x": batch, **c, **noise_like(module.noise_inputs["score_from_noise"], k * b, rng)}
        )
        data["ancestral_sample_from_noise"].append(
            {**c, **noise_like(module.noise_inputs["ancestral_sample_from_noise"], b, rng)}
        )
    return data
