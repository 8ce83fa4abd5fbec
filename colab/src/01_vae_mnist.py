# Source of colab/01_vae_mnist.ipynb in the jupytext percent format: edit this file, then run
# `python colab/build_notebooks.py` to rewrite the notebook (see that script for the format).
# A cell's last expression is displayed, as in the notebook, so B018 does not apply:
# ruff: noqa: B018

# %% [markdown]
# # A variational autoencoder on MNIST
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-vae/keras-vae/blob/main/colab/01_vae_mnist.ipynb)
#
# This notebook trains a variational autoencoder (VAE; Kingma & Welling,
# *Auto-Encoding Variational Bayes*, 2013) with `keras_vae.VAE` and
# `model.fit`, then looks at what it learned: samples, reconstructions,
# the 2-D latent manifold, the latent space coloured by digit label, and
# the model's log-likelihood $\log p(x)$ estimated by importance
# sampling.
#
# **Quick mode** (the default) trains for a few epochs on small data --
# scikit-learn's bundled 8x8 digits, or a slice of MNIST when the
# environment variable `KERAS_VAE_MNIST_PATH` names a local copy -- and
# runs in well under a minute on a CPU. For the real thing set
# `QUICK = False` in the parameter cell: all of MNIST (downloaded by
# tensorflow-datasets, or the local file) and 100 epochs; in Colab,
# pick a GPU runtime.

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

LATENT_DIM = 2            # 2 for the manifold picture; 16-50 give a better log p(x)
HIDDEN_DIMS = (200, 200)  # encoder widths; the decoder mirrors them
BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
LEARNING_RATE = 1e-3
EPOCHS = None             # None: 50 on digits, 5 on the MNIST slice (quick); 100 (full)
K_EVAL = None             # importance samples per image for log p(x); None: 100 (quick), 1000 (full)

# %%
# %matplotlib inline
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

import time

import keras
import numpy as np
import tensorflow as tf

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import objectives
from keras_vae import plotting

keras.utils.set_random_seed(SEED)
print(f"keras {keras.__version__} ({keras.backend.backend()} backend), quick mode: {QUICK}")

# %% [markdown]
# ## Data
#
# Pixel intensities in $[0, 1]$ are read as the probabilities of binary
# pixels, and the model's $p(x \mid z)$ is a product of Bernoullis. As
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

# %%
plotting.image_grid(x_test_bin[:32], IMAGE_SHAPE, ncols=16, title="Binarised test images")

# %% [markdown]
# ## The model and its objective
#
# The generative model draws a code from the prior and an image given
# the code,
# $$p(z) = \mathcal N(0, I), \qquad
# p_\theta(x \mid z) = \prod_d \mathrm{Bernoulli}\big(x_d;\ \sigma(f_\theta(z))_d\big),$$
# where the *decoder* $f_\theta$ is an MLP. The posterior $p(z \mid x)$ is
# intractable, so an *encoder* MLP outputs the mean and (diagonal)
# standard deviation of an approximation
# $q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)$.
# Both are trained together by maximising the evidence lower bound
# (ELBO) on $\log p(x)$:
# $$\log p_\theta(x) \;\ge\; \mathcal L(x) \;=\;
# \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big] \;-\; \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big).$$
# The gap is $\mathrm{KL}(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x))$, so raising
# the ELBO both fits the data and pulls $q$ towards the true posterior.
#
# **Reparameterisation trick.** The expectation is estimated with $L$
# samples (`n_samples`, default 1) written as a differentiable function
# of the encoder's output and independent noise,
# $$z = \mu + \Sigma^{1/2} \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I),$$
# so the gradient in $\phi$ flows through the sample by backpropagation
# (with `covariance="full"` the encoder predicts a lower-triangular
# $\Sigma^{1/2}$ instead of a diagonal one).
#
# **The KL term.** Between two Gaussians it has a closed form,
# $\mathrm{KL} = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big)$;
# keras-vae uses it by default (`kl="analytic"`, via
# `tfd.kl_divergence`). With `kl="mc"` it is instead estimated at the
# same samples as $\log q(z \mid x) - \log p(z)$: unbiased, but noisy.
#
# The training loss is $-\mathcal L$ averaged over the batch; Keras
# reports `elbo`, `reconstruction` ($\mathbb E_q \log p(x \mid z)$) and
# `kl`, in nats per example, with `elbo = reconstruction - kl`.

# %% [markdown]
# ## Training

# %%
if EPOCHS is None:
    EPOCHS = (50 if DATASET == "digits" else 5) if QUICK else 100
if K_EVAL is None:
    K_EVAL = 100 if QUICK else 1000

model = keras_vae.VAE(INPUT_DIM, latent_dim=LATENT_DIM, hidden_dims=HIDDEN_DIMS, seed=SEED)
model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
start = time.time()
history = model.fit(
    train_ds, epochs=EPOCHS, validation_data=(x_test_bin,), verbose=2 if not QUICK else 0
)
print(f"{EPOCHS} epochs in {time.time() - start:.1f} s")

# %%
plotting.plot_history(history)

# %%
test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
print(f"test ELBO: {test['elbo']:.3f} nats per example")
print(f"  = reconstruction {test['reconstruction']:.3f} - KL {test['kl']:.3f}")

# %% [markdown]
# ## Samples
#
# Ancestral sampling: $z \sim p(z)$, then the mean of $p(x \mid z)$ (the
# pixel probabilities; `model.sample(n)["x"]` holds binary draws).

# %%
plotting.plot_samples(model, n=64, image_shape=IMAGE_SHAPE, seed=SEED)

# %% [markdown]
# ## Reconstructions
#
# Each test image is encoded to its posterior mean $\mu_\phi(x)$ and
# decoded to the mean of $p(x \mid z = \mu_\phi(x))$.

# %%
plotting.plot_reconstructions(model, x_test_bin, n=20, image_shape=IMAGE_SHAPE)

# %% [markdown]
# ## The learned manifold
#
# With a 2-D latent space the whole generative model fits in one
# picture (Kingma & Welling's Figure 4): decode a grid of codes placed
# at quantiles of $\mathcal N(0, 1)$, so that every tile covers the same
# prior mass. With more latent dimensions the next cell shows latent
# traversals instead (one dimension varied at a time).

# %%
if model.latent_dim == 2:
    fig = plotting.plot_manifold(model, n=20 if DATASET == "mnist" else 12, image_shape=IMAGE_SHAPE)
else:
    fig = plotting.plot_traversal(model, x=x_test_bin, image_shape=IMAGE_SHAPE)
fig

# %% [markdown]
# ## The latent space
#
# Posterior means $\mu_\phi(x)$ of the test images, coloured by their
# label (which the model never saw). Classes form clusters, and the
# cloud is roughly the shape of the $\mathcal N(0, I)$ prior that the KL
# term pulls it towards.

# %%
plotting.plot_latent_space(model, x_test_bin[:5000], y_test[:5000])

# %% [markdown]
# ## The reparameterised ELBO by hand
#
# The same estimate the training step makes, written out for a few test
# images with the model's own pieces: encode, draw
# $z = \mu + \sigma \odot \varepsilon$, decode, and compare the
# analytic KL with its Monte Carlo estimate.

# %%
import tensorflow_probability as tfp

tfd = tfp.distributions
x = x_test_bin[:500]
q = model.encode(x)                                  # {"loc", "scale"}: q(z|x)
mu, sigma = np.asarray(q["loc"]), np.asarray(q["scale"])
eps = np.random.default_rng(SEED).standard_normal(mu.shape).astype("float32")
z = mu + sigma * eps                                 # the reparameterisation trick
logits = np.asarray(model.decode(z)["logits"])       # p(x|z) = Bernoulli(sigmoid(logits))
log_px_z = tfd.Independent(tfd.Bernoulli(logits=logits), 1).log_prob(x).numpy()

kl_analytic = 0.5 * np.sum(mu**2 + sigma**2 - 1.0 - 2.0 * np.log(sigma), axis=1)
log_q = tfd.Independent(tfd.Normal(mu, sigma), 1).log_prob(z).numpy()
log_p = tfd.Independent(tfd.Normal(np.zeros_like(z), 1.0), 1).log_prob(z).numpy()
kl_mc = log_q - log_p                                # one-sample Monte Carlo KL

print(f"E_q[log p(x|z)], 1 sample : {log_px_z.mean():9.3f}")
print(f"KL analytic               : {kl_analytic.mean():9.3f}  (per-image std {kl_analytic.std():.3f})")
print(f"KL Monte Carlo, 1 sample  : {kl_mc.mean():9.3f}  (per-image std {kl_mc.std():.3f})")
print(f"ELBO estimate             : {(log_px_z - kl_analytic).mean():9.3f}")

# The package computes the same terms: analytic or Monte Carlo top-layer KL.
for analytic in (True, False):
    parts = objectives.elbo(model.terms(x, k=100, analytic_kl=analytic))
    print(f"package, k=100, analytic_kl={analytic!s:5}: ELBO {float(np.mean(parts['elbo'])):.3f}, "
          f"KL {float(np.mean(parts['kl'])):.3f}")

# %% [markdown]
# ## log p(x) by importance sampling
#
# The ELBO is only a lower bound. With $q$ as a proposal, $p(x)$ itself
# is an expectation, and averaging $k$ importance weights gives
# $$\log p(x) \;\approx\; \log \frac1k \sum_{i=1}^{k} \frac{p(x, z_i)}{q(z_i \mid x)}, \qquad z_i \sim q(z \mid x).$$
# By Jensen's inequality the estimate is still a lower bound in
# expectation, but it tightens monotonically as $k$ grows and converges
# to $\log p(x)$ (Burda et al., 2015); $k = 1$ is the ELBO.
# `keras_vae.evaluation.log_likelihood` computes it in chunks of samples
# with a running log-sum-exp, so memory does not grow with $k$.

# %%
x_small = x_test_bin[:200]
print(f"{len(x_small)} test images; ESS = effective sample size (sum w)^2 / sum w^2")
for k in sorted({1, 10, 100, K_EVAL}):
    ll = evaluation.log_likelihood(model, x_small, k=k, seed=SEED)
    print(f"k = {k:5d}: log p(x) ~ {ll.mean:9.3f} +- {ll.stderr:.3f}   mean ESS {np.mean(ll.ess):8.1f}")

# %%
ll = evaluation.log_likelihood(model, x_test_bin, k=K_EVAL, seed=SEED)
print(f"test ELBO: {test['elbo']:.3f} nats per example")
print(f"test log p(x): {ll.mean:.3f} +- {ll.stderr:.3f} nats per example "
      f"(k = {K_EVAL}, {len(x_test_bin)} images)")
print(f"gap log p(x) - ELBO: {ll.mean - test['elbo']:.3f} nats")
units = evaluation.active_units(model, x_test_bin)
print(f"active units (Cov_x E_q[z] > 0.01): {units.total} of {model.latent_dim}")

# %% [markdown]
# The gap $\log p(x) - \mathcal L(x)$ is $\mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))$:
# how far the encoder is from the true posterior, image by image.
# (`ll.elbo` is the ELBO estimated from the same $k$ samples.)

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
ax.hist(ll.values - ll.elbo, bins=40)
ax.set_xlabel("log p(x) - ELBO (nats)")
ax.set_ylabel("test images")
ax.set_title(f"Posterior gap per image (k = {K_EVAL})")
fig

# %% [markdown]
# ## Next
#
# - `02_helmholtz_wake_sleep.ipynb`: two stochastic layers, trained by
#   the ELBO and by wake-sleep.
# - `03_export_and_serve.ipynb`: export the decoder to SavedModel and
#   TFLite and serve it without keras-vae.
