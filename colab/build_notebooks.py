"""Writes the Colab notebooks in this folder from the cell sources below.

The notebooks are generated so that their text stays reviewable as Python and
so that they are always committed without outputs. Edit this file, then run

    python colab/build_notebooks.py           # rewrite colab/*.ipynb
    python colab/build_notebooks.py --check   # exit 1 if a notebook is stale

``tests/test_notebooks.py`` runs the check and executes every notebook in
quick mode.
"""

import argparse
import pathlib
import sys
import textwrap

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
REPO = "keras-vae/keras-vae"


def colab_url(name):
    return f"https://colab.research.google.com/github/{REPO}/blob/main/colab/{name}"


def badge(name):
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(name)})"
    )


def _src(text):
    return textwrap.dedent(text).strip("\n")


def md(text):
    return ("markdown", _src(text), [])


def code(text, tags=()):
    return ("code", _src(text), list(tags))


def install(extras=""):
    """The install cell: pip-installs keras-vae from GitHub in Colab only."""
    spec = f"keras-vae{extras} @ git+https://github.com/{REPO}.git"
    return [
        md(
            """
            ## Setup

            In Colab the next cell installs keras-vae from GitHub (if pip
            upgrades TensorFlow, Colab asks to restart the session once: do so
            and run the notebook again). Anywhere else it does nothing: install
            the package first, e.g. `pip install -e ".[test]"` in a clone.
            """
        ),
        code(
            f"""
            import importlib.util
            import sys

            IN_COLAB = "google.colab" in sys.modules
            if IN_COLAB and importlib.util.find_spec("keras_vae") is None:
                %pip install -q "{spec}"
            """
        ),
    ]


QUICK_PARAMS = '''
import os

# Quick mode (the default): few epochs on small data, seconds on a CPU -- scikit-learn's
# bundled 8x8 digits, or a slice of MNIST if KERAS_VAE_MNIST_PATH names a local copy.
# Full mode: all of MNIST (the local file, else tensorflow-datasets) and many epochs.
QUICK = os.environ.get("KERAS_VAE_QUICK", "1") == "1"
# A local MNIST in the Keras mnist.npz layout (x_train, y_train, x_test, y_test), or None.
MNIST_PATH = os.environ.get("KERAS_VAE_MNIST_PATH") or None
SEED = 0
'''

DATA_CELL = code(
    """
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
        x_test_bin = datasets.binarize(x_test, "static", seed=1234)
    else:
        # The 8x8 digits have 17 grey levels and turn to noise under random binarisation:
        # threshold them at 1/2 instead, train and test alike.
        x_train_bin = datasets.binarize(x_train, "threshold")
        x_test_bin = datasets.binarize(x_test, "threshold")
        train_ds = tf.data.Dataset.from_tensor_slices(x_train_bin).shuffle(
            len(x_train_bin), seed=SEED).batch(BATCH_SIZE)
    print(f"{DATASET}: {len(x_train)} training and {len(x_test)} test images of {IMAGE_SHAPE} pixels")
    """
)

def data_prose(given="z"):
    """The markdown cell before DATA_CELL; ``given``: what p(x | .) conditions on."""
    return md(
        rf"""
        ## Data

        Pixel intensities in $[0, 1]$ are read as the probabilities of binary
        pixels, and the model's $p(x \mid {given})$ is a product of Bernoullis. As
        in Burda et al. (2015), MNIST training images are binarised
        *dynamically* (a fresh Bernoulli draw of every image each epoch, which
        also acts as a regulariser) and the test images once, with a fixed
        seed, so that $\log p(x)$ is the log-probability of a fixed binary
        image. `keras_vae.datasets.load` builds that `tf.data` pipeline, and
        `load_arrays` returns flat `float32` arrays with their labels. (The
        8x8 digits of quick mode are thresholded at 1/2 instead.)
        """
    )


# ---------------------------------------------------------------------------
# 01: VAE on MNIST
# ---------------------------------------------------------------------------

NB01 = "01_vae_mnist.ipynb"
CELLS_01 = [
    md(
        f"""
        # A variational autoencoder on MNIST

        {badge(NB01)}

        This notebook trains a variational autoencoder (VAE; Kingma & Welling,
        *Auto-Encoding Variational Bayes*, 2013) with `keras_vae.VAE` and
        `model.fit`, then looks at what it learned: samples, reconstructions,
        the 2-D latent manifold, the latent space coloured by digit label, and
        the model's log-likelihood $\\log p(x)$ estimated by importance
        sampling.

        **Quick mode** (the default) trains for a few epochs on small data --
        scikit-learn's bundled 8x8 digits, or a slice of MNIST when the
        environment variable `KERAS_VAE_MNIST_PATH` names a local copy -- and
        runs in well under a minute on a CPU. For the real thing set
        `QUICK = False` in the parameter cell: all of MNIST (downloaded by
        tensorflow-datasets, or the local file) and 100 epochs; in Colab,
        pick a GPU runtime.
        """
    ),
    *install(),
    md(
        """
        ## Parameters

        The next cell is tagged `parameters` (papermill can override it).
        `KERAS_VAE_QUICK=0` in the environment selects full mode without
        editing it.
        """
    ),
    code(
        QUICK_PARAMS
        + '''
LATENT_DIM = 2            # 2 for the manifold picture; 16-50 give a better log p(x)
HIDDEN_DIMS = (200, 200)  # encoder widths; the decoder mirrors them
BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
LEARNING_RATE = 1e-3
EPOCHS = None             # None: 50 on digits, 5 on the MNIST slice (quick); 100 (full)
K_EVAL = None             # importance samples per image for log p(x); None: 100 (quick), 1000 (full)
''',
        tags=["parameters"],
    ),
    code(
        """
        %matplotlib inline
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

        import time

        import keras
        import numpy as np
        import tensorflow as tf

        import keras_vae
        from keras_vae import datasets, evaluation, objectives, plotting

        keras.utils.set_random_seed(SEED)
        print(f"keras {keras.__version__} ({keras.backend.backend()} backend), quick mode: {QUICK}")
        """
    ),
    data_prose(),
    DATA_CELL,
    code(
        """
        plotting.image_grid(x_test_bin[:32], IMAGE_SHAPE, ncols=16, title="Binarised test images")
        """
    ),
    md(
        r"""
        ## The model and its objective

        The generative model draws a code from the prior and an image given
        the code,
        $$p(z) = \mathcal N(0, I), \qquad p_\theta(x \mid z) = \prod_d \mathrm{Bernoulli}\big(x_d;\ \sigma(f_\theta(z))_d\big),$$
        where the *decoder* $f_\theta$ is an MLP. The posterior $p(z \mid x)$ is
        intractable, so an *encoder* MLP outputs the mean and (diagonal)
        standard deviation of an approximation
        $q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)$.
        Both are trained together by maximising the evidence lower bound
        (ELBO) on $\log p(x)$:
        $$\log p_\theta(x) \;\ge\; \mathcal L(x) \;=\; \mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big] \;-\; \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big).$$
        The gap is $\mathrm{KL}(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x))$, so raising
        the ELBO both fits the data and pulls $q$ towards the true posterior.

        **Reparameterisation trick.** The expectation is estimated with $L$
        samples (`n_samples`, default 1) written as a differentiable function
        of the encoder's output and independent noise,
        $$z = \mu + \Sigma^{1/2} \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I),$$
        so the gradient in $\phi$ flows through the sample by backpropagation
        (with `covariance="full"` the encoder predicts a lower-triangular
        $\Sigma^{1/2}$ instead of a diagonal one).

        **The KL term.** Between two Gaussians it has a closed form,
        $\mathrm{KL} = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big)$;
        keras-vae uses it by default (`kl="analytic"`, via
        `tfd.kl_divergence`). With `kl="mc"` it is instead estimated at the
        same samples as $\log q(z \mid x) - \log p(z)$: unbiased, but noisy.

        The training loss is $-\mathcal L$ averaged over the batch; Keras
        reports `elbo`, `reconstruction` ($\mathbb E_q \log p(x \mid z)$) and
        `kl`, in nats per example, with `elbo = reconstruction - kl`.
        """
    ),
    md("## Training"),
    code(
        """
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
        """
    ),
    code(
        """
        plotting.plot_history(history)
        """
    ),
    code(
        """
        test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
        print(f"test ELBO: {test['elbo']:.3f} nats per example")
        print(f"  = reconstruction {test['reconstruction']:.3f} - KL {test['kl']:.3f}")
        """
    ),
    md(
        r"""
        ## Samples

        Ancestral sampling: $z \sim p(z)$, then the mean of $p(x \mid z)$ (the
        pixel probabilities; `model.sample(n)["x"]` holds binary draws).
        """
    ),
    code(
        """
        plotting.plot_samples(model, n=64, image_shape=IMAGE_SHAPE, seed=SEED)
        """
    ),
    md(
        r"""
        ## Reconstructions

        Each test image is encoded to its posterior mean $\mu_\phi(x)$ and
        decoded to the mean of $p(x \mid z = \mu_\phi(x))$.
        """
    ),
    code(
        """
        plotting.plot_reconstructions(model, x_test_bin, n=20, image_shape=IMAGE_SHAPE)
        """
    ),
    md(
        r"""
        ## The learned manifold

        With a 2-D latent space the whole generative model fits in one
        picture (Kingma & Welling's Figure 4): decode a grid of codes placed
        at quantiles of $\mathcal N(0, 1)$, so that every tile covers the same
        prior mass. With more latent dimensions the next cell shows latent
        traversals instead (one dimension varied at a time).
        """
    ),
    code(
        """
        if model.latent_dim == 2:
            fig = plotting.plot_manifold(model, n=20 if DATASET == "mnist" else 12, image_shape=IMAGE_SHAPE)
        else:
            fig = plotting.plot_traversal(model, x=x_test_bin, image_shape=IMAGE_SHAPE)
        fig
        """
    ),
    md(
        r"""
        ## The latent space

        Posterior means $\mu_\phi(x)$ of the test images, coloured by their
        label (which the model never saw). Classes form clusters, and the
        cloud is roughly the shape of the $\mathcal N(0, I)$ prior that the KL
        term pulls it towards.
        """
    ),
    code(
        """
        plotting.plot_latent_space(model, x_test_bin[:5000], y_test[:5000])
        """
    ),
    md(
        r"""
        ## The reparameterised ELBO by hand

        The same estimate the training step makes, written out for a few test
        images with the model's own pieces: encode, draw
        $z = \mu + \sigma \odot \varepsilon$, decode, and compare the
        analytic KL with its Monte Carlo estimate.
        """
    ),
    code(
        """
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
        """
    ),
    md(
        r"""
        ## log p(x) by importance sampling

        The ELBO is only a lower bound. With $q$ as a proposal, $p(x)$ itself
        is an expectation, and averaging $k$ importance weights gives
        $$\log p(x) \;\approx\; \log \frac1k \sum_{i=1}^{k} \frac{p(x, z_i)}{q(z_i \mid x)}, \qquad z_i \sim q(z \mid x).$$
        By Jensen's inequality the estimate is still a lower bound in
        expectation, but it tightens monotonically as $k$ grows and converges
        to $\log p(x)$ (Burda et al., 2015); $k = 1$ is the ELBO.
        `keras_vae.evaluation.log_likelihood` computes it in chunks of samples
        with a running log-sum-exp, so memory does not grow with $k$.
        """
    ),
    code(
        """
        x_small = x_test_bin[:200]
        print(f"{len(x_small)} test images; ESS = effective sample size (sum w)^2 / sum w^2")
        for k in sorted({1, 10, 100, K_EVAL}):
            ll = evaluation.log_likelihood(model, x_small, k=k, seed=SEED)
            print(f"k = {k:5d}: log p(x) ~ {ll.mean:9.3f} +- {ll.stderr:.3f}   mean ESS {np.mean(ll.ess):8.1f}")
        """
    ),
    code(
        """
        ll = evaluation.log_likelihood(model, x_test_bin, k=K_EVAL, seed=SEED)
        print(f"test ELBO: {test['elbo']:.3f} nats per example")
        print(f"test log p(x): {ll.mean:.3f} +- {ll.stderr:.3f} nats per example "
              f"(k = {K_EVAL}, {len(x_test_bin)} images)")
        print(f"gap log p(x) - ELBO: {ll.mean - test['elbo']:.3f} nats")
        units = evaluation.active_units(model, x_test_bin)
        print(f"active units (Cov_x E_q[z] > 0.01): {units.total} of {model.latent_dim}")
        """
    ),
    md(
        r"""
        The gap $\log p(x) - \mathcal L(x)$ is $\mathrm{KL}(q(z \mid x) \,\|\, p(z \mid x))$:
        how far the encoder is from the true posterior, image by image.
        (`ll.elbo` is the ELBO estimated from the same $k$ samples.)
        """
    ),
    code(
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.2), layout="constrained")
        ax = fig.add_subplot()
        ax.hist(ll.values - ll.elbo, bins=40)
        ax.set_xlabel("log p(x) - ELBO (nats)")
        ax.set_ylabel("test images")
        ax.set_title(f"Posterior gap per image (k = {K_EVAL})")
        fig
        """
    ),
    md(
        """
        ## Next

        - `02_helmholtz_wake_sleep.ipynb`: two stochastic layers, trained by
          the ELBO and by wake-sleep.
        - `03_export_and_serve.ipynb`: export the decoder to SavedModel and
          TFLite and serve it without keras-vae.
        """
    ),
]


# ---------------------------------------------------------------------------
# 02: Helmholtz machine, ELBO vs wake-sleep
# ---------------------------------------------------------------------------

NB02 = "02_helmholtz_wake_sleep.ipynb"
CELLS_02 = [
    md(
        f"""
        # A Helmholtz machine trained by the ELBO and by wake-sleep

        {badge(NB02)}

        A Helmholtz machine (Dayan, Hinton, Neal & Zemel, 1995) is a
        generative model with several layers of latent variables together
        with a recognition model that runs the other way. This notebook
        builds one architecture with two stochastic layers,
        `keras_vae.HelmholtzMachine`, and trains it twice: by the
        reparameterised ELBO (AEVB, Kingma & Welling, 2013) and by the
        wake-sleep algorithm (Hinton, Dayan, Frey & Neal, 1995). It compares
        their training curves, samples and log-likelihoods.

        Quick mode (the default) runs in well under a minute on a CPU; set
        `QUICK = False` for a full MNIST run.
        """
    ),
    *install(),
    md("## Parameters"),
    code(
        QUICK_PARAMS
        + '''
BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
LEARNING_RATE = 1e-3
EPOCHS = None   # None: 30 on digits, 5 on the MNIST slice (quick); 100 (full)
K_EVAL = None   # importance samples for log p(x); None: 100 (quick), 1000 (full)
''',
        tags=["parameters"],
    ),
    code(
        """
        %matplotlib inline
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up

        import time

        import keras
        import numpy as np
        import tensorflow as tf
        from matplotlib.figure import Figure

        import keras_vae
        from keras_vae import datasets, evaluation, plotting

        print(f"keras {keras.__version__} ({keras.backend.backend()} backend), quick mode: {QUICK}")
        """
    ),
    md(
        r"""
        ## The model

        With $M$ stochastic layers $h_1, \dots, h_M$ and $h_0 = x$, the
        generative model is a chain from the top layer down to the data,
        $$p(x, h) = p(h_M) \prod_{m=0}^{M-1} p(h_m \mid h_{m+1}),$$
        and the recognition model a chain from the data up,
        $$q(h \mid x) = \prod_{m=1}^{M} q(h_m \mid h_{m-1}).$$
        In keras-vae every arrow is a deterministic MLP followed by a
        distribution head: Gaussian layers here (diagonal, through a softplus
        scale), $p(h_M) = \mathcal N(0, I)$, and Bernoulli pixels. Bernoulli
        latent layers (`latent="bernoulli"`, the classic sigmoid belief net)
        are available too, but only for wake-sleep, since they cannot be
        reparameterised. A VAE is the case $M = 1$.

        ## Two ways to train it

        **ELBO (AEVB).** One objective for both models,
        $$\mathcal L(x) = \mathbb E_{q(h \mid x)}\big[\log p(x, h) - \log q(h \mid x)\big] \le \log p(x),$$
        estimated with reparameterised samples $h_m = \mu_m + \sigma_m \odot \varepsilon_m$
        drawn layer by layer and ascended in all weights at once. The top
        layer's KL to $\mathcal N(0, I)$ is analytic; the lower layers' terms
        are Monte Carlo.

        **Wake-sleep.** Two phases per batch, each a maximum-likelihood step
        for one of the two models on samples from the other:

        - *wake*: $h \sim q(h \mid x)$ on real images, held fixed (no gradient
          through the sample); ascend $\log p(x, h)$ in the generative weights
          only -- learning $p$ as if the recognised $h$ had been observed.
        - *sleep*: dream $(h, \tilde x) \sim p(h)\,p(x \mid h)$ by ancestral
          sampling; ascend $\log q(h \mid \tilde x)$ in the recognition
          weights only -- teaching $q$ to invert $p$ on its own fantasies.

        The wake phase is the ELBO's gradient for $p$, but the sleep phase
        is a *different objective*: it minimises
        $\mathrm{KL}\big(p(h \mid \tilde x) \,\|\, q(h \mid \tilde x)\big)$ averaged over
        dreams, the reverse direction of the ELBO's
        $\mathrm{KL}(q \,\|\, p(h \mid x))$ and on the model's data rather than
        the real data. So wake-sleep follows no single objective (nor is it
        guaranteed to converge), but it needs no reparameterisation. keras-vae
        routes the two gradients by variable list:
        `model.generative_variables` and `model.recognition_variables`.
        """
    ),
    data_prose("h_1"),
    DATA_CELL,
    md(
        r"""
        ## One architecture, two objectives

        Whatever the objective, `fit` and `evaluate` report the ELBO, so the
        two runs' validation curves are on the same scale.
        """
    ),
    code(
        """
        if EPOCHS is None:
            EPOCHS = (30 if DATASET == "digits" else 5) if QUICK else 100
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


        probe = make_model("wake_sleep")
        print(f"x[{INPUT_DIM}] <-> h1[{LATENT_DIMS[0]}] <-> h2[{LATENT_DIMS[1]}]: "
              f"{len(probe.generative_variables)} generative and "
              f"{len(probe.recognition_variables)} recognition variables")
        """
    ),
    code(
        """
        models, histories = {}, {}
        for objective in ("elbo", "wake_sleep"):
            keras.utils.set_random_seed(SEED)   # the same initial weights and data order
            model = make_model(objective)
            model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
            start = time.time()
            history = model.fit(
                train_ds, epochs=EPOCHS, validation_data=(x_test_bin,), verbose=0 if QUICK else 2
            )
            models[objective], histories[objective] = model, history
            print(f"{objective}: {EPOCHS} epochs in {time.time() - start:.1f} s, "
                  f"final val ELBO {history.history['val_elbo'][-1]:.3f}")
        """
    ),
    code(
        """
        plotting.plot_comparison(histories, metric="val_elbo")
        """
    ),
    md(
        r"""
        The wake-sleep run also logs its two phase losses, `wake_loss`
        ($-\log p(x, h)$ on recognised $h$) and `sleep_loss`
        ($-\log q(h \mid \tilde x)$ on dreams). Neither is a bound on
        anything: since $\mathbb E_q[\log p(x, h)] = \mathcal L(x) + H[q(h \mid x)]$,
        the wake loss is $-\mathcal L(x) - H[q]$, and the sleep loss is the
        cross-entropy $H[p(h \mid \tilde x)] + \mathrm{KL}(p(h \mid \tilde x) \,\|\, q(h \mid \tilde x))$.
        Both contain entropies that change with the models, so they can rise
        while the ELBO improves.
        """
    ),
    code(
        """
        plotting.plot_history(histories["wake_sleep"], metrics=("wake_loss", "sleep_loss", "kl"))
        """
    ),
    md(
        r"""
        ## Samples side by side

        Ancestral samples $h_2 \sim p(h_2)$, $h_1 \sim p(h_1 \mid h_2)$, shown as
        the mean of $p(x \mid h_1)$, from the same seed.
        """
    ),
    code(
        """
        def tile(images, ncols=8, gap=1):
            \"\"\"[n, H*W] images -> one canvas, ncols per row, grey lines between them.\"\"\"
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
        """
    ),
    md(
        r"""
        ## Test ELBO and log p(x)

        The ELBO measures the generative model *and* how well $q$ matches its
        posterior. Wake-sleep never trains $q$ to raise the ELBO, so its
        ELBO can understate its $p$. The importance-sampled
        $\log p(x) \approx \log \frac1k \sum_i p(x, h_i)/q(h_i \mid x)$
        (with $h_i \sim q(h \mid x)$) judges $p$ itself, and tightens as $k$
        grows; it still uses $q$ as the proposal, so a poor $q$ needs a
        larger $k$.
        """
    ),
    code(
        """
        print(f"{'objective':<12} {'test ELBO':>10} {'log p(x)':>10} {'+-':>6}   (k = {K_EVAL})")
        for objective, model in models.items():
            test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
            ll = evaluation.log_likelihood(model, x_test_bin, k=K_EVAL, seed=SEED)
            print(f"{objective:<12} {test['elbo']:>10.3f} {ll.mean:>10.3f} {ll.stderr:>6.3f}")
        """
    ),
    md(
        """
        In Kingma & Welling's experiments (their Figure 2) AEVB reaches a
        better bound faster than wake-sleep on the same architecture; the
        full-mode run (`QUICK = False`) is the setting to compare with, and
        `benchmarks/wake_sleep_vs_aevb.py` adds the importance-weighted
        objectives (IWAE, reweighted wake-sleep).
        """
    ),
]


# ---------------------------------------------------------------------------
# 03: export and serve
# ---------------------------------------------------------------------------

NB03 = "03_export_and_serve.ipynb"
CELLS_03 = [
    md(
        f"""
        # Export a VAE and serve it without keras-vae

        {badge(NB03)}

        A trained model is only useful where it can run. This notebook
        trains a small VAE, exports it with `keras_vae.export.export_model`
        to a TensorFlow **SavedModel** and to **TFLite** (LiteRT) flatbuffers,
        loads each back with nothing but TensorFlow or LiteRT
        (`tf.saved_model.load`, `ai_edge_litert.interpreter.Interpreter`),
        decodes latent codes, and checks the outputs against the Keras model
        (maximum absolute difference), the file sizes and the latency.

        Quick mode (the default) takes well under a minute on a CPU; set
        `QUICK = False` to train on all of MNIST first.
        """
    ),
    *install("[export]"),
    md("## Parameters"),
    code(
        QUICK_PARAMS
        + '''
LATENT_DIM = 16
HIDDEN_DIMS = (200, 200)
BATCH_SIZE = None          # None: 32 on digits, 100 on MNIST
EPOCHS = None              # None: 30 on digits, 5 on the MNIST slice (quick); 50 (full)
EXPORT_DIR = "vae_export"  # relative to the working directory; replaced if it exists
QUANTIZE = "dynamic"       # also write int8-weight TFLite files; None to skip
LATENCY_REPEATS = None     # timed calls per measurement; None: 20 (quick), 200 (full)
''',
        tags=["parameters"],
    ),
    code(
        """
        %matplotlib inline
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
        from keras_vae import datasets, export, plotting

        keras.utils.set_random_seed(SEED)
        print(f"tensorflow {tf.__version__}, keras {keras.__version__}, quick mode: {QUICK}")
        """
    ),
    md(
        """
        ## Train a small VAE

        The same data pipeline as in `01_vae_mnist.ipynb`: dynamically
        binarised training images, a statically binarised test set.
        """
    ),
    DATA_CELL,
    code(
        """
        if EPOCHS is None:
            EPOCHS = (30 if DATASET == "digits" else 5) if QUICK else 50
        model = keras_vae.VAE(INPUT_DIM, latent_dim=LATENT_DIM, hidden_dims=HIDDEN_DIMS, seed=SEED)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(train_ds, epochs=EPOCHS, verbose=0 if QUICK else 2)
        test = model.evaluate(x_test_bin, batch_size=500, return_dict=True, verbose=0)
        print(f"test ELBO after {EPOCHS} epochs: {test['elbo']:.3f} nats per example")
        """
    ),
    md(
        r"""
        ## Export

        `export_model` writes, into one directory:

        - `saved_model/`: a SavedModel of a plain `tf.Module` (no Keras
          objects inside) with three signatures:
          `decode` (input `z` `[batch, latent_dim]` -> `logits`, `probs` and
          `mean` of $p(x \mid z)$), `encode` (input `x` `[batch, input_dim]` ->
          `loc`, `scale` of $q(z \mid x)$) and `sample` (inputs
          `num_samples`, `seed` -> `z` $\sim \mathcal N(0, I)$ drawn with
          stateless random ops, and its decoded `x_mean`);
          `serving_default` is `decode`.
        - `decoder.tflite`, `encoder.tflite`: the `decode` and `encode`
          signatures converted to TFLite with builtin ops only (float32),
          and with `quantize="dynamic"` also `*_dynamic.tflite` files whose
          weights are stored as int8.
        - `metadata.json`: the latent size, the observation model, how
          inputs must be scaled, and every signature's inputs and outputs.
        """
    ),
    code(
        """
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
        """
    ),
    code(
        """
        metadata = json.loads(pathlib.Path(paths["metadata"]).read_text())
        print(json.dumps(metadata["signatures"]["decode"], indent=2))
        """
    ),
    md(
        """
        ## Serve the SavedModel with TensorFlow

        `tf.saved_model.load` restores the signatures as concrete functions
        that take keyword tensors and return a dict of tensors. Decode a
        batch of codes $z \\sim \\mathcal N(0, I)$ and compare with the Keras
        model's `decode`.
        """
    ),
    code(
        """
        loaded = tf.saved_model.load(paths["saved_model"])
        print("signatures:", sorted(loaded.signatures.keys()))
        sm_decode = loaded.signatures["decode"]

        z = np.random.default_rng(SEED).standard_normal((256, LATENT_DIM)).astype("float32")
        keras_mean = keras.ops.convert_to_numpy(model.decode(z)["mean"])
        sm_mean = sm_decode(z=tf.constant(z))["mean"].numpy()
        print("SavedModel decode outputs:", sorted(sm_decode(z=tf.constant(z[:1])).keys()))
        """
    ),
    md(
        """
        ## Serve the TFLite files with LiteRT

        The LiteRT interpreter runs a converted signature through a
        *signature runner*, called with the same input names; the batch size
        is resized on the fly.
        """
    ),
    code(
        """
        def tflite_runner(path, signature):
            return Interpreter(model_path=str(path)).get_signature_runner(signature)


        tfl_decode = tflite_runner(paths["decoder"], "decode")
        print("TFLite signatures:", Interpreter(model_path=paths["decoder"]).get_signature_list())
        tfl_mean = tfl_decode(z=z)["mean"]
        if QUANTIZE:
            tfl_q_decode = tflite_runner(paths["decoder_dynamic"], "decode")
            tfl_q_mean = tfl_q_decode(z=z)["mean"]
        """
    ),
    md(
        """
        ## Do they agree?

        Float32 exports should match Keras to rounding error (about
        $10^{-7}$ on probabilities). The int8-weight files trade a little
        accuracy for size, so their differences are larger. The encoder is
        checked the same way on test images.
        """
    ),
    code(
        """
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
        """
    ),
    code(
        """
        fig = plotting.image_grid(
            np.concatenate([keras_mean[:8], sm_mean[:8], tfl_mean[:8]]), IMAGE_SHAPE, ncols=8,
            title="decode(z): Keras (row 1), SavedModel (row 2), TFLite (row 3)",
        )
        fig
        """
    ),
    md(
        """
        The `sample` signature generates new images in one call, seeded and
        reproducible:
        """
    ),
    code(
        """
        drawn = loaded.signatures["sample"](num_samples=tf.constant(32), seed=tf.constant(SEED, tf.int64))
        plotting.image_grid(drawn["x_mean"].numpy(), IMAGE_SHAPE, ncols=16, title="SavedModel sample(32, seed)")
        """
    ),
    md(
        """
        ## Latency

        Median wall time of one call, for one code and for a batch of 256,
        on this machine. Keras runs the model eagerly (Python overhead on
        every layer); the SavedModel runs one compiled graph; LiteRT runs the
        flatbuffer with its CPU kernels (XNNPACK).
        """
    ),
    code(
        """
        if LATENCY_REPEATS is None:
            LATENCY_REPEATS = 20 if QUICK else 200


        def median_ms(fn, repeats=LATENCY_REPEATS):
            fn()  # warm up (tracing, tensor allocation)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
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
            one, batch = median_ms(lambda: run(z[:1])), median_ms(lambda: run(z))
            print(f"{name:<20} {one:>13.3f} {batch:>15.3f}")
        """
    ),
    md(
        """
        ## Without keras-vae (or Keras)

        Everything above ran in a process that had imported keras-vae. The
        next cells write a small serving script and run it in a fresh Python
        process in which importing `keras_vae` or `keras` fails, to show
        that the exported files need only TensorFlow and LiteRT.
        """
    ),
    code(
        """
        %%writefile serve_decoder.py
        \"\"\"Decode latent codes with the exported files only: TensorFlow and LiteRT.\"\"\"
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
        """
    ),
    code(
        """
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
        """
    ),
]


NOTEBOOKS = {NB01: CELLS_01, NB02: CELLS_02, NB03: CELLS_03}


def build(name, cells):
    """A notebook without outputs, with deterministic cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "colab": {"name": name, "provenance": []},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    stem = name.split("_")[0]
    for i, (kind, source, tags) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        cell.id = f"nb{stem}-{i:02d}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the notebooks are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = build(name, cells)
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python colab/build_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
