"""Distribution heads: Keras layers that map features to distribution parameters.

Every head follows the protocol of :class:`DistributionHead` (``call``,
``distribution``, ``log_prob``, ``sample``, ``mean``, ``describe``); see
``keras_vae/heads/base.py``. Latent heads parameterise ``q(h_m | h_{m-1})``
and ``p(h_m | h_{m+1})``, priors ``p(h_M)``, observation heads ``p(x | h_1)``.
"""

from keras_vae.heads.base import DistributionHead
from keras_vae.heads.base import ObservationHead
from keras_vae.heads.base import draw_seed
from keras_vae.heads.base import event_shape_of
from keras_vae.heads.base import random_normal
from keras_vae.heads.base import random_uniform
from keras_vae.heads.latent import BernoulliLatent
from keras_vae.heads.latent import GaussianLatent
from keras_vae.heads.observations import BernoulliObservation
from keras_vae.heads.observations import CategoricalObservation
from keras_vae.heads.observations import DiscretizedLogisticObservation
from keras_vae.heads.observations import GaussianObservation
from keras_vae.heads.observations import MixedObservation
from keras_vae.heads.observations import get_observation
from keras_vae.heads.priors import BernoulliPrior
from keras_vae.heads.priors import StandardNormalPrior
