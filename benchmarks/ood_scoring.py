"""Out-of-distribution detection with VAE scores: AUROC of the ELBO and of log p(x).

Trains the one-layer model of Burda et al. (784-200-200-[50], tanh, Gaussian
latent, Bernoulli pixels: ``keras_vae.presets`` ``"burda_1layer"``) on
dynamically binarised MNIST for ``--epochs`` epochs, or loads ``--model``,
then scores with :func:`keras_vae.scoring.scores` (``k`` posterior samples,
the estimator of the exported ``score`` signature):

- ``mnist test``: the first ``--limit`` MNIST test digits (in distribution);
- ``uniform noise``: pixels drawn from U[0, 1];
- ``inverted digits``: ``1 - x`` of those test digits;
- ``sklearn digits``: scikit-learn's bundled 8x8 digits, upsampled
  (bilinear) to 20x20 and centred in 28x28 like MNIST's digits;
- ``shuffled pixels``: each test digit with its pixels permuted at random
  (the same intensities, no shape).

Every set is binarised as the test data are
(``keras_vae.datasets.binarize_test``). For each out-of-distribution set and
score (``elbo``, ``log_px``), AUROC (``sklearn.metrics.roc_auc_score``) of
telling it apart from the MNIST test digits by a low score: 1 is perfect
separation, 0.5 chance, below 0.5 the model prefers the outlier. Written to
``--out`` as ``ood_scoring.json`` and ``ood_scoring.md``. Run::

    python benchmarks/ood_scoring.py                       # KERAS_VAE_MNIST_PATH or tfds
    python benchmarks/ood_scoring.py --data-path mnist.npz --epochs 10 --save-model ood_vae.keras
    python benchmarks/ood_scoring.py --model ood_vae.keras --k 1000
"""

import argparse
import json
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from keras_vae import datasets
from keras_vae import presets
from keras_vae import scoring

SCORES = ("elbo", "log_px")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a trained .keras file (default: train one)")
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH or tfds)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs when --model is not given")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--save-model", default=None, help="save the trained model here (.keras)")
    parser.add_argument("--k", type=int, default=100, help="posterior samples per example")
    parser.add_argument("--limit", type=int, default=2000, help="examples per set")
    parser.add_argument("--score-batch", type=int, default=100, help="examples per scoring call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results"), help="results directory")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.k < 1 or args.limit < 1:
        parser.error("--epochs, --k and --limit must be >= 1.")
    return args


class _Progress(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        print(f"  epoch {epoch + 1}: train ELBO {logs['elbo']:.2f}, {seconds:.0f} s", flush=True)


def train(args):
    data = datasets.load(
        "mnist", "train", batch_size=args.batch_size, binarization="dynamic", seed=args.seed, path=args.data_path
    )
    model = presets.from_preset("burda_1layer", seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    print(f"training burda_1layer on MNIST for {args.epochs} epochs of {int(data.cardinality())} steps", flush=True)
    model.fit(data, epochs=args.epochs, verbose=0, callbacks=[_Progress()])
    if args.save_model:
        model.save(args.save_model)
        print(f"wrote {args.save_model}")
    return model


def sklearn_digits_28x28():
    """scikit-learn's 8x8 digits in [0, 1], upsampled to 20x20 and padded to 28x28: ``[1797, 784]``."""
    x = (load_digits().data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    x = tf.image.resize(x, (20, 20), method="bilinear").numpy()
    x = np.pad(x[..., 0], ((0, 0), (4, 4), (4, 4)))
    return np.clip(x, 0.0, 1.0).reshape(-1, 784)


def evaluation_sets(args):
    """Name -> ``[n, 784]`` intensities in [0, 1], before binarisation; the first is in distribution."""
    x_test, _ = datasets.load_arrays("mnist", "test", path=args.data_path)
    x = x_test[: args.limit]
    rng = np.random.default_rng(args.seed)
    return {
        "mnist test": x,
        "uniform noise": rng.random(x.shape, dtype=np.float32),
        "inverted digits": 1.0 - x,
        "sklearn digits": sklearn_digits_28x28()[: args.limit],
        "shuffled pixels": rng.permuted(x, axis=1),
    }


def score(model, x, args):
    """``{"elbo", "log_px"}`` ``[n]`` numpy arrays, ``args.score_batch`` examples per call."""
    fn = tf.function(lambda batch, seed: scoring.scores(model, batch, args.k, seed), reduce_retracing=True)
    out = {name: [] for name in SCORES}
    for i, start in enumerate(range(0, len(x), args.score_batch)):
        batch = tf.constant(x[start : start + args.score_batch])
        values = fn(batch, tf.constant(args.seed * 100_003 + i, tf.int64))
        for name in SCORES:
            out[name].append(values[name].numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def auroc(inlier, outlier):
    """AUROC of flagging ``outlier`` (label 1) by a low score, against ``inlier`` (label 0)."""
    labels = np.concatenate([np.zeros(len(inlier)), np.ones(len(outlier))])
    return float(roc_auc_score(labels, -np.concatenate([inlier, outlier])))


def markdown(results):
    lines = [
        f"VAE {results['model']} on MNIST ({results['training']}); scores with k = {results['k']} posterior "
        "samples (keras_vae.scoring.scores); every set binarised as the test data.",
        "",
        "| set | n | mean ELBO | mean log p(x) | AUROC (ELBO) | AUROC (log p(x)) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results["sets"].items():
        aurocs = [f"{row['auroc'][s]:.3f}" if "auroc" in row else "-" for s in SCORES]
        lines.append(
            f"| {name} | {row['n']} | {row['mean']['elbo']:.2f} | {row['mean']['log_px']:.2f} | "
            f"{aurocs[0]} | {aurocs[1]} |"
        )
    lines += [
        "",
        "AUROC: the probability that a random outlier scores below a random MNIST test digit "
        "(1 perfect, 0.5 chance, below 0.5 the model finds the outliers more probable).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    if args.model:
        model = keras.saving.load_model(args.model)
        training = f"loaded from {args.model}"
    else:
        model = train(args)
        training = f"{args.epochs} epochs, dynamic binarisation, Adam 1e-3, batch {args.batch_size}"
    train_seconds = time.perf_counter() - start
    sizes = "-".join(map(str, [model.input_dim, *model.hidden_dims[0], *model.latent_dims]))
    results = {"model": sizes, "training": training, "train_seconds": round(train_seconds, 1), "k": args.k, "sets": {}}
    scored = {}
    for name, x in evaluation_sets(args).items():
        begin = time.perf_counter()
        scored[name] = score(model, datasets.binarize_test(x), args)
        row = {"n": len(x), "mean": {s: float(np.mean(scored[name][s])) for s in SCORES}}
        if name != "mnist test":
            row["auroc"] = {s: auroc(scored["mnist test"][s], scored[name][s]) for s in SCORES}
        results["sets"][name] = row
        aurocs = "  ".join(f"AUROC {s} {v:.3f}" for s, v in row.get("auroc", {}).items())
        print(
            f"{name:16s} n={len(x):5d}  mean ELBO {row['mean']['elbo']:9.2f}  mean log p(x) "
            f"{row['mean']['log_px']:9.2f}  {aurocs}  ({time.perf_counter() - begin:.0f} s)",
            flush=True,
        )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {key: getattr(args, key) for key in ("epochs", "batch_size", "k", "limit", "score_batch", "seed")}
    (out / "ood_scoring.json").write_text(json.dumps(dict(results, settings=settings), indent=2) + "\n")
    (out / "ood_scoring.md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {out / 'ood_scoring.json'} and {out / 'ood_scoring.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
