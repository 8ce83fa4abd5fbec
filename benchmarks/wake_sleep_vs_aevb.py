"""AEVB vs wake-sleep: one Helmholtz machine, four training objectives.

The same two-stochastic-layer architecture (784-200-200-[100]-100-100-[50],
tanh, Gaussian latent layers, Bernoulli pixels: ``keras_vae.presets``
``"burda_2layer"``) is trained on dynamically binarised MNIST for the same number of epochs with

- ``elbo``: the reparameterised ELBO (Kingma & Welling's AEVB),
- ``iwae``: the importance-weighted bound with k samples (Burda et al.),
- ``wake_sleep``: Hinton et al.'s wake-sleep algorithm,
- ``reweighted_wake_sleep``: Bornschein & Bengio's RWS with k samples,

and compared on the test set (``keras_vae.datasets.binarize_test``) by the
ELBO and by an importance-sampled log p(x). The test ELBO is recorded after every epoch and plotted against the
number of training examples seen (the axis of Kingma & Welling's Figure 2).

Short run (minutes)::

    python benchmarks/wake_sleep_vs_aevb.py --data-path mnist.npz --epochs 2 --limit-train 10000

Long run::

    python benchmarks/wake_sleep_vs_aevb.py --data-path mnist.npz --epochs 100 --k-eval 5000
"""

import argparse
import json
import pathlib
import time

import keras

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import plotting
from keras_vae import presets

OBJECTIVES = ("elbo", "iwae", "wake_sleep", "reweighted_wake_sleep")


def make_model(objective, k, seed):
    """The shared two-layer architecture with one training objective."""
    return presets.from_preset(
        "burda_2layer",
        objective=objective,
        n_samples=k if objective in ("iwae", "reweighted_wake_sleep") else 1,
        seed=seed,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH or tfds)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--k", type=int, default=5, help="samples for iwae and reweighted_wake_sleep")
    parser.add_argument("--k-eval", type=int, default=1000, help="importance samples for the test log p(x)")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=1000, help="test images for log p(x)")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--evals-per-epoch", type=int, default=4, help="points per epoch on the test-ELBO curve")
    parser.add_argument("--limit-val", type=int, default=2000, help="test images for the test-ELBO curve")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/wake_sleep_vs_aevb")
    args = parser.parse_args(argv)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [o.strip() for o in args.objectives.split(",") if o.strip()]
    train = datasets.load(
        "mnist", "train", batch_size=args.batch_size, binarization="dynamic",
        seed=args.seed, path=args.data_path, limit=args.limit_train,
    )
    x_test, _ = datasets.load_arrays("mnist", "test", path=args.data_path)
    x_test = datasets.binarize_test(x_test)
    n_train = int(sum(int(b.shape[0]) for b in train))
    steps = -(-n_train // args.batch_size) // args.evals_per_epoch
    examples_per_period = steps * args.batch_size

    results, histories, seen = {}, {}, {}
    for name in names:
        keras.utils.set_random_seed(args.seed)
        model = make_model(name, args.k, args.seed)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        start = time.time()
        history = model.fit(
            train.repeat(),
            epochs=args.epochs * args.evals_per_epoch,
            steps_per_epoch=steps,
            validation_data=(x_test[: args.limit_val],),
            verbose=2,
        )
        seconds = time.time() - start
        test = model.evaluate(x_test, batch_size=500, verbose=0, return_dict=True)
        ll = evaluation.log_likelihood(model, x_test[: args.limit_test], k=args.k_eval, seed=args.seed)
        results[name] = {
            "test_elbo": test["elbo"],
            "test_log_px": float(ll.mean),
            "log_px_stderr": float(ll.stderr),
            "train_seconds": seconds,
        }
        histories[name] = history.history
        seen[name] = [examples_per_period * (e + 1) for e in range(len(history.history["val_elbo"]))]
        print(f"{name}: {results[name]}", flush=True)

    lines = [
        f"MNIST, dynamically binarised; {args.epochs} epochs over {n_train} training images, batch "
        f"{args.batch_size}, Adam {args.learning_rate}; k = {args.k} for iwae/rws; log p(x) with "
        f"k = {args.k_eval} on {min(args.limit_test, len(x_test))} test images.",
        "",
        "| objective | test ELBO | test log p(x) | train time (s) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['test_elbo']:.2f} | {r['test_log_px']:.2f} ± {r['log_px_stderr']:.2f} | "
            f"{r['train_seconds']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    (out / "results.md").write_text(table + "\n")
    report = {"args": vars(args), "results": results, "histories": histories}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    plotting.plot_comparison(histories, metric="val_elbo", x=seen, path=out / "test_elbo.png")
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'test_elbo.png'}")


if __name__ == "__main__":
    main()
