"""Builders for the deterministic networks between stochastic layers.

A network maps ``[batch, d_in] -> [batch, features]``; a distribution head
(``keras_vae.heads``) turns the features into parameters. Any Keras
layer or model with that contract can be used instead of these builders.
"""

import math

import keras


def mlp(hidden_dims, activation="tanh", name=None):
    """A stack of ``Dense`` layers; the identity when ``hidden_dims`` is empty.

    Args:
        hidden_dims: sequence of ints, the width of each hidden layer.
        activation: activation of every hidden layer.
        name: model name.

    Returns:
        A ``keras.Sequential`` mapping ``[batch, d_in] -> [batch, hidden_dims[-1]]``.
    """
    hidden_dims = [int(h) for h in hidden_dims]
    if any(h < 1 for h in hidden_dims):
        raise ValueError(f"hidden sizes must be positive, got {hidden_dims}.")
    layers = [keras.layers.Dense(h, activation=activation) for h in hidden_dims]
    if not layers:
        layers = [keras.layers.Identity()]
    return keras.Sequential(layers, name=name)


def conv_encoder(image_shape, filters=(32, 64), dense=256, activation="relu", name=None):
    """Convolutional encoder for flat images.

    Args:
        image_shape: ``(height, width)`` or ``(height, width, channels)`` of the
            flat input ``[batch, h*w*c]``.
        filters: channels of each stride-2 3x3 convolution.
        dense: width of the final dense layer.

    Returns:
        ``keras.Sequential``: ``[batch, h*w*c] -> [batch, dense]``.
    """
    shape = _image_shape(image_shape)
    layers = [keras.layers.Reshape(shape)]
    layers += [
        keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(dense, activation=activation)]
    return keras.Sequential(layers, name=name)


def conv_decoder(image_shape, filters=(64, 32), out_channels=4, activation="relu", name=None):
    """Convolutional decoder producing per-pixel features for an observation head.

    The latent code is projected to a ``(h / 2^n, w / 2^n, filters[0])`` map
    and upsampled by stride-2 transposed convolutions, then cropped to the
    image size and flattened.

    Returns:
        ``keras.Sequential``: ``[batch, latent] -> [batch, h*w*out_channels]``.
    """
    height, width, _ = _image_shape(image_shape)
    factor = 2 ** len(filters)
    h0, w0 = math.ceil(height / factor), math.ceil(width / factor)
    layers = [
        keras.layers.Dense(h0 * w0 * filters[0], activation=activation),
        keras.layers.Reshape((h0, w0, filters[0])),
    ]
    layers += [
        keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation=activation)
        for f in filters
    ]
    layers += [
        keras.layers.Conv2D(out_channels, 3, padding="same", activation=activation),
        keras.layers.Cropping2D(((0, h0 * factor - height), (0, w0 * factor - width))),
        keras.layers.Flatten(),
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
