"""The version of keras-vae, defined once (setup.py reads it)."""

__version__ = "0.1.0"
