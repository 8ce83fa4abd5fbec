"""Export a trained keras-vae model for serving: ``keras-vae export`` as a script.

Writes to DIR a SavedModel (signatures decode, encode, sample, score,
ancestral_sample and the *_from_noise versions), decoder.tflite,
encoder.tflite, scorer.tflite and sampler.tflite (TFLite builtin ops only),
and metadata.json:

    python export/export_model.py runs/vae/model.keras --out exported
    python export/export_model.py model.keras --out exported --format tflite --quantize dynamic float16 --overwrite

It only forwards its arguments to ``keras_vae.cli`` (``keras-vae export``);
see export/README.md for serving the result.
"""

import sys

from keras_vae import cli


def main(argv=None):
    """Run ``keras-vae export`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    return cli.main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
