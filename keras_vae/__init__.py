"""keras-vae: variational autoencoders and Helmholtz machines for Keras 3.

Auto-Encoding Variational Bayes (Kingma & Welling, 2013), importance-weighted
autoencoders (Burda et al., 2015) and Helmholtz machines trained by the
reparameterised ELBO or by (reweighted) wake-sleep, with importance-sampled
evaluation, plots and export for serving.
"""

from keras_vae import callbacks
from keras_vae import datasets
from keras_vae import distributions
from keras_vae import evaluation
from keras_vae import export
from keras_vae import networks
from keras_vae import objectives
from keras_vae import plotting
from keras_vae.callbacks import StopOnNaN
from keras_vae.distributions import BernoulliLatent
from keras_vae.distributions import BernoulliObservation
from keras_vae.distributions import BernoulliPrior
from keras_vae.distributions import CategoricalObservation
from keras_vae.distributions import GaussianLatent
from keras_vae.distributions import GaussianObservation
from keras_vae.distributions import MixedObservation
from keras_vae.distributions import StandardNormalPrior
from keras_vae.models import VAE
from keras_vae.models import HelmholtzMachine

__version__ = "0.1.0"
