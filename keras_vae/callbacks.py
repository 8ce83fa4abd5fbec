"""Callbacks used by keras-vae training."""

import math
import time
import warnings

import keras


class StopOnNaN(keras.callbacks.Callback):
    """Stop training with ``FloatingPointError`` as soon as the loss is NaN/inf.

    Raising from the batch hook ends ``fit`` before the epoch ends, so epoch
    checkpoints (``BackupAndRestore``, ``ModelCheckpoint``) keep the last good
    weights instead of being overwritten with non-finite ones.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise FloatingPointError(
                f"Training stopped: the loss became {float(loss)} at epoch "
                f"{self._epoch + 1}, batch {batch + 1}. Try a lower learning rate, "
                "check the data for extreme values, or use gradient clipping "
                "(e.g. compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=10)))."
            )


class LayerCollapseWarning(UserWarning):
    """A stochastic layer's posterior no longer depends on the data."""


class CollapseMonitor(keras.callbacks.Callback):
    """Warn once per layer when a stochastic layer collapses during training.

    After every epoch from ``start_epoch`` on, once the model has taken
    ``start_step`` optimizer steps (before that, what is "active" reflects
    the random initialisation more than the data), the posterior means of a fixed
    sample of the training data are computed layer by layer; a layer none of
    whose units is active (``Cov_x(E_q[u]) <= threshold`` for every unit, the
    criterion of ``keras_vae.evaluation.active_units``) is *collapsed*: the
    model ignores it and its KL is near zero. The warning
    (:class:`LayerCollapseWarning`) names the layer, its KL and what to try
    (the advice of the model's objective). ``fit`` adds a monitor on the
    first batch of its data unless one is given.

    Args:
        x: ``[N, D]`` examples to check the layers on (a few hundred suffice).
        threshold: activity threshold of a unit.
        start_epoch: first epoch (1-based) after which to check.
        start_step: optimizer steps the model must have taken before a check.

    Example:
        >>> model.fit(x, epochs=20, callbacks=[CollapseMonitor(x[:500], start_epoch=3)])
    """

    def __init__(self, x, threshold=0.01, start_epoch=2, start_step=500):
        super().__init__()
        self.x = x
        self.threshold = float(threshold)
        self.start_epoch = int(start_epoch)
        self.start_step = int(start_step)
        self.warned = set()

    def active_counts(self):
        """Active units per layer on ``x`` (``keras_vae.evaluation.active_units``)."""
        from keras_vae import evaluation

        return evaluation.active_units(self.model, self.x, threshold=self.threshold, batch_size=len(self.x)).counts

    def layer_kls(self):
        """The KL term of each layer, ``E_q[log q(h_m | .) - log p(h_m | .)]``, in nats (Monte Carlo)."""
        terms = self.model.terms(self.x, 1, analytic_kl=False)
        return [float(keras.ops.mean(q - p)) for q, p in zip(terms.log_q, terms.log_p)]

    def layer_report(self):
        """Per layer ``(active_units, kl)``."""
        return list(zip(self.active_counts(), self.layer_kls()))

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.start_epoch or len(self.warned) == self.model.num_layers:
            return
        optimizer = getattr(self.model, "optimizer", None)
        # convert_to_numpy: under tf.distribute the step counter is a MirroredVariable (no int()).
        if optimizer is not None and int(keras.ops.convert_to_numpy(optimizer.iterations)) < self.start_step:
            return
        counts = self.active_counts()
        collapsed = [m for m, active in enumerate(counts, start=1) if active == 0 and m not in self.warned]
        if not collapsed:
            return
        kls = self.layer_kls()  # Only for the message: one more pass, once per collapsed layer at most.
        for m in collapsed:
            self.warned.add(m)
            advice = self.model.training_objective.collapse_advice
            warnings.warn(
                f"Stochastic layer {m} of {self.model.num_layers} (h_{m}, {self.model.latent_dims[m - 1]} units) "
                f"has collapsed after epoch {epoch + 1}: no unit's posterior mean varies with the data "
                f"(KL term {kls[m - 1]:.2f} nats per example), so the model does not use it. Try: {advice}",
                LayerCollapseWarning,
                stacklevel=2,
            )


class EpochLogger(keras.callbacks.Callback):
    """One plain line per epoch, for logs written to files (no progress bar, no terminal codes).

    Use with ``fit(..., verbose=0)``. Each line gives the epoch, every metric
    of the epoch's logs (validation ones included) and the epoch's seconds::

        epoch 3/200: elbo -29.787, kl 2.405, val_elbo -29.614 (0.2 s)

    Args:
        epochs: total epochs of the run (shown as the denominator).
        metrics: names to show, in order; None shows every logged metric except ``loss``.
        print_fn: where the lines go (default ``print`` with flush).

    Example:

    ```python
    model.fit(x, epochs=10, verbose=0, callbacks=[EpochLogger(10)])
    ```
    """

    def __init__(self, epochs, metrics=None, print_fn=None):
        super().__init__()
        self.epochs = int(epochs)
        self.metrics = None if metrics is None else list(metrics)
        self.print_fn = print_fn or (lambda line: print(line, flush=True))
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        names = self.metrics if self.metrics is not None else [k for k in logs if k not in ("loss", "val_loss")]
        parts = [f"{name} {float(logs[name]):.3f}" for name in names if name in logs]
        seconds = time.perf_counter() - self._start if self._start is not None else float("nan")
        self.print_fn(f"epoch {epoch + 1}/{self.epochs}: {', '.join(parts)} ({seconds:.1f} s)")
