# Source of colab/03_export_and_serve.ipynb in the jupytext percent format: edit this file, then run
# `python colab/build_notebooks.py` to rewrite the notebook (see that script for the format).
# A cell's last expression is displayed, as in the notebook, so B018 does not apply:
# ruff: noqa: B018

# %% [markdown]
# # Export a VAE and serve it without keras-vae
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-vae/keras-vae/blob/main/colab/03_export_and_serve.ipynb)
#
# A trained model is only useful where it can run. This notebook
# trains a small VAE, exports it with `keras_vae.export.export_model`
# to a TensorFlow **SavedModel** and to **TFLite** (LiteRT) flatbuffers,
# loads each back with nothing but TensorFlow or LiteRT
# (`tf.saved_model.load`, `ai_edge_litert.interpreter.Interpreter`),
# decodes latent codes, and checks the outputs against the Keras model
# (maximum absolute difference), the file sizes and the latency. It
# then uses the exported **scorer** to flag anomalous inputs and the
# exported **sampler** to generate examples on the device.
#
# Quick mode (the default) takes well under a minute on a CPU; set
# `QUICK = False` to train on all of MNIST first.

# %% [markdown]
# ## Setup
#
# In Colab the next cell installs keras-vae from GitHub (if pip
# upgrades TensorFlow, Colab asks to restart the session once: do so
# and run the notebook again). Anywhere else it does nothing: install
# the package first, e.g. `pip install -e ".[test]"` in a clone.

# %%
import importlib.util
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB and importlib.util.find_spec("keras_vae") is None:
    # %pip install -q "keras-vae[export] @ git+https://github.com/keras-vae/keras-vae.git"
    pass  # source only: the notebook runs the magic above

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
import os

# Quick mode (the default): few epochs on small data, seconds on a CPU -- scikit-learn's
# bundled 8x8 digits, or a slice of MNIST if KERAS_VAE_MNIST_PATH names a local copy.
# Full mode: all of MNIST (the local file, else tensorflow-datasets) and many epochs.
QUICK = os.environ.get("KERAS_VAE_QUICK", "1") == "1"
# A local MNIST in the Keras mnist.npz layout (x_train, y_train, x_test, y_test), or None.
MNIST_PATH = os.environ.get("KERAS_VAE_MNIST_PATH") or None
SEED = 0

LATENT_DIM = 16
HIDDEN_DIMS = (200, 200)
BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
EPOCHS = None              # None: 30 on digits, 5 on the MNIST slice (quick); 50 (full)
EXPORT_DIR = "vae_export"  # relative to the working directory; replaced if it exists
QUANTIZE = "dynamic"       # also write int8-weight TFLite files; None to skip
LATENCY_REPEATS = None     # timed calls per measurement; None: 20 (quick), 200 (full)

# %%
# %matplotlib inline
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

import json
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_vae
from keras_vae import datasets
from keras_vae import export
from keras_vae import plotting
from keras_vae import scoring
from keras_vae.export import tflite

keras.utils.set_random_seed(SEED)
print(f"tensorflow {tf.__version__}, keras {keras.__version__}, quick mode: {QUICK}")

# %% [markdown]
# ## Train a small VAE
#
# The same data pipeline as in `01_vae_mnist.ipynb`: dynamically
# binarised training images, a statically binarised test set.

# %%
if QUICK:
    DATASET = "mnist" if MNIST_PATH else "digits"
    TRAIN_LIMIT = 10_000 if DATASET == "mnist" else None  # None: the whole split
    TEST_LIMIT = 1_000 if DATASET == "mnist" else None
else:
    DATASET, TRAIN_LIMIT, TEST_LIMIT = "mnist", None, None
PATH = MNIST_PATH if DATASET == "mnist" else None  # None: the env variable, else tfds
if BATCH_SIZE is None:
    BATCH_SIZE = 32 if DATASET == "digits" else 100

x_train, y_train = datasets.load_arrays(DATASET, "train", path=PATH)
x_test, y_test = datasets.load_arrays(DATASET, "test", path=PATH)
x_train, y_train = x_train[:TRAIN_LIMIT], y_train[:TRAIN_LIMIT]
x_test, y_test = x_test[:TEST_LIMIT], y_test[:TEST_LIMIT]
IMAGE_SHAPE = datasets.image_shape(DATASET)
INPUT_DIM = x_train.shape[1]

if DATASET == "mnist":
    # Training batches binarised afresh every epoch (dynamic binarisation) ...
    train_ds = datasets.load(
        DATASET, "train", batch_size=BATCH_SIZE, binarization="dynamic",
        seed=SEED, path=PATH, limit=TRAIN_LIMIT,
    )
    # ... and a test set binarised once, with a fixed seed.
    x_test_bin = datasets.binarize_test(x_test)
else:
    # The 8x8 digits have 17 grey levels and turn to noise under random binarisation:
    # threshold them at 1/2 instead, train and test alike.
    x_train_bin = datasets.binarize(x_train, "threshold")
    x_test_bin = datasets.binarize(x_test, "threshold")
    train_ds = tf.data.Dataset.from_tensor_slices(x_train_bin).shuffle(
        len(x_train_bin), seed=SEED).batch(BATCH_SIZE)
print(f"{DATASET}: {len(x_train)} training and {len(x_test)} test images of {IMAGE_SHAPE} pixels")

# %%
if EPOCHS is None:
    EPOCHS = (30 if DATASET == "digits" else 5) if QUICK else 50
model = keras_vae.VAE(INPUT_DIM, latent_dim=LATENT_DIM, hidden_dims=HIDDEN_DIMS, seed=SEED)
model.compile(optimizer=keras.optimizers.Adam(1e-3))
model.fit(train_ds, epochs=EPOCHS, verbose=0 if QUICK else 2)
test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
print(f"test ELBO after {EPOCHS} epochs: {test['elbo']:.3f} nats per example")

# %% [markdown]
# ## Export
#
# `export_model` writes, into one directory:
#
# - `saved_model/`: a SavedModel of a plain `tf.Module` (no Keras
#   objects inside) with the signatures
#   `decode` (input `z` `[batch, latent_dim]` -> `logits`, `probs` and
#   `mean` of $p(x \mid z)$), `encode` (input `x` `[batch, input_dim]` ->
#   `loc`, `scale` of $q(z \mid x)$), `sample` (inputs
#   `num_samples`, `seed` -> `z` $\sim \mathcal N(0, I)$ drawn with
#   stateless random ops, and its decoded `x_mean`), `score` (inputs
#   `x`, `seed` -> each example's ELBO and $\log p(x)$ estimate) and
#   `ancestral_sample` (inputs `num_samples`, `seed` -> `z` and a
#   draw of `x`), plus `score_from_noise` and
#   `ancestral_sample_from_noise`, the last two with their random
#   draws as inputs; `serving_default` is `decode`.
# - `decoder.tflite`, `encoder.tflite`, `scorer.tflite`,
#   `sampler.tflite`: `decode`, `encode` and the two `*_from_noise`
#   signatures converted to TFLite with builtin ops only (float32),
#   and with `quantize="dynamic"` also `*_dynamic.tflite` files whose
#   weights are stored as int8.
# - `metadata.json`: the latent size, the observation model, how
#   inputs must be scaled, and every signature's inputs and outputs.

# %%
start = time.time()
paths = export.export_model(model, EXPORT_DIR, format="both", quantize=QUANTIZE, overwrite=True)
print(f"exported in {time.time() - start:.1f} s")


def size(path):
    path = pathlib.Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files)


print(f"{'artefact':<17} {'size (KiB)':>10}  path")
for key, path in paths.items():
    print(f"{key:<17} {size(path) / 1024:>10.1f}  {path}")


# %%
metadata = json.loads(pathlib.Path(paths["metadata"]).read_text())
print(json.dumps(metadata["signatures"]["decode"], indent=2))

# %% [markdown]
# ## Serve the SavedModel with TensorFlow
#
# `tf.saved_model.load` restores the signatures as concrete functions
# that take keyword tensors and return a dict of tensors. Decode a
# batch of codes $z \sim \mathcal N(0, I)$ and compare with the Keras
# model's `decode`.

# %%
loaded = tf.saved_model.load(paths["saved_model"])
print("signatures:", sorted(loaded.signatures.keys()))
sm_decode = loaded.signatures["decode"]

z = np.random.default_rng(SEED).standard_normal((256, LATENT_DIM)).astype("float32")
keras_mean = keras.ops.convert_to_numpy(model.decode(z)["mean"])
sm_mean = sm_decode(z=tf.constant(z))["mean"].numpy()
print("SavedModel decode outputs:", sorted(sm_decode(z=tf.constant(z[:1])).keys()))

# %% [markdown]
# ## Serve the TFLite files with LiteRT
#
# The LiteRT interpreter runs a converted signature through a
# *signature runner*, called with the same input names; the batch size
# is resized on the fly.

# %%
def tflite_runner(path, signature):
    return Interpreter(model_path=str(path)).get_signature_runner(signature)


tfl_decode = tflite_runner(paths["decoder"], "decode")
print("TFLite signatures:", Interpreter(model_path=paths["decoder"]).get_signature_list())
tfl_mean = tfl_decode(z=z)["mean"]
if QUANTIZE:
    tfl_q_decode = tflite_runner(paths["decoder_dynamic"], "decode")
    tfl_q_mean = tfl_q_decode(z=z)["mean"]


# %% [markdown]
# ## Do they agree?
#
# Float32 exports should match Keras to rounding error (about
# $10^{-7}$ on probabilities). The int8-weight files trade a little
# accuracy for size, so their differences are larger. The encoder is
# checked the same way on test images.

# %%
x = x_test_bin[:256]
keras_loc = keras.ops.convert_to_numpy(model.encode(x)["loc"])
sm_loc = loaded.signatures["encode"](x=tf.constant(x))["loc"].numpy()
tfl_loc = tflite_runner(paths["encoder"], "encode")(x=x)["loc"]

diffs = {
    "SavedModel decode": np.abs(sm_mean - keras_mean).max(),
    "TFLite decode": np.abs(tfl_mean - keras_mean).max(),
    "SavedModel encode": np.abs(sm_loc - keras_loc).max(),
    "TFLite encode": np.abs(tfl_loc - keras_loc).max(),
}
if QUANTIZE:
    diffs["TFLite int8-weight decode"] = np.abs(tfl_q_mean - keras_mean).max()
for name, diff in diffs.items():
    print(f"max abs diff {name} vs Keras: {diff:.3g}")

# %%
fig = plotting.image_grid(
    np.concatenate([keras_mean[:8], sm_mean[:8], tfl_mean[:8]]), IMAGE_SHAPE, ncols=8,
    title="decode(z): Keras (row 1), SavedModel (row 2), TFLite (row 3)",
)
fig

# %% [markdown]
# The `sample` signature generates new images in one call, seeded and
# reproducible:

# %%
drawn = loaded.signatures["sample"](num_samples=tf.constant(32), seed=tf.constant(SEED, tf.int64))
plotting.image_grid(drawn["x_mean"].numpy(), IMAGE_SHAPE, ncols=16, title="SavedModel sample(32, seed)")

# %% [markdown]
# ## Anomaly scores
#
# The `score` signature returns, for each example, the ELBO and the
# importance-sampled estimate of $\log p(x)$ from `score_k` posterior
# samples (16 by default): how probable the model finds the example,
# in nats. It is `keras_vae.scoring.scores` inside the SavedModel, so
# with the same seed it gives Keras's numbers. A threshold at a low
# quantile of the training scores (`scoring.threshold`) flags about
# that fraction of typical data; inputs unlike the training data
# should fall below it.

# %%
K = metadata["score_k"]
score = loaded.signatures["score"]


def log_px(x, seed=SEED):
    return score(x=tf.constant(x), seed=tf.constant(seed, tf.int64))["log_px"].numpy()


# A fixed binary version of (part of) the training data: the typical scores.
x_typical = (x_train_bin if DATASET == "digits" else datasets.binarize_test(x_train))[:1000]
cut = scoring.threshold(log_px(x_typical), quantile=0.01)
keras_scores = keras.ops.convert_to_numpy(scoring.scores(model, x_test_bin[:256], K, SEED)["log_px"])
print(f"max abs diff SavedModel score vs Keras: {np.abs(log_px(x_test_bin[:256]) - keras_scores).max():.3g}")

rng = np.random.default_rng(SEED)
candidates = {
    "test images": x_test_bin,
    "uniform noise": datasets.binarize_test(rng.random(x_test_bin.shape)),
    "inverted test images": 1.0 - x_test_bin,
}
print(f"threshold: 1% quantile of training log p(x) = {cut:.2f} nats (k = {K})")
for name, x in candidates.items():
    print(f"flagged as anomalous: {np.mean(log_px(x) < cut):6.1%} of {name}")

# %% [markdown]
# On a device the scorer runs as `scorer.tflite`. TFLite has no
# kernels for TensorFlow's random ops, so the scorer takes its
# posterior noise as inputs (`noise_h1`, one row per posterior sample
# and example: `k * batch` rows, sample-major) and the app draws it
# from the distribution `metadata.json` names, here $\mathcal N(0, 1)$.
# Fed the noise that `score` draws for a seed
# (`keras_vae.export.tflite.seeded_noise`), it returns the same
# scores.

# %%
scorer = tflite_runner(paths["scorer"], "score_from_noise")
scorer_inputs = metadata["signatures"]["score_from_noise"]["inputs"]
print({name: info.get("distribution", info["dtype"]) for name, info in scorer_inputs.items()})
x = x_test_bin[:64]
seeded = tflite.seeded_noise(scorer_inputs, K * len(x), SEED)
on_device = scorer(x=x, **seeded)["log_px"]
# The draws depend on the batch: compare with Keras on the same 64 examples.
keras_64 = keras.ops.convert_to_numpy(scoring.scores(model, x, K, SEED)["log_px"])
print(f"max abs diff TFLite scorer vs Keras: {np.abs(on_device - keras_64).max():.3g}")


def app_noise(inputs, rows):
    """Noise as an app draws it with its own generator, from the distribution metadata.json names."""
    noise = {}
    for name, info in inputs.items():
        if "distribution" in info:
            draw = rng.random if info["distribution"].startswith("uniform") else rng.standard_normal
            noise[name] = draw((rows, *info["shape"][1:]), dtype=np.float32)
    return noise


fresh = scorer(x=x, **app_noise(scorer_inputs, K * len(x)))["log_px"]
print(f"TFLite scorer, fresh noise: mean log p(x) {fresh.mean():.2f} (seeded noise: {on_device.mean():.2f})")

# %% [markdown]
# ## Sampling on the device
#
# `sampler.tflite` draws every layer top-down from noise inputs:
# `noise_h1` ($\mathcal N(0, 1)$, the code) and `noise_x` (uniform on
# $[0, 1)$: a pixel is 1 where its draw is below its probability).
# Fed the seeded noise it reproduces `model.sample(n, seed=seed)`;
# fed fresh noise from the app's own generator it gives new samples.

# %%
sampler = tflite_runner(paths["sampler"], "ancestral_sample_from_noise")
sampler_inputs = metadata["signatures"]["ancestral_sample_from_noise"]["inputs"]
print({name: info["distribution"] for name, info in sampler_inputs.items()})
drawn_on_device = sampler(**tflite.seeded_noise(sampler_inputs, 32, SEED))
keras_drawn = model.sample(32, seed=SEED)
print(f"max abs diff TFLite sampler vs Keras model.sample: "
      f"{np.abs(drawn_on_device['x'] - keras.ops.convert_to_numpy(keras_drawn['x'])).max():.3g}")
new = sampler(**app_noise(sampler_inputs, 32))
print(f"sampled {len(new['x'])} examples on device: x {new['x'].shape}, "
      f"fraction of pixels on {new['x'].mean():.3f} (test images: {x_test_bin.mean():.3f})")

# %% [markdown]
# ## Latency
#
# Median wall time of one call, for one code and for a batch of 256,
# on this machine. Keras runs the model eagerly (Python overhead on
# every layer); the SavedModel runs one compiled graph; LiteRT runs the
# flatbuffer with its CPU kernels (XNNPACK).

# %%
if LATENCY_REPEATS is None:
    LATENCY_REPEATS = 20 if QUICK else 200


def median_ms(fn, *args, repeats=LATENCY_REPEATS):
    fn(*args)  # warm up (tracing, tensor allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


runners = {
    "Keras (eager)": lambda b: model.decode(b),
    "SavedModel": lambda b: sm_decode(z=tf.constant(b)),
    "TFLite float32": lambda b: tfl_decode(z=b),
}
if QUANTIZE:
    runners["TFLite int8 weights"] = lambda b: tfl_q_decode(z=b)
print(f"{'decode':<20} {'batch 1 (ms)':>13} {'batch 256 (ms)':>15}")
for name, run in runners.items():
    one, batch = median_ms(run, z[:1]), median_ms(run, z)
    print(f"{name:<20} {one:>13.3f} {batch:>15.3f}")


# %% [markdown]
# ## Without keras-vae (or Keras)
#
# Everything above ran in a process that had imported keras-vae. The
# next cells write a small serving script and run it in a fresh Python
# process in which importing `keras_vae` or `keras` fails, to show
# that the exported files need only TensorFlow and LiteRT.

# %%
# %%writefile serve_decoder.py
"""Decode latent codes with the exported files only: TensorFlow and LiteRT."""
import sys

sys.modules["keras_vae"] = sys.modules["keras"] = None  # any import of them now fails

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

export_dir, z_file, out_file = sys.argv[1:]
z = np.load(z_file)
decode = tf.saved_model.load(f"{export_dir}/saved_model").signatures["decode"]
runner = Interpreter(model_path=f"{export_dir}/decoder.tflite").get_signature_runner("decode")
np.savez(out_file, saved_model=decode(z=tf.constant(z))["mean"].numpy(), tflite=runner(z=z)["mean"])
print(f"decoded {len(z)} codes without keras_vae or keras")

# %%
np.save("z.npy", z)
result = subprocess.run(
    [sys.executable, "serve_decoder.py", EXPORT_DIR, "z.npy", "served.npz"],
    capture_output=True, text=True,
)
print(result.stdout.strip())
if result.returncode != 0:
    raise RuntimeError(result.stderr[-3000:])
served = np.load("served.npz")
for name in ("saved_model", "tflite"):
    print(f"separate process, {name}: max abs diff vs Keras {np.abs(served[name] - keras_mean).max():.3g}")
