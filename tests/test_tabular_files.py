"""Tabular environments as their users write them: dense transition arrays full of zeros, absorbing and
unreachable states, deterministic rows, one-hot state features. Exact quantities against enumeration,
and every training method on a file, with finite gradients."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.inference.proposals.policy import TabularPolicy
from maxent_gan.models.files import load_problem_file
from maxent_gan.models.gridworld import gridworld
from maxent_gan.models.tabular import as_transitions, log_partition, occupancy, sample_trajectories

NUM_STATES, NUM_ACTIONS, HORIZON = 4, 2, 3


def random_dense_mdp(seed: int, *, absorbing: bool, unreachable: bool, deterministic: bool):
    """Dense ``(S, A, S)`` dynamics with zeros: each row's support a random subset (one state when
    ``deterministic``), state 0 absorbing, state S-1 never reached (no row leads to it, it never starts)."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((NUM_STATES, NUM_ACTIONS, NUM_STATES))
    reachable = NUM_STATES - 1 if unreachable else NUM_STATES
    for s, a in itertools.product(range(NUM_STATES), range(NUM_ACTIONS)):
        size = 1 if deterministic and rng.random() < 0.5 else int(rng.integers(1, reachable + 1))
        support = rng.choice(reachable, size=size, replace=False)
        dense[s, a, support] = rng.dirichlet(np.ones(size))
    if absorbing:
        dense[0] = 0.0
        dense[0, :, 0] = 1.0
    initial = rng.dirichlet(np.ones(reachable))
    initial = np.concatenate([initial, np.zeros(NUM_STATES - reachable)])
    return dense, initial


def enumerate_log_z_and_visits(costs, dense, initial):
    """log Z and expected visits by summing over every trajectory (zeros of the dynamics kept as -inf)."""
    rows = np.array(list(itertools.product(range(NUM_STATES), *([range(NUM_ACTIONS), range(NUM_STATES)] * HORIZON))))
    states, actions = jnp.asarray(rows[:, 0::2]), jnp.asarray(rows[:, 1::2])

    def log_z(costs):
        with np.errstate(divide="ignore"):
            log_base = jnp.log(initial)[states[:, 0]] + jnp.log(dense[states[:, :-1], actions, states[:, 1:]]).sum(-1)
        return jax.nn.logsumexp(log_base - costs[states[:, :-1], actions].sum(-1))

    return log_z(costs), -jax.grad(log_z)(costs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), absorbing=st.booleans(), unreachable=st.booleans(), deterministic=st.booleans(),
       one_hot=st.booleans())
def test_dense_mdps_with_zeros_match_enumeration_with_finite_gradients(seed, absorbing, unreachable, deterministic,
                                                                         one_hot):
    dense, initial = random_dense_mdp(seed, absorbing=absorbing, unreachable=unreachable, deterministic=deterministic)
    rng = np.random.default_rng(seed + 1)
    # one-hot state features (seals' observation_matrix) or state-action features
    features = (np.broadcast_to(np.eye(NUM_STATES)[:, None], (NUM_STATES, NUM_ACTIONS, NUM_STATES)) if one_hot
                else rng.normal(size=(NUM_STATES, NUM_ACTIONS, 3)))
    theta = rng.normal(size=features.shape[-1])
    transitions = as_transitions(dense)
    # no slot is log 0: the sparse form is finite everywhere, and the same dynamics
    assert bool(jnp.all(jnp.isfinite(transitions.log_probs)))
    np.testing.assert_allclose(transitions.dense(), dense, atol=1e-12)

    def log_z(theta):
        return log_partition(jnp.asarray(features) @ theta, transitions, initial, HORIZON)

    costs = jnp.asarray(features) @ theta
    exact, visits = enumerate_log_z_and_visits(costs, dense, initial)
    np.testing.assert_allclose(log_z(theta), exact, atol=1e-10)
    np.testing.assert_allclose(occupancy(costs, transitions, initial, HORIZON), visits, atol=1e-10)
    gradient = jax.grad(log_z)(theta)
    np.testing.assert_allclose(gradient, -jnp.einsum("sa,sak->k", visits, features), atol=1e-10)
    # the samplers' gradients (exact expected loss; score function through log q) are finite too
    for tilted in (False, True):
        policy = TabularPolicy.uniform(transitions, jnp.asarray(initial), HORIZON, tilted=tilted)
        draws = policy.sample(jax.random.key(seed), 16)
        for leaf in jax.tree.leaves(eqx.filter(_sampler_gradients(policy, costs, draws), eqx.is_inexact_array)):
            assert bool(jnp.all(jnp.isfinite(leaf)))


@eqx.filter_jit  # one program per successor count and tilt, not a fresh scan at every example
def _sampler_gradients(policy, costs, draws):
    return (eqx.filter_grad(lambda p: p.expected_loss(costs))(policy),
            eqx.filter_grad(lambda p: p.log_prob(draws).sum())(policy))


def test_a_sparse_slot_of_probability_zero_is_filled_with_the_same_dynamics():
    successors = np.array([[[1, 0, 2]], [[1, 1, 1]], [[2, 0, 0]]])
    probs = np.array([[[0.7, 0.3, 0.0]], [[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]])
    with np.errstate(divide="ignore"):
        from maxent_gan.models.tabular import Transitions

        transitions = as_transitions(Transitions(successors, np.log(probs)))
    assert transitions.successors.dtype == jnp.int32 and bool(jnp.all(jnp.isfinite(transitions.log_probs)))
    np.testing.assert_allclose(transitions.dense(), np.array([[[0.3, 0.7, 0.0]], [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]),
                               atol=1e-12)


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory):
    """A 4x4 slippery gridworld written as a user would: a dense (S, A, S) array (80 of its 400 rows' entries
    beyond each row's support are zeros), with 60 exact demonstrations of a known θ*."""
    mdp = gridworld(4, slip=0.1, horizon=6)
    theta = np.array([-1.0, 4.0, 3.0, 0.3])
    costs = np.asarray(mdp.features) @ theta
    states, actions = sample_trajectories(jax.random.key(0), costs, mdp.transitions, mdp.initial, 6, 60)
    dense = np.asarray(mdp.transitions.dense())
    assert (dense == 0).any(axis=-1).all() and ((dense > 0).sum(-1).min() < (dense > 0).sum(-1).max())
    path = tmp_path_factory.mktemp("dense") / "grid.npz"
    np.savez(path, features=np.asarray(mdp.features), transitions=dense, initial=np.asarray(mdp.initial),
             horizon=np.array(6), states=np.asarray(states), actions=np.asarray(actions), theta_true=theta)
    return path


@pytest.mark.parametrize("method", ["exact", "gcl", "gan"])
def test_every_method_trains_on_a_dense_file_with_zeros(dense_file, method):
    run = train_ebm(load_problem_file(dense_file), method, steps=40, progress=False, evaluate=False,
                    checkpoint_every=1000)
    assert run.result.stopped is None and run.result.steps_done == 40
    theta = np.asarray(run.result.state.energy)
    assert np.all(np.isfinite(theta)) and np.abs(theta).max() > 1e-3  # it moved from θ = 0


def test_seals_environments_and_imitation_trajectories_through_the_real_packages():
    """seals' CliffWorld (imitation's MCE IRL tutorial environment) and random MDP, exported as a user does,
    with imitation's own Trajectory objects (one-hot observations) as demonstrations: the exact fit trains,
    and its reward correlates with the true one on the visited states."""
    cliff_world = pytest.importorskip("seals.diagnostics.cliff_world")
    random_trans = pytest.importorskip("seals.diagnostics.random_trans")
    types = pytest.importorskip("imitation.data.types")
    from maxent_gan.models.builders import tabular_problem
    from maxent_gan.models.files import from_imitation_trajectories, from_seals_env

    envs = (cliff_world.CliffWorldEnv(width=7, height=4, horizon=8, use_xy_obs=False),
            random_trans.RandomTransitionEnv(n_states=8, n_actions=3, branch_factor=2, horizon=6, random_obs=False,
                                             generator_seed=0))
    for env in envs:
        pieces = from_seals_env(env)
        assert (pieces["transitions"] == 0).any()  # dense, with zeros
        reward = np.asarray(env.reward_matrix, dtype=float)
        costs = -np.broadcast_to(reward[:, None], pieces["transitions"].shape[:2])
        states, actions = sample_trajectories(jax.random.key(1), costs, pieces["transitions"], pieces["initial"],
                                              pieces["horizon"], 100)
        eye = np.eye(reward.shape[0])
        trajectories = [types.Trajectory(obs=eye[np.asarray(s)], acts=np.asarray(a), infos=None, terminal=True)
                        for s, a in zip(states, actions, strict=True)]
        states, actions = from_imitation_trajectories(trajectories)
        run = train_ebm(tabular_problem(**pieces, states=states, actions=actions), "exact",
                        progress=False, evaluate=False, checkpoint_every=1000)
        assert run.result.stopped is None
        visited = np.unique(states)
        learned = -np.asarray(run.result.state.energy)
        assert np.corrcoef(learned[visited], reward[visited])[0, 1] > 0.8


def test_a_sparse_file_resumes_from_its_checkpoint(dense_file, tmp_path):
    """The sparse form (successors and successor_probs, as a user saves them: int64 and float64) resumes: its
    arrays are the library's own types, so the checkpoint's leaves match the rebuilt model's."""
    with np.load(dense_file) as arrays:
        pieces = dict(arrays)
    transitions = as_transitions(pieces.pop("transitions"))
    path = tmp_path / "sparse.npz"
    np.savez(path, successors=np.asarray(transitions.successors, np.int64),
             successor_probs=np.exp(np.asarray(transitions.log_probs, np.float64)), **pieces)
    options = {"steps": 6, "progress": False, "evaluate": False, "checkpoint_dir": tmp_path / "run",
               "checkpoint_every": 3}
    first = train_ebm(load_problem_file(path), "gcl", **options)
    again = train_ebm(load_problem_file(path), "gcl", resume=True, **options)
    np.testing.assert_array_equal(np.asarray(again.result.state.energy), np.asarray(first.result.state.energy))
