"""The throughput benchmark's models as a plain JAX program (optional, benchmark-only).

The same models as ``throughput.py``'s PyTorch modules (Burda et al. 2015,
tanh, Gaussian layers with ``softplus(raw) + 1e-4`` scales, Bernoulli pixels,
analytic top-layer KL), written the way a JAX user would for speed:

- ``JaxTrainer``: one ``jax.jit``-compiled call per epoch. The epoch's data
  are in memory; inside the call, a permutation, the dynamic binarisation of
  each batch and the steps run in one ``lax.scan`` with optax's Adam.
- ``JaxEvaluator``: importance-sampled ``log p(x)``, ``images`` images by
  ``chunk`` samples per jitted call, ``vmap`` over the samples, a running
  ``logaddexp`` over the chunks.

Needs ``pip install jax optax``; ``available()`` says whether they import.
"""

import time

import numpy as np


def available():
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        return False
    return True


def _init_linear(key, d_in, d_out):
    """PyTorch's default Linear initialisation, U(-1/sqrt(d_in), 1/sqrt(d_in))."""
    import jax

    bound = 1.0 / np.sqrt(d_in)
    k1, k2 = jax.random.split(key)
    return {
        "w": jax.random.uniform(k1, (d_in, d_out), minval=-bound, maxval=bound),
        "b": jax.random.uniform(k2, (d_out,), minval=-bound, maxval=bound),
    }


def _init_mlp(key, sizes):
    import jax

    keys = jax.random.split(key, len(sizes) - 1)
    return [_init_linear(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _init_gaussian(key, d_in, d_out):
    import jax

    k1, k2 = jax.random.split(key)
    return {"loc": _init_linear(k1, d_in, d_out), "raw": _init_linear(k2, d_in, d_out)}


def init_params(kind, seed):
    """Parameters of ``"vae"`` (784-200-200-[50]) or ``"hm"`` (784-200-200-[100]-100-100-[50])."""
    import jax

    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    if kind == "vae":
        return {
            "enc": _init_mlp(keys[0], [784, 200, 200]),
            "q": _init_gaussian(keys[1], 200, 50),
            "dec": _init_mlp(keys[2], [50, 200, 200]),
            "logits": _init_linear(keys[3], 200, 784),
        }
    return {
        "enc1": _init_mlp(keys[0], [784, 200, 200]),
        "q1": _init_gaussian(keys[1], 200, 100),
        "enc2": _init_mlp(keys[2], [100, 100, 100]),
        "q2": _init_gaussian(keys[3], 100, 50),
        "dec2": _init_mlp(keys[4], [50, 100, 100]),
        "p1": _init_gaussian(keys[5], 100, 100),
        "dec1": _init_mlp(keys[6], [100, 200, 200]),
        "logits": _init_linear(keys[7], 200, 784),
    }


def _linear(p, h):
    return h @ p["w"] + p["b"]


def _mlp(ps, h):
    import jax.numpy as jnp

    for p in ps:
        h = jnp.tanh(_linear(p, h))
    return h


def _gaussian(p, h):
    import jax

    return _linear(p["loc"], h), jax.nn.softplus(_linear(p["raw"], h)) + 1e-4


def _normal_log_prob(z, loc, scale):
    import jax.numpy as jnp

    return jnp.sum(-0.5 * ((z - loc) / scale) ** 2 - jnp.log(scale) - 0.5 * np.log(2 * np.pi), -1)


def _bernoulli_log_prob(x, logits):
    import jax

    return (x * logits - jax.nn.softplus(logits)).sum(-1)


def _kl_std_normal(loc, scale):
    import jax.numpy as jnp

    return jnp.sum(0.5 * (loc**2 + scale**2) - jnp.log(scale) - 0.5, -1)


def loss(kind, params, x, key):
    """Negative ELBO averaged over the batch ``x [B, 784]`` (one sample, analytic top KL)."""
    import jax

    if kind == "vae":
        loc, scale = _gaussian(params["q"], _mlp(params["enc"], x))
        z = loc + scale * jax.random.normal(key, loc.shape)
        rec = _bernoulli_log_prob(x, _linear(params["logits"], _mlp(params["dec"], z)))
        return -(rec - _kl_std_normal(loc, scale)).mean()
    k1, k2 = jax.random.split(key)
    loc1, scale1 = _gaussian(params["q1"], _mlp(params["enc1"], x))
    h1 = loc1 + scale1 * jax.random.normal(k1, loc1.shape)
    loc2, scale2 = _gaussian(params["q2"], _mlp(params["enc2"], h1))
    h2 = loc2 + scale2 * jax.random.normal(k2, loc2.shape)
    ploc1, pscale1 = _gaussian(params["p1"], _mlp(params["dec2"], h2))
    rec = _bernoulli_log_prob(x, _linear(params["logits"], _mlp(params["dec1"], h1)))
    kl1 = _normal_log_prob(h1, loc1, scale1) - _normal_log_prob(h1, ploc1, pscale1)
    return -(rec - kl1 - _kl_std_normal(loc2, scale2)).mean()


def vae_log_weights(params, x, k, key):
    """``[k, B]`` log p(x, z) - log q(z | x) of the one-layer model; q computed once."""
    import jax
    import jax.numpy as jnp

    loc, scale = _gaussian(params["q"], _mlp(params["enc"], x))
    z = loc + scale * jax.random.normal(key, (k,) + loc.shape)
    logits = _linear(params["logits"], _mlp(params["dec"], z))
    return (
        _bernoulli_log_prob(x, logits)
        + _normal_log_prob(z, jnp.zeros_like(z), jnp.ones_like(z))
        - _normal_log_prob(z, loc, scale)
    )


class JaxTrainer:
    """One jitted ``lax.scan`` over an epoch: shuffle, binarise, Adam steps (optax)."""

    def __init__(self, kind, x, batch_size, seed, epsilon=1e-7):
        import jax
        import jax.numpy as jnp
        import optax

        self.kind, self.batch_size = kind, batch_size
        self.x = jnp.asarray(x)
        self.params = init_params(kind, seed)
        # Keras's Adam epsilon, as the other rows.
        self.optimizer = optax.adam(1e-3, eps=epsilon)
        self.opt_state = self.optimizer.init(self.params)
        self.key = jax.random.PRNGKey(seed + 1)
        self._epochs = {}

    def _epoch_fn(self, n):
        import jax
        import optax

        kind, batch, optimizer = self.kind, self.batch_size, self.optimizer
        steps = n // batch
        grad_fn = jax.value_and_grad(lambda p, x, k: loss(kind, p, x, k))

        def step(carry, inputs):
            params, opt_state = carry
            x, key = inputs
            k_bin, k_noise = jax.random.split(key)
            x = jax.random.bernoulli(k_bin, x).astype(x.dtype)
            value, grads = grad_fn(params, x, k_noise)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        @jax.jit
        def epoch(params, opt_state, x, key):
            k_perm, k_steps = jax.random.split(key)
            order = jax.random.permutation(k_perm, x.shape[0])[: steps * batch]
            batches = x[order].reshape(steps, batch, x.shape[-1])
            (params, opt_state), losses = jax.lax.scan(
                step, (params, opt_state), (batches, jax.random.split(k_steps, steps))
            )
            return params, opt_state, losses[-1]

        return epoch

    def run(self, n):
        import jax

        if n not in self._epochs:
            self._epochs[n] = self._epoch_fn(n)
        start = time.perf_counter()
        self.key, key = jax.random.split(self.key)
        self.params, self.opt_state, last = self._epochs[n](self.params, self.opt_state, self.x[:n], key)
        self.last_loss = float(last)  # Blocks until the epoch is done.
        return n / (time.perf_counter() - start)


class JaxEvaluator:
    """``log p(x)`` with ``k`` samples: ``images`` images by ``chunk`` samples per jitted call."""

    def __init__(self, x, k, seed, images=100, chunk=81):
        import jax
        import jax.numpy as jnp

        self.params = init_params("vae", seed)
        self.x = jnp.asarray(x)
        self.k, self.images, self.chunk = k, images, chunk
        self.key = jax.random.PRNGKey(seed + 2)

        @jax.jit
        def chunk_lse(params, xb, key):
            return jax.nn.logsumexp(vae_log_weights(params, xb, chunk, key), axis=0)

        self._chunk = chunk_lse

    def run(self, n):
        import jax
        import jax.numpy as jnp

        start = time.perf_counter()
        out = []
        for i in range(0, n, self.images):
            xb = self.x[i : i + self.images]
            total = jnp.full((xb.shape[0],), -jnp.inf)
            # Whole chunks of `chunk` samples (one compiled shape); k rounded up to them.
            for _ in range(-(-self.k // self.chunk)):
                self.key, key = jax.random.split(self.key)
                total = jnp.logaddexp(total, self._chunk(self.params, xb, key))
            out.append(total - np.log(-(-self.k // self.chunk) * self.chunk))
        self.last = np.asarray(jnp.concatenate(out))
        return n / (time.perf_counter() - start)
