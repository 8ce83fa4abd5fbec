"""Learning curves: one run's metrics per epoch, and several runs side by side."""


import numpy as np
from matplotlib import ticker

from keras_vae.plotting._common import _finish
from keras_vae.plotting._common import _history_dict
from keras_vae.plotting._common import _line_style
from keras_vae.plotting._common import _new_figure
from keras_vae.plotting._common import _to_numpy


def plot_history(history, metrics=("elbo", "reconstruction", "kl"), path=None):
    """Training curves, one subplot per metric, train and validation.

    Args:
        history: keras ``History``, dict ``{name: [value per epoch]}``, or a
            path to a JSON file holding such a dict.
        metrics: metric names; each is drawn from ``history[name]`` (train,
            solid) and ``history["val_" + name]`` (validation, dashed).
            Metrics with neither key are skipped.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[k]`` is the k-th metric present.

    Raises:
        ValueError: if none of ``metrics`` is in the history.
    """
    h = _history_dict(history)
    if isinstance(metrics, str):
        metrics = (metrics,)
    present = [m for m in metrics if m in h or f"val_{m}" in h]
    if not present:
        raise ValueError(
            f"None of the metrics {tuple(metrics)} is in the history; "
            f"available keys: {sorted(h)}.")
    fig = _new_figure(4.2 * len(present), 3.4)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(1, len(present), squeeze=False)[0]
    for ax, m in zip(axes, present):
        for key, label, style in ((m, "train", "-"), (f"val_{m}", "validation",
                                                      "--")):
            if key in h:
                vals = h[key]
                ax.plot(np.arange(1, vals.size + 1), vals, style, label=label,
                        **_line_style(vals.size))
        ax.set_title(m)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_ylabel("nats per example")
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def plot_comparison(histories, metric="val_elbo", x=None, path=None):
    """One metric for several training runs on shared axes.

    For AEVB-vs-wake-sleep curves in the style of Kingma & Welling (2014),
    Figure 2. When ``x`` is given and spans at least two orders of magnitude,
    the x axis is logarithmic.

    Args:
        histories: dict ``name -> History | dict | JSON path``, e.g.
            ``{"elbo": h1, "wake_sleep": h2}``. Runs without ``metric`` are
            skipped.
        metric: history key to plot, e.g. ``"val_elbo"``.
        x: optional dict ``name -> [x value per epoch]`` (e.g. training
            examples seen); needed for every plotted run when given.
        path: if given, save a PNG there.

    Returns:
        The ``Figure``; ``fig.axes[0].lines`` has one line per plotted run.

    Raises:
        ValueError: if no run has ``metric``, or an ``x`` entry is missing or
            has the wrong length.
    """
    runs = {name: _history_dict(h) for name, h in histories.items()}
    runs = {name: h[metric] for name, h in runs.items() if metric in h}
    if not runs:
        raise ValueError(f"No history contains the metric {metric!r}.")
    xs = {}
    for name, vals in runs.items():
        if x is None:
            xs[name] = np.arange(1, vals.size + 1)
            continue
        if name not in x:
            raise ValueError(f"x has no entry for run {name!r}.")
        xs[name] = np.asarray(_to_numpy(x[name]), np.float64).reshape(-1)
        if xs[name].size != vals.size:
            raise ValueError(
                f"x[{name!r}] has {xs[name].size} values but the run has "
                f"{vals.size} values of {metric!r}.")
    fig = _new_figure(6.4, 4.4)
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    for name, vals in runs.items():
        ax.plot(xs[name], vals, label=name, **_line_style(vals.size))
    if x is not None:
        ax.set_xlabel("training examples seen")
        all_x = np.concatenate(list(xs.values()))
        if np.all(all_x > 0) and all_x.max() >= 100 * all_x.min():
            ax.set_xscale("log")
    else:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} (nats per example)")
    ax.set_title(f"{metric} by training method")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _finish(fig, path)
