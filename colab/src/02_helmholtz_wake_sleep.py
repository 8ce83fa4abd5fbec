# Source of colab/02_helmholtz_wake_sleep.ipynb in the jupytext percent format: edit this file, then run
# `python colab/build_notebooks.py` to rewrite the notebook (see that script for the format).
# A cell's last expression is displayed, as in the notebook, so B018 does not apply:
# ruff: noqa: B018

# %% [markdown]
# # A Helmholtz machine trained by the ELBO and by wake-sleep
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-vae/keras-vae/blob/main/colab/02_helmholtz_wake_sleep.ipynb)
#
# A Helmholtz machine (Dayan, Hinton, Neal & Zemel, 1995) is a
# generative model with several layers of latent variables together
# with a recognition model that runs the other way. This notebook
# builds one architecture with two stochastic layers,
# `keras_vae.HelmholtzMachine`, and trains it twice: by the
# reparameterised ELBO (AEVB, Kingma & Welling, 2013) and by the
# wake-sleep algorithm (Hinton, Dayan, Frey & Neal, 1995). It compares
# their training curves, samples and log-likelihoods.
#
# Quick mode (the default) runs in well under a minute on a CPU; set
# `QUICK = False` for a full MNIST run.

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

# %% tags=["parameters"]
import os

# Quick mode (the default): few epochs on small data, seconds on a CPU -- scikit-learn's
# bundled 8x8 digits, or a slice of MNIST if KERAS_VAE_MNIST_PATH names a local copy.
# Full mode: all of MNIST (the local file, else tensorflow-datasets) and many epochs.
QUICK = os.environ.get("KERAS_VAE_QUICK", "1") == "1"
# A local MNIST in the Keras mnist.npz layout (x_train, y_train, x_test, y_test), or None.
MNIST_PATH = os.environ.get("KERAS_VAE_MNIST_PATH") or None
SEED = 0

BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
LEARNING_RATE = 1e-3
EPOCHS = None   # None: 30 on digits, 10 on the MNIST slice (quick); 100 (full)
K_EVAL = None   # importance samples for log p(x); None: 100 (quick), 1000 (full)

# %%
# %matplotlib inline
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

import time

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import plotting

print(f"keras {keras.__version__} ({keras.backend.backend()} backend), quick mode: {QUICK}")

# %% [markdown]
# ## The model
#
# With $M$ stochastic layers $h_1, \dots, h_M$ and $h_0 = x$, the
# generative model is a chain from the top layer down to the data,
# $$p(x, h) = p(h_M) \prod_{m=0}^{M-1} p(h_m \mid h_{m+1}),$$
# and the recognition model a chain from the data up,
# $$q(h \mid x) = \prod_{m=1}^{M} q(h_m \mid h_{m-1}).$$
# In keras-vae every arrow is a deterministic MLP followed by a
# distribution head: Gaussian layers here (diagonal, through a softplus
# scale), $p(h_M) = \mathcal N(0, I)$, and Bernoulli pixels. Bernoulli
# latent layers (`latent="bernoulli"`, the classic sigmoid belief net)
# are available too, but only for wake-sleep, since they cannot be
# reparameterised. A VAE is the case $M = 1$.
#
# ## Two ways to train it
#
# **ELBO (AEVB).** One objective for both models,
# $$\mathcal L(x) = \mathbb E_{q(h \mid x)}\big[\log p(x, h) - \log q(h \mid x)\big] \le \log p(x),$$
# estimated with reparameterised samples $h_m = \mu_m + \sigma_m \odot \varepsilon_m$
# drawn layer by layer and ascended in all weights at once. The top
# layer's KL to $\mathcal N(0, I)$ is analytic; the lower layers' terms
# are Monte Carlo.
#
# **Wake-sleep.** Two phases per batch, each a maximum-likelihood step
# for one of the two models on samples from the other:
#
# - *wake*: $h \sim q(h \mid x)$ on real images, held fixed (no gradient
#   through the sample); ascend $\log p(x, h)$ in the generative weights
#   only -- learning $p$ as if the recognised $h$ had been observed.
# - *sleep*: dream $(h, \tilde x) \sim p(h)\,p(x \mid h)$ by ancestral
#   sampling; ascend $\log q(h \mid \tilde x)$ in the recognition
#   weights only -- teaching $q$ to invert $p$ on its own fantasies.
#
# The wake phase is the ELBO's gradient for $p$, but the sleep phase
# is a *different objective*: it minimises
# $\mathrm{KL}\big(p(h \mid \tilde x) \,\|\, q(h \mid \tilde x)\big)$ averaged over
# dreams, the reverse direction of the ELBO's
# $\mathrm{KL}(q \,\|\, p(h \mid x))$ and on the model's data rather than
# the real data. So wake-sleep follows no single objective (nor is it
# guaranteed to converge), but it needs no reparameterisation. keras-vae
# routes the two gradients by variable list:
# `model.generative_variables` and `model.recognition_variables`.

# %% [markdown]
# ## Data
#
# Pixel intensities in $[0, 1]$ are read as the probabilities of binary
# pixels, and the model's $p(x \mid h_1)$ is a product of Bernoullis. As
# in Burda et al. (2015), MNIST training images are binarised
# *dynamically* (a fresh Bernoulli draw of every image each epoch, which
# also acts as a regulariser) and the test images once, with a fixed
# seed, so that $\log p(x)$ is the log-probability of a fixed binary
# image. `keras_vae.datasets.load` builds that `tf.data` pipeline, and
# `load_arrays` returns flat `float32` arrays with their labels. (The
# 8x8 digits of quick mode are thresholded at 1/2 instead.)

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
# ## One architecture, two objectives
#
# Whatever the objective, `fit` and `evaluate` report the ELBO, so the
# two runs' validation curves are on the same scale.

# %%
if EPOCHS is None:
    EPOCHS = (30 if DATASET == "digits" else 10) if QUICK else 100
if K_EVAL is None:
    K_EVAL = 100 if QUICK else 1000
if DATASET == "digits":  # 64 pixels
    LATENT_DIMS, HIDDEN_DIMS = (16, 8), ((100,), (50,))
else:                    # 784 pixels: Burda et al.'s two-stochastic-layer MNIST model
    LATENT_DIMS, HIDDEN_DIMS = (100, 50), ((200, 200), (100, 100))


def make_model(objective):
    return keras_vae.HelmholtzMachine(
        INPUT_DIM,
        latent_dims=LATENT_DIMS,        # h_1, h_2
        hidden_dims=HIDDEN_DIMS,        # networks x <-> h_1 and h_1 <-> h_2
        latent="gaussian",
        objective=objective,
        seed=SEED,
    )


# Wake-sleep trains only p for its first steps (the recognition delay, 1,000 steps by
# default), so that q's random projection of x gives p something to decode. A short run
# shortens the delay to half of its steps.
steps = EPOCHS * -(-len(x_train) // BATCH_SIZE)
OBJECTIVES = {
    "elbo": "elbo",
    "wake_sleep": keras_vae.objectives.WakeSleep(recognition_delay_steps=min(1000, steps // 2)),
}
print(f"{steps} training steps; wake-sleep's recognition delay: "
      f"{OBJECTIVES['wake_sleep'].recognition_delay_steps} steps")

probe = make_model(OBJECTIVES["wake_sleep"])
print(f"x[{INPUT_DIM}] <-> h1[{LATENT_DIMS[0]}] <-> h2[{LATENT_DIMS[1]}]: "
      f"{len(probe.generative_variables)} generative and "
      f"{len(probe.recognition_variables)} recognition variables")


# %%
models, histories = {}, {}
for objective in OBJECTIVES:
    keras.utils.set_random_seed(SEED)   # the same initial weights and data order
    model = make_model(OBJECTIVES[objective])
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    start = time.time()
    history = model.fit(
        train_ds, epochs=EPOCHS, validation_data=(x_test_bin,), verbose=0 if QUICK else 2
    )
    models[objective], histories[objective] = model, history
    print(f"{objective}: {EPOCHS} epochs in {time.time() - start:.1f} s, "
          f"final val ELBO {history.history['val_elbo'][-1]:.3f}")

# %%
plotting.plot_comparison(histories, metric="val_elbo")

# %% [markdown]
# The wake-sleep run also logs its two phase losses, `wake_loss`
# ($-\log p(x, h)$ on recognised $h$) and `sleep_loss`
# ($-\log q(h \mid \tilde x)$ on dreams). Neither is a bound on
# anything: since $\mathbb E_q[\log p(x, h)] = \mathcal L(x) + H[q(h \mid x)]$,
# the wake loss is $-\mathcal L(x) - H[q]$, and the sleep loss is the
# cross-entropy $H[p(h \mid \tilde x)] + \mathrm{KL}(p(h \mid \tilde x) \,\|\, q(h \mid \tilde x))$.
# Both contain entropies that change with the models, so they can rise
# while the ELBO improves.

# %%
plotting.plot_history(histories["wake_sleep"], metrics=("wake_loss", "sleep_loss", "kl"))

# %% [markdown]
# ## Samples side by side
#
# Ancestral samples $h_2 \sim p(h_2)$, $h_1 \sim p(h_1 \mid h_2)$, shown as
# the mean of $p(x \mid h_1)$, from the same seed.

# %%
def tile(images, ncols=8, gap=1):
    """[n, H*W] images -> one canvas, ncols per row, grey lines between them."""
    h, w = IMAGE_SHAPE
    images = np.asarray(images).reshape(-1, h, w)
    rows = -(-len(images) // ncols)
    canvas = np.full((rows * (h + gap) - gap, ncols * (w + gap) - gap), 0.5)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return canvas


fig = Figure(figsize=(10, 5.4))
axes = fig.subplots(1, 2)
for ax, (objective, model) in zip(axes, models.items()):
    ax.imshow(tile(model.sample(64, seed=SEED)["x_mean"]), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_title(f"trained by {objective}")
    ax.axis("off")
fig.suptitle("Samples: mean of p(x | h_1), h ~ p(h)")
fig


# %% [markdown]
# A collapsed model (one whose latent layers carry no information) draws
# samples that all look alike. Two checks: the active units of each
# stochastic layer (units whose posterior mean varies with the data,
# $\mathrm{Cov}_x\, \mathbb E_q[u] > 0.01$), and the mean distance between
# samples beside the same figure for test images.

# %%
def spread(images):
    """Mean Euclidean distance between the rows of images [n, D]."""
    images = np.asarray(images).reshape(len(images), -1)
    return np.sqrt(((images[:, None] - images[None]) ** 2).sum(-1)).mean()


data_spread = spread(x_test_bin[:200])
for objective, model in models.items():
    units = list(evaluation.active_units(model, x_test_bin).counts)
    samples = model.sample(200, seed=SEED)["x_mean"]
    print(f"{objective}: active units per layer {units}, "
          f"sample spread {spread(samples):.2f} (test images {data_spread:.2f})")


# %% [markdown]
# ## Test ELBO and log p(x)
#
# The ELBO measures the generative model *and* how well $q$ matches its
# posterior. Wake-sleep never trains $q$ to raise the ELBO, so its
# ELBO can understate its $p$. The importance-sampled
# $\log p(x) \approx \log \frac1k \sum_i p(x, h_i)/q(h_i \mid x)$
# (with $h_i \sim q(h \mid x)$) judges $p$ itself, and tightens as $k$
# grows; it still uses $q$ as the proposal, so a poor $q$ needs a
# larger $k$.

# %%
print(f"{'objective':<12} {'test ELBO':>10} {'log p(x)':>10} {'+-':>6}   (k = {K_EVAL})")
for objective, model in models.items():
    test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
    ll = evaluation.log_likelihood(model, x_test_bin, k=K_EVAL, seed=SEED)
    print(f"{objective:<12} {test['elbo']:>10.3f} {ll.mean:>10.3f} {ll.stderr:>6.3f}")

# %% [markdown]
# In Kingma & Welling's experiments (their Figure 2) AEVB reaches a
# better bound faster than wake-sleep on the same architecture; the
# full-mode run (`QUICK = False`) is the setting to compare with, and
# `benchmarks/wake_sleep_vs_aevb.py` adds the importance-weighted
# objectives (IWAE, reweighted wake-sleep).
