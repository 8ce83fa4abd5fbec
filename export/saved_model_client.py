"""Decode, sample and score with an exported SavedModel, TensorFlow only.

Loads DIR/saved_model with plain ``tf.saved_model.load`` (keras_vae is not
imported), decodes an n x n grid over the first two units of the top latent
layer (the other units at the prior mean) and writes the decoded means as
one PNG; then draws n examples with ``ancestral_sample`` (seeded: the same
seed gives the same examples) and scores them with ``score``, which returns
each example's ELBO and log p(x) (low values flag anomalies):

    python export/saved_model_client.py exported --out grid.png --n 10 --image-shape 8,8

For Gaussian top layers the grid spans the 5%..95% quantiles of N(0, 1); for
binary units it spans [0, 1].
"""

import argparse
import json
import math
import os

import matplotlib.image
import numpy as np
import tensorflow as tf


def latent_grid(n, latent_dim, family):
    """``[n * n, latent_dim]`` codes varying units 0 and 1 (unit 0 only if latent_dim is 1)."""
    if family == "bernoulli":
        values, rest = np.linspace(0.0, 1.0, n), 0.5
    else:
        values, rest = tf.math.ndtri(np.linspace(0.05, 0.95, n)).numpy(), 0.0
    z = np.full((n * n, latent_dim), rest, dtype=np.float32)
    rows, cols = np.meshgrid(values, values, indexing="ij")
    z[:, 0] = cols.reshape(-1)
    if latent_dim > 1:
        z[:, 1] = rows.reshape(-1)[::-1]  # Unit 1 grows upwards.
    return z


def tile(images, n):
    """``[n * n, h, w]`` -> one ``[n * h, n * w]`` image."""
    _, h, w = images.shape
    return images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir", help="directory written by export_model (holding saved_model/)")
    parser.add_argument("--out", default="grid.png")
    parser.add_argument("--n", type=int, default=10, help="grid size per side")
    parser.add_argument("--image-shape", default=None, help="height,width of one example (default: square)")
    parser.add_argument("--seed", type=int, default=0, help="seed of ancestral_sample and score")
    args = parser.parse_args(argv)

    path = os.path.join(args.export_dir, "saved_model")
    loaded = tf.saved_model.load(path)
    decode = loaded.signatures["decode"]
    latent_dim = decode.structured_input_signature[1]["z"].shape[-1]
    with open(os.path.join(path, "assets", "metadata.json")) as f:
        metadata = json.load(f)

    z = latent_grid(args.n, latent_dim, metadata["latent_families"][-1])
    mean = decode(z=tf.constant(z))["mean"].numpy()
    if args.image_shape:
        shape = tuple(int(s) for s in args.image_shape.split(","))
    else:
        side = math.isqrt(mean.shape[1])
        if side * side != mean.shape[1]:
            parser.error(f"{mean.shape[1]} features are not a square image; pass --image-shape")
        shape = (side, side)
    grid = tile(mean.reshape((-1,) + shape), args.n)
    matplotlib.image.imsave(args.out, grid, cmap="gray", vmin=float(grid.min()), vmax=float(grid.max()))
    print(f"decoded {len(z)} codes of size {latent_dim}; wrote {args.out}")

    seed = tf.constant(args.seed, tf.int64)
    drawn = loaded.signatures["ancestral_sample"](num_samples=tf.constant(args.n), seed=seed)
    scores = loaded.signatures["score"](x=drawn["x"], seed=seed)
    print(f"ancestral_sample: {', '.join(f'{k} {v.shape.as_list()}' for k, v in sorted(drawn.items()))}")
    for name in ("elbo", "log_px"):
        values = scores[name].numpy()
        print(f"score {name} (k = {metadata['score_k']}): mean {values.mean():.2f}, min {values.min():.2f} nats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
