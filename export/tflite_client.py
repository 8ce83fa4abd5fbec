"""Run the exported .tflite files with LiteRT (no TensorFlow): decode, encode, sample and score.

Draws n codes from N(0, I) (binary top layers: fair coin flips) and decodes
them with decoder.tflite, encodes the decoded means with encoder.tflite,
then samples n examples on the device with sampler.tflite and scores them
with scorer.tflite. The sampler and scorer contain no random ops: their
noise inputs are drawn here with numpy, from the distribution
``metadata.json`` names for each (standard normal or uniform on [0, 1)),
as any on-device random generator would draw them. Prints every output's
shape and first values:

    python export/tflite_client.py exported --n 4
    python export/tflite_client.py exported --quantization int8   # the *_int8.tflite files

Uses ``ai_edge_litert.interpreter.Interpreter`` (``pip install ai-edge-litert``)
and its signature runner, which takes inputs and returns outputs by the
signature's names and resizes the dynamic batch dimension on every call.
"""

import argparse
import json
import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter

QUANTIZATIONS = ("dynamic", "float16", "int8")


def signature_runner(path, signature):
    """A callable running one signature of a .tflite file: ``runner(z=array) -> dict``."""
    return Interpreter(model_path=path).get_signature_runner(signature)


def draw_noise(inputs, rows, rng):
    """The noise inputs of a ``*_from_noise`` signature: name -> float32 ``[rows, ...]``.

    Args:
        inputs: the signature's inputs from ``metadata.json``.
        rows: rows of every noise input (samples for the sampler, ``k * batch`` for the scorer).
        rng: a ``numpy.random.Generator``.
    """
    noise = {}
    for name, info in inputs.items():
        if name.startswith("noise_"):
            shape = (rows, *info["shape"][1:])
            uniform = info["distribution"].startswith("uniform")
            noise[name] = (rng.random(shape) if uniform else rng.standard_normal(shape)).astype(np.float32)
    return noise


def show(name, outputs):
    print(f"{name}:")
    for key, value in sorted(outputs.items()):
        print(f"  {key:10s} {str(value.shape):14s} {np.array2string(value.ravel()[:6], precision=3)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", help="directory written by export_model")
    parser.add_argument("--n", type=int, default=4, help="number of codes to decode and of examples to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantization", default=None, choices=QUANTIZATIONS, help="use the quantised files")
    args = parser.parse_args(argv)

    with open(os.path.join(args.export_dir, "metadata.json")) as f:
        metadata = json.load(f)
    suffix = f"_{args.quantization}" if args.quantization else ""

    def runner(stem, signature):
        return signature_runner(os.path.join(args.export_dir, f"{stem}{suffix}.tflite"), signature)

    rng = np.random.default_rng(args.seed)
    shape = (args.n, metadata["latent_dim"])
    if metadata["latent_families"][-1] == "bernoulli":
        z = (rng.random(shape) < 0.5).astype(np.float32)
    else:
        z = rng.standard_normal(shape).astype(np.float32)
    decoded = runner("decoder", "decode")(z=z)
    show("decode", decoded)
    show("encode", runner("encoder", "encode")(x=decoded["mean"]))

    # On-device sampling: every layer drawn from noise generated here.
    signatures = metadata["signatures"]
    noise = draw_noise(signatures["ancestral_sample_from_noise"]["inputs"], args.n, rng)
    drawn = runner("sampler", "ancestral_sample_from_noise")(**noise)
    show("ancestral_sample_from_noise", drawn)

    # Anomaly scores of the sampled examples: k posterior samples per example.
    k = metadata["score_k"]
    noise = draw_noise(signatures["score_from_noise"]["inputs"], k * args.n, rng)
    scores = runner("scorer", "score_from_noise")(x=drawn["x"], **noise)
    show(f"score_from_noise (k = {k})", scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
