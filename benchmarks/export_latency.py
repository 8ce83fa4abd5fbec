"""Exported models: latency per runtime, and what each TFLite quantisation costs in accuracy and saves in size.

Trains a VAE with ``keras-vae train``'s default architecture (64-200-200-[16],
Bernoulli pixels) on the bundled 8x8 digits for ``--epochs`` epochs, or loads
``--model``; exports it with ``keras_vae.export.export_model(format="both",
quantize=("dynamic", "float16", "int8"))`` (int8 calibrated on 500 training
examples) and measures:

1. Runtimes: the median wall time of one ``decode`` and ``encode`` call at
   each ``--batch-sizes`` for Keras (``model.decode``/``model.encode``,
   eager), the SavedModel (``tf.saved_model.load``) and the float32
   ``.tflite`` files (``ai_edge_litert``'s signature runner, which resizes
   the batch on every call). Every call includes copying its outputs to numpy.
2. Quantisation: for ``float32``, ``dynamic``, ``float16`` and ``int8``, each
   file's size, its median LiteRT latency per call (``decoder``,
   ``encoder``, ``scorer``, ``sampler``; ``--batch`` examples or samples),
   and its error against Keras on ``--batch`` test examples: max and mean
   absolute error of ``decode``'s ``mean`` (the pixel probabilities) at
   posterior means of the test examples, of ``encode``'s ``loc``, of the
   scorer's ``log_px`` and ``elbo`` (fed the noise ``keras_vae.scoring.scores``
   draws with the same seed, so the reference is exact) and of the sampler's
   ``x_mean`` (fed the noise of ``model.sample(n, seed)``).

Writes ``export_latency.json`` and ``export_latency.md`` to ``--results``.
Run::

    python benchmarks/export_latency.py
    python benchmarks/export_latency.py --model runs/vae/model.keras --repeats 500 --results /tmp/latency
"""

import argparse
import functools
import json
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
from keras_vae import scoring
from keras_vae.export import tflite

VARIANTS = ("float32", "dynamic", "float16", "int8")
#: File stem -> (signature, what its errors are measured on).
FILES = {
    "decoder": "decode",
    "encoder": "encode",
    "scorer": "score_from_noise",
    "sampler": "ancestral_sample_from_noise",
}
CALIBRATION_EXAMPLES = 500


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
    return {k: keras.ops.convert_to_numpy(v) for k, v in fn(*args, **kwargs).items()}


def train(x, epochs, seed):
    keras.utils.set_random_seed(seed)
    model = keras_vae.VAE(x.shape[1], latent_dim=16, hidden_dims=(200, 200), seed=seed)
    model.compile(keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=epochs, batch_size=100, verbose=0)
    return model


def size(path):
    path = pathlib.Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def file_key(stem, variant):
    return stem if variant == "float32" else f"{stem}_{variant}"


def runtimes(model, paths, args, rng):
    """Rows of part 1: decode and encode per runtime and batch size."""
    loaded = tf.saved_model.load(paths["saved_model"])
    rows = []
    for signature, stem, width, keras_fn in (
        ("decode", "decoder", model.latent_dim, model.decode),
        ("encode", "encoder", model.input_dim, model.encode),
    ):
        key = "z" if signature == "decode" else "x"
        for batch in args.batch_sizes:
            data = rng.random((batch, width)).astype(np.float32)
            tensor = tf.constant(data)
            runner = Interpreter(model_path=paths[stem]).get_signature_runner(signature)
            runners = {
                "keras eager": functools.partial(to_numpy, keras_fn, tensor),
                "saved_model": functools.partial(to_numpy, loaded.signatures[signature], **{key: tensor}),
                "tflite float32": functools.partial(runner, **{key: data}),
            }
            for label, fn in runners.items():
                ms = median_ms(fn, args.repeats)
                rows.append({"signature": signature, "batch": batch, "runtime": label, "ms": ms})
                print(f"{signature:9s} {batch:5d}  {label:15s} {ms:9.3f} ms {1e3 * ms / batch:9.2f} us/example")
    return rows


def quantisation(model, paths, x, args):
    """Rows of part 2: size, latency and errors of every file of every variant."""
    module = export.ServingModule(model, score_k=args.score_k)
    n, k = len(x), args.score_k
    z = keras.ops.convert_to_numpy(model.encode(x)["loc"])
    reference = {
        "decoder": to_numpy(model.decode, z),
        "encoder": to_numpy(model.encode, x),
        "scorer": to_numpy(scoring.scores, model, x, k, args.seed),
        "sampler": {"x_mean": keras.ops.convert_to_numpy(model.sample(n, seed=args.seed)["x_mean"])},
    }
    inputs = {
        "decoder": {"z": z},
        "encoder": {"x": x},
        "scorer": {"x": x, **tflite.seeded_noise(module.noise_inputs["score_from_noise"], k * n, args.seed)},
        "sampler": tflite.seeded_noise(module.noise_inputs["ancestral_sample_from_noise"], n, args.seed),
    }
    compared = {"decoder": ("mean",), "encoder": ("loc",), "scorer": ("log_px", "elbo"), "sampler": ("x_mean",)}
    rows = []
    for variant in VARIANTS:
        for stem, signature in FILES.items():
            path = paths[file_key(stem, variant)]
            runner = Interpreter(model_path=path).get_signature_runner(signature)
            outputs = runner(**inputs[stem])
            errors = {}
            for name in compared[stem]:
                diff = np.abs(outputs[name] - reference[stem][name])
                errors[name] = {"max": float(diff.max()), "mean": float(diff.mean())}
            ms = median_ms(functools.partial(runner, **inputs[stem]), args.repeats)
            row = {"variant": variant, "file": stem, "bytes": size(path), "ms": ms, "errors": errors}
            rows.append(row)
            shown = "  ".join(f"{name} {e['max']:.2e}/{e['mean']:.2e}" for name, e in errors.items())
            print(f"{variant:8s} {stem:8s} {row['bytes'] / 1024:8.1f} KiB {ms:9.3f} ms  max/mean abs error {shown}")
    return rows


def markdown(results):
    meta = results["setup"]
    lines = [
        f"{meta['model']} ({meta['training']}), TensorFlow {meta['tensorflow']}, LiteRT {meta['litert']}, "
        f"{meta['cpus']} CPUs; median of {meta['repeats']} calls.",
        "",
        "Runtimes (decode and encode):",
        "",
        "| signature | batch | runtime | ms/call | us/example |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for row in results["runtimes"]:
        lines.append(
            f"| {row['signature']} | {row['batch']} | {row['runtime']} | {row['ms']:.3f} | "
            f"{1e3 * row['ms'] / row['batch']:.2f} |"
        )
    lines += [
        "",
        f"TFLite files by quantisation: size, LiteRT latency per call at batch {meta['batch']} (the scorer runs "
        f"k = {meta['score_k']} samples per example), and max / mean absolute error against Keras on "
        f"{meta['batch']} test examples (decoder: pixel probabilities at posterior means; encoder: posterior "
        "loc; scorer: log p(x) and ELBO in nats, with the noise Keras drew; sampler: x_mean, same noise).",
        "",
        "| quantisation | file | KiB | ms/call | max abs error | mean abs error |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in results["quantisation"]:
        names = list(row["errors"])
        maxima = ", ".join(f"{name} {row['errors'][name]['max']:.2g}" for name in names)
        means = ", ".join(f"{name} {row['errors'][name]['mean']:.2g}" for name in names)
        lines.append(
            f"| {row['variant']} | {row['file']} | {row['bytes'] / 1024:.1f} | {row['ms']:.3f} | {maxima} | {means} |"
        )
    lines += ["", "SavedModel directory: " + f"{results['saved_model_bytes'] / 1024:.1f} KiB."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a trained .keras file (default: train one on digits)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs when --model is not given")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-sizes", default="1,100", help="batch sizes of the runtime comparison")
    parser.add_argument("--batch", type=int, default=100, help="examples per call in the quantisation table")
    parser.add_argument("--score-k", type=int, default=scoring.DEFAULT_K, help="samples per example of the scorer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="export directory (default: a temporary one)")
    parser.add_argument("--results", default=str(pathlib.Path(__file__).parent / "results"), help="results directory")
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    x_train, _ = datasets.load_arrays("digits", "train")
    x_test, _ = datasets.load_arrays("digits", "test")
    if args.model:
        model, training = export.load_model(args.model), f"loaded from {args.model}"
    else:
        model, training = train(x_train, args.epochs, args.seed), f"{args.epochs} epochs on the 8x8 digits"
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="export-latency-"))
    start = time.perf_counter()
    paths = export.export_model(
        model,
        out,
        format="both",
        quantize=VARIANTS[1:],
        overwrite=True,
        score_k=args.score_k,
        representative_data=x_train[:CALIBRATION_EXAMPLES],
    )
    print(f"exported {len(paths) - 2} .tflite files in {time.perf_counter() - start:.0f} s")
    import ai_edge_litert

    sizes = "-".join(map(str, [model.input_dim, *model.hidden_dims[0], model.latent_dim]))
    setup = {
        "model": f"{type(model).__name__} {sizes}",
        "training": training,
        "tensorflow": tf.__version__,
        "litert": getattr(ai_edge_litert, "__version__", "?"),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "batch": args.batch,
        "score_k": args.score_k,
    }
    print(f"{setup['model']}, TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, median of {args.repeats} calls")
    rng = np.random.default_rng(args.seed)
    results = {"setup": setup, "runtimes": runtimes(model, paths, args, rng)}
    results["quantisation"] = quantisation(model, paths, x_test[: args.batch], args)
    results["saved_model_bytes"] = size(paths["saved_model"])
    target = pathlib.Path(args.results)
    target.mkdir(parents=True, exist_ok=True)
    (target / "export_latency.json").write_text(json.dumps(results, indent=2) + "\n")
    (target / "export_latency.md").write_text(markdown(results))
    print(f"wrote {target / 'export_latency.json'} and {target / 'export_latency.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
