"""The ``Dense`` layer of every keras-vae network and distribution head."""

import contextlib
import contextvars

import keras

from keras_vae.initializers import FanInUniform

_KERNEL_INITIALIZER = contextvars.ContextVar("keras_vae_kernel_initializer", default=None)


@contextlib.contextmanager
def default_kernel_initializer(factory):
    """Within the block, :class:`Dense` layers created without a ``kernel_initializer`` use ``factory()``.

    Models open this block around the layers they build, with the factory
    of their objective (``Objective.kernel_initializer``).

    Args:
        factory: a callable returning a new Keras initializer, or None for
            the default (:class:`keras_vae.initializers.FanInUniform`).

    Example:
        >>> with default_kernel_initializer(keras.initializers.GlorotUniform):
        ...     layer = Dense(8)   # Glorot-uniform kernel, fan-in uniform bias
    """
    token = _KERNEL_INITIALIZER.set(factory)
    try:
        yield
    finally:
        _KERNEL_INITIALIZER.reset(token)


@keras.saving.register_keras_serializable(package="keras_vae")
class Dense(keras.layers.Dense):
    """``keras.layers.Dense`` whose bias (and by default kernel) start at ``U(+-1/sqrt(fan_in))``.

    Any argument of ``keras.layers.Dense`` may be given; only the default
    initializers differ: :class:`keras_vae.initializers.FanInUniform` for
    the bias, and for the kernel the initializer of the enclosing
    :func:`default_kernel_initializer` block, else ``FanInUniform`` too (the
    initialisation of a PyTorch ``Linear`` layer). Models trained by the
    reparameterised objectives keep ``FanInUniform`` kernels: with
    Glorot-uniform kernels and zero biases the top layer of the two-layer
    MNIST model had no active unit in any seed tried, with these it uses 1-2
    (see the README's two-layer ablation). The wake-sleep objectives ask for
    Glorot-uniform kernels instead (``Objective.kernel_initializer``).

    Args:
        units: int, output width.
        **kwargs: as for ``keras.layers.Dense``.

    Example:
        >>> layer = Dense(200, activation="tanh")
        >>> layer(keras.ops.zeros((2, 784))).shape   # kernel and bias in +-1/sqrt(784)
        TensorShape([2, 200])
    """

    def __init__(self, units, **kwargs):
        if "kernel_initializer" not in kwargs:
            factory = _KERNEL_INITIALIZER.get()
            kwargs["kernel_initializer"] = factory() if factory is not None else FanInUniform()
        kwargs.setdefault("bias_initializer", FanInUniform())
        super().__init__(units, **kwargs)

    def build(self, input_shape):
        init = self.bias_initializer
        if isinstance(init, FanInUniform) and init.fan_in is None:
            # The bias's interval comes from the layer's fan-in, known now (same seed).
            self.bias_initializer = FanInUniform(fan_in=int(input_shape[-1]), seed=init.seed)
        super().build(input_shape)
