"""Packaging for keras-vae."""

import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
# The version is defined once, in keras_vae/version.py.
VERSION = {}
exec((HERE / "keras_vae" / "version.py").read_text(encoding="utf-8"), VERSION)

setup(
    name="keras-vae",
    version=VERSION["__version__"],
    description=(
        "Variational autoencoders and Helmholtz machines for Keras 3: "
        "AEVB, IWAE, wake-sleep, importance-sampled evaluation and export."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_vae", "keras_vae.*"]),
    install_requires=[
        "tensorflow>=2.18,<2.22",
        "keras>=3.8,<3.16",
        # The [tf] extra pulls in tf-keras, which TFP imports on start-up;
        # keras-vae itself only uses Keras 3.
        "tensorflow-probability[tf]>=0.25,<0.26",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets imports it but does not declare it.
        "importlib_resources>=5.0",
        "numpy>=1.26",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": [
            "pytest>=7.4",
            "ai-edge-litert>=1.2",
            "nbclient>=0.10",
            "nbformat>=5.9",
            "ipykernel>=6.0",
            "ruff>=0.6",
            "pandas>=2.0",
            "pyarrow>=14",
        ],
        "export": ["ai-edge-litert>=1.2"],
        # CSV/Parquet tables (keras_vae.tables); Parquet needs pyarrow.
        "tables": ["pandas>=2.0", "pyarrow>=14"],
    },
    entry_points={"console_scripts": ["keras-vae=keras_vae.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
