# Source of colab/04_your_data.ipynb in the jupytext percent format: edit this file, then run
# `python colab/build_notebooks.py` to rewrite the notebook (see that script for the format).
# A cell's last expression is displayed, as in the notebook, so B018 does not apply:
# ruff: noqa: B018

# %% [markdown]
# # Your own data: a folder of images, a CSV table, a conditional model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-vae/keras-vae/blob/main/colab/04_your_data.ipynb)
#
# keras-vae reads data where it is usually kept. This notebook walks
# through three cases, each first with the Python API and then as the
# equivalent `keras-vae train` command:
#
# 1. **A folder of images**, one subfolder per class
#    (`keras_vae.datasets.load_data(folder)`), modelled as images of
#    their own shape by a convolutional VAE whose pixels are 8-bit values
#    (a discretised logistic observation model), scored in bits per
#    dimension.
# 2. **A CSV table of mixed columns** (numbers, a yes/no column, a text
#    category): the schema is inferred column by column
#    (`keras_vae.tables.TableSchema`), the model gets one observation
#    family per column kind, and samples decode back to a DataFrame in the
#    table's own column types.
# 3. **A class-conditional VAE**: $p(x \mid z, y)$ given one-hot labels
#    $y$, one row of samples per class, and $\log p(x \mid y)$ against
#    the $\log p(x)$ of the same VAE without labels.
#
# To keep the notebook self-contained it first *writes* the folder and
# the CSV file from data bundled with scikit-learn (or from MNIST when
# the environment variable `KERAS_VAE_MNIST_PATH` names a local copy);
# point the paths at your own files instead.
#
# **Quick mode** (the default) takes about a minute on a CPU; set
# `QUICK = False` in the parameter cell for larger data and budgets (in
# Colab, pick a GPU runtime).

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
    # %pip install -q "keras-vae @ git+https://github.com/keras-vae/keras-vae.git"
    pass  # source only: the notebook runs the magic above

# %% [markdown]
# ## Parameters
#
# The next cell is tagged `parameters` (papermill can override it).
# `KERAS_VAE_QUICK=0` in the environment selects full mode without
# editing it.

# %% tags=["parameters"]
import os

# Quick mode (the default): few epochs on small data, seconds on a CPU -- scikit-learn's
# bundled 8x8 digits, or a slice of MNIST if KERAS_VAE_MNIST_PATH names a local copy.
# Full mode: all of MNIST (the local file, else tensorflow-datasets) and many epochs.
QUICK = os.environ.get("KERAS_VAE_QUICK", "1") == "1"
# A local MNIST in the Keras mnist.npz layout (x_train, y_train, x_test, y_test), or None.
MNIST_PATH = os.environ.get("KERAS_VAE_MNIST_PATH") or None
SEED = 0

BATCH_SIZE = None         # None: 32 on digits, 100 on MNIST (part 3)
DATA_DIR = "your_data"    # the image folder and the CSV file are written here (relative paths)
FOLDER_IMAGES = None      # images written to the folder; None: all digits, 1,000 MNIST (quick), 20,000 (full)
IMAGE_EPOCHS = None       # None: 15 on digits, 8 on MNIST (quick); 30 (full)
TABLE_EPOCHS = None       # None: 40 (quick), 300 (full)
CONDITIONAL_EPOCHS = None  # None: 30 on digits, 5 on the MNIST slice (quick); 50 (full)
K_EVAL = None             # importance samples per example for log p(x); None: 100 (quick), 1000 (full)
IMAGE_K = None            # the same for the convolutional image model; None: 10 (quick), 1000 (full)

# %%
# %matplotlib inline
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

import pathlib
import shutil
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import plotting
from keras_vae import presets

keras.utils.set_random_seed(SEED)
print(f"keras {keras.__version__} ({keras.backend.backend()} backend), quick mode: {QUICK}")
if K_EVAL is None:
    K_EVAL = 100 if QUICK else 1000
if IMAGE_K is None:
    IMAGE_K = 10 if QUICK else 1000

# %% [markdown]
# ## Data for the image parts
#
# The image parts start from labelled digits: scikit-learn's bundled
# 8x8 digits in quick mode, MNIST when a local copy is named (or in full
# mode), as flat arrays in $[0, 1]$ with their labels
# (`keras_vae.datasets.load_arrays`), plus the binary versions used in
# part 3.

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

# %% [markdown]
# # Part 1: a folder of images
#
# The layout keras-vae reads is the one of
# `keras.utils.image_dataset_from_directory`: `folder/<class>/<image>`,
# the sorted subfolder names giving the classes (images directly in the
# folder, without subfolders, are read unlabelled). Any of `.png`,
# `.jpg`, `.jpeg`, `.bmp` and `.gif` works. The next cell writes such a
# folder of 8-bit grey PNGs, one subfolder per digit.

# %%
FOLDER = pathlib.Path(DATA_DIR) / "digit_images"
if FOLDER_IMAGES is None:
    FOLDER_IMAGES = len(x_train) if DATASET == "digits" else (1_000 if QUICK else 20_000)

if FOLDER.exists():
    shutil.rmtree(FOLDER)
pixels = np.round(x_train[:FOLDER_IMAGES] * 255).astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
for i, (image, label) in enumerate(zip(pixels, y_train[:FOLDER_IMAGES])):
    path = FOLDER / str(label) / f"{i:05d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image, "L").save(path)
print(f"wrote {len(pixels)} PNGs of {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} pixels to {FOLDER}/<digit>/")

# %% [markdown]
# `keras_vae.datasets.load_data` takes the folder like any other source.
# A folder has no splits of its own, so a fixed shuffle holds out 20% of
# the images as `"test"` (the same rows on every call). Images keep
# their shape, `[N, height, width, channels]`, with values in $[0, 1]$
# (8-bit levels divided by 255); `image_size=(h, w)` resizes images of
# different sizes and `color_mode` picks the channels.

# %%
images_train = datasets.load_data(FOLDER, "train")
images_test = datasets.load_data(FOLDER, "test")
print(f"classes: {images_train.class_names}")
print(f"folder: {len(images_train.x)} training and {len(images_test.x)} test images "
      f"of shape {images_train.input_shape}")
plotting.image_grid(images_test.x[:32], ncols=16, title="Test images read from the folder")

# %% [markdown]
# ## An image-shaped model
#
# `keras_vae.presets.from_preset("conv_mnist", input_shape=...)` builds a
# model of one Gaussian latent layer (a VAE) with a convolutional encoder (stride-2 3x3 convolutions, then a
# dense layer) and a decoder of transposed convolutions that ends in a
# feature map of the image's size, from which the observation head
# predicts each pixel's parameters; it adapts to the images' shape.
#
# PNG pixels are 8-bit: a value is one of 256 levels $j / 255$. Instead
# of binarising them, `likelihood="discretized_logistic"`
# (`keras_vae.heads.DiscretizedLogisticObservation`) gives each level
# the probability mass that a logistic distribution puts on its bin
# (Salimans et al., 2017), so $\log p(x)$ is a log-probability of the
# exact image and converts to a code length: bits per dimension,
# $-\log_2 p(x) / D$ (`keras_vae.evaluation.bits_per_dim`).

# %%
if IMAGE_EPOCHS is None:
    IMAGE_EPOCHS = (15 if DATASET == "digits" else 8) if QUICK else 30
image_model = presets.from_preset(
    "conv_mnist", input_shape=images_train.input_shape, latent_dims=(16,),
    likelihood="discretized_logistic", seed=SEED,
)
# jit_compile=False: on a CPU, XLA takes longer to compile the convolutions than to run them here.
image_model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
start = time.time()
image_model.fit(images_train.x, epochs=IMAGE_EPOCHS, batch_size=64, verbose=0 if QUICK else 2)
print(f"image model: {IMAGE_EPOCHS} epochs in {time.time() - start:.1f} s")
image_elbo = image_model.evaluate(images_test.x, batch_size=100, verbose=0, return_dict=True)["elbo"]
image_ll = evaluation.log_likelihood(image_model, images_test.x, k=IMAGE_K, seed=SEED, verbose=0)
D = image_model.input_dim  # values per image: height x width x channels
print(f"image test ELBO: {image_elbo:.2f} nats per image "
      f"= {evaluation.bits_per_dim(image_elbo, D):.3f} bits per dimension")
print(f"image test log p(x): {image_ll.mean:.2f} nats per image "
      f"= {evaluation.bits_per_dim(image_ll.mean, D):.3f} bits per dimension (k = {IMAGE_K})")

# %% [markdown]
# Samples are the means of $p(x \mid z)$ for $z \sim p(z)$, and
# reconstructions decode each test image's posterior mean; both come
# back in the images' own shape.

# %%
plotting.plot_samples(image_model, n=32, seed=SEED)

# %%
plotting.plot_reconstructions(image_model, images_test.x, n=10)

# %% [markdown]
# ### On the command line
#
# `keras-vae train --dataset FOLDER` reads the same folder (the same
# 80/20 split), trains a model of the images' shape and writes
# `model.keras`, `metrics.json` (with bits per dimension for a discrete
# observation model), `samples.png` and `reconstructions.png`:
#
# ```bash
# keras-vae train --dataset your_data/digit_images --preset conv_mnist \
#     --likelihood discretized_logistic --epochs 30 --out runs/images
# keras-vae evaluate runs/images/model.keras --dataset your_data/digit_images --k 100
# ```
#
# (The preset keeps its own 50 latent units there, where the model
# above has 16.)
#
# Images of different sizes need `--image-size HEIGHT,WIDTH`;
# `--color-mode rgb` reads three channels.

# %% [markdown]
# # Part 2: a CSV table of mixed columns
#
# The table here is scikit-learn's breast-cancer data (569 tumours,
# bundled): the nine "mean" measurements other than the radius as
# numbers, the diagnosis as a text column of two values, and the
# quartile of the radius as a text category (`"small"` to
# `"very large"`), which the model has to infer from the other
# measurements since the radius itself is left out. It is written to a
# CSV file, as a user's table would arrive.

# %%
from sklearn.datasets import load_breast_cancer

cancer = load_breast_cancer(as_frame=True)
measurements = [c for c in cancer.frame.columns if c.startswith("mean ") and c != "mean radius"]
table = cancer.frame[measurements].copy()
table.insert(0, "diagnosis", np.where(cancer.target == 0, "malignant", "benign"))
table.insert(1, "size", pd.qcut(cancer.frame["mean radius"], 4,
                                labels=["small", "medium", "large", "very large"]).astype(str))
CSV = pathlib.Path(DATA_DIR) / "tumours.csv"
CSV.parent.mkdir(parents=True, exist_ok=True)
table.to_csv(CSV, index=False)
print(f"wrote {CSV}: {table.shape[0]} rows, {table.shape[1]} columns")
table.head()

# %% [markdown]
# ## The schema
#
# `load_data` on a `.csv`, `.tsv` or `.parquet` file infers a
# `TableSchema`, column by column:
#
# - **numeric** columns (numbers with many values) get a Gaussian,
#   standardised with the training rows' mean and standard deviation;
# - **binary** columns (exactly two values: booleans, 0/1, yes/no, ...)
#   get a Bernoulli;
# - **categorical** columns (text, and integers with at most 10 values)
#   get a Categorical over the values seen in the file.
#
# `Data.x` is the encoded float matrix (numeric columns first, then
# binary, then categorical class indices), `Data.frame` the split's
# rows as read, and `schema.observation()` the `MixedObservation` head
# that models each column with its family. Missing values, a column with
# one value or an identifier-like text column stop with an error naming
# the column.

# %%
table_train = datasets.load_data(CSV, "train")
table_test = datasets.load_data(CSV, "test")
schema = table_train.schema
print(f"{schema}: {len(table_train.x)} training and {len(table_test.x)} held-out rows, "
      f"matrix of {schema.width} columns")
pd.DataFrame([c.to_dict() for c in schema.columns]).set_index("name")

# %%
if TABLE_EPOCHS is None:
    TABLE_EPOCHS = 40 if QUICK else 300
table_model = keras_vae.VAE(
    schema.width, latent_dim=4, hidden_dims=(64, 64), activation="relu",
    likelihood=schema.observation(), seed=SEED,
)
table_model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)  # small: XLA would not pay
start = time.time()
table_model.fit(table_train.x, epochs=TABLE_EPOCHS, batch_size=32, verbose=0)
table_test_metrics = table_model.evaluate(table_test.x, verbose=0, return_dict=True)
print(f"table model: {TABLE_EPOCHS} epochs in {time.time() - start:.1f} s; "
      f"held-out ELBO {table_test_metrics['elbo']:.2f} nats per row")

# %% [markdown]
# ## Reconstruction of held-out rows, column by column
#
# Each held-out row is encoded, decoded at its posterior mean and turned
# back into a row of the table by `schema.decode` (numbers in their
# original units, labels as the original text). For the binary and
# categorical columns the score is the fraction of rows whose value comes
# back, beside the rate of always guessing the most common value; for
# numeric columns it is the RMSE as a fraction of the column's standard
# deviation (1.0 is what predicting the mean scores).

# %%
reconstructed = schema.decode(keras.ops.convert_to_numpy(table_model.reconstruct(table_test.x)))
truth = table_test.frame
quality = []
for column in schema.columns:
    if column.kind == "numeric":
        rmse = np.sqrt(np.mean((reconstructed[column.name] - truth[column.name]) ** 2))
        quality.append({"column": column.name, "kind": column.kind, "RMSE / std": rmse / column.std})
    else:
        accuracy = (reconstructed[column.name] == truth[column.name]).mean()
        majority = truth[column.name].value_counts(normalize=True).iloc[0]
        quality.append({"column": column.name, "kind": column.kind, "accuracy": accuracy, "majority": majority})
        print(f"{column.name} ({column.kind}): held-out accuracy {accuracy:.3f}, majority class {majority:.3f}")
quality = pd.DataFrame(quality).set_index("column")
print(f"numeric columns: RMSE / std {quality['RMSE / std'].mean():.3f} on average")
quality

# %% [markdown]
# ## Samples, in the table's own types
#
# `model.sample(n)["x"]` draws rows from the model ($z \sim p(z)$, then
# every column from its own distribution given $z$); `schema.decode`
# returns them as a DataFrame with the CSV's columns and dtypes. The
# mix of diagnoses and sizes in many samples should resemble the
# table's.

# %%
sampled = schema.decode(keras.ops.convert_to_numpy(table_model.sample(1000, seed=SEED)["x"]))
print(f"sampled columns and dtypes match the table's: {sampled.dtypes.equals(table_train.frame.dtypes)}")
print(pd.DataFrame({
    "table": table_train.frame["diagnosis"].value_counts(normalize=True),
    "samples": sampled["diagnosis"].value_counts(normalize=True),
}).round(3))
sampled.head(8)

# %% [markdown]
# ### On the command line
#
# `keras-vae train --dataset TABLE.csv` infers the same schema, trains
# the mixed model and writes `schema.json` (to encode new rows the same
# way), `samples.csv` (decoded samples) and `reconstructions.csv`
# (the held-out rows, reconstructed) beside the model:
#
# ```bash
# keras-vae train --dataset your_data/tumours.csv --latent-dims 4 --hidden-dims 64,64 \
#     --activation relu --epochs 300 --batch-size 32 --learning-rate 0.003 --out runs/table
# keras-vae evaluate runs/table/model.keras --dataset your_data/tumours.csv --k 100
# ```

# %% [markdown]
# # Part 3: a class-conditional VAE
#
# With labels, `keras_vae.VAE(..., condition_dim=K)` models
# $q(z \mid x, y)$ and $p(x \mid z, y)$ for a condition $y$ of $K$
# floats, here the one-hot digit label: the encoder reads the image with
# $y$ appended, the decoder the code with $y$ appended, and the prior
# stays $p(z) = \mathcal N(0, I)$. The data are pairs, `fit((x, y))`.
# The same VAE without `condition_dim`, trained on the images alone, is
# the comparison. MNIST images
# are binarised once with a fixed seed here; the 8x8 digits are
# thresholded.

# %%
if CONDITIONAL_EPOCHS is None:
    CONDITIONAL_EPOCHS = (30 if DATASET == "digits" else 5) if QUICK else 50
y_train_onehot = keras.utils.to_categorical(y_train, 10).astype("float32")
y_test_onehot = keras.utils.to_categorical(y_test, 10).astype("float32")
x_pairs = x_train_bin if DATASET == "digits" else datasets.binarize(x_train, "static", seed=SEED)

models = {}
for name, condition_dim, data in (
    ("conditional", 10, (x_pairs, y_train_onehot)),  # pairs (x, y)
    ("unconditional", None, x_pairs),                # the images alone
):
    model = keras_vae.VAE(INPUT_DIM, latent_dim=16, hidden_dims=(200, 200), condition_dim=condition_dim, seed=SEED)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    start = time.time()
    model.fit(data, epochs=CONDITIONAL_EPOCHS, batch_size=BATCH_SIZE, verbose=0)
    print(f"{name}: {CONDITIONAL_EPOCHS} epochs in {time.time() - start:.1f} s")
    models[name] = model
conditional = models["conditional"]

# %% [markdown]
# ## Samples, one row per class
#
# `plotting.plot_class_samples` decodes the same codes $z \sim p(z)$
# with each one-hot condition: a row is a class, a column one code, so
# what the code carries (slant, thickness, ...) is shared along a
# column. `conditional.sample(n, condition=y, seed=...)` draws samples
# of one class (`y` of shape `[K]`) or of one class per row (`[n, K]`).

# %%
plotting.plot_class_samples(conditional, n_per_class=10, image_shape=IMAGE_SHAPE, seed=SEED)

# %% [markdown]
# ## log p(x | y) against log p(x)
#
# `evaluation.log_likelihood(model, (x, y), k)` estimates
# $\log p(x \mid y)$ by importance sampling with $q(z \mid x, y)$ as the
# proposal. For exact models, $\log p(x \mid y) - \log p(x) =
# \log p(y \mid x) - \log p(y)$, at most $\log 10 \approx 2.3$ nats for
# ten equally common classes; two trained VAEs also differ in how well
# each fits, so the measured gap can be larger.

# %%
ll_conditional = evaluation.log_likelihood(conditional, (x_test_bin, y_test_onehot), k=K_EVAL, seed=SEED, verbose=0)
ll_unconditional = evaluation.log_likelihood(models["unconditional"], x_test_bin, k=K_EVAL, seed=SEED, verbose=0)
print(f"test log p(x | y): {ll_conditional.mean:.3f} +- {ll_conditional.stderr:.3f} nats per image (k = {K_EVAL})")
print(f"test log p(x): {ll_unconditional.mean:.3f} +- {ll_unconditional.stderr:.3f} nats per image (k = {K_EVAL})")
print(f"log p(x | y) - log p(x): {ll_conditional.mean - ll_unconditional.mean:.3f} nats")

# %% [markdown]
# The conditional model is also a classifier: by Bayes' rule,
# $p(y \mid x) \propto p(x \mid y)\, p(y)$, so the class whose condition
# makes the image most probable is the prediction (classes are about
# equally common here, so $p(y)$ is left out).

# %%
n_classify = min(200, len(x_test_bin))
scores = np.stack([
    evaluation.log_likelihood(
        conditional, (x_test_bin[:n_classify], np.tile(np.eye(10, dtype="float32")[c], (n_classify, 1))),
        k=20, seed=SEED, verbose=0,
    ).values
    for c in range(10)
], axis=1)
accuracy = np.mean(scores.argmax(axis=1) == y_test[:n_classify])
print(f"argmax_y log p(x | y) classifies {accuracy:.1%} of {n_classify} test images correctly")

# %% [markdown]
# ### On the command line
#
# `keras-vae train --condition labels` trains on the one-hot labels of a
# labelled source (a named dataset, a `.npz` with `y_train`, or a folder
# of class subfolders); `samples.png` is then the per-class grid:
#
# ```bash
# keras-vae train --dataset your_data/digit_images --condition labels \
#     --binarization static --latent-dims 16 --epochs 50 --out runs/conditional
# keras-vae sample runs/conditional/model.keras --n 100 --out conditional_samples.png
# ```

# %% [markdown]
# ## Next
#
# - `01_vae_mnist.ipynb`: the ELBO, the reparameterisation trick and
#   $\log p(x)$ by importance sampling, step by step.
# - `03_export_and_serve.ipynb`: export a model to SavedModel and TFLite
#   and serve it without keras-vae (a conditional model's signatures take
#   the condition as an extra input).
