"""Pictures for the README: train two small VAEs and write four PNGs.

Writes into ``--out`` (default: the repository's ``docs/images/``):

- ``samples.png``: means of p(x|z) for z ~ p(z);
- ``reconstructions.png``: test images and their reconstructions;
- ``manifold.png``: the decoded 2-D latent grid (Kingma & Welling, Figure 4);
- ``latent_space.png``: posterior means of the test images, coloured by label.

The manifold needs a 2-D latent space, which makes blurry samples, so two
models with the same architecture are trained: ``latent_dim=2`` for
``manifold.png`` and ``latent_space.png``, and ``--latent-dim`` (default 16)
for ``samples.png`` and ``reconstructions.png``. Pass ``--latent-dim 2`` to
draw everything from one model.

Data: MNIST when a local copy is given (``--data-path`` or the environment
variable ``KERAS_VAE_MNIST_PATH``; ``--dataset mnist`` without either uses
tensorflow-datasets), else scikit-learn's bundled 8x8 digits. MNIST training
images are binarised dynamically and test images once with a fixed seed; the
8x8 digits are thresholded at 1/2. Every PNG is kept under ``--max-kb``
(palette-quantised if needed)::

    python benchmarks/readme_figures.py                                  # digits, ~1 minute
    python benchmarks/readme_figures.py --data-path mnist.npz            # MNIST, a few minutes
"""

import argparse
import io
import pathlib
import sys
import time

import keras
import tensorflow as tf
from PIL import Image

import keras_vae
from keras_vae import datasets
from keras_vae import plotting

FILES = ("samples.png", "reconstructions.png", "manifold.png", "latent_space.png")
DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "images"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("auto", "digits", "mnist"), default="auto",
                        help="auto: mnist if a local file is given, else digits")
    parser.add_argument("--data-path", default=None, help="local mnist.npz (default: $KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 100 on digits, 10 on MNIST")
    parser.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--latent-dim", type=int, default=16, help="latent size of the samples/reconstructions model")
    parser.add_argument("--hidden", default="200,200", help="hidden widths of the encoder (decoder mirrored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="default: docs/images/ of this repository")
    parser.add_argument("--max-kb", type=float, default=150.0, help="largest PNG size to write, in kB (1000 bytes)")
    return parser.parse_args(argv)


def load_data(args):
    """(name, path, training tf.data.Dataset, binary test images, test labels)."""
    # The local MNIST file (--data-path, else $KERAS_VAE_MNIST_PATH), or None.
    path = None if args.dataset == "digits" else datasets.local_path("mnist", args.data_path)
    name = args.dataset if args.dataset != "auto" else ("mnist" if path else "digits")
    if name == "mnist":
        batch = 100
        train = datasets.load("mnist", "train", batch_size=batch, binarization="dynamic",
                              seed=args.seed, path=path, limit=args.limit_train)
        x_test, y_test = datasets.load_arrays("mnist", "test", path=path)
        x_test = datasets.binarize_test(x_test)
    else:
        batch = 32
        x_train, _ = datasets.load_arrays("digits", "train")
        x_train = datasets.binarize(x_train[: args.limit_train], "threshold")
        train = tf.data.Dataset.from_tensor_slices(x_train).shuffle(len(x_train), seed=args.seed).batch(batch)
        x_test, y_test = datasets.load_arrays("digits", "test")
        x_test = datasets.binarize(x_test, "threshold")
    return name, path, train, x_test, y_test


def train(input_dim, latent_dim, hidden, train_ds, x_test, epochs, seed):
    keras.utils.set_random_seed(seed)
    model = keras_vae.VAE(input_dim, latent_dim=latent_dim, hidden_dims=hidden, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.time()
    model.fit(train_ds, epochs=epochs, verbose=0)
    test = model.evaluate(x_test, batch_size=500, return_dict=True, verbose=0)
    print(f"  latent_dim={latent_dim}: {epochs} epochs in {time.time() - start:.0f} s, "
          f"test ELBO {test['elbo']:.2f} nats per example", flush=True)
    return model


def _png(fig, dpi, colours=None):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    if colours is None:
        return buffer.getvalue()
    with Image.open(buffer) as image:
        small = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def save_small(fig, path, max_kb):
    """Save ``fig`` as a PNG of at most ``max_kb`` KiB.

    Tries, in turn, the figure's own resolution, a 64-colour palette, and
    then the palette at lower resolutions.
    """
    attempts = [(fig.dpi, None)] + [(dpi, 64) for dpi in (fig.dpi, 100, 90, 80, 72)]
    for dpi, colours in attempts:
        data = _png(fig, dpi, colours)
        if len(data) <= max_kb * 1000:
            pathlib.Path(path).write_bytes(data)
            return len(data), dpi, colours
    raise RuntimeError(f"{path} would be {len(data) / 1000:.0f} kB even at {dpi} dpi, over --max-kb {max_kb:g}.")


def main(argv=None):
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name, path, train_ds, x_test, y_test = load_data(args)
    epochs = args.epochs or (100 if name == "digits" else 10)
    shape = datasets.image_shape(name)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h.strip())
    source = f"{name}" + (f" ({path})" if path else "")
    print(f"data: {source}, {len(x_test)} test images; training {epochs} epochs", flush=True)

    model_2d = train(x_test.shape[1], 2, hidden, train_ds, x_test, epochs, args.seed)
    if args.latent_dim == 2:
        model = model_2d
    else:
        model = train(x_test.shape[1], args.latent_dim, hidden, train_ds, x_test, epochs, args.seed)

    figures = {
        "samples.png": plotting.plot_samples(model, n=64, image_shape=shape, seed=args.seed),
        "reconstructions.png": plotting.plot_reconstructions(model, x_test, n=10, image_shape=shape),
        "manifold.png": plotting.plot_manifold(model_2d, n=20 if name == "mnist" else 12, image_shape=shape),
        "latent_space.png": plotting.plot_latent_space(model_2d, x_test[:5000], y_test[:5000]),
    }
    for file in FILES:
        size, dpi, colours = save_small(figures[file], out / file, args.max_kb)
        how = f"{dpi:g} dpi" + (f", {colours}-colour palette" if colours else "")
        print(f"wrote {out / file} ({size / 1000:.0f} kB, {how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
