"""Bad inputs to the exact models (issue 14): a ValueError that names the argument, never a NaN or a JAX error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.models import lqr, tabular
from maxent_gan.models.irl_problems import lqr_family
from maxent_gan.models.unnormalized import Unnormalized

NAMES = ("A", "B", "Q", "R", "W", "m0", "S0")


def double_integrator():
    return {
        "A": jnp.array([[1.0, 0.1], [0.0, 1.0]]), "B": jnp.array([[0.0], [0.1]]), "Q": jnp.eye(2),
        "R": jnp.eye(1), "W": 0.01 * jnp.eye(2), "m0": jnp.array([1.0, 0.0]), "S0": 0.1 * jnp.eye(2),
    }


def two_state_mdp():
    return jnp.array([[0.3, 1.0], [0.0, 0.5]]), np.full((2, 2, 2), 0.5), jnp.array([0.25, 0.75])


# ---- LQR -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_lqr_nan_input_names_the_argument(name):
    system = double_integrator()
    system[name] = system[name].at[(0,) * system[name].ndim].set(jnp.nan)
    with pytest.raises(ValueError, match=rf"^{name}: non-finite value at index \(0"):
        lqr.log_partition(*system.values(), 4)
    with pytest.raises(ValueError, match=rf"^{name}: non-finite"):
        lqr.sample_trajectories(jax.random.key(0), *system.values(), 4, 10)


def test_lqr_overflow_names_the_large_argument():
    system = double_integrator()
    system["A"] = 1e300 * system["A"]
    with pytest.raises(ValueError, match=r"^A: the Riccati recursion overflowed \(entries up to 1e\+300\)"):
        lqr.log_partition(*system.values(), 4)
    with pytest.raises(ValueError, match="^A: the Riccati recursion overflowed"):
        lqr.sample_trajectories(jax.random.key(0), *system.values(), 4, 10)


@pytest.mark.parametrize("name", ["A", "Q", "m0"])
def test_lqr_complex_input_is_refused(name):
    system = double_integrator()
    system[name] = system[name] + 1j
    with pytest.raises(ValueError, match=rf"^{name}: expected real values, got dtype complex"):
        lqr.log_partition(*system.values(), 4)


def test_lqr_value_checks_skip_tracers_so_jit_and_grad_work():
    system = double_integrator()
    eager = lqr.log_partition(*system.values(), 4)
    jitted = jax.jit(lqr.log_partition, static_argnums=7)(*system.values(), 4)
    assert jnp.allclose(eager, jitted, atol=1e-12)
    grad_a = jax.grad(lambda A: lqr.log_partition(A, *list(system.values())[1:], 4))(system["A"])
    assert jnp.all(jnp.isfinite(grad_a))


def test_lqr_accepts_a_numpy_integer_horizon_and_count():
    system = double_integrator()
    assert jnp.allclose(lqr.log_partition(*system.values(), np.int64(5)), lqr.log_partition(*system.values(), 5))
    states, actions = lqr.sample_trajectories(jax.random.key(0), *system.values(), np.int64(5), np.int32(3))
    assert states.shape == (3, 6, 2) and actions.shape == (3, 5, 1)


@pytest.mark.parametrize("horizon", [True, 0, -2, 2.5], ids=["bool", "zero", "negative", "float"])
def test_lqr_bad_horizon_names_horizon(horizon):
    with pytest.raises(ValueError, match=rf"^horizon: expected a positive integer, got {horizon!r}"):
        lqr.log_partition(*double_integrator().values(), horizon)


@pytest.mark.parametrize("n", [-1, 0, 2.5, True], ids=["negative", "zero", "float", "bool"])
def test_lqr_sampler_bad_count_names_n(n):
    with pytest.raises(ValueError, match=rf"^n: expected a positive integer, got {n!r}"):
        lqr.sample_trajectories(jax.random.key(0), *double_integrator().values(), 4, n)


# ---- tabular -------------------------------------------------------------------------------------

def test_tabular_complex_costs_are_refused():
    costs, transitions, initial = two_state_mdp()
    with pytest.raises(ValueError, match="^costs: expected real values, got dtype complex"):
        tabular.log_partition(costs + 1j, transitions, initial, 3)
    with pytest.raises(ValueError, match="^costs: expected real values"):
        tabular.occupancy(costs + 1j, transitions, initial, 3)


@pytest.mark.parametrize("horizon", [True, 0, 2.5], ids=["bool", "zero", "float"])
def test_tabular_bad_horizon_names_horizon(horizon):
    costs, transitions, initial = two_state_mdp()
    with pytest.raises(ValueError, match=rf"^horizon: expected a positive integer, got {horizon!r}"):
        tabular.log_partition(costs, transitions, initial, horizon)


@pytest.mark.parametrize(("num_states", "num_actions"), [(0, 2), (2, 0)], ids=["no_states", "no_actions"])
@pytest.mark.parametrize("entry", ["log_partition", "occupancy", "sample_trajectories"])
def test_tabular_empty_problem_names_transitions(num_states, num_actions, entry):
    args = (jnp.zeros((num_states, num_actions)), np.zeros((num_states, num_actions, num_states)),
            jnp.ones(num_states) / max(num_states, 1), 3)
    call = getattr(tabular, entry)
    with pytest.raises(ValueError, match="^transitions: expected at least one state and one action"):
        call(jax.random.key(0), *args, 5) if entry == "sample_trajectories" else call(*args)


def test_tabular_float32_costs_with_float64_transitions_are_promoted():
    costs, transitions, initial = two_state_mdp()
    log_z = tabular.log_partition(costs.astype(jnp.float32), transitions, initial, 3)
    assert log_z.dtype == jnp.float64
    assert jnp.allclose(log_z, tabular.log_partition(costs, transitions, initial, 3), atol=1e-6)
    visits = tabular.occupancy(costs.astype(jnp.float32), transitions, initial, 3)
    assert jnp.allclose(visits.sum(), 3.0, atol=1e-6)
    states, _ = tabular.sample_trajectories(jax.random.key(0), costs.astype(jnp.float32), transitions, initial, 3, 4)
    assert states.shape == (4, 4)


def test_tabular_negative_initial_entry_is_named():
    costs, transitions, _ = two_state_mdp()
    with pytest.raises(ValueError, match=r"^initial: entry 1 is negative \(-0.5\)"):
        tabular.log_partition(costs, transitions, jnp.array([1.5, -0.5]), 3)


def test_tabular_negative_transition_entry_is_named():
    costs, transitions, initial = two_state_mdp()
    transitions[0, 1] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"^transitions: entry \(s=0, a=1, s'=1\) is negative \(-0.5\)"):
        tabular.log_partition(costs, transitions, initial, 3)


@pytest.mark.parametrize("n", [-1, 2.5, False], ids=["negative", "float", "bool"])
def test_tabular_sampler_bad_count_names_n(n):
    costs, transitions, initial = two_state_mdp()
    with pytest.raises(ValueError, match=rf"^n: expected a positive integer, got {n!r}"):
        tabular.sample_trajectories(jax.random.key(0), costs, transitions, initial, 3, n)


def test_tabular_sampler_accepts_numpy_integers():
    costs, transitions, initial = two_state_mdp()
    states, actions = tabular.sample_trajectories(jax.random.key(0), costs, transitions, initial, np.int64(3),
                                                  np.int64(4))
    assert states.shape == (4, 4) and actions.shape == (4, 3)


# ---- Unnormalized --------------------------------------------------------------------------------

def squared_norm(precision, x):
    return 0.5 * precision * jnp.sum(x**2, -1)


def test_unnormalized_wrong_trailing_shape_names_both_shapes():
    energy = Unnormalized(squared_norm, 1.0, event_shape=(2,))
    message = r"^x: expected trailing shape \(2,\) \(the target's event_shape\), got shape \(3, 5\)"
    with pytest.raises(ValueError, match=message):
        energy.cost(jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=message):
        jax.jit(energy.unnormalized_log_prob)(jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"^x: expected trailing shape \(2, 2\)"):
        Unnormalized(lambda p, x: jnp.sum(x, (-2, -1)), 1.0, event_shape=(2, 2)).cost(jnp.zeros(2))


def test_unnormalized_cost_fn_of_wrong_shape_is_named():
    energy = Unnormalized(lambda p, x: jnp.sum(x**2), 1.0, event_shape=(2,))
    with pytest.raises(ValueError, match=r"^cost_fn: returned shape \(\) for points of batch shape \(3,\)"):
        energy.cost(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^cost_fn: returned shape \(\) for points of batch shape \(3,\)"):
        energy.unnormalized_log_prob(jnp.zeros((3, 2)))


def test_unnormalized_right_shapes_still_pass():
    energy = Unnormalized(squared_norm, 1.0, event_shape=(2,))
    assert energy.cost(jnp.ones(2)).shape == ()
    assert energy.cost(jnp.ones((4, 3, 2))).shape == (4, 3)
    space, family = lqr_family(horizon=3)
    theta = jnp.zeros(3)
    target = family.target(theta, space)
    rows = target.sample(jax.random.key(0), (5,))
    assert rows.shape == (5, space.size)
    assert target.unnormalized_log_prob(rows).shape == (5,)


def test_a_user_mdp_horizon_accepts_numpy_integers_and_refuses_bools():
    import numpy as np
    from maxent_gan.models.gridworld import gridworld
    from maxent_gan.models.irl_problems import tabular_family

    mdp = gridworld(4, horizon=5)
    space, _ = tabular_family(mdp._replace(horizon=np.int64(5)))
    assert space.layout.horizon == 5
    with pytest.raises(ValueError, match="horizon: expected a positive integer, got True"):
        tabular_family(mdp._replace(horizon=True))
