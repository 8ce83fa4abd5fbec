"""Training and evaluation throughput: keras-vae against plain JAX and PyTorch programs.

Models (Burda et al., 2015, dynamically binarised MNIST, tanh, Bernoulli
pixels, batch 100, Adam 1e-3):

- ``vae``: one stochastic layer, 784-200-200-[50]
  (``keras_vae.presets.from_preset("burda_1layer")``);
- ``hm``: two stochastic layers, 784-200-200-[100]-100-100-[50]
  (``keras_vae.presets.from_preset("burda_2layer")``);
- ``is_eval``: importance-sampled ``log p(x)`` of the one-layer model with
  ``k = 5000`` samples per test image.

Rows, in one process, at the same intra/inter-op thread count for TensorFlow
and PyTorch, after a warm-up run of each, interleaved (A B A B ...) over
``--repeats``:

- ``keras-vae fit``: ``model.compile(keras.optimizers.Adam(1e-3))`` and
  ``model.fit(keras_vae.datasets.load("mnist", "train", batch_size=100,
  binarization="dynamic"))``, keras-vae's defaults (the pipeline's epochs
  run from its array inside XLA, ``keras_vae.in_memory``);
- ``keras-vae fit through tf.data`` (with ``--tf-data-row``): the same
  pipeline transformed (``with_options``), which ``fit`` reads batch by batch
  through tf.data into its fused XLA loop;
- ``keras-vae fit (pre-change settings)``: the same with the settings keras-vae
  had before it set fast defaults (``jit_compile=False``,
  ``steps_per_execution=1``); ``--no-baseline`` leaves it out;
- ``keras-vae fit, tf.data autotuner on`` (with ``--autotune-row``): the
  defaults on the same pipeline with tf.data's autotuner turned back on;
- ``jax (one jit per epoch)``: the same model, initialisation and
  optimiser as a plain JAX program written for speed
  (``benchmarks/_jax_reference.py``: the epoch's shuffle, binarisation and
  steps in one jitted ``lax.scan``, optax Adam); skipped if jax/optax are not
  installed, or with ``--no-jax``;
- ``pytorch eager``: the same model, optimiser
  (Adam, Keras's epsilon) and batch size as a plain PyTorch training loop
  (shuffle, ``torch.bernoulli`` per batch); skipped with a message if torch is
  not installed;
- ``keras-vae log p(x)`` (``keras_vae.evaluation.log_likelihood`` with
  ``jit_compile=True`` and with its defaults) / ``pytorch log p(x)``: the same
  estimator, ``logsumexp_i log w_i - log k``, 100 images by 81 samples at a
  time (the evaluation module's default chunking), on the test images
  binarised by ``keras_vae.datasets.binarize_test``; ``jax log p(x)`` the
  same in JAX (``vmap``-free broadcasting over the chunk, one jitted call per
  chunk).

Each training row also gives its share of the machine's float32 peak: the
examples/s times the model's FLOPs per training example (6 per weight:
2 forward, 4 backward) over the matrix-multiply rate XLA reaches on this
machine (1024 x 1024 products, measured at the start).

The figures are training (or evaluated) examples per second; the table gives
the median over the repeats and the ratio keras-vae / PyTorch. Run::

    pip install torch==2.13.0   # optional, CPU build
    python benchmarks/throughput.py --data-path mnist.npz
    KERAS_VAE_MNIST_PATH=mnist.npz python benchmarks/throughput.py --rows vae --repeats 5

``--profile`` also prints a per-step time breakdown of the keras-vae training
step (input pipeline alone, one compiled step, the step without the
optimiser update) and ``--trace DIR`` writes a TensorBoard profiler trace.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROWS = ("vae", "hm", "is_eval")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-path",
        default=None,
        help="local mnist.npz in the Keras layout (default: $KERAS_VAE_MNIST_PATH, else tensorflow-datasets)",
    )
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ",".join(ROWS))
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed runs per implementation")
    parser.add_argument("--train-examples", type=int, default=60000, help="training examples per timed run (one epoch)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--eval-examples", type=int, default=1000, help="test images per timed log p(x) run")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra- and inter-op threads for both")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    parser.add_argument("--no-jax", action="store_true", help="leave out the JAX rows")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the pre-change keras-vae settings")
    parser.add_argument(
        "--autotune-row", action="store_true",
        help="also time keras-vae fit with tf.data's autotuner turned back on",
    )
    parser.add_argument(
        "--tf-data-row", action="store_true",
        help="also time keras-vae fit reading the same pipeline batch by batch through tf.data",
    )
    parser.add_argument("--profile", action="store_true", help="print a time breakdown of the keras-vae step")
    parser.add_argument("--trace", default=None, help="write a TensorFlow profiler trace of 50 steps here")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for row in args.rows:
        if row not in ROWS:
            parser.error(f"unknown row {row!r}; choose from {ROWS}")
    return args


# ---------------------------------------------------------------------------
# Set-up shared by both frameworks.
# ---------------------------------------------------------------------------


def configure_threads(n):
    """Same intra/inter-op thread counts for TensorFlow and (if present) PyTorch."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)
        torch.set_num_interop_threads(n)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def load_mnist(path):
    """``(x_train [60000, 784], x_test [10000, 784])`` float32 intensities in [0, 1].

    Through ``keras_vae.datasets.load_arrays``: the file at ``path``, else
    ``KERAS_VAE_MNIST_PATH``, else tensorflow-datasets.
    """
    from keras_vae import datasets

    try:
        # Copies: the loader's arrays are read-only views and PyTorch wants writable ones.
        return tuple(np.array(datasets.load_arrays("mnist", split, path=path)[0]) for split in ("train", "test"))
    except (FileNotFoundError, RuntimeError) as err:  # Their messages say what to pass.
        raise SystemExit(f"throughput.py needs MNIST: {err}") from err


def train_dataset(n, batch_size, seed, data_path, autotune=False, tf_data=False):
    """``datasets.load("mnist", "train", binarization="dynamic")`` of ``n`` examples.

    ``fit`` runs this pipeline's epochs from its array inside XLA
    (``keras_vae.in_memory``). ``tf_data=True`` gives the same pipeline
    through ``with_options`` (a transformed dataset), which ``fit`` reads
    batch by batch through tf.data. tf.data's autotuner is off, as the
    package sets it; ``autotune=True`` turns it back on (and so also goes
    through tf.data).
    """
    import tensorflow as tf

    from keras_vae import datasets

    ds = datasets.load(
        "mnist", "train", batch_size=batch_size, binarization="dynamic", seed=seed, path=data_path, limit=n
    )
    if autotune or tf_data:
        options = tf.data.Options()
        options.autotune.enabled = bool(autotune)
        ds = ds.with_options(options)
    return ds


#: Weights of each model's dense layers (multiply-adds per example of one forward pass).
MODEL_MACS = {
    "vae": 784 * 200 + 200 * 200 + 2 * 200 * 50 + 50 * 200 + 200 * 200 + 200 * 784,
    "hm": 784 * 200 + 200 * 200 + 2 * 200 * 100 + 100 * 100 + 100 * 100 + 2 * 100 * 50
    + 50 * 100 + 100 * 100 + 2 * 100 * 100 + 100 * 200 + 200 * 200 + 200 * 784,
}


def training_flops(kind):
    """FLOPs per training example: 2 per weight forward, 4 backward."""
    return 6 * MODEL_MACS[kind]


def matmul_peak_gflops(size=1024, repeats=20):
    """float32 GFLOP/s of XLA-compiled ``size x size`` matrix products on this machine (best of 3)."""
    import tensorflow as tf

    a = tf.random.uniform((size, size))

    @tf.function(jit_compile=True)
    def products(a):
        b = a
        for _ in range(repeats):
            b = tf.matmul(a, b) * 1e-3
        return tf.reduce_sum(b)

    products(a).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        products(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def _jax():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _jax_reference

    return _jax_reference if _jax_reference.available() else None


def median(values):
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------
# keras-vae.
# ---------------------------------------------------------------------------


def keras_model(kind, seed):
    """The ``vae`` (one stochastic layer) or ``hm`` (two) model of Burda et al."""
    from keras_vae import presets

    return presets.from_preset("burda_1layer" if kind == "vae" else "burda_2layer", seed=seed)


class KerasTrainer:
    """Times ``model.fit`` for one pass over ``n`` examples.

    The data come from ``keras_vae.datasets.load("mnist", "train",
    binarization="dynamic")``, the package's own pipeline (tf.data's
    autotuner off); ``autotune=True`` turns the autotuner back on.
    """

    def __init__(self, kind, batch_size, seed, compile_kwargs=None, data_path=None, autotune=False, tf_data=False):
        import keras

        self.model = keras_model(kind, seed)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3), **(compile_kwargs or {}))
        self.batch_size = batch_size
        self.seed = seed
        self.data_path = data_path
        self.autotune = autotune
        self.tf_data = tf_data
        self._datasets = {}

    def dataset(self, n):
        """The same pipeline object for every run (it reshuffles and redraws each epoch)."""
        if n not in self._datasets:
            self._datasets[n] = train_dataset(
                n, self.batch_size, self.seed, self.data_path, self.autotune, self.tf_data
            )
        return self._datasets[n]

    def run(self, n):
        ds = self.dataset(n)
        start = time.perf_counter()
        history = self.model.fit(ds, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        self.last_loss = history.history["loss"][-1]
        return n / seconds


def keras_log_likelihood(model, x, k, jit_compile=False, images=100, chunk=81):
    """``log p(x)`` estimates ``[n]`` by ``keras_vae.evaluation.log_likelihood``.

    ``images`` examples by ``chunk`` samples at a time, its defaults.
    """
    from keras_vae import evaluation

    result = evaluation.log_likelihood(
        model, x, k=k, batch_size=images, chunk_size=chunk, verbose=0, jit_compile=jit_compile
    )
    return np.asarray(result.values)


class KerasEvaluator:
    def __init__(self, model, x, k, jit_compile=False, images=100, chunk=81):
        self.model, self.x, self.k = model, x, k
        self.kwargs = dict(jit_compile=jit_compile, images=images, chunk=chunk)

    def run(self, n):
        start = time.perf_counter()
        self.last = keras_log_likelihood(self.model, self.x[:n], self.k, **self.kwargs)
        return n / (time.perf_counter() - start)


# ---------------------------------------------------------------------------
# PyTorch.
# ---------------------------------------------------------------------------


def torch_modules():
    """The same models in plain PyTorch (built lazily: torch is optional)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    def mlp(sizes):
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        return nn.Sequential(*layers)

    class Gaussian(nn.Module):
        """loc and softplus(raw) + 1e-4 scale, as keras_vae.GaussianLatent."""

        def __init__(self, d_in, d):
            super().__init__()
            self.loc = nn.Linear(d_in, d)
            self.scale = nn.Linear(d_in, d)

        def forward(self, h):
            return self.loc(h), F.softplus(self.scale(h)) + 1e-4

    def normal_log_prob(z, loc, scale):
        return (-0.5 * ((z - loc) / scale) ** 2 - torch.log(scale) - 0.5 * np.log(2 * np.pi)).sum(-1)

    def bernoulli_log_prob(x, logits):
        return (x * logits - F.softplus(logits)).sum(-1)

    def kl_std_normal(loc, scale):
        return (0.5 * (loc**2 + scale**2) - torch.log(scale) - 0.5).sum(-1)

    class VAE(nn.Module):
        """784-200-200-[50]-200-200-784, Bernoulli pixels, analytic KL."""

        def __init__(self):
            super().__init__()
            self.enc = mlp([784, 200, 200])
            self.q = Gaussian(200, 50)
            self.dec = mlp([50, 200, 200])
            self.logits = nn.Linear(200, 784)

        def loss(self, x):
            loc, scale = self.q(self.enc(x))
            z = loc + scale * torch.randn_like(loc)
            rec = bernoulli_log_prob(x, self.logits(self.dec(z)))
            return -(rec - kl_std_normal(loc, scale)).mean()

        @torch.no_grad()
        def log_weights(self, x, k):
            """``[k, B]`` log p(x, z) - log q(z | x); q(z | x) computed once."""
            loc, scale = self.q(self.enc(x))
            z = loc + scale * torch.randn((k,) + loc.shape)
            logits = self.logits(self.dec(z.reshape(-1, z.shape[-1]))).reshape(k, x.shape[0], -1)
            log_px = bernoulli_log_prob(x, logits)
            log_pz = normal_log_prob(z, torch.zeros_like(z), torch.ones_like(z))
            return log_px + log_pz - normal_log_prob(z, loc, scale)

    class HM(nn.Module):
        """784-200-200-[100]-100-100-[50], Gaussian layers, analytic top KL."""

        def __init__(self):
            super().__init__()
            self.enc1, self.q1 = mlp([784, 200, 200]), Gaussian(200, 100)
            self.enc2, self.q2 = mlp([100, 100, 100]), Gaussian(100, 50)
            self.dec2, self.p1 = mlp([50, 100, 100]), Gaussian(100, 100)
            self.dec1, self.logits = mlp([100, 200, 200]), nn.Linear(200, 784)

        def loss(self, x):
            loc1, scale1 = self.q1(self.enc1(x))
            h1 = loc1 + scale1 * torch.randn_like(loc1)
            loc2, scale2 = self.q2(self.enc2(h1))
            h2 = loc2 + scale2 * torch.randn_like(loc2)
            ploc1, pscale1 = self.p1(self.dec2(h2))
            rec = bernoulli_log_prob(x, self.logits(self.dec1(h1)))
            kl1 = normal_log_prob(h1, loc1, scale1) - normal_log_prob(h1, ploc1, pscale1)
            return -(rec - kl1 - kl_std_normal(loc2, scale2)).mean()

    return {"vae": VAE, "hm": HM}


class TorchTrainer:
    """A plain eager PyTorch loop: shuffle, dynamic binarisation, Adam."""

    def __init__(self, kind, x, batch_size, seed):
        torch = _torch()
        torch.manual_seed(seed)
        self.torch = torch
        self.model = torch_modules()[kind]()
        # Keras's Adam epsilon, so the two optimisers are the same.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.x = torch.from_numpy(x)
        self.batch_size = batch_size

    def run(self, n):
        torch = self.torch
        start = time.perf_counter()
        x = self.x[:n]
        order = torch.randperm(n)
        for i in range(0, n, self.batch_size):
            batch = torch.bernoulli(x[order[i : i + self.batch_size]])
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.model.loss(batch)
            loss.backward()
            self.optimizer.step()
        self.last_loss = float(loss.detach())
        return n / (time.perf_counter() - start)


class TorchEvaluator:
    """The same estimator in PyTorch, ``images`` examples by ``chunk`` samples at a time."""

    def __init__(self, x, k, seed, images=100, chunk=81):
        torch = _torch()
        torch.manual_seed(seed)
        self.torch = torch
        self.model = torch_modules()["vae"]().eval()
        self.x = torch.from_numpy(x)
        self.k, self.images, self.chunk = k, images, chunk

    def run(self, n):
        torch = self.torch
        start = time.perf_counter()
        out = []
        with torch.no_grad():
            for i in range(0, n, self.images):
                xb = self.x[i : i + self.images]
                total = torch.full((xb.shape[0],), -float("inf"))
                for first in range(0, self.k, self.chunk):
                    samples = min(self.chunk, self.k - first)
                    chunk = torch.logsumexp(self.model.log_weights(xb, samples), dim=0)
                    total = torch.logaddexp(total, chunk)
                out.append(total - np.log(self.k))
        self.last = torch.cat(out).numpy()
        return n / (time.perf_counter() - start)


# ---------------------------------------------------------------------------
# Measurement.
# ---------------------------------------------------------------------------


def interleaved(runners, n, repeats, warmup_n):
    """Warm every runner up, then time them A B A B ...; ``{name: [ex/s, ...]}``."""
    for runner in runners.values():
        runner.run(warmup_n)
    results = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            results[name].append(runner.run(n))
    return results


def print_table(title, results, reference, flops=None, peak_gflops=None):
    """A markdown table: median examples/s, the runs, the ratio to ``reference`` and the share of peak."""
    print(f"\n{title}")
    share = flops is not None and peak_gflops
    print(f"| implementation | examples/s (median) | runs | vs {reference} |" + (" share of peak |" if share else ""))
    print("| --- | ---: | --- | ---: |" + (" ---: |" if share else ""))
    ref = median(results.get(reference, []))
    for name, values in results.items():
        med = median(values)
        ratio = f"{med / ref:.2f}x" if reference in results and ref > 0 else "n/a"
        runs = ", ".join(f"{v:,.0f}" for v in values)
        extra = f" {100 * med * flops / (peak_gflops * 1e9):.0f}% |" if share else ""
        print(f"| {name} | {med:,.0f} | {runs} | {ratio} |" + extra)
    sys.stdout.flush()


def profile_step(args, x_train):
    """Where a keras-vae training step spends its time (milliseconds per batch).

    Each row adds one part to the previous: the compute alone (one XLA
    program looping over pre-binarised batches in memory), then Keras's
    ``fit`` loop around it, then the input pipeline through tf.data; the
    last rows are ``fit``'s default on the package's pipeline (batches
    gathered and binarised inside the XLA program) and the tf.data pipeline
    alone. Best of 3 passes.
    """
    import keras
    import tensorflow as tf

    from keras_vae import datasets

    model = keras_model("vae", args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    n = (min(len(x_train), 20000) // args.batch_size) * args.batch_size
    steps = n // args.batch_size
    pipeline_ds = train_dataset(n, args.batch_size, args.seed, args.data_path)
    through_tf_data = train_dataset(n, args.batch_size, args.seed, args.data_path, tf_data=True)
    binary = datasets.binarize(x_train[:n], "static", seed=args.seed)
    stacked = tf.constant(binary.reshape(steps, args.batch_size, -1))
    cached = tf.data.Dataset.from_tensor_slices(stacked).cache()

    def timed(fn, repeat=3):
        fn()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best * 1000.0 / steps

    def pipeline():
        for _ in pipeline_ds:
            pass

    def loss(x):
        losses, _ = model.objective_losses(x)
        return model._global_mean(losses["all"])

    @tf.function(jit_compile=True)
    def forward_loop():
        total = tf.zeros(())
        for i in tf.range(steps):
            total += loss(stacked[i])
        return total

    @tf.function(jit_compile=True)
    def backward_loop():
        total = tf.zeros(())
        for i in tf.range(steps):
            with tf.GradientTape() as tape:
                value = loss(stacked[i])
            grads = tape.gradient(value, model.trainable_variables)
            total += value + tf.add_n([tf.reduce_sum(g) for g in grads]) * 0.0
        return total

    @tf.function(jit_compile=True)
    def step_loop():
        logs = None
        for i in tf.range(steps):
            # The step fit's fused XLA loop runs (no per-step conditional update).
            logs, _ = model._train_step(stacked[i], skip_nonfinite=False)
        return logs["loss"]

    rows = [
        ("forward: loss (XLA, in-graph loop over batches in memory)", timed(lambda: forward_loop().numpy())),
        ("+ backward: gradients", timed(lambda: backward_loop().numpy())),
        ("+ Adam update and metrics: the whole train_step", timed(lambda: step_loop().numpy())),
        ("+ Keras fit loop (steps_per_execution, callbacks), batches from a cached tf.data dataset",
         timed(lambda: model.fit(cached, epochs=1, verbose=0))),
        ("+ input pipeline through tf.data: model.fit on datasets.load(..., binarization='dynamic') transformed",
         timed(lambda: model.fit(through_tf_data, epochs=1, verbose=0))),
        ("default: model.fit on datasets.load(...) itself, its epochs gathered and binarised inside XLA",
         timed(lambda: model.fit(pipeline_ds, epochs=1, verbose=0))),
        ("input pipeline alone (shuffle, batch, binarise), for reference", timed(pipeline)),
    ]
    print(f"\nTime per batch of {args.batch_size} (VAE 784-200-200-[50]), best of 3 passes over {steps} batches:")
    print("| part | ms/batch | examples/s |")
    print("| --- | ---: | ---: |")
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} | {1000.0 * args.batch_size / ms:,.0f} |")
    print(f"(fit settings: jit_compile={model.jit_compile}, steps_per_execution={model.steps_per_execution})")
    return {name: ms for name, ms in rows}


def trace(args):
    import keras
    import tensorflow as tf

    model = keras_model("vae", args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = train_dataset(200 * args.batch_size, args.batch_size, args.seed, args.data_path)
    model.fit(ds, epochs=1, verbose=0)
    tf.profiler.experimental.start(args.trace)
    model.fit(ds, epochs=1, verbose=0)
    tf.profiler.experimental.stop()
    print(f"wrote a profiler trace to {args.trace} (tensorboard --logdir {args.trace})")


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_threads(args.threads)
    x_train, x_test = load_mnist(args.data_path)
    import keras
    import tensorflow as tf

    import keras_vae
    from keras_vae import datasets

    keras.utils.set_random_seed(args.seed)
    jax_ref = None if args.no_jax else _jax()
    if jax_ref is None and not args.no_jax:
        print("JAX is not installed: the jax rows are skipped (pip install jax optax).")
    torch = None if args.no_torch else _torch()
    if torch is None and not args.no_torch:
        print("PyTorch is not installed: the pytorch rows are skipped (pip install torch==2.13.0 for a CPU build).")
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, keras-vae {keras_vae.__version__}"
        + (f", PyTorch {torch.__version__}" if torch is not None else "")
        + f"; {args.threads} intra-op and {args.threads} inter-op threads for each; {os.cpu_count()} CPUs."
    )
    n = (min(args.train_examples, len(x_train)) // args.batch_size) * args.batch_size
    warmup = n  # A full run: the same dataset and shapes as the timed runs.
    peak = matmul_peak_gflops()
    print(f"float32 matrix-multiply peak through XLA: {peak:.0f} GFLOP/s")
    report = {"threads": args.threads, "repeats": args.repeats, "train_examples": n, "rows": {},
              "peak_gflops": round(peak, 1), "training_flops_per_example": {}}  # fmt: skip

    titles = {
        "vae": f"Training, one stochastic layer 784-200-200-[50], batch {args.batch_size}, {n:,} examples per run",
        "hm": f"Training, two stochastic layers 784-200-200-[100]-100-100-[50], batch {args.batch_size}, "
        f"{n:,} examples per run",
    }
    for kind in ("vae", "hm"):
        if kind not in args.rows:
            continue
        runners = {"keras-vae fit": KerasTrainer(kind, args.batch_size, args.seed, data_path=args.data_path)}
        if args.tf_data_row:
            runners["keras-vae fit through tf.data"] = KerasTrainer(
                kind, args.batch_size, args.seed, data_path=args.data_path, tf_data=True
            )
        if args.autotune_row:
            runners["keras-vae fit, tf.data autotuner on"] = KerasTrainer(
                kind, args.batch_size, args.seed, data_path=args.data_path, autotune=True
            )
        if not args.no_baseline:
            runners["keras-vae fit (pre-change settings)"] = KerasTrainer(
                kind, args.batch_size, args.seed, dict(jit_compile=False, steps_per_execution=1),
                data_path=args.data_path,
            )
        if jax_ref is not None:
            runners["jax (one jit per epoch)"] = jax_ref.JaxTrainer(kind, x_train, args.batch_size, args.seed)
        if torch is not None:
            runners["pytorch eager"] = TorchTrainer(kind, x_train, args.batch_size, args.seed)
        results = interleaved(runners, n, args.repeats, warmup)
        reference = "jax (one jit per epoch)" if jax_ref is not None else "pytorch eager"
        print_table(titles[kind], results, reference, training_flops(kind), peak)
        report["training_flops_per_example"][kind] = training_flops(kind)
        losses = {name: round(float(r.last_loss), 2) for name, r in runners.items()}
        print(f"(training loss after the last run: {losses})")
        report["rows"][kind] = results

    if "is_eval" in args.rows:
        x_eval = datasets.binarize_test(x_test[: args.eval_examples])
        model = keras_model("vae", args.seed)
        runners = {
            "keras-vae log p(x), jit_compile=True": KerasEvaluator(model, x_eval, args.k, jit_compile=True),
        }
        if not args.no_baseline:
            runners["keras-vae log p(x), log_likelihood defaults"] = KerasEvaluator(model, x_eval, args.k)
        if jax_ref is not None:
            runners["jax log p(x)"] = jax_ref.JaxEvaluator(x_eval, args.k, args.seed)
        if torch is not None:
            runners["pytorch log p(x)"] = TorchEvaluator(x_eval, args.k, args.seed)
        results = interleaved(runners, len(x_eval), args.repeats, min(len(x_eval), 100))
        print_table(
            f"Importance-sampled log p(x), k = {args.k}, {len(x_eval):,} test images per run (untrained model)",
            results,
            "jax log p(x)" if jax_ref is not None else "pytorch log p(x)",
        )
        means = {name: round(float(np.mean(r.last)), 2) for name, r in runners.items()}
        print(f"(mean log p(x) estimate: {means})")
        report["rows"]["is_eval"] = results

    if args.profile:
        report["profile_ms_per_batch"] = profile_step(args, x_train)
    if args.trace:
        trace(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
