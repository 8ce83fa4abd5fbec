"""Export a trained keras-vae model for serving (what ``keras-vae export`` does).

Writes to DIR a SavedModel (signatures decode, encode, sample), decoder.tflite
and encoder.tflite (TFLite builtin ops only), and metadata.json:

    python export/export_model.py runs/vae/model.keras --out exported
    python export/export_model.py model.keras --out exported --format tflite --quantize dynamic --overwrite

See export/README.md for serving the result.
"""

import argparse
import sys

from keras_vae import export


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_cli_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return export.run_cli(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
