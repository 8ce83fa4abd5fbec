"""Ablations of the two-layer model: one implementation choice changed at a time.

Each variant patches keras-vae at run time (the package is not edited) and
trains ``presets.from_preset("burda_2layer")`` as ``compare_pytorch.py`` does
(Adam 1e-3, eps 1e-4, batch 100, dynamic binarisation), then scores the
first ``--eval-images`` test images (``binarize_test``) with
``evaluation.log_likelihood`` (k = ``--k``) and active units. Variants are
``base`` (the package's defaults at the commit recorded in each row) or
``+``-joined parts:

- ``kerasinit``: Keras's default initialisation (Glorot-uniform kernels,
  zero biases, so latent scales start at softplus(0) = 0.69), the
  package's defaults before fan-in initialisation and unit scales;
- ``expscale``: latent scales ``exp(0.5 * raw)`` instead of ``softplus(raw)``;
- ``minscale=V``: the floor added to latent scales (default 1e-4);
- ``torchinit``: PyTorch's default Linear initialisation,
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernels and biases;
- ``torchkernel``: PyTorch's kernel initialisation only
  (``VarianceScaling(1/3, "fan_in", "uniform")``), biases left at 0;
- ``torchadam``: PyTorch's Adam (eps added to the bias-corrected sqrt(v));
- ``unitscale``: the latent scale layers' biases start where the scale is 1
  (``softplus(b) + min_scale = 1``; applied after ``torchinit``);
- ``mckl``: Monte Carlo instead of analytic top-layer KL;
- ``warmup=N``: the KL weight rises linearly from 0 to 1 over the first N
  steps (``kl_warmup_steps=N``);
- ``nojit``, ``spe1``: no XLA, one step per execution.

    python benchmarks/ablate_two_layer.py --variants base,torchinit --epochs 30 --seeds 0,1,2 \
        --out benchmarks/results/ablate_two_layer.jsonl

Rows are appended to ``--out`` as JSON lines; a rerun skips the rows already
there at the same budget, so a cut batch continues where it stopped.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import compare_pytorch as cp  # noqa: E402

from keras_vae import _keras_compat  # noqa: E402
from keras_vae import datasets  # noqa: E402
from keras_vae import evaluation  # noqa: E402
from keras_vae import presets  # noqa: E402
from keras_vae.heads import base  # noqa: E402
from keras_vae.heads import latent  # noqa: E402

ORIG_SCALE = latent.scale_from_raw
ORIG_INIT = latent.GaussianLatent.__init__


class TorchAdam(keras.optimizers.Adam):
    """PyTorch's Adam: eps added to the bias-corrected sqrt(v_hat)."""
    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        b1p = ops.power(ops.cast(self.beta_1, variable.dtype), t)
        b2p = ops.power(ops.cast(self.beta_2, variable.dtype), t)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, (g - m) * (1 - self.beta_1))
        self.assign_add(v, (ops.square(g) - v) * (1 - self.beta_2))
        self.assign_sub(variable, lr * (m / (1 - b1p)) / (ops.sqrt(v / (1 - b2p)) + self.epsilon))


def torch_init(model, seed, biases=True):
    rng = np.random.default_rng(1000 + seed)
    for layer in _keras_compat.flatten_layers(model):
        if isinstance(layer, keras.layers.Dense):
            fan_in = layer.kernel.shape[0]
            b = 1 / math.sqrt(fan_in)
            layer.kernel.assign(rng.uniform(-b, b, layer.kernel.shape).astype("float32"))
            if biases:
                layer.bias.assign(rng.uniform(-b, b, layer.bias.shape).astype("float32"))


def keras_init(model, seed):
    """Glorot-uniform kernels and zero biases on every Dense layer."""
    rng = np.random.default_rng(2000 + seed)
    for layer in _keras_compat.flatten_layers(model):
        if isinstance(layer, keras.layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            b = math.sqrt(6 / (fan_in + fan_out))
            layer.kernel.assign(rng.uniform(-b, b, layer.kernel.shape).astype("float32"))
            layer.bias.assign(np.zeros(layer.bias.shape, "float32"))


def commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=pathlib.Path(__file__).parent, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def unit_scale(model):
    for layer in _keras_compat.flatten_layers(model):
        if isinstance(layer, latent.GaussianLatent) and layer.covariance == "diag":
            target = 1.0 - layer.min_scale
            bias = math.log(math.expm1(target))  # softplus^-1
            layer.scale_dense.bias.assign(np.full(layer.scale_dense.bias.shape, bias, "float32"))


def apply_patches(parts):
    latent.scale_from_raw = ORIG_SCALE
    latent.GaussianLatent.__init__ = ORIG_INIT
    if "expscale" in parts:
        latent.scale_from_raw = lambda raw, min_scale: ops.exp(0.5 * base.float32(raw)) + min_scale
    for p in parts:
        if p.startswith("minscale="):
            ms = float(p.split("=")[1])
            def init(self, units, covariance="diag", min_scale=None, _floor=ms, **kw):
                ORIG_INIT(self, units, covariance=covariance, min_scale=_floor, **kw)
            latent.GaussianLatent.__init__ = init


def run(variant, seed, epochs, x_test, k, layers):
    parts = [] if variant == "base" else variant.split("+")
    apply_patches(parts)
    if "noglobalseed" not in parts:
        keras.utils.set_random_seed(seed)
    if "determinism" in parts:
        tf.config.experimental.enable_op_determinism()
    kw = {}
    if "mckl" in parts:
        kw["kl"] = "mc"
    for p in parts:
        if p.startswith("warmup="):
            kw["kl_warmup_steps"] = int(p.split("=")[1])
    model = presets.from_preset(f"burda_{layers}layer", seed=seed, **kw)
    if "kerasinit" in parts:
        keras_init(model, seed)
    if "torchinit" in parts or "torchkernel" in parts:
        torch_init(model, seed, biases="torchinit" in parts)
    if "unitscale" in parts:
        unit_scale(model)
    Opt = TorchAdam if "torchadam" in parts else keras.optimizers.Adam
    ck = {}
    if "nojit" in parts:
        ck = dict(jit_compile=False)
    if "spe1" in parts:
        ck["steps_per_execution"] = 1
    model.compile(optimizer=Opt(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-4), **ck)
    train = datasets.load("mnist", "train", batch_size=100, binarization="dynamic", seed=seed)
    t0 = time.perf_counter()
    hist = model.fit(train, epochs=epochs, verbose=0)
    sec = time.perf_counter() - t0
    t1 = time.perf_counter()
    ll = evaluation.log_likelihood(model, x_test, k=k, seed=seed, verbose=0)
    ev = time.perf_counter() - t1
    au = evaluation.active_units(model, x_test)
    return dict(variant=variant, seed=seed, epochs=epochs, layers=layers,
                train_seconds=round(sec, 1), eval_seconds=round(ev, 1),
                train_elbo=[round(float(e), 2) for e in hist.history["elbo"]],
                test_elbo=float(np.mean(ll.elbo)), test_log_px=float(ll.mean), active_units=list(au.counts),
                k=k, eval_images=len(x_test), commit=commit())


def summary(rows_path, torch_path=None, epochs=30, layers=2, eval_images=1000, k=1000):
    """Markdown table of the rows at one budget: per variant, log p(x) per seed, median, spread, active units."""
    import collections
    import statistics

    def at_budget(r):
        return (r["epochs"], r["layers"], r["eval_images"], r["k"]) == (epochs, layers, eval_images, k)

    arms = collections.defaultdict(dict)
    for line in open(rows_path):
        r = json.loads(line)
        if at_budget(r):
            arms[r["variant"]][r["seed"]] = (r["test_log_px"], r["active_units"])
    if torch_path and pathlib.Path(torch_path).exists():
        for r in json.loads(pathlib.Path(torch_path).read_text()):
            if r["impl"] == "torch" and at_budget(r):
                name = f"PyTorch program ({r.get('torch_scale')} scales"
                name += f", KL warm-up {r['kl_warmup_steps']})" if r.get("kl_warmup_steps") else ")"
                arms[name][r["seed"]] = (r["test_log_px"], r["active_units"])
    lines = [
        f"{layers}-layer model, {epochs} epochs; test log p(x) with k = {k} on the first "
        f"{eval_images} binarize_test images; active units (h1+h2) in brackets.",
        "",
        "| variant | seeds | test log p(x) per seed | median | max - min | top-layer active |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for name, seeds in arms.items():
        values = [seeds[s][0] for s in sorted(seeds)]
        cells = ", ".join(f"{seeds[s][0]:.1f} ({'+'.join(map(str, seeds[s][1]))})" for s in sorted(seeds))
        top = ", ".join(str(seeds[s][1][-1]) for s in sorted(seeds))
        lines.append(
            f"| {name} | {','.join(map(str, sorted(seeds)))} | {cells} | {statistics.median(values):.2f} "
            f"| {max(values) - min(values):.1f} | {top} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--summary", default=None, metavar="MD", help="only write the table of --out's rows (and --torch's) to MD"
    )
    ap.add_argument("--torch", default=None, help="compare_pytorch.py rows to add to the --summary table")
    ap.add_argument("--variants", default="base")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eval-images", type=int, default=1000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "ablate_two_layer.jsonl"))
    a = ap.parse_args()
    if a.summary:
        table = summary(a.out, a.torch, a.epochs, a.layers, a.eval_images, a.k)
        print(table)
        pathlib.Path(a.summary).write_text(table)
        sys.exit(0)
    _, x_test = cp.load_data(a.eval_images)
    done = set()
    if pathlib.Path(a.out).exists():  # resumable: rows already in --out at this budget are skipped
        for line in open(a.out):
            r = json.loads(line)
            done.add((r["variant"], r["seed"], r["epochs"], r.get("k"), r.get("eval_images"), r["layers"]))
    for v in a.variants.split(","):
        for s in [int(x) for x in a.seeds.split(",")]:
            if (v, s, a.epochs, a.k, len(x_test), a.layers) in done:
                print(f"skip {v} seed {s}: already in {a.out}", flush=True)
                continue
            r = run(v, s, a.epochs, x_test, a.k, a.layers)
            print(json.dumps(r), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(r) + "\n")
