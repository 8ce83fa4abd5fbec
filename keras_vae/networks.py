"""Builders for the deterministic networks between stochastic layers.

A network maps ``[batch, d_in] -> [batch, features]`` (the first recognition
network takes the data, e.g. images ``[batch, H, W, C]``); a distribution
head (``keras_vae.heads``) turns the features into parameters. A network
feeding an image observation head may instead return per-pixel features
``[batch, H, W, f]`` (:func:`conv_decoder`). Any Keras layer or model with
that contract can be used instead of these builders.
"""

import math

import keras

from keras_vae.layers import Dense


def mlp(hidden_dims, activation="tanh", name=None, flatten=False):
    """A stack of ``Dense`` layers (``keras_vae.layers.Dense``); the identity when ``hidden_dims`` is empty.

    Args:
        hidden_dims: sequence of ints, the width of each hidden layer.
        activation: activation of every hidden layer.
        name: model name.
        flatten: start with a ``Flatten`` layer, for inputs such as images
            ``[batch, H, W, C]``.

    Returns:
        A ``keras.Sequential`` mapping ``[batch, d_in] -> [batch, hidden_dims[-1]]``
        (``[batch, *shape] -> ...`` with ``flatten``).

    Example:
        >>> net = mlp((200, 200), flatten=True)
        >>> net(keras.ops.zeros((2, 28, 28, 1))).shape
        TensorShape([2, 200])
    """
    hidden_dims = [int(h) for h in hidden_dims]
    if any(h < 1 for h in hidden_dims):
        raise ValueError(f"hidden sizes must be positive, got {hidden_dims}.")
    layers = [keras.layers.Flatten()] if flatten else []
    layers += [Dense(h, activation=activation) for h in hidden_dims]
    if not layers:
        layers = [keras.layers.Identity()]
    return keras.Sequential(layers, name=name)


def conv_encoder(image_shape, filters=(32, 64), dense=256, activation="relu", name=None):
    """Convolutional encoder: stride-2 3x3 convolutions, then one dense layer.

    Args:
        image_shape: ``(height, width)`` or ``(height, width, channels)``.
            The input is images ``[batch, h, w, c]`` or the same values
            flattened, ``[batch, h*w*c]`` (reshaped first).
        filters: channels of each stride-2 3x3 convolution.
        dense: width of the final dense layer.
        activation: activation of every layer.
        name: model name.

    Returns:
        ``keras.Sequential``: ``[batch, h, w, c] -> [batch, dense]``.

    Example:
        >>> net = conv_encoder((28, 28, 1), filters=(32, 64), dense=256)
        >>> net(keras.ops.zeros((2, 28, 28, 1))).shape
        TensorShape([2, 256])
    """
    shape = _image_shape(image_shape)
    layers = [keras.layers.Reshape(shape)]
    layers += [
        keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    layers += [keras.layers.Flatten(), Dense(dense, activation=activation)]
    return keras.Sequential(layers, name=name)


def conv_decoder(image_shape, filters=(64, 32), out_channels=32, activation="relu", name=None):
    """Convolutional decoder producing per-pixel feature maps for an observation head.

    The latent code is projected to a ``(h / 2^n, w / 2^n, filters[0])`` map,
    upsampled by stride-2 3x3 transposed convolutions, cropped to the image
    size and mixed by a last 3x3 convolution. The observation head then
    predicts each pixel's parameters from its ``out_channels`` features (a
    1x1 projection; see ``keras_vae.heads.ObservationHead``), so no layer
    connects every pixel to a dense vector: the weights do not grow with
    the number of pixels, except the first projection's
    ``latent * (h/2^n) * (w/2^n) * filters[0]``.

    Args:
        image_shape: ``(height, width)`` or ``(height, width, channels)`` of
            the images the model generates.
        filters: channels of each stride-2 transposed convolution.
        out_channels: features per pixel given to the observation head.
        activation: activation of every layer.
        name: model name.

    Returns:
        ``keras.Sequential``: ``[batch, latent] -> [batch, h, w, out_channels]``.

    Example:
        >>> net = conv_decoder((28, 28, 1), filters=(64, 32), out_channels=32)
        >>> net(keras.ops.zeros((2, 16))).shape
        TensorShape([2, 28, 28, 32])
    """
    height, width, _ = _image_shape(image_shape)
    filters = [int(f) for f in filters]
    if not filters:
        raise ValueError("conv_decoder needs at least one upsampling layer in filters.")
    factor = 2 ** len(filters)
    h0, w0 = math.ceil(height / factor), math.ceil(width / factor)
    layers = [
        Dense(h0 * w0 * filters[0], activation=activation),
        keras.layers.Reshape((h0, w0, filters[0])),
    ]
    layers += [
        keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    layers += [
        keras.layers.Cropping2D(((0, h0 * factor - height), (0, w0 * factor - width))),
        keras.layers.Conv2D(out_channels, 3, padding="same", activation=activation),
    ]
    return keras.Sequential(layers, name=name)


def _image_shape(image_shape):
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3:
        raise ValueError(
            f"image_shape must be (height, width) or (height, width, channels), got {image_shape!r}."
        )
    return shape
