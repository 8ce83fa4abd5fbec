"""The one model loader of the ``keras-vae`` subcommands."""

import pathlib
import zipfile

from keras_vae.cli import logs


def load_model(path):
    """Load a keras-vae model saved as ``.keras``, or say clearly why not.

    Args:
        path: a ``.keras`` file written by ``model.save`` (``keras-vae train``
            writes ``<out>/model.keras``).

    Returns:
        The ``keras_vae.HelmholtzMachine`` (or ``VAE``).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: ``path`` is a directory or not a ``.keras`` archive, the
            archive cannot be loaded, or it holds a model that is not a
            keras-vae ``HelmholtzMachine``/``VAE``.

    Example:

    ```python
    model = load_model("runs/vae/model.keras")
    ```
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    if path.is_dir() or path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a .keras file; give the model.keras that keras-vae train (or model.save) wrote."
        )
    logs.import_tensorflow()
    import keras

    from keras_vae import models  # Also registers the serialisable classes.
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # Keras raises TypeError, ValueError, KeyError, ... for a bad archive.
        raise ValueError(f"could not load {path} as a Keras model: {err}") from err
    if not isinstance(model, models.HelmholtzMachine):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a keras-vae model (HelmholtzMachine or VAE); "
            "give a model saved by keras-vae train."
        )
    return model
