"""keras-vae: variational autoencoders and Helmholtz machines for Keras 3.

Auto-Encoding Variational Bayes (Kingma & Welling, 2013), importance-weighted
autoencoders (Burda et al., 2015) and Helmholtz machines trained by the
reparameterised ELBO or by (reweighted) wake-sleep, with importance-sampled
evaluation, plots and export for serving.

Submodules and public names load on first use, so ``import keras_vae`` (and
the ``keras-vae`` command's ``--help``) does not import TensorFlow. The
serialisable classes register with Keras as soon as Keras is imported, so
``keras.saving.load_model("model.keras")`` works after ``import keras_vae``
whichever of the two was imported first.

Example:

```python
import keras_vae

model = keras_vae.VAE(input_dim=784, latent_dim=16)
```
"""

import importlib
import importlib.abc
import importlib.util
import sys

from keras_vae.version import __version__

#: Submodules reachable as ``keras_vae.<name>``.
_SUBMODULES = (
    "arrays",
    "callbacks",
    "catalog",
    "cli",
    "datasets",
    "diagnostics",
    "distribute",
    "distributions",  # deprecated alias of heads
    "evaluation",
    "export",
    "heads",
    "hierarchy",
    "images",
    "in_memory",
    "initializers",
    "layers",
    "models",
    "networks",
    "objectives",
    "plotting",
    "presets",
    "tables",
    "training",
)
#: Public name -> the submodule that defines it.
_NAMES = {
    "StopOnNaN": "callbacks",
    "BernoulliLatent": "heads",
    "BernoulliObservation": "heads",
    "BernoulliPrior": "heads",
    "CategoricalObservation": "heads",
    "DiscretizedLogisticObservation": "heads",
    "DistributionHead": "heads",
    "GaussianLatent": "heads",
    "GaussianObservation": "heads",
    "MixedObservation": "heads",
    "ObservationHead": "heads",
    "StandardNormalPrior": "heads",
    "TableSchema": "tables",
    "VAE": "models",
    "HelmholtzMachine": "models",
}
__all__ = sorted(_NAMES) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_vae.{name}")
    if name in _NAMES:
        value = getattr(importlib.import_module(f"keras_vae.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_NAMES))


def _register_serializables():
    """Import the modules whose classes Keras must find when it loads a ``.keras`` file."""
    try:
        importlib.import_module("keras_vae.models")
    except Exception:  # noqa: BLE001
        # A broken install must not break ``import keras``; the error shows
        # again, with its traceback, when keras_vae.models is used.
        pass


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Registers keras-vae's serialisable classes right after ``keras`` is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_serializables()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_serializables()
elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
