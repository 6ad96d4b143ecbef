"""The Problem protocol (issue 11): problems own what is true, inference dispatches on the sample space,
the layers stay apart, and a user's own problem (Python or .npz, imitation / seals formats) goes
through the same door."""

import ast
import pathlib
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.app.settings import COMPARE_PROBLEMS
from maxent_gan.inference.spaces import broad_proposal, has_soft_optimal, soft_optimal, warm_start
from maxent_gan.models.builders import energy_problem, tabular_problem
from maxent_gan.models.files import from_imitation_trajectories, from_seals_env, load_problem_file
from maxent_gan.models.gridworld import gridworld
from maxent_gan.models.problems import PROBLEMS, make_problem
from maxent_gan.models.spaces import LinearGaussianTrajectories, Points, SimulatorTrajectories, TabularTrajectories

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = [p for p in sorted((ROOT / "inference").rglob("*.py")) if "app" not in p.parts]
SPACES = {"gaussian": Points, "rings": Points, "digits": Points, "funnel10": Points,
          "gridworld": TabularTrajectories, "lqr": LinearGaussianTrajectories, "pointmass": SimulatorTrajectories,
          "pendulum": SimulatorTrajectories}


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("name", ["gaussian", "rings", "gridworld", "lqr"])
def test_a_problem_family_is_its_target_at_theta_star(name):
    problem = make_problem(name)
    assert isinstance(problem.space, SPACES[name])
    family = problem.family
    target = family.target(family.theta_true, problem.space)
    train, _ = problem.data(jax.random.key(0), 5, 3)
    assert train.shape == (5, problem.dim)
    assert target.base_measure == problem.space.base_measure
    # the family's log Z at θ* is the exact reference, and its sites round-trip through flatten
    np.testing.assert_allclose(target.log_normalizer, family.log_partition_fn(family.theta_true), rtol=1e-12)
    flat = family.flatten(family.to_sites(family.theta_true))
    assert flat.shape == (len(family.theta_names),)
    back = family.from_sites(family.unflatten(flat))
    np.testing.assert_allclose(family.flatten(family.to_sites(back)), flat)


def test_every_registered_problem_has_a_space_and_only_families_have_models():
    for name in PROBLEMS:
        if name == "digits":
            continue  # loads scikit-learn's images: covered by its own tests
        problem = make_problem(name)
        assert isinstance(problem.space, SPACES.get(name, object)), name
        # a simulator draws its data by NUTS (tests/test_simulator.py checks it against quadrature)
        if problem.data is not None and not isinstance(problem.space, SimulatorTrajectories):
            train, test = problem.data(jax.random.key(0), 8, 4)
            assert train.shape[1:] == test.shape[1:] == (problem.dim,), name  # points of the space's width
        assert (problem.model is None) == (problem.family is None), name
        # compare's list (its help and its errors) is every problem with a cost family
        assert (name in COMPARE_PROBLEMS) == (problem.family is not None), name


def _string_comparisons(path: pathlib.Path) -> list[str]:
    """Comparisons (==, !=, in, not in) against a problem name or kind written as a string, and any
    comparison of a problem's name; "gaussian" is also a proposal's name, so only the second catches it."""
    from maxent_gan.inference.app.recipes import RECIPES

    names = (set(PROBLEMS) | {"tabular", "lqr", "pointmass"}) - set(RECIPES)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any("problem" in ast.unparse(side) for side in sides) and any(
                    isinstance(side, ast.Constant) and isinstance(side.value, str) for side in sides):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            for side in sides:
                values = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                for value in values:
                    if isinstance(value, ast.Constant) and value.value in names:
                        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Attribute) and node.attr in ("irl", "kind"):
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


ESTIMATOR_NAMES = {"importance", "mis-cv", "mixture", "exact", "annealed"}


def test_no_module_of_the_core_branches_on_an_estimators_name():
    # the handler and the posterior ask an Estimator what it needs (uses_draws, in_posterior, ...), never its name
    for path in CORE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = {c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)}
                assert not (constants & ESTIMATOR_NAMES and "estimator" in ast.unparse(node)), \
                    f"{path.name}:{node.lineno}: {ast.unparse(node)}"


def test_no_module_of_inference_asks_which_problem_it_holds():
    found = [hit for path in sorted((ROOT / "inference").rglob("*.py")) for hit in _string_comparisons(path)]
    assert found == []


def test_the_core_never_imports_the_application_layer_and_imports_nothing_inside_functions_to_dodge_cycles():
    for path in CORE:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("maxent_gan.inference.app"), f"{path.name} imports {node.module}"
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("maxent_gan"):
                    pytest.fail(f"{path.name}:{node.lineno} imports {node.module} inside {function.name}")


def test_recipes_dispatch_on_the_space():
    grid, lqr, mass = make_problem("gridworld"), make_problem("lqr"), make_problem("pointmass")
    assert has_soft_optimal(grid.space) and has_soft_optimal(lqr.space) and not has_soft_optimal(mass.space)
    with pytest.raises(ValueError, match="pointmass has no soft-optimal policy"):
        soft_optimal(mass.space, mass, mass.true_params)
    key = jax.random.key(0)
    for problem in (grid, lqr):
        policy = soft_optimal(problem.space, problem, problem.true_params, tilted=True)
        x = policy.sample(key, 4)
        assert x.shape == (4, problem.dim)
    # a broad proposal draws rows of the space's length
    for problem in (grid, lqr, mass, make_problem("rings")):
        assert broad_proposal(problem.space, key).sample(key, 3).shape == (3, problem.dim)


def _dense(mdp):
    successors = np.asarray(mdp.transitions.successors)
    probs = np.exp(np.asarray(mdp.transitions.log_probs))
    dense = np.zeros(successors.shape[:2] + (successors.shape[0],))
    for k in range(successors.shape[2]):
        np.add.at(dense, (*np.indices(successors.shape[:2]), successors[..., k]), probs[..., k])
    return dense


def test_a_user_tabular_problem_is_the_built_in_one_when_given_the_same_mdp():
    mdp = gridworld(4, horizon=6, slip=0.1)
    theta = jnp.array([-1.0, 2.0, 1.0, 0.3])
    mine = tabular_problem(np.asarray(mdp.features), _dense(mdp), np.asarray(mdp.initial), 6, theta_true=theta)
    _, reference = __import__("maxent_gan.models.irl_problems", fromlist=["tabular_family"]).tabular_family(mdp)
    np.testing.assert_allclose(mine.family.log_partition_fn(theta), reference.log_partition_fn(theta), rtol=1e-12)
    assert mine.family.theta_names == ("feature_0", "feature_1", "feature_2", "feature_3")
    # (S, K) features are the same for every action
    per_state = np.asarray(mdp.features)[:, 0, :]
    shared = tabular_problem(per_state, _dense(mdp), np.asarray(mdp.initial), 6, theta_true=theta)
    assert shared.space.mdp.features.shape == mdp.features.shape
    np.testing.assert_allclose(shared.space.cost_table(theta)[:, 3], shared.space.cost_table(theta)[:, 0])


def _demos(n=40):
    mdp = gridworld(4, horizon=6, slip=0.1)
    problem = tabular_problem(np.asarray(mdp.features), _dense(mdp), np.asarray(mdp.initial), 6,
                              theta_true=[-1.0, 2.0, 1.0, 0.3])
    rows, _ = problem.data(jax.random.key(0), n, 1)
    states, actions = problem.space.layout.unpack(rows)
    return mdp, np.asarray(states), np.asarray(actions)


def test_an_npz_problem_round_trips_and_keeps_every_demonstration(tmp_path):
    mdp, states, actions = _demos()
    path = tmp_path / "mine.npz"
    np.savez(path, features=np.asarray(mdp.features), transitions=_dense(mdp), initial=np.asarray(mdp.initial),
             horizon=6, states=states, actions=actions, feature_names=np.array(mdp.feature_names),
             grid_shape=np.array([4, 4]))
    problem = make_problem(str(path))
    assert problem.name == "mine" and problem.family.theta_true is None and problem.target is None
    assert problem.family.theta_names == tuple(mdp.feature_names) and problem.space.grid_shape == (4, 4)
    train, test = problem.data(jax.random.key(3), 0, 0)
    assert train.shape[0] + test.shape[0] == 40
    rows = np.concatenate([train, test])
    packed = np.asarray(problem.space.layout.pack(jnp.asarray(states), jnp.asarray(actions)))
    assert sorted(map(tuple, rows.astype(int))) == sorted(map(tuple, packed.astype(int)))
    # the sparse form gives the same problem
    sparse = tmp_path / "sparse.npz"
    np.savez(sparse, features=np.asarray(mdp.features), successors=np.asarray(mdp.transitions.successors),
             successor_probs=np.exp(np.asarray(mdp.transitions.log_probs)), initial=np.asarray(mdp.initial),
             horizon=6, states=states, actions=actions)
    theta = jnp.array([0.5, -0.2, 0.1, 1.0])
    np.testing.assert_allclose(load_problem_file(sparse).family.log_partition_fn(theta),
                               problem.family.log_partition_fn(theta), rtol=1e-12)


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.pop("states"), "states: missing from"),
    (lambda a: a.pop("transitions"), "transitions (or successors and successor_probs): missing"),
    (lambda a: a.update(states=a["states"].astype(float)), "states: expected integers"),
    (lambda a: a.update(horizon=np.array([6, 7])), "horizon: expected one integer"),
    (lambda a: a.update(features=np.full((16, 5, 4), np.nan)), "features: contains non-finite values"),
    (lambda a: a.update(initial=np.ones(16)), "initial: expected 16 probabilities that sum to 1"),
    (lambda a: a.update(actions=a["actions"] + 9), "states, actions: demonstrations: trajectory 0 has action"),
    (lambda a: a.update(theta_true=np.zeros(3)), "theta_true: expected shape (4,)"),
    (lambda a: a.update(grid_shape=np.array([3, 3])), "grid_shape: expected (rows, columns)"),
])
def test_a_malformed_npz_is_refused_naming_the_key(change, message, tmp_path):
    mdp, states, actions = _demos(10)
    arrays = {"features": np.asarray(mdp.features), "transitions": _dense(mdp), "initial": np.asarray(mdp.initial),
              "horizon": np.array(6), "states": states, "actions": actions}
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as error:
        load_problem_file(path)
    assert message in str(error.value)


def test_the_cli_names_the_bad_key_on_one_line_and_exits_2(tmp_path):
    from tests.helpers import run_cli

    path = tmp_path / "bad.npz"
    np.savez(path, features=np.zeros((4, 2, 1)), initial=np.ones(4) / 4, horizon=3)
    for command in ("compare", "train", "logz"):
        out = [] if command == "logz" else ["--out", str(tmp_path / command)]
        result = run_cli(command, "--problem", str(path), *out)
        assert result.returncode == 2
        err = result.stderr.strip()
        assert err.splitlines() == [err] and "states: missing from bad.npz" in err
        assert not (tmp_path / command).exists()


def test_imitation_style_trajectories_become_states_and_actions():
    _, states, actions = _demos(5)
    as_dicts = [{"obs": s, "acts": a} for s, a in zip(states, actions, strict=True)]
    as_objects = [SimpleNamespace(obs=np.eye(16, dtype=np.int64)[s], acts=a) for s, a in zip(states, actions, strict=True)]
    for trajectories in (as_dicts, as_objects):  # state indices, or one-hot observations
        got_states, got_actions = from_imitation_trajectories(trajectories)
        np.testing.assert_array_equal(got_states, states)
        np.testing.assert_array_equal(got_actions, actions)
    with pytest.raises(ValueError, match="trajectory 1 has 6 obs and 6 acts"):
        from_imitation_trajectories([as_dicts[0], {"obs": states[1][:-1], "acts": actions[1]}])
    with pytest.raises(ValueError, match="one horizon"):
        from_imitation_trajectories([as_dicts[0], {"obs": states[1][:-1], "acts": actions[1][:-1]}])


def test_a_seals_style_environment_and_imitation_trajectories_make_a_problem():
    mdp, states, actions = _demos(30)
    env = SimpleNamespace(transition_matrix=_dense(mdp), initial_state_dist=np.asarray(mdp.initial), horizon=6,
                          observation_matrix=np.asarray(mdp.features)[:, 0, :])
    trajectories = [{"obs": s, "acts": a} for s, a in zip(states, actions, strict=True)]
    problem = tabular_problem(**from_seals_env(SimpleNamespace(unwrapped=env)),
                              **dict(zip(("states", "actions"), from_imitation_trajectories(trajectories), strict=True)))
    assert problem.dim == 13 and problem.family.log_partition_fn is not None
    with pytest.raises(ValueError, match="env: has no 'transition_matrix'"):
        from_seals_env(SimpleNamespace())


def test_real_seals_cliffworld_if_installed():
    seals = pytest.importorskip("seals.diagnostics.cliff_world")
    env = seals.CliffWorldEnv(width=5, height=4, horizon=6, use_xy_obs=True)
    problem = tabular_problem(**from_seals_env(env), theta_true=np.ones(env.observation_matrix.shape[1]))
    assert problem.family.log_partition_fn(jnp.zeros(problem.space.mdp.features.shape[-1])).shape == ()


def test_energy_problem_checks_its_arguments_and_goes_through_compare():
    from maxent_gan.inference.app.compare import CompareSettings, compare

    def cost(theta, x):
        return 0.5 * jnp.sum((x - theta["loc"]) ** 2, -1)

    data = jax.random.normal(jax.random.key(0), (60, 2)) + 1.0
    with pytest.raises(ValueError, match=r"cost_fn: expected costs of shape \(n,\)"):
        energy_problem(lambda t, x: x, {"loc": jnp.zeros(2)}, data)
    with pytest.raises(ValueError, match="prior: expected one distribution per site"):
        energy_problem(cost, {"loc": jnp.zeros(2)}, data, prior={})
    with pytest.raises(ValueError, match=r"data: expected points of shape \(n, d\)"):
        energy_problem(cost, {"loc": jnp.zeros(2)}, data[0])
    problem = energy_problem(cost, {"loc": jnp.zeros(2)}, data, log_partition_fn=lambda t: jnp.log(2 * jnp.pi),
                             prior_scale=10.0, name="shifted")
    assert problem.family.theta_names == ("loc[0]", "loc[1]")
    settings = CompareSettings(demos=60, train_steps=2, num_draws=50, num_warmup=100, num_samples=200,
                               num_chains=1, anchor_steps=1)
    summary = compare(problem, ("exact",), settings=settings)
    # a unit-variance Gaussian with a flat-ish prior: the posterior of loc is N(mean of the data, 1/n), and
    # compare conditions on every row a user gave (the held-out fifth too)
    row = summary["proposals"]["exact"]
    np.testing.assert_allclose(row["posterior_mean"], np.asarray(data.mean(0)), atol=4 / np.sqrt(data.shape[0]))
    assert summary["theta_true"] is None and summary["num_data"] == data.shape[0]


def test_warm_start_follows_the_space():
    grid = make_problem("gridworld")
    demos, _ = grid.data(jax.random.key(0), 50, 1)
    cloned = warm_start(grid.space, jax.random.key(1), demos)
    # behaviour cloning puts more mass on the demonstrations than the uniform policy does
    assert float(jnp.mean(cloned.log_prob(demos))) > float(jnp.mean(broad_proposal(grid.space, None).log_prob(demos)))


def test_identities_refuse_problems_without_points_or_a_density(tmp_path):
    from tests.helpers import run_cli

    for name, what in (("gridworld", "TabularTrajectories"), ("digits", "none")):
        result = run_cli("identities", "--problem", name, "--out", str(tmp_path / name))
        assert result.returncode == 2 and f"{name} has {what}" in result.stderr
        assert not (tmp_path / name).exists()


def test_user_demonstrations_the_dynamics_cannot_produce_are_refused():
    mdp, states, actions = _demos(6)
    args = (np.asarray(mdp.features), _dense(mdp), np.asarray(mdp.initial), 6)
    moved = states.copy()
    moved[2, 3] = (moved[2, 2] + 8) % 16  # a jump of two rows: no action reaches it
    with pytest.raises(ValueError, match=r"states, actions: trajectory 2 moves from state \d+ by action \d+ to state "
                                         r"\d+ at t=2, which the transitions give probability 0"):
        tabular_problem(*args, moved, actions)
    started = states.copy()
    started[4, 0] = 15
    with pytest.raises(ValueError, match="states: trajectory 4 starts in state 15, which the initial distribution"):
        tabular_problem(*args, started, actions)
    for n in (3, 0):  # named as the demonstrations they are (the split into train and test needs 4)
        with pytest.raises(ValueError, match=rf"^states, actions: {n} demonstration\(s\); expected at least 4"):
            tabular_problem(*args, states[:n], actions[:n])
