"""Run the exported decoder.tflite and encoder.tflite with LiteRT (no TensorFlow).

Draws n codes from N(0, I) (binary top layers: fair coin flips), decodes them
with decoder.tflite, encodes the decoded means with encoder.tflite and prints
every output's shape and first row:

    python export/tflite_client.py exported --n 4
    python export/tflite_client.py exported --quantized     # the *_dynamic.tflite files

Uses ``ai_edge_litert.interpreter.Interpreter`` (``pip install ai-edge-litert``)
and its signature runner, which takes inputs and returns outputs by the
signature's names and resizes the dynamic batch dimension on every call.
"""

import argparse
import json
import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def signature_runner(path, signature):
    """A callable running one signature of a .tflite file: ``runner(z=array) -> dict``."""
    return Interpreter(model_path=path).get_signature_runner(signature)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", help="directory written by export_model")
    parser.add_argument("--n", type=int, default=4, help="number of codes to decode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantized", action="store_true", help="use the dynamic-range quantised files")
    args = parser.parse_args(argv)

    with open(os.path.join(args.export_dir, "metadata.json")) as f:
        metadata = json.load(f)
    suffix = "_dynamic" if args.quantized else ""
    decode = signature_runner(os.path.join(args.export_dir, f"decoder{suffix}.tflite"), "decode")
    encode = signature_runner(os.path.join(args.export_dir, f"encoder{suffix}.tflite"), "encode")

    rng = np.random.default_rng(args.seed)
    shape = (args.n, metadata["latent_dim"])
    if metadata["latent_families"][-1] == "bernoulli":
        z = (rng.random(shape) < 0.5).astype(np.float32)
    else:
        z = rng.standard_normal(shape).astype(np.float32)
    decoded = decode(z=z)
    encoded = encode(x=decoded["mean"])
    for name, outputs in (("decode", decoded), ("encode", encoded)):
        print(f"{name}:")
        for key, value in sorted(outputs.items()):
            print(f"  {key:10s} {str(value.shape):14s} {np.array2string(value[0].ravel()[:6], precision=3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
