"""Named architectures, defined once and used by benchmarks, notebooks and the CLI.

A preset is a dict of ``HelmholtzMachine`` constructor arguments (without
``input_dim``). :func:`from_preset` builds the model; keyword arguments
override the preset's, so ``from_preset("burda_2layer", objective="iwae",
n_samples=5)`` is the paper's IWAE k = 5 model.

Presets:

- ``"burda_1layer"``: Burda et al. (2015), one stochastic layer,
  784-200-200-[50], tanh, Gaussian latent, Bernoulli pixels.
- ``"burda_2layer"``: Burda et al. (2015), two stochastic layers,
  784-200-200-[100]-100-100-[50], tanh.
"""

import copy

PRESETS = {
    "burda_1layer": {
        "latent_dims": (50,),
        "hidden_dims": ((200, 200),),
        "activation": "tanh",
        "likelihood": "bernoulli",
    },
    "burda_2layer": {
        "latent_dims": (100, 50),
        "hidden_dims": ((200, 200), (100, 100)),
        "activation": "tanh",
        "likelihood": "bernoulli",
    },
}


def get_preset(name):
    """A copy of the constructor arguments of preset ``name``.

    Args:
        name: one of ``PRESETS``.

    Returns:
        dict of ``HelmholtzMachine`` keyword arguments (no ``input_dim``).

    Raises:
        ValueError: unknown ``name``.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose from {', '.join(PRESETS)}.")
    return copy.deepcopy(PRESETS[name])


def from_preset(name, input_dim=784, **overrides):
    """A ``HelmholtzMachine`` with a preset architecture.

    Args:
        name: one of ``PRESETS``.
        input_dim: columns of the data (784 for MNIST).
        **overrides: any other constructor argument (``objective``,
            ``n_samples``, ``seed``, ...), taking precedence over the preset.

    Returns:
        An unbuilt-optimizer ``keras_vae.HelmholtzMachine``.

    Example:
        >>> model = from_preset("burda_2layer", objective="iwae", n_samples=5, seed=0)
        >>> model.latent_dims
        [100, 50]
    """
    from keras_vae.models import HelmholtzMachine

    kwargs = get_preset(name)
    kwargs.update(overrides)
    return HelmholtzMachine(input_dim, **kwargs)
