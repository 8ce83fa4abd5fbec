"""Objectives as registered objects: the registry, a new objective as one class, heads' descriptions."""

import warnings

import keras
import numpy as np
import pytest

import keras_vae
from keras_vae import objectives


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _data(n=64, d=16, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.3).astype("float32")


# A new objective, defined here only: the package is not edited to add it.
@objectives.register
class FreeBitsELBO(objectives.Objective):
    """ELBO whose KL term is never below ``free_bits`` nats per example (Kingma et al., 2016)."""

    name = "test_free_bits_elbo"

    def __init__(self, free_bits=1.0):
        self.free_bits = float(free_bits)

    def metric_names(self, model):
        return ["clamped_kl"]

    def losses(self, model, x, training=True):
        metrics = objectives.elbo(model.terms(x, model.n_samples, training=training))
        clamped = keras.ops.maximum(metrics["kl"], self.free_bits)
        metrics["clamped_kl"] = clamped
        metrics["loss"] = clamped - metrics["reconstruction"]
        return {"all": metrics["loss"]}, metrics

    def get_config(self):
        return {"free_bits": self.free_bits}


def test_builtin_objectives_are_registered_by_name():
    assert objectives.OBJECTIVES == ("elbo", "iwae", "wake_sleep", "reweighted_wake_sleep")
    assert set(objectives.OBJECTIVES) <= set(objectives.available())
    for name in objectives.OBJECTIVES:
        objective = objectives.get(name)
        assert objective.name == name
        assert objectives.serialize(objective) == name  # built-ins save as their name
    assert objectives.get("wake_sleep").variable_groups == ("generative", "recognition")
    assert not objectives.get("wake_sleep").needs_reparameterized
    assert objectives.get("elbo").uses_kl_weight and not objectives.get("iwae").uses_kl_weight


def test_unknown_objectives_and_bad_registrations_are_refused():
    with pytest.raises(ValueError, match="contrastive"):
        objectives.get("contrastive")
    with pytest.raises(ValueError, match="contrastive"):
        keras_vae.HelmholtzMachine(16, latent_dims=(2,), objective="contrastive")
    with pytest.raises(TypeError):
        objectives.register(dict)

    class Clash(objectives.Objective):
        name = "elbo"

    with pytest.raises(ValueError, match="already registered"):
        objectives.register(Clash)


def test_a_new_objective_is_one_class():
    x = _data()
    model = keras_vae.HelmholtzMachine(16, latent_dims=(3,), hidden_dims=(8,), objective=FreeBitsELBO(5.0), seed=0)
    assert model.objective == "test_free_bits_elbo"
    losses, metrics = model.objective_losses(x)
    kl = _numpy(metrics["kl"])
    # The loss is -reconstruction + max(KL, 5): the KL of a fresh model is small.
    expected = np.maximum(kl, 5.0) - _numpy(metrics["reconstruction"])
    np.testing.assert_allclose(_numpy(losses["all"]), expected, rtol=1e-5)
    assert (kl < 5.0).any()

    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    history = model.fit(x, epochs=2, batch_size=32, verbose=0)
    assert {"loss", "elbo", "reconstruction", "kl", "clamped_kl"} <= set(history.history)
    assert np.all(np.asarray(history.history["clamped_kl"]) >= 5.0 - 1e-5)


def test_a_custom_objective_round_trips_through_save(tmp_path):
    x = _data()
    model = keras_vae.HelmholtzMachine(16, latent_dims=(3,), hidden_dims=(8,), objective=FreeBitsELBO(2.5), seed=0)
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    config = model.get_config()
    assert isinstance(config["objective"], dict)  # not a built-in: serialised with its arguments
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.training_objective, FreeBitsELBO)
    assert loaded.training_objective.free_bits == 2.5
    np.testing.assert_allclose(_numpy(loaded.reconstruct(x[:4])), _numpy(model.reconstruct(x[:4])), atol=1e-6)


def test_the_objective_object_and_its_name_build_the_same_model():
    x = _data()
    common = dict(latent_dims=(4, 2), hidden_dims=(8,), n_samples=3, seed=0)
    by_name = keras_vae.HelmholtzMachine(16, objective="iwae", **common)
    by_object = keras_vae.HelmholtzMachine(16, objective=objectives.IWAE(), **common)
    by_object.set_weights(by_name.get_weights())
    strip = lambda config: {k: v for k, v in config.items() if k != "name"}  # noqa: E731
    assert strip(by_object.get_config()) == strip(by_name.get_config())
    a = _numpy(by_name.objective_losses(x, training=False)[1]["iwae_bound"])
    b = _numpy(by_object.objective_losses(x, training=False)[1]["iwae_bound"])
    # Same weights, same seed, same noise: the same bound.
    assert a.shape == (64,) and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_deprecated_distributions_module_still_resolves_with_a_warning():
    from keras_vae import distributions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert distributions.GaussianLatent is keras_vae.heads.GaussianLatent
        assert distributions._Head is keras_vae.heads.DistributionHead
    assert len(caught) == 2 and all(issubclass(w.category, DeprecationWarning) for w in caught)
    with pytest.raises(AttributeError):
        distributions.NoSuchHead  # noqa: B018


@pytest.mark.parametrize(
    "head, family, outputs",
    [
        (keras_vae.BernoulliObservation(3), "bernoulli", {"logits", "probs"}),
        (keras_vae.GaussianObservation(3), "gaussian", {"loc", "scale"}),
        (keras_vae.CategoricalObservation([2, 4]), "categorical", {"logits", "probs"}),
    ],
)
def test_observation_heads_describe_what_decode_returns(head, family, outputs):
    head.build((None, 5))
    described = head.describe()
    assert described["family"] == family and set(described["outputs"]) == outputs
    params = head(np.zeros((2, 5), "float32"))
    assert set(head.decode_outputs(params)) == outputs | {"mean"}
    assert described["input_scaling"]


def test_mixed_head_describes_its_components_and_their_columns():
    head = keras_vae.MixedObservation(
        [keras_vae.BernoulliObservation(2), keras_vae.CategoricalObservation([3]), keras_vae.GaussianObservation(2)]
    )
    head.build((None, 5))
    described = head.describe()
    assert [c["columns"] for c in described["components"]] == [[0, 2], [2, 3], [3, 5]]
    params = head(np.zeros((1, 5), "float32"))
    assert set(described["outputs"]) == set(head.decode_outputs(params)) - {"mean"}


@pytest.mark.parametrize("covariance, scale", [("diag", "scale"), ("full", "scale_tril")])
def test_latent_heads_describe_their_parameters(covariance, scale):
    head = keras_vae.GaussianLatent(3, covariance=covariance)
    head.build((None, 4))
    assert set(head.describe()["parameters"]) == {"loc", scale} == set(head(np.zeros((1, 4), "float32")))
    assert keras_vae.StandardNormalPrior(3).describe()["distribution"] == "N(0, I)"
    assert "logits" in keras_vae.BernoulliPrior(3).describe()["parameters"]


@pytest.mark.parametrize("cls", [objectives.WakeSleep, objectives.ReweightedWakeSleep])
def test_recognition_waits_for_its_delay_then_learns(cls):
    x = _data(100)
    objective = cls(recognition_delay_steps=6)
    model = keras_vae.HelmholtzMachine(16, latent_dims=(4, 2), hidden_dims=(8,), objective=objective, n_samples=2)
    model.compile(keras.optimizers.Adam(1e-2), jit_compile=False, steps_per_execution=1)
    recognition = [v.numpy().copy() for v in model.recognition_variables]
    generative = [v.numpy().copy() for v in model.generative_variables]
    model.fit(x, epochs=3, batch_size=50, verbose=0)  # 6 steps: all within the delay
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(recognition, model.recognition_variables))
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(generative, model.generative_variables)
               if v.shape.rank == 2)
    model.fit(x, epochs=2, batch_size=50, verbose=0)  # steps 7-10: q learns too
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(recognition, model.recognition_variables)
               if v.shape.rank == 2)


def test_wake_sleep_delay_is_saved_only_when_not_the_default():
    assert objectives.WakeSleep().recognition_delay_steps == 1000
    assert objectives.serialize(objectives.WakeSleep()) == "wake_sleep"
    custom = objectives.serialize(objectives.WakeSleep(recognition_delay_steps=0))
    assert isinstance(custom, dict)
    assert objectives.get(custom).recognition_delay_steps == 0
    with pytest.raises(ValueError, match="recognition_delay_steps"):
        objectives.ReweightedWakeSleep(recognition_delay_steps=-1)


def test_a_head_without_its_own_description_still_describes_itself():
    class Plain(keras_vae.heads.ObservationHead):
        pass

    described = Plain().describe()
    assert described["family"] == "Plain" and described["outputs"] == {} and described["input_scaling"]
