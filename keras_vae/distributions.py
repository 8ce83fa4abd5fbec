"""Deprecated: the distribution heads moved to :mod:`keras_vae.heads`.

Every name this module had is still importable from here (with a
``DeprecationWarning``); use ``keras_vae.heads`` (or the top-level
``keras_vae.GaussianLatent`` etc.) instead.
"""

import warnings

_MOVED = {
    "GaussianLatent": "GaussianLatent",
    "BernoulliLatent": "BernoulliLatent",
    "StandardNormalPrior": "StandardNormalPrior",
    "BernoulliPrior": "BernoulliPrior",
    "BernoulliObservation": "BernoulliObservation",
    "GaussianObservation": "GaussianObservation",
    "CategoricalObservation": "CategoricalObservation",
    "MixedObservation": "MixedObservation",
    "get_observation": "get_observation",
    "draw_seed": "draw_seed",
    "random_normal": "random_normal",
    "random_uniform": "random_uniform",
    "_Head": "DistributionHead",
    "_Observation": "ObservationHead",
}


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module 'keras_vae.distributions' has no attribute {name!r}")
    from keras_vae import heads

    warnings.warn(
        f"keras_vae.distributions.{name} is deprecated; use keras_vae.heads.{_MOVED[name]}.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(heads, _MOVED[name])
