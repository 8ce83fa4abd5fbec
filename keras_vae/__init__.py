"""keras-vae: variational autoencoders and Helmholtz machines for Keras 3.

Auto-Encoding Variational Bayes (Kingma & Welling, 2013), importance-weighted
autoencoders (Burda et al., 2015) and Helmholtz machines trained by the
reparameterised ELBO or by (reweighted) wake-sleep, with importance-sampled
evaluation, plots and export for serving.
"""

from keras_vae import callbacks
from keras_vae import datasets
from keras_vae import distributions  # deprecated alias of heads
from keras_vae import evaluation
from keras_vae import export
from keras_vae import heads
from keras_vae import networks
from keras_vae import objectives
from keras_vae import plotting
from keras_vae import presets
from keras_vae.callbacks import StopOnNaN
from keras_vae.heads import BernoulliLatent
from keras_vae.heads import BernoulliObservation
from keras_vae.heads import BernoulliPrior
from keras_vae.heads import CategoricalObservation
from keras_vae.heads import DistributionHead
from keras_vae.heads import GaussianLatent
from keras_vae.heads import GaussianObservation
from keras_vae.heads import MixedObservation
from keras_vae.heads import ObservationHead
from keras_vae.heads import StandardNormalPrior
from keras_vae.models import VAE
from keras_vae.models import HelmholtzMachine
from keras_vae.version import __version__
