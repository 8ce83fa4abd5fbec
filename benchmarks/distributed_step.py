"""The global training step under ``MirroredStrategy`` against one device.

The CPU is split into ``--devices`` logical devices (``keras_vae.distribute.split_cpu``,
which also gives each device its share of the cores' intra-op threads, or
``--intra-op-threads``); every row trains ``presets.from_preset(--preset)``
with Adam(1e-3) on the same binarised MNIST batches (global batch
``--batch-size``, ``--steps`` batches: a fixed size, ``drop_remainder=True``,
with nothing to drop) and the rows are timed in turn (A B C A B C ...), so they
share the machine's load:

- ``one device, own process, every core``: no strategy, keras-vae's defaults
  (XLA, fused steps), in a second process that keeps TensorFlow's default
  threads (what one device gets without ``split_cpu``);
- ``one device``: the same in the benchmark's process (the split's threads);
- ``mirrored, defaults``: the same model built under ``MirroredStrategy`` over the
  logical devices with ``compile``'s defaults there (or ``--steps-per-execution``);
- ``mirrored, defaults, every device updates every variable``: the same, with
  ``DeviceUpdate(shard=False)`` instead of each device updating its share of
  the variables;
- ``mirrored, defaults, batches of unknown size (a pull per step)``: the same,
  on the same batches without a fixed size in the dataset's shape (``batch``
  without ``drop_remainder``), which ``fit`` reads one batch per step
  instead of one stack of an execution's batches (``keras_vae.training.stack_steps``);
- ``mirrored, defaults, a new iterator every epoch``: the same, with the dataset
  read as Keras reads it, a new (multi-device) iterator every epoch, instead of
  one for the whole ``fit`` (``keras_vae.training.one_iterator_per_fit``);
- ``mirrored, XLA, N steps per call``: ``compile(jit_compile=True,
  steps_per_execution=--xla-steps)`` under the strategy;
- ``mirrored, XLA, N steps per call, Keras's optimizer update``: the same, with
  the optimizer step through ``tf.distribute`` (Keras's ``apply_gradients`` in
  each replica) instead of ``keras_vae.device_update`` (one program per device);
- ``mirrored, no XLA, 1 step per call``: ``compile(jit_compile=False,
  steps_per_execution=1)`` under the strategy.

Each row trains ``--repeats`` fit calls of ``--epochs-per-fit`` epochs of
``--steps`` steps; before each call the benchmark waits until both of its
processes are idle (``wait_until_idle``). Printed per row: milliseconds per
global step (median over the epochs after the first of each call, timed from
the epoch's start to its end), examples/s overall and per replica, the ratio
to the faster one-device row, the time of a fit call outside its epochs
(starting and ending it), the first fit's time (tracing and compilation) and
the final training ELBO; then, for each mirrored row, its calls against the
one-device calls of the same rounds (each call's median over the same
round's one-device median: the two are seconds apart, so that a slow spell
of the machine, which lasts seconds, tends to fall on both sides of a ratio;
median and quartiles over the rounds); then the machine's float32 matrix-multiply peak before
and after the timed fits (in the reference process, every core), as a
shared machine's speed varies. ``--rows`` times some of the rows only (``reference,defaults`` compares
the mirrored defaults with the one-device reference, round after round). Run::

    KERAS_VAE_MNIST_PATH=mnist.npz python benchmarks/distributed_step.py --json benchmarks/results/distributed_step.json
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

#: The row trained in a process of its own, with TensorFlow's default threads.
ONE_DEVICE_OWN_PROCESS = "one device, own process, every core"
#: The row whose fit calls make a new dataset iterator every epoch, as Keras does.
KERAS_ITERATORS = "mirrored, defaults, a new iterator every epoch"
#: The row whose devices each update every variable (no shares).
UNSHARDED = "mirrored, defaults, every device updates every variable"
#: The row whose batches have no fixed size in the dataset's shape (one pull per step).
PER_STEP_PULLS = "mirrored, defaults, batches of unknown size (a pull per step)"

#: ``--rows`` keys, in the order the rows are timed.
ROW_KEYS = (
    "reference", "one-device", "defaults", "unsharded", "per-step-pulls", "keras-iterators", "xla",
    "keras-update", "no-xla",
)  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2, help="logical CPU devices (mirrored replicas)")
    parser.add_argument("--preset", default="burda_1layer")
    parser.add_argument("--batch-size", type=int, default=100, help="global batch size")
    parser.add_argument("--steps", type=int, default=256, help="global steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="fit calls per row")
    parser.add_argument("--epochs-per-fit", type=int, default=3, help="epochs per fit call; the first is not timed")
    parser.add_argument("--steps-per-execution", default="auto", help="compile's setting for the mirrored default row")
    parser.add_argument("--xla-steps", type=int, default=16, help="steps per call of the mirrored XLA row")
    parser.add_argument(
        "--intra-op-threads", default="auto",
        help="split_cpu's intra-op pool: auto (the cores' share per device), N, or 0 (TensorFlow's default, "
        "every core)",
    )  # fmt: skip
    parser.add_argument(
        "--no-reference-process", action="store_true",
        help="skip the one-device row trained in a process of its own",
    )  # fmt: skip
    parser.add_argument(
        "--rows", default=",".join(ROW_KEYS),
        help="comma-separated rows to time, of: " + ", ".join(ROW_KEYS) + " (default: all)",
    )  # fmt: skip
    parser.add_argument("--serve-one-device", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    args.rows = [key.strip() for key in args.rows.split(",") if key.strip()]
    unknown = sorted(set(args.rows) - set(ROW_KEYS))
    if unknown or not args.rows:
        parser.error(f"--rows: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(ROW_KEYS)}")
    if args.epochs_per_fit < 2:
        parser.error("--epochs-per-fit must be at least 2 (the first epoch of each call is not timed)")
    if args.no_reference_process and "reference" in args.rows:
        args.rows.remove("reference")
    if not any(key in args.rows for key in ("reference", "one-device")):
        parser.error("--rows needs a one-device row (reference or one-device) to compare with")
    return args


def training_data(args, fixed_size=True):
    """The benchmark's dataset: the first ``--steps`` batches of statically binarised MNIST.

    ``fixed_size``: batch with ``drop_remainder=True`` (the examples are
    ``--steps`` whole batches: nothing is dropped), which gives the batches a
    static size; False leaves it unknown in the dataset's shape.
    """
    import numpy as np
    import tensorflow as tf

    from keras_vae import datasets

    x, _ = datasets.load_arrays("mnist", "train")
    x = datasets.binarize(np.asarray(x[: args.steps * args.batch_size]), "static", seed=0)
    return tf.data.Dataset.from_tensor_slices(x).batch(args.batch_size, drop_remainder=fixed_size).prefetch(2)


def build(args, scope=None, update="default", **compile_kwargs):
    """The preset's model, compiled with Adam(1e-3) within ``scope`` (a strategy's scope, or none).

    ``update``: ``"default"``, ``"keras"`` (Keras's ``apply_gradients`` in each
    replica) or ``"unsharded"`` (``DeviceUpdate(shard=False)``: every device
    updates every variable).
    """
    import keras

    from keras_vae import device_update
    from keras_vae import presets

    with scope or contextlib.nullcontext():
        model = presets.from_preset(args.preset, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), **compile_kwargs)
    if update == "keras":
        model._device_update = lambda: None
    elif update == "unsharded":
        model._device_update = lambda: device_update.DeviceUpdate(
            model.optimizer, model.trainable_variables, model.distribute_strategy,
            jit_compile=bool(model.jit_compile), shard=False,
        )  # fmt: skip
    return model


def timed_fit(args, model, data, epochs, context=None):
    """``(seconds, [ms per step of each epoch], final training ELBO)`` of one ``fit`` call."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Milliseconds per step of each epoch, from its start to its end."""

        def __init__(self):
            super().__init__()
            self.ms = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.ms.append(1000 * (time.perf_counter() - self.start) / args.steps)

    timer = EpochTimer()
    start = time.perf_counter()
    with context or contextlib.nullcontext():
        history = model.fit(data, epochs=epochs, verbose=0, callbacks=[timer])
    return time.perf_counter() - start, timer.ms, float(history.history["elbo"][-1])


def serve_one_device(args):
    """The reference process: one device, default threads.

    One fit call per line ``fit E`` on stdin; ``peak`` measures the float32
    matrix-multiply peak with every core (``throughput.matmul_peak_gflops``).
    """
    from throughput import matmul_peak_gflops

    model, data = build(args), training_data(args)
    for line in sys.stdin:
        if line.startswith("peak"):
            print(json.dumps({"gflops": matmul_peak_gflops()}), flush=True)
            continue
        if not line.startswith("fit "):
            break
        seconds, ms, elbo = timed_fit(args, model, data, int(line.split()[1]))
        print(json.dumps({"seconds": seconds, "ms": ms, "elbo": elbo}), flush=True)
    return 0


class ReferenceProcess:
    """The one-device row trained in a process of its own, timed in turn with the others."""

    jit_compile, steps_per_execution = True, "default"

    def __init__(self, argv):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *argv, "--serve-one-device"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def _ask(self, request):
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the one-device reference process ended")
        return json.loads(line)

    def fit(self, epochs):
        result = self._ask(f"fit {epochs}")
        return result["seconds"], result["ms"], result["elbo"]

    def peak_gflops(self):
        """The machine's float32 matrix-multiply GFLOP/s with every core, now."""
        return self._ask("peak")["gflops"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def cpu_seconds(pid):
    """CPU time (user + system, every thread) process ``pid`` has used so far, or None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pids, busy=0.1, interval=0.25, timeout=10.0):
    """Wait until the processes ``pids`` use under ``busy`` of a core together (at most ``timeout`` s).

    A fit call leaves work behind it (its dataset iterators' threads wind
    down for up to seconds); without the wait that work shares the cores
    with the next row's timed epochs. Returns the seconds waited.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        before = [cpu_seconds(pid) for pid in pids]
        time.sleep(interval)
        after = [cpu_seconds(pid) for pid in pids]
        if None in before or None in after or sum(after) - sum(before) < busy * interval:
            break
    return time.perf_counter() - start


def per_epoch_iterators(active):
    """Within the block (if ``active``), ``fit`` under a strategy reads datasets with an iterator per epoch."""
    from unittest import mock

    from keras_vae import training

    if not active:
        return contextlib.nullcontext()
    return mock.patch.object(training, "one_iterator_per_fit", lambda data, kwargs, key: (data, None))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.serve_one_device:
        return serve_one_device(args)
    from keras_vae import distribute

    threads = args.intra_op_threads if args.intra_op_threads == "auto" else int(args.intra_op_threads)
    distribute.split_cpu(args.devices, intra_op_threads=threads)
    import tensorflow as tf

    # The reference process gets the same arguments (it writes no JSON).
    reference = ReferenceProcess(argv) if "reference" in args.rows else None
    data, unknown_size = training_data(args), training_data(args, fixed_size=False)
    strategy = distribute.get_strategy("mirrored")
    spe = args.steps_per_execution if args.steps_per_execution == "auto" else int(args.steps_per_execution)
    mirrored = strategy.scope
    builders = {
        "reference": (ONE_DEVICE_OWN_PROCESS, lambda: reference),
        "one-device": ("one device", lambda: build(args)),
        "defaults": ("mirrored, defaults", lambda: build(args, mirrored(), steps_per_execution=spe)),
        "unsharded": (UNSHARDED, lambda: build(args, mirrored(), update="unsharded", steps_per_execution=spe)),
        "per-step-pulls": (PER_STEP_PULLS, lambda: build(args, mirrored(), steps_per_execution=spe)),
        "keras-iterators": (KERAS_ITERATORS, lambda: build(args, mirrored(), steps_per_execution=spe)),
        "xla": (
            f"mirrored, XLA, {args.xla_steps} steps per call",
            lambda: build(args, mirrored(), jit_compile=True, steps_per_execution=args.xla_steps),
        ),
        "keras-update": (
            f"mirrored, XLA, {args.xla_steps} steps per call, Keras's optimizer update",
            lambda: build(args, mirrored(), update="keras", jit_compile=True, steps_per_execution=args.xla_steps),
        ),
        "no-xla": (
            "mirrored, no XLA, 1 step per call",
            lambda: build(args, mirrored(), jit_compile=False, steps_per_execution=1),
        ),
    }
    rows = {}
    for key in ROW_KEYS:
        if key in args.rows:
            name, make = builders[key]
            rows[name] = make()
    print(
        f"{args.preset}, global batch {args.batch_size}, {args.steps} steps per epoch, "
        f"{strategy.num_replicas_in_sync} replicas on {os.cpu_count()} CPUs, "
        f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default (every core)'}"
    )

    pids = [os.getpid()] + ([reference.proc.pid] if reference is not None else [])

    def fit(name, epochs):
        waited.append(wait_until_idle(pids))
        if name == ONE_DEVICE_OWN_PROCESS:
            return reference.fit(epochs)
        rows_data = unknown_size if name == PER_STEP_PULLS else data
        return timed_fit(args, rows[name], rows_data, epochs, per_epoch_iterators(name == KERAS_ITERATORS))

    waited = []
    # The machine's state before and after the timed fits (a shared machine's speed varies).
    peaks = [reference.peak_gflops()] if reference is not None else []
    first, times, outside, elbo = {}, {name: [] for name in rows}, {name: [] for name in rows}, {}
    for name, model in rows.items():
        first[name], _, _ = fit(name, 1)
        print(f"  {name}: first epoch (tracing, compilation) {first[name]:.1f} s "
              f"[jit_compile={model.jit_compile}, steps_per_execution={model.steps_per_execution}]", flush=True)
    calls = {name: [] for name in rows}  # Each call's median, round by round.
    for _ in range(args.repeats):
        for name in rows:
            seconds, epochs, elbo[name] = fit(name, args.epochs_per_fit)
            times[name] += epochs[1:]
            calls[name].append(statistics.median(epochs[1:]))
            outside[name].append(seconds - sum(epochs) * args.steps / 1000)
    if reference is not None:
        peaks.append(reference.peak_gflops())
        reference.close()
        print("float32 matrix-multiply peak, every core, before and after: "
              + ", ".join(f"{p:.0f}" for p in peaks) + " GFLOP/s")
    print(f"waited for idle processes before each fit call: median {statistics.median(waited):.2f} s, "
          f"longest {max(waited):.2f} s")
    # Against the faster of the one-device rows.
    single = min(statistics.median(times[name]) for name in rows if name.startswith("one device"))
    print("\n| row | ms per global step (median) | epochs | examples/s | per replica | vs one device | "
          "fit call outside its epochs, s | first epoch s | train ELBO |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    report = {"preset": args.preset, "batch_size": args.batch_size, "steps": args.steps,
              "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
              "replicas": strategy.num_replicas_in_sync, "peak_gflops_before_after": peaks,
              "idle_wait_seconds": waited,
              "rows": {}}  # fmt: skip
    for name, values in times.items():
        ms = statistics.median(values)
        replicas = 1 if name.startswith("one device") else strategy.num_replicas_in_sync
        per_second = 1000 * args.batch_size / ms
        print(f"| {name} | {ms:.2f} | {', '.join(f'{v:.2f}' for v in values)} | {per_second:,.0f} | "
              f"{per_second / replicas:,.0f} | {ms / single:.2f}x | {statistics.median(outside[name]):.2f} | "
              f"{first[name]:.1f} | {elbo[name]:.2f} |")
        report["rows"][name] = {"ms_per_step": values, "median_ms": ms, "vs_one_device": ms / single,
                                "first_epoch_seconds": first[name], "train_elbo": elbo[name],
                                "fit_seconds_outside_epochs": outside[name],
                                "jit_compile": bool(rows[name].jit_compile),
                                "steps_per_execution": str(rows[name].steps_per_execution)}  # fmt: skip
    # Each mirrored call against the one-device call of the same round (seconds apart, where
    # the medians above compare rows over the whole run), so that a slow spell of the machine
    # tends to fall on both sides of a ratio.
    paired_to = ONE_DEVICE_OWN_PROCESS if ONE_DEVICE_OWN_PROCESS in rows else "one device"
    print(f"\nEach round's call against the same round's {paired_to!r} call (ratios of their medians):")
    for name in rows:
        if name.startswith("one device"):
            continue
        ratios = [a / b for a, b in zip(calls[name], calls[paired_to])]
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print(f"  {name}: median {statistics.median(ratios):.2f}x, quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}x, "
              f"rounds {', '.join(f'{r:.2f}' for r in ratios)}")
        report["rows"][name]["paired_vs_one_device"] = {"to": paired_to, "ratios": ratios}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
