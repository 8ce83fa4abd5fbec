"""Argument checks shared by the models and their methods."""

import numpy as np


def whole(name, value, minimum):
    """``value`` as an int >= ``minimum``.

    Args:
        name: how the message names the argument.
        value: an int, or a float with an integer value (``3.0``).
        minimum: the smallest value allowed.

    Returns:
        ``int(value)``.

    Raises:
        ValueError: for ``2.7``, ``True``, ``"3"``, NaN or a value below ``minimum``.
    """
    numeric = isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(value, bool)
    if not numeric or not np.isfinite(value) or value != int(value):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value)
