"""``metadata.json``: what an export holds and how to call each signature.

Everything a serving client needs without keras_vae: sizes, the observation
family (from the heads' ``describe()``), how to scale inputs, the ``score``
sample count, and every signature's inputs and outputs with shapes, dtypes
and a sentence each (noise inputs also name the distribution to draw from).
"""

import datetime

import keras
import tensorflow as tf

FORMAT_VERSION = 2


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
    # A conditional model's "condition" input is documented by build().
    inputs = {spec.name: dict(_spec(spec), **_as_info(input_docs.get(spec.name))) for spec in specs}
    outputs = {
        name: dict(_spec(tensor), doc=output_docs[name]) for name, tensor in sorted(function.structured_outputs.items())
    }
    return {"doc": doc, "inputs": inputs, "outputs": outputs}


def _as_info(doc):
    return doc if isinstance(doc, dict) else {"doc": doc}


def build(model, module, input_scaling):
    """The metadata dict of an export (``tflite`` and ``files`` are added by the exporter).

    Args:
        model: the exported ``HelmholtzMachine``.
        module: its ``ServingModule``.
        input_scaling: text on scaling data, or None for the observation
            family's own description.

    Returns:
        JSON-ready dict.
    """
    import keras_vae

    observation = _observation_info(model.observation)
    shape = ", ".join(str(s) for s in model.input_shape)
    obs_outputs = dict(
        observation.pop("outputs"),
        mean=f"[batch, {shape}] mean of p(x | h_1) (for categorical columns the most probable class index)",
    )
    top = model.num_layers
    lower = (
        f"; the lower stochastic layers h_{top - 1}..h_1 are set to their conditional means" if top > 1 else ""
    )
    fns = module.signatures()
    prior = model.prior.describe()["distribution"]
    posterior = model.recognition_heads[-1].describe()
    k = module.score_k
    x_doc = f"data [batch, {shape}], scaled as in training: {input_scaling or observation['input_scaling']}"
    score_outputs = {
        "elbo": f"[batch] ELBO per example, (1/k) sum_i log w_i over k = {k} posterior samples (nats)",
        "log_px": f"[batch] importance-sampled log p(x), log (1/k) sum_i w_i, k = {k} (nats; the IWAE bound)",
    }
    ancestral_outputs = {f"h_{m}": f"[n, {model.latent_dims[m - 1]}] the draw of h_{m}" for m in range(1, top)}
    ancestral_outputs.update(
        z=f"[n, latent_dim] the draw of h_{top} ~ p(h_{top})",
        x=f"[n, {shape}] the draw of x ~ p(x | h_1)",
        x_mean=f"[n, {shape}] the mean of p(x | h_1) at the drawn h_1",
    )
    noise_docs = {name: {spec.name: info for spec, info in specs} for name, specs in module.noise_inputs.items()}
    seed = "seed of the draw; the i-th random draw uses the stateless seed [seed, i]"
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
            + (", lower layers at their posterior means" if top > 1 else "")
            + ". Deterministic.",
            {"x": x_doc},
            {name: f"{doc} of h_M" for name, doc in posterior["parameters"].items()},
        ),
        "sample": _signature_info(
            fns["sample"],
            f"Generation: z ~ p(h_M) = {prior} drawn with stateless random ops seeded by 'seed' "
            "(same seed, same draw), then decode(z)" + lower + ". Outputs the codes and the decode mean.",
            {"num_samples": "number of samples n >= 0", "seed": "seed of the draw"},
            {"z": "[n, latent_dim] the sampled codes h_M", "x_mean": f"[n, {shape}] decode(z)['mean']"},
        ),
        "score": _signature_info(
            fns["score"],
            f"Anomaly scores: with k = {k} samples h_i ~ q(h | x) (every layer drawn) and "
            "log w_i = log p(x, h_i) - log q(h_i | x), the per-example ELBO and log p(x) estimate. "
            "Equals keras_vae.scoring.scores(model, x, k, seed). Higher is more typical.",
            {"x": x_doc, "seed": seed},
            score_outputs,
        ),
        "score_from_noise": _signature_info(
            fns["score_from_noise"],
            "'score' with its random draws given as inputs (no random ops; the TFLite scorer). "
            "Each noise input has k * batch rows.",
            {"x": x_doc, **noise_docs["score_from_noise"]},
            score_outputs,
        ),
        "ancestral_sample": _signature_info(
            fns["ancestral_sample"],
            f"Ancestral sampling: h_{top} ~ p(h_{top}), then each layer from its conditional "
            + ("p(h_m | h_{m+1}), " if top > 1 else "")
            + "then x ~ p(x | h_1); equals model.sample(num_samples, seed=seed).",
            {"num_samples": "number of samples n >= 0", "seed": seed},
            ancestral_outputs,
        ),
        "ancestral_sample_from_noise": _signature_info(
            fns["ancestral_sample_from_noise"],
            "'ancestral_sample' with its random draws given as inputs (no random ops; the TFLite "
            "sampler). n is the number of rows of every noise input.",
            noise_docs["ancestral_sample_from_noise"],
            ancestral_outputs,
        ),
    }
    if model.condition_dim is not None:
        rows = {"sample": "n", "ancestral_sample": "n", "ancestral_sample_from_noise": "n"}
        for name, info in signatures.items():
            spec = info["inputs"]["condition"]
            spec["doc"] = (
                f"[{rows.get(name, 'batch')}, {model.condition_dim}] condition y of the conditional model "
                "(e.g. one-hot labels), as in training"
            )
    signatures["serving_default"] = dict(signatures["decode"], doc="Alias of 'decode'.")
    optimizer = getattr(model, "optimizer", None)
    return {
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "input_dim": model.input_dim,
        "input_shape": list(model.input_shape),
        "latent_dim": model.latent_dim,
        "latent_dims": list(model.latent_dims),
        "condition_dim": model.condition_dim,
        "latent_families": list(model.latent),
        "posterior_covariance": posterior.get("covariance"),
        "prior": prior,
        "objective": model.objective,
        "observation": observation,
        "input_scaling": input_scaling or observation["input_scaling"],
        "score_k": k,
        "training_steps": 0 if optimizer is None else int(optimizer.iterations),
        "versions": {"keras_vae": keras_vae.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signatures": signatures,
    }
