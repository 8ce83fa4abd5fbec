"""Which kernel initialisation lets wake-sleep use every stochastic layer.

Trains a two-layer Helmholtz machine (64-200-200-[16]-200-200-[8], Gaussian or
binary latent layers) on scikit-learn's 8x8 digits (thresholded at 1/2) for
100 epochs, batch 100, Adam 1e-3, by wake-sleep (``ws``) or reweighted
wake-sleep with 5 samples (``rws``), with the kernels of every dense layer
initialised by the objective's default (``default``: Glorot-uniform for the
wake-sleep family) or by the reparameterised objectives' fan-in uniform law
(``fanin``: ``keras_vae.initializers.FanInUniform``); biases and everything
else as the package's defaults. Reports the active units of each layer on the
test digits and the mean distance between 200 sample means divided by the
same figure for 200 test digits (samples of a collapsed model look alike).

    python benchmarks/wake_sleep_init.py --seeds 0,1

Writes ``benchmarks/results/wake_sleep_init.{json,md}`` (``--out``); rows
already there are skipped, so a cut run continues.
"""

import argparse
import json
import pathlib
import warnings

import keras
import numpy as np

import keras_vae
from keras_vae import datasets
from keras_vae import evaluation
from keras_vae import objectives
from keras_vae.initializers import FanInUniform

RESULTS = pathlib.Path(__file__).parent / "results"


class FanInWakeSleep(objectives.WakeSleep):
    """Wake-sleep with the fan-in uniform kernels of the reparameterised objectives."""

    def kernel_initializer(self):
        return FanInUniform()


class FanInReweightedWakeSleep(objectives.ReweightedWakeSleep):
    """Reweighted wake-sleep with fan-in uniform kernels."""

    def kernel_initializer(self):
        return FanInUniform()


OBJECTIVES = {
    ("ws", "default"): objectives.WakeSleep,
    ("rws", "default"): objectives.ReweightedWakeSleep,
    ("ws", "fanin"): FanInWakeSleep,
    ("rws", "fanin"): FanInReweightedWakeSleep,
}


def spread(images):
    """Mean Euclidean distance between the rows of ``images [n, D]``."""
    images = np.asarray(images).reshape(len(images), -1)
    return float(np.sqrt(((images[:, None] - images[None]) ** 2).sum(-1)).mean())


def run(objective, init, latent, seed, epochs):
    x = datasets.binarize(datasets.load_arrays("digits", "train")[0], "threshold")
    x_test = datasets.binarize(datasets.load_arrays("digits", "test")[0], "threshold")
    model = keras_vae.HelmholtzMachine(
        64, latent_dims=(16, 8), hidden_dims=(200, 200), latent=latent,
        objective=OBJECTIVES[(objective, init)](), n_samples=5 if objective == "rws" else 1, seed=seed,
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", keras_vae.callbacks.LayerCollapseWarning)
        model.fit(x, epochs=epochs, batch_size=100, verbose=0)
    units = [int(u) for u in evaluation.active_units(model, x_test).counts]
    ratio = spread(model.sample(200, seed=0)["x_mean"]) / spread(x_test[:200])
    elbo = float(model.evaluate(x_test, verbose=0, return_dict=True)["elbo"])
    return dict(objective=objective, init=init, latent=latent, seed=seed, epochs=epochs,
                active_units=units, sample_spread_ratio=round(ratio, 3), test_elbo=round(elbo, 2))  # fmt: skip


def markdown(rows):
    lines = [
        "| objective | kernels | latent | seed | active units (h1, h2) | sample spread / data spread | test ELBO |",
        "| --- | --- | --- | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        kernels = "Glorot (default)" if r["init"] == "default" else "fan-in uniform"
        lines.append(
            f"| {r['objective']} | {kernels} | {r['latent']} | {r['seed']} | "
            f"{', '.join(map(str, r['active_units']))} | {r['sample_spread_ratio']:.3f} | {r['test_elbo']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--out", default=str(RESULTS / "wake_sleep_init.json"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text()) if out.exists() else []
    done = {(r["objective"], r["init"], r["latent"], r["seed"], r["epochs"]) for r in rows}
    for objective in ("ws", "rws"):
        for latent in ("gaussian", "bernoulli"):
            for init in ("default", "fanin"):
                for seed in [int(s) for s in args.seeds.split(",")]:
                    if (objective, init, latent, seed, args.epochs) in done:
                        continue
                    row = run(objective, init, latent, seed, args.epochs)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    out.write_text(json.dumps(rows, indent=1))
                    out.with_suffix(".md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
