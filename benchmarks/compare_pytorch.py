"""keras-vae against an independent plain PyTorch implementation of the same VAE.

Both train the Burda et al. (2015) MNIST architectures side by side on the
same data and budget and are scored the same way:

- ``--layers 1``: 784-200-200-[50] (``keras_vae.presets`` ``"burda_1layer"``);
- ``--layers 2``: 784-200-200-[100]-100-100-[50] (``"burda_2layer"``);
- tanh, Gaussian latents (scale ``softplus(raw) + 1e-4``), N(0, I) prior,
  Bernoulli pixels, ELBO with one sample and the analytic KL of the top layer;
- Adam(1e-3, eps 1e-4), batch 100, the training set binarised afresh each
  epoch (keras-vae: ``datasets.load(..., binarization="dynamic")``; PyTorch:
  a numpy Bernoulli draw per epoch);
- test: the first ``--eval-images`` test images binarised by
  ``keras_vae.datasets.binarize_test``; ``test_log_px`` is the importance-
  sampled log p(x) with ``--k`` samples (keras-vae:
  ``keras_vae.evaluation.log_likelihood``; PyTorch: the same estimator
  written below), ``test_elbo`` the mean of the same k log-weights (a Monte
  Carlo ELBO), and active units per layer are ``Var_x E_q[u] > 0.01`` along
  the mean path (``keras_vae.evaluation.active_units``).

Usage (MNIST from ``KERAS_VAE_MNIST_PATH``)::

    python benchmarks/compare_pytorch.py --layers 2 --epochs 30 --seeds 0,1,2 --impl both

Rows are appended to ``benchmarks/results/compare_pytorch.json`` (``--out``);
a rerun skips the rows already there at the same budget and tag.
"""

import argparse
import json
import math
import os
import pathlib
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def load_data(eval_images):
    from keras_vae import datasets

    x_train, _ = datasets.load_arrays("mnist", "train")
    x_test, _ = datasets.load_arrays("mnist", "test")
    return np.array(x_train), datasets.binarize_test(x_test[:eval_images])


def run_keras(layers, seed, epochs, x_test, k, global_seed=True, kl_warmup_steps=0):
    import keras

    from keras_vae import datasets
    from keras_vae import evaluation
    from keras_vae import presets

    if global_seed:
        # Redundant since the model seed fixes its initial weights (54faf0d); kept for older trees.
        keras.utils.set_random_seed(seed)
    model = presets.from_preset(f"burda_{layers}layer", seed=seed, kl_warmup_steps=kl_warmup_steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-4))
    train = datasets.load("mnist", "train", batch_size=100, binarization="dynamic", seed=seed)
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    ll = evaluation.log_likelihood(model, x_test, k=k, seed=seed, verbose=0)
    au = evaluation.active_units(model, x_test)
    return {
        "train_seconds": round(seconds, 1),
        "train_elbo_per_epoch": [round(float(e), 2) for e in history.history["elbo"]],
        "test_elbo": float(np.mean(ll.elbo)),
        "test_log_px": float(ll.mean),
        "test_log_px_stderr": float(ll.stderr),
        "active_units": [int(c) for c in au.counts],
    }


# ---------------------------------------------------------------------------
# The PyTorch implementation (independent of keras-vae).
# ---------------------------------------------------------------------------


def torch_model(layers, scale="softplus"):
    import torch
    from torch import nn

    def mlp(sizes):
        mods = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), nn.Tanh()]
        return nn.Sequential(*mods)

    class Gauss(nn.Module):  # features -> Normal(loc, softplus(raw) + 1e-4) or Normal(loc, exp(raw / 2))
        def __init__(self, d_in, d_out):
            super().__init__()
            self.loc, self.raw = nn.Linear(d_in, d_out), nn.Linear(d_in, d_out)

        def forward(self, f):
            if scale == "exp":
                return self.loc(f), torch.exp(0.5 * self.raw(f))
            return self.loc(f), nn.functional.softplus(self.raw(f)) + 1e-4

    def log_normal(z, loc, scale):
        return (-0.5 * ((z - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)).sum(-1)

    dims = [784, 100, 50] if layers == 2 else [784, 50]
    hid = [[200, 200], [100, 100]][: layers]

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_net = nn.ModuleList(mlp([dims[i]] + hid[i]) for i in range(layers))
            self.q = nn.ModuleList(Gauss(hid[i][-1], dims[i + 1]) for i in range(layers))
            self.p_net = nn.ModuleList(mlp([dims[i + 1]] + hid[i][::-1]) for i in range(layers))
            self.p = nn.ModuleList(Gauss(hid[i][0], dims[i]) for i in range(1, layers))  # p(h_i | h_{i+1})
            self.obs = nn.Linear(hid[0][0], 784)

        def log_weights(self, x, kl_weight=1.0):
            """Per example: (log p(x,h) - log q(h|x) with MC top, same with analytic top KL).

            ``kl_weight`` multiplies every term but ``log p(x | h_1)`` in the
            second (the training objective under KL warm-up).
            """
            h, log_q, hs, q_params = x, [], [], []
            for net, head in zip(self.q_net, self.q):
                loc, scale = head(net(h))
                h = loc + scale * torch.randn_like(loc)
                log_q.append(log_normal(h, loc, scale))
                hs.append(h)
                q_params.append((loc, scale))
            logits = self.obs(self.p_net[0](hs[0]))
            log_px = -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
            log_p = [log_normal(hs[i], *self.p[i](self.p_net[i + 1](hs[i + 1]))) for i in range(layers - 1)]
            top = hs[-1]
            log_p_top = log_normal(top, torch.zeros_like(top), torch.ones_like(top))
            loc, scale = q_params[-1]
            kl_top = (0.5 * (loc**2 + scale**2 - 1) - torch.log(scale)).sum(-1)
            rest = sum(log_p) - sum(log_q[:-1])
            return log_px + rest + log_p_top - log_q[-1], log_px + kl_weight * (rest - kl_top)

        def recognition_means(self, x):
            h, out = x, []
            for net, head in zip(self.q_net, self.q):
                h = head(net(h))[0]
                out.append(h)
            return out

    return VAE()


def run_torch(layers, seed, epochs, x_train, x_test, k, scale="softplus", kl_warmup_steps=0):
    import torch

    torch.set_num_threads(1)  # 11 ms a step on one thread, 120 ms on two (2-core machine)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = torch_model(layers, scale)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-4)
    start = time.perf_counter()
    curve, step = [], 0
    for _ in range(epochs):
        xb_all = (rng.random(x_train.shape, dtype=np.float32) < x_train).astype(np.float32)
        order, elbo_sum = rng.permutation(len(x_train)), 0.0
        for i in range(0, len(order), 100):
            x = torch.from_numpy(xb_all[order[i : i + 100]])
            # KL warm-up as keras-vae: the weight of step t (0-based) is min(1, t / N).
            weight = min(1.0, step / kl_warmup_steps) if kl_warmup_steps else 1.0
            elbo = model.log_weights(x, weight)[1].mean()
            step += 1
            opt.zero_grad()
            (-elbo).backward()
            opt.step()
            elbo_sum += float(elbo.detach()) * len(x)
        curve.append(round(elbo_sum / len(x_train), 2))
    seconds = time.perf_counter() - start
    lse, mean_lw = [], []
    with torch.no_grad():
        x_t = torch.from_numpy(x_test)
        for i in range(0, len(x_t), 100):
            xb = x_t[i : i + 100]
            chunks = []
            for j in range(0, k, 80):
                kk = min(80, k - j)
                chunks.append(model.log_weights(xb.repeat(kk, 1))[0].view(kk, len(xb)))
            lw = torch.cat(chunks).double()
            lse.append(torch.logsumexp(lw, 0) - math.log(k))
            mean_lw.append(lw.mean(0))
        lse, mean_lw = torch.cat(lse).numpy(), torch.cat(mean_lw).numpy()
        means = [m.double().numpy() for m in model.recognition_means(x_t)]
    return {
        "train_seconds": round(seconds, 1),
        "train_elbo_per_epoch": curve,
        "test_elbo": float(mean_lw.mean()),
        "test_log_px": float(lse.mean()),
        "test_log_px_stderr": float(lse.std() / math.sqrt(len(lse))),
        "active_units": [int((m.var(0) > 0.01).sum()) for m in means],
    }


KEY_FIELDS = ("impl", "layers", "seed", "epochs", "eval_images", "k", "tag", "torch_scale", "kl_warmup_steps")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, choices=(1, 2), default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--impl", choices=("keras", "torch", "both"), default="both")
    parser.add_argument("--eval-images", type=int, default=2000)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument(
        "--no-global-seed",
        action="store_true",
        help="keras-vae: do not call keras.utils.set_random_seed (weights then start from unseeded values)",
    )
    parser.add_argument(
        "--torch-scale",
        choices=("softplus", "exp"),
        default="softplus",
        help="PyTorch scale parameterisation: softplus(raw) + 1e-4 (as keras-vae) or exp(raw / 2) (log-variance)",
    )
    parser.add_argument(
        "--kl-warmup-steps", type=int, default=0,
        help="KL weight min(1, step / N) in both implementations (keras-vae: kl_warmup_steps); 0 = none",
    )
    parser.add_argument("--tag", default="", help="free-form label stored with each row")
    parser.add_argument("--out", default=str(HERE / "results" / "compare_pytorch.json"))
    args = parser.parse_args()

    x_train, x_test = load_data(args.eval_images)
    impls = ["keras", "torch"] if args.impl == "both" else [args.impl]
    out = pathlib.Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for impl in impls:
            key = (impl, args.layers, seed, args.epochs, len(x_test), args.k, args.tag,
                   args.torch_scale if impl == "torch" else None, args.kl_warmup_steps or None)  # fmt: skip
            if any(tuple(r.get(f) for f in KEY_FIELDS) == key for r in rows):
                print(f"skip {impl} seed {seed}: already in {out} (delete that row to rerun)", flush=True)
                continue
            if impl == "keras":
                res = run_keras(args.layers, seed, args.epochs, x_test, args.k, not args.no_global_seed,
                                args.kl_warmup_steps)  # fmt: skip
            else:
                res = run_torch(args.layers, seed, args.epochs, x_train, x_test, args.k, args.torch_scale,
                                args.kl_warmup_steps)  # fmt: skip
            row = {"impl": impl, "layers": args.layers, "seed": seed, "epochs": args.epochs,
                   "eval_images": len(x_test), "k": args.k, "tag": args.tag,
                   "torch_scale": args.torch_scale if impl == "torch" else None,
                   "kl_warmup_steps": args.kl_warmup_steps or None, **res}  # fmt: skip
            rows.append(row)
            print(
                f"{impl:5s} L={args.layers} seed={seed} epochs={args.epochs}: test ELBO {res['test_elbo']:.2f}, "
                f"log p(x) {res['test_log_px']:.2f} ± {res['test_log_px_stderr']:.2f} (k={args.k}, "
                f"{len(x_test)} images), active units {res['active_units']}, train {res['train_seconds']} s",
                flush=True,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    if not os.environ.get("KERAS_VAE_MNIST_PATH"):
        raise SystemExit("Set KERAS_VAE_MNIST_PATH to a local mnist.npz (Keras layout).")
    main()
