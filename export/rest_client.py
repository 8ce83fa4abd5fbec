"""Call an exported model served by TF Serving over its REST predict API (numpy and the standard library).

Builds the JSON request bodies of every signature in TF Serving's two
formats, posts them, and reads the responses back into numpy arrays named
after the signature's outputs:

- columnar (``"inputs"``): ``{"signature_name": s, "inputs": {name: value, ...}}``
  -> ``{"outputs": {name: value, ...}}`` (a bare value when the signature has
  one output). Works for every signature.
- row (``"instances"``): one JSON object per example,
  ``{"instances": [{name: row, ...}, ...]}`` (bare rows when the signature has
  one input) -> ``{"predictions": [...]}``, one object (or bare value) per
  example. Only when every input has the same batch size: ``decode``,
  ``serving_default``, ``encode`` and ``ancestral_sample_from_noise``; the
  scalar ``num_samples``/``seed`` inputs and the ``k * batch`` noise rows of
  ``score_from_noise`` rule it out for the others.

Inputs are made from ``metadata.json`` (shapes, ``score_k``, the noise
distributions). Run, with ``tensorflow/serving`` serving ``saved_model/`` as
model ``vae`` (see export/README.md)::

    python export/rest_client.py exported --url http://localhost:8501/v1/models/vae
    python export/rest_client.py exported --format row --signature decode --dry-run   # print the body only
"""

import argparse
import json
import os
import urllib.request

import numpy as np

FORMATS = ("columnar", "row")


def example_inputs(metadata, signature, batch=2, seed=0):
    """Valid inputs of ``signature`` for an export described by ``metadata``: name -> numpy array.

    ``z`` is drawn from N(0, I) (fair coin flips for binary top layers),
    ``x`` is zeros (a valid value of every observation family), noise inputs
    are drawn from the distribution ``metadata.json`` names, with ``k * batch``
    rows for ``score_from_noise``.

    Args:
        metadata: the parsed ``metadata.json``.
        signature: a signature name.
        batch: examples (or samples) per request.
        seed: seed of the random inputs, and the ``seed`` input.

    Returns:
        dict name -> numpy array (0-d for scalar inputs).
    """
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, info in metadata["signatures"][signature]["inputs"].items():
        dtype = np.dtype(info["dtype"])
        if name == "num_samples":
            inputs[name] = np.array(batch, dtype)
        elif name == "seed":
            inputs[name] = np.array(seed, dtype)
        elif name == "z":
            shape = (batch, metadata["latent_dim"])
            binary = metadata["latent_families"][-1] == "bernoulli"
            inputs[name] = (rng.random(shape) < 0.5 if binary else rng.standard_normal(shape)).astype(dtype)
        elif name == "x":
            inputs[name] = np.zeros((batch, metadata["input_dim"]), dtype)
        else:  # A noise input.
            rows = batch * metadata["score_k"] if signature == "score_from_noise" else batch
            shape = (rows, *info["shape"][1:])
            uniform = info["distribution"].startswith("uniform")
            inputs[name] = (rng.random(shape) if uniform else rng.standard_normal(shape)).astype(dtype)
    return inputs


def row_format_applies(inputs):
    """Whether every input has a batch dimension of the same size (TF Serving's row format)."""
    sizes = {np.shape(value)[0] if np.ndim(value) else None for value in inputs.values()}
    return len(sizes) == 1 and None not in sizes


def request_body(signature, inputs, format="columnar"):
    """The JSON-ready body of a predict request.

    Args:
        signature: the signature name (``"signature_name"`` of the request).
        inputs: dict name -> array-like, as the signature takes them.
        format: ``"columnar"`` (``"inputs"``) or ``"row"`` (``"instances"``).

    Returns:
        dict; ``json.dumps`` it.

    Raises:
        ValueError: unknown ``format``, or ``"row"`` for inputs without one
            shared batch size.

    Example:

    ```python
    request_body("decode", {"z": np.zeros((2, 2))}, "row")
    # {"signature_name": "decode", "instances": [[0.0, 0.0], [0.0, 0.0]]}
    ```
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    if format == "columnar":
        return {"signature_name": signature, "inputs": {name: value.tolist() for name, value in arrays.items()}}
    if not row_format_applies(arrays):
        shapes = {name: list(value.shape) for name, value in arrays.items()}
        raise ValueError(
            f"The row format needs every input of {signature!r} to have the same batch size, got shapes "
            f"{shapes} (scalars have none); use format='columnar'."
        )
    if len(arrays) == 1:
        (value,) = arrays.values()
        return {"signature_name": signature, "instances": value.tolist()}
    size = len(next(iter(arrays.values())))
    instances = [{name: value[i].tolist() for name, value in arrays.items()} for i in range(size)]
    return {"signature_name": signature, "instances": instances}


def parse_response(body, outputs):
    """A predict response as numpy arrays.

    Args:
        body: the parsed JSON response (``{"outputs": ...}``,
            ``{"predictions": ...}`` or ``{"error": ...}``).
        outputs: the signature's outputs from ``metadata.json``: name ->
            ``{"dtype", ...}`` (names and dtypes of the arrays).

    Returns:
        dict name -> numpy array.

    Raises:
        RuntimeError: the server answered with an error.
    """
    if "error" in body:
        raise RuntimeError(f"TF Serving answered: {body['error']}")
    names = sorted(outputs)
    if "outputs" in body:
        values = body["outputs"] if len(names) > 1 else {names[0]: body["outputs"]}
    else:
        rows = body["predictions"]
        if len(names) == 1:
            values = {names[0]: rows}
        else:
            values = {name: [row[name] for row in rows] for name in names}
    return {name: np.asarray(values[name], dtype=outputs[name]["dtype"]) for name in names}


def predict(url, body, timeout=30.0):
    """POST ``body`` to ``{url}:predict`` (``url`` like ``http://host:8501/v1/models/vae``); the parsed JSON answer."""
    request = urllib.request.Request(
        f"{url}:predict", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())  # Python's json reads TF Serving's NaN and Infinity tokens.


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", help="directory written by export_model (its metadata.json)")
    parser.add_argument("--url", default="http://localhost:8501/v1/models/vae", help="the served model's URL")
    parser.add_argument("--format", default="columnar", choices=FORMATS, help="request format")
    parser.add_argument("--signature", action="append", help="signature to call (repeat; default: all)")
    parser.add_argument("--batch", type=int, default=2, help="examples per request")
    parser.add_argument("--dry-run", action="store_true", help="print the request bodies, send nothing")
    args = parser.parse_args(argv)

    with open(os.path.join(args.export_dir, "metadata.json")) as f:
        metadata = json.load(f)
    for signature in args.signature or sorted(metadata["signatures"]):
        inputs = example_inputs(metadata, signature, batch=args.batch)
        format = args.format if row_format_applies(inputs) else "columnar"
        body = request_body(signature, inputs, format)
        if args.dry_run:
            print(f"{signature} ({format}): {json.dumps(body)}")
            continue
        outputs = parse_response(predict(args.url, body), metadata["signatures"][signature]["outputs"])
        shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in outputs.items())
        print(f"{signature} ({format}): {shapes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
