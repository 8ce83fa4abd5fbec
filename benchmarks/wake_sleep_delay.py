"""Wake-sleep with and without the recognition delay: does each layer get used?

The two-layer Burda architecture (``keras_vae.presets`` ``"burda_2layer"``,
784-200-200-[100]-100-100-[50], tanh) with Gaussian or binary (sigmoid belief
net) latent layers, trained on dynamically binarised MNIST by wake-sleep or
reweighted wake-sleep, with ``recognition_delay_steps`` = 0 (the recognition
network learns from the first step) or the package default (1000). For each
run it reports the test ELBO and KL (``datasets.binarize_test`` images), the
KL term of each layer, active units per layer, and how different the model's
samples are from each other (mean pairwise Euclidean distance of 200 sample
means, beside the same figure for 200 test images).

    python benchmarks/wake_sleep_delay.py --data-path mnist.npz --epochs 5
    python benchmarks/wake_sleep_delay.py --rows ws-bernoulli-0,ws-bernoulli-1000 --epochs 10

Rows are ``<objective>-<latent>-<delay>``: objective ``ws`` (wake-sleep) or
``rws5`` (reweighted wake-sleep, k = 5).
"""

import argparse
import json
import pathlib
import time

import keras
import numpy as np

from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import objectives
from keras_vae import presets

DEFAULT_ROWS = (
    "ws-gaussian-0,ws-gaussian-1000,ws-bernoulli-0,ws-bernoulli-1000,rws5-gaussian-0,rws5-gaussian-1000"
)
RESULTS = pathlib.Path(__file__).parent / "results"


def parse_row(row):
    """``"ws-gaussian-1000"`` -> (objective, n_samples, latent family, delay)."""
    name, latent, delay = row.split("-")
    objective, k = {"ws": (objectives.WakeSleep, 1), "rws5": (objectives.ReweightedWakeSleep, 5)}[name]
    return objective(recognition_delay_steps=int(delay)), k, latent


def mean_pairwise_distance(x):
    """Mean Euclidean distance between the rows of ``x [n, D]`` (pairs i != j)."""
    x = np.asarray(x, np.float64)
    squared = (x**2).sum(1)
    d2 = np.clip(squared[:, None] + squared[None, :] - 2 * x @ x.T, 0.0, None)
    n = len(x)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))


def layer_kls(model, x):
    """Per layer, the Monte Carlo KL term ``E_q[log q(h_m | .) - log p(h_m | .)]`` in nats."""
    terms = model.terms(x, 10, analytic_kl=False)
    return [round(float(np.mean(q - p)), 2) for q, p in zip(terms.log_q, terms.log_p)]


def run(row, args, x_test):
    objective, k, latent = parse_row(row)
    model = presets.from_preset("burda_2layer", latent=latent, objective=objective, n_samples=k, seed=args.seed)
    model.compile(keras.optimizers.Adam(args.learning_rate))
    train = datasets.load(
        "mnist", "train", batch_size=100, binarization="dynamic", seed=args.seed, path=args.data_path
    )
    start = time.perf_counter()
    model.fit(train, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, batch_size=500, verbose=0, return_dict=True)
    samples = np.asarray(model.sample(200, seed=args.seed)["x_mean"])
    return {
        "row": row,
        "epochs": args.epochs,
        "recognition_delay_steps": objective.recognition_delay_steps,
        "train_seconds": round(seconds, 1),
        "test_elbo": round(test["elbo"], 2),
        "test_kl": round(test["kl"], 2),
        "layer_kl": layer_kls(model, x_test[:500]),
        "active_units": evaluation.active_units(model, x_test).counts,
        "sample_distance": round(mean_pairwise_distance(samples), 3),
        "data_distance": round(mean_pairwise_distance(x_test[:200]), 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", default=None, help="local mnist.npz (else KERAS_VAE_MNIST_PATH)")
    parser.add_argument("--rows", default=DEFAULT_ROWS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--limit-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "wake_sleep_delay.json"))
    args = parser.parse_args()
    try:
        datasets.local_path("mnist", args.data_path, required=True)
    except FileNotFoundError as err:
        parser.error(str(err))
    x_test = datasets.binarize_test(datasets.load_arrays("mnist", "test", path=args.data_path)[0][: args.limit_test])

    out = pathlib.Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else []
    for row in args.rows.split(","):
        if any(r["row"] == row and r["epochs"] == args.epochs for r in done):
            print(f"{row}: already in {out}, skipped")
            continue
        result = run(row, args, x_test)
        print(json.dumps(result), flush=True)
        done.append(result)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(done, indent=1))  # After every row: a cut run keeps what it finished.
    print("| row | epochs | test ELBO | KL | KL per layer | active units | sample distance (data) | train s |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for r in done:
        print(
            f"| {r['row']} | {r['epochs']} | {r['test_elbo']} | {r['test_kl']} | {r['layer_kl']} | "
            f"{r['active_units']} | {r['sample_distance']} ({r['data_distance']}) | {r['train_seconds']} |"
        )


if __name__ == "__main__":
    main()
