"""Initializers of keras-vae's layers.

:class:`FanInUniform` is the default of every ``Dense`` layer keras-vae
builds (see ``keras_vae.layers.Dense``).
"""

import math

import keras


@keras.saving.register_keras_serializable(package="keras_vae")
class FanInUniform(keras.initializers.RandomUniform):
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, for kernels and biases alike.

    This is the default initialisation of a PyTorch ``Linear`` layer. For a
    kernel it equals ``VarianceScaling(1/3, "fan_in", "uniform")``; a bias
    has no fan-in of its own, so give the fan-in of its layer.

    Args:
        fan_in: int or None. The fan-in; None takes it from the shape: all
            axes but the last (``[fan_in, units]`` for a dense kernel,
            ``[kh, kw, c_in, c_out]`` for a convolution kernel). Needed for
            1-D shapes (biases).
        seed: int, ``keras.random.SeedGenerator`` or None, as for
            ``keras.initializers.RandomUniform``.

    Example:
        >>> init = FanInUniform(seed=0)
        >>> w = init((400, 200))        # values in [-0.05, 0.05)
        >>> b = FanInUniform(fan_in=400, seed=1)((200,))
    """

    def __init__(self, fan_in=None, seed=None):
        super().__init__(minval=-1.0, maxval=1.0, seed=seed)
        if fan_in is not None and int(fan_in) < 1:
            raise ValueError(f"fan_in must be a positive int or None, got {fan_in!r}.")
        self.fan_in = None if fan_in is None else int(fan_in)

    def bound(self, shape):
        """The half-width ``1 / sqrt(fan_in)`` of the interval for ``shape``."""
        fan_in = self.fan_in
        if fan_in is None:
            if len(shape) < 2:
                raise ValueError(
                    f"FanInUniform needs fan_in for a {len(shape)}-D shape {tuple(shape)} (a bias): "
                    "give FanInUniform(fan_in=...)."
                )
            fan_in = math.prod(shape[:-1])
        return 1.0 / math.sqrt(fan_in)

    def __call__(self, shape, dtype=None):
        return super().__call__(shape, dtype) * self.bound(shape)

    def get_config(self):
        config = super().get_config()
        del config["minval"], config["maxval"]
        config["fan_in"] = self.fan_in
        return config
