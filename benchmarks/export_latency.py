"""Latency of exported models: SavedModel vs TFLite/LiteRT (float and dynamic-range quantised).

Trains a VAE with ``keras-vae train``'s default architecture (64-200-200-[16],
Bernoulli pixels) on the bundled 8x8 digits for ``--epochs`` epochs, or loads
``--model``; exports it with ``keras_vae.export.export_model(format="both",
quantize="dynamic")`` and prints, for ``decode`` and ``encode`` at batch 1 and
100, the median wall time of one call over ``--repeats`` calls (after a
warm-up), plus the size of every exported file. Rows:

- ``keras eager``: ``model.decode`` / ``model.encode`` in Python (reference);
- ``saved_model``: ``tf.saved_model.load(...).signatures[name](...)``;
- ``tflite float`` / ``tflite dynamic``: the ``.tflite`` files through
  ``ai_edge_litert``'s signature runner (which resizes the batch each call).

Every call includes converting its outputs to numpy. Run::

    python benchmarks/export_latency.py
    python benchmarks/export_latency.py --model runs/vae/model.keras --repeats 500
"""

import argparse
import functools
import os
import pathlib
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_vae
from keras_vae import datasets
from keras_vae import export


def median_ms(fn, repeats, warmup=10):
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def to_numpy(fn, *args, **kwargs):
    """``fn``'s dict of tensors as numpy arrays (so that a timed call includes the copy out)."""
    return {k: v.numpy() for k, v in fn(*args, **kwargs).items()}


def train(epochs, seed):
    keras.utils.set_random_seed(seed)
    x, _ = datasets.load_arrays("digits", "train")
    model = keras_vae.VAE(x.shape[1], latent_dim=16, hidden_dims=(200, 200), seed=seed)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=epochs, batch_size=100, verbose=0)
    return model


def size(path):
    path = pathlib.Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a trained .keras file (default: train one on digits)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs when --model is not given")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-sizes", default="1,100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="export directory (default: a temporary one)")
    args = parser.parse_args(argv)

    model = export.load_model(args.model) if args.model else train(args.epochs, args.seed)
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="export-latency-"))
    paths = export.export_model(model, out, format="both", quantize="dynamic", overwrite=True)
    loaded = tf.saved_model.load(paths["saved_model"])

    print(
        f"{type(model).__name__} {model.input_dim}-{'-'.join(map(str, model.hidden_dims[0]))}-[{model.latent_dim}], "
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, median of {args.repeats} calls"
    )
    print(f"{'signature':9s} {'batch':>5s}  {'runtime':15s} {'ms/call':>9s} {'us/example':>11s}")
    rng = np.random.default_rng(args.seed)
    for signature, stem, width, keras_fn in (
        ("decode", "decoder", model.latent_dim, model.decode),
        ("encode", "encoder", model.input_dim, model.encode),
    ):
        key = "z" if signature == "decode" else "x"
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            data = rng.random((batch, width)).astype(np.float32)
            tensor = tf.constant(data)
            runners = {
                "keras eager": functools.partial(to_numpy, keras_fn, tensor),
                "saved_model": functools.partial(to_numpy, loaded.signatures[signature], **{key: tensor}),
            }
            for label, file in (("tflite float", stem), ("tflite dynamic", f"{stem}_dynamic")):
                runner = Interpreter(model_path=paths[file]).get_signature_runner(signature)
                runners[label] = functools.partial(runner, **{key: data})
            for label, fn in runners.items():
                ms = median_ms(fn, args.repeats)
                print(f"{signature:9s} {batch:5d}  {label:15s} {ms:9.3f} {1e3 * ms / batch:11.2f}")
    print("files:")
    for name, path in paths.items():
        print(f"  {pathlib.Path(path).name + ('/' if name == 'saved_model' else ''):24s} {size(path) / 1024:8.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
