"""A VAE on a mixed-type table: per-column reconstruction of held-out rows, and decoded samples.

The table is scikit-learn's breast-cancer data (569 rows, no download) made
mixed: the 29 numeric measurements except ``mean radius``; ``diagnosis``
("malignant"/"benign", a binary column); ``size_band``, the quartile of
``mean radius`` as text ("Q1".."Q4", a categorical column, to be inferred
from the correlated perimeter and area since the radius itself is dropped);
and ``texture_grade``, the quintile of ``mean texture`` as an integer 1..5
(a few-valued integer column, hence categorical). ``keras_vae.tables.TableSchema``
infers each column's kind from the training rows and builds the mixed
observation model (Gaussian for the standardised numeric columns, Bernoulli,
Categorical).

A one-layer VAE is trained by the ELBO on 80% of the rows; on the other 20%
(``keras_vae.datasets.split_rows``) each row is reconstructed at its posterior
mean and decoded back to the table's types. Per column: accuracy for
categorical and binary columns (beside the majority-class rate of the test
rows), RMSE in original units and RMSE relative to the column's training
standard deviation for numeric ones (1.0 is what predicting the mean
scores). Writes ``benchmarks/results/mixed_table.json`` and 200 decoded
samples to ``benchmarks/results/mixed_table_samples.csv``.

Run::

    python benchmarks/mixed_table.py            # one to two minutes on 2 CPU cores
    python benchmarks/mixed_table.py --epochs 20 --out /tmp/mixed.json   # a smoke run
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import pandas as pd

import keras_vae
from keras_vae import datasets
from keras_vae.tables import TableSchema

HERE = os.path.dirname(os.path.abspath(__file__))


def make_table():
    """The mixed breast-cancer table: 28 numeric, 1 binary, 2 categorical columns (one of them integer)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.insert(0, "diagnosis", np.where(data.target == 0, "malignant", "benign"))
    frame.insert(1, "size_band", pd.qcut(frame["mean radius"], 4, labels=["Q1", "Q2", "Q3", "Q4"]).astype(str))
    frame.insert(2, "texture_grade", pd.qcut(frame["mean texture"], 5, labels=False).astype("int64") + 1)
    return frame.drop(columns=["mean radius", "mean texture"])


def column_scores(schema, truth, decoded):
    """Per-column reconstruction quality of held-out rows."""
    scores = {}
    for column in schema.columns:
        name = column.name
        if column.kind == "numeric":
            rmse = float(np.sqrt(np.mean((decoded[name].to_numpy(float) - truth[name].to_numpy(float)) ** 2)))
            scores[name] = {"kind": "numeric", "rmse": rmse, "relative_rmse": rmse / column.std}
        else:
            accuracy = float((decoded[name].to_numpy() == truth[name].to_numpy()).mean())
            majority = float(truth[name].value_counts(normalize=True).iloc[0])
            scores[name] = {"kind": column.kind, "accuracy": accuracy, "majority_rate": majority}
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "mixed_table.json"))
    parser.add_argument("--samples-out", default=None, help="default: beside --out, *_samples.csv")
    args = parser.parse_args(argv)
    samples_out = args.samples_out or args.out.replace(".json", "_samples.csv")

    frame = make_table()
    train = frame.iloc[datasets.split_rows(len(frame), "train")].reset_index(drop=True)
    test = frame.iloc[datasets.split_rows(len(frame), "test")].reset_index(drop=True)
    schema = TableSchema.infer(train, source="breast_cancer (mixed)")
    x_train, x_test = schema.encode(train), schema.encode(test)

    keras.utils.set_random_seed(args.seed)
    model = keras_vae.VAE(
        schema.width,
        latent_dim=args.latent_dim,
        hidden_dims=(128, 128),
        activation="relu",
        likelihood=schema.observation(),
        seed=args.seed,
    )
    model.compile(keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(x_train, epochs=args.epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    elbo = model.evaluate(x_test, batch_size=len(x_test), verbose=0, return_dict=True)["elbo"]

    decoded = schema.decode(keras.ops.convert_to_numpy(model.reconstruct(x_test)))
    scores = column_scores(schema, test, decoded)
    numeric = [s["relative_rmse"] for s in scores.values() if s["kind"] == "numeric"]
    result = {
        "table": "scikit-learn breast cancer, mixed: 28 numeric, diagnosis (binary), size_band (categorical text), "
        "texture_grade (categorical integer 1..5)",
        "rows": {"train": len(train), "test": len(test)},
        "schema": {kind: [c.name for c in cols] for kind, cols in schema.by_kind.items()},
        "model": {"latent_dim": args.latent_dim, "hidden_dims": [128, 128], "activation": "relu", "objective": "elbo"},
        "epochs": args.epochs,
        "train_seconds": round(seconds, 1),
        "test_elbo": float(elbo),
        "mean_relative_rmse_numeric": float(np.mean(numeric)),
        "columns": scores,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    samples = schema.decode(keras.ops.convert_to_numpy(model.sample(200, seed=args.seed)["x"]))
    samples.to_csv(samples_out, index=False)

    print(f"{len(train)} training rows, {len(test)} held-out rows; {args.epochs} epochs in {seconds:.1f}s; "
          f"test ELBO {elbo:.2f} nats/row")
    for name, s in scores.items():
        if s["kind"] != "numeric":
            majority = s["majority_rate"]
            print(f"  {name:<24} {s['kind']:<12} accuracy {s['accuracy']:.3f} (majority class {majority:.3f})")
    print(f"  numeric columns: RMSE / std {np.mean(numeric):.3f} on average "
          f"(min {np.min(numeric):.3f}, max {np.max(numeric):.3f}; 1.0 = predicting the mean)")
    print(f"wrote {args.out} and {samples_out}")
    return result


if __name__ == "__main__":
    main()
