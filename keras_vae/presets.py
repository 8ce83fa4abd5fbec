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
- ``"conv_mnist"``: images ``(28, 28, 1)``, one Gaussian layer of 50
  units (as ``burda_1layer``); encoder: 3x3 stride-2 convolutions with 32
  and 64 filters, dense 256; decoder: a projection to 7x7x64, 3x3 stride-2
  transposed convolutions with 64 and 32 filters and a 3x3 convolution
  giving 32 features per pixel, from which the observation head predicts
  each pixel's parameters; ReLU; Bernoulli pixels.

Presets whose networks depend on the image shape hold a :class:`Networks`
builder; :func:`get_preset` calls it with the ``input_shape``.
"""

import copy
import dataclasses

from keras_vae import networks as networks_lib


@dataclasses.dataclass(frozen=True)
class Networks:
    """Builds a preset's networks for an image shape.

    Args:
        builder: name of a builder in ``keras_vae.networks``.
        kind: ``"recognition"`` or ``"generative"``, the name prefix.
        options: keyword arguments of the builder.

    Calling it with an ``input_shape`` returns the one-layer list of
    networks the model's ``recognition_networks``/``generative_networks``
    take.
    """

    builder: str
    kind: str
    options: tuple = ()

    def __call__(self, input_shape):
        build = getattr(networks_lib, self.builder)
        return [build(tuple(input_shape), name=f"{self.kind}_conv_0", **dict(self.options))]

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
    "conv_mnist": {
        "input_shape": (28, 28, 1),
        "latent_dims": (50,),
        "hidden_dims": ((),),
        "activation": "relu",
        "likelihood": "bernoulli",
        "recognition_networks": Networks(
            "conv_encoder", "recognition", (("filters", (32, 64)), ("dense", 256), ("activation", "relu"))
        ),
        "generative_networks": Networks(
            "conv_decoder", "generative", (("filters", (64, 32)), ("out_channels", 32), ("activation", "relu"))
        ),
    },
}


def get_preset(name, input_shape=None):
    """A copy of the constructor arguments of preset ``name``.

    Args:
        name: one of ``PRESETS``.
        input_shape: the image shape a convolutional preset's networks are
            built for (default: the preset's own ``input_shape``).

    Returns:
        dict of ``HelmholtzMachine`` keyword arguments (no ``input_dim``);
        networks are built layers.

    Raises:
        ValueError: unknown ``name``.

    Example:
        >>> get_preset("conv_mnist", input_shape=(32, 32, 3))["input_shape"]
        (32, 32, 3)
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose from {', '.join(PRESETS)}.")
    kwargs = copy.deepcopy(PRESETS[name])
    if input_shape is not None and "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(input_shape)
    for key, value in kwargs.items():
        if isinstance(value, Networks):
            kwargs[key] = value(kwargs["input_shape"])
    return kwargs


def from_preset(name, input_dim=None, **overrides):
    """A ``HelmholtzMachine`` with a preset architecture.

    Args:
        name: one of ``PRESETS``.
        input_dim: columns of flat data (784, MNIST, when neither it nor
            ``input_shape`` is given and the preset has no image shape).
        **overrides: any other constructor argument (``input_shape``,
            ``objective``, ``n_samples``, ``seed``, ...), taking precedence
            over the preset's. A convolutional preset builds its networks
            for the ``input_shape`` given.

    Returns:
        An unbuilt-optimizer ``keras_vae.HelmholtzMachine``.

    Example:
        >>> model = from_preset("burda_2layer", objective="iwae", n_samples=5, seed=0)
        >>> model.latent_dims
        [100, 50]
        >>> from_preset("conv_mnist", seed=0).sample(2)["x_mean"].shape
        TensorShape([2, 28, 28, 1])
    """
    from keras_vae import objectives
    from keras_vae._keras_compat import seeded_initializers
    from keras_vae.layers import default_kernel_initializer
    from keras_vae.models import HelmholtzMachine

    seed = overrides.get("seed")
    objective = objectives.get(overrides.get("objective", PRESETS.get(name, {}).get("objective", "elbo")))
    # The preset's networks draw their initial weights from their own seed
    # stream, with the kernel initializer of the objective (as the model's own layers).
    with seeded_initializers(None if seed is None else f"{seed}/preset"):
        with default_kernel_initializer(objective.kernel_initializer):
            kwargs = get_preset(name, overrides.get("input_shape"))
    kwargs.update(overrides)
    if input_dim is None and "input_shape" not in kwargs:
        input_dim = 784
    return HelmholtzMachine(input_dim, **kwargs)
